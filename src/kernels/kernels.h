/*
 * kernels.h - what the kernel sources share: polynomial evaluation, the
 * rounding decision, and the per-element functions every code path (scalar
 * or SIMD) falls back on.
 *
 * How a kernel returns a correctly rounded float
 * ----------------------------------------------
 * A fast path evaluates the result in double, p, together with a bound err
 * on |p - exact|.  If p - err and p + err round to the same float, that
 * float is the correctly rounded result.  Otherwise the interval holds the
 * midpoint m between two adjacent floats (err is far below half an ulp, so
 * there is exactly one), and the exact value is compared with m in
 * double-double arithmetic (dd.h): above m gives the upper float, below m
 * the lower one.  The exact value is never equal to m: x*sin x and
 * x*tanh x are transcendental at every nonzero rational x, and the inverses
 * are compared through the forward function at m.
 */
#ifndef INVDL_KERNELS_H
#define INVDL_KERNELS_H

#include "dd.h"
#include "invdl_private.h"

#include <float.h>

/* Every bound and every double-double step here assumes that float and
 * double operations round once, to their own format (C's FLT_EVAL_METHOD
 * 0): x87 arithmetic, which keeps extra precision, breaks them.  meson
 * builds 32-bit x86 with SSE2 arithmetic. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "invdl's kernels need FLT_EVAL_METHOD == 0 (on 32-bit x86: -msse2 -mfpmath=sse)"
#endif

/* SIMD paths are built where GCC/clang can target AVX2+FMA per function,
 * and AVX-512 (F, DQ, VL, BW) where the build found the compiler able to
 * (meson.build defines INVDL_CC_AVX512); each runs only on CPUs that have
 * its instructions (dispatch.c). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(INVDL_NO_SIMD)
#define INVDL_HAVE_AVX2 1
#else
#define INVDL_HAVE_AVX2 0
#endif

#if INVDL_HAVE_AVX2 && defined(INVDL_CC_AVX512)
#define INVDL_HAVE_AVX512 1
#else
#define INVDL_HAVE_AVX512 0
#endif

/* The reduction x = k ln2 + r, |r| <= ln2/2, behind exp and expm1 in
 * double (abs-tanh's forward, the coupling conditioner's tanh and exp):
 * ln 2 as a 32-bit head (k*LN2_HI is exact for |k| < 2^21) and a tail;
 * adding then subtracting ROUND_MAGIC = 1.5*2^52 rounds a double of
 * magnitude < 2^51 to an integer (round to nearest), and the sum's bits
 * minus ROUND_MAGIC's are that integer. */
#define LN2_HI 0x1.62e42fee00000p-1
#define LN2_LO 0x1.a39ef35793c76p-33
#define INV_LN2 0x1.71547652b82fep+0
#define ROUND_MAGIC 0x1.8p52

/* expm1(r)/r = 1 + r*P(r) for |r| <= ln2/2: P's 9 coefficients, lowest
 * first (abstanh.c; relative error 2^-48.3). */
extern const double invdl_expm1_p[9];

static inline double invdl_horner(const double *c, int n, double t)
{
    double acc = c[n - 1];
#pragma GCC unroll 16
    for (int i = n - 2; i >= 0; i--)
        acc = acc * t + c[i];
    return acc;
}

/* The rounding decision for a value p known within err.  When it is
 * decided, lo == hi is the answer; otherwise lo < hi are the candidates and
 * mid is the midpoint between them, exactly representable in double. */
typedef struct invdl_rounding {
    float lo;
    float hi;
    double mid;
} invdl_rounding;

static inline invdl_rounding invdl_round_candidates(double p, double err)
{
    invdl_rounding r;
    r.lo = (float)(p - err);
    r.hi = (float)(p + err);
    r.mid = 0.5 * ((double)r.lo + (double)r.hi);
    return r;
}

/* Exact values in double-double, for the tie-breaks.  The arguments are
 * nonnegative doubles with at most 26 significant bits (floats and midpoints
 * between floats), within the ranges each function documents. */
dd invdl_ssin_exact(double x);
dd invdl_abstanh_exact(double x);

