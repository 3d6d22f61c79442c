/*
 * kernel_checks.c - see kernel_checks.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "kernel_checks.h"
#include "reference.h"

void check_monotone_run(float (*fn)(float), uint32_t start, uint32_t count)
{
    float prev = fn(float_from_bits(start));
    for (uint32_t i = 1; i < count; i++) {
        float cur = fn(float_from_bits(start + i));
        if (cur < prev)
            fail_msg("not monotone at %a: %a after %a", (double)float_from_bits(start + i),
                     (double)cur, (double)prev);
        prev = cur;
    }
}

static float float_below(double u)
{
    float f = (float)u;
    return (double)f > u ? nextafterf(f, 0.0f) : f;
}

static void check_tie(kernel_fn forward, double x)
{
    float xf = (float)x, y;
    assert_true((double)xf == x);
    float want = float_below(x * x);
    assert_int_equal(forward(1, &xf, &y), INVDL_OK);
    if (y != want)
        fail_msg("x = %a: got %a, want %a (x^2 = %a is a tie)", x, (double)y, (double)want, x * x);
    xf = -xf;
    assert_int_equal(forward(1, &xf, &y), INVDL_OK);
    assert_true(y == -want);
}

void check_exact_ties(kernel_fn forward)
{
    static const int exps[] = {-75, -62, -56, -50, -42, -40};
    for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++)
        for (int m = 4097; m < 5793; m += 2)
            check_tie(forward, ldexp((double)m, exps[k]));
    for (int m = 1; m < 4096; m += 2)
        check_tie(forward, ldexp((double)m, -75));
}
