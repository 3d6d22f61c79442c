/*
 * dense_kernels.c - the dense layer's batched arithmetic (dense_kernels.h):
 * three kernels per code path (GEMM, triangular solve, elimination step)
 * and the functions built on them, which stage blocks of samples in double
 * and are shared by both paths.
 *
 * Built with -ffp-contract=off (src/meson.build): every a*b + c below must
 * stay a multiplication and an addition, each rounded, as in the portable
 * path.
 */
#include "dense_kernels.h"
#include "memory.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define MR INVDL_DENSE_MR
#define NR INVDL_DENSE_NR
#define BLOCK INVDL_DENSE_BLOCK
#define LL INVDL_DENSE_LANES_LD
/* Columns per panel of the blocked LU factorisation. */
#define PANEL 32

_Static_assert(BLOCK % NR == 0 && LL >= BLOCK + NR, "a block holds whole lane groups");
_Static_assert(MR <= NR && NR % MR == 0, "padded rows hold whole row tiles");

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- the tiling shared by both paths -------------------------------------- */

/* C[0..MR)[0..NR) +-= A B over `depth` terms, in order; see the gemm entry
 * of invdl_dense_kernels for the strides. */
typedef void (*tile_fn)(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                        size_t bk, double *c, size_t ldc);

/* Walks C in MR x NR tiles, along its longer side in the inner loop, so
 * that the tile row or column of the operand along the shorter side stays
 * in cache while the other streams past it.  Edge tiles run on a copy. */
static void gemm_tiles(tile_fn tile, size_t rows, size_t cols, size_t depth, const double *a,
                       size_t ak, size_t ar, const double *b, size_t bk, size_t bp, double *c,
                       size_t ldc)
{
    int rows_outer = rows >= cols;
    size_t outer = rows_outer ? rows : cols, inner = rows_outer ? cols : rows;
    size_t outer_step = rows_outer ? MR : NR, inner_step = rows_outer ? NR : MR;
    for (size_t o = 0; o < outer; o += outer_step) {
        for (size_t q = 0; q < inner; q += inner_step) {
            size_t r0 = rows_outer ? o : q, l0 = rows_outer ? q : o;
            size_t nr = min_size(MR, rows - r0), nc = min_size(NR, cols - l0);
            double *ct = c + r0 * ldc + l0;
            const double *bt = b + l0 / NR * bp;
            if (nr == MR && nc == NR) {
                tile(depth, a + r0 * ar, ak, ar, bt, bk, ct, ldc);
                continue;
            }
            double edge[MR * NR];
            memset(edge, 0, sizeof edge);
            for (size_t r = 0; r < nr; r++)
                memcpy(edge + r * NR, ct + r * ldc, nc * sizeof *edge);
            tile(depth, a + r0 * ar, ak, ar, bt, bk, edge, NR);
            for (size_t r = 0; r < nr; r++)
                memcpy(ct + r * ldc, edge + r * NR, nc * sizeof *edge);
        }
    }
}

/* One row of a solve on nl lanes: zi = (zi - sum_k t[k*ks] zk[k*ldz]) [/ d]
 * for k = 0..count-1 in order, four lanes at a time in registers, then one
 * by one.  Both paths use it for lanes that do not fill a vector. */
static void solve_row_scalar(const double *t, size_t ks, size_t count, const double *zk,
                             size_t ldz, double *zi, int unit, double d, size_t nl)
{
    size_t l = 0;
    for (; l + 4 <= nl; l += 4) {
        double a0 = zi[l], a1 = zi[l + 1], a2 = zi[l + 2], a3 = zi[l + 3];
        for (size_t k = 0; k < count; k++) {
            double tk = t[k * ks];
            const double *row = zk + k * ldz + l;
            a0 = a0 - tk * row[0];
            a1 = a1 - tk * row[1];
            a2 = a2 - tk * row[2];
            a3 = a3 - tk * row[3];
        }
        zi[l] = unit ? a0 : a0 / d;
        zi[l + 1] = unit ? a1 : a1 / d;
        zi[l + 2] = unit ? a2 : a2 / d;
        zi[l + 3] = unit ? a3 : a3 / d;
    }
    for (; l < nl; l++) {
        double a0 = zi[l];
        for (size_t k = 0; k < count; k++)
            a0 = a0 - t[k * ks] * zk[k * ldz + l];
        zi[l] = unit ? a0 : a0 / d;
    }
}

