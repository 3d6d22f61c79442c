/*
 * test_io.c - model files: bit-identical round trips of forward, inverse
 * and shared-parameter models; every truncation and every single-bit flip
 * refused; crafted files with a valid CRC refused field by field; atomic
 * saving; I/O errors.
 *
 * The CRC-32 here is the bitwise textbook one (reflected 0xEDB88320), not
 * the library's table-driven one, so that crafted files test the loader
 * rather than share its code.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "invdl.h"
#include "reference.h"

enum { W = 3, S = 11 };

static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *p, size_t n)
{
    put_u32(p + n - 4, crc32_bitwise(p, n - 4));
}

static void fill(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(2.0 * (double)(test_rand(&s) >> 11) * 0x1p-53 - 1.0);
}

/* Every kind, a custom alpha_min, a dense layer with a bias, a dense_lu
 * layer with a custom s_min, a bias and a floored s, used forward and
 * inverse. */
static invdl_model *sample_model(void)
{
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d = invdl_layer_dense(W, 1);
    float p[W * W + W];
    assert_int_equal(invdl_layer_get_params(d, W * W + W, p), INVDL_OK);
    p[W * W] = 0.25f;
    p[W * W + 2] = -0.125f;
    assert_int_equal(invdl_layer_set_params(d, W * W + W, p), INVDL_OK);
    assert_int_equal(invdl_model_add(m, d), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu_min(W, 2, 0.125f)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(W, 3)), INVDL_OK);
    invdl_layer *lu = invdl_layer_dense_lu_min(W, 4, 0.0625f);
    float q[W * W + W];
    assert_int_equal(invdl_layer_get_params(lu, W * W + W, q), INVDL_OK);
    q[W * W + 1] = 0.5f;    /* b_1 */
    q[W * W - 1] = 0.01f;   /* s_2, in the floor */
    assert_int_equal(invdl_layer_set_params(lu, W * W + W, q), INVDL_OK);
    assert_int_equal(invdl_model_add(m, lu), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(lu)), INVDL_OK);
    return m;
}

static unsigned char *to_memory(const invdl_model *m, size_t *size)
{
    assert_int_equal(invdl_model_save_memory(m, NULL, 0, size), INVDL_OK);
    unsigned char *buf = malloc(*size);
    assert_non_null(buf);
    size_t again = 0;
    assert_int_equal(invdl_model_save_memory(m, buf, *size, &again), INVDL_OK);
    assert_int_equal(again, *size);
    return buf;
}

/* Same structure, same parameters, bit-identical outputs. */
static void assert_same_model(invdl_model *a, invdl_model *b)
{
    assert_int_equal(invdl_model_width(a), invdl_model_width(b));
    assert_int_equal(invdl_model_depth(a), invdl_model_depth(b));
    size_t np = invdl_model_param_count(a);
    assert_int_equal(invdl_model_param_count(b), np);
    for (size_t l = 0; l < invdl_model_depth(a); l++) {
        invdl_layer *la = invdl_model_layer(a, l), *lb = invdl_model_layer(b, l);
        assert_int_equal(invdl_layer_kind_of(la), invdl_layer_kind_of(lb));
        assert_int_equal(invdl_layer_is_inverse(la), invdl_layer_is_inverse(lb));
        assert_true(invdl_layer_alpha_min(la) == invdl_layer_alpha_min(lb));
        assert_true(invdl_layer_s_min(la) == invdl_layer_s_min(lb));
        if (invdl_layer_kind_of(la) == INVDL_LAYER_DENSE_LU) {
            size_t pa[W], pb[W];
            assert_int_equal(invdl_layer_permutation(la, pa), INVDL_OK);
            assert_int_equal(invdl_layer_permutation(lb, pb), INVDL_OK);
            assert_memory_equal(pa, pb, sizeof pa);
        }
        for (size_t k = 0; k < l; k++)
            assert_int_equal(invdl_layer_shares_params(la, invdl_model_layer(a, k)),
                             invdl_layer_shares_params(lb, invdl_model_layer(b, k)));
    }
    float *pa = malloc((np + 1) * sizeof *pa), *pb = malloc((np + 1) * sizeof *pb);
    assert_int_equal(invdl_model_get_params(a, np, pa), INVDL_OK);
    assert_int_equal(invdl_model_get_params(b, np, pb), INVDL_OK);
    assert_memory_equal(pa, pb, np * sizeof *pa);
    free(pa);
    free(pb);
    float x[S * W], ya[S * W], yb[S * W], la[S], lb[S];
    fill(x, S * W, 5);
    invdl_status s1 = invdl_model_predict(a, S, x, ya);
    assert_int_equal(invdl_model_predict(b, S, x, yb), s1);
    assert_memory_equal(ya, yb, sizeof ya);
    s1 = invdl_model_log_det(a, S, x, la);
    assert_int_equal(invdl_model_log_det(b, S, x, lb), s1);
    assert_memory_equal(la, lb, sizeof la);
}

