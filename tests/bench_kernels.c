/*
 * bench_kernels.c - speed of every kernel direction against glibc and the
 * memory limit, measured in one run.  `meson test -C build --benchmark`.
 *
 * What is measured
 * ----------------
 * Each kernel direction runs at two sizes, 4096 floats (16 KiB, in L1) and
 * 16M floats (64 MiB per array, beyond any cache of the machines in view),
 * on every code path the library has and the CPU runs (the portable scalar
 * path, AVX2+FMA, AVX-512), next to the baselines of the same family:
 *   signed sin   invdl forward/inverse per path; x*sinf(fabsf(x)) with
 *                glibc's scalar sinf, and through libmvec at each vector
 *                width (_ZGVdN8v_sinf: 8 floats per call with AVX2,
 *                _ZGVeN16v_sinf: 16 with AVX-512);
 *   abs-tanh     likewise with fabsf(x)*tanhf(x) (_ZGVdN8v_tanhf,
 *                _ZGVeN16v_tanhf);
 *   mprelu       invdl forward/inverse per path on [rows][64] with glorot
 *                alphas, and the public functions on rows of 8 columns;
 *                memcpy (the memory limit) and copy loops through AVX2 and
 *                AVX-512 registers (the limit for a kernel of that width
 *                that stores through the cache).
 * Each SIMD path's forward is compared with the libmvec loop of its own
 * width, each inverse with its own path's forward.
 * Inputs lie in each direction's domain and come from a fixed seed: signed
 * sin uniform in [-XMAX, XMAX] forward and [-YMAX, YMAX] inverse; abs-tanh
 * uniform in [-4, 4] forward and its image inverse; mprelu uniform in
 * [-3, 3] (signs mixed at random) forward and its image inverse.
 *
 * How
 * ---
 * One sample is the CLOCK_MONOTONIC time of a few back-to-back calls (enough
 * for about 100 us in cache; one call out of cache) divided by the elements
 * processed.  The members of a family are sampled in interleaved rounds,
 * each round in a rotated order, so that a machine whose load drifts during
 * the run slows all of them alike; rounds go on until a time budget is
 * spent.  Reported: median, quartiles and extremes of the samples; every
 * target ratio is a ratio of medians from the same run, printed next to the
 * median of the ratios within each round as a check on the load's effect.  A memory barrier after
 * every call keeps the compiler from dropping or merging calls, and one
 * output element per sample is read into a volatile sink.
 *
 * Before timing, each family's outputs are checked: every SIMD path against
 * the scalar path (they must agree bit for bit), and the glibc loops
 * against invdl's correctly rounded results (their error in ulps).
 *
 * Options: --budget=F scales the time budget (default 1), --quick is
 * --budget=0.1 with fewer rounds, --large=N sets the out-of-cache size.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "bench_baselines.h"
#include "bench_config.h"
#include "invdl.h"
#include "kernels/kernels.h"

#define SMALL_N ((size_t)4096)
#define LARGE_N ((size_t)1 << 24)
#define MPRELU_COLS ((size_t)64)
#define SEED UINT64_C(0x5eed1e55c0ffee05)

/* ------------------------------------------------------------------------ */
/* What runs                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct bench_job {
    size_t n;
    const float *alpha; /* mprelu only, MPRELU_COLS of them; not owned */
    const float *in;    /* not owned */
    float *out;         /* not owned */
    invdl_status status; /* the first status other than INVDL_OK seen */
    invdl_elementwise_fn elementwise; /* a path's kernel, or NULL */
    invdl_mprelu_fn mprelu;           /* a path's PReLU kernel, or NULL */
} bench_job;

static void note_status(bench_job *job, invdl_status status)
{
    if (status != INVDL_OK && job->status == INVDL_OK)
        job->status = status;
}

/* A code path's kernel, as job_for() resolved it. */
static void run_path(bench_job *j)
{
    if (j->mprelu != NULL)
        note_status(j, j->mprelu(j->n / MPRELU_COLS, MPRELU_COLS, j->alpha, INVDL_MPRELU_ALPHA_MIN,
                                 j->in, j->out));
    else
        note_status(j, j->elementwise(j->n, j->in, j->out));
}

/* The mprelu kernels also run on rows of 8 columns (a width-8 layer's
 * batch), with the first 8 alphas, through the public functions: per-row
 * overheads show there. */
#define MPRELU_NARROW_COLS ((size_t)8)
static void run_mprelu_forward_narrow(bench_job *j)
{
    note_status(j, invdl_mprelu_forward(j->n / MPRELU_NARROW_COLS, MPRELU_NARROW_COLS, j->alpha,
                                        INVDL_MPRELU_ALPHA_MIN, j->in, j->out));
}

static void run_mprelu_inverse_narrow(bench_job *j)
{
    note_status(j, invdl_mprelu_inverse(j->n / MPRELU_NARROW_COLS, MPRELU_NARROW_COLS, j->alpha,
                                        INVDL_MPRELU_ALPHA_MIN, j->in, j->out));
}

static void run_ssin_glibc(bench_job *j) { bench_ssin_glibc_scalar(j->n, j->in, j->out); }
static void run_abstanh_glibc(bench_job *j) { bench_abstanh_glibc_scalar(j->n, j->in, j->out); }
static void run_memcpy(bench_job *j) { memcpy(j->out, j->in, j->n * sizeof *j->in); }
#ifdef BENCH_HAVE_LIBMVEC
static void run_ssin_libmvec_avx2(bench_job *j) { bench_ssin_libmvec_avx2(j->n, j->in, j->out); }
static void run_ssin_libmvec_avx512(bench_job *j) { bench_ssin_libmvec_avx512(j->n, j->in, j->out); }
static void run_abstanh_libmvec_avx2(bench_job *j)
{
    bench_abstanh_libmvec_avx2(j->n, j->in, j->out);
}
static void run_abstanh_libmvec_avx512(bench_job *j)
{
    bench_abstanh_libmvec_avx512(j->n, j->in, j->out);
}
static void run_copy_avx2(bench_job *j) { bench_copy_avx2_loop(j->n, j->in, j->out); }
static void run_copy_avx512(bench_job *j) { bench_copy_avx512_loop(j->n, j->in, j->out); }
#else
#define run_ssin_libmvec_avx2 NULL
#define run_ssin_libmvec_avx512 NULL
#define run_abstanh_libmvec_avx2 NULL
#define run_abstanh_libmvec_avx512 NULL
#define run_copy_avx2 NULL
#define run_copy_avx512 NULL
#endif

