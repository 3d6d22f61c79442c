/*
 * train_loops.h - the loops over flat arrays a training step runs besides
 * the dense products: the optimizers' updates (fit.c), the finiteness test
 * of a gradient, and PReLU's backward pass (layers/mprelu.c).
 *
 * Each loop is elementwise: every output is the same few IEEE operations
 * on the same inputs (no sum across elements, no fused multiply-add), so
 * the code paths - eight lanes at a time through vectors the compiler maps
 * to the instruction set's registers, the last lanes one by one - agree
 * bit for bit with each other and with the plain loop each function states.
 * train_loops.c is compiled with -ffp-contract=off.
 */
#ifndef INVDL_TRAIN_LOOPS_H
#define INVDL_TRAIN_LOOPS_H

#include "kernels.h" /* INVDL_HAVE_AVX2, INVDL_HAVE_AVX512 */

typedef struct invdl_train_loops {
    const char *name; /* "scalar", "avx2", "avx512" */
    /* 1 if none of the n doubles is infinite or NaN. */
    int (*finite)(size_t n, const double *v);
    /* SGD: g = (float)(grad[i] * scale), then with m == 0
     *   next[i] = cur[i] - lr * g;
     * else velocity[i] = m * velocity[i] - lr * g and
     *   next[i] = cur[i] + velocity[i], or with Nesterov's momentum
     *   next[i] = cur[i] + (m * velocity[i] - lr * g);
     * in float.  velocity is not read when m == 0. */
    void (*sgd)(size_t n, const float *cur, const double *grad, double scale, float lr, float m,
                int nesterov, float *velocity, float *next);
    /* Adam in double: g = grad[i] * scale, m[i] = b1 m[i] + (1 - b1) g,
     * v[i] = b2 v[i] + (1 - b2) g g (left to right),
     *   next[i] = (float)(cur[i] - lr_t m[i] / (sqrt(v[i]) + eps)). */
    void (*adam)(size_t n, const float *cur, const double *grad, double scale, double lr_t,
                 double b1, double b2, double eps, double *m, double *v, float *next);
    /* PReLU's backward pass over rows of width floats, sample by sample,
     * for each j with neg = out[j] < 0 (the branch, read from the output):
     *   dparams[j] += ((g * x) * coef[j]) where neg (inverse == 0), or
     *   dparams[j] += ((g * (-x / aa[j])) * coef[j]) (inverse == 1),
     *     dparams may be NULL;
     *   din[j] = (float)((neg ? slope[j] : 1.0) * g);
     * with g = (double)dout[j], x = (double)in[j].  din may be dout. */
    void (*mprelu_backward)(size_t rows, size_t width, int inverse, const float *in,
                            const float *out, const float *dout, float *din, double *dparams,
                            const double *coef, const double *aa, const double *slope);
} invdl_train_loops;

/* The portable path, built everywhere. */
extern const invdl_train_loops invdl_train_loops_scalar;
#if INVDL_HAVE_AVX2
/* The AVX2 and AVX-512F paths; use only where the CPU has them. */
extern const invdl_train_loops invdl_train_loops_avx2;
extern const invdl_train_loops invdl_train_loops_avx512;
#endif

/* The fastest path this CPU runs (asked of the CPU each call). */
const invdl_train_loops *invdl_train_loops_best(void);

#endif /* INVDL_TRAIN_LOOPS_H */
