/*
 * mprelu_simd.h - monotonic PReLU's SIMD paths, written with the generic
 * names of simd_x86.h; mprelu.c includes it once per instruction set
 * (simd_paths.h).
 *
 * They compute exactly what the scalar loops do, lane by lane: the product
 * a*x and the IEEE quotient y/a (the vector instructions round like the
 * scalar ones), chosen by the input's sign bit.
 */

VTARGET static inline vfloat INVDL_V(mprelu_fwd)(vfloat v, vfloat a)
{
    return vf_blend(v, vf_mul(a, v), vf_sign_mask(v));
}

VTARGET static inline vfloat INVDL_V(mprelu_inv)(vfloat v, vfloat a)
{
    return vf_blend(v, vf_div(v, a), vf_sign_mask(v));
}

VTARGET static int INVDL_V(mprelu_bad_alpha)(size_t n, const float *alpha)
{
    int bad = 0;
    size_t j = 0;
    for (; j + VLANES <= n; j += VLANES) /* |alpha| > FLT_MAX, or NaN */
        bad |= vm_bits(vf_cmp(vf_abs(vf_load(alpha + j)), vf_set1(FLT_MAX), _CMP_NLE_UQ));
    return bad != 0 || mprelu_bad_alpha(n - j, alpha + j);
}

/* max(|alpha|, alpha_min) for a vector of columns, as mprelu_slope(). */
VTARGET static inline vfloat INVDL_V(mprelu_slopes)(const float *alpha, vfloat alpha_min)
{
    return vf_max(vf_abs(vf_load(alpha)), alpha_min);
}

/* Narrow rows (cols <= 64) run as one flat array against a pattern of whole
 * rows of slopes: VLANES * ceil(32 / cols) rows, at least 32 VLANES floats,
 * at most 64 VLANES (for cols <= 32, cols * ceil(32 / cols) < 32 + cols <=
 * 64; above, VLANES * cols), and a multiple of VLANES, so every vector lines
 * up with its columns and the loop runs long stretches without per-row
 * overhead.  The pattern is built for at most as many rows as the array
 * has, doubling by copies; an array with fewer rows runs in one stretch,
 * whatever its length. */
VTARGET static void INVDL_V(mprelu_run_pattern)(size_t rows, size_t cols, const float *alpha,
                                                float alpha_min, const float *in, float *out,
                                                int inverse)
{
    _Alignas(64) float pattern[MPRELU_PATTERN_COLS * VLANES];
    size_t reps = VLANES * ((32 + cols - 1) / cols);
    size_t period = cols * (rows < reps ? rows : reps);
    size_t j = 0;
    for (; j + VLANES <= cols; j += VLANES)
        vf_store(pattern + j, INVDL_V(mprelu_slopes)(alpha + j, vf_set1(alpha_min)));
    for (; j < cols; j++)
        pattern[j] = mprelu_slope(alpha[j], alpha_min);
    for (size_t have = cols; have < period; have *= 2)
        memcpy(pattern + have, pattern, (period - have < have ? period - have : have) * sizeof *pattern);
    size_t n = rows * cols;
    for (size_t base = 0; base < n; base += period) {
        size_t len = n - base < period ? n - base : period;
        const float *src = in + base;
        float *dst = out + base;
        size_t k = 0;
        if (inverse) {
            _Pragma("GCC unroll 4") for (; k + VLANES <= len; k += VLANES)
                vf_store(dst + k, INVDL_V(mprelu_inv)(vf_load(src + k), vf_load(pattern + k)));
            for (; k < len; k++)
                dst[k] = mprelu_inv1(src[k], pattern[k]);
        } else {
            _Pragma("GCC unroll 4") for (; k + VLANES <= len; k += VLANES)
                vf_store(dst + k, INVDL_V(mprelu_fwd)(vf_load(src + k), vf_load(pattern + k)));
            for (; k < len; k++)
                dst[k] = mprelu_fwd1(src[k], pattern[k]);
        }
    }
}

/* Wide rows run row by row, computing each vector's slopes from alpha on
 * the fly: two operations that cost less than a pass over a slope buffer,
 * which a single long row would otherwise pay in full. */
VTARGET static void INVDL_V(mprelu_run)(size_t rows, size_t cols, const float *alpha,
                                        float alpha_min, const float *in, float *out, int inverse)
{
    if (cols <= MPRELU_PATTERN_COLS) {
        INVDL_V(mprelu_run_pattern)(rows, cols, alpha, alpha_min, in, out, inverse);
        return;
    }
    const vfloat amin = vf_set1(alpha_min);
    for (size_t i = 0; i < rows; i++) {
        const float *src = in + i * cols;
        float *dst = out + i * cols;
        size_t j = 0;
        if (inverse) {
            _Pragma("GCC unroll 4") for (; j + VLANES <= cols; j += VLANES)
                vf_store(dst + j, INVDL_V(mprelu_inv)(vf_load(src + j),
                                                      INVDL_V(mprelu_slopes)(alpha + j, amin)));
            for (; j < cols; j++)
                dst[j] = mprelu_inv1(src[j], mprelu_slope(alpha[j], alpha_min));
        } else {
            _Pragma("GCC unroll 4") for (; j + VLANES <= cols; j += VLANES)
                vf_store(dst + j, INVDL_V(mprelu_fwd)(vf_load(src + j),
                                                      INVDL_V(mprelu_slopes)(alpha + j, amin)));
            for (; j < cols; j++)
                dst[j] = mprelu_fwd1(src[j], mprelu_slope(alpha[j], alpha_min));
        }
    }
}

VTARGET static invdl_status INVDL_V(mprelu_checked)(size_t rows, size_t cols, const float *alpha,
                                                    float alpha_min, const float *in, float *out,
                                                    int inverse)
{
    size_t n;
    if (mprelu_bad_args(rows, cols, alpha, alpha_min, in, out, &n, INVDL_V(mprelu_bad_alpha)))
        return INVDL_EINVAL;
    if (n > 0)
        INVDL_V(mprelu_run)(rows, cols, alpha, alpha_min, in, out, inverse);
    return INVDL_OK;
}

VTARGET invdl_status INVDL_V(mprelu_forward)(size_t rows, size_t cols, const float *alpha,
                                             float alpha_min, const float *x, float *y)
{
    return INVDL_V(mprelu_checked)(rows, cols, alpha, alpha_min, x, y, 0);
}

VTARGET invdl_status INVDL_V(mprelu_inverse)(size_t rows, size_t cols, const float *alpha,
                                             float alpha_min, const float *y, float *x)
{
    return INVDL_V(mprelu_checked)(rows, cols, alpha, alpha_min, y, x, 1);
}
