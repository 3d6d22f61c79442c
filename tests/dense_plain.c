/*
 * dense_plain.c - the dense layer's arithmetic as plain loops (dense_plain.h).
 */
#include "dense_plain.h"

#include <float.h>
#include <math.h>
#include <string.h>

static void plain_solve(const double *lu, size_t ld, size_t n, double *z)
{
    for (size_t i = 0; i < n; i++) {
        double s = z[i];
        for (size_t k = 0; k < i; k++)
            s -= lu[i * ld + k] * z[k];
        z[i] = s;
    }
    for (size_t i = n; i-- > 0;) {
        double s = z[i];
        for (size_t k = i + 1; k < n; k++)
            s -= lu[i * ld + k] * z[k];
        z[i] = s / lu[i * ld + i];
    }
}

static void plain_solve_transposed(const double *lu, size_t ld, size_t n, double *c)
{
    for (size_t i = 0; i < n; i++) {
        double s = c[i];
        for (size_t k = 0; k < i; k++)
            s -= lu[k * ld + i] * c[k];
        c[i] = s / lu[i * ld + i];
    }
    for (size_t i = n; i-- > 0;) {
        double s = c[i];
        for (size_t k = i + 1; k < n; k++)
            s -= lu[k * ld + i] * c[k];
        c[i] = s;
    }
}

invdl_status plain_factor(const float *w, invdl_dense_factors *f)
{
    size_t n = f->n, ld = f->lu_ld;
    double *lu = f->lu;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            lu[i * ld + j] = (double)w[i * n + j];
    for (size_t i = 0; i < n; i++)
        f->perm[i] = i;
    double norm1 = 0.0, norm_inf = 0.0;
    for (size_t j = 0; j < n; j++) {
        double col = 0.0, row = 0.0;
        for (size_t i = 0; i < n; i++) {
            col += fabs(lu[i * ld + j]);
            row += fabs(lu[j * ld + i]);
        }
        norm1 = col > norm1 ? col : norm1;
        norm_inf = row > norm_inf ? row : norm_inf;
    }
    double log_det = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabs(lu[i * ld + k]) > fabs(lu[piv * ld + k]))
                piv = i;
        if (!(lu[piv * ld + k] != 0.0))
            return INVDL_ESINGULAR;
        if (piv != k) {
            for (size_t j = 0; j < n; j++) {
                double t = lu[k * ld + j];
                lu[k * ld + j] = lu[piv * ld + j];
                lu[piv * ld + j] = t;
            }
            size_t t = f->perm[k];
            f->perm[k] = f->perm[piv];
            f->perm[piv] = t;
        }
        double pivot = lu[k * ld + k];
        log_det += log(fabs(pivot));
        for (size_t i = k + 1; i < n; i++) {
            double m = lu[i * ld + k] / pivot;
            lu[i * ld + k] = m;
            for (size_t j = k + 1; j < n; j++)
                lu[i * ld + j] -= m * lu[k * ld + j];
        }
    }
    double *z = f->work, *row_sums = f->work + n;
    double inv1 = 0.0, inv_inf = 0.0;
    memset(row_sums, 0, n * sizeof *row_sums);
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++)
            z[i] = f->perm[i] == j ? 1.0 : 0.0;
        plain_solve(lu, ld, n, z);
        double col = 0.0;
        for (size_t i = 0; i < n; i++) {
            col += fabs(z[i]);
            row_sums[i] += fabs(z[i]);
        }
        inv1 = col > inv1 ? col : inv1;
    }
    for (size_t i = 0; i < n; i++)
        inv_inf = row_sums[i] > inv_inf ? row_sums[i] : inv_inf;
    if (!(norm1 * inv1 * (double)FLT_EPSILON <= 1.0))
        return INVDL_ESINGULAR;
    f->log_abs_det = log_det;
    f->norm = norm_inf;
    f->inv_norm = inv_inf;
    return INVDL_OK;
}

void plain_forward(size_t n, const float *w, const float *b, size_t batch, const float *in,
                   float *out, double *r)
{
    for (size_t s = 0; s < batch; s++) {
        for (size_t j = 0; j < n; j++)
            r[j] = (double)in[s * n + j];
        for (size_t i = 0; i < n; i++) {
            double acc = (double)b[i];
            for (size_t j = 0; j < n; j++)
                acc += (double)w[i * n + j] * r[j];
            out[s * n + i] = (float)acc;
        }
    }
}

void plain_inverse(const invdl_dense_factors *f, const float *b, size_t batch, const float *in,
                   float *out, double *scratch)
{
    size_t n = f->n;
    double *r = scratch, *z = scratch + n;
    for (size_t s = 0; s < batch; s++) {
        for (size_t j = 0; j < n; j++)
            r[j] = (double)in[s * n + j];
        for (size_t i = 0; i < n; i++)
            z[i] = r[f->perm[i]] - (double)b[f->perm[i]];
        plain_solve(f->lu, f->lu_ld, n, z);
        for (size_t i = 0; i < n; i++)
            out[s * n + i] = (float)z[i];
    }
}

void plain_backward(const invdl_dense_factors *f, const float *w, int inverse, size_t batch,
                    const float *in, const float *out, const float *dout, float *din,
                    double *dparams, double *scratch)
{
    size_t n = f->n;
    double *g = scratch, *u = scratch + n;
    for (size_t s = 0; s < batch; s++) {
        for (size_t i = 0; i < n; i++)
            g[i] = (double)dout[s * n + i];
        const float *x = inverse ? out + s * n : in + s * n;
        if (!inverse) {
            for (size_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (size_t i = 0; i < n; i++)
                    acc += (double)w[i * n + j] * g[i];
                u[j] = acc;
            }
        } else {
            plain_solve_transposed(f->lu, f->lu_ld, n, g);
            for (size_t i = 0; i < n; i++)
                u[f->perm[i]] = g[i];
        }
        if (dparams != NULL) {
            const double *coef = inverse ? u : g;
            double sign = inverse ? -1.0 : 1.0;
            for (size_t i = 0; i < n; i++) {
                double ci = sign * coef[i];
                for (size_t j = 0; j < n; j++)
                    dparams[i * n + j] += ci * (double)x[j];
                dparams[n * n + i] += ci;
            }
        }
        for (size_t j = 0; j < n; j++)
            din[s * n + j] = (float)u[j];
    }
}
