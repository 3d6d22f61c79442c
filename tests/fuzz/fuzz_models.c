/*
 * fuzz_models.c - random models from the bytes: their inverse models,
 * files, log-densities, samples and training.
 *
 * The bytes choose a width (1..8), up to 12 layers (signed sin, abs-tanh,
 * PReLU with a chosen alpha_min, dense, dense_lu with a chosen s_min,
 * coupling with a chosen hidden size and flags;
 * inverse-direction layers; layers linked to earlier ones), edits of single
 * parameters (any float: refused when not finite or when a dense W turns
 * singular, the block then unchanged), a
 * batch of inputs (raw bit patterns or values in a range), and optionally
 * a short training run (SGD or Adam, mean squared error or the negative
 * log-likelihood, any settings, stored or memory-saving).
 *
 * Invariants, before and after training:
 *   - predict is the chain of its layers, bit for bit and status for
 *     status; so are the inverse model, predict_inverse and the
 *     layer-by-layer inverse;
 *   - the inverse is backward stable (SPEC section 2: an inverse model is
 *     judged by its backward error).  With y = f(x), v_L = y and
 *     v_{l-1} = g_l(v_l) the inverse model's intermediates, x^ = v_0, and
 *     u_0 = x^, u_l = f_l(u_{l-1}) the forward pass over x^, every layer
 *     must satisfy, componentwise,
 *         |u_l - v_l| <= Lip(f_l; u_{l-1}, v_{l-1}) |u_{l-1} - v_{l-1}|
 *                        + Lip(f_l; near v_{l-1}) delta_l + eps_l,
 *     where delta_l bounds the rounding of the inverse step (so that
 *     f_l(v_{l-1}) lies within Lip*delta_l of v_l) and eps_l that of the
 *     forward step.  By induction the same recurrence with bounds in place
 *     of the differences bounds |f(x^) - y|, checked too.  The terms:
 *       signed sin and abs-tanh (both directions): correctly rounded,
 *         rounding <= 2^-24 |result| + 2^-150;
 *       PReLU: one rounding of a*x or y/a, the same bound;
 *       dense W x + b: accumulated in double, rounded once: adds
 *         gamma_{n+2} (|b| + |W||x|);
 *       dense solve W^-1 (y - b) by LU with partial pivoting in double
 *         (Higham, Theorem 9.4: (W + dW) z = y - b, |dW| <= gamma_{3n}
 *         |L||U|, and |L||U| <= n 2^{n-1} max|W| entrywise): adds
 *         |W^-1| (2^-53 (|y| + |b|) + 2 gamma_{3n} n 2^{n-1} max|W| sum|z|);
 *       dense_lu W x + b = P L U x + b, two triangular products in double
 *         then + b, rounded once: adds gamma_{2n+2} (|b| + P|L||U||x|);
 *       dense_lu solve by its two triangular solves in double (Higham,
 *         Theorem 8.5: each solves a system perturbed by gamma_n of its
 *         factor, so (W + dW) z = y - b with |dW| <= (2 gamma_n +
 *         gamma_n^2) P|L||U|): adds |W^-1| (2^-53 (|y| + |b|) +
 *         (2 gamma_n + gamma_n^2) P|L||U||z|);
 *       Lipschitz constants: |W| and |W^-1| (the latter from an inverse
 *         computed here in long double, widened by 2^-12 n max|W^-1|,
 *         far above its error for the condition numbers the library
 *         accepts; dense_lu's W and W^-1 formed here from L, U and P
 *         and the triangular factors' inverses in long double); signed sin's slope is at most 1.3910079 on |x| <= T
 *         and 1 + |x| beyond; abs-tanh's at most 1.1996787; PReLU's 1 or
 *         a; the inverses of signed sin and abs-tanh have slope 1/f' at
 *         the preimage, whose minimum over an interval lies at an end
 *         (f' rises then falls on [0, T] and on [0, inf)), preimages from
 *         the long double references; infinite where an interval touches
 *         0 (the check is then void for that sample: counted, not
 *         failed).
 *       coupling (either direction): the condition passes through
 *         exactly; a transformed feature rounds once, plus 2^-40 of the
 *         magnitudes its double arithmetic sums (coupling_rounding);
 *         Lipschitz bounds from e^|s| <= e^sigma and the row sums of
 *         |W2| |W1| (coupling_terms);
 *     Samples with a non-finite value anywhere are not judged, nor those
 *     where the inverse model left a signed sin branch (INVDL_EDOMAIN).
 *   - save to memory and load: the same bytes again on saving the loaded
 *     model, bit-identical outputs of the loaded model, of its inverse
 *     model and of the saved-and-loaded inverse model;
 *   - log-determinants run (status OK or EDOMAIN);
 *   - log_prob: status OK or EDOMAIN; each sample's value and status are
 *     what it gets alone (-inf exactly where a sample alone is
 *     INVDL_EDOMAIN); where everything is finite, log_prob equals
 *     -0.5 |y|^2 - (width/2) log(2 pi) + log_det, y = predict(x), within
 *     the two float roundings (log_det's and log_prob's);
 *   - sample: status OK or EDOMAIN, the same bits twice, and its first
 *     sample what a call for one sample draws;
 *   - training returns OK, EDIVERGED or ESINGULAR, and leaves finite
 *     parameters that the forward and inverse models share.
 */
#include "fuzz.h"

#include "invdl.h"
#include "reference.h"

#include <float.h>
#include <math.h>

#define MAX_W 8
#define MAX_DEPTH 12
#define MAX_BATCH 8
#define MAX_HIDDEN 24

