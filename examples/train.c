/*
 * train.c - train an invertible network with SGD on mean squared error,
 * then run it backwards.
 *
 * The task: learn a hidden invertible "teacher" network from 1024 samples.
 * The student has the teacher's shape (dense, PReLU, abs-tanh, dense),
 * starts from other random parameters and is trained like a Keras model.
 * Then the student's inverse model, built from the trained layers and never
 * trained itself, turns outputs back into inputs.  The loss curve is
 * written as an SVG, and the amplification report says how much the
 * inverse stretches the fit's error, layer by layer.
 *
 *     meson compile -C build train          (writes build/examples/train-loss.svg)
 *     build/examples/train-net [loss.svg]
 */
#include <invdl.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "svg.h"

enum { WIDTH = 4, SAMPLES = 1024, EPOCHS = 60, BAR = 30 };

static invdl_model *network(uint64_t seed)
{
    invdl_model *m = invdl_model_create(WIDTH);
    if (m == NULL ||
        invdl_model_add(m, invdl_layer_dense(WIDTH, seed)) != INVDL_OK ||
        invdl_model_add(m, invdl_layer_mprelu(WIDTH, seed + 1)) != INVDL_OK ||
        invdl_model_add(m, invdl_layer_abstanh(WIDTH)) != INVDL_OK ||
        invdl_model_add(m, invdl_layer_dense(WIDTH, seed + 2)) != INVDL_OK) {
        invdl_model_free(m);
        return NULL;
    }
    return m;
}

typedef struct history {
    float loss[EPOCHS];
    size_t epochs;
} history;

/* One line per epoch: a bar of the whole run and the epoch's loss. */
static int progress(void *user, size_t epoch, size_t epochs, float loss)
{
    history *h = user;
    h->loss[h->epochs++] = loss;
    int done = (int)(BAR * epoch / epochs);
    printf("Epoch %3zu/%zu [", epoch, epochs);
    for (int i = 0; i < BAR; i++)
        putchar(i < done ? '=' : (i == done ? '>' : '.'));
    printf("] loss: %.6f\n", (double)loss);
    return 0;
}

static void write_curve(const char *path, const history *h)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return;
    }
    double x[EPOCHS], y[EPOCHS], lo = 0, hi = 0;
    for (size_t i = 0; i < h->epochs; i++) {
        x[i] = (double)(i + 1);
        y[i] = (double)h->loss[i];
        double l = log10(y[i]);
        lo = i == 0 || l < lo ? l : lo;
        hi = i == 0 || l > hi ? l : hi;
    }
    svg_begin(f, 640, 440, "Training an invertible network: SGD on mean squared error");
    svg_panel p = svg_panel_begin(f, 80, 60, 520, 320, 0, EPOCHS, 10, floor(lo), ceil(hi), 1, 1,
                                  "mean loss per epoch", "epoch", "loss (log scale)");
    svg_line(&p, h->epochs, x, y, "#1f77b4", NULL, "training loss");
    svg_end(f);
    if (fclose(f) == 0)
        printf("wrote the loss curve to %s\n", path);
}

static double max_gap(size_t n, const float *a, const float *b)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static double max_abs(size_t n, const float *a)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i]));
    return m;
}

/* Why an inverse is off: each layer's gain (how much undoing it stretches
 * a relative error) and their product, the bound on the whole inverse's
 * amplification.  Recovery error is about fit error times that. */
static void report_amplification(invdl_model *m, const float *x, double fit_error,
                                 double recovery_error)
{
    double gain[8], total;
    size_t depth = invdl_model_depth(m);
    invdl_status st = invdl_model_amplification(m, SAMPLES, x, gain, NULL, &total);
    if (depth > 8 || (st != INVDL_OK && st != INVDL_EDOMAIN)) {
        fprintf(stderr, "amplification report failed: %s\n", invdl_strerror(st));
        return;
    }
    printf("\nHow much the inverse amplifies a relative error in y (worst of %d samples):\n",
           SAMPLES);
    for (size_t l = 0; l < depth; l++)
        printf("  layer %zu %-8s gain %8.3g\n", l, invdl_layer_name(invdl_model_layer(m, l)),
               gain[l]);
    printf("  whole inverse: at most %.3g\n", total);
    printf("  relative fit error max|f(x) - y| / max|y| = %.3g; recovery error\n"
           "  max|g(y) - x| / max|x| = %.3g (first order: at most fit error x amplification)\n",
           fit_error, recovery_error);
    printf("  A layer with a large gain compresses: a PReLU slope at alpha_min (raise it:\n"
           "  invdl_layer_mprelu_min), an ill-conditioned dense W (dense_lu bounds its\n"
           "  pivots), abs-tanh or signed sin near 0 (keep smooth layers next to the data).\n");
}

