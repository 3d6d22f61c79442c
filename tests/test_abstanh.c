/*
 * test_abstanh.c - abs-tanh kernels against the long double reference.
 *
 * The claim under test is correct rounding (see test_ssin.c), and with it
 * the exact round trip wherever the forward does not compress.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "invdl.h"
#include "kernel_checks.h"
#include "reference.h"

#define CR_BOUND (0.5 + REF_SLACK_ULPS)
#define SAMPLES_PER_BINADE 48

static float fwd1(float x)
{
    float y;
    assert_int_equal(invdl_abstanh_forward(1, &x, &y), INVDL_OK);
    return y;
}

static float inv1(float y)
{
    float x;
    assert_int_equal(invdl_abstanh_inverse(1, &y, &x), INVDL_OK);
    return x;
}

static void test_forward_accuracy_every_binade(void **state)
{
    (void)state;
    uint64_t rng = 11;
    double worst = 0;
    for (int e = -127; e <= 127; e++) {
        for (int k = 0; k < SAMPLES_PER_BINADE; k++) {
            float x = random_in_binade(&rng, e);
            float y = fwd1(x);
            double err = ulp_error(y, ref_abstanh((long double)x));
            if (err > worst)
                worst = err;
            if (err > CR_BOUND)
                fail_msg("abstanh forward(%a) = %a, %.3f ulp", (double)x, (double)y, err);
        }
    }
    print_message("abstanh forward: worst %.4f ulp over sampled binades\n", worst);
}

static void test_inverse_accuracy_every_binade(void **state)
{
    (void)state;
    uint64_t rng = 12;
    double worst = 0;
    for (int e = -127; e <= 127; e++) {
        for (int k = 0; k < SAMPLES_PER_BINADE; k++) {
            float y = random_in_binade(&rng, e);
            float x = inv1(y);
            double err = ulp_error(x, ref_abstanh_inv((long double)y));
            if (err > worst)
                worst = err;
            if (err > CR_BOUND)
                fail_msg("abstanh inverse(%a) = %a, %.3f ulp", (double)y, (double)x, err);
        }
    }
    print_message("abstanh inverse: worst %.4f ulp over sampled binades\n", worst);
}

/* Where x*tanh x turns into x: dense runs on both sides of 8.7067. */
static void test_identity_threshold(void **state)
{
    (void)state;
    uint32_t mid = bits_from_float(8.7066641f);
    for (uint32_t b = mid - 2048; b < mid + 2048; b++) {
        float v = float_from_bits(b);
        assert_true(ulp_error(fwd1(v), ref_abstanh((long double)v)) <= CR_BOUND);
        assert_true(ulp_error(inv1(v), ref_abstanh_inv((long double)v)) <= CR_BOUND);
    }
    assert_true(fwd1(10.0f) == 10.0f && inv1(10.0f) == 10.0f);
    assert_true(fwd1(-FLT_MAX) == -FLT_MAX && inv1(FLT_MAX) == FLT_MAX);
}

static void test_special_values(void **state)
{
    (void)state;
    assert_int_equal(bits_from_float(fwd1(0.0f)), 0u);
    assert_int_equal(bits_from_float(fwd1(-0.0f)), 0x80000000u);
    assert_int_equal(bits_from_float(inv1(0.0f)), 0u);
    assert_int_equal(bits_from_float(inv1(-0.0f)), 0x80000000u);
    assert_true(fwd1(INFINITY) == INFINITY && fwd1(-INFINITY) == -INFINITY);
    assert_true(inv1(INFINITY) == INFINITY && inv1(-INFINITY) == -INFINITY);
    assert_true(isnan(fwd1(NAN)) && isnan(inv1(NAN)));
    /* Subnormal and tiny x: x*|x| underflows to a signed zero at 2^-75 (a
     * tie broken downwards, since x*tanh x < x^2) and to the smallest
     * subnormal just above. */
    assert_int_equal(bits_from_float(fwd1(-FLT_TRUE_MIN)), 0x80000000u);
    assert_int_equal(bits_from_float(fwd1(0x1p-75f)), 0u);
    assert_true(fwd1(nextafterf(0x1p-75f, 1.0f)) == FLT_TRUE_MIN);
    /* The notebook's values: 1..4 and -1, -0.5. */
    const float x[6] = {1, 2, 3, 4, -1, -0.5f};
    const float nb[6] = {0.76159416f, 1.92805516f, 2.98516426f, 3.9973172f, -0.76159416f,
                         -0.23105858f};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(fwd1(x[i]) - nb[i]) <= 2.5e-7f * fabsf(nb[i]));
}

