/*
 * dense.c - the invertible square dense layer y = W x + b.
 *
 * Parameters: W row-major [width][width], then b[width].  W starts
 * orthogonal (the Q of a Householder QR of a Gaussian matrix, with the
 * sign of each column fixed by R's diagonal, as Keras' Orthogonal
 * initializer does) and b at 0.
 *
 * The derived data are the LU factors of W with partial pivoting, in
 * double, prepared whenever W changes (never inside a prediction, so
 * predictions only read the block).  The inverse solves with them in
 * double and rounds once, which makes every inverse sample the float
 * nearest a backward-stable solution; log|det W| is the sum of
 * log|u_ii|.  W is refused as numerically singular when its reciprocal
 * condition number in the 1-norm is below FLT_EPSILON: a relative
 * perturbation of the size of float rounding would then make it singular.
 */
#include "layer.h"
#include "rng.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct dense_cache {
    double *lu;         /* [n][n]: unit lower L below the diagonal, U on and above */
    size_t *perm;       /* row i of L U is row perm[i] of W */
    double *work;       /* 2n doubles for prepare */
    double log_abs_det; /* log|det W| */
    double norm;        /* |W|_inf */
    double inv_norm;    /* |W^-1|_inf */
} dense_cache;

static size_t dense_count(size_t width)
{
    size_t n;
    /* SIZE_MAX, which no array can hold, where width*(width + 1) overflows. */
    return invdl_mul_size(width, width + 1, &n) ? n : SIZE_MAX;
}

static int dense_valid(size_t width, const float *settings, const float *values)
{
    (void)settings;
    size_t n = dense_count(width);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(values[i]))
            return 0;
    return 1;
}

static void dense_cache_free(void *cache)
{
    dense_cache *c = cache;
    if (c != NULL) {
        invdl_free(c->lu);
        invdl_free(c->perm);
        invdl_free(c->work);
        invdl_free(c);
    }
}

static void *dense_cache_new(size_t width)
{
    size_t nn;
    if (!invdl_mul_size(width, width, &nn))
        return NULL;
    dense_cache *c = invdl_malloc(sizeof *c);
    if (c == NULL)
        return NULL;
    c->lu = invdl_alloc_array(nn, sizeof *c->lu);
    c->perm = invdl_alloc_array(width, sizeof *c->perm);
    c->work = invdl_alloc_array(width, 2 * sizeof *c->work);
    if (c->lu == NULL || c->perm == NULL || c->work == NULL) {
        dense_cache_free(c);
        return NULL;
    }
    return c;
}

/* Solves L U z = r in place (r already permuted). */
static void lu_solve(const double *lu, size_t n, double *z)
{
    for (size_t i = 0; i < n; i++) {
        double s = z[i];
        for (size_t k = 0; k < i; k++)
            s -= lu[i * n + k] * z[k];
        z[i] = s;
    }
    for (size_t i = n; i-- > 0;) {
        double s = z[i];
        for (size_t k = i + 1; k < n; k++)
            s -= lu[i * n + k] * z[k];
        z[i] = s / lu[i * n + i];
    }
}

/* Solves U^T L^T c = g in place: the transposed system of the factors. */
static void lu_solve_transposed(const double *lu, size_t n, double *c)
{
    for (size_t i = 0; i < n; i++) {
        double s = c[i];
        for (size_t k = 0; k < i; k++)
            s -= lu[k * n + i] * c[k];
        c[i] = s / lu[i * n + i];
    }
    for (size_t i = n; i-- > 0;) {
        double s = c[i];
        for (size_t k = i + 1; k < n; k++)
            s -= lu[k * n + i] * c[k];
        c[i] = s;
    }
}

