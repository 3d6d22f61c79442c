/*
 * prog.c - a program outside the library's tree, as a user writes one:
 * it includes <invdl.h>, links the installed (or subproject) library and
 * checks that a small model and its inverse model undo each other.
 * CI builds it with pkg-config and as a meson subproject
 * (tests/consumer/check.sh).
 */
#include <invdl.h>

#include <math.h>
#include <stdio.h>

int main(void)
{
    enum { W = 4, N = 16 };
    float x[N * W], y[N * W], back[N * W];
    for (int i = 0; i < N * W; i++)
        x[i] = (float)sin(0.37 * i);
    invdl_model *m = invdl_model_create(W);
    if (m == NULL || invdl_model_add(m, invdl_layer_dense(W, 1)) != INVDL_OK ||
        invdl_model_add(m, invdl_layer_mprelu(W, 2)) != INVDL_OK ||
        invdl_model_add(m, invdl_layer_abstanh(W)) != INVDL_OK) {
        fprintf(stderr, "building the model failed\n");
        return 1;
    }
    invdl_model *inv = invdl_model_inverse(m);
    invdl_status st = invdl_model_predict(m, N, x, y);
    if (st == INVDL_OK)
        st = invdl_model_predict(inv, N, y, back);
    if (st != INVDL_OK) {
        fprintf(stderr, "predict: %s\n", invdl_strerror(st));
        return 1;
    }
    /* A shallow model: the inverse recovers the inputs to about 1e-6. */
    int ok = invdl_delta_check(N * W, x, back, 1e-5f);
    printf("invdl %s (header %s): inverse model recovers the inputs: %s\n",
           invdl_version_string(), INVDL_VERSION_STRING, ok ? "yes" : "NO");
    invdl_model_free(inv);
    invdl_model_free(m);
    return ok && invdl_version_number() == INVDL_VERSION_NUMBER ? 0 : 1;
}
