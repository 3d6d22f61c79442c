/*
 * flow.c - a model read as a normalizing flow: its log-density under a
 * standard normal base, and samples drawn through its inverse.
 *
 * Both work on chunks of samples (bounded memory whatever the batch) and
 * treat each sample alone where it matters: a layer reports a domain error
 * for a whole batch, so a chunk whose layer reported one runs that layer
 * again sample by sample to find which samples left the domain.  Every
 * layer maps each sample independently of the others, bit for bit
 * (dense_kernels.h), so no result depends on the chunking.
 */
#include "model.h"
#include "rng.h"

#include <math.h>
#include <string.h>

enum { CHUNK = 256 }; /* samples per pass */

/* The working arrays of a chunked pass. */
typedef struct flow_work {
    float *a, *b, *row;
    double *acc, *scratch;
    unsigned char *bad;
    size_t *index;
    unsigned *draws;
} flow_work;

static void work_free(flow_work *f)
{
    invdl_free(f->a);
    invdl_free(f->b);
    invdl_free(f->row);
    invdl_free(f->acc);
    invdl_free(f->scratch);
    invdl_free(f->bad);
    invdl_free(f->index);
    invdl_free(f->draws);
}

/* Validates a call on n samples, n*width floats at `in`, and the output
 * `out`; then arrays for chunks of up to CHUNK samples into f, their size
 * into *cap (0 when n is 0: nothing to do, nothing allocated).
 * INVDL_EINVAL, or INVDL_ENOMEM after freeing what was taken. */
static invdl_status begin_chunks(const invdl_model *model, size_t n, const void *in,
                                 const void *out, int sampling, flow_work *f, size_t *cap)
{
    size_t total;
    memset(f, 0, sizeof *f);
    *cap = 0;
    if (model == NULL || !invdl_mul_size(n, model->width, &total) ||
        invdl_bad_arrays(total, in, out))
        return INVDL_EINVAL;
    if (n == 0)
        return INVDL_OK;
    size_t width = model->width;
    *cap = n < CHUNK ? n : CHUNK;
    f->a = invdl_alloc_array(*cap * width, sizeof *f->a);
    f->b = invdl_alloc_array(*cap * width, sizeof *f->b);
    f->row = invdl_alloc_array(width, sizeof *f->row);
    f->bad = invdl_alloc_array(*cap, sizeof *f->bad);
    f->scratch = invdl_scratch_new(width);
    int ok = f->a != NULL && f->b != NULL && f->row != NULL && f->bad != NULL &&
             f->scratch != NULL;
    if (ok && !sampling) {
        f->acc = invdl_alloc_array(*cap, sizeof *f->acc);
        ok = f->acc != NULL;
    }
    if (ok && sampling) {
        f->index = invdl_alloc_array(*cap, sizeof *f->index);
        f->draws = invdl_alloc_array(*cap, sizeof *f->draws);
        ok = f->index != NULL && f->draws != NULL;
    }
    if (!ok) {
        work_free(f);
        return INVDL_ENOMEM;
    }
    return INVDL_OK;
}

invdl_status invdl_model_log_prob(invdl_model *model, size_t batch, const float *x,
                                  float *log_prob)
{
    flow_work f;
    size_t cap;
    invdl_status st = begin_chunks(model, batch, x, log_prob, 0, &f, &cap);
    if (st != INVDL_OK || cap == 0)
        return st;
    size_t w = model->width;
    for (size_t start = 0; start < batch; start += cap) {
        size_t cnt = batch - start < cap ? batch - start : cap;
        memset(f.acc, 0, cnt * sizeof *f.acc);
        memset(f.bad, 0, cnt * sizeof *f.bad);
        const float *in = x + start * w;
        float *out = f.a;
        for (size_t l = 0; l < model->depth; l++) {
            invdl_layer_run_marking(model->layers[l], 0, cnt, in, out, f.acc, f.bad, f.row,
                                    f.scratch);
            in = out;
            out = out == f.a ? f.b : f.a;
        }
        for (size_t s = 0; s < cnt; s++) {
            double lp = invdl_flow_log_prob(w, in + s * w, f.acc[s]);
            if (f.bad[s]) {
                lp = -(double)INFINITY;
                st = INVDL_EDOMAIN;
            }
            log_prob[start + s] = (float)lp;
        }
    }
    work_free(&f);
    return st;
}

/* splitmix64's output function as a hash: a bijection of 64-bit words. */
static uint64_t mix(uint64_t v)
{
    return invdl_rng_next(&v);
}

/* Draw `attempt` of sample `index`: width standard normals from a
 * generator whose state depends on (seed, index, attempt) alone. */
static void draw(uint64_t seed, uint64_t index, uint64_t attempt, size_t width, float *z)
{
    uint64_t state = mix(mix(mix(seed) ^ index) ^ attempt);
    for (size_t j = 0; j < width; j++)
        z[j] = (float)invdl_rng_normal(&state);
}

invdl_status invdl_model_sample(invdl_model *model, size_t n, uint64_t seed, float *out)
{
    flow_work f;
    size_t cap;
    invdl_status st = begin_chunks(model, n, out, out, 1, &f, &cap);
    if (st != INVDL_OK || cap == 0)
        return st;
    size_t w = model->width;
    for (size_t start = 0; start < n; start += cap) {
        /* The chunk's samples still to place, each with its draws so far. */
        size_t pending = n - start < cap ? n - start : cap;
        for (size_t k = 0; k < pending; k++) {
            f.index[k] = start + k;
            f.draws[k] = 0;
        }
        while (pending > 0) {
            for (size_t k = 0; k < pending; k++)
                draw(seed, f.index[k], f.draws[k], w, f.a + k * w);
            memset(f.bad, 0, pending * sizeof *f.bad);
            const float *in = f.a;
            float *next = f.b;
            for (size_t l = model->depth; l-- > 0;) {
                invdl_layer_run_marking(model->layers[l], 1, pending, in, next, NULL, f.bad,
                                        f.row, f.scratch);
                in = next;
                next = next == f.a ? f.b : f.a;
            }
            size_t kept = 0;
            for (size_t k = 0; k < pending; k++) {
                float *dst = out + f.index[k] * w;
                if (!f.bad[k]) {
                    memcpy(dst, in + k * w, w * sizeof *dst);
                } else if (f.draws[k] + 1 < INVDL_SAMPLE_MAX_DRAWS) {
                    f.index[kept] = f.index[k];
                    f.draws[kept] = f.draws[k] + 1;
                    kept++;
                } else {
                    for (size_t j = 0; j < w; j++)
                        dst[j] = NAN;
                    st = INVDL_EDOMAIN;
                }
            }
            pending = kept;
        }
    }
    work_free(&f);
    return st;
}
