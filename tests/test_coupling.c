/*
 * test_coupling.c - coupling layers against an independent reference.
 *
 * The reference is written here from the definition invdl.h gives: it
 * reads the layer's hidden size and flags (invdl_layer_coupling_settings)
 * and its parameters (W1 row-major, b1, W2 row-major, b2), splits the
 * features by parity itself and evaluates the conditioner, the scale
 * s = 2 tanh(r/2), the affine map and its inverse in long double with the
 * C library's tanhl and expl.  Against it: the start (glorot-uniform W1,
 * the rest 0: the identity), forward and inverse, round trips, log|det J|
 * (the sum of s, and a brute-force Jacobian by central differences),
 * gradients of the mean squared error and of the negative log-likelihood
 * (central differences, both directions, every flag, hidden sizes that
 * make the layer evaluate its hidden units in several chunks), the
 * memory-saving gain, files, and bad input (crafted files: test_io.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"
#include "layers/layer.h"
#include "reference.h"

/* ---- the reference ------------------------------------------------------ */

typedef struct ref_c {
    size_t n, h, nc, nx, m2, np;
    int odd, additive, inverse;
    long double *p; /* the values, in the library's layout */
} ref_c;

static ref_c ref_of(const invdl_layer *l)
{
    ref_c r;
    unsigned flags;
    assert_int_equal(invdl_layer_coupling_settings(l, &r.h, &flags), INVDL_OK);
    r.n = invdl_layer_width(l);
    r.odd = (flags & INVDL_COUPLING_ODD) != 0;
    r.additive = (flags & INVDL_COUPLING_ADDITIVE) != 0;
    r.inverse = invdl_layer_is_inverse(l);
    r.nc = r.odd ? r.n / 2 : (r.n + 1) / 2;
    r.nx = r.n - r.nc;
    r.m2 = r.additive ? r.nx : 2 * r.nx;
    r.np = r.h * (r.nc + 1 + r.m2) + r.m2;
    assert_int_equal(invdl_layer_param_count(l), r.np);
    float *v = malloc(r.np * sizeof *v);
    r.p = malloc(r.np * sizeof *r.p);
    assert_true(v != NULL && r.p != NULL);
    assert_int_equal(invdl_layer_get_params(l, r.np, v), INVDL_OK);
    for (size_t i = 0; i < r.np; i++)
        r.p[i] = (long double)v[i];
    free(v);
    return r;
}

static void ref_free(ref_c *r)
{
    free(r->p);
}

/* Index of condition feature j and of transformed feature i. */
static size_t ci(const ref_c *r, size_t j)
{
    return 2 * j + (r->odd ? 1u : 0u);
}

static size_t xi(const ref_c *r, size_t i)
{
    return 2 * i + (r->odd ? 0u : 1u);
}

/* s and t of the transformed features at the condition of v; mag[i] (if
 * not NULL) bounds the magnitudes the library's double arithmetic rounds
 * on the way to r_i and t_i: |b2| + sum_k |W2_k| (1 + |b1_k| + sum_j
 * |W1_kj c_j|). */
static void ref_cond(const ref_c *r, const long double *v, long double *s, long double *t,
                     long double *mag_r, long double *mag_t)
{
    const long double *w1 = r->p, *b1 = w1 + r->h * r->nc, *w2 = b1 + r->h,
                      *b2 = w2 + r->m2 * r->h;
    long double *hid = malloc(r->h * sizeof *hid), *hmag = malloc(r->h * sizeof *hmag);
    assert_true(hid != NULL && hmag != NULL);
    for (size_t k = 0; k < r->h; k++) {
        long double pre = b1[k], m = fabsl(b1[k]);
        for (size_t j = 0; j < r->nc; j++) {
            pre += w1[k * r->nc + j] * v[ci(r, j)];
            m += fabsl(w1[k * r->nc + j] * v[ci(r, j)]);
        }
        hid[k] = tanhl(pre);
        hmag[k] = 1.0L + m;
    }
    for (size_t i = 0; i < r->nx; i++) {
        long double o[2], m[2];
        for (size_t q = 0; q < (r->additive ? 1u : 2u); q++) {
            size_t row = q * r->nx + i;
            o[q] = b2[row];
            m[q] = fabsl(b2[row]);
            for (size_t k = 0; k < r->h; k++) {
                o[q] += w2[row * r->h + k] * hid[k];
                m[q] += fabsl(w2[row * r->h + k]) * hmag[k];
            }
        }
        s[i] = r->additive ? 0.0L : 2.0L * tanhl(o[0] / 2.0L);
        t[i] = r->additive ? o[0] : o[1];
        if (mag_r != NULL) {
            mag_r[i] = r->additive ? 0.0L : m[0];
            mag_t[i] = r->additive ? m[0] : m[1];
        }
    }
    free(hid);
    free(hmag);
}