/* ---- portable path ------------------------------------------------------- */

/* The tile a row and four columns at a time, the four sums in registers. */
static void tile_scalar(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                        size_t bk, double *c, size_t ldc, int sub)
{
    _Static_assert(NR % 4 == 0, "whole quads of columns");
    for (size_t r = 0; r < MR; r++)
        for (size_t l = 0; l < NR; l += 4) {
            double *cr = c + r * ldc + l;
            double c0 = cr[0], c1 = cr[1], c2 = cr[2], c3 = cr[3];
            for (size_t k = 0; k < depth; k++) {
                double x = a[k * ak + r * ar];
                const double *bk_row = b + k * bk + l;
                double p0 = x * bk_row[0], p1 = x * bk_row[1];
                double p2 = x * bk_row[2], p3 = x * bk_row[3];
                c0 = sub ? c0 - p0 : c0 + p0;
                c1 = sub ? c1 - p1 : c1 + p1;
                c2 = sub ? c2 - p2 : c2 + p2;
                c3 = sub ? c3 - p3 : c3 + p3;
            }
            cr[0] = c0;
            cr[1] = c1;
            cr[2] = c2;
            cr[3] = c3;
        }
}

static void tile_add_scalar(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                            size_t bk, double *c, size_t ldc)
{
    tile_scalar(depth, a, ak, ar, b, bk, c, ldc, 0);
}

static void tile_sub_scalar(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                            size_t bk, double *c, size_t ldc)
{
    tile_scalar(depth, a, ak, ar, b, bk, c, ldc, 1);
}

static void gemm_scalar(size_t rows, size_t cols, size_t depth, const double *a, size_t ak,
                        size_t ar, const double *b, size_t bk, size_t bp, double *c, size_t ldc,
                        int sub)
{
    gemm_tiles(sub ? tile_sub_scalar : tile_add_scalar, rows, cols, depth, a, ak, ar, b, bk, bp, c,
               ldc);
}

static void solve_scalar(size_t n, const double *t, size_t ts, size_t ks, int upper, int unit,
                         size_t lanes, double *z, size_t ldz)
{
    for (size_t step = 0; step < n; step++) {
        size_t i = upper ? n - 1 - step : step;
        size_t k0 = upper ? i + 1 : 0, k1 = upper ? n : i;
        solve_row_scalar(t + i * ts + k0 * ks, ks, k1 - k0, z + k0 * ldz, ldz, z + i * ldz, unit,
                         t[i * ts + i * ks], lanes);
    }
}

static void eliminate_scalar(size_t n, size_t k, size_t end, double *lu, size_t ld)
{
    const double *rk = lu + k * ld;
    double pivot = rk[k];
    for (size_t i = k + 1; i < n; i++) {
        double *ri = lu + i * ld;
        double m = ri[k] / pivot;
        ri[k] = m;
        for (size_t j = k + 1; j < end; j++)
            ri[j] = ri[j] - m * rk[j];
    }
}

const invdl_dense_kernels invdl_dense_scalar = {
    "scalar", gemm_scalar, solve_scalar, eliminate_scalar,
};

/* ---- AVX2 path ------------------------------------------------------------ */

#if INVDL_HAVE_AVX2

#include <immintrin.h>

/* AVX2 without FMA: see dense_kernels.h. */
#define DENSE_AVX2 __attribute__((__target__("avx2")))
#define DENSE_AVX2_INLINE DENSE_AVX2 __attribute__((__always_inline__)) static inline

/* c + a*b, or c - a*b when sub == 1: two roundings, as in the portable path. */
DENSE_AVX2_INLINE __m256d mul_acc(__m256d c, __m256d a, __m256d b, int sub)
{
    __m256d p = _mm256_mul_pd(a, b);
    return sub ? _mm256_sub_pd(c, p) : _mm256_add_pd(c, p);
}

