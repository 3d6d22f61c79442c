/*
 * measure_models.c - the figures docs/ quotes, measured:
 *   1. round trips of shallow and deep models (forward round-trip error
 *      and the inverse's backward error, SPEC section 2);
 *   2. activation memory of stored and memory-saving backprop at depth 8
 *      and 64;
 *   3. how far memory-saving gradients drift from stored ones with depth,
 *      without and with the safeguards;
 *   4. maximum likelihood with abs-tanh and PReLU flows: a known density
 *      from other starts than the unit test's, and flows on a ring.
 *
 *     ninja -C build tests/measure_models && build/tests/measure_models
 */
#include "invdl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { WIDTH = 8, BATCH = 32, SAMPLES = 256 };

static uint64_t rng_state = 12345;

static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

static void fill(float *v, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * uniform());
}

/* blocks of dense + mprelu, an abs-tanh after every `tanh_every` blocks
 * (0: none). */
static invdl_model *build(size_t blocks, size_t tanh_every, uint64_t seed)
{
    invdl_model *m = invdl_model_create(WIDTH);
    if (m == NULL)
        return NULL;
    for (size_t b = 0; b < blocks; b++) {
        if (invdl_model_add(m, invdl_layer_dense(WIDTH, seed + 2 * b)) != INVDL_OK ||
            invdl_model_add(m, invdl_layer_mprelu(WIDTH, seed + 2 * b + 1)) != INVDL_OK)
            goto fail;
        if (tanh_every > 0 && (b + 1) % tanh_every == 0 &&
            invdl_model_add(m, invdl_layer_abstanh(WIDTH)) != INVDL_OK)
            goto fail;
    }
    return m;
fail:
    invdl_model_free(m);
    return NULL;
}

