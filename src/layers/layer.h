/*
 * layer.h - the layer machinery the layer kinds, models, trainer and files
 * share.
 *
 * A layer is a direction (forward or inverse) over a parameter block.  The
 * block holds the trainable values, the kind's fixed settings (mprelu's
 * alpha_min; dense_lu's s_min and permutation) and the data derived from
 * both (a dense layer's LU factors); it is reference counted, so a layer
 * and every inverse made from it read one block.
 *
 * A kind is one table of operations (invdl_layer_ops) in its own file; the
 * table lists in layer.c name every kind a model file may hold.  Adding a
 * kind means writing its file and adding its table to that list.
 */
#ifndef INVDL_LAYER_H
#define INVDL_LAYER_H

#include "invdl_private.h"
#include "memory.h"

#if !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
typedef atomic_size_t invdl_refcount;
#else
typedef size_t invdl_refcount;
#endif

typedef struct invdl_params invdl_params;

/* Scratch of the operations: INVDL_SCRATCH_ROWS rows of width +
 * INVDL_SCRATCH_PAD doubles, whatever the batch.  The elementwise kinds use
 * up to four rows; the dense kinds stage up to three blocks of samples in double
 * (dense_kernels.h). */
#define INVDL_SCRATCH_ROWS 120
#define INVDL_SCRATCH_PAD 16

_Static_assert(INVDL_MAX_WIDTH <= (size_t)PTRDIFF_MAX / (INVDL_SCRATCH_ROWS * sizeof(double)) -
                   INVDL_SCRATCH_PAD,
               "every width a layer may have has room for its scratch");

/* Scratch for the operations of layers of `width`, freed with invdl_free;
 * NULL on ENOMEM. */
static inline double *invdl_scratch_new(size_t width)
{
    if (width > SIZE_MAX - INVDL_SCRATCH_PAD)
        return NULL;
    return invdl_alloc_array(width + INVDL_SCRATCH_PAD, INVDL_SCRATCH_ROWS * sizeof(double));
}

/* The operations of one layer kind.  `inverse` selects the direction: 0
 * computes the kind's forward map f, 1 its inverse g.  Arrays are row-major
 * [batch][width]; `scratch` comes from invdl_scratch_new(width). */
typedef struct invdl_layer_ops {
    const char *name;
    uint32_t kind;       /* the kind's number in model files: never reused */
    /* Fixed settings stored with the values: nsettings, plus
     * settings_per_feature for each of the width features (dense_lu: s_min,
     * then its permutation).  invdl_settings_count() adds them up. */
    size_t nsettings;
    size_t settings_per_feature;
    /* Trainable floats for this width and these settings, whatever they
     * hold (read from a file, not yet validated): SIZE_MAX where no array
     * could hold them.  0 when the kind has none. */
    size_t (*count)(size_t width, const float *settings);
    /* Whether settings and values are acceptable (finite, in range).  A
     * kind with derived data may leave checks to prepare, which reads every
     * value anyway: one pass over the values per step instead of two. */
    int (*valid)(size_t width, const float *settings, const float *values);
    /* Derived data.  cache_new may be NULL (the kind derives nothing);
     * otherwise prepare fills a cache from the settings and values without
     * allocating.  With complete == 0 it may leave out what only inverses,
     * log-dets and gains read (a dense layer's factorisation): the trainer
     * asks for that after its steps when nothing else needs them, and the
     * cache then serves only apply() and backward() in the forward
     * direction.  Returns INVDL_OK; INVDL_ESINGULAR (only when complete);
     * INVDL_EINVAL for what valid left to it (the dense kinds: values not
     * finite, a permutation with a repeated index). */
    void *(*cache_new)(size_t width, const float *settings);
    void (*cache_free)(void *cache);
    invdl_status (*prepare)(const invdl_params *p, const float *values, void *cache,
                            int complete);
    /* Moves values into the region training keeps them in, after an
     * optimizer's step (mprelu: |alpha| below alpha_min becomes
     * copysign(alpha_min, alpha); dense_lu: the same for s_i and s_min).
     * NULL: every finite value is in it.  A kind with such a floor gives
     * the outside one-sided derivative at its edge in backward and
     * log_det_grad, so the gradient can move a projected value out. */
    void (*project)(const invdl_params *p, float *values);
    /* out = f(in) or g(in); in == out allowed.  INVDL_EDOMAIN is reported
     * with every output written. */
    invdl_status (*apply)(const invdl_params *p, int inverse, size_t batch, const float *in,
                          float *out, double *scratch);
    /* Given the direction's input and output and dL/dout: din = dL/din
     * (din may alias dout) and dparams += dL/dvalues (dparams may be
     * NULL). */
    void (*backward)(const invdl_params *p, int inverse, size_t batch, const float *in,
                     const float *out, const float *dout, float *din, double *dparams,
                     double *scratch);
    /* acc[s] += log|det f'(x_s)| for the forward map at x (scratch as for
     * apply: a coupling layer runs its conditioner). */
    invdl_status (*log_det)(const invdl_params *p, size_t batch, const float *x, double *acc,
                            double *scratch);
    /* The gradient of the forward map's log|det f'(x_s)| (as log_det
     * computes it) times `scale`, at the forward inputs x: dx[s][j] +=
     * scale * d/dx_sj (each sum formed in double and rounded to float once;
     * dx may be NULL) and dparams += scale * d/dvalues (dparams may be
     * NULL).  Returns 1 if the log-det depends on x (dx was written), 0 if
     * it does not (dense maps, PReLU away from its hinges: dx untouched).
     * The machinery derives an inverse layer's gradient from this one and
     * the kind's backward (layer.c), so every kind supplies only this. */
    int (*log_det_grad)(const invdl_params *p, size_t batch, const float *x, double scale,
                        float *dx, double *dparams, double *scratch);
    /* An affine kind's forward map y = W x + b: W row-major [width][width]
     * and b[width].  NULL for kinds that are not affine. */
    void (*weights)(const invdl_params *p, float *w, float *b);
    /* For memory-saving backprop: a bound on how much rebuilding this
     * direction's input from its output amplifies a relative error in the
     * output, max over samples of |J_rebuild|_inf * |out_s|_inf / |in_s|_inf.
     * Infinite where the input cannot be rebuilt. */
    double (*gain)(const invdl_params *p, int inverse, size_t batch, const float *in,
                   const float *out);
    const void *data; /* the kind's own constants, for shared operations */
} invdl_layer_ops;

