/*
 * model.h - what the model, trainer and file code share about models: the
 * model struct and the helpers model.c gives the others.
 */
#ifndef INVDL_MODEL_H
#define INVDL_MODEL_H

#include "layers/layer.h"

struct invdl_model {
    size_t width;
    size_t depth;
    size_t capacity;
    invdl_layer **layers; /* owned, depth used of capacity */
    int training;         /* invdl_model_fit is training this model */
    int free_pending;     /* freed from fit's callback: fit frees it on return */
};

/* The distinct parameter blocks of a model in order of first use, in a new
 * array the caller frees with invdl_free (NULL with *nblocks == 0 for an
 * empty model).  INVDL_ENOMEM or INVDL_OK. */
invdl_status invdl_model_blocks(const invdl_model *model, invdl_params ***blocks,
                                size_t *nblocks);

/* Applies the model to out in place (out holds batch*width floats), in
 * its own direction (backwards == 0) or as its inverse.  scratch comes
 * from invdl_scratch_new(width).  INVDL_OK or INVDL_EDOMAIN (every output written). */
invdl_status invdl_model_run(const invdl_model *model, int backwards, size_t batch, float *out,
                             double *scratch);

/* log p(x) of a flow at one sample from its output z[width] and its
 * log|det J| (invdl.h, Flows): -0.5 |z|^2 - (width/2) log(2 pi) + log_det,
 * in double. */
static inline double invdl_flow_log_prob(size_t width, const float *z, double log_det)
{
    const double half_log_2pi = 0.91893853320467274178;
    double sq = 0.0;
    for (size_t j = 0; j < width; j++)
        sq += (double)z[j] * (double)z[j];
    return -0.5 * sq - (double)width * half_log_2pi + log_det;
}

#endif /* INVDL_MODEL_H */
