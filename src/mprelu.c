/*
 * mprelu.c - monotonic PReLU, y = x (x >= 0), a*x (x < 0), and its inverse.
 *
 * a = max(|alpha|, alpha_min) per column.  The forward is the single float
 * product a*x and the inverse the single float quotient y/a.  The slopes are
 * computed per call for chunks of columns on the stack, which leaves the row
 * loop free of branches.
 */
#include "kernels.h"

#include <math.h>

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
