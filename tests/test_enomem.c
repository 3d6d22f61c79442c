/*
 * test_enomem.c - every allocation of whole scenarios fails in turn.
 *
 * Linked against the fault-injection build of the library (src/memory.h,
 * tests/fault.c).  Each scenario (build layers and a model, make the
 * inverse, predict, log-det, log-density, sampling, round trip, gradient,
 * parameters, fit in stored and memory-saving modes with SGD on squared
 * error and Adam on the negative log-likelihood, fit with validation data,
 * early stopping and the schedules, the amplification report, save, save to memory,
 * load, load from memory) first runs with no failure, counting its
 * allocations; then, for
 * every k up to that count, it runs again with the k-th allocation failing
 * (once, and from k on: "sticky"), and the test checks that
 *   - the call reports INVDL_ENOMEM (or NULL, with that status where the
 *     call has one),
 *   - every block the library took is given back (a live-block count kept
 *     by the hooks; ASan and valgrind in CI check the same independently),
 *   - the objects that existed before are unchanged: parameters, the
 *     outputs of the model and of its inverse (which read the dense
 *     layers' cached factors), the saved bytes, the caller's output arrays
 *     and a file at the target path.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "invdl.h"
#include "reference.h"

enum { W = 4, S = 9, SENTINEL = 0x7fc0dead };

typedef struct fixture {
    invdl_model *m;        /* dense, mprelu, abstanh, ssin, dense, dense_lu, coupling,
                              inverse of the mprelu */
    invdl_model *inv;      /* its linked inverse model */
    float x[S * W];        /* inputs inside every layer's domain */
    float t[S * W];        /* training targets */
    size_t np;
    float *params;         /* parameters before the scenario */
    float y[S * W];        /* m(x) before */
    float back[S * W];     /* inv(y) before */
    unsigned char *saved;  /* save_memory(m) before */
    size_t saved_size;
    char dir[64];          /* a directory for files */
    char path[96];         /* dir/model.invdl, holding `saved` */
} fixture;

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

static void fill_sentinel(float *v, size_t n)
{
    uint32_t bits = SENTINEL;
    for (size_t i = 0; i < n; i++)
        memcpy(&v[i], &bits, sizeof bits);
}

static int is_sentinel(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        if (bits != SENTINEL)
            return 0;
    }
    return 1;
}

/* Builds the fixture's model; NULL on the first failure, everything
 * freed.  Also a scenario: building under allocation failure. */
static invdl_model *build_model(void)
{
    invdl_model *m = invdl_model_create(W);
    if (m == NULL)
        return NULL;
    invdl_layer *layers[7] = {
        invdl_layer_dense(W, 1), invdl_layer_mprelu_min(W, 2, 0.125f), invdl_layer_abstanh(W),
        invdl_layer_ssin(W),     invdl_layer_dense(W, 3),              invdl_layer_dense_lu(W, 4),
        invdl_layer_coupling(W, 5, INVDL_COUPLING_ODD, 5),
    };
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        if (layers[i] == NULL)
            ok = 0;
        else if (ok && invdl_model_add(m, layers[i]) != INVDL_OK)
            ok = 0; /* the model freed the layer */
        else if (!ok)
            invdl_layer_free(layers[i]);
    }
    if (ok) {
        invdl_layer *back = invdl_layer_inverse(invdl_model_layer(m, 1));
        ok = back != NULL && invdl_model_add(m, back) == INVDL_OK;
    }
    if (!ok) {
        invdl_model_free(m);
        return NULL;
    }
    return m;
}