#define U24 0x1p-24     /* float rounding, relative */
#define TINY 0x1p-150   /* float rounding near 0, absolute */
#define MARGIN (1.0 + 0x1p-40) /* covers the rounding of the bound itself */
#define SSIN_T 2.028757838110434
#define SSIN_Y 1.819705741159653
#define SSIN_MAX_SLOPE 1.3910079   /* max of sin x + x cos x on [0, T], rounded up */
#define ABSTANH_MAX_SLOPE 1.1996787 /* max of tanh x + x sech^2 x, rounded up */

static unsigned long judged, void_samples, outside;
static double tightest; /* largest share of a rounding allowance used */

static double gamma_of(int k)
{
    double u = 0x1p-53;
    return (double)k * u / (1.0 - (double)k * u);
}

/* What the bound needs of one layer of the forward model. */
typedef struct layer_info {
    int kind;
    int inverse;      /* the layer computes its kind's inverse map */
    float alpha_min;
    float alpha[MAX_W];
    double w_abs[MAX_W * MAX_W];
    double b_abs[MAX_W];
    double inv_abs[MAX_W * MAX_W]; /* bound on |W^-1| */
    double solve_growth;           /* 2 gamma_{3n} n 2^{n-1} max|W| */
    double lu_abs[MAX_W * MAX_W];  /* dense_lu: P|L||U|, rows in W's order */
    /* coupling: the settings and values, and per transformed feature i
     * bounds on e^|s_i| (esig), on |t_i| (tmax) and on the row sums of
     * |ds_i/dc| (srow) and |dt_i/dc| (trow) */
    size_t hidden, nc, nx, m2;
    int odd, additive;
    float cv[MAX_HIDDEN * (MAX_W + 2 + 2 * MAX_W) + 2 * MAX_W];
    double esig[MAX_W], tmax[MAX_W], srow[MAX_W], trow[MAX_W];
} layer_info;

/* |W^-1| bounded entrywise, from Gauss-Jordan in long double. */
static void inverse_bound(size_t n, const long double *w, double *out)
{
    long double a[MAX_W][2 * MAX_W];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 2 * n; j++)
            a[i][j] = j < n ? w[i * n + j] : (long double)(j - n == i);
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabsl(a[i][k]) > fabsl(a[piv][k]))
                piv = i;
        for (size_t j = 0; j < 2 * n; j++) {
            long double t = a[k][j];
            a[k][j] = a[piv][j];
            a[piv][j] = t;
        }
        FUZZ_CHECK(a[k][k] != 0.0L); /* the library refused singular W */
        for (size_t i = 0; i < n; i++) {
            if (i == k)
                continue;
            long double m = a[i][k] / a[k][k];
            for (size_t j = 0; j < 2 * n; j++)
                a[i][j] -= m * a[k][j];
        }
    }
    double big = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            out[i * n + j] = (double)fabsl(a[i][n + j] / a[i][i]);
            big = fmax(big, out[i * n + j]);
        }
    for (size_t i = 0; i < n * n; i++)
        out[i] += 0x1p-12 * (double)n * big;
}

/* The coupling's bounds (invdl.h's definition): with a_k = sum_j |W1_kj|,
 * |ds_i/dc| sums to at most sum_k |W2_ri,k| a_k (tanh' and the clamp's
 * slope are at most 1), |dt_i/dc| to sum_k |W2_ti,k| a_k; |t_i| <= |b2_ti|
 * + sum_k |W2_ti,k| and |s_i| <= 2 tanh(rho/2), rho = |b2_ri| +
 * sum_k |W2_ri,k| (|h| <= 1).  Each rounded up generously: libm's tanh
 * and exp here, and the library's own exp(s) within 2^-46 of exact. */
static void describe_coupling(const invdl_layer *l, size_t n, layer_info *info)
{
    unsigned flags;
    FUZZ_CHECK(invdl_layer_coupling_settings(l, &info->hidden, &flags) == INVDL_OK);
    FUZZ_CHECK(info->hidden <= MAX_HIDDEN);
    info->odd = (flags & INVDL_COUPLING_ODD) != 0;
    info->additive = (flags & INVDL_COUPLING_ADDITIVE) != 0;
    info->nc = info->odd ? n / 2 : n - n / 2;
    info->nx = n - info->nc;
    info->m2 = info->additive ? info->nx : 2 * info->nx;
    size_t h = info->hidden, np = h * (info->nc + 1 + info->m2) + info->m2;
    FUZZ_CHECK(invdl_layer_get_params(l, np, info->cv) == INVDL_OK);
    const float *w1 = info->cv, *w2 = w1 + h * (info->nc + 1), *b2 = w2 + info->m2 * h;
    const double up = 1.0 + 0x1p-40;
    for (size_t i = 0; i < info->nx; i++) {
        size_t rt = info->additive ? i : info->nx + i;
        double s = 0.0, t = 0.0, rho = 0.0, tm = fabs((double)b2[rt]);
        for (size_t k = 0; k < h; k++) {
            double a = 0.0;
            for (size_t j = 0; j < info->nc; j++)
                a += fabs((double)w1[k * info->nc + j]);
            t += fabs((double)w2[rt * h + k]) * a;
            tm += fabs((double)w2[rt * h + k]);
            if (!info->additive) {
                s += fabs((double)w2[i * h + k]) * a;
                rho += fabs((double)w2[i * h + k]);
            }
        }
        rho = info->additive ? 0.0 : (rho + fabs((double)b2[i])) * up;
        info->esig[i] = exp(2.0 * tanh(0.5 * rho)) * up;
        info->srow[i] = s * up;
        info->trow[i] = t * up;
        info->tmax[i] = tm * up;
    }
}

/* 1 + the magnitudes the library's double arithmetic sums on the way to
 * r_i and t_i at the condition of v: 1 + sum over i's rows of W2 of
 * (|b2| + sum_k |W2_k| (1 + |b1_k| + sum_j |W1_kj c_j|)). */
