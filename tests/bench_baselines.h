/*
 * bench_baselines.h - the loops invdl's kernels are measured against.
 *
 * Each lives in a source file of its own so that its compiler flags are the
 * ones that make it a fair baseline, independently of the library's:
 *   bench_scalar.c   glibc's scalar sinf/tanhf, one call per element; built
 *                    with auto-vectorization off so it stays scalar.
 *   bench_libmvec.c  the same loops vectorized through glibc's libmvec
 *                    (GCC on x86-64 only, built with -O3 -mavx2 -mfma), plus
 *                    a copy loop through AVX2 registers.  Call these only
 *                    when bench_libmvec_usable() says the CPU runs them.
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
/* The same expressions, vectorized by GCC into calls of glibc's libmvec
 * (_ZGVdN8v_tanhf, _ZGVdN8v_sinf: 8 floats per call). */
void bench_abstanh_libmvec(size_t n, const float *x, float *y);
void bench_ssin_libmvec(size_t n, const float *x, float *y);
/* y[i] = x[i] with 256-bit loads and ordinary stores: the copy an AVX2
 * kernel that writes through the cache can at best match. */
void bench_copy_avx2_loop(size_t n, const float *x, float *y);
#endif

#endif /* INVDL_BENCH_BASELINES_H */
