/*
 * test_training.c - training control (invdl.h, "Training well") and the
 * amplification report ("Why an inverse is off"):
 *   - validation loss against the model evaluated here on the validation
 *     data (predict, then the loss in double; log_prob for NLL);
 *   - early stopping against Keras' EarlyStopping rule run here on the
 *     monitored values the callback saw, and restore_best_weights against
 *     the parameters captured in the callback at the best epoch, bit for
 *     bit;
 *   - ExponentialDecay and ReduceLROnPlateau against rate sequences
 *     computed here from their formulas, and SGD steps taken here with
 *     those rates;
 *   - mprelu floors: an alpha inside the floor leaves it when the loss
 *     wants a larger slope and stays on its edge when not; the gradient is
 *     still the true derivative (central differences in double);
 *   - invdl_model_amplification() against brute force: Jacobians of the
 *     inverse layers and of the inverse model by central differences of a
 *     double implementation, per layer and in total;
 *   - the sensor calibration: width 1, a monotone g, trained with and
 *     without a schedule, t recovered from new readings;
 *   - bad options and arguments: INVDL_EINVAL, data and model intact.
 *
 * Run alone (build/tests/test_training) it prints the figures
 * docs/training-control.md quotes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"
#include "reference.h"

enum { WMAX = 4, EMAX = 200 };

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

static void add(invdl_model *m, invdl_layer *l)
{
    assert_non_null(l);
    assert_int_equal(invdl_model_add(m, l), INVDL_OK);
}

static void set_layer(invdl_model *m, size_t index, size_t count, const float *v)
{
    assert_int_equal(invdl_layer_set_params(invdl_model_layer(m, index), count, v), INVDL_OK);
}

/* Mean squared error of the model on (x, t) in double from predict's
 * outputs. */
static double mse_of(invdl_model *m, size_t n, const float *x, const float *t)
{
    size_t w = invdl_model_width(m);
    float *y = malloc(n * w * sizeof *y);
    assert_non_null(y);
    assert_int_equal(invdl_model_predict(m, n, x, y), INVDL_OK);
    double sum = 0.0;
    for (size_t i = 0; i < n * w; i++)
        sum += ((double)y[i] - (double)t[i]) * ((double)y[i] - (double)t[i]);
    free(y);
    return sum / (double)(n * w);
}

/* |a - b| within one float ulp of b (a float rounded from a double close
 * to b: rounding gives half an ulp, the rest is double accumulation). */
static int within_ulp(float a, double b)
{
    return fabs((double)a - b) <= ldexp(1.0, ilogb(b) - 23);
}

/* ---- what the callback sees ----------------------------------------------- */

typedef struct record {
    invdl_model *m;
    size_t np, epochs;
    float *params;                 /* [EMAX][np]: after each epoch */
    invdl_epoch_info info[EMAX];
    /* For the independent validation loss. */
    size_t vn;
    const float *vx, *vy;
    int nll;
    double worst_val_gap;          /* in float ulps of the reference */
} record;

static int record_epoch(void *user, const invdl_epoch_info *info)
{
    record *r = user;
    assert_true(info->epoch == r->epochs + 1 && info->epoch <= EMAX);
    r->info[r->epochs] = *info;
    assert_int_equal(invdl_model_get_params(r->m, r->np, r->params + r->epochs * r->np),
                     INVDL_OK);
    r->epochs++;
    if (r->vn > 0) {
        double want;
        if (r->nll) {
            float *lp = malloc(r->vn * sizeof *lp);
            assert_non_null(lp);
            assert_int_equal(invdl_model_log_prob(r->m, r->vn, r->vx, lp), INVDL_OK);
            want = 0.0;
            for (size_t s = 0; s < r->vn; s++)
                want -= (double)lp[s];
            want /= (double)r->vn;
            free(lp);
            /* log_prob rounds each sample's value to float: the mean of
             * vn such roundings is off by up to half an ulp of the
             * largest, a few ulps of the mean here (|log p| about equal). */
            double ulp = ldexp(1.0, ilogb(want) - 23);
            double gap = fabs((double)info->val_loss - want) / ulp;
            r->worst_val_gap = gap > r->worst_val_gap ? gap : r->worst_val_gap;
            assert_true(gap <= 4.0);
        } else {
            want = mse_of(r->m, r->vn, r->vx, r->vy);
            assert_true(within_ulp(info->val_loss, want));
        }
    } else {
        assert_true(isnan(info->val_loss));
    }
    /* The callback may read the model being trained: the amplification
     * report included. */
    double total = -1.0;
    float probe[WMAX] = {0.25f, -0.5f, 0.75f, -1.0f};
    invdl_status st = invdl_model_amplification(r->m, 1, probe, NULL, NULL, &total);
    assert_true((st == INVDL_OK || st == INVDL_EDOMAIN) && total > 0.0);
    return 0;
}

/* Sets r up for m and makes o call record_epoch with it (and fill rep,
 * if not NULL). */
static void record_init(record *r, invdl_model *m, invdl_fit_options *o, invdl_fit_report *rep)
{
    o->on_epoch_end = record_epoch;
    o->user = r;
    o->report = rep;
    memset(r, 0, sizeof *r);
    r->m = m;
    r->np = invdl_model_param_count(m);
    r->params = malloc(EMAX * (r->np > 0 ? r->np : 1) * sizeof *r->params);
    assert_non_null(r->params);
}

/* Validation data for the fit and for the record's own check. */
static void validate_on(record *r, invdl_fit_options *o, size_t vn, const float *vx,
                        const float *vy)
{
    o->validation_n = r->vn = vn;
    o->validation_x = r->vx = vx;
    o->validation_y = r->vy = vy;
}

/* Keras' EarlyStopping (mode "min", restore_best_weights), written from
 * its documented rule: the epoch (from 1) after which it stops, 0 if
 * none, and the best epoch. */
static size_t keras_early_stop(const double *v, size_t epochs, double min_delta, size_t patience,
                               size_t *best_epoch)
{
    double best = (double)INFINITY;
    size_t wait = 0;
    *best_epoch = 0;
    for (size_t e = 1; e <= epochs; e++) {
        if (*best_epoch == 0)
            *best_epoch = e;
        wait++;
        if (v[e - 1] + min_delta < best) {
            best = v[e - 1];
            *best_epoch = e;
            wait = 0;
        } else if (wait >= patience && e > 1) {
            return e;
        }
    }
    return 0;
}

/* A width-1 dense model y = w x + b from w = 0.05, trained towards y = 2x
 * while validated against y = x: the validation loss falls while w nears
 * 1, then rises.  The best epoch lies inside the run. */
static invdl_model *line_model(float w0)
{
    invdl_model *m = invdl_model_create(1);
    add(m, invdl_layer_dense(1, 1));
    const float p[2] = {w0, 0.0f};
    set_layer(m, 0, 2, p);
    return m;
}

