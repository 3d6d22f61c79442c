/*
 * exhaustive_ref.c - tiers 2 of the oracle (MPFR or long double), the
 * branch constants T and Y, and the measurement of tier 1's real error.
 *
 * Nothing here calls the library under test or shares code with it.
 */
#include "exhaustive_ref.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#if INVDL_HAVE_MPFR
#include <mpfr.h>
#endif

/* ------------------------------------------------------------------------ */
/* Tier 2                                                                    */
/* ------------------------------------------------------------------------ */

#if INVDL_HAVE_MPFR

/* MPFR keeps per-thread caches when built thread-safe (Debian's is); a
 * build without thread-local storage gets its calls serialised. */
static pthread_mutex_t mpfr_lock = PTHREAD_MUTEX_INITIALIZER;
static int mpfr_needs_lock;

/* F(x) at precision p, with a bound on its error: mpfr_sin and mpfr_tanh
 * are correctly rounded (error <= 2^-p relative), the product with x adds
 * one more such rounding, so |v - F(x)| < 2^(2-p) |v| for every fn. */
static void mpfr_eval(mpfr_ptr v, ref_fn fn, mpfr_srcptr x)
{
    switch (fn) {
    case REF_SIN:
        mpfr_sin(v, x, MPFR_RNDN);
        break;
    case REF_TANH:
        mpfr_tanh(v, x, MPFR_RNDN);
        break;
    case REF_XSIN:
        mpfr_sin(v, x, MPFR_RNDN);
        mpfr_mul(v, v, x, MPFR_RNDN);
        break;
    case REF_XTANH:
    default:
        mpfr_tanh(v, x, MPFR_RNDN);
        mpfr_mul(v, v, x, MPFR_RNDN);
        break;
    }
}

/* sign(F(x) - m) from an enclosure [v - e, v + e] of F(x), e = 2^(2-p)|v|
 * (exact: a power-of-two scaling), bounds rounded outwards. */
static int mpfr_decide(ref_fn fn, double x, double m)
{
    int result = 0;
    if (mpfr_needs_lock)
        pthread_mutex_lock(&mpfr_lock);
    for (mpfr_prec_t p = 128; p <= 8192 && result == 0; p *= 4) {
        mpfr_t xv, v, e, lo, hi;
        mpfr_inits2(p, xv, v, e, lo, hi, (mpfr_ptr)0);
        mpfr_set_d(xv, x, MPFR_RNDN); /* exact: 53 <= p */
        mpfr_eval(v, fn, xv);
        mpfr_abs(e, v, MPFR_RNDN);
        mpfr_mul_2si(e, e, 2 - (long)p, MPFR_RNDN);
        mpfr_sub(lo, v, e, MPFR_RNDD);
        mpfr_add(hi, v, e, MPFR_RNDU);
        if (mpfr_cmp_d(lo, m) > 0)
            result = 1;
        else if (mpfr_cmp_d(hi, m) < 0)
            result = -1;
        mpfr_clears(xv, v, e, lo, hi, (mpfr_ptr)0);
    }
    if (mpfr_needs_lock)
        pthread_mutex_unlock(&mpfr_lock);
    return result;
}

#else /* long double */

static long double ld_eval(ref_fn fn, long double x)
{
    switch (fn) {
    case REF_SIN:
        return sinl(x);
    case REF_TANH:
        return tanhl(x);
    case REF_XSIN:
        return x * sinl(x);
    case REF_XTANH:
    default:
        return x * tanhl(x);
    }
}

static int ld_decide(ref_fn fn, double x, double m)
{
    long double v = ld_eval(fn, (long double)x);
    /* doubled: absorbs the roundings of v -/+ e themselves */
    long double e = 2.0L * fabsl(v) * REF_LONG_DOUBLE_REL_ERR;
    if (v - e > (long double)m)
        return 1;
    if (v + e < (long double)m)
        return -1;
    return 0;
}

#endif

/* Tier 1b, for 0 <= x < 2^-12, where tier 1 often cannot decide because
 * F(x) lies within 2^-45 of a float (tanh x of tiny x is x minus x^3/3; for
 * x with few significant bits x^2 is itself a float):
 *   sin x  = x - x^3/6 + x^5/120 - ...      tanh x = x - x^3/3 + 2x^5/15 - ...
 * and x sin x, x tanh x are x times these.  F(x) - m = (lead - m) + c, where
 * lead is x or x*x (exact: x has at most 25 significant bits), lead - m is
 * exact by Sterbenz's lemma whenever m is within a factor 2 of lead (and
 * otherwise carries the sign of F(x) - m by a wide margin, |c| being below
 * lead/2^23), and c holds the next two terms, computed with relative error
 * below 2^-50.  Both series alternate with terms falling by a factor
 * x^2 < 2^-24 or more, so the truncation error is below the first term
 * left out, itself below x^8 (2x^7 without the factor x); 2x^8 bounds it
 * for all four functions. */
