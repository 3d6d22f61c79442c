/*
 * simd_x86.h - AVX2+FMA building blocks shared by the kernels' SIMD paths.
 *
 * Every function here carries INVDL_AVX2, so the library itself needs no
 * -mavx2: the public functions call these paths only after checking the CPU
 * (dispatch.c).  The paths handle 8 floats at a time, evaluate in double
 * (two halves of 4) where correct rounding needs it, and hand the rare
 * undecided or special lanes to the scalar per-element functions.
 */
#ifndef INVDL_SIMD_X86_H
#define INVDL_SIMD_X86_H

#include "kernels.h"

#if INVDL_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

#define INVDL_AVX2 __attribute__((__target__("avx2,fma")))
/* For the vector bodies, which must inline into the runners below. */
#define INVDL_AVX2_BODY INVDL_AVX2 __attribute__((__always_inline__))

INVDL_AVX2 static inline __m256d invdl_horner_pd(const double *c, int n, __m256d t)
{
    __m256d acc = _mm256_set1_pd(c[n - 1]);
#pragma GCC unroll 16
    for (int i = n - 2; i >= 0; i--)
        acc = _mm256_fmadd_pd(acc, t, _mm256_set1_pd(c[i]));
    return acc;
}

/* The same polynomial by Estrin's scheme: more operations, but a dependency
 * chain of log2(n) steps instead of n, which lets the CPU overlap the
 * lanes' work.  n <= 16. */
INVDL_AVX2 static inline __m256d invdl_estrin_pd(const double *c, int n, __m256d t)
{
    __m256d v[8];
    int m = n / 2;
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
        v[i] = _mm256_fmadd_pd(_mm256_set1_pd(c[2 * i + 1]), t, _mm256_set1_pd(c[2 * i]));
    if (n % 2)
        v[m++] = _mm256_set1_pd(c[n - 1]);
    __m256d power = _mm256_mul_pd(t, t);
#pragma GCC unroll 4
    while (m > 1) {
#pragma GCC unroll 4
        for (int i = 0; i < m / 2; i++)
            v[i] = _mm256_fmadd_pd(v[2 * i + 1], power, v[2 * i]);
        if (m % 2)
            v[m / 2] = v[m - 1];
        m = (m + 1) / 2;
        power = _mm256_mul_pd(power, power);
    }
    return v[0];
}

INVDL_AVX2 static inline __m256 invdl_estrin_ps(const float *c, int n, __m256 t)
{
    __m256 v[8];
    int m = n / 2;
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
        v[i] = _mm256_fmadd_ps(_mm256_set1_ps(c[2 * i + 1]), t, _mm256_set1_ps(c[2 * i]));
    if (n % 2)
        v[m++] = _mm256_set1_ps(c[n - 1]);
    __m256 power = _mm256_mul_ps(t, t);
#pragma GCC unroll 4
    while (m > 1) {
#pragma GCC unroll 4
        for (int i = 0; i < m / 2; i++)
            v[i] = _mm256_fmadd_ps(v[2 * i + 1], power, v[2 * i]);
        if (m % 2)
            v[m / 2] = v[m - 1];
        m = (m + 1) / 2;
        power = _mm256_mul_ps(power, power);
    }
    return v[0];
}

INVDL_AVX2 static inline __m256d invdl_lo_pd(__m256 v)
{
    return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}