enum family { SSIN, ABSTANH, MPRELU, FAMILY_COUNT };
enum input { FORWARD_INPUT, INVERSE_INPUT };

/* The library's code paths, by the names of its table (kernels.h). */
enum path { PATH_SCALAR, PATH_AVX2, PATH_AVX512, PATH_COUNT, NO_PATH = -1 };
static const char *const PATH_NAMES[PATH_COUNT] = {"scalar", "AVX2", "AVX-512"};

enum kernel { SSIN_FORWARD, SSIN_INVERSE, ABSTANH_FORWARD, ABSTANH_INVERSE, MPRELU_FORWARD,
              MPRELU_INVERSE, NO_KERNEL };

enum case_id {
    SSIN_FWD_SCALAR, SSIN_FWD_AVX2, SSIN_FWD_AVX512,
    SSIN_INV_SCALAR, SSIN_INV_AVX2, SSIN_INV_AVX512,
    SSIN_GLIBC, SSIN_LIBMVEC_AVX2, SSIN_LIBMVEC_AVX512,
    ABSTANH_FWD_SCALAR, ABSTANH_FWD_AVX2, ABSTANH_FWD_AVX512,
    ABSTANH_INV_SCALAR, ABSTANH_INV_AVX2, ABSTANH_INV_AVX512,
    ABSTANH_GLIBC, ABSTANH_LIBMVEC_AVX2, ABSTANH_LIBMVEC_AVX512,
    MPRELU_FWD_SCALAR, MPRELU_FWD_AVX2, MPRELU_FWD_AVX512,
    MPRELU_INV_SCALAR, MPRELU_INV_AVX2, MPRELU_INV_AVX512,
    MPRELU_FWD_NARROW, MPRELU_INV_NARROW,
    COPY_MEMCPY, COPY_AVX2, COPY_AVX512,
    CASE_COUNT,
    NO_CASE = -1
};

/* What a case is: its outputs are checked accordingly. */
enum role {
    PATH,        /* an invdl code path (or public function): must equal the scalar path */
    SCALAR_PATH, /* the portable path every other path is compared with */
    BASELINE     /* glibc or a copy: its error is reported, not judged */
};

/* The instructions a baseline is built for. */
enum needs { ANY_CPU, NEEDS_AVX2, NEEDS_AVX512 };

typedef struct case_info {
    const char *label;
    enum family family;
    enum input input;
    void (*run)(bench_job *job); /* NULL: not built */
    enum path path;              /* invdl code path, or NO_PATH */
    enum kernel kernel;          /* its kernel, or NO_KERNEL */
    enum needs needs;            /* baselines: what the CPU must run */
    enum case_id check;          /* outputs compared with this case's, or NO_CASE */
    enum role role;
} case_info;

#define ON_PATH(label, family, input, path, kernel, scalar_case)                        \
    {label, family, input, run_path, path, kernel, ANY_CPU, path == PATH_SCALAR ? NO_CASE \
     : scalar_case, path == PATH_SCALAR ? SCALAR_PATH : PATH}
#define BASE(label, family, input, run, needs, check) \
    {label, family, input, run, NO_PATH, NO_KERNEL, needs, check, BASELINE}
