/*
 * train_loops.c - the elementwise loops of a training step (train_loops.h),
 * written once and compiled for each instruction set: the portable path,
 * AVX2 and AVX-512F, chosen at run time.
 *
 * The loops the compiler vectorizes by itself (src/meson.build builds this
 * file with -ftree-vectorize, -fno-math-errno so that sqrt is one
 * instruction, and -ffp-contract=off) are plain loops; PReLU's backward
 * pass, whose output may be its input, is written with vectors of eight
 * lanes (GCC's vector extensions, which clang shares) so that no overlap
 * test sends it to scalar code.  Either way each element's operations are
 * the plain loop's, in its order.
 */
#include "train_loops.h"

#include <math.h>
#include <string.h>

#define ALWAYS_INLINE __attribute__((__always_inline__)) static inline

/* Eight lanes: doubles, floats, and the masks comparisons give. */
typedef double v8d __attribute__((__vector_size__(64)));
typedef float v8f __attribute__((__vector_size__(32)));
typedef int64_t v8l __attribute__((__vector_size__(64)));
typedef int32_t v8i __attribute__((__vector_size__(32)));

/* The exponent field of each double, plus one in its lowest bit: an
 * exponent of all ones (inf, NaN) carries into the sign bit, any other does
 * not.  Or-ed over all elements: one pass, no branch. */
ALWAYS_INLINE int finite_body(size_t n, const double *v)
{
    uint64_t any = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        any |= (bits & UINT64_C(0x7ff0000000000000)) + UINT64_C(0x0010000000000000);
    }
    return (any >> 63) == 0;
}

ALWAYS_INLINE void sgd_body(size_t n, const float *cur, const double *grad, double scale,
                            float lr, float m, int nesterov, float *velocity, float *next)
{
    if (m == 0.0f) {
        for (size_t i = 0; i < n; i++)
            next[i] = cur[i] - lr * (float)(grad[i] * scale);
    } else if (!nesterov) {
        for (size_t i = 0; i < n; i++) {
            float g = (float)(grad[i] * scale);
            velocity[i] = m * velocity[i] - lr * g;
            next[i] = cur[i] + velocity[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float g = (float)(grad[i] * scale);
            velocity[i] = m * velocity[i] - lr * g;
            next[i] = cur[i] + (m * velocity[i] - lr * g);
        }
    }
}

ALWAYS_INLINE void adam_body(size_t n, const float *cur, const double *grad, double scale,
                             double lr_t, double b1, double b2, double eps, double *m, double *v,
                             float *next)
{
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] * scale;
        m[i] = b1 * m[i] + (1.0 - b1) * g;
        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
        next[i] = (float)((double)cur[i] - lr_t * m[i] / (sqrt(v[i]) + eps));
    }
}

/* Loads and stores of eight lanes at unaligned addresses. */
#define LOAD8(type, p) __extension__({ type v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE8(p, v) memcpy((p), &(v), sizeof(v))

/* a where the mask is all ones, else b. */
#define SELECT8(mask, a, b) ((v8d)(((mask) & (v8l)(a)) | (~(mask) & (v8l)(b))))

/* One sample's row. */
ALWAYS_INLINE void mprelu_row(size_t width, int inverse, const float *in, const float *out,
                              const float *dout, float *din, double *dparams, const double *coef,
                              const double *aa, const double *slope)
{
    const v8d one = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
    const v8f zero = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    size_t j = 0;
    for (; j + 8 <= width; j += 8) {
        v8l neg = __builtin_convertvector(LOAD8(v8f, out + j) < zero, v8l);
        v8d g = __builtin_convertvector(LOAD8(v8f, dout + j), v8d);
        if (dparams != NULL) {
            v8d x = __builtin_convertvector(LOAD8(v8f, in + j), v8d);
            v8d f = inverse ? -x / LOAD8(v8d, aa + j) : x;
            v8d dp = LOAD8(v8d, dparams + j);
            dp = SELECT8(neg, dp + (g * f) * LOAD8(v8d, coef + j), dp);
            STORE8(dparams + j, dp);
        }
        v8f d = __builtin_convertvector(SELECT8(neg, LOAD8(v8d, slope + j), one) * g, v8f);
        STORE8(din + j, d);
    }
    for (; j < width; j++) {
        int neg = out[j] < 0.0f;
        double g = (double)dout[j];
        if (dparams != NULL && neg) {
            double x = (double)in[j];
            dparams[j] = dparams[j] + (g * (inverse ? -x / aa[j] : x)) * coef[j];
        }
        din[j] = (float)((neg ? slope[j] : 1.0) * g);
    }
}

ALWAYS_INLINE void mprelu_backward_body(size_t rows, size_t width, int inverse, const float *in,
                                        const float *out, const float *dout, float *din,
                                        double *dparams, const double *coef, const double *aa,
                                        const double *slope)
{
    for (size_t s = 0; s < rows; s++) {
        size_t at = s * width;
        mprelu_row(width, inverse, in + at, out + at, dout + at, din + at, dparams, coef, aa,
                   slope);
    }
}

/* The loops of one path, as functions with the path's target. */
#define TRAIN_LOOPS(suffix, attr)                                                                \
    attr static int finite_##suffix(size_t n, const double *v)                                   \
    {                                                                                            \
        return finite_body(n, v);                                                                \
    }                                                                                            \
    attr static void sgd_##suffix(size_t n, const float *cur, const double *grad, double scale,  \
                                  float lr, float m, int nesterov, float *velocity, float *next) \
    {                                                                                            \
        sgd_body(n, cur, grad, scale, lr, m, nesterov, velocity, next);                          \
    }                                                                                            \
    attr static void adam_##suffix(size_t n, const float *cur, const double *grad, double scale, \
                                   double lr_t, double b1, double b2, double eps, double *m,     \
                                   double *v, float *next)                                       \
    {                                                                                            \
        adam_body(n, cur, grad, scale, lr_t, b1, b2, eps, m, v, next);                           \
    }                                                                                            \
    attr static void mprelu_backward_##suffix(                                                   \
        size_t rows, size_t width, int inverse, const float *in, const float *out,               \
        const float *dout, float *din, double *dparams, const double *coef, const double *aa,    \
        const double *slope)                                                                     \
    {                                                                                            \
        mprelu_backward_body(rows, width, inverse, in, out, dout, din, dparams, coef, aa, slope);\
    }                                                                                            \
    const invdl_train_loops invdl_train_loops_##suffix = {                                       \
        .name = #suffix,                                                                         \
        .finite = finite_##suffix,                                                               \
        .sgd = sgd_##suffix,                                                                     \
        .adam = adam_##suffix,                                                                   \
        .mprelu_backward = mprelu_backward_##suffix,                                             \
    };

TRAIN_LOOPS(scalar, )
#if INVDL_HAVE_AVX2
TRAIN_LOOPS(avx2, __attribute__((__target__("avx2"))))
TRAIN_LOOPS(avx512, __attribute__((__target__("avx512f"))))
#endif

const invdl_train_loops *invdl_train_loops_best(void)
{
#if INVDL_HAVE_AVX2
    /* Reads flags the runtime filled in at startup: no state of our own. */
    if (__builtin_cpu_supports("avx512f"))
        return &invdl_train_loops_avx512;
    if (__builtin_cpu_supports("avx2"))
        return &invdl_train_loops_avx2;
#endif
    return &invdl_train_loops_scalar;
}
