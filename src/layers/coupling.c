/*
 * coupling.c - affine and additive coupling layers (RealNVP's affine
 * coupling, NICE's additive one).
 *
 * The features split by index parity: c, the condition (even indices, or
 * odd ones with INVDL_COUPLING_ODD: nc of them), passes through, and x
 * (the other nx) is transformed with a scale and shift computed from c by
 * a one-hidden-layer tanh network:
 *     h = tanh(W1 c + b1),  [r; t] = W2 h + b2,  s = 2 tanh(r/2),
 *     y_x = x exp(s) + t,   x = (y_x - t) exp(-s),  log|det J| = sum s
 * (additive: W2 has the nx rows of t alone, s = 0).  The inverse sees the
 * same c, so it recomputes the same s and t bit for bit.
 *
 * Parameters, in this order: W1 [hidden][nc] row-major, b1[hidden],
 * W2 [m2][hidden] row-major (m2 = 2 nx, r's rows first; nx additive),
 * b2[m2].  Settings: hidden, flags, as floats holding exact integers
 * (hidden at most INVDL_COUPLING_MAX_HIDDEN = 2^24, flags in 0..3).
 *
 * Arithmetic.  A batch runs in blocks of samples staged in double by rows
 * ([sample][feature]): the two products of the conditioner and the four
 * of its backward pass are invdl_dense_gemm() calls over weights the cache
 * holds in double in the strip layouts the GEMM reads (dense_kernels.h),
 * and the tanh and exp of the hidden units and the scale run on arrays of
 * doubles (kernels/conditioner.c).  Every sum adds its terms in index
 * order, each output is rounded to float once, and every code path
 * (scalar, AVX2, AVX-512) gives the same bits.  Hidden units run in chunks
 * as wide as the operations' scratch allows (invdl_scratch_new(width) is
 * all there is), so any hidden size works with any width; a wide hidden
 * layer on a narrow width costs a second evaluation of the hidden units
 * in the backward pass.
 *
 * Round trips.  With e = exp(s) and e' = exp(-s) each within about 2^-47
 * relative of the exact value (and of 1/each other), y_x = x e + t and
 * x' = (y_x - t) e' are each formed in double and rounded once, so
 * |x' - x| <= (2^-24 + 2^-44) (|y_x| e' + |x|) + 2^-150 (1 + e'): exact up
 * to the two float roundings (absolute, at most 2^-150, where a result is
 * subnormal), scaled by e' <= e^2 (1 + 2^-47) (the clamp |s| <= 2; tanh
 * reaches 1 exactly for large |r|).
 */
#include "kernels/dense_kernels.h"
#include "layer.h"
#include "rng.h"

#include <math.h>
#include <string.h>

#define NR INVDL_DENSE_NR
#define MR INVDL_DENSE_MR_MAX
#define KNOWN_FLAGS (INVDL_COUPLING_ODD | INVDL_COUPLING_ADDITIVE)

/* Samples per block, from the most to the fewest tried (multiples of MR:
 * a GEMM reads whole row tiles of the blocks it takes as its A operand). */
#define ROWS_MAX 32
#define ROWS_MIN 8
/* Hidden units per chunk that make a block wide enough: fewer rows are
 * tried below this. */
#define CHUNK_WANTED 64

/* What the settings say, and the sizes that follow. */
typedef struct shape {
    size_t width, hidden;
    size_t nc, nx; /* condition and transformed features */
    size_t m2;     /* rows of W2: 2 nx (r, then t), or nx (t) additive */
    int odd, additive;
} shape;

/* Reads settings that may come from a file: 0 unless they are exact
 * integers in range. */
