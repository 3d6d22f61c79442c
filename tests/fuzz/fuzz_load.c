/*
 * fuzz_load.c - arbitrary bytes to invdl_model_load_memory().
 *
 * Each input is loaded as it is (mostly refused at the CRC) and once more
 * with its last four bytes replaced by the CRC-32 of the rest, so that the
 * fuzzer reaches every field check behind the CRC.  Invariants:
 *   - the loader returns a model with INVDL_OK, or NULL with
 *     INVDL_EFORMAT (or INVDL_ENOMEM), never anything else, never a crash,
 *     a leak or a read outside the bytes (ASan, UBSan);
 *   - a model it accepts saves to exactly as many bytes, and that file
 *     loads and saves again to the same bytes (the canonical form: blocks
 *     in order of first use);
 *   - the reloaded model has the same structure, settings (alpha_min,
 *     s_min, a dense_lu layer's permutation, which is one) and parameters, and its
 *     predictions, inverse predictions and log-determinants are bit for
 *     bit those of the model first loaded.
 */
#include "fuzz.h"

#include "invdl.h"

static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint8_t *save(const invdl_model *m, size_t *size)
{
    FUZZ_CHECK(invdl_model_save_memory(m, NULL, 0, size) == INVDL_OK);
    uint8_t *buf = malloc(*size);
    FUZZ_CHECK(buf != NULL);
    size_t again = 0;
    FUZZ_CHECK(invdl_model_save_memory(m, buf, *size, &again) == INVDL_OK && again == *size);
    return buf;
}

static float *params_of(const invdl_model *m, size_t *count)
{
    *count = invdl_model_param_count(m);
    float *p = malloc((*count + 1) * sizeof *p);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(invdl_model_get_params(m, *count, p) == INVDL_OK);
    return p;
}

/* The same outputs, bit for bit, from both models. */
static void compare_outputs(invdl_model *a, invdl_model *b)
{
    enum { BATCH = 3 };
    size_t w = invdl_model_width(a), n = BATCH * w;
    float *x = malloc(n * sizeof *x), *ya = malloc(n * sizeof *ya), *yb = malloc(n * sizeof *yb);
    float la[BATCH], lb[BATCH];
    FUZZ_CHECK(x != NULL && ya != NULL && yb != NULL);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)((i * 7919u) % 2001u) / 1000.0 - 1.0);
    invdl_status sa = invdl_model_predict(a, BATCH, x, ya);
    FUZZ_CHECK(sa == INVDL_OK || sa == INVDL_EDOMAIN);
    FUZZ_CHECK(invdl_model_predict(b, BATCH, x, yb) == sa);
    FUZZ_CHECK(memcmp(ya, yb, n * sizeof *ya) == 0);
    sa = invdl_model_predict_inverse(a, BATCH, x, ya);
    FUZZ_CHECK(sa == INVDL_OK || sa == INVDL_EDOMAIN);
    FUZZ_CHECK(invdl_model_predict_inverse(b, BATCH, x, yb) == sa);
    FUZZ_CHECK(memcmp(ya, yb, n * sizeof *ya) == 0);
    sa = invdl_model_log_det(a, BATCH, x, la);
    FUZZ_CHECK(sa == INVDL_OK || sa == INVDL_EDOMAIN);
    FUZZ_CHECK(invdl_model_log_det(b, BATCH, x, lb) == sa);
    FUZZ_CHECK(memcmp(la, lb, sizeof la) == 0);
    free(x);
    free(ya);
    free(yb);
}

static void check_load(const uint8_t *data, size_t size)
{
    invdl_status st = (invdl_status)-1;
    invdl_model *m = invdl_model_load_memory(data, size, &st);
    if (m == NULL) {
        FUZZ_CHECK(st == INVDL_EFORMAT || st == INVDL_ENOMEM);
        return;
    }
    FUZZ_CHECK(st == INVDL_OK);
    size_t s1, s2;
    uint8_t *b1 = save(m, &s1);
    FUZZ_CHECK(s1 == size);
    invdl_model *again = invdl_model_load_memory(b1, s1, &st);
    FUZZ_CHECK(again != NULL && st == INVDL_OK);
    uint8_t *b2 = save(again, &s2);
    FUZZ_CHECK(s2 == s1 && memcmp(b1, b2, s1) == 0);

    FUZZ_CHECK(invdl_model_width(again) == invdl_model_width(m));
    FUZZ_CHECK(invdl_model_depth(again) == invdl_model_depth(m));
    for (size_t l = 0; l < invdl_model_depth(m); l++) {
        const invdl_layer *la = invdl_model_layer(m, l), *lb = invdl_model_layer(again, l);
        FUZZ_CHECK(invdl_layer_kind_of(la) == invdl_layer_kind_of(lb));
        FUZZ_CHECK(invdl_layer_is_inverse(la) == invdl_layer_is_inverse(lb));
        FUZZ_CHECK(bits_of_float(invdl_layer_alpha_min(la)) ==
                   bits_of_float(invdl_layer_alpha_min(lb)));
        FUZZ_CHECK(bits_of_float(invdl_layer_s_min(la)) == bits_of_float(invdl_layer_s_min(lb)));
        if (invdl_layer_kind_of(la) == INVDL_LAYER_DENSE_LU) {
            /* A permutation (the loader checked), the same in both. */
            size_t w = invdl_model_width(m);
            size_t *pa = malloc(w * sizeof *pa), *pb = malloc(w * sizeof *pb);
            uint8_t *seen = calloc(w, 1);
            FUZZ_CHECK(pa != NULL && pb != NULL && seen != NULL);
            FUZZ_CHECK(invdl_layer_permutation(la, pa) == INVDL_OK);
            FUZZ_CHECK(invdl_layer_permutation(lb, pb) == INVDL_OK);
            FUZZ_CHECK(memcmp(pa, pb, w * sizeof *pa) == 0);
            for (size_t i = 0; i < w; i++) {
                FUZZ_CHECK(pa[i] < w && !seen[pa[i]]);
                seen[pa[i]] = 1;
            }
            free(pa);
            free(pb);
            free(seen);
        }
    }
    size_t c1, c2;
    float *p1 = params_of(m, &c1), *p2 = params_of(again, &c2);
    FUZZ_CHECK(c1 == c2 && memcmp(p1, p2, c1 * sizeof *p1) == 0);
    free(p1);
    free(p2);
    /* Computing needs width floats per sample: only for models of a width
     * a file of this size can exercise fully. */
    if (invdl_model_width(m) <= 64)
        compare_outputs(m, again);
    free(b1);
    free(b2);
    invdl_model_free(again);
    invdl_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_load(data, size);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        FUZZ_CHECK(fixed != NULL);
        memcpy(fixed, data, size);
        uint32_t crc = crc32_bitwise(fixed, size - 4);
        for (int i = 0; i < 4; i++)
            fixed[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
        check_load(fixed, size);
        free(fixed);
    }
    return 0;
}

const char *fuzz_summary(void)
{
    return NULL;
}