static double coupling_magnitude(const layer_info *f, const float *v, size_t i)
{
    size_t h = f->hidden, nc = f->nc;
    const float *w1 = f->cv, *b1 = w1 + h * nc, *w2 = b1 + h, *b2 = w2 + f->m2 * h;
    double m = 1.0;
    for (size_t q = 0; q < (f->additive ? 1u : 2u); q++) {
        size_t row = q * f->nx + i;
        m += fabs((double)b2[row]);
        for (size_t k = 0; k < h; k++) {
            double a = 1.0 + fabs((double)b1[k]);
            for (size_t j = 0; j < nc; j++)
                a += fabs((double)w1[k * nc + j] * (double)v[2 * j + (size_t)f->odd]);
            m += fabs((double)w2[row * h + k]) * a;
        }
    }
    return m;
}

/* The rounding of one step of a coupling (either direction) from in to
 * out, transformed feature i (at index at): the output's float rounding,
 * and the double arithmetic with a conditioner whose tanh and exp are
 * within 2^-46 and whose sums of at most 26 terms are in double, all
 * within 2^-40 of the magnitudes (tests/test_coupling.c states the same
 * bound).  The condition passes through exactly. */
static double coupling_rounding(const layer_info *f, const float *in, const float *out, size_t i,
                                size_t at)
{
    double mag = fabs((double)in[at]) + fabs((double)out[at]) + f->tmax[i];
    return U24 * fabs((double)out[at]) + TINY +
           0x1p-40 * f->esig[i] * mag * coupling_magnitude(f, in, i);
}

/* A coupling's local terms (judge_sample): its Lipschitz bounds between
 * ui and vi, row by row.  Transformed feature i of y = x e^s + t moves by
 * at most e^sigma |dx| + (|x| e^sigma S + T) max|dc|; of x = (y - t)
 * e^-s by e^sigma |dy| + (e^sigma T + |x| S) max|dc| with |x| <=
 * e^sigma (|y| + tmax); the condition's rows are the identity's. */
static void coupling_terms(const layer_info *f, size_t n, const float *ui, const float *vi,
                           const float *uo, const float *vo, const double *e, double *spread,
                           double *rounding, double *whole)
{
    double dc = 0.0, ec = 0.0;
    for (size_t j = 0; j < f->nc; j++) {
        size_t at = 2 * j + (size_t)f->odd;
        double d = fabs((double)ui[at] - (double)vi[at]);
        spread[at] = d;
        whole[at] = e[at];
        rounding[at] = 0.0;
        dc = fmax(dc, d);
        ec = fmax(ec, e[at]);
    }
    for (size_t i = 0; i < f->nx; i++) {
        size_t at = 2 * i + (size_t)!f->odd;
        double x = fmax(fabs((double)ui[at]), fabs((double)vi[at])), es = f->esig[i];
        double b = f->inverse ? es * f->trow[i] + es * (x + f->tmax[i]) * f->srow[i]
                              : x * es * f->srow[i] + f->trow[i];
        spread[at] = es * fabs((double)ui[at] - (double)vi[at]) + b * dc;
        whole[at] = es * e[at] + b * ec;
        /* The inverse step vo -> vi rounds by delta; the forward map moves
         * that by e^sigma. */
        rounding[at] = es * coupling_rounding(f, vo, vi, i, at) +
                       coupling_rounding(f, ui, uo, i, at);
    }
    (void)n;
}

static void describe(const invdl_layer *l, size_t n, layer_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = (int)invdl_layer_kind_of(l);
    info->inverse = invdl_layer_is_inverse(l);
    info->alpha_min = invdl_layer_alpha_min(l);
    if (info->kind == INVDL_LAYER_MPRELU) {
        FUZZ_CHECK(invdl_layer_get_params(l, n, info->alpha) == INVDL_OK);
    } else if (info->kind == INVDL_LAYER_DENSE) {
        float p[MAX_W * MAX_W + MAX_W];
        FUZZ_CHECK(invdl_layer_get_params(l, n * n + n, p) == INVDL_OK);
        double big = 0.0;
        for (size_t i = 0; i < n * n; i++) {
            info->w_abs[i] = fabs((double)p[i]);
            big = fmax(big, info->w_abs[i]);
        }
        for (size_t i = 0; i < n; i++)
            info->b_abs[i] = fabs((double)p[n * n + i]);
        long double wl[MAX_W * MAX_W];
        for (size_t i = 0; i < n * n; i++)
            wl[i] = (long double)p[i];
        inverse_bound(n, wl, info->inv_abs);
        info->solve_growth = 2.0 * gamma_of(3 * (int)n) * (double)n * ldexp(1.0, (int)n - 1) * big;
    } else if (info->kind == INVDL_LAYER_COUPLING) {
        describe_coupling(l, n, info);
    } else if (info->kind == INVDL_LAYER_DENSE_LU) {
        /* L, U (the floored diagonal) and P from the documented layout. */
        float p[MAX_W * MAX_W + MAX_W];
        size_t perm[MAX_W], tri = n * (n - 1) / 2;
        FUZZ_CHECK(invdl_layer_get_params(l, n * n + n, p) == INVDL_OK);
        FUZZ_CHECK(invdl_layer_permutation(l, perm) == INVDL_OK);
        long double lo[MAX_W][MAX_W] = {{0}}, up[MAX_W][MAX_W] = {{0}};
        float s_min = invdl_layer_s_min(l);
        for (size_t i = 0; i < n; i++) {
            lo[i][i] = 1.0L;
            for (size_t k = 0; k < i; k++)
                lo[i][k] = (long double)p[i * (i - 1) / 2 + k];
            float s = p[2 * tri + i];
            up[i][i] = (long double)(fabsf(s) >= s_min ? s : copysignf(s_min, s));
            for (size_t k = i + 1; k < n; k++)
                up[i][k] = (long double)p[tri + i * (2 * n - i - 1) / 2 + (k - i - 1)];
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                long double w = 0.0L, a = 0.0L;
                for (size_t k = 0; k < n; k++) {
                    w += lo[i][k] * up[k][j];
                    a += fabsl(lo[i][k]) * fabsl(up[k][j]);
                }
                info->w_abs[perm[i] * n + j] = (double)fabsl(w) * (1.0 + 0x1p-40);
                info->lu_abs[perm[i] * n + j] = (double)a * (1.0 + 0x1p-40);
            }
        for (size_t i = 0; i < n; i++)
            info->b_abs[i] = fabs((double)p[n * n + i]);
        /* W^-1 = U^-1 L^-1 P^T through the factors: with a tiny s_min W
         * may be singular to long double precision, where elimination on W
         * would meet a zero pivot, while the factors' inverses exist. */
        long double li[MAX_W][MAX_W] = {{0}}, ui[MAX_W][MAX_W] = {{0}};
        for (size_t j = 0; j < n; j++) {
            for (size_t i = j; i < n; i++) { /* column j of L^-1 */
                long double acc = i == j ? 1.0L : 0.0L;
                for (size_t k = j; k < i; k++)
                    acc -= lo[i][k] * li[k][j];
                li[i][j] = acc;
            }
            for (size_t i = j + 1; i-- > 0;) { /* column j of U^-1 */
                long double acc = i == j ? 1.0L : 0.0L;
                for (size_t k = i + 1; k <= j; k++)
                    acc -= up[i][k] * ui[k][j];
                ui[i][j] = acc / up[i][i];
            }
        }
        double big = 0.0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                long double acc = 0.0L; /* (U^-1 L^-1)_ij, column perm[j] of W^-1 */
                for (size_t k = 0; k < n; k++)
                    acc += ui[i][k] * li[k][j];
                info->inv_abs[i * n + perm[j]] = (double)fabsl(acc);
                big = fmax(big, info->inv_abs[i * n + perm[j]]);
            }
        for (size_t i = 0; i < n * n; i++)
            info->inv_abs[i] += 0x1p-12 * (double)n * big;
    }
}

