/*
 * test_gradients.c - backward passes, log-determinants, log-densities and
 * the negative log-likelihood's gradients against central finite
 * differences of an independent double-precision reference.
 *
 * The reference (below) computes each layer's math in double from the
 * layer's parameters: x*sin|x|, |x|*tanh x and their inverses by the long
 * double root finders of reference.c, the PReLU slope max(|alpha|, amin),
 * W x + b and its inverse by Gaussian elimination (dense_lu's W formed
 * from P, L and the floored U), and the coupling's conditioner and
 * affine map with the C library's tanh and exp.  Central differences
 * with step h have truncation error O(h^2 f''') ~ 1e-10 at h = 1e-5 and
 * rounding error ~1e-16/h ~ 1e-11, far below the tolerance.
 *
 * Tolerance: the library runs its forward pass in float, so every
 * activation and every dL/dy carries a relative error of a few 2^-24;
 * each backward step multiplies by a local slope (below 10 at the points
 * used here, which stay away from kinks, from 0 where the inverse kernels
 * are unbounded, and from the signed sin branch end).  1e-5 of the largest
 * gradient component (about 80 float ulps) covers that with margin; a
 * wrong formula (a missing sign, a transposed W, a wrong slope branch) is
 * off by O(1).  The largest error measured is 5e-7 of the largest
 * component (1.4e-7 for the coupling layers).
 *
 * The negative log-likelihood's reference adds each layer's log|det J|
 * from derivatives written out here (sin a + a cos a, tanh a + a sech^2 a,
 * log a per negative PReLU input, log|det W| by elimination, a
 * coupling's sum of s; minus the
 * forward map's at an inverse layer's output), so central differences of
 * it check the library's f''/f', W^-T and the inverse layers' derived
 * gradients; those log-dets are themselves checked against the
 * brute-force Jacobian of the reference (test_log_det, test_log_prob).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"
#include "reference.h"

#define GRAD_TOL 1e-5
#define MAXW 6
#define MAXP 96
#define COUPLING_HIDDEN 7

/* ---- the reference ------------------------------------------------------ */

typedef struct ref_layer {
    invdl_layer_kind kind;
    int inverse;
    size_t width;
    float amin;          /* mprelu */
    float s_min;         /* dense_lu */
    size_t perm[MAXW];   /* dense_lu */
    size_t hidden;       /* coupling */
    unsigned flags;      /* coupling */
    double p[MAXP]; /* parameters, as the library lays them out */
    size_t np;
} ref_layer;

static ref_layer ref_of(const invdl_layer *l)
{
    ref_layer r;
    float tmp[MAXP];
    memset(&r, 0, sizeof r);
    r.kind = invdl_layer_kind_of(l);
    r.inverse = invdl_layer_is_inverse(l);
    r.width = invdl_layer_width(l);
    r.amin = invdl_layer_alpha_min(l);
    r.s_min = invdl_layer_s_min(l);
    if (r.kind == INVDL_LAYER_DENSE_LU)
        assert_int_equal(invdl_layer_permutation(l, r.perm), INVDL_OK);
    if (r.kind == INVDL_LAYER_COUPLING)
        assert_int_equal(invdl_layer_coupling_settings(l, &r.hidden, &r.flags), INVDL_OK);
    r.np = invdl_layer_param_count(l);
    assert_true(r.width <= MAXW && r.np <= MAXP);
    assert_int_equal(invdl_layer_get_params(l, r.np, tmp), INVDL_OK);
    for (size_t i = 0; i < r.np; i++)
        r.p[i] = (double)tmp[i];
    return r;
}

/* Solves a x = b (n <= MAXW) by Gaussian elimination with partial
 * pivoting; returns log|det a|. */
static double ref_solve(size_t n, const double *a_in, const double *b, double *x)
{
    double a[MAXW][MAXW + 1];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++)
            a[i][j] = a_in[i * n + j];
        a[i][n] = b != NULL ? b[i] : 0.0;
    }
    double logdet = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabs(a[i][k]) > fabs(a[piv][k]))
                piv = i;
        for (size_t j = 0; j <= n; j++) {
            double t = a[k][j];
            a[k][j] = a[piv][j];
            a[piv][j] = t;
        }
        logdet += log(fabs(a[k][k]));
        for (size_t i = k + 1; i < n; i++) {
            double m = a[i][k] / a[k][k];
            for (size_t j = k; j <= n; j++)
                a[i][j] -= m * a[k][j];
        }
    }
    if (x != NULL) {
        for (size_t i = n; i-- > 0;) {
            double s = a[i][n];
            for (size_t j = i + 1; j < n; j++)
                s -= a[i][j] * x[j];
            x[i] = s / a[i][i];
        }
    }
    return logdet;
}