static unsigned char *save_bytes(const invdl_model *m, size_t *size)
{
    assert_int_equal(invdl_model_save_memory(m, NULL, 0, size), INVDL_OK);
    unsigned char *buf = malloc(*size);
    assert_non_null(buf);
    assert_int_equal(invdl_model_save_memory(m, buf, *size, size), INVDL_OK);
    return buf;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void fixture_setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->m = build_model();
    assert_non_null(f->m);
    f->inv = invdl_model_inverse(f->m);
    assert_non_null(f->inv);
    fill(f->x, S * W, -0.5, 0.5, 11);
    fill(f->t, S * W, -0.5, 0.5, 12);
    f->np = invdl_model_param_count(f->m);
    f->params = malloc(f->np * sizeof *f->params);
    assert_non_null(f->params);
    assert_int_equal(invdl_model_get_params(f->m, f->np, f->params), INVDL_OK);
    assert_int_equal(invdl_model_predict(f->m, S, f->x, f->y), INVDL_OK);
    assert_int_equal(invdl_model_predict(f->inv, S, f->y, f->back), INVDL_OK);
    f->saved = save_bytes(f->m, &f->saved_size);
    strcpy(f->dir, "/tmp/invdl-enomem-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/model.invdl", f->dir);
    FILE *file = fopen(f->path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(f->saved, 1, f->saved_size, file), f->saved_size);
    assert_int_equal(fclose(file), 0);
}

/* The fixture's objects, file and directory are as they were. */
static void fixture_check(const fixture *f)
{
    float *p = malloc(f->np * sizeof *p), y[S * W], back[S * W];
    assert_non_null(p);
    assert_int_equal(invdl_model_get_params(f->m, f->np, p), INVDL_OK);
    assert_memory_equal(p, f->params, f->np * sizeof *p);
    free(p);
    assert_int_equal(invdl_model_predict(f->m, S, f->x, y), INVDL_OK);
    assert_memory_equal(y, f->y, sizeof y);
    assert_int_equal(invdl_model_predict(f->inv, S, f->y, back), INVDL_OK);
    assert_memory_equal(back, f->back, sizeof back);
    size_t size;
    unsigned char *bytes = save_bytes(f->m, &size);
    assert_int_equal(size, f->saved_size);
    assert_memory_equal(bytes, f->saved, size);
    free(bytes);
    /* The file is intact and no temporary file is left beside it. */
    FILE *file = fopen(f->path, "rb");
    assert_non_null(file);
    bytes = malloc(f->saved_size + 1);
    assert_int_equal(fread(bytes, 1, f->saved_size + 1, file), f->saved_size);
    assert_int_equal(fclose(file), 0);
    assert_memory_equal(bytes, f->saved, f->saved_size);
    free(bytes);
    assert_int_equal(count_entries(f->dir), 1);
}

/* After a scenario that succeeded: the parameters and the file as they
 * were (training and saving change them). */
static void fixture_restore(fixture *f)
{
    assert_int_equal(invdl_model_set_params(f->m, f->np, f->params), INVDL_OK);
    FILE *file = fopen(f->path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(f->saved, 1, f->saved_size, file), f->saved_size);
    assert_int_equal(fclose(file), 0);
}

static void fixture_teardown(fixture *f)
{
    invdl_model_free(f->inv);
    invdl_model_free(f->m);
    free(f->params);
    free(f->saved);
    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(rmdir(f->dir), 0);
}

/* ---- scenarios ------------------------------------------------------------
 * Each returns the status of the call under test (INVDL_ENOMEM for a NULL
 * from a call without a status) and frees what it made; on success it
 * also checks the result, so that a failure cannot pass for a success. */

static invdl_status scenario_build(fixture *f)
{
    invdl_model *m = build_model();
    if (m == NULL)
        return INVDL_ENOMEM;
    fault_hold(1);
    size_t size;
    unsigned char *bytes = save_bytes(m, &size);
    assert_int_equal(size, f->saved_size);
    assert_memory_equal(bytes, f->saved, size);
    free(bytes);
    fault_hold(0);
    invdl_model_free(m);
    return INVDL_OK;
}

