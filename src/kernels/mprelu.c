/*
 * mprelu.c - monotonic PReLU, y = x (x >= 0), a*x (x < 0), and its inverse.
 *
 * a = max(|alpha|, alpha_min) per column.  The forward is the single float
 * product a*x and the inverse the single float quotient y/a.  The scalar path
 * computes the slopes per call for chunks of columns on the stack, which
 * leaves the row loop free of branches; the SIMD paths are described in
 * mprelu_simd.h.
 */
#include "kernels/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MPRELU_CHUNK 256

/* Nonzero if any of the n alphas is not finite. */
static int mprelu_bad_alpha(size_t n, const float *alpha)
{
    int bad = 0;
    for (size_t j = 0; j < n; j++)
        bad |= !(fabsf(alpha[j]) <= FLT_MAX);
    return bad;
}

/* Validates the arguments and stores rows*cols in *n; bad_alpha checks the
 * alphas (each path passes its fastest way to). */
static int mprelu_bad_args(size_t rows, size_t cols, const float *alpha, float alpha_min,
                           const float *in, const float *out, size_t *n_out,
                           int (*bad_alpha)(size_t n, const float *alpha))
{
    size_t n = 0;
    *n_out = 0;
    if (!invdl_mul_size(rows, cols, &n) || invdl_bad_arrays(n, in, out))
        return 1;
    if (!(alpha_min > 0.0f) || !isfinite(alpha_min))
        return 1;
    if (n == 0)
        return 0;
    if (alpha == NULL)
        return 1;
    if (bad_alpha(cols, alpha))
        return 1;
    *n_out = n;
    return 0;
}

static float mprelu_slope(float alpha, float alpha_min)
{
    float a = fabsf(alpha);
    return a > alpha_min ? a : alpha_min;
}

/* The negative branch is chosen by the sign bit: a*(-0) is -0 anyway, and a
 * NaN stays a NaN either way; testing the sign alone lets the SIMD paths
 * blend on it directly, with the same results. */
static inline float mprelu_fwd1(float v, float a)
{
    return signbit(v) ? a * v : v;
}

static inline float mprelu_inv1(float v, float a)
{
    return signbit(v) ? v / a : v;
}

invdl_status invdl_mprelu_forward_scalar(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *x, float *y)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, x, y, &n, mprelu_bad_alpha))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    float slope[MPRELU_CHUNK];
    for (size_t j0 = 0; j0 < cols; j0 += MPRELU_CHUNK) {
        size_t width = cols - j0 < MPRELU_CHUNK ? cols - j0 : MPRELU_CHUNK;
        for (size_t j = 0; j < width; j++)
            slope[j] = mprelu_slope(alpha[j0 + j], alpha_min);
        for (size_t i = 0; i < rows; i++) {
            const float *xr = x + i * cols + j0;
            float *yr = y + i * cols + j0;
            for (size_t j = 0; j < width; j++) {
                float v = xr[j];
                yr[j] = mprelu_fwd1(v, slope[j]);
            }
        }
    }
    return INVDL_OK;
}

invdl_status invdl_mprelu_inverse_scalar(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *y, float *x)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, y, x, &n, mprelu_bad_alpha))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    float slope[MPRELU_CHUNK];
    for (size_t j0 = 0; j0 < cols; j0 += MPRELU_CHUNK) {
        size_t width = cols - j0 < MPRELU_CHUNK ? cols - j0 : MPRELU_CHUNK;
        for (size_t j = 0; j < width; j++)
            slope[j] = mprelu_slope(alpha[j0 + j], alpha_min);
        for (size_t i = 0; i < rows; i++) {
            const float *yr = y + i * cols + j0;
            float *xr = x + i * cols + j0;
            for (size_t j = 0; j < width; j++) {
                float v = yr[j];
                xr[j] = mprelu_inv1(v, slope[j]);
            }
        }
    }
    return INVDL_OK;
}

#if INVDL_HAVE_AVX2
/* The SIMD paths (mprelu_simd.h) run rows of up to this many columns
 * against a pattern of slopes. */
#define MPRELU_PATTERN_COLS 64

#define INVDL_SIMD_BODIES "kernels/mprelu_simd.h"
#include "kernels/simd_paths.h"
#endif /* INVDL_HAVE_AVX2 */