/* A lower bound on the slope of the forward map of signed sin / abs-tanh
 * at x >= 0: the two terms in long double (each within a few 2^-64 of its
 * size), less 2^-58 of their sizes. */
static long double slope_below(int kind, long double x)
{
    long double p, q;
    if (kind == INVDL_LAYER_SSIN) {
        p = sinl(x);
        q = x * cosl(x);
    } else {
        long double c = coshl(x);
        p = tanhl(x);
        q = x / (c * c);
    }
    return p + q - 0x1p-58L * (fabsl(p) + fabsl(q));
}

/* Lipschitz constant of elementwise layer `info` (column j) over [a, b]. */
static double lip_elementwise(const layer_info *info, size_t j, double a, double b)
{
    double lo = fmin(fabs(a), fabs(b)), hi = fmax(fabs(a), fabs(b));
    if (info->kind == INVDL_LAYER_MPRELU) {
        double m = fabs((double)info->alpha[j]), s = fmax(m, (double)info->alpha_min);
        double neg = info->inverse ? 1.0 / s : s;
        if (a >= 0.0)
            return 1.0;
        return b <= 0.0 ? neg : fmax(1.0, neg);
    }
    if (!info->inverse) {
        if (info->kind == INVDL_LAYER_ABSTANH)
            return ABSTANH_MAX_SLOPE;
        return hi <= SSIN_T ? SSIN_MAX_SLOPE : 1.0 + hi;
    }
    /* The inverse map g: slope 1/f'(g(t)); unbounded at 0 and, for signed
     * sin, at |t| = Y. */
    if (a <= 0.0 && b >= 0.0)
        return (double)INFINITY;
    long double xl, xh;
    if (info->kind == INVDL_LAYER_SSIN) {
        if (hi >= SSIN_Y)
            return (double)INFINITY;
        xl = ref_ssin_inv((long double)lo);
        xh = ref_ssin_inv((long double)hi);
    } else {
        xl = ref_abstanh_inv((long double)lo);
        xh = ref_abstanh_inv((long double)hi);
    }
    /* The references are good to 2^-61: widen by far more. */
    xl *= 1.0L - 0x1p-50L;
    xh *= 1.0L + 0x1p-50L;
    if (info->kind == INVDL_LAYER_SSIN && xh >= (long double)SSIN_T)
        return (double)INFINITY;
    long double m = fminl(slope_below(info->kind, xl), slope_below(info->kind, xh));
    return m > 0.0L ? (double)(1.0L / m) : (double)INFINITY;
}

/* Bound on the rounding of a dense or dense_lu layer's map in direction
 * `solve` (0: W x + b, 1: W^-1 (x - b)) from in to out, added to acc. */
static void dense_rounding(const layer_info *info, size_t n, int solve, const float *in,
                           const float *out, double *acc)
{
    int lu = info->kind == INVDL_LAYER_DENSE_LU;
    if (!solve) {
        double g = gamma_of(lu ? 2 * (int)n + 2 : (int)n + 2);
        const double *mag = lu ? info->lu_abs : info->w_abs;
        for (size_t i = 0; i < n; i++) {
            double s = info->b_abs[i];
            for (size_t j = 0; j < n; j++)
                s += mag[i * n + j] * fabs((double)in[j]);
            acc[i] += U24 * fabs((double)out[i]) + TINY + g * s;
        }
        return;
    }
    double zsum = 0.0, z[MAX_W], t[MAX_W];
    for (size_t m = 0; m < n; m++) {
        z[m] = fabs((double)out[m]) * (1.0 + 0x1p-23) + 0x1p-149;
        zsum += z[m];
    }
    double g2 = 2.0 * gamma_of((int)n) + gamma_of((int)n) * gamma_of((int)n);
    for (size_t k = 0; k < n; k++) {
        t[k] = 0x1p-53 * (fabs((double)in[k]) + info->b_abs[k]);
        if (!lu) {
            t[k] += info->solve_growth * zsum;
            continue;
        }
        for (size_t m = 0; m < n; m++)
            t[k] += g2 * info->lu_abs[k * n + m] * z[m];
    }
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < n; k++)
            s += info->inv_abs[i * n + k] * t[k];
        acc[i] += U24 * fabs((double)out[i]) + TINY + s;
    }
}

