/*
 * reference.c - see reference.h.
 */
#include "reference.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

long double ref_ssin(long double x)
{
    return x * sinl(fabsl(x));
}

long double ref_abstanh(long double x)
{
    return fabsl(x) * tanhl(x);
}

/* Root of f(x) = target on [lo, hi] for increasing f: bisection down to the
 * long double spacing, then Newton steps, which converge quadratically
 * from there. */
static long double solve_increasing(long double (*f)(long double), long double (*df)(long double),
                                    long double target, long double lo, long double hi)
{
    for (int i = 0; i < 200 && lo < hi; i++) {
        long double mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi)
            break;
        if (f(mid) < target)
            lo = mid;
        else
            hi = mid;
    }
    long double x = lo + (hi - lo) / 2;
    for (int i = 0; i < 3; i++) {
        long double d = df(x);
        if (d == 0)
            break;
        long double nx = x - (f(x) - target) / d;
        if (!(nx >= lo && nx <= hi))
            break;
        x = nx;
    }
    return x;
}

static long double ssin_pos(long double x)
{
    return x * sinl(x);
}

static long double dssin_pos(long double x)
{
    return sinl(x) + x * cosl(x);
}

static long double abstanh_pos(long double x)
{
    return x * tanhl(x);
}

static long double dabstanh_pos(long double x)
{
    long double t = tanhl(x);
    return t + x * (1 - t * t);
}

/* T, the end of the branch: root of tan t = -t, to long double precision. */
static long double ssin_t(void)
{
    return 2.0287578381104342235769711247347144L;
}

long double ref_ssin_inv(long double y)
{
    long double a = fabsl(y);
    if (a == 0)
        return y;
    long double x = solve_increasing(ssin_pos, dssin_pos, a, 0, ssin_t());
    return y < 0 ? -x : x;
}

long double ref_abstanh_inv(long double y)
{
    long double a = fabsl(y);
    if (a == 0)
        return y;
    /* x*tanh(x) >= x - 1 and <= x for x >= 0, so the root is in [a, a + 1]
     * above 1 and in [0, 2] below. */
    long double hi = a < 1 ? 2 : a + 1;
    long double x = solve_increasing(abstanh_pos, dabstanh_pos, a, a < 1 ? 0 : a, hi);
    return y < 0 ? -x : x;
}

double ulp_error(float got, long double exact)
{
    if (isnan(got) || isnan((double)exact))
        return isnan(got) && isnan((double)exact) ? 0.0 : (double)INFINITY;
    if (isinf(got) || isinf((double)exact))
        return (long double)got == exact ? 0.0 : (double)INFINITY;
    long double a = fabsl(exact);
    int e;
    if (a < (long double)FLT_MIN)
        e = -126;
    else
        (void)frexpl(a, &e), e -= 1;
    long double ulp = ldexpl(1.0L, e - 23);
    return (double)(fabsl((long double)got - exact) / ulp);
}

float float_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint32_t bits_from_float(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

uint64_t test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

float random_in_binade(uint64_t *state, int e)
{
    uint64_t r = test_rand(state);
    uint32_t mant = (uint32_t)(r & 0x7fffffu);
    uint32_t sign = (uint32_t)((r >> 32) & 1u) << 31;
    uint32_t exp = e <= -127 ? 0u : (uint32_t)(e + 127);
    if (exp == 0 && mant == 0)
        mant = 1;
    return float_from_bits(sign | exp << 23 | mant);
}

double test_uniform(uint64_t *state)
{
    return (double)(test_rand(state) >> 11) * 0x1p-52 - 1.0;
}

float *test_random_floats(size_t n, double scale, uint64_t seed)
{
    float *v = malloc((n + 1) * sizeof *v);
    if (v == NULL)
        abort();
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(scale * test_uniform(&s));
    return v;
}

long double half_float_ulp(long double v)
{
    int e;
    frexpl(v, &e);
    return ldexpl(1.0L, (e > -125 ? e : -125) - 25);
}

long double ref_eliminate(size_t n, size_t m, long double *a)
{
    long double logdet = 0.0L;
    for (size_t k = 0; k < n; k++) {
        size_t piv = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabsl(a[i * m + k]) > fabsl(a[piv * m + k]))
                piv = i;
        for (size_t j = 0; j < m; j++) {
            long double t = a[k * m + j];
            a[k * m + j] = a[piv * m + j];
            a[piv * m + j] = t;
        }
        logdet += logl(fabsl(a[k * m + k]));
        for (size_t i = k + 1; i < n; i++) {
            long double f = a[i * m + k] / a[k * m + k];
            for (size_t j = k; j < m; j++)
                a[i * m + j] -= f * a[k * m + j];
        }
    }
    return logdet;
}
