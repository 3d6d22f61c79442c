/*
 * test_dense.c - the dense layer's batched kernels (src/kernels/dense_kernels.c).
 *
 * The kernels promise the results of the plain loops bit for bit: every
 * sum starts where the loops start and adds its products one by one in the
 * same order, in double, without FMA.  So each check here compares with a
 * reference written in this file as those loops (per sample, per output,
 * in the orders dense_kernels.h states) and demands identical bits, on
 * every code path the CPU runs (scalar, AVX2, AVX-512), for widths and
 * batches that leave every kind of tail (tiles of 4 x 8, 8 x 8 and 8 x 16,
 * lane groups of 4, 8 and masked ones, groups of triangle rows, blocks of
 * 32 samples, LU panels of 32 columns).  The LU-parametrised layer's
 * products, solves and backward passes likewise against dense_plain.c.
 * This file is built with -ffp-contract=off so that its references round
 * twice as the loops do.
 *
 * The loops themselves are then checked against independent references
 * with stated tolerances: the inverse against W^-1 (y - b) from an explicit
 * inverse in long double, and the backward passes against central finite
 * differences in long double.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dense_kernels.h"
#include "dense_plain.h"
#include "invdl.h"
#include "reference.h"

#define MR INVDL_DENSE_MR_MAX
#define NR INVDL_DENSE_NR

/* ---- helpers ------------------------------------------------------------ */

static double uniform(uint64_t *s)
{
    return (double)(test_rand(s) >> 11) * 0x1p-52 - 1.0; /* [-1, 1) */
}

static double *random_doubles(size_t n, uint64_t seed)
{
    double *v = malloc((n + 1) * sizeof *v);
    assert_non_null(v);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = uniform(&s);
    return v;
}

static float *random_floats(size_t n, uint64_t seed)
{
    float *v = malloc((n + 1) * sizeof *v);
    assert_non_null(v);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)uniform(&s);
    return v;
}

static int same_doubles(size_t n, const double *a, const double *b)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static int same_floats(size_t n, const float *a, const float *b)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

/* The code paths this CPU runs: the scalar one always. */
static const invdl_dense_kernels *paths[3];
static size_t path_count;

static int setup(void **state)
{
    (void)state;
    path_count = 0;
    paths[path_count++] = &invdl_dense_scalar;
#if INVDL_HAVE_AVX2
    if (__builtin_cpu_supports("avx2"))
        paths[path_count++] = &invdl_dense_avx2;
    if (__builtin_cpu_supports("avx512f"))
        paths[path_count++] = &invdl_dense_avx512;
#endif
    return 0;
}

/* ---- kernels against their loops ----------------------------------------- */

static void test_gemm(void **state)
{
    (void)state;
    static const size_t rows_list[] = {1, 3, 4, 5, 8, 9, 17};
    static const size_t cols_list[] = {1, 7, 8, 9, 16, 17, 24, 33};
    static const size_t depth_list[] = {0, 1, 5, 33};
    for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++)
        for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++)
            for (size_t di = 0; di < sizeof depth_list / sizeof *depth_list; di++)
                for (int mode = 0; mode < 8; mode++) {
                    size_t rows = rows_list[ri], cols = cols_list[ci], depth = depth_list[di];
                    /* sub: subtract; A read transposed (ak = 1) or not; B by
                     * rows wider than its columns, or in packed strips a
                     * little more than NR * depth apart; backwards: k walks
                     * A and B from their ends (negative strides), as upper
                     * triangles do. */
                    int sub = mode & 1, packed = (mode >> 1) & 1, backwards = mode >> 2;
                    int trans = (int)((ri + ci + di) % 2);
                    size_t rpad = (rows + MR - 1) / MR * MR, cpad = (cols + NR - 1) / NR * NR;
                    ptrdiff_t ak = trans ? 1 : (ptrdiff_t)rpad + 2;
                    ptrdiff_t ar = trans ? (ptrdiff_t)depth + 3 : 1;
                    ptrdiff_t bk = packed ? NR : (ptrdiff_t)cpad + 5;
                    size_t bp = packed ? NR * depth + 3 : NR;
                    size_t ldc = cols + 2;
                    uint64_t seed = rows * 1000 + cols * 10 + depth + (uint64_t)mode;
                    size_t alen = rpad * (depth + 3) + rpad + depth * (rpad + 2);
                    size_t blen = cpad / NR * bp + depth * (size_t)bk + NR;
                    double *a = random_doubles(alen, seed);
                    double *b = random_doubles(blen, seed + 1);
                    double *c0 = random_doubles(rows * ldc, seed + 2);
                    double *want = malloc(rows * ldc * sizeof *want + 1);
                    double *got = malloc(rows * ldc * sizeof *got + 1);
                    assert_non_null(want);
                    assert_non_null(got);
                    /* k = 0 at the last row of A and B when walking back. */
                    const double *a0 = backwards && depth > 0 ? a + (ptrdiff_t)(depth - 1) * ak : a;
                    const double *b0 = backwards && depth > 0 ? b + (ptrdiff_t)(depth - 1) * bk : b;
                    ptrdiff_t ak_used = backwards ? -ak : ak, bk_used = backwards ? -bk : bk;
                    memcpy(want, c0, rows * ldc * sizeof *want);
                    for (size_t r = 0; r < rows; r++)
                        for (size_t l = 0; l < cols; l++) {
                            double acc = want[r * ldc + l];
                            for (size_t k = 0; k < depth; k++) {
                                double p = a0[(ptrdiff_t)k * ak_used + (ptrdiff_t)r * ar] *
                                           b0[(ptrdiff_t)(l / NR * bp) + (ptrdiff_t)k * bk_used +
                                              (ptrdiff_t)(l % NR)];
                                acc = sub ? acc - p : acc + p;
                            }
                            want[r * ldc + l] = acc;
                        }
                    for (size_t p = 0; p < path_count; p++) {
                        memcpy(got, c0, rows * ldc * sizeof *got);
                        invdl_dense_gemm(paths[p], rows, cols, depth, a0, ak_used, ar, b0, bk_used,
                                         bp, got, ldc, sub);
                        assert_true(same_doubles(rows * ldc, got, want));
                    }
                    free(a);
                    free(b);
                    free(c0);
                    free(want);
                    free(got);
                }
}