/* One sample through the layer's map (inverse: its inverse), in place. */
static void ref_apply(const ref_c *r, int inverse, long double *v)
{
    long double s[64], t[64];
    assert_true(r->nx <= 64);
    ref_cond(r, v, s, t, NULL, NULL);
    for (size_t i = 0; i < r->nx; i++) {
        long double x = v[xi(r, i)];
        v[xi(r, i)] = inverse ? (x - t[i]) * expl(-s[i]) : x * expl(s[i]) + t[i];
    }
}

/* The layer's log|det J| at its input v (an inverse layer's: minus the
 * forward map's at its output). */
static long double ref_log_det(const ref_c *r, const long double *in)
{
    long double v[64], s[64], t[64], sum = 0.0L;
    assert_true(r->n <= 64);
    memcpy(v, in, r->n * sizeof *v);
    if (r->inverse)
        ref_apply(r, 1, v);
    ref_cond(r, v, s, t, NULL, NULL);
    for (size_t i = 0; i < r->nx; i++)
        sum += s[i];
    return r->inverse ? -sum : sum;
}

/* ---- helpers ------------------------------------------------------------- */

/* A coupling layer moved off its start: W1 by up to 1.5/sqrt(nc), b1 and
 * b2 up to 0.5, W2 up to 1.5/sqrt(hidden), so that r spans about (-3, 3)
 * and s most of (-2, 2), and the clamp's slope varies. */
static invdl_layer *moved_layer(size_t n, size_t hidden, unsigned flags, uint64_t seed)
{
    invdl_layer *l = invdl_layer_coupling(n, hidden, flags, seed);
    assert_non_null(l);
    ref_c r = ref_of(l);
    float *v = malloc(r.np * sizeof *v);
    assert_non_null(v);
    uint64_t s = seed ^ 0x9e3779b97f4a7c15u;
    size_t b1 = r.h * r.nc, w2 = b1 + r.h, b2 = w2 + r.m2 * r.h;
    for (size_t i = 0; i < r.np; i++) {
        double scale = i < b1   ? 1.5 / sqrt((double)r.nc)
                       : i < w2 ? 0.5
                       : i < b2 ? 1.5 / sqrt((double)r.h)
                                : 0.5;
        v[i] = (float)(scale * test_uniform(&s));
    }
    assert_int_equal(invdl_layer_set_params(l, r.np, v), INVDL_OK);
    free(v);
    ref_free(&r);
    return l;
}

static const size_t WIDTHS[] = {2, 3, 4, 5, 8, 9, 17, 33};
#define WIDTH_COUNT (sizeof WIDTHS / sizeof WIDTHS[0])
/* Hidden sizes: one unit, a few, past a strip of 8, and wide enough at
 * width 2 and 3 that the layer runs its hidden units in chunks (the
 * operations' scratch holds about 110 per chunk there). */
static const size_t HIDDENS[] = {1, 5, 19, 260};
#define HIDDEN_COUNT (sizeof HIDDENS / sizeof HIDDENS[0])

/* ---- tests --------------------------------------------------------------- */

/* The start: W1 glorot-uniform (|W1| < sqrt(6/(nc + hidden)), spread over
 * the range, seeds differ), b1, W2, b2 zero; so the layer and its inverse
 * are the identity and log|det J| = 0 exactly, and a model of couplings
 * is the standard normal density. */
