/*
 * make_corpus.c - writes the seed corpus of the fuzz harnesses:
 *     build/tests/fuzz/fuzz-make-corpus tests/fuzz/corpus
 * load/:    saved model files (every kind, linked and inverse layers, an
 *           inverse model, an empty model, dense_lu blocks, couplings);
 * kernels/: one input per kernel and direction, data of every mode;
 * models/:  models of several widths and depths, with parameter edits,
 *           raw-bit inputs and training (SGD and Adam, squared error and
 *           the negative log-likelihood, validation data, early stopping
 *           and the schedules).
 * The files are committed; this program documents where they came from.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invdl.h"

static int write_file(const char *dir, const char *name, const void *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        return 0;
    }
    return 1;
}

static int save_model(const char *dir, const char *name, const invdl_model *m)
{
    size_t size;
    if (invdl_model_save_memory(m, NULL, 0, &size) != INVDL_OK)
        return 0;
    unsigned char *buf = malloc(size);
    int ok = buf != NULL && invdl_model_save_memory(m, buf, size, &size) == INVDL_OK &&
             write_file(dir, name, buf, size);
    free(buf);
    return ok;
}

static int add(invdl_model *m, invdl_layer *l)
{
    return invdl_model_add(m, l) == INVDL_OK;
}

static int load_corpus(const char *dir)
{
    int ok = 1;
    invdl_model *m = invdl_model_create(3);
    ok &= add(m, invdl_layer_dense(3, 1)) && add(m, invdl_layer_mprelu_min(3, 2, 0.125f)) &&
          add(m, invdl_layer_abstanh(3)) && add(m, invdl_layer_ssin(3)) &&
          add(m, invdl_layer_inverse(invdl_model_layer(m, 1)));
    invdl_model *inv = invdl_model_inverse(m);
    ok &= inv != NULL && save_model(dir, "every-kind.invdl", m) &&
          save_model(dir, "inverse-model.invdl", inv);
    invdl_model_free(inv);
    invdl_model_free(m);
    m = invdl_model_create(5);
    ok &= m != NULL && save_model(dir, "empty.invdl", m);
    invdl_model_free(m);
    m = invdl_model_create(4);
    ok &= add(m, invdl_layer_dense(4, 9)) && add(m, invdl_layer_mprelu(4, 10)) &&
          add(m, invdl_layer_dense(4, 11)) && save_model(dir, "dense-blocks.invdl", m);
    invdl_model_free(m);
    /* dense_lu: a custom floor, a floored s, its inverse in the model. */
    m = invdl_model_create(5);
    ok &= add(m, invdl_layer_dense_lu_min(5, 12, 0.125f)) && add(m, invdl_layer_abstanh(5)) &&
          add(m, invdl_layer_dense_lu(5, 13));
    if (ok) {
        float p[30];
        invdl_layer *l = invdl_model_layer(m, 0);
        ok &= invdl_layer_get_params(l, 30, p) == INVDL_OK;
        p[20] = 0.0625f; /* s_0, in the floor */
        p[27] = -0.5f;   /* b_2 */
        ok &= invdl_layer_set_params(l, 30, p) == INVDL_OK &&
              add(m, invdl_layer_inverse(invdl_model_layer(m, 0))) &&
              save_model(dir, "dense-lu.invdl", m);
    }
    invdl_model_free(m);
    /* Couplings of every flag, one moved off its start, one linked inverse. */
    m = invdl_model_create(5);
    ok &= add(m, invdl_layer_coupling(5, 6, 0, 14)) &&
          add(m, invdl_layer_coupling(5, 3, INVDL_COUPLING_ODD, 15)) &&
          add(m, invdl_layer_coupling(5, 2, INVDL_COUPLING_ADDITIVE, 16)) &&
          add(m, invdl_layer_coupling(5, 1, INVDL_COUPLING_ODD | INVDL_COUPLING_ADDITIVE, 17));
    if (ok) {
        float p[64];
        invdl_layer *l = invdl_model_layer(m, 0);
        size_t np = invdl_layer_param_count(l);
        ok &= np <= 64 && invdl_layer_get_params(l, np, p) == INVDL_OK;
        for (size_t i = 24; i < np && ok; i++)
            p[i] = 0.0625f * (float)((int)(i % 7) - 3); /* W2, b2 */
        ok &= ok && invdl_layer_set_params(l, np, p) == INVDL_OK &&
              add(m, invdl_layer_inverse(l)) && save_model(dir, "coupling.invdl", m);
    }
    invdl_model_free(m);
    return ok;
}

