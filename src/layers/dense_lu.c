/*
 * dense_lu.c - the LU-parametrised dense layer y = P L U x + b (Glow's
 * LU-decomposed 1x1 convolution, nflows' LULinear).
 *
 * Parameters, in this order: L's strictly lower entries row by row
 * (width*(width-1)/2), U's strictly upper entries row by row (as many),
 * s[width], b[width].  L has a unit diagonal; U's diagonal is the floored
 * u_i = s_i where |s_i| >= s_min, copysign(s_min, s_i) otherwise, so W is
 * never singular and the layer never refactorises: the inverse is two
 * triangular solves and log|det W| = sum of log|u_i|.  Training keeps
 * every s_i out of the floor, where its gradient would be 0 for good: the
 * project operation moves |s_i| < s_min to copysign(s_min, s_i) after each
 * step.
 *
 * Settings: s_min, then the permutation: settings[1 + i] = p_i, row i of
 * L U is row p_i of W (y_p_i = (L U x)_i + b_p_i).  The indices are floats
 * holding exact integers, so a layer is at most INVDL_DENSE_LU_MAX_WIDTH
 * (2^24) wide; the loader checks that they form a permutation.
 *
 * The layer starts as the LU factors with partial pivoting of an
 * orthogonal matrix (the dense layer's start from the same seed), which
 * also draws P: every |l_ik| <= 1 and prod |u_i| = 1.
 *
 * Derived data (dense_kernels.h, invdl_dense_plu): L and U in double with
 * the floored diagonal, the permutation, log|det W|, and when complete
 * bounds on |W|_inf and |W^-1|_inf for memory-saving backprop (|W^-1|_inf
 * estimated above width 32).  All O(width^2) but the last for small
 * widths.
 */
#include "kernels/dense_kernels.h"
#include "layer.h"

#include <math.h>
#include <string.h>

static size_t dense_lu_count(size_t width, const float *settings)
{
    size_t n;
    (void)settings;
    if (width > INVDL_DENSE_LU_MAX_WIDTH || !invdl_mul_size(width, width + 1, &n))
        return SIZE_MAX;
    return n;
}

/* Where the parts of the values start. */
static size_t strict_count(size_t width)
{
    return width * (width - 1) / 2;
}

static int dense_lu_valid(size_t width, const float *settings, const float *values)
{
    if (width > INVDL_DENSE_LU_MAX_WIDTH || !(settings[0] > 0.0f) || !isfinite(settings[0]))
        return 0;
    /* Indices: exact integers in [0, width); whether they repeat, and
     * whether the values are finite, prepare sees as it reads them. */
    (void)values;
    for (size_t i = 0; i < width; i++) {
        float p = settings[1 + i];
        if (!(p >= 0.0f && p < (float)width) || p != truncf(p))
            return 0;
    }
    return 1;
}

static void *dense_lu_cache_new(size_t width, const float *settings)
{
    (void)settings;
    return invdl_dense_plu_new(width);
}

static void dense_lu_cache_free(void *cache)
{
    invdl_dense_plu_free(cache);
}

/* Training's steps leave out the log-det (only log_det reads it) and the
 * norm estimates (only gain reads them). */
static invdl_status dense_lu_prepare(const invdl_params *p, const float *values, void *cache,
                                     int complete)
{
    return invdl_dense_plu_set(invdl_dense_kernels_best(), cache, p->settings, values, complete);
}

static void dense_lu_project(const invdl_params *p, float *values)
{
    invdl_project_floor(p->width, p->settings[0], values + 2 * strict_count(p->width));
}

static invdl_status dense_lu_apply(const invdl_params *p, int inverse, size_t batch,
                                   const float *in, float *out, double *scratch)
{
    const float *b = p->values + p->width * p->width;
    if (!inverse)
        invdl_dense_plu_forward(invdl_dense_kernels_best(), p->cache, b, batch, in, out, scratch);
    else
        invdl_dense_plu_inverse(invdl_dense_kernels_best(), p->cache, b, batch, in, out, scratch);
    return INVDL_OK;
}

static void dense_lu_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                              const float *out, const float *dout, float *din, double *dparams,
                              double *scratch)
{
    invdl_dense_plu_backward(invdl_dense_kernels_best(), p->cache, inverse, batch, in, out, dout,
                             din, dparams, scratch);
}

static invdl_status dense_lu_log_det(const invdl_params *p, size_t batch, const float *x,
                                     double *acc, double *scratch)
{
    const invdl_dense_plu *f = p->cache;
    (void)x, (void)scratch;
    for (size_t s = 0; s < batch; s++)
        acc[s] += f->log_abs_det;
    return INVDL_OK;
}

/* d/ds_i log|u_i| = 1/u_i where u_i = s_i, 0 in the floor; nothing for x
 * or the other values. */
