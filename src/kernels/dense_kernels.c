/*
 * dense_kernels.c - the dense layers' batched arithmetic (dense_kernels.h):
 * per code path, GEMM tiles, rows of triangular solves and products, and
 * the elimination step; shared by all paths, the drivers that tile
 * matrices with them and the functions built on those, which stage blocks
 * of samples in double.
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

#define NR INVDL_DENSE_NR
#define MR_MAX INVDL_DENSE_MR_MAX
#define BLOCK INVDL_DENSE_BLOCK
#define LL INVDL_DENSE_LANES_LD
/* Columns per panel of the blocked LU factorisation. */
#define PANEL 32

_Static_assert(BLOCK % NR == 0 && LL >= BLOCK + NR, "a block holds whole lane groups");
_Static_assert(MR_MAX <= NR && NR % MR_MAX == 0, "padded rows hold whole row tiles");

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- the tiling shared by every path ------------------------------------- */

/* Where the rows of a C operand lie: a full matrix (row r at c + r*ldc,
 * columns [0, cols)), or a strictly lower or strictly upper triangle of
 * order n packed row by row (the dense_lu layer's L and U gradients). */
enum { C_FULL, C_LOWER, C_UPPER };
typedef struct c_rows {
    double *c;
    size_t ldc, cols, n;
    int shape;
} c_rows;

/* The columns [*lo, *hi) row r holds, and the address of column *lo. */
static double *row_span(const c_rows *c, size_t r, size_t *lo, size_t *hi)
{
    switch (c->shape) {
    case C_LOWER:
        *lo = 0;
        *hi = r;
        return c->c + r * (r - 1) / 2; /* 0 for r = 0: size_t wraps, 0 times it is 0 */
    case C_UPPER:
        *lo = r + 1;
        *hi = c->n;
        return c->c + r * (2 * c->n - r - 1) / 2;
    default:
        *lo = 0;
        *hi = c->cols;
        return c->c + r * c->ldc;
    }
}

/* The rows of C's tile at (r0, l0), mr by w, when C holds all of it:
 * crow[r] = the address of (r0 + r, l0).  0 when it does not. */
static int whole_tile(const c_rows *c, size_t rows, size_t r0, size_t mr, size_t l0, size_t w,
                      double **crow)
{
    if (r0 + mr > rows)
        return 0;
    switch (c->shape) {
    case C_LOWER:
        if (l0 + w > r0)
            return 0;
        for (size_t r = 0, i = r0; r < mr; r++, i++)
            crow[r] = c->c + i * (i - 1) / 2 + l0;
        return 1;
    case C_UPPER:
        if (l0 < r0 + mr || l0 + w > c->n)
            return 0;
        for (size_t r = 0, i = r0; r < mr; r++, i++)
            crow[r] = c->c + i * (2 * c->n - i - 1) / 2 + (l0 - i - 1);
        return 1;
    default:
        if (l0 + w > c->cols)
            return 0;
        for (size_t r = 0; r < mr; r++)
            crow[r] = c->c + (r0 + r) * c->ldc + l0;
        return 1;
    }
}

/* A tile C holds only part of (edges, triangles, rows past `rows`): it runs
 * on a copy of the parts C holds; a tile C holds nothing of is skipped. */
static void part_tile(invdl_dense_tile_fn tile, size_t depth, const double *a, ptrdiff_t ak,
                      ptrdiff_t ar, const double *b, ptrdiff_t bk, size_t bp, const c_rows *c,
                      size_t rows, size_t cols, size_t r0, size_t mr, size_t l0, size_t w)
{
    double *crow[MR_MAX], *at_lo[MR_MAX]; /* at_lo[r]: the address of (r0 + r, lo_of[r]) */
    double edge[MR_MAX][2 * NR];
    size_t lo_of[MR_MAX], hi_of[MR_MAX];
    int any = 0;
    memset(edge, 0, sizeof edge);
    for (size_t r = 0; r < mr; r++) {
        size_t lo = 0, hi = 0;
        double *first = r0 + r < rows ? row_span(c, r0 + r, &lo, &hi) : NULL;
        lo_of[r] = lo > l0 ? lo : l0;
        hi_of[r] = min_size(min_size(hi, l0 + w), cols);
        crow[r] = edge[r];
        at_lo[r] = NULL;
        if (first != NULL && lo_of[r] < hi_of[r]) {
            at_lo[r] = first + (lo_of[r] - lo);
            memcpy(edge[r] + (lo_of[r] - l0), at_lo[r], (hi_of[r] - lo_of[r]) * sizeof **edge);
            any = 1;
        }
    }
    if (!any)
        return;
    tile(depth, a, ak, ar, b, bk, (ptrdiff_t)bp, crow);
    for (size_t r = 0; r < mr; r++)
        if (at_lo[r] != NULL)
            memcpy(at_lo[r], edge[r] + (lo_of[r] - l0), (hi_of[r] - lo_of[r]) * sizeof **edge);
}

/* Whether C holds nothing of the tile at (r0, l0), mr by w: a tile of a
 * strict triangle on the wrong side of the diagonal. */
static int empty_tile(const c_rows *c, size_t r0, size_t mr, size_t l0, size_t w)
{
    return (c->shape == C_LOWER && l0 + 1 >= r0 + mr) || (c->shape == C_UPPER && l0 + w <= r0 + 1);
}

/* C +-= A B over rows x cols (see invdl_dense_gemm for A and B), in tiles
 * of the path's mr rows by one or two strips, along C's longer side in the
 * inner loop so that the tile row or column of the operand along the
 * shorter side stays in cache while the other streams past it. */
static void tiles(const invdl_dense_kernels *k, size_t rows, size_t cols, size_t depth,
                  const double *a, ptrdiff_t ak, ptrdiff_t ar, const double *b, ptrdiff_t bk,
                  size_t bp, const c_rows *c, int sub)
{
    size_t mr = k->mr, wide = k->strips * NR;
    int rows_outer = rows >= cols;
    /* Columns of tiles: as many wide ones as fit, then narrow ones. */
    size_t wide_end = wide > NR ? cols / wide * wide : 0;
    size_t outer = rows_outer ? rows : cols;
    for (size_t o = 0; o < outer;) {
        size_t w_outer = o < wide_end ? wide : NR;
        size_t r_first = rows_outer ? o : 0, r_end = rows_outer ? o + 1 : rows;
        size_t l_first = rows_outer ? 0 : o, l_end = rows_outer ? cols : o + 1;
        for (size_t r0 = r_first; r0 < r_end; r0 += mr) {
            for (size_t l0 = l_first; l0 < l_end;) {
                size_t w = l0 < wide_end ? wide : NR;
                invdl_dense_tile_fn tile = w == NR ? k->narrow[sub] : k->wide[sub];
                const double *at = a + (ptrdiff_t)r0 * ar, *bt = b + l0 / NR * bp;
                double *crow[MR_MAX];
                if (whole_tile(c, rows, r0, mr, l0, w, crow))
                    tile(depth, at, ak, ar, bt, bk, (ptrdiff_t)bp, crow);
                else if (!empty_tile(c, r0, mr, l0, w))
                    part_tile(tile, depth, at, ak, ar, bt, bk, bp, c, rows, cols, r0, mr, l0, w);
                l0 += w;
            }
        }
        o += rows_outer ? mr : w_outer;
    }
}

