/*
 * exhaustive.c - checks every float through the kernels.
 *
 * Every one of the 2^32 float bit patterns goes through the forward and the
 * inverse of signed sin and abs-tanh, on every code path the CPU runs, in
 * blocks of 4096 through the array API: the public, dispatched functions
 * (the widest path) and the portable scalar ones, which must agree bit for
 * bit and whose results are judged, and each other SIMD path (AVX2 where
 * the public functions take AVX-512), which must give the public results
 * bit for bit: that one comparison per result is all another path costs.  Monotonic PReLU gets
 * all 2^32 inputs for one slope and every 31st bit pattern for sixteen
 * more (see the configuration table for why that is dense enough).
 *
 * How the results are judged
 * --------------------------
 * Forward: the float the result should be is found from the exact value
 * F(x) (exhaustive_ref.h): tier 1 (double) brackets F(x) within 2^-44
 * relative; if both ends of the bracket round to one float, that float is
 * the correctly rounded result (rounding is monotone).  Otherwise the exact
 * value is compared with the midpoint between the two candidates by tier 2.
 * Inverse: the float x returned is correctly rounded iff the exact g(y)
 * lies between the midpoints x- and x+ around x, and since f increases,
 * iff f(x-) < y < f(x+): two forward evaluations at exact doubles, no
 * inversion needed.  The same test with the neighbouring floats instead of
 * the midpoints decides whether the result is faithful (error < 1 ulp).
 * Odd symmetry lets the exact values at x >= 0 serve -x as well; every
 * negative input still goes through the library and is judged.
 *
 * Sizes of the errors reported in ulps are estimates (tier 1, or
 * interpolation between f(x-) and f(x+) for the inverses), good to 2^-19
 * ulp; the counts of correctly rounded and faithful results are exact
 * decisions.
 *
 * Usage: test_exhaustive [--threads N] [--quick K] [--only TEXT] [--limits PATH]
 *   --quick K checks every K-th block only (a smoke run: figures that need
 *   every input, like the round-trip intervals, are then partial).
 *   --only TEXT runs only the sweeps whose name contains TEXT.
 *   --limits PATH: after complete forward sweeps, the round-trip figures
 *   of PATH's section "Float limits, exactly" (docs/accuracy.md) must be
 *   what the sweep found, word for word, or the run fails (meson passes
 *   the source tree's docs/accuracy.md).
 * Exit status 0 iff what invdl.h documents holds: every forward and
 * inverse of signed sin and abs-tanh correctly rounded (which includes the
 * issue's bar of 1 ulp), mprelu the single IEEE operation, no monotonicity
 * or rule violation, all paths agree, the reference met its own error
 * bound, and nothing needed for those verdicts stayed undecided.
 */
/* clock_gettime, nanosleep, sysconf */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "invdl.h"
#include "kernels/kernels.h"

#include "exhaustive_float.h"
#include "exhaustive_ref.h"
#include "doc_text.h"

#define BLOCK 4096u
#define MAGNITUDES 0x80000000u /* bit patterns with the sign bit clear */

/* ------------------------------------------------------------------------ */
/* Small containers                                                          */
/* ------------------------------------------------------------------------ */

#define MAX_EXAMPLES 6

/* A counted event with the first few instances (smallest |input| first). */
typedef struct example {
    uint32_t in;
    uint32_t got;
    uint32_t want;
} example;

typedef struct examples {
    uint64_t count;
    unsigned n;
    example e[MAX_EXAMPLES];
} examples;

static uint64_t example_key(uint32_t in)
{
    return ((uint64_t)(in & ABS_MASK) << 1) | (in >> 31);
}

static void ex_insert(examples *x, example e)
{
    unsigned pos = x->n;
    while (pos > 0 && example_key(x->e[pos - 1].in) > example_key(e.in))
        pos--;
    if (pos >= MAX_EXAMPLES)
        return;
    unsigned last = x->n < MAX_EXAMPLES ? x->n : MAX_EXAMPLES - 1;
    for (unsigned k = last; k > pos; k--)
        x->e[k] = x->e[k - 1];
    x->e[pos] = e;
    if (x->n < MAX_EXAMPLES)
        x->n++;
}

static void ex_add(examples *x, uint32_t in, uint32_t got, uint32_t want)
{
    x->count++;
    example e = {in, got, want};
    ex_insert(x, e);
}

static void ex_merge(examples *into, const examples *from)
{
    into->count += from->count;
    for (unsigned k = 0; k < from->n; k++)
        ex_insert(into, from->e[k]);
}

typedef struct u32vec {
    uint32_t *v;
    size_t n;
    size_t cap;
} u32vec;

