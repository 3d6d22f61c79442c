/*
 * fuzz_kernels.c - every kernel, every code path, hostile sizes and data.
 *
 * The bytes choose a kernel pair and direction, the array length (tails of
 * every length), where input and output start (every float alignment),
 * whether the call is in place, how the data are made (raw bit patterns:
 * NaN, infinities, subnormals; values inside the domain; special values
 * such as the domain edges), and for PReLU the shape, any alpha and any
 * alpha_min.  Then, for the public entry point, every code path the CPU
 * runs (the portable scalar one, AVX2, AVX-512) and the per-element
 * function:
 *   - the status follows the header's rules, computed here from the data;
 *   - every path gives the same floats (NaN payloads aside), out of place
 *     and in place, and writes nothing outside the output (guard floats
 *     around it) nor into a const input;
 *   - the outputs obey the documented range and sign facts, and each
 *     kernel pair is odd where it should be;
 *   - forward and inverse are consistent as correct rounding demands:
 *     for y = f(x), g(prev(y)) <= x <= g(next(y)), and for x = g(y),
 *     f(prev(x)) <= y <= f(next(x)) (the exact value lies within half an
 *     ulp, f and g are increasing, and rounding keeps order);
 *   - PReLU equals its definition, a*x or y/a with a = max(|alpha|,
 *     alpha_min), bit for bit, and with a bad alpha or alpha_min writes
 *     nothing;
 *   - NULL arrays and sizes whose byte count overflows are refused
 *     without a read or a write.
 */
#include "fuzz.h"

#include "kernels/kernels.h"

#include <math.h>
#include <stddef.h>

#define MAX_N 1024
#define GUARD 16
#define SENTINEL 0x7fa5a5a5u /* a NaN no kernel produces */

typedef invdl_status (*kernel_fn)(size_t n, const float *in, float *out);
typedef float (*element_fn)(float v);
typedef invdl_status (*prelu_fn)(size_t rows, size_t cols, const float *alpha, float alpha_min,
                                 const float *in, float *out);

/* The code paths: the public functions first, then every path of the
 * library's table (kernels.h) that this CPU runs. */
#define MAX_PATHS 8

static size_t running_paths(const invdl_kernel_path **paths)
{
    size_t count = 0;
    for (size_t i = 0; i < invdl_kernel_path_count() && count < MAX_PATHS; i++)
        if (invdl_kernel_path_at(i)->runs())
            paths[count++] = invdl_kernel_path_at(i);
    return count;
}

/* ---- elementwise pairs --------------------------------------------------- */

typedef struct pair_dir {
    const char *name;
    kernel_fn pub;      /* the public kernel */
    size_t slot;        /* where a path table has it */
    element_fn one;
    kernel_fn partner;  /* the public kernel of the other direction */
    int ssin;           /* 1: signed sin, 0: abs-tanh */
    int inverse;
} pair_dir;

static const pair_dir pairs[4] = {
    {"ssin_forward", invdl_ssin_forward, offsetof(invdl_kernel_path, ssin_forward),
     invdl_ssin_forward1, invdl_ssin_inverse, 1, 0},
    {"ssin_inverse", invdl_ssin_inverse, offsetof(invdl_kernel_path, ssin_inverse),
     invdl_ssin_inverse1, invdl_ssin_forward, 1, 1},
    {"abstanh_forward", invdl_abstanh_forward, offsetof(invdl_kernel_path, abstanh_forward),
     invdl_abstanh_forward1, invdl_abstanh_inverse, 0, 0},
    {"abstanh_inverse", invdl_abstanh_inverse, offsetof(invdl_kernel_path, abstanh_inverse),
     invdl_abstanh_inverse1, invdl_abstanh_forward, 0, 1},
};

/* The public kernel of k, then k on every path this CPU runs; returns how
 * many. */
static size_t kernel_paths(const pair_dir *k, kernel_fn *fns)
{
    const invdl_kernel_path *paths[MAX_PATHS];
    size_t count = running_paths(paths);
    fns[0] = k->pub;
    for (size_t p = 0; p < count; p++)
        fns[p + 1] = *(const kernel_fn *)(const void *)((const char *)paths[p] + k->slot);
    return count + 1;
}

/* Values worth hitting on purpose. */
static float special(uint32_t k)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u, 0x007fffffu, 0x00800000u,
        0x3f800000u, 0xbf800000u, 0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u,
        0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fa5a5a4u,
        0x4001d72bu, 0x4001d72cu, 0x4001d72au, /* around INVDL_SSIN_XMAX */
        0x3fe8ec1eu, 0x3fe8ec1fu, 0x3fe8ec1du, /* around INVDL_SSIN_YMAX */
        0x410b4e7fu, 0x410b4e7eu, 0x410b4e7du, /* abs-tanh's y == x thresholds */
        0x1a000000u, 0x1a800000u, 0x20000000u, 0x3fc90fdbu, 0x40490fdbu, 0x40000000u,
    };
    float v = float_of_bits(bits[k % (sizeof bits / sizeof bits[0])]);
    return (k >> 16) & 1 ? -v : v;
}