void invdl_dense_gemm(const invdl_dense_kernels *k, size_t rows, size_t cols, size_t depth,
                      const double *a, ptrdiff_t ak, ptrdiff_t ar, const double *b, ptrdiff_t bk,
                      size_t bp, double *c, size_t ldc, int sub)
{
    c_rows cr = {c, ldc, cols, 0, C_FULL};
    tiles(k, rows, cols, depth, a, ak, ar, b, bk, bp, &cr, sub);
}

/* Lower and upper triangles, solves and products alike, run in groups of
 * the path's mr rows aligned at multiples of mr from row 0: lower ones
 * from the top, upper ones from the bottom.  A whole group's sums first
 * take the columns beyond the group's far edge (k < i0, or k >= i0 + mr),
 * which every row of the group needs in the same order, as one GEMM
 * strip; then its rows take their few remaining terms one by one.  A group
 * cut short by the end of the matrix runs row by row (its shared stretch
 * would read rows past the end). */
static void triangle(const invdl_dense_kernels *k, int product, size_t n, const double *t,
                     size_t ts, size_t ks, int upper, int unit, size_t lanes, const double *x,
                     size_t ldx, double *z, size_t ldz)
{
    size_t mr = k->mr;
    const double *v = product ? x : z; /* the rows the sums read */
    size_t ldv = product ? ldx : ldz;
    size_t groups = (n + mr - 1) / mr;
    for (size_t g = 0; g < groups; g++) {
        size_t i0 = (upper ? groups - 1 - g : g) * mr, i1 = min_size(i0 + mr, n);
        int whole = i1 - i0 == mr;
        /* The shared stretch: columns [0, i0) of a lower group, [i1, n) of
         * an upper one walked from n-1 down. */
        size_t shared = upper ? n - i1 : i0;
        if (whole && k->group != NULL) {
            ptrdiff_t step = upper ? -(ptrdiff_t)ks : (ptrdiff_t)ks;
            ptrdiff_t vstep = upper ? -(ptrdiff_t)ldv : (ptrdiff_t)ldv;
            invdl_dense_group grp = {
                .shared = shared,
                .a = upper ? t + i0 * ts + (n - 1) * ks : t + i0 * ts,
                .ak = step,
                .ar = (ptrdiff_t)ts,
                .b = upper ? v + (n - 1) * ldv : v,
                .bk = vstep,
                .t = t + i0 * ts + i0 * ks,
                .ts = (ptrdiff_t)ts,
                .ks = (ptrdiff_t)ks,
                .x = product ? x + i0 * ldx : NULL,
                .ldx = (ptrdiff_t)ldx,
                .z = z + i0 * ldz,
                .ldz = (ptrdiff_t)ldz,
                .lanes = lanes,
                .upper = upper,
                .unit = unit,
                .product = product,
            };
            k->group(&grp);
            continue;
        }
        if (product)
            for (size_t i = i0; i < i1; i++)
                memset(z + i * ldz, 0, lanes * sizeof *z);
        if (whole && shared > 0) {
            const double *a = upper ? t + i0 * ts + (n - 1) * ks : t + i0 * ts;
            const double *b = upper ? v + (n - 1) * ldv : v;
            ptrdiff_t step = upper ? -(ptrdiff_t)ks : (ptrdiff_t)ks;
            ptrdiff_t bstep = upper ? -(ptrdiff_t)ldv : (ptrdiff_t)ldv;
            c_rows cr = {z + i0 * ldz, ldz, lanes, 0, C_FULL};
            tiles(k, mr, lanes, shared, a, step, (ptrdiff_t)ts, b, bstep, NR, &cr, !product);
        }
        for (size_t s = 0; s < i1 - i0; s++) {
            size_t i = upper ? i1 - 1 - s : i0 + s;
            /* Terms still to take: from the group's edge (or the matrix's,
             * for a short group) to the diagonal. */
            size_t first = upper ? (whole ? i1 - 1 : n - 1) : (whole ? i0 : 0);
            size_t count = upper ? first - i : i - first;
            const double *tk = t + i * ts + first * ks;
            const double *vk = v + first * ldv;
            ptrdiff_t step = upper ? -(ptrdiff_t)ks : (ptrdiff_t)ks;
            ptrdiff_t vstep = upper ? -(ptrdiff_t)ldv : (ptrdiff_t)ldv;
            double d = unit ? 1.0 : t[i * ts + i * ks];
            if (count == 0) {
                tk = t; /* not read */
                vk = v;
            }
            if (product)
                k->product_row(count, tk, step, vk, vstep, z + i * ldz, x + i * ldx, d, lanes);
            else
                k->solve_row(count, tk, step, vk, vstep, z + i * ldz, d, lanes);
        }
    }
}

void invdl_dense_solve(const invdl_dense_kernels *k, size_t n, const double *t, size_t ts,
                       size_t ks, int upper, int unit, size_t lanes, double *z, size_t ldz)
{
    triangle(k, 0, n, t, ts, ks, upper, unit, lanes, NULL, 0, z, ldz);
}

void invdl_dense_product(const invdl_dense_kernels *k, size_t n, const double *t, size_t ts,
                         size_t ks, int upper, int unit, size_t lanes, const double *x,
                         size_t ldx, double *z, size_t ldz)
{
    triangle(k, 1, n, t, ts, ks, upper, unit, lanes, x, ldx, z, ldz);
}

/* ---- portable path ------------------------------------------------------- */

#define MR_SCALAR 4

/* The tile a row and four columns at a time, the four sums in registers. */
static void tile_scalar(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                        const double *b, ptrdiff_t bk, double *const *c, int sub)
{
    _Static_assert(NR % 4 == 0, "whole quads of columns");
    for (size_t r = 0; r < MR_SCALAR; r++)
        for (size_t l = 0; l < NR; l += 4) {
            double *cr = c[r] + l;
            double c0 = cr[0], c1 = cr[1], c2 = cr[2], c3 = cr[3];
            const double *ak_r = a + (ptrdiff_t)r * ar;
            const double *bk_row = b + l;
            for (size_t k = 0; k < depth; k++) {
                double x = *ak_r;
                double p0 = x * bk_row[0], p1 = x * bk_row[1];
                double p2 = x * bk_row[2], p3 = x * bk_row[3];
                c0 = sub ? c0 - p0 : c0 + p0;
                c1 = sub ? c1 - p1 : c1 + p1;
                c2 = sub ? c2 - p2 : c2 + p2;
                c3 = sub ? c3 - p3 : c3 + p3;
                ak_r += ak;
                bk_row += bk;
            }
            cr[0] = c0;
            cr[1] = c1;
            cr[2] = c2;
            cr[3] = c3;
        }
}

static void tile_add_scalar(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                            const double *b, ptrdiff_t bk, ptrdiff_t bp, double *const *c)
{
    (void)bp;
    tile_scalar(depth, a, ak, ar, b, bk, c, 0);
}

static void tile_sub_scalar(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                            const double *b, ptrdiff_t bk, ptrdiff_t bp, double *const *c)
{
    (void)bp;
    tile_scalar(depth, a, ak, ar, b, bk, c, 1);
}

