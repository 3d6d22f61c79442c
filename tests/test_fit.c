/*
 * test_fit.c - the trainer: Keras defaults and update rules (SGD and
 * Adam) against steps computed here in double, determinism, learning a
 * target network, divergence, bad options, callbacks, clipping, training
 * inverse models, and memory-saving backprop against stored backprop.
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

enum { W = 3 };

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

static invdl_model *dense_model(size_t width, uint64_t seed)
{
    invdl_model *m = invdl_model_create(width);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(width, seed)), INVDL_OK);
    return m;
}

static void test_defaults(void **state)
{
    (void)state;
    invdl_fit_options o = invdl_fit_defaults();
    assert_true(o.learning_rate == 0.01f);
    assert_true(o.momentum == 0.0f);
    assert_int_equal(o.batch_size, 32);
    assert_int_equal(o.epochs, 1);
    assert_int_equal(o.nesterov, 0);
    assert_true(o.global_clipnorm == 0.0f);
    assert_null(o.on_epoch);
    assert_int_equal(o.memory_saving, 0);
    assert_null(o.report);
    assert_int_equal(o.loss, INVDL_LOSS_MSE);
    assert_int_equal(o.optimizer, INVDL_OPTIMIZER_SGD);
    assert_true(o.beta_1 == 0.9f && o.beta_2 == 0.999f && o.epsilon == 1e-7f);
    /* Keras' Adam: the same with learning rate 0.001. */
    invdl_fit_options a = invdl_fit_defaults_adam();
    assert_int_equal(a.optimizer, INVDL_OPTIMIZER_ADAM);
    assert_true(a.learning_rate == 0.001f);
    assert_true(a.beta_1 == 0.9f && a.beta_2 == 0.999f && a.epsilon == 1e-7f);
    assert_true(a.momentum == 0.0f && a.nesterov == 0 && a.batch_size == 32 && a.epochs == 1);
    assert_int_equal(a.loss, INVDL_LOSS_MSE);
}

/* Adam on y = w x + b, one sample x = 2 with target 1, from w = 1, b = 0,
 * learning rate 0.1: three full-batch steps worked out here in double.
 * The gradient of (w x + b - 1)^2 is (2 r x, 2 r), r = w x + b - 1; each
 * step (t = 1, 2, 3), with clip the global norm limit (0: none):
 *     g *= min(1, clip / |g|)
 *     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *     lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  p -= lr_t m / (sqrt(v) + eps)
 * with b1, b2, eps the float defaults 0.9f, 0.999f, 1e-7f read in double.
 * By hand, the first step: g = (4, 2), m = (1 - b1) g, sqrt(v) =
 * sqrt(1 - b2) |g|, so each parameter moves by
 *     lr sqrt(1 - b2) |g| / (sqrt(1 - b2) |g| + eps) = lr / (1 + eps / (sqrt(1 - b2) |g|)),
 * i.e. w = 1 - 0.1 / (1 + 1e-7 / (0.0316 * 4)) = 0.90000008 and
 * b = -0.1 / (1 + 1e-7 / (0.0316 * 2)) = -0.09999984 (1 - 7.9e-7 and
 * 1 - 1.58e-6 of lr): Adam's bias correction makes the first step lr
 * whatever the gradient's size.  The library computes the gradient from
 * a float activation (relative error 2^-24) and Adam's step is nearly
 * invariant to the gradient's scale, so the parameters agree to a few
 * float ulps: checked at 1e-6 relative. */
