/*
 * fit.c - SGD or Adam on mean squared error or a flow's negative
 * log-likelihood (Keras semantics), with stored or memory-saving backprop.
 *
 * The negative log-likelihood of a batch is the mean of
 *     0.5 |z|^2 + (width/2) log(2 pi) - sum over layers of log|det J_l|,
 * so its backward pass seeds dL/dz = z / batch and adds, at each layer on
 * the way down, -1/batch times the gradient of that layer's log-det with
 * respect to its input and its parameters (layer.h, log_det_grad).
 *
 * Stored backprop keeps every layer's input for the backward pass: depth+1
 * activation arrays per batch.  Memory-saving backprop (RevNet, memcnn)
 * keeps the batch's input and final output and rebuilds each layer's input
 * from its output through the layer's inverse as the backward pass goes
 * down.  In float a rebuilt input differs from the one the forward pass
 * saw by the rounding of every layer above it, amplified where a layer
 * compresses; so the forward pass also stores a layer's input when
 *   - the layer met an input outside its invertible domain (INVDL_EDOMAIN:
 *     no inverse can rebuild it),
 *   - every checkpoint_every layers, if asked, and
 *   - when the product of the layers' rebuild gains (layer.h: a bound on
 *     the relative error amplification of rebuilding, at least 1 each)
 *     since the last stored activation would exceed max_gain,
 * and a batch whose rebuilding still fails (NaN, domain) is redone with
 * stored activations.
 *
 * Derived data.  A step changes the parameters, and a dense layer derives
 * from its W both what the forward products read (W and W^T in double)
 * and what only inverses, log-dets and gains read (LU factors, norms: the
 * O(width^3) part).  Unless the latter are needed at every step
 * (factors_needed_each_step), each step prepares only the former and the
 * factorisation runs at the end of each epoch, where a numerically
 * singular W sends the parameters back to the epoch's start
 * (INVDL_ESINGULAR).
 */
#include "kernels/train_loops.h"
#include "model.h"
#include "rng.h"

#include <float.h>
#include <math.h>
#include <string.h>

invdl_fit_options invdl_fit_defaults(void)
{
    invdl_fit_options o;
    memset(&o, 0, sizeof o);
    o.learning_rate = 0.01f;
    o.momentum = 0.0f;
    o.batch_size = 32;
    o.epochs = 1;
    o.seed = 0;
    o.nesterov = 0;
    o.global_clipnorm = 0.0f;
    o.on_epoch = NULL;
    o.user = NULL;
    o.memory_saving = 0;
    o.checkpoint_every = 0;
    o.max_gain = 1e4f;
    o.report = NULL;
    o.loss = INVDL_LOSS_MSE;
    o.optimizer = INVDL_OPTIMIZER_SGD;
    o.beta_1 = 0.9f;
    o.beta_2 = 0.999f;
    o.epsilon = 1e-7f;
    /* Validation, early stopping and the schedules are off (the fields
     * above are 0); reduce-on-plateau's settings are Keras' defaults. */
    o.plateau_factor = 0.1f;
    o.plateau_patience = 10;
    o.plateau_min_delta = 1e-4f;
    return o;
}

invdl_fit_options invdl_fit_defaults_adam(void)
{
    invdl_fit_options o = invdl_fit_defaults();
    o.optimizer = INVDL_OPTIMIZER_ADAM;
    o.learning_rate = 0.001f;
    return o;
}

/* Adam takes none of SGD's momentum options; beta_1 and beta_2 in [0, 1)
 * and epsilon > 0 keep lr_t and the step finite. */
static int bad_adam(const invdl_fit_options *o)
{
    return o->momentum != 0.0f || o->nesterov != 0 || !(o->beta_1 >= 0.0f && o->beta_1 < 1.0f) ||
           !(o->beta_2 >= 0.0f && o->beta_2 < 1.0f) || !(o->epsilon > 0.0f) ||
           !isfinite(o->epsilon);
}

static int not_flag(int v)
{
    return v != 0 && v != 1;
}

/* A threshold or rate: a finite number >= 0. */
static int bad_nonnegative(float v)
{
    return !(v >= 0.0f) || !isfinite(v);
}

/* A monitor must name a value the fit has. */
static int bad_monitor(const invdl_fit_options *o, invdl_monitor m)
{
    return (m != INVDL_MONITOR_AUTO && m != INVDL_MONITOR_LOSS && m != INVDL_MONITOR_VAL_LOSS) ||
           (m == INVDL_MONITOR_VAL_LOSS && o->validation_n == 0);
}