static void vec_push(u32vec *a, uint32_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 1024;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------ */
/* Statistics                                                                */
/* ------------------------------------------------------------------------ */

/* Accuracy of one function over the results judged. */
typedef struct judge {
    uint64_t n;
    uint64_t not_cr;              /* decided: not the correctly rounded float */
    uint64_t not_faithful;        /* decided: 1 ulp or more away */
    uint64_t undecided_cr;
    uint64_t undecided_faithful;
    double max_ulp;
    uint32_t max_ulp_in;
    uint32_t max_ulp_got;
    examples bad;                 /* not correctly rounded: in, got, want */
} judge;

static void judge_merge(judge *into, const judge *from)
{
    into->n += from->n;
    into->not_cr += from->not_cr;
    into->not_faithful += from->not_faithful;
    into->undecided_cr += from->undecided_cr;
    into->undecided_faithful += from->undecided_faithful;
    if (from->max_ulp > into->max_ulp ||
        (from->max_ulp == into->max_ulp && from->n > 0 &&
         example_key(from->max_ulp_in) < example_key(into->max_ulp_in))) {
        into->max_ulp = from->max_ulp;
        into->max_ulp_in = from->max_ulp_in;
        into->max_ulp_got = from->max_ulp_got;
    }
    ex_merge(&into->bad, &from->bad);
}

static void judge_ulp(judge *j, double ulps, uint32_t in, float got)
{
    if (ulps > j->max_ulp || (ulps == j->max_ulp && example_key(in) < example_key(j->max_ulp_in))) {
        j->max_ulp = ulps;
        j->max_ulp_in = in;
        j->max_ulp_got = fbits(got);
    }
}

enum rule {
    RULE_STATUS,     /* status returned differs from the header's */
    RULE_SYMMETRY,   /* f(-x) != -f(x) bit for bit */
    RULE_ZERO,       /* +-0 not preserved */
    RULE_NAN,        /* NaN input without NaN output */
    RULE_INF,        /* +-inf input handled against the header */
    RULE_TINY,       /* tiny input not giving +-0 as documented */
    RULE_RANGE,      /* out-of-domain handling, or result outside the range */
    RULE_IDENTITY,   /* abs-tanh: documented y == x threshold */
    RULE_ACCEPT,     /* inverse rejected a forward output of the branch */
    RULE_CONTRACT,   /* mprelu: not the single IEEE rounding */
    RULE_REFERENCE,  /* the test's own references disagree */
    RULE_EDGE,       /* the header's edge facts (XMAX, YMAX, EINVAL...) */
    RULE_COUNT
};

static const char *const rule_names[RULE_COUNT] = {
    "status", "odd symmetry", "+-0 preserved", "NaN gives NaN", "+-inf",
    "tiny inputs give +-0", "domain/range", "y == x threshold",
    "inverse accepts branch outputs", "single IEEE rounding", "reference self-consistency",
    "edge facts",
};

/* Round trip g(f(x)). */
typedef struct rt_stats {
    uint64_t exact_pos;
    uint64_t exact_neg;
    uint64_t inexact;
    uint64_t lost;            /* y underflowed to 0: x is gone */
    uint32_t max_lost_x;
    double max_err;           /* in ulps of x, where y != 0 */
    uint32_t max_err_x;
    float max_err_rt;
    double max_err_allowed;   /* conditioning's allowance at that x */
    double max_ratio;         /* max of err / allowance */
    uint32_t max_ratio_x;
    double ratio_err;
    double ratio_allowed;
} rt_stats;

static void rt_merge(rt_stats *into, const rt_stats *from)
{
    into->exact_pos += from->exact_pos;
    into->exact_neg += from->exact_neg;
    into->inexact += from->inexact;
    into->lost += from->lost;
    if (from->max_lost_x > into->max_lost_x)
        into->max_lost_x = from->max_lost_x;
    if (from->max_err > into->max_err) {
        into->max_err = from->max_err;
        into->max_err_x = from->max_err_x;
        into->max_err_rt = from->max_err_rt;
        into->max_err_allowed = from->max_err_allowed;
    }
    if (from->max_ratio > into->max_ratio) {
        into->max_ratio = from->max_ratio;
        into->max_ratio_x = from->max_ratio_x;
        into->ratio_err = from->ratio_err;
        into->ratio_allowed = from->ratio_allowed;
    }
}

/* Per task and thread.  Judges: forward tasks use [0] library, [1] glibc's
 * float function, [2] the naive float composition; inverse tasks [0];
 * mprelu [0] forward, [1] inverse. */
typedef struct tstats {
    judge j[3];
    examples rules[RULE_COUNT];
    examples disagree;           /* public != scalar */
    examples disagree_other;     /* another SIMD path != public */
    examples monotone[2];        /* forward / inverse (mprelu), [0] otherwise */
    ref_tally tally;
    rt_stats rt;
    u32vec transitions;          /* round-trip exactness changes, by magnitude */
    uint64_t changes;            /* their number (mprelu keeps only this) */
    uint32_t max_nonident;       /* largest magnitude whose result is not the input */
    uint32_t max_zero;           /* largest magnitude whose result is 0 */
    uint32_t min_at_ymax;        /* signed sin: magnitudes mapping to YMAX */
    uint32_t max_at_ymax;
    uint64_t in_domain;
    double cpu;
    ref_check check;
} tstats;

static void tstats_merge(tstats *into, const tstats *from)
{
    for (int k = 0; k < 3; k++)
        judge_merge(&into->j[k], &from->j[k]);
    for (int r = 0; r < RULE_COUNT; r++)
        ex_merge(&into->rules[r], &from->rules[r]);
    ex_merge(&into->disagree, &from->disagree);
    ex_merge(&into->disagree_other, &from->disagree_other);
    ex_merge(&into->monotone[0], &from->monotone[0]);
    ex_merge(&into->monotone[1], &from->monotone[1]);
    into->tally.escalated += from->tally.escalated;
    into->tally.undecided += from->tally.undecided;
    rt_merge(&into->rt, &from->rt);
    for (size_t k = 0; k < from->transitions.n; k++)
        vec_push(&into->transitions, from->transitions.v[k]);
    into->changes += from->changes;
    if (from->max_nonident > into->max_nonident)
        into->max_nonident = from->max_nonident;
    if (from->max_zero > into->max_zero)
        into->max_zero = from->max_zero;
    if (from->min_at_ymax < into->min_at_ymax)
        into->min_at_ymax = from->min_at_ymax;
    if (from->max_at_ymax > into->max_at_ymax)
        into->max_at_ymax = from->max_at_ymax;
    into->in_domain += from->in_domain;
    into->cpu += from->cpu;
    into->check.samples += from->check.samples;
    for (int f = 0; f < REF_FN_COUNT; f++) {
        if (from->check.max_rel_double[f] > into->check.max_rel_double[f]) {
            into->check.max_rel_double[f] = from->check.max_rel_double[f];
            into->check.worst_double_x[f] = from->check.worst_double_x[f];
        }
        if (from->check.max_rel_long_double[f] > into->check.max_rel_long_double[f])
            into->check.max_rel_long_double[f] = from->check.max_rel_long_double[f];
    }
}

/* ------------------------------------------------------------------------ */
/* Kernels under test                                                        */
/* ------------------------------------------------------------------------ */

typedef invdl_status (*kernel_fn)(size_t n, const float *in, float *out);

typedef struct pair {
    const char *name;
    ref_fn fn;          /* the kernel's exact function for x >= 0 */
    ref_fn base_fn;     /* sin or tanh, for glibc's float function */
    kernel_fn fwd, fwd_scalar, inv, inv_scalar;
    size_t fwd_slot, inv_slot; /* where a path table (kernels.h) has them */
    float (*glibc)(float);
    const char *glibc_name;
    const char *naive_name;
    int branch;         /* signed sin: invertible only on |x| <= XMAX */
    float xmax, ymax;   /* forward and inverse domains (inf: everything) */
} pair;

static const pair pair_ssin = {
    "signed sin", REF_XSIN, REF_SIN,
    invdl_ssin_forward, invdl_ssin_forward_scalar, invdl_ssin_inverse, invdl_ssin_inverse_scalar,
    offsetof(invdl_kernel_path, ssin_forward), offsetof(invdl_kernel_path, ssin_inverse),
    sinf, "glibc sinf", "naive x*sinf(fabsf(x))",
    1, INVDL_SSIN_XMAX, INVDL_SSIN_YMAX,
};

static const pair pair_abstanh = {
    "abs-tanh", REF_XTANH, REF_TANH,
    invdl_abstanh_forward, invdl_abstanh_forward_scalar, invdl_abstanh_inverse,
    invdl_abstanh_inverse_scalar,
    offsetof(invdl_kernel_path, abstanh_forward), offsetof(invdl_kernel_path, abstanh_inverse),
    tanhf, "glibc tanhf", "naive fabsf(x)*tanhf(x)",
    0, INFINITY, INFINITY,
};

static kernel_fn path_kernel(const invdl_kernel_path *path, size_t slot)
{
    return *(const kernel_fn *)(const void *)((const char *)path + slot);
}

/* The SIMD paths this CPU runs besides the one the public functions take,
 * set once by main() before the sweep. */
#define MAX_PATHS 8
static const invdl_kernel_path *other_paths[MAX_PATHS];
static size_t other_count;

static void find_other_paths(void)
{
    const invdl_kernel_path *best = invdl_kernel_path_best();
    for (size_t i = 1; i < invdl_kernel_path_count() && other_count < MAX_PATHS; i++) {
        const invdl_kernel_path *p = invdl_kernel_path_at(i);
        if (p != best && p->runs())
            other_paths[other_count++] = p;
    }
}

/* The header's abs-tanh thresholds and the underflow limit. */
#define ABSTANH_FWD_IDENTITY 0x1.169cfep+3f
#define ABSTANH_INV_IDENTITY 0x1.169cfcp+3f
#define ABSTANH_FWD_ZERO 0x1p-75f

/* Monotonic PReLU slopes.  The reference is exact (a*x of two floats is
 * exact in double, so one conversion to float is the single IEEE rounding;
 * y/a in double then float is the correctly rounded quotient, double
 * rounding being innocuous for division since 53 >= 2*24 + 2, Figueroa
 * 1995; the float division itself is also compared).  What can go wrong is
 * the selection of the slope, the branch on the sign, the special values,
 * and the rounding of products and quotients at every exponent: all of
 * that depends on the sign, the exponent and the slope, not on particular
 * significand bits.  One slope gets every bit pattern; for the others
 * every 31st pattern (an odd step, so the sampled significands shift from
 * binade to binade) gives 270 thousand inputs in every binade of either
 * sign, the zeros and the infinities among them. */
typedef struct mp_config {
    float alpha;
    float alpha_min;
    uint32_t stride;
    const char *what;
} mp_config;

static const mp_config mp_configs[] = {
    {0.3f, 0.01f, 1, "glorot-range alpha"},
    {0.0f, 0x1p-149f, 31, "alpha 0, alpha_min the smallest subnormal"},
    {-0.3f, 0.01f, 31, "negative alpha"},
    {0.0f, INVDL_MPRELU_ALPHA_MIN, 31, "alpha 0 (slope alpha_min)"},
    {-0.0f, INVDL_MPRELU_ALPHA_MIN, 31, "alpha -0"},
    {0.001f, 0.01f, 31, "alpha below alpha_min"},
    {0.01f, 0.01f, 31, "alpha == alpha_min"},
    {-0.7f, 0.75f, 31, "|alpha| below a larger alpha_min"},
    {0.25f, 0.01f, 31, "power of two below 1"},
    {4.0f, 0.01f, 31, "power of two above 1"},
    {1.0f, 0.01f, 31, "slope 1"},
    {0x1.fffffep-1f, 0.01f, 31, "just below 1"},
    {3.0f, 0.01f, 31, "alpha > 1, not a power of two"},
    {1e30f, 0.01f, 31, "huge: a*x overflows for |x| > 3.4e8"},
    {FLT_MAX, 0.01f, 31, "FLT_MAX: a*x overflows for |x| > 1"},
    {FLT_MIN, 0x1p-140f, 31, "FLT_MIN: a*x underflows"},
    {-0x1.8p-147f, 0x1p-149f, 31, "subnormal |alpha| above a subnormal alpha_min"},
};
#define MP_CONFIGS (sizeof mp_configs / sizeof mp_configs[0])

static float mp_slope(const mp_config *c)
{
    float a = fabsf(c->alpha);
    return a > c->alpha_min ? a : c->alpha_min;
}

/* ------------------------------------------------------------------------ */
/* Tasks                                                                     */
/* ------------------------------------------------------------------------ */

typedef enum task_kind { TASK_CHECK, TASK_FORWARD, TASK_INVERSE, TASK_MPRELU } task_kind;

/* First and last in-domain result of a block, for the monotonicity check
 * across blocks. */
typedef struct bedge {
    float first[2], last[2];      /* [0] positive inputs, [1] negative */
    uint32_t first_in[2], last_in[2];
    uint8_t has[2];
} bedge;

typedef struct task {
    task_kind kind;
    const pair *pair;
    const mp_config *mp;
    uint32_t nblocks;
    uint32_t stride;              /* magnitude step between inputs */
    bedge *edges[2];              /* [nblocks], forward / inverse (mprelu) */
    uint8_t *rt_first, *rt_last;  /* round-trip exactness at block ends */
    char name[96];
} task;

#define CHECK_STRIDE 8191u /* self-check sample: every 8191st float */
#define CHECK_PER_BLOCK 256u

static uint32_t fill_block(const task *t, uint32_t blk, float *xp, float *xn, uint32_t *mag)
{
    uint64_t first = (uint64_t)blk * BLOCK * t->stride;
    uint32_t n = 0;
    for (uint32_t i = 0; i < BLOCK; i++) {
        uint64_t m = first + (uint64_t)i * t->stride;
        if (m < MAGNITUDES)
            n++;
        else
            m = 0; /* past the end of a strided sweep: filled, not used */
        mag[i] = (uint32_t)m;
        xp[i] = bitsf((uint32_t)m);
        xn[i] = bitsf((uint32_t)m | SIGN_BIT);
    }
    return n;
}

/* The correctly rounded float for F(x) = d within the tier-1 bound, x >= 0.
 * decided == 0 leaves the candidates lo < hi. */
typedef struct rounding {
    float want, lo, hi;
    int decided;
} rounding;

static rounding round_exact(ref_fn fn, double x, double d, ref_tally *tally)
{
    rounding r;
    double e = 2.0 * fabs(d) * REF_DOUBLE_REL_ERR;
    r.lo = (float)(d - e);
    r.hi = (float)(d + e);
    r.decided = 1;
    r.want = r.lo;
    if (same_bits(r.lo, r.hi))
        return r;
    double m = 0.5 * ((double)r.lo + up_neighbour(r.lo));
    int c = ref_cmp(fn, x, m, d, tally);
    if (c > 0)
        r.want = r.hi;
    else if (c == 0)
        r.decided = 0;
    return r;
}

/* Judges got (already mirrored to the sign of F(x), x >= 0) for input
 * `in`. */
static void judge_forward(judge *j, ref_fn fn, double x, double d, const rounding *r, uint32_t in,
                          float got, ref_tally *tally)
{
    j->n++;
    double ulps = isfinite(got) ? fabs((double)got - d) * inv_ulp_at(d) : HUGE_VAL;
    judge_ulp(j, ulps, in, got);
    if (r->decided && same_bits(got, r->want))
        return;
    int faithful;
    if (!r->decided) {
        j->undecided_cr++;
        /* F(x) lies between the candidates: both are faithful */
        faithful = got == r->lo || got == r->hi;
    } else {
        j->not_cr++;
        uint32_t flip = in & SIGN_BIT; /* show the values as returned */
        ex_add(&j->bad, in, fbits(got) ^ flip, fbits(r->want) ^ flip);
        if (got == r->want) {
            faithful = 1; /* the other zero: a rule violation, counted there */
        } else {
            double w = (double)r->want;
            int side = ref_cmp(fn, x, w, d, tally);
            if (side == 0) {
                j->undecided_faithful++;
                return;
            }
            float other = side > 0 ? next_up(r->want) : next_down(r->want);
            faithful = got == other;
        }
    }
    if (!faithful)
        j->not_faithful++;
}

/* F at any x, F odd. */
static double ref_signed(ref_fn fn, double x)
{
    return x < 0 ? -ref_double(fn, -x) : ref_double(fn, x);
}

/* sign(F(x) - y) for y > 0: F(x) < 0 for x < 0. */
static int cmp_at(ref_fn fn, double x, double y, double d, ref_tally *tally)
{
    if (x < 0)
        return -1;
    return ref_cmp(fn, x, y, d, tally);
}

/* +1 if x is beyond the branch (signed sin: x > T), where f decreases;
 * -1 if not; 0 if undecided. */
static int beyond_branch(const pair *p, double x)
{
    if (!p->branch || x < 2.0)
        return -1;
    return ref_cmp_T(x);
}

/* Newton on x sin x = y in double, near the top of the branch where the
 * interpolation between f(x-) and f(x+) is not accurate enough: there
 * f' >= 2^-11 for |y| <= YMAX, so one double rounding of f (2^-52) moves
 * the root by 2^-41, 2^-19 ulp. */
static double newton_ssin(double y, double x0)
{
    double g = x0, t = ref_T();
    for (int k = 0; k < 12; k++) {
        double s = sin(g), c = cos(g);
        double fp = s + g * c;
        if (!(fp > 0))
            break;
        double ng = g - (g * s - y) / fp;
        if (ng > t)
            ng = t;
        if (ng == g)
            break;
        g = ng;
    }
    return g;
}

typedef struct inv_cache {
    uint32_t bits;
    int valid;
    double dm, dp;
    double inv_span; /* 1 / (dp - dm), 0 if not positive */
} inv_cache;

/* Judges got (mirrored to be the inverse of y > 0) for the input `in`. */
static void judge_inverse(judge *j, const pair *p, double y, float got, uint32_t in, inv_cache *c,
                          ref_tally *tally)
{
    ref_fn fn = p->fn;
    j->n++;
    if (!(got >= 0) || isinf(got) || (p->branch && got > p->xmax)) {
        j->not_cr++;
        j->not_faithful++;
        judge_ulp(j, HUGE_VAL, in, got);
        ex_add(&j->bad, in, fbits(got) ^ (in & SIGN_BIT), 0x7fc00000u);
        return;
    }
    double xm = mid_below(got), xp = mid_above(got);
    uint32_t gb = fbits(got);
    if (!c->valid || c->bits != gb) {
        double dm = (c->valid && c->bits + 1 == gb) ? c->dp : ref_signed(fn, xm);
        c->dm = dm;
        c->dp = ref_signed(fn, xp);
        c->inv_span = c->dp > dm ? 1 / (c->dp - dm) : 0;
        c->bits = gb;
        c->valid = 1;
    }
    int above = beyond_branch(p, xp);
    int lower = cmp_at(fn, xm, y, c->dm, tally);
    int upper = above > 0 ? 1 : (above == 0 ? 0 : cmp_at(fn, xp, y, c->dp, tally));

    double g;
    if (p->branch && (got > 1.9f || above >= 0)) {
        g = newton_ssin(y, (double)got);
    } else if (c->inv_span > 0) {
        double tpos = (y - c->dm) * c->inv_span;
        g = xm + tpos * (xp - xm);
    } else {
        g = (double)got;
    }
    judge_ulp(j, fabs(g - (double)got) * inv_ulp_at(g), in, got);

    if (lower < 0 && upper > 0)
        return;
    if (lower == 0 || upper == 0) {
        j->undecided_cr++;
    } else {
        j->not_cr++;
        uint32_t flip = in & SIGN_BIT; /* show the values as returned */
        ex_add(&j->bad, in, gb ^ flip, fbits((float)g) ^ flip);
    }
    double xl = (double)next_down(got), xh = up_neighbour(got);
    int fl = cmp_at(fn, xl, y, ref_signed(fn, xl), tally);
    int ab = beyond_branch(p, xh);
    int fh = ab > 0 ? 1 : (ab == 0 ? 0 : cmp_at(fn, xh, y, ref_signed(fn, xh), tally));
    if (fl < 0 && fh > 0)
        return;
    if (fl == 0 || fh == 0)
        j->undecided_faithful++;
    else
        j->not_faithful++;
}

/* The exact function's slope, for what conditioning allows. */
static double ref_slope(ref_fn fn, double x)
{
    if (fn == REF_XSIN)
        return sin(x) + x * cos(x);
    double ch = cosh(x);
    return tanh(x) + x / (ch * ch);
}

/* A round trip that missed x: its error next to what a correctly rounded
 * pair allows, |y - f(x)| <= ulp(y)/2 mapped back through 1/f' at its
 * smallest between x and the result (f' is unimodal on x >= 0, so that is
 * at an end), plus half an ulp of the result. */
static void rt_inexact(rt_stats *s, uint32_t in, double x, float y, float rt, double slope_x,
                       double slope_rt)
{
    s->inexact++;
    if (y == 0 || isinf(y)) {
        s->lost++;
        if (in > s->max_lost_x)
            s->max_lost_x = in;
        return;
    }
    double ux = ulp_at(x);
    double err = isfinite(rt) ? fabs((double)rt - x) / ux : HUGE_VAL;
    double fp = slope_x < slope_rt ? slope_x : slope_rt;
    double allowed = (rt == 0 || !(fp > 0) || !isfinite(rt))
                         ? HUGE_VAL
                         : (0.5 * ulp_at((double)y) / fp + 0.5 * ulp_at((double)rt)) / ux;
    if (err > s->max_err) {
        s->max_err = err;
        s->max_err_x = in;
        s->max_err_rt = rt;
        s->max_err_allowed = allowed;
    }
    double ratio = err / allowed;
    if (ratio > s->max_ratio) {
        s->max_ratio = ratio;
        s->max_ratio_x = in;
        s->ratio_err = err;
        s->ratio_allowed = allowed;
    }
}

/* Records round-trip exactness per magnitude: transitions inside the block,
 * and its first and last state. */
static void rt_record(const task *t, tstats *s, uint32_t blk, const uint8_t *state, const uint32_t *mag,
                      uint32_t n)
{
    int keep = t->kind != TASK_MPRELU;
    for (uint32_t i = 1; i < n; i++) {
        if (state[i] != state[i - 1]) {
            s->changes++;
            if (keep)
                vec_push(&s->transitions, mag[i]);
        }
    }
    t->rt_first[blk] = state[0];
    t->rt_last[blk] = state[n - 1];
}

static void status_check(tstats *s, invdl_status got, invdl_status want, uint32_t first_in)
{
    if (got != want)
        ex_add(&s->rules[RULE_STATUS], first_in, (uint32_t)got, (uint32_t)want);
}

static void agree_check(examples *ex, const float *pub, const float *sc, const float *in,
                        uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!same_or_both_nan(pub[i], sc[i]))
            ex_add(ex, fbits(in[i]), fbits(pub[i]), fbits(sc[i]));
}

