/*
 * dd.h - double-double arithmetic for the kernels' accurate paths.
 *
 * A dd is an unevaluated sum hi + lo with |lo| <= ulp(hi)/2, carrying about
 * 106 bits.  The kernels use it only where the fast double evaluation cannot
 * decide the rounding of a float result (a few inputs in a million), so
 * clarity wins over speed here.  The algorithms are the classical ones of
 * Dekker, Knuth and Shewchuk; fma() gives the exact product error.
 */
#ifndef INVDL_DD_H
#define INVDL_DD_H

#include <math.h>

typedef struct dd {
    double hi;
    double lo;
} dd;

static inline dd dd_make(double hi, double lo)
{
    dd r = {hi, lo};
    return r;
}

/* a + b exactly, assuming |a| >= |b| or a == 0 (Dekker). */
static inline dd dd_fast_two_sum(double a, double b)
{
    double s = a + b;
    return dd_make(s, b - (s - a));
}

/* a + b exactly, no ordering assumed (Knuth). */
static inline dd dd_two_sum(double a, double b)
{
    double s = a + b;
    double bb = s - a;
    return dd_make(s, (a - (s - bb)) + (b - bb));
}

/* a * b exactly (barring underflow). */
static inline dd dd_two_prod(double a, double b)
{
    double p = a * b;
    return dd_make(p, fma(a, b, -p));
}

static inline dd dd_add(dd a, dd b)
{
    dd s = dd_two_sum(a.hi, b.hi);
    dd t = dd_two_sum(a.lo, b.lo);
    s.lo += t.hi;
    s = dd_fast_two_sum(s.hi, s.lo);
    s.lo += t.lo;
    return dd_fast_two_sum(s.hi, s.lo);
}

static inline dd dd_add_d(dd a, double b)
{
    dd s = dd_two_sum(a.hi, b);
    s.lo += a.lo;
    return dd_fast_two_sum(s.hi, s.lo);
}

static inline dd dd_neg(dd a)
{
    return dd_make(-a.hi, -a.lo);
}

static inline dd dd_mul(dd a, dd b)
{
    dd p = dd_two_prod(a.hi, b.hi);
    p.lo += a.hi * b.lo + a.lo * b.hi;
    return dd_fast_two_sum(p.hi, p.lo);
}

static inline dd dd_mul_d(dd a, double b)
{
    dd p = dd_two_prod(a.hi, b);
    p.lo += a.lo * b;
    return dd_fast_two_sum(p.hi, p.lo);
}

/* a / b: a first quotient, then two corrections from the exact remainder. */
static inline dd dd_div(dd a, dd b)
{
    double q1 = a.hi / b.hi;
    dd r = dd_add(a, dd_neg(dd_mul_d(b, q1)));
    double q2 = r.hi / b.hi;
    r = dd_add(r, dd_neg(dd_mul_d(b, q2)));
    double q3 = r.hi / b.hi;
    dd q = dd_fast_two_sum(q1, q2);
    return dd_add_d(q, q3);
}

static inline dd dd_div_d(dd a, double b)
{
    return dd_div(a, dd_make(b, 0.0));
}

/* Sign of (a - b) for a dd a and a double b: -1, 0 or +1. */
static inline int dd_cmp_d(dd a, double b)
{
    dd d = dd_add_d(a, -b);
    return (d.hi > 0.0) - (d.hi < 0.0);
}

#endif /* INVDL_DD_H */