static int read_shape(size_t width, const float *settings, shape *sh)
{
    float h = settings[0], fl = settings[1];
    if (width < 2 || !(h >= 1.0f && h <= (float)INVDL_COUPLING_MAX_HIDDEN) || h != truncf(h) ||
        !(fl >= 0.0f && fl <= (float)KNOWN_FLAGS) || fl != truncf(fl))
        return 0;
    unsigned flags = (unsigned)fl;
    sh->width = width;
    sh->hidden = (size_t)h;
    sh->odd = (flags & INVDL_COUPLING_ODD) != 0;
    sh->additive = (flags & INVDL_COUPLING_ADDITIVE) != 0;
    sh->nc = sh->odd ? width / 2 : width - width / 2;
    sh->nx = width - sh->nc;
    sh->m2 = sh->additive ? sh->nx : 2 * sh->nx;
    return 1;
}

/* Where condition feature j and transformed feature i sit in a sample. */
static size_t cpos(const shape *sh, size_t j)
{
    return 2 * j + (size_t)sh->odd;
}

static size_t xpos(const shape *sh, size_t i)
{
    return 2 * i + (size_t)!sh->odd;
}

/* The parameter count, 0 if it would not fit in an array of floats. */
static size_t values_of(const shape *sh)
{
    size_t per_unit = sh->nc + 1 + sh->m2, n;
    if (!invdl_mul_size(sh->hidden, per_unit, &n) || n > INVDL_MAX_ELEMS - sh->m2)
        return 0;
    return n + sh->m2;
}

static size_t coupling_count(size_t width, const float *settings)
{
    shape sh;
    size_t n = read_shape(width, settings, &sh) ? values_of(&sh) : 0;
    return n == 0 ? SIZE_MAX : n;
}

/* Values are checked for finiteness by prepare, which reads them all. */
static int coupling_valid(size_t width, const float *settings, const float *values)
{
    shape sh;
    (void)values;
    return read_shape(width, settings, &sh) && values_of(&sh) > 0;
}

/* ---- derived data ---------------------------------------------------------- */

/* The weights in double in the layouts the GEMM reads as its B operand
 * (strips of NR columns, [strip][depth][NR], zero past the last column):
 *   w1t  for pre = c W1^T:  columns hidden units, depth nc;
 *   w1   for dc = dpre W1:  columns condition features, depth hidden;
 *   w2t  for o = h W2^T:    columns W2's rows, depth hidden;
 *   w2   for dh = do W2:    columns hidden units, depth m2;
 * the biases in double; and for the gain (when complete), per transformed
 * feature i: e^sigma_i, sigma_i = 2 tanh(rho_i / 2) >= |s_i|, rho_i =
 * |b2_ri| + sum_k |W2_ri,k| >= |r_i| (|h_k| <= 1); and bounds on the row
 * sums of |dt_i/dc| and |ds_i/dc|: sum_k |W2_i,k| a_k, a_k = sum_j |W1_kj|
 * (tanh' and the scale's slope are at most 1). */
typedef struct coupling_cache {
    shape sh;
    double *w1t, *w1, *w2t, *w2, *b1, *b2;
    double *gain_e, *gain_t, *gain_s;
    double *all; /* owns every array above */
} coupling_cache;

static void coupling_cache_free(void *cache)
{
    coupling_cache *f = cache;
    if (f != NULL)
        invdl_free(f->all);
    invdl_free(f);
}

/* a*b + c without overflow into *sum; 0 if it overflows. */
static int add_product(size_t a, size_t b, size_t *sum)
{
    size_t p;
    if (!invdl_mul_size(a, b, &p) || p > SIZE_MAX - *sum)
        return 0;
    *sum += p;
    return 1;
}