/* One input value from 4 bytes, by mode: raw bits, in-domain, special, or
 * each of those chosen per element. */
static float make_value(fuzz_bytes *b, int mode, float scale)
{
    uint32_t u = take_u32(b);
    if (mode == 3) {
        mode = (int)(u & 3u) % 3;
        u = (u >> 2) * 0x9e3779b1u;
    }
    switch (mode) {
    case 0: return float_of_bits(u);
    case 1: return (float)(((double)u * 0x1p-32 * 2.0 - 1.0) * (double)scale);
    default: return special(u);
    }
}

/* A float array with `off` floats of slack before it and GUARD sentinels
 * on both sides of the whole. */
typedef struct guarded {
    float *base;
    float *at;
    size_t n, total;
} guarded;

static guarded guarded_new(size_t n, size_t off)
{
    guarded g;
    g.total = 2 * GUARD + off + n;
    g.base = malloc(g.total * sizeof *g.base);
    FUZZ_CHECK(g.base != NULL);
    for (size_t i = 0; i < g.total; i++)
        g.base[i] = float_of_bits(SENTINEL);
    g.at = g.base + GUARD + off;
    g.n = n;
    return g;
}

/* Nothing outside [at, at + n) changed. */
static int guards_intact(const guarded *g)
{
    for (size_t i = 0; i < g->total; i++) {
        float *p = g->base + i;
        if ((p < g->at || p >= g->at + g->n) && bits_of_float(*p) != SENTINEL)
            return 0;
    }
    return 1;
}

static int all_sentinel(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bits_of_float(v[i]) != SENTINEL)
            return 0;
    return 1;
}

/* The status the header promises for this data. */
static invdl_status expected_status(const pair_dir *k, const float *in, size_t n)
{
    if (!k->ssin)
        return INVDL_OK;
    float limit = k->inverse ? INVDL_SSIN_YMAX : INVDL_SSIN_XMAX;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(in[i]) <= limit))
            return INVDL_EDOMAIN;
    return INVDL_OK;
}

/* Range and sign facts for one element. */
static void check_element(const pair_dir *k, float in, float out)
{
    if (in != in) {
        FUZZ_CHECK(out != out);
        return;
    }
    if (k->ssin) {
        float limit = k->inverse ? INVDL_SSIN_YMAX : INVDL_SSIN_XMAX;
        if (!(fabsf(in) <= limit)) {
            /* Outside: the forward still computes finite x; the inverse
             * and infinities give NaN. */
            if (k->inverse || isinf(in))
                FUZZ_CHECK(out != out);
            else
                FUZZ_CHECK(isfinite(out) && fabsf(out) <= fabsf(in));
            return;
        }
        FUZZ_CHECK(isfinite(out) && signbit(out) == signbit(in));
        if (k->inverse)
            FUZZ_CHECK(fabsf(out) <= INVDL_SSIN_XMAX && fabsf(out) >= fabsf(in));
        else
            FUZZ_CHECK(fabsf(out) <= INVDL_SSIN_YMAX && fabsf(out) <= fabsf(in));
        return;
    }
    /* abs-tanh: odd, increasing, |f(x)| <= |x| and so |g(y)| >= |y|. */
    FUZZ_CHECK(out == out && signbit(out) == signbit(in));
    FUZZ_CHECK(k->inverse ? fabsf(out) >= fabsf(in) : fabsf(out) <= fabsf(in));
    FUZZ_CHECK(isinf(in) ? out == in : isfinite(out));
}

/* Correct rounding of both directions: the partner brackets the input
 * from the output's neighbours. */
static void check_brackets(const pair_dir *k, const float *in, const float *out, size_t n)
{
    float *lo = malloc((n + 1) * sizeof *lo), *hi = malloc((n + 1) * sizeof *hi);
    float *glo = malloc((n + 1) * sizeof *glo), *ghi = malloc((n + 1) * sizeof *ghi);
    FUZZ_CHECK(lo != NULL && hi != NULL && glo != NULL && ghi != NULL);
    for (size_t i = 0; i < n; i++) {
        lo[i] = nextafterf(out[i], -INFINITY);
        hi[i] = nextafterf(out[i], INFINITY);
    }
    (void)k->partner(n, lo, glo);
    (void)k->partner(n, hi, ghi);
    /* Where the partner is monotone: signed sin's branch. */
    float edge = k->inverse ? INVDL_SSIN_XMAX : INVDL_SSIN_YMAX;
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        if (!isfinite(x) || !isfinite(out[i]))
            continue;
        if (k->ssin && !(fabsf(x) <= (k->inverse ? INVDL_SSIN_YMAX : INVDL_SSIN_XMAX)))
            continue;
        if (!k->ssin || lo[i] >= -edge)
            FUZZ_CHECK(glo[i] <= x);
        if (!k->ssin || hi[i] <= edge)
            FUZZ_CHECK(x <= ghi[i]);
    }
    free(lo);
    free(hi);
    free(glo);
    free(ghi);
}