/* The results at +in and -in must be +0 and -0; returns how many are not. */
static unsigned zero_check(examples *ex, uint32_t in, float outp, float outn)
{
    unsigned bad = 0;
    if (fbits(outp) != 0) {
        ex_add(ex, in, fbits(outp), 0);
        bad++;
    }
    if (fbits(outn) != SIGN_BIT) {
        ex_add(ex, in | SIGN_BIT, fbits(outn), SIGN_BIT);
        bad++;
    }
    return bad;
}

/* Monotone in bit order: positive inputs nondecreasing results, negative
 * inputs (decreasing values) nonincreasing results. */
typedef struct mono {
    float prev;
    int has;
} mono;

static inline void mono_step(mono *m, examples *viol, bedge *e, int side, uint32_t in, float out)
{
    if (m->has) {
        int ok = side == 0 ? m->prev <= out : out <= m->prev;
        if (!ok)
            ex_add(viol, in, fbits(out), fbits(m->prev));
    } else {
        e->first[side] = out;
        e->first_in[side] = in;
        e->has[side] = 1;
    }
    m->prev = out;
    m->has = 1;
    e->last[side] = out;
    e->last_in[side] = in;
}

/* Runs one direction on both signs through every path (the scalar one in
 * place on the negative inputs, the other SIMD paths in place on the
 * positive ones), checks the statuses against the header's (INVDL_EDOMAIN
 * iff signed sin meets an input beyond `limit`) and that the paths agree
 * bit for bit. */
static void run_paths(tstats *s, const pair *p, kernel_fn pub, kernel_fn scalar, size_t slot,
                      float limit, uint32_t n, const float *inp, const float *inn, float *outp,
                      float *outn)
{
    float sp[BLOCK], sn[BLOCK];
    invdl_status st[4];
    st[0] = pub(n, inp, outp);
    st[1] = scalar(n, inp, sp);
    st[2] = pub(n, inn, outn);
    memcpy(sn, inn, n * sizeof *sn);
    st[3] = scalar(n, sn, sn);
    int outside = 0;
    for (uint32_t i = 0; i < n; i++)
        outside |= !(fabsf(inp[i]) <= limit);
    invdl_status want_st = (p->branch && outside) ? INVDL_EDOMAIN : INVDL_OK;
    for (int k = 0; k < 4; k++)
        status_check(s, st[k], want_st, fbits(k < 2 ? inp[0] : inn[0]));
    agree_check(&s->disagree, outp, sp, inp, n);
    agree_check(&s->disagree, outn, sn, inn, n);
    for (size_t k = 0; k < other_count; k++) {
        kernel_fn f = path_kernel(other_paths[k], slot);
        memcpy(sp, inp, n * sizeof *sp);
        status_check(s, f(n, sp, sp), want_st, fbits(inp[0]));
        status_check(s, f(n, inn, sn), want_st, fbits(inn[0]));
        agree_check(&s->disagree_other, outp, sp, inp, n);
        agree_check(&s->disagree_other, outn, sn, inn, n);
    }
}

/* ------------------------------------------------------------------------ */
/* Forward of signed sin / abs-tanh                                          */
/* ------------------------------------------------------------------------ */

