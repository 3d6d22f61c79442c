/*
 * test_layers.c - layer construction, initialisation, linked inverses,
 * parameter access and lifetimes.
 *
 * References: the kernels' own outputs for the elementwise kinds (layers
 * must add nothing to them: bit-identical), and double or long double
 * arithmetic written here for the dense layer.
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
#include "reference.h"

enum { W = 6, B = 9 };

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

static void test_constructors(void **state)
{
    (void)state;
    assert_null(invdl_layer_ssin(0));
    assert_null(invdl_layer_abstanh(0));
    assert_null(invdl_layer_mprelu(0, 1));
    assert_null(invdl_layer_dense(0, 1));
    assert_null(invdl_layer_inverse(NULL));
    assert_null(invdl_layer_mprelu_min(3, 1, 0.0f));
    assert_null(invdl_layer_mprelu_min(3, 1, -1.0f));
    assert_null(invdl_layer_mprelu_min(3, 1, NAN));
    assert_null(invdl_layer_mprelu_min(3, 1, INFINITY));
    /* A dense layer whose parameters cannot be addressed. */
    assert_null(invdl_layer_dense(SIZE_MAX / 2, 1));
    invdl_layer_free(NULL);

    /* Widths past INVDL_MAX_WIDTH (2^53 - 1 with 64-bit pointers, as the
     * header says), whose scratch could never be allocated, are refused by
     * every constructor; the widest ssin and abstanh layers, which
     * allocate nothing per feature until used, are made. */
    if (sizeof(void *) == 8)
        assert_true(INVDL_MAX_WIDTH == ((size_t)1 << 53) - 1);
    const size_t too_wide[] = {INVDL_MAX_WIDTH + 1, INVDL_MAX_WIDTH * 2 + 2, SIZE_MAX / 4 + 1,
                               SIZE_MAX};
    for (size_t k = 0; k < sizeof too_wide / sizeof too_wide[0]; k++) {
        assert_null(invdl_layer_ssin(too_wide[k]));
        assert_null(invdl_layer_abstanh(too_wide[k]));
        assert_null(invdl_layer_mprelu(too_wide[k], 1));
        assert_null(invdl_layer_mprelu_min(too_wide[k], 1, 0.5f));
        assert_null(invdl_layer_dense(too_wide[k], 1));
        assert_null(invdl_model_create(too_wide[k]));
    }
    invdl_layer *widest[2] = {invdl_layer_ssin(INVDL_MAX_WIDTH),
                              invdl_layer_abstanh(INVDL_MAX_WIDTH)};
    invdl_model *wide = invdl_model_create(INVDL_MAX_WIDTH);
    assert_non_null(wide);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(invdl_layer_width(widest[k]), INVDL_MAX_WIDTH);
        assert_int_equal(invdl_model_add(wide, widest[k]), INVDL_OK);
    }
    invdl_model_free(wide);

    invdl_layer *l = invdl_layer_mprelu(W, 3);
    assert_non_null(l);
    assert_int_equal(invdl_layer_kind_of(l), INVDL_LAYER_MPRELU);
    assert_string_equal(invdl_layer_name(l), "mprelu");
    assert_int_equal(invdl_layer_width(l), W);
    assert_false(invdl_layer_is_inverse(l));
    assert_true(invdl_layer_alpha_min(l) == INVDL_MPRELU_ALPHA_MIN);
    assert_int_equal(invdl_layer_param_count(l), W);
    invdl_layer_free(l);

    l = invdl_layer_dense(W, 3);
    assert_int_equal(invdl_layer_kind_of(l), INVDL_LAYER_DENSE);
    assert_int_equal(invdl_layer_param_count(l), W * W + W);
    assert_true(invdl_layer_alpha_min(l) == 0.0f);
    invdl_layer_free(l);
    l = invdl_layer_ssin(W);
    assert_int_equal(invdl_layer_param_count(l), 0);
    assert_string_equal(invdl_layer_name(l), "ssin");
    invdl_layer_free(l);
    l = invdl_layer_abstanh(W);
    assert_int_equal(invdl_layer_kind_of(l), INVDL_LAYER_ABSTANH);
    invdl_layer_free(l);
}