static void test_start(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++)
        for (size_t hi = 0; hi < HIDDEN_COUNT; hi++)
            for (unsigned flags = 0; flags < 4; flags++) {
                size_t n = WIDTHS[wi], h = HIDDENS[hi], batch = 37;
                invdl_layer *l = invdl_layer_coupling(n, h, flags, 7 + n);
                assert_non_null(l);
                assert_int_equal(invdl_layer_kind_of(l), INVDL_LAYER_COUPLING);
                assert_string_equal(invdl_layer_name(l), "coupling");
                assert_int_equal(invdl_layer_width(l), n);
                size_t got_h;
                unsigned got_flags;
                assert_int_equal(invdl_layer_coupling_settings(l, &got_h, &got_flags), INVDL_OK);
                assert_true(got_h == h && got_flags == flags);
                ref_c r = ref_of(l);
                size_t nc = (flags & INVDL_COUPLING_ODD) ? n / 2 : (n + 1) / 2;
                assert_int_equal(r.nc, nc);
                long double limit = sqrtl(6.0L / (long double)(nc + h)), big = 0.0L;
                for (size_t i = 0; i < r.np; i++) {
                    if (i < h * nc) {
                        assert_true(fabsl(r.p[i]) < limit);
                        big = fmaxl(big, fabsl(r.p[i]));
                    } else {
                        assert_true(r.p[i] == 0.0L);
                    }
                }
                if (h * nc >= 5) /* 5 draws all below limit/8: 8^-5 */
                    assert_true(big > limit / 8.0L);
                invdl_layer *other = invdl_layer_coupling(n, h, flags, 8 + n);
                float a, b;
                assert_int_equal(invdl_layer_get_params(other, r.np, NULL), INVDL_EINVAL);
                float *va = malloc(r.np * sizeof *va), *vb = malloc(r.np * sizeof *vb);
                assert_true(va != NULL && vb != NULL);
                assert_int_equal(invdl_layer_get_params(l, r.np, va), INVDL_OK);
                assert_int_equal(invdl_layer_get_params(other, r.np, vb), INVDL_OK);
                a = va[0];
                b = vb[0];
                assert_true(a != b);
                free(va);
                free(vb);
                invdl_layer_free(other);

                float *x = test_random_floats(n * batch, 3.0, 9 + n);
                float *y = malloc(n * batch * sizeof *y);
                float *ld = malloc(batch * sizeof *ld);
                assert_true(y != NULL && ld != NULL);
                invdl_layer *inv = invdl_layer_inverse(l);
                for (int dir = 0; dir < 2; dir++) {
                    assert_int_equal(invdl_layer_apply(dir ? inv : l, batch, x, y), INVDL_OK);
                    for (size_t i = 0; i < n * batch; i++)
                        assert_true(y[i] == x[i]);
                    assert_int_equal(invdl_layer_log_det(dir ? inv : l, batch, x, ld), INVDL_OK);
                    for (size_t s = 0; s < batch; s++)
                        assert_true(ld[s] == 0.0f);
                }
                invdl_layer_free(inv);
                free(x);
                free(y);
                free(ld);
                ref_free(&r);
                invdl_layer_free(l);
            }
    /* A flow of couplings at its start: log p(x) = -|x|^2/2 - log(2 pi). */
    invdl_model *m = invdl_model_create(2);
    assert_int_equal(invdl_model_add(m, invdl_layer_coupling(2, 8, 0, 1)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_coupling(2, 8, INVDL_COUPLING_ODD, 2)),
                     INVDL_OK);
    float x[2 * 9], lp[9];
    uint64_t s = 3;
    for (size_t i = 0; i < 18; i++)
        x[i] = (float)(2.0 * test_uniform(&s));
    assert_int_equal(invdl_model_log_prob(m, 9, x, lp), INVDL_OK);
    for (size_t k = 0; k < 9; k++) {
        double a = (double)x[2 * k], b = (double)x[2 * k + 1];
        double want = -0.5 * (a * a + b * b) - log(2.0 * 3.14159265358979323846);
        double tol = (double)half_float_ulp((long double)want) + 1e-12;
        assert_true(fabs((double)lp[k] - want) <= tol);
    }
    invdl_model_free(m);
}

/* Forward and inverse against the reference: each output is formed in
 * double and rounded once, from a conditioner whose tanh and exp are
 * within about 2^-47 relative and whose sums of at most hidden + 1 terms
 * are formed in double; all that moves y_x by less than
 * 2^-40 (|x| e^s (1 + M_r) + M_t) (M: the magnitudes ref_cond bounds),
 * far below float resolution.  Allowed: half an ulp of the reference plus
 * that.  A wrong formula, a swapped parity or a second rounding is off by
 * an ulp or more.  The condition passes through bit for bit.
 *
 * Round trips, the bound invdl.h states: with e = exp(s) and x' = g(f(x)),
 *     |x'_i - x_i| <= (2^-24 + 2^-44) (|y_i| e^-s_i + |x_i|),
 * and y' = f(g(y)) within (2^-24 + 2^-44) (|x_i| e^s_i + |y_i|).  Since
 * |s| <= 2, that is at most 8.4 float ulps of max(|x_i|, |y_i|).  Where
 * y_i or x'_i is subnormal its rounding is absolute, up to 2^-150: the
 * bound adds 2^-150 (1 + e^-s_i) (test_subnormal_round_trips). */
