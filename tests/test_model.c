/*
 * test_model.c - models: building, prediction, inverse models, round
 * trips of shallow and deep models, log-determinants, parameters, threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"
#include "reference.h"

enum { W = 8, N = 200 };

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

/* blocks x (dense, mprelu), an abs-tanh after every tanh_every blocks. */
static invdl_model *build(size_t width, size_t blocks, size_t tanh_every, uint64_t seed)
{
    invdl_model *m = invdl_model_create(width);
    assert_non_null(m);
    for (size_t b = 0; b < blocks; b++) {
        assert_int_equal(invdl_model_add(m, invdl_layer_dense(width, seed + 2 * b)), INVDL_OK);
        assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(width, seed + 2 * b + 1)),
                         INVDL_OK);
        if (tanh_every > 0 && (b + 1) % tanh_every == 0)
            assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(width)), INVDL_OK);
    }
    return m;
}

static void test_create_and_add(void **state)
{
    (void)state;
    assert_null(invdl_model_create(0));
    assert_null(invdl_model_inverse(NULL));
    invdl_model_free(NULL);
    invdl_model *m = invdl_model_create(3);
    assert_int_equal(invdl_model_width(m), 3);
    assert_int_equal(invdl_model_depth(m), 0);
    assert_int_equal(invdl_model_add(m, NULL), INVDL_EINVAL);
    /* Width mismatch: refused, and the layer is freed (leak checkers see
     * it). */
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(4)), INVDL_EINVAL);
    assert_int_equal(invdl_model_add(NULL, invdl_layer_ssin(3)), INVDL_EINVAL);
    invdl_layer *l = invdl_layer_abstanh(3);
    assert_int_equal(invdl_model_add(m, l), INVDL_OK);
    /* A layer a model already owns is refused and stays owned. */
    assert_int_equal(invdl_model_add(m, l), INVDL_EINVAL);
    invdl_layer_free(l); /* owned by m: does nothing */
    assert_int_equal(invdl_model_depth(m), 1);
    assert_ptr_equal(invdl_model_layer(m, 0), l);
    assert_null(invdl_model_layer(m, 1));
    for (int i = 0; i < 40; i++)
        assert_int_equal(invdl_model_add(m, invdl_layer_ssin(3)), INVDL_OK);
    assert_int_equal(invdl_model_depth(m), 41);
    invdl_model_free(m);
}

static void test_predict_arguments(void **state)
{
    (void)state;
    invdl_model *m = build(2, 1, 0, 1);
    float x[4] = {1, -2, 3, -4}, y[4] = {7, 7, 7, 7}, z[4];
    assert_int_equal(invdl_model_predict(m, 0, NULL, NULL), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, 2, NULL, y), INVDL_EINVAL);
    assert_int_equal(invdl_model_predict(m, 2, x, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_model_predict(NULL, 2, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_model_predict(m, SIZE_MAX / 2, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_model_log_det(m, 2, x, NULL), INVDL_EINVAL);
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == 7.0f);
    /* in == out gives what out of place gives. */
    assert_int_equal(invdl_model_predict(m, 2, x, z), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, 2, x, x), INVDL_OK);
    assert_memory_equal(x, z, sizeof z);
    invdl_model_free(m);

    /* An empty model is the identity. */
    m = invdl_model_create(2);
    const float a[4] = {1, 2, 3, 4};
    assert_int_equal(invdl_model_predict(m, 2, a, z), INVDL_OK);
    assert_memory_equal(a, z, sizeof z);
    invdl_model_free(m);
}

/* A layer's INVDL_EDOMAIN reaches the caller; every output is written. */
static void test_predict_domain(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(2);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(2)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(2)), INVDL_OK);
    const float x[4] = {0.5f, 3.0f, -1.0f, 1.0f};
    float y[4], want[4];
    assert_int_equal(invdl_model_predict(m, 2, x, y), INVDL_EDOMAIN);
    assert_int_equal(invdl_ssin_forward(4, x, want), INVDL_EDOMAIN);
    assert_int_equal(invdl_abstanh_forward(4, want, want), INVDL_OK);
    assert_memory_equal(y, want, sizeof y);
    /* The inverse model meets |y| > YMAX in its last layer: NaN there. */
    invdl_model *inv = invdl_model_inverse(m);
    const float big[2] = {5.0f, 0.5f};
    float back[2];
    assert_int_equal(invdl_model_predict(inv, 1, big, back), INVDL_EDOMAIN);
    assert_true(isnan(back[0]) && !isnan(back[1]));
    invdl_model_free(inv);
    invdl_model_free(m);
}