/* Deterministic filler bytes. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        p[i] = (uint8_t)(s >> 56);
    }
}

static int kernels_corpus(const char *dir)
{
    int ok = 1;
    static uint8_t buf[8 + 520 * 4 + 260 * 4];
    for (int k = 0; k < 7; k++) {
        for (int mode = 0; mode < 4; mode += 3) {
            size_t size = 4 + 64 * 4 + 3;
            fill(buf, sizeof buf, (uint64_t)(k * 16 + mode + 1));
            buf[0] = (uint8_t)k;
            buf[1] = (uint8_t)(k * 0x35 + 3); /* alignments */
            buf[2] = (uint8_t)mode;
            if (k == 4 || k == 5) {
                /* Forward: 2 rows of 260 columns, past the kernel's chunk
                 * of 256 slopes; inverse: 9 rows of 7. */
                buf[3] = (uint8_t)(k == 4 ? 0x80 + 20 : 7);
                buf[4] = (uint8_t)(k == 4 ? 2 : 8);
                buf[5] = (uint8_t)(mode == 3 ? 0x1e : 0x06);
                size = k == 4 ? 7 + 260 * 4 + 520 * 4 : 7 + 7 * 4 + 63 * 4;
            }
            char name[32];
            snprintf(name, sizeof name, "kernel%d-mode%d", k, mode);
            ok &= write_file(dir, name, buf, size);
        }
    }
    return ok;
}

/* The bytes fuzz_models.c reads, written in its order. */
typedef struct encoder {
    uint8_t buf[1024];
    size_t size;
} encoder;

static void u8(encoder *e, unsigned v)
{
    e->buf[e->size++] = (uint8_t)v;
}

static void u32(encoder *e, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        u8(e, (v >> (8 * i)) & 0xffu);
}

/* Layer ops: 0 ssin, 1 abstanh, 2 mprelu (seed, alpha_min choice), 3 dense
 * (seed), 4 dense_lu (seed, s_min choice), 5 coupling (seed, hidden - 1
 * and flags from arg's second and third bytes), 6 the inverse of layer
 * `index`, 7 an inverse-direction layer of kind `arg`. */
static void op(encoder *e, unsigned code, unsigned arg)
{
    u8(e, code);
    switch (code) {
    case 2: u8(e, arg); u8(e, arg >> 8); break;
    case 3: u32(e, arg); break;
    case 4: u32(e, arg & 0xffffu); u8(e, arg >> 16); break;
    case 5: u32(e, arg & 0xffu); u8(e, arg >> 8); u8(e, arg >> 16); break;
    case 6: u8(e, arg); break;
    case 7:
        u8(e, arg);
        if (arg == 2) { u8(e, 7); u8(e, 1); }
        if (arg == 3) u32(e, 99);
        if (arg == 4) { u32(e, 98); u8(e, 1); }
        if (arg == 5) { u32(e, 97); u8(e, 6); u8(e, 1); }
        break;
    default: break;
    }
}

/* An edit of one parameter: how 0 maps raw to [-2, 2], how 1 takes the bits. */
static void edit(encoder *e, unsigned layer, uint32_t index, unsigned how, uint32_t raw)
{
    u8(e, layer);
    u32(e, index);
    u8(e, how);
    u32(e, raw);
}

static void inputs(encoder *e, size_t width, unsigned batch, unsigned mode, uint64_t seed)
{
    u8(e, batch - 1);
    u8(e, mode);
    uint8_t raw[4 * 8 * 8];
    fill(raw, 4 * width * batch, seed);
    for (size_t i = 0; i < 4 * width * batch; i++)
        u8(e, raw[i]);
}