static void fuzz_pair(const pair_dir *k, fuzz_bytes *b)
{
    uint8_t shape = take_u8(b), mode = take_u8(b);
    size_t in_off = shape & 15u, out_off = shape >> 4;
    size_t n = b->left / 4 < MAX_N ? b->left / 4 : MAX_N;
    float scale = k->ssin ? (k->inverse ? INVDL_SSIN_YMAX : INVDL_SSIN_XMAX) * 1.0625f : 12.0f;
    guarded in = guarded_new(n, in_off);
    for (size_t i = 0; i < n; i++)
        in.at[i] = make_value(b, mode & 3, scale);
    invdl_status want = expected_status(k, in.at, n);

    guarded ref = guarded_new(n, out_off);
    float *copy = malloc((n + 1) * sizeof *copy);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, in.at, n * sizeof *copy);
    kernel_fn fns[MAX_PATHS + 1];
    size_t nfns = kernel_paths(k, fns);
    FUZZ_CHECK(k->pub(n, in.at, ref.at) == want);
    FUZZ_CHECK(guards_intact(&ref) && guards_intact(&in));
    FUZZ_CHECK(memcmp(copy, in.at, n * sizeof *copy) == 0);
    for (size_t i = 0; i < n; i++) {
        check_element(k, in.at[i], ref.at[i]);
        FUZZ_CHECK(same_float(k->one(in.at[i]), ref.at[i]));
    }

    for (size_t p = 1; p < nfns; p++) {
        /* Out of place... */
        guarded out = guarded_new(n, out_off);
        FUZZ_CHECK(fns[p](n, in.at, out.at) == want);
        FUZZ_CHECK(guards_intact(&out) && guards_intact(&in));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(same_float(out.at[i], ref.at[i]));
        free(out.base);
        /* ...and in place, at the input's alignment. */
        guarded inplace = guarded_new(n, in_off);
        memcpy(inplace.at, in.at, n * sizeof *inplace.at);
        FUZZ_CHECK(fns[p](n, inplace.at, inplace.at) == want);
        FUZZ_CHECK(guards_intact(&inplace));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(same_float(inplace.at[i], ref.at[i]));
        free(inplace.base);
    }

    /* Odd: f(-x) = -f(x), with the same status. */
    for (size_t i = 0; i < n; i++)
        copy[i] = -in.at[i];
    float *neg = malloc((n + 1) * sizeof *neg);
    FUZZ_CHECK(neg != NULL);
    FUZZ_CHECK(k->pub(n, copy, neg) == want);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(same_float(neg[i], -ref.at[i]));
    free(neg);

    check_brackets(k, in.at, ref.at, n);
    free(copy);
    free(ref.base);
    free(in.base);
}

/* ---- PReLU -------------------------------------------------------------- */

static int prelu_args_valid(size_t cols, const float *alpha, float alpha_min, size_t n)
{
    if (!(alpha_min > 0.0f) || !isfinite(alpha_min))
        return 0;
    if (n == 0)
        return 1;
    for (size_t j = 0; j < cols; j++)
        if (!isfinite(alpha[j]))
            return 0;
    return 1;
}

static float prelu_reference(int inverse, float alpha, float alpha_min, float v)
{
    float a = fabsf(alpha) > alpha_min ? fabsf(alpha) : alpha_min;
    if (!(v < 0.0f))
        return v;
    return inverse ? v / a : a * v;
}

