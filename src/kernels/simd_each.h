/*
 * simd_each.h - the pieces every SIMD path shares: polynomials, the
 * rounding test, the runners.  Included once per instruction set, with
 * INVDL_ISA set (simd_paths.h; see simd_x86.h for the generic names), so
 * no include guard.  A vector holds VLANES floats; double arithmetic works
 * on its two halves.
 */

/* c[0] + c[1] t + ... + c[n-1] t^(n-1) by Horner's scheme, in double
 * (horner_pd) and in float (horner_ps). */
#define INVDL_HORNER(suffix, vec, elem, set1, fmadd)                                  \
    VTARGET static inline vec INVDL_V(horner_##suffix)(const elem *c, int n, vec t) \
    {                                                                                 \
        vec acc = set1(c[n - 1]);                                                     \
        _Pragma("GCC unroll 16") for (int i = n - 2; i >= 0; i--)                   \
            acc = fmadd(acc, t, set1(c[i]));                                          \
        return acc;                                                                   \
    }
INVDL_HORNER(pd, vdouble, double, vd_set1, vd_fmadd)
INVDL_HORNER(ps, vfloat, float, vf_set1, vf_fmadd)
#undef INVDL_HORNER

/* The same polynomial by Estrin's scheme: more operations, but a dependency
 * chain of log2(n) steps instead of n, which lets the CPU overlap the
 * lanes' work.  n <= 16. */
VTARGET static inline vdouble INVDL_V(estrin_pd)(const double *c, int n, vdouble t)
{
    vdouble v[8];
    int m = n / 2;
#pragma GCC unroll 8
    for (int i = 0; i < m; i++)
        v[i] = vd_fmadd(vd_set1(c[2 * i + 1]), t, vd_set1(c[2 * i]));
    if (n % 2)
        v[m++] = vd_set1(c[n - 1]);
    vdouble power = vd_mul(t, t);
#pragma GCC unroll 4
    while (m > 1) {
#pragma GCC unroll 4
        for (int i = 0; i < m / 2; i++)
            v[i] = vd_fmadd(v[2 * i + 1], power, v[2 * i]);
        if (m % 2)
            v[m / 2] = v[m - 1];
        m = (m + 1) / 2;
        power = vd_mul(power, power);
    }
    return v[0];
}

/* The rounding decision of kernels.h in integer arithmetic, for the
 * results of a vector in double, p0 (its first half) and p1, each known
 * within m ulps of double (m per float lane, 0 < m <= 2^27, or 2^29 for
 * "undecided"): p is within m ulps of a rounding midpoint of float exactly
 * when the 29 bits below float's last one, low, are within m of 2^28, that
 * is when v = low - (2^28 - m) lies in [0, 2m).  All of this fits in 32-bit
 * lanes, one per float: w = v + 2^31 - 2m wraps past INT32_MAX exactly when
 * v >= 2m, so v lies in [0, 2m) when w > INT32_MAX - 2m, one signed compare.
 * For p whose float lies in the normal range (callers flag the others).
 * Sets the lanes that stay undecided in *undecided and returns the floats
 * p rounds to. */
VTARGET static inline vfloat INVDL_V(round_pd)(vdouble p0, vdouble p1, vint m, int *undecided)
{
    const int top = 0x7fffffff;
    vint low = vi_and(vi_even_32(vd_bits(p0), vd_bits(p1)), vi_set1_32(0x1fffffff));
    vint w = vi_sub_32(vi_add_32(low, vi_set1_32(top - 0x10000000 + 1)), m);
    vint t = vi_sub_32(vi_set1_32(top), vi_add_32(m, m));
    *undecided |= vi_gt_32_bits(w, t);
    return vf_join(vd_narrow(p0), vd_narrow(p1));
}

/* For a fixed relative bound E: E*p < E*2^(e+1) = (E*2^53) ulp(p) for p in
 * [2^e, 2^(e+1)), so m = E*2^53. */
#define INVDL_ULPS(rel) vi_set1_32((int)((rel) * 0x1p53))

/* The unsigned magnitude and the sign bit of each float. */
VTARGET static inline vfloat INVDL_V(abs_ps)(vfloat v)
{
    return vf_andnot(vf_set1(-0.0f), v);
}

VTARGET static inline vfloat INVDL_V(sign_ps)(vfloat v)
{
    return vf_and(vf_set1(-0.0f), v);
}

/* Lanes whose x*|x|-like result may fall below the normal range, where
 * a relative bound (INVDL_ULPS) does not apply: 0 < |x| < 2^-62. */
VTARGET static inline int INVDL_V(tiny_lanes)(vfloat a)
{
    return vm_bits(vm_and(vf_cmp(a, vf_set1(0x1p-62f), _CMP_LT_OQ),
                          vf_cmp(a, vf_zero(), _CMP_NEQ_OQ)));
}

/* sqrt(a), and 1/sqrt(a) in *inv, for 2^-100 < a < 2^100 from the
 * hardware's estimate r of 1/sqrt(a) (relative error 1.5 2^-12 with AVX2,
 * 2^-14 with AVX-512) and one Newton step: with e = 1 - a r^2,
 * 1/sqrt(a) = r (1 + e/2 + 3e^2/8 + ...), so r (1 + e/2) and a r (1 + e/2)
 * are within 3e^2/8 (2^-22.2 at worst) plus the roundings: far cheaper than
 * a square root and a division; the inverses' starting points need no
 * more. */
VTARGET static inline vfloat INVDL_V(sqrt_ps)(vfloat a, vfloat *inv)
{
    vfloat r = vf_rsqrt_estimate(a);
    vfloat ar = vf_mul(a, r);
    vfloat half_e = vf_mul(vf_fnmadd(ar, r, vf_set1(1.0f)), vf_set1(0.5f));
    *inv = vf_fmadd(r, half_e, r);
    return vf_fmadd(ar, half_e, ar);
}

/* The error bound of an inverse's refined result in ulps of double, as
 * computed in float.  round_pd() holds for m <= 2^27 only (just above a
 * power of two, the midpoint below it is 2^27 ulps of p away), so any
 * larger bound, NaN included, becomes 2^29, which leaves every lane
 * undecided. */
VTARGET static inline vint INVDL_V(ulps_epi32)(vfloat m)
{
    vmask fits = vf_cmp(m, vf_set1(0x1p27f), _CMP_LE_OQ);
    return vf_to_int(vf_blend(vf_set1(0x1p29f), m, fits));
}

/* Runs a vector body over n floats: full vectors straight from memory, the
 * tail through a zero-padded buffer.  body(in, &lanes, &outside) returns
 * the results, sets in lanes those the scalar function fix() must replace,
 * and raises outside for the status.  Vectors needing fix-ups are queued
 * with their inputs (out may be in) and fixed in batches, so the hot loop
 * makes no calls and keeps its constants in registers. */
typedef vfloat (*INVDL_V(body_fn))(vfloat in, int *fix_lanes, int *outside);

VTARGET static inline int INVDL_V(run)(size_t n, const float *in, float *out,
                                       INVDL_V(body_fn) body, float (*fix)(float))
{
    int outside = 0, queued = 0;
    invdl_fixup queue[INVDL_FIXUPS];
    size_t i = 0;
    for (; i + VLANES <= n; i += VLANES) {
        vfloat v = vf_load(in + i);
        int lanes = 0;
        vf_store(out + i, body(v, &lanes, &outside));
        if (__builtin_expect(lanes != 0, 0)) {
            queue[queued].at = i;
            queue[queued].lanes = lanes;
            vf_store(queue[queued].in, v);
            if (++queued == INVDL_FIXUPS) {
                invdl_apply_fixups(queue, queued, out, fix);
                queued = 0;
            }
        }
    }
    invdl_apply_fixups(queue, queued, out, fix);
    if (i < n) {
        float src[VLANES] = {0}, dst[VLANES];
        size_t rest = n - i;
        memcpy(src, in + i, rest * sizeof *src);
        int lanes = 0;
        vf_store(dst, body(vf_load(src), &lanes, &outside));
        for (size_t k = 0; k < rest; k++)
            if (lanes >> k & 1)
                dst[k] = fix(src[k]);
        memcpy(out + i, dst, rest * sizeof *dst);
    }
    return outside;
}

/* The block runners' output: the scalar fix-ups of the lanes flagged in
 * lanes[] (one int per vector) applied before anything reaches out (which
 * may be in). */
VTARGET static inline void INVDL_V(block_out)(float *out, float *dst, const float *src,
                                              size_t len, const int *lanes, int any,
                                              float (*fix)(float))
{
    if (any)
        for (size_t k = 0; k < len; k++)
            if (lanes[k / VLANES] >> (k % VLANES) & 1)
                dst[k] = fix(src[k]);
    if (len == VBLOCK)
        for (size_t v = 0; v < VBLOCK / VLANES; v++)
            vf_store(out + VLANES * v, vf_load(dst + VLANES * v));
    else
        memcpy(out, dst, len * sizeof *dst);
}

/* A two-phase runner for the inverses.  Phase 1 computes, in float, a
 * starting point and its derivative for a block of VBLOCK inputs; phase 2
 * refines them in double.  Split this way, each loop carries short
 * dependency chains that the CPU overlaps across iterations, where one long
 * chain per vector would leave it waiting.  Results reach out only after
 * the block's fix-ups, which read its inputs: out may be in.  The last,
 * partial block runs on a zero-padded copy.
 *
 * Phase 2 is one Newton step from x0, x1 = x0 - n k, with n the residual
 * f(x0) - a in double, which the kernel's residual function computes, and
 * k ~ 1/f' from phase 1 (or, as abs-tanh does, both scaled: n times a
 * factor D, k divided by it); then the rounding decision with phase 1's
 * bound. */
typedef struct vstart {
    vfloat a;      /* |input|, sanitized for the arithmetic */
    vfloat x0;     /* starting point */
    vfloat inv_fp; /* 1/f' near the root (abs-tanh: 1/(f' D), see there) */
    vmask keep;    /* lanes whose result is the input itself */
    vint m;        /* bound on the refined result's error, ulps of double */
} vstart;

/* Half h (0 or 1) of a vector that phase 1 stored, in double: straight from
 * memory, which spares a shuffle. */
#define INVDL_HALF_PD(v, h) vd_load_ps((const float *)&(v) + (h) * (VLANES / 2))

typedef void (*INVDL_V(phase1))(vfloat in, vstart *st, int *fix, int *outside);
typedef vdouble (*INVDL_V(residual_fn))(vdouble a, vdouble x0);

VBODY static inline vfloat INVDL_V(newton_finish)(vfloat y, const vstart *st, int *fix,
                                                  INVDL_V(residual_fn) residual)
{
    vdouble lo = INVDL_HALF_PD(st->x0, 0), hi = INVDL_HALF_PD(st->x0, 1);
    lo = vd_fnmadd(residual(INVDL_HALF_PD(st->a, 0), lo), INVDL_HALF_PD(st->inv_fp, 0), lo);
    hi = vd_fnmadd(residual(INVDL_HALF_PD(st->a, 1), hi), INVDL_HALF_PD(st->inv_fp, 1), hi);
    int undecided = 0;
    vfloat r = vf_or(vd_round(lo, hi, st->m, &undecided), vf_signbit(y));
    *fix |= undecided & ~vm_bits(st->keep);
    return vf_blend(r, y, st->keep);
}

VTARGET static inline int INVDL_V(run_split)(size_t n, const float *in, float *out,
                                             INVDL_V(phase1) first, INVDL_V(residual_fn) residual,
                                             float (*fix)(float))
{
    int outside = 0;
    for (size_t i = 0; i < n; i += VBLOCK) {
        size_t len = n - i < VBLOCK ? n - i : VBLOCK;
        float pad[VBLOCK], dst[VBLOCK];
        const float *src = invdl_block_in(in + i, len, VBLOCK, pad);
        vstart st[VBLOCK / VLANES];
        int lanes[VBLOCK / VLANES], any = 0;
        for (size_t v = 0; v < VBLOCK / VLANES; v++) {
            lanes[v] = 0;
            first(vf_load(src + VLANES * v), &st[v], &lanes[v], &outside);
        }
        for (size_t v = 0; v < VBLOCK / VLANES; v++) {
            vf_store(dst + VLANES * v, INVDL_V(newton_finish)(vf_load(src + VLANES * v), &st[v],
                                                              &lanes[v], residual));
            any |= lanes[v];
        }
        INVDL_V(block_out)(out + i, dst, src, len, lanes, any, fix);
    }
    return outside;
}

/* A three-phase runner for the forward kernels, which evaluate in double.
 * One vector's work is a long chain of dependent operations (conversion,
 * reduction, polynomial, reconstruction, rounding decision); run as one loop
 * body, only a couple of vectors fit in the CPU's window and it waits on
 * latencies.  Cut into three loops over a block that pass their state
 * through memory (L1), each loop carries a short chain that the CPU
 * overlaps across many vectors.  Phase 1 reads the input and sets up the
 * state, phase 2 continues it, phase 3 returns the results and the lanes
 * the scalar function must redo.  out may be in, as in run_split(). */
typedef struct vstate {
    vdouble d[6]; /* the kernel's intermediate values, two halves each */
    vmask keep;   /* lanes whose result is the input itself: phase 1 sets it */
    int lanes;    /* lanes for the scalar path: 0 on entry, phases add */
} vstate;

typedef void (*INVDL_V(stage1))(vfloat in, vstate *st, int *outside);
typedef void (*INVDL_V(stage2))(vstate *st);
typedef vfloat (*INVDL_V(stage3))(vfloat in, vstate *st);

VTARGET static inline int INVDL_V(run_phases)(size_t n, const float *in, float *out,
                                              INVDL_V(stage1) first, INVDL_V(stage2) second,
                                              INVDL_V(stage3) third, float (*fix)(float))
{
    int outside = 0;
    for (size_t i = 0; i < n; i += VBLOCK) {
        size_t len = n - i < VBLOCK ? n - i : VBLOCK;
        float pad[VBLOCK], dst[VBLOCK];
        const float *src = invdl_block_in(in + i, len, VBLOCK, pad);
        vstate st[VBLOCK / VLANES];
        int lanes[VBLOCK / VLANES], any = 0;
        for (size_t v = 0; v < VBLOCK / VLANES; v++) {
            st[v].lanes = 0;
            first(vf_load(src + VLANES * v), &st[v], &outside);
        }
        for (size_t v = 0; v < VBLOCK / VLANES; v++)
            second(&st[v]);
        for (size_t v = 0; v < VBLOCK / VLANES; v++) {
            vf_store(dst + VLANES * v, third(vf_load(src + VLANES * v), &st[v]));
            lanes[v] = st[v].lanes;
            any |= lanes[v];
        }
        INVDL_V(block_out)(out + i, dst, src, len, lanes, any, fix);
    }
    return outside;
}
