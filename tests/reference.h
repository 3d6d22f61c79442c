/*
 * reference.h - independent references for the unit tests.
 *
 * Exact values are computed in long double (x87 extended, 64-bit
 * significand on x86-64) with the C library's sinl/tanhl, never with the
 * library under test.  Their error is a few ulps of long double, 2^-61
 * relative at worst, i.e. below 2^-37 ulp of float: tests compare in float
 * ulps and allow exactly that much on top of the claimed bound.
 */
#ifndef INVDL_TEST_REFERENCE_H
#define INVDL_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* Slack for the reference's own error, in float ulps. */
#define REF_SLACK_ULPS 0x1p-30

long double ref_ssin(long double x);      /* x*sin|x| */
long double ref_abstanh(long double x);   /* |x|*tanh(x) */
/* Exact inverses by bisection then Newton in long double: ref_ssin_inv for
 * |y| <= Y on the branch |x| <= T, ref_abstanh_inv for every finite y. */
long double ref_ssin_inv(long double y);
long double ref_abstanh_inv(long double y);

/* |got - exact| in ulps of float at exact (subnormal spacing 2^-149 below
 * 2^-126).  Infinite if got is not finite and exact is. */
double ulp_error(float got, long double exact);

float float_from_bits(uint32_t bits);
uint32_t bits_from_float(float f);

/* A small deterministic generator (splitmix64). */
uint64_t test_rand(uint64_t *state);
/* A float with uniformly random significand and sign, in binade e:
 * [2^e, 2^(e+1)) for e >= -126; e == -127 gives a random subnormal. */
float random_in_binade(uint64_t *state, int e);

/* Uniform in [-1, 1) from the generator. */
double test_uniform(uint64_t *state);
/* n floats (room for n + 1) uniform in [-scale, scale), from seed; the
 * caller frees them. */
float *test_random_floats(size_t n, double scale, uint64_t seed);
/* Half the spacing of floats at v: the most a correct rounding to float
 * moves it (subnormal spacing below 2^-126). */
long double half_float_ulp(long double v);
/* Gaussian elimination with partial pivoting on the n x m matrix a
 * (row-major, m >= n): the leading n x n block becomes upper triangular,
 * columns n..m-1 (right-hand sides) are carried along; returns log|det|
 * of the leading block. */
long double ref_eliminate(size_t n, size_t m, long double *a);

#endif