/* Early stopping, the schedule and reduce-on-plateau (invdl.h, Training). */
static int bad_between_epochs(const invdl_fit_options *o)
{
    if (not_flag(o->early_stopping) || not_flag(o->restore_best_weights) ||
        not_flag(o->staircase) || not_flag(o->reduce_lr_on_plateau) ||
        (o->restore_best_weights && !o->early_stopping))
        return 1;
    if (o->early_stopping && (bad_monitor(o, o->early_stopping_monitor) ||
                              bad_nonnegative(o->early_stopping_min_delta)))
        return 1;
    if (o->schedule != INVDL_SCHEDULE_CONSTANT && o->schedule != INVDL_SCHEDULE_EXPONENTIAL)
        return 1;
    if (o->schedule == INVDL_SCHEDULE_EXPONENTIAL &&
        (o->decay_steps == 0 || !(o->decay_rate > 0.0f) || !isfinite(o->decay_rate) ||
         o->reduce_lr_on_plateau))
        return 1;
    return o->reduce_lr_on_plateau &&
           (bad_monitor(o, o->plateau_monitor) || !(o->plateau_factor >= 0.0f) ||
            !(o->plateau_factor < 1.0f) || bad_nonnegative(o->plateau_min_delta) ||
            bad_nonnegative(o->plateau_min_lr));
}

static int bad_options(const invdl_fit_options *o)
{
    return bad_between_epochs(o) || !(o->learning_rate >= 0.0f) || !isfinite(o->learning_rate) ||
           !(o->momentum >= 0.0f) || !isfinite(o->momentum) || o->batch_size == 0 ||
           !(o->global_clipnorm >= 0.0f) || (o->nesterov != 0 && o->nesterov != 1) ||
           (o->memory_saving != 0 && o->memory_saving != 1) || !(o->max_gain >= 1.0f) ||
           (o->loss != INVDL_LOSS_MSE && o->loss != INVDL_LOSS_NLL) ||
           (o->optimizer != INVDL_OPTIMIZER_SGD && o->optimizer != INVDL_OPTIMIZER_ADAM) ||
           (o->optimizer == INVDL_OPTIMIZER_ADAM && bad_adam(o));
}

/* Whether the loss reads log|det J| and needs its gradient: the negative
 * log-likelihood does, and through it every dense layer's LU factors
 * (log|det W| and W^-T) at every step. */
static int loss_needs_log_det(const invdl_fit_options *o)
{
    return o->loss == INVDL_LOSS_NLL;
}

/* Targets are read by mean squared error only. */
static int bad_targets(const invdl_fit_options *o, const float *y)
{
    return y == NULL && o->loss == INVDL_LOSS_MSE;
}

/* The validation arrays fit reads, for a model of this width. */
static int bad_validation(const invdl_fit_options *o, size_t width)
{
    size_t total;
    return o->validation_n > 0 &&
           (o->validation_x == NULL || bad_targets(o, o->validation_y) ||
            !invdl_mul_size(o->validation_n, width, &total));
}

/* Whether each step must leave every layer's derived data complete: when
 * memory-saving backprop rebuilds inputs through inverses and weighs their
 * gains, when a layer with derived data runs in its inverse direction
 * (a dense layer's inverse and its backward solve with the factors), or
 * when the loss reads log|det J| and its gradient. */
static int factors_needed_each_step(const invdl_model *m, const invdl_fit_options *o)
{
    if (o->memory_saving || loss_needs_log_det(o))
        return 1;
    for (size_t l = 0; l < m->depth; l++)
        if (m->layers[l]->inverse && m->layers[l]->params->ops->cache_new != NULL)
            return 1;
    return 0;
}

/* Everything one batch's forward and backward passes need, allocated once
 * for the largest batch. */
typedef struct trainer {
    const invdl_model *model;
    const invdl_fit_options *opt;
    size_t width, depth, cap;    /* cap: samples per batch at most */
    size_t chunk;                /* cap*width */
    invdl_params **blocks;       /* owned array; the blocks are the model's */
    size_t nblocks, nparams;
    size_t *offset;              /* [depth]: where layer l's block's gradient starts */
    double *grad;                /* [nparams] */
    double *scratch;             /* invdl_scratch_new(width) */
    float *dout, *din;           /* [chunk] activation gradients */
    double *log_det;             /* NLL: [cap] log|det J| of the batch's samples */
    float *ld_work;              /* NLL: [chunk] for the inverse layers' log-det gradients */
    float *acts;                 /* stored mode: [(depth+1)*chunk], lazily */
    float *work[2];              /* memory saving: [chunk] each */
    float **pool;                /* memory saving: stored inputs, grown on demand */
    size_t pool_size;
    size_t *stored;              /* [depth]: pool index + 1 of layer l's stored input, 0 if none */
    size_t peak_bytes;
    size_t stored_inputs, fallbacks;
} trainer;

static void trainer_free(trainer *t)
{
    invdl_free(t->blocks);
    invdl_free(t->offset);
    invdl_free(t->grad);
    invdl_free(t->scratch);
    invdl_free(t->dout);
    invdl_free(t->din);
    invdl_free(t->log_det);
    invdl_free(t->ld_work);
    invdl_free(t->acts);
    invdl_free(t->work[0]);
    invdl_free(t->work[1]);
    for (size_t i = 0; i < t->pool_size; i++)
        invdl_free(t->pool[i]);
    invdl_free(t->pool);
    invdl_free(t->stored);
}

