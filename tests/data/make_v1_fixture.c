/*
 * make_v1_fixture.c - wrote tests/data/v1-model.invdl, a model file of
 * format version 1 as invdl 0.1.0 saved it before the dense_lu kind and
 * width-dependent settings existed (built from that version's sources):
 *     cc -std=c11 -Iinclude tests/data/make_v1_fixture.c libinvdl.a -lm
 *     ./a.out tests/data/v1-model.invdl
 * test_io loads the committed file and compares it with the same model
 * built by today's constructors (make_v1_model() there mirrors this one).
 */
#include <stdio.h>

#include "invdl.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT\n", argv[0]);
        return 2;
    }
    enum { W = 4 };
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d = invdl_layer_dense(W, 1);
    float p[W * W + W];
    int ok = m != NULL && d != NULL && invdl_layer_get_params(d, W * W + W, p) == INVDL_OK;
    for (int i = 0; i < W; i++)
        p[W * W + i] = 0.125f * (float)(i + 1) - 0.25f; /* b = -0.125, 0, 0.125, 0.25 */
    ok = ok && invdl_layer_set_params(d, W * W + W, p) == INVDL_OK;
    ok = ok && invdl_model_add(m, d) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_mprelu_min(W, 2, 0.125f)) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_abstanh(W)) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_ssin(W)) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_dense(W, 3)) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_inverse(invdl_model_layer(m, 1))) == INVDL_OK;
    ok = ok && invdl_model_add(m, invdl_layer_mprelu(W, 4)) == INVDL_OK;
    ok = ok && invdl_model_save(m, argv[1]) == INVDL_OK;
    invdl_model_free(m);
    if (!ok)
        fprintf(stderr, "could not write %s\n", argv[1]);
    return ok ? 0 : 1;
}