static void run_forward(const task *t, tstats *s, uint32_t blk)
{
    const pair *p = t->pair;
    float xp[BLOCK], xn[BLOCK], yp[BLOCK], yn[BLOCK];
    float rty[BLOCK], rtx[BLOCK];
    uint32_t mag[BLOCK], idx[BLOCK];
    uint8_t state[BLOCK];
    uint32_t n = fill_block(t, blk, xp, xn, mag);
    run_paths(s, p, p->fwd, p->fwd_scalar, p->fwd_slot, p->xmax, n, xp, xn, yp, yn);

    bedge *e = &t->edges[0][blk];
    mono mp = {0, 0}, mn = {0, 0};
    uint32_t nrt = 0;
    for (uint32_t i = 0; i < n; i++) {
        float x = xp[i];
        uint32_t b = mag[i], bn = b | SIGN_BIT;
        if (!same_or_both_nan(yn[i], -yp[i]))
            ex_add(&s->rules[RULE_SYMMETRY], bn, fbits(yn[i]), fbits(-yp[i]));
        if (isnan(x)) {
            if (!isnan(yp[i]) || !isnan(yn[i]))
                ex_add(&s->rules[RULE_NAN], b, fbits(yp[i]), 0x7fc00000u);
            continue;
        }
        int in_domain = x <= p->xmax;
        if (isinf(x)) {
            if (p->branch) {
                if (!isnan(yp[i]) || !isnan(yn[i]))
                    ex_add(&s->rules[RULE_INF], b, fbits(yp[i]), 0x7fc00000u);
            } else if (!same_bits(yp[i], x) || !same_bits(yn[i], -x)) {
                ex_add(&s->rules[RULE_INF], b, fbits(yp[i]), b);
            }
        } else {
            if (x == 0)
                zero_check(&s->rules[RULE_ZERO], b, yp[i], yn[i]);
            double xd = (double)x;
            double base = ref_double(p->base_fn, xd);
            double d = xd * base; /* == ref_double(p->fn, xd) */
            rounding r = round_exact(p->fn, xd, d, &s->tally);
            judge_forward(&s->j[0], p->fn, xd, d, &r, b, yp[i], &s->tally);
            judge_forward(&s->j[0], p->fn, xd, d, &r, bn, -yn[i], &s->tally);

            /* glibc's float function, and the naive composition from the
             * same calls: x*sinf(|x|) and |x|*tanhf(+-x) */
            float gp = p->glibc(x), gn = p->glibc(-x);
            float np = x * gp, nn = p->branch ? -x * gp : x * gn;
            rounding rg = round_exact(p->base_fn, xd, base, &s->tally);
            judge_forward(&s->j[1], p->base_fn, xd, base, &rg, b, gp, &s->tally);
            judge_forward(&s->j[1], p->base_fn, xd, base, &rg, bn, -gn, &s->tally);
            judge_forward(&s->j[2], p->fn, xd, d, &r, b, np, &s->tally);
            judge_forward(&s->j[2], p->fn, xd, d, &r, bn, -nn, &s->tally);

            int tiny = p->branch ? b < 0x00800000u : x <= ABSTANH_FWD_ZERO;
            if (tiny)
                zero_check(&s->rules[RULE_TINY], b, yp[i], yn[i]);
            if (yp[i] == 0 && b > s->max_zero)
                s->max_zero = b;
            if (p->branch) {
                if (in_domain && (!(fabsf(yp[i]) <= p->ymax) || !(fabsf(yn[i]) <= p->ymax)))
                    ex_add(&s->rules[RULE_RANGE], b, fbits(yp[i]), fbits(p->ymax));
                if (same_bits(yp[i], p->ymax)) {
                    if (b < s->min_at_ymax)
                        s->min_at_ymax = b;
                    if (b > s->max_at_ymax)
                        s->max_at_ymax = b;
                }
            } else {
                if (x >= ABSTANH_FWD_IDENTITY && (!same_bits(yp[i], x) || !same_bits(yn[i], -x)))
                    ex_add(&s->rules[RULE_IDENTITY], b, fbits(yp[i]), b);
                if (!same_bits(yp[i], x) && b > s->max_nonident)
                    s->max_nonident = b;
            }
        }
        if (in_domain) {
            s->in_domain++;
            mono_step(&mp, &s->monotone[0], e, 0, b, yp[i]);
            mono_step(&mn, &s->monotone[0], e, 1, bn, yn[i]);
            idx[nrt] = i;
            rty[nrt++] = yp[i];
        }
    }

    /* Round trip of the positive inputs through the public inverse.  The
     * negative ones follow by odd symmetry, which both directions were
     * just checked to have bit for bit on every input. */
    memset(state, 0, n);
    if (nrt > 0) {
        invdl_status sr = p->inv(nrt, rty, rtx);
        if (sr != INVDL_OK)
            ex_add(&s->rules[RULE_ACCEPT], mag[idx[0]], (uint32_t)sr, INVDL_OK);
    }
    for (uint32_t k = 0; k < nrt; k++) {
        uint32_t i = idx[k];
        float x = xp[i], rt = rtx[k];
        if (isnan(rt))
            ex_add(&s->rules[RULE_ACCEPT], mag[i], fbits(rt), mag[i]);
        if (same_bits(rt, x)) {
            state[i] = 1;
            s->rt.exact_pos++;
            s->rt.exact_neg++;
            continue;
        }
        double xd = (double)x;
        int need_slope = rty[k] != 0 && rt != 0 && isfinite(rt);
        double sx = need_slope ? ref_slope(p->fn, xd) : 0;
        double sr = need_slope ? ref_slope(p->fn, (double)rt) : 0;
        rt_inexact(&s->rt, mag[i], xd, rty[k], rt, sx, sr);
    }
    rt_record(t, s, blk, state, mag, n);
}

/* ------------------------------------------------------------------------ */
/* Inverse of signed sin / abs-tanh                                          */
/* ------------------------------------------------------------------------ */

static void run_inverse(const task *t, tstats *s, uint32_t blk)
{
    const pair *p = t->pair;
    float yp[BLOCK], yn[BLOCK], xp[BLOCK], xn[BLOCK];
    uint32_t mag[BLOCK];
    uint32_t n = fill_block(t, blk, yp, yn, mag);
    run_paths(s, p, p->inv, p->inv_scalar, p->inv_slot, p->ymax, n, yp, yn, xp, xn);

    bedge *e = &t->edges[0][blk];
    mono mp = {0, 0}, mn = {0, 0};
    inv_cache cache = {0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        float y = yp[i];
        uint32_t b = mag[i], bn = b | SIGN_BIT;
        if (!same_or_both_nan(xn[i], -xp[i]))
            ex_add(&s->rules[RULE_SYMMETRY], bn, fbits(xn[i]), fbits(-xp[i]));
        if (isnan(y)) {
            if (!isnan(xp[i]) || !isnan(xn[i]))
                ex_add(&s->rules[RULE_NAN], b, fbits(xp[i]), 0x7fc00000u);
            continue;
        }
        if (!(y <= p->ymax)) { /* signed sin only */
            if (!isnan(xp[i]) || !isnan(xn[i]))
                ex_add(&s->rules[RULE_RANGE], b, fbits(xp[i]), 0x7fc00000u);
            continue;
        }
        s->in_domain++;
        mono_step(&mp, &s->monotone[0], e, 0, b, xp[i]);
        mono_step(&mn, &s->monotone[0], e, 1, bn, xn[i]);
        if (isinf(y)) { /* abs-tanh only */
            if (!same_bits(xp[i], y) || !same_bits(xn[i], -y))
                ex_add(&s->rules[RULE_INF], b, fbits(xp[i]), b);
            continue;
        }
        if (y == 0) {
            s->j[0].n += 2;
            s->j[0].not_cr += zero_check(&s->rules[RULE_ZERO], b, xp[i], xn[i]);
            continue;
        }
        if (p->branch && (!(fabsf(xp[i]) <= p->xmax) || !(fabsf(xn[i]) <= p->xmax)))
            ex_add(&s->rules[RULE_RANGE], b, fbits(xp[i]), fbits(p->xmax));
        if (!p->branch) {
            if (y >= ABSTANH_INV_IDENTITY && (!same_bits(xp[i], y) || !same_bits(xn[i], -y)))
                ex_add(&s->rules[RULE_IDENTITY], b, fbits(xp[i]), b);
            if (!same_bits(xp[i], y) && b > s->max_nonident)
                s->max_nonident = b;
        }
        double yd = (double)y;
        judge_inverse(&s->j[0], p, yd, xp[i], b, &cache, &s->tally);
        judge_inverse(&s->j[0], p, yd, -xn[i], bn, &cache, &s->tally);
    }
}

/* ------------------------------------------------------------------------ */
/* Monotonic PReLU                                                           */
/* ------------------------------------------------------------------------ */

static float mp_forward_ref(float x, float a)
{
    if (isnan(x) || x >= 0)
        return x;
    return (float)((double)a * (double)x); /* exact product, one rounding */
}

static void run_mprelu(const task *t, tstats *s, uint32_t blk)
{
    const mp_config *c = t->mp;
    const float a = mp_slope(c);
    float v[2][BLOCK], f1[BLOCK], f2[BLOCK], i1[BLOCK], i2[BLOCK], rt[BLOCK];
    uint32_t mag[BLOCK];
    uint8_t state[BLOCK];
    uint32_t n = fill_block(t, blk, v[0], v[1], mag);
    memset(state, 1, n);

    for (int side = 0; side < 2; side++) {
        const float *in = v[side];
        invdl_status st[5];
        st[0] = invdl_mprelu_forward(n, 1, &c->alpha, c->alpha_min, in, f1);
        st[1] = invdl_mprelu_inverse(n, 1, &c->alpha, c->alpha_min, in, i1);
        if (side == 0) {
            st[2] = invdl_mprelu_forward_scalar(n, 1, &c->alpha, c->alpha_min, in, f2);
            st[3] = invdl_mprelu_inverse_scalar(n, 1, &c->alpha, c->alpha_min, in, i2);
        } else { /* in place */
            memcpy(f2, in, n * sizeof *f2);
            memcpy(i2, in, n * sizeof *i2);
            st[2] = invdl_mprelu_forward_scalar(n, 1, &c->alpha, c->alpha_min, f2, f2);
            st[3] = invdl_mprelu_inverse_scalar(n, 1, &c->alpha, c->alpha_min, i2, i2);
        }
        st[4] = invdl_mprelu_inverse(n, 1, &c->alpha, c->alpha_min, f1, rt);
        for (int k = 0; k < 5; k++)
            status_check(s, st[k], INVDL_OK, fbits(in[0]));
        agree_check(&s->disagree, f1, f2, in, n);
        agree_check(&s->disagree, i1, i2, in, n);
        for (size_t k = 0; k < other_count; k++) {
            const invdl_kernel_path *path = other_paths[k];
            status_check(s, path->mprelu_forward(n, 1, &c->alpha, c->alpha_min, in, f2), INVDL_OK,
                         fbits(in[0]));
            status_check(s, path->mprelu_inverse(n, 1, &c->alpha, c->alpha_min, in, i2), INVDL_OK,
                         fbits(in[0]));
            agree_check(&s->disagree_other, f1, f2, in, n);
            agree_check(&s->disagree_other, i1, i2, in, n);
        }

        mono mf = {0, 0}, mi = {0, 0};
        for (uint32_t i = 0; i < n; i++) {
            float x = in[i];
            uint32_t b = fbits(x);
            /* forward */
            float want = mp_forward_ref(x, a);
            s->j[0].n++;
            if (!same_or_both_nan(f1[i], want)) {
                s->j[0].not_cr++;
                s->j[0].not_faithful++;
                ex_add(&s->j[0].bad, b, fbits(f1[i]), fbits(want));
                ex_add(&s->rules[RULE_CONTRACT], b, fbits(f1[i]), fbits(want));
                double exact = isnan(x) || x >= 0 ? (double)x : (double)a * (double)x;
                double ul = isfinite(f1[i]) ? fabs((double)f1[i] - exact) / ulp_at(exact) : HUGE_VAL;
                judge_ulp(&s->j[0], ul, b, f1[i]);
            }
            /* inverse */
            float wi = (isnan(x) || x >= 0) ? x : x / a;
            float wd = (isnan(x) || x >= 0) ? x : (float)((double)x / (double)a);
            if (!same_or_both_nan(wi, wd))
                ex_add(&s->rules[RULE_REFERENCE], b, fbits(wi), fbits(wd));
            s->j[1].n++;
            if (!same_or_both_nan(i1[i], wi)) {
                s->j[1].not_cr++;
                s->j[1].not_faithful++;
                ex_add(&s->j[1].bad, b, fbits(i1[i]), fbits(wi));
                ex_add(&s->rules[RULE_CONTRACT], b, fbits(i1[i]), fbits(wi));
                double q = (double)x / (double)a;
                double ul = isfinite(i1[i]) ? fabs((double)i1[i] - q) / ulp_at(q) : HUGE_VAL;
                judge_ulp(&s->j[1], ul, b, i1[i]);
            }
            if (isnan(x)) {
                if (!isnan(f1[i]) || !isnan(i1[i]))
                    ex_add(&s->rules[RULE_NAN], b, fbits(f1[i]), 0x7fc00000u);
                state[i] = 0;
                continue;
            }
            if (x == 0 && (!same_bits(f1[i], x) || !same_bits(i1[i], x)))
                ex_add(&s->rules[RULE_ZERO], b, fbits(f1[i]), b);
            if (isinf(x) && (!same_bits(f1[i], x) || !same_bits(i1[i], x)))
                ex_add(&s->rules[RULE_INF], b, fbits(f1[i]), b);
            s->in_domain++;
            mono_step(&mf, &s->monotone[0], &t->edges[0][blk], side, b, f1[i]);
            mono_step(&mi, &s->monotone[1], &t->edges[1][blk], side, b, i1[i]);
            /* round trip */
            if (same_bits(rt[i], x)) {
                if (side == 0)
                    s->rt.exact_pos++;
                else
                    s->rt.exact_neg++;
            } else {
                state[i] = 0;
                double sl = x < 0 ? (double)a : 1.0;
                rt_inexact(&s->rt, b, (double)x, f1[i], rt[i], sl, sl);
            }
        }
    }
    rt_record(t, s, blk, state, mag, n);
}