static invdl_status dense_prepare(const invdl_params *p, const float *values, void *cache)
{
    dense_cache *c = cache;
    size_t n = p->width;
    double *lu = c->lu;
    for (size_t i = 0; i < n * n; i++)
        lu[i] = (double)values[i];
    for (size_t i = 0; i < n; i++)
        c->perm[i] = i;

    double norm1 = 0.0, norm_inf = 0.0;
    for (size_t j = 0; j < n; j++) {
        double col = 0.0, row = 0.0;
        for (size_t i = 0; i < n; i++) {
            col += fabs(lu[i * n + j]);
            row += fabs(lu[j * n + i]);
        }
        norm1 = col > norm1 ? col : norm1;
        norm_inf = row > norm_inf ? row : norm_inf;
    }

    double log_det = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabs(lu[i * n + k]) > fabs(lu[piv * n + k]))
                piv = i;
        if (!(lu[piv * n + k] != 0.0))
            return INVDL_ESINGULAR;
        if (piv != k) {
            for (size_t j = 0; j < n; j++) {
                double t = lu[k * n + j];
                lu[k * n + j] = lu[piv * n + j];
                lu[piv * n + j] = t;
            }
            size_t t = c->perm[k];
            c->perm[k] = c->perm[piv];
            c->perm[piv] = t;
        }
        double pivot = lu[k * n + k];
        log_det += log(fabs(pivot));
        for (size_t i = k + 1; i < n; i++) {
            double m = lu[i * n + k] / pivot;
            lu[i * n + k] = m;
            for (size_t j = k + 1; j < n; j++)
                lu[i * n + j] -= m * lu[k * n + j];
        }
    }

    /* |W^-1|_1 and |W^-1|_inf from the columns of W^-1, one solve each:
     * O(n^3), like the factorisation. */
    double *z = c->work, *row_sums = c->work + n;
    double inv1 = 0.0, inv_inf = 0.0;
    memset(row_sums, 0, n * sizeof *row_sums);
    for (size_t j = 0; j < n; j++) {
        for (size_t i = 0; i < n; i++)
            z[i] = c->perm[i] == j ? 1.0 : 0.0;
        lu_solve(lu, n, z);
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
    c->log_abs_det = log_det;
    c->norm = norm_inf;
    c->inv_norm = inv_inf;
    return INVDL_OK;
}

static invdl_status dense_apply(const invdl_params *p, int inverse, size_t batch,
                                const float *in, float *out, double *scratch)
{
    const dense_cache *c = p->cache;
    size_t n = p->width;
    const float *w = p->values, *b = p->values + n * n;
    double *r = scratch, *z = scratch + n;
    for (size_t s = 0; s < batch; s++) {
        const float *x = in + s * n;
        float *y = out + s * n;
        for (size_t j = 0; j < n; j++)
            r[j] = (double)x[j];
        if (!inverse) {
            for (size_t i = 0; i < n; i++) {
                double acc = (double)b[i];
                for (size_t j = 0; j < n; j++)
                    acc += (double)w[i * n + j] * r[j];
                y[i] = (float)acc;
            }
        } else {
            for (size_t i = 0; i < n; i++)
                z[i] = r[c->perm[i]] - (double)b[c->perm[i]];
            lu_solve(c->lu, n, z);
            for (size_t i = 0; i < n; i++)
                y[i] = (float)z[i];
        }
    }
    return INVDL_OK;
}

