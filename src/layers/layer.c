/*
 * layer.c - layer machinery: parameter blocks shared by reference count,
 * linked inverses, parameter access, and the helpers the elementwise kinds
 * share.
 */
#include "layer.h"

#include <math.h>
#include <string.h>

extern const invdl_layer_ops invdl_ssin_ops;
extern const invdl_layer_ops invdl_abstanh_ops;
extern const invdl_layer_ops invdl_mprelu_ops;
extern const invdl_layer_ops invdl_dense_ops;
extern const invdl_layer_ops invdl_dense_lu_ops;
extern const invdl_layer_ops invdl_coupling_ops;

/* Every kind a model file may name.  A new kind adds its table here. */
static const invdl_layer_ops *const known_kinds[] = {
    &invdl_ssin_ops,
    &invdl_abstanh_ops,
    &invdl_mprelu_ops,
    &invdl_dense_ops,
    &invdl_dense_lu_ops,
    &invdl_coupling_ops,
};

const invdl_layer_ops *invdl_layer_ops_for_kind(uint32_t kind)
{
    for (size_t i = 0; i < sizeof known_kinds / sizeof known_kinds[0]; i++)
        if (known_kinds[i]->kind == kind)
            return known_kinds[i];
    return NULL;
}

static void refs_init(invdl_refcount *r)
{
#if !defined(__STDC_NO_ATOMICS__)
    atomic_init(r, 1);
#else
    *r = 1;
#endif
}

static void refs_acquire(invdl_refcount *r)
{
#if !defined(__STDC_NO_ATOMICS__)
    atomic_fetch_add_explicit(r, 1, memory_order_relaxed);
#else
    ++*r;
#endif
}

/* 1 when the caller dropped the last reference. */
static int refs_release(invdl_refcount *r)
{
#if !defined(__STDC_NO_ATOMICS__)
    return atomic_fetch_sub_explicit(r, 1, memory_order_acq_rel) == 1;
#else
    return --*r == 0;
#endif
}

static void params_destroy(invdl_params *p)
{
    if (p->ops->cache_free != NULL) {
        p->ops->cache_free(p->cache);
        p->ops->cache_free(p->spare);
    }
    invdl_free(p->values);
    invdl_free(p->settings);
    invdl_free(p);
}

invdl_layer *invdl_layer_create(const invdl_layer_ops *ops, size_t width, const float *settings,
                                float *values, invdl_status *status)
{
    invdl_status st = INVDL_ENOMEM;
    invdl_params *p = NULL;
    invdl_layer *l = NULL;
    size_t nsettings;
    if (!invdl_settings_count(ops, width, &nsettings)) {
        st = INVDL_EINVAL;
        goto fail;
    }
    size_t count = ops->count(width, settings);

    if (invdl_bad_width(width)) {
        st = INVDL_EINVAL;
        goto fail;
    }
    if (count > 0 && values == NULL)
        goto fail;
    if (count == SIZE_MAX || !ops->valid(width, settings, values)) {
        st = INVDL_EINVAL;
        goto fail;
    }
    p = invdl_malloc(sizeof *p);
    l = invdl_malloc(sizeof *l);
    if (p == NULL || l == NULL)
        goto fail;
    refs_init(&p->refs);
    p->ops = ops;
    p->width = width;
    p->count = count;
    p->values = values;
    values = NULL;
    p->nsettings = nsettings;
    p->settings = NULL;
    p->cache = p->spare = NULL;
    p->training = 0;
    p->partial = 0;
    if (nsettings > 0) {
        p->settings = invdl_alloc_array(nsettings, sizeof *p->settings);
        if (p->settings == NULL) {
            params_destroy(p);
            p = NULL;
            goto fail;
        }
        memcpy(p->settings, settings, nsettings * sizeof *settings);
    }
    if (ops->cache_new != NULL) {
        p->cache = ops->cache_new(width, p->settings);
        p->spare = ops->cache_new(width, p->settings);
        if (p->cache == NULL || p->spare == NULL) {
            params_destroy(p);
            p = NULL;
            goto fail;
        }
        st = ops->prepare(p, p->values, p->cache, 1);
        if (st != INVDL_OK) {
            params_destroy(p);
            p = NULL;
            goto fail;
        }
    }
    l->params = p;
    l->width = width;
    l->inverse = 0;
    l->in_model = 0;
    if (status != NULL)
        *status = INVDL_OK;
    return l;

fail:
    invdl_free(values);
    invdl_free(p);
    invdl_free(l);
    if (status != NULL)
        *status = st;
    return NULL;
}