static void test_memory_round_trips(void **state)
{
    (void)state;
    invdl_model *m = sample_model(), *inv = invdl_model_inverse(m);
    invdl_model *all[2] = {m, inv};
    for (int i = 0; i < 2; i++) {
        size_t size;
        unsigned char *buf = to_memory(all[i], &size);
        invdl_status st = INVDL_EIO;
        invdl_model *back = invdl_model_load_memory(buf, size, &st);
        assert_int_equal(st, INVDL_OK);
        assert_non_null(back);
        assert_same_model(all[i], back);
        invdl_model_free(back);
        free(buf);
    }
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* A model holding a layer and its inverse saves their block once and
 * loads with the two sharing it again: training one moves the other. */
static void test_shared_blocks(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(W);
    invdl_layer *d = invdl_layer_dense(W, 7), *p = invdl_layer_mprelu(W, 8);
    assert_int_equal(invdl_model_add(m, d), INVDL_OK);
    assert_int_equal(invdl_model_add(m, p), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(W)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(p)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(d)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    /* header 40, blocks 16+48 + 16+12+4(alpha_min) + 16, layers 5*16, CRC 4 */
    assert_int_equal(size, 40 + (16 + 48) + (16 + 4 + 12) + 16 + 5 * 16 + 4);
    invdl_model *back = invdl_model_load_memory(buf, size, NULL);
    assert_non_null(back);
    assert_same_model(m, back);
    assert_true(invdl_layer_shares_params(invdl_model_layer(back, 0), invdl_model_layer(back, 4)));
    free(buf);
    invdl_model_free(back);
    invdl_model_free(m);
}

/* Every proper prefix and every single-bit flip of a saved model. */
static void test_every_truncation_and_bit_flip(void **state)
{
    (void)state;
    invdl_model *m = sample_model(), *inv = invdl_model_inverse(m);
    invdl_model *all[2] = {m, inv};
    for (int i = 0; i < 2; i++) {
        size_t size;
        unsigned char *buf = to_memory(all[i], &size);
        unsigned char *copy = malloc(size);
        for (size_t n = 0; n < size; n++) {
            memcpy(copy, buf, n);
            invdl_status st = INVDL_OK;
            assert_null(invdl_model_load_memory(n ? copy : NULL, n, &st));
            assert_int_equal(st, INVDL_EFORMAT);
        }
        for (size_t bit = 0; bit < 8 * size; bit++) {
            memcpy(copy, buf, size);
            copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            invdl_status st = INVDL_OK;
            assert_null(invdl_model_load_memory(copy, size, &st));
            assert_int_equal(st, INVDL_EFORMAT);
        }
        free(copy);
        free(buf);
    }
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* Files with a correct CRC but a bad field, one at a time. */
static void test_crafted_fields(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(2);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(2, 1)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(2, 2)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    /* Layout: header 0..39; dense block at 40: kind 40, S 44, V 48, values
     * 56..79; mprelu block at 80: kind 80, S 84, V 88, alpha_min 96,
     * alpha 100..107; layers at 108 and 124 (index u64, direction u32,
     * reserved u32); CRC at 140. */
    assert_int_equal(size, 144);
    static const struct { size_t offset; uint32_t value; } edits[] = {
        {0, 0x444c564au},  /* magic */
        {8, 2},            /* version */
        {12, 1},           /* flags */
        {16, 0},           /* width 0 */
        {16, 3},           /* width 3: counts no longer match */
        {20, 1},           /* width 2^32 + 2 */
        {24, 3},           /* more blocks than bytes */
        {24, 1},           /* fewer blocks: bytes left over */
        {32, 1},           /* one layer: bytes left over */
        {40, 9},           /* unknown kind */
        {40, 3},           /* dense block read as mprelu */
        {44, 1},           /* settings count */
        {48, 7},           /* value count */
        {56, 0x7fc00000u}, /* NaN in W */
        {56, 0x7f800000u}, /* inf in W */
        {56, 0x00000000u}, /* W[0][0] = 0 ... */
        {96, 0x00000000u}, /* alpha_min 0 */
        {96, 0xbf800000u}, /* alpha_min -1 */
        {100, 0x7fc00000u}, /* NaN alpha */
        {108, 2},          /* block index out of range */
        {112, 1},          /* block index 2^32 */
        {116, 2},          /* direction 2 */
        {120, 1},          /* reserved */
        {124, 0},          /* second layer uses block 0: block 1 unused */
    };
    unsigned char *copy = malloc(size + 1);
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(copy, buf, size);
        if (edits[e].offset == 56 && edits[e].value == 0) {
            /* ... and W[1][0] = 0 too: a zero column, singular. */
            put_u32(copy + 56, 0);
            put_u32(copy + 64, 0);
        } else {
            put_u32(copy + edits[e].offset, edits[e].value);
        }
        fix_crc(copy, size);
        invdl_status st = INVDL_OK;
        assert_null(invdl_model_load_memory(copy, size, &st));
        assert_int_equal(st, INVDL_EFORMAT);
    }
    /* A byte appended before the CRC. */
    memcpy(copy, buf, size - 4);
    copy[size - 4] = 0;
    fix_crc(copy, size + 1);
    assert_null(invdl_model_load_memory(copy, size + 1, NULL));
    /* The unedited file with its CRC recomputed by this test loads. */
    memcpy(copy, buf, size);
    fix_crc(copy, size);
    assert_memory_equal(copy, buf, size);
    invdl_model *back = invdl_model_load_memory(copy, size, NULL);
    assert_non_null(back);
    invdl_model_free(back);
    free(copy);
    free(buf);
    invdl_model_free(m);
}

/* A file may name any width a model can have, up to INVDL_MAX_WIDTH: a
 * wider one (2^61, say, which predict could never serve) is EFORMAT. */
static void test_file_widths(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(INVDL_MAX_WIDTH);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(INVDL_MAX_WIDTH)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    invdl_model *back = invdl_model_load_memory(buf, size, NULL);
    assert_non_null(back);
    assert_int_equal(invdl_model_width(back), INVDL_MAX_WIDTH);
    invdl_model_free(back);
    const uint64_t wider[] = {(uint64_t)INVDL_MAX_WIDTH + 1, (uint64_t)1 << 61, UINT64_MAX};
    for (size_t k = 0; k < sizeof wider / sizeof wider[0]; k++) {
        put_u32(buf + 16, (uint32_t)wider[k]);
        put_u32(buf + 20, (uint32_t)(wider[k] >> 32));
        fix_crc(buf, size);
        invdl_status st = INVDL_OK;
        assert_null(invdl_model_load_memory(buf, size, &st));
        assert_int_equal(st, INVDL_EFORMAT);
    }
    free(buf);
    invdl_model_free(m);
}

/* Random corruption with a valid CRC never crashes: a model or EFORMAT. */
static void test_fuzz(void **state)
{
    (void)state;
    invdl_model *m = sample_model();
    size_t size;
    unsigned char *buf = to_memory(m, &size), *copy = malloc(size);
    uint64_t rng = 77;
    size_t loaded = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, buf, size);
        int edits = 1 + (int)(test_rand(&rng) % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t)(test_rand(&rng) % (size - 4));
            copy[at] = (unsigned char)test_rand(&rng);
        }
        size_t n = size - (test_rand(&rng) % 8 == 0 ? (size_t)(test_rand(&rng) % size) : 0);
        if (n >= 4)
            fix_crc(copy, n);
        invdl_status st = INVDL_OK;
        invdl_model *back = invdl_model_load_memory(copy, n, &st);
        if (back != NULL) {
            float x[W] = {0.1f, -0.2f, 0.3f}, y[W];
            invdl_status p = invdl_model_predict(back, 1, x, y);
            assert_true(p == INVDL_OK || p == INVDL_EDOMAIN);
            loaded++;
            invdl_model_free(back);
        } else {
            assert_int_equal(st, INVDL_EFORMAT);
        }
    }
    /* Some edits land in parameter bits and still make a valid model. */
    assert_true(loaded > 0);
    free(copy);
    free(buf);
    invdl_model_free(m);
}