static void *coupling_cache_new(size_t width, const float *settings)
{
    shape sh;
    if (!read_shape(width, settings, &sh))
        return NULL;
    size_t hp = invdl_dense_pad(sh.hidden), total = 0;
    size_t parts[6][2] = {{hp, sh.nc}, {invdl_dense_pad(sh.nc), sh.hidden},
                          {invdl_dense_pad(sh.m2), sh.hidden}, {hp, sh.m2},
                          {1, sh.hidden + sh.m2}, {3, sh.nx}};
    for (size_t i = 0; i < 6; i++)
        if (!add_product(parts[i][0], parts[i][1], &total))
            return NULL;
    coupling_cache *f = invdl_malloc(sizeof *f);
    if (f == NULL)
        return NULL;
    /* Zeroed once: the strips' padding stays zero, prepare writes the rest. */
    f->all = invdl_calloc_array(total, sizeof *f->all);
    if (f->all == NULL) {
        invdl_free(f);
        return NULL;
    }
    f->sh = sh;
    f->w1t = f->all;
    f->w1 = f->w1t + hp * sh.nc;
    f->w2t = f->w1 + invdl_dense_pad(sh.nc) * sh.hidden;
    f->w2 = f->w2t + invdl_dense_pad(sh.m2) * sh.hidden;
    f->b1 = f->w2 + hp * sh.m2;
    f->b2 = f->b1 + sh.hidden;
    f->gain_e = f->b2 + sh.m2;
    f->gain_t = f->gain_e + sh.nx;
    f->gain_s = f->gain_t + sh.nx;
    return f;
}

/* Position of entry (depth d, column l) in a strip layout of `depth`
 * rows. */
static size_t strip_at(size_t depth, size_t d, size_t l)
{
    return l / NR * NR * depth + d * NR + l % NR;
}

/* The gain's bounds (see coupling_cache), rounded up: a sum of n
 * nonnegative doubles is at most (n - 1) 2^-53 of itself below the exact
 * one, so each bound is scaled by 1 + (hidden + nc + 4) 2^-52. */
static void gain_bounds(coupling_cache *f, const float *w1, const float *w2, const float *b2)
{
    const shape *sh = &f->sh;
    double up = 1.0 + (double)(sh->hidden + sh->nc + 4) * 0x1p-52;
    for (size_t i = 0; i < sh->nx; i++) {
        double t = 0.0, s = 0.0, rho = 0.0;
        const float *wt = w2 + (sh->additive ? i : sh->nx + i) * sh->hidden;
        const float *wr = w2 + i * sh->hidden;
        for (size_t k = 0; k < sh->hidden; k++) {
            double a = 0.0;
            for (size_t j = 0; j < sh->nc; j++)
                a += fabs((double)w1[k * sh->nc + j]);
            t += fabs((double)wt[k]) * a;
            if (!sh->additive) {
                s += fabs((double)wr[k]) * a;
                rho += fabs((double)wr[k]);
            }
        }
        f->gain_t[i] = t * up;
        f->gain_s[i] = s * up;
        if (sh->additive) {
            f->gain_e[i] = 1.0;
        } else {
            rho = (rho + fabs((double)b2[i])) * up;
            /* tanh and exp of libm here, rounded up by a few ulps: the
             * bound need not match the conditioner's own evaluation. */
            f->gain_e[i] = exp(2.0 * tanh(0.5 * rho)) * (1.0 + 0x1p-50);
        }
    }
}

/* Training's steps (complete == 0) leave out the gain's bounds, which
 * only memory-saving backprop reads (and it asks for complete steps). */
static invdl_status coupling_prepare(const invdl_params *p, const float *values, void *cache,
                                     int complete)
{
    coupling_cache *f = cache;
    const shape *sh = &f->sh;
    size_t h = sh->hidden, nc = sh->nc, m2 = sh->m2;
    const float *w1 = values, *b1 = w1 + h * nc, *w2 = b1 + h, *b2 = w2 + m2 * h;
    if (!invdl_dense_finite(p->count, values))
        return INVDL_EINVAL;
    for (size_t k = 0; k < h; k++) {
        for (size_t j = 0; j < nc; j++) {
            double v = (double)w1[k * nc + j];
            f->w1t[strip_at(nc, j, k)] = v;
            f->w1[strip_at(h, k, j)] = v;
        }
        f->b1[k] = (double)b1[k];
    }
    for (size_t i = 0; i < m2; i++) {
        for (size_t k = 0; k < h; k++) {
            double v = (double)w2[i * h + k];
            f->w2t[strip_at(h, k, i)] = v;
            f->w2[strip_at(m2, i, k)] = v;
        }
        f->b2[i] = (double)b2[i];
    }
    if (complete)
        gain_bounds(f, w1, w2, b2);
    return INVDL_OK;
}