invdl_layer *invdl_layer_share(const invdl_layer *layer, int inverse)
{
    invdl_layer *l = invdl_malloc(sizeof *l);
    if (l == NULL)
        return NULL;
    refs_acquire(&layer->params->refs);
    l->params = layer->params;
    l->width = layer->width;
    l->inverse = inverse;
    l->in_model = 0;
    return l;
}

invdl_layer *invdl_layer_inverse(invdl_layer *forward)
{
    if (forward == NULL)
        return NULL;
    return invdl_layer_share(forward, !forward->inverse);
}

void invdl_layer_free(invdl_layer *layer)
{
    if (layer == NULL || layer->in_model)
        return;
    if (refs_release(&layer->params->refs))
        params_destroy(layer->params);
    invdl_free(layer);
}

void invdl_layer_release(invdl_layer *layer)
{
    if (layer != NULL) {
        layer->in_model = 0;
        invdl_layer_free(layer);
    }
}

invdl_status invdl_params_assign(invdl_params *p, const float *values)
{
    return invdl_params_assign_all(&p, 1, values);
}

/* Prepares every block's cache for `values` into its spare, then swaps
 * them in (all or none).  complete == 0 prepares what training's forward
 * products need (layer.h). */
static invdl_status assign(invdl_params *const *blocks, size_t nblocks, const float *values,
                           int complete)
{
    /* First check and prepare everything into the spare caches, then
     * commit: a failure anywhere leaves every block as it was.  Offsets,
     * not pointer steps: values may be NULL when every count is 0. */
    size_t at = 0;
    for (size_t i = 0; i < nblocks; i++) {
        const invdl_params *p = blocks[i];
        const float *v = p->count > 0 ? values + at : NULL;
        if (!p->ops->valid(p->width, p->settings, v))
            return INVDL_EINVAL;
        if (p->ops->cache_new != NULL) {
            invdl_status st = p->ops->prepare(p, v, p->spare, complete);
            if (st != INVDL_OK)
                return st;
        }
        at += p->count;
    }
    at = 0;
    for (size_t i = 0; i < nblocks; i++) {
        invdl_params *p = blocks[i];
        /* A block listed twice is written once: its spare already holds the
         * prepared cache and the second swap would undo the first. */
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= blocks[k] == p;
        if (!seen) {
            if (p->count > 0)
                memmove(p->values, values + at, p->count * sizeof *values);
            void *t = p->cache;
            p->cache = p->spare;
            p->spare = t;
            p->partial = p->cache != NULL && !complete;
        }
        at += p->count;
    }
    return INVDL_OK;
}

invdl_status invdl_params_assign_all(invdl_params *const *blocks, size_t nblocks,
                                     const float *values)
{
    return assign(blocks, nblocks, values, 1);
}

invdl_status invdl_params_assign_all_partial(invdl_params *const *blocks, size_t nblocks,
                                             const float *values)
{
    return assign(blocks, nblocks, values, 0);
}

invdl_status invdl_params_complete_all(invdl_params *const *blocks, size_t nblocks)
{
    for (size_t i = 0; i < nblocks; i++) {
        const invdl_params *p = blocks[i];
        if (p->partial) {
            invdl_status st = p->ops->prepare(p, p->values, p->spare, 1);
            if (st != INVDL_OK)
                return st;
        }
    }
    for (size_t i = 0; i < nblocks; i++) {
        invdl_params *p = blocks[i];
        if (p->partial) { /* cleared here: a block listed twice swaps once */
            void *t = p->cache;
            p->cache = p->spare;
            p->spare = t;
            p->partial = 0;
        }
    }
    return INVDL_OK;
}

void invdl_params_project_all(invdl_params *const *blocks, size_t nblocks, float *values)
{
    size_t at = 0;
    for (size_t b = 0; b < nblocks; b++) {
        if (blocks[b]->ops->project != NULL && blocks[b]->count > 0)
            blocks[b]->ops->project(blocks[b], values + at);
        at += blocks[b]->count;
    }
}

void invdl_project_floor(size_t n, float edge, float *v)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(v[i]) < edge)
            v[i] = copysignf(edge, v[i]);
}