/* A row of a solve or product over lanes [l, nl), four at a time in
 * registers, then one by one.  Every path finishes its lanes that fill no
 * vector here.  product: z = (z + sum) + d x; else z = (z - sum) / d. */
static void row_scalar(size_t count, const double *t, ptrdiff_t ks, const double *v,
                       ptrdiff_t ldv, double *z, const double *x, double d, size_t l, size_t nl,
                       int product)
{
    for (; l + 4 <= nl; l += 4) {
        double a0 = z[l], a1 = z[l + 1], a2 = z[l + 2], a3 = z[l + 3];
        const double *tk = t, *row = v + l;
        for (size_t k = 0; k < count; k++) {
            double p0 = *tk * row[0], p1 = *tk * row[1], p2 = *tk * row[2], p3 = *tk * row[3];
            a0 = product ? a0 + p0 : a0 - p0;
            a1 = product ? a1 + p1 : a1 - p1;
            a2 = product ? a2 + p2 : a2 - p2;
            a3 = product ? a3 + p3 : a3 - p3;
            tk += ks;
            row += ldv;
        }
        if (product) {
            z[l] = a0 + d * x[l];
            z[l + 1] = a1 + d * x[l + 1];
            z[l + 2] = a2 + d * x[l + 2];
            z[l + 3] = a3 + d * x[l + 3];
        } else {
            z[l] = a0 / d;
            z[l + 1] = a1 / d;
            z[l + 2] = a2 / d;
            z[l + 3] = a3 / d;
        }
    }
    for (; l < nl; l++) {
        double a0 = z[l];
        const double *tk = t, *row = v + l;
        for (size_t k = 0; k < count; k++) {
            double p0 = *tk * row[0];
            a0 = product ? a0 + p0 : a0 - p0;
            tk += ks;
            row += ldv;
        }
        z[l] = product ? a0 + d * x[l] : a0 / d;
    }
}

static void solve_row_scalar(size_t count, const double *t, ptrdiff_t ks, const double *v,
                             ptrdiff_t ldv, double *z, double d, size_t lanes)
{
    row_scalar(count, t, ks, v, ldv, z, NULL, d, 0, lanes, 0);
}

static void product_row_scalar(size_t count, const double *t, ptrdiff_t ks, const double *v,
                               ptrdiff_t ldv, double *z, const double *x, double d, size_t lanes)
{
    row_scalar(count, t, ks, v, ldv, z, x, d, 0, lanes, 1);
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
    .name = "scalar",
    .mr = MR_SCALAR,
    .strips = 1,
    .wide = {tile_add_scalar, tile_sub_scalar},
    .narrow = {tile_add_scalar, tile_sub_scalar},
    .solve_row = solve_row_scalar,
    .product_row = product_row_scalar,
    .eliminate = eliminate_scalar,
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
DENSE_AVX2_INLINE void tile_body(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                                 const double *b, ptrdiff_t bk, double *const *c, int sub)
{
    __m256d c00 = _mm256_loadu_pd(c[0]), c01 = _mm256_loadu_pd(c[0] + 4);
    __m256d c10 = _mm256_loadu_pd(c[1]), c11 = _mm256_loadu_pd(c[1] + 4);
    __m256d c20 = _mm256_loadu_pd(c[2]), c21 = _mm256_loadu_pd(c[2] + 4);
    __m256d c30 = _mm256_loadu_pd(c[3]), c31 = _mm256_loadu_pd(c[3] + 4);
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
    _mm256_storeu_pd(c[0], c00);
    _mm256_storeu_pd(c[0] + 4, c01);
    _mm256_storeu_pd(c[1], c10);
    _mm256_storeu_pd(c[1] + 4, c11);
    _mm256_storeu_pd(c[2], c20);
    _mm256_storeu_pd(c[2] + 4, c21);
    _mm256_storeu_pd(c[3], c30);
    _mm256_storeu_pd(c[3] + 4, c31);
}

DENSE_AVX2 static void tile_add_avx2(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                                     const double *b, ptrdiff_t bk, ptrdiff_t bp,
                                     double *const *c)
{
    (void)bp;
    tile_body(depth, a, ak, ar, b, bk, c, 0);
}

DENSE_AVX2 static void tile_sub_avx2(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                                     const double *b, ptrdiff_t bk, ptrdiff_t bp,
                                     double *const *c)
{
    (void)bp;
    tile_body(depth, a, ak, ar, b, bk, c, 1);
}

/* A row of a solve or product on 4*nv lanes, the sums in registers. */
DENSE_AVX2_INLINE void row_vectors(size_t count, const double *t, ptrdiff_t ks, const double *v,
                                   ptrdiff_t ldv, double *z, const double *x, double d, int nv,
                                   int product)
{
    __m256d acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < nv; q++)
        acc[q] = _mm256_loadu_pd(z + 4 * q);
    for (size_t k = 0; k < count; k++) {
        __m256d tk = _mm256_broadcast_sd(t);
#pragma GCC unroll 8
        for (int q = 0; q < nv; q++)
            acc[q] = mul_acc(acc[q], tk, _mm256_loadu_pd(v + 4 * q), !product);
        t += ks;
        v += ldv;
    }
    __m256d dv = _mm256_set1_pd(d);
#pragma GCC unroll 8
    for (int q = 0; q < nv; q++)
        acc[q] = product ? mul_acc(acc[q], dv, _mm256_loadu_pd(x + 4 * q), 0)
                         : _mm256_div_pd(acc[q], dv);
#pragma GCC unroll 8
    for (int q = 0; q < nv; q++)
        _mm256_storeu_pd(z + 4 * q, acc[q]);
}

/* All lanes: 32 at a time (eight accumulators in flight) where there are,
 * then narrower, the last few on the portable code. */
DENSE_AVX2_INLINE void row_avx2(size_t count, const double *t, ptrdiff_t ks, const double *v,
                                ptrdiff_t ldv, double *z, const double *x, double d,
                                size_t lanes, int product)
{
    size_t l = 0;
    for (; l + 32 <= lanes; l += 32)
        row_vectors(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, 8, product);
    if (l + 16 <= lanes) {
        row_vectors(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, 4, product);
        l += 16;
    }
    if (l + 8 <= lanes) {
        row_vectors(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, 2, product);
        l += 8;
    }
    if (l + 4 <= lanes) {
        row_vectors(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, 1, product);
        l += 4;
    }
    row_scalar(count, t, ks, v, ldv, z, x, d, l, lanes, product);
}

DENSE_AVX2 static void solve_row_avx2(size_t count, const double *t, ptrdiff_t ks,
                                      const double *v, ptrdiff_t ldv, double *z, double d,
                                      size_t lanes)
{
    row_avx2(count, t, ks, v, ldv, z, NULL, d, lanes, 0);
}

DENSE_AVX2 static void product_row_avx2(size_t count, const double *t, ptrdiff_t ks,
                                        const double *v, ptrdiff_t ldv, double *z,
                                        const double *x, double d, size_t lanes)
{
    row_avx2(count, t, ks, v, ldv, z, x, d, lanes, 1);
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
    .name = "avx2",
    .mr = 4,
    .strips = 1,
    .wide = {tile_add_avx2, tile_sub_avx2},
    .narrow = {tile_add_avx2, tile_sub_avx2},
    .solve_row = solve_row_avx2,
    .product_row = product_row_avx2,
    .eliminate = eliminate_avx2,
};