struct invdl_params {
    invdl_refcount refs;        /* layers reading this block */
    const invdl_layer_ops *ops; /* not owned: static table */
    size_t width;
    size_t count;               /* trainable floats */
    float *values;              /* owned, count floats (NULL when count == 0) */
    size_t nsettings;           /* invdl_settings_count(ops, width) */
    float *settings;            /* owned, nsettings floats (NULL when there are none) */
    void *cache;                /* owned: derived from values, NULL if the kind has none */
    void *spare;                /* owned: where the next cache is prepared */
    int training;               /* a fit is training a model holding this block */
    int partial;                /* 1: cache prepared with complete == 0 (training) */
};

struct invdl_layer {
    invdl_params *params; /* shared with the layer's inverses: one reference */
    size_t width;
    int inverse;          /* 1: computes the kind's inverse map */
    int in_model;         /* owned by a model, which frees it */
};

/* *count = the settings of `ops` at `width`; 0 when that overflows. */
static inline int invdl_settings_count(const invdl_layer_ops *ops, size_t width, size_t *count)
{
    size_t per;
    if (!invdl_mul_size(width, ops->settings_per_feature, &per) || per > SIZE_MAX - ops->nsettings)
        return 0;
    *count = ops->nsettings + per;
    return 1;
}

/* The kinds a model file may name, by number; NULL if unknown. */
const invdl_layer_ops *invdl_layer_ops_for_kind(uint32_t kind);

/* A new layer over a new block of `ops`, taking `values` (count floats,
 * allocated with invdl_malloc, NULL when count is 0; freed on failure) and
 * copying `settings` (invdl_settings_count() floats; NULL when there are
 * none).  NULL on a bad width (invdl_bad_width), ENOMEM, invalid settings
 * or values, or singular data; the reason goes to *status if not NULL. */
invdl_layer *invdl_layer_create(const invdl_layer_ops *ops, size_t width, const float *settings,
                                float *values, invdl_status *status);

/* Frees a layer a model owns (the model's free calls it). */
void invdl_layer_release(invdl_layer *layer);

/* The layer with the other direction over the same block. */
invdl_layer *invdl_layer_share(const invdl_layer *layer, int inverse);

/* Replaces a block's values and derived data, or leaves the block
 * untouched and returns INVDL_EINVAL (invalid values) or INVDL_ESINGULAR.
 * Never allocates. */
invdl_status invdl_params_assign(invdl_params *p, const float *values);

/* The same for several blocks at once: all are replaced or none.  values
 * holds the blocks' values back to back. */
invdl_status invdl_params_assign_all(invdl_params *const *blocks, size_t nblocks,
                                     const float *values);

/* As invdl_params_assign_all(), preparing only the derived data that
 * training's forward products need (prepare with complete == 0: no
 * factorisation, never INVDL_ESINGULAR); the blocks are marked partial.
 * Only for the trainer, which completes them before anyone else reads
 * them. */
invdl_status invdl_params_assign_all_partial(invdl_params *const *blocks, size_t nblocks,
                                             const float *values);

/* Completes the derived data of the blocks left partial, in place: all or
 * none.  INVDL_OK, or INVDL_ESINGULAR with every block as it was. */
invdl_status invdl_params_complete_all(invdl_params *const *blocks, size_t nblocks);

