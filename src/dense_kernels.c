/*
 * dense_kernels.c - the dense layer's batched arithmetic (dense_kernels.h):
 * three kernels per code path (GEMM, triangular solve, elimination step)
 * and the batch functions built on them, which stage blocks of samples in
 * double and are shared by both paths.
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

_Static_assert(BLOCK % NR == 0, "a block holds whole lane groups");
_Static_assert(MR <= NR && NR % MR == 0, "padded rows hold whole row tiles");

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- the tiling shared by both paths -------------------------------------- */

/* C[0..MR)[0..NR) += A B over `depth` terms, in order; see the gemm entry
 * of invdl_dense_kernels for the strides. */
typedef void (*tile_fn)(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                        size_t bk, double *c, size_t ldc);

/* Walks C in MR x NR tiles, column strips outermost, so that a strip of B
 * stays in cache while A streams past it.  Edge tiles run on a copy. */
static void gemm_tiles(tile_fn tile, size_t rows, size_t cols, size_t depth, const double *a,
                       size_t ak, size_t ar, const double *b, size_t bk, double *c, size_t ldc)
{
    for (size_t l0 = 0; l0 < cols; l0 += NR) {
        size_t nc = min_size(NR, cols - l0);
        for (size_t r0 = 0; r0 < rows; r0 += MR) {
            size_t nr = min_size(MR, rows - r0);
            double *ct = c + r0 * ldc + l0;
            if (nr == MR && nc == NR) {
                tile(depth, a + r0 * ar, ak, ar, b + l0, bk, ct, ldc);
                continue;
            }
            double edge[MR * NR];
            memset(edge, 0, sizeof edge);
            for (size_t r = 0; r < nr; r++)
                memcpy(edge + r * NR, ct + r * ldc, nc * sizeof *edge);
            tile(depth, a + r0 * ar, ak, ar, b + l0, bk, edge, NR);
            for (size_t r = 0; r < nr; r++)
                memcpy(ct + r * ldc, edge + r * NR, nc * sizeof *edge);
        }
    }
}

/* ---- portable path ------------------------------------------------------- */

static void tile_scalar(size_t depth, const double *a, size_t ak, size_t ar, const double *b,
                        size_t bk, double *c, size_t ldc)
{
    double acc[MR][NR];
    for (size_t r = 0; r < MR; r++)
        for (size_t l = 0; l < NR; l++)
            acc[r][l] = c[r * ldc + l];
    for (size_t k = 0; k < depth; k++) {
        const double *ak_row = a + k * ak, *bk_row = b + k * bk;
        for (size_t r = 0; r < MR; r++) {
            double x = ak_row[r * ar];
            for (size_t l = 0; l < NR; l++)
                acc[r][l] = acc[r][l] + x * bk_row[l];
        }
    }
    for (size_t r = 0; r < MR; r++)
        for (size_t l = 0; l < NR; l++)
            c[r * ldc + l] = acc[r][l];
}

static void gemm_scalar(size_t rows, size_t cols, size_t depth, const double *a, size_t ak,
                        size_t ar, const double *b, size_t bk, double *c, size_t ldc)
{
    gemm_tiles(tile_scalar, rows, cols, depth, a, ak, ar, b, bk, c, ldc);
}

static void solve_scalar(size_t n, const double *t, int upper, int unit, size_t lanes, double *z,
                         size_t ldz)
{
    for (size_t step = 0; step < n; step++) {
        size_t i = upper ? n - 1 - step : step;
        size_t k0 = upper ? i + 1 : 0, k1 = upper ? n : i;
        const double *ti = t + i * n;
        for (size_t l0 = 0; l0 < lanes; l0 += NR) {
            size_t nl = min_size(NR, lanes - l0);
            double acc[NR];
            for (size_t l = 0; l < nl; l++)
                acc[l] = z[i * ldz + l0 + l];
            for (size_t k = k0; k < k1; k++) {
                const double *zk = z + k * ldz + l0;
                for (size_t l = 0; l < nl; l++)
                    acc[l] = acc[l] - ti[k] * zk[l];
            }
            for (size_t l = 0; l < nl; l++)
                z[i * ldz + l0 + l] = unit ? acc[l] : acc[l] / ti[i];
        }
    }
}