static void test_validation_loss(void **state)
{
    (void)state;
    enum { N = 40, V = 13 };
    float x[N * 2], t[N * 2], vx[V * 2], vy[V * 2];
    fill(x, N * 2, -1, 1, 1);
    fill(t, N * 2, -1, 1, 2);
    fill(vx, V * 2, -1, 1, 3);
    fill(vy, V * 2, -1, 1, 4);
    invdl_model *m = invdl_model_create(2);
    add(m, invdl_layer_dense(2, 5));
    add(m, invdl_layer_mprelu(2, 6));
    add(m, invdl_layer_dense_lu(2, 7));
    record r;
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    record_init(&r, m, &o, &rep);
    validate_on(&r, &o, V, vx, vy);
    o.learning_rate = 0.05f;
    o.batch_size = 8; /* V = 13: a full and a partial validation batch */
    o.epochs = 6;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    assert_int_equal(r.epochs, 6);
    assert_true(rep.val_loss == r.info[5].val_loss);
    /* Epochs 0: the current model's validation loss. */
    o.epochs = 0;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    assert_true(within_ulp(rep.val_loss, mse_of(m, V, vx, vy)));
    /* Without validation data: NaN. */
    o.validation_n = 0;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    assert_true(isnan(rep.val_loss));
    free(r.params);
    invdl_model_free(m);

    /* NLL, x alone, Adam, memory-saving: the mean of -log p. */
    m = invdl_model_create(2);
    add(m, invdl_layer_dense_lu(2, 8));
    add(m, invdl_layer_abstanh(2));
    add(m, invdl_layer_dense(2, 9));
    o = invdl_fit_defaults_adam();
    record_init(&r, m, &o, NULL);
    validate_on(&r, &o, V, vx, NULL);
    r.nll = 1;
    o.loss = INVDL_LOSS_NLL;
    o.memory_saving = 1;
    o.batch_size = 8;
    o.epochs = 4;
    assert_int_equal(invdl_model_fit(m, N, x, NULL, &o, NULL), INVDL_OK);
    assert_int_equal(r.epochs, 4);
    free(r.params);
    invdl_model_free(m);
}

/* The line model run with early stopping on the validation loss:
 * training stops where Keras' rule says, and the parameters returned are
 * those captured at the best epoch, bit for bit. */
static void check_early_stop(float min_delta, size_t patience, size_t epochs, int use_val,
                             int expect_stop)
{
    enum { N = 16, V = 16 };
    float x[N], t[N], vx[V], vy[V];
    fill(x, N, -1, 1, 11);
    fill(vx, V, -1, 1, 12);
    for (size_t i = 0; i < N; i++)
        t[i] = 2.0f * x[i];
    for (size_t i = 0; i < V; i++)
        vy[i] = vx[i];
    invdl_model *m = line_model(0.05f);
    record r;
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    record_init(&r, m, &o, &rep);
    o.learning_rate = 0.05f;
    o.batch_size = 4;
    o.epochs = epochs;
    o.early_stopping = 1;
    o.early_stopping_min_delta = min_delta;
    o.early_stopping_patience = patience;
    o.restore_best_weights = 1;
    if (use_val) {
        validate_on(&r, &o, V, vx, vy);
    } else {
        /* Monitoring the training loss, with noisy targets and a large
         * rate: batches of 4 make the parameters, and the loss, wander
         * about the noise floor. */
        float noise[N];
        fill(noise, N, -0.3, 0.3, 13);
        for (size_t i = 0; i < N; i++)
            t[i] += noise[i];
        o.early_stopping_monitor = INVDL_MONITOR_LOSS;
        o.learning_rate = 0.9f;
    }
    float loss;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, &loss), INVDL_OK);
    double v[EMAX];
    for (size_t e = 0; e < r.epochs; e++)
        v[e] = use_val ? (double)r.info[e].val_loss : (double)r.info[e].loss;
    size_t best, stop = keras_early_stop(v, r.epochs, (double)min_delta, patience, &best);
    if (expect_stop) {
        assert_true(stop != 0 && stop == r.epochs && stop < epochs);
    } else {
        assert_int_equal(stop, 0);
        assert_int_equal(r.epochs, epochs);
    }
    assert_int_equal(rep.stopped_epoch, stop);
    assert_int_equal(rep.epochs_run, r.epochs);
    assert_int_equal(rep.best_epoch, best);
    assert_true(rep.best == (float)v[best - 1]);
    assert_true(r.info[r.epochs - 1].stopping == (stop != 0));
    assert_int_equal(rep.restored, 1);
    /* The loss reported is the last epoch's (Keras' history). */
    assert_true(loss == r.info[r.epochs - 1].loss);
    /* A best epoch inside the run, so that restoring changes something. */
    assert_true(best < r.epochs);
    float got[2];
    assert_int_equal(invdl_model_get_params(m, 2, got), INVDL_OK);
    assert_memory_equal(got, r.params + (best - 1) * 2, sizeof got);
    assert_memory_not_equal(got, r.params + (r.epochs - 1) * 2, sizeof got);
    /* And the model computes with them: its factors are current. */
    float y[V];
    assert_int_equal(invdl_model_predict(m, V, vx, y), INVDL_OK);
    for (size_t i = 0; i < V; i++)
        assert_true(fabs((double)y[i] - ((double)got[0] * (double)vx[i] + (double)got[1])) <=
                    0x1p-23 * (fabs((double)y[i]) + 1e-30));
    free(r.params);
    invdl_model_free(m);
}

static void test_early_stopping_restores_best(void **state)
{
    (void)state;
    check_early_stop(0.0f, 3, EMAX, 1, 1);
    check_early_stop(1e-3f, 2, EMAX, 1, 1);
    check_early_stop(0.0f, 0, EMAX, 1, 1);
    /* Patience larger than the run: the epochs run out, and Keras 3
     * restores the best weights then too. */
    check_early_stop(0.0f, 1000, 60, 1, 0);
    /* The training loss as the monitor. */
    check_early_stop(0.0f, 2, EMAX, 0, 1);
}

/* Learning rate 0: every epoch's loss is the same, so only the first
 * improves (on +inf).  Patience p stops training after epoch p + 1, and
 * never after the first: patience 0 stops after epoch 2. */
static void test_early_stopping_counts(void **state)
{
    (void)state;
    enum { N = 8 };
    float x[N], t[N];
    fill(x, N, -1, 1, 21);
    fill(t, N, -1, 1, 22);
    for (size_t p = 0; p < 5; p++) {
        invdl_model *m = line_model(0.5f);
        invdl_fit_report rep;
        invdl_fit_options o = invdl_fit_defaults();
        o.learning_rate = 0.0f;
        o.epochs = 50;
        o.early_stopping = 1;
        o.early_stopping_patience = p;
        o.report = &rep;
        assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
        size_t want = p + 1 > 2 ? p + 1 : 2;
        assert_int_equal(rep.stopped_epoch, want);
        assert_int_equal(rep.epochs_run, want);
        assert_int_equal(rep.best_epoch, 1);
        assert_int_equal(rep.restored, 0);
        invdl_model_free(m);
    }
    /* min_delta: improvements of at most min_delta do not count.  The
     * line model's training loss falls by a shrinking amount each epoch;
     * Keras' rule run here on the recorded losses decides the stop. */
    for (int k = 0; k < 3; k++) {
        static const float deltas[3] = {1e-2f, 1e-3f, 1e-4f};
        float tt[N];
        for (size_t i = 0; i < N; i++)
            tt[i] = 2.0f * x[i];
        invdl_model *m = line_model(0.05f);
        record r;
        invdl_fit_report rep;
        invdl_fit_options o = invdl_fit_defaults();
        record_init(&r, m, &o, &rep);
        o.learning_rate = 0.1f;
        o.batch_size = N;
        o.epochs = EMAX;
        o.early_stopping = 1;
        o.early_stopping_min_delta = deltas[k];
        o.early_stopping_patience = 2;
        assert_int_equal(invdl_model_fit(m, N, x, tt, &o, NULL), INVDL_OK);
        double v[EMAX];
        for (size_t e = 0; e < r.epochs; e++)
            v[e] = (double)r.info[e].loss;
        size_t best, stop = keras_early_stop(v, r.epochs, (double)deltas[k], 2, &best);
        assert_true(stop > 2 && stop == r.epochs && stop < EMAX);
        assert_int_equal(rep.stopped_epoch, stop);
        assert_int_equal(rep.best_epoch, best);
        /* Each epoch's wait as Keras counts it. */
        for (size_t e = 0; e < r.epochs; e++) {
            size_t b2, s2 = keras_early_stop(v, e + 1, (double)deltas[k], 2, &b2);
            (void)s2;
            assert_int_equal(r.info[e].best_epoch, b2);
            assert_int_equal(r.info[e].wait, e + 1 - b2);
        }
        free(r.params);
        invdl_model_free(m);
    }
}