/* ---- blocks of samples in the scratch ---------------------------------------- */

/* The scratch, cut into blocks of `rows` samples by rows (row length
 * padded to a multiple of NR):
 *   c   [rows][ldc]  the condition, in double
 *   o   [rows][ldo]  the conditioner's output [r; t] (or t)
 *   h   [rows][ldh]  a chunk of hidden units (ldh = chunk)
 *   s, e [rows * nx] the scale and exp(+-s), packed
 * and for the backward passes
 *   dh  [rows][ldh]  dL/dh, then dL/dpre, of the chunk
 *   dout [rows][ldo] dL/do = [dL/dr; dL/dt]
 *   dc  [rows][ldc]  dL/dc. */
typedef struct plan {
    size_t rows, chunk, ldc, ldo, ldh;
    double *c, *o, *h, *s, *e, *dh, *dout, *dc;
} plan;

/* With 8 rows a block always fits: the fixed part is at most
 * 2 (pad(nc) + pad(m2)) + 2 nx <= 4 width + 30 doubles per sample, and
 * the scratch holds 120 (width + 16) / 8 >= 15 width + 240, which leaves
 * room for two chunks of NR hidden units and more. */
_Static_assert(INVDL_SCRATCH_ROWS / ROWS_MIN >= 4 &&
                   INVDL_SCRATCH_ROWS / ROWS_MIN * INVDL_SCRATCH_PAD >= 30 + 2 * NR,
               "a block of ROWS_MIN samples fits in the scratch at every width");