/* ---- AVX-512 path --------------------------------------------------------- */

/* AVX-512F, still without FMA: on Zen 5 separate multiply and add pipes
 * give the same rate (dense_kernels.h). */
#define DENSE_AVX512 __attribute__((__target__("avx512f")))
#define DENSE_AVX512_INLINE DENSE_AVX512 __attribute__((__always_inline__)) static inline

DENSE_AVX512_INLINE __m512d mul_acc512(__m512d c, __m512d a, __m512d b, int sub)
{
    __m512d p = _mm512_mul_pd(a, b);
    return sub ? _mm512_sub_pd(c, p) : _mm512_add_pd(c, p);
}

/* The 8 x 8*nv tile (nv = 1 or 2 strips): 8*nv accumulators, eight
 * broadcasts of A and nv vectors of B per step. */
DENSE_AVX512_INLINE void tile512(size_t depth, const double *a, ptrdiff_t ak, ptrdiff_t ar,
                                 const double *b, ptrdiff_t bk, ptrdiff_t bp, double *const *c,
                                 int nv, int sub)
{
    __m512d acc[8][2];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int q = 0; q < nv; q++)
            acc[r][q] = _mm512_loadu_pd(c[r] + 8 * q);
    for (size_t k = 0; k < depth; k++) {
        __m512d b0 = _mm512_loadu_pd(b), b1 = nv > 1 ? _mm512_loadu_pd(b + bp) : b0;
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            __m512d av = _mm512_set1_pd(a[r * ar]);
            acc[r][0] = mul_acc512(acc[r][0], av, b0, sub);
            if (nv > 1)
                acc[r][1] = mul_acc512(acc[r][1], av, b1, sub);
        }
        a += ak;
        b += bk;
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int q = 0; q < nv; q++)
            _mm512_storeu_pd(c[r] + 8 * q, acc[r][q]);
}

DENSE_AVX512 static void tile_wide_add_avx512(size_t depth, const double *a, ptrdiff_t ak,
                                              ptrdiff_t ar, const double *b, ptrdiff_t bk,
                                              ptrdiff_t bp, double *const *c)
{
    tile512(depth, a, ak, ar, b, bk, bp, c, 2, 0);
}

DENSE_AVX512 static void tile_wide_sub_avx512(size_t depth, const double *a, ptrdiff_t ak,
                                              ptrdiff_t ar, const double *b, ptrdiff_t bk,
                                              ptrdiff_t bp, double *const *c)
{
    tile512(depth, a, ak, ar, b, bk, bp, c, 2, 1);
}

DENSE_AVX512 static void tile_add_avx512(size_t depth, const double *a, ptrdiff_t ak,
                                         ptrdiff_t ar, const double *b, ptrdiff_t bk,
                                         ptrdiff_t bp, double *const *c)
{
    tile512(depth, a, ak, ar, b, bk, bp, c, 1, 0);
}

DENSE_AVX512 static void tile_sub_avx512(size_t depth, const double *a, ptrdiff_t ak,
                                         ptrdiff_t ar, const double *b, ptrdiff_t bk,
                                         ptrdiff_t bp, double *const *c)
{
    tile512(depth, a, ak, ar, b, bk, bp, c, 1, 1);
}

/* A row of a solve or product on 8*nv lanes (the last vector masked to
 * `tail` lanes when tail > 0), the sums in registers. */
DENSE_AVX512_INLINE void row_vectors512(size_t count, const double *t, ptrdiff_t ks,
                                        const double *v, ptrdiff_t ldv, double *z,
                                        const double *x, double d, int nv, unsigned tail,
                                        int product)
{
    /* Every vector whole but the last, masked to `tail` lanes if tail > 0. */
    __mmask8 mask[4] = {0xff, 0xff, 0xff, 0xff};
    mask[nv - 1] = (__mmask8)(tail > 0 ? (1u << tail) - 1u : 0xffu);
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(),
                      _mm512_setzero_pd()};
#pragma GCC unroll 4
    for (int q = 0; q < nv; q++)
        acc[q] = _mm512_maskz_loadu_pd(mask[q], z + 8 * q);
    for (size_t k = 0; k < count; k++) {
        __m512d tk = _mm512_set1_pd(*t);
#pragma GCC unroll 4
        for (int q = 0; q < nv; q++)
            acc[q] = mul_acc512(acc[q], tk, _mm512_maskz_loadu_pd(mask[q], v + 8 * q), !product);
        t += ks;
        v += ldv;
    }
    __m512d dv = _mm512_set1_pd(d);
#pragma GCC unroll 4
    for (int q = 0; q < nv; q++) {
        acc[q] = product ? mul_acc512(acc[q], dv, _mm512_maskz_loadu_pd(mask[q], x + 8 * q), 0)
                         : _mm512_div_pd(acc[q], dv);
        _mm512_mask_storeu_pd(z + 8 * q, mask[q], acc[q]);
    }
}

DENSE_AVX512_INLINE void row_avx512(size_t count, const double *t, ptrdiff_t ks,
                                    const double *v, ptrdiff_t ldv, double *z, const double *x,
                                    double d, size_t lanes, int product)
{
    size_t l = 0;
    for (; l + 32 <= lanes; l += 32)
        row_vectors512(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, 4, 0, product);
    if (l < lanes) {
        size_t left = lanes - l;
        int nv = (int)((left + 7) / 8);
        row_vectors512(count, t, ks, v + l, ldv, z + l, product ? x + l : x, d, nv,
                       (unsigned)(left % 8), product);
    }
}

DENSE_AVX512 static void solve_row_avx512(size_t count, const double *t, ptrdiff_t ks,
                                          const double *v, ptrdiff_t ldv, double *z, double d,
                                          size_t lanes)
{
    row_avx512(count, t, ks, v, ldv, z, NULL, d, lanes, 0);
}

DENSE_AVX512 static void product_row_avx512(size_t count, const double *t, ptrdiff_t ks,
                                            const double *v, ptrdiff_t ldv, double *z,
                                            const double *x, double d, size_t lanes)
{
    row_avx512(count, t, ks, v, ldv, z, x, d, lanes, 1);
}

/* Lanes [l0, l0 + 8 nv) of a group of 8 rows (invdl_dense_group), the
 * last vector stored through `last`: 8 nv accumulators per row, the whole
 * group in registers from its first term to its division or diagonal
 * term.  upper, product and nv are constants in every instance, so that
 * the loops unroll and every accumulator is a register. */