/* t well away from singular: off-diagonal in [-1, 1], diagonal 2..3. */
static double *triangular_source(size_t n, uint64_t seed)
{
    double *t = random_doubles(n * n, seed);
    for (size_t i = 0; i < n; i++)
        t[i * n + i] = 2.5 + 0.5 * t[i * n + i];
    return t;
}

static const size_t TRI_N[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33};
static const size_t TRI_LANES[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33};

/* Solves and products on every triangle (lower, upper; unit or not; read
 * by rows or transposed) against the loops: lower rows take k = 0, 1, ...,
 * upper rows k = n-1, n-2, ..., each then the diagonal. */
static void test_triangles(void **state)
{
    (void)state;
    for (size_t ni = 0; ni < sizeof TRI_N / sizeof *TRI_N; ni++)
        for (size_t li = 0; li < sizeof TRI_LANES / sizeof *TRI_LANES; li++)
            for (int mode = 0; mode < 16; mode++) {
                size_t n = TRI_N[ni], lanes = TRI_LANES[li];
                int upper = mode & 1, unit = (mode >> 1) & 1, trans = (mode >> 2) & 1;
                int product = mode >> 3;
                size_t ts = trans ? 1 : n, ks = trans ? n : 1;
                size_t ldz = lanes + NR + 1, ldx = lanes + 2 * NR + 3;
                double *t = triangular_source(n, n * 100 + lanes);
                double *z0 = random_doubles(n * ldz, lanes * 7 + (uint64_t)mode);
                double *x = random_doubles(n * ldx, lanes * 11 + (uint64_t)mode);
                double *want = malloc(n * ldz * sizeof *want);
                double *got = malloc(n * ldz * sizeof *got);
                assert_non_null(want);
                assert_non_null(got);
                memcpy(want, z0, n * ldz * sizeof *want);
                for (size_t l = 0; l < lanes; l++)
                    for (size_t step = 0; step < n; step++) {
                        size_t i = upper ? n - 1 - step : step;
                        double d = unit ? 1.0 : t[i * ts + i * ks];
                        if (product) {
                            double s = 0.0;
                            for (size_t q = 0; q < (upper ? n - 1 - i : i); q++) {
                                size_t k = upper ? n - 1 - q : q;
                                s += t[i * ts + k * ks] * x[k * ldx + l];
                            }
                            want[i * ldz + l] = s + d * x[i * ldx + l];
                        } else {
                            double s = want[i * ldz + l];
                            for (size_t q = 0; q < (upper ? n - 1 - i : i); q++) {
                                size_t k = upper ? n - 1 - q : q;
                                s -= t[i * ts + k * ks] * want[k * ldz + l];
                            }
                            want[i * ldz + l] = s / d;
                        }
                    }
                for (size_t p = 0; p < path_count; p++) {
                    memcpy(got, z0, n * ldz * sizeof *got);
                    if (product)
                        invdl_dense_product(paths[p], n, t, ts, ks, upper, unit, lanes, x, ldx, got,
                                            ldz);
                    else
                        invdl_dense_solve(paths[p], n, t, ts, ks, upper, unit, lanes, got, ldz);
                    assert_true(same_doubles(n * ldz, got, want));
                }
                free(t);
                free(z0);
                free(x);
                free(want);
                free(got);
            }
}

