/*
 * roundtrip.c - the notebook's demonstrations, cell by cell, on invdl.
 *
 * For each cell: the same input arrays, the notebook's own formula (in
 * double, as numpy computed it), invdl's forward and inverse (in float), and
 * the largest round-trip error.  Where the notebook is wrong the program
 * shows why.
 *
 *     meson compile -C build demo
 */
#include <invdl.h>

#include <math.h>
#include <stdio.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void print_doubles(const char *label, const double *v, size_t n)
{
    printf("  %-34s [", label);
    for (size_t i = 0; i < n; i++) {
        if (i)
            printf(" ");
        if (isnan(v[i]))
            printf("nan");
        else
            printf("%.8f", v[i]);
    }
    printf("]\n");
}

/* Floats carry 7 significant digits; %.7g shows them without noise. */
static void print_floats(const char *label, const float *v, size_t n)
{
    printf("  %-34s [", label);
    for (size_t i = 0; i < n; i++)
        printf(i ? " %.7g" : "%.7g", (double)v[i]);
    printf("]\n");
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > m || d != d)
            m = d;
    }
    return m;
}

static void signed_sin_cell(void)
{
    const float data[] = {-4, -3, -2, -1, 0, 1, 2, 3, 4};
    enum { N = COUNT(data) };
    double nb[N], nb_inv[N];
    float y[N], back[N];

    printf("Signed sin, notebook cell 1: data = [-4 -3 -2 -1 0 1 2 3 4]\n");
    for (size_t i = 0; i < N; i++) {
        double x = (double)data[i];
        double s = (x > 0) - (x < 0);
        nb[i] = x * sin(fabs(x)) * s;
        double ns = (nb[i] > 0) - (nb[i] < 0);
        nb_inv[i] = asin(nb[i] / x) * ns; /* the notebook divides by x */
    }
    print_doubles("notebook x*sin|x|*sign(x):", nb, N);
    print_doubles("notebook arcsin(y/x)*sign(y):", nb_inv, N);
    printf("  The notebook's formula is |x|*sin|x|, an even function: f(-1) = %.8f ="
           " f(1) = %.8f,\n  so no inverse can tell -1 from 1; its 'inverse' also needs x"
           " itself and gives nan at 0.\n",
           nb[3], nb[5]);

    invdl_status st = invdl_ssin_forward(N, data, y);
    print_floats("invdl y = x*sin|x| (odd):", y, N);
    printf("  forward status: %s\n", invdl_strerror(st));
    printf("  outside the invertible branch |x| <= %.7g:", (double)INVDL_SSIN_XMAX);
    for (size_t i = 0; i < N; i++)
        if (fabsf(data[i]) > INVDL_SSIN_XMAX)
            printf(" %g", (double)data[i]);
    printf("\n");

    st = invdl_ssin_inverse(N, y, back);
    print_floats("invdl inverse(y):", back, N);
    float worst = 0.0f, worst_x = 0.0f;
    for (size_t i = 0; i < N; i++) {
        if (fabsf(data[i]) <= INVDL_SSIN_XMAX && fabsf(data[i] - back[i]) > worst) {
            worst = fabsf(data[i] - back[i]);
            worst_x = fabsf(data[i]);
        }
    }
    printf("  inverse status: %s (the y of -4 and 4)\n", invdl_strerror(st));
    printf("  max |inverse(forward(x)) - x| on the branch: %g, at |x| = %g, where the forward\n"
           "  compresses (f'(2) = sin 2 + 2 cos 2 = 0.077: about 6 floats x share each float y)\n",
           (double)worst, (double)worst_x);
    printf("  off the branch: 3 -> y = %.7g comes back as %.7g, the branch's x with that y;\n"
           "  -4 -> y = %.7g has no preimage on the branch (|y| > %.7g): nan\n\n",
           (double)y[7], (double)back[7], (double)y[0], (double)INVDL_SSIN_YMAX);
}

