/*
 * test_dense_lu.c - the LU-parametrised dense layer against an independent
 * reference.
 *
 * The reference is written here from the layout invdl.h documents: it
 * reads the layer's parameters (L's strictly lower entries row by row,
 * U's strictly upper ones, s, b), its s_min and its permutation through
 * the public accessors, floors the diagonal itself, forms W = P L U in
 * long double and solves with W by Gaussian elimination (not through the
 * factors).  Against it: the start (LU factors of an orthogonal matrix),
 * invdl_layer_weights(), forward and inverse, log|det| (the sum of
 * log|u_i| and a brute-force Jacobian by central differences), the
 * backward passes of both directions and the log-det gradient (central
 * differences), the floor and the projection, training, bad input.
 * Widths run from 1 to 65, past the kernels' tiles and row groups.
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

#include "invdl.h"
#include "kernels/dense_kernels.h"
#include "layers/layer.h"
#include "reference.h"

/* ---- the reference ------------------------------------------------------ */

typedef struct ref_lu {
    size_t n;
    float s_min;
    size_t *perm;     /* [n] */
    long double *p;   /* [n*n + n]: the values, in the library's layout */
} ref_lu;

static ref_lu ref_of(const invdl_layer *l)
{
    ref_lu r;
    r.n = invdl_layer_width(l);
    r.s_min = invdl_layer_s_min(l);
    size_t np = invdl_layer_param_count(l);
    assert_int_equal(np, r.n * r.n + r.n);
    r.perm = malloc(r.n * sizeof *r.perm);
    r.p = malloc(np * sizeof *r.p);
    float *v = malloc(np * sizeof *v);
    assert_true(r.perm != NULL && r.p != NULL && v != NULL);
    assert_int_equal(invdl_layer_permutation(l, r.perm), INVDL_OK);
    assert_int_equal(invdl_layer_get_params(l, np, v), INVDL_OK);
    for (size_t i = 0; i < np; i++)
        r.p[i] = (long double)v[i];
    free(v);
    return r;
}

static void ref_free(ref_lu *r)
{
    free(r->perm);
    free(r->p);
}

static size_t tri(size_t n)
{
    return n * (n - 1) / 2;
}

static long double ref_l(const ref_lu *r, size_t i, size_t k)
{
    return k == i ? 1.0L : k < i ? r->p[i * (i - 1) / 2 + k] : 0.0L;
}

/* The floored diagonal: s where |s| >= s_min, else copysign(s_min, s). */
static long double ref_u_diag(const ref_lu *r, size_t i)
{
    long double s = r->p[2 * tri(r->n) + i], m = (long double)r->s_min;
    return fabsl(s) >= m ? s : copysignl(m, s);
}

static long double ref_u(const ref_lu *r, size_t i, size_t k)
{
    size_t n = r->n;
    if (k < i)
        return 0.0L;
    if (k == i)
        return ref_u_diag(r, i);
    return r->p[tri(n) + i * (2 * n - i - 1) / 2 + (k - i - 1)];
}

/* W[perm[i]][j] = (L U)_ij */
static void ref_weights(const ref_lu *r, long double *w)
{
    size_t n = r->n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            long double acc = 0.0L;
            for (size_t k = 0; k < n; k++)
                acc += ref_l(r, i, k) * ref_u(r, k, j);
            w[r->perm[i] * n + j] = acc;
        }
}

/* |W| |x| + |b| per output, for the accuracy bounds: sum_k |l_ik| |u_kj| |x_j|. */
static void ref_magnitudes(const ref_lu *r, const long double *x, long double *mag)
{
    size_t n = r->n;
    for (size_t i = 0; i < n; i++) {
        long double acc = 0.0L;
        for (size_t k = 0; k < n; k++)
            for (size_t j = 0; j < n; j++)
                acc += fabsl(ref_l(r, i, k)) * fabsl(ref_u(r, k, j)) * fabsl(x[j]);
        mag[r->perm[i]] = acc + fabsl(r->p[n * n + r->perm[i]]);
    }
}