/* W of a dense or dense_lu layer, row-major: dense_lu's from its layout
 * (L's strictly lower entries row by row, U's strictly upper ones, s with
 * |s_i| < s_min floored to copysign(s_min, s_i); row i of L U is row
 * perm[i] of W). */
static void ref_weights(const ref_layer *r, double *w)
{
    size_t n = r->width, tri = n * (n - 1) / 2;
    if (r->kind == INVDL_LAYER_DENSE) {
        memcpy(w, r->p, n * n * sizeof *w);
        return;
    }
    double l[MAXW][MAXW] = {{0}}, u[MAXW][MAXW] = {{0}};
    for (size_t i = 0; i < n; i++) {
        l[i][i] = 1.0;
        for (size_t k = 0; k < i; k++)
            l[i][k] = r->p[i * (i - 1) / 2 + k];
        for (size_t k = i + 1; k < n; k++)
            u[i][k] = r->p[tri + i * (2 * n - i - 1) / 2 + (k - i - 1)];
        double s = r->p[2 * tri + i];
        u[i][i] = fabs(s) >= (double)r->s_min ? s : copysign((double)r->s_min, s);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (size_t k = 0; k < n; k++)
                acc += l[i][k] * u[k][j];
            w[r->perm[i] * n + j] = acc;
        }
}

/* The coupling's split and the conditioner at the condition of v:
 * s[i] (0 additive) and t[i] for each transformed feature, its index in
 * xi[i].  Returns the number of transformed features. */
static size_t ref_conditioner(const ref_layer *r, const double *v, double *s, double *t,
                              size_t *xi)
{
    size_t n = r->width, h = r->hidden;
    int odd = (r->flags & INVDL_COUPLING_ODD) != 0;
    int additive = (r->flags & INVDL_COUPLING_ADDITIVE) != 0;
    size_t nc = odd ? n / 2 : n - n / 2, nx = n - nc, m2 = additive ? nx : 2 * nx;
    const double *w1 = r->p, *b1 = w1 + h * nc, *w2 = b1 + h, *b2 = w2 + m2 * h;
    double hid[COUPLING_HIDDEN];
    for (size_t k = 0; k < h; k++) {
        double pre = b1[k];
        for (size_t j = 0; j < nc; j++)
            pre += w1[k * nc + j] * v[2 * j + (size_t)odd];
        hid[k] = tanh(pre);
    }
    for (size_t i = 0; i < nx; i++) {
        double o[2];
        for (size_t q = 0; q < (additive ? 1u : 2u); q++) {
            size_t row = q * nx + i;
            o[q] = b2[row];
            for (size_t k = 0; k < h; k++)
                o[q] += w2[row * h + k] * hid[k];
        }
        s[i] = additive ? 0.0 : 2.0 * tanh(o[0] / 2.0);
        t[i] = additive ? o[0] : o[1];
        xi[i] = 2 * i + (size_t)!odd;
    }
    return nx;
}

/* One sample through one layer, in place. */
static void ref_apply(const ref_layer *r, double *v)
{
    size_t n = r->width;
    if (r->kind == INVDL_LAYER_COUPLING) {
        double s[MAXW], t[MAXW];
        size_t xi[MAXW], nx = ref_conditioner(r, v, s, t, xi);
        for (size_t i = 0; i < nx; i++) {
            double x = v[xi[i]];
            v[xi[i]] = r->inverse ? (x - t[i]) * exp(-s[i]) : x * exp(s[i]) + t[i];
        }
        return;
    }
    int affine = r->kind == INVDL_LAYER_DENSE || r->kind == INVDL_LAYER_DENSE_LU;
    for (size_t j = 0; j < n && !affine; j++) {
        double x = v[j];
        switch (r->kind) {
        case INVDL_LAYER_SSIN:
            v[j] = r->inverse ? (double)ref_ssin_inv((long double)x) : x * sin(fabs(x));
            break;
        case INVDL_LAYER_ABSTANH:
            v[j] = r->inverse ? (double)ref_abstanh_inv((long double)x) : fabs(x) * tanh(x);
            break;
        case INVDL_LAYER_MPRELU: {
            double a = fmax(fabs(r->p[j]), (double)r->amin);
            v[j] = x >= 0 ? x : (r->inverse ? x / a : a * x);
            break;
        }
        default:
            fail();
        }
    }
    if (affine) {
        double out[MAXW], w[MAXW * MAXW];
        ref_weights(r, w);
        if (!r->inverse) {
            for (size_t i = 0; i < n; i++) {
                out[i] = r->p[n * n + i];
                for (size_t j = 0; j < n; j++)
                    out[i] += w[i * n + j] * v[j];
            }
        } else {
            double rhs[MAXW];
            for (size_t i = 0; i < n; i++)
                rhs[i] = v[i] - r->p[n * n + i];
            ref_solve(n, w, rhs, out);
        }
        memcpy(v, out, n * sizeof *v);
    }
}

