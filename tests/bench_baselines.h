/*
 * bench_baselines.h - the loops invdl's kernels are measured against.
 *
 * Each lives in a source file of its own so that its compiler flags are the
 * ones that make it a fair baseline, independently of the library's:
 *   bench_scalar.c   glibc's scalar sinf/tanhf, one call per element; built
 *                    with auto-vectorization off so it stays scalar.
 *   bench_libmvec.c  the same loops vectorized through glibc's libmvec, at
 *                    both vector widths, by explicit calls of its variants
 *                    (x86-64 with libmvec only), plus copy loops through
 *                    vector registers.  Call a width only where
 *                    bench_kernels.c found the CPU to run it.
 * The driver and the plain memcpy copy are in bench_kernels.c.
 */
#ifndef INVDL_BENCH_BASELINES_H
#define INVDL_BENCH_BASELINES_H

#include <stddef.h>

/* y[i] = fabsf(x[i])*tanhf(x[i]) and y[i] = x[i]*sinf(fabsf(x[i])), one
 * scalar glibc call per element. */
void bench_abstanh_glibc_scalar(size_t n, const float *x, float *y);
void bench_ssin_glibc_scalar(size_t n, const float *x, float *y);

#ifdef BENCH_HAVE_LIBMVEC
/* The same expressions through glibc's libmvec: _ZGVdN8v_tanhf and
 * _ZGVdN8v_sinf (AVX2, 8 floats per call), _ZGVeN16v_tanhf and
 * _ZGVeN16v_sinf (AVX-512, 16 floats per call). */
void bench_abstanh_libmvec_avx2(size_t n, const float *x, float *y);
void bench_ssin_libmvec_avx2(size_t n, const float *x, float *y);
void bench_abstanh_libmvec_avx512(size_t n, const float *x, float *y);
void bench_ssin_libmvec_avx512(size_t n, const float *x, float *y);
/* y[i] = x[i] through 256-bit and 512-bit registers with ordinary stores:
 * the copy a kernel of that width that writes through the cache can at
 * best match. */
void bench_copy_avx2_loop(size_t n, const float *x, float *y);
void bench_copy_avx512_loop(size_t n, const float *x, float *y);
#endif

#endif /* INVDL_BENCH_BASELINES_H */