void invdl_params_gather(invdl_params *const *blocks, size_t nblocks, float *dst)
{
    size_t at = 0;
    for (size_t b = 0; b < nblocks; b++) {
        if (blocks[b]->count > 0)
            memcpy(dst + at, blocks[b]->values, blocks[b]->count * sizeof *dst);
        at += blocks[b]->count;
    }
}

/* ---- public accessors --------------------------------------------------- */

invdl_layer_kind invdl_layer_kind_of(const invdl_layer *layer)
{
    return layer == NULL ? (invdl_layer_kind)0 : (invdl_layer_kind)layer->params->ops->kind;
}

const char *invdl_layer_name(const invdl_layer *layer)
{
    return layer == NULL ? "none" : layer->params->ops->name;
}

size_t invdl_layer_width(const invdl_layer *layer)
{
    return layer == NULL ? 0 : layer->width;
}

int invdl_layer_is_inverse(const invdl_layer *layer)
{
    return layer != NULL && layer->inverse;
}

int invdl_layer_shares_params(const invdl_layer *a, const invdl_layer *b)
{
    return a != NULL && b != NULL && a->params == b->params;
}

size_t invdl_layer_param_count(const invdl_layer *layer)
{
    return layer == NULL ? 0 : layer->params->count;
}

invdl_status invdl_layer_get_params(const invdl_layer *layer, size_t count, float *values)
{
    if (layer == NULL || count != layer->params->count || (count > 0 && values == NULL))
        return INVDL_EINVAL;
    if (count > 0)
        memcpy(values, layer->params->values, count * sizeof *values);
    return INVDL_OK;
}

invdl_status invdl_layer_set_params(invdl_layer *layer, size_t count, const float *values)
{
    if (layer == NULL || count != layer->params->count || (count > 0 && values == NULL))
        return INVDL_EINVAL;
    return invdl_params_assign(layer->params, values);
}

float invdl_layer_alpha_min(const invdl_layer *layer)
{
    if (layer == NULL || layer->params->ops != &invdl_mprelu_ops)
        return 0.0f;
    return layer->params->settings[0];
}

float invdl_layer_s_min(const invdl_layer *layer)
{
    if (layer == NULL || layer->params->ops != &invdl_dense_lu_ops)
        return 0.0f;
    return layer->params->settings[0];
}

invdl_status invdl_layer_permutation(const invdl_layer *layer, size_t *perm)
{
    if (layer == NULL || perm == NULL || layer->params->ops != &invdl_dense_lu_ops)
        return INVDL_EINVAL;
    for (size_t i = 0; i < layer->width; i++)
        perm[i] = (size_t)layer->params->settings[1 + i];
    return INVDL_OK;
}

invdl_status invdl_layer_weights(const invdl_layer *layer, float *W, float *b)
{
    if (layer == NULL || W == NULL || b == NULL || layer->params->ops->weights == NULL)
        return INVDL_EINVAL;
    layer->params->ops->weights(layer->params, W, b);
    return INVDL_OK;
}

/* Arguments of the batch calls: a layer, and batch*width floats that fit. */
static int bad_batch(const invdl_layer *layer, size_t batch, const void *in, const void *out,
                     size_t *n)
{
    return layer == NULL || !invdl_mul_size(batch, layer->width, n) ||
           invdl_bad_arrays(*n, in, out);
}

invdl_status invdl_layer_apply(const invdl_layer *layer, size_t batch, const float *in,
                               float *out)
{
    size_t n;
    if (bad_batch(layer, batch, in, out, &n))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    double *scratch = invdl_scratch_new(layer->width);
    if (scratch == NULL)
        return INVDL_ENOMEM;
    invdl_status st = invdl_layer_run(layer, 0, batch, in, out, scratch);
    invdl_free(scratch);
    return st;
}

invdl_status invdl_layer_log_det(const invdl_layer *layer, size_t batch, const float *in,
                                 float *log_det)
{
    size_t n;
    if (bad_batch(layer, batch, in, log_det, &n))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    const invdl_params *p = layer->params;
    double *acc = invdl_calloc_array(batch, sizeof *acc);
    double *scratch = invdl_scratch_new(layer->width);
    float *x = NULL;
    invdl_status st = INVDL_ENOMEM;
    if (acc == NULL || scratch == NULL)
        goto done;
    if (!layer->inverse) {
        st = p->ops->log_det(p, batch, in, acc, scratch);
    } else {
        /* The inverse's Jacobian at y is the reciprocal of the forward's at
         * x = g(y). */
        x = invdl_alloc_array(n, sizeof *x);
        if (x == NULL)
            goto done;
        st = p->ops->apply(p, 1, batch, in, x, scratch);
        invdl_status st2 = p->ops->log_det(p, batch, x, acc, scratch);
        if (st == INVDL_OK)
            st = st2;
        for (size_t s = 0; s < batch; s++)
            acc[s] = -acc[s];
    }
    for (size_t s = 0; s < batch; s++)
        log_det[s] = (float)acc[s];
done:
    invdl_free(x);
    invdl_free(scratch);
    invdl_free(acc);
    return st;
}

