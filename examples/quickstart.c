/* quickstart.c - a normalizing flow in 2-D: build, train, sample, invert. */
#include <invdl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 2000 };

int main(void)
{
    static float x[N][2], s[5][2], z[2], back[2];
    srand(1); /* the data: a ring, radius 1.3 to 1.7, angle and radius uniform */
    for (int i = 0; i < N; i++) {
        double t = 6.2831853 * rand() / RAND_MAX, r = 1.3 + 0.4 * rand() / RAND_MAX;
        x[i][0] = (float)(r * cos(t)), x[i][1] = (float)(r * sin(t));
    }
    invdl_model *flow = invdl_model_create(2); /* dense_lu, then 4 x (abs-tanh, dense_lu) */
    invdl_status st = invdl_model_add(flow, invdl_layer_dense_lu(2, 1));
    for (int b = 0; b < 4 && st == INVDL_OK; b++)
        if ((st = invdl_model_add(flow, invdl_layer_abstanh(2))) == INVDL_OK)
            st = invdl_model_add(flow, invdl_layer_dense_lu(2, 2 + (uint64_t)b));
    invdl_fit_options o = invdl_fit_defaults_adam(); /* maximum likelihood */
    o.loss = INVDL_LOSS_NLL, o.epochs = 100, o.batch_size = 128, o.global_clipnorm = 5;
    float nll = INFINITY; /* nats per sample: the best Gaussian scores 2.96 here */
    if (st == INVDL_OK && (st = invdl_model_fit(flow, N, &x[0][0], NULL, &o, &nll)) == INVDL_OK)
        st = invdl_model_sample(flow, 5, 42, &s[0][0]); /* 5 new points */
    invdl_model *inv = invdl_model_inverse(flow); /* shares every parameter */
    if (st == INVDL_OK && (st = invdl_model_predict(flow, 1, s[0], z)) == INVDL_OK)
        st = invdl_model_predict(inv, 1, z, back); /* x -> z -> x again */
    printf("NLL %.3f nats per sample (%s)\n", (double)nll, invdl_strerror(st));
    for (int i = 0; i < 5; i++)
        printf("sample %d: (%+.3f, %+.3f)\n", i, (double)s[i][0], (double)s[i][1]);
    printf("round trip: (%+.7f, %+.7f) -> z -> (%+.7f, %+.7f)\n", (double)s[0][0],
           (double)s[0][1], (double)back[0], (double)back[1]);
    int ok = st == INVDL_OK && nll < 2.2f && fabsf(back[0] - s[0][0]) < 1e-5f
             && fabsf(back[1] - s[0][1]) < 1e-5f;
    invdl_model_free(inv), invdl_model_free(flow);
    return ok ? 0 : 1;
}