/* Full-batch SGD on y = w x + b (width 1) with the rate of step k, in
 * double from the MSE gradient, the step in float as Keras takes it. */
static void sgd_line(float *p, size_t n, const float *x, const float *t, float lr)
{
    double gw = 0.0, gb = 0.0;
    for (size_t s = 0; s < n; s++) {
        double r = (double)p[0] * (double)x[s] + (double)p[1] - (double)t[s];
        gw += 2.0 * r * (double)x[s] / (double)n;
        gb += 2.0 * r / (double)n;
    }
    p[0] -= lr * (float)gw;
    p[1] -= lr * (float)gb;
}

/* ExponentialDecay: rate_k = lr0 * decay_rate^(k / decay_steps), floor of
 * the exponent with staircase; computed here as exp(p log r) in double
 * and rounded to float, so it may differ from the library's pow() by the
 * last bit of the double, i.e. at most one float ulp after rounding. */
static float expected_rate(float lr0, float rate, size_t steps, int staircase, size_t k)
{
    double p = (double)k / (double)steps;
    if (staircase)
        p = floor(p);
    return (float)((double)lr0 * exp(p * log((double)rate)));
}

static int same_rate(float got, float want)
{
    return fabsf(got - want) <= nextafterf(want, INFINITY) - want;
}

static void check_exponential(int staircase)
{
    enum { N = 12, EPOCHS = 9 };
    float x[N], t[N];
    fill(x, N, -1, 1, 31);
    for (size_t i = 0; i < N; i++)
        t[i] = 1.5f * x[i] - 0.25f;
    /* Per step, several steps per epoch: the rate each epoch's last step
     * used and the next one's. */
    invdl_model *m = line_model(0.2f);
    record r;
    invdl_fit_report rep;
    invdl_fit_options o = invdl_fit_defaults();
    record_init(&r, m, &o, &rep);
    o.learning_rate = 0.2f;
    o.batch_size = 5; /* 3 steps per epoch */
    o.epochs = EPOCHS;
    o.schedule = INVDL_SCHEDULE_EXPONENTIAL;
    o.decay_steps = 4;
    o.decay_rate = 0.7f;
    o.staircase = staircase;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    for (size_t e = 0; e < EPOCHS; e++) {
        size_t last = 3 * (e + 1) - 1;
        assert_int_equal(r.info[e].steps, last + 1);
        assert_true(same_rate(r.info[e].learning_rate, expected_rate(0.2f, 0.7f, 4, staircase, last)));
        assert_true(
            same_rate(r.info[e].next_learning_rate, expected_rate(0.2f, 0.7f, 4, staircase, last + 1)));
    }
    assert_true(rep.learning_rate == r.info[EPOCHS - 1].next_learning_rate);
    free(r.params);
    invdl_model_free(m);

    /* The steps take those rates: full batch, one step per epoch. */
    m = line_model(0.2f);
    float p[2] = {0.2f, 0.0f}, got[2];
    o.batch_size = N;
    o.on_epoch_end = NULL;
    o.report = NULL;
    o.epochs = 20;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    for (size_t k = 0; k < 20; k++)
        sgd_line(p, N, x, t, expected_rate(0.2f, 0.7f, 4, staircase, k));
    assert_int_equal(invdl_model_get_params(m, 2, got), INVDL_OK);
    /* The library's gradient differs from this one by the rounding of
     * one float activation per sample (2^-24 relative), and a rate may
     * differ by an ulp: a few ulps of the parameters after 20 steps. */
    for (int i = 0; i < 2; i++)
        assert_true(fabsf(got[i] - p[i]) <= 1e-6f * (1.0f + fabsf(p[i])));
    invdl_model_free(m);
}

static void test_exponential_decay(void **state)
{
    (void)state;
    check_exponential(0);
    check_exponential(1);
}

/* Keras' ReduceLROnPlateau (mode "min") on the monitored values: the rate
 * after each epoch, in float as Keras' optimizer holds it. */
static void keras_plateau(const double *v, size_t epochs, float lr0, double factor,
                          size_t patience, double min_delta, size_t cooldown, float min_lr,
                          float *rate_after)
{
    double best = (double)INFINITY;
    size_t wait = 0, cool = 0;
    float lr = lr0;
    for (size_t e = 0; e < epochs; e++) {
        if (cool > 0) {
            cool--;
            wait = 0;
        }
        if (v[e] < best - min_delta) {
            best = v[e];
            wait = 0;
        } else if (cool == 0) {
            wait++;
            if (wait >= patience && lr > min_lr) {
                double nl = (double)lr * factor;
                lr = (float)(nl > (double)min_lr ? nl : (double)min_lr);
                cool = cooldown;
                wait = 0;
            }
        }
        rate_after[e] = lr;
    }
}

static void test_reduce_on_plateau(void **state)
{
    (void)state;
    enum { N = 32, V = 16, EPOCHS = 60 };
    float x[N], t[N], vx[V], vy[V];
    fill(x, N, -1, 1, 41);
    fill(t, N, -0.2, 0.2, 42); /* noise: the loss settles above 0 */
    fill(vx, V, -1, 1, 43);
    fill(vy, V, -0.2, 0.2, 44);
    for (size_t i = 0; i < N; i++)
        t[i] += 1.5f * x[i];
    for (size_t i = 0; i < V; i++)
        vy[i] += 1.5f * vx[i];
    for (int use_val = 0; use_val < 2; use_val++) {
        invdl_model *m = line_model(0.1f);
        record r;
        invdl_fit_report rep;
        invdl_fit_options o = invdl_fit_defaults();
        record_init(&r, m, &o, &rep);
        o.learning_rate = 0.3f;
        o.batch_size = 8;
        o.epochs = EPOCHS;
        o.reduce_lr_on_plateau = 1;
        o.plateau_factor = 0.5f;
        o.plateau_patience = 2;
        o.plateau_min_delta = 1e-3f;
        o.plateau_cooldown = 1;
        o.plateau_min_lr = 0.01f;
        if (use_val)
            validate_on(&r, &o, V, vx, vy);
        assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
        assert_int_equal(r.epochs, EPOCHS);
        double v[EPOCHS];
        float want[EPOCHS];
        for (size_t e = 0; e < EPOCHS; e++)
            v[e] = use_val ? (double)r.info[e].val_loss : (double)r.info[e].loss;
        keras_plateau(v, EPOCHS, 0.3f, (double)0.5f, 2, (double)1e-3f, 1, 0.01f, want);
        size_t reductions = 0;
        for (size_t e = 0; e < EPOCHS; e++) {
            assert_true(r.info[e].next_learning_rate == want[e]);
            /* The new rate applies from the next epoch's first step. */
            float used = e == 0 ? 0.3f : want[e - 1];
            assert_true(r.info[e].learning_rate == used);
            reductions += e > 0 && want[e] < want[e - 1];
        }
        /* Several reductions, down to min_lr. */
        assert_true(reductions >= 3);
        assert_true(want[EPOCHS - 1] == 0.01f);
        assert_true(rep.learning_rate == 0.01f);
        free(r.params);
        invdl_model_free(m);
    }
}

