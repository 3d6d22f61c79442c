/*
 * ssin_simd.h - signed sin's SIMD paths, written with the generic names of
 * simd_x86.h; ssin.c includes it once per instruction set (simd_paths.h),
 * after the tables and bounds it uses.
 */

/* a sin a = u S(u), u = a^2, for half a vector. */
VBODY static inline vdouble INVDL_V(ssin_forward_pd)(vdouble a)
{
    vdouble u = vd_mul(a, a);
    return vd_fmadd(vd_mul(u, u), vd_estrin(SSIN_R, 7, u), u);
}

VBODY static inline vfloat INVDL_V(ssin_forward_body)(vfloat x, int *fix, int *outside)
{
    vfloat a = vf_abs(x);
    int out = vm_bits(vf_cmp(a, vf_set1(INVDL_SSIN_XMAX), _CMP_NLE_UQ));
    int undecided = out | vf_tiny_lanes(a);
    vfloat r = vd_round(INVDL_V(ssin_forward_pd)(vf_lo_pd(a)), INVDL_V(ssin_forward_pd)(vf_hi_pd(a)),
                        INVDL_ULPS(SSIN_FWD_ERR), &undecided);
    *outside |= out;
    *fix = undecided;
    return vf_or(r, vf_signbit(x));
}

/* Phase 1: the starting point and 1/f' in float, both from s and sqrt(a). */
VBODY static inline void INVDL_V(ssin_inverse_start)(vfloat y, vstart *st, int *fix,
                                                     int *outside)
{
    const vfloat one = vf_set1(1.0f);
    vfloat a = vf_abs(y);
    vmask in_range = vf_cmp(a, vf_set1(INVDL_SSIN_YMAX), _CMP_LE_OQ);
    vmask zero = vf_cmp(a, vf_zero(), _CMP_EQ_OQ);
    int out = ~vm_bits(in_range) & ((1 << VLANES) - 1);
    /* Subnormal and tiny y, beyond the approximate square roots' range, go
     * to the scalar path too. */
    int tiny = vm_bits(vf_cmp(a, vf_set1(0x1p-100f), _CMP_LT_OQ));
    /* Lanes out of range or zero compute on 1 and are replaced later. */
    a = vf_blend(one, a, vm_andnot(zero, in_range));

    const float y_lo = (float)(SSIN_Y_HI - (double)INVDL_SSIN_YMAX);
    vfloat gap = vf_add(vf_sub(vf_set1(INVDL_SSIN_YMAX), a), vf_set1(y_lo));
    vfloat s2 = vf_mul(gap, vf_set1((float)(1.0 / SSIN_Y_HI)));
    vfloat inv_sqrt_a, inv_s;
    vfloat s = vf_sqrt(s2, &inv_s);
    vfloat sqrt_a = vf_sqrt(a, &inv_sqrt_a);
    vfloat x0 = vf_min(vf_mul(sqrt_a, vf_horner(SSIN_H_F, 9, s)), vf_set1((float)SSIN_X_CLAMP));
    vfloat inv_fp = vf_mul(vf_mul(inv_sqrt_a, inv_s), vf_horner(SSIN_G_F, 7, s));
    vfloat m = vf_fmadd(inv_fp,
                        vf_fmadd(vf_set1(SSIN_M_X0), x0, vf_mul(vf_set1(SSIN_M_SQRT_A), sqrt_a)),
                        vf_set1(SSIN_M0));
    st->a = a;
    st->x0 = x0;
    st->inv_fp = inv_fp;
    st->keep = zero;
    st->m = vf_ulps(m);
    *outside |= out;
    *fix |= (out | tiny) & ~vm_bits(zero);
}

/* Phase 2's residual f(x0) - a, for half a vector (run_split). */
VBODY static inline vdouble INVDL_V(ssin_residual_pd)(vdouble a, vdouble x0)
{
    return vd_sub(INVDL_V(ssin_forward_pd)(x0), a);
}

VTARGET invdl_status INVDL_V(ssin_forward)(size_t n, const float *x, float *y)
{
    if (invdl_bad_arrays(n, x, y))
        return INVDL_EINVAL;
    int outside = INVDL_V(run)(n, x, y, INVDL_V(ssin_forward_body), invdl_ssin_forward1);
    return outside ? INVDL_EDOMAIN : INVDL_OK;
}

VTARGET invdl_status INVDL_V(ssin_inverse)(size_t n, const float *y, float *x)
{
    if (invdl_bad_arrays(n, y, x))
        return INVDL_EINVAL;
    int outside = INVDL_V(run_split)(n, y, x, INVDL_V(ssin_inverse_start),
                                     INVDL_V(ssin_residual_pd), invdl_ssin_inverse1);
    return outside ? INVDL_EDOMAIN : INVDL_OK;
}