/* dense_lu blocks with a correct CRC but bad settings or values. */
/* buf with the u32 at offset set to value and the CRC fixed (in copy) is
 * refused as INVDL_EFORMAT. */
static void assert_edit_refused(const unsigned char *buf, size_t size, unsigned char *copy,
                                size_t offset, uint32_t value)
{
    memcpy(copy, buf, size);
    put_u32(copy + offset, value);
    fix_crc(copy, size);
    invdl_status st = INVDL_OK;
    if (invdl_model_load_memory(copy, size, &st) != NULL)
        fail_msg("the file with %#x at %zu loaded", (unsigned)value, offset);
    assert_int_equal(st, INVDL_EFORMAT);
}

static void test_crafted_dense_lu(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(3);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense_lu(3, 1)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    /* Layout: header 0..39; block at 40: kind 40, S 44 (= 4), V 48 (= 12),
     * s_min 56, p_0..p_2 at 60, 64, 68, values 72..119 (L 72..83, U
     * 84..95, s 96..107, b 108..119); the layer at 120; CRC at 136. */
    assert_int_equal(size, 140);
    static const struct { size_t offset; uint32_t value; } edits[] = {
        {44, 1},           /* settings of a width-independent kind */
        {44, 5},           /* one setting too many */
        {56, 0x00000000u}, /* s_min 0 */
        {56, 0xbf800000u}, /* s_min -1 */
        {56, 0x7fc00000u}, /* s_min NaN */
        {56, 0x7f800000u}, /* s_min inf */
        {60, 0x40400000u}, /* p_0 = 3: out of range */
        {60, 0xbf800000u}, /* p_0 = -1 */
        {60, 0x3fc00000u}, /* p_0 = 1.5 */
        {60, 0x7fc00000u}, /* p_0 NaN */
        {72, 0x7fc00000u}, /* NaN in L */
        {84, 0x7f800000u}, /* inf in U */
        {96, 0xff800000u}, /* -inf in s */
        {116, 0x7fc00000u}, /* NaN in b */
    };
    unsigned char *copy = malloc(size);
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++)
        assert_edit_refused(buf, size, copy, edits[e].offset, edits[e].value);
    /* A repeated index: p_1 = p_0. */
    memcpy(copy, buf, size);
    memcpy(copy + 64, copy + 60, 4);
    fix_crc(copy, size);
    assert_null(invdl_model_load_memory(copy, size, NULL));
    /* Any permutation loads, and the file is read back as written. */
    static const float perm[3] = {2.0f, 0.0f, 1.0f};
    memcpy(copy, buf, size);
    for (int i = 0; i < 3; i++) {
        uint32_t bits;
        memcpy(&bits, &perm[i], sizeof bits);
        put_u32(copy + 60 + 4 * (size_t)i, bits);
    }
    fix_crc(copy, size);
    invdl_model *back = invdl_model_load_memory(copy, size, NULL);
    assert_non_null(back);
    size_t got[3];
    assert_int_equal(invdl_layer_permutation(invdl_model_layer(back, 0), got), INVDL_OK);
    assert_true(got[0] == 2 && got[1] == 0 && got[2] == 1);
    size_t again;
    unsigned char *saved = to_memory(back, &again);
    assert_int_equal(again, size);
    assert_memory_equal(saved, copy, size);
    free(saved);
    invdl_model_free(back);
    free(copy);
    free(buf);
    invdl_model_free(m);
}

