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

static const invdl_elementwise ssin = {
    invdl_ssin_forward, invdl_ssin_inverse, ssin_prime, INVDL_SSIN_XMAX,
};

const invdl_layer_ops invdl_ssin_ops = {
    "ssin", INVDL_LAYER_SSIN, 0,
    invdl_elementwise_count, invdl_elementwise_valid, NULL, NULL, NULL,
    invdl_elementwise_apply, invdl_elementwise_backward, invdl_elementwise_log_det,
    invdl_elementwise_gain, &ssin,
};

invdl_layer *invdl_layer_ssin(size_t width)
{
    return width == 0 ? NULL : invdl_layer_create(&invdl_ssin_ops, width, NULL, NULL, NULL);
}
