/*
 * abstanh.c - the abs-tanh layer, y = |x|*tanh(x), over its kernels.
 */
#include "layer.h"

#include <math.h>

/* f'(x) = |tanh x| + |x| sech^2 x: even, 0 only at x = 0.  sech is taken
 * as 1/cosh rather than from 1 - tanh^2, which cancels for large |x|. */
static double abstanh_prime(double x)
{
    double a = fabs(x);
    double sech = 1.0 / cosh(a);
    return tanh(a) + a * sech * sech;
}

/* f''(x) = sign(x) 2 sech^2 a (1 - a tanh a), a = |x|, so
 * d/dx log|f'(x)| = sign(x) 2 sech^2 a (1 - a tanh a) / (tanh a + a sech^2 a):
 * about 1/x near 0, about -8 x e^(-2a) for large |x|. */
static double abstanh_dlog_prime(double x)
{
    double a = fabs(x);
    double sech = 1.0 / cosh(a), s2 = sech * sech;
    double r = 2.0 * s2 * (1.0 - a * tanh(a)) / (tanh(a) + a * s2);
    return signbit(x) ? -r : r;
}

static const invdl_elementwise abstanh = {
    invdl_abstanh_forward, invdl_abstanh_inverse, abstanh_prime, abstanh_dlog_prime, INFINITY,
};

const invdl_layer_ops invdl_abstanh_ops = {
    .name = "abstanh",
    .kind = INVDL_LAYER_ABSTANH,
    .count = invdl_elementwise_count,
    .valid = invdl_elementwise_valid,
    .apply = invdl_elementwise_apply,
    .backward = invdl_elementwise_backward,
    .log_det = invdl_elementwise_log_det,
    .log_det_grad = invdl_elementwise_log_det_grad,
    .gain = invdl_elementwise_gain,
    .data = &abstanh,
};

invdl_layer *invdl_layer_abstanh(size_t width)
{
    return invdl_layer_create(&invdl_abstanh_ops, width, NULL, NULL, NULL);
}
