/*
 * plot.c - each kernel pair's forward and inverse curves over their
 * domains, in one SVG.  The inverse is the forward mirrored in the
 * diagonal: that is what being an inverse looks like.
 *
 *     meson compile -C build plot      (writes kernels.svg in build/examples)
 *     build/examples/plot-kernels [out.svg]
 */
#include <invdl.h>

#include <stdio.h>

#include "svg.h"

enum { POINTS = 801 };

typedef struct pair {
    const char *title;
    double lo, hi;       /* forward domain plotted */
    double view, step;   /* the panel spans [-view, view] both ways */
    float alpha;         /* mprelu only */
    int kind;
} pair;

static invdl_status run(const pair *p, int inverse, size_t n, const float *in, float *out)
{
    switch (p->kind) {
    case 0:
        return inverse ? invdl_ssin_inverse(n, in, out) : invdl_ssin_forward(n, in, out);
    case 1:
        return inverse ? invdl_abstanh_inverse(n, in, out) : invdl_abstanh_forward(n, in, out);
    default:
        return inverse ? invdl_mprelu_inverse(n, 1, &p->alpha, INVDL_MPRELU_ALPHA_MIN, in, out)
                       : invdl_mprelu_forward(n, 1, &p->alpha, INVDL_MPRELU_ALPHA_MIN, in, out);
    }
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "kernels.svg";
    const pair pairs[3] = {
        {"signed sin  y = x sin|x|", -(double)INVDL_SSIN_XMAX, (double)INVDL_SSIN_XMAX, 2.5, 0.5,
         0.0f, 0},
        {"abs-tanh  y = |x| tanh x", -3.0, 3.0, 3.0, 1.0, 0.0f, 1},
        {"monotonic PReLU, alpha = 0.25", -2.0, 2.0, 2.0, 0.5, 0.25f, 2},
    };
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    svg_begin(f, 1140, 430, "invdl kernel pairs: forward (solid) and inverse (dashed)");
    for (int k = 0; k < 3; k++) {
        const pair *p = &pairs[k];
        static float x[POINTS], y[POINTS], yi[POINTS], xi[POINTS];
        double dx[POINTS], dy[POINTS], diy[POINTS], dix[POINTS];
        for (int i = 0; i < POINTS; i++)
            x[i] = (float)(p->lo + (p->hi - p->lo) * i / (POINTS - 1));
        if (run(p, 0, POINTS, x, y) != INVDL_OK) {
            fprintf(stderr, "%s: forward failed\n", p->title);
            return 1;
        }
        /* The inverse over the forward's range. */
        for (int i = 0; i < POINTS; i++)
            yi[i] = y[0] + (y[POINTS - 1] - y[0]) * (float)i / (POINTS - 1);
        if (run(p, 1, POINTS, yi, xi) != INVDL_OK) {
            fprintf(stderr, "%s: inverse failed\n", p->title);
            return 1;
        }
        for (int i = 0; i < POINTS; i++) {
            dx[i] = (double)x[i];
            dy[i] = (double)y[i];
            diy[i] = (double)yi[i];
            dix[i] = (double)xi[i];
        }
        double diag[2] = {-p->view, p->view};
        svg_panel panel = svg_panel_begin(f, 70 + 370 * k, 70, 300, 300, -p->view, p->view,
                                          p->step, -p->view, p->view, p->step, 0, p->title,
                                          "input", "output");
        svg_line(&panel, 2, diag, diag, "#999", "3,4", "y = x");
        svg_line(&panel, POINTS, dx, dy, "#1f77b4", NULL, "forward f");
        svg_line(&panel, POINTS, diy, dix, "#d62728", "8,5", "inverse g");
    }
    svg_end(f);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    printf("wrote %s\n", path);
    return 0;
}