#define MAXDEPTH 14

typedef struct ref_model {
    size_t depth, width;
    ref_layer layers[MAXDEPTH];
    int block[MAXDEPTH]; /* layers with the same block share parameters */
} ref_model;

static ref_model ref_model_of(invdl_model *m)
{
    ref_model r;
    memset(&r, 0, sizeof r);
    r.depth = invdl_model_depth(m);
    r.width = invdl_model_width(m);
    assert_true(r.depth <= MAXDEPTH);
    for (size_t l = 0; l < r.depth; l++) {
        r.layers[l] = ref_of(invdl_model_layer(m, l));
        r.block[l] = (int)l;
        for (size_t k = 0; k < l; k++)
            if (invdl_layer_shares_params(invdl_model_layer(m, l), invdl_model_layer(m, k))) {
                r.block[l] = r.block[k];
                break;
            }
    }
    return r;
}

static void ref_model_apply(const ref_model *r, double *v)
{
    for (size_t l = 0; l < r->depth; l++)
        ref_apply(&r->layers[l], v);
}

/* log|f'(x)| of the elementwise forward maps, from their derivatives
 * written out here: (x sin|x|)' = sin a + a cos a and
 * (|x| tanh x)' = tanh a + a sech^2 a, a = |x| (test_log_det checks these
 * against the brute-force Jacobian). */
static double ref_log_slope(invdl_layer_kind kind, double x)
{
    double a = fabs(x);
    if (kind == INVDL_LAYER_SSIN)
        return log(fabs(sin(a) + a * cos(a)));
    return log(fabs(tanh(a) + a / (cosh(a) * cosh(a))));
}

/* log|det J| of one layer at one sample, from its input and output: the
 * forward map's at its input, or minus the forward map's at the inverse's
 * output. */
static double ref_layer_log_det(const ref_layer *r, const double *in, const double *out)
{
    const double *x = r->inverse ? out : in;
    size_t n = r->width;
    double ld = 0.0;
    if (r->kind == INVDL_LAYER_DENSE || r->kind == INVDL_LAYER_DENSE_LU) {
        double w[MAXW * MAXW];
        ref_weights(r, w);
        ld = ref_solve(n, w, NULL, NULL);
    } else if (r->kind == INVDL_LAYER_COUPLING) {
        double s[MAXW], t[MAXW];
        size_t xi[MAXW], nx = ref_conditioner(r, x, s, t, xi);
        for (size_t i = 0; i < nx; i++)
            ld += s[i];
    } else {
        for (size_t j = 0; j < n; j++) {
            if (r->kind != INVDL_LAYER_MPRELU)
                ld += ref_log_slope(r->kind, x[j]);
            else if (x[j] < 0)
                ld += log(fmax(fabs(r->p[j]), (double)r->amin));
        }
    }
    return r->inverse ? -ld : ld;
}

/* -log p(x) of the model as a flow at one sample: 0.5 |z|^2 +
 * (n/2) log(2 pi) - sum of the layers' log|det J|. */
static double ref_sample_nll(const ref_model *r, const double *x)
{
    double v[MAXW], in[MAXW], ld = 0.0, sq = 0.0;
    size_t n = r->width;
    memcpy(v, x, n * sizeof *v);
    for (size_t l = 0; l < r->depth; l++) {
        memcpy(in, v, n * sizeof *in);
        ref_apply(&r->layers[l], v);
        ld += ref_layer_log_det(&r->layers[l], in, v);
    }
    for (size_t j = 0; j < n; j++)
        sq += v[j] * v[j];
    return 0.5 * sq + 0.5 * (double)n * log(2.0 * 3.14159265358979323846) - ld;
}

/* MSE over batch samples x[batch][width] against y. */
static double ref_mse(const ref_model *r, size_t batch, const double *x, const float *y)
{
    double sum = 0.0;
    size_t w = r->width;
    for (size_t s = 0; s < batch; s++) {
        double v[MAXW];
        memcpy(v, x + s * w, w * sizeof *v);
        ref_model_apply(r, v);
        for (size_t j = 0; j < w; j++)
            sum += (v[j] - (double)y[s * w + j]) * (v[j] - (double)y[s * w + j]);
    }
    return sum / (double)(batch * w);
}

