/*
 * test_paths.c - every SIMD path against the portable scalar path, bit for
 * bit: both claim correct rounding (or the single IEEE operation), so they
 * must agree on every input, specials, tails, alignments and aliasing
 * included.  NaN results must be NaN on both paths; a compiler may quiet a
 * signaling NaN on one and not the other, as IEEE 754 arithmetic allows.  The scalar path itself is checked against independent
 * references in test_ssin.c, test_abstanh.c and test_mprelu.c; the
 * coupling conditioner's kernels (in double: one algorithm in separate
 * IEEE operations on every path, so again the same bits) here, against
 * long double.
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

#include "kernels/kernels.h"
#include "reference.h"

typedef invdl_status (*kernel_fn)(size_t n, const float *in, float *out);

#define SAMPLE 1000000

/* The SIMD paths this CPU runs, by number in the path table (0 is the
 * scalar path every one is compared with); returns how many. */
static size_t simd_paths(size_t *which)
{
    size_t count = 0;
    for (size_t i = 1; i < invdl_kernel_path_count(); i++)
        if (invdl_kernel_path_at(i)->runs())
            which[count++] = i;
    return count;
}

#define MAX_PATHS 8

/* Inputs: a stride through all 2^32 bit patterns from a random start, plus
 * specials, so every binade, sign, NaN and infinity appears. */
static float *make_inputs(size_t n, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    uint64_t rng = seed;
    uint32_t bits = (uint32_t)test_rand(&rng);
    const uint32_t stride = (uint32_t)(0x100000000ull / n) | 1u;
    for (size_t i = 0; i < n; i++, bits += stride)
        v[i] = float_from_bits(bits);
    static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_TRUE_MIN,
                                     -FLT_MIN, FLT_MAX, INVDL_SSIN_XMAX, INVDL_SSIN_YMAX};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0] && i < n; i++)
        v[i * 7 % n] = specials[i];
    return v;
}

/* Realistic data inside a range, where the fast paths do all the work. */
static float *make_uniform(size_t n, float lo, float hi, uint64_t seed)
{
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)(test_rand(&rng) >> 40) * 0x1p-24f;
    return v;
}

static int same_result(float a, float b)
{
    return bits_from_float(a) == bits_from_float(b) || (isnan(a) && isnan(b));
}

static void assert_same_results(const char *path, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!same_result(a[i], b[i]))
            fail_msg("%s path, element %zu: scalar %a, %s %a", path, i, (double)a[i], path,
                     (double)b[i]);
}

/* Every length up to two vectors of the widest path and past its tails,
 * and around the block runners' blocks (64 and 128 floats). */
static const size_t lengths[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  11,  12,  13,  14,
                                 15, 16, 17, 18, 19, 20, 23, 24, 25, 31, 32,  33,  40,  47,  48,
                                 49, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 300};

/* The kernel named by `offset` (offsetof(invdl_kernel_path, ...)) on the
 * scalar path and on every SIMD path this CPU runs, over in[0..n), then on
 * every length above at three alignments, in place. */
static void compare_paths(size_t offset, const float *in, size_t n)
{
    size_t which[MAX_PATHS];
    size_t count = simd_paths(which);
    kernel_fn scalar = *(const kernel_fn *)((const char *)invdl_kernel_path_at(0) + offset);
    float *a = malloc(n * sizeof *a), *b = malloc((n + 8) * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    invdl_status sa = scalar(n, in, a);
    for (size_t p = 0; p < count; p++) {
        const invdl_kernel_path *path = invdl_kernel_path_at(which[p]);
        kernel_fn simd = *(const kernel_fn *)((const char *)path + offset);
        assert_int_equal(simd(n, in, b), sa);
        assert_same_results(path->name, a, b, n);
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            size_t len = lengths[l];
            for (size_t off = 0; off < 8 && off + len <= n; off += 3) {
                memcpy(b + 1, in + off, len * sizeof *b);
                b[0] = 123.0f;
                b[len + 1] = 456.0f;
                assert_int_equal(simd(len, b + 1, b + 1), scalar(len, in + off, a));
                assert_same_results(path->name, a, b + 1, len);
                assert_true(b[0] == 123.0f && b[len + 1] == 456.0f); /* nothing outside */
            }
        }
        sa = scalar(n, in, a); /* the lengths overwrote a */
    }
    free(a);
    free(b);
}

#define KERNEL(name) offsetof(invdl_kernel_path, name)

static void skip_without_simd(void)
{
    size_t which[MAX_PATHS];
    if (simd_paths(which) == 0)
        skip();
}

static void test_ssin(void **state)
{
    (void)state;
    skip_without_simd();
    float *all = make_inputs(SAMPLE, 1);
    compare_paths(KERNEL(ssin_forward), all, SAMPLE);
    compare_paths(KERNEL(ssin_inverse), all, SAMPLE);
    free(all);
    float *x = make_uniform(SAMPLE, -INVDL_SSIN_XMAX, INVDL_SSIN_XMAX, 2);
    compare_paths(KERNEL(ssin_forward), x, SAMPLE);
    float *y = make_uniform(SAMPLE, -INVDL_SSIN_YMAX, INVDL_SSIN_YMAX, 3);
    compare_paths(KERNEL(ssin_inverse), y, SAMPLE);
    free(x);
    free(y);
}