/* ------------------------------------------------------------------------ */
/* The reference's self check                                                */
/* ------------------------------------------------------------------------ */

static void run_check(const task *t, tstats *s, uint32_t blk)
{
    (void)t;
    ref_self_check(CHECK_STRIDE, blk * CHECK_PER_BLOCK, (blk + 1) * CHECK_PER_BLOCK, &s->check);
}

/* ------------------------------------------------------------------------ */
/* Thread pool                                                               */
/* ------------------------------------------------------------------------ */

#define MAX_TASKS 32

typedef struct run {
    task tasks[MAX_TASKS];
    int ntasks;
    uint64_t offset[MAX_TASKS + 1];   /* flattened block index of each task */
    uint32_t quick;
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t done;
    int nthreads;
    tstats *stats;                    /* [nthreads][ntasks] */
} run;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct worker_arg {
    run *r;
    int id;
} worker_arg;

static void *worker(void *argp)
{
    worker_arg *arg = argp;
    run *r = arg->r;
    tstats *mine = r->stats + (size_t)arg->id * (size_t)r->ntasks;
    for (;;) {
        uint64_t k = atomic_fetch_add(&r->next, 1);
        if (k >= r->offset[r->ntasks])
            break;
        int ti = 0;
        while (k >= r->offset[ti + 1])
            ti++;
        uint64_t blk = (k - r->offset[ti]) * r->quick;
        const task *t = &r->tasks[ti];
        double c0 = cpu_now();
        switch (t->kind) {
        case TASK_CHECK:
            run_check(t, &mine[ti], (uint32_t)blk);
            break;
        case TASK_FORWARD:
            run_forward(t, &mine[ti], (uint32_t)blk);
            break;
        case TASK_INVERSE:
            run_inverse(t, &mine[ti], (uint32_t)blk);
            break;
        case TASK_MPRELU:
            run_mprelu(t, &mine[ti], (uint32_t)blk);
            break;
        }
        mine[ti].cpu += cpu_now() - c0;
        atomic_fetch_add(&r->done, 1);
    }
    ref_thread_done();
    return NULL;
}

