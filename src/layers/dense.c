/*
 * dense.c - the invertible square dense layer y = W x + b.
 *
 * Parameters: W row-major [width][width], then b[width].  W starts
 * orthogonal (the Q of a Householder QR of a Gaussian matrix, with the
 * sign of each column fixed by R's diagonal, as Keras' Orthogonal
 * initializer does) and b at 0.
 *
 * The derived data are W and W^T in double and the LU factors of W with
 * partial pivoting, in double, prepared whenever W changes (never inside a
 * prediction, so predictions only read the block) - except after the
 * trainer's steps, which ask for W and W^T only and leave the
 * factorisation for when something needs it (fit.c).  The inverse solves
 * with the factors in double and rounds once, which makes every inverse
 * sample the float nearest a backward-stable solution; log|det W| is the
 * sum of log|u_ii|.  W is refused as numerically singular when its
 * reciprocal condition number in the 1-norm is below FLT_EPSILON: a
 * relative perturbation of the size of float rounding would then make it
 * singular.
 *
 * The arithmetic runs a batch at a time in dense_kernels.c (cache-blocked,
 * AVX-512 or AVX2 where the CPU has it) and gives exactly the results of
 * the plain per-sample loops in double.
 */
#include "kernels/dense_kernels.h"
#include "layer.h"
#include "rng.h"

#include <math.h>
#include <string.h>

/* invdl_dense_scratch_count(width) <= invdl_scratch_new's rows * (width + pad),
 * for this kind and dense_lu. */
_Static_assert(INVDL_DENSE_STAGED * INVDL_DENSE_LANES_LD <= INVDL_SCRATCH_ROWS &&
                   2 * INVDL_DENSE_NR - 1 <= INVDL_SCRATCH_PAD,
               "the operations' scratch holds the dense kinds' staged blocks");

static size_t dense_count(size_t width, const float *settings)
{
    size_t n;
    (void)settings;
    /* SIZE_MAX, which no array can hold, where width*(width + 1) overflows. */
    return invdl_mul_size(width, width + 1, &n) ? n : SIZE_MAX;
}

/* Finite values: checked by dense_prepare as it reads them. */
static int dense_valid(size_t width, const float *settings, const float *values)
{
    (void)width, (void)settings, (void)values;
    return 1;
}

static void dense_cache_free(void *cache)
{
    invdl_dense_factors_free(cache);
}

static void *dense_cache_new(size_t width, const float *settings)
{
    (void)settings;
    return invdl_dense_factors_new(width);
}

/* Training's steps stage W and W^T only; the factorisation waits until an
 * inverse, a log-det, a gain or the end of training needs it. */
static invdl_status dense_prepare(const invdl_params *p, const float *values, void *cache,
                                  int complete)
{
    size_t nn = p->width * p->width;
    if (!invdl_dense_finite(p->width, values + nn))
        return INVDL_EINVAL;
    if (!complete)
        return invdl_dense_stage(values, cache);
    return invdl_dense_factor(invdl_dense_kernels_best(), values, cache);
}

static invdl_status dense_apply(const invdl_params *p, int inverse, size_t batch,
                                const float *in, float *out, double *scratch)
{
    const invdl_dense_factors *f = p->cache;
    const float *b = p->values + p->width * p->width;
    if (!inverse)
        invdl_dense_forward(invdl_dense_kernels_best(), f, b, batch, in, out, scratch);
    else
        invdl_dense_inverse(invdl_dense_kernels_best(), f, b, batch, in, out, scratch);
    return INVDL_OK;
}

static void dense_backward(const invdl_params *p, int inverse, size_t batch, const float *in,
                           const float *out, const float *dout, float *din, double *dparams,
                           double *scratch)
{
    invdl_dense_backward(invdl_dense_kernels_best(), p->cache, inverse, batch, in, out, dout, din,
                         dparams, scratch);
}

static invdl_status dense_log_det(const invdl_params *p, size_t batch, const float *x,
                                  double *acc, double *scratch)
{
    const invdl_dense_factors *c = p->cache;
    (void)x, (void)scratch;
    for (size_t s = 0; s < batch; s++)
        acc[s] += c->log_abs_det;
    return INVDL_OK;
}