static void test_inverse_structure(void **state)
{
    (void)state;
    invdl_model *m = build(W, 2, 1, 3);
    invdl_model *inv = invdl_model_inverse(m);
    size_t d = invdl_model_depth(m);
    assert_int_equal(invdl_model_depth(inv), d);
    for (size_t i = 0; i < d; i++) {
        invdl_layer *f = invdl_model_layer(m, i), *g = invdl_model_layer(inv, d - 1 - i);
        assert_true(invdl_layer_shares_params(f, g));
        assert_true(invdl_layer_is_inverse(g));
        assert_int_equal(invdl_layer_kind_of(f), invdl_layer_kind_of(g));
    }
    assert_int_equal(invdl_model_param_count(inv), invdl_model_param_count(m));
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* SPEC section 2: shallow models (3 dense + PReLU blocks) recover inputs to
 * about 1e-4 of max|x|.  Measured over 20 seeds by tests/measure_models:
 * median 3.7e-6, worst 4.7e-5. */
static void test_shallow_recovers_inputs(void **state)
{
    (void)state;
    static float x[N * W], y[N * W], back[N * W];
    fill(x, N * W, -1, 1, 5);
    for (uint64_t seed = 0; seed < 10; seed++) {
        invdl_model *m = build(W, 3, 0, 1000 * seed);
        invdl_model *inv = invdl_model_inverse(m);
        assert_int_equal(invdl_model_predict(m, N, x, y), INVDL_OK);
        assert_int_equal(invdl_model_predict(inv, N, y, back), INVDL_OK);
        double err = 0.0;
        for (size_t i = 0; i < N * W; i++)
            err = fmax(err, fabs((double)back[i] - (double)x[i]));
        assert_true(err <= 1e-4);
        invdl_model_free(inv);
        invdl_model_free(m);
    }
}

/* SPEC section 2: a deep model (width 8, 12 dense + PReLU blocks, 4
 * abs-tanh) cannot give x back from f(x) in float, but its inverse is
 * backward stable: f(g(y)) is y up to the rounding of every layer of g.
 * That rounding is bounded here from the computation itself: layer l of g
 * returns a float with relative error at most 2^-24 per component (the
 * kernels round correctly, the dense inverse solves in double and rounds
 * once), the forward layers above it map that error with slopes at most
 * 1.2 (abs-tanh's largest slope is 1.1997; PReLU <= 1; orthogonal W has
 * |W|_inf <= sqrt(8)), so |f(g(y)) - y| <= sum_l 2^-24 max|v_l| * 1.2^4 *
 * sqrt(8)^k over the intermediate values v_l of g, with k the dense layers
 * above.  The test checks the much tighter sum_l 4 ulps of max|v_l|, which
 * holds with room at every seed tried; the SPEC's independent float32
 * model measured 2e-4 of max|y| on its data. */
static void test_deep_inverse_backward_stable(void **state)
{
    (void)state;
    static float x[N * W], y[N * W], v[N * W], back[N * W];
    fill(x, N * W, -1, 1, 6);
    for (uint64_t seed = 0; seed < 10; seed++) {
        invdl_model *m = build(W, 12, 3, 1000 * seed);
        assert_int_equal(invdl_model_depth(m), 28);
        invdl_model *inv = invdl_model_inverse(m);
        assert_int_equal(invdl_model_predict(m, N, x, y), INVDL_OK);
        double ymax = 0.0, bound = 0.0;
        for (size_t i = 0; i < N * W; i++)
            ymax = fmax(ymax, fabs((double)y[i]));
        memcpy(v, y, sizeof v);
        for (size_t l = 0; l < invdl_model_depth(inv); l++) {
            assert_int_equal(invdl_layer_apply(invdl_model_layer(inv, l), N, v, v), INVDL_OK);
            double vmax = 0.0;
            for (size_t i = 0; i < N * W; i++)
                vmax = fmax(vmax, fabs((double)v[i]));
            bound += 4 * 0x1p-24 * vmax;
        }
        invdl_roundtrip r;
        assert_int_equal(invdl_model_roundtrip(m, N, x, NULL, &r), INVDL_OK);
        assert_true((double)r.backward_error <= bound / ymax);
        /* The same through the inverse model object. */
        assert_int_equal(invdl_model_predict(inv, N, y, back), INVDL_OK);
        assert_memory_equal(back, v, sizeof v);
        invdl_model_free(inv);
        invdl_model_free(m);
    }
}

/* The helper reports what a direct computation gives. */
static void test_roundtrip_helper(void **state)
{
    (void)state;
    enum { S = 16 };
    float x[S * W], y[S * W], fx[S * W], gfx[S * W], gy[S * W], fgy[S * W];
    fill(x, S * W, -1, 1, 7);
    fill(y, S * W, -0.5, 0.5, 8);
    invdl_model *m = build(W, 2, 1, 11), *inv = invdl_model_inverse(m);
    invdl_roundtrip r;
    assert_int_equal(invdl_model_roundtrip(m, S, x, y, &r), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, S, x, fx), INVDL_OK);
    assert_int_equal(invdl_model_predict(inv, S, fx, gfx), INVDL_OK);
    assert_int_equal(invdl_model_predict(inv, S, y, gy), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, S, gy, fgy), INVDL_OK);
    double e1 = 0, s1 = 0, e2 = 0, s2 = 0;
    for (size_t i = 0; i < S * W; i++) {
        e1 = fmax(e1, fabs((double)gfx[i] - (double)x[i]));
        s1 = fmax(s1, fabs((double)x[i]));
        e2 = fmax(e2, fabs((double)fgy[i] - (double)y[i]));
        s2 = fmax(s2, fabs((double)y[i]));
    }
    assert_true(r.forward_error == (float)(e1 / s1));
    assert_true(r.backward_error == (float)(e2 / s2));
    assert_int_equal(r.forward_status, INVDL_OK);
    /* The inverse model's helper swaps nothing but the direction. */
    assert_int_equal(invdl_model_roundtrip(inv, S, fx, NULL, &r), INVDL_OK);
    assert_int_equal(invdl_model_roundtrip(NULL, S, x, y, &r), INVDL_EINVAL);
    assert_int_equal(invdl_model_roundtrip(m, S, x, y, NULL), INVDL_EINVAL);

    assert_true(invdl_delta_check(S * W, x, x, 1e-9f));
    assert_true(invdl_delta_check(S * W, gfx, x, 1e-2f));
    float nan_copy[2] = {NAN, 0};
    assert_false(invdl_delta_check(2, nan_copy, x, 1e9f));
    assert_false(invdl_delta_check(1, NULL, x, 1.0f));
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* Infinities in a round trip.  One that comes back as the same infinity
 * differs by 0 (inf - inf is NaN, which would claim a value was lost), and
 * the relative errors are scaled by the largest finite magnitude, so an
 * infinity next to a finite value neither hides nor spoils its error.  The
 * expected errors come from the float arithmetic the header documents for
 * PReLU (one rounding of a*x, one of y/a). */