static task *add_task(run *r, task_kind kind, const pair *p, const mp_config *mp, uint32_t stride,
                      uint32_t nblocks, const char *name)
{
    task *t = &r->tasks[r->ntasks++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->pair = p;
    t->mp = mp;
    t->stride = stride;
    t->nblocks = nblocks;
    snprintf(t->name, sizeof t->name, "%s", name);
    if (kind != TASK_CHECK) {
        for (int k = 0; k < 2; k++) {
            t->edges[k] = calloc(nblocks, sizeof *t->edges[k]);
            if (t->edges[k] == NULL)
                exit(2);
        }
        t->rt_first = calloc(nblocks, 1);
        t->rt_last = calloc(nblocks, 1);
        if (t->rt_first == NULL || t->rt_last == NULL)
            exit(2);
    }
    return t;
}

/* ------------------------------------------------------------------------ */
/* After the sweep                                                           */
/* ------------------------------------------------------------------------ */

/* Monotonicity across block boundaries (and across zero). */
static void mono_across(const run *r, const task *t, int which, examples *viol)
{
    for (int side = 0; side < 2; side++) {
        int has = 0;
        float prev = 0;
        for (uint32_t blk = 0; blk < t->nblocks; blk += r->quick) {
            const bedge *e = &t->edges[which][blk];
            if (!e->has[side])
                continue;
            if (has) {
                int ok = side == 0 ? prev <= e->first[side] : e->first[side] <= prev;
                if (!ok)
                    ex_add(viol, e->first_in[side], fbits(e->first[side]), fbits(prev));
            }
            prev = e->last[side];
            has = 1;
        }
    }
    const bedge *e0 = &t->edges[which][0];
    if (e0->has[0] && e0->has[1] && (e0->first_in[0] & ABS_MASK) == 0 &&
        !(e0->first[1] <= e0->first[0]))
        ex_add(viol, e0->first_in[0], fbits(e0->first[0]), fbits(e0->first[1]));
}

/* Maximal intervals of magnitudes with an exact round trip. */
typedef struct interval {
    uint32_t lo, hi;
} interval;

static interval *rt_intervals(const run *r, const task *t, tstats *s, size_t *count)
{
    u32vec *tr = &s->transitions;
    uint32_t step = BLOCK * t->stride;
    for (uint32_t blk = r->quick; blk < t->nblocks; blk += r->quick) {
        uint32_t prev = blk - r->quick;
        if (t->rt_first[blk] != t->rt_last[prev])
            vec_push(tr, blk * step);
    }
    qsort(tr->v, tr->n, sizeof *tr->v, cmp_u32);
    size_t cap = tr->n / 2 + 2, n = 0;
    interval *iv = malloc(cap * sizeof *iv);
    if (iv == NULL)
        exit(2);
    int state = t->rt_first[0];
    uint32_t start = 0;
    for (size_t k = 0; k < tr->n; k++) {
        uint32_t pos = tr->v[k];
        if (state) {
            iv[n].lo = start;
            iv[n].hi = pos - t->stride;
            n++;
        } else {
            start = pos;
        }
        state = !state;
    }
    if (state) {
        uint32_t last_blk = ((t->nblocks - 1) / r->quick) * r->quick;
        uint64_t last = (uint64_t)last_blk * step + (uint64_t)(BLOCK - 1) * t->stride;
        if (last >= MAGNITUDES)
            last = ((uint64_t)MAGNITUDES - 1) / t->stride * t->stride;
        iv[n].lo = start;
        iv[n].hi = (uint32_t)last;
        n++;
    }
    *count = n;
    return iv;
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */
/* ------------------------------------------------------------------------ */

static double fl(uint32_t b)
{
    return (double)bitsf(b);
}

static void print_examples(const char *what, const examples *x, int as_status)
{
    printf("    %s: %" PRIu64 "\n", what, x->count);
    for (unsigned k = 0; k < x->n; k++) {
        const example *e = &x->e[k];
        if (as_status)
            printf("      input %08" PRIx32 " (%a): status %" PRIu32 ", want %" PRIu32 "\n", e->in,
                   fl(e->in), e->got, e->want);
        else
            printf("      input %08" PRIx32 " (%a): got %08" PRIx32 " (%a), want %08" PRIx32
                   " (%a)\n",
                   e->in, fl(e->in), e->got, fl(e->got), e->want, fl(e->want));
    }
}

static void print_judge(const char *what, const judge *j)
{
    double cr = j->n ? 1.0 - (double)j->not_cr / (double)j->n : 1.0;
    printf("  %s: %" PRIu64 " results; max %.6f ulp at %08" PRIx32 " (%a -> %a)\n", what, j->n,
           j->max_ulp, j->max_ulp_in, fl(j->max_ulp_in), fl(j->max_ulp_got));
    printf("    not correctly rounded: %" PRIu64 " (correctly rounded %.9f%%)", j->not_cr,
           100.0 * cr);
    printf("; not within 1 ulp: %" PRIu64 "; undecided: %" PRIu64 " (cr), %" PRIu64
           " (1 ulp)\n",
           j->not_faithful, j->undecided_cr, j->undecided_faithful);
    for (unsigned k = 0; k < j->bad.n; k++) {
        const example *e = &j->bad.e[k];
        printf("      input %08" PRIx32 " (%a): got %08" PRIx32 " (%a), correctly rounded %08" PRIx32
               " (%a)\n",
               e->in, fl(e->in), e->got, fl(e->got), e->want, fl(e->want));
    }
}

/* The exact round-trip set in words: long intervals (2^20 floats or more)
 * one by one, the shorter ones between them summarised.  `sep` separates
 * the items. */
#define LONG_RUN (1u << 20)

static uint32_t run_len(const interval *v)
{
    return v->hi - v->lo + 1;
}

static void describe_intervals(char *buf, size_t size, const interval *iv, size_t n, const char *sep)
{
    size_t used = 0;
    buf[0] = 0;
    if (n == 0) {
        snprintf(buf, size, "none");
        return;
    }
    for (size_t k = 0; k < n;) {
        int w;
        size_t j = k;
        while (j < n && run_len(&iv[j]) < LONG_RUN)
            j++;
        if (j - k >= 2) {
            uint64_t floats = 0;
            for (size_t q = k; q < j; q++)
                floats += run_len(&iv[q]);
            w = snprintf(buf + used, size - used,
                         "%s%" PRIu64 " scattered floats (%zu runs, none of 2^20) in [%a, %a]",
                         k ? sep : "", floats, j - k, fl(iv[k].lo), fl(iv[j - 1].hi));
            k = j;
        } else if (iv[k].lo == iv[k].hi) {
            w = snprintf(buf + used, size - used, "%s+-%a", k ? sep : "", fl(iv[k].lo));
            k++;
        } else {
            w = snprintf(buf + used, size - used, "%sall of [%a, %a] (%" PRIu32 " floats)",
                         k ? sep : "", fl(iv[k].lo), fl(iv[k].hi), run_len(&iv[k]));
            k++;
        }
        if (w < 0 || (size_t)w >= size - used)
            return;
        used += (size_t)w;
    }
}

static void print_intervals(const interval *iv, size_t n)
{
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += run_len(&iv[k]);
    printf("    maximal intervals of |x| with an exact round trip: %zu (%" PRIu64
           " magnitudes):\n",
           n, total);
    char buf[4096];
    describe_intervals(buf, sizeof buf, iv, n, "\n      ");
    printf("      %s\n", buf);
}

typedef struct table_row {
    char kernel[64];
    char direction[32];
    char domain[64];
    double max_ulp;
    double cr_fraction;
    uint64_t not_cr;
    char roundtrip[1100];
} table_row;

static table_row table[64];
static int table_rows;

static void add_row(const char *kernel, const char *direction, const char *domain, const judge *j,
                    const char *roundtrip)
{
    table_row *row = &table[table_rows++];
    snprintf(row->kernel, sizeof row->kernel, "%s", kernel);
    snprintf(row->direction, sizeof row->direction, "%s", direction);
    snprintf(row->domain, sizeof row->domain, "%s", domain);
    row->max_ulp = j->max_ulp;
    row->cr_fraction = j->n ? 1.0 - (double)j->not_cr / (double)j->n : 1.0;
    row->not_cr = j->not_cr;
    snprintf(row->roundtrip, sizeof row->roundtrip, "%s", roundtrip);
}

/* ------------------------------------------------------------------------ */
/* docs/accuracy.md: the round-trip figures of "Float limits, exactly"       */
/* ------------------------------------------------------------------------ */

/* The figures only the sweep can give (sets and counts over every input)
 * are compared with the page's text, so that neither drifts from the
 * other; tests/test_limits.c does the same for the single values. */

/* The sweep's round-trip set of one forward task, in the terms the page
 * states it: the one long interval, the exact magnitudes (0 aside) below
 * and above it, and the largest exact magnitude. */
typedef struct rt_summary {
    int long_runs;
    uint32_t lo, hi, last;
    uint64_t below, above, lost;
    uint32_t max_lost;
    double max_ratio; /* largest error / what correct rounding allows */
} rt_summary;

static rt_summary summarize_rt(const interval *iv, size_t n, const tstats *s)
{
    rt_summary sum;
    memset(&sum, 0, sizeof sum);
    for (size_t k = 0; k < n; k++)
        if (run_len(&iv[k]) >= LONG_RUN && sum.long_runs++ == 0) {
            sum.lo = iv[k].lo;
            sum.hi = iv[k].hi;
        }
    for (size_t k = 0; k < n && sum.long_runs == 1; k++) {
        uint32_t lo = iv[k].lo == 0 ? 1 : iv[k].lo;
        if (iv[k].hi < sum.lo && lo <= iv[k].hi)
            sum.below += iv[k].hi - lo + 1;
        else if (iv[k].lo > sum.hi)
            sum.above += run_len(&iv[k]);
    }
    sum.last = n > 0 ? iv[n - 1].hi : 0;
    sum.lost = s->rt.lost;
    sum.max_lost = s->rt.max_lost_x;
    sum.max_ratio = s->rt.max_ratio;
    return sum;
}

/* 1 if the page at path states what the sweep found (ssin and abs-tanh
 * forward tasks, both complete). */
static int check_limits_page(const char *path, const rt_summary *ssin, const rt_summary *at)
{
    printf("%s, \"%s\": the sweep's round-trip figures\n", path, &LIMITS_HEADING[3]);
    char *section = doc_section(path, LIMITS_HEADING);
    if (section == NULL) {
        printf("  cannot read the section from %s\n\n", path);
        return 0;
    }
    int ok = 1;
    /* What the sentences rest on, beyond the figures they quote. */
    float ymax = INVDL_SSIN_YMAX, top = 0;
    if (invdl_ssin_inverse(1, &ymax, &top) != INVDL_OK)
        ok = 0;
    const struct {
        int holds;
        const char *what;
    } rests[] = {
        {ssin->long_runs == 1 && at->long_runs == 1, "one long exact interval per kernel"},
        {ssin->lo == at->lo, "both long intervals start at one float"},
        {ssin->last == fbits(top), "signed sin's last exact magnitude is inverse(YMAX)"},
        {at->hi == 0x7f800000u, "abs-tanh's interval runs to infinity"},
        {ssin->below == at->below, "both kernels have as many exact magnitudes below it"},
        {ssin->lost == at->lost && ssin->max_lost == at->max_lost, "both lose the same x to 0"},
        {ssin->max_lost == fbits(0x1p-75f), "the largest x lost to 0 is 2^-75"},
        {at->lo > fbits(0x1p-64f) && at->lo < fbits(0x1p-63f), "they start just below 2^-63"},
        /* "never above" the allowance, up to the estimates' 2^-19 ulp */
        {ssin->max_ratio <= 1 + 0x1p-10 && at->max_ratio <= 1 + 0x1p-10,
         "no other round trip is off by more than correct rounding allows"},
    };
    for (size_t k = 0; k < sizeof rests / sizeof rests[0]; k++) {
        if (!rests[k].holds)
            printf("  DOES NOT HOLD: %s\n", rests[k].what);
        ok &= rests[k].holds;
    }
    char fact[256], count[32];
    snprintf(fact, sizeof fact, "signed sin: every |x| in [%a, %a]", fl(ssin->lo), fl(ssin->hi));
    ok &= doc_states(section, fact);
    doc_count(count, sizeof count, ssin->above);
    snprintf(fact, sizeof fact, "above that only %s scattered magnitudes up to inverse(YMAX)",
             count);
    ok &= doc_states(section, fact);
    snprintf(fact, sizeof fact, "abs-tanh: every |x| >= %a", fl(at->lo));
    ok &= doc_states(section, fact);
    doc_count(count, sizeof count, at->below);
    snprintf(fact, sizeof fact, "both, below 2^-63: %s scattered magnitudes (0 aside)", count);
    ok &= doc_states(section, fact);
    doc_count(count, sizeof count, at->lost);
    snprintf(fact, sizeof fact, "|x| <= 2^-75 (%s positive floats) comes back as 0", count);
    ok &= doc_states(section, fact);
    printf("\n");
    free(section);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Single checks: the header's edge facts and argument rules                 */
/* ------------------------------------------------------------------------ */

static void edge_fail(examples *ex, const char *what, double a, double b)
{
    printf("  EDGE FAILURE: %s (%a, %a)\n", what, a, b);
    ex_add(ex, 0, 0, 0);
}

static invdl_status one(kernel_fn k, float in, float *out)
{
    return k(1, &in, out);
}

/* The public functions as a path table, then every path this CPU runs:
 * the edge facts hold on each.  Returns how many. */
static size_t edge_paths(invdl_kernel_path *sets)
{
    static const invdl_kernel_path public_fns = {
        .name = "public",
        .runs = NULL,
        .ssin_forward = invdl_ssin_forward,
        .ssin_inverse = invdl_ssin_inverse,
        .abstanh_forward = invdl_abstanh_forward,
        .abstanh_inverse = invdl_abstanh_inverse,
        .mprelu_forward = invdl_mprelu_forward,
        .mprelu_inverse = invdl_mprelu_inverse,
    };
    size_t n = 0;
    sets[n++] = public_fns;
    for (size_t i = 0; i < invdl_kernel_path_count() && n < MAX_PATHS; i++)
        if (invdl_kernel_path_at(i)->runs())
            sets[n++] = *invdl_kernel_path_at(i);
    return n;
}

static void check_edges(examples *ex)
{
    invdl_kernel_path sets[MAX_PATHS];
    size_t nsets = edge_paths(sets);
    const float xmax = INVDL_SSIN_XMAX, ymax = INVDL_SSIN_YMAX;
    printf("Edge facts\n");
    if (fbits(xmax) != fbits(0x1.03ae56p+1f) || fbits(ymax) != fbits(0x1.d1d83cp+0f))
        edge_fail(ex, "XMAX/YMAX macros differ from the documented bits", (double)xmax,
                  (double)ymax);
    int tx = ref_cmp_T((double)xmax), tx1 = ref_cmp_T((double)next_up(xmax));
    int ty = ref_cmp_Y((double)ymax), ty1 = ref_cmp_Y((double)next_up(ymax));
    printf("  T = %.17g, Y = %.17g (%s)\n", ref_T(), ref_Y(), ref_tier2_name());
    printf("  XMAX = %a %s T %s next float %a\n", (double)xmax, tx < 0 ? "<" : "NOT <",
           tx1 > 0 ? "<" : "NOT <", (double)next_up(xmax));
    printf("  YMAX = %a %s Y %s next float %a\n", (double)ymax, ty < 0 ? "<" : "NOT <",
           ty1 > 0 ? "<" : "NOT <", (double)next_up(ymax));
    if (!(tx < 0 && tx1 > 0))
        edge_fail(ex, "XMAX is not T rounded down", (double)xmax, ref_T());
    if (!(ty < 0 && ty1 > 0))
        edge_fail(ex, "YMAX is not Y rounded down", (double)ymax, ref_Y());

    /* floats around XMAX: forward values and per-element status */
    for (size_t path = 0; path < nsets; path++) {
        const kernel_fn fwd = sets[path].ssin_forward, inv = sets[path].ssin_inverse;
        float y;
        float around[3] = {next_down(xmax), xmax, next_up(xmax)};
        for (int k = 0; k < 3; k++) {
            invdl_status st = one(fwd, around[k], &y);
            if (!same_bits(y, ymax) || st != (k == 2 ? INVDL_EDOMAIN : INVDL_OK))
                edge_fail(ex, "forward of the floats around XMAX is not YMAX", (double)around[k],
                          (double)y);
        }
        for (int sign = 0; sign < 2; sign++) {
            for (int32_t d = -4096; d <= 4096; d++) {
                uint32_t bx = (uint32_t)((int32_t)fbits(xmax) + d) | (sign ? SIGN_BIT : 0);
                uint32_t by = (uint32_t)((int32_t)fbits(ymax) + d) | (sign ? SIGN_BIT : 0);
                float out;
                invdl_status want = d > 0 ? INVDL_EDOMAIN : INVDL_OK;
                if (one(fwd, bitsf(bx), &out) != want)
                    edge_fail(ex, "per-element forward status near XMAX", fl(bx), (double)out);
                if (one(inv, bitsf(by), &out) != want || (d > 0) != (isnan(out) != 0))
                    edge_fail(ex, "per-element inverse status/NaN near YMAX", fl(by), (double)out);
            }
        }
    }
    float xtop;
    if (invdl_ssin_inverse(1, &ymax, &xtop) != INVDL_OK || !(xtop < xmax))
        edge_fail(ex, "inverse(YMAX) is not below XMAX", (double)ymax, (double)xtop);
    printf("  inverse(YMAX) = %a, T - inverse(YMAX) = %.3g (%.0f ulps of XMAX)\n", (double)xtop,
           ref_T() - (double)xtop, (ref_T() - (double)xtop) / ulp_at((double)xmax));

    /* specials, one element at a time, every path */
    const float specials[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (size_t path = 0; path < nsets; path++) {
        const kernel_fn at[2] = {sets[path].abstanh_forward, sets[path].abstanh_inverse};
        for (int k = 0; k < 4; k++) {
            float out;
            if (one(sets[path].ssin_forward, specials[k], &out) != INVDL_EDOMAIN || !isnan(out))
                edge_fail(ex, "signed sin forward of NaN/inf", (double)specials[k], (double)out);
            if (one(sets[path].ssin_inverse, specials[k], &out) != INVDL_EDOMAIN || !isnan(out))
                edge_fail(ex, "signed sin inverse of NaN/inf", (double)specials[k], (double)out);
            for (int dir = 0; dir < 2; dir++) {
                int want_nan = k < 2;
                if (one(at[dir], specials[k], &out) != INVDL_OK ||
                    (want_nan ? !isnan(out) : !same_bits(out, specials[k])))
                    edge_fail(ex, "abs-tanh of NaN/inf", (double)specials[k], (double)out);
            }
        }
    }

    /* argument rules: NULL, size overflow, size 0; nothing written */
    enum { ELEMENTWISE = 4, MPRELU_FNS = 2 };
    kernel_fn all[MAX_PATHS * ELEMENTWISE];
    invdl_mprelu_fn mps[MAX_PATHS * MPRELU_FNS];
    for (size_t path = 0; path < nsets; path++) {
        const invdl_kernel_path *set = &sets[path];
        kernel_fn *a = all + ELEMENTWISE * path;
        a[0] = set->ssin_forward;
        a[1] = set->ssin_inverse;
        a[2] = set->abstanh_forward;
        a[3] = set->abstanh_inverse;
        mps[MPRELU_FNS * path] = set->mprelu_forward;
        mps[MPRELU_FNS * path + 1] = set->mprelu_inverse;
    }
    for (size_t k = 0; k < ELEMENTWISE * nsets; k++) {
        float in = 1.0f, out = 42.0f;
        if (all[k](1, NULL, &out) != INVDL_EINVAL || all[k](1, &in, NULL) != INVDL_EINVAL ||
            all[k](SIZE_MAX, &in, &out) != INVDL_EINVAL || all[k](0, NULL, NULL) != INVDL_OK ||
            out != 42.0f)
            edge_fail(ex, "kernel argument rules", (double)k, (double)out);
    }
    const float bad_min[] = {0.0f, -0.0f, -0.01f, NAN, INFINITY};
    const float bad_alpha[] = {NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < MPRELU_FNS * nsets; k++) {
        float in[2] = {-1.0f, 1.0f}, out[2] = {42.0f, 42.0f}, al = 0.3f;
        for (size_t m = 0; m < sizeof bad_min / sizeof bad_min[0]; m++)
            if (mps[k](1, 2, (float[]){0.3f, 0.3f}, bad_min[m], in, out) != INVDL_EINVAL)
                edge_fail(ex, "mprelu accepts a bad alpha_min", (double)k, (double)bad_min[m]);
        for (size_t m = 0; m < sizeof bad_alpha / sizeof bad_alpha[0]; m++)
            if (mps[k](1, 2, (float[]){0.3f, bad_alpha[m]}, 0.01f, in, out) != INVDL_EINVAL)
                edge_fail(ex, "mprelu accepts a bad alpha", (double)k, (double)bad_alpha[m]);
        if (mps[k](1, 1, NULL, 0.01f, in, out) != INVDL_EINVAL ||
            mps[k](1, 1, &al, 0.01f, NULL, out) != INVDL_EINVAL ||
            mps[k](1, 1, &al, 0.01f, in, NULL) != INVDL_EINVAL ||
            mps[k](SIZE_MAX, 2, &al, 0.01f, in, out) != INVDL_EINVAL ||
            mps[k](0, 5, NULL, 0.01f, NULL, NULL) != INVDL_OK)
            edge_fail(ex, "mprelu argument rules", (double)k, 0);
        if (out[0] != 42.0f || out[1] != 42.0f)
            edge_fail(ex, "mprelu wrote on a rejected call", (double)k, (double)out[0]);
    }

    /* mprelu columns: one alpha per column, rows of many magnitudes */
    enum { ROWS = 65536, COLS = 7 };
    const float alphas[COLS] = {0.3f, -0.3f, 0.0f, 0.001f, 3.0f, 0.25f, 1e30f};
    float *x = malloc(sizeof(float) * ROWS * COLS), *y = malloc(sizeof(float) * ROWS * COLS);
    float *col_in = malloc(sizeof(float) * ROWS), *col_out = malloc(sizeof(float) * ROWS);
    if (x == NULL || y == NULL || col_in == NULL || col_out == NULL)
        exit(2);
    for (uint32_t i = 0; i < ROWS; i++)
        for (uint32_t j = 0; j < COLS; j++)
            x[i * COLS + j] = bitsf(i * 65521u + j * 7919u * 4099u);
    for (size_t k = 0; k < MPRELU_FNS * nsets; k++) {
        if (mps[k](ROWS, COLS, alphas, 0.01f, x, y) != INVDL_OK)
            edge_fail(ex, "mprelu multi-column status", (double)k, 0);
        for (uint32_t j = 0; j < COLS; j++) {
            for (uint32_t i = 0; i < ROWS; i++)
                col_in[i] = x[i * COLS + j];
            if (mps[k](ROWS, 1, &alphas[j], 0.01f, col_in, col_out) != INVDL_OK)
                edge_fail(ex, "mprelu single-column status", (double)k, 0);
            for (uint32_t i = 0; i < ROWS; i++)
                if (!same_or_both_nan(col_out[i], y[i * COLS + j])) {
                    edge_fail(ex, "mprelu column j does not use alpha[j]", (double)j,
                              (double)col_in[i]);
                    break;
                }
        }
    }
    free(x);
    free(y);
    free(col_in);
    free(col_out);
    printf("  edge and argument checks: %" PRIu64 " failures\n", ex->count);
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

static uint64_t rule_total(const tstats *s)
{
    uint64_t n = s->disagree.count + s->disagree_other.count + s->monotone[0].count +
                 s->monotone[1].count;
    for (int k = 0; k < RULE_COUNT; k++)
        n += s->rules[k].count;
    return n;
}

static void print_rules(const tstats *s)
{
    print_examples("public != scalar (bit for bit; scalar in place on negatives)", &s->disagree,
                   0);
    if (other_count > 0)
        print_examples("other SIMD paths != public (bit for bit; in place on positives)",
                       &s->disagree_other, 0);
    for (int k = 0; k < RULE_COUNT; k++)
        if (s->rules[k].count)
            print_examples(rule_names[k], &s->rules[k], k == RULE_STATUS);
}

int main(int argc, char **argv)
{
    long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t quick = 1;
    const char *only = NULL, *limits = NULL;
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--threads") == 0 && k + 1 < argc)
            nthreads = strtol(argv[++k], NULL, 10);
        else if (strcmp(argv[k], "--quick") == 0 && k + 1 < argc)
            quick = (uint32_t)strtoul(argv[++k], NULL, 10);
        else if (strcmp(argv[k], "--only") == 0 && k + 1 < argc)
            only = argv[++k];
        else if (strcmp(argv[k], "--limits") == 0 && k + 1 < argc)
            limits = argv[++k];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick K] [--only TEXT] [--limits PATH]\n",
                    argv[0]);
            return 2;
        }
    }
    if (nthreads < 1)
        nthreads = 1;
    if (quick < 1)
        quick = 1;

    double t0 = wall_now();
    ref_init();
    printf("invdl exhaustive verifier: %s, %ld threads%s\n", invdl_version_string(), nthreads,
           quick > 1 ? " -- QUICK SAMPLED RUN, not exhaustive" : "");
    printf("reference: tier 1 glibc double sin/tanh (assumed error < 2^-45 relative), tier 2 %s\n",
           ref_tier2_name());
    find_other_paths();
    printf("paths: the public functions take the %s path; the scalar path", invdl_kernel_path_best()->name);
    for (size_t k = 0; k < other_count; k++)
        printf("%s the %s path", k + 1 < other_count ? "," : " and", other_paths[k]->name);
    printf(" must give their results bit for bit\n\n");

    examples edge_ex;
    memset(&edge_ex, 0, sizeof edge_ex);
    check_edges(&edge_ex);

    static run r;
    r.quick = quick;
    const uint32_t nb = MAGNITUDES / BLOCK;
    uint32_t check_samples = (0x7f800000u + CHECK_STRIDE - 1) / CHECK_STRIDE;
    if (ref_have_mpfr())
        add_task(&r, TASK_CHECK, NULL, NULL, 1, (check_samples + CHECK_PER_BLOCK - 1) / CHECK_PER_BLOCK,
                 "reference self-check");
    task *tf[2], *ti[2];
    const pair *pairs[2] = {&pair_ssin, &pair_abstanh};
    for (int k = 0; k < 2; k++) {
        char name[96];
        snprintf(name, sizeof name, "%s forward", pairs[k]->name);
        tf[k] = add_task(&r, TASK_FORWARD, pairs[k], NULL, 1, nb, name);
        snprintf(name, sizeof name, "%s inverse", pairs[k]->name);
        ti[k] = add_task(&r, TASK_INVERSE, pairs[k], NULL, 1, nb, name);
    }
    task *tm[MP_CONFIGS];
    for (size_t k = 0; k < MP_CONFIGS; k++) {
        const mp_config *c = &mp_configs[k];
        char name[96];
        snprintf(name, sizeof name, "mprelu alpha=%a alpha_min=%a", (double)c->alpha,
                 (double)c->alpha_min);
        uint32_t per = BLOCK * c->stride;
        tm[k] = add_task(&r, TASK_MPRELU, NULL, c, c->stride, (MAGNITUDES + per - 1) / per, name);
    }
    r.offset[0] = 0;
    for (int k = 0; k < r.ntasks; k++) {
        int skip = only != NULL && strstr(r.tasks[k].name, only) == NULL;
        r.offset[k + 1] = r.offset[k] + (skip ? 0 : (r.tasks[k].nblocks + quick - 1) / quick);
    }

    r.nthreads = (int)nthreads;
    r.stats = calloc((size_t)r.nthreads * (size_t)r.ntasks, sizeof *r.stats);
    pthread_t *th = calloc((size_t)r.nthreads, sizeof *th);
    worker_arg *args = calloc((size_t)r.nthreads, sizeof *args);
    if (r.stats == NULL || th == NULL || args == NULL)
        return 2;
    for (size_t k = 0; k < (size_t)r.nthreads * (size_t)r.ntasks; k++) {
        r.stats[k].min_at_ymax = UINT32_MAX;
    }
    atomic_init(&r.next, 0);
    atomic_init(&r.done, 0);
    double sweep0 = wall_now();
    for (int k = 0; k < r.nthreads; k++) {
        args[k].r = &r;
        args[k].id = k;
        if (pthread_create(&th[k], NULL, worker, &args[k]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    /* progress on stderr */
    uint64_t total = r.offset[r.ntasks];
    double last = sweep0;
    while (atomic_load(&r.done) < total) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = wall_now();
        if (now - last >= 30) {
            double f = (double)atomic_load(&r.done) / (double)total;
            fprintf(stderr, "  %5.1f%% after %.0f s\n", 100 * f, now - sweep0);
            last = now;
        }
    }
    for (int k = 0; k < r.nthreads; k++)
        pthread_join(th[k], NULL);
    double sweep_wall = wall_now() - sweep0;

    tstats *sum = calloc((size_t)r.ntasks, sizeof *sum);
    if (sum == NULL)
        return 2;
    for (int k = 0; k < r.ntasks; k++) {
        sum[k].min_at_ymax = UINT32_MAX;
        for (int th_id = 0; th_id < r.nthreads; th_id++)
            tstats_merge(&sum[k], &r.stats[(size_t)th_id * (size_t)r.ntasks + (size_t)k]);
    }

    int fail = edge_ex.count > 0;
    int all_cr = 1;
    printf("\n");

    /* the reference's own bound */
    if (ref_have_mpfr()) {
        const tstats *c = &sum[0];
        printf("Reference self-check on %" PRIu64 " floats (every %u-th), against MPFR at 256 bits "
               "(%.0f s CPU)\n",
               c->check.samples, CHECK_STRIDE, c->cpu);
        static const char *const names[REF_FN_COUNT] = {"sin", "tanh", "x sin x", "x tanh x"};
        for (int f = 0; f < REF_FN_COUNT; f++) {
            int bad = c->check.max_rel_double[f] > 0.5 * REF_DOUBLE_REL_ERR ||
                      c->check.max_rel_long_double[f] > 0.5 * (double)REF_LONG_DOUBLE_REL_ERR;
            printf("  %-9s double: max rel error %.3g = %.2f * 2^-53 (at %a); long double: %.3g = "
                   "%.2f * 2^-64%s\n",
                   names[f], c->check.max_rel_double[f], c->check.max_rel_double[f] * 0x1p53,
                   fl(c->check.worst_double_x[f]), c->check.max_rel_long_double[f],
                   c->check.max_rel_long_double[f] * 0x1p64, bad ? "  EXCEEDS THE ASSUMED BOUND" : "");
            fail |= bad;
        }
        printf("\n");
    } else {
        printf("Reference self-check skipped: built without MPFR (tier 2 is long double)\n\n");
    }

    rt_summary rt_sums[2];
    for (int k = 0; k < 2; k++) {
        const pair *p = pairs[k];
        tstats *sf = &sum[tf[k] - r.tasks], *si = &sum[ti[k] - r.tasks];
        mono_across(&r, tf[k], 0, &sf->monotone[0]);
        mono_across(&r, ti[k], 0, &si->monotone[0]);

        printf("== %s ==\n", p->name);
        printf(" forward (%.0f s CPU; domain for monotonicity: %s)\n", sf->cpu,
               p->branch ? "|x| <= XMAX" : "every non-NaN x");
        print_judge("library, all finite x", &sf->j[0]);
        print_examples("monotonicity violations", &sf->monotone[0], 0);
        print_rules(sf);
        printf("    tier-1 escalations %" PRIu64 ", undecided %" PRIu64 "\n", sf->tally.escalated,
               sf->tally.undecided);
        if (p->branch && sf->min_at_ymax <= sf->max_at_ymax) {
            printf("    floats x > 0 mapped to YMAX: [%a, %a] (%" PRIu32 " floats)\n",
                   fl(sf->min_at_ymax), fl(sf->max_at_ymax), sf->max_at_ymax - sf->min_at_ymax + 1);
        } else if (p->branch) {
            printf("    floats x > 0 mapped to YMAX: none seen\n");
        } else {
            printf("    largest |x| with y == 0: %a (documented: |x| <= 2^-75 gives 0)\n",
                   fl(sf->max_zero));
            printf("    y == x from |x| >= %a on (documented %a)\n", fl(sf->max_nonident + 1),
                   (double)ABSTANH_FWD_IDENTITY);
        }
        printf(" inverse (%.0f s CPU; domain: %s)\n", si->cpu,
               p->branch ? "|y| <= YMAX" : "every non-NaN y");
        print_judge("library", &si->j[0]);
        print_examples("monotonicity violations", &si->monotone[0], 0);
        print_rules(si);
        printf("    tier-1 escalations %" PRIu64 ", undecided %" PRIu64 "\n", si->tally.escalated,
               si->tally.undecided);
        if (!p->branch)
            printf("    x == y from |y| >= %a on (documented %a)\n", fl(si->max_nonident + 1),
                   (double)ABSTANH_INV_IDENTITY);

        printf(" round trip inverse(forward(x)), x in the forward domain\n");
        size_t niv;
        interval *iv = rt_intervals(&r, tf[k], sf, &niv);
        rt_sums[k] = summarize_rt(iv, niv, sf);
        uint64_t exact = sf->rt.exact_pos + sf->rt.exact_neg;
        uint64_t domain = sf->in_domain * 2;
        printf("    exact bit for bit: %" PRIu64 " of %" PRIu64 " inputs (both signs; negatives by "
               "the verified odd symmetry)\n",
               exact, domain);
        print_intervals(iv, niv);
        printf("    lost to underflow (y == 0, x != 0): %" PRIu64 " positive x, up to %a\n",
               sf->rt.lost, fl(sf->rt.max_lost_x));
        printf("    worst elsewhere: %.4g ulp at x = %a (-> %a); a correctly rounded pair allows "
               "%.4g there\n",
               sf->rt.max_err, fl(sf->rt.max_err_x), (double)sf->rt.max_err_rt,
               sf->rt.max_err_allowed);
        printf("    largest error / allowance: %.4f at x = %a (%.4g ulp of %.4g allowed)\n",
               sf->rt.max_ratio, fl(sf->rt.max_ratio_x), sf->rt.ratio_err, sf->rt.ratio_allowed);
        char rtdesc[1024];
        if (quick > 1)
            snprintf(rtdesc, sizeof rtdesc, "(sampled run)");
        else
            describe_intervals(rtdesc, sizeof rtdesc, iv, niv, "; ");
        char rtcell[1100];
        snprintf(rtcell, sizeof rtcell, "%s (%" PRIu64 " floats of both signs)", rtdesc, exact);
        free(iv);
        printf("\n");

        add_row(p->name, "forward", p->branch ? "every finite x" : "every finite x", &sf->j[0],
                rtcell);
        add_row(p->name, "inverse", p->branch ? "\\|y\\| <= YMAX" : "every finite y", &si->j[0],
                "");
        int bad = sf->j[0].not_faithful || si->j[0].not_faithful || sf->j[0].undecided_faithful ||
                  si->j[0].undecided_faithful || rule_total(sf) || rule_total(si) ||
                  sf->rt.max_ratio > 2 * (1 + 0x1p-10);
        all_cr &= sf->j[0].not_cr == 0 && si->j[0].not_cr == 0 && sf->j[0].undecided_cr == 0 &&
                  si->j[0].undecided_cr == 0;
        fail |= bad;
    }

    /* The limits page's figures need both forward sweeps whole. */
    int swept = quick == 1;
    for (int k = 0; k < 2; k++)
        swept &= r.offset[tf[k] - r.tasks + 1] - r.offset[tf[k] - r.tasks] == tf[k]->nblocks;
    if (limits != NULL && swept)
        fail |= !check_limits_page(limits, &rt_sums[0], &rt_sums[1]);
    else if (limits != NULL)
        printf("%s: figures not checked: the forward sweeps were not complete\n\n", limits);

    printf("== glibc on this machine, same machinery ==\n");
    for (int k = 0; k < 2; k++) {
        tstats *sf = &sum[tf[k] - r.tasks];
        print_judge(pairs[k]->glibc_name, &sf->j[1]);
        print_judge(pairs[k]->naive_name, &sf->j[2]);
    }
    printf("\n");

    printf("== monotonic PReLU ==\n");
    for (size_t k = 0; k < MP_CONFIGS; k++) {
        tstats *s = &sum[tm[k] - r.tasks];
        const mp_config *c = &mp_configs[k];
        mono_across(&r, tm[k], 0, &s->monotone[0]);
        mono_across(&r, tm[k], 1, &s->monotone[1]);
        printf(" alpha %a, alpha_min %a (slope %a; %s), %s, %.0f s CPU\n", (double)c->alpha,
               (double)c->alpha_min, (double)mp_slope(c), c->what,
               c->stride == 1 ? "all 2^32 inputs" : "every 31st bit pattern", s->cpu);
        printf("    forward: %" PRIu64 " results, %" PRIu64 " not the single IEEE rounding (max "
               "%.3g ulp); inverse: %" PRIu64 ", %" PRIu64 " not the IEEE quotient\n",
               s->j[0].n, s->j[0].not_cr, s->j[0].max_ulp, s->j[1].n, s->j[1].not_cr);
        print_examples("monotonicity violations (forward)", &s->monotone[0], 0);
        print_examples("monotonicity violations (inverse)", &s->monotone[1], 0);
        print_rules(s);
        printf("    round trip exact: %" PRIu64 " of %" PRIu64 " non-NaN inputs tested (x >= 0: "
               "%" PRIu64 "); exactness of |x| changes %" PRIu64 " times along the sweep\n",
               s->rt.exact_pos + s->rt.exact_neg, s->in_domain, s->rt.exact_pos, s->changes);
        printf("    lost to underflow/overflow (y == 0 or -inf): %" PRIu64 "; worst elsewhere %.4g "
               "ulp at %a (a correctly rounded pair allows %.4g; largest error/allowance %.4f)\n",
               s->rt.lost, s->rt.max_err, fl(s->rt.max_err_x), s->rt.max_err_allowed,
               s->rt.max_ratio);
        if (c->stride == 1) {
            char name[64], rtcell[320];
            snprintf(name, sizeof name, "mprelu (alpha %g, alpha_min %g)", (double)c->alpha,
                     (double)c->alpha_min);
            snprintf(rtcell, sizeof rtcell, "%" PRIu64 " floats", s->rt.exact_pos + s->rt.exact_neg);
            add_row(name, "forward", "every x", &s->j[0], rtcell);
            add_row(name, "inverse", "every y", &s->j[1], "");
        }
        fail |= s->j[0].not_cr || s->j[1].not_cr || rule_total(s) != 0 ||
                s->rt.max_ratio > 2 * (1 + 0x1p-10);
    }
    printf("\n");

    double wall = wall_now() - t0, cpu = 0;
    for (int k = 0; k < r.ntasks; k++)
        cpu += sum[k].cpu;
    printf("## Accuracy over every float (%s)\n\n", quick > 1 ? "QUICK SAMPLED RUN" : "exhaustive");
    printf("| kernel | direction | inputs | max error (ulp) | correctly rounded | exact round trip "
           "inverse(forward(x)) == x |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int k = 0; k < table_rows; k++) {
        const table_row *row = &table[k];
        printf("| %s | %s | %s | %.4f | %.9f%% (%" PRIu64 " not) | %s |\n", row->kernel,
               row->direction, row->domain, row->max_ulp, 100 * row->cr_fraction, row->not_cr,
               row->roundtrip);
    }
    for (int k = 0; k < 2; k++) {
        tstats *sf = &sum[tf[k] - r.tasks];
        for (int g = 1; g <= 2; g++) {
            const judge *j = &sf->j[g];
            printf("| %s | forward | every finite x | %.4f | %.6f%% (%" PRIu64 " not) | |\n",
                   g == 1 ? pairs[k]->glibc_name : pairs[k]->naive_name, j->max_ulp,
                   100.0 * (1.0 - (double)j->not_cr / (double)(j->n ? j->n : 1)), j->not_cr);
        }
    }
    printf("\nReproduce: meson setup build && meson test -C build --suite exhaustive -v\n"
           "(or run build/tests/test_exhaustive directly)\n");
    printf("Sweep wall time %.1f s on %d threads, %.0f s of CPU time (whole run %.1f s)\n",
           sweep_wall, r.nthreads, cpu, wall);
    printf("\nCorrectly rounded everywhere (signed sin, abs-tanh, both directions): %s\n",
           all_cr ? "YES" : "NO");
    printf("Bar (<= 1 ulp, monotone, rules, paths agree): %s\n", fail ? "FAILED" : "passed");
    /* invdl.h documents correct rounding, so that is what must hold. */
    return fail || !all_cr ? 1 : 0;
}