static void check_adam(float clip)
{
    const float x[1] = {2.0f}, t[1] = {1.0f}, start[2] = {1.0f, 0.0f};
    const double b1 = (double)0.9f, b2 = (double)0.999f, eps = (double)1e-7f, lr = (double)0.1f;
    double p[2] = {1.0, 0.0}, m[2] = {0.0, 0.0}, v[2] = {0.0, 0.0};
    invdl_model *model = dense_model(1, 1);
    assert_int_equal(invdl_model_set_params(model, 2, start), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults_adam();
    o.learning_rate = 0.1f;
    o.batch_size = 1;
    o.global_clipnorm = clip;
    for (int step = 1; step <= 3; step++) {
        /* The library's first `step` steps: each call starts Adam afresh. */
        assert_int_equal(invdl_model_set_params(model, 2, start), INVDL_OK);
        o.epochs = (size_t)step;
        assert_int_equal(invdl_model_fit(model, 1, x, t, &o, NULL), INVDL_OK);

        double r = p[0] * 2.0 + p[1] - 1.0;
        double g[2] = {2.0 * r * 2.0, 2.0 * r};
        double norm = sqrt(g[0] * g[0] + g[1] * g[1]);
        double scale = clip > 0.0f && norm > (double)clip ? (double)clip / norm : 1.0;
        double lr_t = lr * sqrt(1.0 - pow(b2, step)) / (1.0 - pow(b1, step));
        for (int i = 0; i < 2; i++) {
            g[i] *= scale;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            p[i] -= lr_t * m[i] / (sqrt(v[i]) + eps);
        }
        if (step == 1 && clip == 0.0f) {
            assert_true(fabs(p[0] - 0.90000008) <= 1e-8);
            assert_true(fabs(p[1] + 0.09999984) <= 1e-8);
        }
        float got[2];
        assert_int_equal(invdl_model_get_params(model, 2, got), INVDL_OK);
        for (int i = 0; i < 2; i++)
            assert_true(fabs((double)got[i] - p[i]) <= 1e-6 * (1.0 + fabs(p[i])));
    }
    invdl_model_free(model);
}

static void test_adam_steps(void **state)
{
    (void)state;
    check_adam(0.0f);
    /* global_clipnorm 1 scales every gradient here (|g| = 4.47, then
     * about 3): the moments see the scaled gradients. */
    check_adam(1.0f);
}

/* Full-batch SGD on one dense layer, computed here: the MSE gradient of
 * y = W x + b over n samples and W features is dW = 2/(nW) sum_s r_s x_s^T,
 * db = 2/(nW) sum_s r_s with r = W x + b - t, in double; the step is
 * taken in float as Keras does.  Steps agree to a few float ulps of the
 * parameters (the library's gradient differs from this one only by
 * float rounding of activations), checked at 1e-6 relative. */
static void reference_steps(float *p, size_t n, const float *x, const float *t, float lr,
                            float mom, int nesterov, int steps)
{
    float v[W * W + W] = {0};
    for (int k = 0; k < steps; k++) {
        double g[W * W + W] = {0};
        for (size_t s = 0; s < n; s++) {
            for (size_t i = 0; i < W; i++) {
                double r = (double)p[W * W + i] - (double)t[s * W + i];
                for (size_t j = 0; j < W; j++)
                    r += (double)p[i * W + j] * (double)x[s * W + j];
                double c = 2.0 * r / (double)(n * W);
                for (size_t j = 0; j < W; j++)
                    g[i * W + j] += c * (double)x[s * W + j];
                g[W * W + i] += c;
            }
        }
        for (size_t i = 0; i < W * W + W; i++) {
            float gi = (float)g[i];
            if (mom == 0.0f) {
                p[i] -= lr * gi;
            } else {
                v[i] = mom * v[i] - lr * gi;
                p[i] += nesterov ? mom * v[i] - lr * gi : v[i];
            }
        }
    }
}

static void check_steps(float lr, float mom, int nesterov, size_t epochs)
{
    enum { S = 10 };
    float x[S * W], t[S * W], p[W * W + W], got[W * W + W];
    fill(x, S * W, -1, 1, 1);
    fill(t, S * W, -1, 1, 2);
    invdl_model *m = dense_model(W, 3);
    assert_int_equal(invdl_model_get_params(m, W * W + W, p), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = lr;
    o.momentum = mom;
    o.nesterov = nesterov;
    o.epochs = epochs;
    o.batch_size = S; /* full batch: the shuffle does not matter */
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m, W * W + W, got), INVDL_OK);
    reference_steps(p, S, x, t, lr, mom, nesterov, (int)epochs);
    for (size_t i = 0; i < W * W + W; i++)
        assert_true(fabsf(got[i] - p[i]) <= 1e-6f * (1.0f + fabsf(p[i])));
    invdl_model_free(m);
}

static void test_sgd_step(void **state)
{
    (void)state;
    check_steps(0.01f, 0.0f, 0, 1);
    check_steps(0.1f, 0.0f, 0, 5);
}

static void test_momentum_and_nesterov(void **state)
{
    (void)state;
    check_steps(0.05f, 0.9f, 0, 6);
    check_steps(0.05f, 0.9f, 1, 6);
}

/* With learning rate 0 nothing moves, so every batch is scored by the same
 * model: the epoch loss is the MSE over all samples whatever the
 * batching, last partial batch included (n = 7, batch 3: 3 + 3 + 1). */
static void test_epoch_loss_and_partial_batch(void **state)
{
    (void)state;
    enum { S = 7 };
    float x[S * W], t[S * W], y[S * W], loss;
    fill(x, S * W, -1, 1, 4);
    fill(t, S * W, -1, 1, 5);
    invdl_model *m = dense_model(W, 6);
    assert_int_equal(invdl_model_predict(m, S, x, y), INVDL_OK);
    double want = 0;
    for (size_t i = 0; i < S * W; i++)
        want += ((double)y[i] - (double)t[i]) * ((double)y[i] - (double)t[i]);
    want /= S * W;
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 0.0f;
    o.batch_size = 3;
    o.epochs = 2;
    o.report = &rep;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_true(fabs((double)loss - want) <= 1e-6 * want);
    assert_int_equal(rep.steps, 6);
    assert_int_equal(rep.epochs_run, 2);
    assert_true(rep.loss == loss);
    /* epochs 0: trains nothing, reports the current loss. */
    o.epochs = 0;
    o.learning_rate = 1.0f;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_true(fabs((double)loss - want) <= 1e-6 * want);
    float y2[S * W];
    assert_int_equal(invdl_model_predict(m, S, x, y2), INVDL_OK);
    assert_memory_equal(y, y2, sizeof y);
    invdl_model_free(m);
}