/* ---- log-determinants inside a model's passes ---------------------------- */

static void negate(size_t n, double *v)
{
    for (size_t i = 0; i < n; i++)
        v[i] = -v[i];
}

invdl_status invdl_layer_run_log_det(const invdl_layer *l, int other, size_t batch,
                                     const float *in, float *out, double *acc, double *scratch)
{
    const invdl_params *p = l->params;
    int inverse = l->inverse ^ other;
    invdl_status s1 = INVDL_OK, s2, s3 = INVDL_OK;
    /* A forward map's Jacobian is taken at its input; an inverse map's is
     * the reciprocal of the forward's at its output.  acc - v is formed as
     * -((-acc) + v), which rounds to the same double. */
    if (!inverse)
        s1 = p->ops->log_det(p, batch, in, acc, scratch);
    s2 = p->ops->apply(p, inverse, batch, in, out, scratch);
    if (inverse) {
        negate(batch, acc);
        s3 = p->ops->log_det(p, batch, out, acc, scratch);
        negate(batch, acc);
    }
    return s1 != INVDL_OK || s2 != INVDL_OK || s3 != INVDL_OK ? INVDL_EDOMAIN : INVDL_OK;
}

void invdl_layer_run_marking(const invdl_layer *l, int other, size_t batch, const float *in,
                             float *out, double *acc, unsigned char *bad, float *row,
                             double *scratch)
{
    invdl_status st = acc != NULL ? invdl_layer_run_log_det(l, other, batch, in, out, acc, scratch)
                                  : invdl_layer_run(l, other, batch, in, out, scratch);
    if (st == INVDL_OK)
        return;
    size_t w = l->width;
    for (size_t s = 0; s < batch; s++) {
        double unused = 0.0;
        invdl_status one = acc != NULL
                               ? invdl_layer_run_log_det(l, other, 1, in + s * w, row, &unused,
                                                         scratch)
                               : invdl_layer_run(l, other, 1, in + s * w, row, scratch);
        if (one != INVDL_OK)
            bad[s] = 1;
    }
}

int invdl_layer_log_det_grad(const invdl_layer *l, size_t batch, const float *in,
                             const float *out, double scale, float *dx, double *dparams,
                             float *work, double *scratch)
{
    const invdl_params *p = l->params;
    if (!l->inverse)
        return p->ops->log_det_grad(p, batch, in, scale, dx, dparams, scratch);
    /* g = f^-1 at y = in with x = g(y) = out: log|det g'(y)| = -LDf(x),
     * LDf = log|det f'|.  So
     *   d/dy      = -J_g(y)^T grad_x LDf(x),
     *   d/dvalues = -(dLDf/dvalues at x + (grad_x LDf)^T dg/dvalues at y),
     * and the kind's backward of g with dout = -scale grad_x LDf(x) gives
     * the first and the last term at once. */
    size_t n = batch * l->width;
    memset(work, 0, n * sizeof *work);
    if (!p->ops->log_det_grad(p, batch, out, -scale, work, dparams, scratch))
        return 0;
    p->ops->backward(p, 1, batch, in, out, work, work, dparams, scratch);
    if (dx != NULL)
        for (size_t i = 0; i < n; i++)
            dx[i] = (float)((double)dx[i] + (double)work[i]);
    return 1;
}

/* ---- helpers for the elementwise kinds -------------------------------- */

/* max |v_j|, NaN if any v_j is NaN: the largest magnitude's bit pattern
 * (NaNs have the largest), without a branch per value. */
static double row_max_abs(size_t width, const float *v)
{
    uint32_t m = 0;
    for (size_t j = 0; j < width; j++) {
        uint32_t bits;
        memcpy(&bits, &v[j], sizeof bits);
        bits &= 0x7fffffffu;
        m = bits > m ? bits : m;
    }
    float f;
    memcpy(&f, &m, sizeof f);
    return (double)f;
}