/* The 4 x 8 tile: eight accumulators, four broadcasts of A and two vectors
 * of B per step. */
DENSE_AVX2_INLINE void tile_body(size_t depth, const double *a, size_t ak, size_t ar,
                                 const double *b, size_t bk, double *c, size_t ldc, int sub)
{
    __m256d c00 = _mm256_loadu_pd(c), c01 = _mm256_loadu_pd(c + 4);
    __m256d c10 = _mm256_loadu_pd(c + ldc), c11 = _mm256_loadu_pd(c + ldc + 4);
    __m256d c20 = _mm256_loadu_pd(c + 2 * ldc), c21 = _mm256_loadu_pd(c + 2 * ldc + 4);
    __m256d c30 = _mm256_loadu_pd(c + 3 * ldc), c31 = _mm256_loadu_pd(c + 3 * ldc + 4);
    for (size_t k = 0; k < depth; k++) {
        __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
        __m256d a0 = _mm256_broadcast_sd(a), a1 = _mm256_broadcast_sd(a + ar);
        __m256d a2 = _mm256_broadcast_sd(a + 2 * ar), a3 = _mm256_broadcast_sd(a + 3 * ar);
        c00 = mul_acc(c00, a0, b0, sub);
        c01 = mul_acc(c01, a0, b1, sub);
        c10 = mul_acc(c10, a1, b0, sub);
        c11 = mul_acc(c11, a1, b1, sub);
        c20 = mul_acc(c20, a2, b0, sub);
        c21 = mul_acc(c21, a2, b1, sub);
        c30 = mul_acc(c30, a3, b0, sub);
        c31 = mul_acc(c31, a3, b1, sub);
        a += ak;
        b += bk;
    }
    _mm256_storeu_pd(c, c00);
    _mm256_storeu_pd(c + 4, c01);
    _mm256_storeu_pd(c + ldc, c10);
    _mm256_storeu_pd(c + ldc + 4, c11);
    _mm256_storeu_pd(c + 2 * ldc, c20);
    _mm256_storeu_pd(c + 2 * ldc + 4, c21);
    _mm256_storeu_pd(c + 3 * ldc, c30);
    _mm256_storeu_pd(c + 3 * ldc + 4, c31);
}

DENSE_AVX2 static void tile_add_avx2(size_t depth, const double *a, size_t ak, size_t ar,
                                     const double *b, size_t bk, double *c, size_t ldc)
{
    tile_body(depth, a, ak, ar, b, bk, c, ldc, 0);
}

DENSE_AVX2 static void tile_sub_avx2(size_t depth, const double *a, size_t ak, size_t ar,
                                     const double *b, size_t bk, double *c, size_t ldc)
{
    tile_body(depth, a, ak, ar, b, bk, c, ldc, 1);
}

DENSE_AVX2 static void gemm_avx2(size_t rows, size_t cols, size_t depth, const double *a,
                                 size_t ak, size_t ar, const double *b, size_t bk, size_t bp,
                                 double *c, size_t ldc, int sub)
{
    gemm_tiles(sub ? tile_sub_avx2 : tile_add_avx2, rows, cols, depth, a, ak, ar, b, bk, bp, c,
               ldc);
}

/* One row of a solve on 4*v lanes: zi = (zi - sum_k t[k*ks] zk[k*ldz])
 * [/ d], k = 0..count-1 in order. */
DENSE_AVX2_INLINE void solve_row(const double *t, size_t ks, size_t count, const double *zk,
                                 size_t ldz, double *zi, int unit, double d, int v)
{
    __m256d acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < v; q++)
        acc[q] = _mm256_loadu_pd(zi + 4 * q);
    for (size_t k = 0; k < count; k++) {
        __m256d tk = _mm256_broadcast_sd(t + k * ks);
        const double *row = zk + k * ldz;
#pragma GCC unroll 8
        for (int q = 0; q < v; q++)
            acc[q] = _mm256_sub_pd(acc[q], _mm256_mul_pd(tk, _mm256_loadu_pd(row + 4 * q)));
    }
    if (!unit) {
        __m256d dv = _mm256_set1_pd(d);
#pragma GCC unroll 8
        for (int q = 0; q < v; q++)
            acc[q] = _mm256_div_pd(acc[q], dv);
    }