static invdl_model *net(size_t width, uint64_t seed)
{
    invdl_model *m = invdl_model_create(width);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(width, seed)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(width, seed + 1)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(width, seed + 2)), INVDL_OK);
    return m;
}

/* Same seed, same everything: bit-identical parameters.  Another seed
 * shuffles differently. */
static void test_determinism(void **state)
{
    (void)state;
    enum { S = 50 };
    float x[S * W], t[S * W], p1[40], p2[40], p3[40];
    fill(x, S * W, -1, 1, 7);
    fill(t, S * W, -1, 1, 8);
    invdl_fit_options o = invdl_fit_defaults();
    o.batch_size = 8;
    o.epochs = 3;
    o.momentum = 0.5f;
    o.seed = 99;
    invdl_model *a = net(W, 1), *b = net(W, 1), *c = net(W, 1);
    size_t np = invdl_model_param_count(a);
    assert_true(np <= 40);
    assert_int_equal(invdl_model_fit(a, S, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(invdl_model_fit(b, S, x, t, &o, NULL), INVDL_OK);
    o.seed = 100;
    assert_int_equal(invdl_model_fit(c, S, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(invdl_model_get_params(a, np, p1), INVDL_OK);
    assert_int_equal(invdl_model_get_params(b, np, p2), INVDL_OK);
    assert_int_equal(invdl_model_get_params(c, np, p3), INVDL_OK);
    assert_memory_equal(p1, p2, np * sizeof *p1);
    assert_memory_not_equal(p1, p3, np * sizeof *p1);
    invdl_model_free(a);
    invdl_model_free(b);
    invdl_model_free(c);
}

/* A student of the teacher's architecture learns the teacher's function:
 * the loss falls below 2% of where it started. */
static void test_learns_target_network(void **state)
{
    (void)state;
    enum { S = 256, V = 4 };
    static float x[S * V], t[S * V];
    fill(x, S * V, -1, 1, 9);
    invdl_model *teacher = net(V, 100), *student = net(V, 200);
    assert_int_equal(invdl_model_predict(teacher, S, x, t), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults();
    float before, after;
    o.epochs = 0;
    assert_int_equal(invdl_model_fit(student, S, x, t, &o, &before), INVDL_OK);
    o.epochs = 300;
    o.learning_rate = 0.05f;
    o.momentum = 0.9f;
    assert_int_equal(invdl_model_fit(student, S, x, t, &o, &after), INVDL_OK);
    assert_true(after < 0.02f * before);
    invdl_model_free(teacher);
    invdl_model_free(student);
}

/* A learning rate that blows up: EDIVERGED, and the parameters restored
 * give a finite loss over all the data. */
static void test_divergence(void **state)
{
    (void)state;
    enum { S = 64 };
    float x[S * W], t[S * W], loss, p[40];
    fill(x, S * W, -3, 3, 10);
    fill(t, S * W, -30, 30, 11);
    invdl_model *m = net(W, 3);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 1e3f;
    o.epochs = 50;
    o.batch_size = 4;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_EDIVERGED);
    assert_true(isnan(loss) || isinf(loss));
    size_t np = invdl_model_param_count(m);
    assert_int_equal(invdl_model_get_params(m, np, p), INVDL_OK);
    for (size_t i = 0; i < np; i++)
        assert_true(isfinite(p[i]));
    o.epochs = 0;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_true(isfinite(loss));
    o.epochs = 1;

    /* NaN data: no parameters give a finite loss: the initial ones are
     * restored. */
    invdl_model_free(m);
    m = net(W, 9);
    float before[40], after[40];
    assert_int_equal(invdl_model_get_params(m, np, before), INVDL_OK);
    t[5] = NAN;
    o.learning_rate = 0.01f;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_EDIVERGED);
    assert_int_equal(invdl_model_get_params(m, np, after), INVDL_OK);
    assert_memory_equal(before, after, np * sizeof *before);
    invdl_model_free(m);
}

/* A step can overflow the float loss while the parameters and the double
 * sum of squares stay finite: that loss is not finite either, and the
 * restored parameters must give a loss a float can hold.  One dense unit,
 * W = w0, b = 0, batches of 32 with mean x^2 = 5.25 and target 0: the first
 * step multiplies W by about 1 - 2 lr 5.25, so lr = 2^61.6 takes the second
 * batch's loss past FLT_MAX (about 1e39) but not past double's range. */
static void test_divergence_past_float_range(void **state)
{
    (void)state;
    enum { S = 64 };
    float x[S], t[S], loss;
    for (int i = 0; i < S; i++) {
        x[i] = (float)(i % 8) - 3.5f;
        t[i] = 0.0f;
    }
    invdl_model *m = invdl_model_create(1);
    assert_non_null(m);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(1, 1)), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 3.43597e18f;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_EDIVERGED);
    o = invdl_fit_defaults();
    o.epochs = 0;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_true(isfinite(loss));
    invdl_model_free(m);
}

/* A gradient a float cannot hold.  One mprelu unit with the floor 1e-40
 * and alpha = 1e-38, x = -3e38, target -2: the prediction a*x is about -3
 * (one float rounding), the loss (a*x + 2)^2 about 1, and dL/dalpha =
 * 2 (a*x + 2) x about 6e38, past FLT_MAX.  The gradient call says so;
 * with learning rate 0 training moves nothing, with or without momentum,
 * and the loss it reports is the finite loss; a learning rate above 0
 * would step to -inf: EDIVERGED, the parameters restored. */
static void test_gradient_past_float_range(void **state)
{
    (void)state;
    const float alpha = 1e-38f, x = -3e38f, t = -2.0f;
    volatile float pred = alpha * x;
    double r = (double)pred - (double)t;
    float want_loss = (float)(r * r);
    assert_true(fabs(2.0 * r * (double)x) > (double)FLT_MAX && isfinite(want_loss));

    invdl_model *m = invdl_model_create(1);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu_min(1, 1, 1e-40f)), INVDL_OK);
    assert_int_equal(invdl_model_set_params(m, 1, &alpha), INVDL_OK);
    float loss = 0, g = 0, gx = 0, after = 0;
    assert_int_equal(invdl_model_gradient(m, 1, &x, &t, NULL, &loss, &g, &gx), INVDL_EDIVERGED);
    assert_true(loss == want_loss);
    assert_true(isinf(g) && g > 0);
    assert_true(gx == (float)(2.0 * r * (double)alpha));

    invdl_fit_options o = invdl_fit_defaults();
    for (int k = 0; k < 4; k++) {
        /* SGD, momentum, Nesterov, Adam: none moves a parameter at rate 0. */
        if (k == 3)
            o = invdl_fit_defaults_adam();
        o.learning_rate = 0.0f;
        o.epochs = 3;
        o.momentum = k == 1 || k == 2 ? 0.9f : 0.0f;
        o.nesterov = k == 2;
        loss = NAN;
        assert_int_equal(invdl_model_fit(m, 1, &x, &t, &o, &loss), INVDL_OK);
        assert_true(loss == want_loss);
        assert_int_equal(invdl_model_get_params(m, 1, &after), INVDL_OK);
        assert_memory_equal(&after, &alpha, sizeof alpha);
    }
    o = invdl_fit_defaults();
    assert_int_equal(invdl_model_fit(m, 1, &x, &t, &o, &loss), INVDL_EDIVERGED);
    assert_true(isnan(loss));
    assert_int_equal(invdl_model_get_params(m, 1, &after), INVDL_OK);
    assert_memory_equal(&after, &alpha, sizeof alpha);
    invdl_model_free(m);
}

