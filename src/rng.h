/*
 * rng.h - the deterministic generator behind seeded initialisation and
 * shuffling.  splitmix64 (Steele, Lea, Flood 2014): one 64-bit state that
 * the caller owns, so there is no shared generator and no global state.
 */
#ifndef INVDL_RNG_H
#define INVDL_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t invdl_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double invdl_rng_uniform(uint64_t *state)
{
    return (double)(invdl_rng_next(state) >> 11) * 0x1p-53;
}

/* Uniform in [0, bound) without modulo bias, for bound >= 1. */
static inline uint64_t invdl_rng_below(uint64_t *state, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = invdl_rng_next(state);
    while (r >= limit);
    return r % bound;
}

/* Standard normal (Box-Muller; one of the pair is dropped, which keeps the
 * stream position a function of the number of draws alone). */
static inline double invdl_rng_normal(uint64_t *state)
{
    double u1 = 1.0 - invdl_rng_uniform(state); /* (0, 1]: log is finite */
    double u2 = invdl_rng_uniform(state);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif /* INVDL_RNG_H */
