/*
 * test_mprelu.c - monotonic PReLU kernels.
 *
 * References: the forward must be the IEEE product a*x rounded once, which
 * the exact double product of two floats rounded to float reproduces; the
 * inverse must be the IEEE quotient y/a, which the double quotient rounded
 * to float reproduces (double rounding is innocuous for division when the
 * wide format has at least 2p+2 bits, 53 >= 2*24+2; Figueroa 1995).
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
#include "reference.h"

static float slope_of(float alpha, float alpha_min)
{
    return fabsf(alpha) > alpha_min ? fabsf(alpha) : alpha_min;
}

static float ref_forward(float x, float a)
{
    return x < 0 ? (float)((double)a * (double)x) : x;
}

static float ref_inverse(float y, float a)
{
    return y < 0 ? (float)((double)y / (double)a) : y;
}

/* Random data of every magnitude, signs mixed, with the specials. */
static void fill_data(float *v, size_t n, uint64_t *rng)
{
    static const float specials[] = {0.0f, -0.0f, FLT_TRUE_MIN, -FLT_TRUE_MIN, -FLT_MIN,
                                     -FLT_MAX, -1.0f, 1.0f, -INFINITY, INFINITY};
    for (size_t i = 0; i < n; i++) {
        if (i < sizeof specials / sizeof specials[0])
            v[i] = specials[i];
        else
            v[i] = random_in_binade(rng, (int)(test_rand(rng) % 255) - 127);
    }
}

static void check_against_reference(size_t rows, size_t cols, const float *alpha, float amin,
                                    uint64_t seed)
{
    size_t n = rows * cols;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(z);
    uint64_t rng = seed;
    fill_data(x, n, &rng);
    assert_int_equal(invdl_mprelu_forward(rows, cols, alpha, amin, x, y), INVDL_OK);
    assert_int_equal(invdl_mprelu_inverse(rows, cols, alpha, amin, x, z), INVDL_OK);
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            size_t k = i * cols + j;
            float a = slope_of(alpha[j], amin);
            assert_int_equal(bits_from_float(y[k]), bits_from_float(ref_forward(x[k], a)));
            assert_int_equal(bits_from_float(z[k]), bits_from_float(ref_inverse(x[k], a)));
        }
    }
    free(x);
    free(y);
    free(z);
}

static void test_single_rounding(void **state)
{
    (void)state;
    /* Several column counts (chunk edges included) and alphas of every
     * kind: tiny, below alpha_min, negative, above 1, subnormal. */
    static const size_t colss[] = {1, 3, 7, 8, 255, 256, 257, 600};
    uint64_t rng = 21;
    for (size_t c = 0; c < sizeof colss / sizeof colss[0]; c++) {
        size_t cols = colss[c];
        float *alpha = malloc(cols * sizeof *alpha);
        assert_non_null(alpha);
        for (size_t j = 0; j < cols; j++)
            alpha[j] = random_in_binade(&rng, (int)(test_rand(&rng) % 40) - 30);
        alpha[0] = 0.0f;
        if (cols > 2)
            alpha[2] = -FLT_TRUE_MIN;
        check_against_reference(4096 / cols + 3, cols, alpha, 0.01f, rng);
        check_against_reference(17, cols, alpha, FLT_TRUE_MIN, rng + 1);
        check_against_reference(9, cols, alpha, 3.0f, rng + 2);
        free(alpha);
    }
}

/* The notebook: data [[-1, 0, 1]], glorot-uniform alpha, forward and back. */
static void test_notebook_roundtrip(void **state)
{
    (void)state;
    const float alpha[3] = {-0.1929388f, 0.7f, -0.3f};
    const float x[3] = {-1.0f, 0.0f, 1.0f};
    float y[3], back[3];
    assert_int_equal(invdl_mprelu_forward(1, 3, alpha, 0.01f, x, y), INVDL_OK);
    assert_true(y[0] == -0.1929388f && y[1] == 0.0f && y[2] == 1.0f);
    assert_int_equal(invdl_mprelu_inverse(1, 3, alpha, 0.01f, y, back), INVDL_OK);
    for (int i = 0; i < 3; i++)
        assert_true(fabsf(back[i] - x[i]) < 1e-2f);
}

/* A power-of-two slope scales exactly: the round trip is the identity for
 * every x whose product neither overflows nor leaves the normal range. */
