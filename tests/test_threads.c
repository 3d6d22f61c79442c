/*
 * test_threads.c - what the header says may run at once, run at once.
 *
 * Several threads share one model, its linked inverse model and one set
 * of input arrays, and call everything documented as reading only:
 * the kernels, predict (forward, inverse model, predict_inverse), log-det,
 * log-density, sampling, round trip, gradient, get_params, save to memory,
 * a dense_lu layer's weights and the amplification report, on a model
 * holding every kind (a coupling layer too), while
 * other threads
 * make and free inverses of the shared layers and models (which takes and
 * drops references to the shared parameter blocks).  Every result must be
 * bit for bit what one thread computed alone.  Also: a model freed while
 * another thread uses the inverse model sharing its blocks, and two
 * threads saving to one path.  CI runs this test under
 * ThreadSanitizer, which reports any data race among those calls.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "invdl.h"
#include "reference.h"

enum { W = 6, S = 40, T = 4, REPS = 6, NK = S * W };

typedef struct expected {
    float kernels[6][NK];
    invdl_status kernel_status[6];
    float y[NK], back[NK], log_det[S], inv_log_det[S], grad_x[NK];
    float log_prob[S], samples[NK];
    invdl_status sample_status;
    float weights[W * W + W]; /* the dense_lu layer's W and b */
    double gains[2][9], sample_gains[2][S], total[2]; /* amplification: model, inverse */
    invdl_status amp_status[2];
    float *params, *grad;
    invdl_roundtrip roundtrip;
    float loss;
    unsigned char *bytes;
    size_t size;
} expected;

typedef struct shared {
    invdl_model *m, *inv; /* shared by every thread, never changed */
    const float *x, *kx, *t;
    size_t np;
    const expected *want;
} shared;

static const float alpha[W] = {0.25f, -0.5f, 0.0f, 1.5f, -0.0078125f, 0.3f};

static invdl_status run_kernel(int k, const float *in, float *out)
{
    switch (k) {
    case 0: return invdl_ssin_forward(NK, in, out);
    case 1: return invdl_ssin_inverse(NK, in, out);
    case 2: return invdl_abstanh_forward(NK, in, out);
    case 3: return invdl_abstanh_inverse(NK, in, out);
    case 4: return invdl_mprelu_forward(S, W, alpha, 0.01f, in, out);
    default: return invdl_mprelu_inverse(S, W, alpha, 0.01f, in, out);
    }
}

/* Everything that reads the model, into e (allocated by the caller). */
static void compute(const shared *sh, expected *e)
{
    for (int k = 0; k < 6; k++)
        e->kernel_status[k] = run_kernel(k, sh->kx, e->kernels[k]);
    assert_int_equal(invdl_model_predict(sh->m, S, sh->x, e->y), INVDL_OK);
    assert_int_equal(invdl_model_predict(sh->inv, S, e->y, e->back), INVDL_OK);
    float back2[NK];
    assert_int_equal(invdl_model_predict_inverse(sh->m, S, e->y, back2), INVDL_OK);
    assert_memory_equal(back2, e->back, sizeof back2);
    assert_int_equal(invdl_model_log_det(sh->m, S, sh->x, e->log_det), INVDL_OK);
    assert_int_equal(invdl_model_log_det(sh->inv, S, e->y, e->inv_log_det), INVDL_OK);
    assert_int_equal(invdl_model_log_prob(sh->m, S, sh->x, e->log_prob), INVDL_OK);
    /* The model's signed sin bounds its image: sampling draws again. */
    e->sample_status = invdl_model_sample(sh->m, S, 3, e->samples);
    assert_true(e->sample_status == INVDL_OK || e->sample_status == INVDL_EDOMAIN);
    assert_int_equal(invdl_model_roundtrip(sh->m, S, sh->x, NULL, &e->roundtrip), INVDL_OK);
    assert_int_equal(invdl_model_gradient(sh->m, S, sh->x, sh->t, NULL, &e->loss, e->grad,
                                          e->grad_x),
                     INVDL_OK);
    assert_int_equal(invdl_model_get_params(sh->inv, sh->np, e->params), INVDL_OK);
    assert_int_equal(invdl_model_save_memory(sh->m, e->bytes, e->size, &e->size), INVDL_OK);
    assert_int_equal(invdl_layer_weights(invdl_model_layer(sh->m, 3), e->weights,
                                         e->weights + W * W),
                     INVDL_OK);
    assert_int_equal(invdl_model_depth(sh->m), 9);
    for (int k = 0; k < 2; k++) {
        e->amp_status[k] = invdl_model_amplification(k ? sh->inv : sh->m, S, k ? e->y : sh->x,
                                                      e->gains[k], e->sample_gains[k],
                                                      &e->total[k]);
        assert_true(e->amp_status[k] == INVDL_OK || e->amp_status[k] == INVDL_EDOMAIN);
    }
}