static int series_cmp(ref_fn fn, double x, double m)
{
    if (x == 0)
        return (0 > m) - (0 < m);
    double x2 = x * x, lead, c;
    switch (fn) {
    case REF_SIN:
        lead = x;
        c = x * x2 * (-1.0 / 6 + x2 / 120);
        break;
    case REF_TANH:
        lead = x;
        c = x * x2 * (-1.0 / 3 + x2 * (2.0 / 15));
        break;
    case REF_XSIN:
        lead = x2;
        c = x2 * x2 * (-1.0 / 6 + x2 / 120);
        break;
    case REF_XTANH:
    default:
        lead = x2;
        c = x2 * x2 * (-1.0 / 3 + x2 * (2.0 / 15));
        break;
    }
    double x4 = x2 * x2;
    double bound = fabs(c) * 0x1p-50 + 2.0 * x4 * x4 * (fn == REF_SIN || fn == REF_TANH ? 1 / x : 1);
    double delta = (lead - m) + c;
    /* doubled: absorbs the rounding of the final sum */
    if (delta > 2 * bound)
        return 1;
    if (delta < -2 * bound)
        return -1;
    return 0;
}

int ref_cmp(ref_fn fn, double x, double m, double d, ref_tally *tally)
{
    /* Tier 1.  The bound is doubled to absorb the roundings of d -/+ e
     * (each below 2^-53 relative). */
    double e = 2.0 * fabs(d) * REF_DOUBLE_REL_ERR;
    if (d - e > m)
        return 1;
    if (d + e < m)
        return -1;
    if (x < 0x1p-12) {
        int c = series_cmp(fn, x, m);
        if (c != 0)
            return c;
    }
    tally->escalated++;
#if INVDL_HAVE_MPFR
    int c = mpfr_decide(fn, x, m);
#else
    int c = ld_decide(fn, x, m);
#endif
    if (c == 0)
        tally->undecided++;
    return c;
}

int ref_have_mpfr(void)
{
    return INVDL_HAVE_MPFR;
}

const char *ref_tier2_name(void)
{
#if INVDL_HAVE_MPFR
    return "MPFR (128..8192 bits, correctly rounded sin/tanh)";
#else
    return "long double (x87, sinl/tanhl, assumed error 2^-56 relative)";
#endif
}

void ref_thread_done(void)
{
#if INVDL_HAVE_MPFR
    mpfr_free_cache();
#endif
}

/* ------------------------------------------------------------------------ */
/* T and Y                                                                   */
/* ------------------------------------------------------------------------ */

/* T solves h(t) = sin t + t cos t = 0 (the derivative of t sin t), which is
 * tan t = -t; h'(t) = 2 cos t - t sin t is about -3.7 there, so Newton from
 * 2.03 converges quadratically. */
#if INVDL_HAVE_MPFR
static mpfr_t branch_T, branch_Y;
#else
static long double branch_T_ld, branch_Y_ld;
#endif
static double branch_T_d, branch_Y_d;