DENSE_AVX512_INLINE void group512_lanes(const invdl_dense_group *g, size_t l0, int nv,
                                        __mmask8 last, int upper, int product)
{
    __mmask8 mask[2] = {0xff, 0xff};
    mask[nv - 1] = last;
    __m512d acc[8][2];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
#pragma GCC unroll 2
        for (int q = 0; q < nv; q++)
            acc[r][q] = product ? _mm512_setzero_pd()
                                : _mm512_loadu_pd(g->z + r * g->ldz + (ptrdiff_t)l0 + 8 * q);
    const double *a = g->a, *b = g->b + l0;
    for (size_t k = 0; k < g->shared; k++) {
        __m512d b0 = _mm512_loadu_pd(b), b1 = nv > 1 ? _mm512_loadu_pd(b + 8) : b0;
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            __m512d av = _mm512_set1_pd(a[r * g->ar]);
            acc[r][0] = mul_acc512(acc[r][0], av, b0, !product);
            if (nv > 1)
                acc[r][1] = mul_acc512(acc[r][1], av, b1, !product);
        }
        a += g->ak;
        b += g->bk;
    }
    /* The group's own triangle, column c at step s: a product adds column
     * c's term to the rows that take it; a solve finishes row c, then
     * takes its term from the rows after it. */
    const double *t = g->t;
    ptrdiff_t ts = g->ts, ks = g->ks;
#pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        int c = upper ? 7 - s : s;
        __m512d v[2];
        if (product) {
#pragma GCC unroll 2
            for (int q = 0; q < nv; q++)
                v[q] = _mm512_loadu_pd(g->x + c * g->ldx + (ptrdiff_t)l0 + 8 * q);
        } else {
            __m512d dv = _mm512_set1_pd(g->unit ? 1.0 : t[c * ts + c * ks]);
#pragma GCC unroll 2
            for (int q = 0; q < nv; q++)
                v[q] = acc[c][q] = _mm512_div_pd(acc[c][q], dv);
        }
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (upper ? r >= c : r <= c)
                continue;
            __m512d tv = _mm512_set1_pd(t[r * ts + c * ks]);
#pragma GCC unroll 2
            for (int q = 0; q < nv; q++)
                acc[r][q] = mul_acc512(acc[r][q], tv, v[q], !product);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if (product) {
            __m512d dv = _mm512_set1_pd(g->unit ? 1.0 : t[r * ts + r * ks]);
#pragma GCC unroll 2
            for (int q = 0; q < nv; q++)
                acc[r][q] = mul_acc512(
                    acc[r][q], dv, _mm512_loadu_pd(g->x + r * g->ldx + (ptrdiff_t)l0 + 8 * q), 0);
        }
#pragma GCC unroll 2
        for (int q = 0; q < nv; q++)
            _mm512_mask_storeu_pd(g->z + r * g->ldz + (ptrdiff_t)l0 + 8 * q, mask[q], acc[r][q]);
    }
}

/* All lanes of a group: 16 at a time, then the rest (at most 15, the last
 * vector masked). */
DENSE_AVX512_INLINE void group512(const invdl_dense_group *g, int upper, int product)
{
    size_t l = 0, lanes = g->lanes;
    for (; l + 16 <= lanes; l += 16)
        group512_lanes(g, l, 2, 0xff, upper, product);
    if (l < lanes) {
        size_t left = lanes - l;
        __mmask8 last = (__mmask8)((1u << (left > 8 ? left - 8 : left)) - 1u);
        if (left > 8)
            group512_lanes(g, l, 2, last, upper, product);
        else
            group512_lanes(g, l, 1, last, upper, product);
    }
}

DENSE_AVX512 static void group_avx512(const invdl_dense_group *g)
{
    if (g->upper && g->product)
        group512(g, 1, 1);
    else if (g->upper)
        group512(g, 1, 0);
    else if (g->product)
        group512(g, 0, 1);
    else
        group512(g, 0, 0);
}

const invdl_dense_kernels invdl_dense_avx512 = {
    .name = "avx512",
    .mr = 8,
    .strips = 2,
    .wide = {tile_wide_add_avx512, tile_wide_sub_avx512},
    .narrow = {tile_add_avx512, tile_sub_avx512},
    .solve_row = solve_row_avx512,
    .product_row = product_row_avx512,
    .group = group_avx512,
    .eliminate = eliminate_avx2,
};

#endif /* INVDL_HAVE_AVX2 */

const invdl_dense_kernels *invdl_dense_kernels_best(void)
{
#if INVDL_HAVE_AVX2
    /* Reads flags the runtime filled in at startup: no state of our own. */
    if (__builtin_cpu_supports("avx512f"))
        return &invdl_dense_avx512;
    if (__builtin_cpu_supports("avx2"))
        return &invdl_dense_avx2;
#endif
    return &invdl_dense_scalar;
}

/* ---- the free dense layer's factors ----------------------------------------- */

/* The exponent fields of floats, or-ed together after adding one: an
 * exponent of all ones (inf, NaN) carries into bit 31, any other does not.
 * Eight lanes, no branch: vectorized. */
static uint32_t nonfinite_bits(size_t n, const float *v)
{
    uint32_t lanes[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t l = 0; l < 8; l++) {
            uint32_t bits;
            memcpy(&bits, &v[i + l], sizeof bits);
            lanes[l] |= (bits & 0x7f800000u) + 0x00800000u;
        }
    for (; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        lanes[0] |= (bits & 0x7f800000u) + 0x00800000u;
    }
    uint32_t all = 0;
    for (size_t l = 0; l < 8; l++)
        all |= lanes[l];
    return all & 0x80000000u;
}

int invdl_dense_finite(size_t n, const float *v)
{
    return nonfinite_bits(n, v) == 0;
}

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

/* Doubles of an n x n matrix of factors: n rows of ld(n), then the rows
 * and columns a tile over the last rows may read past them. */
static int lu_count(size_t n, size_t *count)
{
    return invdl_mul_size(n + MR_MAX, invdl_dense_ld(n), count) && *count <= SIZE_MAX - NR &&
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
        invdl_dense_solve(k, depth, lu + k0 * ld + k0, ld, 1, 0, 1, cols, u12, ld);
        for (size_t j0 = 0; j0 < cols; j0 += NR)
            for (size_t r = 0; r < depth; r++)
                for (size_t j = 0; j < NR; j++)
                    strips[j0 * depth + r * NR + j] = j0 + j < cols ? u12[r * ld + j0 + j] : 0.0;
        invdl_dense_gemm(k, cols, cols, depth, lu + end * ld + k0, 1, (ptrdiff_t)ld, strips, NR,
                         NR * depth, lu + end * ld + end, ld, 1);
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

invdl_status invdl_dense_stage(const float *w, invdl_dense_factors *f)
{
    size_t n = f->n, np = invdl_dense_pad(n), ld = invdl_dense_ld(n);
    double *wd = f->w, *wt = f->wt;
    if (!invdl_dense_finite(n * n, w))
        return INVDL_EINVAL;
    memset(wd, 0, np * ld * sizeof *wd);
    memset(wt, 0, np * ld * sizeof *wt);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            wd[i * ld + j] = (double)w[i * n + j];
    /* The transpose by 8 x 8 tiles. */
    for (size_t i0 = 0; i0 < n; i0 += 8)
        for (size_t j0 = 0; j0 < n; j0 += 8)
            for (size_t i = i0; i < min_size(i0 + 8, n); i++)
                for (size_t j = j0; j < min_size(j0 + 8, n); j++)
                    wt[j * ld + i] = wd[i * ld + j];
    return INVDL_OK;
}

invdl_status invdl_dense_factor(const invdl_dense_kernels *k, const float *w,
                                invdl_dense_factors *f)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *lu = f->lu, norm1, norm_inf;
    if (!invdl_dense_finite(n * n, w))
        return INVDL_EINVAL;
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
        invdl_dense_solve(k, n - p0, lu + p0 * ld + p0, ld, 1, 0, 1, cnt, z + p0 * LL, LL);
        invdl_dense_solve(k, n, lu, ld, 1, 1, 0, cnt, z, LL);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < cnt; l++)
                abs_inv[i * ld + f->perm[p0 + l]] = fabs(z[i * LL + l]);
    }
    abs_norms(n, n, abs_inv, ld, f->work, &inv1, &inv_inf);
    if (!(norm1 * inv1 * (double)FLT_EPSILON <= 1.0))
        return INVDL_ESINGULAR;

    (void)invdl_dense_stage(w, f); /* finite, checked above */
    f->log_abs_det = log_det;
    f->norm = norm_inf;
    f->inv_norm = inv_inf;
    return INVDL_OK;
}