static void test_eliminate(void **state)
{
    (void)state;
    static const size_t n_list[] = {1, 2, 5, 8, 9, 13, 33};
    for (size_t ni = 0; ni < sizeof n_list / sizeof *n_list; ni++) {
        size_t n = n_list[ni], ld = n + 3;
        for (size_t k = 0; k < n; k++)
            for (size_t end = k + 1; end <= n; end += (n - k + 2) / 3) {
                double *a = triangular_source(ld, n * 31 + k);
                double *want = malloc(ld * ld * sizeof *want), *got = malloc(ld * ld * sizeof *got);
                assert_non_null(want);
                assert_non_null(got);
                memcpy(want, a, ld * ld * sizeof *a);
                for (size_t i = k + 1; i < n; i++) {
                    double m = want[i * ld + k] / want[k * ld + k];
                    want[i * ld + k] = m;
                    for (size_t j = k + 1; j < end; j++)
                        want[i * ld + j] -= m * want[k * ld + j];
                }
                for (size_t p = 0; p < path_count; p++) {
                    memcpy(got, a, ld * ld * sizeof *a);
                    paths[p]->eliminate(n, k, end, got, ld);
                    assert_true(same_doubles(ld * ld, got, want));
                }
                free(a);
                free(want);
                free(got);
            }
    }
}

/* W: a dense layer's orthogonal start (entries about 1/sqrt(n)), each
 * entry moved by up to 0.3/sqrt(n), b likewise: well-conditioned (the
 * perturbation's 2-norm stays near 0.35), not symmetric, pivoting needed. */
static float *layer_params(size_t n, uint64_t seed)
{
    invdl_layer *l = invdl_layer_dense(n, seed);
    assert_non_null(l);
    size_t count = n * n + n;
    float *p = malloc(count * sizeof *p);
    assert_non_null(p);
    assert_int_equal(invdl_layer_get_params(l, count, p), INVDL_OK);
    invdl_layer_free(l);
    uint64_t s = seed ^ 0x9e37;
    double scale = 0.3 / sqrt((double)n);
    for (size_t i = 0; i < count; i++)
        p[i] += (float)(scale * uniform(&s));
    return p;
}

/* The plain loops' factors of w (dense_plain.c), or NULL when they find w
 * singular. */
static invdl_dense_factors *plain_factors(size_t n, const float *w)
{
    invdl_dense_factors *f = invdl_dense_factors_new(n);
    assert_non_null(f);
    if (plain_factor(w, f) != INVDL_OK) {
        invdl_dense_factors_free(f);
        return NULL;
    }
    return f;
}

static const size_t WIDTHS[] = {1, 2, 3, 5, 7, 8, 9, 17, 31, 32, 33, 40, 65};
#define WIDTH_COUNT (sizeof WIDTHS / sizeof WIDTHS[0])

static void test_factor(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi];
        float *p = layer_params(n, 100 + n);
        invdl_dense_factors *want = plain_factors(n, p);
        assert_non_null(want);
        for (size_t k = 0; k < path_count; k++) {
            invdl_dense_factors *f = invdl_dense_factors_new(n);
            assert_non_null(f);
            assert_int_equal(invdl_dense_factor(paths[k], p, f), INVDL_OK);
            for (size_t i = 0; i < n; i++)
                assert_true(same_doubles(n, f->lu + i * f->lu_ld, want->lu + i * want->lu_ld));
            assert_memory_equal(f->perm, want->perm, n * sizeof *f->perm);
            assert_true(f->log_abs_det == want->log_abs_det);
            assert_true(f->norm == want->norm);
            assert_true(f->inv_norm == want->inv_norm);
            size_t ld = invdl_dense_ld(n);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    assert_true(f->w[i * ld + j] == (double)p[i * n + j]);
                    assert_true(f->wt[j * ld + i] == (double)p[i * n + j]);
                }
            invdl_dense_factors_free(f);
        }
        invdl_dense_factors_free(want);
        free(p);
    }
}