/* A step that would make a dense W singular is not taken: with W = I,
 * b = 0, one sample x = (1, 0) with target 0 and learning rate 1, the step
 * W -= r x^T (r = W x - t = (1, 0)) would zero W's first column. */
static void test_singular_step(void **state)
{
    (void)state;
    invdl_model *m = dense_model(2, 1);
    const float identity[6] = {1, 0, 0, 1, 0, 0}, x[2] = {1, 0}, t[2] = {0, 0};
    float p[6];
    assert_int_equal(invdl_model_set_params(m, 6, identity), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 1.0f;
    assert_int_equal(invdl_model_fit(m, 1, x, t, &o, NULL), INVDL_ESINGULAR);
    assert_int_equal(invdl_model_get_params(m, 6, p), INVDL_OK);
    assert_memory_equal(p, identity, sizeof p);
    invdl_model_free(m);
}

/* Without memory-saving backprop the steps refresh only W (and W^T) and
 * the factorisation waits for the end of the epoch: there a singular W
 * sends every parameter back to the epoch's start.  W = I, b = 0, one
 * sample x = (1, 0) with target (-5/3, 0), learning rate 1/4: the first
 * epoch's step leaves W's first column at about 1/3 (not singular), the
 * second epoch's step at about 0 (singular).  Memory-saving backprop
 * factorises each step and refuses that second step itself; both end
 * with the parameters after the first epoch. */
static void test_singular_at_epoch_end(void **state)
{
    (void)state;
    const float identity[6] = {1, 0, 0, 1, 0, 0}, x[2] = {1, 0}, t[2] = {-5.0f / 3.0f, 0};
    for (int saving = 0; saving < 2; saving++) {
        invdl_model *m = dense_model(2, 1);
        assert_int_equal(invdl_model_set_params(m, 6, identity), INVDL_OK);
        invdl_fit_options o = invdl_fit_defaults();
        invdl_fit_report report;
        o.learning_rate = 0.25f;
        o.memory_saving = saving;
        o.report = &report;
        float after_one[6], p[6];
        assert_int_equal(invdl_model_fit(m, 1, x, t, &o, NULL), INVDL_OK);
        assert_int_equal(invdl_model_get_params(m, 6, after_one), INVDL_OK);
        assert_true(fabsf(after_one[0] - 1.0f / 3.0f) < 1e-6f);
        assert_int_equal(invdl_model_set_params(m, 6, identity), INVDL_OK);
        o.epochs = 2;
        assert_int_equal(invdl_model_fit(m, 1, x, t, &o, NULL), INVDL_ESINGULAR);
        assert_int_equal(report.epochs_run, 1);
        assert_int_equal(invdl_model_get_params(m, 6, p), INVDL_OK);
        assert_memory_equal(p, after_one, sizeof p);
        /* The model is whole again: its inverse is that of W. */
        float y[2], back[2];
        assert_int_equal(invdl_model_predict(m, 1, x, y), INVDL_OK);
        assert_int_equal(invdl_model_predict_inverse(m, 1, y, back), INVDL_OK);
        assert_true(fabsf(back[0] - x[0]) < 1e-6f && fabsf(back[1] - x[1]) < 1e-6f);
        invdl_model_free(m);
    }
}

/* After fit, and in on_epoch between epochs, the dense layers' factors
 * are those of their current W: the inverse, the log-det and the
 * memory-saving gain read them.  Checked against a second model given the
 * same parameters through set_params, which factorises them afresh. */
typedef struct factors_check {
    invdl_model *model;
    const float *x;
    size_t calls;
} factors_check;

static void assert_factors_current(invdl_model *m, const float *x)
{
    enum { S = 5 };
    size_t np = invdl_model_param_count(m);
    float *p = malloc(np * sizeof *p);
    invdl_model *fresh = invdl_model_create(W);
    assert_int_equal(invdl_model_add(fresh, invdl_layer_dense(W, 99)), INVDL_OK);
    assert_int_equal(invdl_model_add(fresh, invdl_layer_mprelu(W, 98)), INVDL_OK);
    assert_int_equal(invdl_model_add(fresh, invdl_layer_dense(W, 97)), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m, np, p), INVDL_OK);
    assert_int_equal(invdl_model_set_params(fresh, np, p), INVDL_OK);
    float a[S * W], b[S * W], la[S], lb[S];
    assert_int_equal(invdl_model_predict_inverse(m, S, x, a), INVDL_OK);
    assert_int_equal(invdl_model_predict_inverse(fresh, S, x, b), INVDL_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(invdl_model_log_det(m, S, x, la), INVDL_OK);
    assert_int_equal(invdl_model_log_det(fresh, S, x, lb), INVDL_OK);
    assert_memory_equal(la, lb, sizeof la);
    free(p);
    invdl_model_free(fresh);
}

static int check_between_epochs(void *user, size_t epoch, size_t epochs, float loss)
{
    factors_check *c = user;
    (void)epoch, (void)epochs, (void)loss;
    assert_factors_current(c->model, c->x);
    c->calls++;
    return 0;
}

static void test_factors_current_after_fit(void **state)
{
    (void)state;
    enum { S = 40 };
    float x[S * W], t[S * W];
    fill(x, S * W, -1, 1, 61);
    fill(t, S * W, -1, 1, 62);
    invdl_model *m = invdl_model_create(W);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 1)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(W, 2)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 3)), INVDL_OK);
    factors_check c = {m, x, 0};
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 0.1f;
    o.batch_size = 8;
    o.epochs = 3;
    o.on_epoch = check_between_epochs;
    o.user = &c;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(c.calls, 3);
    assert_factors_current(m, x);
    invdl_model_free(m);
}

