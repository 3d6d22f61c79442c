/*
 * dense_kernels.h - the dense layers' batched arithmetic, a batch of
 * samples at a time: the free dense layer's y = W x + b, its inverse
 * through the LU factors of W and its backward passes; the LU-parametrised
 * layer's triangular products and solves with W = P L U; and the kernels
 * both are built on (GEMM tiles, triangular solves and products, the
 * elimination step of the factorisation).
 *
 * Every result is what straightforward loops in double give, bit for bit:
 * each sum starts where those loops start (b_i, 0, the right-hand side)
 * and adds (or subtracts) its products one by one in the order this
 * header states, as separate IEEE multiplications and additions in double,
 * and each output is rounded to float once.  Blocking and vectors only
 * change which independent sums run side by side, never the order within
 * one.  So the scalar, AVX2 and AVX-512 paths agree bit for bit with each
 * other and with the plain loops (tests/dense_plain.c), and the accuracy
 * arguments made for the plain loops (one rounding of a double
 * accumulation per output; backward-stable triangular solves) hold
 * unchanged.
 *
 * Triangular sums run from the far corner towards the diagonal: row i of a
 * lower triangle takes k = 0, 1, ..., i-1, row i of an upper one
 * k = n-1, n-2, ..., i+1, then the diagonal.  A group of rows then shares
 * a first stretch of its sums (the columns no row of the group has
 * reached), which runs as a GEMM tile, and only the small triangle within
 * the group runs row by row - for lower and upper triangles alike.
 *
 * No FMA: a fused multiply-add rounds once where the loops round twice.
 * Using it would stay exact across paths only if the portable path called
 * fma(), which costs a library call per term on CPUs without FMA; and on
 * the CPUs this was tuned on (AMD Zen 5: two multiply and two add pipes)
 * separate multiplications and additions reach the same rate as FMA
 * (docs/performance.md, "Speed of the dense layers").  dense_kernels.c is compiled
 * with -ffp-contract=off so that no compiler fuses them behind our back.
 *
 * Layouts.  Matrices are row-major doubles.  A block of samples is staged
 * in double by rows ([sample][ld(n)], "row layout"), transposed
 * ([feature][INVDL_DENSE_LANES_LD], "lane layout": samples side by side,
 * the solves' and triangular products' natural layout), or transposed in
 * strips of NR samples, each strip [feature][NR] contiguous ("strip
 * layout": the GEMM tile's B operand, read as one stream).  Padding
 * entries are zero.
 */
#ifndef INVDL_DENSE_KERNELS_H
#define INVDL_DENSE_KERNELS_H

#include "kernels.h" /* INVDL_HAVE_AVX2 */

/* Columns of a strip of samples: a tile's columns are one or two strips. */
#define INVDL_DENSE_NR 8
/* Rows of the tallest tile (the AVX-512 path's): operands a tile reads by
 * rows are padded with zero rows up to a multiple of this. */
#define INVDL_DENSE_MR_MAX 8
/* Samples staged in double at a time; a multiple of NR. */
#define INVDL_DENSE_BLOCK 32

/* n rounded up to a multiple of INVDL_DENSE_NR: rows and columns of tiles. */
static inline size_t invdl_dense_pad(size_t n)
{
    return (n + INVDL_DENSE_NR - 1) / INVDL_DENSE_NR * INVDL_DENSE_NR;
}

/* Distance between rows in row layout (and of matrices in double): the
 * padded length plus NR, so that rows are never a large power of two apart
 * and a column of tiles spreads over the cache's sets instead of evicting
 * itself. */
static inline size_t invdl_dense_ld(size_t n)
{
    return invdl_dense_pad(n) + INVDL_DENSE_NR;
}

/* Distance between rows in lane layout, for the same reason: 40 doubles
 * are five cache lines. */
#define INVDL_DENSE_LANES_LD (INVDL_DENSE_BLOCK + INVDL_DENSE_NR)

/* Staged blocks the batch functions below use at once, and the doubles of
 * scratch they need for width n. */