static void test_factor_singular(void **state)
{
    (void)state;
    static const size_t n_list[] = {2, 9, 40};
    for (size_t ni = 0; ni < sizeof n_list / sizeof *n_list; ni++) {
        size_t n = n_list[ni];
        float *p = layer_params(n, 7 + n);
        for (int kind = 0; kind < 2; kind++) {
            float *w = malloc(n * n * sizeof *w);
            assert_non_null(w);
            memcpy(w, p, n * n * sizeof *w);
            /* kind 0: two equal rows (a zero pivot); kind 1: a row that
             * differs from another by far less than float rounding allows
             * (condition number past 1/FLT_EPSILON). */
            for (size_t j = 0; j < n; j++)
                w[(n - 1) * n + j] = kind == 0 ? w[j] : w[j] * (1.0f + 0x1p-20f);
            assert_null(plain_factors(n, w));
            for (size_t k = 0; k < path_count; k++) {
                invdl_dense_factors *f = invdl_dense_factors_new(n);
                assert_non_null(f);
                assert_int_equal(invdl_dense_factor(paths[k], w, f), INVDL_ESINGULAR);
                invdl_dense_factors_free(f);
            }
            free(w);
        }
        free(p);
    }
    /* Sizes no array can hold. */
    assert_null(invdl_dense_factors_new(SIZE_MAX / 2));
    assert_null(invdl_dense_factors_new(SIZE_MAX - 3));
}

static const size_t BATCHES[] = {1, 3, 7, 9, 17, 31, 32, 33, 65, 255};
#define BATCH_COUNT (sizeof BATCHES / sizeof BATCHES[0])

/* Forward and inverse of every path against the loops, into separate
 * arrays and in place. */
static void test_forward_inverse(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi];
        float *p = layer_params(n, 200 + n);
        const float *w = p, *b = p + n * n;
        invdl_dense_factors *ref = plain_factors(n, w);
        assert_non_null(ref);
        double *scratch = malloc(invdl_dense_scratch_count(n) * sizeof *scratch);
        assert_non_null(scratch);
        for (size_t bi = 0; bi < BATCH_COUNT; bi++) {
            size_t batch = BATCHES[bi], count = batch * n;
            float *x = random_floats(count, n * 1000 + batch);
            float *want = malloc(count * sizeof *want + 1), *got = malloc(count * sizeof *got + 1);
            float *want_inv = malloc(count * sizeof *want_inv + 1);
            assert_true(want != NULL && got != NULL && want_inv != NULL);
            plain_forward(n, w, b, batch, x, want, scratch);
            plain_inverse(ref, b, batch, want, want_inv, scratch);
            for (size_t k = 0; k < path_count; k++) {
                invdl_dense_factors *f = invdl_dense_factors_new(n);
                assert_non_null(f);
                assert_int_equal(invdl_dense_factor(paths[k], w, f), INVDL_OK);
                invdl_dense_forward(paths[k], f, b, batch, x, got, scratch);
                assert_true(same_floats(count, got, want));
                invdl_dense_inverse(paths[k], f, b, batch, want, got, scratch);
                assert_true(same_floats(count, got, want_inv));
                memcpy(got, x, count * sizeof *got);
                invdl_dense_forward(paths[k], f, b, batch, got, got, scratch);
                assert_true(same_floats(count, got, want));
                invdl_dense_inverse(paths[k], f, b, batch, got, got, scratch);
                assert_true(same_floats(count, got, want_inv));
                invdl_dense_factors_free(f);
            }
            free(x);
            free(want);
            free(got);
            free(want_inv);
        }
        free(scratch);
        invdl_dense_factors_free(ref);
        free(p);
    }
}

/* Backward through both directions against the loops: din into its own
 * array and over dout, parameter gradients accumulated onto nonzero
 * values, and without them. */