static void expected_alloc(expected *e, size_t np, size_t size)
{
    memset(e, 0, sizeof *e);
    e->params = malloc(np * sizeof *e->params);
    e->grad = malloc(np * sizeof *e->grad);
    e->bytes = malloc(size);
    e->size = size;
    assert_true(e->params != NULL && e->grad != NULL && e->bytes != NULL);
}

static void expected_free(expected *e)
{
    free(e->params);
    free(e->grad);
    free(e->bytes);
}

static void assert_same(const expected *a, const expected *b, size_t np)
{
    assert_memory_equal(a->kernels, b->kernels, sizeof a->kernels);
    assert_memory_equal(a->kernel_status, b->kernel_status, sizeof a->kernel_status);
    assert_memory_equal(a->y, b->y, sizeof a->y);
    assert_memory_equal(a->back, b->back, sizeof a->back);
    assert_memory_equal(a->log_det, b->log_det, sizeof a->log_det);
    assert_memory_equal(a->inv_log_det, b->inv_log_det, sizeof a->inv_log_det);
    assert_memory_equal(a->log_prob, b->log_prob, sizeof a->log_prob);
    assert_memory_equal(a->samples, b->samples, sizeof a->samples);
    assert_int_equal(a->sample_status, b->sample_status);
    assert_memory_equal(a->grad_x, b->grad_x, sizeof a->grad_x);
    assert_memory_equal(a->params, b->params, np * sizeof *a->params);
    assert_memory_equal(a->grad, b->grad, np * sizeof *a->grad);
    assert_memory_equal(&a->roundtrip, &b->roundtrip, sizeof a->roundtrip);
    assert_true(a->loss == b->loss);
    assert_int_equal(a->size, b->size);
    assert_memory_equal(a->bytes, b->bytes, a->size);
    assert_memory_equal(a->weights, b->weights, sizeof a->weights);
    assert_memory_equal(a->gains, b->gains, sizeof a->gains);
    assert_memory_equal(a->sample_gains, b->sample_gains, sizeof a->sample_gains);
    assert_memory_equal(a->total, b->total, sizeof a->total);
    assert_memory_equal(a->amp_status, b->amp_status, sizeof a->amp_status);
}

/* Reader threads: compute everything, REPS times, compare each time.
 * cmocka's assertions are not for other threads: failures are counted. */
typedef struct reader_job {
    const shared *sh;
    int failures;
} reader_job;