static void plan_make(const shape *sh, int backward, double *scratch, plan *pl)
{
    size_t total = INVDL_SCRATCH_ROWS * (sh->width + INVDL_SCRATCH_PAD);
    size_t hp = invdl_dense_pad(sh->hidden), copies = backward ? 2 : 1;
    pl->ldc = invdl_dense_pad(sh->nc);
    pl->ldo = invdl_dense_pad(sh->m2);
    size_t fixed = copies * (pl->ldc + pl->ldo) + 2 * sh->nx;
    size_t wanted = hp < CHUNK_WANTED ? hp : CHUNK_WANTED;
    for (pl->rows = ROWS_MAX;; pl->rows /= 2) {
        size_t per = total / pl->rows;
        size_t room = per > fixed ? (per - fixed) / copies / NR * NR : 0;
        pl->chunk = room < hp ? room : hp;
        if (pl->chunk >= wanted || pl->rows == ROWS_MIN)
            break;
    }
    pl->ldh = pl->chunk;
    size_t r = pl->rows;
    pl->c = scratch;
    pl->o = pl->c + r * pl->ldc;
    pl->h = pl->o + r * pl->ldo;
    pl->s = pl->h + r * pl->ldh;
    pl->e = pl->s + r * sh->nx;
    double *end = pl->e + r * sh->nx;
    pl->dh = pl->dout = pl->dc = NULL;
    if (backward) {
        pl->dh = end;
        pl->dout = pl->dh + r * pl->ldh;
        pl->dc = pl->dout + r * pl->ldo;
        end = pl->dc + r * pl->ldc;
    }
    /* Rows past a short last block are read by the GEMM's row tiles (and
     * discarded): zero rather than uninitialised. */
    memset(scratch, 0, (size_t)(end - scratch) * sizeof *scratch);
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The condition of samples s0 .. s0+cnt-1 into pl->c. */
static void stage_condition(const shape *sh, const plan *pl, size_t cnt, const float *in)
{
    for (size_t s = 0; s < cnt; s++)
        for (size_t j = 0; j < sh->nc; j++)
            pl->c[s * pl->ldc + j] = (double)in[s * sh->width + cpos(sh, j)];
}

/* pl->h = tanh(b1 + c W1^T) for the hidden units k0 .. k0+hc-1. */
static void hidden_chunk(const coupling_cache *f, const plan *pl, size_t cnt, size_t k0,
                         size_t hc)
{
    const invdl_dense_kernels *k = invdl_dense_kernels_best();
    const shape *sh = &f->sh;
    for (size_t s = 0; s < cnt; s++) {
        double *row = pl->h + s * pl->ldh;
        memcpy(row, f->b1 + k0, hc * sizeof *row);
        memset(row + hc, 0, (pl->ldh - hc) * sizeof *row);
    }
    invdl_dense_gemm(k, cnt, hc, sh->nc, pl->c, 1, (ptrdiff_t)pl->ldc, f->w1t + k0 * sh->nc, NR,
                     NR * sh->nc, pl->h, pl->ldh, 0);
    invdl_kernel_path_best()->tanh_pd(cnt * pl->ldh, pl->h);
}

/* pl->o = b2 + W2 h for the block (pl->c staged).  Returns 1 if pl->h
 * then holds every hidden unit (one chunk). */
static int conditioner(const coupling_cache *f, const plan *pl, size_t cnt)
{
    const invdl_dense_kernels *k = invdl_dense_kernels_best();
    const shape *sh = &f->sh;
    for (size_t s = 0; s < cnt; s++)
        memcpy(pl->o + s * pl->ldo, f->b2, sh->m2 * sizeof *pl->o);
    for (size_t k0 = 0; k0 < sh->hidden; k0 += pl->chunk) {
        size_t hc = min_size(pl->chunk, sh->hidden - k0);
        hidden_chunk(f, pl, cnt, k0, hc);
        invdl_dense_gemm(k, cnt, sh->m2, hc, pl->h, 1, (ptrdiff_t)pl->ldh, f->w2t + k0 * NR, NR,
                         NR * sh->hidden, pl->o, pl->ldo, 0);
    }
    return pl->chunk >= sh->hidden;
}

/* s = 2 tanh(r/2) into pl->s and exp(s) (or exp(-s) when negate) into
 * pl->e, packed [sample][nx]. */
static void scales(const shape *sh, const plan *pl, size_t cnt, int negate)
{
    for (size_t s = 0; s < cnt; s++)
        memcpy(pl->s + s * sh->nx, pl->o + s * pl->ldo, sh->nx * sizeof *pl->s);
    invdl_kernel_path_best()->soft_scale(cnt * sh->nx, pl->s, pl->e, negate);
}

/* Backward through the conditioner, given dL/do in pl->dout (its first m
 * columns: m2, or nx for r alone): dparams += the weights' and biases'
 * gradients (if not NULL), and pl->dc += dL/dc when want_dc.  h_ready: pl->h
 * holds every hidden unit already. */
static void conditioner_backward(const coupling_cache *f, const plan *pl, size_t cnt, size_t m,
                                 double *dparams, int want_dc, int h_ready)
{
    const invdl_dense_kernels *k = invdl_dense_kernels_best();
    const shape *sh = &f->sh;
    size_t h = sh->hidden, nc = sh->nc;
    double *dw1 = dparams, *db1 = dparams + h * nc, *dw2 = db1 + h, *db2 = dw2 + sh->m2 * h;
    for (size_t k0 = 0; k0 < h; k0 += pl->chunk) {
        size_t hc = min_size(pl->chunk, h - k0);
        if (!h_ready)
            hidden_chunk(f, pl, cnt, k0, hc);
        /* dh = do W2[:m, chunk] */
        memset(pl->dh, 0, cnt * pl->ldh * sizeof *pl->dh);
        invdl_dense_gemm(k, cnt, hc, m, pl->dout, 1, (ptrdiff_t)pl->ldo, f->w2 + k0 * sh->m2, NR,
                         NR * sh->m2, pl->dh, pl->ldh, 0);
        if (dparams != NULL) /* dW2[:m, chunk] += do^T h */
            invdl_dense_gemm(k, m, hc, cnt, pl->dout, (ptrdiff_t)pl->ldo, 1, pl->h,
                             (ptrdiff_t)pl->ldh, NR, dw2 + k0, h, 0);
        for (size_t s = 0; s < cnt; s++) {
            double *d = pl->dh + s * pl->ldh;
            const double *a = pl->h + s * pl->ldh;
            for (size_t l = 0; l < hc; l++)
                d[l] *= 1.0 - a[l] * a[l];
        }
        if (dparams != NULL) { /* db1 += sums of dpre; dW1[chunk] += dpre^T c */
            for (size_t s = 0; s < cnt; s++)
                for (size_t l = 0; l < hc; l++)
                    db1[k0 + l] += pl->dh[s * pl->ldh + l];
            invdl_dense_gemm(k, hc, nc, cnt, pl->dh, (ptrdiff_t)pl->ldh, 1, pl->c,
                             (ptrdiff_t)pl->ldc, NR, dw1 + k0 * nc, nc, 0);
        }
        if (want_dc) /* dc += dpre W1[chunk] */
            invdl_dense_gemm(k, cnt, nc, hc, pl->dh, 1, (ptrdiff_t)pl->ldh, f->w1 + k0 * NR, NR,
                             NR * h, pl->dc, pl->ldc, 0);
    }
    if (dparams != NULL)
        for (size_t s = 0; s < cnt; s++)
            for (size_t i = 0; i < m; i++)
                db2[i] += pl->dout[s * pl->ldo + i];
}

/* The shift t_i of sample s in the block. */
static double shift(const shape *sh, const plan *pl, size_t s, size_t i)
{
    return pl->o[s * pl->ldo + (sh->additive ? i : sh->nx + i)];
}

/* ---- the operations ------------------------------------------------------------ */

static invdl_status coupling_apply(const invdl_params *p, int inverse, size_t batch,
                                   const float *in, float *out, double *scratch)
{
    const coupling_cache *f = p->cache;
    const shape *sh = &f->sh;
    size_t w = sh->width;
    plan pl;
    plan_make(sh, 0, scratch, &pl);
    for (size_t s0 = 0; s0 < batch; s0 += pl.rows) {
        size_t cnt = min_size(pl.rows, batch - s0);
        const float *x = in + s0 * w;
        float *y = out + s0 * w;
        stage_condition(sh, &pl, cnt, x);
        (void)conditioner(f, &pl, cnt);
        if (!sh->additive)
            scales(sh, &pl, cnt, inverse);
        for (size_t s = 0; s < cnt; s++) {
            for (size_t j = 0; j < sh->nc; j++)
                y[s * w + cpos(sh, j)] = x[s * w + cpos(sh, j)];
            for (size_t i = 0; i < sh->nx; i++) {
                size_t at = s * w + xpos(sh, i);
                double v = (double)x[at], t = shift(sh, &pl, s, i);
                double e = sh->additive ? 1.0 : pl.e[s * sh->nx + i];
                y[at] = (float)(inverse ? (v - t) * e : v * e + t);
            }
        }
    }
    return INVDL_OK;
}

/* d/dr 2 tanh(r/2) = 1 - tanh^2(r/2) = 1 - (s/2)^2. */
static double scale_slope(double s)
{
    return 1.0 - 0.25 * s * s;
}

/* Forward (x = in): dx = g e, dt = g, ds = g x e.  Inverse (y = in,
 * x = (y - t) e' with e' = exp(-s)): dy = g e', dt = -g e',
 * ds = -g x.  Then dr = ds (1 - (s/2)^2) and the conditioner's backward
 * pass from dL/do = [dr; dt], the condition's own dout added to dc. */
static void coupling_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                              const float *out, const float *dout, float *din, double *dparams,
                              double *scratch)
{
    const coupling_cache *f = p->cache;
    const shape *sh = &f->sh;
    size_t w = sh->width, nx = sh->nx;
    plan pl;
    (void)out;
    plan_make(sh, 1, scratch, &pl);
    for (size_t s0 = 0; s0 < batch; s0 += pl.rows) {
        size_t cnt = min_size(pl.rows, batch - s0);
        const float *x = in + s0 * w, *g = dout + s0 * w;
        float *d = din + s0 * w;
        stage_condition(sh, &pl, cnt, x);
        int h_ready = conditioner(f, &pl, cnt);
        if (!sh->additive)
            scales(sh, &pl, cnt, inverse);
        /* dout is read before din (which may alias it) is written, entry
         * by entry. */
        for (size_t s = 0; s < cnt; s++) {
            for (size_t j = 0; j < sh->nc; j++)
                pl.dc[s * pl.ldc + j] = (double)g[s * w + cpos(sh, j)];
            double *dr = pl.dout + s * pl.ldo, *dt = sh->additive ? dr : dr + nx;
            for (size_t i = 0; i < nx; i++) {
                size_t at = s * w + xpos(sh, i);
                double gi = (double)g[at], v = (double)x[at];
                if (sh->additive) {
                    dt[i] = inverse ? -gi : gi;
                    d[at] = (float)gi;
                    continue;
                }
                double sv = pl.s[s * nx + i], e = pl.e[s * nx + i];
                double ds;
                if (!inverse) {
                    dt[i] = gi;
                    ds = gi * v * e;
                } else {
                    dt[i] = -(gi * e);
                    ds = -(gi * ((v - shift(sh, &pl, s, i)) * e));
                }
                dr[i] = ds * scale_slope(sv);
                d[at] = (float)(gi * e);
            }
        }
        conditioner_backward(f, &pl, cnt, sh->m2, dparams, 1, h_ready);
        for (size_t s = 0; s < cnt; s++)
            for (size_t j = 0; j < sh->nc; j++)
                d[s * w + cpos(sh, j)] = (float)pl.dc[s * pl.ldc + j];
    }
}

