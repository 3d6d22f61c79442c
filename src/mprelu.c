/*
 * mprelu.c - monotonic PReLU, y = x (x >= 0), a*x (x < 0), and its inverse.
 *
 * a = max(|alpha|, alpha_min) per column.  The forward is the single float
 * product a*x and the inverse the single float quotient y/a.  The slopes are
 * computed per call for chunks of columns on the stack, which leaves the row
 * loop free of branches.
 */
#include "kernels.h"
#include "simd_x86.h"

#include <math.h>
#include <string.h>

#define MPRELU_CHUNK 256

/* Validates the arguments and stores rows*cols in *n. */
static int mprelu_bad_args(size_t rows, size_t cols, const float *alpha, float alpha_min,
                           const float *in, const float *out, size_t *n_out)
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
    for (size_t j = 0; j < cols; j++)
        if (!isfinite(alpha[j]))
            return 1;
    *n_out = n;
    return 0;
}

static float mprelu_slope(float alpha, float alpha_min)
{
    float a = fabsf(alpha);
    return a > alpha_min ? a : alpha_min;
}

invdl_status invdl_mprelu_forward_scalar(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *x, float *y)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, x, y, &n))
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
                yr[j] = v < 0.0f ? slope[j] * v : v;
            }
        }
    }
    return INVDL_OK;
}

invdl_status invdl_mprelu_inverse_scalar(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *y, float *x)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, y, x, &n))
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
                xr[j] = v < 0.0f ? v / slope[j] : v;
            }
        }
    }
    return INVDL_OK;
}

#if INVDL_HAVE_AVX2

/* The SIMD paths compute exactly what the scalar loops do, lane by lane:
 * the product a*x and the IEEE quotient y/a (vdivps rounds like divss), with
 * x < 0 tested by an ordered compare so that -0 and NaN pass through. */

INVDL_AVX2 static inline __m256 mprelu_fwd8(__m256 v, __m256 a)
{
    __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(v, _mm256_mul_ps(a, v), neg);
}

INVDL_AVX2 static inline __m256 mprelu_inv8(__m256 v, __m256 a)
{
    __m256 neg = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(v, _mm256_div_ps(v, a), neg);
}

static inline float mprelu_fwd1(float v, float a)
{
    return v < 0.0f ? a * v : v;
}

static inline float mprelu_inv1(float v, float a)
{
    return v < 0.0f ? v / a : v;
}

/* Narrow arrays (cols <= MPRELU_PATTERN_COLS) run as one flat array against
 * a pattern of 8 rows of slopes: its length is a multiple of both 8 and cols,
 * so every vector lines up with its columns.  Wide ones run row by row. */
#define MPRELU_PATTERN_COLS 64

INVDL_AVX2 static void mprelu_run_avx2(size_t rows, size_t cols, const float *alpha,
                                       float alpha_min, const float *in, float *out, int inverse)
{
    size_t n = rows * cols;
    if (cols <= MPRELU_PATTERN_COLS) {
        float pattern[8 * MPRELU_PATTERN_COLS];
        size_t period = 8 * cols;
        for (size_t j = 0; j < cols; j++)
            pattern[j] = mprelu_slope(alpha[j], alpha_min);
        for (size_t row = 1; row < 8; row++)
            memcpy(pattern + row * cols, pattern, cols * sizeof *pattern);
        for (size_t base = 0; base < n; base += period) {
            size_t len = n - base < period ? n - base : period;
            size_t k = 0;
            if (inverse) {
                _Pragma("GCC unroll 4") for (; k + 8 <= len; k += 8)
                    _mm256_storeu_ps(out + base + k, mprelu_inv8(_mm256_loadu_ps(in + base + k),
                                                                 _mm256_loadu_ps(pattern + k)));
                for (; k < len; k++)
                    out[base + k] = mprelu_inv1(in[base + k], pattern[k]);
            } else {
                _Pragma("GCC unroll 4") for (; k + 8 <= len; k += 8)
                    _mm256_storeu_ps(out + base + k, mprelu_fwd8(_mm256_loadu_ps(in + base + k),
                                                                 _mm256_loadu_ps(pattern + k)));
                for (; k < len; k++)
                    out[base + k] = mprelu_fwd1(in[base + k], pattern[k]);
            }
        }
        return;
    }
    float slope[MPRELU_CHUNK];
    for (size_t j0 = 0; j0 < cols; j0 += MPRELU_CHUNK) {
        size_t width = cols - j0 < MPRELU_CHUNK ? cols - j0 : MPRELU_CHUNK;
        for (size_t j = 0; j < width; j++)
            slope[j] = mprelu_slope(alpha[j0 + j], alpha_min);
        for (size_t i = 0; i < rows; i++) {
            const float *src = in + i * cols + j0;
            float *dst = out + i * cols + j0;
            size_t j = 0;
            if (inverse) {
                _Pragma("GCC unroll 4") for (; j + 8 <= width; j += 8)
                    _mm256_storeu_ps(dst + j, mprelu_inv8(_mm256_loadu_ps(src + j),
                                                          _mm256_loadu_ps(slope + j)));
                for (; j < width; j++)
                    dst[j] = mprelu_inv1(src[j], slope[j]);
            } else {
                _Pragma("GCC unroll 4") for (; j + 8 <= width; j += 8)
                    _mm256_storeu_ps(dst + j, mprelu_fwd8(_mm256_loadu_ps(src + j),
                                                          _mm256_loadu_ps(slope + j)));
                for (; j < width; j++)
                    dst[j] = mprelu_fwd1(src[j], slope[j]);
            }
        }
    }
}

INVDL_AVX2 invdl_status invdl_mprelu_forward_avx2(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *x, float *y)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, x, y, &n))
        return INVDL_EINVAL;
    if (n > 0)
        mprelu_run_avx2(rows, cols, alpha, alpha_min, x, y, 0);
    return INVDL_OK;
}

INVDL_AVX2 invdl_status invdl_mprelu_inverse_avx2(size_t rows, size_t cols, const float *alpha,
                                                  float alpha_min, const float *y, float *x)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, y, x, &n))
        return INVDL_EINVAL;
    if (n > 0)
        mprelu_run_avx2(rows, cols, alpha, alpha_min, y, x, 1);
    return INVDL_OK;
}

#endif /* INVDL_HAVE_AVX2 */