INVDL_AVX2 static inline __m256d invdl_hi_pd(__m256 v)
{
    return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

/* The rounding decision of kernels.h in integer arithmetic, for a bound of
 * m[i] ulps of double per lane (0 < m <= 2^27, or 2^29 for "undecided"):
 * p is within m ulps of a
 * rounding midpoint of float exactly when the 29 bits below float's last one
 * are within m of 0x10000000, that is when v = low - (0x10000000 - m) lies in
 * [0, 2m), or v + 2^63 - 2m in [2^63 - 2m, 2^63), the top of the signed
 * range: one compare.  For p whose float lies in the normal range (callers
 * flag the others). */
INVDL_AVX2 static inline __m128 invdl_round_m_pd(__m256d p, __m128i m32, int shift,
                                                 int *undecided)
{
    const long long top = 0x7fffffffffffffffLL;
    __m256i m = _mm256_cvtepi32_epi64(m32);
    __m256i low = _mm256_and_si256(_mm256_castpd_si256(p), _mm256_set1_epi64x(0x1fffffff));
    __m256i w = _mm256_sub_epi64(_mm256_add_epi64(low, _mm256_set1_epi64x(top - 0x10000000 + 1)), m);
    __m256i t = _mm256_sub_epi64(_mm256_set1_epi64x(top), _mm256_add_epi64(m, m));
    __m256i near = _mm256_cmpgt_epi64(w, t);
    *undecided |= _mm256_movemask_pd(_mm256_castsi256_pd(near)) << shift;
    return _mm256_cvtpd_ps(p);
}

/* The same for a fixed relative bound E: E*p < E*2^(e+1) = (E*2^53) ulp(p)
 * for p in [2^e, 2^(e+1)), so m = E*2^53. */
INVDL_AVX2 static inline __m128 invdl_round_rel_pd(__m256d p, double rel, int shift, int *undecided)
{
    return invdl_round_m_pd(p, _mm_set1_epi32((int)(rel * 0x1p53)), shift, undecided);
}

/* Lanes whose x*|x|-like result may fall below the normal range, where
 * invdl_round_rel_pd() does not apply: 0 < |x| < 2^-62. */
INVDL_AVX2 static inline int invdl_tiny_lanes(__m256 a)
{
    __m256 tiny = _mm256_and_ps(_mm256_cmp_ps(a, _mm256_set1_ps(0x1p-62f), _CMP_LT_OQ),
                                _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_NEQ_OQ));
    return _mm256_movemask_ps(tiny);
}

/* 1/sqrt(a) for 2^-100 < a < 2^100 from the hardware's 12-bit estimate and
 * one Newton step: relative error below 2^-22, far cheaper than a square
 * root and a division; the inverses' starting points need no more. */
INVDL_AVX2 static inline __m256 invdl_rsqrt_ps(__m256 a)
{
    __m256 r = _mm256_rsqrt_ps(a);
    __m256 half_ar = _mm256_mul_ps(_mm256_mul_ps(a, r), _mm256_set1_ps(0.5f));
    /* r (3 - a r^2) / 2 */
    return _mm256_fnmadd_ps(half_ar, _mm256_mul_ps(r, r), _mm256_mul_ps(r, _mm256_set1_ps(1.5f)));
}

/* The error bound of an inverse's refined result in ulps of double, as
 * computed in float.  invdl_round_m_pd() holds for m <= 2^27 only (just
 * above a power of two, the midpoint below it is 2^27 ulps of p away), so
 * any larger bound, NaN included, becomes 2^29, which leaves every lane
 * undecided. */
INVDL_AVX2 static inline __m256i invdl_ulps_epi32(__m256 m)
{
    __m256 fits = _mm256_cmp_ps(m, _mm256_set1_ps(0x1p27f), _CMP_LE_OQ);
    return _mm256_cvttps_epi32(_mm256_blendv_ps(_mm256_set1_ps(0x1p29f), m, fits));
}

/* Phase 2 of the inverses, shared: one Newton step from x0, x1 = x0 - n k,
 * with n the residual f(x0) - a in double and k ~ 1/f' from phase 1 (or, as
 * abs-tanh does, both scaled: n times a factor D, k divided by it), rounded
 * with phase 1's bound. */
INVDL_AVX2 static inline __m128 invdl_newton_half(__m256d n, __m256d x0, __m256d k, __m128i m,
                                                  int shift, int *undecided)
{
    __m256d x1 = _mm256_fnmadd_pd(n, k, x0);
    return invdl_round_m_pd(x1, m, shift, undecided);
}

