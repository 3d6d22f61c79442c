/*
 * test_ssin.c - signed sin kernels against the long double reference.
 *
 * The claim under test is correct rounding: every result within half an
 * ulp of the exact value, plus REF_SLACK_ULPS for the reference's own error
 * (reference.h).  A result off by more is not correctly rounded.
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

/* The branch end and its image, exactly as the specification gives them. */
static const double T_EXACT = 2.028757838110434;
static const double Y_EXACT = 1.819705741159653;

static float fwd1(float x)
{
    float y;
    invdl_status st = invdl_ssin_forward(1, &x, &y);
    assert_true(st == INVDL_OK || st == INVDL_EDOMAIN);
    return y;
}

static float inv1(float y)
{
    float x;
    invdl_status st = invdl_ssin_inverse(1, &y, &x);
    assert_true(st == INVDL_OK || st == INVDL_EDOMAIN);
    return x;
}

static void test_constants(void **state)
{
    (void)state;
    /* XMAX and YMAX are T and Y rounded down to float: inside the branch,
     * and the next float up is outside. */
    assert_true((double)INVDL_SSIN_XMAX <= T_EXACT);
    assert_true((double)nextafterf(INVDL_SSIN_XMAX, INFINITY) > T_EXACT);
    assert_true((double)INVDL_SSIN_YMAX <= Y_EXACT);
    assert_true((double)nextafterf(INVDL_SSIN_YMAX, INFINITY) > Y_EXACT);
    assert_int_equal(bits_from_float(INVDL_SSIN_XMAX), 0x4001d72bu); /* 0x1.03ae56p+1 */
    assert_int_equal(bits_from_float(INVDL_SSIN_YMAX), 0x3fe8ec1eu); /* 0x1.d1d83cp+0 */
}

static void test_forward_accuracy_every_binade(void **state)
{
    (void)state;
    uint64_t rng = 1;
    double worst = 0;
    for (int e = -127; e <= 127; e++) {
        for (int k = 0; k < SAMPLES_PER_BINADE; k++) {
            float x = random_in_binade(&rng, e);
            float y = fwd1(x);
            double err = ulp_error(y, ref_ssin((long double)x));
            if (err > worst)
                worst = err;
            if (err > CR_BOUND)
                fail_msg("ssin forward(%a) = %a, %.3f ulp from %La", (double)x, (double)y, err,
                         ref_ssin((long double)x));
        }
    }
    print_message("ssin forward: worst %.4f ulp over sampled binades\n", worst);
}

static void test_inverse_accuracy_every_binade(void **state)
{
    (void)state;
    uint64_t rng = 2;
    double worst = 0;
    for (int e = -127; e <= 0; e++) {
        for (int k = 0; k < SAMPLES_PER_BINADE; k++) {
            float y = random_in_binade(&rng, e);
            if (!(fabsf(y) <= INVDL_SSIN_YMAX))
                continue;
            float x = inv1(y);
            double err = ulp_error(x, ref_ssin_inv((long double)y));
            if (err > worst)
                worst = err;
            if (err > CR_BOUND)
                fail_msg("ssin inverse(%a) = %a, %.3f ulp from %La", (double)y, (double)x, err,
                         ref_ssin_inv((long double)y));
        }
    }
    print_message("ssin inverse: worst %.4f ulp over sampled binades\n", worst);
}

/* The ill-conditioned top of the branch, densely: the last 4096 floats
 * below YMAX and the last 4096 below XMAX. */
static void test_branch_edge(void **state)
{
    (void)state;
    uint32_t ytop = bits_from_float(INVDL_SSIN_YMAX);
    uint32_t xtop = bits_from_float(INVDL_SSIN_XMAX);
    for (uint32_t i = 0; i < 4096; i++) {
        float y = float_from_bits(ytop - i);
        float x = inv1(y);
        assert_true(ulp_error(x, ref_ssin_inv((long double)y)) <= CR_BOUND);
        assert_true(x <= INVDL_SSIN_XMAX);
        float x2 = float_from_bits(xtop - i);
        float y2 = fwd1(x2);
        assert_true(ulp_error(y2, ref_ssin((long double)x2)) <= CR_BOUND);
        assert_true(y2 <= INVDL_SSIN_YMAX);
    }
    /* The floats just below and above XMAX all map to YMAX. */
    assert_true(fwd1(INVDL_SSIN_XMAX) == INVDL_SSIN_YMAX);
    assert_true(fwd1(nextafterf(INVDL_SSIN_XMAX, 0)) == INVDL_SSIN_YMAX);
    assert_true(fwd1(nextafterf(INVDL_SSIN_XMAX, 3)) == INVDL_SSIN_YMAX);
    /* inverse(YMAX) is the preimage rounded: a little below T. */
    float xm = inv1(INVDL_SSIN_YMAX);
    assert_true(xm < INVDL_SSIN_XMAX && xm > 2.028f);
}