static void ref_forward(const ref_lu *r, const long double *w, const long double *x,
                        long double *y)
{
    size_t n = r->n;
    for (size_t i = 0; i < n; i++) {
        long double acc = r->p[n * n + i];
        for (size_t j = 0; j < n; j++)
            acc += w[i * n + j] * x[j];
        y[i] = acc;
    }
}

/* Solves w x = y - b by Gaussian elimination with partial pivoting;
 * returns log|det w|.  x may be NULL. */
static long double ref_solve(const ref_lu *r, const long double *w, const long double *y,
                             long double *x)
{
    size_t n = r->n, m = n + 1;
    long double *a = malloc(n * m * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            a[i * m + j] = w[i * n + j];
        a[i * m + n] = y != NULL ? y[i] - r->p[n * n + i] : 0.0L;
    }
    long double logdet = ref_eliminate(n, m, a);
    for (size_t i = n; i-- > 0 && x != NULL;) {
        long double acc = a[i * m + n];
        for (size_t j = i + 1; j < n; j++)
            acc -= a[i * m + j] * x[j];
        x[i] = acc / a[i * m + i];
    }
    free(a);
    return logdet;
}

/* |W|_inf and |W^-1|_inf, the latter from W^-1's columns solved one by one
 * (column j solves W x = e_j, i.e. y - b = e_j). */
static void ref_norms(const ref_lu *r, const long double *w, long double *norm,
                      long double *inv_norm)
{
    size_t n = r->n;
    long double *y = malloc(n * sizeof *y), *x = malloc(n * sizeof *x);
    long double *rows = calloc(n, sizeof *rows);
    assert_true(y != NULL && x != NULL && rows != NULL);
    *norm = *inv_norm = 0.0L;
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++)
            y[i] = (i == j ? 1.0L : 0.0L) + r->p[n * n + i];
        ref_solve(r, w, y, x);
        for (size_t i = 0; i < n; i++)
            rows[i] += fabsl(x[i]);
    }
    for (size_t i = 0; i < n; i++) {
        long double sum = 0.0L;
        for (size_t j = 0; j < n; j++)
            sum += fabsl(w[i * n + j]);
        *norm = fmaxl(*norm, sum);
        *inv_norm = fmaxl(*inv_norm, rows[i]);
    }
    free(y);
    free(x);
    free(rows);
}

/* ---- helpers ------------------------------------------------------------- */

/* The floor the tests' layers use: large enough that the floored pivots
 * keep W well conditioned (the default, 1e-3, would let cond(W) reach
 * 1e15 with a few floored s_i, and then no reference in long double could
 * judge an inverse or a determinant). */
#define S_MIN 0.25f

/* A dense_lu layer moved off its start: every value by up to 0.3/sqrt(n)
 * (b too), and every third s_i put into the floor, at 0.4 s_min of either
 * sign. */
static invdl_layer *moved_layer(size_t n, uint64_t seed)
{
    invdl_layer *l = invdl_layer_dense_lu_min(n, seed, S_MIN);
    assert_non_null(l);
    size_t np = n * n + n;
    float *v = malloc(np * sizeof *v);
    assert_non_null(v);
    assert_int_equal(invdl_layer_get_params(l, np, v), INVDL_OK);
    uint64_t s = seed ^ 0x5bd1e995u;
    double scale = 0.3 / sqrt((double)n);
    for (size_t i = 0; i < np; i++)
        v[i] += (float)(scale * test_uniform(&s));
    for (size_t i = 0; i < n; i += 3)
        v[2 * tri(n) + i] = (i % 2 ? -0.4f : 0.4f) * S_MIN;
    assert_int_equal(invdl_layer_set_params(l, np, v), INVDL_OK);
    free(v);
    return l;
}

static const size_t WIDTHS[] = {1, 2, 3, 5, 8, 9, 16, 17, 33, 65};
#define WIDTH_COUNT (sizeof WIDTHS / sizeof WIDTHS[0])

/* ---- tests --------------------------------------------------------------- */

/* The start: the LU factors with partial pivoting of the dense layer's
 * orthogonal start, so W W^T = I and W equals the dense layer's W up to
 * the rounding of the factors to float: each of the n terms of an entry
 * of W moves by at most 2^-23 of |l_ik u_kj| <= 1, allowed 2^-23 n per
 * entry of W - W_dense, twice that plus the dense layer's own rounding
 * for W W^T - I.  A start that is not orthogonal is off by O(1). */
