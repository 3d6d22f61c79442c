/*
 * ssin.c - signed sin, y = x*sin|x|, and its inverse on the monotone branch.
 *
 * Both directions are correctly rounded (see kernels.h for how).  With
 * u = x^2, exact in double for a float x:
 *     forward   y = sign(x) * u * S(u),        S(u) = sin(x)/x
 *     inverse   one Newton step on f(x) = x sin x from x0 = sqrt(a) H(s),
 *               a = |y|, s = sqrt(1 - a/Y),
 * where H(s) = x/sqrt(a) is analytic on all of [0, 1]: it absorbs both the
 * square-root behaviour at a = 0 and the one at the top of the branch.
 */
#include "kernels/kernels.h"

#include <math.h>

/* Coefficients from tests/tools/coefficients.py. */

/* sin(x)/x = 1 + u*R(u), u = x^2 in [0, 4.12]: log2 rel err -43.9 */
static const double SSIN_R[7] = {
    -0x1.5555555555466p-3,
    0x1.11111110fade9p-7,
    -0x1.a01a018a8985cp-13,
    0x1.71de3278ff0d8p-19,
    -0x1.ae619b2725c1dp-26,
    0x1.60a76621c07d5p-33,
    -0x1.983fc69d209a2p-41,
};

/* sin(x)/x + cos(x) = f'(x)/x in u = x^2 on [0, 4.12]: log2 abs err -55.4 */
static const double SSIN_D[10] = {
    0x1.0000000000000p+1,
    -0x1.5555555555555p-1,
    0x1.999999999995cp-5,
    -0x1.a01a01a0187fep-10,
    0x1.ce55c8ea2f523p-16,
    -0x1.42cb40bcf932dp-22,
    0x1.34ffcb89c7681p-29,
    -0x1.ae7bfae823838p-37,
    0x1.c724ec09d2f9bp-45,
    -0x1.672b8472a8e6dp-53,
};

/* x/sqrt(a) for x*sin(x) = a, in s = sqrt(1 - a/Y) on [0, 1]: log2 abs err
 * -31.2 */
static const double SSIN_H[12] = {
    0x1.810202f7aa7abp+0,
    -0x1.b856700e39492p-1,
    0x1.4884690dd7d54p-1,
    -0x1.0effc5e8db129p-1,
    0x1.d5c517ba9a756p-2,
    -0x1.9ecb76af97201p-2,
    0x1.6589df5ec42d2p-2,
    -0x1.184c58b1a8e4bp-2,
    0x1.6b38dcac5c304p-3,
    -0x1.5b3e5f71f0cc5p-4,
    0x1.a5072da49d31fp-6,
    -0x1.dc718df3193b3p-9,
};

/* Y = T sin T split into double + double, and a clamp just below T that the
 * exact inverse of any float y <= YMAX (at most T - 1.1e-4) stays under. */
#define SSIN_Y_HI 0x1.d1d83c469fc86p+0
#define SSIN_Y_LO -0x1.2e771c3de95a7p-54
#define SSIN_X_CLAMP (0x1.03ae563b180fap+1 - 0x1p-20)

/* |f''| <= 2.704 on [0, T] (f'' = 2cos x - x sin x falls monotonically from
 * 2 to -2.704): the Newton error is at most this times step^2 / |f'|,
 * with a factor 2 to spare. */
#define SSIN_NEWTON_C 2.75

/* Bounds on the fast paths' errors: the polynomial's 2^-43.9 plus a
 * worst-case rounding analysis of its evaluation, by Horner's scheme (scalar)
 * or Estrin's (SIMD), about 2^-47 relative for S near T, where the
 * alternating series cancels to 0.44, with margin; the exhaustive verifier
 * (tests/exhaustive.c) confirms every result. */
#define SSIN_FWD_ERR 0x1p-42
#define SSIN_INV_ERR_X 0x1p-50
#define SSIN_INV_ERR_F 0x1p-42
#define SSIN_INV_ERR_D 0x1p-36

static double ssin_sinc(double u)
{
    return 1.0 + u * invdl_horner(SSIN_R, 7, u);
}

/* x*sin(x) in double-double for 0 <= x <= 2.03 (x*x exact in double), from
 * the nested Taylor series
 *     sin(x)/x = 1 - u/(2*3) (1 - u/(4*5) (1 - u/(6*7) (...))).
 * 21 levels leave a remainder below u^21/43! < 2^-125 for u <= 4.12. */
dd invdl_ssin_exact(double x)
{
    double u = x * x;
    dd t = dd_make(1.0, 0.0);
    for (int k = 21; k >= 1; k--) {
        double den = (double)(2 * k) * (double)(2 * k + 1);
        t = dd_add_d(dd_neg(dd_div_d(dd_mul_d(t, u), den)), 1.0);
    }
    return dd_mul_d(t, u);
}

/* Outside the branch (|x| > XMAX, finite): only a forward value is wanted.
 * glibc's sin() is accurate to within an ulp of double at every argument
 * (its range reduction is exact), so p is within 2^-51 relative of the
 * exact value and rounds correctly unless it lies that close to a midpoint;
 * long double then decides all but the hardest cases. */
static float ssin_forward_outside(float x)
{
    double a = fabs((double)x);
    double p = a * sin(a);
    invdl_rounding r = invdl_round_candidates(p, fabs(p) * 0x1p-49);
    float res = r.lo;
    if (r.lo != r.hi) {
        long double al = (long double)a;
        res = (float)(al * sinl(al));
    }
    return x < 0.0f ? -res : res;
}

