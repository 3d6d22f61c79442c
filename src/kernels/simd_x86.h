/*
 * simd_x86.h - the x86 SIMD building blocks of the kernels' fast paths,
 * for every instruction set that has a path: AVX2+FMA (8 floats per
 * vector) and AVX-512 (16).
 *
 * Every function carries its instruction set's target attribute, so the
 * library itself needs no -mavx2 or -mavx512f: the public functions call
 * these paths only after checking the CPU (dispatch.c).  A path handles a
 * vector of floats at a time, evaluates in double (two halves) where
 * correct rounding needs it, and hands the rare undecided or special lanes
 * to the scalar per-element functions.
 *
 * One source for every width
 * --------------------------
 * This header gives each instruction set's operations names of one
 * pattern, invdl_<op>_<isa> (the two tables below), and generic names
 * (vfloat, vd_fmadd, ...) that resolve to them through INVDL_ISA, a macro
 * naming the instruction set.  The code written with the generic names
 * lives in headers without include guards that simd_paths.h includes once
 * per instruction set, with INVDL_ISA set: simd_each.h (polynomials, the
 * rounding test, the runners) and one per kernel (ssin_simd.h, ...).  What
 * they define carries the suffix through INVDL_V(name): ssin_simd.h's
 * INVDL_V(ssin_forward) is invdl_ssin_forward_avx2 in one instance and
 * invdl_ssin_forward_avx512 in the other.  The algorithms, their constants
 * and their error bounds thus exist once, and both paths compute the same
 * correctly rounded results by construction.
 */
#ifndef INVDL_SIMD_X86_H
#define INVDL_SIMD_X86_H

#include "kernels/kernels.h"

#if INVDL_HAVE_AVX2

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* invdl_<name>_<INVDL_ISA>; name is pasted before anything expands it. */
#define INVDL_V(name) INVDL_V_(invdl_##name##_, INVDL_ISA)
#define INVDL_V_(prefix, isa) INVDL_V__(prefix, isa)
#define INVDL_V__(prefix, isa) prefix##isa

/* ---- AVX2 + FMA: 8 floats, 4 doubles --------------------------------------- */

#define INVDL_AVX2 __attribute__((__target__("avx2,fma")))
#define invdl_TARGET_avx2 INVDL_AVX2
#define invdl_LANES_avx2 8
/* Whether a 16-entry table of doubles takes one instruction to look up. */
#define invdl_LOOKUP16_avx2 0
/* Inputs per block of the block runners (simd_each.h). */
#define invdl_BLOCK_avx2 64

typedef __m256 invdl_vfloat_avx2;   /* the floats of one step */
typedef __m256d invdl_vdouble_avx2; /* half of them in double */
typedef __m256i invdl_vint_avx2;    /* 32-bit lanes per float, 64-bit per double */
typedef __m256 invdl_vmask_avx2;    /* a lane mask: all ones or all zeros per float */

