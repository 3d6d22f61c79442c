/*
 * svg.h - just enough SVG for the examples' line plots: panels with axes,
 * ticks and labels, polylines, legends.  Header-only, example use only.
 */
#ifndef INVDL_EXAMPLE_SVG_H
#define INVDL_EXAMPLE_SVG_H

#include <math.h>
#include <stdio.h>

typedef struct svg_panel {
    FILE *f;
    double left, top, width, height;  /* pixels */
    double xmin, xmax, ymin, ymax;    /* data (log10 of y when log_y) */
    int log_y;
    int legend_rows;
} svg_panel;

static void svg_begin(FILE *f, int width, int height, const char *title)
{
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            width, height, width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">%s</text>\n",
            width / 2, title);
}

static void svg_end(FILE *f)
{
    fprintf(f, "</svg>\n");
}

static double svg_px(const svg_panel *p, double x)
{
    return p->left + (x - p->xmin) / (p->xmax - p->xmin) * p->width;
}

static double svg_py(const svg_panel *p, double y)
{
    double v = p->log_y ? log10(y) : y;
    return p->top + (p->ymax - v) / (p->ymax - p->ymin) * p->height;
}

/* A panel with a frame, a grid at `step` intervals (in log10 for log_y),
 * axis labels and a title. */
static svg_panel svg_panel_begin(FILE *f, double left, double top, double width, double height,
                                 double xmin, double xmax, double xstep, double ymin,
                                 double ymax, double ystep, int log_y, const char *title,
                                 const char *xlabel, const char *ylabel)
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
static void svg_line(svg_panel *p, size_t n, const double *x, const double *y,
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

#endif
