/*
 * dense_kernels.h - the dense layer's batched arithmetic: y = W x + b, its
 * inverse through the LU factors of W, and the backward passes, for a batch
 * of samples at a time.
 *
 * Every result is what the straightforward per-sample loops in double give,
 * bit for bit: each sum starts where those loops start (b_i, 0, the
 * right-hand side) and adds (or subtracts) its products one by one in the
 * same order, as separate IEEE multiplications and additions in double,
 * and each output is rounded to float once.  Blocking and vectors only
 * change which independent sums run side by side, never the order within
 * one.  So the scalar and AVX2 paths agree bit for bit with each other and
 * with the plain loops, and the accuracy arguments made for the plain loops
 * (one rounding of a double accumulation per output; backward-stable LU
 * solves) hold unchanged.
 *
 * No FMA: a fused multiply-add rounds once where the loops round twice, so
 * results would differ between machines and from the portable path.  On
 * CPUs with separate add and multiply units (AMD Zen) mul+add costs no
 * throughput; elsewhere it costs up to half the peak, which accuracy and
 * reproducibility are worth here.  dense_kernels.c is compiled with
 * -ffp-contract=off so that no compiler fuses them behind our back.
 *
 * Layouts.  Matrices are row-major doubles.  A block of samples is staged in
 * double either by rows ([sample][pad(n)], "row layout") or transposed
 * ([feature][INVDL_DENSE_BLOCK], "lane layout": samples side by side, the
 * solves' natural layout).  Padding entries are zero.
 */
#ifndef INVDL_DENSE_KERNELS_H
#define INVDL_DENSE_KERNELS_H

#include "kernels.h" /* INVDL_HAVE_AVX2 */

/* A GEMM tile: MR rows by NR columns of accumulators (two AVX2 vectors of
 * four doubles per row). */
#define INVDL_DENSE_MR 4
#define INVDL_DENSE_NR 8
/* Samples staged in double at a time; a multiple of NR. */
#define INVDL_DENSE_BLOCK 32

/* n rounded up to a multiple of INVDL_DENSE_NR: the padded row length. */
static inline size_t invdl_dense_pad(size_t n)
{
    return (n + INVDL_DENSE_NR - 1) / INVDL_DENSE_NR * INVDL_DENSE_NR;
}

/* Doubles of scratch the batch functions below need for width n: two
 * staged blocks. */
static inline size_t invdl_dense_scratch_count(size_t n)
{
    return 2 * INVDL_DENSE_BLOCK * invdl_dense_pad(n);
}

/* ---- kernels: one table per code path ----------------------------------- */

typedef struct invdl_dense_kernels {
    const char *name; /* "scalar", "avx2" */
    /* C += A B: c[r*ldc + l] += a(r,k) * b(k,l) for k = 0, 1, ..., depth-1
     * in that order, where a(r,k) = a[k*ak + r*ar] and b(k,l) = b[k*bk + l],
     * for r < rows and l < cols.  a must be readable for r up to rows
     * rounded up to MR, b for l up to cols rounded up to NR; what those
     * entries hold never reaches C. */
    void (*gemm)(size_t rows, size_t cols, size_t depth, const double *a, size_t ak, size_t ar,
                 const double *b, size_t bk, double *c, size_t ldc);
    /* A triangular solve on `lanes` right-hand sides side by side (lanes a
     * multiple of NR, z[i*ldz + l]).  With upper == 0, for i = 0, 1, ...:
     *   z_i = (z_i - t_i0 z_0 - t_i1 z_1 - ... - t_i,i-1 z_i-1) / t_ii;
     * with upper == 1, for i = n-1, n-2, ...:
     *   z_i = (z_i - t_i,i+1 z_i+1 - ... - t_i,n-1 z_n-1) / t_ii;
     * subtracting in the order written; unit == 1 skips the division. */
    void (*solve)(size_t n, const double *t, int upper, int unit, size_t lanes, double *z,
                  size_t ldz);
    /* Step k of Gaussian elimination on the n x n matrix lu, whose pivot
     * lu[k][k] is nonzero: for each row i > k, m = lu_ik / lu_kk is stored
     * in lu_ik, and lu_ij -= m * lu_kj for j > k. */
    void (*eliminate)(size_t n, size_t k, double *lu);
} invdl_dense_kernels;

/* The portable path, built everywhere. */
extern const invdl_dense_kernels invdl_dense_scalar;
#if INVDL_HAVE_AVX2
/* AVX2 path; use only where the CPU has AVX2. */
extern const invdl_dense_kernels invdl_dense_avx2;
#endif

/* The fastest path this CPU runs (asked of the CPU each call). */
const invdl_dense_kernels *invdl_dense_kernels_best(void);

/* ---- the layer's derived data -------------------------------------------- */

typedef struct invdl_dense_factors {
    size_t n;
    double *w;          /* [pad(n)][pad(n)]: W in double, zero-padded */
    double *lu;         /* [n][n]: unit lower L below the diagonal, U on and above */
    double *lut;        /* [n][n]: lu transposed, for the transposed solves */
    size_t *perm;       /* row i of L U is row perm[i] of W */
    double *work;       /* [n][BLOCK] + 2n doubles, for invdl_dense_factor */
    double log_abs_det; /* log|det W| */
    double norm;        /* |W|_inf */
    double inv_norm;    /* |W^-1|_inf */
} invdl_dense_factors;

/* Space for the factors of an n x n matrix; NULL on ENOMEM. */
invdl_dense_factors *invdl_dense_factors_new(size_t n);
void invdl_dense_factors_free(invdl_dense_factors *f); /* NULL is fine */

/* Factors the n x n float matrix w (finite) into f, without allocating:
 * LU with partial pivoting, log|det|, |W|_inf and |W^-1|_inf (from W^-1's
 * columns, one solve each).  INVDL_OK, or INVDL_ESINGULAR when a pivot is 0
 * or the reciprocal 1-norm condition number is below FLT_EPSILON (f is then
 * partly written). */
invdl_status invdl_dense_factor(const invdl_dense_kernels *k, const float *w,
                                invdl_dense_factors *f);

/* ---- batches: x and y are [batch][n] floats ------------------------------- */

/* y = W x + b per sample; x == y allowed. */
void invdl_dense_forward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                         const float *bias, size_t batch, const float *x, float *y,
                         double *scratch);

/* x = W^-1 (y - b) per sample by the LU solves; y == x allowed. */
void invdl_dense_inverse(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                         const float *bias, size_t batch, const float *y, float *x,
                         double *scratch);

/* Backward through the forward map (inverse == 0: x = in) or the inverse
 * (inverse == 1: x = out, the inverse's result), given dL/dout:
 *   forward:  din = W^T g,  dW += g x^T,  db += g;
 *   inverse:  u = W^-T g,  din = u,  dW -= u x^T,  db -= u;
 * summed over the samples in order.  din may alias dout; dparams (W then b,
 * n*n + n doubles) may be NULL. */
void invdl_dense_backward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                          int inverse, size_t batch, const float *in, const float *out,
                          const float *dout, float *din, double *dparams, double *scratch);

#endif /* INVDL_DENSE_KERNELS_H */