static int dense_lu_log_det_grad(const invdl_params *p, size_t batch, const float *x,
                                 double scale, float *dx, double *dparams, double *scratch)
{
    const invdl_dense_plu *f = p->cache;
    size_t n = p->width;
    (void)x, (void)dx, (void)scratch;
    if (dparams != NULL) {
        double *ds = dparams + 2 * strict_count(n), samples = (double)batch;
        for (size_t i = 0; i < n; i++)
            if (f->unfloored[i])
                ds[i] += scale * samples / f->lu[i * f->lu_ld + i];
    }
    return 0;
}

/* W = P L U formed entry by entry: each W_p_i,j a sum in double over k in
 * increasing order, rounded once. */
static void dense_lu_weights(const invdl_params *p, float *w, float *b)
{
    const invdl_dense_plu *f = p->cache;
    size_t n = p->width, ld = f->lu_ld;
    for (size_t i = 0; i < n; i++) {
        const double *li = f->lu + i * ld;
        float *wrow = w + f->perm[i] * n;
        for (size_t j = 0; j < n; j++) {
            /* (L U)_ij = sum_{k < i, k <= j} l_ik u_kj, plus u_ij when i <= j. */
            size_t kmax = i < j + 1 ? i : j + 1;
            double acc = 0.0;
            for (size_t k = 0; k < kmax; k++)
                acc += li[k] * f->lu[k * ld + j];
            if (i <= j)
                acc += li[j];
            wrow[j] = (float)acc;
        }
    }
    memcpy(b, p->values + n * n, n * sizeof *b);
}

static double dense_lu_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                            const float *out)
{
    const invdl_dense_plu *f = p->cache;
    return invdl_affine_gain(p->width, inverse ? f->norm : f->inv_norm, batch, in, out);
}

const invdl_layer_ops invdl_dense_lu_ops = {
    .name = "dense_lu",
    .kind = INVDL_LAYER_DENSE_LU,
    .nsettings = 1,
    .settings_per_feature = 1,
    .count = dense_lu_count,
    .valid = dense_lu_valid,
    .cache_new = dense_lu_cache_new,
    .cache_free = dense_lu_cache_free,
    .prepare = dense_lu_prepare,
    .project = dense_lu_project,
    .apply = dense_lu_apply,
    .backward = dense_lu_backward,
    .log_det = dense_lu_log_det,
    .log_det_grad = dense_lu_log_det_grad,
    .weights = dense_lu_weights,
    .gain = dense_lu_gain,
};

/* LU with partial pivoting of the n x n matrix a in place (plain loops):
 * row i of L U is row perm[i] of a. */
static void lu_in_place(size_t n, double *a, size_t *perm)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[piv * n + k]))
                piv = i;
        if (piv != k) {
            for (size_t j = 0; j < n; j++) {
                double t = a[k * n + j];
                a[k * n + j] = a[piv * n + j];
                a[piv * n + j] = t;
            }
            size_t t = perm[k];
            perm[k] = perm[piv];
            perm[piv] = t;
        }
        /* An orthogonal matrix has no zero pivot. */
        for (size_t i = k + 1; i < n; i++) {
            double m = a[i * n + k] / a[k * n + k];
            a[i * n + k] = m;
            for (size_t j = k + 1; j < n; j++)
                a[i * n + j] -= m * a[k * n + j];
        }
    }
}

invdl_layer *invdl_layer_dense_lu_min(size_t width, uint64_t seed, float s_min)
{
    size_t count, tri;
    if (width == 0 || width > INVDL_DENSE_LU_MAX_WIDTH || !(s_min > 0.0f) || !isfinite(s_min) ||
        !invdl_mul_size(width, width + 1, &count))
        return NULL;
    tri = strict_count(width);
    double *q = invdl_orthogonal_new(width, seed);
    size_t *perm = invdl_alloc_array(width, sizeof *perm);
    float *settings = invdl_alloc_array(width + 1, sizeof *settings);
    float *values = invdl_alloc_array(count, sizeof *values);
    invdl_layer *l = NULL;
    if (q != NULL && perm != NULL && settings != NULL && values != NULL) {
        lu_in_place(width, q, perm);
        settings[0] = s_min;
        for (size_t i = 0; i < width; i++) {
            settings[1 + i] = (float)perm[i];
            for (size_t k = 0; k < i; k++)
                values[i * (i - 1) / 2 + k] = (float)q[i * width + k];
            for (size_t k = i + 1; k < width; k++)
                values[tri + i * (2 * width - i - 1) / 2 + (k - i - 1)] = (float)q[i * width + k];
            values[2 * tri + i] = (float)q[i * width + i];
            values[2 * tri + width + i] = 0.0f;
        }
        l = invdl_layer_create(&invdl_dense_lu_ops, width, settings, values, NULL);
        values = NULL; /* taken by invdl_layer_create, also on failure */
    }
    invdl_free(q);
    invdl_free(perm);
    invdl_free(settings);
    invdl_free(values);
    return l;
}

invdl_layer *invdl_layer_dense_lu(size_t width, uint64_t seed)
{
    return invdl_layer_dense_lu_min(width, seed, INVDL_DENSE_LU_S_MIN);
}
