/*
 * conditioner.c - the coupling layer's elementwise arithmetic in double
 * (layers/coupling.c): the hidden units' tanh, and the soft-clamped scale
 * s = 2 tanh(r/2) with exp(s) or exp(-s).
 *
 * Every path runs one algorithm in separate IEEE multiplications,
 * additions, one division and bit operations, in the same order: this
 * file is built with -ffp-contract=off (src/meson.build) and the SIMD
 * paths (conditioner_simd.h) call no FMA.  So the scalar, AVX2 and
 * AVX-512 paths give the same bits (tests/test_paths.c checks it), and a
 * coupling layer computes the same s and t wherever it runs.
 *
 *   expm1 and exp   z = k ln2 + r, |r| <= ln2/2 (kernels.h's reduction),
 *                   em = expm1(r) = r + r (r P(r)), 2^k from k's bits;
 *                   expm1(z) = 2^k em + (2^k - 1), exp(z) = 2^k em + 2^k.
 *   tanh v          a = min(|v|, 20) (tanh a rounds to 1 in double from
 *                   about 19.06 on), e = expm1(-2a), tanh a = e / (-2 - e),
 *                   free of cancellation (abs-tanh's forward, abstanh.c);
 *                   the sign of v put back by its bit.
 * Relative errors: about 2^-47 for tanh and exp (P's 2^-48.3, the
 * reduction and a few roundings; tests/test_paths.c measures them against
 * long double).  NaN gives NaN (the clamp keeps NaN: min(20, a) returns a
 * when a is NaN, as the SIMD minimum does), ±inf gives ±1.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

/* tanh(a) for a >= 20 rounds to 1 in double; the clamp keeps k >= -58 in
 * the reduction. */
#define TANH_CLAMP 20.0

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* expm1(r) of the reduced argument of z, |z| <= 2^51, and 2^k in *scale
 * (-1022 <= k <= 1023 for the results to hold: |z| <= 40 here). */
static double reduce(double z, double *scale)
{
    double kt = z * INV_LN2 + ROUND_MAGIC;
    double k = kt - ROUND_MAGIC;
    double r = (z - k * LN2_HI) - k * LN2_LO;
    *scale = from_bits((bits_of(kt) - bits_of(ROUND_MAGIC) + 1023u) << 52);
    return r + r * (r * invdl_horner(invdl_expm1_p, 9, r));
}

static double tanh1(double v)
{
    const uint64_t sign = UINT64_C(1) << 63;
    double a = fabs(v), scale;
    a = TANH_CLAMP < a ? TANH_CLAMP : a;
    double em = reduce(a * -2.0, &scale);
    em = scale * em + (scale - 1.0);
    double t = em / (-2.0 - em);
    return from_bits((bits_of(t) & ~sign) | (bits_of(v) & sign));
}

/* exp(z) for |z| <= 2 (and NaN). */
static double exp1(double z)
{
    double scale, em = reduce(z, &scale);
    return scale * em + scale;
}

static void scale1(double *r, double *e, int negate)
{
    double s = 2.0 * tanh1(0.5 * *r);
    *r = s;
    *e = exp1(negate ? 0.0 - s : s);
}

void invdl_tanh_pd_scalar(size_t n, double *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = tanh1(v[i]);
}

void invdl_soft_scale_scalar(size_t n, double *r, double *e, int negate)
{
    for (size_t i = 0; i < n; i++)
        scale1(&r[i], &e[i], negate);
}

#if INVDL_HAVE_AVX2
#define INVDL_SIMD_BODIES "kernels/conditioner_simd.h"
#include "kernels/simd_paths.h"
#endif