static void eliminate_scalar(size_t n, size_t k, double *lu)
{
    const double *rk = lu + k * n;
    double pivot = rk[k];
    for (size_t i = k + 1; i < n; i++) {
        double *ri = lu + i * n;
        double m = ri[k] / pivot;
        ri[k] = m;
        for (size_t j = k + 1; j < n; j++)
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
 * of B per step.  sub == 1 subtracts the products instead (the solves). */
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

DENSE_AVX2 static void tile_avx2(size_t depth, const double *a, size_t ak, size_t ar,
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
                                 size_t ak, size_t ar, const double *b, size_t bk, double *c,
                                 size_t ldc)
{
    gemm_tiles(tile_avx2, rows, cols, depth, a, ak, ar, b, bk, c, ldc);
}

/* One row of a solve on 4*v lanes: zi = (zi - sum_k t[k] zk[k]) [/ d],
 * k = 0..count-1 in order, zk rows ldz apart. */
DENSE_AVX2_INLINE void solve_row(const double *t, size_t count, const double *zk, size_t ldz,
                                 double *zi, int unit, double d, int v)
{
    __m256d acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < v; q++)
        acc[q] = _mm256_loadu_pd(zi + 4 * q);
    for (size_t k = 0; k < count; k++) {
        __m256d tk = _mm256_broadcast_sd(t + k);
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

/* Row i of a solve over all lanes, terms k0..k1-1: as wide as the lanes
 * allow, 32 lanes (eight accumulators in flight) where there are. */
DENSE_AVX2_INLINE void solve_row_lanes(const double *t, size_t n, size_t i, size_t k0, size_t k1,
                                       int unit, size_t lanes, double *z, size_t ldz)
{
    const double *ti = t + i * n;
    double d = ti[i];
    size_t l0 = 0;
    for (; l0 + 32 <= lanes; l0 += 32)
        solve_row(ti + k0, k1 - k0, z + k0 * ldz + l0, ldz, z + i * ldz + l0, unit, d, 8);
    if (l0 + 16 <= lanes) {
        solve_row(ti + k0, k1 - k0, z + k0 * ldz + l0, ldz, z + i * ldz + l0, unit, d, 4);
        l0 += 16;
    }
    if (l0 + 8 <= lanes)
        solve_row(ti + k0, k1 - k0, z + k0 * ldz + l0, ldz, z + i * ldz + l0, unit, d, 2);
}

/* Lower solves run MR rows at a time: the terms k < i0 that all rows of the
 * group share come first in every row's order, so they run as one GEMM-like
 * tile; the triangle within the group follows row by row.  Upper solves
 * cannot be grouped without changing the order (row i needs z_i+1 first,
 * which is the last row finished), so they run row by row. */
DENSE_AVX2 static void solve_avx2(size_t n, const double *t, int upper, int unit, size_t lanes,
                                  double *z, size_t ldz)
{
    if (upper) {
        for (size_t i = n; i-- > 0;)
            solve_row_lanes(t, n, i, i + 1, n, unit, lanes, z, ldz);
        return;
    }
    size_t i0 = 0;
    for (; i0 + MR <= n; i0 += MR) {
        if (i0 > 0)
            for (size_t l0 = 0; l0 < lanes; l0 += NR)
                tile_sub_avx2(i0, t + i0 * n, 1, n, z + l0, ldz, z + i0 * ldz + l0, ldz);
        for (size_t i = i0; i < i0 + MR; i++)
            solve_row_lanes(t, n, i, i0, i, unit, lanes, z, ldz);
    }
    for (size_t i = i0; i < n; i++)
        solve_row_lanes(t, n, i, 0, i, unit, lanes, z, ldz);
}

DENSE_AVX2 static void eliminate_avx2(size_t n, size_t k, double *lu)
{
    const double *rk = lu + k * n;
    double pivot = rk[k];
    for (size_t i = k + 1; i < n; i++) {
        double *ri = lu + i * n;
        double m = ri[k] / pivot;
        ri[k] = m;
        __m256d mv = _mm256_set1_pd(m);
        size_t j = k + 1;
        for (; j + 4 <= n; j += 4)
            _mm256_storeu_pd(ri + j, _mm256_sub_pd(_mm256_loadu_pd(ri + j),
                                                   _mm256_mul_pd(mv, _mm256_loadu_pd(rk + j))));
        for (; j < n; j++)
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
        invdl_free(f->lu);
        invdl_free(f->lut);
        invdl_free(f->perm);
        invdl_free(f->work);
        invdl_free(f);
    }
}

invdl_dense_factors *invdl_dense_factors_new(size_t n)
{
    size_t np = invdl_dense_pad(n), nn, npnp, work;
    if (np < n || !invdl_mul_size(n, n, &nn) || !invdl_mul_size(np, np, &npnp) ||
        !invdl_mul_size(n, BLOCK + 2, &work))
        return NULL;
    invdl_dense_factors *f = invdl_malloc(sizeof *f);
    if (f == NULL)
        return NULL;
    memset(f, 0, sizeof *f);
    f->n = n;
    f->w = invdl_alloc_array(npnp, sizeof *f->w);
    f->lu = invdl_alloc_array(nn, sizeof *f->lu);
    f->lut = invdl_alloc_array(nn, sizeof *f->lut);
    f->perm = invdl_alloc_array(n, sizeof *f->perm);
    f->work = invdl_alloc_array(work, sizeof *f->work);
    if (f->w == NULL || f->lu == NULL || f->lut == NULL || f->perm == NULL || f->work == NULL) {
        invdl_dense_factors_free(f);
        return NULL;
    }
    return f;
}

invdl_status invdl_dense_factor(const invdl_dense_kernels *k, const float *w,
                                invdl_dense_factors *f)
{
    size_t n = f->n, np = invdl_dense_pad(n);
    double *lu = f->lu;
    for (size_t i = 0; i < n * n; i++)
        lu[i] = (double)w[i];
    for (size_t i = 0; i < n; i++)
        f->perm[i] = i;

    double norm1 = 0.0, norm_inf = 0.0;
    for (size_t j = 0; j < n; j++) {
        double col = 0.0, row = 0.0;
        for (size_t i = 0; i < n; i++) {
            col += fabs(lu[i * n + j]);
            row += fabs(lu[j * n + i]);
        }
        norm1 = col > norm1 ? col : norm1;
        norm_inf = row > norm_inf ? row : norm_inf;
    }

    double log_det = 0.0;
    for (size_t c = 0; c < n; c++) {
        size_t piv = c;
        for (size_t i = c + 1; i < n; i++)
            if (fabs(lu[i * n + c]) > fabs(lu[piv * n + c]))
                piv = i;
        if (!(lu[piv * n + c] != 0.0))
            return INVDL_ESINGULAR;
        if (piv != c) {
            for (size_t j = 0; j < n; j++) {
                double t = lu[c * n + j];
                lu[c * n + j] = lu[piv * n + j];
                lu[piv * n + j] = t;
            }
            size_t t = f->perm[c];
            f->perm[c] = f->perm[piv];
            f->perm[piv] = t;
        }
        log_det += log(fabs(lu[c * n + c]));
        k->eliminate(n, c, lu);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            f->lut[j * n + i] = lu[i * n + j];

    /* |W^-1|_1 and |W^-1|_inf from the columns of W^-1, BLOCK columns per
     * pair of solves: O(n^3), like the factorisation. */
    double *z = f->work, *row_sums = f->work + n * BLOCK;
    double inv1 = 0.0, inv_inf = 0.0;
    memset(row_sums, 0, n * sizeof *row_sums);
    for (size_t j0 = 0; j0 < n; j0 += BLOCK) {
        size_t cnt = min_size(BLOCK, n - j0), lanes = invdl_dense_pad(cnt);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < lanes; l++)
                z[i * BLOCK + l] = f->perm[i] == j0 + l ? 1.0 : 0.0;
        k->solve(n, lu, 0, 1, lanes, z, BLOCK);
        k->solve(n, lu, 1, 0, lanes, z, BLOCK);
        for (size_t l = 0; l < cnt; l++) {
            double col = 0.0;
            for (size_t i = 0; i < n; i++) {
                col += fabs(z[i * BLOCK + l]);
                row_sums[i] += fabs(z[i * BLOCK + l]);
            }
            inv1 = col > inv1 ? col : inv1;
        }
    }
    for (size_t i = 0; i < n; i++)
        inv_inf = row_sums[i] > inv_inf ? row_sums[i] : inv_inf;
    if (!(norm1 * inv1 * (double)FLT_EPSILON <= 1.0))
        return INVDL_ESINGULAR;

    memset(f->w, 0, np * np * sizeof *f->w);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            f->w[i * np + j] = (double)w[i * n + j];
    f->log_abs_det = log_det;
    f->norm = norm_inf;
    f->inv_norm = inv_inf;
    return INVDL_OK;
}

/* ---- batches ------------------------------------------------------------- */

/* Samples s0.. of v ([batch][n] floats) in lane layout: t[j][l] = v[s0+l][j]
 * for l < cnt, 0 for cnt <= l < lanes. */
static void stage_lanes(size_t n, size_t cnt, size_t lanes, const float *v, double *t)
{
    for (size_t j = 0; j < n; j++) {
        for (size_t l = 0; l < cnt; l++)
            t[j * BLOCK + l] = (double)v[l * n + j];
        for (size_t l = cnt; l < lanes; l++)
            t[j * BLOCK + l] = 0.0;
    }
}

/* Samples in row layout: r[l][j] = v[l][j], zero up to pad(n) columns and
 * up to a whole row tile. */
static void stage_rows(size_t n, size_t cnt, const float *v, double *r)
{
    size_t np = invdl_dense_pad(n), rows = (cnt + MR - 1) / MR * MR;
    for (size_t l = 0; l < rows; l++) {
        size_t j = 0;
        if (l < cnt)
            for (; j < n; j++)
                r[l * np + j] = (double)v[l * n + j];
        for (; j < np; j++)
            r[l * np + j] = 0.0;
    }
}

void invdl_dense_forward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                         const float *bias, size_t batch, const float *x, float *y,
                         double *scratch)
{
    size_t n = f->n, np = invdl_dense_pad(n);
    double *xt = scratch, *yt = scratch + BLOCK * np;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0);
        stage_lanes(n, cnt, invdl_dense_pad(cnt), x + s0 * n, xt);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < cnt; l++)
                yt[i * BLOCK + l] = (double)bias[i];
        /* yt[i][s] = b_i + sum_j W_ij x_sj */
        k->gemm(n, cnt, n, f->w, 1, np, xt, BLOCK, yt, BLOCK);
        for (size_t l = 0; l < cnt; l++)
            for (size_t i = 0; i < n; i++)
                y[(s0 + l) * n + i] = (float)yt[i * BLOCK + l];
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
                zt[i * BLOCK + l] = (double)ys[l * n + p] - b;
            for (size_t l = cnt; l < lanes; l++)
                zt[i * BLOCK + l] = 0.0;
        }
        k->solve(n, f->lu, 0, 1, lanes, zt, BLOCK);
        k->solve(n, f->lu, 1, 0, lanes, zt, BLOCK);
        for (size_t l = 0; l < cnt; l++)
            for (size_t i = 0; i < n; i++)
                x[(s0 + l) * n + i] = (float)zt[i * BLOCK + l];
    }
}