/* The batch's mean of -log p(x); y is not read. */
static double ref_nll(const ref_model *r, size_t batch, const double *x, const float *y)
{
    double sum = 0.0;
    (void)y;
    for (size_t s = 0; s < batch; s++)
        sum += ref_sample_nll(r, x + s * r->width);
    return sum / (double)batch;
}

typedef double (*ref_loss_fn)(const ref_model *r, size_t batch, const double *x, const float *y);

/* The parameter vector of the model (distinct blocks in order of first
 * use) is the library's; writing entry i writes every layer sharing it. */
static double *param_slot(ref_model *r, size_t index, size_t l_of[], size_t *count)
{
    size_t off = 0;
    for (size_t l = 0; l < r->depth; l++) {
        if (r->block[l] != (int)l)
            continue;
        if (index < off + r->layers[l].np) {
            *count = 0;
            for (size_t k = 0; k < r->depth; k++)
                if (r->block[k] == (int)l)
                    l_of[(*count)++] = k;
            return &r->layers[l].p[index - off];
        }
        off += r->layers[l].np;
    }
    return NULL;
}

static void set_param(ref_model *r, size_t index, double value)
{
    size_t l_of[MAXDEPTH], count;
    double *slot = param_slot(r, index, l_of, &count);
    size_t within = (size_t)(slot - r->layers[l_of[0]].p);
    for (size_t k = 0; k < count; k++)
        r->layers[l_of[k]].p[within] = value;
}

static double get_param(ref_model *r, size_t index)
{
    size_t l_of[MAXDEPTH], count;
    return *param_slot(r, index, l_of, &count);
}

static double max_abs(size_t n, const double *v)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Checks the library's gradient of model m on x -> y (options o, NULL for
 * the defaults) against central differences of the reference loss, for
 * the parameters and the inputs. */
static void check_loss_gradient(invdl_model *m, size_t batch, const float *x, const float *y,
                                const invdl_fit_options *o)
{
    ref_loss_fn ref_loss = o != NULL && o->loss == INVDL_LOSS_NLL ? ref_nll : ref_mse;
    ref_model r = ref_model_of(m);
    size_t w = r.width, n = batch * w, np = invdl_model_param_count(m);
    float loss, *pg = malloc((np + 1) * sizeof *pg), *xg = malloc(n * sizeof *xg);
    double *fd = malloc((np + n + 1) * sizeof *fd), *xd = malloc(n * sizeof *xd);
    assert_non_null(pg);
    assert_non_null(xg);
    assert_non_null(fd);
    assert_non_null(xd);
    assert_int_equal(invdl_model_gradient(m, batch, x, y, o, &loss, pg, xg), INVDL_OK);
    for (size_t i = 0; i < n; i++)
        xd[i] = (double)x[i];
    /* The library's loss comes from float activations: a few float ulps
     * of the terms it sums. */
    assert_true(fabs((double)loss - ref_loss(&r, batch, xd, y)) <=
                1e-5 * fmax(1.0, fabs(ref_loss(&r, batch, xd, y))));

    for (size_t i = 0; i < np; i++) {
        double p0 = get_param(&r, i), h = 1e-5 * fmax(1.0, fabs(p0));
        set_param(&r, i, p0 + h);
        double up = ref_loss(&r, batch, xd, y);
        set_param(&r, i, p0 - h);
        double down = ref_loss(&r, batch, xd, y);
        set_param(&r, i, p0);
        fd[i] = (up - down) / (2 * h);
    }
    double scale = max_abs(np, fd);
    for (size_t i = 0; i < np; i++)
        assert_true(fabs((double)pg[i] - fd[i]) <= GRAD_TOL * scale);

    for (size_t i = 0; i < n; i++) {
        double x0 = xd[i], h = 1e-5 * fmax(1.0, fabs(x0));
        xd[i] = x0 + h;
        double up = ref_loss(&r, batch, xd, y);
        xd[i] = x0 - h;
        double down = ref_loss(&r, batch, xd, y);
        xd[i] = x0;
        fd[i] = (up - down) / (2 * h);
    }
    scale = max_abs(n, fd);
    for (size_t i = 0; i < n; i++) {
        assert_true(fabs((double)xg[i] - fd[i]) <= GRAD_TOL * scale);
    }
    free(pg);
    free(xg);
    free(fd);
    free(xd);
}

static void check_gradient(invdl_model *m, size_t batch, const float *x, const float *y)
{
    check_loss_gradient(m, batch, x, y, NULL);
}

/* The negative log-likelihood's gradient, with stored and with
 * memory-saving backprop.  The latter rebuilds layer inputs through the
 * inverses wherever that amplifies rounding errors by at most 16 (max_gain;
 * docs/training.md: "Memory-saving backprop"), which keeps it within the tolerance;
 * report what it stored. */