static void test_start(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], np = n * n + n;
        invdl_layer *l = invdl_layer_dense_lu(n, 40 + n), *d = invdl_layer_dense(n, 40 + n);
        assert_true(l != NULL && d != NULL);
        assert_int_equal(invdl_layer_kind_of(l), INVDL_LAYER_DENSE_LU);
        assert_string_equal(invdl_layer_name(l), "dense_lu");
        assert_int_equal(invdl_layer_param_count(l), np);
        assert_true(invdl_layer_s_min(l) == INVDL_DENSE_LU_S_MIN);
        assert_true(invdl_layer_alpha_min(l) == 0.0f);
        assert_true(invdl_layer_s_min(d) == 0.0f);
        ref_lu r = ref_of(l);
        /* P is a permutation; |l_ik| <= 1 (partial pivoting); b = 0. */
        int *seen = calloc(n, sizeof *seen);
        assert_non_null(seen);
        for (size_t i = 0; i < n; i++) {
            assert_true(r.perm[i] < n && !seen[r.perm[i]]);
            seen[r.perm[i]] = 1;
        }
        free(seen);
        for (size_t i = 0; i < tri(n); i++)
            assert_true(fabsl(r.p[i]) <= 1.0L);
        for (size_t i = 0; i < n; i++)
            assert_true(r.p[n * n + i] == 0.0L);
        long double *w = malloc(n * n * sizeof *w);
        float *wd = malloc(np * sizeof *wd);
        assert_true(w != NULL && wd != NULL);
        ref_weights(&r, w);
        assert_int_equal(invdl_layer_get_params(d, np, wd), INVDL_OK);
        long double tol = 0x1p-23L * (long double)n;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                assert_true(fabsl(w[i * n + j] - (long double)wd[i * n + j]) <= tol);
                long double dot = 0.0L;
                for (size_t k = 0; k < n; k++)
                    dot += w[i * n + k] * w[j * n + k];
                assert_true(fabsl(dot - (i == j ? 1.0L : 0.0L)) <= 3.0L * tol);
            }
        free(w);
        free(wd);
        ref_free(&r);
        invdl_layer_free(l);
        invdl_layer_free(d);
    }
    /* Widths and floors no layer can have. */
    assert_null(invdl_layer_dense_lu(0, 1));
    assert_null(invdl_layer_dense_lu(INVDL_DENSE_LU_MAX_WIDTH + 1, 1));
    assert_null(invdl_layer_dense_lu_min(3, 1, 0.0f));
    assert_null(invdl_layer_dense_lu_min(3, 1, -1e-3f));
    assert_null(invdl_layer_dense_lu_min(3, 1, NAN));
    assert_null(invdl_layer_dense_lu_min(3, 1, INFINITY));
    invdl_layer *custom = invdl_layer_dense_lu_min(3, 1, 0.25f);
    assert_non_null(custom);
    assert_true(invdl_layer_s_min(custom) == 0.25f);
    invdl_layer_free(custom);
}

/* invdl_layer_weights() against P L U formed here: one rounding of a sum
 * in double, so within half an ulp of the exact entry plus the double
 * sum's error, n 2^-53 of the sum of |l_ik u_kj|. */