static void test_backward(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], np = n * n + n;
        float *p = layer_params(n, 300 + n);
        const float *w = p, *b = p + n * n;
        invdl_dense_factors *ref = plain_factors(n, w);
        assert_non_null(ref);
        double *scratch = malloc(invdl_dense_scratch_count(n) * sizeof *scratch);
        double *start = random_doubles(np, n);
        double *want_dp = malloc(np * sizeof *want_dp), *got_dp = malloc(np * sizeof *got_dp);
        assert_true(scratch != NULL && want_dp != NULL && got_dp != NULL);
        for (size_t bi = 0; bi < BATCH_COUNT; bi += 2) {
            size_t batch = BATCHES[bi], count = batch * n;
            float *x = random_floats(count, n * 77 + batch);
            float *dout = random_floats(count, n * 79 + batch);
            float *y = malloc(count * sizeof *y + 1), *want = malloc(count * sizeof *want + 1);
            float *got = malloc(count * sizeof *got + 1);
            assert_true(y != NULL && want != NULL && got != NULL);
            plain_forward(n, w, b, batch, x, y, scratch);
            for (int inverse = 0; inverse < 2; inverse++) {
                /* The inverse maps y to x: its input is y, its output x. */
                const float *in = inverse ? y : x, *out = inverse ? x : y;
                memcpy(want_dp, start, np * sizeof *want_dp);
                plain_backward(ref, w, inverse, batch, in, out, dout, want, want_dp, scratch);
                for (size_t k = 0; k < path_count; k++) {
                    invdl_dense_factors *f = invdl_dense_factors_new(n);
                    assert_non_null(f);
                    assert_int_equal(invdl_dense_factor(paths[k], w, f), INVDL_OK);
                    memcpy(got_dp, start, np * sizeof *got_dp);
                    invdl_dense_backward(paths[k], f, inverse, batch, in, out, dout, got, got_dp,
                                         scratch);
                    assert_true(same_floats(count, got, want));
                    assert_true(same_doubles(np, got_dp, want_dp));
                    memcpy(got, dout, count * sizeof *got);
                    invdl_dense_backward(paths[k], f, inverse, batch, in, out, got, got, NULL,
                                         scratch);
                    assert_true(same_floats(count, got, want));
                    invdl_dense_factors_free(f);
                }
            }
            free(x);
            free(dout);
            free(y);
            free(want);
            free(got);
        }
        free(scratch);
        free(start);
        free(want_dp);
        free(got_dp);
        invdl_dense_factors_free(ref);
        free(p);
    }
}

/* The layer runs the dispatched path: its results are the loops' too. */
static void test_layer_uses_kernels(void **state)
{
    (void)state;
    size_t n = 19, batch = 45, count = n * batch;
    float *p = layer_params(n, 400);
    invdl_layer *l = invdl_layer_dense(n, 1);
    assert_non_null(l);
    assert_int_equal(invdl_layer_set_params(l, n * n + n, p), INVDL_OK);
    invdl_layer *inv = invdl_layer_inverse(l);
    assert_non_null(inv);
    float *x = random_floats(count, 401), *y = malloc(count * sizeof *y);
    float *want = malloc(count * sizeof *want), *back = malloc(count * sizeof *back);
    assert_true(y != NULL && want != NULL && back != NULL);
    invdl_dense_factors *ref = plain_factors(n, p);
    double *scratch = malloc(2 * n * sizeof *scratch);
    assert_true(ref != NULL && scratch != NULL);
    plain_forward(n, p, p + n * n, batch, x, want, scratch);
    assert_int_equal(invdl_layer_apply(l, batch, x, y), INVDL_OK);
    assert_true(same_floats(count, y, want));
    plain_inverse(ref, p + n * n, batch, y, want, scratch);
    assert_int_equal(invdl_layer_apply(inv, batch, y, back), INVDL_OK);
    assert_true(same_floats(count, back, want));
    invdl_dense_factors_free(ref);
    free(scratch);
    invdl_layer_free(inv);
    invdl_layer_free(l);
    free(p);
    free(x);
    free(y);
    free(want);
    free(back);
}

/* ---- the LU-parametrised layer ----------------------------------------------- */

/* Random factors: L's and U's off-diagonal entries in [-1, 1], diagonal
 * magnitudes in [0.5, 1.5] with random signs, every third entry of the
 * diagonal marked as floored, a random permutation. */
static invdl_dense_plu *random_plu(size_t n, uint64_t seed)
{
    invdl_dense_plu *f = invdl_dense_plu_new(n);
    assert_non_null(f);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n; k++)
            f->lu[i * f->lu_ld + k] = uniform(&s);
        double u = uniform(&s);
        f->lu[i * f->lu_ld + i] = (u < 0 ? -1.0 : 1.0) * (1.0 + 0.5 * uniform(&s));
        f->unfloored[i] = i % 3 != 1;
        f->perm[i] = i;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(test_rand(&s) % i), t = f->perm[i - 1];
        f->perm[i - 1] = f->perm[j];
        f->perm[j] = t;
    }
    return f;
}

/* Forward, inverse and both backward passes of every path against the
 * loops, in place and not, with parameter gradients accumulated onto
 * nonzero values and without them. */