static invdl_status trainer_init(trainer *t, const invdl_model *m, const invdl_fit_options *opt,
                                 size_t cap)
{
    memset(t, 0, sizeof *t);
    t->model = m;
    t->opt = opt;
    t->width = m->width;
    t->depth = m->depth;
    t->cap = cap;
    if (!invdl_mul_size(cap, m->width, &t->chunk))
        return INVDL_EINVAL;
    if (invdl_model_blocks(m, &t->blocks, &t->nblocks) != INVDL_OK)
        return INVDL_ENOMEM;
    for (size_t b = 0; b < t->nblocks; b++)
        t->nparams += t->blocks[b]->count;
    t->offset = invdl_alloc_array(t->depth, sizeof *t->offset);
    t->stored = invdl_calloc_array(t->depth, sizeof *t->stored);
    t->grad = invdl_alloc_array(t->nparams, sizeof *t->grad);
    t->scratch = invdl_scratch_new(t->width);
    t->dout = invdl_alloc_array(t->chunk, sizeof *t->dout);
    t->din = invdl_alloc_array(t->chunk, sizeof *t->din);
    if (t->offset == NULL || t->stored == NULL || t->grad == NULL || t->scratch == NULL ||
        t->dout == NULL || t->din == NULL)
        return INVDL_ENOMEM;
    for (size_t l = 0; l < t->depth; l++) {
        size_t off = 0;
        for (size_t b = 0; t->blocks[b] != m->layers[l]->params; b++)
            off += t->blocks[b]->count;
        t->offset[l] = off;
    }
    if (opt->memory_saving) {
        t->work[0] = invdl_alloc_array(t->chunk, sizeof(float));
        t->work[1] = invdl_alloc_array(t->chunk, sizeof(float));
        if (t->work[0] == NULL || t->work[1] == NULL)
            return INVDL_ENOMEM;
    }
    if (loss_needs_log_det(opt)) {
        t->log_det = invdl_alloc_array(cap, sizeof *t->log_det);
        t->ld_work = invdl_alloc_array(t->chunk, sizeof *t->ld_work);
        if (t->log_det == NULL || t->ld_work == NULL)
            return INVDL_ENOMEM;
    }
    return INVDL_OK;
}

static void note_bytes(trainer *t, size_t arrays, size_t n)
{
    size_t bytes = arrays * n * sizeof(float);
    if (bytes > t->peak_bytes)
        t->peak_bytes = bytes;
}

/* Loss of pred against y over n floats, and dL/dpred into dout. */
static double loss_and_seed(size_t n, const float *pred, const float *y, float *dout)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)y[i];
        sum += d * d;
        dout[i] = (float)(2.0 * d / (double)n);
    }
    return sum / (double)n;
}

/* The negative log-likelihood of a batch from its outputs z and the
 * log-dets in t->log_det, and dL/dz = z / batch into dout.  A sample
 * outside a layer's domain (forward == INVDL_EDOMAIN) has density 0: the
 * loss is then +inf. */
static double nll_and_seed(const trainer *t, size_t batch, const float *z,
                           invdl_status forward, float *dout)
{
    size_t w = t->width;
    double sum = 0.0;
    for (size_t s = 0; s < batch; s++) {
        sum -= invdl_flow_log_prob(w, z + s * w, t->log_det[s]);
        for (size_t j = 0; j < w; j++)
            dout[s * w + j] = (float)((double)z[s * w + j] / (double)batch);
    }
    return forward == INVDL_EDOMAIN ? (double)INFINITY : sum / (double)batch;
}

/* The batch's loss from its outputs z (and targets y for MSE), seeding
 * dL/dz into t->dout.  forward: the status of the forward pass. */
static double loss_of_batch(trainer *t, size_t batch, const float *z, const float *y,
                            invdl_status forward)
{
    if (loss_needs_log_det(t->opt))
        return nll_and_seed(t, batch, z, forward, t->dout);
    return loss_and_seed(batch * t->width, z, y, t->dout);
}

/* Layer l of the forward pass, in to out (in place allowed), adding its
 * log-dets to t->log_det when the loss needs them. */
static invdl_status forward_layer(trainer *t, size_t l, size_t batch, const float *in, float *out)
{
    const invdl_layer *layer = t->model->layers[l];
    if (loss_needs_log_det(t->opt))
        return invdl_layer_run_log_det(layer, 0, batch, in, out, t->log_det, t->scratch);
    return invdl_layer_run(layer, 0, batch, in, out, t->scratch);
}

/* Starts a batch's forward pass. */
static void forward_begin(trainer *t, size_t batch)
{
    if (loss_needs_log_det(t->opt))
        memset(t->log_det, 0, batch * sizeof *t->log_det);
}

/* Backward through layer l given its input and output; dout -> din, plus
 * the layer's log-det terms when the loss has them. */
