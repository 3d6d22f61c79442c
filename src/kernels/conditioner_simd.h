/*
 * conditioner_simd.h - the coupling conditioner's SIMD paths, written with
 * the generic names of simd_x86.h; conditioner.c includes it once per
 * instruction set (simd_paths.h).  Each lane runs conditioner.c's scalar
 * algorithm operation for operation (no FMA), and the tails run the scalar
 * functions themselves, so every path gives the same bits.
 */

/* VLANES floats make a vector; doubles come VLANES / 2 to a vector. */
#define VDLANES (VLANES / 2)

VBODY static inline vdouble INVDL_V(cond_reduce)(vdouble z, vdouble *scale)
{
    const vdouble magic = vd_set1(ROUND_MAGIC);
    vdouble kt = vd_add(vd_mul(z, vd_set1(INV_LN2)), magic);
    vdouble k = vd_sub(kt, magic);
    vdouble r = vd_sub(vd_sub(z, vd_mul(k, vd_set1(LN2_HI))), vd_mul(k, vd_set1(LN2_LO)));
    vint kbits = vi_sub_64(vd_bits(kt), vd_bits(magic));
    *scale = vd_from_bits(vi_slli_64(vi_add_64(kbits, vi_set1_64(1023)), 52));
    vdouble p = vd_set1(invdl_expm1_p[8]);
#pragma GCC unroll 8
    for (int i = 7; i >= 0; i--)
        p = vd_add(vd_mul(p, r), vd_set1(invdl_expm1_p[i]));
    return vd_add(r, vd_mul(r, vd_mul(r, p)));
}

VBODY static inline vdouble INVDL_V(cond_tanh)(vdouble v)
{
    const vint sign = vi_set1_64(INT64_MIN);
    vdouble a = vd_from_bits(vi_andnot(sign, vd_bits(v))), scale;
    a = vd_min(vd_set1(TANH_CLAMP), a);
    vdouble em = INVDL_V(cond_reduce)(vd_mul(a, vd_set1(-2.0)), &scale);
    em = vd_add(vd_mul(scale, em), vd_sub(scale, vd_set1(1.0)));
    vdouble t = vd_div(em, vd_sub(vd_set1(-2.0), em));
    return vd_from_bits(vi_or(vi_andnot(sign, vd_bits(t)), vi_and(sign, vd_bits(v))));
}

VTARGET void INVDL_V(tanh_pd)(size_t n, double *v)
{
    size_t i = 0;
    for (; i + VDLANES <= n; i += VDLANES)
        vd_storeu(v + i, INVDL_V(cond_tanh)(vd_loadu(v + i)));
    invdl_tanh_pd_scalar(n - i, v + i);
}

VTARGET void INVDL_V(soft_scale)(size_t n, double *r, double *e, int negate)
{
    size_t i = 0;
    for (; i + VDLANES <= n; i += VDLANES) {
        vdouble s = vd_mul(vd_set1(2.0), INVDL_V(cond_tanh)(vd_mul(vd_set1(0.5), vd_loadu(r + i))));
        vdouble z = negate ? vd_sub(vd_set1(0.0), s) : s, scale;
        vdouble em = INVDL_V(cond_reduce)(z, &scale);
        vd_storeu(r + i, s);
        vd_storeu(e + i, vd_add(vd_mul(scale, em), scale));
    }
    invdl_soft_scale_scalar(n - i, r + i, e + i, negate);
}

#undef VDLANES