static void test_abstanh(void **state)
{
    (void)state;
    skip_without_simd();
    float *all = make_inputs(SAMPLE, 4);
    compare_paths(KERNEL(abstanh_forward), all, SAMPLE);
    compare_paths(KERNEL(abstanh_inverse), all, SAMPLE);
    free(all);
    float *x = make_uniform(SAMPLE, -10.0f, 10.0f, 5);
    compare_paths(KERNEL(abstanh_forward), x, SAMPLE);
    compare_paths(KERNEL(abstanh_inverse), x, SAMPLE);
    free(x);
}

static void test_mprelu(void **state)
{
    (void)state;
    skip_without_simd();
    size_t which[MAX_PATHS];
    size_t count = simd_paths(which);
    const invdl_kernel_path *scalar = invdl_kernel_path_at(0);
    /* Narrow arrays take the pattern path, wide ones the row path; widths
     * around both vector widths. */
    static const size_t colss[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 255, 256, 300};
    float *data = make_inputs(SAMPLE / 4, 6);
    uint64_t rng = 7;
    for (size_t c = 0; c < sizeof colss / sizeof colss[0]; c++) {
        size_t cols = colss[c], rows = SAMPLE / 4 / cols;
        float *alpha = malloc(cols * sizeof *alpha);
        assert_non_null(alpha);
        for (size_t j = 0; j < cols; j++)
            alpha[j] = random_in_binade(&rng, (int)(test_rand(&rng) % 20) - 15);
        alpha[0] = 0.0f;
        float *a = malloc(rows * cols * sizeof *a), *b = malloc(rows * cols * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        /* Few rows build a partial pattern; many repeat it. */
        const size_t rowss[] = {0, 1, 2, 3, 7, 9, 17, 33, rows / 3 + 1, rows};
        for (int inverse = 0; inverse < 2; inverse++) {
            for (size_t q = 0; q < sizeof rowss / sizeof rowss[0]; q++) {
                size_t r = rowss[q] < rows ? rowss[q] : rows;
                invdl_mprelu_fn want = inverse ? scalar->mprelu_inverse : scalar->mprelu_forward;
                invdl_status sa = want(r, cols, alpha, 0.01f, data, a);
                for (size_t p = 0; p < count; p++) {
                    const invdl_kernel_path *path = invdl_kernel_path_at(which[p]);
                    invdl_mprelu_fn got = inverse ? path->mprelu_inverse : path->mprelu_forward;
                    memcpy(b, data, r * cols * sizeof *b);
                    assert_int_equal(got(r, cols, alpha, 0.01f, b, b), sa);
                    assert_same_results(path->name, a, b, r * cols);
                }
            }
        }
        free(a);
        free(b);
        free(alpha);
    }
    free(data);
}

/* ---- the coupling conditioner's kernels, in double ------------------------ */

static double double_from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* Doubles: random bit patterns (every binade, sign, NaN and infinity),
 * specials, and values where the conditioner runs (|v| < 25). */
static double *make_doubles(size_t n, uint64_t seed)
{
    double *v = malloc(n * sizeof *v);
    assert_non_null(v);
    uint64_t rng = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = i % 2 ? double_from_bits(test_rand(&rng))
                     : 50.0 * ((double)(test_rand(&rng) >> 11) * 0x1p-53 - 0.5);
    static const double specials[] = {
        0.0,     -0.0,    (double)INFINITY, -(double)INFINITY, (double)NAN,
        DBL_MIN, -DBL_TRUE_MIN, DBL_MAX, 20.0, -19.06, 0x1p-30, -4.0, 4.0, 1e-300, -40.0};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0] && i < n; i++)
        v[i * 11 % n] = specials[i];
    return v;
}

/* tanh_pd and soft_scale (both signs) of every SIMD path against the
 * scalar path, bit for bit, over n values and then every length above at
 * three offsets, writing nothing outside. */
