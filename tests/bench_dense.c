/*
 * bench_dense.c - the dense layer's batched kernels and the trainer built on
 * them, against straightforward loops measured in the same run.
 * `meson test -C build --benchmark --suite dense`.
 *
 * What is measured
 * ----------------
 * 1. Kernels, at widths 8, 64, 256 and 1024 on a batch of 256 samples
 *    (uniform in [-1, 1]; W a dense layer's orthogonal start plus a
 *    uniform perturbation of 0.1, b likewise), in GFLOP/s of the nominal
 *    operation count:
 *      forward   y = W x + b                  2 n^2 per sample
 *      backward  dx = W^T g, dW += g x^T, db   4 n^2 per sample
 *      inverse   x = W^-1 (y - b), LU solves  2 n^2 per sample
 *      factor    LU and W^-1's norms          8/3 n^3 per call (once per step)
 *    for invdl (the dispatched path), its portable scalar path, the loops
 *    in double the layer used before the batched kernels (one sample at a
 *    time, the same arithmetic, so the same bits), and, for forward and
 *    backward, the textbook triple loops in float.  With OpenBLAS built in,
 *    cblas_dgemm does the forward and backward products in double, as a
 *    reference for large widths.
 * 2. The trainer: samples per second of invdl_model_fit (one epoch, batch
 *    32, SGD at learning rate 1e-3) on models of depth 8, dense / mprelu /
 *    dense / mprelu / ... (4 dense layers), widths 8, 64 and 256, with
 *    stored and memory-saving backprop.  The same models run with invdl's
 *    dense layer, with a dense layer on the scalar path, and with one on
 *    the previous per-sample loops (both are layer kinds defined below,
 *    plugged into the library's machinery through their operation tables).
 *
 * How
 * ---
 * One sample is the time of enough back-to-back calls to last about 20 ms
 * (at least one call): the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) by
 * default, because on a shared machine the wall time measures the other
 * work as much as this one; CPU time still carries the slowdown from the
 * caches and memory the other work shares.  Each line shows the least
 * "CPU share" (CPU time / wall time, median over rounds) of its cases, a
 * gauge of that load; --wall times by CLOCK_MONOTONIC instead.  The cases of one width and
 * operation are sampled in interleaved rounds, each round in a rotated
 * order, so that load coming and going on the machine slows them alike,
 * until a time budget is spent.  Reported: medians; ratios are ratios of
 * medians, next to the median of the ratios within each round ("paired").
 * Before timing, every invdl case and the previous loops are checked to
 * give the same bits (and the trained parameters likewise); the float
 * loops' largest relative deviation is reported.
 *
 * Options: --budget=F scales the time budgets (default 1), --quick is
 * --budget=0.1 with fewer rounds, --wall times by the wall clock.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_dense_config.h"
#include "kernels/dense_kernels.h"
#include "dense_plain.h"
#include "invdl.h"
#include "layers/layer.h"
#include "reference.h"

#ifdef BENCH_HAVE_CBLAS
#include <cblas.h>
#endif

#define BATCH ((size_t)256)
#define SEED UINT64_C(0xd3e5eb3c4c0ffee5)

/* ------------------------------------------------------------------------ */
/* Baselines: the previous loops are dense_plain.c's; the textbook ones here */
/* ------------------------------------------------------------------------ */

/* The textbook loops in float. */
static void float_forward(size_t n, const float *w, const float *b, size_t batch, const float *in,
                          float *out)
{
    for (size_t s = 0; s < batch; s++)
        for (size_t i = 0; i < n; i++) {
            float acc = b[i];
            for (size_t j = 0; j < n; j++)
                acc += w[i * n + j] * in[s * n + j];
            out[s * n + i] = acc;
        }
}

static void float_backward(size_t n, const float *w, size_t batch, const float *in,
                           const float *dout, float *din, float *dw)
{
    for (size_t s = 0; s < batch; s++) {
        const float *g = dout + s * n, *x = in + s * n;
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t i = 0; i < n; i++)
                acc += w[i * n + j] * g[i];
            din[s * n + j] = acc;
        }
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++)
                dw[i * n + j] += g[i] * x[j];
            dw[n * n + i] += g[i];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Dense layer kinds for the trainer: the scalar path, the previous loops     */
/* ------------------------------------------------------------------------ */

extern const invdl_layer_ops invdl_dense_ops;

static invdl_status scalar_prepare(const invdl_params *p, const float *values, void *cache,
                                   int complete)
{
    (void)p;
    if (!complete) {
        invdl_dense_stage(values, cache);
        return INVDL_OK;
    }
    return invdl_dense_factor(&invdl_dense_scalar, values, cache);
}

static invdl_status scalar_apply(const invdl_params *p, int inverse, size_t batch,
                                 const float *in, float *out, double *scratch)
{
    const float *b = p->values + p->width * p->width;
    if (!inverse)
        invdl_dense_forward(&invdl_dense_scalar, p->cache, b, batch, in, out, scratch);
    else
        invdl_dense_inverse(&invdl_dense_scalar, p->cache, b, batch, in, out, scratch);
    return INVDL_OK;
}

static void scalar_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                            const float *out, const float *dout, float *din, double *dparams,
                            double *scratch)
{
    invdl_dense_backward(&invdl_dense_scalar, p->cache, inverse, batch, in, out, dout, din,
                         dparams, scratch);
}

static invdl_status loop_prepare(const invdl_params *p, const float *values, void *cache,
                                 int complete)
{
    (void)p, (void)complete;
    return plain_factor(values, cache);
}