static void check_nll_gradient(invdl_model *m, size_t batch, const float *x)
{
    invdl_fit_options o = invdl_fit_defaults();
    o.loss = INVDL_LOSS_NLL;
    check_loss_gradient(m, batch, x, NULL, &o);
    invdl_fit_report rep;
    o.memory_saving = 1;
    o.max_gain = 16.0f;
    o.report = &rep;
    check_loss_gradient(m, batch, x, NULL, &o);
    assert_int_equal(rep.fallbacks, 0);
}

/* ---- data ---------------------------------------------------------------- */

enum { W = 5, BATCH = 7 };

/* Inputs in [lo, hi] in magnitude, random signs: away from kinks and from
 * 0, where inverse kernels have unbounded slope. */
static void fill_inputs(float *v, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(test_rand(&s) >> 11) * 0x1p-53;
        double mag = lo + (hi - lo) * u;
        v[i] = (float)((test_rand(&s) & 1) ? -mag : mag);
    }
}

/* Targets at a distance from the outputs comparable to the outputs, so
 * that dL/dy = 2(pred - y)/n is not dominated by the rounding of pred. */
static void fill_targets(invdl_model *m, const float *x, float *y, uint64_t seed)
{
    uint64_t s = seed;
    assert_int_equal(invdl_model_predict(m, BATCH, x, y), INVDL_OK);
    for (size_t i = 0; i < BATCH * W; i++)
        y[i] += (float)(((double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5) * (1.0 + fabs((double)y[i])));
}

/* A one-layer model over l, or over its inverse. */
static invdl_model *single(invdl_layer *l, int inverse)
{
    invdl_model *m = invdl_model_create(W);
    assert_non_null(m);
    assert_non_null(l);
    if (inverse) {
        invdl_layer *inv = invdl_layer_inverse(l);
        invdl_layer_free(l);
        l = inv;
    }
    assert_int_equal(invdl_model_add(m, l), INVDL_OK);
    return m;
}

/* Dense parameters a little away from orthogonal, b nonzero, so that
 * transposition and sign mistakes show. */
static void perturb_dense(invdl_layer *l, uint64_t seed)
{
    float p[W * W + W];
    uint64_t s = seed;
    assert_int_equal(invdl_layer_get_params(l, W * W + W, p), INVDL_OK);
    for (size_t i = 0; i < W * W + W; i++)
        p[i] += (float)(0.3 * ((double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5));
    assert_int_equal(invdl_layer_set_params(l, W * W + W, p), INVDL_OK);
}

/* mprelu alphas of both signs, away from alpha_min (where da/dalpha
 * jumps), one below it (its derivative is 0). */
static void set_alphas(invdl_layer *l)
{
    const float alpha[W] = {0.3f, -0.6f, 1.4f, -0.2f, 0.005f};
    assert_int_equal(invdl_layer_set_params(l, W, alpha), INVDL_OK);
}

/* A one-layer model of the kind, or of its inverse: the MSE gradient and
 * the NLL gradient (stored and memory saving). */
static void check_kind(invdl_layer *(*make)(void), double lo, double hi, int inverse)
{
    float x[BATCH * W], y[BATCH * W];
    invdl_model *m = single(make(), inverse);
    fill_inputs(x, BATCH * W, lo, hi, 11u + (uint64_t)inverse);
    fill_targets(m, x, y, 12);
    check_gradient(m, BATCH, x, y);
    check_nll_gradient(m, BATCH, x);
    invdl_model_free(m);
}

static invdl_layer *make_ssin(void)
{
    return invdl_layer_ssin(W);
}

static invdl_layer *make_abstanh(void)
{
    return invdl_layer_abstanh(W);
}

static invdl_layer *make_mprelu(void)
{
    invdl_layer *l = invdl_layer_mprelu(W, 5);
    set_alphas(l);
    return l;
}

static invdl_layer *make_dense(void)
{
    invdl_layer *l = invdl_layer_dense(W, 6);
    perturb_dense(l, 7);
    return l;
}

static invdl_layer *make_dense_lu(void)
{
    invdl_layer *l = invdl_layer_dense_lu(W, 13);
    perturb_dense(l, 14);
    return l;
}

/* A coupling layer with every parameter away from its start (W2 and b2
 * start at 0, where the scale and shift would not depend on c): W1 in
 * (-1, 1), b1 in (-0.5, 0.5), W2 in (-0.7, 0.7), b2 in (-0.3, 0.3), so r
 * spans about (-2, 2) and the clamp's slope 1 - (s/2)^2 varies. */
static invdl_layer *coupling_with(unsigned flags, uint64_t seed)
{
    invdl_layer *l = invdl_layer_coupling(W, COUPLING_HIDDEN, flags, seed);
    assert_non_null(l);
    size_t np = invdl_layer_param_count(l), h = COUPLING_HIDDEN;
    size_t nc = (flags & INVDL_COUPLING_ODD) ? W / 2 : W - W / 2;
    size_t m2 = np / h - nc - 1; /* np = h (nc + 1 + m2) + m2 */
    assert_int_equal(np, h * (nc + 1 + m2) + m2);
    float p[MAXP];
    uint64_t s = seed;
    for (size_t i = 0; i < np; i++) {
        double u = (double)(test_rand(&s) >> 11) * 0x1p-53 - 0.5;
        double range = i < h * nc ? 2.0 : i < h * (nc + 1) ? 1.0 : i < np - m2 ? 1.4 : 0.6;
        p[i] = (float)(range * u);
    }
    assert_int_equal(invdl_layer_set_params(l, np, p), INVDL_OK);
    return l;
}

static unsigned coupling_flags;

static invdl_layer *make_coupling(void)
{
    return coupling_with(coupling_flags, 15 + coupling_flags);
}

static void test_ssin(void **state)
{
    (void)state;
    check_kind(make_ssin, 0.3, 1.7, 0);
    /* Inverse inputs y = x sin|x| for |x| in [0.5, 1.7]: y in [0.24, 1.69]. */
    check_kind(make_ssin, 0.3, 1.6, 1);
}

static void test_abstanh(void **state)
{
    (void)state;
    check_kind(make_abstanh, 0.2, 3.0, 0);
    check_kind(make_abstanh, 0.1, 3.0, 1);
}

static void test_mprelu(void **state)
{
    (void)state;
    check_kind(make_mprelu, 0.05, 2.0, 0);
    check_kind(make_mprelu, 0.05, 2.0, 1);
}

static void test_dense(void **state)
{
    (void)state;
    check_kind(make_dense, 0.0, 2.0, 0);
    check_kind(make_dense, 0.0, 2.0, 1);
}

static void test_dense_lu(void **state)
{
    (void)state;
    check_kind(make_dense_lu, 0.0, 2.0, 0);
    check_kind(make_dense_lu, 0.0, 2.0, 1);
}

/* Affine and additive, both parities (width 5: 3 condition features and
 * 2 transformed ones, or 2 and 3 with INVDL_COUPLING_ODD), both
 * directions. */
static void test_coupling(void **state)
{
    (void)state;
    for (coupling_flags = 0; coupling_flags < 4; coupling_flags++) {
        check_kind(make_coupling, 0.0, 2.0, 0);
        check_kind(make_coupling, 0.0, 2.0, 1);
    }
}

/* The inverse of an inverse layer is the forward map again, with its
 * gradient. */
static void test_inverse_of_inverse(void **state)
{
    (void)state;
    invdl_layer *d = make_dense();
    invdl_layer *inv = invdl_layer_inverse(d);
    invdl_layer *back = invdl_layer_inverse(inv);
    assert_false(invdl_layer_is_inverse(back));
    invdl_layer_free(d);
    invdl_layer_free(inv);
    invdl_model *m = single(back, 0);
    float x[BATCH * W], y[BATCH * W];
    fill_inputs(x, BATCH * W, 0.0, 2.0, 21);
    fill_targets(m, x, y, 22);
    check_gradient(m, BATCH, x, y);
    check_nll_gradient(m, BATCH, x);
    invdl_model_free(m);
}

/* A chain of every kind, with a layer and its inverse sharing one block
 * in the same model: the shared gradient is the sum of both uses. */
static void test_chain_with_shared_block(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d = make_dense();
    invdl_layer *p = make_mprelu();
    invdl_layer *d2 = invdl_layer_dense(W, 8);
    perturb_dense(d2, 9);
    assert_int_equal(invdl_model_add(m, d), INVDL_OK);
    assert_int_equal(invdl_model_add(m, p), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, d2), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(p)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(d)), INVDL_OK);
    assert_int_equal(invdl_model_param_count(m), 2 * (W * W + W) + W);
    float x[BATCH * W], y[BATCH * W];
    fill_inputs(x, BATCH * W, 0.3, 1.0, 31);
    fill_targets(m, x, y, 32);
    check_gradient(m, BATCH, x, y);
    check_nll_gradient(m, BATCH, x);
    invdl_model_free(m);
}

