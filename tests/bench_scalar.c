/*
 * bench_scalar.c - the scalar glibc baselines: one libm call per element.
 *
 * Built with auto-vectorization off (tests/meson.build), and <math.h>
 * declares no SIMD variants without -ffast-math, so each element is one
 * call of glibc's scalar sinf or tanhf.  fabsf and the product are inlined.
 */
#include "bench_baselines.h"

#include <math.h>

void bench_abstanh_glibc_scalar(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]) * tanhf(x[i]);
}

void bench_ssin_glibc_scalar(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * sinf(fabsf(x[i]));
}