static invdl_status loop_apply(const invdl_params *p, int inverse, size_t batch, const float *in,
                               float *out, double *scratch)
{
    size_t n = p->width;
    const float *b = p->values + n * n;
    if (!inverse)
        plain_forward(n, p->values, b, batch, in, out, scratch);
    else
        plain_inverse(p->cache, b, batch, in, out, scratch);
    return INVDL_OK;
}

static void loop_layer_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                                const float *out, const float *dout, float *din,
                                double *dparams, double *scratch)
{
    plain_backward(p->cache, p->values, inverse, batch, in, out, dout, din, dparams, scratch);
}

#ifdef BENCH_HAVE_CBLAS
/* invdl's dense layer with the products of the forward map and its
 * backward pass (W x, W^T g, g x^T) done by cblas_dgemm on operands staged
 * in double, BLOCK samples at a time: what OpenBLAS would bring to the
 * trainer.  Factorisation and solves stay invdl's. */
static void blas_stage(size_t count, const float *v, double *d)
{
    for (size_t i = 0; i < count; i++)
        d[i] = (double)v[i];
}

static invdl_status blas_apply(const invdl_params *p, int inverse, size_t batch, const float *in,
                               float *out, double *scratch)
{
    const invdl_dense_factors *f = p->cache;
    size_t n = p->width, ld = invdl_dense_ld(n);
    const float *b = p->values + n * n;
    if (inverse) {
        invdl_dense_inverse(invdl_dense_kernels_best(), f, b, batch, in, out, scratch);
        return INVDL_OK;
    }
    double *xd = scratch, *yd = scratch + INVDL_DENSE_BLOCK * n;
    for (size_t s0 = 0; s0 < batch; s0 += INVDL_DENSE_BLOCK) {
        size_t cnt = batch - s0 < INVDL_DENSE_BLOCK ? batch - s0 : INVDL_DENSE_BLOCK;
        blas_stage(cnt * n, in + s0 * n, xd);
        for (size_t s = 0; s < cnt; s++)
            for (size_t i = 0; i < n; i++)
                yd[s * n + i] = (double)b[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cnt, (int)n, (int)n, 1.0, xd,
                    (int)n, f->w, (int)ld, 1.0, yd, (int)n);
        for (size_t i = 0; i < cnt * n; i++)
            out[s0 * n + i] = (float)yd[i];
    }
    return INVDL_OK;
}

static void blas_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                          const float *out, const float *dout, float *din, double *dparams,
                          double *scratch)
{
    const invdl_dense_factors *f = p->cache;
    size_t n = p->width, ld = invdl_dense_ld(n);
    if (inverse) {
        invdl_dense_backward(invdl_dense_kernels_best(), f, 1, batch, in, out, dout, din,
                             dparams, scratch);
        return;
    }
    /* Two blocks of scratch: g, then x, whose space dx takes over. */
    double *gd = scratch, *xd = gd + INVDL_DENSE_BLOCK * n, *dx = xd;
    for (size_t s0 = 0; s0 < batch; s0 += INVDL_DENSE_BLOCK) {
        size_t cnt = batch - s0 < INVDL_DENSE_BLOCK ? batch - s0 : INVDL_DENSE_BLOCK;
        blas_stage(cnt * n, dout + s0 * n, gd);
        if (dparams != NULL) {
            blas_stage(cnt * n, in + s0 * n, xd);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)cnt, 1.0,
                        gd, (int)n, xd, (int)n, 1.0, dparams, (int)n);
            for (size_t s = 0; s < cnt; s++)
                for (size_t i = 0; i < n; i++)
                    dparams[n * n + i] += gd[s * n + i];
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cnt, (int)n, (int)n, 1.0, gd,
                    (int)n, f->w, (int)ld, 0.0, dx, (int)n);
        for (size_t i = 0; i < cnt * n; i++)
            din[s0 * n + i] = (float)dx[i];
    }
}
#endif

typedef struct dense_kinds {
    invdl_layer_ops scalar; /* invdl's batched kernels on the portable path */
    invdl_layer_ops loops;  /* the previous per-sample loops */
#ifdef BENCH_HAVE_CBLAS
    invdl_layer_ops blas;   /* invdl with OpenBLAS for the products */
#endif
} dense_kinds;

static dense_kinds make_kinds(void)
{
    dense_kinds k;
    k.scalar = invdl_dense_ops;
    k.scalar.prepare = scalar_prepare;
    k.scalar.apply = scalar_apply;
    k.scalar.backward = scalar_backward;
    k.loops = invdl_dense_ops;
    k.loops.prepare = loop_prepare;
    k.loops.apply = loop_apply;
    k.loops.backward = loop_layer_backward;
#ifdef BENCH_HAVE_CBLAS
    k.blas = invdl_dense_ops;
    k.blas.apply = blas_apply;
    k.blas.backward = blas_backward;
#endif
    return k;
}

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

static double clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void clobber(void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    (void)p;
#endif
}

/* One member of a family: run() does one call's work, `work` units of it
 * (flops or samples); reset(), if any, runs untimed before each sample. */
typedef struct bench_case {
    const char *label;
    void (*run)(void *ctx);
    void (*reset)(void *ctx);
    void *ctx;
    double work;
    /* results */
    unsigned calls;
    double median;    /* work per second */
    double paired;    /* median over rounds of this case's rate / the first case's */
    double cpu_share; /* median over rounds of thread CPU time / wall time */
    size_t rounds;
} bench_case;

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_doubles);
    return n == 0 ? (double)NAN : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds of one sample of `calls` calls, CPU time or wall time; *share
 * receives the fraction of the wall time the thread had a CPU (below 1
 * when other work took it away). */
