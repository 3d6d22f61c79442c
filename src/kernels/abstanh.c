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
#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>

#define ABSTANH_FWD_IDENTITY 0x1.169cfep+3
#define ABSTANH_INV_IDENTITY 0x1.169cfcp+3

/* Coefficients from tests/tools/coefficients.py. */

/* expm1(r)/r = 1 + r*P(r), |r| <= ln2/2 (kernels.h): log2 rel err -48.3 */
const double invdl_expm1_p[9] = {
    0x1.0000000000000p-1,
    0x1.5555555553b7dp-3,
    0x1.5555555554cb8p-5,
    0x1.1111111c45d5bp-7,
    0x1.6c16c1738ecf7p-10,
    0x1.a019adabfb6abp-13,
    0x1.a019c9ab213aap-16,
    0x1.72c720b2e07bfp-19,
    0x1.28803926c8ea8p-22,
};
#define EXPM1_P invdl_expm1_p

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

/* ln 2 as a double-double for the exact path (the reduction's LN2_HI,
 * LN2_LO, INV_LN2 and ROUND_MAGIC are kernels.h's). */
#define LN2_DD_HI 0x1.62e42fefa39efp-1
#define LN2_DD_LO 0x1.abc9e3b39803fp-56

/* |f''| = |2 sech^2(x) (1 - x tanh x)| <= 2: Newton error factor with a
 * factor 2 to spare. */
#define ABSTANH_NEWTON_C 2.0

/* Bounds on the fast paths' errors: tanh a within about 2^-47 relative
 * (expm1 polynomial 2^-48.3, doubled by tanh's condition, plus Horner,
 * reduction and division roundings; 2^-46 on the AVX-512 path, see
 * EXP2_16), with margin; the exhaustive verifier confirms every result. */
#define ABSTANH_FWD_ERR 0x1p-44
#define ABSTANH_INV_ERR_X 0x1p-50
#define ABSTANH_INV_ERR_F 0x1p-44
#define ABSTANH_INV_ERR_D 0x1p-40

/* tanh(a) in double for 0 <= a <= 9, relative error below 2^-46. */
static double abstanh_tanh(double a)
{
    double z = -2.0 * a;
    double k = (z * INV_LN2 + ROUND_MAGIC) - ROUND_MAGIC;
    double r = (z - k * LN2_HI) - k * LN2_LO;
    double em = r + r * (r * invdl_horner(EXPM1_P, 9, r));
    double scale = ldexp(1.0, (int)k);
    em = scale * em + (scale - 1.0);
    return -em / (2.0 + em);
}

/* expm1(r) for |r| <= 0.35 in double-double, nested Taylor series
 * r (1 + r/2 (1 + r/3 (...))); 27 levels leave a remainder below
 * 0.35^28/28! < 2^-140. */
static dd abstanh_expm1_dd(dd r)
{
    dd t = dd_make(1.0, 0.0);
    for (int n = 28; n >= 2; n--)
        t = dd_add_d(dd_div_d(dd_mul(t, r), (double)n), 1.0);
    return dd_mul(t, r);
}

