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
 * double by rows ([sample][ld(n)], "row layout"), transposed
 * ([feature][INVDL_DENSE_LANES_LD], "lane layout": samples side by side,
 * the solves' natural layout), or transposed in strips of NR samples, each
 * strip [feature][NR] contiguous ("strip layout": the GEMM tile's B
 * operand, read as one stream).  Padding entries are zero.
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

/* n rounded up to a multiple of INVDL_DENSE_NR: rows and columns of tiles. */
static inline size_t invdl_dense_pad(size_t n)
{
    return (n + INVDL_DENSE_NR - 1) / INVDL_DENSE_NR * INVDL_DENSE_NR;
}

/* Distance between rows in row layout (and of W in double): the padded
 * length plus NR, so that rows are never a large power of two apart and a
 * column of tiles spreads over the cache's sets instead of evicting itself. */
static inline size_t invdl_dense_ld(size_t n)
{
    return invdl_dense_pad(n) + INVDL_DENSE_NR;
}

/* Distance between rows in lane layout, for the same reason: 40 doubles
 * are five cache lines. */
#define INVDL_DENSE_LANES_LD (INVDL_DENSE_BLOCK + INVDL_DENSE_NR)

/* Doubles of scratch the batch functions below need for width n: two
 * staged blocks in either layout. */
static inline size_t invdl_dense_scratch_count(size_t n)
{
    return 2 * INVDL_DENSE_LANES_LD * invdl_dense_ld(n);
}

/* ---- kernels: one table per code path ----------------------------------- */

typedef struct invdl_dense_kernels {
    const char *name; /* "scalar", "avx2" */
    /* C += A B (sub == 0) or C -= A B (sub == 1):
     *   c[r*ldc + l] = c[r*ldc + l] +- a(r,k) * b(k,l) for k = 0, 1, ...,
     * depth-1 in that order, for r < rows and l < cols, where
     *   a(r,k) = a[k*ak + r*ar],  b(k,l) = b[(l/NR)*bp + k*bk + l%NR]:
     * B by strips of NR columns bp apart (bp = NR: plain rows; bp = NR *
     * depth, bk = NR: each strip packed contiguously).  a must be readable
     * for r up to rows rounded up to MR, b for l up to cols rounded up to
     * NR; what those entries hold never reaches C. */
    void (*gemm)(size_t rows, size_t cols, size_t depth, const double *a, size_t ak, size_t ar,
                 const double *b, size_t bk, size_t bp, double *c, size_t ldc, int sub);
    /* A triangular solve on `lanes` right-hand sides side by side,
     * z[i*ldz + l], with t(i,k) = t[i*ts + k*ks].  With upper == 0, for
     * i = 0, 1, ..., n-1:
     *   z_i = (z_i - t(i,0) z_0 - t(i,1) z_1 - ... - t(i,i-1) z_i-1) / t(i,i);
     * with upper == 1, for i = n-1, n-2, ..., 0:
     *   z_i = (z_i - t(i,i+1) z_i+1 - ... - t(i,n-1) z_n-1) / t(i,i);
     * subtracting in the order written; unit == 1 skips the division.
     * Rows of z must be readable up to lanes rounded up to NR. */
    void (*solve)(size_t n, const double *t, size_t ts, size_t ks, int upper, int unit,
                  size_t lanes, double *z, size_t ldz);
    /* Step k of Gaussian elimination on the n-row matrix lu (rows ld
     * apart) over columns up to end: for each row i > k, m = lu_ik / lu_kk
     * is stored in lu_ik, and lu_ij -= m * lu_kj for k < j < end. */
    void (*eliminate)(size_t n, size_t k, size_t end, double *lu, size_t ld);
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
    double *w;          /* [pad(n)][ld(n)]: W in double, zero-padded */
    double *wt;         /* [pad(n)][ld(n)]: W^T likewise */
    double *lu;         /* [n][lu_ld] (and padding): unit lower L below the
                           diagonal, U on and above */
    size_t lu_ld;       /* ld(n) */
    size_t *perm;       /* row i of L U is row perm[i] of W */
    double *work;       /* [n][LANES_LD] doubles, for invdl_dense_factor */
    double log_abs_det; /* log|det W| */
    double norm;        /* |W|_inf */
    double inv_norm;    /* |W^-1|_inf */
} invdl_dense_factors;

/* Space for the factors of an n x n matrix; NULL on ENOMEM. */
invdl_dense_factors *invdl_dense_factors_new(size_t n);
void invdl_dense_factors_free(invdl_dense_factors *f); /* NULL is fine */

/* Factors the n x n float matrix w (finite) into f, without allocating:
 * LU with partial pivoting, log|det|, |W|_inf and |W^-1|_inf (from W^-1's
 * columns, by solves with the factors), W and W^T in double.  The results
 * are those of the plain algorithm (unblocked elimination, one solve per
 * column of W^-1, sums in index order) bit for bit.  INVDL_OK, or
 * INVDL_ESINGULAR when a pivot is 0 or the reciprocal 1-norm condition
 * number is below FLT_EPSILON (f is then partly written). */
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