/* glorot_uniform for shape [w]: U(-sqrt(3/w), sqrt(3/w)), reproducible
 * from the seed. */
static void test_mprelu_init(void **state)
{
    (void)state;
    enum { N = 3000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    invdl_layer *l1 = invdl_layer_mprelu(N, 42), *l2 = invdl_layer_mprelu(N, 42);
    invdl_layer *l3 = invdl_layer_mprelu(N, 43);
    assert_int_equal(invdl_layer_get_params(l1, N, a), INVDL_OK);
    assert_int_equal(invdl_layer_get_params(l2, N, b), INVDL_OK);
    assert_memory_equal(a, b, N * sizeof *a);
    double limit = sqrt(3.0 / N), sum = 0.0, sq = 0.0;
    for (size_t i = 0; i < N; i++) {
        assert_true(fabs((double)a[i]) <= limit);
        sum += (double)a[i];
        sq += (double)a[i] * (double)a[i];
    }
    /* Uniform on [-L, L]: mean 0 and variance L^2/3; with N samples the
     * mean's standard error is L/sqrt(3N) ~ 0.0006, and 5 of them bound
     * it.  The variance estimate is within 5% at this N. */
    assert_true(fabs(sum / N) <= 5 * limit / sqrt(3.0 * N));
    assert_true(fabs(sq / N / (limit * limit / 3) - 1) < 0.05);
    assert_int_equal(invdl_layer_get_params(l3, N, b), INVDL_OK);
    assert_memory_not_equal(a, b, N * sizeof *a);
    invdl_layer_free(l1);
    invdl_layer_free(l2);
    invdl_layer_free(l3);
    free(a);
    free(b);
}

/* W orthogonal in float: W^T W = I up to the rounding of the entries
 * (each |dq| <= 2^-24 |q|, so each entry of W^T W is off by at most about
 * 2 * 2^-24 * sum_k |q_ki||q_kj| <= 2^-23, plus the double QR's 1e-15). */
static void test_dense_init(void **state)
{
    (void)state;
    static const size_t widths[] = {1, 2, 7, 33};
    for (size_t c = 0; c < 4; c++) {
        size_t n = widths[c], np = n * n + n;
        float *p = malloc(np * sizeof *p);
        assert_non_null(p);
        invdl_layer *l = invdl_layer_dense(n, 100 + c);
        assert_non_null(l);
        assert_int_equal(invdl_layer_get_params(l, np, p), INVDL_OK);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) {
                double dot = 0.0;
                for (size_t k = 0; k < n; k++)
                    dot += (double)p[k * n + i] * (double)p[k * n + j];
                assert_true(fabs(dot - (i == j)) <= 0x1p-23);
            }
            assert_true(p[n * n + i] == 0.0f);
        }
        invdl_layer_free(l);
        free(p);
    }
}