/* x*tanh(x) in double-double for 0 <= x <= 9 with x*x exact. */
dd invdl_abstanh_exact(double x)
{
    /* Below 2^-26, x tanh x = x^2 (1 - x^2/3 + ...) with x^2 exact and the
     * next term under half an ulp of it: kept as the low part, it decides
     * the ties where x^2 is a rounding midpoint (the series below would lose
     * it to double-double's precision). */
    if (x < 0x1p-26) {
        double u = x * x;
        return dd_make(u, -(u * u) / 3.0);
    }
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

#if INVDL_HAVE_AVX2

/* The SIMD paths (abstanh_simd.h): the same algorithms; the inverse's
 * starting point and the factor of its Newton step come from float pieces
 * looked up with a lane permute.  Coefficients from
 * tests/tools/coefficients.py. */

/* ABSTANH_H for float evaluation, transposed: [coefficient][piece]; log2 abs
 * err -23.1 */
static const float ABSTANH_H_F[7][8] = {
    {0x1p+0f, 0x1.05fd66p+0f, 0x1.19d5f2p+0f, 0x1.4172bap+0f, 0x1.838e7cp+0f, 0x1.da985ep+0f,
     0x1.1c3094p+1f, 0x1.4b856p+1f},
    {0x1.be3b54p-26f, 0x1.098baap-3f, 0x1.3325fp-2f, 0x1.1a53dcp-1f, 0x1.ab3b5ep-1f,
     0x1.f2827p-1f, 0x1.feff86p-1f, 0x1.fff5eap-1f},
    {0x1.5554c2p-3f, 0x1.8a9082p-3f, 0x1.1cf9e6p-2f, 0x1.94fb9ap-2f, 0x1.40e9fcp-2f,
     0x1.485a6cp-4f, 0x1.fac66cp-8f, 0x1.7f7d28p-12f},
    {0x1.1fa7ap-16f, 0x1.8e97fcp-5f, 0x1.b10b9p-4f, 0x1.00d2cap-4f, -0x1.b5093cp-3f,
     -0x1.1d3884p-3f, -0x1.32d468p-6f, -0x1.1a99b8p-10f},
    {0x1.f29ac2p-6f, 0x1.1da69cp-5f, 0x1.dc96d8p-6f, -0x1.9bad98p-4f, -0x1.30376ap-3f,
     0x1.22517ap-3f, 0x1.e802dep-6f, 0x1.11130cp-9f},
    {0x1.be91f6p-12f, 0x1.890f62p-7f, -0x1.4778a6p-7f, -0x1.07539cp-2f, 0x1.609dbcp-2f,
     -0x1.2d0662p-4f, -0x1.e392d6p-6f, -0x1.41a81ep-9f},
    {0x1.6abb12p-9f, -0x1.632ec8p-7f, -0x1.17c0c8p-4f, 0x1.bdd0bp-3f, -0x1.6394eap-3f,
     0x1.53c59ep-7f, 0x1.c8beecp-7f, 0x1.5c58aep-10f},
};

/* 1/(f'(x) D(x)) with D(x) = 1 + e^(-2x), times 2t, for x*tanh(x) = t^2,
 * float, transposed: [coefficient][piece]; log2 rel err -22.9 with the
 * coefficients exact, -22.5 evaluated in float as below.  D is the
 * denominator of tanh x = -em/D, em = expm1(-2x): with it folded in here,
 * the Newton step needs no division (see abstanh_inverse_half()). */
static const float ABSTANH_G_F[7][8] = {
    {0x1p-1f, 0x1.756e78p-1f, 0x1.1b256p+0f, 0x1.c268bp+0f, 0x1.5bea3p+1f, 0x1.d35e3cp+1f,
     0x1.1be1c8p+2f, 0x1.4b81dap+2f},
    {0x1.000008p-1f, 0x1.8b8602p-1f, 0x1.535c04p+0f, 0x1.1f953ap+1f, 0x1.5e18b4p+1f,
     0x1.227874p+1f, 0x1.0426bep+1f, 0x1.003becp+1f},
    {0x1.fffa4p-3f, 0x1.08e71ep-1f, 0x1.048c5ep+0f, 0x1.4ce5dap+0f, -0x1.d4165ep-3f,
     -0x1.3479cep-1f, -0x1.c55d92p-4f, -0x1.035bc4p-7f},
    {0x1.55ae86p-3f, 0x1.59ff78p-2f, 0x1.1020c6p-1f, -0x1.a994e6p-2f, -0x1.9f04b6p+0f,
     0x1.1d30e4p-1f, 0x1.c928f4p-3f, 0x1.599d82p-6f},
    {0x1.33ea3p-4f, 0x1.117216p-3f, 0x1.110a1p-5f, -0x1.918c88p+0f, 0x1.afcb4p+0f,
     0x1.a9c88cp-3f, -0x1.219dd2p-2f, -0x1.2e4c18p-5f},
    {0x1.332a62p-5f, 0x1.d25ac6p-4f, -0x1.9d9eccp-2f, -0x1.e90aep-1f, 0x1.29fbc2p+0f,
     -0x1.ec8d6cp-1f, 0x1.b68f5ep-3f, 0x1.465134p-5f},
    {0x1.83b6f8p-8f, -0x1.32b6e2p-3f, -0x1.da008cp-2f, 0x1.40c8dcp+1f, -0x1.f76dcap+0f,
     0x1.5bae54p-1f, -0x1.34ba9ap-4f, -0x1.4a2096p-6f},
};

/* The SIMD inverse's error bound, a priori, relative to x0 (proof sketch):
 * the starting point is within K = 2^-20 (relative) of the root x (the
 * pieces' 2^-23.1, an approximate square root at 2^-22, float roundings),
 * and g = 1/(f' D) at the root within 2^-20 (the pieces' 2^-22.5 as
 * evaluated; the approximate 1/sqrt, which gives both t and the factor 1/t,
 * enters amplified up to 2.55 times: 2^-20.8 measured at worst over the
 * floats used).  The step is N g with N = D(x0) (f(x0) - a) computed as
 * -x0 em - a D(x0), so its factor D(x0) g stands for 1/f'(x) within
 * 2^-20 + 0.28 K (|x D'/D| = 2x/(e^(2x) + 1) <= 0.28).  After the step,
 *   |x1 - x| <= x0 (2^-51 + 1.28 2^-20 K)    roundings, the factor's error
 *             + 2^-44 a/f'                    N's error (em's, 2^-47 of a D)
 *             + 2 (K x0)^2 / f'               Newton's quadratic term (|f''| <= 2)
 * and a/(x0 f') = tanh(x)/f' <= 1, x0/f' <= 2 x0 g (D <= 2).  In ulps of
 * double (2^-53 x0 at least): m = 1.5 2^13 + 2^9 + 2^15 x0 g.  The exhaustive
 * verifier confirms every result this path returns. */
#define ABSTANH_M0 (0x1p13f + 0x1p12f + 0x1p9f)
#define ABSTANH_M_X0 0x1p15f

#if INVDL_HAVE_AVX512
/* The AVX-512 path's exponential reduces by ln2/16 and looks 2^(j/16) up:
 * the table holds the bits of the double nearest 2^(j/16) less j << 48, so
 * that adding N << 48 for N = 16k + j multiplies by 2^k too.  Its error,
 * 2^-53 of the scale, is amplified where em = scale e^r - 1 cancels: at
 * worst 46 times (N = -1, |em| >= 0.0214), so em is within 2^-47.1
 * relative with the polynomial's 2^-49.5 and the roundings, and tanh a
 * within 2^-46 (in the bound ABSTANH_FWD_ERR), and the inverse's N within
 * 2^-47 of a D as its bound assumes.  From tests/tools/coefficients.py. */

/* expm1(r)/r = 1 + r*P(r), |r| <= ln2/32: log2 rel err -49.5 */
static const double EXPM1_P16[5] = {
    0x1.0000000000000p-1,
    0x1.55555554dd44dp-3,
    0x1.55555555194d2p-5,
    0x1.11120af701debp-7,
    0x1.6c17bb51f236dp-10,
};

static const uint64_t EXP2_16[16] = {
    0x3ff0000000000000u, /* 2^(0/16) */
    0x3fefb5586cf9890fu, /* 2^(1/16) */
    0x3fef72b83c7d517bu, /* 2^(2/16) */
    0x3fef387a6e756238u, /* 2^(3/16) */
    0x3fef06fe0a31b715u, /* 2^(4/16) */
    0x3feedea64c123422u, /* 2^(5/16) */
    0x3feebfdad5362a27u, /* 2^(6/16) */
    0x3feeab07dd485429u, /* 2^(7/16) */
    0x3feea09e667f3bcdu, /* 2^(8/16) */
    0x3feea11473eb0187u, /* 2^(9/16) */
    0x3feeace5422aa0dbu, /* 2^(10/16) */
    0x3feec49182a3f090u, /* 2^(11/16) */
    0x3feee89f995ad3adu, /* 2^(12/16) */
    0x3fef199bdd85529cu, /* 2^(13/16) */
    0x3fef5818dcfba487u, /* 2^(14/16) */
    0x3fefa4afa2a490dau, /* 2^(15/16) */
};
#endif

#define INVDL_SIMD_BODIES "kernels/abstanh_simd.h"
#include "kernels/simd_paths.h"

#endif /* INVDL_HAVE_AVX2 */