static void *reader(void *arg)
{
    reader_job *j = arg;
    const shared *sh = j->sh;
    const expected *w = sh->want;
    expected e;
    memset(&e, 0, sizeof e);
    e.params = malloc(sh->np * sizeof *e.params);
    e.grad = malloc(sh->np * sizeof *e.grad);
    e.bytes = malloc(w->size);
    for (int rep = 0; rep < REPS; rep++) {
        int bad = 0;
        float back2[NK];
        for (int k = 0; k < 6; k++)
            bad |= run_kernel(k, sh->kx, e.kernels[k]) != w->kernel_status[k];
        bad |= memcmp(e.kernels, w->kernels, sizeof e.kernels) != 0;
        bad |= invdl_model_predict(sh->m, S, sh->x, e.y) != INVDL_OK ||
               memcmp(e.y, w->y, sizeof e.y) != 0;
        bad |= invdl_model_predict(sh->inv, S, w->y, e.back) != INVDL_OK ||
               memcmp(e.back, w->back, sizeof e.back) != 0;
        bad |= invdl_model_predict_inverse(sh->m, S, w->y, back2) != INVDL_OK ||
               memcmp(back2, w->back, sizeof back2) != 0;
        bad |= invdl_model_log_det(sh->m, S, sh->x, e.log_det) != INVDL_OK ||
               memcmp(e.log_det, w->log_det, sizeof e.log_det) != 0;
        bad |= invdl_model_log_det(sh->inv, S, w->y, e.inv_log_det) != INVDL_OK ||
               memcmp(e.inv_log_det, w->inv_log_det, sizeof e.inv_log_det) != 0;
        bad |= invdl_model_log_prob(sh->m, S, sh->x, e.log_prob) != INVDL_OK ||
               memcmp(e.log_prob, w->log_prob, sizeof e.log_prob) != 0;
        bad |= invdl_model_sample(sh->m, S, 3, e.samples) != w->sample_status ||
               memcmp(e.samples, w->samples, sizeof e.samples) != 0;
        bad |= invdl_model_roundtrip(sh->m, S, sh->x, NULL, &e.roundtrip) != INVDL_OK ||
               memcmp(&e.roundtrip, &w->roundtrip, sizeof e.roundtrip) != 0;
        bad |= invdl_model_gradient(sh->m, S, sh->x, sh->t, NULL, &e.loss, e.grad, e.grad_x) !=
                   INVDL_OK ||
               e.loss != w->loss || memcmp(e.grad, w->grad, sh->np * sizeof *e.grad) != 0 ||
               memcmp(e.grad_x, w->grad_x, sizeof e.grad_x) != 0;
        bad |= invdl_model_get_params(sh->inv, sh->np, e.params) != INVDL_OK ||
               memcmp(e.params, w->params, sh->np * sizeof *e.params) != 0;
        size_t size = 0;
        bad |= invdl_model_save_memory(sh->m, e.bytes, w->size, &size) != INVDL_OK ||
               size != w->size || memcmp(e.bytes, w->bytes, size) != 0;
        bad |= invdl_layer_weights(invdl_model_layer(sh->m, 3), e.weights, e.weights + W * W) !=
                   INVDL_OK ||
               memcmp(e.weights, w->weights, sizeof e.weights) != 0;
        for (int k = 0; k < 2; k++)
            bad |= invdl_model_amplification(k ? sh->inv : sh->m, S, k ? w->y : sh->x,
                                             e.gains[k], e.sample_gains[k],
                                             &e.total[k]) != w->amp_status[k] ||
                   memcmp(e.gains[k], w->gains[k], sizeof e.gains[k]) != 0 ||
                   memcmp(e.sample_gains[k], w->sample_gains[k], sizeof e.sample_gains[k]) !=
                       0 ||
                   memcmp(&e.total[k], &w->total[k], sizeof e.total[k]) != 0;
        j->failures += bad;
    }
    free(e.params);
    free(e.grad);
    free(e.bytes);
    return NULL;
}

/* Linker threads: make and free inverses of the shared model and its
 * layers, and use them, while the readers run. */
static void *linker(void *arg)
{
    reader_job *j = arg;
    const shared *sh = j->sh;
    float out[NK];
    for (int rep = 0; rep < REPS; rep++) {
        invdl_model *inv = invdl_model_inverse(sh->m);
        invdl_model *again = invdl_model_inverse(sh->inv);
        j->failures += inv == NULL || again == NULL;
        if (inv != NULL)
            j->failures += invdl_model_predict(inv, S, sh->want->y, out) != INVDL_OK ||
                           memcmp(out, sh->want->back, sizeof out) != 0;
        if (again != NULL)
            j->failures += invdl_model_predict(again, S, sh->x, out) != INVDL_OK ||
                           memcmp(out, sh->want->y, sizeof out) != 0;
        invdl_model_free(again);
        invdl_model_free(inv);
        for (size_t l = 0; l < invdl_model_depth(sh->m); l++) {
            invdl_layer *back = invdl_layer_inverse(invdl_model_layer(sh->m, l));
            j->failures += back == NULL || invdl_layer_apply(back, S, sh->x, out) == INVDL_EINVAL;
            invdl_layer_free(back);
        }
    }
    return NULL;
}

static void fill(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (double)(test_rand(&s) >> 11) * 0x1p-53);
}