static void test_forward_inverse(void **state)
{
    (void)state;
    const size_t batches[] = {1, 7, 40, 77};
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++)
        for (size_t hi = 0; hi < HIDDEN_COUNT; hi++)
            for (unsigned flags = 0; flags < 4; flags++) {
                size_t n = WIDTHS[wi], h = HIDDENS[hi];
                size_t batch = batches[(wi + hi + flags) % 4], count = n * batch;
                invdl_layer *l = moved_layer(n, h, flags, 100 * n + h + flags);
                invdl_layer *inv = invdl_layer_inverse(l);
                ref_c r = ref_of(l);
                float *x = test_random_floats(count, 2.0, 31 + n + h);
                float *y = malloc(count * sizeof *y);
                float *back = malloc(count * sizeof *back), *copy = malloc(count * sizeof *copy);
                long double v[64], s[64], t[64], mr[64], mt[64];
                assert_true(y != NULL && back != NULL && copy != NULL);
                for (int dir = 0; dir < 2; dir++) {
                    /* dir 0: f then g; dir 1: g then f. */
                    invdl_layer *first = dir ? inv : l, *second = dir ? l : inv;
                    assert_int_equal(invdl_layer_apply(first, batch, x, y), INVDL_OK);
                    assert_int_equal(invdl_layer_apply(second, batch, y, back), INVDL_OK);
                    for (size_t k = 0; k < batch; k++) {
                        const float *xs = x + k * n, *ys = y + k * n, *bs = back + k * n;
                        for (size_t j = 0; j < n; j++)
                            v[j] = (long double)xs[j];
                        ref_cond(&r, v, s, t, mr, mt);
                        for (size_t j = 0; j < r.nc; j++) {
                            assert_memory_equal(&ys[ci(&r, j)], &xs[ci(&r, j)], sizeof *ys);
                            assert_memory_equal(&bs[ci(&r, j)], &xs[ci(&r, j)], sizeof *bs);
                        }
                        for (size_t i = 0; i < r.nx; i++) {
                            size_t at = xi(&r, i);
                            long double xv = (long double)xs[at], e = expl(dir ? -s[i] : s[i]);
                            long double want = dir ? (xv - t[i]) * e : xv * e + t[i];
                            long double tol = half_float_ulp(want) +
                                              0x1p-40L * (fabsl(xv) * e * (1.0L + mr[i]) + mt[i]);
                            if (fabsl((long double)ys[at] - want) > tol)
                                fail_msg("width %zu hidden %zu flags %u dir %d: %La, want %La", n,
                                         h, flags, dir, (long double)ys[at], want);
                            long double trip = (0x1p-24L + 0x1p-44L) *
                                                   (fabsl((long double)ys[at]) / e + fabsl(xv)) +
                                               0x1p-150L * (1.0L + 1.0L / e);
                            assert_true(fabsl((long double)bs[at] - xv) <= trip);
                        }
                    }
                    /* In place gives the same bits. */
                    memcpy(copy, x, count * sizeof *copy);
                    assert_int_equal(invdl_layer_apply(first, batch, copy, copy), INVDL_OK);
                    assert_memory_equal(copy, y, count * sizeof *copy);
                }
                free(x);
                free(y);
                free(back);
                free(copy);
                ref_free(&r);
                invdl_layer_free(inv);
                invdl_layer_free(l);
            }
}

/* Round trips through subnormals: width 2, hidden 1, the conditioner
 * switched off (W1 = b1 = W2 = 0) and b2 = (r0, 0) with 2 tanh(r0 / 2) =
 * -1 to float precision, so s = -1 and t = 0 for every input: y = x/e
 * rounds to a subnormal absolutely, and x' = y e carries that error times
 * e.  x = 2 * 2^-149 gives y = 2^-149 and x' = 3 * 2^-149 (off by 2^-149,
 * where the relative part of the bound alone allows 2^-172); the bound
 * with 2^-150 (1 + e^-s) allows 1.86 * 2^-149.  Every multiple of 2^-149
 * up to 2^-120, both signs, and normal values next to FLT_MIN. */
static void test_subnormal_round_trips(void **state)
{
    (void)state;
    invdl_layer *l = invdl_layer_coupling(2, 1, 0, 5), *inv = invdl_layer_inverse(l);
    assert_int_equal(invdl_layer_param_count(l), 6);
    const float r0 = (float)(2.0 * atanh(-0.5));
    const float p[6] = {0.0f, 0.0f, 0.0f, 0.0f, r0, 0.0f};
    assert_int_equal(invdl_layer_set_params(l, 6, p), INVDL_OK);
    const long double s = 2.0L * tanhl((long double)r0 / 2.0L);
    enum { N = 4096 };
    static float x[2 * N], y[2 * N], back[2 * N];
    for (size_t k = 0; k < N; k++) {
        float v = k < N - 64 ? (float)(k / 2 + 1) * 0x1p-149f : FLT_MIN * (1.0f + (float)k / N);
        x[2 * k] = 1.0f;
        x[2 * k + 1] = k % 2 ? -v : v;
    }
    assert_int_equal(invdl_layer_apply(l, N, x, y), INVDL_OK);
    assert_int_equal(invdl_layer_apply(inv, N, y, back), INVDL_OK);
    long double es = expl(-s), worst = 0.0L;
    for (size_t k = 0; k < N; k++) {
        long double xv = (long double)x[2 * k + 1], yv = (long double)y[2 * k + 1];
        long double err = fabsl((long double)back[2 * k + 1] - xv);
        long double bound = (0x1p-24L + 0x1p-44L) * (fabsl(yv) * es + fabsl(xv)) +
                            0x1p-150L * (1.0L + es);
        assert_true(err <= bound);
        worst = err > worst ? err : worst;
    }
    /* The absolute term is needed: some trip is off by 2^-149. */
    assert_true(worst >= 0x1p-149L);
    invdl_layer_free(inv);
    invdl_layer_free(l);
}

/* log|det J| against the sum of s (the reference's) and against the
 * Jacobian of the reference's map, by central differences in long double
 * (step 2^-16: truncation h^2 |f'''| / 6 below 1e-9 for these weights;
 * rounding 2^-64 / h, or 2^-53 / h where long double is double) and
 * elimination.  The library sums s in double and rounds once: allowed
 * half an ulp plus 2^-40 of the magnitudes; the brute force 1e-7 on top.
 * The inverse's at y is the negative; additive layers give exactly 0. */
