/*
 * bench_dense.c - the dense layers' batched kernels and the trainer built
 * on them, against straightforward loops and PyTorch measured in the same
 * run.  `meson test -C build --benchmark --suite dense`.
 *
 * What is measured
 * ----------------
 * 0. What one tile of 8 x 16 accumulator vectors reaches in L1 for each
 *    way of accumulating: double with separate multiply and add (invdl's
 *    kernels), double with FMA, float with either (float BLAS kernels'),
 *    where the CPU has AVX-512F: the ceiling of each choice.
 * 1. Kernels, at widths 8, 64, 256 and 1024 on a batch of 256 samples
 *    (uniform in [-1, 1]; W a dense layer's orthogonal start plus a
 *    uniform perturbation of 0.1, b likewise; a dense_lu layer's start
 *    perturbed the same way), in GFLOP/s of the nominal operation count:
 *      forward   y = W x + b                  2 n^2 per sample
 *      backward  dx = W^T g, dW += g x^T, db   4 n^2 per sample
 *      inverse   x = W^-1 (y - b), LU solves  2 n^2 per sample
 *      factor    LU and W^-1's norms          8/3 n^3 per call
 *      dense_lu forward   z = U x, L z + b      2 n^2 per sample
 *      dense_lu backward  L^T g', U^T h, U x, dL, dU   5 n^2 per sample
 *      dense_lu inverse   two triangular solves 2 n^2 per sample
 *    for invdl (the dispatched path), its portable scalar path, the plain
 *    loops in double of tests/dense_plain.c (one sample at a time, the
 *    same arithmetic in the same order, so the same bits), and, for the
 *    dense forward and backward, the textbook triple loops in float.  With
 *    OpenBLAS built in, cblas_dgemm does the dense forward and backward
 *    products in double, as a reference for large widths.
 * 2. The trainer: samples per second of invdl_model_fit (one epoch, batch
 *    32, SGD at learning rate 1e-3, MSE) on models of depth 8, (dense or
 *    dense_lu) / mprelu four times, widths 8, 64 and 256, with stored and
 *    memory-saving backprop; the dense layers as invdl runs them, on the
 *    scalar path, dense factorised after every step (as before the
 *    trainer deferred it), dense with OpenBLAS's products; and the same
 *    network in PyTorch (tests/bench_torch.py: one thread, float32,
 *    nn.Linear + nn.PReLU, SGD, shuffled batches of 32), run as a server
 *    process whose epochs interleave with invdl's rounds, when
 *    /usr/bin/python3 imports torch (else the column says why not).
 *
 * How
 * ---
 * One sample is the time of enough back-to-back calls to last about 20 ms
 * (at least one call): the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) by
 * default, because on a shared machine the wall time measures the other
 * work as much as this one; CPU time still carries the slowdown from the
 * caches and memory the other work shares.  PyTorch's epochs are timed by
 * its process's CPU time.  Each line shows the least "CPU share" (CPU time
 * / wall time, median over rounds) of its cases, a gauge of that load;
 * --wall times by the wall clock instead.  The cases of one width and
 * operation are sampled in interleaved rounds, each round in a rotated
 * order, so that load coming and going on the machine slows them alike,
 * until a time budget is spent.  Reported: medians; ratios to PyTorch are
 * medians of the ratios within each round ("paired").  Before timing,
 * every invdl case and the plain loops are checked to give the same bits
 * (and the trained parameters likewise); the float loops' largest
 * relative deviation is reported.
 *
 * 3. The coupling layer: samples per second of an affine coupling layer's
 *    forward and inverse (invdl_layer_apply, batch 256, inputs uniform in
 *    [-1, 1]) at width 8 with 64 hidden units, 64 with 256 and 256 with
 *    512, against the same block in PyTorch (tests/bench_torch.py: one
 *    thread, float32, torch.no_grad()), timed by its own process for 20
 *    passes per call; the ratio is invdl's rate over PyTorch's.
 *
 * Options: --budget=F scales the time budgets (default 1), --quick is
 * --budget=0.1 with fewer rounds, --wall times by the wall clock,
 * --kernels, --trainer or --coupling runs that part alone.
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
#include <sys/wait.h>
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
#define PYTHON3 "/usr/bin/python3"
#define SEED UINT64_C(0xd3e5eb3c4c0ffee5)

/* ------------------------------------------------------------------------ */
/* Baselines: the plain loops are dense_plain.c's; the textbook ones here    */
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
/* Dense layer kinds for the trainer: the scalar path, OpenBLAS              */
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
    /* Instead of run: one call that times itself (another process), in
     * seconds of CPU time or wall time, *share as above. */
    double (*timed)(void *ctx, int wall_clock, double *share);
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
    if (c->timed != NULL) {
        double total = 0.0, shares = 0.0;
        for (unsigned k = 0; k < calls; k++) {
            double one;
            total += c->timed(c->ctx, wall_clock, &one);
            shares += one;
        }
        *share = shares / calls;
        return total;
    }
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
/* Part 0: what a tile can reach, in L1                                      */
/* ------------------------------------------------------------------------ */

/* The accumulation choices, each as an 8 x 16 tile of AVX-512 accumulators
 * (the shape of invdl's AVX-512 tile) over a depth of 256 with its operands
 * in L1: double with separate multiply and add (invdl's choice), double
 * with FMA, float with separate multiply and add, float with FMA (what
 * float BLAS kernels run).  GFLOP/s count a multiply-add as 2. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define TILE_DEPTH 256
#define TILE_AVX512 __attribute__((__target__("avx512f,fma"), __noinline__))

enum { TILE_D_MULADD, TILE_D_FMA, TILE_F_MULADD, TILE_F_FMA, TILE_KINDS };
static const char *const tile_name[TILE_KINDS] = {"double, mul+add (invdl)", "double, FMA",
                                                  "float, mul+add", "float, FMA"};

typedef struct tile_ctx {
    int kind;
    double *a, *b, *c; /* 64-byte aligned */
} tile_ctx;

