/*
 * exhaustive_float.h - float bit patterns, neighbours, midpoints and ulps
 * for the exhaustive verifier.
 *
 * Everything here is exact: floats, their neighbours and the midpoints
 * between adjacent floats all have at most 25 significant bits and lie
 * within double's normal range, so they are represented exactly as doubles.
 */
#ifndef INVDL_EXHAUSTIVE_FLOAT_H
#define INVDL_EXHAUSTIVE_FLOAT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SIGN_BIT 0x80000000u
#define ABS_MASK 0x7fffffffu
#define INF_BITS 0x7f800000u

static inline uint32_t fbits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float bitsf(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static inline int same_bits(float a, float b)
{
    return fbits(a) == fbits(b);
}

/* Bitwise equal, or both NaN (any payload). */
static inline int same_or_both_nan(float a, float b)
{
    return same_bits(a, b) || (isnan(a) && isnan(b));
}

static inline int is_nan_bits(uint32_t b)
{
    return (b & ABS_MASK) > INF_BITS;
}

/* The next float up / down; next_down(+0) is -2^-149, next_up(FLT_MAX) inf.
 * For non-NaN f (bit arithmetic: nextafterf is a library call per use). */
static inline float next_up(float f)
{
    uint32_t b = fbits(f);
    if (b == INF_BITS)
        return f;
    if (b == SIGN_BIT)
        return bitsf(1);
    return bitsf(b & SIGN_BIT ? b - 1 : b + 1);
}

static inline float next_down(float f)
{
    return -next_up(-f);
}

/* The exponent of the float binade holding |v|: -126 for subnormals (and
 * 0), at most 127. */
static inline int float_binade(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    int e = (int)((b >> 52) & 0x7ff) - 1023;
    return e < -126 ? -126 : (e > 127 ? 127 : e);
}

static inline double pow2(int e)
{
    uint64_t r = (uint64_t)(e + 1023) << 52;
    double u;
    memcpy(&u, &r, sizeof u);
    return u;
}

/* Spacing of floats in the binade of |v| (2^-149 among subnormals); values
 * at or beyond 2^128 use the spacing of the top binade.  Its inverse, exact
 * too, turns errors into ulps by a multiplication. */
static inline double ulp_at(double v)
{
    return pow2(float_binade(v) - 23);
}

static inline double inv_ulp_at(double v)
{
    return pow2(23 - float_binade(v));
}

/* The float spacing above the top float: FLT_MAX + 2^104 is where the next
 * float would be, so the midpoint FLT_MAX + 2^103 is the overflow threshold. */
static inline double up_neighbour(float f)
{
    float u = next_up(f);
    return isinf(u) ? (double)f + 0x1p104 : (double)u;
}

/* Midpoints to the neighbouring floats, exact in double.  For f = +0 the
 * lower one is -2^-150. */
static inline double mid_below(float f)
{
    return 0.5 * ((double)f + (double)next_down(f));
}

static inline double mid_above(float f)
{
    return 0.5 * ((double)f + up_neighbour(f));
}

#endif /* INVDL_EXHAUSTIVE_FLOAT_H */