static void test_weights(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi];
        invdl_layer *l = moved_layer(n, 60 + n), *inv = invdl_layer_inverse(l);
        assert_non_null(inv);
        ref_lu r = ref_of(l);
        long double *w = malloc(n * n * sizeof *w);
        float *got = malloc(n * n * sizeof *got), *b = malloc(n * sizeof *b);
        assert_true(w != NULL && got != NULL && b != NULL);
        ref_weights(&r, w);
        for (int direction = 0; direction < 2; direction++) {
            assert_int_equal(invdl_layer_weights(direction ? inv : l, got, b), INVDL_OK);
            for (size_t i = 0; i < n; i++) {
                assert_true((long double)b[i] == r.p[n * n + i]);
                for (size_t j = 0; j < n; j++) {
                    size_t row = 0;
                    while (r.perm[row] != i)
                        row++;
                    long double mag = 0.0L;
                    for (size_t k = 0; k < n; k++)
                        mag += fabsl(ref_l(&r, row, k) * ref_u(&r, k, j));
                    long double tol = half_float_ulp(w[i * n + j]) + (long double)n * 0x1p-53L * mag;
                    assert_true(fabsl((long double)got[i * n + j] - w[i * n + j]) <= tol);
                }
            }
        }
        free(w);
        free(got);
        free(b);
        ref_free(&r);
        invdl_layer_free(inv);
        invdl_layer_free(l);
    }
    /* The free dense layer's are its parameters; other kinds have none. */
    float wd[4 + 2], got[4], b[2];
    invdl_layer *d = invdl_layer_dense(2, 3), *m = invdl_layer_mprelu(2, 3);
    assert_int_equal(invdl_layer_get_params(d, 6, wd), INVDL_OK);
    assert_int_equal(invdl_layer_weights(d, got, b), INVDL_OK);
    assert_memory_equal(got, wd, sizeof got);
    assert_memory_equal(b, wd + 4, sizeof b);
    assert_int_equal(invdl_layer_weights(m, got, b), INVDL_EINVAL);
    assert_int_equal(invdl_layer_weights(NULL, got, b), INVDL_EINVAL);
    assert_int_equal(invdl_layer_weights(d, NULL, b), INVDL_EINVAL);
    assert_int_equal(invdl_layer_weights(d, got, NULL), INVDL_EINVAL);
    size_t perm[2];
    assert_int_equal(invdl_layer_permutation(d, perm), INVDL_EINVAL);
    assert_int_equal(invdl_layer_permutation(NULL, perm), INVDL_EINVAL);
    invdl_layer_free(d);
    invdl_layer_free(m);
}

/* Forward against W x + b: the library sums in double (z = U x, then
 * L z, then + b), each sum of at most n+1 terms, and rounds once; allowed
 * half an ulp plus (2n + 2) 2^-53 |L| |U| |x| + |b|.  Inverse against the
 * solution of W x = y - b by elimination in long double: the triangular
 * solves in double are backward stable, allowed half an ulp plus
 * 8n kappa_inf(W) 2^-53 |x|_inf (as for the dense layer). */
static void test_forward_inverse(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], batch = 37, count = n * batch;
        invdl_layer *l = moved_layer(n, 80 + n), *inv = invdl_layer_inverse(l);
        ref_lu r = ref_of(l);
        long double *w = malloc(n * n * sizeof *w);
        long double *xl = malloc(n * sizeof *xl), *yl = malloc(n * sizeof *yl);
        long double *mag = malloc(n * sizeof *mag);
        float *x = test_random_floats(count, 1.0, 81 + n), *y = malloc(count * sizeof *y);
        float *back = malloc(count * sizeof *back);
        assert_true(w && xl && yl && mag && y && back);
        ref_weights(&r, w);
        long double wn, in;
        ref_norms(&r, w, &wn, &in);
        long double kappa = wn * in;

        assert_int_equal(invdl_layer_apply(l, batch, x, y), INVDL_OK);
        assert_int_equal(invdl_layer_apply(inv, batch, y, back), INVDL_OK);
        for (size_t s = 0; s < batch; s++) {
            for (size_t j = 0; j < n; j++)
                xl[j] = (long double)x[s * n + j];
            ref_forward(&r, w, xl, yl);
            ref_magnitudes(&r, xl, mag);
            for (size_t i = 0; i < n; i++) {
                long double tol = half_float_ulp(yl[i]) + (long double)(2 * n + 2) * 0x1p-53L * mag[i];
                assert_true(fabsl((long double)y[s * n + i] - yl[i]) <= tol);
            }
            for (size_t j = 0; j < n; j++)
                yl[j] = (long double)y[s * n + j];
            ref_solve(&r, w, yl, xl);
            long double scale = 0.0L;
            for (size_t i = 0; i < n; i++)
                scale = fmaxl(scale, fabsl(xl[i]));
            for (size_t i = 0; i < n; i++) {
                long double tol =
                    half_float_ulp(xl[i]) + 8.0L * (long double)n * kappa * 0x1p-53L * scale;
                assert_true(fabsl((long double)back[s * n + i] - xl[i]) <= tol);
            }
        }
        /* In place gives the same bits. */
        float *copy = malloc(count * sizeof *copy);
        assert_non_null(copy);
        memcpy(copy, x, count * sizeof *copy);
        assert_int_equal(invdl_layer_apply(l, batch, copy, copy), INVDL_OK);
        assert_memory_equal(copy, y, count * sizeof *copy);
        free(copy);
        free(w);
        free(xl);
        free(yl);
        free(mag);
        free(x);
        free(y);
        free(back);
        ref_free(&r);
        invdl_layer_free(inv);
        invdl_layer_free(l);
    }
}