static void test_odd_symmetry(void **state)
{
    (void)state;
    uint64_t rng = 13;
    for (int i = 0; i < 20000; i++) {
        float x = random_in_binade(&rng, (int)(test_rand(&rng) % 160) - 140);
        assert_int_equal(bits_from_float(fwd1(-x)), bits_from_float(fwd1(x)) ^ 0x80000000u);
        assert_int_equal(bits_from_float(inv1(-x)), bits_from_float(inv1(x)) ^ 0x80000000u);
    }
}

static void test_monotone(void **state)
{
    (void)state;
    uint64_t rng = 14;
    check_monotone_run(fwd1, 0, 8192);
    check_monotone_run(inv1, 0, 8192);
    for (int r = 0; r < 96; r++) {
        uint32_t start = (uint32_t)(test_rand(&rng) % (0x41200000u - 4096u));
        check_monotone_run(fwd1, start, 4096);
        check_monotone_run(inv1, start, 4096);
    }
}

/* Correct rounding both ways makes the round trip exact wherever the
 * forward expands: the elasticity x f'/f of x*tanh x is between 1 and 2. */
static void test_round_trip(void **state)
{
    (void)state;
    uint64_t rng = 15;
    for (int i = 0; i < 50000; i++) {
        float x = random_in_binade(&rng, (int)(test_rand(&rng) % 188) - 61);
        float y = fwd1(x);
        if (inv1(y) != x)
            fail_msg("round trip of %a gave %a", (double)x, (double)inv1(y));
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float buf[4] = {1, 2, 3, 4};
    assert_int_equal(invdl_abstanh_forward(4, NULL, buf), INVDL_EINVAL);
    assert_int_equal(invdl_abstanh_inverse(4, NULL, buf), INVDL_EINVAL);
    assert_int_equal(invdl_abstanh_forward(4, buf, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_abstanh_inverse(4, buf, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_abstanh_forward(SIZE_MAX, buf, buf), INVDL_EINVAL);
    assert_int_equal(invdl_abstanh_inverse(SIZE_MAX / 3, buf, buf), INVDL_EINVAL);
    assert_true(buf[0] == 1 && buf[1] == 2 && buf[2] == 3 && buf[3] == 4);
    assert_int_equal(invdl_abstanh_forward(0, NULL, NULL), INVDL_OK);
    assert_int_equal(invdl_abstanh_inverse(0, NULL, NULL), INVDL_OK);
}

static void test_in_place(void **state)
{
    (void)state;
    enum { N = 1000 };
    float a[N], b[N], c[N];
    uint64_t rng = 16;
    for (int i = 0; i < N; i++)
        a[i] = random_in_binade(&rng, (int)(test_rand(&rng) % 40) - 30);
    memcpy(b, a, sizeof a);
    assert_int_equal(invdl_abstanh_forward(N, a, c), INVDL_OK);
    assert_int_equal(invdl_abstanh_forward(N, b, b), INVDL_OK);
    assert_memory_equal(b, c, sizeof b);
    assert_int_equal(invdl_abstanh_inverse(N, c, a), INVDL_OK);
    assert_int_equal(invdl_abstanh_inverse(N, b, b), INVDL_OK);
    assert_memory_equal(a, b, sizeof a);
}

/* Exact ties where x^2 is a rounding midpoint (kernel_checks.h). */
static void test_exact_ties(void **state)
{
    (void)state;
    check_exact_ties(invdl_abstanh_forward);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_accuracy_every_binade),
        cmocka_unit_test(test_inverse_accuracy_every_binade),
        cmocka_unit_test(test_identity_threshold),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_exact_ties),
        cmocka_unit_test(test_odd_symmetry),
        cmocka_unit_test(test_monotone),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
