/*
 * test_gradients.c - backward passes and log-determinants against central
 * finite differences of an independent double-precision reference.
 *
 * The reference (below) computes each layer's math in double from the
 * layer's parameters: x*sin|x|, |x|*tanh x and their inverses by the long
 * double root finders of reference.c, the PReLU slope max(|alpha|, amin),
 * W x + b and its inverse by Gaussian elimination.  Central differences
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
 * off by O(1).
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
#define MAXP (MAXW * MAXW + MAXW)

/* ---- the reference ------------------------------------------------------ */

typedef struct ref_layer {
    invdl_layer_kind kind;
    int inverse;
    size_t width;
    float amin;
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

/* One sample through one layer, in place. */
static void ref_apply(const ref_layer *r, double *v)
{
    size_t n = r->width;
    for (size_t j = 0; j < n && r->kind != INVDL_LAYER_DENSE; j++) {
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
    if (r->kind == INVDL_LAYER_DENSE) {
        double out[MAXW];
        if (!r->inverse) {
            for (size_t i = 0; i < n; i++) {
                out[i] = r->p[n * n + i];
                for (size_t j = 0; j < n; j++)
                    out[i] += r->p[i * n + j] * v[j];
            }
        } else {
            double rhs[MAXW];
            for (size_t i = 0; i < n; i++)
                rhs[i] = v[i] - r->p[n * n + i];
            ref_solve(n, r->p, rhs, out);
        }
        memcpy(v, out, n * sizeof *v);
    }
}

typedef struct ref_model {
    size_t depth, width;
    ref_layer layers[8];
    int block[8]; /* layers with the same block share parameters */
} ref_model;

static ref_model ref_model_of(invdl_model *m)
{
    ref_model r;
    memset(&r, 0, sizeof r);
    r.depth = invdl_model_depth(m);
    r.width = invdl_model_width(m);
    assert_true(r.depth <= 8);
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

/* MSE over batch samples x[batch][width] against y. */
static double ref_loss(const ref_model *r, size_t batch, const double *x, const float *y)
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
    size_t l_of[8], count;
    double *slot = param_slot(r, index, l_of, &count);
    size_t within = (size_t)(slot - r->layers[l_of[0]].p);
    for (size_t k = 0; k < count; k++)
        r->layers[l_of[k]].p[within] = value;
}

static double get_param(ref_model *r, size_t index)
{
    size_t l_of[8], count;
    return *param_slot(r, index, l_of, &count);
}

static double max_abs(size_t n, const double *v)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}

/* Checks the library's gradient of model m on x -> y against central
 * differences of the reference, for the parameters and the inputs. */
static void check_gradient(invdl_model *m, size_t batch, const float *x, const float *y)
{
    ref_model r = ref_model_of(m);
    size_t w = r.width, n = batch * w, np = invdl_model_param_count(m);
    float loss, *pg = malloc((np + 1) * sizeof *pg), *xg = malloc(n * sizeof *xg);
    double *fd = malloc((np + n + 1) * sizeof *fd), *xd = malloc(n * sizeof *xd);
    assert_non_null(pg);
    assert_non_null(xg);
    assert_non_null(fd);
    assert_non_null(xd);
    assert_int_equal(invdl_model_gradient(m, batch, x, y, NULL, &loss, pg, xg), INVDL_OK);
    for (size_t i = 0; i < n; i++)
        xd[i] = (double)x[i];
    assert_true(fabs((double)loss - ref_loss(&r, batch, xd, y)) <=
                1e-5 * ref_loss(&r, batch, xd, y));

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

static void check_kind(invdl_layer *(*make)(void), double lo, double hi, int inverse)
{
    float x[BATCH * W], y[BATCH * W];
    invdl_model *m = single(make(), inverse);
    fill_inputs(x, BATCH * W, lo, hi, 11u + (uint64_t)inverse);
    fill_targets(m, x, y, 12);
    check_gradient(m, BATCH, x, y);
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
    invdl_model_free(m);
}

/* log|det J| of a model against the Jacobian of the reference by central
 * differences, and the inverse model's against its negative. */
static void test_log_det(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d = make_dense();
    assert_int_equal(invdl_model_add(m, d), INVDL_OK);
    assert_int_equal(invdl_model_add(m, make_mprelu()), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    ref_model r = ref_model_of(m);
    float x[BATCH * W], y[BATCH * W], ld[BATCH], ld_inv[BATCH];
    /* Inputs small enough that the signed sin stays inside its branch. */
    fill_inputs(x, BATCH * W, 0.05, 0.6, 41);
    assert_int_equal(invdl_model_log_det(m, BATCH, x, ld), INVDL_OK);
    assert_int_equal(invdl_model_predict(m, BATCH, x, y), INVDL_OK);
    invdl_model *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_log_det(inv, BATCH, y, ld_inv), INVDL_OK);
    for (size_t s = 0; s < BATCH; s++) {
        double jac[W * W], v0[W];
        for (size_t j = 0; j < W; j++) {
            double up[W], down[W], h = 1e-6;
            for (size_t i = 0; i < W; i++)
                up[i] = down[i] = v0[i] = (double)x[s * W + i];
            up[j] += h;
            down[j] -= h;
            ref_model_apply(&r, up);
            ref_model_apply(&r, down);
            for (size_t i = 0; i < W; i++)
                jac[i * W + j] = (up[i] - down[i]) / (2 * h);
        }
        (void)v0;
        double want = ref_solve(W, jac, NULL, NULL);
        /* A sum of about 20 logs, each of a float-rounded input's slope:
         * 1e-4 absolute is about 1e-5 relative to the terms' magnitude. */
        assert_true(fabs((double)ld[s] - want) <= 1e-4);
        /* The inverse runs on the rounded y, so it sees slightly different
         * points; same allowance. */
        assert_true(fabs((double)ld_inv[s] + want) <= 1e-4);
    }
    invdl_model_free(inv);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssin),
        cmocka_unit_test(test_abstanh),
        cmocka_unit_test(test_mprelu),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_inverse_of_inverse),
        cmocka_unit_test(test_chain_with_shared_block),
        cmocka_unit_test(test_log_det),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
