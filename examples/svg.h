/*
 * svg.h - just enough SVG for the examples' plots: panels with axes,
 * ticks and labels, polylines, legends, scatter points and heat maps.
 * Header-only, example use only.
 */
#ifndef INVDL_EXAMPLE_SVG_H
#define INVDL_EXAMPLE_SVG_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct svg_panel {
    FILE *f;
    double left, top, width, height;  /* pixels */
    double xmin, xmax, ymin, ymax;    /* data (log10 of y when log_y) */
    int log_y;
    int legend_rows;
} svg_panel;

static inline void svg_begin(FILE *f, int width, int height, const char *title)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n",
            width / 2, title);
}

static inline void svg_end(FILE *f)
{
    fprintf(f, "</svg>\n");
}

static inline double svg_px(const svg_panel *p, double x)
{
    return p->left + (x - p->xmin) / (p->xmax - p->xmin) * p->width;
}

static inline double svg_py(const svg_panel *p, double y)
{
    double v = p->log_y ? log10(y) : y;
    return p->top + (p->ymax - v) / (p->ymax - p->ymin) * p->height;
}

/* A panel with a frame, a grid at `step` intervals (in log10 for log_y),
 * axis labels and a title. */
static inline svg_panel svg_panel_begin(FILE *f, double left, double top, double width,
                                        double height, double xmin, double xmax, double xstep,
                                        double ymin, double ymax, double ystep, int log_y,
                                        const char *title, const char *xlabel,
                                        const char *ylabel)
{
    svg_panel p = {f, left, top, width, height, xmin, xmax, ymin, ymax, log_y, 0};
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#444\"/>\n", left, top, width, height);
    for (double x = ceil(xmin / xstep) * xstep; x <= xmax + 1e-9; x += xstep) {
        double px = svg_px(&p, x);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                px, top, px, top + height);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px,
                top + height + 16, fabs(x) < 1e-12 ? 0.0 : x);
    }
    for (double y = ceil(ymin / ystep) * ystep; y <= ymax + 1e-9; y += ystep) {
        double py = top + (ymax - y) / (ymax - ymin) * height;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                left, py, left + width, py);
        if (log_y)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%g</text>\n",
                    left - 6, py + 4, y);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", left - 6,
                    py + 4, fabs(y) < 1e-12 ? 0.0 : y);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">%s</text>\n",
            left + width / 2, top - 8, title);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
            left + width / 2, top + height + 34, xlabel);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
            left - 42, top + height / 2, left - 42, top + height / 2, ylabel);
    return p;
}

/* A polyline through (x[i], y[i]); points outside the panel's y range
 * break the line.  dash: NULL or an SVG dash pattern. */
static inline void svg_line(svg_panel *p, size_t n, const double *x, const double *y,
                            const char *color, const char *dash, const char *label)
{
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        double v = p->log_y ? log10(y[i]) : y[i];
        int inside = isfinite(v) && v >= p->ymin - 1e-9 && v <= p->ymax + 1e-9;
        if (inside && !open) {
            fprintf(p->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s "
                          "points=\"", color, dash ? " stroke-dasharray=\"" : "",
                    dash ? dash : "", dash ? "\"" : "");
            open = 1;
        }
        if (inside)
            fprintf(p->f, "%.2f,%.2f ", svg_px(p, x[i]), svg_py(p, y[i]));
        if (open && (!inside || i + 1 == n)) {
            fprintf(p->f, "\"/>\n");
            open = 0;
        }
    }
    if (label != NULL) {
        double lx = p->left + 10, ly = p->top + 16 + 16 * p->legend_rows++;
        fprintf(p->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2\"%s%s%s/>\n", lx, ly - 4, lx + 22, ly - 4, color,
                dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
        fprintf(p->f, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 28, ly, label);
    }
}

/* n points (x[i], y[i]) as dots of radius r; those outside the panel are
 * left out. */
static inline void svg_points(svg_panel *p, size_t n, const float *x, const float *y,
                              size_t stride, double r, const char *color, double opacity)
{
    fprintf(p->f, "<g fill=\"%s\" fill-opacity=\"%.2f\">\n", color, opacity);
    for (size_t i = 0; i < n; i++) {
        double a = (double)x[i * stride], b = (double)y[i * stride];
        if (!(a >= p->xmin && a <= p->xmax && b >= p->ymin && b <= p->ymax))
            continue;
        fprintf(p->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"/>\n", svg_px(p, a),
                svg_py(p, b), r);
    }
    fprintf(p->f, "</g>\n");
}

/* A color for t in [0, 1] on a dark-to-light scale (viridis' ends and
 * middle, interpolated): 0 (and NaN) dark purple, 1 yellow. */
static inline void svg_color(double t, char out[8])
{
    static const double stops[5][3] = {
        {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37},
    };
    t = t > 1 ? 1 : t >= 0 ? t : 0;
    double u = t * 4;
    int k = u >= 4 ? 3 : (int)u;
    double w = u - k;
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = (int)(stops[k][i] + w * (stops[k + 1][i] - stops[k][i]) + 0.5);
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/* A heat map over the whole panel: nx by ny cells, value v[j*nx + i] for
 * the cell at column i (left to right) and row j (bottom to top), colored
 * by v / vmax. */
static inline void svg_heat(svg_panel *p, size_t nx, size_t ny, const double *v, double vmax)
{
    double cw = p->width / (double)nx, ch = p->height / (double)ny;
    fprintf(p->f, "<g shape-rendering=\"crispEdges\">\n");
    for (size_t j = 0; j < ny; j++) {
        /* Runs of cells of one color as one rectangle. */
        for (size_t i = 0, run; i < nx; i += run) {
            char color[8], next[8];
            svg_color(v[j * nx + i] / vmax, color);
            for (run = 1; i + run < nx; run++) {
                svg_color(v[j * nx + i + run] / vmax, next);
                if (strcmp(next, color) != 0)
                    break;
            }
            fprintf(p->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                          "fill=\"%s\"/>\n",
                    p->left + (double)i * cw, p->top + p->height - (double)(j + 1) * ch,
                    (double)run * cw + 0.05, ch + 0.05, color);
        }
    }
    fprintf(p->f, "</g>\n");
}

#endif