static int all_finite(size_t n, const float *v)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* The per-layer and whole-model bounds for one sample.  u[l], v[l] point
 * at the sample's row of layer l's values. */
static void judge_sample(const layer_info *info, size_t depth, size_t n, const float *const *u,
                         const float *const *v)
{
    for (size_t l = 0; l <= depth; l++)
        if (!all_finite(n, u[l]) || !all_finite(n, v[l]))
            return;
    double e[MAX_W] = {0}; /* whole-model bound on |u_l - v_l| */
    for (size_t l = 1; l <= depth; l++) {
        const layer_info *f = &info[l - 1];
        const float *ui = u[l - 1], *vi = v[l - 1], *uo = u[l], *vo = v[l];
        /* The inverse step of an inverse signed sin layer is the forward
         * signed sin, which undoes it only on the branch (outside it the
         * inverse model reported INVDL_EDOMAIN). */
        if (f->kind == INVDL_LAYER_SSIN && f->inverse)
            for (size_t i = 0; i < n; i++)
                if (!(fabsf(vo[i]) <= INVDL_SSIN_XMAX)) {
                    outside++;
                    return;
                }
        /* local = spread + rounding: what the difference of the inputs can
         * become, plus what the two steps may round. */
        double spread[MAX_W] = {0}, rounding[MAX_W] = {0}, whole[MAX_W] = {0};
        if (f->kind == INVDL_LAYER_COUPLING) {
            coupling_terms(f, n, ui, vi, uo, vo, e, spread, rounding, whole);
        } else if (f->kind == INVDL_LAYER_DENSE || f->kind == INVDL_LAYER_DENSE_LU) {
            const double *lip = f->inverse ? f->inv_abs : f->w_abs;
            double delta[MAX_W] = {0};
            /* The inverse step g_l(v_l) -> v_{l-1} is the other direction. */
            dense_rounding(f, n, !f->inverse, vo, vi, delta);
            dense_rounding(f, n, f->inverse, ui, uo, rounding);
            for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < n; j++) {
                    double d = fabs((double)ui[j] - (double)vi[j]);
                    spread[i] += lip[i * n + j] * d;
                    rounding[i] += lip[i * n + j] * delta[j];
                    whole[i] += lip[i * n + j] * e[j];
                }
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)ui[i] - (double)vi[i]);
                double delta = U24 * fabs((double)vi[i]) + TINY;
                double eps = U24 * fabs((double)uo[i]) + TINY;
                double near = lip_elementwise(f, i, (double)vi[i] - delta, (double)vi[i] + delta);
                rounding[i] = near * delta + eps;
                if (d != 0.0) {
                    double a = fmin((double)ui[i], (double)vi[i]);
                    double b = fmax((double)ui[i], (double)vi[i]);
                    double prop = lip_elementwise(f, i, a, b);
                    spread[i] = prop * d;
                    whole[i] = prop * e[i];
                }
            }
        }
        for (size_t i = 0; i < n; i++) {
            double local = spread[i] + rounding[i];
            whole[i] += rounding[i];
            if (!isfinite(local) || !isfinite(whole[i])) {
                void_samples++;
                return;
            }
            double gap = fabs((double)uo[i] - (double)vo[i]);
            if (!(gap <= local * MARGIN)) {
                fprintf(stderr,
                        "layer %zu (kind %d%s) component %zu: u %a -> %a, v %a -> %a: "
                        "|u - v| = %a > %a\n",
                        l - 1, f->kind, f->inverse ? ", inverse" : "", i, (double)ui[i],
                        (double)uo[i], (double)vi[i], (double)vo[i], gap, local);
                FUZZ_CHECK(gap <= local * MARGIN);
            }
            /* How much of the rounding allowance the layer used. */
            if ((gap - spread[i]) / rounding[i] > tightest)
                tightest = (gap - spread[i]) / rounding[i];
            e[i] = whole[i] * MARGIN;
        }
    }
    /* The backward error of the whole inverse model. */
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(fabs((double)u[depth][i] - (double)v[depth][i]) <= e[i]);
    judged++;
}

static uint8_t *save(const invdl_model *m, size_t *size)
{
    FUZZ_CHECK(invdl_model_save_memory(m, NULL, 0, size) == INVDL_OK);
    uint8_t *buf = malloc(*size);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(invdl_model_save_memory(m, buf, *size, size) == INVDL_OK);
    return buf;
}

static int ok_or_domain(invdl_status st)
{
    return st == INVDL_OK || st == INVDL_EDOMAIN;
}

/* Runs the layers of m one at a time over batch samples in place. */
static invdl_status chain(invdl_model *m, size_t batch, float *v, float **steps, size_t nw)
{
    invdl_status st = INVDL_OK;
    for (size_t l = 0; l < invdl_model_depth(m); l++) {
        invdl_status s = invdl_layer_apply(invdl_model_layer(m, l), batch, v, v);
        FUZZ_CHECK(ok_or_domain(s));
        if (s != INVDL_OK)
            st = s;
        if (steps != NULL)
            memcpy(steps[l], v, nw * sizeof *v);
    }
    return st;
}