static void test_log_det(void **state)
{
    (void)state;
    for (size_t wi = 0; wi < WIDTH_COUNT; wi++)
        for (size_t hi = 0; hi < HIDDEN_COUNT; hi++)
            for (unsigned flags = 0; flags < 4; flags++) {
                size_t n = WIDTHS[wi], h = HIDDENS[hi], batch = 3;
                if (n > 9 && h > 19)
                    continue; /* the brute force's cost */
                invdl_layer *l = moved_layer(n, h, flags, 200 * n + h + flags);
                invdl_layer *inv = invdl_layer_inverse(l);
                ref_c r = ref_of(l);
                float *x = test_random_floats(n * batch, 2.0, 41 + n);
                float *y = malloc(n * batch * sizeof *y);
                float ld[3], ld_inv[3];
                long double *jac = malloc(n * n * sizeof *jac), v[64], up[64], down[64];
                long double s[64], t[64], mr[64], mt[64];
                assert_true(y != NULL && jac != NULL);
                assert_int_equal(invdl_layer_log_det(l, batch, x, ld), INVDL_OK);
                assert_int_equal(invdl_layer_apply(l, batch, x, y), INVDL_OK);
                assert_int_equal(invdl_layer_log_det(inv, batch, y, ld_inv), INVDL_OK);
                for (size_t k = 0; k < batch; k++) {
                    for (size_t j = 0; j < n; j++)
                        v[j] = (long double)x[k * n + j];
                    ref_cond(&r, v, s, t, mr, mt);
                    long double want = 0.0L, mag = 0.0L;
                    for (size_t i = 0; i < r.nx; i++) {
                        want += s[i];
                        mag += 1.0L + mr[i];
                    }
                    const long double step = 0x1p-16L;
                    for (size_t j = 0; j < n; j++) {
                        memcpy(up, v, n * sizeof *up);
                        memcpy(down, v, n * sizeof *down);
                        up[j] += step;
                        down[j] -= step;
                        ref_apply(&r, 0, up);
                        ref_apply(&r, 0, down);
                        for (size_t i = 0; i < n; i++)
                            jac[i * n + j] = (up[i] - down[i]) / (2 * step);
                    }
                    long double brute = ref_eliminate(n, n, jac);
                    long double tol = half_float_ulp(want) + 0x1p-40L * mag;
                    if (r.additive) {
                        assert_true(ld[k] == 0.0f && ld_inv[k] == 0.0f);
                        assert_true(fabsl(brute) <= 1e-7L);
                        continue;
                    }
                    assert_true(fabsl((long double)ld[k] - want) <= tol);
                    assert_true(fabsl((long double)ld[k] - brute) <= tol + 1e-7L);
                    /* y's condition is x's, so the inverse sees the same s. */
                    assert_true(fabsl((long double)ld_inv[k] + want) <= tol);
                }
                free(x);
                free(y);
                free(jac);
                ref_free(&r);
                invdl_layer_free(inv);
                invdl_layer_free(l);
            }
}

/* ---- gradients ----------------------------------------------------------- */

/* The loss of a one-layer model (MSE against target, or the mean NLL) in
 * long double. */
static long double ref_loss(const ref_c *r, int nll, size_t batch, const long double *x,
                            const float *target)
{
    long double sum = 0.0L, v[64];
    size_t n = r->n;
    for (size_t k = 0; k < batch; k++) {
        memcpy(v, x + k * n, n * sizeof *v);
        long double ld = nll ? ref_log_det(r, v) : 0.0L;
        ref_apply(r, r->inverse, v);
        for (size_t j = 0; j < n; j++) {
            long double d = nll ? v[j] : v[j] - (long double)target[k * n + j];
            sum += nll ? 0.5L * d * d : d * d;
        }
        if (nll)
            sum += 0.5L * (long double)n * logl(2.0L * 3.141592653589793238462643383279503L) - ld;
    }
    return sum / (long double)(nll ? batch : batch * n);
}

/* The library's gradient (stored backprop, and memory saving for the
 * NLL) against central differences of ref_loss for every parameter and
 * input.  Tolerance as for every kind (test_gradients.c): the library's
 * activations are floats and its gradients are rounded to float, a few
 * 2^-24 relative, each backward step multiplying by slopes of order 1;
 * 1e-5 of the largest component covers that, a wrong formula (a sign, a
 * transposed W2, a missing clamp slope, a lost chunk) is off by O(1). */
