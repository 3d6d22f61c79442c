/*
 * mprelu.c - the monotonic PReLU layer: one alpha per feature, slope
 * a = max(|alpha|, alpha_min) for negative inputs.
 *
 * The slope is the same function of alpha in forward, inverse and
 * gradient: da/dalpha = sign(alpha) where |alpha| >= alpha_min, 0 strictly
 * inside the floor (flat there).  At the edge |alpha| == alpha_min the
 * derivative is the outside one-sided one: training projects alphas that
 * fall into the floor onto its edge (mprelu_project), and from there the
 * gradient must be able to move them back out.
 */
#include "kernels/train_loops.h"
#include "layer.h"
#include "rng.h"

#include <math.h>
#include <string.h>

static size_t mprelu_count(size_t width, const float *settings)
{
    (void)settings;
    return width;
}

static int mprelu_valid(size_t width, const float *settings, const float *values)
{
    float amin = settings[0];
    if (!(amin > 0.0f) || !isfinite(amin))
        return 0;
    for (size_t j = 0; j < width; j++)
        if (!isfinite(values[j]))
            return 0;
    return 1;
}

static void mprelu_project(const invdl_params *p, float *values)
{
    invdl_project_floor(p->width, p->settings[0], values);
}

static invdl_status mprelu_apply(const invdl_params *p, int inverse, size_t batch,
                                 const float *in, float *out, double *scratch)
{
    (void)scratch;
    if (inverse)
        return invdl_mprelu_inverse(batch, p->width, p->values, p->settings[0], in, out);
    return invdl_mprelu_forward(batch, p->width, p->values, p->settings[0], in, out);
}

/* scratch[0..width) = slopes a, scratch[width..2 width) = da/dalpha,
 * scratch[2 width..3 width) = the negative branch's dout/din factor (a
 * forward, 1/a inverse), scratch[3 width..4 width) = a*a. */
static void mprelu_slopes(const invdl_params *p, int inverse, double *scratch)
{
    double amin = (double)p->settings[0];
    for (size_t j = 0; j < p->width; j++) {
        double alpha = (double)p->values[j], m = fabs(alpha);
        double a = m > amin ? m : amin;
        scratch[j] = a;
        scratch[p->width + j] = m >= amin ? (alpha < 0 ? -1.0 : 1.0) : 0.0;
        scratch[2 * p->width + j] = inverse ? 1.0 / a : a;
        scratch[3 * p->width + j] = a * a;
    }
}

/* a if take, else b: a select on bits, which compilers keep free of the
 * jump a ?: becomes (the signs it depends on are data, a jump mispredicts
 * half the time). */
static inline double select_double(int take, double a, double b)
{
    uint64_t x, y, mask = (uint64_t)0 - (uint64_t)(take != 0);
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    x = (x & mask) | (y & ~mask);
    memcpy(&a, &x, sizeof a);
    return a;
}

static void mprelu_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                            const float *out, const float *dout, float *din, double *dparams,
                            double *scratch)
{
    size_t width = p->width;
    const double *da = scratch + width, *slope = scratch + 2 * width, *aa = scratch + 3 * width;
    mprelu_slopes(p, inverse, scratch);
    /* The branch is read from the output, which memory-saving backprop is
     * given (it rebuilds the input from it): where a*x or y/a underflows to
     * -0 the input's sign is lost, and both modes then agree on the
     * identity branch.  The identity branch's factor 1 gives dout
     * exactly.  Forward: y = a x, dy/da = x.  Inverse: x = y / a,
     * dx/da = -y / a^2. */
    invdl_train_loops_best()->mprelu_backward(batch, width, inverse, in, out, dout, din, dparams,
                                              da, aa, slope);
}