/* log_prob against each sample alone and against y = predict(x) and the
 * log-dets ld (status sd); sampling's determinism. */
static void check_flow(invdl_model *m, size_t batch, const float *x, const float *y,
                       const float *ld, invdl_status sd)
{
    size_t n = invdl_model_width(m);
    float lp[MAX_BATCH], one;
    invdl_status sp = invdl_model_log_prob(m, batch, x, lp);
    FUZZ_CHECK(ok_or_domain(sp));
    int any_outside = 0;
    for (size_t s = 0; s < batch; s++) {
        invdl_status alone = invdl_model_log_prob(m, 1, x + s * n, &one);
        FUZZ_CHECK(ok_or_domain(alone) && same_float(one, lp[s]));
        if (alone == INVDL_EDOMAIN) {
            FUZZ_CHECK(isinf(lp[s]) && lp[s] < 0.0f);
            any_outside = 1;
        }
        if (sd != INVDL_OK || !isfinite(lp[s]) || !isfinite(ld[s]) || !all_finite(n, y + s * n))
            continue;
        double sq = 0.0;
        for (size_t j = 0; j < n; j++)
            sq += (double)y[s * n + j] * (double)y[s * n + j];
        double want = -0.5 * sq - 0.91893853320467274 * (double)n + (double)ld[s];
        /* ld and lp are each one float rounding of their double values. */
        double slack = 0x1p-24 * (fabs((double)ld[s]) + fabs((double)lp[s])) + 0x1p-148 +
                       0x1p-50 * (sq + (double)n);
        FUZZ_CHECK(fabs((double)lp[s] - want) <= slack);
    }
    FUZZ_CHECK((sp == INVDL_EDOMAIN) == any_outside);

    float a[MAX_BATCH * MAX_W], b[MAX_BATCH * MAX_W];
    invdl_status s1 = invdl_model_sample(m, batch, 99, a);
    FUZZ_CHECK(ok_or_domain(s1));
    FUZZ_CHECK(invdl_model_sample(m, batch, 99, b) == s1);
    FUZZ_CHECK(memcmp(a, b, batch * n * sizeof *a) == 0);
    FUZZ_CHECK(ok_or_domain(invdl_model_sample(m, 1, 99, b)));
    FUZZ_CHECK(memcmp(a, b, n * sizeof *a) == 0);
}

static void check_model(invdl_model *m, invdl_model *inv, size_t batch, const float *x)
{
    size_t n = invdl_model_width(m), depth = invdl_model_depth(m), nw = batch * n;
    float *y = malloc(nw * sizeof *y), *t = malloc(nw * sizeof *t);
    float *u[MAX_DEPTH + 1], *v[MAX_DEPTH + 1];
    for (size_t l = 0; l <= depth; l++) {
        u[l] = malloc(nw * sizeof *u[l]);
        v[l] = malloc(nw * sizeof *v[l]);
        FUZZ_CHECK(u[l] != NULL && v[l] != NULL);
    }
    FUZZ_CHECK(y != NULL && t != NULL);

    /* Forward: predict is the chain of its layers. */
    invdl_status sf = invdl_model_predict(m, batch, x, y);
    FUZZ_CHECK(ok_or_domain(sf));
    memcpy(t, x, nw * sizeof *t);
    FUZZ_CHECK(chain(m, batch, t, NULL, nw) == sf);
    FUZZ_CHECK(memcmp(t, y, nw * sizeof *t) == 0);

    /* Inverse model, layer by layer: v[L] = y down to v[0] = x^. */
    memcpy(v[depth], y, nw * sizeof *y);
    memcpy(t, y, nw * sizeof *t);
    float *inv_steps[MAX_DEPTH];
    for (size_t i = 0; i < depth; i++)
        inv_steps[i] = v[depth - 1 - i];
    invdl_status sg = chain(inv, batch, t, inv_steps, nw);
    float *xh = malloc(nw * sizeof *xh);
    FUZZ_CHECK(xh != NULL);
    FUZZ_CHECK(invdl_model_predict(inv, batch, y, xh) == sg);
    FUZZ_CHECK(memcmp(xh, v[0], nw * sizeof *xh) == 0);
    FUZZ_CHECK(invdl_model_predict_inverse(m, batch, y, xh) == sg);
    FUZZ_CHECK(memcmp(xh, v[0], nw * sizeof *xh) == 0);

    /* Forward again from x^: u[0] = x^ up to u[L] = f(x^). */
    memcpy(u[0], v[0], nw * sizeof *u[0]);
    memcpy(t, v[0], nw * sizeof *t);
    (void)chain(m, batch, t, u + 1, nw);

    layer_info info[MAX_DEPTH];
    for (size_t l = 0; l < depth; l++)
        describe(invdl_model_layer(m, l), n, &info[l]);
    for (size_t s = 0; s < batch; s++) {
        const float *us[MAX_DEPTH + 1], *vs[MAX_DEPTH + 1];
        for (size_t l = 0; l <= depth; l++) {
            us[l] = u[l] + s * n;
            vs[l] = v[l] + s * n;
        }
        judge_sample(info, depth, n, us, vs);
    }

    /* Files: the loaded model, its inverse, the loaded inverse model. */
    size_t size, size2;
    uint8_t *bytes = save(m, &size);
    invdl_status st;
    invdl_model *back = invdl_model_load_memory(bytes, size, &st);
    FUZZ_CHECK(back != NULL && st == INVDL_OK);
    uint8_t *bytes2 = save(back, &size2);
    FUZZ_CHECK(size2 == size && memcmp(bytes, bytes2, size) == 0);
    free(bytes2);
    FUZZ_CHECK(invdl_model_predict(back, batch, x, t) == sf);
    FUZZ_CHECK(memcmp(t, y, nw * sizeof *t) == 0);
    invdl_model *back_inv = invdl_model_inverse(back);
    FUZZ_CHECK(back_inv != NULL);
    FUZZ_CHECK(invdl_model_predict(back_inv, batch, y, t) == sg);
    FUZZ_CHECK(memcmp(t, v[0], nw * sizeof *t) == 0);
    invdl_model_free(back_inv);
    invdl_model_free(back);
    free(bytes);
    bytes = save(inv, &size);
    back = invdl_model_load_memory(bytes, size, &st);
    FUZZ_CHECK(back != NULL && st == INVDL_OK);
    FUZZ_CHECK(invdl_model_predict(back, batch, y, t) == sg);
    FUZZ_CHECK(memcmp(t, v[0], nw * sizeof *t) == 0);
    invdl_model_free(back);
    free(bytes);

    float ld[MAX_BATCH];
    FUZZ_CHECK(ok_or_domain(invdl_model_log_det(inv, batch, y, ld)));
    invdl_status sd = invdl_model_log_det(m, batch, x, ld);
    FUZZ_CHECK(ok_or_domain(sd));
    check_flow(m, batch, x, y, ld, sd);

    for (size_t l = 0; l <= depth; l++) {
        free(u[l]);
        free(v[l]);
    }
    free(xh);
    free(y);
    free(t);
}