static double time_calls(bench_case *c, unsigned calls, int wall_clock, double *share)
{
    if (c->reset != NULL)
        c->reset(c->ctx);
    double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns();
    for (unsigned k = 0; k < calls; k++) {
        c->run(c->ctx);
        clobber(c->ctx);
    }
    double wall = now_ns() - t0, cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    *share = cpu / wall;
    return (wall_clock ? wall : cpu) * 1e-9;
}

typedef struct plan {
    double budget_s;   /* per family */
    size_t min_rounds, max_rounds;
    double sample_s;   /* aim of one sample */
    int wall_clock;    /* time by the wall clock, not the thread's CPU time */
} plan;

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes == 0 ? 1 : bytes);
    if (p == NULL) {
        fprintf(stderr, "bench_dense: out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

static void measure(bench_case *cases, size_t count, const plan *p)
{
    double **rates = xmalloc(count * sizeof *rates), **shares = xmalloc(count * sizeof *shares);
    for (size_t k = 0; k < count; k++) {
        bench_case *c = &cases[k];
        rates[k] = xmalloc(p->max_rounds * sizeof **rates);
        shares[k] = xmalloc(p->max_rounds * sizeof **shares);
        double share, once = time_calls(c, 1, p->wall_clock, &share); /* also the warm-up */
        double calls = ceil(p->sample_s / (once > 1e-9 ? once : 1e-9));
        c->calls = calls < 1.0 ? 1u : calls > 1e5 ? 100000u : (unsigned)calls;
    }
    double start = now_ns();
    size_t rounds = 0;
    while (rounds < p->max_rounds &&
           (rounds < p->min_rounds || (now_ns() - start) * 1e-9 < p->budget_s)) {
        for (size_t i = 0; i < count; i++) {
            size_t k = (i + rounds) % count;
            double t = time_calls(&cases[k], cases[k].calls, p->wall_clock, &shares[k][rounds]);
            rates[k][rounds] = cases[k].work * cases[k].calls / t;
        }
        rounds++;
    }
    double *ratio = xmalloc(rounds * sizeof *ratio);
    for (size_t k = 0; k < count; k++) {
        for (size_t r = 0; r < rounds; r++)
            ratio[r] = rates[k][r] / rates[0][r];
        cases[k].paired = median(ratio, rounds);
        cases[k].rounds = rounds;
    }
    for (size_t k = 0; k < count; k++) {
        cases[k].median = median(rates[k], rounds);
        cases[k].cpu_share = median(shares[k], rounds);
        free(rates[k]);
        free(shares[k]);
    }
    free(ratio);
    free(rates);
    free(shares);
}

/* The smallest CPU share among a family's cases. */
static double least_share(const bench_case *cases, size_t count)
{
    double m = 1.0;
    for (size_t k = 0; k < count; k++)
        m = cases[k].cpu_share < m ? cases[k].cpu_share : m;
    return m;
}

/* ------------------------------------------------------------------------ */
/* Part 1: kernels                                                          */
/* ------------------------------------------------------------------------ */

static float uniform(uint64_t *state, float r)
{
    return r * ((float)(test_rand(state) >> 40) * 0x1p-23f - 1.0f);
}

static void fill(size_t n, float r, uint64_t *state, float *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = uniform(state, r);
}

typedef struct kernel_ctx {
    size_t n, batch;
    const invdl_dense_kernels *k; /* NULL: a loop baseline */
    invdl_dense_factors *f;       /* factors of w (not owned) */
    invdl_dense_factors *scratch_f; /* for the factor cases */
    const float *w, *b, *x, *y, *g;
    float *out, *din, *fdw;
    double *dparams, *scratch;
} kernel_ctx;

static void run_forward(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_forward(c->k, c->f, c->b, c->batch, c->x, c->out, c->scratch);
    else
        plain_forward(c->n, c->w, c->b, c->batch, c->x, c->out, c->scratch);
}

static void run_forward_float(void *p)
{
    kernel_ctx *c = p;
    float_forward(c->n, c->w, c->b, c->batch, c->x, c->out);
}

static void run_backward(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_backward(c->k, c->f, 0, c->batch, c->x, NULL, c->g, c->din, c->dparams,
                             c->scratch);
    else
        plain_backward(c->f, c->w, 0, c->batch, c->x, NULL, c->g, c->din, c->dparams, c->scratch);
}

static void run_backward_float(void *p)
{
    kernel_ctx *c = p;
    float_backward(c->n, c->w, c->batch, c->x, c->g, c->din, c->fdw);
}

static void run_inverse(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_inverse(c->k, c->f, c->b, c->batch, c->y, c->out, c->scratch);
    else
        plain_inverse(c->f, c->b, c->batch, c->y, c->out, c->scratch);
}

static void run_factor(void *p)
{
    kernel_ctx *c = p;
    invdl_status st = c->k != NULL ? invdl_dense_factor(c->k, c->w, c->scratch_f)
                                   : plain_factor(c->w, c->scratch_f);
    if (st != INVDL_OK) {
        fprintf(stderr, "bench_dense: W is singular\n");
        exit(EXIT_FAILURE);
    }
}

/* Zeroes the parameter gradients, which the backward cases accumulate
 * into (untimed). */
static void reset_grad(void *p)
{
    kernel_ctx *c = p;
    memset(c->dparams, 0, (c->n * c->n + c->n) * sizeof *c->dparams);
    memset(c->fdw, 0, (c->n * c->n + c->n) * sizeof *c->fdw);
}

#ifdef BENCH_HAVE_CBLAS
/* The products in double through BLAS, on operands staged in double as
 * invdl stages them; the staging is timed too. */
typedef struct blas_ctx {
    size_t n, batch;
    const float *w, *b, *x, *g;
    double *wd, *xd, *gd, *yd, *dwd;
    float *out, *din;
} blas_ctx;

static void stage_double(size_t count, const float *v, double *d)
{
    for (size_t i = 0; i < count; i++)
        d[i] = (double)v[i];
}

static void run_forward_blas(void *p)
{
    blas_ctx *c = p;
    int n = (int)c->n, m = (int)c->batch;
    stage_double(c->batch * c->n, c->x, c->xd);
    for (size_t s = 0; s < c->batch; s++)
        for (size_t i = 0; i < c->n; i++)
            c->yd[s * c->n + i] = (double)c->b[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, n, 1.0, c->xd, n, c->wd, n, 1.0,
                c->yd, n);
    for (size_t i = 0; i < c->batch * c->n; i++)
        c->out[i] = (float)c->yd[i];
}

static void run_backward_blas(void *p)
{
    blas_ctx *c = p;
    int n = (int)c->n, m = (int)c->batch;
    stage_double(c->batch * c->n, c->x, c->xd);
    stage_double(c->batch * c->n, c->g, c->gd);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, c->gd, n, c->wd, n, 0.0,
                c->yd, n);
    for (size_t i = 0; i < c->batch * c->n; i++)
        c->din[i] = (float)c->yd[i];
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, m, 1.0, c->gd, n, c->xd, n, 1.0,
                c->dwd, n);
    for (size_t s = 0; s < c->batch; s++)
        for (size_t i = 0; i < c->n; i++)
            c->dwd[c->n * c->n + i] += c->gd[s * c->n + i];
}
#endif