#define TILE_BODY(VEC, LOAD, SET1, STORE, MUL, ADD, FMA_OP, LANES, fused)                         \
    VEC acc[8][2];                                                                              \
    _Pragma("GCC unroll 8") for (size_t r = 0; r < 8; r++)                                         \
        for (size_t q = 0; q < 2; q++)                                                             \
            acc[r][q] = LOAD(c + (r * 2 + q) * LANES);                                          \
    for (size_t k = 0; k < TILE_DEPTH; k++) {                                                   \
        VEC b0 = LOAD(b + k * 2 * LANES), b1 = LOAD(b + k * 2 * LANES + LANES);                 \
        _Pragma("GCC unroll 8") for (size_t r = 0; r < 8; r++) {                                   \
            VEC av = SET1(a[k * 8 + r]);                                                        \
            acc[r][0] = fused ? FMA_OP(av, b0, acc[r][0]) : ADD(acc[r][0], MUL(av, b0));        \
            acc[r][1] = fused ? FMA_OP(av, b1, acc[r][1]) : ADD(acc[r][1], MUL(av, b1));        \
        }                                                                                       \
    }                                                                                           \
    for (size_t r = 0; r < 8; r++)                                                                 \
        for (size_t q = 0; q < 2; q++)                                                             \
            STORE(c + (r * 2 + q) * LANES, acc[r][q]);

TILE_AVX512 static void tile_double(const double *a, const double *b, double *c, int fused)
{
    TILE_BODY(__m512d, _mm512_load_pd, _mm512_set1_pd, _mm512_store_pd, _mm512_mul_pd,
              _mm512_add_pd, _mm512_fmadd_pd, 8, fused)
}

TILE_AVX512 static void tile_float(const float *a, const float *b, float *c, int fused)
{
    TILE_BODY(__m512, _mm512_load_ps, _mm512_set1_ps, _mm512_store_ps, _mm512_mul_ps,
              _mm512_add_ps, _mm512_fmadd_ps, 16, fused)
}

static void run_tile(void *p)
{
    tile_ctx *t = p;
    for (int rep = 0; rep < 64; rep++) {
        if (t->kind < TILE_F_MULADD)
            tile_double(t->a, t->b, t->c, t->kind == TILE_D_FMA);
        else
            tile_float((const float *)t->a, (const float *)t->b, (float *)t->c,
                       t->kind == TILE_F_FMA);
        clobber(t->c);
    }
}

/* GFLOP/s of each tile into rate[]; 0 when the CPU has no AVX-512F/FMA. */
static void bench_tiles(const plan *pl, double *rate)
{
    for (int k = 0; k < TILE_KINDS; k++)
        rate[k] = 0.0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("fma"))
        return;
    size_t bytes = 8 * TILE_DEPTH * 32 * sizeof(double);
    tile_ctx ctx[TILE_KINDS];
    bench_case cases[TILE_KINDS];
    for (int k = 0; k < TILE_KINDS; k++) {
        ctx[k].kind = k;
        ctx[k].a = aligned_alloc(64, bytes);
        ctx[k].b = aligned_alloc(64, bytes);
        ctx[k].c = aligned_alloc(64, bytes);
        if (ctx[k].a == NULL || ctx[k].b == NULL || ctx[k].c == NULL) {
            fprintf(stderr, "bench_dense: out of memory\n");
            exit(EXIT_FAILURE);
        }
        for (size_t i = 0; i < bytes / sizeof(double); i++) {
            ctx[k].a[i] = ctx[k].b[i] = 1e-3; /* small: sums stay finite */
            ctx[k].c[i] = 0.0;
        }
        if (k >= TILE_F_MULADD)
            for (size_t i = 0; i < bytes / sizeof(float); i++) {
                ((float *)ctx[k].a)[i] = ((float *)ctx[k].b)[i] = 1e-3f;
                ((float *)ctx[k].c)[i] = 0.0f;
            }
        double lanes = k < TILE_F_MULADD ? 8.0 : 16.0;
        bench_case c = {tile_name[k], run_tile, NULL, &ctx[k],
                        64.0 * 2.0 * TILE_DEPTH * 8 * 2 * lanes, 0, 0.0, 0.0, 0.0, 0, NULL};
        cases[k] = c;
    }
    measure(cases, TILE_KINDS, pl);
    printf("0. An 8 x 16-vector tile in L1, depth %d, GFLOP/s:", TILE_DEPTH);
    for (int k = 0; k < TILE_KINDS; k++) {
        rate[k] = cases[k].median * 1e-9;
        printf("%s %s %.1f", k ? "," : "", tile_name[k], rate[k]);
        free(ctx[k].a);
        free(ctx[k].b);
        free(ctx[k].c);
    }
    printf(" (%zu rounds, CPU share %.2f)\n\n", cases[0].rounds, least_share(cases, TILE_KINDS));
    fflush(stdout);
}
#else
enum { TILE_KINDS = 4 };
static void bench_tiles(const plan *pl, double *rate)
{
    (void)pl;
    for (int k = 0; k < TILE_KINDS; k++)
        rate[k] = 0.0;
}
#endif

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
    const invdl_dense_plu *plu;   /* a dense_lu layer's factors (not owned) */
    const float *lub, *luy;       /* its bias, and its outputs for the inverse */
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

static void run_lu_forward(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_plu_forward(c->k, c->plu, c->lub, c->batch, c->x, c->out, c->scratch);
    else
        plain_plu_forward(c->plu, c->lub, c->batch, c->x, c->out, c->scratch);
}