#define invdl_set1_ps_avx2 _mm256_set1_ps
#define invdl_zero_ps_avx2 _mm256_setzero_ps
#define invdl_load_ps_avx2 _mm256_loadu_ps
#define invdl_store_ps_avx2 _mm256_storeu_ps
#define invdl_add_ps_avx2 _mm256_add_ps
#define invdl_sub_ps_avx2 _mm256_sub_ps
#define invdl_mul_ps_avx2 _mm256_mul_ps
#define invdl_div_ps_avx2 _mm256_div_ps
#define invdl_min_ps_avx2 _mm256_min_ps
#define invdl_max_ps_avx2 _mm256_max_ps
#define invdl_fmadd_ps_avx2 _mm256_fmadd_ps
#define invdl_fnmadd_ps_avx2 _mm256_fnmadd_ps
#define invdl_or_ps_avx2 _mm256_or_ps
#define invdl_and_ps_avx2 _mm256_and_ps
#define invdl_andnot_ps_avx2 _mm256_andnot_ps
#define invdl_cmp_ps_avx2 _mm256_cmp_ps
#define invdl_rsqrt_estimate_ps_avx2 _mm256_rsqrt_ps /* relative error <= 1.5 2^-12 */
#define invdl_cvtt_epi32_avx2 _mm256_cvttps_epi32
#define invdl_cvt_ps_avx2 _mm256_cvtepi32_ps
#define invdl_set1_epi32_avx2 _mm256_set1_epi32
#define invdl_min_epi32_avx2 _mm256_min_epi32
#define invdl_set1_pd_avx2 _mm256_set1_pd
#define invdl_add_pd_avx2 _mm256_add_pd
#define invdl_sub_pd_avx2 _mm256_sub_pd
#define invdl_mul_pd_avx2 _mm256_mul_pd
#define invdl_div_pd_avx2 _mm256_div_pd
#define invdl_min_pd_avx2 _mm256_min_pd
#define invdl_loadu_pd_avx2 _mm256_loadu_pd
#define invdl_storeu_pd_avx2 _mm256_storeu_pd
#define invdl_fmadd_pd_avx2 _mm256_fmadd_pd
#define invdl_fnmadd_pd_avx2 _mm256_fnmadd_pd
#define invdl_fnmsub_pd_avx2 _mm256_fnmsub_pd
#define invdl_bits_pd_avx2 _mm256_castpd_si256
#define invdl_from_bits_pd_avx2 _mm256_castsi256_pd
#define invdl_narrow_pd_avx2 _mm256_cvtpd_ps
#define invdl_set1_epi64_avx2 _mm256_set1_epi64x
#define invdl_and_si_avx2 _mm256_and_si256
#define invdl_or_si_avx2 _mm256_or_si256
#define invdl_andnot_si_avx2 _mm256_andnot_si256
#define invdl_add_epi64_avx2 _mm256_add_epi64
#define invdl_sub_epi64_avx2 _mm256_sub_epi64
#define invdl_slli_epi64_avx2 _mm256_slli_epi64
#define invdl_add_epi32_avx2 _mm256_add_epi32
#define invdl_sub_epi32_avx2 _mm256_sub_epi32

INVDL_AVX2 static inline int invdl_mask_bits_avx2(__m256 m)
{
    return _mm256_movemask_ps(m);
}

INVDL_AVX2 static inline __m256 invdl_mask_or_avx2(__m256 a, __m256 b)
{
    return _mm256_or_ps(a, b);
}

INVDL_AVX2 static inline __m256 invdl_mask_and_avx2(__m256 a, __m256 b)
{
    return _mm256_and_ps(a, b);
}

/* b and not a */
INVDL_AVX2 static inline __m256 invdl_mask_andnot_avx2(__m256 a, __m256 b)
{
    return _mm256_andnot_ps(a, b);
}

/* b where the mask is set, a elsewhere */
INVDL_AVX2 static inline __m256 invdl_blend_ps_avx2(__m256 a, __m256 b, __m256 m)
{
    return _mm256_blendv_ps(a, b, m);
}

/* The lanes whose sign bit is set: blendv reads the sign bit alone. */
INVDL_AVX2 static inline __m256 invdl_sign_mask_avx2(__m256 v)
{
    return v;
}

/* Entry idx[i] of an 8-entry table, per lane. */
INVDL_AVX2 static inline __m256 invdl_lookup8_ps_avx2(const float *table, __m256i idx)
{
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(table), idx);
}

INVDL_AVX2 static inline __m256d invdl_lo_pd_avx2(__m256 v)
{
    return _mm256_cvtps_pd(_mm256_castps256_ps128(v));
}

INVDL_AVX2 static inline __m256d invdl_hi_pd_avx2(__m256 v)
{
    return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

/* The same from memory: half the floats at p, in double. */
INVDL_AVX2 static inline __m256d invdl_load_pd_avx2(const float *p)
{
    return _mm256_cvtps_pd(_mm_loadu_ps(p));
}

INVDL_AVX2 static inline __m256 invdl_join_ps_avx2(__m128 lo, __m128 hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

/* The lanes where a > b, signed 32-bit, as bits. */
INVDL_AVX2 static inline int invdl_gt_epi32_bits_avx2(__m256i a, __m256i b)
{
    return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)));
}

/* The low 32 bits of each 64-bit lane of a, then of b, in order. */
INVDL_AVX2 static inline __m256i invdl_even_epi32_avx2(__m256i a, __m256i b)
{
    __m256 mixed = _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b),
                                     _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_permute4x64_epi64(_mm256_castps_si256(mixed), _MM_SHUFFLE(3, 1, 2, 0));
}

/* ---- AVX-512: 16 floats, 8 doubles ------------------------------------------ */