static void check_gradient(invdl_layer *l, int nll, size_t batch, const float *x)
{
    invdl_model *m = invdl_model_create(invdl_layer_width(l));
    assert_int_equal(invdl_model_add(m, l), INVDL_OK);
    ref_c r = ref_of(l);
    size_t n = r.n, count = n * batch;
    float *y = malloc(count * sizeof *y), *pg = malloc(r.np * sizeof *pg);
    float *xg = malloc(count * sizeof *xg), loss;
    long double *xl = malloc(count * sizeof *xl), *fd = malloc((r.np + count) * sizeof *fd);
    assert_true(y && pg && xg && xl && fd);
    /* Targets an O(1) distance from the outputs. */
    assert_int_equal(invdl_model_predict(m, batch, x, y), INVDL_OK);
    uint64_t rs = 77;
    for (size_t i = 0; i < count; i++) {
        y[i] += (float)test_uniform(&rs);
        xl[i] = (long double)x[i];
    }
    const long double h = 0x1p-20L;
    for (size_t i = 0; i < r.np; i++) {
        long double keep = r.p[i], step = h * fmaxl(1.0L, fabsl(keep));
        r.p[i] = keep + step;
        long double up = ref_loss(&r, nll, batch, xl, y);
        r.p[i] = keep - step;
        long double down = ref_loss(&r, nll, batch, xl, y);
        r.p[i] = keep;
        fd[i] = (up - down) / (2 * step);
    }
    for (size_t i = 0; i < count; i++) {
        long double keep = xl[i], step = h * fmaxl(1.0L, fabsl(keep));
        xl[i] = keep + step;
        long double up = ref_loss(&r, nll, batch, xl, y);
        xl[i] = keep - step;
        long double down = ref_loss(&r, nll, batch, xl, y);
        xl[i] = keep;
        fd[r.np + i] = (up - down) / (2 * step);
    }
    long double sp = 0.0L, sx = 0.0L;
    for (size_t i = 0; i < r.np; i++)
        sp = fmaxl(sp, fabsl(fd[i]));
    for (size_t i = 0; i < count; i++)
        sx = fmaxl(sx, fabsl(fd[r.np + i]));
    assert_true(sp > 0.0L && sx > 0.0L);
    for (int saving = 0; saving < (nll ? 2 : 1); saving++) {
        invdl_fit_options o = invdl_fit_defaults();
        invdl_fit_report rep;
        o.loss = nll ? INVDL_LOSS_NLL : INVDL_LOSS_MSE;
        o.memory_saving = saving;
        o.max_gain = 1e6f;
        o.report = &rep;
        assert_int_equal(invdl_model_gradient(m, batch, x, y, &o, &loss, pg, xg), INVDL_OK);
        long double want = ref_loss(&r, nll, batch, xl, y);
        assert_true(fabsl((long double)loss - want) <= 1e-5L * fmaxl(1.0L, fabsl(want)));
        for (size_t i = 0; i < r.np; i++)
            if (fabsl((long double)pg[i] - fd[i]) > 1e-5L * sp)
                fail_msg("width %zu hidden %zu param %zu: %g, want %Lg (scale %Lg)", n, r.h, i,
                         (double)pg[i], fd[i], sp);
        for (size_t i = 0; i < count; i++)
            assert_true(fabsl((long double)xg[i] - fd[r.np + i]) <= 1e-5L * sx);
    }
    free(y);
    free(pg);
    free(xg);
    free(xl);
    free(fd);
    ref_free(&r);
    invdl_model_free(m);
}

/* Every flag, both directions, MSE and NLL: odd and even widths, one
 * hidden unit, and hidden layers run in chunks (width 2, hidden 260: the
 * forward pass in two chunks, the backward pass in three). */