/* Bits of two float arrays: elements that differ. */
static size_t differing(size_t n, const float *a, const float *b)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    return d;
}

static size_t differing_doubles(size_t n, const double *a, const double *b)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    return d;
}

/* max |a - b| / max |b| */
static double rel_dev(size_t n, const float *a, const float *b)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - (double)b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

enum { OP_FORWARD, OP_BACKWARD, OP_INVERSE, OP_FACTOR, OP_COUNT };
static const char *const op_name[OP_COUNT] = {"forward", "backward", "inverse", "factor"};
enum { V_INVDL, V_SCALAR, V_LOOPS, V_FLOAT, V_BLAS, V_COUNT };
static const char *const variant_name[V_COUNT] = {
    "invdl", "invdl scalar path", "loops, double (previous)", "textbook loops, float",
    "OpenBLAS dgemm"};

typedef struct kernel_result {
    size_t width;
    double gflops[OP_COUNT][V_COUNT]; /* NaN: not run */
    double paired_loops[OP_COUNT];    /* invdl / previous loops, paired */
    double float_dev[OP_COUNT];       /* float loops' deviation from the double loops */
} kernel_result;

static const size_t KERNEL_WIDTHS[] = {8, 64, 256, 1024};
#define KERNEL_WIDTH_COUNT (sizeof KERNEL_WIDTHS / sizeof KERNEL_WIDTHS[0])