static void test_bad_options(void **state)
{
    (void)state;
    enum { S = 8 };
    float x[S * W], t[S * W], before[40], after[40], loss = 7.0f;
    fill(x, S * W, -1, 1, 12);
    fill(t, S * W, -1, 1, 13);
    invdl_model *m = net(W, 4);
    size_t np = invdl_model_param_count(m);
    assert_int_equal(invdl_model_get_params(m, np, before), INVDL_OK);
    invdl_fit_options o;
    for (int c = 0; c < 24; c++) {
        o = c < 15 ? invdl_fit_defaults() : invdl_fit_defaults_adam();
        switch (c) {
        case 0: o.learning_rate = NAN; break;
        case 1: o.learning_rate = -0.01f; break;
        case 2: o.learning_rate = INFINITY; break;
        case 3: o.momentum = -0.5f; break;
        case 4: o.momentum = NAN; break;
        case 5: o.batch_size = 0; break;
        case 6: o.global_clipnorm = -1.0f; break;
        case 7: o.global_clipnorm = NAN; break;
        case 8: o.memory_saving = 2; break;
        case 9: o.max_gain = 0.5f; break;
        case 10: o.max_gain = NAN; break;
        case 11: o.nesterov = 7; break;
        case 12: o.momentum = INFINITY; break;
        case 13: o.loss = (invdl_loss)2; break;
        case 14: o.optimizer = (invdl_optimizer)2; break;
        /* Adam: SGD's momentum options, betas outside [0, 1), epsilon. */
        case 15: o.momentum = 0.5f; break;
        case 16: o.nesterov = 1; break;
        case 17: o.beta_1 = 1.0f; break;
        case 18: o.beta_1 = -0.1f; break;
        case 19: o.beta_2 = NAN; break;
        case 20: o.beta_2 = 1.0f; break;
        case 21: o.epsilon = 0.0f; break;
        case 22: o.epsilon = INFINITY; break;
        default: o.epsilon = NAN; break;
        }
        assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_EINVAL);
    }
    o = invdl_fit_defaults();
    assert_int_equal(invdl_model_fit(m, S, NULL, t, &o, &loss), INVDL_EINVAL);
    assert_int_equal(invdl_model_fit(m, S, x, NULL, &o, &loss), INVDL_EINVAL);
    assert_int_equal(invdl_model_fit(m, 0, x, t, &o, &loss), INVDL_EINVAL);
    assert_int_equal(invdl_model_fit(NULL, S, x, t, &o, &loss), INVDL_EINVAL);
    assert_int_equal(invdl_model_fit(m, SIZE_MAX / 2, x, t, &o, &loss), INVDL_EINVAL);
    assert_true(loss == 7.0f);
    assert_int_equal(invdl_model_get_params(m, np, after), INVDL_OK);
    assert_memory_equal(before, after, np * sizeof *before);
    /* NULL options are the defaults. */
    assert_int_equal(invdl_model_fit(m, S, x, t, NULL, &loss), INVDL_OK);
    float g[40];
    assert_int_equal(invdl_model_gradient(m, S, x, NULL, NULL, &loss, g, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_model_gradient(m, S, x, t, NULL, &loss, NULL, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_model_gradient(m, 0, x, t, NULL, &loss, g, NULL), INVDL_EINVAL);
    invdl_model_free(m);
}

typedef struct progress {
    size_t calls, stop_at;
    float losses[10];
} progress;

static int on_epoch(void *user, size_t epoch, size_t epochs, float loss)
{
    progress *p = user;
    assert_int_equal(epoch, p->calls + 1);
    assert_int_equal(epochs, 10);
    p->losses[p->calls++] = loss;
    return epoch == p->stop_at;
}

static void test_callback_stops(void **state)
{
    (void)state;
    enum { S = 40 };
    float x[S * W], t[S * W], loss;
    fill(x, S * W, -1, 1, 14);
    fill(t, S * W, -1, 1, 15);
    invdl_model *m = net(W, 5);
    progress p = {0, 3, {0}};
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    o.epochs = 10;
    o.on_epoch = on_epoch;
    o.user = &p;
    o.report = &rep;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_int_equal(p.calls, 3);
    assert_int_equal(rep.epochs_run, 3);
    assert_true(loss == p.losses[2]);
    assert_int_equal(rep.steps, 3 * 2);
    invdl_model_free(m);
}

/* What on_epoch tries on the model being trained. */
typedef struct meddler {
    invdl_model *m, *other;   /* being trained; unrelated */
    const float *x, *t;
    size_t n, calls, free_at; /* free_at: epoch that frees m (0: none) */
    invdl_status add, refit, refit_inverse, fit_other, predict;
    size_t depth_seen;
} meddler;

static int meddle(void *user, size_t epoch, size_t epochs, float loss)
{
    meddler *d = user;
    (void)epochs, (void)loss;
    d->calls++;
    invdl_fit_options o = invdl_fit_defaults();
    if (epoch == d->free_at) {
        invdl_model_free(d->m);
        return 0;
    }
    /* The layer is the model's to free, also on error (leak checkers
     * would see it otherwise). */
    d->add = invdl_model_add(d->m, invdl_layer_ssin(W));
    d->depth_seen = invdl_model_depth(d->m);
    d->refit = invdl_model_fit(d->m, d->n, d->x, d->t, &o, NULL);
    invdl_model *inv = invdl_model_inverse(d->m);
    assert_non_null(inv);
    d->refit_inverse = invdl_model_fit(inv, d->n, d->t, d->x, &o, NULL);
    invdl_model_free(inv);
    d->fit_other = invdl_model_fit(d->other, d->n, d->x, d->t, &o, NULL);
    float out[W];
    d->predict = invdl_model_predict(d->m, 1, d->x, out);
    return 0;
}

/* The model being trained, and every model sharing its blocks, stays as
 * the trainer took it: from on_epoch, invdl_model_add() and another fit
 * on it (or on its inverse model) are INVDL_EINVAL and change nothing,
 * while reading it and training an unrelated model work; training goes on
 * exactly as without the callback.  Freeing the model from on_epoch stops
 * training after that epoch and frees it when fit returns (the inverse
 * model, sharing its blocks, still works: leak checkers and ASan watch the
 * rest). */
static void test_callback_cannot_restructure(void **state)
{
    (void)state;
    enum { S = 20 };
    float x[S * W], t[S * W], loss, p0[40], p1[40];
    fill(x, S * W, -1, 1, 30);
    fill(t, S * W, -1, 1, 31);
    invdl_model *m = net(W, 40), *twin = net(W, 40), *other = net(W, 50);
    meddler d = {m, other, x, t, S, 0, 0, INVDL_OK, INVDL_OK, INVDL_OK, INVDL_EINVAL,
                 INVDL_EINVAL, 0};
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    o.epochs = 3;
    o.on_epoch = meddle;
    o.user = &d;
    o.report = &rep;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss), INVDL_OK);
    assert_int_equal(d.calls, 3);
    assert_int_equal(rep.epochs_run, 3);
    assert_int_equal(d.add, INVDL_EINVAL);
    assert_int_equal(d.depth_seen, 3);
    assert_int_equal(d.refit, INVDL_EINVAL);
    assert_int_equal(d.refit_inverse, INVDL_EINVAL);
    assert_int_equal(d.fit_other, INVDL_OK);
    assert_int_equal(d.predict, INVDL_OK);
    assert_int_equal(invdl_model_depth(m), 3);
    o.on_epoch = NULL;
    assert_int_equal(invdl_model_fit(twin, S, x, t, &o, NULL), INVDL_OK);
    size_t np = invdl_model_param_count(m);
    assert_int_equal(invdl_model_get_params(m, np, p0), INVDL_OK);
    assert_int_equal(invdl_model_get_params(twin, np, p1), INVDL_OK);
    assert_memory_equal(p0, p1, np * sizeof *p0);
    /* After training, the model is the caller's to change again. */
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, NULL), INVDL_OK);

    invdl_model *inv = invdl_model_inverse(twin);
    d.m = twin;
    d.calls = 0;
    d.free_at = 2;
    o.on_epoch = meddle;
    assert_int_equal(invdl_model_fit(twin, S, x, t, &o, &loss), INVDL_OK);
    assert_int_equal(d.calls, 2);
    assert_int_equal(rep.epochs_run, 2);
    float out[S * W];
    assert_int_equal(invdl_model_predict(inv, S, t, out), INVDL_OK);
    invdl_model_free(inv);
    invdl_model_free(m);
    invdl_model_free(other);
}

