/*
 * abstanh_simd.h - abs-tanh's SIMD paths, written with the generic names of
 * simd_x86.h; abstanh.c includes it once per instruction set
 * (simd_paths.h), after the tables and bounds it uses.
 */

/* abstanh_tanh() in double lanes, 0 <= a <= 9, in steps that the forward
 * runs in separate phases: the reduction -2a = N ln2/16 + r, |r| <= ln2/32,
 * with scale = 2^(N/16) from a table of 2^(j/16) where a path looks up 16
 * doubles in one instruction (AVX-512), else -2a = N ln2 + r, |r| <=
 * ln2/2, with scale = 2^N built from the bits of the rounded N; then em =
 * expm1(-2a) = scale expm1(r) + (scale - 1), given expm1's polynomial P(r),
 * shorter for the smaller r; then tanh a = -em / (2 + em). */
#if VLOOKUP16
VBODY static inline void INVDL_V(abstanh_reduce_pd)(vdouble a, vdouble *r, vdouble *scale)
{
    const vdouble magic = vd_set1(ROUND_MAGIC);
    vdouble z = vd_mul(a, vd_set1(-2.0));
    vdouble nt = vd_fmadd(z, vd_set1(16.0 * INV_LN2), magic);
    vdouble n = vd_sub(nt, magic);
    *r = vd_fnmadd(n, vd_set1(LN2_LO / 16.0), vd_fnmadd(n, vd_set1(LN2_HI / 16.0), z));
    /* nt = 1.5*2^52 + N: its low 4 bits are j = N mod 16, and its bits
     * shifted by 48 are N << 48 (magic's low 16 bits are zero). */
    vint bits = vd_bits(nt);
    *scale = vd_from_bits(vi_add_64(vi_lookup16_64(EXP2_16, bits), vi_slli_64(bits, 48)));
}

VBODY static inline vdouble INVDL_V(abstanh_expm1_poly)(vdouble r, int estrin)
{
    return estrin ? vd_estrin(EXPM1_P16, 5, r) : vd_horner(EXPM1_P16, 5, r);
}
#else
VBODY static inline void INVDL_V(abstanh_reduce_pd)(vdouble a, vdouble *r, vdouble *scale)
{
    const vdouble magic = vd_set1(ROUND_MAGIC);
    vdouble z = vd_mul(a, vd_set1(-2.0));
    vdouble kt = vd_fmadd(z, vd_set1(INV_LN2), magic);
    vdouble k = vd_sub(kt, magic);
    *r = vd_fnmadd(k, vd_set1(LN2_LO), vd_fnmadd(k, vd_set1(LN2_HI), z));
    /* kt = 1.5*2^52 + k: its bits minus magic's are k. */
    vint kbits = vi_sub_64(vd_bits(kt), vd_bits(magic));
    *scale = vd_from_bits(vi_slli_64(vi_add_64(kbits, vi_set1_64(1023)), 52));
}

VBODY static inline vdouble INVDL_V(abstanh_expm1_poly)(vdouble r, int estrin)
{
    return estrin ? vd_estrin(EXPM1_P, 9, r) : vd_horner(EXPM1_P, 9, r);
}
#endif

/* em from the reduction, by P(r) evaluated by Estrin's scheme (short
 * latency) or Horner's (fewest operations). */
VBODY static inline vdouble INVDL_V(abstanh_em_pd)(vdouble r, vdouble scale, int estrin)
{
    vdouble poly = INVDL_V(abstanh_expm1_poly)(r, estrin);
    vdouble em = vd_fmadd(r, vd_mul(r, poly), r);
    return vd_fmadd(scale, em, vd_sub(scale, vd_set1(1.0)));
}

/* Lane permutes pick piece i's coefficients from an 8-entry table each. */
VBODY static inline vfloat INVDL_V(abstanh_pieces)(const float (*table)[8], vint piece, vfloat d)
{
    vfloat h = vf_lookup8(table[6], piece);
    for (int j = 5; j >= 0; j--)
        h = vf_fmadd(h, d, vf_lookup8(table[j], piece));
    return h;
}

/* Phase 1: the starting point and g = 1/(f' D) in float, from piece i of
 * t = sqrt(a); st->inv_fp holds g. */