/* Elementwise layers are their kernels, bit for bit, both ways. */
static void test_elementwise_match_kernels(void **state)
{
    (void)state;
    float x[B * W], got[B * W], want[B * W];
    fill(x, B * W, -1.8, 1.8, 1);
    invdl_layer *s = invdl_layer_ssin(W), *si = invdl_layer_inverse(s);
    assert_int_equal(invdl_layer_apply(s, B, x, got), INVDL_OK);
    assert_int_equal(invdl_ssin_forward(B * W, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(invdl_layer_apply(si, B, x, got), INVDL_OK);
    assert_int_equal(invdl_ssin_inverse(B * W, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    invdl_layer *t = invdl_layer_abstanh(W), *ti = invdl_layer_inverse(t);
    assert_int_equal(invdl_layer_apply(t, B, x, got), INVDL_OK);
    assert_int_equal(invdl_abstanh_forward(B * W, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(invdl_layer_apply(ti, B, x, got), INVDL_OK);
    assert_int_equal(invdl_abstanh_inverse(B * W, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    invdl_layer *p = invdl_layer_mprelu_min(W, 9, 0.25f), *pi = invdl_layer_inverse(p);
    float alpha[W];
    assert_int_equal(invdl_layer_get_params(p, W, alpha), INVDL_OK);
    assert_int_equal(invdl_layer_apply(p, B, x, got), INVDL_OK);
    assert_int_equal(invdl_mprelu_forward(B, W, alpha, 0.25f, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(invdl_layer_apply(pi, B, x, got), INVDL_OK);
    assert_int_equal(invdl_mprelu_inverse(B, W, alpha, 0.25f, x, want), INVDL_OK);
    assert_memory_equal(got, want, sizeof got);
    /* Outside the signed sin branch: written and reported. */
    x[3] = 2.5f;
    assert_int_equal(invdl_layer_apply(s, B, x, got), INVDL_EDOMAIN);
    assert_true(got[3] == (float)(2.5 * sin(2.5)));
    invdl_layer *all[] = {s, si, t, ti, p, pi};
    for (size_t i = 0; i < 6; i++)
        invdl_layer_free(all[i]);
}

static double ulp_of(double v)
{
    int e;
    frexp(fmax(fabs(v), (double)FLT_MIN), &e);
    return ldexp(1.0, e - 24);
}

/* Dense forward: one rounding of the exact W x + b (computed here in long
 * double), up to the double accumulation's n*2^-53 relative error of the
 * sum of |terms|.  Inverse: the float nearest the long double solution, up
 * to cond(W) * 2^-53 relative; W here has cond < 10. */
static void test_dense_values(void **state)
{
    (void)state;
    float p[W * W + W], x[B * W], y[B * W], back[B * W];
    invdl_layer *d = invdl_layer_dense(W, 5);
    assert_int_equal(invdl_layer_get_params(d, W * W + W, p), INVDL_OK);
    uint64_t s = 6;
    for (size_t i = 0; i < W * W + W; i++)
        p[i] += (float)(0.2 * ((double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5));
    assert_int_equal(invdl_layer_set_params(d, W * W + W, p), INVDL_OK);
    fill(x, B * W, -3, 3, 7);
    assert_int_equal(invdl_layer_apply(d, B, x, y), INVDL_OK);
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; i < W; i++) {
            long double acc = (long double)p[W * W + i], mag = fabsl((long double)p[W * W + i]);
            for (size_t j = 0; j < W; j++) {
                acc += (long double)p[i * W + j] * (long double)x[b * W + j];
                mag += fabsl((long double)p[i * W + j] * (long double)x[b * W + j]);
            }
            assert_true(fabs((double)y[b * W + i] - (double)acc) <=
                        0.5 * ulp_of((double)acc) + 1e-14 * (double)mag);
        }
    }
    invdl_layer *inv = invdl_layer_inverse(d);
    assert_int_equal(invdl_layer_apply(inv, B, y, back), INVDL_OK);
    for (size_t b = 0; b < B; b++) {
        /* Solve in long double by Gaussian elimination with pivoting. */
        long double a[W][W + 1];
        for (size_t i = 0; i < W; i++) {
            for (size_t j = 0; j < W; j++)
                a[i][j] = (long double)p[i * W + j];
            a[i][W] = (long double)y[b * W + i] - (long double)p[W * W + i];
        }
        for (size_t k = 0; k < W; k++) {
            size_t piv = k;
            for (size_t i = k + 1; i < W; i++)
                if (fabsl(a[i][k]) > fabsl(a[piv][k]))
                    piv = i;
            for (size_t j = 0; j <= W; j++) {
                long double t = a[k][j];
                a[k][j] = a[piv][j];
                a[piv][j] = t;
            }
            for (size_t i = k + 1; i < W; i++) {
                long double m = a[i][k] / a[k][k];
                for (size_t j = k; j <= W; j++)
                    a[i][j] -= m * a[k][j];
            }
        }
        long double sol[W];
        for (size_t i = W; i-- > 0;) {
            long double t = a[i][W];
            for (size_t j = i + 1; j < W; j++)
                t -= a[i][j] * sol[j];
            sol[i] = t / a[i][i];
        }
        double scale = 0.0;
        for (size_t i = 0; i < W; i++)
            scale = fmax(scale, fabs((double)sol[i]));
        for (size_t i = 0; i < W; i++)
            assert_true(fabs((double)back[b * W + i] - (double)sol[i]) <=
                        0.5 * ulp_of((double)sol[i]) + 1e-13 * scale);
    }
    invdl_layer_free(inv);
    invdl_layer_free(d);
}

/* The inverse reads the forward's block: changes made through either are
 * seen by both, and the inverse of the inverse is the forward again. */
static void test_linked_inverse(void **state)
{
    (void)state;
    invdl_layer *d = invdl_layer_dense(W, 8);
    invdl_layer *inv = invdl_layer_inverse(d);
    invdl_layer *back = invdl_layer_inverse(inv);
    assert_true(invdl_layer_is_inverse(inv));
    assert_false(invdl_layer_is_inverse(back));
    assert_true(invdl_layer_shares_params(d, inv));
    assert_true(invdl_layer_shares_params(inv, back));
    assert_int_equal(invdl_layer_param_count(inv), W * W + W);

    float p[W * W + W], q[W * W + W], x[B * W], y[B * W], y2[B * W], z[B * W];
    fill(p, W * W + W, -1, 1, 9);
    for (size_t i = 0; i < W; i++)
        p[i * W + i] += 3.0f; /* diagonally dominant: well conditioned */
    assert_int_equal(invdl_layer_set_params(inv, W * W + W, p), INVDL_OK);
    assert_int_equal(invdl_layer_get_params(d, W * W + W, q), INVDL_OK);
    assert_memory_equal(p, q, sizeof p);

    fill(x, B * W, -2, 2, 10);
    assert_int_equal(invdl_layer_apply(d, B, x, y), INVDL_OK);
    assert_int_equal(invdl_layer_apply(back, B, x, y2), INVDL_OK);
    assert_memory_equal(y, y2, sizeof y);
    assert_int_equal(invdl_layer_apply(inv, B, y, z), INVDL_OK);
    for (size_t i = 0; i < B * W; i++)
        assert_true(fabsf(z[i] - x[i]) <= 1e-5f);

    /* Free the forward first: the block lives on in the others. */
    invdl_layer_free(d);
    assert_int_equal(invdl_layer_apply(back, B, x, y2), INVDL_OK);
    assert_memory_equal(y, y2, sizeof y);
    invdl_layer_free(back);
    assert_int_equal(invdl_layer_apply(inv, B, y, z), INVDL_OK);
    invdl_layer_free(inv);

    /* mprelu: the notebook's pair, alpha shared. */
    invdl_layer *m = invdl_layer_mprelu(3, 1), *mi = invdl_layer_inverse(m);
    const float alpha[3] = {-0.5f, 0.25f, 2.0f};
    assert_int_equal(invdl_layer_set_params(m, 3, alpha), INVDL_OK);
    const float data[3] = {-1, -1, -1};
    float out[3], rec[3];
    assert_int_equal(invdl_layer_apply(m, 1, data, out), INVDL_OK);
    assert_true(out[0] == -0.5f && out[1] == -0.25f && out[2] == -2.0f);
    assert_int_equal(invdl_layer_apply(mi, 1, out, rec), INVDL_OK);
    assert_memory_equal(rec, data, sizeof rec);
    invdl_layer_free(mi);
    invdl_layer_free(m);
}

/* alpha_min is the slope floor, fixed per layer. */
static void test_alpha_min(void **state)
{
    (void)state;
    invdl_layer *l = invdl_layer_mprelu_min(2, 1, 0.5f);
    assert_true(invdl_layer_alpha_min(l) == 0.5f);
    const float alpha[2] = {0.1f, -0.75f}, x[2] = {-2, -2};
    float y[2];
    assert_int_equal(invdl_layer_set_params(l, 2, alpha), INVDL_OK);
    assert_int_equal(invdl_layer_apply(l, 1, x, y), INVDL_OK);
    assert_true(y[0] == -1.0f && y[1] == -1.5f);
    invdl_layer *inv = invdl_layer_inverse(l);
    assert_true(invdl_layer_alpha_min(inv) == 0.5f);
    invdl_layer_free(l);
    invdl_layer_free(inv);
}

/* Singular or non-finite parameters are refused and change nothing. */
static void test_bad_params(void **state)
{
    (void)state;
    enum { N = 3 };
    invdl_layer *d = invdl_layer_dense(N, 1);
    float before[N * N + N], p[N * N + N], after[N * N + N];
    assert_int_equal(invdl_layer_get_params(d, N * N + N, before), INVDL_OK);

    /* Rank 2: the third row is the sum of the first two. */
    const float singular[N * N + N] = {1, 2, 3, 4, 5, 6, 5, 7, 9, 0, 0, 0};
    assert_int_equal(invdl_layer_set_params(d, N * N + N, singular), INVDL_ESINGULAR);
    /* Invertible in exact arithmetic, but a relative change of 2^-24 in
     * one entry makes it singular: condition number about 2^25. */
    const float nearly[N * N + N] = {1, 1, 0, 1, 1 + 0x1p-23f, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(invdl_layer_set_params(d, N * N + N, nearly), INVDL_ESINGULAR);
    memcpy(p, before, sizeof p);
    p[4] = NAN;
    assert_int_equal(invdl_layer_set_params(d, N * N + N, p), INVDL_EINVAL);
    p[4] = INFINITY;
    assert_int_equal(invdl_layer_set_params(d, N * N + N, p), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(d, N * N, before), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(d, N * N + N, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(NULL, 0, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_get_params(d, N * N + N, after), INVDL_OK);
    assert_memory_equal(before, after, sizeof before);

    /* Well conditioned but far from orthogonal: accepted. */
    const float fine[N * N + N] = {100, 0, 0, 0, 0.01f, 0, 0, 0, 1, 1, 2, 3};
    assert_int_equal(invdl_layer_set_params(d, N * N + N, fine), INVDL_OK);
    invdl_layer_free(d);

    invdl_layer *m = invdl_layer_mprelu(2, 1);
    const float nan_alpha[2] = {0.5f, NAN};
    assert_int_equal(invdl_layer_set_params(m, 2, nan_alpha), INVDL_EINVAL);
    assert_int_equal(invdl_layer_get_params(m, 3, after), INVDL_EINVAL);
    invdl_layer_free(m);

    invdl_layer *s = invdl_layer_ssin(2);
    assert_int_equal(invdl_layer_get_params(s, 0, NULL), INVDL_OK);
    assert_int_equal(invdl_layer_set_params(s, 0, NULL), INVDL_OK);
    assert_int_equal(invdl_layer_set_params(s, 1, after), INVDL_EINVAL);
    invdl_layer_free(s);
}

static void test_apply_arguments(void **state)
{
    (void)state;
    invdl_layer *d = invdl_layer_dense(2, 1);
    float x[4] = {1, 2, 3, 4}, y[4] = {7, 7, 7, 7}, ld[2] = {7, 7};
    assert_int_equal(invdl_layer_apply(NULL, 2, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_layer_apply(d, 2, NULL, y), INVDL_EINVAL);
    assert_int_equal(invdl_layer_apply(d, 2, x, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_apply(d, SIZE_MAX / 2, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_layer_log_det(d, 2, NULL, ld), INVDL_EINVAL);
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == 7.0f);
    assert_int_equal(invdl_layer_apply(d, 0, NULL, NULL), INVDL_OK);
    /* In place equals out of place. */
    float z[4];
    assert_int_equal(invdl_layer_apply(d, 2, x, z), INVDL_OK);
    assert_int_equal(invdl_layer_apply(d, 2, x, x), INVDL_OK);
    assert_memory_equal(x, z, sizeof z);
    /* Orthogonal W: log|det| = 0 up to the rounding of W. */
    assert_int_equal(invdl_layer_log_det(d, 2, x, ld), INVDL_OK);
    assert_true(fabsf(ld[0]) < 1e-6f && ld[0] == ld[1]);
    invdl_layer_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constructors),
        cmocka_unit_test(test_mprelu_init),
        cmocka_unit_test(test_dense_init),
        cmocka_unit_test(test_elementwise_match_kernels),
        cmocka_unit_test(test_dense_values),
        cmocka_unit_test(test_linked_inverse),
        cmocka_unit_test(test_alpha_min),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_apply_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