static int bench_width(size_t n, const plan *pl, kernel_result *res)
{
    size_t batch = BATCH, np = n * n + n, count = batch * n;
    uint64_t state = SEED ^ n;
    int ok = 1;
    const invdl_dense_kernels *best = invdl_dense_kernels_best();
    float *params = xmalloc(np * sizeof *params);
    {
        invdl_layer *l = invdl_layer_dense(n, SEED + n);
        if (l == NULL || invdl_layer_get_params(l, np, params) != INVDL_OK) {
            fprintf(stderr, "bench_dense: cannot make a dense layer\n");
            exit(EXIT_FAILURE);
        }
        invdl_layer_free(l);
        for (size_t i = 0; i < np; i++)
            params[i] += uniform(&state, 0.1f);
    }
    const float *w = params, *b = params + n * n;
    float *x = xmalloc(count * sizeof *x), *y = xmalloc(count * sizeof *y);
    float *g = xmalloc(count * sizeof *g);
    fill(count, 1.0f, &state, x);
    fill(count, 1.0f, &state, g);
    invdl_dense_factors *f = invdl_dense_factors_new(n);
    if (f == NULL || invdl_dense_factor(best, w, f) != INVDL_OK) {
        fprintf(stderr, "bench_dense: cannot factor W\n");
        exit(EXIT_FAILURE);
    }
    plain_forward(n, w, b, batch, x, y, f->work); /* the inverse's inputs */

    size_t scratch_count = invdl_dense_scratch_count(n) + 2 * n;
    kernel_ctx ctx[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        kernel_ctx *c = &ctx[v];
        memset(c, 0, sizeof *c);
        c->n = n;
        c->batch = batch;
        c->k = v == V_INVDL ? best : v == V_SCALAR ? &invdl_dense_scalar : NULL;
        c->f = f;
        c->scratch_f = invdl_dense_factors_new(n);
        c->w = w;
        c->b = b;
        c->x = x;
        c->y = y;
        c->g = g;
        c->out = xmalloc(count * sizeof *c->out);
        c->din = xmalloc(count * sizeof *c->din);
        c->fdw = xmalloc(np * sizeof *c->fdw);
        c->dparams = xmalloc(np * sizeof *c->dparams);
        c->scratch = xmalloc(scratch_count * sizeof *c->scratch);
        if (c->scratch_f == NULL) {
            fprintf(stderr, "bench_dense: out of memory\n");
            exit(EXIT_FAILURE);
        }
    }

    /* Every invdl variant must give the previous loops' bits. */
    for (int op = 0; op < OP_COUNT; op++) {
        for (int v = V_INVDL; v <= V_FLOAT; v++) {
            if (v == V_FLOAT && (op == OP_INVERSE || op == OP_FACTOR))
                continue;
            kernel_ctx *c = &ctx[v];
            reset_grad(c);
            switch (op) {
            case OP_FORWARD: v == V_FLOAT ? run_forward_float(c) : run_forward(c); break;
            case OP_BACKWARD: v == V_FLOAT ? run_backward_float(c) : run_backward(c); break;
            case OP_INVERSE: run_inverse(c); break;
            default: run_factor(c); break;
            }
        }
        const kernel_ctx *ref = &ctx[V_LOOPS];
        for (int v = V_INVDL; v <= V_SCALAR; v++) {
            const kernel_ctx *c = &ctx[v];
            size_t d = 0;
            if (op == OP_FORWARD || op == OP_INVERSE)
                d = differing(count, c->out, ref->out);
            else if (op == OP_BACKWARD)
                d = differing(count, c->din, ref->din) +
                    differing_doubles(np, c->dparams, ref->dparams);
            else
                d = differing_doubles(n * c->scratch_f->lu_ld, c->scratch_f->lu,
                                      ref->scratch_f->lu) +
                    (c->scratch_f->inv_norm != ref->scratch_f->inv_norm) +
                    (c->scratch_f->log_abs_det != ref->scratch_f->log_abs_det);
            if (d != 0) {
                printf("  MISMATCH: %s %s at width %zu: %zu values differ from the loops\n",
                       variant_name[v], op_name[op], n, d);
                ok = 0;
            }
        }
        res->float_dev[op] = (double)NAN;
        if (op == OP_FORWARD)
            res->float_dev[op] = rel_dev(count, ctx[V_FLOAT].out, ref->out);
        else if (op == OP_BACKWARD)
            res->float_dev[op] = rel_dev(count, ctx[V_FLOAT].din, ref->din);
    }

#ifdef BENCH_HAVE_CBLAS
    blas_ctx bc = {n, batch, w, b, x, g, xmalloc(n * n * sizeof(double)),
                   xmalloc(count * sizeof(double)), xmalloc(count * sizeof(double)),
                   xmalloc(count * sizeof(double)), xmalloc(np * sizeof(double)),
                   xmalloc(count * sizeof(float)), xmalloc(count * sizeof(float))};
    stage_double(n * n, w, bc.wd);
#endif

    double flops[OP_COUNT] = {2.0 * (double)(n * n * batch), 4.0 * (double)(n * n * batch),
                              2.0 * (double)(n * n * batch),
                              8.0 / 3.0 * (double)n * (double)n * (double)n};
    for (int op = 0; op < OP_COUNT; op++) {
        bench_case cases[V_COUNT];
        int which[V_COUNT];
        size_t count_cases = 0;
        for (int v = 0; v < V_COUNT; v++) {
            res->gflops[op][v] = (double)NAN;
            void (*run)(void *) = NULL;
            void *cctx = &ctx[v];
            switch (op) {
            case OP_FORWARD: run = v == V_FLOAT ? run_forward_float : run_forward; break;
            case OP_BACKWARD: run = v == V_FLOAT ? run_backward_float : run_backward; break;
            case OP_INVERSE: run = v == V_FLOAT ? NULL : run_inverse; break;
            default: run = v == V_FLOAT ? NULL : run_factor; break;
            }
            if (v == V_BLAS) {
                run = NULL;
#ifdef BENCH_HAVE_CBLAS
                cctx = &bc;
                run = op == OP_FORWARD ? run_forward_blas
                      : op == OP_BACKWARD ? run_backward_blas : NULL;
#endif
            }
            if (run == NULL)
                continue;
            bench_case bcse = {variant_name[v], run, op == OP_BACKWARD ? reset_grad : NULL, cctx,
                               flops[op], 0, 0.0, 0.0, 0.0, 0};
#ifdef BENCH_HAVE_CBLAS
            if (v == V_BLAS)
                bcse.reset = NULL;
#endif
            which[count_cases] = v;
            cases[count_cases++] = bcse;
        }
        plan p = *pl;
        if (op == OP_FACTOR && n >= 1024) /* the loops take seconds per call */
            p.min_rounds = p.min_rounds < 3 ? p.min_rounds : 3;
        measure(cases, count_cases, &p);
        for (size_t k = 0; k < count_cases; k++) {
            res->gflops[op][which[k]] = cases[k].median * 1e-9;
            if (which[k] == V_LOOPS)
                res->paired_loops[op] = 1.0 / cases[k].paired;
        }
        printf("  width %4zu %-9s", n, op_name[op]);
        for (size_t k = 0; k < count_cases; k++)
            printf("  %s %.3g", which[k] == V_INVDL ? "invdl" : which[k] == V_SCALAR ? "scalar"
                                : which[k] == V_LOOPS ? "loops" : which[k] == V_FLOAT ? "float"
                                : "blas",
                   cases[k].median * 1e-9);
        printf("  GFLOP/s (%zu rounds, CPU share %.2f)", cases[0].rounds,
               least_share(cases, count_cases));
        if (!isnan(res->float_dev[op]))
            printf("; float loops off by %.2g", res->float_dev[op]);
        printf("\n");
        fflush(stdout);
    }

#ifdef BENCH_HAVE_CBLAS
    free(bc.wd);
    free(bc.xd);
    free(bc.gd);
    free(bc.yd);
    free(bc.dwd);
    free(bc.out);
    free(bc.din);
#endif
    for (int v = 0; v < V_COUNT; v++) {
        invdl_dense_factors_free(ctx[v].scratch_f);
        free(ctx[v].out);
        free(ctx[v].din);
        free(ctx[v].fdw);
        free(ctx[v].dparams);
        free(ctx[v].scratch);
    }
    invdl_dense_factors_free(f);
    free(params);
    free(x);
    free(y);
    free(g);
    res->width = n;
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Part 2: the trainer                                                      */
/* ------------------------------------------------------------------------ */

enum { T_INVDL, T_SCALAR, T_LOOPS, T_BLAS, T_COUNT };
static const char *const trainer_variant[T_COUNT] = {"invdl", "invdl scalar path",
                                                     "previous loops", "invdl + OpenBLAS dgemm"};
#ifdef BENCH_HAVE_CBLAS
#define T_RUN T_COUNT
#else
#define T_RUN T_BLAS
#endif

typedef struct fit_ctx {
    invdl_model *model;
    size_t n, width, nparams;
    const float *x, *y, *initial;
    int memory_saving;
    float loss;
    invdl_status status;
} fit_ctx;

static void run_fit(void *p)
{
    fit_ctx *c = p;
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = 1e-3f;
    o.batch_size = 32;
    o.epochs = 1;
    o.seed = 7;
    o.memory_saving = c->memory_saving;
    invdl_status st = invdl_model_fit(c->model, c->n, c->x, c->y, &o, &c->loss);
    if (st != INVDL_OK)
        c->status = st;
}

static void reset_fit(void *p)
{
    fit_ctx *c = p;
    if (invdl_model_set_params(c->model, c->nparams, c->initial) != INVDL_OK)
        c->status = INVDL_EINVAL;
}

#define DEPTH_BLOCKS 4

/* dense, mprelu, dense, mprelu, ...: the dense layers of `kind` (NULL:
 * invdl's own), the same starting values whatever the kind. */
static invdl_model *make_model(size_t width, const invdl_layer_ops *kind)
{
    invdl_model *m = invdl_model_create(width);
    if (m == NULL)
        return NULL;
    for (size_t blk = 0; blk < DEPTH_BLOCKS; blk++) {
        invdl_layer *d = invdl_layer_dense(width, SEED + 31 * blk);
        if (d != NULL && kind != NULL) {
            size_t count = invdl_layer_param_count(d);
            float *v = invdl_alloc_array(count, sizeof *v);
            invdl_layer *own = NULL;
            if (v != NULL && invdl_layer_get_params(d, count, v) == INVDL_OK)
                own = invdl_layer_create(kind, width, NULL, v, NULL);
            else
                invdl_free(v);
            invdl_layer_free(d);
            d = own;
        }
        if (invdl_model_add(m, d) != INVDL_OK ||
            invdl_model_add(m, invdl_layer_mprelu(width, SEED + 31 * blk + 1)) != INVDL_OK) {
            invdl_model_free(m);
            return NULL;
        }
    }
    return m;
}

static const size_t TRAINER_WIDTHS[] = {8, 64, 256};
#define TRAINER_WIDTH_COUNT (sizeof TRAINER_WIDTHS / sizeof TRAINER_WIDTHS[0])

typedef struct trainer_result {
    size_t width, samples;
    double rate[2][T_COUNT]; /* [memory_saving][variant], samples per second */
    double paired[2];        /* invdl / previous loops, paired */
    double blas_dev[2];      /* OpenBLAS variant's trained parameters: max relative
                                difference from invdl's */
} trainer_result;

static int bench_trainer(size_t width, const plan *pl, const dense_kinds *kinds,
                         trainer_result *res)
{
    /* Enough samples for a fit of some tens of milliseconds with invdl. */
    size_t n = width <= 8 ? 4096 : width <= 64 ? 2048 : 512;
    size_t count = n * width;
    uint64_t state = SEED ^ (width * 977);
    float *x = xmalloc(count * sizeof *x), *y = xmalloc(count * sizeof *y);
    fill(count, 1.0f, &state, x);
    fill(count, 1.0f, &state, y);
    int ok = 1;
    res->width = width;
    res->samples = n;

    fit_ctx ctx[T_COUNT];
    float *initial = NULL, *after[T_COUNT];
    size_t nparams = 0;
    for (int v = 0; v < T_RUN; v++) {
        const invdl_layer_ops *kind = NULL;
        if (v == T_SCALAR)
            kind = &kinds->scalar;
        else if (v == T_LOOPS)
            kind = &kinds->loops;
#ifdef BENCH_HAVE_CBLAS
        else if (v == T_BLAS)
            kind = &kinds->blas;
#endif
        invdl_model *m = make_model(width, kind);
        if (m == NULL) {
            fprintf(stderr, "bench_dense: cannot make the model\n");
            exit(EXIT_FAILURE);
        }
        nparams = invdl_model_param_count(m);
        if (initial == NULL) {
            initial = xmalloc(nparams * sizeof *initial);
            if (invdl_model_get_params(m, nparams, initial) != INVDL_OK)
                exit(EXIT_FAILURE);
        }
        fit_ctx c = {m, n, width, nparams, x, y, initial, 0, 0.0f, INVDL_OK};
        ctx[v] = c;
        after[v] = xmalloc(nparams * sizeof *after[v]);
    }

    for (int saving = 0; saving < 2; saving++) {
        /* One fit from the same start: invdl's variants must train to the
         * same bits; OpenBLAS (FMA, its own order of summation) only
         * nearly. */
        for (int v = 0; v < T_RUN; v++) {
            ctx[v].memory_saving = saving;
            reset_fit(&ctx[v]);
            run_fit(&ctx[v]);
            if (ctx[v].status != INVDL_OK ||
                invdl_model_get_params(ctx[v].model, nparams, after[v]) != INVDL_OK) {
                printf("  FAILED: %s fit: %s\n", trainer_variant[v],
                       invdl_strerror(ctx[v].status));
                ok = 0;
            }
        }
        for (int v = 1; v < T_RUN && v < T_BLAS; v++)
            if (differing(nparams, after[v], after[T_INVDL]) != 0) {
                printf("  MISMATCH: width %zu, %s: %s trained to other parameters\n", width,
                       saving ? "memory saving" : "stored", trainer_variant[v]);
                ok = 0;
            }
        res->blas_dev[saving] = (double)NAN;
        res->rate[saving][T_BLAS] = (double)NAN;
#ifdef BENCH_HAVE_CBLAS
        res->blas_dev[saving] = rel_dev(nparams, after[T_BLAS], after[T_INVDL]);
#endif

        bench_case cases[T_COUNT];
        for (int v = 0; v < T_RUN; v++) {
            bench_case c = {trainer_variant[v], run_fit, reset_fit, &ctx[v], (double)n,
                            0, 0.0, 0.0, 0.0, 0};
            cases[v] = c;
        }
        plan p = *pl;
        p.sample_s = 0.0; /* one fit per sample */
        measure(cases, T_RUN, &p);
        for (int v = 0; v < T_RUN; v++)
            res->rate[saving][v] = cases[v].median;
        res->paired[saving] = 1.0 / cases[T_LOOPS].paired;
        printf("  width %4zu %-13s  invdl %.0f  scalar %.0f  loops %.0f", width,
               saving ? "memory saving" : "stored", cases[T_INVDL].median,
               cases[T_SCALAR].median, cases[T_LOOPS].median);
#ifdef BENCH_HAVE_CBLAS
        printf("  blas %.0f (params within %.2g)", cases[T_BLAS].median, res->blas_dev[saving]);
#endif
        printf("  samples/s (%zu rounds, CPU share %.2f)\n", cases[0].rounds,
               least_share(cases, T_RUN));
        fflush(stdout);
        for (int v = 0; v < T_RUN; v++)
            if (ctx[v].status != INVDL_OK)
                ok = 0;
    }
    for (int v = 0; v < T_RUN; v++) {
        invdl_model_free(ctx[v].model);
        free(after[v]);
    }
    free(initial);
    free(x);
    free(y);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

enum md_style { MD_GFLOPS, MD_COUNT, MD_RATIO };

static void md_value(double v, enum md_style style)
{
    if (isnan(v))
        printf(" - |");
    else if (style == MD_GFLOPS)
        printf(" %.3g |", v);
    else if (style == MD_COUNT)
        printf(" %.0f |", v);
    else
        printf(" %.1fx |", v);
}

static void print_markdown(const kernel_result *kr, const trainer_result *tr, const char *machine,
                           const char *timing, const char *command)
{
    printf("\nMarkdown\n--------\n\n");
    printf("Dense layer, batch of %zu, GFLOP/s (medians):\n\n", BATCH);
    printf("| width | operation | invdl | scalar path | previous loops (double) | textbook loops "
           "(float) |");
#ifdef BENCH_HAVE_CBLAS
    printf(" OpenBLAS dgemm |");
#endif
    printf(" invdl / previous | invdl / float loops |\n");
    printf("|--:|---|--:|--:|--:|--:|");
#ifdef BENCH_HAVE_CBLAS
    printf("--:|");
#endif
    printf("--:|--:|\n");
    for (size_t w = 0; w < KERNEL_WIDTH_COUNT; w++)
        for (int op = 0; op < OP_COUNT; op++) {
            const double *gf = kr[w].gflops[op];
            printf("| %zu | %s |", kr[w].width, op_name[op]);
            md_value(gf[V_INVDL], MD_GFLOPS);
            md_value(gf[V_SCALAR], MD_GFLOPS);
            md_value(gf[V_LOOPS], MD_GFLOPS);
            md_value(gf[V_FLOAT], MD_GFLOPS);
#ifdef BENCH_HAVE_CBLAS
            md_value(gf[V_BLAS], MD_GFLOPS);
#endif
            md_value(gf[V_INVDL] / gf[V_LOOPS], MD_RATIO);
            md_value(gf[V_INVDL] / gf[V_FLOAT], MD_RATIO);
            printf("\n");
        }
    printf("\nThe float loops' results differ from the others' (which agree bit for bit) by up "
           "to");
    for (size_t w = 0; w < KERNEL_WIDTH_COUNT; w++)
        printf("%s %.2g (width %zu)", w == 0 ? "" : ",",
               fmax(kr[w].float_dev[OP_FORWARD], kr[w].float_dev[OP_BACKWARD]), kr[w].width);
    printf(" of the largest output.\n");
    printf("\nTrainer, depth 8 (4 x dense + mprelu), batch 32, one epoch, samples/s "
           "(medians):\n\n");
    printf("| width | backprop | invdl | scalar path | previous loops |");
#ifdef BENCH_HAVE_CBLAS
    printf(" invdl + OpenBLAS dgemm |");
#endif
    printf(" invdl / previous |\n|--:|---|--:|--:|--:|");
#ifdef BENCH_HAVE_CBLAS
    printf("--:|");
#endif
    printf("--:|\n");
    for (size_t w = 0; w < TRAINER_WIDTH_COUNT; w++)
        for (int s = 0; s < 2; s++) {
            printf("| %zu | %s |", tr[w].width, s ? "memory saving" : "stored");
            md_value(tr[w].rate[s][T_INVDL], MD_COUNT);
            md_value(tr[w].rate[s][T_SCALAR], MD_COUNT);
            md_value(tr[w].rate[s][T_LOOPS], MD_COUNT);
#ifdef BENCH_HAVE_CBLAS
            md_value(tr[w].rate[s][T_BLAS], MD_COUNT);
#endif
            md_value(tr[w].rate[s][T_INVDL] / tr[w].rate[s][T_LOOPS], MD_RATIO);
            printf("\n");
        }
    printf("\nMedians of interleaved rounds in one process, single thread, %s; %s. Command: "
           "`%s`.\n",
           timing, machine, command);
}

/* ------------------------------------------------------------------------ */
/* Main                                                                      */
/* ------------------------------------------------------------------------ */

static void cpu_model(char *model, size_t size)
{
    snprintf(model, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || colon == NULL)
            continue;
        for (colon++; *colon == ' ' || *colon == '\t'; colon++)
            ;
        snprintf(model, size, "%s", colon);
        size_t len = strlen(model);
        while (len > 0 && isspace((unsigned char)model[len - 1]))
            model[--len] = '\0';
        break;
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    double budget = 1.0;
    int quick = 0, wall_clock = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        errno = 0;
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--wall") == 0) {
            wall_clock = 1;
        } else if (strncmp(argv[i], "--budget=", 9) == 0) {
            budget = strtod(argv[i] + 9, &end);
            if (errno != 0 || *end != '\0' || !(budget > 0.0) || budget > 100.0)
                goto usage;
        } else {
            goto usage;
        }
    }
    if (quick)
        budget *= 0.1;

#ifdef BENCH_HAVE_CBLAS
    openblas_set_num_threads(1); /* single thread, like everything else measured */
#endif
    char cpu[128], machine[256], command[512];
    cpu_model(cpu, sizeof cpu);
    int avx2 = 0, fma = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") != 0;
    fma = __builtin_cpu_supports("fma") != 0;
#endif
    snprintf(machine, sizeof machine, "%s, %ld CPUs online, AVX2 %s, FMA %s, kernels: %s", cpu,
             sysconf(_SC_NPROCESSORS_ONLN), avx2 ? "yes" : "no", fma ? "yes" : "no",
             invdl_dense_kernels_best()->name);
    const char *env = getenv("INVDL_BENCH_COMMAND");
    snprintf(command, sizeof command, "%s%s%s", env != NULL && env[0] != '\0' ? env : argv[0],
             quick ? " --quick" : "", wall_clock ? " --wall" : "");

    printf("invdl %s dense layer and trainer benchmark\n", invdl_version_string());
    printf("machine:  %s\n", machine);
#if defined(__clang__)
    printf("compiler: clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    printf("compiler: gcc %s", __VERSION__);
#endif
    printf("; build: %s; loops built with the library's flags\n", BENCH_DENSE_BUILD);
#ifdef BENCH_HAVE_CBLAS
    printf("BLAS:     %s\n", BENCH_CBLAS_NAME);
#else
    printf("BLAS:     none (OpenBLAS not found at configure time)\n");
#endif
    printf("command:  %s\n", command);
    printf("timing:   %s, medians of interleaved rounds, budget x%g\n\n",
           wall_clock ? "wall clock (CLOCK_MONOTONIC)" : "thread CPU time", budget);
    fflush(stdout);

    int ok = 1;
    kernel_result kr[KERNEL_WIDTH_COUNT];
    plan kp = {1.5 * budget, quick ? 5 : 15, 2001, 0.02, wall_clock};
    printf("1. Kernels, batch %zu\n", BATCH);
    for (size_t w = 0; w < KERNEL_WIDTH_COUNT; w++)
        ok &= bench_width(KERNEL_WIDTHS[w], &kp, &kr[w]);

    dense_kinds kinds = make_kinds();
    trainer_result tr[TRAINER_WIDTH_COUNT];
    plan tp = {4.0 * budget, quick ? 3 : 7, 2001, 0.0, wall_clock};
    printf("\n2. Trainer, depth 8 (dense/mprelu x 4), batch 32, one epoch per sample\n");
    for (size_t w = 0; w < TRAINER_WIDTH_COUNT; w++)
        ok &= bench_trainer(TRAINER_WIDTHS[w], &tp, &kinds, &tr[w]);

    print_markdown(kr, tr, machine, wall_clock ? "wall clock" : "thread CPU time", command);
    if (!ok)
        printf("\nFAILED: a variant disagreed with the previous loops or reported an error\n");
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;

usage:
    fprintf(stderr, "usage: %s [--quick] [--budget=FACTOR] [--wall]\n", argv[0]);
    return EXIT_FAILURE;
}