/* ---- floors that do not trap ---------------------------------------------- */

/* A width-1 mprelu with alpha_min 0.1 fitted to y = c x on negative and
 * positive x, from alpha = a0: the alpha it ends at. */
static float fit_alpha(float a0, float c, int adam)
{
    enum { N = 32 };
    float x[N], t[N];
    fill(x, N, -2, 2, 51);
    for (size_t i = 0; i < N; i++)
        t[i] = x[i] < 0.0f ? c * x[i] : x[i];
    invdl_model *m = invdl_model_create(1);
    add(m, invdl_layer_mprelu_min(1, 1, 0.1f));
    set_layer(m, 0, 1, &a0);
    invdl_fit_options o = adam ? invdl_fit_defaults_adam() : invdl_fit_defaults();
    o.learning_rate = adam ? 0.01f : 0.2f;
    o.batch_size = 8;
    o.epochs = 200;
    assert_int_equal(invdl_model_fit(m, N, x, t, &o, NULL), INVDL_OK);
    float a;
    assert_int_equal(invdl_model_get_params(m, 1, &a), INVDL_OK);
    invdl_model_free(m);
    return a;
}

static void test_alpha_leaves_floor(void **state)
{
    (void)state;
    for (int adam = 0; adam < 2; adam++) {
        /* The loss wants slope 0.5 > alpha_min: from inside the floor
         * (either sign, and exactly 0) alpha reaches +-0.5.  The model
         * represents y = 0.5 x exactly, so the minimum is alpha = 0.5; 200
         * epochs get there to 1e-4 (SGD contracts by at least 1 - 0.2 *
         * 2 mean(x^2 | x<0)/2 per step; Adam's steps shrink with its
         * gradient). */
        assert_true(fabsf(fit_alpha(0.01f, 0.5f, adam) - 0.5f) <= 1e-4f);
        assert_true(fabsf(fit_alpha(-0.05f, 0.5f, adam) + 0.5f) <= 1e-4f);
        assert_true(fabsf(fit_alpha(0.0f, 0.5f, adam) - 0.5f) <= 1e-4f);
        /* The loss wants slope 0.02 < alpha_min: alpha ends on the
         * floor's edge exactly, from inside, from outside and from the
         * edge. */
        assert_true(fit_alpha(0.01f, 0.02f, adam) == 0.1f);
        assert_true(fit_alpha(-0.01f, 0.02f, adam) == -0.1f);
        assert_true(fit_alpha(0.6f, 0.02f, adam) == 0.1f);
        assert_true(fit_alpha(0.1f, 0.02f, adam) == 0.1f);
    }
}

/* Learning rate 0 takes no step, so nothing is projected either: an alpha
 * inside the floor stays where it is. */
static void test_rate_zero_projects_nothing(void **state)
{
    (void)state;
    float x[4] = {-1.0f, -0.5f, 0.5f, 1.0f}, t[4] = {-0.5f, -0.25f, 0.5f, 1.0f}, a = -0.0f;
    invdl_model *m = invdl_model_create(1);
    add(m, invdl_layer_mprelu_min(1, 1, 0.1f));
    set_layer(m, 0, 1, &a);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 0.0f;
    o.epochs = 3;
    assert_int_equal(invdl_model_fit(m, 4, x, t, &o, NULL), INVDL_OK);
    float got;
    assert_int_equal(invdl_model_get_params(m, 1, &got), INVDL_OK);
    assert_memory_equal(&got, &a, sizeof a);
    invdl_model_free(m);
}

/* The loss of a dense(2) then mprelu(2) model, in double from float
 * parameters p = W, b, alpha and the floor amin. */
static double ref_loss(const double *p, double amin, size_t n, const float *x, const float *t)
{
    double sum = 0.0;
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < 2; i++) {
            double v = p[4 + i] + p[2 * i] * (double)x[2 * s] + p[2 * i + 1] * (double)x[2 * s + 1];
            double a = fabs(p[6 + i]) > amin ? fabs(p[6 + i]) : amin;
            double y = v < 0.0 ? a * v : v;
            sum += (y - (double)t[2 * s + i]) * (y - (double)t[2 * s + i]);
        }
    }
    return sum / (double)(2 * n);
}

/* invdl_model_gradient() at alphas outside, strictly inside and on the
 * edge of the floor: central differences in double outside (and inside,
 * where the loss is flat: 0), and at the edge the outward one-sided
 * difference, the derivative training uses there. */
static void test_gradient_at_floor(void **state)
{
    (void)state;
    enum { N = 16 };
    static const float alphas[][2] = {{0.5f, -0.3f}, {0.05f, -0.002f}, {0.1f, -0.1f}};
    float x[N * 2], t[N * 2];
    fill(x, N * 2, -1, 1, 61);
    fill(t, N * 2, -1, 1, 62);
    for (size_t c = 0; c < 3; c++) {
        invdl_model *m = invdl_model_create(2);
        add(m, invdl_layer_dense(2, 63));
        add(m, invdl_layer_mprelu_min(2, 64, 0.1f));
        set_layer(m, 1, 2, alphas[c]);
        float pf[8], g[8], loss;
        double p[8];
        assert_int_equal(invdl_model_get_params(m, 8, pf), INVDL_OK);
        assert_int_equal(invdl_model_gradient(m, N, x, t, NULL, &loss, g, NULL), INVDL_OK);
        for (int i = 0; i < 8; i++)
            p[i] = (double)pf[i];
        double gmax = 0.0;
        for (int i = 0; i < 8; i++)
            gmax = fabs((double)g[i]) > gmax ? fabs((double)g[i]) : gmax;
        for (int i = 0; i < 8; i++) {
            double want, h = 1e-6, keep = p[i];
            int edge = i >= 6 && fabsf(pf[i]) == 0.1f;
            if (edge) {
                double out = keep < 0 ? -h : h;
                p[i] = keep + out;
                double up = ref_loss(p, (double)0.1f, N, x, t);
                p[i] = keep;
                want = (up - ref_loss(p, (double)0.1f, N, x, t)) / out;
            } else {
                p[i] = keep + h;
                double up = ref_loss(p, (double)0.1f, N, x, t);
                p[i] = keep - h;
                want = (up - ref_loss(p, (double)0.1f, N, x, t)) / (2 * h);
            }
            p[i] = keep;
            /* Inside the floor the derivative is exactly 0. */
            if (i >= 6 && fabsf(pf[i]) < 0.1f)
                assert_true(g[i] == 0.0f && want == 0.0);
            /* The library's gradient is formed from float activations
             * (2^-24 relative each) and rounded to float; the difference
             * quotient's error is below 1e-9 (h^2 terms of a quadratic,
             * double rounding / h).  1e-5 of the largest component covers
             * both with room, and a sign or a missing term would not. */
            assert_true(fabs((double)g[i] - want) <= 1e-5 * gmax);
        }
        /* The edge case's alpha gradients are not 0 (the data has
         * negative pre-activations in both features). */
        if (c == 2)
            assert_true(g[6] != 0.0f && g[7] != 0.0f);
        invdl_model_free(m);
    }
}