static invdl_status scenario_layers(fixture *f)
{
    (void)f;
    invdl_layer *l[11] = {
        invdl_layer_ssin(W),     invdl_layer_abstanh(W),
        invdl_layer_mprelu(W, 5), invdl_layer_mprelu_min(W, 6, 0.5f),
        invdl_layer_dense(W, 7), NULL,
        invdl_layer_dense_lu(W, 8), invdl_layer_dense_lu_min(W, 9, 0.5f), NULL,
        invdl_layer_coupling(W, 300, INVDL_COUPLING_ADDITIVE, 10), NULL,
    };
    l[5] = l[4] == NULL ? NULL : invdl_layer_inverse(l[4]);
    l[8] = l[6] == NULL ? NULL : invdl_layer_inverse(l[6]);
    l[10] = l[9] == NULL ? NULL : invdl_layer_inverse(l[9]);
    invdl_status st = INVDL_OK;
    for (int i = 0; i < 11; i++) {
        if (l[i] == NULL)
            st = INVDL_ENOMEM;
        invdl_layer_free(l[i]);
    }
    return st;
}

static invdl_status scenario_inverse(fixture *f)
{
    invdl_model *inv = invdl_model_inverse(f->m);
    if (inv == NULL)
        return INVDL_ENOMEM;
    float back[S * W];
    fault_hold(1);
    assert_int_equal(invdl_model_predict(inv, S, f->y, back), INVDL_OK);
    assert_memory_equal(back, f->back, sizeof back);
    fault_hold(0);
    /* The inverse of the inverse computes the model again. */
    invdl_model *again = invdl_model_inverse(inv);
    invdl_model_free(inv);
    if (again == NULL)
        return INVDL_ENOMEM;
    float y[S * W];
    fault_hold(1);
    assert_int_equal(invdl_model_predict(again, S, f->x, y), INVDL_OK);
    assert_memory_equal(y, f->y, sizeof y);
    fault_hold(0);
    invdl_model_free(again);
    return INVDL_OK;
}

/* The output arrays hold a sentinel; on failure nothing may be written. */
static invdl_status check_output(invdl_status st, const float *out, size_t n, const float *want)
{
    if (st == INVDL_ENOMEM)
        assert_true(is_sentinel(out, n));
    else if (want != NULL)
        assert_memory_equal(out, want, n * sizeof *out);
    return st;
}

static invdl_status scenario_predict(fixture *f)
{
    float out[S * W];
    invdl_status st;
    fill_sentinel(out, S * W);
    st = check_output(invdl_model_predict(f->m, S, f->x, out), out, S * W, f->y);
    if (st != INVDL_OK)
        return st;
    fill_sentinel(out, S * W);
    st = check_output(invdl_model_predict(f->inv, S, f->y, out), out, S * W, f->back);
    if (st != INVDL_OK)
        return st;
    fill_sentinel(out, S * W);
    st = check_output(invdl_model_predict_inverse(f->m, S, f->y, out), out, S * W, f->back);
    if (st != INVDL_OK)
        return st;
    /* In place: on failure the input is left as it was. */
    memcpy(out, f->x, sizeof out);
    st = invdl_model_predict(f->m, S, out, out);
    assert_memory_equal(out, st == INVDL_OK ? f->y : f->x, sizeof out);
    if (st != INVDL_OK)
        return st;
    fill_sentinel(out, S * W);
    return check_output(invdl_layer_apply(invdl_model_layer(f->m, 0), S, f->x, out), out,
                        S * W, NULL);
}

static invdl_status scenario_log_det(fixture *f)
{
    float a[S], b[S];
    invdl_status st;
    fill_sentinel(a, S);
    st = check_output(invdl_model_log_det(f->m, S, f->x, a), a, S, NULL);
    if (st != INVDL_OK)
        return st;
    fill_sentinel(b, S);
    st = check_output(invdl_model_log_det(f->inv, S, f->y, b), b, S, NULL);
    if (st != INVDL_OK)
        return st;
    for (int l = 0; l < 6; l++) {
        fill_sentinel(b, S);
        st = check_output(invdl_layer_log_det(invdl_model_layer(f->inv, (size_t)l), S, f->y, b),
                          b, S, NULL);
        if (st != INVDL_OK)
            return st;
    }
    return INVDL_OK;
}