#define INVDL_DENSE_STAGED 3
static inline size_t invdl_dense_scratch_count(size_t n)
{
    return INVDL_DENSE_STAGED * INVDL_DENSE_LANES_LD * invdl_dense_ld(n);
}

/* ---- kernels: one table per code path ----------------------------------- */

/* A tile: C[0..mr)[0..w NR) +-= A B over `depth` terms k = 0, 1, ... in
 * order, a(r,k) = a[k*ak + r*ar], b(k,l) = b[(l/NR)*bp + k*bk + l%NR] (w
 * strips of NR columns, bp apart), row r of C at c[r]. */
typedef void (*invdl_dense_tile_fn)(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                                    const double *b, ptrdiff_t bk, ptrdiff_t bp,
                                    double *const *c);

/* Row i of a solve or a product on `lanes` right-hand sides: with terms
 * t_k = t[k*ks] and rows v_k = v + k*ldv (k = 0 .. count-1, in order):
 *   solve:    z[l] = (z[l] - t_0 v_0[l] - ... - t_count-1 v_count-1[l]) / d
 *   product:  z[l] = (z[l] + t_0 v_0[l] + ... + t_count-1 v_count-1[l]) + d x[l]
 * Strides are signed: upper triangles walk their rows backwards. */
typedef void (*invdl_dense_solve_row_fn)(size_t count, const double *t, ptrdiff_t ks,
                                         const double *v, ptrdiff_t ldv, double *z, double d,
                                         size_t lanes);
typedef void (*invdl_dense_product_row_fn)(size_t count, const double *t, ptrdiff_t ks,
                                           const double *v, ptrdiff_t ldv, double *z,
                                           const double *x, double d, size_t lanes);

/* A whole group of a triangle's rows (as many as the path's mr), solved or
 * multiplied in one pass (triangle() in dense_kernels.c): first the
 * stretch of terms all its rows share, term k of row r being
 * a[k*ak + r*ar] times lane l of b + k*bk (k = 0 .. shared-1, in order),
 * then the group's own triangle, t(r,c) = t[r*ts + c*ks] for the group's
 * rows and columns r, c (the diagonal at r == c), row by row in the order
 * dense_kernels.h states: for a product each row's terms from the group's
 * far edge to the diagonal, then d x_r (x row r at x + r*ldx); for a solve
 * the same terms of the rows solved before it, then the division.  z row
 * r at z + r*ldz: a product's rows start from 0, a solve's from z.  Rows of
 * b, x and z must be readable up to lanes rounded up to NR. */
typedef struct invdl_dense_group {
    size_t shared;
    const double *a;
    ptrdiff_t ak, ar;
    const double *b;
    ptrdiff_t bk;
    const double *t;
    ptrdiff_t ts, ks;
    const double *x; /* products only */
    ptrdiff_t ldx;
    double *z;
    ptrdiff_t ldz;
    size_t lanes;
    int upper, unit, product;
} invdl_dense_group;

typedef struct invdl_dense_kernels {
    const char *name; /* "scalar", "avx2", "avx512" */
    size_t mr;        /* rows of a tile, at most INVDL_DENSE_MR_MAX; dividing it */
    size_t strips;    /* strips of NR columns in a wide tile: 1 or 2 */
    invdl_dense_tile_fn wide[2];   /* [sub]: mr x strips*NR */
    invdl_dense_tile_fn narrow[2]; /* [sub]: mr x NR */
    invdl_dense_solve_row_fn solve_row;
    invdl_dense_product_row_fn product_row;
    /* A whole group of mr rows in registers; NULL: its shared stretch runs
     * as tiles and its rows through solve_row and product_row, which
     * gives the same sums in the same order. */
    void (*group)(const invdl_dense_group *g);
    /* Step k of Gaussian elimination on the n-row matrix lu (rows ld
     * apart) over columns up to end: for each row i > k, m = lu_ik / lu_kk
     * is stored in lu_ik, and lu_ij -= m * lu_kj for k < j < end. */
    void (*eliminate)(size_t n, size_t k, size_t end, double *lu, size_t ld);
} invdl_dense_kernels;