static void abs_tanh_cells(void)
{
    const float data1[] = {1, 2, 3, 4};
    enum { N1 = COUNT(data1) };
    double nb1[N1];
    float y1[N1], back1[N1];

    printf("Abs-tanh, notebook cell 2: data = [1 2 3 4]\n");
    for (size_t i = 0; i < N1; i++)
        nb1[i] = (double)data1[i] * tanh((double)data1[i]);
    print_doubles("notebook x*tanh(x):", nb1, N1);
    if (invdl_abstanh_forward(N1, data1, y1) != INVDL_OK ||
        invdl_abstanh_inverse(N1, y1, back1) != INVDL_OK) {
        printf("  unexpected error\n");
        return;
    }
    print_floats("invdl y = |x|*tanh(x):", y1, N1);
    print_floats("invdl inverse(y), from y alone:", back1, N1);
    printf("  max |inverse(forward(x)) - x|: %g\n\n", (double)max_abs_diff(data1, back1, N1));

    const float data2[] = {-1, -0.5f, 0, 0.5f, 1, 2, 3, 4};
    enum { N2 = COUNT(data2) };
    double nb2[N2], nb2_inv[N2];
    float y2[N2], back2[N2];
    printf("Abs-tanh, notebook cell 3: data = [-1 -0.5 0 0.5 1 2 3 4]\n");
    for (size_t i = 0; i < N2; i++) {
        double x = (double)data2[i];
        nb2[i] = fabs(x) * tanh(x);
        nb2_inv[i] = atanh(fabs(nb2[i]) / fabs(x)) * ((x > 0) - (x < 0));
    }
    print_doubles("notebook |x|*tanh(x):", nb2, N2);
    print_doubles("notebook arctanh(|y|/|x|)*sign(x):", nb2_inv, N2);
    if (invdl_abstanh_forward(N2, data2, y2) != INVDL_OK ||
        invdl_abstanh_inverse(N2, y2, back2) != INVDL_OK) {
        printf("  unexpected error\n");
        return;
    }
    print_floats("invdl y = |x|*tanh(x):", y2, N2);
    print_floats("invdl inverse(y), no nan at 0:", back2, N2);
    printf("  max |inverse(forward(x)) - x|: %g\n\n", (double)max_abs_diff(data2, back2, N2));
}

/* The notebook's create_model: a model of one layer. */
static invdl_model *create_model(size_t width, invdl_layer *layer)
{
    invdl_model *m = invdl_model_create(width);
    if (m != NULL && invdl_model_add(m, layer) != INVDL_OK) {
        invdl_model_free(m);
        return NULL;
    }
    if (m == NULL)
        invdl_layer_free(layer);
    return m;
}

static void prelu_cell(void)
{
    enum { WIDTH = 3 };
    const float data[WIDTH] = {-1, 0, 1};
    float alpha[WIDTH], forward[WIDTH], inverted[WIDTH];

    printf("Monotonic PReLU, notebook cell 4: data = [[-1 0 1]]\n");
    /* MonotonicPReLU and InvertedMonotonicPReLU: the inverted layer reads
     * the forward layer's alpha, it does not copy it. */
    invdl_layer *forward_layer = invdl_layer_mprelu(WIDTH, 42);
    invdl_layer *inverted_layer = invdl_layer_inverse(forward_layer);
    if (forward_layer == NULL || inverted_layer == NULL ||
        invdl_layer_get_params(forward_layer, WIDTH, alpha) != INVDL_OK) {
        printf("  unexpected error\n");
        invdl_layer_free(forward_layer);
        invdl_layer_free(inverted_layer);
        return;
    }
    invdl_model *forward_prelu = create_model(WIDTH, forward_layer);
    invdl_model *inverted_prelu = create_model(WIDTH, inverted_layer);
    print_floats("alpha (glorot uniform, seed 42):", alpha, WIDTH);
    if (forward_prelu == NULL || inverted_prelu == NULL ||
        invdl_model_predict(forward_prelu, 1, data, forward) != INVDL_OK ||
        invdl_model_predict(inverted_prelu, 1, forward, inverted) != INVDL_OK) {
        printf("  unexpected error\n");
    } else {
        print_floats("forward_prelu.predict(data):", forward, WIDTH);
        print_floats("inverted_prelu.predict(forward):", inverted, WIDTH);
        printf("  delta_check(data, inverted): %s (max delta %g)\n",
               invdl_delta_check(WIDTH, data, inverted, 1e-2f) ? "True" : "False",
               (double)max_abs_diff(data, inverted, WIDTH));
    }
    invdl_model_free(forward_prelu);
    invdl_model_free(inverted_prelu);
}

int main(void)
{
    printf("invdl %s: the notebook's round trips\n\n", invdl_version_string());
    signed_sin_cell();
    abs_tanh_cells();
    prelu_cell();
    return 0;
}
