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
        for (size_t k = n; k-- > i + 1;)
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
        for (size_t k = n; k-- > i + 1;)
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

/* ---- W = P L U -------------------------------------------------------------- */

/* z = U v (upper: k from n-1 down to i+1, then the diagonal) or z = L v
 * (lower, unit: k from 0 to i-1, then v_i), with t(i,k) = lu[i*ts + k*ks]. */
static void plain_triangular_product(const double *lu, size_t ts, size_t ks, size_t n, int upper,
                                     int unit, const double *v, double *z)
{
    for (size_t i = 0; i < n; i++) {
        double acc = 0.0;
        if (upper)
            for (size_t k = n; k-- > i + 1;)
                acc += lu[i * ts + k * ks] * v[k];
        else
            for (size_t k = 0; k < i; k++)
                acc += lu[i * ts + k * ks] * v[k];
        z[i] = acc + (unit ? 1.0 : lu[i * ts + i * ks]) * v[i];
    }
}

void plain_plu_forward(const invdl_dense_plu *f, const float *b, size_t batch, const float *in,
                       float *out, double *scratch)
{
    size_t n = f->n, ld = f->lu_ld;
    double *x = scratch, *z = scratch + n, *w = scratch + 2 * n;
    for (size_t s = 0; s < batch; s++) {
        for (size_t j = 0; j < n; j++)
            x[j] = (double)in[s * n + j];
        plain_triangular_product(f->lu, ld, 1, n, 1, 0, x, z);
        plain_triangular_product(f->lu, ld, 1, n, 0, 1, z, w);
        for (size_t i = 0; i < n; i++)
            out[s * n + f->perm[i]] = (float)(w[i] + (double)b[f->perm[i]]);
    }
}

void plain_plu_inverse(const invdl_dense_plu *f, const float *b, size_t batch, const float *in,
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

void plain_plu_backward(const invdl_dense_plu *f, int inverse, size_t batch, const float *in,
                        const float *out, const float *dout, float *din, double *dparams,
                        double *scratch)
{
    size_t n = f->n, ld = f->lu_ld, tri = n * (n - 1) / 2;
    double *g = scratch, *h = scratch + n, *x = scratch + 2 * n, *z = scratch + 3 * n;
    double *d = scratch + 4 * n;
    for (size_t s = 0; s < batch; s++) {
        const float *xs = inverse ? out + s * n : in + s * n;
        for (size_t j = 0; j < n; j++)
            x[j] = (double)xs[j];
        /* lcoef: the coefficient of z in dL (g' or c), ucoef: of x in dU
         * (h or a). */
        double *lcoef = g, *ucoef = h;
        if (!inverse) {
            for (size_t i = 0; i < n; i++)
                g[i] = (double)dout[s * n + f->perm[i]];
            plain_triangular_product(f->lu, 1, ld, n, 1, 1, g, h); /* h = L^T g' */
            plain_triangular_product(f->lu, 1, ld, n, 0, 0, h, d); /* d = U^T h */
            for (size_t j = 0; j < n; j++)
                din[s * n + j] = (float)d[j];
        } else {
            for (size_t i = 0; i < n; i++)
                h[i] = (double)dout[s * n + i];
            /* a = U^-T g: lower solve with U^T; c = L^-T a: upper, unit. */
            for (size_t i = 0; i < n; i++) {
                double acc = h[i];
                for (size_t k = 0; k < i; k++)
                    acc -= f->lu[k * ld + i] * h[k];
                h[i] = acc / f->lu[i * ld + i];
            }
            memcpy(g, h, n * sizeof *g);
            for (size_t i = n; i-- > 0;) {
                double acc = g[i];
                for (size_t k = n; k-- > i + 1;)
                    acc -= f->lu[k * ld + i] * g[k];
                g[i] = acc;
            }
            for (size_t i = 0; i < n; i++)
                din[s * n + f->perm[i]] = (float)g[i];
        }
        if (dparams == NULL)
            continue;
        plain_triangular_product(f->lu, ld, 1, n, 1, 0, x, z); /* z = U x */
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < i; k++) {
                double *e = dparams + i * (i - 1) / 2 + k;
                *e = inverse ? *e - lcoef[i] * z[k] : *e + lcoef[i] * z[k];
            }
            for (size_t k = i + 1; k < n; k++) {
                double *e = dparams + tri + i * (2 * n - i - 1) / 2 + (k - i - 1);
                *e = inverse ? *e - ucoef[i] * x[k] : *e + ucoef[i] * x[k];
            }
            if (f->unfloored[i]) {
                double *e = dparams + 2 * tri + i;
                *e = inverse ? *e - ucoef[i] * x[i] : *e + ucoef[i] * x[i];
            }
            double *e = dparams + 2 * tri + n + f->perm[i];
            *e = inverse ? *e - lcoef[i] : *e + lcoef[i];
        }
    }
}