#pragma GCC unroll 8
    for (int q = 0; q < v; q++)
        _mm256_storeu_pd(zi + 4 * q, acc[q]);
}

/* Row i of a solve, terms k0..k1-1, over all lanes: 32 at a time (eight
 * accumulators in flight) where there are, then narrower. */
DENSE_AVX2_INLINE void solve_row_lanes(const double *t, size_t ts, size_t ks, size_t i, size_t k0,
                                       size_t k1, int unit, size_t lanes, double *z, size_t ldz)
{
    const double *ti = t + i * ts + k0 * ks;
    const double *zk = z + k0 * ldz;
    double *zi = z + i * ldz, d = t[i * ts + i * ks];
    size_t l0 = 0, count = k1 - k0;
    for (; l0 + 32 <= lanes; l0 += 32)
        solve_row(ti, ks, count, zk + l0, ldz, zi + l0, unit, d, 8);
    if (l0 + 16 <= lanes) {
        solve_row(ti, ks, count, zk + l0, ldz, zi + l0, unit, d, 4);
        l0 += 16;
    }
    if (l0 + 8 <= lanes) {
        solve_row(ti, ks, count, zk + l0, ldz, zi + l0, unit, d, 2);
        l0 += 8;
    }
    if (l0 + 4 <= lanes) {
        solve_row(ti, ks, count, zk + l0, ldz, zi + l0, unit, d, 1);
        l0 += 4;
    }
    if (l0 < lanes)
        solve_row_scalar(ti, ks, count, zk + l0, ldz, zi + l0, unit, d, lanes - l0);
}

/* Lower solves run MR rows at a time: the terms k < i0 that all rows of the
 * group share come first in every row's order, so they run as one GEMM
 * strip; the triangle within the group follows row by row.  Upper solves
 * cannot be grouped without changing the order (row i needs z_i+1 first,
 * which is the last row finished), so they run row by row. */
DENSE_AVX2 static void solve_avx2(size_t n, const double *t, size_t ts, size_t ks, int upper,
                                  int unit, size_t lanes, double *z, size_t ldz)
{
    if (upper) {
        for (size_t i = n; i-- > 0;)
            solve_row_lanes(t, ts, ks, i, i + 1, n, unit, lanes, z, ldz);
        return;
    }
    size_t i0 = 0;
    for (; i0 + MR <= n; i0 += MR) {
        if (i0 > 0)
            gemm_tiles(tile_sub_avx2, MR, lanes, i0, t + i0 * ts, ks, ts, z, ldz, NR,
                       z + i0 * ldz, ldz);
        for (size_t i = i0; i < i0 + MR; i++)
            solve_row_lanes(t, ts, ks, i, i0, i, unit, lanes, z, ldz);
    }
    for (size_t i = i0; i < n; i++)
        solve_row_lanes(t, ts, ks, i, 0, i, unit, lanes, z, ldz);
}

DENSE_AVX2 static void eliminate_avx2(size_t n, size_t k, size_t end, double *lu, size_t ld)
{
    const double *rk = lu + k * ld;
    double pivot = rk[k];
    for (size_t i = k + 1; i < n; i++) {
        double *ri = lu + i * ld;
        double m = ri[k] / pivot;
        ri[k] = m;
        __m256d mv = _mm256_set1_pd(m);
        size_t j = k + 1;
        for (; j + 4 <= end; j += 4)
            _mm256_storeu_pd(ri + j, mul_acc(_mm256_loadu_pd(ri + j), mv,
                                             _mm256_loadu_pd(rk + j), 1));
        for (; j < end; j++)
            ri[j] = ri[j] - m * rk[j];
    }
}

const invdl_dense_kernels invdl_dense_avx2 = {
    "avx2", gemm_avx2, solve_avx2, eliminate_avx2,
};

#endif /* INVDL_HAVE_AVX2 */

const invdl_dense_kernels *invdl_dense_kernels_best(void)
{
#if INVDL_HAVE_AVX2
    /* Reads flags the runtime filled in at startup: no state of our own. */
    if (__builtin_cpu_supports("avx2"))
        return &invdl_dense_avx2;
#endif
    return &invdl_dense_scalar;
}