static void run_lu_backward(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_plu_backward(c->k, c->plu, 0, c->batch, c->x, NULL, c->g, c->din, c->dparams,
                                 c->scratch);
    else
        plain_plu_backward(c->plu, 0, c->batch, c->x, NULL, c->g, c->din, c->dparams,
                           c->scratch);
}

static void run_lu_inverse(void *p)
{
    kernel_ctx *c = p;
    if (c->k != NULL)
        invdl_dense_plu_inverse(c->k, c->plu, c->lub, c->batch, c->luy, c->out, c->scratch);
    else
        plain_plu_inverse(c->plu, c->lub, c->batch, c->luy, c->out, c->scratch);
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

enum { OP_FORWARD, OP_BACKWARD, OP_INVERSE, OP_FACTOR, OP_LU_FORWARD, OP_LU_BACKWARD,
       OP_LU_INVERSE, OP_COUNT };
static const char *const op_name[OP_COUNT] = {"forward",        "backward",        "inverse",
                                              "factor",         "dense_lu forward",
                                              "dense_lu backward", "dense_lu inverse"};
enum { V_INVDL, V_SCALAR, V_LOOPS, V_FLOAT, V_BLAS, V_COUNT };
static const char *const variant_name[V_COUNT] = {
    "invdl", "invdl scalar path", "plain loops, double", "textbook loops, float",
    "OpenBLAS dgemm"};

typedef struct kernel_result {
    size_t width;
    double gflops[OP_COUNT][V_COUNT]; /* NaN: not run */
    double paired_loops[OP_COUNT];    /* invdl / plain loops, paired */
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

    /* A dense_lu layer, moved off its start like W above. */
    invdl_layer *lu_layer = invdl_layer_dense_lu(n, SEED + n);
    float *lu_params = xmalloc(np * sizeof *lu_params), *lu_y = xmalloc(count * sizeof *lu_y);
    if (lu_layer == NULL || invdl_layer_get_params(lu_layer, np, lu_params) != INVDL_OK) {
        fprintf(stderr, "bench_dense: cannot make a dense_lu layer\n");
        exit(EXIT_FAILURE);
    }
    for (size_t i = 0; i < np; i++)
        lu_params[i] += uniform(&state, 0.1f);
    if (invdl_layer_set_params(lu_layer, np, lu_params) != INVDL_OK ||
        invdl_layer_apply(lu_layer, batch, x, lu_y) != INVDL_OK) {
        fprintf(stderr, "bench_dense: cannot set a dense_lu layer\n");
        exit(EXIT_FAILURE);
    }
    const invdl_dense_plu *plu = lu_layer->params->cache;

    size_t scratch_count = invdl_dense_scratch_count(n) + 5 * n;
    kernel_ctx ctx[V_COUNT];
    for (int v = 0; v < V_COUNT; v++) {
        kernel_ctx *c = &ctx[v];
        memset(c, 0, sizeof *c);
        c->n = n;
        c->batch = batch;
        c->k = v == V_INVDL ? best : v == V_SCALAR ? &invdl_dense_scalar : NULL;
        c->f = f;
        c->plu = plu;
        c->lub = lu_params + n * n;
        c->luy = lu_y;
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

    /* Every invdl variant must give the plain loops' bits. */
    for (int op = 0; op < OP_COUNT; op++) {
        for (int v = V_INVDL; v <= V_FLOAT; v++) {
            if (v == V_FLOAT && op != OP_FORWARD && op != OP_BACKWARD)
                continue;
            kernel_ctx *c = &ctx[v];
            reset_grad(c);
            switch (op) {
            case OP_FORWARD: v == V_FLOAT ? run_forward_float(c) : run_forward(c); break;
            case OP_BACKWARD: v == V_FLOAT ? run_backward_float(c) : run_backward(c); break;
            case OP_INVERSE: run_inverse(c); break;
            case OP_LU_FORWARD: run_lu_forward(c); break;
            case OP_LU_BACKWARD: run_lu_backward(c); break;
            case OP_LU_INVERSE: run_lu_inverse(c); break;
            default: run_factor(c); break;
            }
        }
        const kernel_ctx *ref = &ctx[V_LOOPS];
        for (int v = V_INVDL; v <= V_SCALAR; v++) {
            const kernel_ctx *c = &ctx[v];
            size_t d = 0;
            if (op == OP_FORWARD || op == OP_INVERSE || op == OP_LU_FORWARD ||
                op == OP_LU_INVERSE)
                d = differing(count, c->out, ref->out);
            else if (op == OP_BACKWARD || op == OP_LU_BACKWARD)
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

    double nnb = (double)(n * n * batch);
    double flops[OP_COUNT] = {2.0 * nnb, 4.0 * nnb, 2.0 * nnb,
                              8.0 / 3.0 * (double)n * (double)n * (double)n,
                              2.0 * nnb, 5.0 * nnb, 2.0 * nnb};
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
            case OP_LU_FORWARD: run = v == V_FLOAT ? NULL : run_lu_forward; break;
            case OP_LU_BACKWARD: run = v == V_FLOAT ? NULL : run_lu_backward; break;
            case OP_LU_INVERSE: run = v == V_FLOAT ? NULL : run_lu_inverse; break;
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
            bench_case bcse = {variant_name[v], run,
                               op == OP_BACKWARD || op == OP_LU_BACKWARD ? reset_grad : NULL,
                               cctx, flops[op], 0, 0.0, 0.0, 0.0, 0, NULL};
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
        printf("  width %4zu %-17s", n, op_name[op]);
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
    invdl_layer_free(lu_layer);
    free(lu_params);
    free(lu_y);
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

/* PyTorch in the same run: tests/bench_torch.py as a server process, one
 * command per line each way (the script's docstring). */
typedef struct torch_server {
    FILE *to, *from;
    pid_t pid;
    char version[64];
    char why[256]; /* why it is not there */
} torch_server;

static int torch_start(torch_server *t, const char *script)
{
    memset(t, 0, sizeof *t);
    t->pid = -1;
    if (script == NULL || script[0] == '\0') {
        snprintf(t->why, sizeof t->why, "no script (INVDL_BENCH_TORCH not set)");
        return 0;
    }
    if (access(PYTHON3, X_OK) != 0) {
        snprintf(t->why, sizeof t->why, "%s not found", PYTHON3);
        return 0;
    }
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        snprintf(t->why, sizeof t->why, "pipe: %s", strerror(errno));
        return 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(t->why, sizeof t->why, "fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(PYTHON3, PYTHON3, script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->pid = pid;
    t->to = fdopen(in[1], "w");
    t->from = fdopen(out[0], "r");
    char line[512];
    if (t->to == NULL || t->from == NULL || fgets(line, sizeof line, t->from) == NULL) {
        snprintf(t->why, sizeof t->why, "%s %s did not start", PYTHON3, script);
        return 0;
    }
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "ready torch ", 12) != 0) {
        snprintf(t->why, sizeof t->why, "%.200s",
                 strncmp(line, "unavailable ", 12) == 0 ? line + 12 : line);
        return 0;
    }
    snprintf(t->version, sizeof t->version, "%.60s", line + 12);
    return 1;
}

static void torch_stop(torch_server *t)
{
    if (t->to != NULL) {
        fprintf(t->to, "quit\n");
        fclose(t->to);
    }
    if (t->from != NULL)
        fclose(t->from);
    if (t->pid > 0)
        waitpid(t->pid, NULL, 0);
    t->to = t->from = NULL;
    t->pid = -1;
}

/* Sends one command; the answer's first line into line (NULL: failed). */
static char *torch_ask(torch_server *t, const char *command, char *line, size_t size)
{
    fprintf(t->to, "%s\n", command);
    fflush(t->to);
    if (fgets(line, (int)size, t->from) == NULL) {
        fprintf(stderr, "bench_dense: the PyTorch process stopped answering\n");
        exit(EXIT_FAILURE);
    }
    return line;
}

/* Dense layer kinds for the trainer beside invdl's own: the scalar path,
 * and the factorisation after every step as before (the products are
 * invdl's). */
typedef struct trainer_kinds {
    invdl_layer_ops dense_scalar, dense_every_step, lu_scalar;
#ifdef BENCH_HAVE_CBLAS
    invdl_layer_ops blas; /* invdl with OpenBLAS for the products */
#endif
} trainer_kinds;

extern const invdl_layer_ops invdl_dense_lu_ops;

static invdl_status every_step_prepare(const invdl_params *p, const float *values, void *cache,
                                       int complete)
{
    (void)complete;
    return invdl_dense_ops.prepare(p, values, cache, 1);
}

static invdl_status lu_scalar_apply(const invdl_params *p, int inverse, size_t batch,
                                    const float *in, float *out, double *scratch)
{
    const float *b = p->values + p->width * p->width;
    if (!inverse)
        invdl_dense_plu_forward(&invdl_dense_scalar, p->cache, b, batch, in, out, scratch);
    else
        invdl_dense_plu_inverse(&invdl_dense_scalar, p->cache, b, batch, in, out, scratch);
    return INVDL_OK;
}

static void lu_scalar_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                               const float *out, const float *dout, float *din, double *dparams,
                               double *scratch)
{
    invdl_dense_plu_backward(&invdl_dense_scalar, p->cache, inverse, batch, in, out, dout, din,
                             dparams, scratch);
}

static trainer_kinds make_trainer_kinds(void)
{
    trainer_kinds k;
    k.dense_scalar = invdl_dense_ops;
    k.dense_scalar.prepare = scalar_prepare;
    k.dense_scalar.apply = scalar_apply;
    k.dense_scalar.backward = scalar_backward;
    k.dense_every_step = invdl_dense_ops;
    k.dense_every_step.prepare = every_step_prepare;
    k.lu_scalar = invdl_dense_lu_ops;
    k.lu_scalar.apply = lu_scalar_apply;
    k.lu_scalar.backward = lu_scalar_backward;
#ifdef BENCH_HAVE_CBLAS
    k.blas = invdl_dense_ops;
    k.blas.apply = blas_apply;
    k.blas.backward = blas_backward;
#endif
    return k;
}

enum { T_DENSE, T_LU, T_EVERY, T_DENSE_SCALAR, T_LU_SCALAR, T_BLAS, T_TORCH, T_COUNT };
static const char *const trainer_variant[T_COUNT] = {
    "dense",         "dense_lu",           "dense, factorised each step", "dense, scalar path",
    "dense_lu, scalar path", "dense + OpenBLAS dgemm", "PyTorch"};

typedef struct fit_ctx {
    invdl_model *model;
    size_t n, width, nparams;
    const float *x, *y, *initial;
    int memory_saving;
    float loss;
    invdl_status status;
    torch_server *torch; /* the PyTorch case: this, not the model */
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

/* One PyTorch epoch: its time as the Python process measured it. */
static double run_torch(void *p, int wall_clock, double *share)
{
    fit_ctx *c = p;
    char line[256];
    double cpu = 0.0, wall = 0.0, loss = 0.0;
    if (sscanf(torch_ask(c->torch, "run", line, sizeof line), "%lf %lf %lf", &cpu, &wall,
               &loss) != 3) {
        fprintf(stderr, "bench_dense: PyTorch answered %s", line);
        exit(EXIT_FAILURE);
    }
    c->loss = (float)loss;
    *share = cpu / wall;
    return wall_clock ? wall : cpu;
}

#define DEPTH_BLOCKS 4

/* dense, mprelu, dense, mprelu, ...: the dense layers of `kind` (dense_lu
 * or dense, with dense's starting values for the other dense kinds). */
static invdl_model *make_model(size_t width, const invdl_layer_ops *kind)
{
    invdl_model *m = invdl_model_create(width);
    if (m == NULL)
        return NULL;
    int lu = kind == &invdl_dense_lu_ops || (kind != NULL && kind->kind == INVDL_LAYER_DENSE_LU);
    for (size_t blk = 0; blk < DEPTH_BLOCKS; blk++) {
        uint64_t seed = SEED + 31 * blk;
        invdl_layer *d = lu ? invdl_layer_dense_lu(width, seed) : invdl_layer_dense(width, seed);
        if (d != NULL && kind != NULL && kind != &invdl_dense_lu_ops && kind != &invdl_dense_ops) {
            size_t count = invdl_layer_param_count(d);
            float *v = invdl_alloc_array(count, sizeof *v);
            invdl_layer *own = NULL;
            if (v != NULL && invdl_layer_get_params(d, count, v) == INVDL_OK)
                own = invdl_layer_create(kind, width, d->params->settings, v, NULL);
            else
                invdl_free(v);
            invdl_layer_free(d);
            d = own;
        }
        if (invdl_model_add(m, d) != INVDL_OK ||
            invdl_model_add(m, invdl_layer_mprelu(width, seed + 1)) != INVDL_OK) {
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
    double rate[2][T_COUNT]; /* [memory_saving][variant], samples per second; NaN: not run */
    double paired_torch[2][T_COUNT]; /* median over rounds of rate / PyTorch's rate */
    double blas_dev[2];      /* OpenBLAS variant's trained parameters: max relative
                                difference from invdl's */
} trainer_result;

static int bench_trainer(size_t width, const plan *pl, const trainer_kinds *kinds,
                         torch_server *torch, trainer_result *res)
{
    /* Enough samples for a fit of some tens of milliseconds. */
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
    float *initial[2] = {NULL, NULL}, *after[T_COUNT];
    size_t nparams = 0;
    int run[T_COUNT];
    for (int v = 0; v < T_COUNT; v++) {
        run[v] = 1;
        after[v] = NULL;
        memset(&ctx[v], 0, sizeof ctx[v]);
        const invdl_layer_ops *kind = NULL;
        switch (v) {
        case T_DENSE: kind = &invdl_dense_ops; break;
        case T_LU: kind = &invdl_dense_lu_ops; break;
        case T_EVERY: kind = &kinds->dense_every_step; break;
        case T_DENSE_SCALAR: kind = &kinds->dense_scalar; break;
        case T_LU_SCALAR: kind = &kinds->lu_scalar; break;
#ifdef BENCH_HAVE_CBLAS
        case T_BLAS: kind = &kinds->blas; break;
#else
        case T_BLAS: run[v] = 0; break;
#endif
        default: break;
        }
        if (v == T_TORCH) {
            char command[128], line[256];
            snprintf(command, sizeof command, "setup %zu %zu 0.001", width, n);
            run[v] = torch->pid > 0 && torch->version[0] != '\0' &&
                     strncmp(torch_ask(torch, command, line, sizeof line), "ok", 2) == 0;
            ctx[v].torch = torch;
            ctx[v].n = n;
            continue;
        }
        if (!run[v])
            continue;
        invdl_model *m = make_model(width, kind);
        if (m == NULL) {
            fprintf(stderr, "bench_dense: cannot make the model\n");
            exit(EXIT_FAILURE);
        }
        int lu = v == T_LU || v == T_LU_SCALAR;
        nparams = invdl_model_param_count(m);
        if (initial[lu] == NULL) {
            initial[lu] = xmalloc(nparams * sizeof *initial[lu]);
            if (invdl_model_get_params(m, nparams, initial[lu]) != INVDL_OK)
                exit(EXIT_FAILURE);
        }
        fit_ctx c = {m, n, width, nparams, x, y, initial[lu], 0, 0.0f, INVDL_OK, NULL};
        ctx[v] = c;
        after[v] = xmalloc(nparams * sizeof *after[v]);
    }

    for (int saving = 0; saving < 2; saving++) {
        /* One fit from the same start: the variants of one kind must train
         * to the same bits; OpenBLAS (FMA, its own order of summation) only
         * nearly. */
        for (int v = 0; v < T_TORCH; v++) {
            if (!run[v])
                continue;
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
        static const int same_as[][2] = {{T_EVERY, T_DENSE}, {T_DENSE_SCALAR, T_DENSE},
                                         {T_LU_SCALAR, T_LU}};
        for (size_t q = 0; q < sizeof same_as / sizeof same_as[0]; q++) {
            int v = same_as[q][0], ref = same_as[q][1];
            if (differing(nparams, after[v], after[ref]) != 0) {
                printf("  MISMATCH: width %zu, %s: %s trained to other parameters than %s\n",
                       width, saving ? "memory saving" : "stored", trainer_variant[v],
                       trainer_variant[ref]);
                ok = 0;
            }
        }
        res->blas_dev[saving] = (double)NAN;
#ifdef BENCH_HAVE_CBLAS
        res->blas_dev[saving] = rel_dev(nparams, after[T_BLAS], after[T_DENSE]);
#endif

        /* PyTorch first, so that "paired" ratios are against it. */
        bench_case cases[T_COUNT];
        int which[T_COUNT];
        size_t ncases = 0;
        if (run[T_TORCH]) {
            bench_case c = {trainer_variant[T_TORCH], NULL, NULL, &ctx[T_TORCH], (double)n,
                            0, 0.0, 0.0, 0.0, 0, run_torch};
            which[ncases] = T_TORCH;
            cases[ncases++] = c;
        }
        for (int v = 0; v < T_TORCH; v++) {
            if (!run[v])
                continue;
            bench_case c = {trainer_variant[v], run_fit, reset_fit, &ctx[v], (double)n,
                            0, 0.0, 0.0, 0.0, 0, NULL};
            which[ncases] = v;
            cases[ncases++] = c;
        }
        plan p = *pl;
        p.sample_s = 0.0; /* one fit per sample */
        measure(cases, ncases, &p);
        for (int v = 0; v < T_COUNT; v++) {
            res->rate[saving][v] = (double)NAN;
            res->paired_torch[saving][v] = (double)NAN;
        }
        for (size_t k = 0; k < ncases; k++) {
            res->rate[saving][which[k]] = cases[k].median;
            if (run[T_TORCH])
                res->paired_torch[saving][which[k]] = cases[k].paired;
        }
        printf("  width %4zu %-13s samples/s:", width, saving ? "memory saving" : "stored");
        for (size_t k = 0; k < ncases; k++)
            printf("%s %s %.0f", k == 0 ? "" : ",", trainer_variant[which[k]], cases[k].median);
        printf(" (%zu rounds, CPU share %.2f)\n", cases[0].rounds, least_share(cases, ncases));
        fflush(stdout);
        for (int v = 0; v < T_TORCH; v++)
            if (run[v] && ctx[v].status != INVDL_OK)
                ok = 0;
    }
    for (int v = 0; v < T_TORCH; v++) {
        invdl_model_free(ctx[v].model);
        free(after[v]);
    }
    free(initial[0]);
    free(initial[1]);
    free(x);
    free(y);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

enum md_style { MD_GFLOPS, MD_COUNT, MD_RATIO, MD_RATIO2 };

static void md_value(double v, enum md_style style)
{
    if (isnan(v))
        printf(" - |");
    else if (style == MD_GFLOPS)
        printf(" %.3g |", v);
    else if (style == MD_COUNT)
        printf(" %.0f |", v);
    else if (style == MD_RATIO2)
        printf(" %.2fx |", v);
    else
        printf(" %.1fx |", v);
}

static void print_markdown(const kernel_result *kr, const trainer_result *tr, const char *machine,
                           const char *timing, const char *command, const char *torch_note)
{
    printf("\nMarkdown\n--------\n\n");
    printf("Dense layer, batch of %zu, GFLOP/s (medians):\n\n", BATCH);
    printf("| width | operation | invdl | scalar path | plain loops (double) | textbook loops "
           "(float) |");
#ifdef BENCH_HAVE_CBLAS
    printf(" OpenBLAS dgemm |");
#endif
    printf(" invdl / plain loops | invdl / float loops |\n");
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
    printf("\nTrainer, depth 8 ((dense or dense_lu) + mprelu, 4 times), batch 32, SGD on MSE, "
           "one epoch, samples/s (medians; ratios: median over rounds of the ratio to PyTorch "
           "in the same round):\n\n");
    static const int cols[] = {T_TORCH, T_DENSE, T_LU, T_EVERY, T_DENSE_SCALAR, T_LU_SCALAR,
#ifdef BENCH_HAVE_CBLAS
                               T_BLAS,
#endif
    };
    size_t ncols = sizeof cols / sizeof cols[0];
    printf("| width | backprop |");
    for (size_t c = 0; c < ncols; c++)
        printf(" %s |", trainer_variant[cols[c]]);
    printf(" dense / PyTorch | dense_lu / PyTorch |\n|--:|---|");
    for (size_t c = 0; c < ncols + 2; c++)
        printf("--:|");
    printf("\n");
    for (size_t w = 0; w < TRAINER_WIDTH_COUNT; w++)
        for (int s = 0; s < 2; s++) {
            printf("| %zu | %s |", tr[w].width, s ? "memory saving" : "stored");
            for (size_t c = 0; c < ncols; c++)
                md_value(tr[w].rate[s][cols[c]], MD_COUNT);
            md_value(tr[w].paired_torch[s][T_DENSE], MD_RATIO2);
            md_value(tr[w].paired_torch[s][T_LU], MD_RATIO2);
            printf("\n");
        }
    printf("\nPyTorch: %s; the same network (nn.Linear + nn.PReLU(width), float32, SGD, lr "
           "0.001), its stored backprop in both rows.\n", torch_note);
    printf("\nMedians of interleaved rounds in one process, single thread, %s; %s. Command: "
           "`%s`.\n",
           timing, machine, command);
}

/* ------------------------------------------------------------------------ */
/* Part 3: the coupling layer                                               */
/* ------------------------------------------------------------------------ */

/* Width, hidden units: a small flow's block, and two wider ones. */
static const size_t COUPLING_SHAPES[][2] = {{8, 64}, {64, 256}, {256, 512}};
#define COUPLING_SHAPE_COUNT (sizeof COUPLING_SHAPES / sizeof COUPLING_SHAPES[0])
/* PyTorch's passes per sample (one pipe round trip each, timed inside). */
#define TORCH_REPS 20u

typedef struct coupling_ctx {
    const invdl_layer *layer; /* forward, or its inverse */
    const float *in;
    float *out;
    torch_server *torch;
    int inverse;
} coupling_ctx;

static void run_coupling(void *p)
{
    coupling_ctx *c = p;
    if (invdl_layer_apply(c->layer, BATCH, c->in, c->out) != INVDL_OK)
        exit(EXIT_FAILURE);
}

static double run_coupling_torch(void *p, int wall_clock, double *share)
{
    coupling_ctx *c = p;
    char command[64], line[256];
    double cpu = 0.0, wall = 0.0;
    snprintf(command, sizeof command, "%s %u", c->inverse ? "cinverse" : "cforward", TORCH_REPS);
    if (sscanf(torch_ask(c->torch, command, line, sizeof line), "%lf %lf", &cpu, &wall) != 2) {
        fprintf(stderr, "bench_dense: PyTorch answered %s", line);
        exit(EXIT_FAILURE);
    }
    *share = cpu / wall;
    return wall_clock ? wall : cpu;
}

typedef struct coupling_result {
    size_t width, hidden;
    double rate[2][2];   /* [inverse][invdl, PyTorch], samples per second */
    double paired[2];    /* [inverse] median over rounds of invdl's rate / PyTorch's */
} coupling_result;

/* An affine coupling layer (even condition) with every parameter drawn
 * like PyTorch's block: W1 glorot-uniform from the constructor, b1
 * uniform, W2 and b2 small, so that s and t are not 0. */
static int bench_coupling(size_t width, size_t hidden, const plan *pl, torch_server *torch,
                          coupling_result *res)
{
    invdl_layer *l = invdl_layer_coupling(width, hidden, 0, SEED);
    invdl_layer *inv = l != NULL ? invdl_layer_inverse(l) : NULL;
    if (inv == NULL) {
        fprintf(stderr, "bench_dense: cannot make the coupling layer\n");
        exit(EXIT_FAILURE);
    }
    size_t np = invdl_layer_param_count(l), nc = (width + 1) / 2;
    float *v = xmalloc(np * sizeof *v), *x = xmalloc(BATCH * width * sizeof *x);
    float *y = xmalloc(BATCH * width * sizeof *y), *back = xmalloc(BATCH * width * sizeof *back);
    uint64_t state = SEED ^ (width * 131 + hidden);
    if (invdl_layer_get_params(l, np, v) != INVDL_OK)
        exit(EXIT_FAILURE);
    for (size_t i = hidden * nc; i < np; i++)
        v[i] = uniform(&state, i < hidden * (nc + 1) ? 0.5f : 0.1f / sqrtf((float)hidden));
    if (invdl_layer_set_params(l, np, v) != INVDL_OK)
        exit(EXIT_FAILURE);
    fill(BATCH * width, 1.0f, &state, x);
    int ok = 1;
    /* The round trip, as a check that both directions ran. */
    if (invdl_layer_apply(l, BATCH, x, y) != INVDL_OK ||
        invdl_layer_apply(inv, BATCH, y, back) != INVDL_OK ||
        rel_dev(BATCH * width, back, x) > 1e-5) {
        printf("  FAILED: coupling round trip at width %zu\n", width);
        ok = 0;
    }
    char command[128], line[256];
    snprintf(command, sizeof command, "coupling %zu %zu %zu", width, hidden, BATCH);
    int have_torch = torch->pid > 0 && torch->version[0] != '\0' &&
                     strncmp(torch_ask(torch, command, line, sizeof line), "ok", 2) == 0;
    res->width = width;
    res->hidden = hidden;
    for (int inverse = 0; inverse < 2; inverse++) {
        coupling_ctx cx = {inverse ? inv : l, inverse ? y : x, back, torch, inverse};
        bench_case cases[2];
        size_t ncases = 0;
        if (have_torch) {
            bench_case c = {"PyTorch", NULL, NULL, &cx, (double)(BATCH * TORCH_REPS),
                            0, 0.0, 0.0, 0.0, 0, run_coupling_torch};
            cases[ncases++] = c;
        }
        bench_case c = {"invdl", run_coupling, NULL, &cx, (double)BATCH,
                        0, 0.0, 0.0, 0.0, 0, NULL};
        cases[ncases++] = c;
        measure(cases, ncases, pl);
        bench_case *mine = &cases[ncases - 1];
        res->rate[inverse][0] = mine->median;
        res->rate[inverse][1] = have_torch ? cases[0].median : (double)NAN;
        res->paired[inverse] = have_torch ? mine->paired : (double)NAN;
        printf("  width %4zu, hidden %4zu, %s: invdl %.3g samples/s, PyTorch %.3g, "
               "invdl / PyTorch %.2f (CPU share %.2f)\n",
               width, hidden, inverse ? "inverse" : "forward", res->rate[inverse][0],
               res->rate[inverse][1], res->paired[inverse], least_share(cases, ncases));
        fflush(stdout);
    }
    free(v);
    free(x);
    free(y);
    free(back);
    invdl_layer_free(inv);
    invdl_layer_free(l);
    return ok;
}

static void print_coupling_markdown(const coupling_result *cr, const char *torch_note,
                                    const char *machine, const char *timing, const char *command)
{
    printf("\nCoupling layer (affine, one hidden tanh layer), batch of %zu, samples/s "
           "(medians; ratio: median over rounds of invdl's rate / PyTorch's in the same "
           "round; the target is at least 0.67, within 1.5x):\n\n",
           BATCH);
    printf("| width | hidden | direction | invdl | PyTorch | invdl / PyTorch |\n"
           "|--:|--:|---|--:|--:|--:|\n");
    for (size_t k = 0; k < COUPLING_SHAPE_COUNT; k++)
        for (int inverse = 0; inverse < 2; inverse++) {
            printf("| %zu | %zu | %s |", cr[k].width, cr[k].hidden,
                   inverse ? "inverse" : "forward");
            md_value(cr[k].rate[inverse][0], MD_COUNT);
            md_value(cr[k].rate[inverse][1], MD_COUNT);
            md_value(cr[k].paired[inverse], MD_RATIO2);
            printf("\n");
        }
    printf("\nPyTorch: %s; the same block (nn.Linear, tanh, nn.Linear, strided halves), "
           "float32, torch.no_grad(), %u passes per timed call.\n",
           torch_note, TORCH_REPS);
    printf("\nMedians of interleaved rounds, single thread, %s; %s. Command: `%s`.\n", timing,
           machine, command);
}

/* ------------------------------------------------------------------------ */
/* Main                                                                      */
/* ------------------------------------------------------------------------ */

/* The CPU's model name, family and model number from /proc/cpuinfo. */
static void cpu_model(char *model, size_t size)
{
    snprintf(model, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512], name[256] = "unknown CPU";
    long family = -1, number = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        for (colon++; *colon == ' ' || *colon == '\t'; colon++)
            ;
        if (strncmp(line, "model name", 10) == 0 && strcmp(name, "unknown CPU") == 0) {
            snprintf(name, sizeof name, "%s", colon);
            size_t len = strlen(name);
            while (len > 0 && isspace((unsigned char)name[len - 1]))
                name[--len] = '\0';
        } else if (strncmp(line, "cpu family", 10) == 0 && family < 0) {
            family = strtol(colon, NULL, 10);
        } else if (strncmp(line, "model\t", 6) == 0 && number < 0) {
            number = strtol(colon, NULL, 10);
        } else if (line[0] == '\n') {
            break; /* the first CPU is enough */
        }
    }
    fclose(f);
    if (family >= 0)
        snprintf(model, size, "%s (family %ld, model %ld)", name, family, number);
    else
        snprintf(model, size, "%s", name);
}

int main(int argc, char **argv)
{
    double budget = 1.0;
    int quick = 0, wall_clock = 0, parts = 7;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        errno = 0;
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--wall") == 0) {
            wall_clock = 1;
        } else if (strcmp(argv[i], "--kernels") == 0) {
            parts = 1;
        } else if (strcmp(argv[i], "--trainer") == 0) {
            parts = 2;
        } else if (strcmp(argv[i], "--coupling") == 0) {
            parts = 4;
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
    char cpu[256], machine[512], command[512];
    cpu_model(cpu, sizeof cpu);
    int avx2 = 0, fma = 0, avx512 = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") != 0;
    fma = __builtin_cpu_supports("fma") != 0;
    avx512 = __builtin_cpu_supports("avx512f") != 0;
#endif
    snprintf(machine, sizeof machine,
             "%s, %ld CPUs online, AVX2 %s, FMA %s, AVX-512F %s, kernels: %s", cpu,
             sysconf(_SC_NPROCESSORS_ONLN), avx2 ? "yes" : "no", fma ? "yes" : "no",
             avx512 ? "yes" : "no", invdl_dense_kernels_best()->name);
    const char *env = getenv("INVDL_BENCH_COMMAND");
    snprintf(command, sizeof command, "%s%s%s%s", env != NULL && env[0] != '\0' ? env : argv[0],
             quick ? " --quick" : "", wall_clock ? " --wall" : "",
             parts == 1   ? " --kernels"
             : parts == 2 ? " --trainer"
             : parts == 4 ? " --coupling"
                          : "");

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

    /* PyTorch, when Debian's python3-torch (or any torch) imports. */
    torch_server torch;
    char torch_note[384];
    if (parts & 6) {
        if (torch_start(&torch, getenv("INVDL_BENCH_TORCH")))
            snprintf(torch_note, sizeof torch_note, "torch %s through %s, one thread",
                     torch.version, PYTHON3);
        else
            snprintf(torch_note, sizeof torch_note, "not measured (%s)", torch.why);
        printf("PyTorch:  %s\n\n", torch_note);
    }

    int ok = 1;
    kernel_result kr[KERNEL_WIDTH_COUNT];
    memset(kr, 0, sizeof kr);
    for (size_t w = 0; w < KERNEL_WIDTH_COUNT; w++) {
        kr[w].width = KERNEL_WIDTHS[w];
        for (int op = 0; op < OP_COUNT; op++)
            for (int v = 0; v < V_COUNT; v++)
                kr[w].gflops[op][v] = (double)NAN;
    }
    plan kp = {1.5 * budget, quick ? 5 : 15, 2001, 0.02, wall_clock};
    double tile_rate[TILE_KINDS];
    bench_tiles(&kp, tile_rate);
    if (parts & 1) {
        printf("1. Kernels, batch %zu\n", BATCH);
        for (size_t w = 0; w < KERNEL_WIDTH_COUNT; w++)
            ok &= bench_width(KERNEL_WIDTHS[w], &kp, &kr[w]);
    }

    trainer_kinds kinds = make_trainer_kinds();
    trainer_result tr[TRAINER_WIDTH_COUNT];
    memset(tr, 0, sizeof tr);
    plan tp = {4.0 * budget, quick ? 3 : 7, 2001, 0.0, wall_clock};
    if (parts & 2) {
        printf("\n2. Trainer, depth 8 ((dense or dense_lu) + mprelu, 4 times), batch 32, one "
               "epoch per sample\n");
        for (size_t w = 0; w < TRAINER_WIDTH_COUNT; w++)
            ok &= bench_trainer(TRAINER_WIDTHS[w], &tp, &kinds, &torch, &tr[w]);
    }
    coupling_result cr[COUPLING_SHAPE_COUNT];
    memset(cr, 0, sizeof cr);
    if (parts & 4) {
        printf("\n3. Coupling layer (affine), batch %zu, forward and inverse\n", BATCH);
        for (size_t k = 0; k < COUPLING_SHAPE_COUNT; k++)
            ok &= bench_coupling(COUPLING_SHAPES[k][0], COUPLING_SHAPES[k][1], &kp, &torch,
                                 &cr[k]);
    }
    if (parts & 6)
        torch_stop(&torch);

    const char *timing = wall_clock ? "wall clock" : "thread CPU time";
    if (parts & 3)
        print_markdown(kr, tr, machine, timing, command, parts & 2 ? torch_note : "not measured");
    else
        printf("\nMarkdown\n--------\n");
    if (parts & 4)
        print_coupling_markdown(cr, torch_note, machine, timing, command);
    if (!ok)
        printf("\nFAILED: a variant disagreed with the plain loops or reported an error\n");
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;

usage:
    fprintf(stderr,
            "usage: %s [--quick] [--budget=FACTOR] [--wall] [--kernels | --trainer | "
            "--coupling]\n",
            argv[0]);
    return EXIT_FAILURE;
}
