/*
 * ssin.c - the signed sin layer, y = x*sin|x|, over its kernels.
 */
#include "layer.h"

#include <math.h>

/* f'(x) = sin|x| + |x| cos|x|: even, 0 at x = 0 and at |x| = T. */
static double ssin_prime(double x)
{
    double a = fabs(x);
    return sin(a) + a * cos(a);
}

/* f''(x) = sign(x) (2 cos|x| - |x| sin|x|), so
 * d/dx log|f'(x)| = sign(x) (2 cos a - a sin a) / (sin a + a cos a), a = |x|:
 * about 1/x near 0, unbounded at x = 0 and at |x| = T. */
static double ssin_dlog_prime(double x)
{
    double a = fabs(x);
    double r = (2.0 * cos(a) - a * sin(a)) / (sin(a) + a * cos(a));
    return signbit(x) ? -r : r;
}

static const invdl_elementwise ssin = {
    invdl_ssin_forward, invdl_ssin_inverse, ssin_prime, ssin_dlog_prime, INVDL_SSIN_XMAX,
};

const invdl_layer_ops invdl_ssin_ops = {
    .name = "ssin",
    .kind = INVDL_LAYER_SSIN,
    .count = invdl_elementwise_count,
    .valid = invdl_elementwise_valid,
    .apply = invdl_elementwise_apply,
    .backward = invdl_elementwise_backward,
    .log_det = invdl_elementwise_log_det,
    .log_det_grad = invdl_elementwise_log_det_grad,
    .gain = invdl_elementwise_gain,
    .data = &ssin,
};

invdl_layer *invdl_layer_ssin(size_t width)
{
    return invdl_layer_create(&invdl_ssin_ops, width, NULL, NULL, NULL);
}