/* log_prob of the model and of its inverse model: outputs untouched on
 * failure, the same values as without failures otherwise. */
static invdl_status scenario_log_prob(fixture *f)
{
    float a[S], b[S], want[S];
    fault_hold(1);
    assert_int_equal(invdl_model_log_prob(f->m, S, f->x, want), INVDL_OK);
    fault_hold(0);
    fill_sentinel(a, S);
    invdl_status st = check_output(invdl_model_log_prob(f->m, S, f->x, a), a, S, want);
    if (st != INVDL_OK)
        return st;
    fill_sentinel(b, S);
    return check_output(invdl_model_log_prob(f->inv, S, f->y, b), b, S, NULL);
}

/* Sampling from the model (whose signed sin bounds the image, so some
 * draws are redrawn) and from its inverse model. */
static invdl_status scenario_sample(fixture *f)
{
    float a[S * W], want[S * W];
    fault_hold(1);
    invdl_status expect = invdl_model_sample(f->m, S, 5, want);
    fault_hold(0);
    assert_true(expect == INVDL_OK || expect == INVDL_EDOMAIN);
    fill_sentinel(a, S * W);
    invdl_status st = invdl_model_sample(f->m, S, 5, a);
    if (st == INVDL_ENOMEM) {
        assert_true(is_sentinel(a, S * W));
        return st;
    }
    assert_int_equal(st, expect);
    assert_memory_equal(a, want, sizeof a);
    fill_sentinel(a, S * W);
    st = invdl_model_sample(f->inv, S, 6, a);
    if (st == INVDL_ENOMEM)
        assert_true(is_sentinel(a, S * W));
    return st == INVDL_EDOMAIN ? INVDL_OK : st;
}

static invdl_status scenario_roundtrip(fixture *f)
{
    invdl_roundtrip r;
    invdl_status st = invdl_model_roundtrip(f->m, S, f->x, NULL, &r);
    if (st == INVDL_OK)
        assert_true(r.backward_error < 1e-5f);
    return st;
}

static invdl_status scenario_params(fixture *f)
{
    float *p = malloc(f->np * sizeof *p);
    assert_non_null(p);
    invdl_status st = invdl_model_get_params(f->inv, f->np, p);
    if (st == INVDL_OK) {
        /* A changed value: set as a whole or not at all. */
        float *q = malloc(f->np * sizeof *q);
        memcpy(q, f->params, f->np * sizeof *q);
        q[0] += 0.25f;
        st = invdl_model_set_params(f->m, f->np, q);
        free(q);
    }
    free(p);
    return st;
}

static invdl_status run_gradient(fixture *f, int memory_saving, invdl_loss loss_kind)
{
    invdl_fit_options o = invdl_fit_defaults();
    o.loss = loss_kind;
    o.memory_saving = memory_saving;
    o.max_gain = 2.0f; /* stores some inputs */
    float loss = -1.0f, *g = malloc(f->np * sizeof *g), dx[S * W];
    fill_sentinel(dx, S * W);
    invdl_status st = invdl_model_gradient(f->m, S, f->x, f->t, &o, &loss, g, dx);
    if (st == INVDL_ENOMEM) {
        assert_true(loss == -1.0f);
        assert_true(is_sentinel(dx, S * W));
    }
    free(g);
    return st;
}

static invdl_status scenario_gradient(fixture *f)
{
    invdl_status st = INVDL_OK;
    for (int k = 0; k < 4 && st == INVDL_OK; k++)
        st = run_gradient(f, k & 1, k < 2 ? INVDL_LOSS_MSE : INVDL_LOSS_NLL);
    return st;
}

/* Trains a copy of the fixture's model (through its inverse model, so the
 * linked blocks are what changes) and checks the result against a run
 * without failures. */