static void test_special_values(void **state)
{
    (void)state;
    /* Signed zeros both ways. */
    assert_int_equal(bits_from_float(fwd1(0.0f)), 0u);
    assert_int_equal(bits_from_float(fwd1(-0.0f)), 0x80000000u);
    assert_int_equal(bits_from_float(inv1(0.0f)), 0u);
    assert_int_equal(bits_from_float(inv1(-0.0f)), 0x80000000u);
    /* Subnormal x: x*|x| is far below the smallest float. */
    assert_int_equal(bits_from_float(fwd1(FLT_TRUE_MIN)), 0u);
    assert_int_equal(bits_from_float(fwd1(-FLT_MIN)), 0x80000000u);
    /* The smallest subnormal y comes back near 2^-74.5. */
    float xs = inv1(FLT_TRUE_MIN);
    assert_true(ulp_error(xs, ref_ssin_inv((long double)FLT_TRUE_MIN)) <= CR_BOUND);
    assert_true(xs > 0x1p-75f && xs < 0x1p-74f);
    /* Non-finite inputs give NaN. */
    assert_true(isnan(fwd1(INFINITY)) && isnan(fwd1(-INFINITY)) && isnan(fwd1(NAN)));
    assert_true(isnan(inv1(INFINITY)) && isnan(inv1(-INFINITY)) && isnan(inv1(NAN)));
    /* The notebook's values where it is right (x >= 0): 1, 2, 3. */
    assert_true(fabsf(fwd1(1.0f) - 0.84147098f) <= 1e-7f);
    assert_true(fabsf(fwd1(2.0f) - 1.81859485f) <= 1e-7f);
    assert_true(fabsf(fwd1(3.0f) - 0.42336002f) <= 1e-7f);
}

static void test_odd_symmetry(void **state)
{
    (void)state;
    uint64_t rng = 3;
    for (int i = 0; i < 20000; i++) {
        float x = random_in_binade(&rng, (int)(test_rand(&rng) % 140) - 138);
        assert_int_equal(bits_from_float(fwd1(-x)), bits_from_float(fwd1(x)) ^ 0x80000000u);
        if (fabsf(x) <= INVDL_SSIN_YMAX)
            assert_int_equal(bits_from_float(inv1(-x)), bits_from_float(inv1(x)) ^ 0x80000000u);
    }
}

static void test_monotone(void **state)
{
    (void)state;
    uint64_t rng = 4;
    uint32_t xtop = bits_from_float(INVDL_SSIN_XMAX);
    uint32_t ytop = bits_from_float(INVDL_SSIN_YMAX);
    check_monotone_run(fwd1, 0, 8192);
    check_monotone_run(inv1, 0, 8192);
    check_monotone_run(fwd1, xtop - 8191, 8192);
    check_monotone_run(inv1, ytop - 8191, 8192);
    for (int r = 0; r < 64; r++) {
        check_monotone_run(fwd1, (uint32_t)(test_rand(&rng) % (xtop - 4096)), 4096);
        check_monotone_run(inv1, (uint32_t)(test_rand(&rng) % (ytop - 4096)), 4096);
    }
}

