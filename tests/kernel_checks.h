/*
 * kernel_checks.h - checks the signed-sin and abs-tanh tests share.
 */
#ifndef INVDL_TEST_KERNEL_CHECKS_H
#define INVDL_TEST_KERNEL_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include "invdl.h"

typedef invdl_status (*kernel_fn)(size_t n, const float *in, float *out);

/* Consecutive floats from the bit pattern start on never give decreasing
 * results. */
void check_monotone_run(float (*fn)(float), uint32_t start, uint32_t count);

/* Exact ties: where x is small and x^2 is exactly a rounding midpoint of
 * float, x sin x and x tanh x (both x^2 (1 - O(x^2))) lie just below it, so
 * the answer is the float below x^2, whatever a long double reference
 * (which rounds to x^2 itself) would say.  Checks every such x = M 2^E with
 * M odd: x^2 is a 25-bit midpoint for 4096 < M < 5793, and a subnormal one
 * for E = -75, M < 4096; both signs. */
void check_exact_ties(kernel_fn forward);

#endif