#if INVDL_HAVE_AVX512

/* The intrinsics below need F and DQ; with VL and BW as well the compiler
 * has all 32 registers for 256-bit values and 32-bit mask operations,
 * which the signed-sin inverse measurably gains from.  Every CPU with DQ
 * has VL and BW. */
#define INVDL_AVX512 \
    __attribute__((__target__("avx2,fma,avx512f,avx512dq,avx512vl,avx512bw")))
#define invdl_TARGET_avx512 INVDL_AVX512
#define invdl_LANES_avx512 16
#define invdl_LOOKUP16_avx512 1
#define invdl_BLOCK_avx512 128

typedef __m512 invdl_vfloat_avx512;
typedef __m512d invdl_vdouble_avx512;
typedef __m512i invdl_vint_avx512;
typedef __mmask16 invdl_vmask_avx512;

#define invdl_set1_ps_avx512 _mm512_set1_ps
#define invdl_zero_ps_avx512 _mm512_setzero_ps
#define invdl_load_ps_avx512 _mm512_loadu_ps
#define invdl_store_ps_avx512 _mm512_storeu_ps
#define invdl_add_ps_avx512 _mm512_add_ps
#define invdl_sub_ps_avx512 _mm512_sub_ps
#define invdl_mul_ps_avx512 _mm512_mul_ps
#define invdl_div_ps_avx512 _mm512_div_ps
#define invdl_min_ps_avx512 _mm512_min_ps
#define invdl_max_ps_avx512 _mm512_max_ps
#define invdl_fmadd_ps_avx512 _mm512_fmadd_ps
#define invdl_fnmadd_ps_avx512 _mm512_fnmadd_ps
#define invdl_or_ps_avx512 _mm512_or_ps
#define invdl_and_ps_avx512 _mm512_and_ps
#define invdl_andnot_ps_avx512 _mm512_andnot_ps
#define invdl_cmp_ps_avx512 _mm512_cmp_ps_mask
#define invdl_rsqrt_estimate_ps_avx512 _mm512_rsqrt14_ps /* relative error <= 2^-14 */
#define invdl_cvtt_epi32_avx512 _mm512_cvttps_epi32
#define invdl_cvt_ps_avx512 _mm512_cvtepi32_ps
#define invdl_set1_epi32_avx512 _mm512_set1_epi32
#define invdl_min_epi32_avx512 _mm512_min_epi32
#define invdl_set1_pd_avx512 _mm512_set1_pd
#define invdl_add_pd_avx512 _mm512_add_pd
#define invdl_sub_pd_avx512 _mm512_sub_pd
#define invdl_mul_pd_avx512 _mm512_mul_pd
#define invdl_div_pd_avx512 _mm512_div_pd
#define invdl_min_pd_avx512 _mm512_min_pd
#define invdl_loadu_pd_avx512 _mm512_loadu_pd
#define invdl_storeu_pd_avx512 _mm512_storeu_pd
#define invdl_fmadd_pd_avx512 _mm512_fmadd_pd
#define invdl_fnmadd_pd_avx512 _mm512_fnmadd_pd
#define invdl_fnmsub_pd_avx512 _mm512_fnmsub_pd
#define invdl_bits_pd_avx512 _mm512_castpd_si512
#define invdl_from_bits_pd_avx512 _mm512_castsi512_pd
#define invdl_narrow_pd_avx512 _mm512_cvtpd_ps
#define invdl_set1_epi64_avx512 _mm512_set1_epi64
#define invdl_and_si_avx512 _mm512_and_si512
#define invdl_or_si_avx512 _mm512_or_si512
#define invdl_andnot_si_avx512 _mm512_andnot_si512
#define invdl_add_epi64_avx512 _mm512_add_epi64
#define invdl_sub_epi64_avx512 _mm512_sub_epi64
#define invdl_slli_epi64_avx512 _mm512_slli_epi64
#define invdl_add_epi32_avx512 _mm512_add_epi32
#define invdl_sub_epi32_avx512 _mm512_sub_epi32

INVDL_AVX512 static inline int invdl_mask_bits_avx512(__mmask16 m)
{
    return (int)m;
}

INVDL_AVX512 static inline __mmask16 invdl_mask_or_avx512(__mmask16 a, __mmask16 b)
{
    return (__mmask16)(a | b);
}