static invdl_status mprelu_log_det(const invdl_params *p, size_t batch, const float *x,
                                   double *acc, double *scratch)
{
    (void)scratch;
    double amin = (double)p->settings[0];
    size_t width = p->width;
    for (size_t s = 0; s < batch; s++) {
        double sum = 0.0;
        for (size_t j = 0; j < width; j++) {
            if (x[s * width + j] < 0.0f) {
                double m = fabs((double)p->values[j]);
                sum += log(m > amin ? m : amin);
            }
        }
        acc[s] += sum;
    }
    return INVDL_OK;
}

/* log|det f'(x)| = sum over x_j < 0 of log a_j: d/dalpha_j = da/dalpha / a
 * per negative input, and nothing for x (the hinge, where the log-det
 * jumps, has no gradient term). */
static int mprelu_log_det_grad(const invdl_params *p, size_t batch, const float *x, double scale,
                               float *dx, double *dparams, double *scratch)
{
    size_t width = p->width;
    (void)dx;
    if (dparams == NULL)
        return 0;
    const double *a = scratch, *da = scratch + width;
    mprelu_slopes(p, 0, scratch);
    for (size_t j = 0; j < width; j++) {
        size_t negative = 0;
        for (size_t s = 0; s < batch; s++)
            negative += x[s * width + j] < 0.0f;
        dparams[j] += scale * (double)negative * da[j] / a[j];
    }
    return 0;
}

static double mprelu_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                          const float *out)
{
    double amin = (double)p->settings[0];
    size_t width = p->width;
    double worst = 0.0;
    /* Samples in groups of 32, column by column, so that each column's
     * slope is worked out once per group. */
    for (size_t s0 = 0; s0 < batch; s0 += 32) {
        size_t cnt = batch - s0 < 32 ? batch - s0 : 32;
        double slope[32];
        for (size_t s = 0; s < cnt; s++)
            slope[s] = 1.0;
        for (size_t j = 0; j < width; j++) {
            double m = fabs((double)p->values[j]);
            double a = m > amin ? m : amin;
            /* Rebuilding f's input divides by a; rebuilding g's input
             * multiplies by it. */
            double d = inverse ? a : 1.0 / a;
            for (size_t s = 0; s < cnt; s++) {
                double cand = select_double(out[(s0 + s) * width + j] < 0.0f, d, 1.0);
                slope[s] = cand > slope[s] ? cand : slope[s];
            }
        }
        for (size_t s = 0; s < cnt; s++)
            worst = invdl_gain_update(worst, slope[s], width, in + (s0 + s) * width,
                                      out + (s0 + s) * width);
    }
    return worst;
}

const invdl_layer_ops invdl_mprelu_ops = {
    .name = "mprelu",
    .kind = INVDL_LAYER_MPRELU,
    .nsettings = 1,
    .count = mprelu_count,
    .valid = mprelu_valid,
    .project = mprelu_project,
    .apply = mprelu_apply,
    .backward = mprelu_backward,
    .log_det = mprelu_log_det,
    .log_det_grad = mprelu_log_det_grad,
    .gain = mprelu_gain,
};

invdl_layer *invdl_layer_mprelu_min(size_t width, uint64_t seed, float alpha_min)
{
    if (invdl_bad_width(width) || !(alpha_min > 0.0f) || !isfinite(alpha_min))
        return NULL;
    float *alpha = invdl_alloc_array(width, sizeof *alpha);
    if (alpha == NULL)
        return NULL;
    /* glorot_uniform for a 1-D shape [width]: fan_in = fan_out = width,
     * limit = sqrt(6 / (fan_in + fan_out)) = sqrt(3 / width). */
    double limit = sqrt(3.0 / (double)width);
    uint64_t state = seed;
    for (size_t j = 0; j < width; j++)
        alpha[j] = (float)(limit * (2.0 * invdl_rng_uniform(&state) - 1.0));
    const float settings[1] = {alpha_min};
    return invdl_layer_create(&invdl_mprelu_ops, width, settings, alpha, NULL);
}

invdl_layer *invdl_layer_mprelu(size_t width, uint64_t seed)
{
    return invdl_layer_mprelu_min(width, seed, INVDL_MPRELU_ALPHA_MIN);
}