/* ---- staging blocks of samples ---------------------------------------------- */

/* Zeroes rows n.. of a lane-layout block up to a whole row tile, which a
 * GEMM strip reads (and discards). */
static void zero_tail_rows(size_t n, double *t)
{
    for (size_t j = n; j % MR_MAX != 0; j++)
        memset(t + j * LL, 0, LL * sizeof *t);
}

/* cnt samples of v ([cnt][n] floats) in lane layout, rows permuted when
 * perm is not NULL: t[i][l] = v[l][perm[i]] (or v[l][i]) minus bias[perm[i]]
 * when bias is not NULL; zero for cnt <= l < pad(cnt). */
static void stage_lanes(size_t n, size_t cnt, const float *v, const size_t *perm,
                        const float *bias, double *t)
{
    size_t lanes = invdl_dense_pad(cnt);
    for (size_t i = 0; i < n; i++) {
        size_t j = perm != NULL ? perm[i] : i;
        double *row = t + i * LL;
        if (bias != NULL) {
            double b = (double)bias[j];
            for (size_t l = 0; l < cnt; l++)
                row[l] = (double)v[l * n + j] - b;
        } else {
            for (size_t l = 0; l < cnt; l++)
                row[l] = (double)v[l * n + j];
        }
        for (size_t l = cnt; l < lanes; l++)
            row[l] = 0.0;
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

/* The reverse of stage_lanes: v[l][perm[i]] (or v[l][i]) = t[i][l] plus
 * bias[perm[i]] when bias is not NULL, rounded to float. */
static void unstage_lanes(size_t n, size_t cnt, const double *t, const size_t *perm,
                          const float *bias, float *v)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = perm != NULL ? perm[i] : i;
        const double *row = t + i * LL;
        if (bias != NULL) {
            double b = (double)bias[j];
            for (size_t l = 0; l < cnt; l++)
                v[l * n + j] = (float)(row[l] + b);
        } else {
            for (size_t l = 0; l < cnt; l++)
                v[l * n + j] = (float)row[l];
        }
    }
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

/* A lane-layout block (n rows, cnt lanes) by feature strips, as
 * stage_feature_strips lays them out. */
static void lanes_to_feature_strips(size_t n, size_t cnt, const double *t, double *s)
{
    for (size_t j0 = 0; j0 < n; j0 += NR) {
        double *strip = s + j0 * cnt;
        size_t m = min_size(NR, n - j0);
        for (size_t l = 0; l < cnt; l++) {
            for (size_t j = 0; j < m; j++)
                strip[l * NR + j] = t[(j0 + j) * LL + l];
            for (size_t j = m; j < NR; j++)
                strip[l * NR + j] = 0.0;
        }
    }
}

/* ---- the free dense layer on batches ------------------------------------------ */

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
        invdl_dense_gemm(k, n, cnt, n, f->w, 1, (ptrdiff_t)ld, xs, NR, NR * n, yt, LL, 0);
        unstage_lanes(n, cnt, yt, NULL, NULL, y + s0 * n);
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
        stage_lanes(n, cnt, y + s0 * n, f->perm, bias, zt);
        invdl_dense_solve(k, n, f->lu, f->lu_ld, 1, 0, 1, lanes, zt, LL);
        invdl_dense_solve(k, n, f->lu, f->lu_ld, 1, 1, 0, lanes, zt, LL);
        unstage_lanes(n, cnt, zt, NULL, NULL, x + s0 * n);
    }
}

/* dW +-= G^T X over cnt samples into the rows of c (G in lane layout, X by
 * feature strips), and the column sums of G into db (NULL: none). */
static void accumulate_outer(const invdl_dense_kernels *k, size_t n, size_t cnt,
                             const double *gt, const double *x, const c_rows *c, int sub)
{
    tiles(k, n, n, cnt, gt, 1, LL, x, NR, NR * cnt, c, sub);
}

static void accumulate_bias(size_t n, size_t cnt, const double *gt, const size_t *perm,
                            double *db, int sub)
{
    for (size_t i = 0; i < n; i++) {
        double *d = db + (perm != NULL ? perm[i] : i);
        for (size_t l = 0; l < cnt; l++)
            *d = sub ? *d - gt[i * LL + l] : *d + gt[i * LL + l];
    }
}

void invdl_dense_backward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                          int inverse, size_t batch, const float *in, const float *out,
                          const float *dout, float *din, double *dparams, double *scratch)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *first = scratch, *second = scratch + LL * ld;
    c_rows dw = {dparams, n, n, 0, C_FULL};
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        const float *gs = dout + s0 * n;
        float *ds = din + s0 * n;
        if (!inverse) {
            /* dW and db from g (lane layout) and x (feature strips); then
             * dx[j][s] = 0 + sum_i W_ij g_si from g in strip layout. */
            if (dparams != NULL) {
                stage_lanes(n, cnt, gs, NULL, NULL, first);
                stage_feature_strips(n, cnt, in + s0 * n, second);
                accumulate_outer(k, n, cnt, first, second, &dw, 0);
                accumulate_bias(n, cnt, first, NULL, dparams + n * n, 0);
            }
            stage_strips(n, cnt, gs, second);
            for (size_t j = 0; j < n; j++)
                memset(first + j * LL, 0, cnt * sizeof *first);
            invdl_dense_gemm(k, n, cnt, n, f->wt, 1, (ptrdiff_t)ld, second, NR, NR * n, first,
                             LL, 0);
            unstage_lanes(n, cnt, first, NULL, NULL, ds);
        } else {
            stage_lanes(n, cnt, gs, NULL, NULL, first);
            /* u = W^-T g: c = U^-T L^-T g by the transposed solves, then
             * u[perm[i]] = c[i]; the parameters take -u x^T and -u. */
            invdl_dense_solve(k, n, f->lu, 1, f->lu_ld, 0, 0, lanes, first, LL);
            invdl_dense_solve(k, n, f->lu, 1, f->lu_ld, 1, 1, lanes, first, LL);
            unstage_lanes(n, cnt, first, f->perm, NULL, ds);
            if (dparams != NULL) {
                /* Rows of -u in W's order: u's row perm[i] is c's row i. */
                for (size_t i = 0; i < n; i++)
                    memcpy(second + f->perm[i] * LL, first + i * LL, cnt * sizeof *first);
                zero_tail_rows(n, second);
                stage_feature_strips(n, cnt, out + s0 * n, first);
                accumulate_outer(k, n, cnt, second, first, &dw, 1);
                accumulate_bias(n, cnt, second, NULL, dparams + n * n, 1);
            }
        }
    }
}