/* A coupling layer away from its identity start (W2 and b2 nonzero). */
static invdl_layer *moved_coupling(void)
{
    invdl_layer *l = invdl_layer_coupling(W, 9, 0, 14);
    assert_non_null(l);
    size_t np = invdl_layer_param_count(l);
    float *p = malloc(np * sizeof *p);
    assert_non_null(p);
    assert_int_equal(invdl_layer_get_params(l, np, p), INVDL_OK);
    uint64_t s = 15;
    for (size_t i = 9 * (W / 2 + W % 2); i < np; i++)
        p[i] = (float)(((double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5) * 0.8);
    assert_int_equal(invdl_layer_set_params(l, np, p), INVDL_OK);
    free(p);
    return l;
}

static void test_shared_model(void **state)
{
    (void)state;
    static float x[NK], kx[NK], t[NK];
    fill(x, NK, -1, 1, 1);
    fill(t, NK, -1, 1, 2);
    /* Kernel inputs of every kind: in and out of each domain, special. */
    uint64_t s = 3;
    for (size_t i = 0; i < NK; i++)
        kx[i] = random_in_binade(&s, (int)(test_rand(&s) % 12) - 8) *
                (test_rand(&s) & 1 ? -1.0f : 1.0f);
    kx[0] = 0.0f, kx[1] = -0.0f, kx[2] = INVDL_SSIN_XMAX, kx[3] = INVDL_SSIN_YMAX;

    invdl_model *m = invdl_model_create(W);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 4)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(W, 5)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense_lu(W, 13)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 6)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, moved_coupling()), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(invdl_model_layer(m, 1))), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(invdl_model_layer(m, 3))), INVDL_OK);
    invdl_model *inv = invdl_model_inverse(m);
    size_t np = invdl_model_param_count(m), size;
    assert_int_equal(invdl_model_save_memory(m, NULL, 0, &size), INVDL_OK);

    expected want, again;
    expected_alloc(&want, np, size);
    expected_alloc(&again, np, size);
    shared sh = {m, inv, x, kx, t, np, &want};
    compute(&sh, &want);
    compute(&sh, &again);
    assert_same(&want, &again, np);

    pthread_t th[T];
    reader_job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (reader_job){&sh, 0};
        assert_int_equal(pthread_create(&th[i], NULL, i == T - 1 ? linker : reader, &jobs[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }
    /* The shared objects are as they were. */
    compute(&sh, &again);
    assert_same(&want, &again, np);
    expected_free(&want);
    expected_free(&again);
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* A model freed in one thread while another still uses the inverse model
 * that shares its blocks: the blocks live on until the last user goes. */
typedef struct free_job {
    invdl_model *model;
    const float *in;
    const float *want;
    int failures;
} free_job;

static void *free_model(void *arg)
{
    invdl_model_free(((free_job *)arg)->model);
    return NULL;
}

static void *predict_then_free(void *arg)
{
    free_job *j = arg;
    float out[NK];
    for (int rep = 0; rep < REPS; rep++)
        j->failures += invdl_model_predict(j->model, S, j->in, out) != INVDL_OK ||
                       memcmp(out, j->want, sizeof out) != 0;
    invdl_model_free(j->model);
    return NULL;
}

static void test_free_while_linked_in_use(void **state)
{
    (void)state;
    static float x[NK], y[NK];
    fill(x, NK, -1, 1, 7);
    for (int round = 0; round < 8; round++) {
        invdl_model *m = invdl_model_create(W);
        assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 8)), INVDL_OK);
        assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(W, 9)), INVDL_OK);
        invdl_model *inv = invdl_model_inverse(m);
        assert_int_equal(invdl_model_predict(inv, S, x, y), INVDL_OK);
        free_job a = {m, NULL, NULL, 0}, b = {inv, x, y, 0};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&tb, NULL, predict_then_free, &b), 0);
        assert_int_equal(pthread_create(&ta, NULL, free_model, &a), 0);
        assert_int_equal(pthread_join(ta, NULL), 0);
        assert_int_equal(pthread_join(tb, NULL), 0);
        assert_int_equal(b.failures, 0);
    }
}

/* Two threads saving different models to one path: the file always
 * holds one whole model, and no temporary file is left. */
typedef struct save_job {
    const invdl_model *model;
    const char *path;
    int failures;
} save_job;

static void *save_repeatedly(void *arg)
{
    save_job *j = arg;
    for (int rep = 0; rep < 20; rep++)
        j->failures += invdl_model_save(j->model, j->path) != INVDL_OK;
    return NULL;
}

static void test_concurrent_saves(void **state)
{
    (void)state;
    char dir[] = "/tmp/invdl-threads-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.invdl", dir);
    invdl_model *a = invdl_model_create(W), *b = invdl_model_create(W);
    assert_int_equal(invdl_model_add(a, invdl_layer_dense(W, 10)), INVDL_OK);
    assert_int_equal(invdl_model_add(b, invdl_layer_mprelu(W, 11)), INVDL_OK);
    assert_int_equal(invdl_model_add(b, invdl_layer_dense(W, 12)), INVDL_OK);
    save_job ja = {a, path, 0}, jb = {b, path, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, save_repeatedly, &ja), 0);
    assert_int_equal(pthread_create(&tb, NULL, save_repeatedly, &jb), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_int_equal(ja.failures + jb.failures, 0);
    invdl_status st;
    invdl_model *back = invdl_model_load(path, &st);
    assert_int_equal(st, INVDL_OK);
    size_t depth = invdl_model_depth(back);
    assert_true(depth == 1 || depth == 2);
    invdl_model_free(back);
    /* Only the file itself is left: unlinking it empties the directory. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    invdl_model_free(a);
    invdl_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_model),
        cmocka_unit_test(test_free_while_linked_in_use),
        cmocka_unit_test(test_concurrent_saves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
