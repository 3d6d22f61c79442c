/*
 * test_limits.c - docs/accuracy.md's "Float limits, exactly", value by value.
 *
 * Every single value that section quotes (edges, thresholds, preimages,
 * counts of floats sharing one result) is computed here without the
 * library: in long double, by Newton's method or bisection on x sin x and
 * x tanh x.  glibc's sinl, tanhl and expl are good to about 2^-63
 * relative, so a rounding to float (or a comparison with a rounding
 * midpoint) is taken as decided only when the long double value lies
 * farther from the midpoint than its error bound allows (2^-58 relative
 * for an evaluation; for a preimage, that bound carried through 1/f'); an
 * undecided one fails the test rather than guess.  The closest call made
 * here lies 2^-36 relative from its midpoint, so valgrind, which runs x87
 * long double arithmetic in double (2^-53), decides every one alike.  Each value is then
 * checked twice: the library must compute it, and the page must state it
 * in the words below, formatted here from the computed value, so neither
 * the text nor the code can drift.  The figures only the exhaustive sweep
 * can give (round-trip sets and their counts) are checked against the
 * same section by tests/exhaustive.c.
 *
 * Usage: test_limits docs/accuracy.md (meson passes the source tree's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"
#include "doc_text.h"

#define PLUS_MINUS "\xc2\xb1" /* as the page writes it, in UTF-8 */

static char *section; /* the page's section, spaces folded */

static uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static float float_of(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

static void assert_stated(const char *fact)
{
    assert_non_null(section);
    assert_true(doc_states(section, fact));
}

/* v rounded to float, failing unless v lies more than rel*|v| away from
 * both rounding midpoints around the result. */
static float decided(long double v, long double rel)
{
    float r = (float)v;
    long double lo = ((long double)r + (long double)nextafterf(r, -INFINITY)) / 2;
    long double hi = ((long double)r + (long double)nextafterf(r, INFINITY)) / 2;
    long double margin = fabsl(v) * rel;
    assert_true(v - lo > margin && hi - v > margin);
    return r;
}

/* Error bound of one evaluation of x sin x or x tanh x in long double. */
#define EVAL_REL 0x1p-58L

static long double ssin_l(long double x)
{
    return x * sinl(x);
}

static long double ssin_prime_l(long double x)
{
    return sinl(x) + x * cosl(x);
}

/* T: the root of sin t + t cos t = 0 in (pi/2, pi), by Newton's method. */
static long double branch_end(void)
{
    long double t = 2.03L;
    for (int i = 0; i < 100; i++)
        t -= ssin_prime_l(t) / (2 * cosl(t) - t * sinl(t));
    return t;
}

/* The x in [a, b] with x sin x = y, x sin x increasing there: bisection
 * to the last bit. */
static long double ssin_preimage(long double y, long double a, long double b)
{
    for (;;) {
        long double mid = a + (b - a) / 2;
        if (mid <= a || mid >= b)
            return a;
        if (ssin_l(mid) < y)
            a = mid;
        else
            b = mid;
    }
}

/* The relative error of that preimage: an evaluation error carried back
 * through 1/f'. */
static long double preimage_rel(long double x, long double y)
{
    return EVAL_REL * 4 * y / (ssin_prime_l(x) * x);
}

/* Underflow: x*|x| <= 2^-150, half the smallest subnormal, rounds to 0,
 * and x sin x and x tanh x lie below x^2 (by x^4/6 and x^4/3 at most):
 * the largest float giving 0 is the largest whose exact square is at most
 * 2^-150, and the next one gives 2^-149 since its square exceeds 2^-150
 * by far more than x^4/3. */
static void test_underflow_to_zero(void **state)
{
    (void)state;
    const long double half_min = (long double)FLT_TRUE_MIN / 2;
    float t = decided(sqrtl(half_min), EVAL_REL); /* the square root is exact here */
    long double t2 = (long double)t * (long double)t;
    long double next = (long double)nextafterf(t, 1.0f);
    assert_true(t2 == half_min);
    assert_true(next * next - next * next * next * next > half_min * (1 + 0x1p-23L));
    typedef invdl_status (*kernel)(size_t, const float *, float *);
    const kernel forwards[2] = {invdl_ssin_forward, invdl_abstanh_forward};
    for (int k = 0; k < 2; k++) {
        float in[4] = {t, -t, nextafterf(t, 1.0f), -nextafterf(t, 1.0f)}, out[4];
        assert_int_equal(forwards[k](4, in, out), INVDL_OK);
        assert_true(out[0] == 0 && !signbit(out[0]) && out[1] == 0 && signbit(out[1]));
        assert_true(out[2] == FLT_TRUE_MIN && out[3] == -FLT_TRUE_MIN);
    }
    char fact[200];
    snprintf(fact, sizeof fact,
             "|x| <= 2^%d gives " PLUS_MINUS "0: x sin x < x^2 <= 2^%d, half the smallest "
             "subnormal",
             ilogbf(t), ilogbl(t2));
    assert_stated(fact);
    snprintf(fact, sizeof fact,
             "(status `INVDL_OK`: the function has no domain limit). |x| <= 2^%d gives " PLUS_MINUS
             "0.",
             ilogbf(t));
    assert_stated(fact);
}

/* The flat top of signed sin: the floats around XMAX whose x sin x rounds
 * to YMAX, and inverse(YMAX). */
static void test_ssin_flat_top(void **state)
{
    (void)state;
    const float xmax = INVDL_SSIN_XMAX, ymax = INVDL_SSIN_YMAX;
    long double t = branch_end(), y = ssin_l(t);
    /* YMAX is Y rounded down, and Y is below the midpoint above YMAX:
     * x sin x <= Y rounds to YMAX exactly when it passes the midpoint
     * below. */
    long double below = ((long double)ymax + (long double)nextafterf(ymax, 0.0f)) / 2;
    long double above = ((long double)ymax + (long double)nextafterf(ymax, 2.0f)) / 2;
    assert_true((long double)ymax < y && y < above);
    assert_true((long double)xmax < t && t < (long double)nextafterf(xmax, 3.0f));
    /* x sin x rises to Y at T and falls after it, so those floats are
     * one run; the window holds it whole. */
    enum { WINDOW = 4096 };
    uint32_t lo = 0, hi = 0;
    for (int32_t d = -WINDOW; d <= WINDOW; d++) {
        float x = float_of((uint32_t)((int32_t)bits_of(xmax) + d));
        long double v = ssin_l((long double)x);
        assert_true(fabsl(v - below) > below * EVAL_REL);
        if (v > below) {
            if (lo == 0)
                lo = bits_of(x);
            assert_true(hi == 0 || bits_of(x) == hi + 1);
            hi = bits_of(x);
        }
    }
    assert_true(lo > bits_of(xmax) - WINDOW && hi < bits_of(xmax) + WINDOW);
    assert_true(lo <= bits_of(xmax) && bits_of(xmax) <= hi);
    uint32_t n = hi - lo + 3;
    float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
    assert_true(x != NULL && out != NULL);
    for (uint32_t i = 0; i < n; i++)
        x[i] = float_of(lo - 1 + i);
    assert_int_equal(invdl_ssin_forward(n, x, out), INVDL_EDOMAIN); /* past XMAX */
    for (uint32_t i = 0; i < n; i++)
        assert_true((out[i] == ymax) == (i > 0 && i < n - 1));
    free(x);
    free(out);

    long double pre = ssin_preimage((long double)ymax, 1.9L, t);
    float top = decided(pre, preimage_rel(pre, (long double)ymax)), lib;
    assert_int_equal(invdl_ssin_inverse(1, &ymax, &lib), INVDL_OK);
    assert_true(lib == top);

    char fact[200];
    snprintf(fact, sizeof fact,
             "The %u floats in [%a, %a] (%.6f to %.6f, XMAX inside) all map to YMAX", hi - lo + 1,
             (double)float_of(lo), (double)float_of(hi), (double)float_of(lo),
             (double)float_of(hi));
    assert_stated(fact);
    long double ulp = (long double)nextafterf(xmax, 3.0f) - (long double)xmax;
    snprintf(fact, sizeof fact, "inverse(YMAX) = %a = %.5f..., %.0Lf ulps below T", (double)top,
             (double)top, (t - (long double)top) / ulp);
    assert_stated(fact);
}

/* The inverse near 0: x sin x = y gives x = sqrt(y) (1 + y/12 + ...), and
 * for y = 2^-149 the correction is far below float's resolution. */
static void test_ssin_inverse_of_smallest(void **state)
{
    (void)state;
    const float y = FLT_TRUE_MIN;
    float want = decided(sqrtl((long double)y), 0x1p-40L), lib;
    assert_int_equal(invdl_ssin_inverse(1, &y, &lib), INVDL_OK);
    assert_true(lib == want);
    char fact[120];
    snprintf(fact, sizeof fact, "the smallest subnormal, 2^%d, comes back as about 2^%.1Lf",
             ilogbf(y), log2l((long double)want));
    assert_stated(fact);
}

/* x - x tanh x = 2x / (e^2x + 1): decreasing for x > 1. */
static long double tanh_gap(long double x)
{
    return 2 * x / (expl(2 * x) + 1);
}

/* The first float at or after `from` for which below(x) holds; below is
 * monotone from there on (the gaps shrink, the ulps grow). */
static float first_float(float from, int (*below)(float))
{
    float x = from;
    assert_false(below(x));
    while (!below(x))
        x = nextafterf(x, INFINITY);
    return x;
}

/* x tanh x = x - gap rounds to x: gap below half the spacing to the float
 * under x (ties cannot occur: the gap is transcendental). */
static int forward_is_identity(float x)
{
    long double half = ((long double)x - (long double)nextafterf(x, 0.0f)) / 2;
    long double gap = tanh_gap((long double)x);
    assert_true(fabsl(gap - half) > half * EVAL_REL);
    return gap < half;
}

/* The preimage of y is y + e with e = gap(y + e), a contraction (the
 * gap's slope is tiny here); g(y) rounds to y when e is below half the
 * spacing to the float above y. */
static int inverse_is_identity(float y)
{
    long double e = 0, half = ((long double)nextafterf(y, INFINITY) - (long double)y) / 2;
    for (int i = 0; i < 8; i++)
        e = tanh_gap((long double)y + e);
    assert_true(fabsl(e - half) > half * 0x1p-50L);
    return e < half;
}

/* tanh x rounds to 1 once 1 - tanh x = 2 / (e^2x + 1) is below half the
 * spacing under 1, 2^-25. */
static int tanh_is_one(float x)
{
    long double gap = 2 / (expl(2 * (long double)x) + 1);
    assert_true(fabsl(gap - 0x1p-25L) > 0x1p-25L * EVAL_REL);
    return gap < 0x1p-25L;
}

static void test_abstanh_identity(void **state)
{
    (void)state;
    float fwd = first_float(8.5f, forward_is_identity);
    float inv = first_float(8.5f, inverse_is_identity);
    float one = first_float(9.0f, tanh_is_one);
    /* The library from those floats on, and just below them. */
    float in[3] = {nextafterf(fwd, 0.0f), fwd, nextafterf(fwd, INFINITY)}, out[3];
    assert_int_equal(invdl_abstanh_forward(3, in, out), INVDL_OK);
    assert_true(out[0] != in[0] && out[1] == in[1] && out[2] == in[2]);
    float iy[3] = {nextafterf(inv, 0.0f), inv, nextafterf(inv, INFINITY)};
    assert_int_equal(invdl_abstanh_inverse(3, iy, out), INVDL_OK);
    assert_true(out[0] != iy[0] && out[1] == iy[1] && out[2] == iy[2]);

    char fact[200];
    snprintf(fact, sizeof fact,
             "y == x exactly from |x| >= %a (%.5f...) on, and x == y from |y| >= %a", (double)fwd,
             (double)fwd, (double)inv);
    assert_stated(fact);
    snprintf(fact, sizeof fact, "(tanh x itself rounds to 1 in float only from %.2f on)",
             (double)one);
    assert_stated(fact);
}

/* Signed sin compresses near 2 (f'(2) = sin 2 + 2 cos 2 = 0.077): the run
 * of floats sharing float(2 sin 2), that float's exact preimage, and the
 * float nearest it, which inverse(forward(2)) must be. */
static void test_ssin_round_trip_near_two(void **state)
{
    (void)state;
    const float two = 2.0f;
    float y = decided(ssin_l((long double)two), EVAL_REL), fy, back;
    uint32_t lo = 0, hi = 0;
    for (int32_t d = -64; d <= 64; d++) {
        float x = float_of((uint32_t)((int32_t)bits_of(two) + d));
        if (decided(ssin_l((long double)x), EVAL_REL) == y) {
            if (lo == 0)
                lo = bits_of(x);
            assert_true(hi == 0 || bits_of(x) == hi + 1);
            hi = bits_of(x);
        }
    }
    assert_true(lo > bits_of(two) - 64 && hi < bits_of(two) + 64);
    long double pre = ssin_preimage((long double)y, 1.9L, branch_end());
    float nearest = decided(pre, preimage_rel(pre, (long double)y));
    float run[70], runy[70];
    uint32_t n = hi - lo + 3;
    assert_true(n <= 70);
    for (uint32_t i = 0; i < n; i++)
        run[i] = float_of(lo - 1 + i);
    assert_int_equal(invdl_ssin_forward(n, run, runy), INVDL_OK);
    for (uint32_t i = 0; i < n; i++)
        assert_true((runy[i] == y) == (i > 0 && i < n - 1));
    assert_int_equal(invdl_ssin_forward(1, &two, &fy), INVDL_OK);
    assert_true(fy == y);
    assert_int_equal(invdl_ssin_inverse(1, &fy, &back), INVDL_OK);
    assert_true(back == nearest);

    char fact[400];
    snprintf(fact, sizeof fact,
             "where f'(x) = %.4Lf, the %u floats in [%a, %a] all map to float(2 sin 2) = %a, "
             "whose exact preimage is %.10Lf...: inverse(forward(2)) is the float nearest it, "
             "%a = %.10f",
             ssin_prime_l(2.0L), hi - lo + 1, (double)float_of(lo), (double)float_of(hi),
             (double)y, pre, (double)nearest, (double)nearest);
    assert_stated(fact);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s %s\n", argv[0], LIMITS_PAGE);
        return 2;
    }
    section = doc_section(argv[1], LIMITS_HEADING);
    if (section == NULL)
        fprintf(stderr, "no section \"%s\" in %s\n", LIMITS_HEADING, argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_underflow_to_zero),
        cmocka_unit_test(test_ssin_flat_top),
        cmocka_unit_test(test_ssin_inverse_of_smallest),
        cmocka_unit_test(test_abstanh_identity),
        cmocka_unit_test(test_ssin_round_trip_near_two),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(section);
    return failed;
}