/* log|det J| of the reference model at x[W], its Jacobian taken by
 * central differences (h = 1e-6: truncation ~1e-12 relative, rounding
 * ~1e-10). */
static double ref_log_det_fd(const ref_model *r, const float *x)
{
    double jac[W * W], h = 1e-6;
    for (size_t j = 0; j < W; j++) {
        double up[W], down[W];
        for (size_t i = 0; i < W; i++)
            up[i] = down[i] = (double)x[i];
        up[j] += h;
        down[j] -= h;
        ref_model_apply(r, up);
        ref_model_apply(r, down);
        for (size_t i = 0; i < W; i++)
            jac[i * W + j] = (up[i] - down[i]) / (2 * h);
    }
    return ref_solve(W, jac, NULL, NULL);
}

/* log|det J| of model m against the Jacobian of the reference by central
 * differences at inputs of magnitude lo..hi, and the inverse model's
 * against its negative. */
static void check_log_det(invdl_model *m, double lo, double hi)
{
    ref_model r = ref_model_of(m);
    float x[BATCH * W], y[BATCH * W], ld[BATCH], ld_inv[BATCH];
    fill_inputs(x, BATCH * W, lo, hi, 41);
    assert_int_equal(invdl_model_log_det(m, BATCH, x, ld), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, BATCH, x, y), INVDL_OK);
    invdl_model *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_log_det(inv, BATCH, y, ld_inv), INVDL_OK);
    for (size_t s = 0; s < BATCH; s++) {
        double want = ref_log_det_fd(&r, x + s * W);
        /* A sum of about 20 logs, each of a float-rounded input's slope:
         * 1e-4 absolute is about 1e-5 relative to the terms' magnitude
         * (1.0e-6 measured at worst; 5e-8 for the dense_lu and coupling
         * model). */
        assert_true(fabs((double)ld[s] - want) <= 1e-4);
        /* The inverse runs on the rounded y, so it sees slightly different
         * points; same allowance. */
        assert_true(fabs((double)ld_inv[s] + want) <= 1e-4);
    }
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* The elementwise kinds and dense (inputs small enough that the signed sin
 * stays inside its branch; it comes last, where the inverse model starts,
 * because its inverse amplifies the rounding of what it is given), then
 * the smooth kinds: dense_lu and couplings of both parities, affine and
 * additive, forward and inverse. */