static void test_roundtrip_infinities(void **state)
{
    (void)state;
    /* abs-tanh maps +-inf to +-inf, takes 1, -2 and 0.5 back exactly, and
     * is the identity from |x| = 8.7067 on (docs/accuracy.md). */
    invdl_model *m = invdl_model_create(4);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(4)), INVDL_OK);
    const float x[4] = {INFINITY, -INFINITY, 1.0f, -2.0f};
    const float x2[4] = {0.5f, INFINITY, -INFINITY, -2.0f}, y2[4] = {INFINITY, 10, -INFINITY, -9};
    invdl_roundtrip r;
    assert_int_equal(invdl_model_roundtrip(m, 1, x, NULL, &r), INVDL_OK);
    assert_true(r.forward_error == 0.0f && r.backward_error == 0.0f);
    assert_int_equal(invdl_model_roundtrip(m, 1, x2, y2, &r), INVDL_OK);
    assert_true(r.forward_error == 0.0f && r.backward_error == 0.0f);
    invdl_model_free(m);

    /* PReLU with slope 0.3: find a v < 0 whose round trip is inexact in
     * float, and u < 0 whose backward trip a*(u/a) is. */
    const float a = 0.3f, alpha[2] = {a, a};
    m = invdl_model_create(2);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(2, 1)), INVDL_OK);
    assert_int_equal(invdl_layer_set_params(invdl_model_layer(m, 0), 2, alpha), INVDL_OK);
    volatile float step;
    float v = -1.0f, u = -1.0f, back, fwd;
    for (;; v -= 0.125f) {
        step = a * v;
        back = step / a;
        if (back != v)
            break;
    }
    for (;; u -= 0.125f) {
        step = u / a;
        fwd = a * step;
        if (fwd != u)
            break;
    }
    const float xs[2] = {INFINITY, v}, ys[2] = {-INFINITY, u};
    assert_int_equal(invdl_model_roundtrip(m, 1, xs, ys, &r), INVDL_OK);
    assert_true(r.forward_error == (float)(fabs((double)back - (double)v) / fabs((double)v)));
    assert_true(r.backward_error == (float)(fabs((double)fwd - (double)u) / fabs((double)u)));
    assert_true(r.forward_error > 0.0f && r.backward_error > 0.0f);
    invdl_model_free(m);
}

