/*
 * fuzz.h - what the harnesses share: the libFuzzer entry point, a reader
 * of the fuzzer's bytes, and the check that ends the run on a broken
 * invariant.
 *
 * Each harness defines LLVMFuzzerTestOneInput().  Built with clang's
 * -fsanitize=fuzzer it is a libFuzzer target; linked with replay.c it is a
 * plain program that runs the inputs named on its command line (the seed
 * corpus in tests/fuzz/corpus/, as a unit test).
 */
#ifndef INVDL_FUZZ_H
#define INVDL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line on what the inputs so far exercised, or NULL: the replay driver
 * prints it. */
const char *fuzz_summary(void);

/* A broken invariant: say which, and abort so that libFuzzer keeps the
 * input (and the replay test fails). */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* The fuzzer's bytes, taken from the front; zeros once they run out. */
typedef struct fuzz_bytes {
    const uint8_t *p;
    size_t left;
} fuzz_bytes;

static inline uint8_t take_u8(fuzz_bytes *b)
{
    if (b->left == 0)
        return 0;
    b->left--;
    return *b->p++;
}

static inline uint32_t take_u32(fuzz_bytes *b)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)take_u8(b) << (8 * i);
    return v;
}

static inline float float_of_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t bits_of_float(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Equal bit for bit, or both NaN (payloads may differ between paths). */
static inline int same_float(float a, float b)
{
    return bits_of_float(a) == bits_of_float(b) || (a != a && b != b);
}

#endif /* INVDL_FUZZ_H */
