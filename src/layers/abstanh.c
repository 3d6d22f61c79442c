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

static const invdl_elementwise abstanh = {
    invdl_abstanh_forward, invdl_abstanh_inverse, abstanh_prime, INFINITY,
};

const invdl_layer_ops invdl_abstanh_ops = {
    .name = "abstanh",
    .kind = INVDL_LAYER_ABSTANH,
    .count = invdl_elementwise_count,
    .valid = invdl_elementwise_valid,
    .apply = invdl_elementwise_apply,
    .backward = invdl_elementwise_backward,
    .log_det = invdl_elementwise_log_det,
    .gain = invdl_elementwise_gain,
    .data = &abstanh,
};

invdl_layer *invdl_layer_abstanh(size_t width)
{
    return invdl_layer_create(&invdl_abstanh_ops, width, NULL, NULL, NULL);
}