/* A direction on the three paths. */
#define PATHS(id, name, family, input, kernel)                                                   \
    [id##_SCALAR] = ON_PATH(name ", scalar path", family, input, PATH_SCALAR, kernel, NO_CASE),  \
    [id##_AVX2] = ON_PATH(name ", AVX2 path", family, input, PATH_AVX2, kernel, id##_SCALAR),    \
    [id##_AVX512] = ON_PATH(name ", AVX-512 path", family, input, PATH_AVX512, kernel,           \
                            id##_SCALAR)

static const case_info CASES[CASE_COUNT] = {
    PATHS(SSIN_FWD, "invdl ssin forward", SSIN, FORWARD_INPUT, SSIN_FORWARD),
    PATHS(SSIN_INV, "invdl ssin inverse", SSIN, INVERSE_INPUT, SSIN_INVERSE),
    [SSIN_GLIBC] = BASE("glibc x*sinf(fabsf(x)), scalar", SSIN, FORWARD_INPUT, run_ssin_glibc,
                        ANY_CPU, SSIN_FWD_SCALAR),
    [SSIN_LIBMVEC_AVX2] = BASE("glibc x*sinf(fabsf(x)), libmvec _ZGVdN8v_sinf", SSIN, FORWARD_INPUT,
                               run_ssin_libmvec_avx2, NEEDS_AVX2, SSIN_FWD_SCALAR),
    [SSIN_LIBMVEC_AVX512] = BASE("glibc x*sinf(fabsf(x)), libmvec _ZGVeN16v_sinf", SSIN, FORWARD_INPUT,
                                 run_ssin_libmvec_avx512, NEEDS_AVX512, SSIN_FWD_SCALAR),
    PATHS(ABSTANH_FWD, "invdl abstanh forward", ABSTANH, FORWARD_INPUT, ABSTANH_FORWARD),
    PATHS(ABSTANH_INV, "invdl abstanh inverse", ABSTANH, INVERSE_INPUT, ABSTANH_INVERSE),
    [ABSTANH_GLIBC] = BASE("glibc fabsf(x)*tanhf(x), scalar", ABSTANH, FORWARD_INPUT,
                           run_abstanh_glibc, ANY_CPU, ABSTANH_FWD_SCALAR),
    [ABSTANH_LIBMVEC_AVX2] = BASE("glibc fabsf(x)*tanhf(x), libmvec _ZGVdN8v_tanhf", ABSTANH, FORWARD_INPUT,
                                  run_abstanh_libmvec_avx2, NEEDS_AVX2, ABSTANH_FWD_SCALAR),
    [ABSTANH_LIBMVEC_AVX512] = BASE("glibc fabsf(x)*tanhf(x), libmvec _ZGVeN16v_tanhf", ABSTANH,
                                    FORWARD_INPUT, run_abstanh_libmvec_avx512, NEEDS_AVX512,
                                    ABSTANH_FWD_SCALAR),
    PATHS(MPRELU_FWD, "invdl mprelu forward", MPRELU, FORWARD_INPUT, MPRELU_FORWARD),
    PATHS(MPRELU_INV, "invdl mprelu inverse", MPRELU, INVERSE_INPUT, MPRELU_INVERSE),
    [MPRELU_FWD_NARROW] = {"invdl mprelu forward, 8 columns", MPRELU, FORWARD_INPUT,
                           run_mprelu_forward_narrow, NO_PATH, NO_KERNEL, ANY_CPU, NO_CASE, PATH},
    [MPRELU_INV_NARROW] = {"invdl mprelu inverse, 8 columns", MPRELU, INVERSE_INPUT,
                           run_mprelu_inverse_narrow, NO_PATH, NO_KERNEL, ANY_CPU, NO_CASE, PATH},
    [COPY_MEMCPY] = BASE("copy, memcpy", MPRELU, FORWARD_INPUT, run_memcpy, ANY_CPU, NO_CASE),
    [COPY_AVX2] = BASE("copy, AVX2 loop", MPRELU, FORWARD_INPUT, run_copy_avx2, NEEDS_AVX2,
                       NO_CASE),
    [COPY_AVX512] = BASE("copy, AVX-512 loop", MPRELU, FORWARD_INPUT, run_copy_avx512,
                         NEEDS_AVX512, NO_CASE),
};

/* ------------------------------------------------------------------------ */
/* The machine                                                               */
/* ------------------------------------------------------------------------ */

typedef struct machine {
    char cpu[128];
    long cpus_online;
    int avx2, fma, avx512f, avx512dq, avx512vl, avx512bw;
    const invdl_kernel_path *path[PATH_COUNT]; /* NULL: not built */
} machine;

static void read_cpu_model(char *model, size_t size)
{
    snprintf(model, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (colon == NULL)
            break;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        snprintf(model, size, "%s", colon);
        size_t len = strlen(model);
        while (len > 0 && isspace((unsigned char)model[len - 1]))
            model[--len] = '\0';
        break;
    }
    fclose(f);
}

static machine probe_machine(void)
{
    machine m;
    memset(&m, 0, sizeof m);
    read_cpu_model(m.cpu, sizeof m.cpu);
    m.cpus_online = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    m.avx2 = __builtin_cpu_supports("avx2") != 0;
    m.fma = __builtin_cpu_supports("fma") != 0;
    m.avx512f = __builtin_cpu_supports("avx512f") != 0;
    m.avx512dq = __builtin_cpu_supports("avx512dq") != 0;
    m.avx512vl = __builtin_cpu_supports("avx512vl") != 0;
    m.avx512bw = __builtin_cpu_supports("avx512bw") != 0;
#endif
    for (size_t i = 0; i < invdl_kernel_path_count(); i++)
        for (int p = 0; p < PATH_COUNT; p++)
            if (strcmp(invdl_kernel_path_at(i)->name, PATH_NAMES[p]) == 0)
                m.path[p] = invdl_kernel_path_at(i);
    return m;
}

static int case_built(enum case_id c, const machine *m)
{
    return CASES[c].run != NULL && (CASES[c].path == NO_PATH || m->path[CASES[c].path] != NULL);
}

static int case_runs(enum case_id c, const machine *m)
{
    if (!case_built(c, m))
        return 0;
    if (CASES[c].path != NO_PATH)
        return m->path[CASES[c].path]->runs();
    switch (CASES[c].needs) {
    case NEEDS_AVX2: return m->avx2 && m->fma;
    case NEEDS_AVX512: return m->avx2 && m->fma && m->avx512f;
    case ANY_CPU: break;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [-r, r]. */
static float uniform_sym(uint64_t *state, float r)
{
    float u = (float)(splitmix64(state) >> 40) * 0x1p-24f; /* [0, 1) */
    float v = r * (2.0f * u - 1.0f);
    return v > r ? r : v < -r ? -r : v;
}

static void fill_uniform(size_t n, float r, uint64_t *state, float *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = uniform_sym(state, r);
}

/* The forward and inverse inputs of one family; the inverse inputs are the
 * forward image where the domain is not simply an interval. */
static int fill_inputs(enum family f, size_t n, const float *alpha, float *fwd, float *inv)
{
    uint64_t state = SEED ^ (uint64_t)f;
    switch (f) {
    case SSIN:
        fill_uniform(n, INVDL_SSIN_XMAX, &state, fwd);
        fill_uniform(n, INVDL_SSIN_YMAX, &state, inv);
        return 1;
    case ABSTANH:
        fill_uniform(n, 4.0f, &state, fwd);
        return invdl_abstanh_forward_scalar(n, fwd, inv) == INVDL_OK;
    case MPRELU:
        fill_uniform(n, 3.0f, &state, fwd);
        return invdl_mprelu_forward_scalar(n / MPRELU_COLS, MPRELU_COLS, alpha,
                                           INVDL_MPRELU_ALPHA_MIN, fwd, inv) == INVDL_OK;
    case FAMILY_COUNT:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Output checks                                                             */
/* ------------------------------------------------------------------------ */

typedef struct output_check {
    int done;
    size_t differing;   /* elements whose bits differ */
    uint64_t max_ulps;  /* largest distance in floats; UINT64_MAX for NaN vs number */
} output_check;

/* Position of a float on the number line, counted in floats from zero. */
static int64_t float_rank(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    int64_t magnitude = (int64_t)(bits & 0x7fffffffu);
    return (bits >> 31) ? -magnitude : magnitude;
}

static output_check compare_outputs(size_t n, const float *got, const float *want)
{
    output_check r = {1, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof got[i]) == 0)
            continue;
        r.differing++;
        uint64_t d;
        if (isnan(got[i]) || isnan(want[i])) {
            d = isnan(got[i]) && isnan(want[i]) ? 0 : UINT64_MAX;
        } else {
            int64_t diff = float_rank(got[i]) - float_rank(want[i]);
            d = (uint64_t)(diff < 0 ? -diff : diff);
        }
        if (d > r.max_ulps)
            r.max_ulps = d;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Timing                                                                    */
/* ------------------------------------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Makes every store of the call visible and keeps calls apart. */
static void clobber(const float *out)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__ __volatile__("" : : "r"(out) : "memory");
#else
    (void)out;
#endif
}

static volatile float sink;

typedef struct timing_plan {
    double budget_ns;    /* per family and size, after warm-up */
    size_t min_rounds;
    size_t max_rounds;
    double sample_ns;    /* aim of one sample; one call when a call is longer */
    double warmup_ns;    /* per case */
} timing_plan;

typedef struct stats {
    int measured;
    size_t rounds;
    unsigned calls;      /* per sample */
    double median, p25, p75, min, max; /* ns per element */
} stats;

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, size_t count, double q)
{
    double pos = q * (double)(count - 1);
    size_t lo = (size_t)pos;
    size_t hi = lo + 1 < count ? lo + 1 : lo;
    double frac = pos - (double)lo;
    return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

static stats summarize(double *samples, size_t count, unsigned calls)
{
    stats s;
    memset(&s, 0, sizeof s);
    if (count == 0)
        return s;
    qsort(samples, count, sizeof *samples, compare_doubles);
    s.measured = 1;
    s.rounds = count;
    s.calls = calls;
    s.median = quantile(samples, count, 0.5);
    s.p25 = quantile(samples, count, 0.25);
    s.p75 = quantile(samples, count, 0.75);
    s.min = samples[0];
    s.max = samples[count - 1];
    return s;
}

/* Runs `calls` calls and returns ns per element. */
static double time_sample(enum case_id c, bench_job *job, unsigned calls)
{
    double t0 = now_ns();
    for (unsigned k = 0; k < calls; k++) {
        CASES[c].run(job);
        clobber(job->out);
    }
    double t1 = now_ns();
    return (t1 - t0) / ((double)calls * (double)job->n);
}

/* Warms case c up and returns the calls per sample that reach the aim. */
static unsigned calibrate(enum case_id c, bench_job *job, const timing_plan *plan)
{
    double start = now_ns();
    double per_call = time_sample(c, job, 1) * (double)job->n;
    unsigned warm_calls = 1;
    while (now_ns() - start < plan->warmup_ns) {
        per_call = time_sample(c, job, warm_calls) * (double)job->n;
        if (warm_calls < 1024)
            warm_calls *= 2;
    }
    double calls = ceil(plan->sample_ns / (per_call > 1.0 ? per_call : 1.0));
    return calls < 1.0 ? 1u : calls > 65536.0 ? 65536u : (unsigned)calls;
}

typedef struct family_buffers {
    float *input[2]; /* FORWARD_INPUT, INVERSE_INPUT */
    float *out;
    float *check;
} family_buffers;

static bench_job job_for(enum case_id c, size_t n, const float *alpha, const family_buffers *b,
                         float *out, const machine *m)
{
    bench_job job = {n, alpha, b->input[CASES[c].input], out, INVDL_OK, NULL, NULL};
    const invdl_kernel_path *path = CASES[c].path == NO_PATH ? NULL : m->path[CASES[c].path];
    if (path != NULL) {
        switch (CASES[c].kernel) {
        case SSIN_FORWARD: job.elementwise = path->ssin_forward; break;
        case SSIN_INVERSE: job.elementwise = path->ssin_inverse; break;
        case ABSTANH_FORWARD: job.elementwise = path->abstanh_forward; break;
        case ABSTANH_INVERSE: job.elementwise = path->abstanh_inverse; break;
        case MPRELU_FORWARD: job.mprelu = path->mprelu_forward; break;
        case MPRELU_INVERSE: job.mprelu = path->mprelu_inverse; break;
        case NO_KERNEL: break;
        }
    }
    return job;
}

/* A ratio with a target: numerator and denominator are always of one
 * family, so they are sampled in the same rounds.  Each SIMD forward is held
 * against libmvec at its own vector width (at most 2 times its time: bar;
 * 1.5: goal), each inverse against its own path's forward (3; 2), PReLU
 * against memcpy (in cache 1.5; 1.2, out of cache 1.3). */
typedef struct target {
    const char *what;    /* the kernel direction */
    enum case_id num;
    enum case_id den;
    double bar[2];       /* per size index */
    double goal[2];      /* 0: none */
} target;

#define FORWARD_TARGET {2.0, 2.0}, {1.5, 1.5}
#define INVERSE_TARGET {3.0, 3.0}, {2.0, 2.0}
#define MPRELU_TARGET {1.5, 1.3}, {1.2, 0.0}

static const target TARGETS[] = {
    {"signed-sin forward", SSIN_FWD_AVX2, SSIN_LIBMVEC_AVX2, FORWARD_TARGET},
    {"signed-sin forward", SSIN_FWD_AVX512, SSIN_LIBMVEC_AVX512, FORWARD_TARGET},
    {"signed-sin inverse", SSIN_INV_AVX2, SSIN_FWD_AVX2, INVERSE_TARGET},
    {"signed-sin inverse", SSIN_INV_AVX512, SSIN_FWD_AVX512, INVERSE_TARGET},
    {"abs-tanh forward", ABSTANH_FWD_AVX2, ABSTANH_LIBMVEC_AVX2, FORWARD_TARGET},
    {"abs-tanh forward", ABSTANH_FWD_AVX512, ABSTANH_LIBMVEC_AVX512, FORWARD_TARGET},
    {"abs-tanh inverse", ABSTANH_INV_AVX2, ABSTANH_FWD_AVX2, INVERSE_TARGET},
    {"abs-tanh inverse", ABSTANH_INV_AVX512, ABSTANH_FWD_AVX512, INVERSE_TARGET},
    {"mprelu forward", MPRELU_FWD_AVX2, COPY_MEMCPY, MPRELU_TARGET},
    {"mprelu forward", MPRELU_FWD_AVX512, COPY_MEMCPY, MPRELU_TARGET},
    {"mprelu inverse", MPRELU_INV_AVX2, COPY_MEMCPY, MPRELU_TARGET},
    {"mprelu inverse", MPRELU_INV_AVX512, COPY_MEMCPY, MPRELU_TARGET},
};
#define TARGET_COUNT (sizeof TARGETS / sizeof TARGETS[0])

typedef struct results {
    stats at[CASE_COUNT][2];          /* [case][size index] */
    output_check check[CASE_COUNT][2];
    invdl_status status[CASE_COUNT];  /* first unexpected status */
    double paired[TARGET_COUNT][2];   /* median over rounds of the round's ratio */
    size_t sizes[2];
} results;

/* Compares each case with a reference case on the inputs of this size. */
static void check_family(enum family f, size_t n, const float *alpha, const family_buffers *b,
                         const machine *m, size_t size_index, results *res)
{
    for (int c = 0; c < CASE_COUNT; c++) {
        enum case_id ref = CASES[c].check;
        if (CASES[c].family != f || ref == NO_CASE || !case_runs((enum case_id)c, m))
            continue;
        bench_job want = job_for(ref, n, alpha, b, b->check, m);
        bench_job got = job_for((enum case_id)c, n, alpha, b, b->out, m);
        CASES[ref].run(&want);
        CASES[c].run(&got);
        note_status(&got, want.status);
        if (got.status != INVDL_OK && res->status[c] == INVDL_OK)
            res->status[c] = got.status;
        res->check[c][size_index] = compare_outputs(n, b->out, b->check);
    }
}

static void time_family(enum family f, size_t n, const float *alpha, const family_buffers *b,
                        const machine *m, const timing_plan *plan, size_t size_index,
                        results *res)
{
    enum case_id members[CASE_COUNT];
    unsigned calls[CASE_COUNT];
    double *samples[CASE_COUNT];
    bench_job jobs[CASE_COUNT];
    size_t count = 0;
    for (int c = 0; c < CASE_COUNT; c++)
        if (CASES[c].family == f && case_runs((enum case_id)c, m))
            members[count++] = (enum case_id)c;

    for (size_t k = 0; k < count; k++) {
        samples[k] = malloc(plan->max_rounds * sizeof *samples[k]);
        if (samples[k] == NULL) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            exit(EXIT_FAILURE);
        }
        jobs[k] = job_for(members[k], n, alpha, b, b->out, m);
        calls[k] = calibrate(members[k], &jobs[k], plan);
    }

    double start = now_ns();
    size_t rounds = 0;
    while (rounds < plan->max_rounds &&
           (rounds < plan->min_rounds || now_ns() - start < plan->budget_ns)) {
        for (size_t i = 0; i < count; i++) {
            size_t k = (i + rounds) % count;
            samples[k][rounds] = time_sample(members[k], &jobs[k], calls[k]);
            sink = jobs[k].out[(rounds * 7919u) % n];
        }
        rounds++;
    }

    /* The ratio within each round as well: both sides then ran within
     * milliseconds of each other, which a machine whose load comes and goes
     * disturbs less than the ratio of medians. */
    int index_of[CASE_COUNT];
    for (int c = 0; c < CASE_COUNT; c++)
        index_of[c] = -1;
    for (size_t k = 0; k < count; k++)
        index_of[members[k]] = (int)k;
    double *ratios = malloc((rounds > 0 ? rounds : 1) * sizeof *ratios);
    for (size_t t = 0; t < TARGET_COUNT && ratios != NULL; t++) {
        int num = index_of[TARGETS[t].num], den = index_of[TARGETS[t].den];
        if (num < 0 || den < 0 || rounds == 0)
            continue;
        for (size_t r = 0; r < rounds; r++)
            ratios[r] = samples[num][r] / samples[den][r];
        res->paired[t][size_index] = summarize(ratios, rounds, 1).median;
    }
    free(ratios);

    for (size_t k = 0; k < count; k++) {
        enum case_id c = members[k];
        res->at[c][size_index] = summarize(samples[k], rounds, calls[k]);
        if (jobs[k].status != INVDL_OK && res->status[c] == INVDL_OK)
            res->status[c] = jobs[k].status;
        free(samples[k]);
    }
}

static float *alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (p == NULL) {
        fprintf(stderr, "bench_kernels: cannot allocate %zu bytes\n", bytes);
        exit(EXIT_FAILURE);
    }
    memset(p, 0, bytes); /* touch every page before timing */
    return p;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

static const char *size_name(size_t n, char *buf, size_t size)
{
    if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0)
        snprintf(buf, size, "%zuM", n >> 20);
    else
        snprintf(buf, size, "%zu", n);
    return buf;
}

#define LABEL_WIDTH 48

static void print_case_table(enum family f, size_t size_index, const results *res,
                             const machine *m)
{
    char nbuf[32];
    size_t n = res->sizes[size_index];
    static const char *const family_name[FAMILY_COUNT] = {"signed sin", "abs-tanh", "mprelu"};
    printf("\n%s, n = %s floats (%s)\n", family_name[f], size_name(n, nbuf, sizeof nbuf),
           size_index == 0 ? "in cache" : "out of cache");
    printf("  %-*s %8s %8s %8s %8s %8s %7s %6s  %s\n", LABEL_WIDTH, "ns per element", "median",
           "min", "p25", "p75", "max", "rounds", "calls", "outputs");
    for (int c = 0; c < CASE_COUNT; c++) {
        if (CASES[c].family != f)
            continue;
        const stats *s = &res->at[c][size_index];
        if (!case_runs((enum case_id)c, m)) {
            const char *why = !case_built((enum case_id)c, m)
                                  ? (CASES[c].path != NO_PATH ? "not built (-Dsimd=false, or a compiler without it)"
                                                              : "not built (needs x86-64 and libmvec)")
                                  : "skipped (the CPU lacks its instructions)";
            printf("  %-*s %s\n", LABEL_WIDTH, CASES[c].label, why);
            continue;
        }
        printf("  %-*s %8.3f %8.3f %8.3f %8.3f %8.3f %7zu %6u  ", LABEL_WIDTH, CASES[c].label,
               s->median, s->min, s->p25, s->p75, s->max, s->rounds, s->calls);
        const output_check *k = &res->check[c][size_index];
        const char *against = CASES[c].role == PATH ? "scalar path" : "invdl";
        if (!k->done)
            printf("-");
        else if (k->differing == 0)
            printf("identical to %s", against);
        else if (k->max_ulps == UINT64_MAX)
            printf("%zu differ from %s, NaN among them", k->differing, against);
        else
            printf("%zu differ from %s, max %" PRIu64 " ulp", k->differing, against,
                   k->max_ulps);
        if (res->status[c] != INVDL_OK)
            printf("  [status: %s]", invdl_strerror(res->status[c]));
        printf("\n");
    }
}

/* What each target divides by, as the tables name it. */
static const char *reference_name(enum case_id c)
{
    switch (c) {
    case SSIN_LIBMVEC_AVX2:
    case ABSTANH_LIBMVEC_AVX2:
        return "libmvec AVX2";
    case SSIN_LIBMVEC_AVX512:
    case ABSTANH_LIBMVEC_AVX512:
        return "libmvec AVX-512";
    case COPY_MEMCPY:
        return "memcpy";
    default:
        return CASES[c].role == BASELINE ? CASES[c].label : "own forward";
    }
}

static const char *path_name(enum case_id c)
{
    return CASES[c].path == NO_PATH ? "public" : PATH_NAMES[CASES[c].path];
}

static double median_of(const results *res, enum case_id c, size_t s)
{
    return res->at[c][s].measured ? res->at[c][s].median : (double)NAN;
}

static double ratio_of(const results *res, enum case_id num, enum case_id den, size_t s)
{
    return median_of(res, num, s) / median_of(res, den, s);
}

static void format_limit(char *buf, size_t size, double ratio, double limit)
{
    if (limit <= 0.0)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%s (<= %g)", isnan(ratio) ? "n/a" : ratio <= limit ? "PASS" : "FAIL",
                 limit);
}

/* Prints a ratio into a column of `width`, "n/a" when a side is missing. */
static void print_ratio(int width, double r)
{
    if (isnan(r))
        printf(" %*s", width, "n/a");
    else
        printf(" %*.3f", width, r);
}

static void print_ratios(const results *res)
{
    char nbuf[32], bar[48], goal[48];
    printf("\nTargets: ratio = ratio of the medians above, which the verdicts judge; "
           "paired = median of the ratios within each round\n");
    printf("  %-20s %-8s %9s  %-16s %7s %7s  %-14s %-14s\n", "kernel direction", "path", "n",
           "divided by", "ratio", "paired", "bar", "goal");
    for (size_t t = 0; t < TARGET_COUNT; t++)
        for (size_t s = 0; s < 2; s++) {
            const target *g = &TARGETS[t];
            double r = ratio_of(res, g->num, g->den, s);
            format_limit(bar, sizeof bar, r, g->bar[s]);
            format_limit(goal, sizeof goal, r, g->goal[s]);
            printf("  %-20s %-8s %9s  %-16s", g->what, path_name(g->num),
                   size_name(res->sizes[s], nbuf, sizeof nbuf), reference_name(g->den));
            print_ratio(7, r);
            print_ratio(7, res->paired[t][s]);
            printf("  %-14s %-14s\n", bar, goal);
        }

    static const struct {
        const char *what;
        enum case_id num, den;
    } info[] = {
        {"signed-sin forward, AVX-512 / AVX2 path", SSIN_FWD_AVX512, SSIN_FWD_AVX2},
        {"signed-sin inverse, AVX-512 / AVX2 path", SSIN_INV_AVX512, SSIN_INV_AVX2},
        {"abs-tanh forward, AVX-512 / AVX2 path", ABSTANH_FWD_AVX512, ABSTANH_FWD_AVX2},
        {"abs-tanh inverse, AVX-512 / AVX2 path", ABSTANH_INV_AVX512, ABSTANH_INV_AVX2},
        {"mprelu forward, AVX-512 / AVX2 path", MPRELU_FWD_AVX512, MPRELU_FWD_AVX2},
        {"mprelu inverse, AVX-512 / AVX2 path", MPRELU_INV_AVX512, MPRELU_INV_AVX2},
        {"libmvec sin, AVX-512 / AVX2", SSIN_LIBMVEC_AVX512, SSIN_LIBMVEC_AVX2},
        {"libmvec tanh, AVX-512 / AVX2", ABSTANH_LIBMVEC_AVX512, ABSTANH_LIBMVEC_AVX2},
        {"signed-sin forward, AVX-512 / glibc scalar", SSIN_FWD_AVX512, SSIN_GLIBC},
        {"abs-tanh forward, AVX-512 / glibc scalar", ABSTANH_FWD_AVX512, ABSTANH_GLIBC},
        {"mprelu forward, AVX2 / AVX2 copy loop", MPRELU_FWD_AVX2, COPY_AVX2},
        {"mprelu inverse, AVX2 / AVX2 copy loop", MPRELU_INV_AVX2, COPY_AVX2},
        {"mprelu forward, AVX-512 / AVX-512 copy loop", MPRELU_FWD_AVX512, COPY_AVX512},
        {"mprelu inverse, AVX-512 / AVX-512 copy loop", MPRELU_INV_AVX512, COPY_AVX512},
        {"mprelu forward, 8 columns / memcpy", MPRELU_FWD_NARROW, COPY_MEMCPY},
        {"mprelu inverse, 8 columns / memcpy", MPRELU_INV_NARROW, COPY_MEMCPY},
        {"AVX2 copy loop / memcpy", COPY_AVX2, COPY_MEMCPY},
        {"AVX-512 copy loop / memcpy", COPY_AVX512, COPY_MEMCPY},
    };
    printf("\nOther ratios (no target)\n");
    printf("  %-44s %9s %9s\n", "", size_name(res->sizes[0], nbuf, sizeof nbuf),
           size_name(res->sizes[1], bar, sizeof bar));
    for (size_t i = 0; i < sizeof info / sizeof info[0]; i++) {
        printf("  %-44s", info[i].what);
        for (size_t s = 0; s < 2; s++)
            print_ratio(9, ratio_of(res, info[i].num, info[i].den, s));
        printf("\n");
    }
}

static void md_number(double v)
{
    if (isnan(v))
        printf(" n/a |");
    else
        printf(" %.3g |", v);
}

static void print_markdown(const results *res, const machine *m, const char *command)
{
    char nbuf[32], bar[48], goal[48];
    printf("\nMarkdown\n--------\n\n");
    /* Every direction on every path, with the libmvec loops beside the
     * forwards. */
    static const struct {
        const char *what;
        enum case_id first; /* its scalar path; AVX2 and AVX-512 follow */
        enum case_id mvec2, mvec512;
    } rows[] = {
        {"signed-sin forward", SSIN_FWD_SCALAR, SSIN_LIBMVEC_AVX2, SSIN_LIBMVEC_AVX512},
        {"signed-sin inverse", SSIN_INV_SCALAR, NO_CASE, NO_CASE},
        {"abs-tanh forward", ABSTANH_FWD_SCALAR, ABSTANH_LIBMVEC_AVX2, ABSTANH_LIBMVEC_AVX512},
        {"abs-tanh inverse", ABSTANH_INV_SCALAR, NO_CASE, NO_CASE},
        {"mprelu forward", MPRELU_FWD_SCALAR, NO_CASE, NO_CASE},
        {"mprelu inverse", MPRELU_INV_SCALAR, NO_CASE, NO_CASE},
    };
    printf("| kernel direction | n | scalar path | AVX2 path | AVX-512 path | libmvec AVX2 "
           "| libmvec AVX-512 |\n|---|--:|--:|--:|--:|--:|--:|\n");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (size_t s = 0; s < 2; s++) {
            printf("| %s | %s |", rows[r].what, size_name(res->sizes[s], nbuf, sizeof nbuf));
            for (int p = 0; p < PATH_COUNT; p++)
                md_number(median_of(res, (enum case_id)(rows[r].first + p), s));
            if (rows[r].mvec2 == NO_CASE) {
                printf(" - | - |\n");
            } else {
                md_number(median_of(res, rows[r].mvec2, s));
                md_number(median_of(res, rows[r].mvec512, s));
                printf("\n");
            }
        }

    printf("\n| kernel direction | path | n | ns/elem | compared with | its ns/elem | ratio "
           "| bar | goal |\n|---|---|--:|--:|---|--:|--:|---|---|\n");
    for (size_t t = 0; t < TARGET_COUNT; t++)
        for (size_t s = 0; s < 2; s++) {
            const target *g = &TARGETS[t];
            double r = ratio_of(res, g->num, g->den, s);
            format_limit(bar, sizeof bar, r, g->bar[s]);
            format_limit(goal, sizeof goal, r, g->goal[s]);
            printf("| %s | %s | %s |", g->what, path_name(g->num),
                   size_name(res->sizes[s], nbuf, sizeof nbuf));
            md_number(median_of(res, g->num, s));
            printf(" %s |", reference_name(g->den));
            md_number(median_of(res, g->den, s));
            md_number(r);
            printf(" %s | %s |\n", bar, goal);
        }

    static const struct {
        const char *what;
        enum case_id c;
    } base[] = {
        {"glibc `x*sinf(fabsf(x))`, scalar", SSIN_GLIBC},
        {"glibc `x*sinf(fabsf(x))`, libmvec `_ZGVdN8v_sinf`", SSIN_LIBMVEC_AVX2},
        {"glibc `x*sinf(fabsf(x))`, libmvec `_ZGVeN16v_sinf`", SSIN_LIBMVEC_AVX512},
        {"glibc `fabsf(x)*tanhf(x)`, scalar", ABSTANH_GLIBC},
        {"glibc `fabsf(x)*tanhf(x)`, libmvec `_ZGVdN8v_tanhf`", ABSTANH_LIBMVEC_AVX2},
        {"glibc `fabsf(x)*tanhf(x)`, libmvec `_ZGVeN16v_tanhf`", ABSTANH_LIBMVEC_AVX512},
        {"memcpy", COPY_MEMCPY},
        {"AVX2 copy loop", COPY_AVX2},
        {"AVX-512 copy loop", COPY_AVX512},
    };
    printf("\n| baseline | ns/elem at %s |", size_name(res->sizes[0], nbuf, sizeof nbuf));
    printf(" ns/elem at %s | max ulps from invdl (correctly rounded) |\n|---|--:|--:|--:|\n",
           size_name(res->sizes[1], nbuf, sizeof nbuf));
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        enum case_id c = base[i].c;
        printf("| %s |", base[i].what);
        for (size_t s = 0; s < 2; s++)
            md_number(median_of(res, c, s));
        uint64_t worst = 0;
        int known = 0;
        for (size_t s = 0; s < 2; s++)
            if (res->check[c][s].done) {
                known = 1;
                if (res->check[c][s].max_ulps > worst)
                    worst = res->check[c][s].max_ulps;
            }
        if (!known)
            printf(" - |\n");
        else if (worst == UINT64_MAX)
            printf(" NaN |\n");
        else
            printf(" %" PRIu64 " |\n", worst);
    }
    printf("\nns per element: medians of repeated runs in one process, single thread; "
           "n = %s is in cache, n = %s (%zu MiB per array) out of cache. "
           "%s (%ld CPUs online), AVX2 %s, FMA %s, AVX-512 F/DQ/VL/BW %s. Command: `%s`.\n",
           size_name(res->sizes[0], nbuf, sizeof nbuf), size_name(res->sizes[1], bar, sizeof bar),
           res->sizes[1] * sizeof(float) >> 20, m->cpu, m->cpus_online, m->avx2 ? "yes" : "no",
           m->fma ? "yes" : "no",
           m->avx512f && m->avx512dq && m->avx512vl && m->avx512bw ? "yes" : "no", command);
}

/* ------------------------------------------------------------------------ */
/* Main                                                                      */
/* ------------------------------------------------------------------------ */

static char *join_args(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

static int parse_options(int argc, char **argv, double *budget, int *quick, size_t *large)
{
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        errno = 0;
        if (strcmp(argv[i], "--quick") == 0) {
            *quick = 1;
        } else if (strncmp(argv[i], "--budget=", 9) == 0) {
            *budget = strtod(argv[i] + 9, &end);
            if (errno != 0 || *end != '\0' || !(*budget > 0.0) || *budget > 100.0)
                return 0;
        } else if (strncmp(argv[i], "--large=", 8) == 0) {
            unsigned long long v = strtoull(argv[i] + 8, &end, 10);
            if (errno != 0 || *end != '\0' || v < MPRELU_COLS || v > (1ull << 30))
                return 0;
            *large = (size_t)v / MPRELU_COLS * MPRELU_COLS;
        } else {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    double budget = 1.0;
    int quick = 0;
    size_t large = LARGE_N;
    if (!parse_options(argc, argv, &budget, &quick, &large)) {
        fprintf(stderr, "usage: %s [--quick] [--budget=FACTOR] [--large=N]\n", argv[0]);
        return EXIT_FAILURE;
    }
    if (quick)
        budget *= 0.1;

    machine m = probe_machine();
    char *args = join_args(argc, argv);
    const char *command = getenv("INVDL_BENCH_COMMAND");
    if (command == NULL || command[0] == '\0')
        command = args != NULL ? args : argv[0];

    printf("invdl %s kernel benchmark\n", invdl_version_string());
    printf("machine:  %s, %ld CPUs online; AVX2 %s, FMA %s, AVX-512 F %s, DQ %s, VL %s, BW %s\n",
           m.cpu, m.cpus_online, m.avx2 ? "yes" : "no", m.fma ? "yes" : "no",
           m.avx512f ? "yes" : "no", m.avx512dq ? "yes" : "no", m.avx512vl ? "yes" : "no",
           m.avx512bw ? "yes" : "no");
    printf("paths:    ");
    for (int p = 0; p < PATH_COUNT; p++)
        printf("%s%s %s", p ? ", " : "", PATH_NAMES[p],
               m.path[p] == NULL ? "not built" : m.path[p]->runs() ? "runs" : "built, not run");
    printf("; the public functions take the %s path\n", invdl_kernel_path_best()->name);
#if defined(__clang__)
    printf("compiler: clang %d.%d.%d", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    printf("compiler: gcc %s", __VERSION__);
#else
    printf("compiler: unknown");
#endif
#ifdef __GLIBC__
    printf("; glibc %s", gnu_get_libc_version());
#endif
    printf("; build: %s\n", BENCH_BUILD);
    printf("command:  %s\n", command);
    printf("baselines: glibc scalar loops built with %s; libmvec loops %s\n", BENCH_SCALAR_FLAGS,
           BENCH_LIBMVEC);
    printf("timing:   CLOCK_MONOTONIC, ns per element; families sampled in interleaved rounds, "
           "budget x%g%s\n",
           budget, quick ? " (quick)" : "");
    fflush(stdout);

    timing_plan plans[2] = {
        /* in cache: many short samples */
        {3e9 * budget, quick ? 11 : 51, 4001, 100e3, 30e6 * (quick ? 0.3 : 1.0)},
        /* out of cache: one call per sample */
        {12e9 * budget, quick ? 3 : 7, 301, 0.0, 0.0},
    };
    static results res;
    res.sizes[0] = SMALL_N;
    res.sizes[1] = large;
    for (size_t t = 0; t < TARGET_COUNT; t++)
        res.paired[t][0] = res.paired[t][1] = (double)NAN;

    float *alpha = alloc_floats(MPRELU_COLS);
    {
        uint64_t state = SEED;
        fill_uniform(MPRELU_COLS, sqrtf(3.0f / (float)MPRELU_COLS), &state, alpha);
    }

    int ok = 1;
    for (size_t s = 0; s < 2; s++) {
        size_t n = res.sizes[s];
        family_buffers b = {{alloc_floats(n), alloc_floats(n)}, alloc_floats(n), alloc_floats(n)};
        for (int f = 0; f < FAMILY_COUNT; f++) {
            if (!fill_inputs((enum family)f, n, alpha, b.input[FORWARD_INPUT],
                             b.input[INVERSE_INPUT])) {
                fprintf(stderr, "bench_kernels: cannot make the inputs\n");
                return EXIT_FAILURE;
            }
            check_family((enum family)f, n, alpha, &b, &m, s, &res);
            time_family((enum family)f, n, alpha, &b, &m, &plans[s], s, &res);
            print_case_table((enum family)f, s, &res, &m);
            fflush(stdout);
        }
        for (int i = 0; i < 2; i++)
            free(b.input[i]);
        free(b.out);
        free(b.check);
    }

    /* Every path must agree with the scalar one, and the inputs lie in the
     * domains: anything else makes the numbers meaningless. */
    for (int c = 0; c < CASE_COUNT; c++) {
        if (CASES[c].role == BASELINE)
            continue;
        for (size_t s = 0; s < 2; s++)
            if (res.check[c][s].differing != 0)
                ok = 0;
        if (res.status[c] != INVDL_OK)
            ok = 0;
    }

    print_ratios(&res);
    print_markdown(&res, &m, command);
    if (!ok)
        printf("\nFAILED: an invdl path disagreed with the scalar path or reported an error\n");
    free(alpha);
    free(args);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