INVDL_AVX512 static inline __mmask16 invdl_mask_and_avx512(__mmask16 a, __mmask16 b)
{
    return (__mmask16)(a & b);
}

INVDL_AVX512 static inline __mmask16 invdl_mask_andnot_avx512(__mmask16 a, __mmask16 b)
{
    return (__mmask16)(~a & b);
}

INVDL_AVX512 static inline __m512 invdl_blend_ps_avx512(__m512 a, __m512 b, __mmask16 m)
{
    return _mm512_mask_blend_ps(m, a, b);
}

INVDL_AVX512 static inline __mmask16 invdl_sign_mask_avx512(__m512 v)
{
    return _mm512_movepi32_mask(_mm512_castps_si512(v));
}

INVDL_AVX512 static inline __m512 invdl_lookup8_ps_avx512(const float *table, __m512i idx)
{
    return _mm512_permutexvar_ps(idx, _mm512_broadcast_f32x8(_mm256_loadu_ps(table)));
}

/* Entry idx[i] mod 16 of a 16-entry table, per 64-bit lane. */
INVDL_AVX512 static inline __m512i invdl_lookup16_epi64_avx512(const uint64_t *table, __m512i idx)
{
    return _mm512_permutex2var_epi64(_mm512_loadu_si512(table), idx,
                                     _mm512_loadu_si512(table + 8));
}

INVDL_AVX512 static inline __m512d invdl_lo_pd_avx512(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}

INVDL_AVX512 static inline __m512d invdl_hi_pd_avx512(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
}

INVDL_AVX512 static inline __m512d invdl_load_pd_avx512(const float *p)
{
    return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}

INVDL_AVX512 static inline __m512 invdl_join_ps_avx512(__m256 lo, __m256 hi)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

INVDL_AVX512 static inline int invdl_gt_epi32_bits_avx512(__m512i a, __m512i b)
{
    return (int)_mm512_cmpgt_epi32_mask(a, b);
}

INVDL_AVX512 static inline __m512i invdl_even_epi32_avx512(__m512i a, __m512i b)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    return _mm512_permutex2var_epi32(a, even, b);
}

#endif /* INVDL_HAVE_AVX512 */

/* ---- The generic names ---------------------------------------------------- */

/* Attributes: VTARGET for every function of a path, VBODY for the vector
 * bodies, which must inline into the runners (simd_each.h). */
#define VTARGET INVDL_V(TARGET)
#define VBODY VTARGET __attribute__((__always_inline__))
#define VLANES INVDL_V(LANES)
#define VBLOCK INVDL_V(BLOCK)
#define VLOOKUP16 INVDL_V(LOOKUP16)

#define vfloat INVDL_V(vfloat)
#define vdouble INVDL_V(vdouble)
#define vint INVDL_V(vint)
#define vmask INVDL_V(vmask)

/* floats */
#define vf_set1 INVDL_V(set1_ps)
#define vf_zero INVDL_V(zero_ps)
#define vf_load INVDL_V(load_ps)
#define vf_store INVDL_V(store_ps)
#define vf_add INVDL_V(add_ps)
#define vf_sub INVDL_V(sub_ps)
#define vf_mul INVDL_V(mul_ps)
#define vf_div INVDL_V(div_ps)
#define vf_min INVDL_V(min_ps)
#define vf_max INVDL_V(max_ps)
#define vf_fmadd INVDL_V(fmadd_ps)   /* a b + c */
#define vf_fnmadd INVDL_V(fnmadd_ps) /* c - a b */
#define vf_or INVDL_V(or_ps)
#define vf_and INVDL_V(and_ps)
#define vf_andnot INVDL_V(andnot_ps) /* b and not a */
#define vf_cmp INVDL_V(cmp_ps)       /* a vmask */
#define vf_blend INVDL_V(blend_ps)
#define vf_rsqrt_estimate INVDL_V(rsqrt_estimate_ps)
#define vf_lookup8 INVDL_V(lookup8_ps)
#define vf_to_int INVDL_V(cvtt_epi32) /* truncating */
#define vf_from_int INVDL_V(cvt_ps)
#define vf_lo_pd INVDL_V(lo_pd)       /* the first half, in double */
#define vf_hi_pd INVDL_V(hi_pd)
#define vd_load_ps INVDL_V(load_pd)   /* VLANES / 2 floats from memory, in double */
#define vf_join INVDL_V(join_ps)      /* two halves of floats, as vd_narrow gives them */
#define vf_sign_mask INVDL_V(sign_mask)