/* Clipping by global norm: one full-batch step moves the parameters by
 * exactly lr * clip in L2 norm when the gradient is larger. */
static void test_clipping(void **state)
{
    (void)state;
    enum { S = 16 };
    float x[S * W], t[S * W], p0[40], p1[40], g[40], loss;
    fill(x, S * W, -1, 1, 16);
    fill(t, S * W, -20, 20, 17);
    invdl_model *m = net(W, 6);
    size_t np = invdl_model_param_count(m);
    assert_int_equal(invdl_model_get_params(m, np, p0), INVDL_OK);
    assert_int_equal(invdl_model_gradient(m, S, x, t, NULL, &loss, g, NULL), INVDL_OK);
    double gnorm = 0;
    for (size_t i = 0; i < np; i++)
        gnorm += (double)g[i] * (double)g[i];
    gnorm = sqrt(gnorm);
    assert_true(gnorm > 1.0);
    invdl_fit_options o = invdl_fit_defaults();
    o.batch_size = S;
    o.learning_rate = 0.1f;
    o.global_clipnorm = 0.5f;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m, np, p1), INVDL_OK);
    double step = 0;
    for (size_t i = 0; i < np; i++) {
        double d = (double)p1[i] - (double)p0[i];
        step += d * d;
        /* The direction is the gradient's. */
        assert_true(fabs(d + 0.1 * 0.5 * (double)g[i] / gnorm) <= 1e-6);
    }
    assert_true(fabs(sqrt(step) - 0.05) <= 1e-6);
    invdl_model_free(m);
}

