/*
 * model.c - sequential models of one width, their inverses, prediction,
 * log-determinants, parameters and the round-trip check.
 */
#include "model.h"

#include <math.h>
#include <string.h>

invdl_model *invdl_model_create(size_t width)
{
    if (invdl_bad_width(width))
        return NULL;
    invdl_model *m = invdl_malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    m->width = width;
    m->depth = m->capacity = 0;
    m->layers = NULL;
    m->training = m->free_pending = 0;
    return m;
}

void invdl_model_free(invdl_model *model)
{
    if (model == NULL)
        return;
    if (model->training) {
        /* From fit's callback: fit stops after this epoch and frees it. */
        model->free_pending = 1;
        return;
    }
    for (size_t i = 0; i < model->depth; i++)
        invdl_layer_release(model->layers[i]);
    invdl_free(model->layers);
    invdl_free(model);
}

invdl_status invdl_model_add(invdl_model *model, invdl_layer *layer)
{
    if (layer == NULL)
        return INVDL_EINVAL;
    if (layer->in_model)
        return INVDL_EINVAL; /* another model owns it and will free it */
    /* A model being trained keeps its layers: the trainer's are fixed. */
    if (model == NULL || layer->width != model->width || model->training) {
        invdl_layer_free(layer);
        return INVDL_EINVAL;
    }
    if (model->depth == model->capacity) {
        size_t cap = model->capacity < 4 ? 8 : model->capacity * 2;
        invdl_layer **grown = NULL;
        if (cap > model->capacity)
            grown = invdl_realloc_array(model->layers, cap, sizeof *grown);
        if (grown == NULL) {
            invdl_layer_free(layer);
            return INVDL_ENOMEM;
        }
        model->layers = grown;
        model->capacity = cap;
    }
    layer->in_model = 1;
    model->layers[model->depth++] = layer;
    return INVDL_OK;
}

invdl_model *invdl_model_inverse(invdl_model *forward)
{
    if (forward == NULL)
        return NULL;
    invdl_model *m = invdl_model_create(forward->width);
    if (m == NULL)
        return NULL;
    for (size_t i = forward->depth; i-- > 0;) {
        invdl_layer *l = invdl_layer_inverse(forward->layers[i]);
        if (l == NULL || invdl_model_add(m, l) != INVDL_OK) {
            invdl_model_free(m);
            return NULL;
        }
    }
    return m;
}

size_t invdl_model_width(const invdl_model *model)
{
    return model == NULL ? 0 : model->width;
}

size_t invdl_model_depth(const invdl_model *model)
{
    return model == NULL ? 0 : model->depth;
}

invdl_layer *invdl_model_layer(invdl_model *model, size_t index)
{
    return model == NULL || index >= model->depth ? NULL : model->layers[index];
}

invdl_status invdl_model_run(const invdl_model *model, int backwards, size_t batch, float *out,
                             double *scratch)
{
    invdl_status st = INVDL_OK;
    for (size_t i = 0; i < model->depth; i++) {
        const invdl_layer *l = model->layers[backwards ? model->depth - 1 - i : i];
        invdl_status s = invdl_layer_run(l, backwards, batch, out, out, scratch);
        if (s != INVDL_OK) {
            st = s;
            if (s != INVDL_EDOMAIN)
                break;
        }
    }
    return st;
}

/* Validates a model call on batch samples; *n receives batch*width. */
static int bad_call(const invdl_model *model, size_t batch, const void *in, const void *out,
                    size_t *n)
{
    return model == NULL || !invdl_mul_size(batch, model->width, n) ||
           invdl_bad_arrays(*n, in, out);
}

/* out = model(in) or its inverse; allocates only before writing. */
static invdl_status model_predict(const invdl_model *model, int backwards, size_t batch,
                                  const float *in, float *out)
{
    size_t n;
    if (bad_call(model, batch, in, out, &n))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    double *scratch = invdl_scratch_new(model->width);
    if (scratch == NULL)
        return INVDL_ENOMEM;
    memmove(out, in, n * sizeof *out);
    invdl_status st = invdl_model_run(model, backwards, batch, out, scratch);
    invdl_free(scratch);
    return st;
}

invdl_status invdl_model_predict(invdl_model *model, size_t batch, const float *in, float *out)
{
    return model_predict(model, 0, batch, in, out);
}

invdl_status invdl_model_predict_inverse(const invdl_model *model, size_t batch,
                                         const float *in, float *out)
{
    return model_predict(model, 1, batch, in, out);
}

invdl_status invdl_model_log_det(invdl_model *model, size_t batch, const float *in,
                                 float *log_det)
{
    size_t n;
    if (bad_call(model, batch, in, log_det, &n))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    float *cur = invdl_alloc_array(n, sizeof *cur);
    double *acc = invdl_calloc_array(batch, sizeof *acc);
    double *scratch = invdl_scratch_new(model->width);
    invdl_status st = INVDL_ENOMEM;
    if (cur == NULL || acc == NULL || scratch == NULL)
        goto done;
    memcpy(cur, in, n * sizeof *cur);
    st = INVDL_OK;
    for (size_t i = 0; i < model->depth; i++)
        if (invdl_layer_run_log_det(model->layers[i], 0, batch, cur, cur, acc, scratch) != INVDL_OK)
            st = INVDL_EDOMAIN;
    for (size_t s = 0; s < batch; s++)
        log_det[s] = (float)acc[s];
done:
    invdl_free(scratch);
    invdl_free(acc);
    invdl_free(cur);
    return st;
}

