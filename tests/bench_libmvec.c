/*
 * bench_libmvec.c - the glibc baselines vectorized through libmvec.
 *
 * glibc's <math.h> declares its vector variants only under -ffast-math.
 * Declaring sinf and tanhf here with GCC's simd attribute instead tells the
 * vectorizer that glibc provides the variants of the x86-64 vector ABI, so
 * at -O3 -mavx2 -mfma (tests/meson.build) GCC calls _ZGVdN8v_sinf and
 * _ZGVdN8v_tanhf on 8 floats at a time, keeping IEEE semantics otherwise.
 * (glibc has had sinf in libmvec since 2.22 and tanhf since 2.35.)  Loop
 * distribution is off so that the copy loop stays a loop, not a memcpy call.
 *
 * The file is built only by GCC for x86-64 and must only be called on CPUs
 * with AVX2 and FMA: the driver checks before calling.
 */
#include "bench_baselines.h"

float sinf(float x) __attribute__((__simd__("notinbranch")));
float tanhf(float x) __attribute__((__simd__("notinbranch")));

void bench_abstanh_libmvec(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = __builtin_fabsf(x[i]) * tanhf(x[i]);
}

void bench_ssin_libmvec(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * sinf(__builtin_fabsf(x[i]));
}

void bench_copy_avx2_loop(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}