static void dense_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                           const float *out, const float *dout, float *din, double *dparams,
                           double *scratch)
{
    const dense_cache *c = p->cache;
    size_t n = p->width;
    const float *w = p->values;
    double *g = scratch, *u = scratch + n;
    for (size_t s = 0; s < batch; s++) {
        for (size_t i = 0; i < n; i++)
            g[i] = (double)dout[s * n + i];
        /* Forward: dL/dx = W^T g, dL/dW = g x^T, dL/db = g.
         * Inverse x = W^-1 (y - b): with u = W^-T g, dL/dy = u,
         * dL/dW = -u x^T, dL/db = -u. */
        const float *x = inverse ? out + s * n : in + s * n;
        if (!inverse) {
            for (size_t j = 0; j < n; j++) {
                double acc = 0.0;
                for (size_t i = 0; i < n; i++)
                    acc += (double)w[i * n + j] * g[i];
                u[j] = acc;
            }
        } else {
            lu_solve_transposed(c->lu, n, g);
            for (size_t i = 0; i < n; i++)
                u[c->perm[i]] = g[i];
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

static invdl_status dense_log_det(const invdl_params *p, size_t batch, const float *x,
                                  double *acc)
{
    const dense_cache *c = p->cache;
    (void)x;
    for (size_t s = 0; s < batch; s++)
        acc[s] += c->log_abs_det;
    return INVDL_OK;
}

static double dense_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                         const float *out)
{
    const dense_cache *c = p->cache;
    double slope = inverse ? c->norm : c->inv_norm;
    double worst = 0.0;
    for (size_t s = 0; s < batch; s++)
        worst = invdl_gain_update(worst, slope, p->width, in + s * p->width, out + s * p->width);
    return worst;
}

const invdl_layer_ops invdl_dense_ops = {
    "dense", INVDL_LAYER_DENSE, 0,
    dense_count, dense_valid, dense_cache_new, dense_cache_free, dense_prepare,
    dense_apply, dense_backward, dense_log_det, dense_gain, NULL,
};

/* rows k.. of the n-column matrix m -= 2 v (v^T m), columns from j0 on:
 * the Householder reflection I - 2 v v^T, v of unit norm and 0 above k. */
static void reflect(const double *v, size_t k, double *m, size_t n, size_t j0)
{
    for (size_t j = j0; j < n; j++) {
        double dot = 0.0;
        for (size_t i = k; i < n; i++)
            dot += v[i] * m[i * n + j];
        for (size_t i = k; i < n; i++)
            m[i * n + j] -= 2.0 * v[i] * dot;
    }
}

/* Q of the Householder QR of a, with Q's columns multiplied by the signs
 * of R's diagonal, written to q.  a is overwritten; v holds n*n doubles. */
static void orthogonal_from(double *a, double *v, double *q, size_t n)
{
    double *rdiag_sign = q; /* q's first row is free until Q is formed */
    for (size_t k = 0; k < n; k++) {
        double norm = 0.0;
        for (size_t i = k; i < n; i++)
            norm += a[i * n + k] * a[i * n + k];
        norm = sqrt(norm);
        double x0 = a[k * n + k];
        double alpha = x0 < 0 ? norm : -norm; /* R's diagonal entry */
        double *vk = v + k * n;
        memset(vk, 0, n * sizeof *vk);
        double vnorm = 0.0;
        for (size_t i = k; i < n; i++) {
            vk[i] = a[i * n + k] - (i == k ? alpha : 0.0);
            vnorm += vk[i] * vk[i];
        }
        rdiag_sign[k] = alpha < 0 ? -1.0 : 1.0;
        if (vnorm == 0.0)
            continue; /* the column is already reduced */
        vnorm = sqrt(vnorm);
        for (size_t i = k; i < n; i++)
            vk[i] /= vnorm;
        reflect(vk, k, a, n, k);
    }
    /* Q = H_0 H_1 ... H_{n-1}: apply the reflections to the identity from
     * the last one, scaling Q's columns by the signs at the end (a holds
     * them meanwhile). */
    for (size_t k = 0; k < n; k++)
        a[k] = rdiag_sign[k];
    for (size_t i = 0; i < n * n; i++)
        q[i] = 0.0;
    for (size_t i = 0; i < n; i++)
        q[i * n + i] = 1.0;
    for (size_t k = n; k-- > 0;)
        reflect(v + k * n, k, q, n, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            q[i * n + j] *= a[j];
}

invdl_layer *invdl_layer_dense(size_t width, uint64_t seed)
{
    size_t nn, count;
    if (width == 0 || !invdl_mul_size(width, width + 1, &count) || !invdl_mul_size(width, width, &nn))
        return NULL;
    float *values = invdl_alloc_array(count, sizeof *values);
    double *work = invdl_alloc_array(nn, 3 * sizeof *work);
    if (values == NULL || work == NULL) {
        invdl_free(values);
        invdl_free(work);
        return NULL;
    }
    double *a = work, *v = work + nn, *q = work + 2 * nn;
    uint64_t state = seed;
    for (size_t i = 0; i < nn; i++)
        a[i] = invdl_rng_normal(&state);
    orthogonal_from(a, v, q, width);
    for (size_t i = 0; i < nn; i++)
        values[i] = (float)q[i];
    memset(values + nn, 0, width * sizeof *values);
    invdl_free(work);
    return invdl_layer_create(&invdl_dense_ops, width, NULL, values, NULL);
}