/* log|det W| against the sum of log|u_i| (the floored diagonal, formed
 * here) and against the determinant of the Jacobian of the reference's
 * forward map, taken by central differences and eliminated in long double.
 * The map is affine, so any step is exact but for rounding, and a large
 * one (h = 1/2) keeps that rounding near 2^-64 / h of |y| per entry (2^-53
 * / h where long double is double, as under valgrind).  The library rounds
 * a sum in double to float: allowed half an ulp plus n 2^-50 of the terms;
 * the brute force 1e-9 on top.  The inverse's is the negative at y. */
static void test_log_det(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi], batch = 3;
        invdl_layer *l = moved_layer(n, 100 + n), *inv = invdl_layer_inverse(l);
        ref_lu r = ref_of(l);
        long double want = 0.0L, terms = 0.0L;
        for (size_t i = 0; i < n; i++) {
            want += logl(fabsl(ref_u_diag(&r, i)));
            terms += fabsl(logl(fabsl(ref_u_diag(&r, i))));
        }
        long double *w = malloc(n * n * sizeof *w), *jac = malloc(n * n * sizeof *jac);
        long double *up = malloc(n * sizeof *up), *down = malloc(n * sizeof *down);
        long double *xl = malloc(n * sizeof *xl);
        float *x = test_random_floats(n * batch, 1.0, 101 + n), *y = malloc(n * batch * sizeof *y);
        float ld[3], ld_inv[3];
        assert_true(w && jac && up && down && xl && y);
        ref_weights(&r, w);
        for (size_t j = 0; j < n; j++)
            xl[j] = (long double)x[j];
        const long double h = 0.5L;
        for (size_t j = 0; j < n; j++) {
            long double keep = xl[j];
            xl[j] = keep + h;
            ref_forward(&r, w, xl, up);
            xl[j] = keep - h;
            ref_forward(&r, w, xl, down);
            xl[j] = keep;
            for (size_t i = 0; i < n; i++)
                jac[i * n + j] = (up[i] - down[i]) / (2 * h);
        }
        /* ref_solve takes log|det| of its matrix; its b term plays no
         * part with y == NULL. */
        long double brute = ref_solve(&r, jac, NULL, NULL);
        assert_int_equal(invdl_layer_log_det(l, batch, x, ld), INVDL_OK);
        assert_int_equal(invdl_layer_apply(l, batch, x, y), INVDL_OK);
        assert_int_equal(invdl_layer_log_det(inv, batch, y, ld_inv), INVDL_OK);
        long double tol = half_float_ulp(want) + (long double)n * 0x1p-50L * terms;
        for (size_t s = 0; s < batch; s++) {
            assert_true(fabsl((long double)ld[s] - want) <= tol);
            assert_true(fabsl((long double)ld[s] - brute) <= tol + 1e-9L);
            assert_true(fabsl((long double)ld_inv[s] + want) <= tol);
        }
        free(w);
        free(jac);
        free(up);
        free(down);
        free(xl);
        free(x);
        free(y);
        ref_free(&r);
        invdl_layer_free(inv);
        invdl_layer_free(l);
    }
}

/* The norms memory-saving backprop weighs rebuilding with (layer.h, gain):
 * |W|_inf bounded by |L|_inf |U|_inf, never below the norm; |W^-1|_inf
 * exact up to width 32 (from W^-1's columns in double: within 2^-40
 * relative of the long double reference), estimated above (Hager/Higham:
 * never above the norm, and on these matrices within a factor of 3 of it,
 * which a broken estimate - a wrong product, a lost permutation - is not). */