static invdl_status run_fit(fixture *f, invdl_fit_options *o)
{
    float loss = -1.0f;
    /* The inverses of ssin and abstanh are steep near 0: clip. */
    o->global_clipnorm = 1.0f;
    invdl_status st = invdl_model_fit(f->inv, S, f->y, f->x, o, &loss);
    if (st == INVDL_ENOMEM)
        assert_true(loss == -1.0f);
    return st;
}

static invdl_status scenario_fit_stored(fixture *f)
{
    invdl_fit_options o = invdl_fit_defaults();
    o.batch_size = 4;
    o.epochs = 2;
    o.momentum = 0.5f;
    return run_fit(f, &o);
}

static invdl_status scenario_fit_saving(fixture *f)
{
    invdl_fit_options o = invdl_fit_defaults();
    invdl_fit_report r;
    o.batch_size = 4;
    o.epochs = 2;
    o.memory_saving = 1;
    o.max_gain = 1.5f; /* grows the pool of stored inputs during training */
    o.report = &r;
    invdl_status st = run_fit(f, &o);
    if (st == INVDL_OK)
        assert_true(r.stored_inputs > 0);
    return st;
}

/* Validation data, early stopping keeping the best epoch's parameters
 * and reduce-on-plateau, then the exponential schedule: the buffers of
 * the kept parameters and the validation passes.  A failure in a later
 * epoch leaves the model as it was before the call, not at the best
 * epoch. */
static invdl_status scenario_fit_control(fixture *f)
{
    invdl_fit_options o = invdl_fit_defaults();
    o.batch_size = 4;
    o.epochs = 3;
    o.validation_n = S - 2;
    o.validation_x = f->y + W;
    o.validation_y = f->x + W;
    o.early_stopping = 1;
    o.restore_best_weights = 1;
    o.early_stopping_patience = 5;
    o.reduce_lr_on_plateau = 1;
    o.plateau_patience = 0;
    invdl_status st = run_fit(f, &o);
    if (st != INVDL_OK)
        return st;
    fault_hold(1);
    fixture_restore(f);
    fault_hold(0);
    o.reduce_lr_on_plateau = 0;
    o.schedule = INVDL_SCHEDULE_EXPONENTIAL;
    o.decay_steps = 2;
    o.decay_rate = 0.5f;
    o.memory_saving = 1;
    return run_fit(f, &o);
}

/* The amplification report of the model and of its inverse model: on
 * failure the caller's arrays are untouched. */
static invdl_status scenario_amplification(fixture *f)
{
    enum { DEPTH = 8 };
    assert_int_equal(invdl_model_depth(f->m), DEPTH);
    invdl_status st = INVDL_OK;
    for (int k = 0; k < 2 && st == INVDL_OK; k++) {
        double lg[DEPTH], sg[S], total = -1.0;
        for (size_t i = 0; i < DEPTH; i++)
            lg[i] = -1.0;
        for (size_t i = 0; i < S; i++)
            sg[i] = -1.0;
        st = invdl_model_amplification(k ? f->inv : f->m, S, k ? f->y : f->x, lg, sg, &total);
        if (st == INVDL_ENOMEM) {
            assert_true(total == -1.0);
            for (size_t i = 0; i < DEPTH; i++)
                assert_true(lg[i] == -1.0);
            for (size_t i = 0; i < S; i++)
                assert_true(sg[i] == -1.0);
        } else {
            assert_true(st == INVDL_OK && total >= 1.0);
        }
    }
    return st;
}

/* Adam on the negative log-likelihood (of the inverse model: its inputs
 * y lie in every layer's domain), stored and memory saving: the Adam
 * moments and the log-det work arrays are allocated too. */
