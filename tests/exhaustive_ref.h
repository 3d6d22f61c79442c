/*
 * exhaustive_ref.h - the exact-value oracle of the exhaustive verifier.
 *
 * The verifier never needs an exact value itself, only its side of a
 * threshold: "is F(x) above or below m?", where x and m are doubles with at
 * most 25 significant bits (floats and midpoints between floats).  The
 * forward kernels are judged by comparing the exact value with the midpoint
 * between the two candidate floats; the inverses by comparing the exact
 * forward value at the midpoints around the returned float with the float y
 * given (f increasing: x = RN(g(y)) iff f(x-) < y < f(x+)).  Neither test
 * uses the library under test.
 *
 * The question is answered in tiers, each with a stated error bound, and a
 * tier answers only when its bound puts F(x) clearly on one side:
 *   1. double: glibc's sin() or tanh(), times x (ref_double());
 *   2. MPFR at 128, 512, 2048 then 8192 bits, when the build found it;
 *      otherwise long double (x87, 64-bit significand) with sinl()/tanhl().
 * F(x) is never equal to such an m (x sin x, x tanh x, sin x and tanh x
 * are transcendental at every nonzero rational x, Lindemann-Weierstrass),
 * so with MPFR every question is eventually decided; with long double a
 * few may stay undecided, and the verifier counts and reports them.
 */
#ifndef INVDL_EXHAUSTIVE_REF_H
#define INVDL_EXHAUSTIVE_REF_H

#include <math.h>
#include <stdint.h>

typedef enum ref_fn {
    REF_SIN,    /* sin x        (glibc sinf is judged against it) */
    REF_TANH,   /* tanh x       (glibc tanhf) */
    REF_XSIN,   /* x sin x      (signed sin for x >= 0) */
    REF_XTANH,  /* x tanh x     (abs-tanh for x >= 0) */
    REF_FN_COUNT
} ref_fn;

/* Assumed bound on the relative error of ref_double(), for every finite
 * x >= 0.  glibc's double sin() and tanh() are accurate to a few ulps,
 * 2^-52 or so relative (their ulp records in glibc's test suite are single
 * digits; sin() reduces large arguments exactly, so its relative error holds
 * near the zeros of sin too); the product with x adds one rounding,
 * 2^-53.  2^-45 leaves a margin of more than a hundred double ulps, and
 * every run measures the actual error against MPFR on a sample (see
 * ref_self_check()) and fails if it exceeds half this bound.  The price of
 * the margin is only that about one value in a million escalates to tier 2.
 */
#define REF_DOUBLE_REL_ERR 0x1p-45

/* Assumed bound for the long double tier (used only without MPFR):
 * sinl()/tanhl() of glibc on x86-64 (ldbl-96, exact argument reduction)
 * err by a few ulps of long double, 2^-63 relative; 2^-56 leaves a margin
 * of 2^7.  Also measured by ref_self_check() when MPFR is present. */
#define REF_LONG_DOUBLE_REL_ERR 0x1p-56L

/* Tier 1: F(x) in double, x >= 0 finite. */
static inline double ref_double(ref_fn fn, double x)
{
    switch (fn) {
    case REF_SIN:
        return sin(x);
    case REF_TANH:
        return tanh(x);
    case REF_XSIN:
        return x * sin(x);
    case REF_XTANH:
    default:
        return x * tanh(x);
    }
}

/* Counts of the questions that tier 1 could not answer. */
typedef struct ref_tally {
    uint64_t escalated;     /* passed to tier 2 */
    uint64_t undecided;     /* not answered by tier 2 either */
} ref_tally;

/* sign(F(x) - m): +1, -1, or 0 if undecided.  x >= 0 finite; d is
 * ref_double(fn, x), which the caller has usually computed already. */
int ref_cmp(ref_fn fn, double x, double m, double d, ref_tally *tally);

/* sign(x - T) and sign(v - Y), T the root of tan t = -t in (pi/2, pi) and
 * Y = T sin T, for doubles x, v (0 if undecided: never with MPFR). */
int ref_cmp_T(double x);
int ref_cmp_Y(double v);

/* T and Y, rounded to nearest double. */
double ref_T(void);
double ref_Y(void);

/* Computes T and Y; call once before any other function. */
void ref_init(void);

/* Whether tier 2 is MPFR (1) or long double (0). */
int ref_have_mpfr(void);
/* Tier 2 in words, for the report. */
const char *ref_tier2_name(void);

/* The measured errors of tiers 1 and 2 (long double) against MPFR at 256
 * bits over the floats x = k*stride, k in [k0, k1), x finite >= 0.  Maxima
 * are relative errors; returns 0 if MPFR is unavailable (nothing done). */
typedef struct ref_check {
    uint64_t samples;
    double max_rel_double[REF_FN_COUNT];
    uint32_t worst_double_x[REF_FN_COUNT];
    double max_rel_long_double[REF_FN_COUNT];
} ref_check;

int ref_self_check(uint32_t stride, uint32_t k0, uint32_t k1, ref_check *out);

/* Releases tier 2's per-thread caches (MPFR's constant caches); call at the
 * end of each thread that used the oracle. */
void ref_thread_done(void);

#endif /* INVDL_EXHAUSTIVE_REF_H */