/* ---- amplification against brute force ----------------------------------- */

/* Layer l's inverse in double at v (width w), from its parameters. */
static void ref_inverse_layer(const invdl_layer *l, const double *v, double *u)
{
    size_t w = invdl_layer_width(l);
    switch (invdl_layer_kind_of(l)) {
    case INVDL_LAYER_DENSE:
    case INVDL_LAYER_DENSE_LU: {
        float Wf[WMAX * WMAX], bf[WMAX];
        double A[WMAX][WMAX + 1];
        assert_int_equal(invdl_layer_weights(l, Wf, bf), INVDL_OK);
        for (size_t i = 0; i < w; i++) {
            for (size_t j = 0; j < w; j++)
                A[i][j] = (double)Wf[i * w + j];
            A[i][w] = v[i] - (double)bf[i];
        }
        /* Gaussian elimination with partial pivoting. */
        for (size_t k = 0; k < w; k++) {
            size_t piv = k;
            for (size_t i = k + 1; i < w; i++)
                if (fabs(A[i][k]) > fabs(A[piv][k]))
                    piv = i;
            for (size_t j = 0; j <= w; j++) {
                double tmp = A[k][j];
                A[k][j] = A[piv][j];
                A[piv][j] = tmp;
            }
            for (size_t i = k + 1; i < w; i++) {
                double f = A[i][k] / A[k][k];
                for (size_t j = k; j <= w; j++)
                    A[i][j] -= f * A[k][j];
            }
        }
        for (size_t i = w; i-- > 0;) {
            double s = A[i][w];
            for (size_t j = i + 1; j < w; j++)
                s -= A[i][j] * u[j];
            u[i] = s / A[i][i];
        }
        break;
    }
    case INVDL_LAYER_MPRELU: {
        float alpha[WMAX];
        assert_int_equal(invdl_layer_get_params(l, w, alpha), INVDL_OK);
        double amin = (double)invdl_layer_alpha_min(l);
        for (size_t j = 0; j < w; j++) {
            double a = fabs((double)alpha[j]) > amin ? fabs((double)alpha[j]) : amin;
            u[j] = v[j] < 0.0 ? v[j] / a : v[j];
        }
        break;
    }
    case INVDL_LAYER_ABSTANH:
        for (size_t j = 0; j < w; j++)
            u[j] = (double)ref_abstanh_inv((long double)v[j]);
        break;
    case INVDL_LAYER_SSIN:
        for (size_t j = 0; j < w; j++)
            u[j] = (double)ref_ssin_inv((long double)v[j]);
        break;
    default:
        fail();
    }
}

/* The inverse model's layers first..last-1 undone from the top, in
 * double. */
static void ref_inverse_range(invdl_model *m, size_t first, size_t last, const double *v,
                              double *u)
{
    size_t w = invdl_model_width(m);
    double cur[WMAX], nxt[WMAX];
    memcpy(cur, v, w * sizeof *cur);
    for (size_t l = last; l-- > first;) {
        ref_inverse_layer(invdl_model_layer(m, l), cur, nxt);
        memcpy(cur, nxt, w * sizeof *cur);
    }
    memcpy(u, cur, w * sizeof *u);
}

static double norm_inf(size_t w, const double *v)
{
    double m = 0.0;
    for (size_t j = 0; j < w; j++)
        m = fabs(v[j]) > m ? fabs(v[j]) : m;
    return m;
}

/* |J|_inf |v| / |g(v)| of the inverse of layers first..last-1 at v, the
 * Jacobian by central differences (step 1e-6 |v|: truncation error of
 * order 1e-12 relative for these smooth pieces, rounding 1e-10). */
static double brute_gain(invdl_model *m, size_t first, size_t last, const double *v)
{
    size_t w = invdl_model_width(m);
    double J[WMAX][WMAX], up[WMAX], dn[WMAX], g[WMAX], p[WMAX];
    double h = 1e-6 * norm_inf(w, v);
    for (size_t k = 0; k < w; k++) {
        memcpy(p, v, w * sizeof *p);
        p[k] = v[k] + h;
        ref_inverse_range(m, first, last, p, up);
        p[k] = v[k] - h;
        ref_inverse_range(m, first, last, p, dn);
        for (size_t i = 0; i < w; i++)
            J[i][k] = (up[i] - dn[i]) / (2 * h);
    }
    double jn = 0.0;
    for (size_t i = 0; i < w; i++) {
        double row = 0.0;
        for (size_t k = 0; k < w; k++)
            row += fabs(J[i][k]);
        jn = row > jn ? row : jn;
    }
    ref_inverse_range(m, first, last, v, g);
    return jn * norm_inf(w, v) / norm_inf(w, g);
}

/* Per sample: the library's layer gains (a batch of one) against brute
 * force at the float activations, their product against sample_gain and
 * the brute-force amplification of the whole inverse model, which the
 * product bounds (and equals at width 1). */