static void test_domain_status(void **state)
{
    (void)state;
    float x[6] = {0.5f, -INVDL_SSIN_XMAX, INVDL_SSIN_XMAX, -1.0f, 0.0f, 2.0f};
    float y[6];
    assert_int_equal(invdl_ssin_forward(6, x, y), INVDL_OK);
    /* One input past the branch: reported, every value still written. */
    x[5] = nextafterf(INVDL_SSIN_XMAX, 3.0f);
    memset(y, 0, sizeof y);
    assert_int_equal(invdl_ssin_forward(6, x, y), INVDL_EDOMAIN);
    for (int i = 0; i < 6; i++)
        assert_true(ulp_error(y[i], ref_ssin((long double)x[i])) <= CR_BOUND);
    x[5] = 4.0f;
    assert_int_equal(invdl_ssin_forward(6, x, y), INVDL_EDOMAIN);
    assert_true(ulp_error(y[5], ref_ssin(4.0L)) <= CR_BOUND);
    x[5] = NAN;
    assert_int_equal(invdl_ssin_forward(6, x, y), INVDL_EDOMAIN);
    assert_true(isnan(y[5]));

    /* Every y the forward makes from the branch is accepted back. */
    float back[6];
    x[5] = 2.0f;
    assert_int_equal(invdl_ssin_forward(6, x, y), INVDL_OK);
    assert_int_equal(invdl_ssin_inverse(6, y, back), INVDL_OK);

    /* Past YMAX: NaN there, the rest computed. */
    float yy[4] = {0.25f, nextafterf(INVDL_SSIN_YMAX, 2.0f), -INVDL_SSIN_YMAX, -3.0f};
    float xx[4];
    assert_int_equal(invdl_ssin_inverse(4, yy, xx), INVDL_EDOMAIN);
    assert_true(isnan(xx[1]) && isnan(xx[3]));
    assert_true(ulp_error(xx[0], ref_ssin_inv(0.25L)) <= CR_BOUND);
    assert_true(ulp_error(xx[2], ref_ssin_inv(-(long double)INVDL_SSIN_YMAX)) <= CR_BOUND);
}

/* The notebook's even formula |x|*sin|x| maps 1 and -1 alike: it has no
 * inverse.  Ours separates them. */
static void test_odd_not_even(void **state)
{
    (void)state;
    assert_true(fwd1(-1.0f) == -fwd1(1.0f));
    assert_true(fwd1(-1.0f) < 0.0f);
    assert_true(inv1(fwd1(-1.0f)) == -1.0f);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float buf[4] = {1, 2, 3, 4};
    assert_int_equal(invdl_ssin_forward(4, NULL, buf), INVDL_EINVAL);
    assert_int_equal(invdl_ssin_inverse(4, NULL, buf), INVDL_EINVAL);
    assert_true(buf[0] == 1 && buf[3] == 4); /* nothing written */
    assert_int_equal(invdl_ssin_forward(4, buf, NULL), INVDL_EINVAL);
    assert_int_equal(invdl_ssin_inverse(4, buf, NULL), INVDL_EINVAL);
    /* Sizes no array can have. */
    assert_int_equal(invdl_ssin_forward(SIZE_MAX, buf, buf), INVDL_EINVAL);
    assert_int_equal(invdl_ssin_inverse(SIZE_MAX / 2, buf, buf), INVDL_EINVAL);
    assert_true(buf[0] == 1 && buf[3] == 4);
    /* n == 0 touches nothing, NULL included. */
    assert_int_equal(invdl_ssin_forward(0, NULL, NULL), INVDL_OK);
    assert_int_equal(invdl_ssin_inverse(0, NULL, NULL), INVDL_OK);
}

static void test_in_place(void **state)
{
    (void)state;
    enum { N = 1000 };
    float a[N], b[N], c[N];
    uint64_t rng = 5;
    for (int i = 0; i < N; i++)
        a[i] = random_in_binade(&rng, (int)(test_rand(&rng) % 30) - 29);
    memcpy(b, a, sizeof a);
    assert_int_equal(invdl_ssin_forward(N, a, c), INVDL_OK);
    assert_int_equal(invdl_ssin_forward(N, b, b), INVDL_OK);
    assert_memory_equal(b, c, sizeof b);
    assert_int_equal(invdl_ssin_inverse(N, c, a), INVDL_OK);
    assert_int_equal(invdl_ssin_inverse(N, b, b), INVDL_OK);
    assert_memory_equal(a, b, sizeof a);
}

/* Exact ties where x^2 is a rounding midpoint (kernel_checks.h). */
static void test_exact_ties(void **state)
{
    (void)state;
    check_exact_ties(invdl_ssin_forward);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_forward_accuracy_every_binade),
        cmocka_unit_test(test_inverse_accuracy_every_binade),
        cmocka_unit_test(test_branch_edge),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_exact_ties),
        cmocka_unit_test(test_odd_symmetry),
        cmocka_unit_test(test_monotone),
        cmocka_unit_test(test_domain_status),
        cmocka_unit_test(test_odd_not_even),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