static invdl_status coupling_log_det(const invdl_params *p, size_t batch, const float *x,
                                     double *acc, double *scratch)
{
    const coupling_cache *f = p->cache;
    const shape *sh = &f->sh;
    if (sh->additive)
        return INVDL_OK;
    plan pl;
    plan_make(sh, 0, scratch, &pl);
    for (size_t s0 = 0; s0 < batch; s0 += pl.rows) {
        size_t cnt = min_size(pl.rows, batch - s0);
        stage_condition(sh, &pl, cnt, x + s0 * sh->width);
        (void)conditioner(f, &pl, cnt);
        scales(sh, &pl, cnt, 0);
        for (size_t s = 0; s < cnt; s++) {
            double sum = 0.0;
            for (size_t i = 0; i < sh->nx; i++)
                sum += pl.s[s * sh->nx + i];
            acc[s0 + s] += sum;
        }
    }
    return INVDL_OK;
}

/* log|det J| = sum_i s_i(c): the conditioner's backward pass from
 * dL/dr_i = scale (1 - (s_i/2)^2), dL/dt = 0 (so only r's rows of W2
 * take part); nothing for x.  Additive: the log-det is 0. */
static int coupling_log_det_grad(const invdl_params *p, size_t batch, const float *x,
                                 double scale, float *dx, double *dparams, double *scratch)
{
    const coupling_cache *f = p->cache;
    const shape *sh = &f->sh;
    size_t w = sh->width, nx = sh->nx;
    if (sh->additive)
        return 0;
    plan pl;
    plan_make(sh, 1, scratch, &pl);
    for (size_t s0 = 0; s0 < batch; s0 += pl.rows) {
        size_t cnt = min_size(pl.rows, batch - s0);
        stage_condition(sh, &pl, cnt, x + s0 * w);
        int h_ready = conditioner(f, &pl, cnt);
        scales(sh, &pl, cnt, 0);
        for (size_t s = 0; s < cnt; s++) {
            for (size_t i = 0; i < nx; i++)
                pl.dout[s * pl.ldo + i] = scale * scale_slope(pl.s[s * nx + i]);
            for (size_t j = 0; j < sh->nc; j++)
                pl.dc[s * pl.ldc + j] = dx != NULL ? (double)dx[(s0 + s) * w + cpos(sh, j)] : 0.0;
        }
        conditioner_backward(f, &pl, cnt, nx, dparams, dx != NULL, h_ready);
        if (dx != NULL)
            for (size_t s = 0; s < cnt; s++)
                for (size_t j = 0; j < sh->nc; j++)
                    dx[(s0 + s) * w + cpos(sh, j)] = (float)pl.dc[s * pl.ldc + j];
    }
    return 1;
}