/* ---- factors ------------------------------------------------------------- */

void invdl_dense_factors_free(invdl_dense_factors *f)
{
    if (f != NULL) {
        invdl_free(f->w);
        invdl_free(f->wt);
        invdl_free(f->lu);
        invdl_free(f->perm);
        invdl_free(f->work);
        invdl_free(f);
    }
}

/* Doubles of lu: n rows of ld(n), then the rows and columns a GEMM strip
 * over the last rows may read past them. */
static int lu_count(size_t n, size_t *count)
{
    return invdl_mul_size(n + MR, invdl_dense_ld(n), count) && *count <= SIZE_MAX - NR &&
           (*count += NR, 1);
}

/* Doubles of work: a block of W^-1's columns in lane layout, or a panel of
 * U's rows in strips. */
static int work_count(size_t n, size_t *count)
{
    size_t lanes, panel;
    if (!invdl_mul_size(n, LL, &lanes) || !invdl_mul_size(invdl_dense_pad(n), PANEL, &panel))
        return 0;
    *count = lanes > panel ? lanes : panel;
    return 1;
}

invdl_dense_factors *invdl_dense_factors_new(size_t n)
{
    size_t np = invdl_dense_pad(n), lus, npld, work;
    if (np < n || np > SIZE_MAX - 2 * NR || !lu_count(n, &lus) ||
        !invdl_mul_size(np, invdl_dense_ld(n), &npld) || !work_count(n, &work))
        return NULL;
    invdl_dense_factors *f = invdl_malloc(sizeof *f);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    f->n = n;
    f->lu_ld = invdl_dense_ld(n);
    f->w = invdl_alloc_array(npld, sizeof *f->w);
    f->wt = invdl_alloc_array(npld, sizeof *f->wt);
    f->lu = invdl_calloc_array(lus, sizeof *f->lu);
    f->perm = invdl_alloc_array(n, sizeof *f->perm);
    f->work = invdl_alloc_array(work, sizeof *f->work);
    if (f->w == NULL || f->wt == NULL || f->lu == NULL || f->perm == NULL || f->work == NULL) {
        invdl_dense_factors_free(f);
        return NULL;
    }
    return f;
}

/* LU with partial pivoting in panels of PANEL columns, the right-looking
 * elimination reordered so that every entry still receives its updates
 * lu_ij -= l_ik u_kj one by one in increasing k, from the same values as
 * in the unblocked algorithm, which this returns bit for bit:
 *   - the panel's columns are eliminated step by step, its rows swapped
 *     whole (the trailing columns of both rows are behind by the same
 *     steps, whose updates each row carries in its own l_ik);
 *   - the panel's rows of U to its right are then finished by a unit lower
 *     triangular solve (their pending updates, in order);
 *   - and the trailing rows receive the panel's updates as a GEMM strip,
 *     k in order.
 * Returns INVDL_ESINGULAR at a zero pivot; *log_det = sum of log|u_kk|. */
static invdl_status lu_factor(const invdl_dense_kernels *k, size_t n, double *lu, size_t ld,
                              size_t *perm, double *strips, double *log_det)
{
    double sum = 0.0;
    for (size_t k0 = 0; k0 < n; k0 += PANEL) {
        size_t end = k0 + min_size(PANEL, n - k0);
        for (size_t c = k0; c < end; c++) {
            size_t piv = c;
            for (size_t i = c + 1; i < n; i++)
                if (fabs(lu[i * ld + c]) > fabs(lu[piv * ld + c]))
                    piv = i;
            if (!(lu[piv * ld + c] != 0.0))
                return INVDL_ESINGULAR;
            if (piv != c) {
                for (size_t j = 0; j < n; j++) {
                    double t = lu[c * ld + j];
                    lu[c * ld + j] = lu[piv * ld + j];
                    lu[piv * ld + j] = t;
                }
                size_t t = perm[c];
                perm[c] = perm[piv];
                perm[piv] = t;
            }
            sum += log(fabs(lu[c * ld + c]));
            k->eliminate(n, c, end, lu, ld);
        }
        if (end == n)
            break;
        /* U12 = L11^-1 A12, copied in strips of NR columns; then
         * A22 -= L21 U12. */
        size_t depth = end - k0, cols = n - end;
        double *u12 = lu + k0 * ld + end;
        k->solve(depth, lu + k0 * ld + k0, ld, 1, 0, 1, cols, u12, ld);
        for (size_t j0 = 0; j0 < cols; j0 += NR)
            for (size_t r = 0; r < depth; r++)
                for (size_t j = 0; j < NR; j++)
                    strips[j0 * depth + r * NR + j] = j0 + j < cols ? u12[r * ld + j0 + j] : 0.0;
        k->gemm(cols, cols, depth, lu + end * ld + k0, 1, ld, strips, NR, NR * depth,
                lu + end * ld + end, ld, 1);
    }
    *log_det = sum;
    return INVDL_OK;
}