double invdl_gain_update(double worst, double slope, size_t width, const float *in,
                         const float *out)
{
    /* |out|/|in| is 1 when both are 0, infinite for a NaN or a 0 input with
     * a nonzero output. */
    double ni = row_max_abs(width, in), no = row_max_abs(width, out);
    double ratio = no == 0.0 ? (ni == ni ? 1.0 : (double)INFINITY)
                             : (ni == 0.0 ? (double)INFINITY : no / ni);
    double g = slope * ratio;
    if (g != g)
        return (double)INFINITY;
    return g > worst ? g : worst;
}

double invdl_affine_gain(size_t width, double slope, size_t batch, const float *in,
                         const float *out)
{
    double worst = 0.0;
    for (size_t s = 0; s < batch; s++)
        worst = invdl_gain_update(worst, slope, width, in + s * width, out + s * width);
    return worst;
}

static const invdl_elementwise *elementwise_of(const invdl_params *p)
{
    return (const invdl_elementwise *)p->ops->data;
}

size_t invdl_elementwise_count(size_t width, const float *settings)
{
    (void)width, (void)settings;
    return 0;
}

int invdl_elementwise_valid(size_t width, const float *settings, const float *values)
{
    (void)width, (void)settings, (void)values;
    return 1;
}

invdl_status invdl_elementwise_apply(const invdl_params *p, int inverse, size_t batch,
                                     const float *in, float *out, double *scratch)
{
    const invdl_elementwise *e = elementwise_of(p);
    (void)scratch;
    return (inverse ? e->inverse : e->forward)(batch * p->width, in, out);
}

void invdl_elementwise_backward(const invdl_params *p, int inverse, size_t batch,
                                const float *in, const float *out, const float *dout,
                                float *din, double *dparams, double *scratch)
{
    double (*fprime)(double) = elementwise_of(p)->fprime;
    size_t n = batch * p->width;
    (void)dparams, (void)scratch;
    /* Forward: dL/dx = f'(x) dL/dy.  Inverse: x = g(y), g'(y) = 1/f'(x). */
    for (size_t i = 0; i < n; i++) {
        if (!inverse)
            din[i] = (float)(fprime((double)in[i]) * (double)dout[i]);
        else
            din[i] = (float)((double)dout[i] / fprime((double)out[i]));
    }
}

invdl_status invdl_elementwise_log_det(const invdl_params *p, size_t batch, const float *x,
                                       double *acc, double *scratch)
{
    (void)scratch;
    const invdl_elementwise *e = elementwise_of(p);
    size_t width = p->width;
    invdl_status st = INVDL_OK;
    for (size_t s = 0; s < batch; s++) {
        double sum = 0.0;
        for (size_t j = 0; j < width; j++) {
            float v = x[s * width + j];
            if (e->xmax < INFINITY && !(fabsf(v) <= e->xmax))
                st = INVDL_EDOMAIN;
            sum += log(fabs(e->fprime((double)v)));
        }
        acc[s] += sum;
    }
    return st;
}

int invdl_elementwise_log_det_grad(const invdl_params *p, size_t batch, const float *x,
                                   double scale, float *dx, double *dparams, double *scratch)
{
    /* log|det f'(x)| = sum_j log|f'(x_j)|: d/dx_j = f''(x_j)/f'(x_j). */
    double (*dlog_fprime)(double) = elementwise_of(p)->dlog_fprime;
    size_t n = batch * p->width;
    (void)dparams, (void)scratch;
    if (dx != NULL)
        for (size_t i = 0; i < n; i++)
            dx[i] = (float)((double)dx[i] + scale * dlog_fprime((double)x[i]));
    return 1;
}

double invdl_elementwise_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                              const float *out)
{
    const invdl_elementwise *e = elementwise_of(p);
    size_t width = p->width;
    /* Rebuilding the input of f goes through g, whose slope is 1/f'(in);
     * rebuilding the input of g goes through f, slope f'(out). */
    double worst = 0.0;
    for (size_t s = 0; s < batch; s++) {
        const float *i_row = in + s * width, *o_row = out + s * width;
        double slope = 0.0;
        for (size_t j = 0; j < width; j++) {
            double d = inverse ? fabs(e->fprime((double)o_row[j]))
                               : 1.0 / fabs(e->fprime((double)i_row[j]));
            if (d > slope || d != d)
                slope = d;
        }
        worst = invdl_gain_update(worst, slope, width, i_row, o_row);
    }
    return worst;
}
