/*
 * bench_libmvec.c - the glibc baselines vectorized through libmvec, at both
 * vector widths, and copy loops through vector registers.
 *
 * glibc's libmvec exports each function in variants of the x86-64 vector
 * ABI: _ZGVdN8v_sinf takes and returns 8 floats in AVX2 registers,
 * _ZGVeN16v_sinf 16 in AVX-512 registers (sinf since glibc 2.22, tanhf
 * since 2.35).  A vectorizing compiler calls them for sinf/tanhf loops;
 * here the loops call them by name, so the variant measured is known
 * exactly, whatever the compiler: 8 or 16 floats per call, the product and
 * fabsf inline, the last partial vector through a zero-padded buffer.
 * Each loop carries the target attribute of its width, so this file needs
 * no -m flags; call a width only on CPUs that run it (the driver checks:
 * AVX2+FMA, AVX-512F).
 */
#include "bench_baselines.h"

#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((__target__("avx2,fma")))
#define AVX512 __attribute__((__target__("avx2,fma,avx512f")))

AVX2 __m256 _ZGVdN8v_sinf(__m256 x);
AVX2 __m256 _ZGVdN8v_tanhf(__m256 x);
AVX512 __m512 _ZGVeN16v_sinf(__m512 x);
AVX512 __m512 _ZGVeN16v_tanhf(__m512 x);

/* One loop per width and expression: vec holds `lanes` floats, body is the
 * result for the vector v (a libmvec call and what surrounds it). */
#define LIBMVEC_LOOP(name, attr, vec, lanes, load, store, body)         \
    attr void name(size_t n, const float *x, float *y)                  \
    {                                                                   \
        size_t i = 0;                                                   \
        for (; i + (lanes) <= n; i += (lanes)) {                        \
            vec v = load(x + i);                                        \
            store(y + i, body);                                         \
        }                                                               \
        if (i < n) {                                                    \
            float in[lanes] = {0}, out[lanes];                          \
            memcpy(in, x + i, (n - i) * sizeof *in);                    \
            vec v = load(in);                                           \
            store(out, body);                                           \
            memcpy(y + i, out, (n - i) * sizeof *out);                  \
        }                                                               \
    }

#define ABS8(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define ABS16(v) _mm512_abs_ps(v)

LIBMVEC_LOOP(bench_abstanh_libmvec_avx2, AVX2, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
             _mm256_mul_ps(ABS8(v), _ZGVdN8v_tanhf(v)))
LIBMVEC_LOOP(bench_ssin_libmvec_avx2, AVX2, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps,
             _mm256_mul_ps(v, _ZGVdN8v_sinf(ABS8(v))))
LIBMVEC_LOOP(bench_abstanh_libmvec_avx512, AVX512, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps,
             _mm512_mul_ps(ABS16(v), _ZGVeN16v_tanhf(v)))
LIBMVEC_LOOP(bench_ssin_libmvec_avx512, AVX512, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps,
             _mm512_mul_ps(v, _ZGVeN16v_sinf(ABS16(v))))
LIBMVEC_LOOP(bench_copy_avx2_loop, AVX2, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, v)
LIBMVEC_LOOP(bench_copy_avx512_loop, AVX512, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, v)
