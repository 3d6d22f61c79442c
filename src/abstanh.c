/*
 * abstanh.c - abs-tanh, y = |x|*tanh(x), and its inverse.
 *
 * Both directions are correctly rounded (see kernels.h for how).
 *     forward   tanh a = -e/(2 + e), e = expm1(-2a), a = |x|, with
 *               expm1 from a reduction -2a = k ln2 + r, |r| <= ln2/2:
 *               expm1(-2a) = 2^k expm1(r) + (2^k - 1), free of cancellation.
 *     inverse   one Newton step on f(x) = x tanh x from x0 = t h(t),
 *               t = sqrt(a), h a piecewise polynomial (8 pieces).
 * From |x| = ABSTANH_FWD_IDENTITY on, x*tanh(x) is within half an ulp of x,
 * so y == x; likewise the inverse returns y from ABSTANH_INV_IDENTITY on.
 * Both thresholds are the smallest floats with that property (found by
 * exhaustive search against an exact reference, tests/exhaustive.c).
 */
#include "kernels.h"

#include <math.h>

#define ABSTANH_FWD_IDENTITY 0x1.169cfep+3
#define ABSTANH_INV_IDENTITY 0x1.169cfcp+3

/* Coefficients from tests/tools/coefficients.py. */

/* expm1(r)/r = 1 + r*P(r), |r| <= ln2/2: log2 rel err -54.4 */
static const double EXPM1_P[10] = {
    0x1.0000000000001p-1,
    0x1.5555555555556p-3,
    0x1.5555555553d68p-5,
    0x1.11111111109b5p-7,
    0x1.6c16c17889ef1p-10,
    0x1.a01a01a7c2efep-13,
    0x1.a019b9149a41cp-16,
    0x1.71de0db2f6b19p-19,
    0x1.28917c89a43a7p-22,
    0x1.af389ecfc4b9cp-26,
};

/* x/t for x*tanh(x) = t^2: 8 pieces of width 2.96/8, degree 6 in the offset
 * from the piece's start: log2 abs err -25.8 */
#define ABSTANH_H_TOP 2.96
static const double ABSTANH_H[8][7] = {
    {0x1.ffffffff27839p-1, 0x1.be3b54c9947dbp-26, 0x1.5554c19289e15p-3, 0x1.1fa7a0f911946p-16,
     0x1.f29ac19a5c68dp-6, 0x1.be91f6748f5bdp-12, 0x1.6abb12dfbed91p-9},
    {0x1.05fd65eac4917p+0, 0x1.098baaff8d3b8p-3, 0x1.8a9082408f3bep-3, 0x1.8e97fb7e3b2e6p-5,
     0x1.1da69b1024efcp-5, 0x1.890f616d3a52ep-7, -0x1.632ec729c0691p-7},
    {0x1.19d5f1461e8e0p+0, 0x1.3325f0b818825p-2, 0x1.1cf9e51f6e080p-2, 0x1.b10b90305acfbp-4,
     0x1.dc96d70e33fadp-6, -0x1.4778a5bcd43aap-7, -0x1.17c0c81cb1b7bp-4},
    {0x1.4172b917da6f6p+0, 0x1.1a53dcaca1326p-1, 0x1.94fb9affac454p-2, 0x1.00d2c95271045p-4,
     -0x1.9bad98f3de943p-4, -0x1.07539cc8137c3p-2, 0x1.bdd0af3a7f727p-3},
    {0x1.838e7c9a62b56p+0, 0x1.ab3b5dc4cf354p-1, 0x1.40e9fbbb0cf6cp-2, -0x1.b5093c28bf9e1p-3,
     -0x1.30376a0ab2ceep-3, 0x1.609dbbbb0739fp-2, -0x1.6394ea2f1d4c5p-3},
    {0x1.da985e5eb290ap+0, 0x1.f28270456213cp-1, 0x1.485a6cfd838f5p-4, -0x1.1d388448b7333p-3,
     0x1.225179924be28p-3, -0x1.2d0661f9d2758p-4, 0x1.53c59d2abde99p-7},
    {0x1.1c30931e143dep+1, 0x1.feff85a6abb33p-1, 0x1.fac66cdbda489p-8, -0x1.32d467b085ce1p-6,
     0x1.e802dd47b2f50p-6, -0x1.e392d5d3c2907p-6, 0x1.c8beecfb5c1e9p-7},
    {0x1.4b855f7ed3c43p+1, 0x1.fff5e988301b6p-1, 0x1.7f7d287ead00fp-12, -0x1.1a99b7c14c828p-10,
     0x1.11130cd65971cp-9, -0x1.41a81d902c8f2p-9, 0x1.5c58ae50ba620p-10},
};

/* ln 2 for the reduction: a 32-bit head (k*LN2_HI is exact for |k| < 2^21)
 * and a tail; and ln 2 as a double-double for the exact path. */
#define LN2_HI 0x1.62e42fee00000p-1
#define LN2_LO 0x1.a39ef35793c76p-33
#define INV_LN2 0x1.71547652b82fep+0
#define LN2_DD_HI 0x1.62e42fefa39efp-1
#define LN2_DD_LO 0x1.abc9e3b39803fp-56
/* Adding then subtracting 1.5*2^52 rounds a double of magnitude < 2^51 to
 * an integer (round to nearest). */