/* sums[j] = |m_0j| + |m_1j| + ... + |m_rows-1,j|, added in row order, for
 * j < cols: all columns at once, one pass over the rows. */
static void abs_col_sums(size_t rows, size_t cols, const double *m, size_t ld, double *sums)
{
    memset(sums, 0, cols * sizeof *sums);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            sums[j] += fabs(m[i * ld + j]);
}

/* sums[i] = |m_i0| + |m_i1| + ..., added in column order: four rows side by
 * side, so that four sums are in flight. */
static void abs_row_sums(size_t rows, size_t cols, const double *m, size_t ld, double *sums)
{
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const double *r = m + i * ld;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (size_t j = 0; j < cols; j++) {
            s0 += fabs(r[j]);
            s1 += fabs(r[ld + j]);
            s2 += fabs(r[2 * ld + j]);
            s3 += fabs(r[3 * ld + j]);
        }
        sums[i] = s0;
        sums[i + 1] = s1;
        sums[i + 2] = s2;
        sums[i + 3] = s3;
    }
    for (; i < rows; i++) {
        double s0 = 0.0;
        for (size_t j = 0; j < cols; j++)
            s0 += fabs(m[i * ld + j]);
        sums[i] = s0;
    }
}

static double max_of(size_t n, const double *v)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* The 1-norm and inf-norm of the rows x cols matrix m: largest column and
 * row sums of |m_ij|, each sum in index order.  sums holds rows + cols. */
static void abs_norms(size_t rows, size_t cols, const double *m, size_t ld, double *sums,
                      double *norm1, double *norm_inf)
{
    abs_col_sums(rows, cols, m, ld, sums);
    *norm1 = max_of(cols, sums);
    abs_row_sums(rows, cols, m, ld, sums + cols);
    *norm_inf = max_of(rows, sums + cols);
}

/* W in double into rows of length ld, zero-padded to pad(n) x ld; the
 * transpose too when wt is not NULL (by 8 x 8 tiles). */
static void stage_matrix(size_t n, const float *w, double *wd, double *wt)
{
    size_t np = invdl_dense_pad(n), ld = invdl_dense_ld(n);
    memset(wd, 0, np * ld * sizeof *wd);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            wd[i * ld + j] = (double)w[i * n + j];
    if (wt == NULL)
        return;
    memset(wt, 0, np * ld * sizeof *wt);
    for (size_t i0 = 0; i0 < n; i0 += 8)
        for (size_t j0 = 0; j0 < n; j0 += 8)
            for (size_t i = i0; i < min_size(i0 + 8, n); i++)
                for (size_t j = j0; j < min_size(j0 + 8, n); j++)
                    wt[j * ld + i] = wd[i * ld + j];
}