static void fuzz_prelu(int inverse, fuzz_bytes *b)
{
    const invdl_kernel_path *table[MAX_PATHS];
    size_t count = running_paths(table);
    prelu_fn paths[MAX_PATHS + 1];
    paths[0] = inverse ? invdl_mprelu_inverse : invdl_mprelu_forward;
    for (size_t p = 0; p < count; p++)
        paths[p + 1] = inverse ? table[p]->mprelu_inverse : table[p]->mprelu_forward;
    uint8_t shape = take_u8(b), mode = take_u8(b), c = take_u8(b), r = take_u8(b);
    uint8_t amode = take_u8(b);
    size_t in_off = shape & 15u, out_off = shape >> 4;
    /* Up to 600 columns, past the kernel's chunk of 256 slopes. */
    size_t cols = c & 0x80u ? 200u + (size_t)(c & 0x7fu) * 3u : (size_t)(c % 40u);
    size_t rows = r % 9u;
    size_t n = rows * cols;
    if (n > MAX_N) {
        rows = MAX_N / cols;
        n = rows * cols;
    }

    float alpha_min;
    switch (amode & 7u) {
    case 0: alpha_min = INVDL_MPRELU_ALPHA_MIN; break;
    case 1: alpha_min = float_of_bits(take_u32(b)); break; /* anything, NaN included */
    case 2: alpha_min = 0.0f; break;
    case 3: alpha_min = -0.5f; break;
    case 4: alpha_min = 0x1p-149f; break;
    case 5: alpha_min = 3.0f; break;
    default: alpha_min = (float)(take_u8(b) + 1) / 256.0f; break;
    }
    float *alpha = malloc((cols + 1) * sizeof *alpha);
    FUZZ_CHECK(alpha != NULL);
    for (size_t j = 0; j < cols; j++)
        alpha[j] = make_value(b, (amode >> 3) & 3, 2.0f);
    guarded in = guarded_new(n, in_off);
    for (size_t i = 0; i < n; i++)
        in.at[i] = make_value(b, mode & 3, 4.0f);
    int valid = prelu_args_valid(cols, alpha, alpha_min, n);

    for (size_t p = 0; p <= count; p++) {
        for (int in_place = 0; in_place <= 1; in_place++) {
            guarded out = guarded_new(n, in_place ? in_off : out_off);
            const float *src = in.at;
            if (in_place) {
                memcpy(out.at, in.at, n * sizeof *out.at);
                src = out.at;
            }
            invdl_status st = paths[p](rows, cols, alpha, alpha_min, src, out.at);
            FUZZ_CHECK(guards_intact(&out) && guards_intact(&in));
            if (!valid) {
                /* Refused: nothing written. */
                FUZZ_CHECK(st == INVDL_EINVAL);
                if (in_place)
                    FUZZ_CHECK(memcmp(out.at, in.at, n * sizeof *out.at) == 0);
                else
                    FUZZ_CHECK(all_sentinel(out.at, n));
            } else {
                FUZZ_CHECK(st == INVDL_OK);
                for (size_t i = 0; i < n; i++)
                    FUZZ_CHECK(same_float(out.at[i], prelu_reference(inverse, alpha[i % cols],
                                                                     alpha_min, in.at[i])));
            }
            free(out.base);
        }
    }
    /* Shapes whose float count overflows, and NULL alpha, are refused
     * without touching memory. */
    float one = 1.0f, out1 = 0.0f;
    FUZZ_CHECK(paths[0](SIZE_MAX / 2 + 1, 2, alpha, 0.5f, &one, &out1) == INVDL_EINVAL);
    FUZZ_CHECK(paths[0](1, SIZE_MAX, alpha, 0.5f, &one, &out1) == INVDL_EINVAL);
    FUZZ_CHECK(paths[0](1, 1, NULL, 0.5f, &one, &out1) == INVDL_EINVAL);
    FUZZ_CHECK(out1 == 0.0f);
    free(alpha);
    free(in.base);
}

/* ---- bad arguments for the elementwise kernels -------------------------- */

static void fuzz_bad_arguments(fuzz_bytes *b)
{
    size_t n = (size_t)take_u32(b) | (size_t)1;
    float v = 0.5f, out = 7.0f;
    for (int k = 0; k < 4; k++) {
        kernel_fn fns[MAX_PATHS + 1];
        size_t nfns = kernel_paths(&pairs[k], fns);
        for (size_t p = 0; p < nfns; p++) {
            kernel_fn f = fns[p];
            FUZZ_CHECK(f(n, NULL, &out) == INVDL_EINVAL);
            FUZZ_CHECK(f(n, &v, NULL) == INVDL_EINVAL);
            FUZZ_CHECK(f(SIZE_MAX / sizeof(float) + 1, &v, &out) == INVDL_EINVAL);
            FUZZ_CHECK(f(SIZE_MAX, &v, &out) == INVDL_EINVAL);
            FUZZ_CHECK(f(0, NULL, NULL) == INVDL_OK);
            FUZZ_CHECK(out == 7.0f && v == 0.5f);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_bytes b = {data, size};
    uint8_t which = take_u8(&b);
    switch (which % 7u) {
    case 4: fuzz_prelu(0, &b); break;
    case 5: fuzz_prelu(1, &b); break;
    case 6: fuzz_bad_arguments(&b); break;
    default: fuzz_pair(&pairs[which % 7u], &b); break;
    }
    return 0;
}

const char *fuzz_summary(void)
{
    return NULL;
}
