/*
 * test_paths.c - every SIMD path against the portable scalar path, bit for
 * bit: both claim correct rounding (or the single IEEE operation), so they
 * must agree on every input, specials, tails, alignments and aliasing
 * included.  NaN results must be NaN on both paths; a compiler may quiet a
 * signaling NaN on one and not the other, as IEEE 754 arithmetic allows.  The scalar path itself is checked against independent
 * references in test_ssin.c, test_abstanh.c and test_mprelu.c.
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

static int simd_available(void)
{
#if INVDL_HAVE_AVX2
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if INVDL_HAVE_AVX2
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

static void assert_same_results(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!same_result(a[i], b[i]))
            fail_msg("element %zu: %a vs %a", i, (double)a[i], (double)b[i]);
}

static void compare_paths(kernel_fn scalar, kernel_fn simd, const float *in, size_t n)
{
    float *a = malloc(n * sizeof *a), *b = malloc((n + 8) * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    invdl_status sa = scalar(n, in, a);
    invdl_status sb = simd(n, in, b);
    assert_int_equal(sa, sb);
    for (size_t i = 0; i < n; i++)
        if (!same_result(a[i], b[i]))
            fail_msg("input %a: scalar %a, simd %a", (double)in[i], (double)a[i], (double)b[i]);
    /* Every length from 0 to 40 and every misalignment, in place too. */
    for (size_t len = 0; len <= 40 && len <= n; len++) {
        for (size_t off = 0; off < 8 && off + len <= n; off += 3) {
            memcpy(b + 1, in + off, len * sizeof *b);
            b[0] = 123.0f;
            b[len + 1] = 456.0f;
            assert_int_equal(simd(len, b + 1, b + 1), scalar(len, in + off, a));
            assert_same_results(a, b + 1, len);
            assert_true(b[0] == 123.0f && b[len + 1] == 456.0f); /* nothing outside */
        }
    }
    free(a);
    free(b);
}

#endif

#define PAIR(name) invdl_##name##_scalar, invdl_##name##_avx2

static void test_ssin(void **state)
{
    (void)state;
    if (!simd_available())
        skip();
#if INVDL_HAVE_AVX2
    float *all = make_inputs(SAMPLE, 1);
    compare_paths(PAIR(ssin_forward), all, SAMPLE);
    compare_paths(PAIR(ssin_inverse), all, SAMPLE);
    free(all);
    float *x = make_uniform(SAMPLE, -INVDL_SSIN_XMAX, INVDL_SSIN_XMAX, 2);
    compare_paths(PAIR(ssin_forward), x, SAMPLE);
    float *y = make_uniform(SAMPLE, -INVDL_SSIN_YMAX, INVDL_SSIN_YMAX, 3);
    compare_paths(PAIR(ssin_inverse), y, SAMPLE);
    free(x);
    free(y);
#endif
}

static void test_abstanh(void **state)
{
    (void)state;
    if (!simd_available())
        skip();
#if INVDL_HAVE_AVX2
    float *all = make_inputs(SAMPLE, 4);
    compare_paths(PAIR(abstanh_forward), all, SAMPLE);
    compare_paths(PAIR(abstanh_inverse), all, SAMPLE);
    free(all);
    float *x = make_uniform(SAMPLE, -10.0f, 10.0f, 5);
    compare_paths(PAIR(abstanh_forward), x, SAMPLE);
    compare_paths(PAIR(abstanh_inverse), x, SAMPLE);
    free(x);
#endif
}

static void test_mprelu(void **state)
{
    (void)state;
    if (!simd_available())
        skip();
#if INVDL_HAVE_AVX2
    /* Narrow arrays take the pattern path, wide ones the row path. */
    static const size_t colss[] = {1, 2, 3, 7, 8, 9, 63, 64, 65, 255, 256, 300};
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
        const size_t rowss[] = {0, 1, 2, 3, 7, 9, 33, rows / 3 + 1, rows};
        for (int inverse = 0; inverse < 2; inverse++) {
            for (size_t q = 0; q < sizeof rowss / sizeof rowss[0]; q++) {
                size_t r = rowss[q] < rows ? rowss[q] : rows;
                invdl_status sa = inverse ? invdl_mprelu_inverse_scalar(r, cols, alpha, 0.01f, data, a)
                                          : invdl_mprelu_forward_scalar(r, cols, alpha, 0.01f, data, a);
                memcpy(b, data, r * cols * sizeof *b);
                invdl_status sb = inverse ? invdl_mprelu_inverse_avx2(r, cols, alpha, 0.01f, b, b)
                                          : invdl_mprelu_forward_avx2(r, cols, alpha, 0.01f, b, b);
                assert_int_equal(sa, sb);
                assert_same_results(a, b, r * cols);
            }
        }
        free(a);
        free(b);
        free(alpha);
    }
    free(data);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssin),
        cmocka_unit_test(test_abstanh),
        cmocka_unit_test(test_mprelu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