/* A kind the reader does not know is refused before its block is read:
 * how a reader that predates dense_lu meets a file holding one (the
 * version stays 1, so only the kind tells).  Kind 5 renumbered to unknown
 * ones (the next kinds to come, and one far off) stands in for kind 5 at
 * that older reader, whose list of kinds ended at 4 (test_coupling.c does
 * the same for kind 6). */
static void test_unknown_kind(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(3);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(3, 1)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense_lu(3, 1)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size), *copy = malloc(size);
    /* The mprelu block takes 40..71 (16 + 4 + 12), dense_lu's kind is at 72. */
    assert_int_equal(buf[72], INVDL_LAYER_DENSE_LU);
    static const uint32_t kinds[] = {0, 7, 8, 0x00010005u, 0xffffffffu};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        memcpy(copy, buf, size);
        put_u32(copy + 72, kinds[k]);
        fix_crc(copy, size);
        invdl_status st = INVDL_OK;
        assert_null(invdl_model_load_memory(copy, size, &st));
        assert_int_equal(st, INVDL_EFORMAT);
    }
    free(copy);
    free(buf);
    invdl_model_free(m);
}

/* Crafted files with a valid CRC, field by field: settings that no
 * constructor accepts, counts that do not match them, values that are
 * not finite, and the kind number changed to ones this reader does not
 * know (how a reader that predates couplings meets kind 6: its list of
 * kinds ends before it, so the lookup fails the same way) - each
 * INVDL_EFORMAT, nothing built. */