/* ---- parameters ---------------------------------------------------------- */

invdl_status invdl_model_blocks(const invdl_model *model, invdl_params ***blocks,
                                size_t *nblocks)
{
    *blocks = NULL;
    *nblocks = 0;
    if (model->depth == 0)
        return INVDL_OK;
    invdl_params **list = invdl_alloc_array(model->depth, sizeof *list);
    if (list == NULL)
        return INVDL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < model->depth; i++) {
        invdl_params *p = model->layers[i]->params;
        size_t j = 0;
        while (j < k && list[j] != p)
            j++;
        if (j == k)
            list[k++] = p;
    }
    *blocks = list;
    *nblocks = k;
    return INVDL_OK;
}

size_t invdl_model_param_count(const invdl_model *model)
{
    if (model == NULL)
        return 0;
    /* Counted without allocating: a block counts at its first use. */
    size_t total = 0;
    for (size_t i = 0; i < model->depth; i++) {
        const invdl_params *p = model->layers[i]->params;
        size_t j = 0;
        while (j < i && model->layers[j]->params != p)
            j++;
        if (j == i)
            total += p->count;
    }
    return total;
}

/* Copies every parameter out (values_out) or in (values_in). */
static invdl_status model_params(const invdl_model *model, size_t count, float *values_out,
                                 const float *values_in)
{
    const void *values = values_out != NULL ? (const void *)values_out : (const void *)values_in;
    if (model == NULL || count != invdl_model_param_count(model) || (count > 0 && values == NULL))
        return INVDL_EINVAL;
    invdl_params **blocks;
    size_t nblocks;
    if (invdl_model_blocks(model, &blocks, &nblocks) != INVDL_OK)
        return INVDL_ENOMEM;
    invdl_status st = INVDL_OK;
    if (values_out != NULL)
        invdl_params_gather(blocks, nblocks, values_out);
    else
        st = invdl_params_assign_all(blocks, nblocks, values_in);
    invdl_free(blocks);
    return st;
}

invdl_status invdl_model_get_params(const invdl_model *model, size_t count, float *values)
{
    if (values == NULL && count > 0)
        return INVDL_EINVAL;
    return model_params(model, count, values, NULL);
}

invdl_status invdl_model_set_params(invdl_model *model, size_t count, const float *values)
{
    static const float none[1] = {0.0f};
    return model_params(model, count, NULL, values != NULL || count > 0 ? values : none);
}

/* ---- round trips --------------------------------------------------------- */

/* max|a - b| / max|ref| over n floats, in double.  Equal values differ by
 * 0, the same infinity included (inf - inf would be NaN), and an infinity
 * against anything else by inf; the scale is max|ref| over the finite ref
 * only, so an infinity neither hides the other errors nor turns them into
 * NaN.  NaN if any difference is NaN (a value was lost), and 0/0 counts as
 * 0. */
static float relative_gap(size_t n, const float *a, const float *b, const float *ref)
{
    double gap = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] == b[i] ? 0.0 : fabs((double)a[i] - (double)b[i]);
        if (d > gap || d != d)
            gap = d;
        double r = fabs((double)ref[i]);
        if (r > scale && isfinite(r))
            scale = r;
    }
    if (gap != gap)
        return NAN;
    if (gap == 0.0)
        return 0.0f;
    return (float)(gap / scale);
}

invdl_status invdl_model_roundtrip(invdl_model *model, size_t batch, const float *x,
                                   const float *y, invdl_roundtrip *report)
{
    size_t n;
    if (bad_call(model, batch, x, x, &n) || report == NULL)
        return INVDL_EINVAL;
    report->forward_error = report->backward_error = 0.0f;
    report->forward_status = report->backward_status = INVDL_OK;
    if (n == 0)
        return INVDL_OK;
    float *fx = invdl_alloc_array(n, sizeof *fx);
    float *gy = invdl_alloc_array(n, sizeof *gy);
    float *back = invdl_alloc_array(n, sizeof *back);
    double *scratch = invdl_scratch_new(model->width);
    invdl_status st = INVDL_ENOMEM;
    if (fx == NULL || gy == NULL || back == NULL || scratch == NULL)
        goto done;

    /* Forward round trip: g(f(x)) against x. */
    memcpy(fx, x, n * sizeof *fx);
    invdl_status s1 = invdl_model_run(model, 0, batch, fx, scratch);
    memcpy(back, fx, n * sizeof *back);
    invdl_status s2 = invdl_model_run(model, 1, batch, back, scratch);
    report->forward_status = s1 != INVDL_OK ? s1 : s2;
    report->forward_error = relative_gap(n, back, x, x);

    /* Backward error of the inverse: f(g(y)) against y, y = f(x) when the
     * caller gives none. */
    const float *target = y != NULL ? y : fx;
    memcpy(gy, target, n * sizeof *gy);
    invdl_status s3 = invdl_model_run(model, 1, batch, gy, scratch);
    invdl_status s4 = invdl_model_run(model, 0, batch, gy, scratch);
    report->backward_status = s3 != INVDL_OK ? s3 : s4;
    report->backward_error = relative_gap(n, gy, target, target);
    st = report->forward_status != INVDL_OK ? report->forward_status : report->backward_status;
done:
    invdl_free(scratch);
    invdl_free(back);
    invdl_free(gy);
    invdl_free(fx);
    return st;
}

int invdl_delta_check(size_t n, const float *a, const float *b, float epsilon)
{
    if (n > 0 && (a == NULL || b == NULL))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) < epsilon))
            return 0;
    return 1;
}