static int models_corpus(const char *dir)
{
    int ok = 1;
    encoder e = {{0}, 0};
    /* Width 8, 12 layers of every kind, a linked inverse and an inverse
     * abs-tanh; inputs in [-1, 1]. */
    u8(&e, 7), u8(&e, 12);
    op(&e, 3, 1), op(&e, 2, 0x0100), op(&e, 3, 2), op(&e, 2, 0x0201), op(&e, 1, 0);
    op(&e, 3, 3), op(&e, 2, 0x0302), op(&e, 6, 1), op(&e, 3, 4), op(&e, 0, 0);
    op(&e, 7, 1), op(&e, 3, 5);
    u8(&e, 0);
    inputs(&e, 8, 8, 0, 11);
    ok &= write_file(dir, "w8-deep", e.buf, e.size);

    /* Width 3: a dense layer and its inverse, PReLU, an inverse signed
     * sin; one W entry edited, one alpha set to NaN (refused). */
    e.size = 0;
    u8(&e, 2), u8(&e, 4);
    op(&e, 3, 7), op(&e, 6, 0), op(&e, 2, 0x0403), op(&e, 7, 0);
    u8(&e, 2);
    edit(&e, 0, 4, 0, 0xa0000000u);
    edit(&e, 2, 1, 1, 0x7fc00000u);
    inputs(&e, 3, 4, 2, 12);
    ok &= write_file(dir, "w3-linked-edited", e.buf, e.size);

    /* Width 1: W set to 0 (singular, refused); raw-bit inputs. */
    e.size = 0;
    u8(&e, 0), u8(&e, 2);
    op(&e, 3, 8), op(&e, 1, 0);
    u8(&e, 1);
    edit(&e, 0, 0, 1, 0);
    inputs(&e, 1, 3, 4, 13);
    ok &= write_file(dir, "w1-singular-raw", e.buf, e.size);

    /* Width 5, trained with memory saving, checkpoints, 2 epochs. */
    e.size = 0;
    u8(&e, 4), u8(&e, 4);
    op(&e, 3, 9), op(&e, 2, 0x0504), op(&e, 1, 0), op(&e, 3, 10);
    u8(&e, 0);
    inputs(&e, 5, 6, 8 | 1, 14);
    u8(&e, 2 | 0x10), u8(&e, 1 | 4 | 8);
    ok &= write_file(dir, "w5-trained-saving", e.buf, e.size);

    /* Width 4, its inverse model trained with Nesterov momentum and
     * clipping. */
    e.size = 0;
    u8(&e, 3), u8(&e, 4);
    op(&e, 3, 11), op(&e, 0, 0), op(&e, 3, 12), op(&e, 2, 0x0605);
    u8(&e, 0);
    inputs(&e, 4, 5, 8, 15);
    u8(&e, 1 | 4 | 8 | 0x20), u8(&e, 0x80 | 3);
    ok &= write_file(dir, "w4-inverse-trained", e.buf, e.size);

    /* Width 2, dense, abs-tanh, dense: a flow trained on the negative
     * log-likelihood with Adam and memory-saving backprop. */
    e.size = 0;
    u8(&e, 1), u8(&e, 3);
    op(&e, 3, 13), op(&e, 1, 0), op(&e, 3, 14);
    u8(&e, 0);
    inputs(&e, 2, 8, 8, 17);
    u8(&e, 2 | 0x10), u8(&e, 3 | 4), u8(&e, 1 | 2);
    ok &= write_file(dir, "w2-flow-nll-adam", e.buf, e.size);

    /* Width 3, signed sin then dense: the image is bounded, so sampling
     * draws again; trained on the negative log-likelihood with SGD,
     * clipped. */
    e.size = 0;
    u8(&e, 2), u8(&e, 2);
    op(&e, 0, 0), op(&e, 3, 15);
    u8(&e, 0);
    inputs(&e, 3, 6, 8 | 1, 18);
    u8(&e, 1 | 0x20), u8(&e, 1), u8(&e, 1);
    ok &= write_file(dir, "w3-ssin-flow-nll", e.buf, e.size);

    /* Width 6, dense_lu layers (the default floor and 1e-30) around
     * PReLU, one inverse-direction dense_lu (floor 0.25), trained with
     * memory saving; inputs in [-2, 2].  The second layer's s_0 = 0 is
     * floored at 1e-30: W singular to any float precision, its inverse
     * huge but defined. */
    e.size = 0;
    u8(&e, 5), u8(&e, 5);
    op(&e, 4, 0x00000021u), op(&e, 2, 0x0705), op(&e, 4, 0x00020022u), op(&e, 7, 4),
        op(&e, 6, 0);
    u8(&e, 1);
    edit(&e, 2, 30, 0, 0x80000000u);
    inputs(&e, 6, 5, 8 | 1, 17);
    u8(&e, 2 | 0x10), u8(&e, 1 | 4);
    ok &= write_file(dir, "w6-dense-lu", e.buf, e.size);

    /* Width 3, dense, PReLU with an alpha set inside its floor (1e-3),
     * dense: trained with validation data, early stopping keeping the
     * best epoch, patience 1, reduce-on-plateau, 4 epochs. */
    e.size = 0;
    u8(&e, 2), u8(&e, 3);
    op(&e, 3, 19), op(&e, 2, 0x0806), op(&e, 3, 20);
    u8(&e, 1);
    edit(&e, 1, 0, 1, 0x3a83126fu);
    inputs(&e, 3, 6, 8, 19);
    u8(&e, 2), u8(&e, 1 | 2), u8(&e, 0), u8(&e, 1 | 2 | 4 | 8 | 0x20 | 0x80);
    ok &= write_file(dir, "w3-trained-control", e.buf, e.size);

    /* Width 2, PReLU and dense_lu, trained with Adam under exponential
     * decay (0.5 per step) and validation data. */
    e.size = 0;
    u8(&e, 1), u8(&e, 2);
    op(&e, 2, 0x0907), op(&e, 4, 0x00000023u);
    u8(&e, 0);
    inputs(&e, 2, 7, 8 | 1, 20);
    u8(&e, 1), u8(&e, 3), u8(&e, 2), u8(&e, 1 | 0x10 | 0x40);
    ok &= write_file(dir, "w2-trained-decay", e.buf, e.size);

    /* Width 4, couplings (hidden 7, even; hidden 13, odd; an
     * inverse-direction additive one) around dense_lu, the first
     * coupling's inverse linked in; a W2 entry and a b1 entry edited off
     * the identity start; trained with memory saving; inputs in [-2, 2]. */
    e.size = 0;
    u8(&e, 3), u8(&e, 5);
    op(&e, 5, 0x000621u), op(&e, 4, 0x00000023u), op(&e, 5, 0x010c24u), op(&e, 7, 5),
        op(&e, 6, 0);
    u8(&e, 2);
    edit(&e, 0, 25, 0, 0xc0000000u);
    edit(&e, 0, 15, 0, 0x30000000u);
    inputs(&e, 4, 6, 8 | 1, 19);
    u8(&e, 2 | 0x10), u8(&e, 1 | 4);
    ok &= write_file(dir, "w4-coupling", e.buf, e.size);

    /* An empty model. */
    e.size = 0;
    u8(&e, 1), u8(&e, 0), u8(&e, 0);
    inputs(&e, 2, 2, 0, 16);
    ok &= write_file(dir, "empty", e.buf, e.size);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (with load/, kernels/, models/)\n", argv[0]);
        return 2;
    }
    char sub[400];
    int ok = 1;
    snprintf(sub, sizeof sub, "%s/load", argv[1]);
    ok &= load_corpus(sub);
    snprintf(sub, sizeof sub, "%s/kernels", argv[1]);
    ok &= kernels_corpus(sub);
    snprintf(sub, sizeof sub, "%s/models", argv[1]);
    ok &= models_corpus(sub);
    return ok ? 0 : 1;
}