static void test_log_det(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(W);
    assert_int_equal(invdl_model_add(m, make_dense()), INVDL_OK);
    assert_int_equal(invdl_model_add(m, make_mprelu()), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    check_log_det(m, 0.05, 0.6);

    m = invdl_model_create(W);
    invdl_layer *odd = coupling_with(INVDL_COUPLING_ODD, 43);
    assert_int_equal(invdl_model_add(m, make_dense_lu()), INVDL_OK);
    assert_int_equal(invdl_model_add(m, coupling_with(0, 42)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(odd)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, coupling_with(INVDL_COUPLING_ADDITIVE, 44)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, odd), INVDL_OK);
    check_log_det(m, 0.0, 2.0);
}

/* Every kind forward and inverse in one model: dense, mprelu, abs-tanh,
 * inverse signed sin, dense, the mprelu's inverse (its block), signed sin,
 * inverse abs-tanh, dense_lu, an affine coupling, an inverse affine
 * coupling of the other parity, an inverse additive coupling, the
 * dense_lu's inverse, the first dense layer's inverse.  Small inputs keep
 * both signed sins inside their domains (|x| <= XMAX, |y| <= YMAX); the
 * pairs abs-tanh then inverse signed sin and signed sin then inverse
 * abs-tanh each behave like the identity near 0 (x|x| then sqrt), so the
 * model is smooth where its layers are steep. */
static invdl_model *every_kind_model(void)
{
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d1 = make_dense(), *d2 = invdl_layer_dense(W, 8);
    invdl_layer *p = invdl_layer_mprelu(W, 5);
    const float alpha[W] = {0.8f, -0.9f, 1.2f, -0.7f, 0.6f};
    assert_int_equal(invdl_layer_set_params(p, W, alpha), INVDL_OK);
    perturb_dense(d2, 9);
    invdl_layer *inv_ssin = invdl_layer_ssin(W), *inv_abstanh = invdl_layer_abstanh(W);
    invdl_layer *lu = make_dense_lu();
    invdl_layer *inv_odd = coupling_with(INVDL_COUPLING_ODD, 53);
    invdl_layer *inv_add = coupling_with(INVDL_COUPLING_ADDITIVE, 54);
    invdl_layer *layers[14] = {
        d1, p, invdl_layer_abstanh(W), invdl_layer_inverse(inv_ssin), d2, invdl_layer_inverse(p),
        invdl_layer_ssin(W), invdl_layer_inverse(inv_abstanh), lu, coupling_with(0, 55),
        invdl_layer_inverse(inv_odd), invdl_layer_inverse(inv_add), invdl_layer_inverse(lu),
        invdl_layer_inverse(d1),
    };
    invdl_layer_free(inv_ssin);
    invdl_layer_free(inv_abstanh);
    invdl_layer_free(inv_odd);
    invdl_layer_free(inv_add);
    for (int i = 0; i < 14; i++)
        assert_int_equal(invdl_model_add(m, layers[i]), INVDL_OK);
    return m;
}

/* Inputs for the model of every kind: magnitudes in [0.05, 1], each
 * sample drawn again until, in the reference model, every signed-sin and
 * abs-tanh layer sees its forward map's argument x (the input of a forward
 * layer, the output of an inverse one) with 0.25 <= |x| and, for signed
 * sin, |x| <= 1.9 < XMAX: slopes between 0.3 and 2, away from the 0 where
 * log|f'| and the inverses are singular.  Each sample passes with
 * probability about 0.1. */
static void fill_every_kind_inputs(const ref_model *r, float *x, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t k = 0; k < BATCH; k++) {
        int ok = 0;
        for (int tries = 0; tries < 10000 && !ok; tries++) {
            double v[W], in[W];
            fill_inputs(x + k * W, W, 0.05, 1.0, test_rand(&s));
            for (size_t i = 0; i < W; i++)
                v[i] = (double)x[k * W + i];
            ok = 1;
            for (size_t l = 0; l < r->depth; l++) {
                const ref_layer *layer = &r->layers[l];
                memcpy(in, v, sizeof in);
                ref_apply(layer, v);
                if (layer->kind != INVDL_LAYER_SSIN && layer->kind != INVDL_LAYER_ABSTANH)
                    continue;
                for (size_t i = 0; i < W; i++) {
                    double a = fabs(layer->inverse ? v[i] : in[i]);
                    ok &= a >= 0.25 && (layer->kind == INVDL_LAYER_ABSTANH || a <= 1.9);
                }
            }
        }
        assert_true(ok);
    }
}