/* masks */
#define vm_bits INVDL_V(mask_bits)    /* lane i in bit i */
#define vm_or INVDL_V(mask_or)
#define vm_and INVDL_V(mask_and)
#define vm_andnot INVDL_V(mask_andnot)

/* doubles */
#define vd_set1 INVDL_V(set1_pd)
#define vd_add INVDL_V(add_pd)
#define vd_sub INVDL_V(sub_pd)
#define vd_mul INVDL_V(mul_pd)
#define vd_div INVDL_V(div_pd)
#define vd_min INVDL_V(min_pd)       /* b where either is NaN */
#define vd_loadu INVDL_V(loadu_pd)   /* doubles from memory */
#define vd_storeu INVDL_V(storeu_pd)
#define vd_fmadd INVDL_V(fmadd_pd)   /* a b + c */
#define vd_fnmadd INVDL_V(fnmadd_pd) /* c - a b */
#define vd_fnmsub INVDL_V(fnmsub_pd) /* -(a b) - c */
#define vd_bits INVDL_V(bits_pd)
#define vd_from_bits INVDL_V(from_bits_pd)
#define vd_narrow INVDL_V(narrow_pd)  /* to half a vector of floats, rounded */

/* integers: 32-bit lanes per float, 64-bit lanes per double */
#define vi_set1_32 INVDL_V(set1_epi32)
#define vi_min_32 INVDL_V(min_epi32)
#define vi_add_32 INVDL_V(add_epi32)
#define vi_sub_32 INVDL_V(sub_epi32)
#define vi_gt_32_bits INVDL_V(gt_epi32_bits)
#define vi_even_32 INVDL_V(even_epi32) /* low halves of two vectors' 64-bit lanes */
#define vi_set1_64 INVDL_V(set1_epi64)
#define vi_and INVDL_V(and_si)
#define vi_or INVDL_V(or_si)
#define vi_andnot INVDL_V(andnot_si) /* b and not a */
#define vi_add_64 INVDL_V(add_epi64)
#define vi_sub_64 INVDL_V(sub_epi64)
#define vi_slli_64 INVDL_V(slli_epi64)
#define vi_lookup16_64 INVDL_V(lookup16_epi64) /* where VLOOKUP16 */

/* what simd_each.h defines */
#define vd_horner INVDL_V(horner_pd)
#define vd_estrin INVDL_V(estrin_pd)
#define vf_horner INVDL_V(horner_ps)
#define vd_round INVDL_V(round_pd)
#define vf_abs INVDL_V(abs_ps)
#define vf_signbit INVDL_V(sign_ps)
#define vf_tiny_lanes INVDL_V(tiny_lanes)
#define vf_sqrt INVDL_V(sqrt_ps)
#define vf_ulps INVDL_V(ulps_epi32)
#define vstart INVDL_V(start)
#define vstate INVDL_V(state)

/* ---- What does not depend on the width ------------------------------------- */

#define INVDL_MAX_LANES 16

/* A vector whose lanes need the scalar function, queued with its inputs so
 * that the hot loop makes no calls (simd_each.h). */
typedef struct invdl_fixup {
    size_t at;
    int lanes;
    float in[INVDL_MAX_LANES];
} invdl_fixup;

#define INVDL_FIXUPS 16

static inline void invdl_apply_fixups(const invdl_fixup *queue, int count, float *out,
                                      float (*fix)(float))
{
    for (int q = 0; q < count; q++)
        for (int k = 0; k < INVDL_MAX_LANES; k++)
            if (queue[q].lanes >> k & 1)
                out[queue[q].at + (size_t)k] = fix(queue[q].in[k]);
}

/* The block runners' input: the block itself, or when partial a copy
 * zero-padded to `block` floats in pad. */
static inline const float *invdl_block_in(const float *in, size_t len, size_t block, float *pad)
{
    if (len == block)
        return in;
    memcpy(pad, in, len * sizeof *pad);
    memset(pad + len, 0, (block - len) * sizeof *pad);
    return pad;
}

#endif /* INVDL_HAVE_AVX2 */

#endif /* INVDL_SIMD_X86_H */