static void check_amplification(invdl_model *m, size_t n, const float *x)
{
    size_t w = invdl_model_width(m), depth = invdl_model_depth(m);
    double *sample = malloc(n * sizeof *sample), total, lg[8], worst_bound_ratio = 1.0;
    assert_non_null(sample);
    assert_int_equal(invdl_model_amplification(m, n, x, NULL, sample, &total), INVDL_OK);
    double max_sample = 0.0;
    for (size_t s = 0; s < n; s++) {
        float act[9][WMAX];
        double v[WMAX], u[WMAX];
        memcpy(act[0], x + s * w, w * sizeof(float));
        for (size_t l = 0; l < depth; l++)
            assert_int_equal(invdl_layer_apply(invdl_model_layer(m, l), 1, act[l], act[l + 1]),
                             INVDL_OK);
        assert_int_equal(invdl_model_amplification(m, 1, x + s * w, lg, NULL, NULL), INVDL_OK);
        double product = 1.0;
        for (size_t l = 0; l < depth; l++) {
            for (size_t j = 0; j < w; j++)
                v[j] = (double)act[l + 1][j];
            double want = brute_gain(m, l, l + 1, v);
            /* The library takes slopes at the float input v_(l-1), brute
             * force at the float output v_l: the two points differ by the
             * rounding of v_l (2^-24 relative) carried back through the
             * layer, and the slopes by that times |f''/f'|, below 1e-6
             * relative for these samples (none near a hinge, 0 or a
             * domain edge). */
            assert_true(fabs(lg[l] - want) <= 1e-6 * want);
            product *= lg[l];
        }
        assert_true(fabs(sample[s] - product) <= 1e-15 * product);
        for (size_t j = 0; j < w; j++)
            v[j] = (double)act[depth][j];
        double a = brute_gain(m, 0, depth, v);
        (void)u;
        if (w == 1)
            assert_true(fabs(a - sample[s]) <= 1e-6 * (double)depth * a);
        else
            assert_true(a <= sample[s] * (1.0 + 1e-6 * (double)depth));
        worst_bound_ratio = sample[s] / a > worst_bound_ratio ? sample[s] / a : worst_bound_ratio;
        max_sample = sample[s] > max_sample ? sample[s] : max_sample;
    }
    assert_true(total == max_sample);
    /* layer_gain is the max over samples of each layer's gain. */
    assert_int_equal(invdl_model_amplification(m, n, x, lg, NULL, NULL), INVDL_OK);
    for (size_t l = 0; l < depth; l++) {
        double mx = 0.0;
        for (size_t s = 0; s < n; s++) {
            double one[8];
            assert_int_equal(invdl_model_amplification(m, 1, x + s * w, one, NULL, NULL), INVDL_OK);
            mx = one[l] > mx ? one[l] : mx;
        }
        assert_true(lg[l] == mx);
    }
    if (w > 1)
        printf("width %zu, depth %zu: bound / brute-force amplification up to %.3g\n", w, depth,
               worst_bound_ratio);
    free(sample);
}

/* Samples whose activations all stay at least `gap` away from 0 (hinges,
 * abs-tanh and signed sin's flat point) and inside signed sin's domain,
 * so that central differences of every piece are smooth. */
static size_t clean_samples(invdl_model *m, size_t n, const float *x, float *keep, double gap)
{
    size_t w = invdl_model_width(m), kept = 0;
    for (size_t s = 0; s < n; s++) {
        float a[WMAX], b[WMAX];
        int ok = 1;
        memcpy(a, x + s * w, w * sizeof *a);
        for (size_t l = 0; l < invdl_model_depth(m) && ok; l++) {
            ok = invdl_layer_apply(invdl_model_layer(m, l), 1, a, b) == INVDL_OK;
            for (size_t j = 0; j < w; j++)
                ok &= (double)fabsf(b[j]) >= gap && (double)fabsf(a[j]) >= gap && fabsf(b[j]) < 1.7f;
            memcpy(a, b, sizeof b);
        }
        if (ok)
            memcpy(keep + kept++ * w, x + s * w, w * sizeof *keep);
    }
    return kept;
}

static void test_amplification_brute_force(void **state)
{
    (void)state;
    enum { N = 256 };
    float x[N * 3], keep[N * 3];
    /* Width 1: every kind, the bound exact. */
    invdl_model *m = invdl_model_create(1);
    add(m, invdl_layer_dense(1, 1));
    add(m, invdl_layer_mprelu_min(1, 2, 0.05f));
    add(m, invdl_layer_abstanh(1));
    add(m, invdl_layer_dense_lu(1, 3));
    add(m, invdl_layer_ssin(1));
    const float d[2] = {0.9f, 0.1f}, al = 0.3f, lu[2] = {-1.2f, 0.05f};
    set_layer(m, 0, 2, d);
    set_layer(m, 1, 1, &al);
    set_layer(m, 3, 2, lu);
    fill(x, N, -1.5, 1.5, 71);
    size_t k = clean_samples(m, N, x, keep, 0.05);
    assert_true(k >= 32);
    check_amplification(m, k, keep);
    invdl_model_free(m);

    /* Width 3: a bound; per layer against brute force. */
    m = invdl_model_create(3);
    add(m, invdl_layer_dense(3, 4));
    add(m, invdl_layer_mprelu_min(3, 5, 0.05f));
    add(m, invdl_layer_abstanh(3));
    add(m, invdl_layer_dense_lu(3, 6));
    add(m, invdl_layer_mprelu(3, 7));
    const float a3[3] = {0.3f, -0.6f, 0.01f}; /* the last inside the floor: slope 0.05 */
    set_layer(m, 1, 3, a3);
    fill(x, N * 3, -1.5, 1.5, 72);
    k = clean_samples(m, N, x, keep, 0.05);
    assert_true(k >= 32);
    check_amplification(m, k, keep);
    invdl_model_free(m);
}

/* The report on a model with a stuck slope: a width-4 dense, mprelu,
 * dense model whose second alpha sits inside the floor (slope alpha_min =
 * 0.01): the mprelu's gain is 1/alpha_min times the norm ratio wherever
 * that feature is negative, and the inverse recovers x from a perturbed
 * y with that much more error. */
static void test_stuck_slope_report(void **state)
{
    (void)state;
    enum { N = 256, W4 = 4 };
    float x[N * W4], y[N * W4], back[N * W4];
    invdl_model *m = invdl_model_create(W4);
    add(m, invdl_layer_dense(W4, 81));
    add(m, invdl_layer_mprelu(W4, 82));
    add(m, invdl_layer_dense(W4, 83));
    const float stuck[W4] = {0.8f, 0.004f, 0.6f, -0.9f};
    set_layer(m, 1, W4, stuck);
    fill(x, N * W4, -1, 1, 84);
    double lg[3], total, *sample = malloc(N * sizeof *sample);
    assert_non_null(sample);
    assert_int_equal(invdl_model_amplification(m, N, x, lg, sample, &total), INVDL_OK);
    printf("stuck slope (alpha = 0.004, alpha_min = 0.01), %d samples:\n", N);
    printf("  layer gains: dense %.3g, mprelu %.3g, dense %.3g; total %.3g\n", lg[0], lg[1],
           lg[2], total);
    /* The mprelu layer compresses by 100 on its second feature. */
    assert_true(lg[1] >= 100.0 * 0.5 && lg[1] <= 100.0 * 4.0);
    assert_true(lg[1] > 10.0 * lg[0] && lg[1] > 10.0 * lg[2]);
    /* Recovery: y perturbed by a relative 1e-4 (a fit error) comes back
     * with an error bounded by amplification x 1e-4, per sample. */
    assert_int_equal(invdl_model_predict(m, N, x, y), INVDL_OK);
    float pre[N * W4];
    assert_int_equal(invdl_layer_apply(invdl_model_layer(m, 0), N, x, pre), INVDL_OK);
    double worst_ratio = 0.0, worst_err = 0.0;
    uint64_t seed = 85;
    size_t used = 0;
    for (size_t s = 0; s < N; s++) {
        double ny = 0.0, nx = 0.0, ne = 0.0;
        /* The perturbation reaches the PReLU's input as up to 100 x 1e-4
         * of its scale: samples that close to a hinge would cross it, and
         * first order would not hold. */
        int near = 0;
        for (size_t j = 0; j < W4; j++)
            near |= fabsf(pre[s * W4 + j]) < 0.05f;
        if (near)
            continue;
        used++;
        for (size_t j = 0; j < W4; j++)
            ny = fabs((double)y[s * W4 + j]) > ny ? fabs((double)y[s * W4 + j]) : ny;
        for (size_t j = 0; j < W4; j++)
            y[s * W4 + j] += (float)(ny * 1e-4 * ((test_rand(&seed) & 1) ? 1.0 : -1.0));
        assert_int_equal(invdl_model_predict_inverse(m, 1, y + s * W4, back + s * W4), INVDL_OK);
        for (size_t j = 0; j < W4; j++) {
            nx = fabs((double)x[s * W4 + j]) > nx ? fabs((double)x[s * W4 + j]) : nx;
            double e = fabs((double)back[s * W4 + j] - (double)x[s * W4 + j]);
            ne = e > ne ? e : ne;
        }
        double rel = ne / nx;
        /* First order, plus float rounding of the perturbed y (2^-24
         * relative, amplified alike): 1.1 x. */
        assert_true(rel <= 1.1 * sample[s] * 1e-4);
        worst_ratio = rel / 1e-4 > worst_ratio ? rel / 1e-4 : worst_ratio;
        worst_err = rel > worst_err ? rel : worst_err;
    }
    assert_true(used >= N / 2);
    printf("  y perturbed by 1e-4 relative (%zu samples away from hinges): x recovered with "
           "relative error up to %.3g (observed amplification %.3g)\n",
           used, worst_err, worst_ratio);
    /* The same model with the slope out of the floor. */
    const float freed[W4] = {0.8f, 0.5f, 0.6f, -0.9f};
    set_layer(m, 1, W4, freed);
    assert_int_equal(invdl_model_amplification(m, N, x, lg, NULL, &total), INVDL_OK);
    printf("  alpha = 0.5 instead: mprelu %.3g; total %.3g\n", lg[1], total);
    assert_true(lg[1] < 10.0);
    free(sample);
    invdl_model_free(m);
}