static void test_crafted_coupling(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(3);
    assert_int_equal(invdl_model_add(m, invdl_layer_coupling(3, 2, 0, 1)), INVDL_OK);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    /* Layout (io.c): header 0..39; block at 40: kind 40, S 44 (= 2), V 48
     * (= 2 (2 + 1 + 2) + 2 = 12), hidden 56, flags 60, values 64..111 (W1
     * 64..71, b1 72..79, W2 80..95, b2 96..111); the layer at 112; CRC at
     * 128. */
    assert_int_equal(size, 132);
    assert_int_equal(buf[40], INVDL_LAYER_COUPLING);
    assert_int_equal(buf[44], 2);
    assert_int_equal(buf[48], 12);
    static const struct { size_t offset; uint32_t value; } edits[] = {
        {40, 7},           /* a kind this reader does not know */
        {40, 0},
        {40, 0xffffffffu},
        {44, 1},           /* one setting too few */
        {44, 3},           /* one too many */
        {48, 11},          /* values that do not match the settings */
        {48, 13},
        {56, 0x00000000u}, /* hidden 0 */
        {56, 0xbf800000u}, /* hidden -1 */
        {56, 0x3fc00000u}, /* hidden 1.5 */
        {56, 0x7fc00000u}, /* hidden NaN */
        {56, 0x7f800000u}, /* hidden inf */
        {56, 0x4b800001u}, /* hidden 2^24 + 2: above INVDL_COUPLING_MAX_HIDDEN */
        {56, 0x40400000u}, /* hidden 3: 17 values, not 12 */
        {60, 0x40800000u}, /* flags 4 */
        {60, 0x3f000000u}, /* flags 0.5 */
        {60, 0xbf800000u}, /* flags -1 */
        {60, 0x7fc00000u}, /* flags NaN */
        {60, 0x3f800000u}, /* flags 1 (odd): 1 condition feature, 2 (1 + 1 + 4) + 4 = 16 */
        {64, 0x7fc00000u}, /* NaN in W1 */
        {72, 0x7f800000u}, /* inf in b1 */
        {80, 0xff800000u}, /* -inf in W2 */
        {108, 0x7fc00000u}, /* NaN in b2 */
    };
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++)
        assert_edit_refused(buf, size, copy, edits[e].offset, edits[e].value);
    /* Flags 2 (additive, 2 (2 + 1 + 1) + 1 = 9 values) with V and the
     * values cut to match loads, as an additive layer. */
    memcpy(copy, buf, size);
    put_u32(copy + 60, bits_from_float(2.0f));
    put_u32(copy + 48, 9);
    memmove(copy + 64 + 36, copy + 112, 16);
    size_t cut = size - 12;
    fix_crc(copy, cut);
    invdl_model *additive = invdl_model_load_memory(copy, cut, NULL);
    assert_non_null(additive);
    size_t h;
    unsigned flags;
    assert_int_equal(invdl_layer_coupling_settings(invdl_model_layer(additive, 0), &h, &flags),
                     INVDL_OK);
    assert_true(h == 2 && flags == INVDL_COUPLING_ADDITIVE);
    invdl_model_free(additive);
    /* Width 1: the file's width field, and the model's. */
    assert_edit_refused(buf, size, copy, 16, 1);
    free(copy);
    free(buf);
    invdl_model_free(m);
}

/* The model make_v1_fixture.c wrote to tests/data/v1-model.invdl, built
 * here by today's constructors. */