static void layer_backward(trainer *t, size_t l, size_t batch, const float *in, const float *out)
{
    const invdl_layer *layer = t->model->layers[l];
    const invdl_params *p = layer->params;
    double *dp = p->count > 0 ? t->grad + t->offset[l] : NULL;
    p->ops->backward(p, layer->inverse, batch, in, out, t->dout, t->din, dp, t->scratch);
    float *swap = t->dout;
    t->dout = t->din;
    t->din = swap;
    if (loss_needs_log_det(t->opt))
        (void)invdl_layer_log_det_grad(layer, batch, in, out, -1.0 / (double)batch, t->dout, dp,
                                       t->ld_work, t->scratch);
}

static invdl_status stored_pass(trainer *t, size_t batch, const float *x, const float *y,
                                double *loss)
{
    size_t n = batch * t->width;
    if (t->acts == NULL) {
        size_t arrays = t->depth + 1, total;
        if (!invdl_mul_size(arrays, t->chunk, &total))
            return INVDL_ENOMEM;
        t->acts = invdl_alloc_array(total, sizeof *t->acts);
        if (t->acts == NULL)
            return INVDL_ENOMEM;
    }
    note_bytes(t, t->depth + 1, n);
    float *a = t->acts;
    invdl_status st = INVDL_OK;
    memcpy(a, x, n * sizeof *a);
    forward_begin(t, batch);
    for (size_t l = 0; l < t->depth; l++) {
        invdl_status s = forward_layer(t, l, batch, a + l * n, a + (l + 1) * n);
        if (s != INVDL_OK)
            st = s;
    }
    *loss = loss_of_batch(t, batch, a + t->depth * n, y, st);
    for (size_t l = t->depth; l-- > 0;)
        layer_backward(t, l, batch, a + l * n, a + (l + 1) * n);
    return st;
}

/* A pool array for a stored input, grown as needed. */
static float *pool_slot(trainer *t, size_t index)
{
    if (index < t->pool_size)
        return t->pool[index];
    float **grown = invdl_realloc_array(t->pool, index + 1, sizeof *grown);
    if (grown == NULL)
        return NULL;
    t->pool = grown;
    grown[index] = invdl_alloc_array(t->chunk, sizeof **grown);
    if (grown[index] == NULL)
        return NULL;
    t->pool_size = index + 1;
    return grown[index];
}

static int has_nan(size_t n, const float *v)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != v[i])
            return 1;
    return 0;
}

/* Memory-saving pass.  INVDL_EDOMAIN from here means "rebuilding failed,
 * redo the batch stored"; the gradient is then incomplete. */
static invdl_status saving_pass(trainer *t, size_t batch, const float *x, const float *y,
                                double *loss, invdl_status *forward_status, int *failed)
{
    const invdl_fit_options *o = t->opt;
    size_t n = batch * t->width, used = 0;
    int budget = isfinite(o->max_gain);
    double product = 1.0;
    const float *in = x;
    float *out = t->work[0];
    *failed = 0;
    *forward_status = INVDL_OK;
    forward_begin(t, batch);
    for (size_t l = 0; l < t->depth; l++) {
        const invdl_layer *layer = t->model->layers[l];
        const invdl_params *p = layer->params;
        invdl_status s = forward_layer(t, l, batch, in, out);
        int store = 0;
        if (s != INVDL_OK) {
            *forward_status = s;
            store = 1;
        }
        if (o->checkpoint_every > 0 && l % o->checkpoint_every == 0)
            store = 1;
        if (budget && !store && l > 0) {
            double g = p->ops->gain(p, layer->inverse, batch, in, out);
            g = g > 1.0 ? g : 1.0;
            if (product * g > (double)o->max_gain)
                store = 1;
            else
                product *= g;
        }
        t->stored[l] = 0;
        if (store && l > 0) {
            float *slot = pool_slot(t, used);
            if (slot == NULL)
                return INVDL_ENOMEM;
            memcpy(slot, in, n * sizeof *slot);
            t->stored[l] = ++used;
            product = 1.0;
        }
        in = out;
        out = out == t->work[0] ? t->work[1] : t->work[0];
    }
    note_bytes(t, 3 + used, n);
    t->stored_inputs += used;
    *loss = loss_of_batch(t, batch, in, y, *forward_status);

    /* Down the chain: `in` holds layer l's output, rebuild its input. */
    const float *top = in;
    for (size_t l = t->depth; l-- > 0;) {
        const float *below;
        if (l == 0) {
            below = x;
        } else if (t->stored[l] != 0) {
            below = t->pool[t->stored[l] - 1];
        } else {
            float *dst = top == t->work[0] ? t->work[1] : t->work[0];
            invdl_status s = invdl_layer_run(t->model->layers[l], 1, batch, top, dst, t->scratch);
            if (s != INVDL_OK || has_nan(n, dst)) {
                *failed = 1;
                return INVDL_OK;
            }
            below = dst;
        }
        layer_backward(t, l, batch, below, top);
        top = below;
    }
    return INVDL_OK;
}

/* Loss and gradient (into t->grad, t->dout ends as dL/dx) of one batch.
 * Returns INVDL_OK or INVDL_EDOMAIN (forward met a domain edge; results
 * complete), or INVDL_ENOMEM. */