static void test_plu(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], np = n * n + n;
        invdl_dense_plu *f = random_plu(n, 700 + n);
        float *b = random_floats(n, 701 + n);
        double *scratch = malloc((invdl_dense_scratch_count(n) + 5 * n) * sizeof *scratch);
        double *start = random_doubles(np, 702 + n);
        double *want_dp = malloc(np * sizeof *want_dp), *got_dp = malloc(np * sizeof *got_dp);
        assert_true(scratch != NULL && want_dp != NULL && got_dp != NULL);
        for (size_t bi = 0; bi < BATCH_COUNT; bi++) {
            size_t batch = BATCHES[bi], count = batch * n;
            float *x = random_floats(count, n * 1003 + batch);
            float *dout = random_floats(count, n * 1007 + batch);
            float *y = malloc(count * sizeof *y + 1), *want = malloc(count * sizeof *want + 1);
            float *got = malloc(count * sizeof *got + 1);
            assert_true(y != NULL && want != NULL && got != NULL);
            plain_plu_forward(f, b, batch, x, y, scratch);
            plain_plu_inverse(f, b, batch, y, want, scratch);
            for (size_t k = 0; k < path_count; k++) {
                invdl_dense_plu_forward(paths[k], f, b, batch, x, got, scratch);
                assert_true(same_floats(count, got, y));
                memcpy(got, x, count * sizeof *got);
                invdl_dense_plu_forward(paths[k], f, b, batch, got, got, scratch);
                assert_true(same_floats(count, got, y));
                invdl_dense_plu_inverse(paths[k], f, b, batch, y, got, scratch);
                assert_true(same_floats(count, got, want));
                memcpy(got, y, count * sizeof *got);
                invdl_dense_plu_inverse(paths[k], f, b, batch, got, got, scratch);
                assert_true(same_floats(count, got, want));
            }
            for (int inverse = 0; inverse < 2; inverse++) {
                const float *in = inverse ? y : x, *out = inverse ? want : y;
                float *want_d = malloc(count * sizeof *want_d + 1);
                assert_non_null(want_d);
                memcpy(want_dp, start, np * sizeof *want_dp);
                plain_plu_backward(f, inverse, batch, in, out, dout, want_d, want_dp, scratch);
                for (size_t k = 0; k < path_count; k++) {
                    memcpy(got_dp, start, np * sizeof *got_dp);
                    invdl_dense_plu_backward(paths[k], f, inverse, batch, in, out, dout, got,
                                             got_dp, scratch);
                    assert_true(same_floats(count, got, want_d));
                    assert_true(same_doubles(np, got_dp, want_dp));
                    memcpy(got, dout, count * sizeof *got);
                    invdl_dense_plu_backward(paths[k], f, inverse, batch, in, out, got, got, NULL,
                                             scratch);
                    assert_true(same_floats(count, got, want_d));
                }
                free(want_d);
            }
            free(x);
            free(dout);
            free(y);
            free(want);
            free(got);
        }
        invdl_dense_plu_free(f);
        free(b);
        free(scratch);
        free(start);
        free(want_dp);
        free(got_dp);
    }
}

/* ---- the loops against independent references ---------------------------- */

/* inv = w^-1 (n x n) by Gauss-Jordan with partial pivoting in long double. */
static void gauss_jordan(size_t n, const long double *w, long double *inv)
{
    size_t m = 2 * n;
    long double *a = malloc(n * m * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++)
            a[i * m + j] = j < n ? w[i * n + j] : (j - n == i ? 1.0L : 0.0L);
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabsl(a[i * m + k]) > fabsl(a[piv * m + k]))
                piv = i;
        for (size_t j = 0; j < m; j++) {
            long double t = a[k * m + j];
            a[k * m + j] = a[piv * m + j];
            a[piv * m + j] = t;
        }
        long double d = a[k * m + k];
        for (size_t j = 0; j < m; j++)
            a[k * m + j] /= d;
        for (size_t i = 0; i < n; i++) {
            long double f = a[i * m + k];
            for (size_t j = 0; j < m && i != k; j++)
                a[i * m + j] -= f * a[k * m + j];
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            inv[i * n + j] = a[i * m + n + j];
    free(a);
}

/* The explicit inverse of the float matrix w, in long double. */
static long double *inverse_ld(size_t n, const float *w)
{
    long double *wl = malloc(n * n * sizeof *wl), *inv = malloc(n * n * sizeof *inv);
    assert_true(wl != NULL && inv != NULL);
    for (size_t i = 0; i < n * n; i++)
        wl[i] = (long double)w[i];
    gauss_jordan(n, wl, inv);
    free(wl);
    return inv;
}

static long double max_abs_ld(size_t n, const long double *v)
{
    long double m = 0.0L;
    for (size_t i = 0; i < n; i++)
        m = fmaxl(m, fabsl(v[i]));
    return m;
}