static void test_norms(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++) {
        size_t n = WIDTHS[wi];
        invdl_layer *l = moved_layer(n, 150 + n);
        ref_lu r = ref_of(l);
        long double *w = malloc(n * n * sizeof *w), wn, in;
        assert_non_null(w);
        ref_weights(&r, w);
        ref_norms(&r, w, &wn, &in);
        const invdl_dense_plu *f = l->params->cache;
        assert_true((long double)f->norm >= wn * (1.0L - 0x1p-40L));
        if (n <= 32) {
            assert_true(fabsl((long double)f->inv_norm - in) <= 0x1p-40L * in);
        } else {
            assert_true((long double)f->inv_norm <= in * (1.0L + 0x1p-40L));
            assert_true((long double)f->inv_norm >= in / 3.0L);
        }
        free(w);
        ref_free(&r);
        invdl_layer_free(l);
    }
}

/* L = sum over samples and outputs of c_si out_si, out the direction's
 * map of in: W x + b, or W^-1 (y - b). */
static long double linear_loss(const ref_lu *r, int inverse, size_t batch, const long double *in,
                               const float *c)
{
    size_t n = r->n;
    long double *w = malloc(n * n * sizeof *w), *out = malloc(n * sizeof *out);
    assert_true(w != NULL && out != NULL);
    ref_weights(r, w);
    long double sum = 0.0L;
    for (size_t s = 0; s < batch; s++) {
        if (inverse)
            ref_solve(r, w, in + s * n, out);
        else
            ref_forward(r, w, in + s * n, out);
        for (size_t i = 0; i < n; i++)
            sum += (long double)c[s * n + i] * out[i];
    }
    free(w);
    free(out);
    return sum;
}

/* The backward passes of both directions against central differences of
 * linear_loss, for every value (L, U, s, b; the floored s_i included,
 * where the map is flat: their step 2^-22 stays inside the floor) and
 * every input.  Tolerance as for every kind (test_gradients.c): the
 * library's activations are floats and its dL/din is rounded to float,
 * a few 2^-24 relative; 1e-5 of the largest component covers that, a
 * wrong formula (transposed factor, missing permutation, a sign, the
 * floor's derivative) is off by O(1). */
static void test_gradients(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 5, 9, 17};
    for (size_t wi = 0; wi < sizeof sizes / sizeof sizes[0]; wi++) {
        size_t n = sizes[wi], batch = 11, count = n * batch, np = n * n + n;
        for (int inverse = 0; inverse < 2; inverse++) {
            invdl_layer *l = moved_layer(n, 120 + n), *use = l;
            if (inverse)
                use = invdl_layer_inverse(l);
            ref_lu r = ref_of(l);
            float *in = test_random_floats(count, 1.0, 121 + n), *c = test_random_floats(count, 1.0, 122);
            float *out = malloc(count * sizeof *out), *din = malloc(count * sizeof *din);
            double *dp = calloc(np, sizeof *dp), *scratch = invdl_scratch_new(n);
            long double *inl = malloc(count * sizeof *inl);
            assert_true(out && din && dp && scratch && inl);
            assert_int_equal(invdl_layer_apply(use, batch, in, out), INVDL_OK);
            const invdl_params *p = use->params;
            p->ops->backward(p, use->inverse, batch, in, out, c, din, dp, scratch);
            for (size_t i = 0; i < count; i++)
                inl[i] = (long double)in[i];

            long double *fd = malloc((np + count) * sizeof *fd);
            assert_non_null(fd);
            long double h = 0x1p-22L;
            for (size_t i = 0; i < np; i++) {
                long double keep = r.p[i];
                r.p[i] = keep + h;
                long double hi = linear_loss(&r, inverse, batch, inl, c);
                r.p[i] = keep - h;
                long double lo = linear_loss(&r, inverse, batch, inl, c);
                r.p[i] = keep;
                fd[i] = (hi - lo) / (2 * h);
            }
            for (size_t i = 0; i < count; i++) {
                long double keep = inl[i];
                inl[i] = keep + h;
                long double hi = linear_loss(&r, inverse, batch, inl, c);
                inl[i] = keep - h;
                long double lo = linear_loss(&r, inverse, batch, inl, c);
                inl[i] = keep;
                fd[np + i] = (hi - lo) / (2 * h);
            }
            long double sp = 0.0L, sx = 0.0L;
            for (size_t i = 0; i < np; i++)
                sp = fmaxl(sp, fabsl(fd[i]));
            for (size_t i = 0; i < count; i++)
                sx = fmaxl(sx, fabsl(fd[np + i]));
            for (size_t i = 0; i < np; i++)
                assert_true(fabsl((long double)dp[i] - fd[i]) <= 1e-5L * sp);
            for (size_t i = 0; i < count; i++)
                assert_true(fabsl((long double)din[i] - fd[np + i]) <= 1e-5L * sx);
            /* The floored s_i have no gradient at all. */
            for (size_t i = 0; i < n; i += 3)
                assert_true(dp[2 * tri(n) + i] == 0.0);
            free(fd);
            free(in);
            free(c);
            free(out);
            free(din);
            free(dp);
            invdl_free(scratch);
            free(inl);
            ref_free(&r);
            if (inverse)
                invdl_layer_free(use);
            invdl_layer_free(l);
        }
    }
}