float invdl_ssin_forward1(float x)
{
    double a = fabs((double)x);
    if (!(a <= (double)INVDL_SSIN_XMAX)) {
        if (!isfinite(x))
            return x - x; /* NaN for ±inf and NaN */
        return ssin_forward_outside(x);
    }
    double u = a * a;
    double p = u * ssin_sinc(u);
    invdl_rounding r = invdl_round_candidates(p, p * SSIN_FWD_ERR);
    float res = r.lo;
    if (r.lo != r.hi)
        res = dd_cmp_d(invdl_ssin_exact(a), r.mid) > 0 ? r.hi : r.lo;
    return copysignf(res, x);
}

float invdl_ssin_inverse1(float y)
{
    double a = fabs((double)y);
    if (!(a <= (double)INVDL_SSIN_YMAX))
        return NAN;
    if (a == 0.0)
        return y;
    double s = sqrt(((SSIN_Y_HI - a) + SSIN_Y_LO) * (1.0 / SSIN_Y_HI));
    double x0 = fmin(sqrt(a) * invdl_horner(SSIN_H, 12, s), SSIN_X_CLAMP);
    double u0 = x0 * x0;
    double residual = u0 * ssin_sinc(u0) - a;
    double inv_fp = 1.0 / (x0 * invdl_horner(SSIN_D, 10, u0));
    double step = residual * inv_fp;
    double x1 = x0 - step;
    double err = SSIN_INV_ERR_X * x1 + SSIN_INV_ERR_D * fabs(step) +
                 (SSIN_INV_ERR_F * a + SSIN_NEWTON_C * step * step) * inv_fp;
    invdl_rounding r = invdl_round_candidates(x1, err);
    float res = r.lo;
    if (r.lo != r.hi) /* f increasing: f(mid) > a puts the root below mid */
        res = dd_cmp_d(invdl_ssin_exact(r.mid), a) > 0 ? r.lo : r.hi;
    return copysignf(res, y);
}

invdl_status invdl_ssin_forward_scalar(size_t n, const float *x, float *y)
{
    if (invdl_bad_arrays(n, x, y))
        return INVDL_EINVAL;
    int outside = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        outside |= !(fabsf(v) <= INVDL_SSIN_XMAX);
        y[i] = invdl_ssin_forward1(v);
    }
    return outside ? INVDL_EDOMAIN : INVDL_OK;
}

invdl_status invdl_ssin_inverse_scalar(size_t n, const float *y, float *x)
{
    if (invdl_bad_arrays(n, y, x))
        return INVDL_EINVAL;
    int outside = 0;
    for (size_t i = 0; i < n; i++) {
        float v = y[i];
        outside |= !(fabsf(v) <= INVDL_SSIN_YMAX);
        x[i] = invdl_ssin_inverse1(v);
    }
    return outside ? INVDL_EDOMAIN : INVDL_OK;
}

#if INVDL_HAVE_AVX2

/* The SIMD paths (ssin_simd.h): the same algorithms, with the inverse's
 * starting point computed in float from shorter polynomials, which the
 * Newton step in double then refines.  Coefficients from
 * tests/tools/coefficients.py. */

/* SSIN_H for float evaluation, degree 8: log2 abs err -22.9 */
static const float SSIN_H_F[9] = {
    0x1.810202p+0f,  -0x1.b85478p-1f, 0x1.484eaep-1f,  -0x1.0cbf08p-1f, 0x1.bce352p-2f,
    -0x1.4eb878p-2f, 0x1.8af69ep-3f,  -0x1.2e9eecp-4f, 0x1.b0667cp-7f,
};

/* s*sqrt(a)/f'(x) in s on [0, 1], float, degree 6: log2 abs err -22.4.  It
 * gives 1/f' at the root without a division: f' has a simple zero at the top
 * of the branch, where s does too, and f'/sqrt(a) tends to 2 at a = 0. */
static const float SSIN_G_F[7] = {
    0x1.b8568p-2f,   0x1.c3d528p-4f, -0x1.0ce39ep-4f, 0x1.4f0e9cp-5f,
    -0x1.7be0c8p-6f, 0x1.386c7ep-7f, -0x1.fa138cp-10f,
};

/* The SIMD inverse's error bound, a priori, relative to x0 (proof sketch):
 * the starting point is within K = 2^-20 (relative) of the root (H's 2^-22.9,
 * two approximate square roots at 2^-22 and float roundings), and 1/f' within
 * 2^-20 (G's 2^-22.4, the square roots).  After the Newton step,
 *   |x1 - x| <= x0 (2^-51 + 2^-20 K)         roundings, 1/f' error times step
 *             + 2^-42 a/f'                    residual's error (a <= x)
 *             + 2.75 (K x0)^2 / f'            Newton's quadratic term
 * and a/(x0 f') <= sqrt(a)/f' since x0 >= sqrt(a) on the branch.  In ulps of
 * double (2^-53 x0 at least): m = 2^13 + (2^11 sqrt(a) + 2.75 2^13 x0)/f'.
 * The exhaustive verifier confirms every result this path returns. */
#define SSIN_M0 0x1.01p13f
#define SSIN_M_SQRT_A 0x1p11f
#define SSIN_M_X0 (2.75f * 0x1p13f)

#define INVDL_SIMD_BODIES "kernels/ssin_simd.h"
#include "kernels/simd_paths.h"

#endif /* INVDL_HAVE_AVX2 */