/* Half the spacing of floats at v: the most a correct rounding moves it. */
static double half_ulp(long double v)
{
    int e;
    frexpl(v, &e);
    return ldexp(1.0, (e > -125 ? e : -125) - 25);
}

/* The inverse solves against x = W^-1 (y - b) from an explicit inverse in
 * long double.  The LU solve in double is backward stable: its result
 * differs from the exact one by at most about kappa_inf(W) * 2n * 2^-53 of
 * |x|_inf, then rounds once to float; allowed: half an ulp of float plus
 * 8n * kappa * 2^-53 * |x|_inf, kappa computed from the explicit inverse. */
static void test_inverse_vs_explicit(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], batch = 37, count = n * batch;
        float *p = layer_params(n, 500 + n);
        long double *inv = inverse_ld(n, p);
        long double kappa = 0.0L, wn = 0.0L, in_ = 0.0L;
        for (size_t i = 0; i < n; i++) {
            long double rw = 0.0L, ri = 0.0L;
            for (size_t j = 0; j < n; j++) {
                rw += fabsl((long double)p[i * n + j]);
                ri += fabsl(inv[i * n + j]);
            }
            wn = fmaxl(wn, rw);
            in_ = fmaxl(in_, ri);
        }
        kappa = wn * in_;

        float *y = random_floats(count, 501 + n), *x = malloc(count * sizeof *x);
        long double *xr = malloc(n * sizeof *xr);
        double *scratch = malloc(invdl_dense_scratch_count(n) * sizeof *scratch);
        assert_true(x != NULL && xr != NULL && scratch != NULL);
        for (size_t k = 0; k < path_count; k++) {
            invdl_dense_factors *f = invdl_dense_factors_new(n);
            assert_non_null(f);
            assert_int_equal(invdl_dense_factor(paths[k], p, f), INVDL_OK);
            invdl_dense_inverse(paths[k], f, p + n * n, batch, y, x, scratch);
            for (size_t s = 0; s < batch; s++) {
                for (size_t i = 0; i < n; i++) {
                    xr[i] = 0.0L;
                    for (size_t j = 0; j < n; j++)
                        xr[i] += inv[i * n + j] *
                                 ((long double)y[s * n + j] - (long double)p[n * n + j]);
                }
                long double scale = max_abs_ld(n, xr);
                for (size_t i = 0; i < n; i++) {
                    long double err = fabsl((long double)x[s * n + i] - xr[i]);
                    long double tol = (long double)half_ulp(xr[i]) +
                                      8.0L * (long double)n * kappa * 0x1p-53L * scale;
                    assert_true(err <= tol);
                }
            }
            invdl_dense_factors_free(f);
        }
        free(inv);
        free(y);
        free(x);
        free(xr);
        free(scratch);
        free(p);
    }
}

/* L = sum over samples and outputs of c_si out_si, with out = W x + b or
 * W^-1 (x - b), in long double (the inverse through an explicit inverse). */
static long double linear_loss(size_t n, size_t batch, const long double *w, const long double *b,
                               const long double *x, const float *c, int inverse)
{
    long double sum = 0.0L, *wi = NULL;
    if (inverse) {
        wi = malloc(n * n * sizeof *wi);
        assert_non_null(wi);
        gauss_jordan(n, w, wi);
    }
    for (size_t s = 0; s < batch; s++)
        for (size_t i = 0; i < n; i++) {
            long double o = inverse ? 0.0L : b[i];
            for (size_t j = 0; j < n; j++)
                o += inverse ? wi[i * n + j] * (x[s * n + j] - b[j]) : w[i * n + j] * x[s * n + j];
            sum += (long double)c[s * n + i] * o;
        }
    free(wi);
    return sum;
}

/* Backward of both directions against central differences of linear_loss
 * (dL/dout = c).  The forward direction's loss is linear, so its
 * differences are exact but for rounding (h = 2^-20 on values near 1:
 * about 2^-64 / 2^-20 relative); the inverse's truncation error is
 * O(h^2) = 2^-40.  The library rounds din to float (half an ulp of each
 * component: allowed 2^-22 of the largest).  It accumulates dW and db in
 * double from float inputs (about n * batch * 2^-53 relative: allowed
 * 2^-30 of the largest), except that the inverse's dW = -sum u x^T takes x
 * from the layer's float output, as training does, half an ulp from the
 * exact x that the differences see: allowed on top, per entry, 2^-23 *
 * sum over samples of |u_i| |x_j| (twice that half ulp, for the error of u
 * and of the differences). */