/* Training an inverse model trains the shared parameters: the forward
 * model changes with it and stays its exact inverse (backward error of
 * the trained inverse, f(g(y)) = y, at float rounding).  Likewise the
 * other way round. */
static void test_train_inverse_model(void **state)
{
    (void)state;
    enum { S = 64 };
    float x[S * W], t[S * W], y0[S * W], y1[S * W], loss0, loss1;
    fill(x, S * W, -1, 1, 18);
    fill(t, S * W, -1, 1, 19);
    invdl_model *m = net(W, 7);
    invdl_model *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_predict(m, S, x, y0), INVDL_OK);
    invdl_fit_options o = invdl_fit_defaults();
    o.epochs = 0;
    assert_int_equal(invdl_model_fit(inv, S, x, t, &o, &loss0), INVDL_OK);
    o.epochs = 20;
    o.learning_rate = 0.02f;
    assert_int_equal(invdl_model_fit(inv, S, x, t, &o, &loss1), INVDL_OK);
    assert_true(loss1 < loss0);
    assert_int_equal(invdl_model_predict(m, S, x, y1), INVDL_OK);
    assert_memory_not_equal(y0, y1, sizeof y0);
    invdl_roundtrip r;
    assert_int_equal(invdl_model_roundtrip(inv, S, x, NULL, &r), INVDL_OK);
    assert_true(r.backward_error < 1e-5f && r.forward_error < 1e-4f);

    o.epochs = 20;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &loss1), INVDL_OK);
    assert_int_equal(invdl_model_roundtrip(m, S, x, NULL, &r), INVDL_OK);
    assert_true(r.backward_error < 1e-5f && r.forward_error < 1e-4f);
    invdl_model_free(inv);
    invdl_model_free(m);
}