void ref_init(void)
{
#if INVDL_HAVE_MPFR
    mpfr_needs_lock = !mpfr_buildopt_tls_p();
    const mpfr_prec_t p = 256;
    mpfr_t s, c, h, dh, tmp;
    mpfr_inits2(p, s, c, h, dh, tmp, (mpfr_ptr)0);
    mpfr_init2(branch_T, p);
    mpfr_init2(branch_Y, p);
    mpfr_set_d(branch_T, 2.03, MPFR_RNDN);
    for (int i = 0; i < 12; i++) {
        mpfr_sin_cos(s, c, branch_T, MPFR_RNDN);
        mpfr_mul(h, branch_T, c, MPFR_RNDN);
        mpfr_add(h, h, s, MPFR_RNDN);          /* h = sin t + t cos t */
        mpfr_mul(dh, branch_T, s, MPFR_RNDN);
        mpfr_mul_2ui(tmp, c, 1, MPFR_RNDN);
        mpfr_sub(dh, tmp, dh, MPFR_RNDN);      /* h' = 2 cos t - t sin t */
        mpfr_div(h, h, dh, MPFR_RNDN);
        mpfr_sub(branch_T, branch_T, h, MPFR_RNDN);
    }
    mpfr_sin(s, branch_T, MPFR_RNDN);
    mpfr_mul(branch_Y, branch_T, s, MPFR_RNDN);
    branch_T_d = mpfr_get_d(branch_T, MPFR_RNDN);
    branch_Y_d = mpfr_get_d(branch_Y, MPFR_RNDN);
    mpfr_clears(s, c, h, dh, tmp, (mpfr_ptr)0);
#else
    long double t = 2.03L;
    for (int i = 0; i < 12; i++) {
        long double s = sinl(t), c = cosl(t);
        t -= (s + t * c) / (2.0L * c - t * s);
    }
    branch_T_ld = t;
    branch_Y_ld = t * sinl(t);
    branch_T_d = (double)branch_T_ld;
    branch_Y_d = (double)branch_Y_ld;
#endif
}

double ref_T(void)
{
    return branch_T_d;
}

double ref_Y(void)
{
    return branch_Y_d;
}

#if !INVDL_HAVE_MPFR
/* Newton in long double leaves T and Y within a few ulps of long double,
 * 2^-61 relative; 2^-58 is a safe separation. */
static int ld_sign_diff(double a, long double b)
{
    long double e = fabsl(b) * 0x1p-58L;
    if ((long double)a > b + e)
        return 1;
    if ((long double)a < b - e)
        return -1;
    return 0;
}
#endif

#if INVDL_HAVE_MPFR
static int sign_diff(double a, mpfr_srcptr b)
{
    int c = mpfr_cmp_d(b, a);
    return c < 0 ? 1 : (c > 0 ? -1 : 0);
}
#define BRANCH_T branch_T
#define BRANCH_Y branch_Y
#else
#define sign_diff ld_sign_diff
#define BRANCH_T branch_T_ld
#define BRANCH_Y branch_Y_ld
#endif

int ref_cmp_T(double x)
{
    return sign_diff(x, BRANCH_T);
}

int ref_cmp_Y(double v)
{
    return sign_diff(v, BRANCH_Y);
}

/* ------------------------------------------------------------------------ */
/* Self check                                                                */
/* ------------------------------------------------------------------------ */

int ref_self_check(uint32_t stride, uint32_t k0, uint32_t k1, ref_check *out)
{
#if INVDL_HAVE_MPFR
    mpfr_t xv, v;
    mpfr_inits2(256, xv, v, (mpfr_ptr)0);
    for (uint32_t k = k0; k < k1; k++) {
        uint64_t b = (uint64_t)k * stride;
        if (b >= 0x7f800000u)
            break;
        uint32_t bits = (uint32_t)b;
        float xf;
        memcpy(&xf, &bits, sizeof xf);
        double x = (double)xf;
        mpfr_set_d(xv, x, MPFR_RNDN);
        out->samples++;
        for (int f = 0; f < REF_FN_COUNT; f++) {
            ref_fn fn = (ref_fn)f;
            mpfr_eval(v, fn, xv);
            double exact = mpfr_get_d(v, MPFR_RNDN);
            if (exact == 0)
                continue;
            /* exact is within 2^-53 of F(x): that much of the measured
             * error may be the measurement's own */
            double rel = fabs(ref_double(fn, x) - exact) / fabs(exact);
            if (rel > out->max_rel_double[f]) {
                out->max_rel_double[f] = rel;
                out->worst_double_x[f] = bits;
            }
            long double vl;
            switch (fn) {
            case REF_SIN:
                vl = sinl((long double)x);
                break;
            case REF_TANH:
                vl = tanhl((long double)x);
                break;
            case REF_XSIN:
                vl = (long double)x * sinl((long double)x);
                break;
            case REF_XTANH:
            default:
                vl = (long double)x * tanhl((long double)x);
                break;
            }
            long double el = mpfr_get_ld(v, MPFR_RNDN);
            double rl = (double)(fabsl(vl - el) / fabsl(el));
            if (rl > out->max_rel_long_double[f])
                out->max_rel_long_double[f] = rl;
        }
    }
    mpfr_clears(xv, v, (mpfr_ptr)0);
    return 1;
#else
    (void)stride;
    (void)k0;
    (void)k1;
    (void)out;
    return 0;
#endif
}
