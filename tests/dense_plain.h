/*
 * dense_plain.h - the dense layer's arithmetic as plain loops in double,
 * one sample at a time: what the layer computed before its batched kernels
 * (src/kernels/dense_kernels.c), and what those must reproduce bit for bit.
 * test_dense.c holds the kernels to it; bench_dense.c measures it as the
 * baseline.  Built with -ffp-contract=off: each a*b + c rounds twice.
 */
#ifndef INVDL_DENSE_PLAIN_H
#define INVDL_DENSE_PLAIN_H

#include "kernels/dense_kernels.h"

/* Unblocked LU with partial pivoting, log|det|, |W|_inf and |W^-1|_inf
 * (one solve per column of W^-1, every sum in index order) of the n x n
 * matrix w into f's lu (rows f->lu_ld apart), perm, log_abs_det, norm and
 * inv_norm; f->work serves as 2n doubles of scratch.  INVDL_OK or INVDL_ESINGULAR (a zero
 * pivot, or a reciprocal 1-norm condition number below FLT_EPSILON). */
invdl_status plain_factor(const float *w, invdl_dense_factors *f);

/* y = W x + b, sample by sample; x == y allowed. */
void plain_forward(size_t n, const float *w, const float *b, size_t batch, const float *x,
                   float *y, double *scratch /* n doubles */);

/* x = W^-1 (y - b) by the LU solves of f (upper: k from n-1 down). */
void plain_inverse(const invdl_dense_factors *f, const float *b, size_t batch, const float *y,
                   float *x, double *scratch /* 2n doubles */);

/* As invdl_dense_backward(), sample by sample. */
void plain_backward(const invdl_dense_factors *f, const float *w, int inverse, size_t batch,
                    const float *in, const float *out, const float *dout, float *din,
                    double *dparams, double *scratch /* 2n doubles */);

/* The LU-parametrised layer's arithmetic with the factors f (lu, perm,
 * unfloored filled), sample by sample, in the orders dense_kernels.h
 * states; scratch holds 5n doubles. */
void plain_plu_forward(const invdl_dense_plu *f, const float *b, size_t batch, const float *in,
                       float *out, double *scratch);
void plain_plu_inverse(const invdl_dense_plu *f, const float *b, size_t batch, const float *in,
                       float *out, double *scratch);
void plain_plu_backward(const invdl_dense_plu *f, int inverse, size_t batch, const float *in,
                        const float *out, const float *dout, float *din, double *dparams,
                        double *scratch);

#endif /* INVDL_DENSE_PLAIN_H */