static void test_conditioner(void **state)
{
    (void)state;
    skip_without_simd();
    size_t which[MAX_PATHS], count = simd_paths(which), n = SAMPLE / 4;
    const invdl_kernel_path *scalar = invdl_kernel_path_at(0);
    double *in = make_doubles(n, 8), *a = malloc(n * sizeof *a), *b = malloc((n + 8) * sizeof *b);
    double *ea = malloc(n * sizeof *ea), *eb = malloc((n + 8) * sizeof *eb);
    assert_true(a != NULL && b != NULL && ea != NULL && eb != NULL);
    for (size_t p = 0; p < count; p++) {
        const invdl_kernel_path *path = invdl_kernel_path_at(which[p]);
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0] + 1; l++) {
            size_t len = l < sizeof lengths / sizeof lengths[0] ? lengths[l] : n - 8;
            for (size_t off = 0; off < 8; off += 3) {
                memcpy(a, in + off, len * sizeof *a);
                memcpy(b + 1, in + off, len * sizeof *b);
                b[0] = 123.0;
                b[len + 1] = 456.0;
                scalar->tanh_pd(len, a);
                path->tanh_pd(len, b + 1);
                for (size_t i = 0; i < len; i++)
                    if (!same_double(a[i], b[i + 1]))
                        fail_msg("%s tanh_pd(%a): scalar %a, got %a", path->name, in[off + i],
                                 a[i], b[i + 1]);
                assert_true(b[0] == 123.0 && b[len + 1] == 456.0);
                for (int negate = 0; negate < 2; negate++) {
                    memcpy(a, in + off, len * sizeof *a);
                    memcpy(b + 1, in + off, len * sizeof *b);
                    eb[0] = 123.0;
                    eb[len + 1] = 456.0;
                    scalar->soft_scale(len, a, ea, negate);
                    path->soft_scale(len, b + 1, eb + 1, negate);
                    for (size_t i = 0; i < len; i++)
                        if (!same_double(a[i], b[i + 1]) || !same_double(ea[i], eb[i + 1]))
                            fail_msg("%s soft_scale(%a, %d): scalar %a %a, got %a %a",
                                     path->name, in[off + i], negate, a[i], ea[i], b[i + 1],
                                     eb[i + 1]);
                    assert_true(b[0] == 123.0 && b[len + 1] == 456.0);
                    assert_true(eb[0] == 123.0 && eb[len + 1] == 456.0);
                }
            }
        }
    }
    free(in);
    free(a);
    free(b);
    free(ea);
    free(eb);
}

/* The scalar path's accuracy (every path gives its bits), against long
 * double: tanh within 2^-46 relative (P's 2^-48.3, the reduction and a
 * few roundings; the worst measured is printed), s = 2 tanh(r/2)
 * likewise, exp(+-s) within 2^-46 of exp of the s returned; below DBL_MIN
 * (where halving and the division round to subnormals) within 2^-46
 * relative plus DBL_TRUE_MIN, twice that for s.  NaN stays NaN, +-inf
 * gives +-1 and s = +-2, the sign of 0 is kept. */
static void test_conditioner_accuracy(void **state)
{
    (void)state;
    const invdl_kernel_path *scalar = invdl_kernel_path_at(0);
    size_t n = SAMPLE / 4;
    double *in = make_doubles(n, 9), *v = malloc(n * sizeof *v), *e = malloc(n * sizeof *e);
    assert_true(v != NULL && e != NULL);
    long double worst = 0.0L;
    memcpy(v, in, n * sizeof *v);
    scalar->tanh_pd(n, v);
    for (size_t i = 0; i < n; i++) {
        if (isnan(in[i])) {
            assert_true(isnan(v[i]));
            continue;
        }
        long double want = tanhl((long double)in[i]);
        if (want == 0.0L) {
            assert_true(same_double(v[i], in[i]));
            continue;
        }
        long double err = fabsl((long double)v[i] - want);
        if (fabs(in[i]) >= DBL_MIN)
            worst = fmaxl(worst, err / fabsl(want));
        if (err > 0x1p-46L * fabsl(want) + (long double)DBL_TRUE_MIN)
            fail_msg("tanh(%a) = %a, want %La", in[i], v[i], want);
    }
    for (int negate = 0; negate < 2; negate++) {
        memcpy(v, in, n * sizeof *v);
        scalar->soft_scale(n, v, e, negate);
        for (size_t i = 0; i < n; i++) {
            if (isnan(in[i])) {
                assert_true(isnan(v[i]) && isnan(e[i]));
                continue;
            }
            long double s = 2.0L * tanhl(0.5L * (long double)in[i]);
            long double ew = expl(negate ? -(long double)v[i] : (long double)v[i]);
            long double tol = 0x1p-46L * fabsl(s) + 2.0L * (long double)DBL_TRUE_MIN;
            if (fabsl((long double)v[i] - s) > tol)
                fail_msg("s(%a) = %a, want %La", in[i], v[i], s);
            assert_true(fabsl(((long double)e[i] - ew) / ew) <= 0x1p-46L);
            assert_true(fabs(v[i]) <= 2.0);
        }
    }
    print_message("conditioner tanh: worst relative error %.3Lg = 2^%.1Lf\n", worst,
                  log2l(worst));
    free(in);
    free(v);
    free(e);
}

/* The public kernels take the widest path the CPU runs; the scalar path
 * comes first and runs everywhere. */
static void test_dispatch(void **state)
{
    (void)state;
    size_t widest = 0;
    for (size_t i = 0; i < invdl_kernel_path_count(); i++)
        if (invdl_kernel_path_at(i)->runs())
            widest = i;
    assert_ptr_equal(invdl_kernel_path_best(), invdl_kernel_path_at(widest));
    assert_string_equal(invdl_kernel_path_at(0)->name, "scalar");
    assert_true(invdl_kernel_path_at(0)->runs());
    assert_null(invdl_kernel_path_at(invdl_kernel_path_count()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssin),
        cmocka_unit_test(test_abstanh),
        cmocka_unit_test(test_mprelu),
        cmocka_unit_test(test_conditioner),
        cmocka_unit_test(test_conditioner_accuracy),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
