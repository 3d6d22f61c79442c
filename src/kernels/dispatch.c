/*
 * dispatch.c - the public kernels: each takes the widest code path this
 * CPU runs.  Every path returns identical results (tests/test_paths.c and
 * the exhaustive verifier check it), so the choice is invisible except in
 * speed.
 */
#include "kernels/kernels.h"

/* The CPU's features are asked each call: __builtin_cpu_supports() reads
 * flags the runtime filled in at startup (after checking that the operating
 * system saves the vector registers), so this costs a few loads and leaves
 * the library without state of its own. */
static int runs_everywhere(void)
{
    return 1;
}

#if INVDL_HAVE_AVX2
static int have_avx2_fma(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

#if INVDL_HAVE_AVX512
static int have_avx512(void)
{
    return have_avx2_fma() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
}
#endif

#define INVDL_PATH(label, suffix, runs_fn)                  \
    {                                                       \
        .name = label,                                      \
        .runs = runs_fn,                                    \
        .ssin_forward = invdl_ssin_forward_##suffix,        \
        .ssin_inverse = invdl_ssin_inverse_##suffix,        \
        .abstanh_forward = invdl_abstanh_forward_##suffix,  \
        .abstanh_inverse = invdl_abstanh_inverse_##suffix,  \
        .mprelu_forward = invdl_mprelu_forward_##suffix,    \
        .mprelu_inverse = invdl_mprelu_inverse_##suffix,    \
        .tanh_pd = invdl_tanh_pd_##suffix,                  \
        .soft_scale = invdl_soft_scale_##suffix,            \
    }

static const invdl_kernel_path paths[] = {
    INVDL_PATH("scalar", scalar, runs_everywhere),
#if INVDL_HAVE_AVX2
    INVDL_PATH("AVX2", avx2, have_avx2_fma),
#endif
#if INVDL_HAVE_AVX512
    INVDL_PATH("AVX-512", avx512, have_avx512),
#endif
};

#define PATH_COUNT (sizeof paths / sizeof paths[0])

size_t invdl_kernel_path_count(void)
{
    return PATH_COUNT;
}

const invdl_kernel_path *invdl_kernel_path_at(size_t i)
{
    return i < PATH_COUNT ? &paths[i] : NULL;
}

const invdl_kernel_path *invdl_kernel_path_best(void)
{
    size_t i = PATH_COUNT - 1;
    while (i > 0 && !paths[i].runs())
        i--;
    return &paths[i];
}

invdl_status invdl_ssin_forward(size_t n, const float *x, float *y)
{
    return invdl_kernel_path_best()->ssin_forward(n, x, y);
}

invdl_status invdl_ssin_inverse(size_t n, const float *y, float *x)
{
    return invdl_kernel_path_best()->ssin_inverse(n, y, x);
}

invdl_status invdl_abstanh_forward(size_t n, const float *x, float *y)
{
    return invdl_kernel_path_best()->abstanh_forward(n, x, y);
}

invdl_status invdl_abstanh_inverse(size_t n, const float *y, float *x)
{
    return invdl_kernel_path_best()->abstanh_inverse(n, y, x);
}

invdl_status invdl_mprelu_forward(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *x, float *y)
{
    return invdl_kernel_path_best()->mprelu_forward(rows, cols, alpha, alpha_min, x, y);
}

invdl_status invdl_mprelu_inverse(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                  const float *y, float *x)
{
    return invdl_kernel_path_best()->mprelu_inverse(rows, cols, alpha, alpha_min, y, x);
}