static float pick_alpha_min(uint8_t k)
{
    static const float choices[] = {0.01f, 0.125f, 0.5f, 1.0f, 1e-3f, 2.0f};
    return choices[k % (sizeof choices / sizeof choices[0])];
}

static float pick_s_min(uint8_t k)
{
    static const float choices[] = {INVDL_DENSE_LU_S_MIN, 0.25f, 1e-30f, 0.5f};
    return choices[k % (sizeof choices / sizeof choices[0])];
}

/* Kinds: 0 ssin, 1 abstanh, 2 mprelu, 3 dense, 4 dense_lu, 5 coupling
 * (hidden 1 to 24, any flags; at width 1, where no coupling exists, a
 * dense_lu layer from the same bytes). */
#define KINDS 6u

static invdl_layer *new_layer(fuzz_bytes *b, int kind, size_t n)
{
    switch (kind) {
    case 0: return invdl_layer_ssin(n);
    case 1: return invdl_layer_abstanh(n);
    case 2: {
        uint8_t seed = take_u8(b);
        return invdl_layer_mprelu_min(n, seed, pick_alpha_min(take_u8(b)));
    }
    case 3: return invdl_layer_dense(n, take_u32(b));
    case 5: {
        uint32_t seed = take_u32(b);
        size_t hidden = 1u + take_u8(b) % MAX_HIDDEN;
        unsigned flags = take_u8(b) % 4u;
        if (n >= 2)
            return invdl_layer_coupling(n, hidden, flags, seed);
        return invdl_layer_dense_lu(n, seed);
    }
    default: {
        uint32_t seed = take_u32(b);
        return invdl_layer_dense_lu_min(n, seed, pick_s_min(take_u8(b)));
    }
    }
}

static invdl_model *build(fuzz_bytes *b, size_t n)
{
    invdl_model *m = invdl_model_create(n);
    FUZZ_CHECK(m != NULL);
    size_t depth = take_u8(b) % (MAX_DEPTH + 1);
    for (size_t l = 0; l < depth; l++) {
        uint8_t op = take_u8(b) % (KINDS + 2u);
        invdl_layer *layer;
        if (op < KINDS) {
            layer = new_layer(b, op, n);
        } else if (op == KINDS && l > 0) {
            /* Linked to an earlier layer: shares its block. */
            layer = invdl_layer_inverse(invdl_model_layer(m, take_u8(b) % l));
        } else {
            /* A layer computing its kind's inverse map. */
            invdl_layer *fwd = new_layer(b, take_u8(b) % KINDS, n);
            layer = invdl_layer_inverse(fwd);
            invdl_layer_free(fwd);
        }
        FUZZ_CHECK(layer != NULL);
        FUZZ_CHECK(invdl_model_add(m, layer) == INVDL_OK);
    }
    return m;
}

/* Single parameters set to values from the bytes. */
static void edit(fuzz_bytes *b, invdl_model *m)
{
    size_t edits = take_u8(b) % 4u, depth = invdl_model_depth(m);
    for (size_t e = 0; e < edits && depth > 0; e++) {
        invdl_layer *l = invdl_model_layer(m, take_u8(b) % depth);
        size_t count = invdl_layer_param_count(l);
        if (count == 0)
            continue;
        float *p = malloc(count * sizeof *p), *q = malloc(count * sizeof *q);
        FUZZ_CHECK(p != NULL && q != NULL);
        FUZZ_CHECK(invdl_layer_get_params(l, count, p) == INVDL_OK);
        size_t k = take_u32(b) % count;
        uint8_t how = take_u8(b);
        uint32_t raw = take_u32(b);
        float old = p[k];
        p[k] = how & 1 ? float_of_bits(raw) : (float)((double)raw * 0x1p-31 - 1.0) * 2.0f;
        invdl_status st = invdl_layer_set_params(l, count, p);
        FUZZ_CHECK(invdl_layer_get_params(l, count, q) == INVDL_OK);
        if (!isfinite(p[k])) {
            FUZZ_CHECK(st == INVDL_EINVAL);
        } else {
            FUZZ_CHECK(st == INVDL_OK || (st == INVDL_ESINGULAR &&
                                          invdl_layer_kind_of(l) == INVDL_LAYER_DENSE));
        }
        if (st != INVDL_OK)
            p[k] = old; /* refused: unchanged */
        FUZZ_CHECK(memcmp(p, q, count * sizeof *p) == 0);
        free(p);
        free(q);
    }
}