/* Applies each block's project operation to its part of values (the
 * blocks' values back to back), e.g. after an optimizer's step. */
void invdl_params_project_all(invdl_params *const *blocks, size_t nblocks, float *values);

/* Projected steps: every v[i] with |v[i]| < edge becomes copysign(edge,
 * v[i]) (±0 included); the others, NaN included, stay.  The project
 * operation of kinds with a floored value (mprelu's alpha, dense_lu's s). */
void invdl_project_floor(size_t n, float edge, float *v);

/* Copies the blocks' values back to back into dst. */
void invdl_params_gather(invdl_params *const *blocks, size_t nblocks, float *dst);

/* max(worst, slope * |out|_inf / |in|_inf) for one sample of `width`
 * floats, infinite when that is NaN: how the kinds' gain operations
 * combine samples. */
double invdl_gain_update(double worst, double slope, size_t width, const float *in,
                         const float *out);

/* The gain operation of an affine kind (dense, dense_lu): slope |W^-1|_inf
 * for rebuilding the forward map's input, |W|_inf for the inverse's, given
 * as `slope`. */
double invdl_affine_gain(size_t width, double slope, size_t batch, const float *in,
                         const float *out);

/* The n x n orthogonal matrix the dense kinds start from (dense.c), in a
 * new array of n*n doubles the caller frees with invdl_free; NULL on
 * ENOMEM. */
double *invdl_orthogonal_new(size_t n, uint64_t seed);

/* Runs one layer in its own direction (inverse == 0) or the other one. */
static inline invdl_status invdl_layer_run(const invdl_layer *l, int other, size_t batch,
                                           const float *in, float *out, double *scratch)
{
    const invdl_params *p = l->params;
    return p->ops->apply(p, l->inverse ^ other, batch, in, out, scratch);
}

/* invdl_layer_run(), and acc[s] += log|det J| of the direction run at
 * in[s] (in double; the kind's log_det at the forward map's input, negated
 * for the inverse map).  in == out allowed.  INVDL_OK or INVDL_EDOMAIN
 * (everything written). */
invdl_status invdl_layer_run_log_det(const invdl_layer *l, int other, size_t batch,
                                     const float *in, float *out, double *acc, double *scratch);

/* invdl_layer_run() from in to out (not in place), with acc as in
 * invdl_layer_run_log_det() when acc is not NULL, marking bad[s] = 1 for
 * the samples whose input lies outside the layer's domain (a layer
 * reports a domain error for a whole batch: after one, each sample runs
 * again alone into row, width floats).  The others' bad[s] are left. */
void invdl_layer_run_marking(const invdl_layer *l, int other, size_t batch, const float *in,
                             float *out, double *acc, unsigned char *bad, float *row,
                             double *scratch);

/* The log-det gradient of layer l in its own direction, given its input
 * and output: dx += scale * d/din log|det J(in)| (dx may be NULL) and
 * dparams += scale * d/dvalues (may be NULL), as the kind's log_det_grad
 * says.  An inverse layer's is derived from its kind's log_det_grad and
 * backward; `work` holds batch*width floats.  Returns 1 if dx was
 * written. */
int invdl_layer_log_det_grad(const invdl_layer *l, size_t batch, const float *in,
                             const float *out, double scale, float *dx, double *dparams,
                             float *work, double *scratch);

/* ---- elementwise kinds ------------------------------------------------- */

/* An elementwise kind is a kernel pair and the derivative of its forward
 * map; its table points `data` at one of these and uses the
 * invdl_elementwise_* operations. */
typedef struct invdl_elementwise {
    invdl_status (*forward)(size_t n, const float *x, float *y);
    invdl_status (*inverse)(size_t n, const float *y, float *x);
    double (*fprime)(double x); /* f'(x), even in x */
    double (*dlog_fprime)(double x); /* d/dx log|f'(x)| = f''(x)/f'(x), odd in x */
    float xmax;                 /* forward inputs beyond this are outside the domain */
} invdl_elementwise;

size_t invdl_elementwise_count(size_t width, const float *settings);
int invdl_elementwise_valid(size_t width, const float *settings, const float *values);
invdl_status invdl_elementwise_apply(const invdl_params *p, int inverse, size_t batch,
                                     const float *in, float *out, double *scratch);
void invdl_elementwise_backward(const invdl_params *p, int inverse, size_t batch,
                                const float *in, const float *out, const float *dout,
                                float *din, double *dparams, double *scratch);
invdl_status invdl_elementwise_log_det(const invdl_params *p, size_t batch, const float *x,
                                       double *acc, double *scratch);
int invdl_elementwise_log_det_grad(const invdl_params *p, size_t batch, const float *x,
                                   double scale, float *dx, double *dparams, double *scratch);
double invdl_elementwise_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                              const float *out);

#endif /* INVDL_LAYER_H */