VBODY static inline void INVDL_V(abstanh_inverse_start)(vfloat y, vstart *st, int *fix,
                                                        int *outside)
{
    (void)outside;
    vfloat a = vf_abs(y);
    /* Identity lanes (large, ±inf, NaN, ±0) keep y; they compute on 1. */
    vmask ident = vm_or(vf_cmp(a, vf_set1((float)ABSTANH_INV_IDENTITY), _CMP_NLT_UQ),
                        vf_cmp(a, vf_zero(), _CMP_EQ_OQ));
    /* Subnormal and tiny y, beyond the approximate square root's range, go
     * to the scalar path. */
    int tiny = vm_bits(vf_cmp(a, vf_set1(0x1p-100f), _CMP_LT_OQ));
    a = vf_blend(a, vf_set1(1.0f), ident);

    vfloat inv_t;
    vfloat t = vf_sqrt(a, &inv_t);
    vint piece = vi_min_32(vf_to_int(vf_mul(t, vf_set1((float)(8.0 / ABSTANH_H_TOP)))),
                           vi_set1_32(7));
    vfloat d = vf_fnmadd(vf_from_int(piece), vf_set1((float)(ABSTANH_H_TOP / 8.0)), t);
    vfloat x0 = vf_mul(t, INVDL_V(abstanh_pieces)(ABSTANH_H_F, piece, d));
    vfloat g = vf_mul(vf_mul(inv_t, vf_set1(0.5f)), INVDL_V(abstanh_pieces)(ABSTANH_G_F, piece, d));
    st->a = a;
    st->x0 = x0;
    st->inv_fp = g;
    st->keep = ident;
    st->m = vf_ulps(vf_fmadd(vf_mul(x0, g), vf_set1(ABSTANH_M_X0), vf_set1(ABSTANH_M0)));
    *fix |= tiny & ~vm_bits(ident);
}

/* Phase 2's residual times D(x0) = 2 + em, the denominator of tanh x0 =
 * -em/D: N = -x0 em - a D, free of the division; g carries the 1/D.  Here
 * the loop waits on latencies, so the polynomial runs by Estrin's scheme. */
VBODY static inline vdouble INVDL_V(abstanh_residual_pd)(vdouble a, vdouble x0)
{
    vdouble r, scale;
    INVDL_V(abstanh_reduce_pd)(x0, &r, &scale);
    vdouble em = INVDL_V(abstanh_em_pd)(r, scale, 1);
    vdouble den = vd_add(vd_set1(2.0), em);
    return vd_fnmsub(x0, em, vd_mul(a, den));
}

/* The forward in three phases (run_phases): d[0..1] |x| in double, d[2..3]
 * the reduced argument r, d[4..5] the scale; then d[0..1] the product
 * |x| tanh|x|. */
VBODY static inline void INVDL_V(abstanh_forward_first)(vfloat x, vstate *st, int *outside)
{
    (void)outside;
    vfloat a = vf_abs(x);
    /* Lanes whose result is x itself (from the identity threshold on, ±inf,
     * NaN, and ±0) compute on 1: the others have a > 0. */
    vmask keep = vm_or(vf_cmp(a, vf_set1((float)ABSTANH_FWD_IDENTITY), _CMP_NLT_UQ),
                       vf_cmp(a, vf_zero(), _CMP_EQ_OQ));
    a = vf_blend(a, vf_set1(1.0f), keep);
    st->keep = keep;
    st->lanes |= vf_tiny_lanes(a);
    st->d[0] = vf_lo_pd(a);
    st->d[1] = vf_hi_pd(a);
    INVDL_V(abstanh_reduce_pd)(st->d[0], &st->d[2], &st->d[4]);
    INVDL_V(abstanh_reduce_pd)(st->d[1], &st->d[3], &st->d[5]);
}

/* Split into phases, the loop is bound by the floating-point units (the
 * multiply-adds and the divider) rather than by latency, so the polynomial
 * uses Horner's scheme, the fewest operations. */
VBODY static inline vdouble INVDL_V(abstanh_product_half)(vdouble a, vdouble r, vdouble scale)
{
    vdouble em = INVDL_V(abstanh_em_pd)(r, scale, 0);
    /* a tanh a = a em / (-2 - em), positive: a > 0 here, em < 0 */
    return vd_div(vd_mul(a, em), vd_sub(vd_set1(-2.0), em));
}

VBODY static inline void INVDL_V(abstanh_forward_second)(vstate *st)
{
    st->d[0] = INVDL_V(abstanh_product_half)(st->d[0], st->d[2], st->d[4]);
    st->d[1] = INVDL_V(abstanh_product_half)(st->d[1], st->d[3], st->d[5]);
}

VBODY static inline vfloat INVDL_V(abstanh_forward_third)(vfloat x, vstate *st)
{
    int undecided = 0;
    vfloat r = vf_or(vd_round(st->d[0], st->d[1], INVDL_ULPS(ABSTANH_FWD_ERR), &undecided),
                     vf_signbit(x));
    st->lanes |= undecided & ~vm_bits(st->keep);
    return vf_blend(r, x, st->keep);
}

VTARGET invdl_status INVDL_V(abstanh_forward)(size_t n, const float *x, float *y)
{
    if (invdl_bad_arrays(n, x, y))
        return INVDL_EINVAL;
    (void)INVDL_V(run_phases)(n, x, y, INVDL_V(abstanh_forward_first),
                              INVDL_V(abstanh_forward_second), INVDL_V(abstanh_forward_third),
                              invdl_abstanh_forward1);
    return INVDL_OK;
}

VTARGET invdl_status INVDL_V(abstanh_inverse)(size_t n, const float *y, float *x)
{
    if (invdl_bad_arrays(n, y, x))
        return INVDL_EINVAL;
    (void)INVDL_V(run_split)(n, y, x, INVDL_V(abstanh_inverse_start),
                             INVDL_V(abstanh_residual_pd), invdl_abstanh_inverse1);
    return INVDL_OK;
}