static void train(fuzz_bytes *b, invdl_model *m, invdl_model *inv, size_t batch, const float *x)
{
    static const float rates[] = {0.0f, 1e-3f, 1e-2f, 0.1f};
    size_t n = invdl_model_width(m), nw = batch * n, np = invdl_model_param_count(m);
    uint8_t k = take_u8(b), g = take_u8(b);
    invdl_fit_options o = invdl_fit_defaults();
    o.learning_rate = rates[k & 3u];
    o.momentum = k & 4u ? 0.9f : 0.0f;
    o.nesterov = (k >> 3) & 1;
    o.memory_saving = (k >> 4) & 1;
    o.global_clipnorm = k & 0x20u ? 1.0f : 0.0f;
    o.max_gain = k & 0x40u ? (float)INFINITY : (k & 0x80u ? 1.0f : 1e4f);
    o.batch_size = 1u + (g & 3u);
    o.epochs = 1u + ((g >> 2) & 1u);
    o.checkpoint_every = (g >> 3) & 3u;
    o.seed = g;
    /* Adam takes none of SGD's momentum options. */
    uint8_t h = take_u8(b);
    o.loss = h & 1u ? INVDL_LOSS_NLL : INVDL_LOSS_MSE;
    if (h & 2u) {
        o.optimizer = INVDL_OPTIMIZER_ADAM;
        o.momentum = 0.0f;
        o.nesterov = 0;
    }
    float *target = malloc(nw * sizeof *target);
    FUZZ_CHECK(target != NULL);
    for (size_t i = 0; i < nw; i++)
        target[i] = 0.5f * x[i];
    /* Validation, early stopping and the schedules (a 0 byte, or none
     * left: all off). */
    uint8_t c = take_u8(b);
    if (c & 1u) {
        o.validation_n = batch;
        o.validation_x = x;
        o.validation_y = target;
    }
    o.early_stopping = (c >> 1) & 1;
    o.restore_best_weights = o.early_stopping & (c >> 2);
    o.early_stopping_patience = (c >> 3) & 1u;
    if (c & 0x10u) {
        o.schedule = INVDL_SCHEDULE_EXPONENTIAL;
        o.decay_steps = 1u + ((c >> 5) & 1u);
        o.decay_rate = c & 0x40u ? 0.5f : 2.0f;
    } else if (c & 0x20u) {
        o.reduce_lr_on_plateau = 1;
        o.plateau_patience = 0;
    }
    o.epochs += c & 0x80u ? 2u : 0u;
    float loss;
    invdl_status st = invdl_model_fit(inv != NULL && (g & 0x80u) ? inv : m, batch, x,
                                      o.loss == INVDL_LOSS_NLL ? NULL : target, &o, &loss);
    FUZZ_CHECK(st == INVDL_OK || st == INVDL_EDIVERGED || st == INVDL_ESINGULAR);
    float *p = malloc((np + 1) * sizeof *p), *q = malloc((np + 1) * sizeof *q);
    FUZZ_CHECK(p != NULL && q != NULL);
    FUZZ_CHECK(invdl_model_get_params(m, np, p) == INVDL_OK);
    FUZZ_CHECK(all_finite(np, p));
    /* Every step was projected: after a whole fit that took steps no
     * dense_lu s_i and no mprelu alpha is left in its floor (an edit may
     * have put one there before); with rate 0 no step is taken and
     * nothing is projected. */
    for (size_t l = 0, at = 0;
         l < invdl_model_depth(m) && st == INVDL_OK && o.learning_rate > 0.0f; l++) {
        invdl_layer *layer = invdl_model_layer(m, l);
        int first = 1;
        for (size_t e = 0; e < l; e++)
            first &= !invdl_layer_shares_params(layer, invdl_model_layer(m, e));
        if (!first)
            continue;
        if (invdl_layer_kind_of(layer) == INVDL_LAYER_DENSE_LU)
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(fabsf(p[at + n * (n - 1) + i]) >= invdl_layer_s_min(layer));
        if (invdl_layer_kind_of(layer) == INVDL_LAYER_MPRELU)
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(fabsf(p[at + i]) >= invdl_layer_alpha_min(layer));
        at += invdl_layer_param_count(layer);
    }
    /* The inverse model reads the same blocks (in its own order). */
    FUZZ_CHECK(invdl_model_get_params(inv, np, q) == INVDL_OK);
    FUZZ_CHECK(all_finite(np, q));
    free(p);
    free(q);
    free(target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes b = {data, size};
    size_t n = 1 + take_u8(&b) % MAX_W;
    invdl_model *m = build(&b, n);
    edit(&b, m);
    invdl_model *inv = invdl_model_inverse(m);
    FUZZ_CHECK(inv != NULL);

    size_t batch = 1 + take_u8(&b) % MAX_BATCH, nw = batch * n;
    uint8_t mode = take_u8(&b);
    static const float scales[] = {1.0f, 2.0f, 0.01f, 8.0f};
    float *x = malloc(nw * sizeof *x);
    FUZZ_CHECK(x != NULL);
    for (size_t i = 0; i < nw; i++) {
        uint32_t r = take_u32(&b);
        x[i] = mode & 4u ? float_of_bits(r)
                         : (float)((double)r * 0x1p-31 - 1.0) * scales[mode & 3u];
    }
    check_model(m, inv, batch, x);
    if (mode & 8u) {
        train(&b, m, inv, batch, x);
        check_model(m, inv, batch, x);
    }
    free(x);
    invdl_model_free(inv);
    invdl_model_free(m);
    return 0;
}

const char *fuzz_summary(void)
{
    static char text[200];
    snprintf(text, sizeof text,
             "%lu samples judged by the round-trip bound, %lu void, %lu outside a domain; "
             "at most %.3g of a layer's rounding allowance used",
             judged, void_samples, outside, tightest);
    return text;
}