/* The notebook's demo: create_model, the inverted layer linked to the
 * forward one, data [[-1, 0, 1]], delta_check True. */
static void test_notebook_prelu(void **state)
{
    (void)state;
    invdl_layer *forward_layer = invdl_layer_mprelu(3, 42);
    invdl_layer *inverted_layer = invdl_layer_inverse(forward_layer);
    invdl_model *forward_prelu = invdl_model_create(3);
    invdl_model *inverted_prelu = invdl_model_create(3);
    assert_int_equal(invdl_model_add(forward_prelu, forward_layer), INVDL_OK);
    assert_int_equal(invdl_model_add(inverted_prelu, inverted_layer), INVDL_OK);
    const float data[3] = {-1, 0, 1};
    float alpha[3], forward[3], inverted[3];
    assert_int_equal(invdl_layer_get_params(forward_layer, 3, alpha), INVDL_OK);
    assert_int_equal(invdl_model_predict(forward_prelu, 1, data, forward), INVDL_OK);
    float a0 = fmaxf(fabsf(alpha[0]), INVDL_MPRELU_ALPHA_MIN);
    assert_true(forward[0] == -a0 && forward[1] == 0.0f && forward[2] == 1.0f);
    assert_int_equal(invdl_model_predict(inverted_prelu, 1, forward, inverted), INVDL_OK);
    assert_true(invdl_delta_check(3, data, inverted, 1e-2f));
    invdl_model_free(forward_prelu);
    invdl_model_free(inverted_prelu);
}

/* An inverse model outlives its forward model, and the inverse of the
 * inverse model computes the forward model bit for bit. */
static void test_lifetimes_and_double_inverse(void **state)
{
    (void)state;
    enum { S = 20 };
    float x[S * W], y[S * W], y2[S * W], back[S * W];
    fill(x, S * W, -1, 1, 9);
    invdl_model *m = build(W, 3, 2, 21);
    invdl_model *inv = invdl_model_inverse(m);
    invdl_model *again = invdl_model_inverse(inv);
    assert_int_equal(invdl_model_predict(m, S, x, y), INVDL_OK);
    assert_int_equal(invdl_model_predict(again, S, x, y2), INVDL_OK);
    assert_memory_equal(y, y2, sizeof y);
    invdl_model_free(m);
    assert_int_equal(invdl_model_predict(inv, S, y, back), INVDL_OK);
    invdl_model_free(again);
    assert_true(invdl_delta_check(S * W, back, x, 1e-4f));
    float back2[S * W];
    assert_int_equal(invdl_model_predict_inverse(inv, S, x, back2), INVDL_OK);
    assert_memory_equal(back2, y2, sizeof y2);
    invdl_model_free(inv);
}

/* log|det J| is additive along the chain and the inverse model's is the
 * negative at the matching point.  (test_gradients checks the values
 * against finite differences.)  Dense layers start orthogonal (log|det| =
 * 0), PReLU contributes sum of log a over negative inputs. */