#define ROUND_MAGIC 0x1.8p52

/* |f''| = |2 sech^2(x) (1 - x tanh x)| <= 2: Newton error factor with a
 * factor 2 to spare. */
#define ABSTANH_NEWTON_C 2.0

/* Bounds on the fast paths' errors: tanh a within about 2^-50 relative
 * (expm1 polynomial 2^-54.4, Horner and reduction roundings, the division),
 * with margin; the exhaustive verifier confirms every result. */
#define ABSTANH_FWD_ERR 0x1p-45
#define ABSTANH_INV_ERR_X 0x1p-50
#define ABSTANH_INV_ERR_F 0x1p-46
#define ABSTANH_INV_ERR_D 0x1p-40

/* tanh(a) in double for 0 <= a <= 9, relative error below 2^-48. */
static double abstanh_tanh(double a)
{
    double z = -2.0 * a;
    double k = (z * INV_LN2 + ROUND_MAGIC) - ROUND_MAGIC;
    double r = (z - k * LN2_HI) - k * LN2_LO;
    double em = r + r * (r * invdl_horner(EXPM1_P, 10, r));
    double scale = ldexp(1.0, (int)k);
    em = scale * em + (scale - 1.0);
    return -em / (2.0 + em);
}

/* expm1(r) for |r| <= 0.35 in double-double, nested Taylor series
 * r (1 + r/2 (1 + r/3 (...))); 27 levels leave a remainder below
 * 0.35^28/28! < 2^-150. */
static dd abstanh_expm1_dd(dd r)
{
    dd t = dd_make(1.0, 0.0);
    for (int n = 28; n >= 2; n--)
        t = dd_add_d(dd_div_d(dd_mul(t, r), (double)n), 1.0);
    return dd_mul(t, r);
}

/* x*tanh(x) in double-double for 0 <= x <= 9 with 2x exact. */
dd invdl_abstanh_exact(double x)
{
    double z = -2.0 * x;
    double k = (z * INV_LN2 + ROUND_MAGIC) - ROUND_MAGIC;
    dd r = dd_add(dd_make(z, 0.0), dd_neg(dd_mul_d(dd_make(LN2_DD_HI, LN2_DD_LO), k)));
    dd em = abstanh_expm1_dd(r);
    double scale = ldexp(1.0, (int)k);
    em = dd_add_d(dd_make(em.hi * scale, em.lo * scale), scale - 1.0);
    dd t = dd_div(dd_neg(em), dd_add_d(em, 2.0));
    return dd_mul_d(t, x);
}

float invdl_abstanh_forward1(float x)
{
    double a = fabs((double)x);
    if (!(a < ABSTANH_FWD_IDENTITY))
        return x; /* identity, ±inf, NaN */
    double p = a * abstanh_tanh(a);
    invdl_rounding r = invdl_round_candidates(p, p * ABSTANH_FWD_ERR);
    float res = r.lo;
    if (r.lo != r.hi)
        res = dd_cmp_d(invdl_abstanh_exact(a), r.mid) > 0 ? r.hi : r.lo;
    return copysignf(res, x);
}

float invdl_abstanh_inverse1(float y)
{
    double a = fabs((double)y);
    if (!(a < ABSTANH_INV_IDENTITY) || a == 0.0)
        return y; /* identity, ±inf, NaN, ±0 */
    double t = sqrt(a);
    int piece = (int)(t * (8.0 / ABSTANH_H_TOP));
    if (piece > 7)
        piece = 7;
    double x0 = t * invdl_horner(ABSTANH_H[piece], 7, t - piece * (ABSTANH_H_TOP / 8.0));
    double th = abstanh_tanh(x0);
    double residual = x0 * th - a;
    double inv_fp = 1.0 / (th + x0 * (1.0 - th * th));
    double step = residual * inv_fp;
    double x1 = x0 - step;
    double err = ABSTANH_INV_ERR_X * x1 + ABSTANH_INV_ERR_D * fabs(step) +
                 (ABSTANH_INV_ERR_F * a + ABSTANH_NEWTON_C * step * step) * inv_fp;
    invdl_rounding r = invdl_round_candidates(x1, err);
    float res = r.lo;
    if (r.lo != r.hi) /* f increasing: f(mid) > a puts the root below mid */
        res = dd_cmp_d(invdl_abstanh_exact(r.mid), a) > 0 ? r.lo : r.hi;
    return copysignf(res, y);
}

invdl_status invdl_abstanh_forward_scalar(size_t n, const float *x, float *y)
{
    if (invdl_bad_arrays(n, x, y))
        return INVDL_EINVAL;
    for (size_t i = 0; i < n; i++)
        y[i] = invdl_abstanh_forward1(x[i]);
    return INVDL_OK;
}

invdl_status invdl_abstanh_inverse_scalar(size_t n, const float *y, float *x)
{
    if (invdl_bad_arrays(n, y, x))
        return INVDL_EINVAL;
    for (size_t i = 0; i < n; i++)
        x[i] = invdl_abstanh_inverse1(y[i]);
    return INVDL_OK;
}