/* log|det W| has gradient W^-T with respect to W, and none for b or x.
 * Column k of W^-T is W^-T e_k: the transposed solves of the inverse's
 * backward pass (dense_kernels.c), BLOCK columns at a time in the staged
 * lane layout, then dW[perm[i]][k] += batch scale c_i. */
static int dense_log_det_grad(const invdl_params *p, size_t batch, const float *x, double scale,
                              float *dx, double *dparams, double *scratch)
{
    const invdl_dense_kernels *k = invdl_dense_kernels_best();
    const invdl_dense_factors *f = p->cache;
    size_t n = p->width, ll = INVDL_DENSE_LANES_LD;
    double coef = scale * (double)batch, *z = scratch;
    (void)x, (void)dx;
    if (dparams == NULL)
        return 0;
    for (size_t k0 = 0; k0 < n; k0 += INVDL_DENSE_BLOCK) {
        size_t cnt = n - k0 < INVDL_DENSE_BLOCK ? n - k0 : INVDL_DENSE_BLOCK;
        size_t lanes = invdl_dense_pad(cnt);
        memset(z, 0, n * ll * sizeof *z);
        for (size_t l = 0; l < cnt; l++)
            z[(k0 + l) * ll + l] = 1.0;
        invdl_dense_solve(k, n, f->lu, 1, f->lu_ld, 0, 0, lanes, z, ll);
        invdl_dense_solve(k, n, f->lu, 1, f->lu_ld, 1, 1, lanes, z, ll);
        for (size_t i = 0; i < n; i++)
            for (size_t l = 0; l < cnt; l++)
                dparams[f->perm[i] * n + k0 + l] += coef * z[i * ll + l];
    }
    return 0;
}

static void dense_weights(const invdl_params *p, float *w, float *b)
{
    size_t nn = p->width * p->width;
    memcpy(w, p->values, nn * sizeof *w);
    memcpy(b, p->values + nn, p->width * sizeof *b);
}

static double dense_gain(const invdl_params *p, int inverse, size_t batch, const float *in,
                         const float *out)
{
    const invdl_dense_factors *c = p->cache;
    return invdl_affine_gain(p->width, inverse ? c->norm : c->inv_norm, batch, in, out);
}

const invdl_layer_ops invdl_dense_ops = {
    .name = "dense",
    .kind = INVDL_LAYER_DENSE,
    .count = dense_count,
    .valid = dense_valid,
    .cache_new = dense_cache_new,
    .cache_free = dense_cache_free,
    .prepare = dense_prepare,
    .apply = dense_apply,
    .backward = dense_backward,
    .log_det = dense_log_det,
    .log_det_grad = dense_log_det_grad,
    .weights = dense_weights,
    .gain = dense_gain,
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

double *invdl_orthogonal_new(size_t n, uint64_t seed)
{
    size_t nn;
    if (!invdl_mul_size(n, n, &nn))
        return NULL;
    double *q = invdl_alloc_array(nn, sizeof *q);
    double *work = invdl_alloc_array(nn, 2 * sizeof *work);
    if (q == NULL || work == NULL) {
        invdl_free(q);
        invdl_free(work);
        return NULL;
    }
    double *a = work, *v = work + nn;
    uint64_t state = seed;
    for (size_t i = 0; i < nn; i++)
        a[i] = invdl_rng_normal(&state);
    orthogonal_from(a, v, q, n);
    invdl_free(work);
    return q;
}

invdl_layer *invdl_layer_dense(size_t width, uint64_t seed)
{
    size_t nn, count;
    if (invdl_bad_width(width) || !invdl_mul_size(width, width + 1, &count) ||
        !invdl_mul_size(width, width, &nn))
        return NULL;
    float *values = invdl_alloc_array(count, sizeof *values);
    double *q = invdl_orthogonal_new(width, seed);
    if (values == NULL || q == NULL) {
        invdl_free(values);
        invdl_free(q);
        return NULL;
    }
    for (size_t i = 0; i < nn; i++)
        values[i] = (float)q[i];
    memset(values + nn, 0, width * sizeof *values);
    invdl_free(q);
    return invdl_layer_create(&invdl_dense_ops, width, NULL, values, NULL);
}