int main(int argc, char **argv)
{
    const char *svg = argc > 1 ? argv[1] : "train-loss.svg";
    static float x[SAMPLES * WIDTH], y[SAMPLES * WIDTH], pred[SAMPLES * WIDTH];
    static float back[SAMPLES * WIDTH];
    uint64_t s = 2024;
    for (size_t i = 0; i < SAMPLES * WIDTH; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x[i] = (float)((double)(s >> 11) * 0x1p-53 * 4.0 - 2.0);
    }
    invdl_model *teacher = network(100), *student = network(7);
    if (teacher == NULL || student == NULL ||
        invdl_model_predict(teacher, SAMPLES, x, y) != INVDL_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }

    history h = {{0}, 0};
    invdl_fit_options o = invdl_fit_defaults();
    o.epochs = EPOCHS;
    o.learning_rate = 0.05f;
    o.momentum = 0.9f;
    o.seed = 1;
    o.on_epoch = progress;
    o.user = &h;
    printf("Learning a hidden %d-feature invertible network from %d samples\n", WIDTH, SAMPLES);
    printf("(dense, PReLU, abs-tanh, dense; SGD lr %.2f momentum %.1f batch %zu)\n",
           (double)o.learning_rate, (double)o.momentum, o.batch_size);
    float loss;
    invdl_status st = invdl_model_fit(student, SAMPLES, x, y, &o, &loss);
    if (st != INVDL_OK) {
        fprintf(stderr, "training failed: %s\n", invdl_strerror(st));
        if (st == INVDL_ESINGULAR)
            fprintf(stderr, "a dense layer's W became singular: try a smaller learning rate\n"
                            "(or a schedule), global_clipnorm, or dense_lu layers\n");
        return 1;
    }
    write_curve(svg, &h);

    /* The inverse model is built from the trained layers, never trained. */
    invdl_model *inverse = invdl_model_inverse(student);
    if (inverse == NULL || invdl_model_predict(student, SAMPLES, x, pred) != INVDL_OK ||
        invdl_model_predict(inverse, SAMPLES, pred, back) != INVDL_OK) {
        fprintf(stderr, "inverse failed\n");
        return 1;
    }
    printf("\nThe student's inverse model (%zu layers, sharing the trained parameters):\n",
           invdl_model_depth(inverse));
    printf("  inputs recovered from the student's outputs: max |g(f(x)) - x| = %.3g\n",
           max_gap(SAMPLES * WIDTH, back, x));
    if (invdl_model_predict(inverse, SAMPLES, y, back) != INVDL_OK)
        return 1;
    printf("  inputs recovered from the teacher's outputs: max |g(y) - x| = %.3g\n"
           "  (the student only approximates the teacher: final loss %.3g)\n",
           max_gap(SAMPLES * WIDTH, back, x), (double)loss);
    printf("  first sample: x = [%.4f %.4f %.4f %.4f]\n", (double)x[0], (double)x[1],
           (double)x[2], (double)x[3]);
    if (invdl_model_predict(inverse, 1, pred, back) == INVDL_OK)
        printf("           g(f(x)) = [%.4f %.4f %.4f %.4f]\n", (double)back[0], (double)back[1],
               (double)back[2], (double)back[3]);
    invdl_roundtrip r;
    if (invdl_model_roundtrip(student, SAMPLES, x, NULL, &r) == INVDL_OK)
        printf("  round-trip check: forward error %.3g, backward error %.3g (of max|x|, max|y|)\n",
               (double)r.forward_error, (double)r.backward_error);
    if (invdl_model_predict(inverse, SAMPLES, y, back) == INVDL_OK)
        report_amplification(student, x,
                             max_gap(SAMPLES * WIDTH, pred, y) / max_abs(SAMPLES * WIDTH, y),
                             max_gap(SAMPLES * WIDTH, back, x) / max_abs(SAMPLES * WIDTH, x));
    invdl_model_free(inverse);
    invdl_model_free(student);
    invdl_model_free(teacher);
    return 0;
}