/* ---- the LU-parametrised layer -------------------------------------------------- */

void invdl_dense_plu_free(invdl_dense_plu *f)
{
    if (f != NULL) {
        invdl_free(f->lu);
        invdl_free(f->perm);
        invdl_free(f->unfloored);
        invdl_free(f->work);
        invdl_free(f);
    }
}

invdl_dense_plu *invdl_dense_plu_new(size_t n)
{
    size_t lus, work;
    /* 4n for the estimate, or W^-1 in lane layout when n <= BLOCK. */
    if (!lu_count(n, &lus) || !invdl_mul_size(n, n <= BLOCK ? LL : 4, &work))
        return NULL;
    invdl_dense_plu *f = invdl_malloc(sizeof *f);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    f->n = n;
    f->lu_ld = invdl_dense_ld(n);
    f->lu = invdl_calloc_array(lus, sizeof *f->lu);
    f->perm = invdl_alloc_array(n, sizeof *f->perm);
    f->unfloored = invdl_alloc_array(n, sizeof *f->unfloored);
    f->work = invdl_alloc_array(work, sizeof *f->work);
    if (f->lu == NULL || f->perm == NULL || f->unfloored == NULL || f->work == NULL) {
        invdl_dense_plu_free(f);
        return NULL;
    }
    return f;
}

invdl_status invdl_dense_plu_set(const invdl_dense_kernels *k, invdl_dense_plu *f,
                                 const float *settings, const float *values, int complete)
{
    size_t n = f->n, ld = f->lu_ld, tri = n * (n - 1) / 2;
    float s_min = settings[0];
    const float *lower = values, *upper = values + tri, *s = values + 2 * tri;
    if (nonfinite_bits(n * n + n, values) != 0)
        return INVDL_EINVAL;
    /* The permutation, each index once (unfloored[] marks the seen ones
     * until it is filled below). */
    memset(f->unfloored, 0, n * sizeof *f->unfloored);
    for (size_t i = 0; i < n; i++) {
        size_t pi = (size_t)settings[1 + i];
        if (f->unfloored[pi])
            return INVDL_EINVAL;
        f->unfloored[pi] = 1;
        f->perm[i] = pi;
    }
    for (size_t i = 0; i < n; i++) {
        double *row = f->lu + i * ld;
        const float *lrow = lower + i * (i - 1) / 2, *urow = upper + i * (2 * n - i - 1) / 2;
        for (size_t c = 0; c < i; c++)
            row[c] = (double)lrow[c];
        f->unfloored[i] = fabsf(s[i]) >= s_min;
        row[i] = f->unfloored[i] ? (double)s[i] : (double)copysignf(s_min, s[i]);
        for (size_t c = i + 1; c < n; c++)
            row[c] = (double)urow[c - i - 1];
    }
    if (complete) {
        double log_det = 0.0;
        for (size_t i = 0; i < n; i++)
            log_det += log(fabs(f->lu[i * ld + i]));
        f->log_abs_det = log_det;
        invdl_dense_plu_norms(k, f);
    }
    return INVDL_OK;
}

/* a_0 b_0 + a_1 b_1 + ... in eight interleaved partial sums (which the
 * compiler runs as one vector), added up at the end. */
static inline double dot8(size_t n, const double *a, const double *b)
{
    double part[8] = {0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (size_t j = 0; j < 8; j++)
            part[j] += a[k + j] * b[k + j];
    for (; k < n; k++)
        part[0] += a[k] * b[k];
    double low = (part[0] + part[1]) + (part[2] + part[3]);
    return low + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* v = W^-1 v or W^-T v for one vector, for the norm estimate: rows of L
 * and U read as dot products, columns (the transposes) as updates along
 * rows, so every inner loop is contiguous.  o holds n doubles of
 * scratch. */
enum { APPLY_INV, APPLY_INVT };

static void plu_apply_vector(const invdl_dense_plu *f, int which, double *v, double *o)
{
    size_t n = f->n, ld = f->lu_ld;
    const double *lu = f->lu;
    switch (which) {
    case APPLY_INV: /* o_i = v_perm[i]; L o' = o; U v = o' */
        for (size_t i = 0; i < n; i++)
            o[i] = v[f->perm[i]];
        for (size_t i = 0; i < n; i++)
            o[i] -= dot8(i, lu + i * ld, o);
        for (size_t i = n; i-- > 0;)
            v[i] = (o[i] - dot8(n - 1 - i, lu + i * ld + i + 1, v + i + 1)) / lu[i * ld + i];
        break;
    default: /* U^T a = v; L^T c = a; v_perm[i] = c_i */
        memcpy(o, v, n * sizeof *o);
        for (size_t i = 0; i < n; i++) {
            o[i] /= lu[i * ld + i];
            for (size_t k = i + 1; k < n; k++)
                o[k] -= lu[i * ld + k] * o[i];
        }
        for (size_t i = n; i-- > 1;)
            for (size_t k = 0; k < i; k++)
                o[k] -= lu[i * ld + k] * o[i];
        for (size_t i = 0; i < n; i++)
            v[f->perm[i]] = o[i];
        break;
    }
}

/* An estimate of |B|_1 from products with B and B^T (b and bt): Hager's
 * method with Higham's refinements (LAPACK's dlacn2): at most five steps,
 * then the alternating vector as a last check.  |W^-T|_1 = |W^-1|_inf, so
 * the caller asks for the transpose. */
static double plu_estimate(const invdl_dense_plu *f, int b, int bt)
{
    size_t n = f->n;
    double *x = f->work, *o = f->work + n, *sgn = f->work + 2 * n;
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0 / (double)n;
    plu_apply_vector(f, b, x, o);
    double est = 0.0;
    for (size_t i = 0; i < n; i++)
        est += fabs(x[i]);
    if (n == 1 || !(est == est))
        return est;
    for (int iter = 0; iter < 5; iter++) {
        for (size_t i = 0; i < n; i++)
            sgn[i] = x[i] < 0.0 ? -1.0 : 1.0;
        memcpy(x, sgn, n * sizeof *x);
        plu_apply_vector(f, bt, x, o);
        size_t j = 0;
        for (size_t i = 1; i < n; i++)
            if (fabs(x[i]) > fabs(x[j]))
                j = i;
        memset(x, 0, n * sizeof *x);
        x[j] = 1.0;
        plu_apply_vector(f, b, x, o);
        double next = 0.0;
        int same = 1;
        for (size_t i = 0; i < n; i++) {
            next += fabs(x[i]);
            same &= (x[i] < 0.0 ? -1.0 : 1.0) == sgn[i];
        }
        if (same || next <= est) {
            est = next > est ? next : est;
            break;
        }
        est = next;
    }
    /* The alternating vector catches what the steps miss. */
    for (size_t i = 0; i < n; i++)
        x[i] = (i % 2 ? -1.0 : 1.0) * (1.0 + (double)i / (double)(n - 1));
    plu_apply_vector(f, b, x, o);
    double alt = 0.0;
    for (size_t i = 0; i < n; i++)
        alt += fabs(x[i]);
    alt = 2.0 * alt / (double)(3 * n);
    return alt > est ? alt : est;
}

void invdl_dense_plu_norms(const invdl_dense_kernels *k, invdl_dense_plu *f)
{
    /* |W|_inf <= |L|_inf |U|_inf: largest row sums, in index order. */
    size_t n = f->n, ld = f->lu_ld;
    double lmax = 0.0, umax = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *row = f->lu + i * ld;
        double l = 1.0, u = 0.0;
        for (size_t c = 0; c < i; c++)
            l += fabs(row[c]);
        for (size_t c = i; c < n; c++)
            u += fabs(row[c]);
        lmax = l > lmax ? l : lmax;
        umax = u > umax ? u : umax;
    }
    f->norm = lmax * umax;
    if (n > BLOCK) {
        f->inv_norm = plu_estimate(f, APPLY_INVT, APPLY_INV);
        return;
    }
    /* Small W: W^-1 itself, all columns in one block of solves (column m
     * solves L U z = P^T e_m), then its largest row sum. */
    double *z = f->work;
    size_t lanes = invdl_dense_pad(n);
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < lanes; m++)
            z[i * LL + m] = m == f->perm[i] ? 1.0 : 0.0;
    invdl_dense_solve(k, n, f->lu, ld, 1, 0, 1, lanes, z, LL);
    invdl_dense_solve(k, n, f->lu, ld, 1, 1, 0, lanes, z, LL);
    double inv = 0.0;
    for (size_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (size_t m = 0; m < n; m++)
            sum += fabs(z[i * LL + m]);
        inv = sum > inv || sum != sum ? sum : inv;
    }
    f->inv_norm = inv;
}

