/* first_model.c - layers, a model, its linked inverse, a round trip, a file. */
#include <invdl.h>
#include <stdio.h>
#include <string.h>

static void show(const char *name, const float *v)
{
    printf("%s [%+.4f %+.4f %+.4f %+.4f]", name, (double)v[0], (double)v[1], (double)v[2],
           (double)v[3]);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "first-model.invdl";
    float x[3][4] = {{0.5f, -1, 2, -0.25f}, {1, 1, -1, -1}, {-2, 0.1f, 0, 3}};
    float y[3][4], back[3][4], again[3][4];
    invdl_model *m = invdl_model_create(4), *inv = NULL, *loaded = NULL;
    invdl_status st = invdl_model_add(m, invdl_layer_dense_lu(4, 7)); /* y = P L U x + b */
    if (st == INVDL_OK)
        st = invdl_model_add(m, invdl_layer_mprelu(4, 8)); /* one slope per feature */
    if (st == INVDL_OK)
        st = invdl_model_add(m, invdl_layer_abstanh(4)); /* |x| tanh x */
    if (st == INVDL_OK && (inv = invdl_model_inverse(m)) == NULL) /* shares the parameters */
        st = INVDL_ENOMEM;
    if (st == INVDL_OK && (st = invdl_model_predict(m, 3, x[0], y[0])) == INVDL_OK)
        st = invdl_model_predict(inv, 3, y[0], back[0]);
    invdl_roundtrip r = {0};
    if (st == INVDL_OK)
        st = invdl_model_roundtrip(m, 3, x[0], NULL, &r);
    if (st == INVDL_OK && (st = invdl_model_save(m, path)) == INVDL_OK &&
        (loaded = invdl_model_load(path, &st)) != NULL)
        st = invdl_model_predict(loaded, 3, x[0], again[0]);
    printf("%zu layers, %zu parameters: %s\n", invdl_model_depth(m), invdl_model_param_count(m),
           invdl_strerror(st));
    for (int i = 0; i < 3; i++)
        show("x", x[i]), show("  y = f(x)", y[i]), show("  g(y)", back[i]), printf("\n");
    printf("forward error %.2g, backward error %.2g\n", (double)r.forward_error,
           (double)r.backward_error);
    int same = loaded != NULL && memcmp(y, again, sizeof y) == 0;
    printf("%s, loaded back: %s\n", path, same ? "the same outputs, bit for bit" : "DIFFERENT");
    invdl_model_free(loaded), invdl_model_free(inv), invdl_model_free(m);
    return st == INVDL_OK && same && r.forward_error < 1e-5f && r.backward_error < 1e-6f ? 0 : 1;
}