/* The log-det gradient: scale * batch / u_i for each s_i outside the floor,
 * 0 for the floored ones and every other value, nothing for x (returns 0,
 * dx untouched); against central differences of batch * sum log|u_i| in
 * long double (step 2^-30 of s_i, whose log is smooth there: truncation
 * about 2^-60 relative), allowed 2^-40 relative. */
static void test_log_det_grad(void **state)
{
    (void)state;
    size_t n = 7, np = n * n + n, batch = 5;
    invdl_layer *l = moved_layer(n, 140);
    ref_lu r = ref_of(l);
    const invdl_params *p = l->params;
    double *dp = calloc(np, sizeof *dp), *scratch = invdl_scratch_new(n);
    float x[35], dx[35];
    assert_true(dp != NULL && scratch != NULL);
    for (size_t i = 0; i < 35; i++)
        x[i] = dx[i] = (float)i;
    const double scale = -0.75;
    assert_int_equal(p->ops->log_det_grad(p, batch, x, scale, dx, dp, scratch), 0);
    for (size_t i = 0; i < 35; i++)
        assert_true(dx[i] == (float)i);
    for (size_t i = 0; i < np; i++) {
        long double want = 0.0L;
        if (i >= 2 * tri(n) && i < 2 * tri(n) + n) {
            long double keep = r.p[i], h = 0x1p-30L * fabsl(keep);
            long double sums[2];
            for (int side = 0; side < 2; side++) {
                r.p[i] = keep + (side ? -h : h);
                sums[side] = 0.0L;
                for (size_t k = 0; k < n; k++)
                    sums[side] += logl(fabsl(ref_u_diag(&r, k)));
            }
            r.p[i] = keep;
            want = (long double)scale * (long double)batch * (sums[0] - sums[1]) / (2 * h);
        }
        assert_true(fabsl((long double)dp[i] - want) <= 0x1p-40L * fabsl(want));
    }
    free(dp);
    invdl_free(scratch);
    ref_free(&r);
    invdl_layer_free(l);
}

/* The floor: values in it give u = copysign(s_min, s) (checked above
 * through the reference); the project operation moves them onto it, keeps
 * everything else, and leaves NaN to the finiteness checks. */