static invdl_status batch_gradient(trainer *t, size_t batch, const float *x, const float *y,
                                   double *loss)
{
    memset(t->grad, 0, t->nparams * sizeof *t->grad);
    if (t->opt->memory_saving) {
        invdl_status fst;
        int failed;
        invdl_status st = saving_pass(t, batch, x, y, loss, &fst, &failed);
        if (st != INVDL_OK)
            return st;
        if (!failed)
            return fst;
        t->fallbacks++;
        memset(t->grad, 0, t->nparams * sizeof *t->grad);
    }
    return stored_pass(t, batch, x, y, loss);
}

static int all_finite_doubles(size_t n, const double *v)
{
    return invdl_train_loops_best()->finite(n, v);
}

static void fill_report(const trainer *t, invdl_fit_report *r, size_t epochs, size_t steps,
                        float loss)
{
    if (r == NULL)
        return;
    r->epochs_run = epochs;
    r->steps = steps;
    r->loss = loss;
    r->activation_bytes = t->peak_bytes;
    r->stored_inputs = t->stored_inputs;
    r->fallbacks = t->fallbacks;
    /* What fit's epochs add; a call without them leaves these so. */
    r->val_loss = NAN;
    r->learning_rate = t->opt->learning_rate;
    r->best_epoch = 0;
    r->best = NAN;
    r->stopped_epoch = 0;
    r->restored = 0;
}

invdl_status invdl_model_gradient(invdl_model *model, size_t batch, const float *x,
                                  const float *y, const invdl_fit_options *options, float *loss,
                                  float *param_grad, float *input_grad)
{
    invdl_fit_options defaults = invdl_fit_defaults();
    const invdl_fit_options *o = options != NULL ? options : &defaults;
    size_t n;
    if (model == NULL || batch == 0 || x == NULL || bad_targets(o, y) || loss == NULL ||
        !invdl_mul_size(batch, model->width, &n) || n > INVDL_MAX_ELEMS || bad_options(o) ||
        (invdl_model_param_count(model) > 0 && param_grad == NULL))
        return INVDL_EINVAL;
    trainer t;
    invdl_status st = trainer_init(&t, model, o, batch);
    if (st == INVDL_OK) {
        double l;
        st = batch_gradient(&t, batch, x, y, &l);
        if (st == INVDL_OK || st == INVDL_EDOMAIN) {
            *loss = (float)l;
            int finite = isfinite(*loss);
            for (size_t i = 0; i < t.nparams; i++) {
                param_grad[i] = (float)t.grad[i];
                finite &= isfinite(param_grad[i]) != 0;
            }
            if (input_grad != NULL)
                memcpy(input_grad, t.dout, n * sizeof *input_grad);
            for (size_t i = 0; input_grad != NULL && i < n; i++)
                finite &= isfinite(input_grad[i]) != 0;
            fill_report(&t, o->report, 0, 0, (float)l);
            /* A loss or gradient a float cannot hold is not returned as
             * if it were a result; the +inf NLL of a sample outside a
             * domain (density 0) is reported as the domain exit. */
            if (!finite && !(st == INVDL_EDOMAIN && o->loss == INVDL_LOSS_NLL))
                st = INVDL_EDIVERGED;
        }
    }
    trainer_free(&t);
    return st;
}

/* Whether another fit is training some block of the trainer's. */
static int blocks_in_training(const trainer *t)
{
    for (size_t b = 0; b < t->nblocks; b++)
        if (t->blocks[b]->training)
            return 1;
    return 0;
}

static void mark_blocks(const trainer *t, int training)
{
    for (size_t b = 0; b < t->nblocks; b++)
        t->blocks[b]->training = training;
}

/* Gathers the model's parameters into dst. */
static void gather(const trainer *t, float *dst)
{
    invdl_params_gather(t->blocks, t->nblocks, dst);
}

/* One SGD step from the parameters in cur to next. */
static void sgd_step(const invdl_fit_options *o, size_t np, const float *cur, const double *grad,
                     double scale, float *velocity, float *next)
{
    invdl_train_loops_best()->sgd(np, cur, grad, scale, o->learning_rate, o->momentum,
                                  o->nesterov, velocity, next);
}

/* Step t (from 1) of Adam from cur to next, with its moments m and v. */
static void adam_step(const invdl_fit_options *o, size_t np, const float *cur, const double *grad,
                      double scale, size_t t, double *m, double *v, float *next)
{
    double b1 = (double)o->beta_1, b2 = (double)o->beta_2, eps = (double)o->epsilon;
    double lr_t = (double)o->learning_rate * sqrt(1.0 - pow(b2, (double)t)) /
                  (1.0 - pow(b1, (double)t));
    invdl_train_loops_best()->adam(np, cur, grad, scale, lr_t, b1, b2, eps, m, v, next);
}

/* A loss counts as finite when the float it is reported as is: a sum of
 * squares can overflow float while double still holds it. */