/* dW += G^T X and db += column sums of G, over cnt samples in row layout. */
static void accumulate_params(const invdl_dense_kernels *k, size_t n, size_t cnt, const double *g,
                              const double *x, double *dparams)
{
    size_t np = invdl_dense_pad(n);
    k->gemm(n, n, cnt, g, np, 1, x, np, dparams, n);
    for (size_t l = 0; l < cnt; l++)
        for (size_t i = 0; i < n; i++)
            dparams[n * n + i] += g[l * np + i];
}

void invdl_dense_backward(const invdl_dense_kernels *k, const invdl_dense_factors *f,
                          int inverse, size_t batch, const float *in, const float *out,
                          const float *dout, float *din, double *dparams, double *scratch)
{
    size_t n = f->n, np = invdl_dense_pad(n);
    double *g = scratch, *other = scratch + BLOCK * np;
    for (size_t s0 = 0; s0 < batch; s0 += BLOCK) {
        size_t cnt = min_size(BLOCK, batch - s0), rows = (cnt + MR - 1) / MR * MR;
        const float *gs = dout + s0 * n;
        float *ds = din + s0 * n;
        if (!inverse) {
            /* din = W^T g: dx[s][j] = 0 + sum_i g_si W_ij, in `other`. */
            stage_rows(n, cnt, gs, g);
            if (dparams != NULL) {
                stage_rows(n, cnt, in + s0 * n, other);
                accumulate_params(k, n, cnt, g, other, dparams);
            }
            memset(other, 0, rows * np * sizeof *other);
            k->gemm(cnt, n, n, g, 1, np, f->w, np, other, np);
            for (size_t l = 0; l < cnt; l++)
                for (size_t j = 0; j < n; j++)
                    ds[l * n + j] = (float)other[l * np + j];
        } else {
            /* u = W^-T g: c = U^-T L^-T g by the transposed solves in lane
             * layout, u[perm[i]] = c[i]; the parameters' coefficient is -u. */
            size_t lanes = invdl_dense_pad(cnt);
            stage_lanes(n, cnt, lanes, gs, other);
            k->solve(n, f->lut, 0, 0, lanes, other, BLOCK);
            k->solve(n, f->lut, 1, 1, lanes, other, BLOCK);
            memset(g, 0, rows * np * sizeof *g);
            for (size_t i = 0; i < n; i++) {
                size_t p = f->perm[i];
                for (size_t l = 0; l < cnt; l++) {
                    double u = other[i * BLOCK + l];
                    ds[l * n + p] = (float)u;
                    g[l * np + p] = -u;
                }
            }
            if (dparams != NULL) {
                stage_rows(n, cnt, out + s0 * n, other);
                accumulate_params(k, n, cnt, g, other, dparams);
            }
        }
    }
}