static invdl_model *make_v1_model(void)
{
    enum { V = 4 };
    invdl_model *m = invdl_model_create(V);
    invdl_layer *d = invdl_layer_dense(V, 1);
    float p[V * V + V];
    assert_int_equal(invdl_layer_get_params(d, V * V + V, p), INVDL_OK);
    for (int i = 0; i < V; i++)
        p[V * V + i] = 0.125f * (float)(i + 1) - 0.25f;
    assert_int_equal(invdl_layer_set_params(d, V * V + V, p), INVDL_OK);
    assert_int_equal(invdl_model_add(m, d), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu_min(V, 2, 0.125f)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_abstanh(V)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_ssin(V)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_dense(V, 3)), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_inverse(invdl_model_layer(m, 1))), INVDL_OK);
    assert_int_equal(invdl_model_add(m, invdl_layer_mprelu(V, 4)), INVDL_OK);
    return m;
}

/* A file written by invdl 0.1.0, before dense_lu and width-dependent
 * settings, loads as the same model (structure, settings, shared blocks,
 * parameters and outputs bit for bit), and saving it gives back its bytes:
 * the format did not move. */
static void test_v1_fixture(void **state)
{
    (void)state;
    const char *data = getenv("INVDL_TEST_DATA");
    assert_non_null(data);
    char path[512];
    snprintf(path, sizeof path, "%s/v1-model.invdl", data);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char file[1024];
    size_t size = fread(file, 1, sizeof file, f);
    fclose(f);
    assert_int_equal(size, 452);
    invdl_status st = INVDL_EIO;
    invdl_model *old = invdl_model_load(path, &st), *now = make_v1_model();
    assert_int_equal(st, INVDL_OK);
    assert_non_null(old);
    enum { V = 4, N = 6 };
    assert_int_equal(invdl_model_width(old), V);
    assert_int_equal(invdl_model_depth(old), invdl_model_depth(now));
    size_t np = invdl_model_param_count(now);
    assert_int_equal(invdl_model_param_count(old), np);
    for (size_t l = 0; l < invdl_model_depth(now); l++) {
        invdl_layer *a = invdl_model_layer(old, l), *b = invdl_model_layer(now, l);
        assert_int_equal(invdl_layer_kind_of(a), invdl_layer_kind_of(b));
        assert_int_equal(invdl_layer_is_inverse(a), invdl_layer_is_inverse(b));
        assert_true(invdl_layer_alpha_min(a) == invdl_layer_alpha_min(b));
        for (size_t k = 0; k < l; k++)
            assert_int_equal(invdl_layer_shares_params(a, invdl_model_layer(old, k)),
                             invdl_layer_shares_params(b, invdl_model_layer(now, k)));
    }
    float *pa = malloc(np * sizeof *pa), *pb = malloc(np * sizeof *pb);
    assert_int_equal(invdl_model_get_params(old, np, pa), INVDL_OK);
    assert_int_equal(invdl_model_get_params(now, np, pb), INVDL_OK);
    assert_memory_equal(pa, pb, np * sizeof *pa);
    free(pa);
    free(pb);
    float x[N * V], ya[N * V], yb[N * V];
    fill(x, N * V, 9);
    for (size_t i = 0; i < N * V; i++)
        x[i] *= 0.5f; /* inside signed sin's branch */
    invdl_status sa = invdl_model_predict(old, N, x, ya);
    assert_int_equal(invdl_model_predict(now, N, x, yb), sa);
    assert_memory_equal(ya, yb, sizeof ya);
    size_t again;
    unsigned char *saved = to_memory(old, &again);
    assert_int_equal(again, size);
    assert_memory_equal(saved, file, size);
    free(saved);
    invdl_model_free(old);
    invdl_model_free(now);
}

static char dir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/invdl-io-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                if (remove(path) != 0)
                    rmdir(path);
            }
        }
        closedir(d);
    }
    return rmdir(dir);
}

static size_t count_entries(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(4096);
    *size = fread(buf, 1, 4096, f);
    fclose(f);
    return buf;
}