/* The portable path, built everywhere. */
extern const invdl_dense_kernels invdl_dense_scalar;
#if INVDL_HAVE_AVX2
/* AVX2 and AVX-512F paths; use only where the CPU has them. */
extern const invdl_dense_kernels invdl_dense_avx2;
extern const invdl_dense_kernels invdl_dense_avx512;
#endif

/* The fastest path this CPU runs (asked of the CPU each call). */
const invdl_dense_kernels *invdl_dense_kernels_best(void);

/* C += A B (sub == 0) or C -= A B (sub == 1), C rows x cols at c (rows
 * ldc apart), A and B as for a tile (b by strips bp apart):
 *   c[r*ldc + l] = c[r*ldc + l] +- a(r,k) * b(k,l) for k = 0, 1, ...,
 * depth-1 in that order.  a must be readable for r up to rows rounded up
 * to the path's mr, b for l up to cols rounded up to NR; what those
 * entries hold never reaches C. */
void invdl_dense_gemm(const invdl_dense_kernels *k, size_t rows, size_t cols, size_t depth,
                      const double *a, ptrdiff_t ak, ptrdiff_t ar, const double *b, ptrdiff_t bk,
                      size_t bp, double *c, size_t ldc, int sub);

/* A triangular solve on `lanes` right-hand sides side by side,
 * z[i*ldz + l], with t(i,k) = t[i*ts + k*ks].  With upper == 0, for
 * i = 0, 1, ..., n-1:
 *   z_i = (z_i - t(i,0) z_0 - t(i,1) z_1 - ... - t(i,i-1) z_i-1) / t(i,i);
 * with upper == 1, for i = n-1, n-2, ..., 0:
 *   z_i = (z_i - t(i,n-1) z_n-1 - ... - t(i,i+1) z_i+1) / t(i,i);
 * subtracting in the order written; unit == 1 divides by 1 (t(i,i) is not
 * read).  Rows of z must be readable up to lanes rounded up to NR. */
void invdl_dense_solve(const invdl_dense_kernels *k, size_t n, const double *t, size_t ts,
                       size_t ks, int upper, int unit, size_t lanes, double *z, size_t ldz);

/* A triangular product z = T x on `lanes` columns side by side (z and x
 * distinct): with upper == 0, for each i,
 *   z_i = ((0 + t(i,0) x_0) + ... + t(i,i-1) x_i-1) + t(i,i) x_i;
 * with upper == 1,
 *   z_i = ((0 + t(i,n-1) x_n-1) + ... + t(i,i+1) x_i+1) + t(i,i) x_i;
 * unit == 1 takes t(i,i) as 1.  Rows of x must be readable up to lanes
 * rounded up to NR. */
void invdl_dense_product(const invdl_dense_kernels *k, size_t n, const double *t, size_t ts,
                         size_t ks, int upper, int unit, size_t lanes, const double *x,
                         size_t ldx, double *z, size_t ldz);

/* ---- the free dense layer's derived data ---------------------------------- */

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

/* 1 if none of the n floats is infinite or NaN. */
int invdl_dense_finite(size_t n, const float *v);

/* W and W^T of the n x n float matrix w in double into f: all that the
 * forward map and its backward pass read.  INVDL_OK, or INVDL_EINVAL (an
 * entry not finite; f partly written). */
invdl_status invdl_dense_stage(const float *w, invdl_dense_factors *f);

/* Factors the n x n float matrix w into f, without allocating:
 * LU with partial pivoting, log|det|, |W|_inf and |W^-1|_inf (from W^-1's
 * columns, by solves with the factors), W and W^T in double.  The results
 * are those of the plain algorithm (unblocked elimination, one solve per
 * column of W^-1, sums in index order) bit for bit.  INVDL_OK;
 * INVDL_EINVAL when an entry is not finite; INVDL_ESINGULAR when a pivot
 * is 0 or the reciprocal 1-norm condition number is below FLT_EPSILON (f
 * is then partly written). */
invdl_status invdl_dense_factor(const invdl_dense_kernels *k, const float *w,
                                invdl_dense_factors *f);

/* ---- the free dense layer on batches: x and y are [batch][n] floats ------- */

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

/* ---- the LU-parametrised layer: W = P L U ----------------------------------- */

