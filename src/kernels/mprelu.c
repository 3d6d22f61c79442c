/*
 * mprelu.c - monotonic PReLU, y = x (x >= 0), a*x (x < 0), and its inverse.
 *
 * a = max(|alpha|, alpha_min) per column.  The forward is the single float
 * product a*x and the inverse the single float quotient y/a.  The scalar path
 * computes the slopes per call for chunks of columns on the stack, which
 * leaves the row loop free of branches; the SIMD path is described below.
 */
#include "kernels.h"
#include "simd_x86.h"

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

/* The SIMD paths compute exactly what the scalar loops do, lane by lane:
 * the product a*x and the IEEE quotient y/a (vdivps rounds like divss),
 * blended on the input's sign bit. */

INVDL_AVX2 static inline __m256 mprelu_fwd8(__m256 v, __m256 a)
{
    return _mm256_blendv_ps(v, _mm256_mul_ps(a, v), v);
}

INVDL_AVX2 static inline __m256 mprelu_inv8(__m256 v, __m256 a)
{
    return _mm256_blendv_ps(v, _mm256_div_ps(v, a), v);
}

INVDL_AVX2 static int mprelu_bad_alpha_avx2(size_t n, const float *alpha)
{
    __m256 bad = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) /* |alpha| > FLT_MAX, or NaN */
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(invdl_abs_ps(_mm256_loadu_ps(alpha + j)),
                                              _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ));
    return _mm256_movemask_ps(bad) != 0 || mprelu_bad_alpha(n - j, alpha + j);
}

/* max(|alpha|, alpha_min) for 8 columns, as mprelu_slope(). */
INVDL_AVX2 static inline __m256 mprelu_slope8(const float *alpha, __m256 alpha_min)
{
    return _mm256_max_ps(invdl_abs_ps(_mm256_loadu_ps(alpha)), alpha_min);
}

/* Narrow rows (cols <= 64) run as one flat array against a pattern of whole
 * rows of slopes: 8 * ceil(32 / cols) rows, at least 256 floats, at most
 * 512 (for cols <= 32, cols * ceil(32 / cols) < 32 + cols <= 64; above,
 * 8 * cols), and a multiple of 8, so every vector lines up with its columns
 * and the loop runs long stretches without per-row overhead.  The pattern is built
 * for at most as many rows as the array has, doubling by copies; an array
 * with fewer rows runs in one stretch, whatever its length. */
#define MPRELU_PATTERN_COLS 64
#define MPRELU_PATTERN_MAX 512

INVDL_AVX2 static void mprelu_run_pattern(size_t rows, size_t cols, const float *alpha,
                                          float alpha_min, const float *in, float *out,
                                          int inverse)
{
    _Alignas(32) float pattern[MPRELU_PATTERN_MAX];
    size_t reps = 8 * ((32 + cols - 1) / cols);
    size_t period = cols * (rows < reps ? rows : reps);
    size_t j = 0;
    for (; j + 8 <= cols; j += 8)
        _mm256_storeu_ps(pattern + j, mprelu_slope8(alpha + j, _mm256_set1_ps(alpha_min)));
    for (; j < cols; j++)
        pattern[j] = mprelu_slope(alpha[j], alpha_min);
    for (size_t have = cols; have < period; have *= 2)
        memcpy(pattern + have, pattern, (period - have < have ? period - have : have) * sizeof *pattern);
    size_t n = rows * cols;
    for (size_t base = 0; base < n; base += period) {
        size_t len = n - base < period ? n - base : period;
        const float *src = in + base;
        float *dst = out + base;
        size_t k = 0;
        if (inverse) {
            _Pragma("GCC unroll 4") for (; k + 8 <= len; k += 8)
                _mm256_storeu_ps(dst + k, mprelu_inv8(_mm256_loadu_ps(src + k),
                                                      _mm256_loadu_ps(pattern + k)));
            for (; k < len; k++)
                dst[k] = mprelu_inv1(src[k], pattern[k]);
        } else {
            _Pragma("GCC unroll 4") for (; k + 8 <= len; k += 8)
                _mm256_storeu_ps(dst + k, mprelu_fwd8(_mm256_loadu_ps(src + k),
                                                      _mm256_loadu_ps(pattern + k)));
            for (; k < len; k++)
                dst[k] = mprelu_fwd1(src[k], pattern[k]);
        }
    }
}

/* Wide rows run row by row, computing each vector's slopes from alpha on
 * the fly: two operations that cost less than a pass over a slope buffer,
 * which a single long row would otherwise pay in full. */
INVDL_AVX2 static void mprelu_run_avx2(size_t rows, size_t cols, const float *alpha,
                                       float alpha_min, const float *in, float *out, int inverse)
{
    if (cols <= MPRELU_PATTERN_COLS) {
        mprelu_run_pattern(rows, cols, alpha, alpha_min, in, out, inverse);
        return;
    }
    const __m256 amin = _mm256_set1_ps(alpha_min);
    for (size_t i = 0; i < rows; i++) {
        const float *src = in + i * cols;
        float *dst = out + i * cols;
        size_t j = 0;
        if (inverse) {
            _Pragma("GCC unroll 4") for (; j + 8 <= cols; j += 8)
                _mm256_storeu_ps(dst + j, mprelu_inv8(_mm256_loadu_ps(src + j),
                                                      mprelu_slope8(alpha + j, amin)));
            for (; j < cols; j++)
                dst[j] = mprelu_inv1(src[j], mprelu_slope(alpha[j], alpha_min));
        } else {
            _Pragma("GCC unroll 4") for (; j + 8 <= cols; j += 8)
                _mm256_storeu_ps(dst + j, mprelu_fwd8(_mm256_loadu_ps(src + j),
                                                      mprelu_slope8(alpha + j, amin)));
            for (; j < cols; j++)
                dst[j] = mprelu_fwd1(src[j], mprelu_slope(alpha[j], alpha_min));
        }
    }
}

INVDL_AVX2 invdl_status invdl_mprelu_forward_avx2(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *x, float *y)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, x, y, &n, mprelu_bad_alpha_avx2))
        return INVDL_EINVAL;
    if (n > 0)
        mprelu_run_avx2(rows, cols, alpha, alpha_min, x, y, 0);
    return INVDL_OK;
}

INVDL_AVX2 invdl_status invdl_mprelu_inverse_avx2(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *y, float *x)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, y, x, &n, mprelu_bad_alpha_avx2))
        return INVDL_EINVAL;
    if (n > 0)
        mprelu_run_avx2(rows, cols, alpha, alpha_min, y, x, 1);
    return INVDL_OK;
}

#endif /* INVDL_HAVE_AVX2 */
