/*
 * amplification.c - how much a model's inverse amplifies a relative error
 * in the model's outputs (invdl.h, "Why an inverse is off"): each layer's
 * gain at each sample (the kinds' gain operation, layer.h, which
 * memory-saving backprop weighs too), and their product per sample, a
 * bound on the inverse model's relative condition number there.
 *
 * Samples go through the model a chunk at a time, as predict would take
 * them; the gains are asked for one sample at a time, so that each
 * sample's product is its own (a layer's gain over a batch is the worst
 * sample's).
 */
#include "model.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 64 }; /* samples per pass */

/* p * g, +inf where that is 0 * inf: a gain of 0 (an output of 0 from a
 * nonzero input) next to an infinite one is no bound at all. */
static double gain_product(double p, double g)
{
    double r = p * g;
    return r != r ? (double)INFINITY : r;
}

invdl_status invdl_model_amplification(const invdl_model *model, size_t batch, const float *x,
                                       double *layer_gain, double *sample_gain, double *total)
{
    size_t n;
    if (model == NULL || !invdl_mul_size(batch, model->width, &n) || (batch > 0 && x == NULL))
        return INVDL_EINVAL;
    size_t w = model->width, depth = model->depth;
    size_t cap = batch < CHUNK ? batch : CHUNK;
    float *a = NULL, *b = NULL, *row = NULL;
    double *product = NULL, *layer_max = NULL, *scratch = NULL;
    unsigned char *bad = NULL;
    invdl_status st = INVDL_ENOMEM;
    if (batch > 0) {
        a = invdl_alloc_array(cap * w, sizeof *a);
        b = invdl_alloc_array(cap * w, sizeof *b);
        row = invdl_alloc_array(w, sizeof *row);
        product = invdl_alloc_array(cap, sizeof *product);
        bad = invdl_alloc_array(cap, sizeof *bad);
        scratch = invdl_scratch_new(w);
        if (a == NULL || b == NULL || row == NULL || product == NULL || bad == NULL ||
            scratch == NULL)
            goto done;
    }
    /* Written to the caller's arrays only once nothing can fail. */
    layer_max = invdl_calloc_array(depth > 0 ? depth : 1, sizeof *layer_max);
    if (layer_max == NULL)
        goto done;

    st = INVDL_OK;
    double worst = 0.0;
    for (size_t start = 0; start < batch; start += cap) {
        size_t cnt = batch - start < cap ? batch - start : cap;
        const float *in = x + start * w;
        float *out = a;
        for (size_t s = 0; s < cnt; s++)
            product[s] = 1.0;
        for (size_t l = 0; l < depth; l++) {
            const invdl_layer *layer = model->layers[l];
            const invdl_params *p = layer->params;
            memset(bad, 0, cnt * sizeof *bad);
            invdl_layer_run_marking(layer, 0, cnt, in, out, NULL, bad, row, scratch);
            for (size_t s = 0; s < cnt; s++) {
                double g = (double)INFINITY;
                if (bad[s])
                    st = INVDL_EDOMAIN; /* no inverse can recover that input */
                else
                    g = p->ops->gain(p, layer->inverse, 1, in + s * w, out + s * w);
                if (g != g)
                    g = (double)INFINITY;
                layer_max[l] = g > layer_max[l] ? g : layer_max[l];
                product[s] = gain_product(product[s], g);
            }
            in = out;
            out = out == a ? b : a;
        }
        for (size_t s = 0; s < cnt; s++) {
            if (sample_gain != NULL)
                sample_gain[start + s] = product[s];
            worst = product[s] > worst ? product[s] : worst;
        }
    }
    if (layer_gain != NULL)
        memcpy(layer_gain, layer_max, depth * sizeof *layer_gain);
    if (total != NULL)
        *total = worst;
done:
    invdl_free(a);
    invdl_free(b);
    invdl_free(row);
    invdl_free(product);
    invdl_free(layer_max);
    invdl_free(scratch);
    invdl_free(bad);
    return st;
}