/* Per-element functions, correctly rounded, for every float input; the SIMD
 * paths call them for the elements they do not finish themselves. */
float invdl_ssin_forward1(float x);
float invdl_ssin_inverse1(float y);
float invdl_abstanh_forward1(float x);
float invdl_abstanh_inverse1(float y);

/* The kernels of one code path, invdl_<kernel>_<path>, with the public
 * kernels' contract and results (every path is correctly rounded, or the
 * single IEEE operation, so they agree bit for bit).  The public functions
 * take the widest path the CPU runs (dispatch.c); tests call them all. */
#define INVDL_DECLARE_PATH(path)                                                                \
    invdl_status invdl_ssin_forward_##path(size_t n, const float *x, float *y);               \
    invdl_status invdl_ssin_inverse_##path(size_t n, const float *y, float *x);               \
    invdl_status invdl_abstanh_forward_##path(size_t n, const float *x, float *y);            \
    invdl_status invdl_abstanh_inverse_##path(size_t n, const float *y, float *x);            \
    invdl_status invdl_mprelu_forward_##path(size_t rows, size_t cols, const float *alpha,    \
                                             float alpha_min, const float *x, float *y);      \
    invdl_status invdl_mprelu_inverse_##path(size_t rows, size_t cols, const float *alpha,    \
                                             float alpha_min, const float *y, float *x);      \
    void invdl_tanh_pd_##path(size_t n, double *v);                                           \
    void invdl_soft_scale_##path(size_t n, double *r, double *e, int negate);

/* The portable scalar path, always built. */
INVDL_DECLARE_PATH(scalar)

#if INVDL_HAVE_AVX2
/* The AVX2+FMA path; call only where the CPU has both. */
INVDL_DECLARE_PATH(avx2)
#endif

#if INVDL_HAVE_AVX512
/* The AVX-512 path; call only where the CPU has AVX2, FMA and AVX-512 F,
 * DQ, VL and BW. */
INVDL_DECLARE_PATH(avx512)
#endif

/* The code paths built into the library, one table each: dispatch.c picks
 * the widest the CPU runs, and the tests and benchmarks go through all of
 * them. */
typedef invdl_status (*invdl_elementwise_fn)(size_t n, const float *in, float *out);
typedef invdl_status (*invdl_mprelu_fn)(size_t rows, size_t cols, const float *alpha,
                                        float alpha_min, const float *in, float *out);

/* The coupling layer's conditioner in double (conditioner.c), on n values
 * in place:
 *   tanh_pd     v[i] = tanh(v[i]);
 *   soft_scale  s = 2 tanh(r[i]/2) into r[i], and e[i] = exp(s) (negate 0)
 *               or exp(-s) (negate 1).
 * Not correctly rounded, but one algorithm in separate IEEE operations on
 * every path, so every path gives the same bits. */
typedef void (*invdl_tanh_pd_fn)(size_t n, double *v);
typedef void (*invdl_soft_scale_fn)(size_t n, double *r, double *e, int negate);

typedef struct invdl_kernel_path {
    const char *name;  /* "scalar", "AVX2", "AVX-512" */
    int (*runs)(void); /* nonzero if this CPU runs the path */
    invdl_elementwise_fn ssin_forward;
    invdl_elementwise_fn ssin_inverse;
    invdl_elementwise_fn abstanh_forward;
    invdl_elementwise_fn abstanh_inverse;
    invdl_mprelu_fn mprelu_forward;
    invdl_mprelu_fn mprelu_inverse;
    invdl_tanh_pd_fn tanh_pd;
    invdl_soft_scale_fn soft_scale;
} invdl_kernel_path;

/* Every path built, the portable scalar one first, then by vector width:
 * path i for i < invdl_kernel_path_count(); whether the CPU runs it is
 * path->runs().  The table is constant and static: the caller owns
 * nothing. */
size_t invdl_kernel_path_count(void);
const invdl_kernel_path *invdl_kernel_path_at(size_t i);

/* The path the public kernels take on this CPU: the widest it runs. */
const invdl_kernel_path *invdl_kernel_path_best(void);

#endif /* INVDL_KERNELS_H */