static void test_amplification_edges(void **state)
{
    (void)state;
    float x[6] = {0.5f, -0.25f, 0.0f, 0.0f, 3.0f, 1.0f};
    double lg[2] = {-1.0, -1.0}, sg[3] = {-1.0, -1.0, -1.0}, total = -1.0;
    invdl_model *m = invdl_model_create(2);
    /* No layers: the identity, gains 1. */
    assert_int_equal(invdl_model_amplification(m, 3, x, lg, sg, &total), INVDL_OK);
    assert_true(sg[0] == 1.0 && sg[1] == 1.0 && sg[2] == 1.0 && total == 1.0);
    add(m, invdl_layer_abstanh(2));
    add(m, invdl_layer_ssin(2));
    /* An input of 0 with abs-tanh (slope 0): +inf; x = 3 leaves signed
     * sin's domain after abs-tanh (3 tanh 3 > 2.03): INVDL_EDOMAIN, all
     * written. */
    assert_int_equal(invdl_model_amplification(m, 3, x, lg, sg, &total), INVDL_EDOMAIN);
    assert_true(isfinite(sg[0]) && sg[0] >= 1.0);
    assert_true(isinf(sg[1]) && isinf(sg[2]) && isinf(total));
    assert_true(isinf(lg[0]) && isinf(lg[1]));
    /* Batch 0: layer gains 0, total 0. */
    assert_int_equal(invdl_model_amplification(m, 0, NULL, lg, NULL, &total), INVDL_OK);
    assert_true(lg[0] == 0.0 && lg[1] == 0.0 && total == 0.0);
    /* Bad arguments: INVDL_EINVAL, nothing written. */
    lg[0] = lg[1] = sg[0] = total = -1.0;
    assert_int_equal(invdl_model_amplification(NULL, 1, x, lg, sg, &total), INVDL_EINVAL);
    assert_int_equal(invdl_model_amplification(m, 1, NULL, lg, sg, &total), INVDL_EINVAL);
    assert_int_equal(invdl_model_amplification(m, SIZE_MAX, x, lg, sg, &total), INVDL_EINVAL);
    assert_true(lg[0] == -1.0 && lg[1] == -1.0 && sg[0] == -1.0 && total == -1.0);
    invdl_model_free(m);
}

/* ---- the sensor calibration ------------------------------------------------ */

/* A sensor's response r = g(t) on t in [0, 1]: monotone, steeper at low t
 * (a logarithmic response). */
static double sensor(double t)
{
    return log1p(9.0 * t) / log(10.0);
}

/* dense, signed sin's inverse (a concave, then convex, monotone
 * map), dense: 4 parameters. */
static invdl_model *sensor_model(void)
{
    invdl_model *m = invdl_model_create(1);
    add(m, invdl_layer_dense(1, 10));
    invdl_layer *ssin = invdl_layer_ssin(1);
    add(m, invdl_layer_inverse(ssin));
    invdl_layer_free(ssin); /* the inverse keeps the block */
    add(m, invdl_layer_dense(1, 11));
    return m;
}

/* Trains on 256 readings, then recovers t from 1000 new ones through the
 * inverse model: the largest |t_hat - t|, and the final loss. */
static double calibrate(float rate, size_t epochs, int schedule, float *final_loss)
{
    enum { N = 256, M = 1000 };
    float t[N], r[N], rn[M], th[M];
    for (size_t i = 0; i < N; i++) {
        t[i] = (float)(((double)i + 0.5) / N);
        r[i] = (float)sensor((double)t[i]);
    }
    invdl_model *m = sensor_model();
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = rate;
    o.batch_size = 16;
    o.epochs = epochs;
    if (schedule) {
        /* 16 steps per epoch: the rate falls by 10 every 125 epochs. */
        o.schedule = INVDL_SCHEDULE_EXPONENTIAL;
        o.decay_steps = 2000;
        o.decay_rate = 0.1f;
    }
    assert_int_equal(invdl_model_fit(m, N, t, r, &o, final_loss), INVDL_OK);
    double worst = 0.0;
    uint64_t seed = 97;
    float tn[M];
    fill(tn, M, 0.0, 1.0, seed);
    for (size_t i = 0; i < M; i++)
        rn[i] = (float)sensor((double)tn[i]);
    assert_int_equal(invdl_model_predict_inverse(m, M, rn, th), INVDL_OK);
    for (size_t i = 0; i < M; i++) {
        double e = fabs((double)th[i] - (double)tn[i]);
        worst = e > worst ? e : worst;
    }
    double amp;
    assert_int_equal(invdl_model_amplification(m, M, tn, NULL, NULL, &amp), INVDL_OK);
    printf("  %s rate %g, %zu epochs: final loss %.3g, recovery max |t_hat - t| %.3g, "
           "amplification %.3g\n",
           schedule ? "exponential decay, 0.1 per 125 epochs, from" : "constant", (double)rate,
           epochs, (double)*final_loss, worst, amp);
    invdl_model_free(m);
    return worst;
}

static void test_sensor_calibration(void **state)
{
    (void)state;
    float before_loss, after_loss;
    printf("sensor calibration, r = log10(1 + 9 t), width 1 (dense, inverse ssin, dense), "
           "batch 16, SGD:\n");
    double before = calibrate(0.5f, 400, 0, &before_loss);
    double after = calibrate(0.5f, 400, 1, &after_loss);
    /* The bound this test states: t recovered within 0.05 (5% of its
     * range) with the schedule.  The constant rate 0.5 stays well above
     * the schedule's loss (its steps are too long for the end of
     * training).  Four parameters cannot follow log10 closely: long runs
     * at small constant rates level off near the schedule's loss, so the
     * recovery error left is the model's, not the rate's. */
    const float slow[3] = {0.02f, 0.05f, 0.1f};
    float least = INFINITY;
    for (int k = 0; k < 3; k++) {
        float loss;
        (void)calibrate(slow[k], 2000, 0, &loss);
        least = loss < least ? loss : least;
    }
    assert_true(after_loss <= 1.25f * least && least >= 0.8f * after_loss);
    assert_true(after <= 0.05);
    assert_true(after < before && after_loss < before_loss);
}