invdl_status invdl_dense_factor(const invdl_dense_kernels *k, const float *w,
                                invdl_dense_factors *f)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *lu = f->lu, norm1, norm_inf;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            lu[i * ld + j] = (double)w[i * n + j];
    for (size_t i = 0; i < n; i++)
        f->perm[i] = i;
    abs_norms(n, n, lu, ld, f->work, &norm1, &norm_inf);
    double log_det;
    invdl_status st = lu_factor(k, n, lu, ld, f->perm, f->work, &log_det);
    if (st != INVDL_OK)
        return st;

    /* |W^-1|_1 and |W^-1|_inf from W^-1 = U^-1 L^-1 P, whose column perm[p]
     * solves L U z = e_p; BLOCK of them per pair of solves, O(n^3) like the
     * factorisation.  Rows above p of L^-1 e_p are zero and their terms
     * change nothing (x - l*0 == x), so the lower solve of the block from
     * p0 on starts at row p0.  |W^-1| is gathered in f->w (written last),
     * then summed by columns and rows, each sum in index order. */
    double *z = f->work, *abs_inv = f->w, inv1, inv_inf;
    for (size_t p0 = 0; p0 < n; p0 += BLOCK) {
        size_t cnt = min_size(BLOCK, n - p0);
        memset(z, 0, n * LL * sizeof *z);
        for (size_t l = 0; l < cnt; l++)
            z[(p0 + l) * LL + l] = 1.0;
        k->solve(n - p0, lu + p0 * ld + p0, ld, 1, 0, 1, cnt, z + p0 * LL, LL);
        k->solve(n, lu, ld, 1, 1, 0, cnt, z, LL);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < cnt; l++)
                abs_inv[i * ld + f->perm[p0 + l]] = fabs(z[i * LL + l]);
    }
    abs_norms(n, n, abs_inv, ld, f->work, &inv1, &inv_inf);
    if (!(norm1 * inv1 * (double)FLT_EPSILON <= 1.0))
        return INVDL_ESINGULAR;

    stage_matrix(n, w, f->w, f->wt);
    f->log_abs_det = log_det;
    f->norm = norm_inf;
    f->inv_norm = inv_inf;
    return INVDL_OK;
}

/* ---- batches ------------------------------------------------------------- */

/* Zeroes rows n.. of a lane-layout block up to a whole row tile, which a
 * GEMM strip reads (and discards). */
static void zero_tail_rows(size_t n, double *t)
{
    for (size_t j = n; j % MR != 0; j++)
        memset(t + j * LL, 0, LL * sizeof *t);
}

/* cnt samples of v ([cnt][n] floats) in lane layout: t[j][l] = v[l][j],
 * zero for cnt <= l < pad(cnt). */
static void stage_lanes(size_t n, size_t cnt, const float *v, double *t)
{
    size_t lanes = invdl_dense_pad(cnt);
    for (size_t j = 0; j < n; j++) {
        for (size_t l = 0; l < cnt; l++)
            t[j * LL + l] = (double)v[l * n + j];
        for (size_t l = cnt; l < lanes; l++)
            t[j * LL + l] = 0.0;
    }
    zero_tail_rows(n, t);
}

/* cnt samples of v in strip layout: strip q (samples NR q ..) is
 * t[q][j][l] = v[NR q + l][j], zero past cnt up to pad(cnt). */
static void stage_strips(size_t n, size_t cnt, const float *v, double *t)
{
    size_t lanes = invdl_dense_pad(cnt);
    for (size_t q0 = 0; q0 < lanes; q0 += NR) {
        double *strip = t + q0 * n;
        size_t m = min_size(NR, cnt - q0);
        for (size_t j = 0; j < n; j++) {
            for (size_t l = 0; l < m; l++)
                strip[j * NR + l] = (double)v[(q0 + l) * n + j];
            for (size_t l = m; l < NR; l++)
                strip[j * NR + l] = 0.0;
        }
    }
}

/* The reverse of stage_lanes: v[l][j] = t[j][l] rounded to float. */
static void unstage_lanes(size_t n, size_t cnt, const double *t, float *v)
{
    for (size_t l = 0; l < cnt; l++)
        for (size_t j = 0; j < n; j++)
            v[l * n + j] = (float)t[j * LL + l];
}

/* cnt samples by strips of NR features, each strip [sample][NR]
 * contiguous: t[q][l][j - NR q] = v[l][j] for features j of strip q, zero
 * past n up to pad(n). */