static void test_gradients(void **state)
{
    (void)state;
    static const size_t cases[][2] = {{2, 1}, {3, 5}, {2, 260}, {7, 19}, {9, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (unsigned flags = 0; flags < 4; flags++)
            for (int inverse = 0; inverse < 2; inverse++)
                for (int nll = 0; nll < 2; nll++) {
                    size_t n = cases[c][0], h = cases[c][1], batch = h > 100 ? 5 : 13;
                    /* The chunked case, the costliest to difference:
                     * affine even and additive odd only. */
                    if (h > 100 && flags != 0 && flags != 3)
                        continue;
                    invdl_layer *l = moved_layer(n, h, flags, 300 + 10 * c + flags);
                    if (inverse) {
                        invdl_layer *inv = invdl_layer_inverse(l);
                        invdl_layer_free(l);
                        l = inv;
                    }
                    float *x = test_random_floats(n * batch, 1.5, 301 + c);
                    check_gradient(l, nll, batch, x);
                    free(x);
                }
}

/* The memory-saving gain bounds |J_rebuild|_inf |out|_inf / |in|_inf,
 * J_rebuild the Jacobian of the map that rebuilds the direction's input
 * from its output, here by central differences of the reference. */
static void test_gain(void **state)
{
    (void)state;
    for (unsigned flags = 0; flags < 4; flags++)
        for (int inverse = 0; inverse < 2; inverse++) {
            size_t n = 5, batch = 9;
            invdl_layer *l = moved_layer(n, 6, flags, 400 + flags), *use = l;
            if (inverse)
                use = invdl_layer_inverse(l);
            ref_c r = ref_of(l);
            float *in = test_random_floats(n * batch, 2.0, 401), out[45];
            assert_int_equal(invdl_layer_apply(use, batch, in, out), INVDL_OK);
            const invdl_params *p = l->params;
            double gain = p->ops->gain(p, inverse, batch, in, out);
            for (size_t k = 0; k < batch; k++) {
                long double v[8], up[8], down[8], rows[8] = {0}, on = 0.0L, inn = 0.0L;
                for (size_t j = 0; j < n; j++) {
                    v[j] = (long double)out[k * n + j];
                    on = fmaxl(on, fabsl(v[j]));
                    inn = fmaxl(inn, fabsl((long double)in[k * n + j]));
                }
                const long double step = 0x1p-20L;
                for (size_t j = 0; j < n; j++) {
                    memcpy(up, v, sizeof up);
                    memcpy(down, v, sizeof down);
                    up[j] += step;
                    down[j] -= step;
                    ref_apply(&r, !inverse, up);
                    ref_apply(&r, !inverse, down);
                    for (size_t i = 0; i < n; i++)
                        rows[i] += fabsl(up[i] - down[i]) / (2 * step);
                }
                long double norm = 0.0L;
                for (size_t i = 0; i < n; i++)
                    norm = fmaxl(norm, rows[i]);
                assert_true((long double)gain >= norm * on / inn * (1.0L - 1e-6L));
            }
            free(in);
            ref_free(&r);
            if (inverse)
                invdl_layer_free(use);
            invdl_layer_free(l);
        }
}

/* ---- files and bad input ------------------------------------------------- */

static unsigned char *to_memory(const invdl_model *m, size_t *size)
{
    assert_int_equal(invdl_model_save_memory(m, NULL, 0, size), INVDL_OK);
    unsigned char *buf = malloc(*size);
    assert_non_null(buf);
    assert_int_equal(invdl_model_save_memory(m, buf, *size, size), INVDL_OK);
    return buf;
}

/* A model of every flag (one used in both directions), saved and loaded:
 * same kinds, settings, directions, shared blocks, parameters, and the
 * same bits out of predict and log_det; saving again gives the same
 * bytes. */
static void test_file_round_trip(void **state)
{
    (void)state;
    size_t n = 5, batch = 21;
    invdl_model *m = invdl_model_create(n);
    invdl_layer *shared = moved_layer(n, 9, INVDL_COUPLING_ODD, 501);
    assert_int_equal(invdl_model_add(m, moved_layer(n, 4, 0, 500)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, shared), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense_lu(n, 3)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, moved_layer(n, 1, INVDL_COUPLING_ADDITIVE, 502)),
                     INVDL_OK);
    assert_int_equal(invdl_model_add(m, moved_layer(n, 30, 3, 503)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(shared)), INVDL_OK);
    size_t size, again;
    unsigned char *buf = to_memory(m, &size);
    invdl_status st = INVDL_EIO;
    invdl_model *back = invdl_model_load_memory(buf, size, &st);
    assert_int_equal(st, INVDL_OK);
    assert_non_null(back);
    assert_int_equal(invdl_model_depth(back), 6);
    for (size_t k = 0; k < 6; k++) {
        invdl_layer *a = invdl_model_layer(m, k), *b = invdl_model_layer(back, k);
        assert_int_equal(invdl_layer_kind_of(a), invdl_layer_kind_of(b));
        assert_int_equal(invdl_layer_is_inverse(a), invdl_layer_is_inverse(b));
        if (invdl_layer_kind_of(a) == INVDL_LAYER_COUPLING) {
            size_t ha, hb;
            unsigned fa, fb;
            assert_int_equal(invdl_layer_coupling_settings(a, &ha, &fa), INVDL_OK);
            assert_int_equal(invdl_layer_coupling_settings(b, &hb, &fb), INVDL_OK);
            assert_true(ha == hb && fa == fb);
        }
    }
    assert_true(invdl_layer_shares_params(invdl_model_layer(back, 1), invdl_model_layer(back, 5)));
    size_t np = invdl_model_param_count(m);
    assert_int_equal(invdl_model_param_count(back), np);
    float *pa = malloc(np * sizeof *pa), *pb = malloc(np * sizeof *pb);
    float *x = test_random_floats(n * batch, 2.0, 504);
    float ya[105], yb[105], la[21], lb[21];
    assert_true(pa != NULL && pb != NULL);
    assert_int_equal(invdl_model_get_params(m, np, pa), INVDL_OK);
    assert_int_equal(invdl_model_get_params(back, np, pb), INVDL_OK);
    assert_memory_equal(pa, pb, np * sizeof *pa);
    assert_int_equal(invdl_model_predict(m, batch, x, ya), INVDL_OK);
    assert_int_equal(invdl_model_predict(back, batch, x, yb), INVDL_OK);
    assert_memory_equal(ya, yb, sizeof ya);
    assert_int_equal(invdl_model_log_det(m, batch, x, la), INVDL_OK);
    assert_int_equal(invdl_model_log_det(back, batch, x, lb), INVDL_OK);
    assert_memory_equal(la, lb, sizeof la);
    unsigned char *saved = to_memory(back, &again);
    assert_int_equal(again, size);
    assert_memory_equal(saved, buf, size);
    free(saved);
    free(pa);
    free(pb);
    free(x);
    free(buf);
    invdl_model_free(back);
    invdl_model_free(m);
}

/* Bad arguments: NULL from the constructor, INVDL_EINVAL elsewhere, and
 * the layer, its parameters and what it computes left as they were. */
static void test_bad_input(void **state)
{
    (void)state;
    assert_null(invdl_layer_coupling(0, 4, 0, 1));
    assert_null(invdl_layer_coupling(1, 4, 0, 1));
    assert_null(invdl_layer_coupling(INVDL_MAX_WIDTH + 1, 4, 0, 1));
    assert_null(invdl_layer_coupling(SIZE_MAX, 4, 0, 1));
    assert_null(invdl_layer_coupling(4, 0, 0, 1));
    assert_null(invdl_layer_coupling(4, INVDL_COUPLING_MAX_HIDDEN + 1, 0, 1));
    assert_null(invdl_layer_coupling(4, SIZE_MAX, 0, 1));
    assert_null(invdl_layer_coupling(4, 4, 4, 1));
    assert_null(invdl_layer_coupling(4, 4, 0x80000000u, 1));
    assert_null(invdl_layer_coupling(4, 4, ~0u, 1));
    /* Too many parameters for an array, though each size is allowed. */
    assert_null(invdl_layer_coupling(INVDL_MAX_WIDTH, INVDL_COUPLING_MAX_HIDDEN, 0, 1));

    size_t n = 4, batch = 5;
    invdl_layer *l = moved_layer(n, 3, 0, 600), *d = invdl_layer_dense(n, 1);
    ref_c r = ref_of(l);
    size_t h = 99;
    unsigned flags = 99;
    assert_int_equal(invdl_layer_coupling_settings(NULL, &h, &flags), INVDL_EINVAL);
    assert_int_equal(invdl_layer_coupling_settings(l, NULL, &flags), INVDL_EINVAL);
    assert_int_equal(invdl_layer_coupling_settings(l, &h, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_coupling_settings(d, &h, &flags), INVDL_EINVAL);
    assert_true(h == 99 && flags == 99);

    float *keep = malloc(r.np * sizeof *keep), *v = malloc((r.np + 1) * sizeof *v);
    float *x = test_random_floats(n * batch, 1.0, 601), y0[20], y1[20];
    assert_true(keep != NULL && v != NULL);
    assert_int_equal(invdl_layer_get_params(l, r.np, keep), INVDL_OK);
    assert_int_equal(invdl_layer_apply(l, batch, x, y0), INVDL_OK);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const size_t where[4] = {0, r.h * r.nc, r.h * (r.nc + 1), r.np - 1}; /* W1, b1, W2, b2 */
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < 4; k++) {
            memcpy(v, keep, r.np * sizeof *v);
            v[where[k]] = bad[b];
            assert_int_equal(invdl_layer_set_params(l, r.np, v), INVDL_EINVAL);
        }
    assert_int_equal(invdl_layer_set_params(l, r.np - 1, keep), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(l, r.np + 1, keep), INVDL_EINVAL);
    assert_int_equal(invdl_layer_set_params(l, r.np, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_get_params(l, r.np + 1, v), INVDL_EINVAL);
    assert_int_equal(invdl_layer_get_params(l, r.np, v), INVDL_OK);
    assert_memory_equal(v, keep, r.np * sizeof *v);
    assert_int_equal(invdl_layer_apply(l, batch, x, y1), INVDL_OK);
    assert_memory_equal(y0, y1, sizeof y0);
    /* NULL data; a model of another width refuses the layer (and frees
     * it: ownership passes also on error). */
    assert_int_equal(invdl_layer_apply(l, batch, NULL, y1), INVDL_EINVAL);
    assert_int_equal(invdl_layer_apply(l, batch, x, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_layer_log_det(l, batch, x, NULL), INVDL_EINVAL);
    assert_memory_equal(y0, y1, sizeof y0);
    invdl_model *m = invdl_model_create(n + 1);
    assert_int_equal(invdl_model_add(m, invdl_layer_coupling(n, 3, 0, 1)), INVDL_EINVAL);
    assert_int_equal(invdl_model_depth(m), 0);
    invdl_model_free(m);
    /* Non-finite inputs are data, not errors: they propagate. */
    float odd_in[4] = {INFINITY, 1.0f, NAN, -2.0f}, odd_out[4];
    assert_int_equal(invdl_layer_apply(l, 1, odd_in, odd_out), INVDL_OK);
    assert_true(odd_out[0] == INFINITY && isnan(odd_out[2]));
    free(keep);
    free(v);
    free(x);
    ref_free(&r);
    invdl_layer_free(d);
    invdl_layer_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start),
        cmocka_unit_test(test_forward_inverse),
        cmocka_unit_test(test_subnormal_round_trips),
        cmocka_unit_test(test_log_det),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_gain),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