/* log p(x) = -0.5 |z|^2 - (n/2) log(2 pi) + log|det J(x)|, here with z
 * from the reference model and log|det J| from its Jacobian by central
 * differences, of a model holding every kind in both directions. */
static void test_log_prob(void **state)
{
    (void)state;
    invdl_model *m = every_kind_model();
    ref_model r = ref_model_of(m);
    float x[BATCH * W], lp[BATCH];
    fill_every_kind_inputs(&r, x, 51);
    assert_int_equal(invdl_model_log_prob(m, BATCH, x, lp), INVDL_OK);
    for (size_t s = 0; s < BATCH; s++) {
        double z[W], sq = 0.0;
        for (size_t i = 0; i < W; i++)
            z[i] = (double)x[s * W + i];
        ref_model_apply(&r, z);
        for (size_t i = 0; i < W; i++)
            sq += z[i] * z[i];
        double want = -0.5 * sq - 0.5 * W * log(2.0 * 3.14159265358979323846) +
                      ref_log_det_fd(&r, x + s * W);
        /* log p (here -5.1 to -6.3) is rounded to float once: 2.4e-7 at
         * most.
         * The library runs the layers in float: each activation carries a
         * relative rounding of a few 2^-24, which moves |z|^2/2 and each of
         * the 14 layers' log-dets (the elementwise kinds' sensitivity
         * |f''/f'| <= 8 at the arguments chosen; a coupling's sum of s
         * moves with its condition through W1 and W2, entries below 1) by
         * about 1e-7 each.  1e-5 absolute covers both with margin (1.4e-6
         * measured at worst), while a wrong sign or term is off by O(0.1)
         * or more. */
        assert_true(fabs((double)lp[s] - want) <= 1e-5);
        /* And the NLL reference used by the gradient tests agrees. */
        double xs[W];
        for (size_t i = 0; i < W; i++)
            xs[i] = (double)x[s * W + i];
        assert_true(fabs(ref_sample_nll(&r, xs) + want) <= 1e-6);
    }
    invdl_model_free(m);
}

/* The NLL gradient of the model of every kind, stored and memory saving. */
static void test_nll_every_kind(void **state)
{
    (void)state;
    invdl_model *m = every_kind_model();
    ref_model r = ref_model_of(m);
    float x[BATCH * W];
    fill_every_kind_inputs(&r, x, 52);
    check_nll_gradient(m, BATCH, x);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssin),
        cmocka_unit_test(test_abstanh),
        cmocka_unit_test(test_mprelu),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_dense_lu),
        cmocka_unit_test(test_coupling),
        cmocka_unit_test(test_inverse_of_inverse),
        cmocka_unit_test(test_chain_with_shared_block),
        cmocka_unit_test(test_log_det),
        cmocka_unit_test(test_log_prob),
        cmocka_unit_test(test_nll_every_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