/* L unit lower triangular, U upper triangular with the (floored) diagonal
 * u, P the permutation that puts row i of L U at row perm[i] of W:
 *   y_perm[i] = (L U x)_i + b_perm[i]. */
typedef struct invdl_dense_plu {
    size_t n;
    double *lu;           /* [pad(n) + MR_MAX][lu_ld]: L strictly below the
                             diagonal, U on and above, zero-padded */
    size_t lu_ld;         /* ld(n) */
    size_t *perm;         /* [n] */
    unsigned char *unfloored; /* [n]: 1 where u_i = s_i, 0 where the floor holds */
    double *work;         /* the norms' work: [n][LANES_LD] up to n = BLOCK,
                             else [4n] */
    double log_abs_det;   /* sum of log|u_i|, in index order (when complete) */
    double norm;          /* a bound on |W|_inf, an estimate of |W^-1|_inf */
    double inv_norm;      /* (when complete; invdl_dense_plu_norms) */
} invdl_dense_plu;

/* Space for n x n factors; NULL on ENOMEM. */
invdl_dense_plu *invdl_dense_plu_new(size_t n);
void invdl_dense_plu_free(invdl_dense_plu *f); /* NULL is fine */

/* Fills f from a dense_lu layer's settings and values (dense_lu.c: s_min,
 * the permutation as floats holding exact integers below n; L's strictly
 * lower entries, U's strictly upper ones, s, b): L and U in double with
 * the floored diagonal, perm, unfloored; with complete != 0 also
 * log_abs_det and the norms (invdl_dense_plu_norms).  INVDL_OK, or
 * INVDL_EINVAL when an index repeats or a value is not finite. */
invdl_status invdl_dense_plu_set(const invdl_dense_kernels *k, invdl_dense_plu *f,
                                 const float *settings, const float *values, int complete);

/* From the factors (f->lu and f->perm filled): f->norm, the bound
 * |L|_inf |U|_inf >= |W|_inf (exact for diagonal W, above it by up to a
 * factor of about sqrt(n) for W near orthogonal), and f->inv_norm:
 * |W^-1|_inf itself up to n = INVDL_DENSE_BLOCK (W^-1 from one block of
 * solves, O(n^3)), above that an estimate by Hager's method as LAPACK's
 * dlacn2 refines it (a few solves with W and W^T, O(n^2) each; it never
 * exceeds the norm and is within a small factor of it in all but
 * contrived cases). */
void invdl_dense_plu_norms(const invdl_dense_kernels *k, invdl_dense_plu *f);

/* y = W x + b per sample: z = U x, w = L z (triangular products, in that
 * order of sums), y_perm[i] = w_i + b_perm[i] rounded once.  x == y
 * allowed. */
void invdl_dense_plu_forward(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                             const float *bias, size_t batch, const float *x, float *y,
                             double *scratch);

/* x = W^-1 (y - b) per sample: t_i = y_perm[i] - b_perm[i], then the
 * solves L v = t and U x = v.  y == x allowed. */
void invdl_dense_plu_inverse(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                             const float *bias, size_t batch, const float *y, float *x,
                             double *scratch);

/* Backward through the forward map (inverse == 0: x = in) or the inverse
 * (inverse == 1: x = out), given dL/dout, with g'_i = g_perm[i] and
 * z = U x:
 *   forward:  h = L^T g', din = U^T h;  dL += g' z^T, dU += h x^T, db += g;
 *   inverse:  a = U^-T g, c = L^-T a, din_perm[i] = c_i;
 *             dL -= c z^T, dU -= a x^T, db_perm[i] -= c_i;
 * dL strictly lower, dU strictly upper, ds_i the diagonal of the dU term
 * where f->unfloored[i] (else nothing), each entry summed over the samples in
 * order.  dparams (L's strictly lower entries row by row, U's strictly
 * upper entries row by row, s, b) may be NULL; din may alias dout. */
void invdl_dense_plu_backward(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                              int inverse, size_t batch, const float *in, const float *out,
                              const float *dout, float *din, double *dparams, double *scratch);

#endif /* INVDL_DENSE_KERNELS_H */