static void test_power_of_two_roundtrip(void **state)
{
    (void)state;
    const float alpha[2] = {0.25f, 4.0f};
    uint64_t rng = 22;
    enum { N = 4000 };
    float x[N], y[N], z[N];
    for (int i = 0; i < N; i++)
        x[i] = -fabsf(random_in_binade(&rng, (int)(test_rand(&rng) % 200) - 100));
    assert_int_equal(invdl_mprelu_forward(N / 2, 2, alpha, 0.01f, x, y), INVDL_OK);
    assert_int_equal(invdl_mprelu_inverse(N / 2, 2, alpha, 0.01f, y, z), INVDL_OK);
    assert_memory_equal(x, z, sizeof x);
}

static void test_alpha_min_floor(void **state)
{
    (void)state;
    const float alpha[3] = {0.0f, -0.001f, 0.5f};
    const float x[3] = {-2.0f, -2.0f, -2.0f};
    float y[3];
    assert_int_equal(invdl_mprelu_forward(1, 3, alpha, 0.01f, x, y), INVDL_OK);
    assert_true(y[0] == 0.01f * -2.0f && y[1] == 0.01f * -2.0f && y[2] == -1.0f);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const float alpha[2] = {0.5f, 0.5f};
    float x[4] = {-1, -2, 3, 4};
    float y[4] = {7, 7, 7, 7};
    const float bad_mins[] = {0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_mins / sizeof bad_mins[0]; i++) {
        assert_int_equal(invdl_mprelu_forward(2, 2, alpha, bad_mins[i], x, y), INVDL_EINVAL);
        assert_int_equal(invdl_mprelu_inverse(2, 2, alpha, bad_mins[i], x, y), INVDL_EINVAL);
    }
    const float bad_alpha[2] = {0.5f, NAN};
    assert_int_equal(invdl_mprelu_forward(2, 2, bad_alpha, 0.01f, x, y), INVDL_EINVAL);
    const float inf_alpha[2] = {-INFINITY, 0.5f};
    assert_int_equal(invdl_mprelu_inverse(2, 2, inf_alpha, 0.01f, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_mprelu_forward(2, 2, NULL, 0.01f, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_mprelu_forward(2, 2, alpha, 0.01f, NULL, y), INVDL_EINVAL);
    assert_int_equal(invdl_mprelu_inverse(2, 2, alpha, 0.01f, x, NULL), INVDL_EINVAL);
    /* rows*cols overflowing size_t, and too many floats to address. */
    assert_int_equal(invdl_mprelu_forward(SIZE_MAX / 2 + 2, 2, alpha, 0.01f, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_mprelu_inverse(2, SIZE_MAX, alpha, 0.01f, x, y), INVDL_EINVAL);
    assert_int_equal(invdl_mprelu_forward(SIZE_MAX / 4, 1, alpha, 0.01f, x, y), INVDL_EINVAL);
    for (int i = 0; i < 4; i++)
        assert_true(y[i] == 7.0f);
    /* Empty arrays are fine, with or without pointers. */
    assert_int_equal(invdl_mprelu_forward(0, 2, NULL, 0.01f, NULL, NULL), INVDL_OK);
    assert_int_equal(invdl_mprelu_inverse(5, 0, NULL, 0.01f, NULL, NULL), INVDL_OK);
}

static void test_in_place(void **state)
{
    (void)state;
    const float alpha[5] = {0.3f, -0.7f, 1.5f, 0.0f, 0.01f};
    enum { N = 500 };
    float a[N], b[N], c[N];
    uint64_t rng = 23;
    fill_data(a, N, &rng);
    memcpy(b, a, sizeof a);
    assert_int_equal(invdl_mprelu_forward(N / 5, 5, alpha, 0.05f, a, c), INVDL_OK);
    assert_int_equal(invdl_mprelu_forward(N / 5, 5, alpha, 0.05f, b, b), INVDL_OK);
    assert_memory_equal(b, c, sizeof b);
    assert_int_equal(invdl_mprelu_inverse(N / 5, 5, alpha, 0.05f, c, a), INVDL_OK);
    assert_int_equal(invdl_mprelu_inverse(N / 5, 5, alpha, 0.05f, b, b), INVDL_OK);
    assert_memory_equal(a, b, sizeof a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_rounding),
        cmocka_unit_test(test_notebook_roundtrip),
        cmocka_unit_test(test_power_of_two_roundtrip),
        cmocka_unit_test(test_alpha_min_floor),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