INVDL_AVX2 static inline __m256 invdl_join_ps(__m128 lo, __m128 hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

/* The unsigned magnitude and the sign bit of 8 floats. */
INVDL_AVX2 static inline __m256 invdl_abs_ps(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

INVDL_AVX2 static inline __m256 invdl_sign_ps(__m256 v)
{
    return _mm256_and_ps(_mm256_set1_ps(-0.0f), v);
}

/* Runs a vector body over n floats: full vectors of 8 straight from memory,
 * the tail through a zero-padded buffer.  body(in, &lanes, &outside)
 * returns 8 results, sets in lanes those the scalar function fix() must
 * replace, and raises outside for the status.  Vectors needing fix-ups are
 * queued with their inputs (out may be in) and fixed in batches, so the hot
 * loop makes no calls and keeps its constants in registers. */
typedef __m256 (*invdl_body8)(__m256 in, int *fix_lanes, int *outside);

typedef struct invdl_fixup {
    size_t at;
    int lanes;
    float in[8];
} invdl_fixup;

#define INVDL_FIXUPS 16

static inline void invdl_apply_fixups(const invdl_fixup *queue, int count, float *out,
                                      float (*fix)(float))
{
    for (int q = 0; q < count; q++)
        for (int k = 0; k < 8; k++)
            if (queue[q].lanes >> k & 1)
                out[queue[q].at + (size_t)k] = fix(queue[q].in[k]);
}

INVDL_AVX2 static inline int invdl_run8(size_t n, const float *in, float *out, invdl_body8 body,
                                        float (*fix)(float))
{
    int outside = 0, queued = 0;
    invdl_fixup queue[INVDL_FIXUPS];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(in + i);
        int lanes = 0;
        _mm256_storeu_ps(out + i, body(v, &lanes, &outside));
        if (__builtin_expect(lanes != 0, 0)) {
            queue[queued].at = i;
            queue[queued].lanes = lanes;
            _mm256_storeu_ps(queue[queued].in, v);
            if (++queued == INVDL_FIXUPS) {
                invdl_apply_fixups(queue, queued, out, fix);
                queued = 0;
            }
        }
    }
    invdl_apply_fixups(queue, queued, out, fix);
    if (i < n) {
        float src[8] = {0}, dst[8];
        size_t rest = n - i;
        memcpy(src, in + i, rest * sizeof *src);
        int lanes = 0;
        __m256 r = body(_mm256_loadu_ps(src), &lanes, &outside);
        _mm256_storeu_ps(dst, r);
        for (size_t k = 0; k < rest; k++)
            if (lanes >> k & 1)
                dst[k] = fix(src[k]);
        memcpy(out + i, dst, rest * sizeof *dst);
    }
    return outside;
}

#define INVDL_BLOCK 64

/* The block runners' ends: the input block, zero-padded when partial, and
 * the output block, with the scalar fix-ups of the lanes flagged in
 * lanes[] applied before anything reaches out (which may be in). */
static inline const float *invdl_block_in(const float *in, size_t len, float *pad)
{
    if (len == INVDL_BLOCK)
        return in;
    memcpy(pad, in, len * sizeof *pad);
    memset(pad + len, 0, (INVDL_BLOCK - len) * sizeof *pad);
    return pad;
}

INVDL_AVX2 static inline void invdl_block_out(float *out, float *dst, const float *src,
                                              size_t len, const int *lanes, int any,
                                              float (*fix)(float))
{
    if (any)
        for (size_t k = 0; k < len; k++)
            if (lanes[k / 8] >> (k % 8) & 1)
                dst[k] = fix(src[k]);
    if (len == INVDL_BLOCK)
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++)
            _mm256_storeu_ps(out + 8 * v, _mm256_loadu_ps(dst + 8 * v));
    else
        memcpy(out, dst, len * sizeof *dst);
}

/* A two-phase runner for the inverses.  Phase 1 computes, in float, a
 * starting point and its derivative for a block of up to 64 inputs; phase 2
 * refines them in double.  Split this way, each loop carries short
 * dependency chains that the CPU overlaps across iterations, where one long
 * chain per vector would leave it waiting.  Results reach out only after
 * the block's fix-ups, which read its inputs: out may be in.  The last,
 * partial block runs on a zero-padded copy. */