static void test_project(void **state)
{
    (void)state;
    size_t n = 7, np = n * n + n;
    float s_min = 0.125f;
    invdl_layer *l = invdl_layer_dense_lu_min(n, 3, s_min);
    assert_non_null(l);
    float *v = test_random_floats(np, 1.0, 160), *before = malloc(np * sizeof *before);
    assert_non_null(before);
    float *s = v + 2 * tri(n);
    const float in[7] = {0.5f * s_min, -0.5f * s_min, 0.0f, -0.0f, s_min, -2.0f * s_min, NAN};
    const float want[7] = {s_min, -s_min, s_min, -s_min, s_min, -2.0f * s_min, NAN};
    memcpy(s, in, sizeof in);
    memcpy(before, v, np * sizeof *before);
    l->params->ops->project(l->params, v);
    for (size_t i = 0; i < np; i++) {
        size_t k = i - 2 * tri(n);
        if (i < 2 * tri(n) || k >= n)
            assert_memory_equal(&v[i], &before[i], sizeof v[i]);
        else if (isnan(want[k]))
            assert_true(isnan(v[i]));
        else
            assert_memory_equal(&v[i], &want[k], sizeof v[i]);
    }
    free(v);
    free(before);
    invdl_layer_free(l);
}

/* Training drives a model towards the zero map, which pulls every s_i
 * towards 0; the projected steps stop each at the floor, never inside it,
 * and the loss falls.  A model whose s would cross 0 unprojected: with
 * s_min = 0.25 and learning rate 0.5 the first steps already reach it. */
static void test_training_stays_out_of_the_floor(void **state)
{
    (void)state;
    size_t n = 4, samples = 64, np = n * n + n;
    invdl_model *m = invdl_model_create(n);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense_lu_min(n, 5, 0.25f)), INVDL_OK);
    float *x = test_random_floats(samples * n, 1.0, 170), *y = calloc(samples * n, sizeof *y);
    float *v = malloc(np * sizeof *v);
    assert_true(y != NULL && v != NULL);
    for (int saving = 0; saving < 2; saving++) {
        invdl_fit_options o = invdl_fit_defaults();
        o.learning_rate = 0.5f;
        o.epochs = 20;
        o.batch_size = 8;
        o.memory_saving = saving;
        float first, last;
        o.epochs = 1;
        assert_int_equal(invdl_model_fit(m, samples, x, y, &o, &first), INVDL_OK);
        o.epochs = 20;
        assert_int_equal(invdl_model_fit(m, samples, x, y, &o, &last), INVDL_OK);
        assert_true(last < first);
        assert_int_equal(invdl_model_get_params(m, np, v), INVDL_OK);
        size_t at_floor = 0;
        for (size_t i = 0; i < n; i++) {
            float s = v[2 * tri(n) + i];
            assert_true(fabsf(s) >= 0.25f);
            at_floor += fabsf(s) == 0.25f;
        }
        assert_true(at_floor > 0);
    }
    free(x);
    free(y);
    free(v);
    invdl_model_free(m);
}

/* Bad values are refused and change nothing; the inverse stays linked. */
static void test_bad_params(void **state)
{
    (void)state;
    size_t n = 5, np = n * n + n, batch = 3;
    invdl_layer *l = moved_layer(n, 180);
    float *v = malloc(np * sizeof *v), *keep = malloc(np * sizeof *keep);
    float *x = test_random_floats(n * batch, 1.0, 181), y0[15], y1[15];
    assert_true(v != NULL && keep != NULL);
    assert_int_equal(invdl_layer_get_params(l, np, keep), INVDL_OK);
    assert_int_equal(invdl_layer_apply(l, batch, x, y0), INVDL_OK);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const size_t where[4] = {0, tri(n), 2 * tri(n) + 1, np - 1}; /* L, U, s, b */
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < 4; k++) {
            memcpy(v, keep, np * sizeof *v);
            v[where[k]] = bad[b];
            assert_int_equal(invdl_layer_set_params(l, np, v), INVDL_EINVAL);
        }
    assert_int_equal(invdl_layer_set_params(l, np - 1, keep), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(l, np, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_get_params(l, np, v), INVDL_OK);
    assert_memory_equal(v, keep, np * sizeof *v);
    assert_int_equal(invdl_layer_apply(l, batch, x, y1), INVDL_OK);
    assert_memory_equal(y0, y1, sizeof y0);
    free(v);
    free(keep);
    free(x);
    invdl_layer_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_forward_inverse),
        cmocka_unit_test(test_log_det),
        cmocka_unit_test(test_norms),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_log_det_grad),
        cmocka_unit_test(test_project),
        cmocka_unit_test(test_training_stays_out_of_the_floor),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