/* ---- bad options ------------------------------------------------------------ */

typedef void (*mutation)(invdl_fit_options *o, const float *v);

static void bad_val_x(invdl_fit_options *o, const float *v)
{
    o->validation_n = 2, o->validation_x = NULL, o->validation_y = v;
}
static void bad_val_y(invdl_fit_options *o, const float *v)
{
    o->validation_n = 2, o->validation_x = v, o->validation_y = NULL;
}
static void bad_val_n(invdl_fit_options *o, const float *v)
{
    o->validation_n = SIZE_MAX, o->validation_x = v, o->validation_y = v;
}
static void bad_es_flag(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 2;
}
static void bad_restore_alone(invdl_fit_options *o, const float *v)
{
    (void)v, o->restore_best_weights = 1;
}
static void bad_restore_flag(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->restore_best_weights = -1;
}
static void bad_es_monitor(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->early_stopping_monitor = (invdl_monitor)7;
}
static void bad_es_val_monitor(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->early_stopping_monitor = INVDL_MONITOR_VAL_LOSS;
}
static void bad_es_delta(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->early_stopping_min_delta = -1e-3f;
}
static void bad_es_delta_nan(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->early_stopping_min_delta = NAN;
}
static void bad_es_delta_inf(invdl_fit_options *o, const float *v)
{
    (void)v, o->early_stopping = 1, o->early_stopping_min_delta = INFINITY;
}
static void bad_schedule(invdl_fit_options *o, const float *v)
{
    (void)v, o->schedule = (invdl_schedule)2;
}
static void exponential(invdl_fit_options *o)
{
    o->schedule = INVDL_SCHEDULE_EXPONENTIAL, o->decay_steps = 10, o->decay_rate = 0.5f;
}
static void bad_decay_steps(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->decay_steps = 0;
}
static void bad_decay_rate(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->decay_rate = 0.0f;
}
static void bad_decay_rate_neg(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->decay_rate = -0.5f;
}
static void bad_decay_rate_nan(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->decay_rate = NAN;
}
static void bad_decay_rate_inf(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->decay_rate = INFINITY;
}
static void bad_staircase(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->staircase = 3;
}
static void bad_both_schedules(invdl_fit_options *o, const float *v)
{
    (void)v, exponential(o), o->reduce_lr_on_plateau = 1;
}
static void bad_plateau_flag(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 2;
}
static void bad_plateau_monitor(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_monitor = INVDL_MONITOR_VAL_LOSS;
}
static void bad_plateau_monitor_enum(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_monitor = (invdl_monitor)-1;
}
static void bad_factor_one(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_factor = 1.0f;
}
static void bad_factor_neg(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_factor = -0.5f;
}
static void bad_factor_nan(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_factor = NAN;
}
static void bad_plateau_delta(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_min_delta = -1.0f;
}
static void bad_min_lr(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_min_lr = -1e-3f;
}
static void bad_min_lr_inf(invdl_fit_options *o, const float *v)
{
    (void)v, o->reduce_lr_on_plateau = 1, o->plateau_min_lr = INFINITY;
}

static void test_bad_options(void **state)
{
    (void)state;
    static const mutation bad[] = {
        bad_val_x,        bad_val_y,           bad_val_n,           bad_es_flag,
        bad_restore_alone, bad_restore_flag,   bad_es_monitor,      bad_es_val_monitor,
        bad_es_delta,     bad_es_delta_nan,    bad_es_delta_inf,    bad_schedule,
        bad_decay_steps,  bad_decay_rate,      bad_decay_rate_neg,  bad_decay_rate_nan,
        bad_decay_rate_inf, bad_staircase,     bad_both_schedules,  bad_plateau_flag,
        bad_plateau_monitor, bad_plateau_monitor_enum, bad_factor_one, bad_factor_neg,
        bad_factor_nan,   bad_plateau_delta,   bad_min_lr,          bad_min_lr_inf,
    };
    enum { N = 6 };
    float x[N * 2], t[N * 2], xc[N * 2], tc[N * 2], v[4] = {0.1f, 0.2f, 0.3f, 0.4f}, vc[4];
    fill(x, N * 2, -1, 1, 101);
    fill(t, N * 2, -1, 1, 102);
    memcpy(xc, x, sizeof x);
    memcpy(tc, t, sizeof t);
    memcpy(vc, v, sizeof v);
    invdl_model *m = invdl_model_create(2);
    add(m, invdl_layer_dense(2, 103));
    add(m, invdl_layer_mprelu(2, 104));
    size_t np = invdl_model_param_count(m);
    float before[8], after[8], loss = 42.0f, g[8];
    assert_int_equal(invdl_model_get_params(m, np, before), INVDL_OK);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        invdl_fit_report rep;
        memset(&rep, 0xa5, sizeof rep);
        invdl_fit_report rc = rep;
        invdl_fit_options o = invdl_fit_defaults();
        o.epochs = 2;
        o.report = &rep;
        bad[i](&o, v);
        assert_int_equal(invdl_model_fit(m, N, x, t, &o, &loss), INVDL_EINVAL);
        assert_true(loss == 42.0f);
        assert_memory_equal(&rep, &rc, sizeof rep);
        assert_int_equal(invdl_model_get_params(m, np, after), INVDL_OK);
        assert_memory_equal(before, after, sizeof before);
        assert_memory_equal(x, xc, sizeof x);
        assert_memory_equal(t, tc, sizeof t);
        assert_memory_equal(v, vc, sizeof v);
        /* invdl_model_gradient() checks the same options (it reads no
         * validation data: the first three are not its concern). */
        if (i >= 3)
            assert_int_equal(invdl_model_gradient(m, N, x, t, &o, &loss, g, NULL), INVDL_EINVAL);
    }
    /* NLL reads no validation targets: validation_y may be NULL there. */
    invdl_fit_options o = invdl_fit_defaults();
    o.loss = INVDL_LOSS_NLL;
    o.learning_rate = 0.0f;
    o.validation_n = 2;
    o.validation_x = v;
    assert_int_equal(invdl_model_fit(m, N, x, NULL, &o, NULL), INVDL_OK);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_loss),
        cmocka_unit_test(test_early_stopping_restores_best),
        cmocka_unit_test(test_early_stopping_counts),
        cmocka_unit_test(test_exponential_decay),
        cmocka_unit_test(test_reduce_on_plateau),
        cmocka_unit_test(test_alpha_leaves_floor),
        cmocka_unit_test(test_rate_zero_projects_nothing),
        cmocka_unit_test(test_gradient_at_floor),
        cmocka_unit_test(test_amplification_brute_force),
        cmocka_unit_test(test_stuck_slope_report),
        cmocka_unit_test(test_amplification_edges),
        cmocka_unit_test(test_sensor_calibration),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