static void test_files(void **state)
{
    (void)state;
    char path[128], sub[128];
    snprintf(path, sizeof path, "%s/model.invdl", dir);
    invdl_model *m = sample_model(), *inv = invdl_model_inverse(m);
    assert_int_equal(invdl_model_save(m, path), INVDL_OK);
    invdl_status st = INVDL_EIO;
    invdl_model *back = invdl_model_load(path, &st);
    assert_int_equal(st, INVDL_OK);
    assert_same_model(m, back);
    invdl_model_free(back);

    /* The file is exactly the memory image. */
    size_t fsize, msize;
    unsigned char *fbytes = read_whole(path, &fsize), *mbytes = to_memory(m, &msize);
    assert_int_equal(fsize, msize);
    assert_memory_equal(fbytes, mbytes, msize);
    free(fbytes);
    free(mbytes);

    /* Replacing a file: the new model, no temporary left behind. */
    assert_int_equal(invdl_model_save(inv, path), INVDL_OK);
    back = invdl_model_load(path, &st);
    assert_int_equal(st, INVDL_OK);
    assert_same_model(inv, back);
    invdl_model_free(back);
    assert_int_equal(count_entries(), 1);

    /* Failures: a missing directory, a directory as the target (left
     * intact), a missing file, a directory to load, an empty file. */
    snprintf(sub, sizeof sub, "%s/missing/model.invdl", dir);
    assert_int_equal(invdl_model_save(m, sub), INVDL_EIO);
    assert_null(invdl_model_load(sub, &st));
    assert_int_equal(st, INVDL_EIO);
    snprintf(sub, sizeof sub, "%s/adir", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char inner[160];
    snprintf(inner, sizeof inner, "%s/keep", sub);
    FILE *f = fopen(inner, "w");
    fclose(f);
    assert_int_equal(invdl_model_save(m, sub), INVDL_EIO);
    struct stat info;
    assert_int_equal(stat(inner, &info), 0);
    assert_int_equal(count_entries(), 2);
    assert_null(invdl_model_load(sub, &st));
    assert_int_equal(st, INVDL_EIO);
    assert_int_equal(remove(inner), 0);
    snprintf(sub, sizeof sub, "%s/empty", dir);
    f = fopen(sub, "w");
    fclose(f);
    assert_null(invdl_model_load(sub, &st));
    assert_int_equal(st, INVDL_EFORMAT);
    /* A truncated file on disk. */
    fbytes = read_whole(path, &fsize);
    f = fopen(sub, "wb");
    fwrite(fbytes, 1, fsize / 2, f);
    fclose(f);
    free(fbytes);
    assert_null(invdl_model_load(sub, &st));
    assert_int_equal(st, INVDL_EFORMAT);

    /* Arguments. */
    assert_int_equal(invdl_model_save(NULL, path), INVDL_EINVAL);
    assert_int_equal(invdl_model_save(m, NULL), INVDL_EINVAL);
    assert_null(invdl_model_load(NULL, &st));
    assert_int_equal(st, INVDL_EINVAL);
    assert_null(invdl_model_load_memory(NULL, 10, &st));
    assert_int_equal(st, INVDL_EINVAL);
    size_t need;
    unsigned char small[8] = {0};
    assert_int_equal(invdl_model_save_memory(m, small, sizeof small, &need), INVDL_EINVAL);
    assert_true(need > sizeof small);
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal(small[i], 0);
    assert_int_equal(invdl_model_save_memory(NULL, NULL, 0, &need), INVDL_EINVAL);
    assert_int_equal(invdl_model_save_memory(m, NULL, 0, NULL), INVDL_EINVAL);
    /* The original file is still the inverse model. */
    back = invdl_model_load(path, NULL);
    assert_non_null(back);
    assert_same_model(inv, back);
    invdl_model_free(back);
    invdl_model_free(inv);
    invdl_model_free(m);
}

/* An empty model saves and loads. */
static void test_empty_model(void **state)
{
    (void)state;
    invdl_model *m = invdl_model_create(5);
    size_t size;
    unsigned char *buf = to_memory(m, &size);
    assert_int_equal(size, 44);
    invdl_model *back = invdl_model_load_memory(buf, size, NULL);
    assert_non_null(back);
    assert_int_equal(invdl_model_width(back), 5);
    assert_int_equal(invdl_model_depth(back), 0);
    invdl_model_free(back);
    free(buf);
    invdl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_round_trips),
        cmocka_unit_test(test_shared_blocks),
        cmocka_unit_test(test_every_truncation_and_bit_flip),
        cmocka_unit_test(test_crafted_fields),
        cmocka_unit_test(test_file_widths),
        cmocka_unit_test(test_crafted_dense_lu),
        cmocka_unit_test(test_crafted_coupling),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_v1_fixture),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test_setup_teardown(test_files, setup_dir, teardown_dir),
        cmocka_unit_test(test_empty_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