static invdl_status scenario_fit_nll_adam(fixture *f)
{
    invdl_status st = INVDL_OK;
    for (int saving = 0; saving <= 1 && st == INVDL_OK; saving++) {
        invdl_fit_options o = invdl_fit_defaults_adam();
        o.loss = INVDL_LOSS_NLL;
        o.batch_size = 4;
        o.epochs = 2;
        o.memory_saving = saving;
        o.max_gain = 1.5f;
        o.global_clipnorm = 1.0f;
        float loss = -1.0f;
        st = invdl_model_fit(f->inv, S, f->y, NULL, &o, &loss);
        if (st == INVDL_ENOMEM)
            assert_true(loss == -1.0f);
        else
            assert_int_equal(st, INVDL_OK);
        if (st == INVDL_OK && saving == 0) {
            fault_hold(1);
            fixture_restore(f);
            fault_hold(0);
        }
    }
    return st;
}

/* Memory-saving training whose rebuilding fails on some batches, which
 * are then redone with stored activations: the trainer allocates those
 * only then, after steps were taken, so an allocation failure there must
 * undo the steps.  abstanh then ssin, whose inputs sit at the edge of its
 * domain (x = XMAX gives y = YMAX), then a dense layer: rebuilding the
 * ssin layer's output through the dense inverse rounds some components
 * just above YMAX, where the ssin inverse has no value. */
static invdl_status scenario_fit_fallback(fixture *f)
{
    (void)f;
    enum { N = 12 };
    fault_hold(1);
    invdl_model *m = invdl_model_create(W);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 21)), INVDL_OK);
    float x[N * W], t[N * W], edge[N * W];
    fill(x, N * W, -0.5, 0.5, 22);
    fill(t, N * W, -0.5, 0.5, 23);
    for (size_t i = 0; i < N * W; i++)
        edge[i] = i % 3 == 0 ? -INVDL_SSIN_XMAX : INVDL_SSIN_XMAX;
    assert_int_equal(invdl_abstanh_inverse(N * W, edge, edge), INVDL_OK);
    memcpy(x + 4 * W, edge, 8 * W * sizeof *x); /* samples 4..11 at the edge */
    size_t np = invdl_model_param_count(m);
    float before[W * W + W], after[W * W + W];
    assert_int_equal(invdl_model_get_params(m, np, before), INVDL_OK);
    fault_hold(0);

    invdl_fit_options o = invdl_fit_defaults();
    invdl_fit_report r;
    o.batch_size = 1;
    o.epochs = 2;
    o.seed = 3;
    o.memory_saving = 1;
    o.max_gain = (float)INFINITY;
    o.report = &r;
    invdl_status st = invdl_model_fit(m, N, x, t, &o, NULL);

    fault_hold(1);
    assert_int_equal(invdl_model_get_params(m, np, after), INVDL_OK);
    if (st == INVDL_OK)
        assert_true(r.fallbacks > 0 && r.steps == 2 * N);
    else
        assert_memory_equal(after, before, np * sizeof *after);
    invdl_model_free(m);
    fault_hold(0);
    return st;
}

static invdl_status scenario_save(fixture *f)
{
    /* The inverse model over the file: on failure the old file stays. */
    return invdl_model_save(f->inv, f->path);
}

static invdl_status scenario_save_memory(fixture *f)
{
    size_t size = 0;
    unsigned char buf[4096];
    assert_true(f->saved_size <= sizeof buf);
    memset(buf, 0xa5, sizeof buf);
    invdl_status st = invdl_model_save_memory(f->m, buf, sizeof buf, &size);
    if (st == INVDL_OK) {
        assert_int_equal(size, f->saved_size);
        assert_memory_equal(buf, f->saved, size);
    } else {
        for (size_t i = 0; i < sizeof buf; i++)
            assert_int_equal(buf[i], 0xa5);
    }
    return st;
}

static invdl_status check_loaded(fixture *f, invdl_model *m, invdl_status st)
{
    if (m == NULL) {
        assert_int_not_equal(st, INVDL_OK);
        return st;
    }
    assert_int_equal(st, INVDL_OK);
    float y[S * W];
    fault_hold(1);
    assert_int_equal(invdl_model_predict(m, S, f->x, y), INVDL_OK);
    assert_memory_equal(y, f->y, sizeof y);
    fault_hold(0);
    invdl_model_free(m);
    return INVDL_OK;
}

