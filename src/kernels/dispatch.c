/*
 * dispatch.c - the public kernels: each picks the fastest path this CPU
 * runs.  Every path returns identical results (tests/test_paths.c checks
 * it), so the choice is invisible except in speed.
 */
#include "kernels.h"

#if INVDL_HAVE_AVX2
/* AVX2 and FMA, asked of the CPU each call: __builtin_cpu_supports() reads
 * flags the runtime filled in at startup, so this costs a load and leaves
 * the library without state of its own. */
static int have_avx2_fma(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

#if INVDL_HAVE_AVX2
#define INVDL_DISPATCH(name, ...) \
    (have_avx2_fma() ? name##_avx2(__VA_ARGS__) : name##_scalar(__VA_ARGS__))
#else
#define INVDL_DISPATCH(name, ...) name##_scalar(__VA_ARGS__)
#endif

invdl_status invdl_ssin_forward(size_t n, const float *x, float *y)
{
    return INVDL_DISPATCH(invdl_ssin_forward, n, x, y);
}

invdl_status invdl_ssin_inverse(size_t n, const float *y, float *x)
{
    return INVDL_DISPATCH(invdl_ssin_inverse, n, y, x);
}

invdl_status invdl_abstanh_forward(size_t n, const float *x, float *y)
{
    return INVDL_DISPATCH(invdl_abstanh_forward, n, x, y);
}

invdl_status invdl_abstanh_inverse(size_t n, const float *y, float *x)
{
    return INVDL_DISPATCH(invdl_abstanh_inverse, n, y, x);
}

invdl_status invdl_mprelu_forward(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *x, float *y)
{
    return INVDL_DISPATCH(invdl_mprelu_forward, rows, cols, alpha, alpha_min, x, y);
}

invdl_status invdl_mprelu_inverse(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *y, float *x)
{
    return INVDL_DISPATCH(invdl_mprelu_inverse, rows, cols, alpha, alpha_min, y, x);
}