static int loss_is_finite(double loss)
{
    return fabs(loss) <= (double)FLT_MAX;
}

/* Mean loss of the model on all n samples (epochs == 0, divergence). */
static invdl_status evaluate(trainer *t, size_t n, const float *x, const float *y, double *loss)
{
    double sum = 0.0;
    float *buf = t->din;
    for (size_t start = 0; start < n; start += t->cap) {
        size_t b = n - start < t->cap ? n - start : t->cap, k = b * t->width;
        invdl_status fst = INVDL_OK;
        memcpy(buf, x + start * t->width, k * sizeof *buf);
        forward_begin(t, b);
        for (size_t l = 0; l < t->depth; l++)
            if (forward_layer(t, l, b, buf, buf) != INVDL_OK)
                fst = INVDL_EDOMAIN;
        sum += loss_of_batch(t, b, buf, y != NULL ? y + start * t->width : NULL, fst) * (double)b;
    }
    *loss = sum / (double)n;
    return INVDL_OK;
}

/* After a non-finite loss: the latest of the candidate parameter sets
 * whose loss over all the data is finite, else the first (the initial
 * parameters, when even those give a non-finite loss: NaN data). */
static void restore_finite(trainer *t, size_t n, const float *x, const float *y,
                           const float *const *candidates, size_t count)
{
    for (size_t i = count; i-- > 0;) {
        double loss;
        /* A candidate reached by steps without factorisation may be
         * singular: skipped. */
        if (invdl_params_assign_all(t->blocks, t->nblocks, candidates[i]) != INVDL_OK)
            continue;
        if (evaluate(t, n, x, y, &loss) == INVDL_OK && loss_is_finite(loss))
            return;
    }
    (void)invdl_params_assign_all(t->blocks, t->nblocks, candidates[0]);
}

/* ---- between epochs: validation, early stopping, schedules --------------
 * Keras' callbacks, as invdl.h (Training) states them; comparisons in
 * double on the float values an epoch reports. */

/* The rate of the call's step k (from 0) when the plateau rate is
 * `rate`: ExponentialDecay, or the rate itself. */
static float step_rate(const invdl_fit_options *o, float rate, size_t k)
{
    if (o->schedule != INVDL_SCHEDULE_EXPONENTIAL)
        return rate;
    double p = (double)k / (double)o->decay_steps;
    if (o->staircase)
        p = floor(p);
    return (float)((double)rate * pow((double)o->decay_rate, p));
}

/* The value a monitor watches after an epoch. */
static float monitored(const invdl_fit_options *o, invdl_monitor m, float loss, float val_loss)
{
    return m == INVDL_MONITOR_VAL_LOSS || (m == INVDL_MONITOR_AUTO && o->validation_n > 0)
               ? val_loss
               : loss;
}

/* EarlyStopping's state. */
typedef struct early_stop {
    double best;          /* +inf until an improvement */
    size_t best_epoch;    /* 0: none */
    size_t wait;
    int kept;             /* best_params holds an epoch's parameters */
    float *best_params;   /* [nparams] with restore_best_weights, else NULL */
} early_stop;

/* EarlyStopping.on_epoch_end after epoch e (from 1) whose monitored value
 * is v: whether training stops. */
static int early_stop_update(early_stop *es, const invdl_fit_options *o, const trainer *t,
                             size_t e, float v)
{
    if (es->best_params != NULL && !es->kept) {
        invdl_params_gather(t->blocks, t->nblocks, es->best_params);
        es->kept = 1;
        es->best_epoch = e;
    }
    es->wait++;
    if ((double)v + (double)o->early_stopping_min_delta < es->best) {
        es->best = (double)v;
        es->best_epoch = e;
        if (es->best_params != NULL)
            invdl_params_gather(t->blocks, t->nblocks, es->best_params);
        es->wait = 0;
        return 0;
    }
    return es->wait >= o->early_stopping_patience && e > 1;
}

/* ReduceLROnPlateau's state. */
typedef struct plateau {
    double best; /* +inf until an improvement */
    size_t wait, cooldown;
} plateau;

/* ReduceLROnPlateau.on_epoch_end on monitored value v: *rate lowered when
 * v has not improved for plateau_patience epochs. */
static void plateau_update(plateau *p, const invdl_fit_options *o, float v, float *rate)
{
    if (p->cooldown > 0) {
        p->cooldown--;
        p->wait = 0;
    }
    if ((double)v < p->best - (double)o->plateau_min_delta) {
        p->best = (double)v;
        p->wait = 0;
    } else if (p->cooldown == 0 && ++p->wait >= o->plateau_patience &&
               *rate > o->plateau_min_lr) {
        double lowered = (double)*rate * (double)o->plateau_factor;
        *rate = (float)(lowered > (double)o->plateau_min_lr ? lowered : (double)o->plateau_min_lr);
        p->cooldown = o->plateau_cooldown;
        p->wait = 0;
    }
}