static void stage_feature_strips(size_t n, size_t cnt, const float *v, double *t)
{
    for (size_t j0 = 0; j0 < n; j0 += NR) {
        double *strip = t + j0 * cnt;
        size_t m = min_size(NR, n - j0);
        for (size_t l = 0; l < cnt; l++) {
            for (size_t j = 0; j < m; j++)
                strip[l * NR + j] = (double)v[l * n + j0 + j];
            for (size_t j = m; j < NR; j++)
                strip[l * NR + j] = 0.0;
        }
    }
}

void invdl_dense_forward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                         const float *bias, size_t batch, const float *x, float *y,
                         double *scratch)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *xs = scratch, *yt = scratch + LL * ld;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0);
        stage_strips(n, cnt, x + s0 * n, xs);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < cnt; l++)
                yt[i * LL + l] = (double)bias[i];
        /* yt[i][s] = b_i + sum_j W_ij x_sj */
        k->gemm(n, cnt, n, f->w, 1, ld, xs, NR, NR * n, yt, LL, 0);
        unstage_lanes(n, cnt, yt, y + s0 * n);
    }
}

void invdl_dense_inverse(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                         const float *bias, size_t batch, const float *y, float *x,
                         double *scratch)
{
    size_t n = f->n;
    double *zt = scratch;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        const float *ys = y + s0 * n;
        for (size_t i = 0; i < n; i++) {
            size_t p = f->perm[i];
            double b = (double)bias[p];
            for (size_t l = 0; l < cnt; l++)
                zt[i * LL + l] = (double)ys[l * n + p] - b;
            for (size_t l = cnt; l < lanes; l++)
                zt[i * LL + l] = 0.0;
        }
        k->solve(n, f->lu, f->lu_ld, 1, 0, 1, lanes, zt, LL);
        k->solve(n, f->lu, f->lu_ld, 1, 1, 0, lanes, zt, LL);
        unstage_lanes(n, cnt, zt, x + s0 * n);
    }
}

/* dW += G^T X and db += G's column sums over cnt samples, G in lane layout
 * and X by feature strips. */
static void accumulate_params(const invdl_dense_kernels *k, size_t n, size_t cnt, const double *gt,
                              const double *x, double *dparams)
{
    k->gemm(n, n, cnt, gt, 1, LL, x, NR, NR * cnt, dparams, n, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t l = 0; l < cnt; l++)
            dparams[n * n + i] += gt[i * LL + l];
}

void invdl_dense_backward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                          int inverse, size_t batch, const float *in, const float *out,
                          const float *dout, float *din, double *dparams, double *scratch)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *first = scratch, *second = scratch + LL * ld;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        const float *gs = dout + s0 * n;
        float *ds = din + s0 * n;
        if (!inverse) {
            /* dW and db from g (lane layout) and x (feature strips); then
             * dx[j][s] = 0 + sum_i W_ij g_si from g in strip layout. */
            if (dparams != NULL) {
                stage_lanes(n, cnt, gs, first);
                stage_feature_strips(n, cnt, in + s0 * n, second);
                accumulate_params(k, n, cnt, first, second, dparams);
            }
            stage_strips(n, cnt, gs, second);
            for (size_t j = 0; j < n; j++)
                memset(first + j * LL, 0, cnt * sizeof *first);
            k->gemm(n, cnt, n, f->wt, 1, ld, second, NR, NR * n, first, LL, 0);
            unstage_lanes(n, cnt, first, ds);
        } else {
            stage_lanes(n, cnt, gs, first);
            /* u = W^-T g: c = U^-T L^-T g by the transposed solves, then
             * u[perm[i]] = c[i]; the parameters' coefficient is -u, in
             * `second`. */
            k->solve(n, f->lu, 1, f->lu_ld, 0, 0, lanes, first, LL);
            k->solve(n, f->lu, 1, f->lu_ld, 1, 1, lanes, first, LL);
            for (size_t i = 0; i < n; i++) {
                size_t p = f->perm[i];
                for (size_t l = 0; l < cnt; l++) {
                    double u = first[i * LL + l];
                    ds[l * n + p] = (float)u;
                    second[p * LL + l] = -u;
                }
            }
            zero_tail_rows(n, second);
            if (dparams != NULL) {
                stage_feature_strips(n, cnt, out + s0 * n, first);
                accumulate_params(k, n, cnt, second, first, dparams);
            }
        }
    }
}