typedef struct invdl_start8 {
    __m256 a;      /* |input|, sanitized for the arithmetic */
    __m256 x0;     /* starting point */
    __m256 inv_fp; /* 1/f' near the root (abs-tanh: 1/(f' D), see there) */
    __m256 keep;   /* lanes whose result is the input itself */
    __m256i m;     /* bound on the refined result's error, ulps of double */
} invdl_start8;

typedef void (*invdl_phase1)(__m256 in, invdl_start8 *st, int *fix, int *outside);
typedef __m256 (*invdl_phase2)(__m256 in, const invdl_start8 *st, int *fix);

INVDL_AVX2 static inline int invdl_run_split(size_t n, const float *in, float *out,
                                             invdl_phase1 first, invdl_phase2 second,
                                             float (*fix)(float))
{
    int outside = 0;
    for (size_t i = 0; i < n; i += INVDL_BLOCK) {
        size_t len = n - i < INVDL_BLOCK ? n - i : INVDL_BLOCK;
        float pad[INVDL_BLOCK], dst[INVDL_BLOCK];
        const float *src = invdl_block_in(in + i, len, pad);
        invdl_start8 st[INVDL_BLOCK / 8];
        int lanes[INVDL_BLOCK / 8], any = 0;
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++) {
            lanes[v] = 0;
            first(_mm256_loadu_ps(src + 8 * v), &st[v], &lanes[v], &outside);
        }
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++) {
            _mm256_storeu_ps(dst + 8 * v, second(_mm256_loadu_ps(src + 8 * v), &st[v], &lanes[v]));
            any |= lanes[v];
        }
        invdl_block_out(out + i, dst, src, len, lanes, any, fix);
    }
    return outside;
}

/* A three-phase runner for the forward kernels, which evaluate in double.
 * One vector's work is a long chain of dependent operations (conversion,
 * reduction, polynomial, reconstruction, rounding decision); run as one loop
 * body, only a couple of vectors fit in the CPU's window and it waits on
 * latencies.  Cut into three loops over a block of 64 inputs that pass their
 * state through memory (L1), each loop carries a short chain that the CPU
 * overlaps across many vectors.  Phase 1 reads the input and sets up the
 * state, phase 2 continues it, phase 3 returns the 8 results and the lanes
 * the scalar function must redo.  out may be in, as in invdl_run_split(). */
typedef struct invdl_state8 {
    __m256d d[6];  /* the kernel's intermediate values, two halves each */
    __m256 keep;   /* lanes whose result is the input itself: phase 1 sets it */
    int lanes;     /* lanes for the scalar path: 0 on entry, phases add */
} invdl_state8;

typedef void (*invdl_stage1)(__m256 in, invdl_state8 *st, int *outside);
typedef void (*invdl_stage2)(invdl_state8 *st);
typedef __m256 (*invdl_stage3)(__m256 in, invdl_state8 *st);

INVDL_AVX2 static inline int invdl_run_phases(size_t n, const float *in, float *out,
                                              invdl_stage1 first, invdl_stage2 second,
                                              invdl_stage3 third, float (*fix)(float))
{
    int outside = 0;
    for (size_t i = 0; i < n; i += INVDL_BLOCK) {
        size_t len = n - i < INVDL_BLOCK ? n - i : INVDL_BLOCK;
        float pad[INVDL_BLOCK], dst[INVDL_BLOCK];
        const float *src = invdl_block_in(in + i, len, pad);
        invdl_state8 st[INVDL_BLOCK / 8];
        int lanes[INVDL_BLOCK / 8], any = 0;
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++) {
            st[v].lanes = 0;
            first(_mm256_loadu_ps(src + 8 * v), &st[v], &outside);
        }
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++)
            second(&st[v]);
        for (size_t v = 0; v < INVDL_BLOCK / 8; v++) {
            _mm256_storeu_ps(dst + 8 * v, third(_mm256_loadu_ps(src + 8 * v), &st[v]));
            lanes[v] = st[v].lanes;
            any |= lanes[v];
        }
        invdl_block_out(out + i, dst, src, len, lanes, any, fix);
    }
    return outside;
}

#endif /* INVDL_HAVE_AVX2 */

#endif /* INVDL_SIMD_X86_H */