invdl_status invdl_model_fit(invdl_model *model, size_t n, const float *x, const float *y,
                             const invdl_fit_options *options, float *final_loss)
{
    invdl_fit_options defaults = invdl_fit_defaults();
    const invdl_fit_options *o = options != NULL ? options : &defaults;
    size_t total;
    if (model == NULL || n == 0 || x == NULL || bad_targets(o, y) || bad_options(o) ||
        !invdl_mul_size(n, model->width, &total) || bad_validation(o, model->width) ||
        model->training)
        return INVDL_EINVAL;

    size_t cap = o->batch_size < n ? o->batch_size : n, w = model->width;
    trainer t;
    size_t *order = NULL;
    float *xb = NULL, *yb = NULL, *velocity = NULL, *initial = NULL, *good = NULL, *next = NULL;
    float *epoch_start = NULL;
    double *moments = NULL;
    int marked = 0;
    early_stop es = {(double)INFINITY, 0, 0, 0, NULL};
    plateau pl = {(double)INFINITY, 0, 0};
    invdl_status st = trainer_init(&t, model, o, cap);
    if (st != INVDL_OK)
        goto done;
    /* Another fit on a model sharing these blocks (from on_epoch) would
     * change them under this one: refused, and so is changing the model's
     * layers (invdl_model_add); a free is deferred. */
    st = INVDL_EINVAL;
    if (blocks_in_training(&t))
        goto done;
    mark_blocks(&t, 1);
    model->training = marked = 1;
    st = INVDL_ENOMEM;
    size_t np = t.nparams;
    order = invdl_alloc_array(n, sizeof *order);
    xb = invdl_alloc_array(t.chunk, sizeof *xb);
    yb = invdl_alloc_array(t.chunk, sizeof *yb);
    velocity = invdl_calloc_array(np, sizeof *velocity);
    initial = invdl_alloc_array(np, sizeof *initial);
    good = invdl_alloc_array(np, sizeof *good);
    next = invdl_alloc_array(np, sizeof *next);
    epoch_start = invdl_alloc_array(np, sizeof *epoch_start);
    if (order == NULL || xb == NULL || yb == NULL || velocity == NULL || initial == NULL ||
        good == NULL || next == NULL || epoch_start == NULL)
        goto done;
    if (o->optimizer == INVDL_OPTIMIZER_ADAM) {
        /* m then v, both starting at 0. */
        moments = invdl_calloc_array(np, 2 * sizeof *moments);
        if (moments == NULL)
            goto done;
    }
    if (o->restore_best_weights) {
        es.best_params = invdl_alloc_array(np, sizeof *es.best_params);
        if (es.best_params == NULL)
            goto done;
    }
    gather(&t, initial);
    memcpy(good, initial, np * sizeof *good);

    double epoch_loss = 0.0, val_loss = (double)NAN;
    size_t epoch = 0, steps = 0, stopped_epoch = 0;
    int complete_steps = factors_needed_each_step(model, o);
    /* The options with the rate of the step being taken (the schedules'). */
    invdl_fit_options run = *o;
    float plateau_rate = o->learning_rate;
    st = INVDL_OK;
    if (o->epochs == 0) {
        st = evaluate(&t, n, x, y, &epoch_loss);
        if (o->validation_n > 0)
            (void)evaluate(&t, o->validation_n, o->validation_x, o->validation_y, &val_loss);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    uint64_t rng = o->seed;
    for (epoch = 0; epoch < o->epochs && st == INVDL_OK; epoch++) {
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)invdl_rng_below(&rng, i);
            size_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        double sum = 0.0;
        gather(&t, epoch_start);
        for (size_t start = 0; start < n && st == INVDL_OK; start += cap) {
            size_t b = n - start < cap ? n - start : cap;
            for (size_t s = 0; s < b; s++) {
                memcpy(xb + s * w, x + order[start + s] * w, w * sizeof *xb);
                if (y != NULL)
                    memcpy(yb + s * w, y + order[start + s] * w, w * sizeof *yb);
            }
            double loss;
            invdl_status s = batch_gradient(&t, b, xb, y != NULL ? yb : NULL, &loss);
            if (s == INVDL_ENOMEM) {
                (void)invdl_params_assign_all(t.blocks, t.nblocks, initial);
                st = INVDL_ENOMEM;
                break;
            }
            run.learning_rate = step_rate(o, plateau_rate, steps);
            /* With learning rate 0 the gradient moves nothing: only the
             * loss can diverge. */
            if (!loss_is_finite(loss) ||
                (run.learning_rate > 0.0f && !all_finite_doubles(np, t.grad))) {
                /* The current parameters gave a non-finite loss or
                 * gradient: go back to parameters that give a finite loss
                 * on all the data. */
                epoch_loss = isnan(loss) || loss_is_finite(loss) ? (double)NAN
                                                                 : copysign((double)INFINITY, loss);
                st = INVDL_EDIVERGED;
                break;
            }
            gather(&t, good);
            double scale = 1.0;
            if (o->global_clipnorm > 0.0f) {
                double norm = 0.0;
                for (size_t i = 0; i < np; i++)
                    norm += t.grad[i] * t.grad[i];
                norm = sqrt(norm);
                if (norm > (double)o->global_clipnorm)
                    scale = (double)o->global_clipnorm / norm;
            }
            if (run.learning_rate == 0.0f)
                /* No step at all, whatever the optimizer: lr * g would be
                 * NaN for a g that overflowed float, and cur + 0 would
                 * turn -0 into +0. */
                memcpy(next, good, np * sizeof *next);
            else if (o->optimizer == INVDL_OPTIMIZER_ADAM)
                adam_step(&run, np, good, t.grad, scale, steps + 1, moments, moments + np, next);
            else
                sgd_step(&run, np, good, t.grad, scale, velocity, next);
            if (run.learning_rate != 0.0f)
                /* Projected steps; no step, nothing projected. */
                invdl_params_project_all(t.blocks, t.nblocks, next);
            invdl_status a = complete_steps
                                 ? invdl_params_assign_all(t.blocks, t.nblocks, next)
                                 : invdl_params_assign_all_partial(t.blocks, t.nblocks, next);
            if (a != INVDL_OK) {
                /* Non-finite values (divergence), or a singular W: nothing
                 * was assigned, the parameters are still those of this
                 * batch's finite loss. */
                epoch_loss = a == INVDL_EINVAL ? (double)NAN : loss;
                st = a == INVDL_EINVAL ? INVDL_EDIVERGED : a;
                break;
            }
            sum += loss * (double)b;
            steps++;
        }
        if (st == INVDL_EDIVERGED) {
            const float *const candidates[3] = {initial, epoch_start, good};
            restore_finite(&t, n, x, y, candidates, 3);
        }
        if (st != INVDL_OK)
            break;
        epoch_loss = sum / (double)n;
        if (!complete_steps && invdl_params_complete_all(t.blocks, t.nblocks) != INVDL_OK) {
            /* The epoch's steps made a W singular: back to its start,
             * whose factorisation succeeded at the end of the epoch
             * before (or when the model was built). */
            (void)invdl_params_assign_all(t.blocks, t.nblocks, epoch_start);
            st = INVDL_ESINGULAR;
            break;
        }
        if (o->validation_n > 0)
            (void)evaluate(&t, o->validation_n, o->validation_x, o->validation_y, &val_loss);
        invdl_epoch_info info = {epoch + 1, o->epochs, steps, (float)epoch_loss,
                                 (float)val_loss, run.learning_rate, 0.0f, 0, NAN, 0, 0};
        if (o->early_stopping) {
            float v = monitored(o, o->early_stopping_monitor, info.loss, info.val_loss);
            info.stopping = early_stop_update(&es, o, &t, epoch + 1, v);
            info.best_epoch = es.best_epoch;
            info.best = (float)es.best;
            info.wait = es.wait;
        }
        if (o->reduce_lr_on_plateau)
            plateau_update(&pl, o, monitored(o, o->plateau_monitor, info.loss, info.val_loss),
                           &plateau_rate);
        info.next_learning_rate = step_rate(o, plateau_rate, steps);
        int stop = info.stopping;
        if (o->on_epoch != NULL && o->on_epoch(o->user, epoch + 1, o->epochs, info.loss))
            stop = 1;
        /* A model freed from on_epoch is not shown to on_epoch_end. */
        if (o->on_epoch_end != NULL && !model->free_pending && o->on_epoch_end(o->user, &info))
            stop = 1;
        if (stop || model->free_pending) {
            if (info.stopping)
                stopped_epoch = epoch + 1;
            epoch++;
            break;
        }
    }
    /* restore_best_weights: whatever ended training after an epoch
     * completed, but a failed allocation (the model is then unchanged).
     * The kept parameters were complete at their epoch's end, so they
     * assign again. */
    int restored = 0;
    if (es.kept && st != INVDL_ENOMEM) {
        restored = invdl_params_assign_all(t.blocks, t.nblocks, es.best_params) == INVDL_OK;
    }
    if (final_loss != NULL && st != INVDL_ENOMEM)
        *final_loss = (float)epoch_loss;
    fill_report(&t, o->report, epoch, steps, (float)epoch_loss);
    if (o->report != NULL) {
        invdl_fit_report *r = o->report;
        r->val_loss = (float)val_loss;
        r->learning_rate = step_rate(o, plateau_rate, steps);
        r->best_epoch = es.best_epoch;
        r->best = o->early_stopping ? (float)es.best : NAN;
        r->stopped_epoch = stopped_epoch;
        r->restored = restored;
    }
done:
    if (marked) {
        mark_blocks(&t, 0);
        model->training = 0;
    }
    invdl_free(order);
    invdl_free(xb);
    invdl_free(yb);
    invdl_free(velocity);
    invdl_free(initial);
    invdl_free(good);
    invdl_free(next);
    invdl_free(epoch_start);
    invdl_free(moments);
    invdl_free(es.best_params);
    trainer_free(&t);
    if (marked && model->free_pending)
        invdl_model_free(model);
    return st;
}