/* Rebuilding f's input from its output runs g: x_i = (y_i - t_i) e^-s_i,
 * whose Jacobian's row i sums to at most e^sigma_i (1 + T_i) + |x_i| S_i
 * (T_i, S_i: the cache's bounds on the row sums of |dt_i/dc|, |ds_i/dc|);
 * rebuilding g's input runs f: y_i = x_i e^s_i + t_i, row sum at most
 * e^sigma_i (1 + |x_i| S_i) + T_i, with x the output.  The condition's
 * rows are the identity's: 1. */
static double coupling_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                            const float *out)
{
    const coupling_cache *f = p->cache;
    const shape *sh = &f->sh;
    size_t w = sh->width;
    double worst = 0.0;
    for (size_t s = 0; s < batch; s++) {
        const float *x = (inverse ? out : in) + s * w;
        double slope = 1.0;
        for (size_t i = 0; i < sh->nx; i++) {
            double a = fabs((double)x[xpos(sh, i)]), e = f->gain_e[i];
            double row = inverse ? e * (1.0 + a * f->gain_s[i]) + f->gain_t[i]
                                 : e * (1.0 + f->gain_t[i]) + a * f->gain_s[i];
            if (row > slope || row != row)
                slope = row;
        }
        worst = invdl_gain_update(worst, slope, w, in + s * w, out + s * w);
    }
    return worst;
}