static invdl_status scenario_load(fixture *f)
{
    invdl_status st = INVDL_EINVAL;
    invdl_model *m = invdl_model_load(f->path, &st);
    return check_loaded(f, m, st);
}

static invdl_status scenario_load_memory(fixture *f)
{
    invdl_status st = INVDL_EINVAL;
    invdl_model *m = invdl_model_load_memory(f->saved, f->saved_size, &st);
    return check_loaded(f, m, st);
}

/* ---- the driver ---------------------------------------------------------- */

typedef invdl_status (*scenario)(fixture *f);

/* Runs `run` failing each allocation in turn; returns how many it made. */
static size_t fail_every_allocation(scenario run)
{
    fixture f;
    fixture_setup(&f);
    long live = fault_live();
    fault_off();
    assert_int_equal(run(&f), INVDL_OK);
    size_t total = fault_requests();
    assert_int_equal(fault_live(), live);
    fixture_restore(&f);
    fixture_check(&f);
    fixture_teardown(&f);
    assert_true(total > 0);

    for (int sticky = 0; sticky <= 1; sticky++) {
        for (size_t k = 1; k <= total; k++) {
            fixture_setup(&f);
            live = fault_live();
            fault_fail_nth(k, sticky);
            invdl_status st = run(&f);
            int triggered = fault_triggered();
            fault_off();
            if (!triggered) {
                /* The failure came after the last request: this path made
                 * fewer allocations (a failure changes nothing later). */
                assert_int_equal(st, INVDL_OK);
            } else if (st != INVDL_ENOMEM) {
                print_error("allocation %zu of %zu failed (sticky %d): status %d\n", k, total,
                            sticky, (int)st);
                fail();
            }
            assert_int_equal(fault_live(), live);
            if (st == INVDL_OK)
                fixture_restore(&f);
            fixture_check(&f);
            fixture_teardown(&f);
        }
    }
    return total;
}

#define SCENARIO_TEST(name)                                      \
    static void test_##name(void **state)                        \
    {                                                            \
        (void)state;                                             \
        size_t n = fail_every_allocation(scenario_##name);       \
        print_message("%-12s %zu allocations, each failed\n", #name, n); \
    }

SCENARIO_TEST(build)
SCENARIO_TEST(layers)
SCENARIO_TEST(inverse)
SCENARIO_TEST(predict)
SCENARIO_TEST(log_det)
SCENARIO_TEST(log_prob)
SCENARIO_TEST(sample)
SCENARIO_TEST(roundtrip)
SCENARIO_TEST(params)
SCENARIO_TEST(gradient)
SCENARIO_TEST(fit_stored)
SCENARIO_TEST(fit_saving)
SCENARIO_TEST(fit_nll_adam)
SCENARIO_TEST(fit_fallback)
SCENARIO_TEST(fit_control)
SCENARIO_TEST(amplification)
SCENARIO_TEST(save)
SCENARIO_TEST(save_memory)
SCENARIO_TEST(load)
SCENARIO_TEST(load_memory)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),       cmocka_unit_test(test_layers),
        cmocka_unit_test(test_inverse),     cmocka_unit_test(test_predict),
        cmocka_unit_test(test_log_det),     cmocka_unit_test(test_log_prob),
        cmocka_unit_test(test_sample),      cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_params),      cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_fit_stored),  cmocka_unit_test(test_fit_saving),
        cmocka_unit_test(test_fit_nll_adam), cmocka_unit_test(test_fit_fallback),
        cmocka_unit_test(test_fit_control), cmocka_unit_test(test_amplification),
        cmocka_unit_test(test_save),
        cmocka_unit_test(test_save_memory),
        cmocka_unit_test(test_load),        cmocka_unit_test(test_load_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