static void test_log_det(void **state)
{
    (void)state;
    enum { S = 10 };
    float x[S * W], y[S * W], ld[S], ldi[S], alpha[W];
    fill(x, S * W, -1, 1, 12);
    invdl_model *m = invdl_model_create(W);
    invdl_layer *p = invdl_layer_mprelu(W, 4);
    assert_int_equal(invdl_layer_get_params(p, W, alpha), INVDL_OK);
    assert_int_equal(invdl_model_add(m, p), INVDL_OK);
    assert_int_equal(invdl_model_log_det(m, S, x, ld), INVDL_OK);
    for (size_t s = 0; s < S; s++) {
        double want = 0.0;
        for (size_t j = 0; j < W; j++)
            if (x[s * W + j] < 0)
                want += log(fmax(fabs((double)alpha[j]), (double)INVDL_MPRELU_ALPHA_MIN));
        assert_true(fabs((double)ld[s] - want) <= 1e-6 * (1 + fabs(want)));
    }
    invdl_model *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_predict(m, S, x, y), INVDL_OK);
    assert_int_equal(invdl_model_log_det(inv, S, y, ldi), INVDL_OK);
    for (size_t s = 0; s < S; s++)
        assert_true(ldi[s] == -ld[s]);
    invdl_model_free(inv);
    invdl_model_free(m);
    assert_int_equal(invdl_model_log_det(NULL, 1, x, ld), INVDL_EINVAL);
}

static void test_parameters(void **state)
{
    (void)state;
    invdl_model *m = build(3, 2, 1, 31);
    size_t np = invdl_model_param_count(m);
    assert_int_equal(np, 2 * (9 + 3 + 3));
    float *p = malloc(np * sizeof *p), *q = malloc(np * sizeof *q);
    assert_int_equal(invdl_model_get_params(m, np, p), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m, np - 1, q), INVDL_EINVAL);
    assert_int_equal(invdl_model_get_params(m, np, NULL), INVDL_EINVAL);
    for (size_t i = 0; i < np; i++)
        q[i] = p[i] * 0.5f;
    assert_int_equal(invdl_model_set_params(m, np, q), INVDL_OK);
    invdl_model *inv = invdl_model_inverse(m);
    float r[30];
    assert_int_equal(invdl_model_get_params(inv, np, r), INVDL_OK);
    /* The inverse lists its blocks in its own order of use: second PReLU,
     * second dense, first PReLU, first dense. */
    assert_memory_equal(r, q + 27, 3 * sizeof *r);
    assert_memory_equal(r + 3, q + 15, 12 * sizeof *r);
    assert_memory_equal(r + 15, q + 12, 3 * sizeof *r);
    assert_memory_equal(r + 18, q, 12 * sizeof *r);
    /* All or nothing: the second dense matrix singular, nothing changes. */
    memcpy(r, p, np * sizeof *r);
    memset(r + 15, 0, 9 * sizeof *r);
    assert_int_equal(invdl_model_set_params(m, np, r), INVDL_ESINGULAR);
    assert_int_equal(invdl_model_get_params(m, np, r), INVDL_OK);
    assert_memory_equal(r, q, np * sizeof *r);
    invdl_model_free(inv);
    invdl_model_free(m);
    free(p);
    free(q);
}

/* Several threads predicting with one model (and its inverse) at once get
 * what a single thread gets. */
typedef struct job {
    invdl_model *model;
    const float *in;
    float *out;
    size_t batch;
    invdl_status status;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int rep = 0; rep < 20 && j->status == INVDL_OK; rep++)
        j->status = invdl_model_predict(j->model, j->batch, j->in, j->out);
    return NULL;
}

static void test_concurrent_predict(void **state)
{
    (void)state;
    enum { T = 4, S = 64 };
    static float x[S * W], want[S * W], out[T][S * W];
    fill(x, S * W, -1, 1, 13);
    invdl_model *m = build(W, 4, 2, 41);
    invdl_model *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_predict(m, S, x, want), INVDL_OK);
    pthread_t th[T];
    job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){t % 2 ? inv : m, t % 2 ? want : x, out[t], S, INVDL_OK};
        assert_int_equal(pthread_create(&th[t], NULL, run_job, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(jobs[t].status, INVDL_OK);
    }
    assert_memory_equal(out[0], want, sizeof want);
    assert_memory_equal(out[2], want, sizeof want);
    assert_memory_equal(out[1], out[3], sizeof want);
    invdl_model_free(inv);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_add),
        cmocka_unit_test(test_predict_arguments),
        cmocka_unit_test(test_predict_domain),
        cmocka_unit_test(test_inverse_structure),
        cmocka_unit_test(test_shallow_recovers_inputs),
        cmocka_unit_test(test_deep_inverse_backward_stable),
        cmocka_unit_test(test_roundtrip_helper),
        cmocka_unit_test(test_roundtrip_infinities),
        cmocka_unit_test(test_notebook_prelu),
        cmocka_unit_test(test_lifetimes_and_double_inverse),
        cmocka_unit_test(test_log_det),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_concurrent_predict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