static double max_rel_gap(size_t n, const float *a, const float *b)
{
    double gap = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        gap = fmax(gap, fabs((double)a[i] - (double)b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return gap / scale;
}

/* On a well-conditioned model (orthogonal dense layers, PReLU slopes at
 * least 0.5, abs-tanh away from 0) rebuilding inputs through inverses loses
 * only float rounding: gradients agree with stored backprop to 1e-5 of
 * their size (a few ulps through a dozen layers, amplified at most 2x per
 * PReLU inverse), and activation memory stops growing with depth. */
static void test_memory_saving(void **state)
{
    (void)state;
    enum { V = 6, S = 32 };
    static float x[S * V], t[S * V], g0[1000], g1[1000], xg0[S * V], xg1[S * V];
    fill(x, S * V, 0.5, 2, 20);
    fill(t, S * V, -1, 1, 21);
    invdl_model *m = invdl_model_create(V);
    for (uint64_t b = 0; b < 6; b++) {
        assert_int_equal(invdl_model_add(m, invdl_layer_dense(V, 30 + b)), INVDL_OK);
        assert_int_equal(invdl_model_add(m, invdl_layer_mprelu_min(V, 40 + b, 0.5f)), INVDL_OK);
    }
    size_t np = invdl_model_param_count(m);
    assert_true(np <= 1000);
    float l0, l1;
    invdl_fit_report r0, r1;
    invdl_fit_options o = invdl_fit_defaults();
    o.report = &r0;
    assert_int_equal(invdl_model_gradient(m, S, x, t, &o, &l0, g0, xg0), INVDL_OK);
    o.memory_saving = 1;
    o.max_gain = INFINITY; /* no safeguard: everything rebuilt */
    o.report = &r1;
    assert_int_equal(invdl_model_gradient(m, S, x, t, &o, &l1, g1, xg1), INVDL_OK);
    assert_true(l0 == l1);
    assert_int_equal(r1.stored_inputs, 0);
    assert_true(max_rel_gap(np, g1, g0) <= 1e-5);
    assert_true(max_rel_gap(S * V, xg1, xg0) <= 1e-5);
    /* 13 arrays stored against 3 (input, two working arrays). */
    assert_int_equal(r0.activation_bytes, 13 * S * V * sizeof(float));
    assert_int_equal(r1.activation_bytes, 3 * S * V * sizeof(float));

    /* Training follows the same path. */
    invdl_model *m2 = invdl_model_create(V);
    for (uint64_t b = 0; b < 6; b++) {
        assert_int_equal(invdl_model_add(m2, invdl_layer_dense(V, 30 + b)), INVDL_OK);
        assert_int_equal(invdl_model_add(m2, invdl_layer_mprelu_min(V, 40 + b, 0.5f)), INVDL_OK);
    }
    o.epochs = 3;
    o.batch_size = 8;
    o.report = NULL;
    assert_int_equal(invdl_model_fit(m2, S, x, t, &o, &l1), INVDL_OK);
    o.memory_saving = 0;
    assert_int_equal(invdl_model_fit(m, S, x, t, &o, &l0), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m, np, g0), INVDL_OK);
    assert_int_equal(invdl_model_get_params(m2, np, g1), INVDL_OK);
    assert_true(max_rel_gap(np, g1, g0) <= 1e-5);
    invdl_model_free(m);
    invdl_model_free(m2);
}

/* Inputs outside the signed sin branch cannot be rebuilt: that layer's
 * input is stored and the gradient equals stored backprop's exactly.
 * Checkpointing every layer reproduces stored backprop bit for bit. */
static void test_memory_saving_safeguards(void **state)
{
    (void)state;
    enum { S = 4 };
    float x[S * W], t[S * W], g0[40], g1[40], l0, l1;
    fill(x, S * W, -1, 1, 22);
    fill(t, S * W, -1, 1, 23);
    invdl_model *m = invdl_model_create(W);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 50)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 51)), INVDL_OK);
    float p[12] = {3, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0}; /* pushes |x| past T */
    assert_int_equal(invdl_layer_set_params(invdl_model_layer(m, 0), 12, p), INVDL_OK);
    size_t np = invdl_model_param_count(m);
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    assert_int_equal(invdl_model_gradient(m, S, x, t, &o, &l0, g0, NULL), INVDL_EDOMAIN);
    o.memory_saving = 1;
    o.max_gain = INFINITY;
    o.report = &rep;
    assert_int_equal(invdl_model_gradient(m, S, x, t, &o, &l1, g1, NULL), INVDL_EDOMAIN);
    assert_int_equal(rep.stored_inputs, 1);
    assert_int_equal(rep.fallbacks, 0);
    assert_true(l0 == l1);
    assert_true(max_rel_gap(np, g1, g0) <= 1e-6);

    o.checkpoint_every = 1;
    assert_int_equal(invdl_model_gradient(m, S, x, t, &o, &l1, g1, NULL), INVDL_EDOMAIN);
    assert_memory_equal(g0, g1, np * sizeof *g0);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sgd_step),
        cmocka_unit_test(test_momentum_and_nesterov),
        cmocka_unit_test(test_adam_steps),
        cmocka_unit_test(test_epoch_loss_and_partial_batch),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_learns_target_network),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_divergence_past_float_range),
        cmocka_unit_test(test_gradient_past_float_range),
        cmocka_unit_test(test_singular_step),
        cmocka_unit_test(test_singular_at_epoch_end),
        cmocka_unit_test(test_factors_current_after_fit),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_callback_cannot_restructure),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_train_inverse_model),
        cmocka_unit_test(test_memory_saving),
        cmocka_unit_test(test_memory_saving_safeguards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