const invdl_layer_ops invdl_coupling_ops = {
    .name = "coupling",
    .kind = INVDL_LAYER_COUPLING,
    .nsettings = 2,
    .count = coupling_count,
    .valid = coupling_valid,
    .cache_new = coupling_cache_new,
    .cache_free = coupling_cache_free,
    .prepare = coupling_prepare,
    .apply = coupling_apply,
    .backward = coupling_backward,
    .log_det = coupling_log_det,
    .log_det_grad = coupling_log_det_grad,
    .gain = coupling_gain,
};

invdl_layer *invdl_layer_coupling(size_t width, size_t hidden, unsigned flags, uint64_t seed)
{
    if (width < 2 || invdl_bad_width(width) || hidden < 1 ||
        hidden > INVDL_COUPLING_MAX_HIDDEN || (flags & ~KNOWN_FLAGS) != 0)
        return NULL;
    const float settings[2] = {(float)hidden, (float)flags};
    shape sh;
    (void)read_shape(width, settings, &sh);
    size_t count = values_of(&sh);
    float *values = count > 0 ? invdl_calloc_array(count, sizeof *values) : NULL;
    if (values == NULL)
        return NULL;
    /* W1 glorot-uniform for a kernel of fan_in nc and fan_out hidden:
     * U(-limit, limit), limit = sqrt(6 / (nc + hidden)), drawn in W1's
     * row-major order; b1, W2 and b2 are 0 (the layer starts as the
     * identity). */
    double limit = sqrt(6.0 / (double)(sh.nc + hidden));
    uint64_t state = seed;
    for (size_t i = 0; i < hidden * sh.nc; i++)
        values[i] = (float)(limit * (2.0 * invdl_rng_uniform(&state) - 1.0));
    return invdl_layer_create(&invdl_coupling_ops, width, settings, values, NULL);
}

invdl_status invdl_layer_coupling_settings(const invdl_layer *layer, size_t *hidden,
                                           unsigned *flags)
{
    if (layer == NULL || hidden == NULL || flags == NULL ||
        layer->params->ops != &invdl_coupling_ops)
        return INVDL_EINVAL;
    *hidden = (size_t)layer->params->settings[0];
    *flags = (unsigned)layer->params->settings[1];
    return INVDL_OK;
}