static void sort(float *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            float t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static void round_trips(void)
{
    static float x[SAMPLES * WIDTH];
    fill(x, SAMPLES * WIDTH, -1.0, 1.0);
    printf("1. Round trips, width %d, %d samples uniform in [-1, 1], 20 seeds each\n", WIDTH,
           SAMPLES);
    printf("   %-34s %11s %11s %11s %11s\n", "model", "fwd median", "fwd worst", "bwd median",
           "bwd worst");
    static const struct { size_t blocks, tanh_every; const char *name; } cases[] = {
        {3, 0, "3 dense+mprelu blocks"},
        {3, 3, "3 blocks + 1 abs-tanh"},
        {12, 3, "12 blocks + 4 abs-tanh (SPEC 2)"},
        {24, 0, "24 dense+mprelu blocks"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float fwd[20], bwd[20];
        for (int s = 0; s < 20; s++) {
            invdl_model *m = build(cases[c].blocks, cases[c].tanh_every, 1000u * (uint64_t)s);
            invdl_roundtrip r;
            if (m == NULL || invdl_model_roundtrip(m, SAMPLES, x, NULL, &r) != INVDL_OK) {
                printf("   failed\n");
                invdl_model_free(m);
                return;
            }
            fwd[s] = r.forward_error;
            bwd[s] = r.backward_error;
            invdl_model_free(m);
        }
        sort(fwd, 20);
        sort(bwd, 20);
        printf("   %-34s %11.3g %11.3g %11.3g %11.3g\n", cases[c].name, (double)fwd[10],
               (double)fwd[19], (double)bwd[10], (double)bwd[19]);
    }
    printf("   (errors relative to max|x| and max|y|; float epsilon is %.3g)\n\n",
           (double)0x1p-23f);
}

static void memory(void)
{
    static float x[SAMPLES * WIDTH], y[SAMPLES * WIDTH];
    fill(x, SAMPLES * WIDTH, -1.0, 1.0);
    fill(y, SAMPLES * WIDTH, -1.0, 1.0);
    printf("2. Activation memory of one fit epoch, width %d, batch %d (bytes)\n", WIDTH, BATCH);
    printf("   %-8s %7s %10s %16s %16s %16s\n", "blocks", "layers", "stored",
           "saving (default)", "saving, no bound", "no bound, k = 8");
    static const size_t depths[] = {4, 32};
    for (size_t d = 0; d < 2; d++) {
        size_t bytes[4];
        for (int mode = 0; mode < 4; mode++) {
            invdl_model *m = build(depths[d], 0, 7);
            invdl_fit_report rep;
            invdl_fit_options o = invdl_fit_defaults();
            o.memory_saving = mode > 0;
            o.max_gain = mode >= 2 ? INFINITY : o.max_gain;
            o.checkpoint_every = mode == 3 ? 8 : 0;
            o.report = &rep;
            /* Learning rate 0: every batch sees the same model, and the
             * unbounded mode's drifting gradients cannot derail training. */
            o.learning_rate = 0.0f;
            invdl_status st = m == NULL ? INVDL_ENOMEM : invdl_model_fit(m, SAMPLES, x, y, &o, NULL);
            if (st != INVDL_OK) {
                printf("   failed: %s\n", invdl_strerror(st));
                invdl_model_free(m);
                return;
            }
            bytes[mode] = rep.activation_bytes;
            invdl_model_free(m);
        }
        printf("   %-8zu %7zu %10zu %16zu %16zu %16zu\n", depths[d], 2 * depths[d], bytes[0],
               bytes[1], bytes[2], bytes[3]);
    }
    printf("   (peak over the epoch's batches; one activation array is %d bytes)\n",
           BATCH * WIDTH * (int)sizeof(float));
    printf("\n");
}

/* The worst layer's max|a - b| / max|b| over its parameters (layers with
 * parameters only; no block is shared in these models). */
static double layer_gap(invdl_model *m, const float *a, const float *b)
{
    double worst = 0.0;
    size_t off = 0;
    for (size_t l = 0; l < invdl_model_depth(m); l++) {
        size_t c = invdl_layer_param_count(invdl_model_layer(m, l));
        double gap = 0.0, scale = 0.0;
        for (size_t i = off; i < off + c; i++) {
            double d = fabs((double)a[i] - (double)b[i]);
            gap = d > gap || d != d ? d : gap;
            scale = fabs((double)b[i]) > scale ? fabs((double)b[i]) : scale;
        }
        if (c > 0 && scale > 0.0)
            worst = gap / scale > worst || gap != gap ? gap / scale : worst;
        off += c;
    }
    return worst;
}

static void drift(size_t tanh_every)
{
    static float x[BATCH * WIDTH], y[BATCH * WIDTH];
    fill(x, BATCH * WIDTH, -1.0, 1.0);
    fill(y, BATCH * WIDTH, -1.0, 1.0);
    if (tanh_every)
        printf("   dense+mprelu blocks with an abs-tanh every %zu blocks\n", tanh_every);
    else
        printf("   dense+mprelu blocks\n");
    printf("   %-8s %8s %14s %14s %14s %12s\n", "blocks", "layers", "no safeguard",
           "k = 8", "max_gain 1e4", "(stored)");
    static const size_t depths[] = {1, 2, 4, 8, 16, 32, 64};
    /* Past 16 blocks the abs-tanh models square their activations down to
     * 0 (x -> x^2 near 0): every gradient vanishes and there is no drift
     * left to measure. */
    size_t ndepths = tanh_every ? 5 : sizeof depths / sizeof depths[0];
    for (size_t d = 0; d < ndepths; d++) {
        double worst[3] = {0, 0, 0};
        size_t stored_inputs = 0, layers = 0;
        for (int s = 0; s < 10; s++) {
            invdl_model *m = build(depths[d], tanh_every, 500u * (uint64_t)s + 3);
            if (m == NULL)
                return;
            layers = invdl_model_depth(m);
            size_t np = invdl_model_param_count(m);
            float *g0 = malloc(np * sizeof *g0), *g1 = malloc(np * sizeof *g1), loss;
            invdl_fit_options o = invdl_fit_defaults();
            if (g0 == NULL || g1 == NULL ||
                invdl_model_gradient(m, BATCH, x, y, &o, &loss, g0, NULL) != INVDL_OK) {
                printf("   failed\n");
                return;
            }
            for (int mode = 0; mode < 3; mode++) {
                invdl_fit_report rep;
                o.memory_saving = 1;
                o.checkpoint_every = mode == 1 ? 8 : 0;
                o.max_gain = mode == 2 ? 1e4f : INFINITY;
                o.report = &rep;
                if (invdl_model_gradient(m, BATCH, x, y, &o, &loss, g1, NULL) != INVDL_OK) {
                    printf("   failed\n");
                    return;
                }
                double e = layer_gap(m, g1, g0);
                worst[mode] = e > worst[mode] || e != e ? e : worst[mode];
                if (mode == 2)
                    stored_inputs += rep.stored_inputs;
            }
            free(g0);
            free(g1);
            invdl_model_free(m);
        }
        printf("   %-8zu %8zu %14.3g %14.3g %14.3g %9.1f/%zu\n", depths[d], layers, worst[0],
               worst[1], worst[2], (double)stored_inputs / 10.0, layers);
    }
    printf("   (last column: layer inputs max_gain 1e4 stored, mean per batch / layers)\n\n");
}

/* ---- 4. maximum likelihood ------------------------------------------- */

enum { FLOW_N = 4000 };

static double normal(void)
{
    return sqrt(-2.0 * log(1.0 - uniform())) * cos(6.283185307179586 * uniform());
}

static double held_out_nll(invdl_model *m, size_t n, const float *x)
{
    float *lp = malloc(n * sizeof *lp);
    double sum = 0.0;
    if (lp == NULL || invdl_model_log_prob(m, n, x, lp) != INVDL_OK) {
        free(lp);
        return (double)NAN;
    }
    for (size_t i = 0; i < n; i++)
        sum -= (double)lp[i];
    free(lp);
    return sum / (double)n;
}

/* dense(first), `blocks` times (kind, dense), width 2; kind 0 abs-tanh,
 * 1 mprelu. */
static invdl_model *flow(uint64_t first, uint64_t seed, size_t blocks, int kind)
{
    invdl_model *m = invdl_model_create(2);
    if (m == NULL || invdl_model_add(m, invdl_layer_dense(2, first)) != INVDL_OK)
        goto fail;
    for (size_t b = 0; b < blocks; b++) {
        invdl_layer *l = kind == 0 ? invdl_layer_abstanh(2) : invdl_layer_mprelu(2, seed + 2 * b);
        if (invdl_model_add(m, l) != INVDL_OK ||
            invdl_model_add(m, invdl_layer_dense(2, seed + 2 * b + 1)) != INVDL_OK)
            goto fail;
    }
    return m;
fail:
    invdl_model_free(m);
    return NULL;
}

/* Trains m by NLL with Adam for `epochs` and prints the held-out NLL, less
 * `truth` per dimension if truth is finite. */
static void nll_run(invdl_model *m, const float *train, const float *held, size_t batch,
                    float clip, size_t epochs, double truth)
{
    invdl_fit_options o = invdl_fit_defaults_adam();
    o.loss = INVDL_LOSS_NLL;
    o.batch_size = batch;
    o.global_clipnorm = clip;
    o.epochs = epochs;
    o.seed = 7;
    if (invdl_model_fit(m, FLOW_N, train, NULL, &o, NULL) != INVDL_OK) {
        printf(" %10s", "failed");
        return;
    }
    double nll = held_out_nll(m, FLOW_N, held);
    printf(" %10.4f", isfinite(truth) ? (nll - truth) / 2 : nll);
}

static void maximum_likelihood(void)
{
    static float z[2 * FLOW_N * 2], x[2 * FLOW_N * 2];
    printf("4. Maximum likelihood, width 2, %d samples to train on, %d held out, Adam\n"
           "   learning rate 0.001\n", FLOW_N, FLOW_N);

    /* The unit test's known density: T = dense (rows of the orthogonal
     * matrix of seed 11 scaled by 1.6 and 0.7), abs-tanh, dense. */
    invdl_model *truth = flow(11, 12, 1, 0);
    float p[6];
    const float p2[6] = {0.8f, -0.5f, 0.3f, 1.2f, 0.9f, -0.6f};
    if (truth == NULL || invdl_layer_get_params(invdl_model_layer(truth, 0), 6, p) != INVDL_OK)
        return;
    for (int j = 0; j < 2; j++) {
        p[j] *= 1.6f;
        p[2 + j] *= 0.7f;
    }
    if (invdl_layer_set_params(invdl_model_layer(truth, 0), 6, p) != INVDL_OK ||
        invdl_layer_set_params(invdl_model_layer(truth, 2), 6, p2) != INVDL_OK)
        return;
    for (size_t i = 0; i < 2 * FLOW_N * 2; i++)
        z[i] = (float)normal();
    if (invdl_model_predict_inverse(truth, 2 * FLOW_N, z, x) != INVDL_OK)
        return;
    double want = held_out_nll(truth, FLOW_N, x + 2 * FLOW_N);
    printf("   a. data from T = dense, abs-tanh, dense (tests/test_flow.c; true held-out NLL\n"
           "      %.4f): a fresh model of T's shape, held-out NLL above T's per dimension\n",
           want);
    static const size_t epochs[2] = {200, 1000};
    printf("      %-44s %10s %10s\n", "first dense layer", "200 ep.", "1000 ep.");
    for (int start = 0; start < 7; start++) {
        /* start 0: seeded like T's, its abs-tanh hyperplanes at T's. */
        uint64_t first = start == 0 ? 11 : (uint64_t)(100 + start);
        char label[64];
        snprintf(label, sizeof label, start == 0 ? "seed 11, T's hyperplanes (the unit test)"
                                                 : "seed %d, hyperplanes elsewhere",
                 100 + start);
        printf("      %-44s", label);
        for (int e = 0; e < 2; e++) {
            invdl_model *m = flow(first, 13, 1, 0);
            if (m == NULL)
                return;
            nll_run(m, x, x + 2 * FLOW_N, 64, 0.0f, epochs[e], want);
            invdl_model_free(m);
        }
        printf("\n");
        fflush(stdout);
    }
    invdl_model_free(truth);

    /* The flow example's ring. */
    for (size_t i = 0; i < 2 * FLOW_N; i++) {
        double t = 6.283185307179586 * uniform();
        x[2 * i] = (float)(1.5 * cos(t) + 0.1 * normal());
        x[2 * i + 1] = (float)(1.5 * sin(t) + 0.1 * normal());
    }
    printf("   b. a ring (examples/flow.c): held-out NLL after 200 epochs, batch 128, global\n"
           "      clip norm 5 unless said, 3 seeds\n");
    static const struct { const char *name; size_t blocks; int kind; float clip; } flows[] = {
        {"dense (a Gaussian)", 0, 0, 5.0f},
        {"dense + 4 x (abs-tanh, dense)", 4, 0, 5.0f},
        {"dense + 4 x (abs-tanh, dense), no clipping", 4, 0, 0.0f},
        {"dense + 4 x (mprelu, dense)", 4, 1, 5.0f},
        {"dense + 8 x (mprelu, dense)", 8, 1, 5.0f},
    };
    for (size_t f = 0; f < sizeof flows / sizeof flows[0]; f++) {
        printf("      %-44s", flows[f].name);
        for (uint64_t seed = 1; seed <= 3; seed++) {
            invdl_model *m = flow(seed, 10 * seed, flows[f].blocks, flows[f].kind);
            if (m == NULL)
                return;
            nll_run(m, x, x + 2 * FLOW_N, 128, flows[f].clip, 200, (double)NAN);
            invdl_model_free(m);
        }
        printf("\n");
        fflush(stdout);
    }
    printf("\n");
}

int main(void)
{
    printf("invdl %s\n\n", invdl_version_string());
    round_trips();
    memory();
    printf("3. Memory-saving gradient drift: max|g_saving - g_stored| / max|g_stored| of\n"
           "   the worst layer, worst of 10 seeds, batch %d uniform in [-1, 1], targets likewise\n", BATCH);
    drift(0);
    drift(3);
    maximum_likelihood();
    return 0;
}