static void test_backward_vs_differences(void **state)
{
    (void)state;
    size_t n = 11, batch = 37, count = n * batch, np = n * n + n;
    float *p = layer_params(n, 600);
    float *x = random_floats(count, 601), *c = random_floats(count, 602);
    float *y = malloc(count * sizeof *y), *din = malloc(count * sizeof *din);
    double *dp = malloc(np * sizeof *dp);
    double *scratch = malloc(invdl_dense_scratch_count(n) * sizeof *scratch);
    long double *wl = malloc(np * sizeof *wl), *xl = malloc(count * sizeof *xl);
    long double *fd_p = malloc(np * sizeof *fd_p), *fd_x = malloc(count * sizeof *fd_x);
    assert_true(y != NULL && din != NULL && dp != NULL && scratch != NULL && wl != NULL &&
                xl != NULL && fd_p != NULL && fd_x != NULL);
    for (int inverse = 0; inverse < 2; inverse++) {
        invdl_dense_factors *f = invdl_dense_factors_new(n);
        assert_non_null(f);
        assert_int_equal(invdl_dense_factor(invdl_dense_kernels_best(), p, f), INVDL_OK);
        /* The direction's input: x for the forward map, its image for the
         * inverse (so both see inputs of the same size). */
        const float *in = x;
        if (inverse) {
            invdl_dense_forward(invdl_dense_kernels_best(), f, p + n * n, batch, x, y, scratch);
            in = y;
        }
        float *out = malloc(count * sizeof *out);
        assert_non_null(out);
        if (inverse)
            invdl_dense_inverse(invdl_dense_kernels_best(), f, p + n * n, batch, in, out, scratch);
        else
            invdl_dense_forward(invdl_dense_kernels_best(), f, p + n * n, batch, in, out, scratch);
        memset(dp, 0, np * sizeof *dp);
        invdl_dense_backward(invdl_dense_kernels_best(), f, inverse, batch, in, out, c, din, dp,
                             scratch);

        for (size_t i = 0; i < np; i++)
            wl[i] = (long double)p[i];
        for (size_t i = 0; i < count; i++)
            xl[i] = (long double)in[i];
        const long double h = 0x1p-20L;
        for (size_t i = 0; i < np; i++) {
            long double v = wl[i];
            wl[i] = v + h;
            long double up = linear_loss(n, batch, wl, wl + n * n, xl, c, inverse);
            wl[i] = v - h;
            long double down = linear_loss(n, batch, wl, wl + n * n, xl, c, inverse);
            wl[i] = v;
            fd_p[i] = (up - down) / (2 * h);
        }
        for (size_t i = 0; i < count; i++) {
            long double v = xl[i];
            xl[i] = v + h;
            long double up = linear_loss(n, batch, wl, wl + n * n, xl, c, inverse);
            xl[i] = v - h;
            long double down = linear_loss(n, batch, wl, wl + n * n, xl, c, inverse);
            xl[i] = v;
            fd_x[i] = (up - down) / (2 * h);
        }
        long double sp = max_abs_ld(np, fd_p), sx = max_abs_ld(count, fd_x);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j <= n; j++) {
                /* dW_ij (j < n) and db_i (j == n) */
                size_t at = j < n ? i * n + j : n * n + i;
                long double tol = 0x1p-30L * sp;
                for (size_t s = 0; s < batch && inverse; s++)
                    tol += 0x1p-23L * fabsl((long double)din[s * n + i]) *
                           (j < n ? fabsl((long double)out[s * n + j]) : 0.0L);
                assert_true(fabsl((long double)dp[at] - fd_p[at]) <= tol);
            }
        for (size_t i = 0; i < count; i++)
            assert_true(fabsl((long double)din[i] - fd_x[i]) <= 0x1p-22L * sx);
        free(out);
        invdl_dense_factors_free(f);
    }
    free(p);
    free(x);
    free(c);
    free(y);
    free(din);
    free(dp);
    free(scratch);
    free(wl);
    free(xl);
    free(fd_p);
    free(fd_x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_triangles),
        cmocka_unit_test(test_eliminate),
        cmocka_unit_test(test_factor),
        cmocka_unit_test(test_factor_singular),
        cmocka_unit_test(test_forward_inverse),
        cmocka_unit_test(test_backward),
        cmocka_unit_test(test_layer_uses_kernels),
        cmocka_unit_test(test_plu),
        cmocka_unit_test(test_inverse_vs_explicit),
        cmocka_unit_test(test_backward_vs_differences),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