void invdl_dense_plu_forward(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                             const float *bias, size_t batch, const float *x, float *y,
                             double *scratch)
{
    size_t n = f->n, ld = invdl_dense_ld(n);
    double *xt = scratch, *zt = scratch + LL * ld;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        stage_lanes(n, cnt, x + s0 * n, NULL, NULL, xt);
        invdl_dense_product(k, n, f->lu, f->lu_ld, 1, 1, 0, lanes, xt, LL, zt, LL);
        invdl_dense_product(k, n, f->lu, f->lu_ld, 1, 0, 1, lanes, zt, LL, xt, LL);
        unstage_lanes(n, cnt, xt, f->perm, bias, y + s0 * n);
    }
}

void invdl_dense_plu_inverse(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                             const float *bias, size_t batch, const float *y, float *x,
                             double *scratch)
{
    size_t n = f->n;
    double *zt = scratch;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        stage_lanes(n, cnt, y + s0 * n, f->perm, bias, zt);
        invdl_dense_solve(k, n, f->lu, f->lu_ld, 1, 0, 1, lanes, zt, LL);
        invdl_dense_solve(k, n, f->lu, f->lu_ld, 1, 1, 0, lanes, zt, LL);
        unstage_lanes(n, cnt, zt, NULL, NULL, x + s0 * n);
    }
}

/* ds_i +-= sum over the block's samples of a_i x_i where u_i is s_i: the
 * diagonal of the dU term, in sample order. */
static void accumulate_diagonal(const invdl_dense_plu *f, size_t cnt, const double *at,
                                const float *x, double *ds, int sub)
{
    size_t n = f->n;
    for (size_t i = 0; i < n; i++) {
        if (!f->unfloored[i])
            continue;
        double acc = ds[i];
        for (size_t l = 0; l < cnt; l++) {
            double p = at[i * LL + l] * (double)x[l * n + i];
            acc = sub ? acc - p : acc + p;
        }
        ds[i] = acc;
    }
}

void invdl_dense_plu_backward(const invdl_dense_kernels *k, const invdl_dense_plu *f,
                              int inverse, size_t batch, const float *in, const float *out,
                              const float *dout, float *din, double *dparams, double *scratch)
{
    size_t n = f->n, ld = invdl_dense_ld(n), tri = n * (n - 1) / 2;
    const double *lu = f->lu;
    size_t lld = f->lu_ld;
    double *A = scratch, *B = scratch + LL * ld, *C = scratch + 2 * LL * ld;
    /* The parts of dparams: L's, U's, s's and b's gradients. */
    double *dup = dparams != NULL ? dparams + tri : NULL;
    double *ds = dparams != NULL ? dparams + 2 * tri : NULL, *db = ds != NULL ? ds + n : NULL;
    c_rows dl = {dparams, 0, n, n, C_LOWER}, du = {dup, 0, n, n, C_UPPER};
    const float *x = inverse ? out : in;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), lanes = invdl_dense_pad(cnt);
        const float *gs = dout + s0 * n, *xs = x + s0 * n;
        float *dst = din + s0 * n;
        if (!inverse) {
            /* B = g' (g'_i = g_perm[i]), C = h = L^T g', A = din = U^T h. */
            stage_lanes(n, cnt, gs, f->perm, NULL, B);
            invdl_dense_product(k, n, lu, 1, lld, 1, 1, lanes, B, LL, C, LL);
            invdl_dense_product(k, n, lu, 1, lld, 0, 0, lanes, C, LL, A, LL);
            unstage_lanes(n, cnt, A, NULL, NULL, dst);
            if (dparams != NULL) {
                /* db += g; dU += h x^T (ds its diagonal) with A = x by
                 * feature strips; then C = z = U x and dL += g' z^T. */
                accumulate_bias(n, cnt, B, f->perm, db, 0);
                stage_feature_strips(n, cnt, xs, A);
                zero_tail_rows(n, C);
                accumulate_outer(k, n, cnt, C, A, &du, 0);
                accumulate_diagonal(f, cnt, C, xs, ds, 0);
                stage_lanes(n, cnt, xs, NULL, NULL, A);
                invdl_dense_product(k, n, lu, lld, 1, 1, 0, lanes, A, LL, C, LL);
                lanes_to_feature_strips(n, cnt, C, A);
                accumulate_outer(k, n, cnt, B, A, &dl, 0);
            }
        } else {
            /* A = a = U^-T g, then dU -= a x^T; A = c = L^-T a, din and db
             * from c; C = z = U x, dL -= c z^T. */
            stage_lanes(n, cnt, gs, NULL, NULL, A);
            invdl_dense_solve(k, n, lu, 1, lld, 0, 0, lanes, A, LL);
            if (dparams != NULL) {
                zero_tail_rows(n, A);
                stage_feature_strips(n, cnt, xs, B);
                accumulate_outer(k, n, cnt, A, B, &du, 1);
                accumulate_diagonal(f, cnt, A, xs, ds, 1);
            }
            invdl_dense_solve(k, n, lu, 1, lld, 1, 1, lanes, A, LL);
            if (dparams != NULL) {
                accumulate_bias(n, cnt, A, f->perm, db, 1);
                stage_lanes(n, cnt, xs, NULL, NULL, B);
                invdl_dense_product(k, n, lu, lld, 1, 1, 0, lanes, B, LL, C, LL);
                lanes_to_feature_strips(n, cnt, C, B);
                zero_tail_rows(n, A);
                accumulate_outer(k, n, cnt, A, B, &dl, 1);
            }
            unstage_lanes(n, cnt, A, f->perm, NULL, dst);
        }
    }
}
