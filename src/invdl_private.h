/*
 * invdl_private.h - what the library's source files share and users do not
 * see.
 */
#ifndef INVDL_PRIVATE_H
#define INVDL_PRIVATE_H

#include "invdl.h"

#include <stddef.h>
#include <stdint.h>

/* The most floats one array can hold: byte counts must fit in ptrdiff_t so
 * that pointer arithmetic over the whole array is defined. */
#define INVDL_MAX_ELEMS ((size_t)PTRDIFF_MAX / sizeof(float))

/* Validates a kernel's array arguments: nonzero n needs both pointers, and n
 * floats must be addressable. */
static inline int invdl_bad_arrays(size_t n, const void *in, const void *out)
{
    return n > INVDL_MAX_ELEMS || (n > 0 && (in == NULL || out == NULL));
}

/* Whether no layer or model can have this width (invdl.h,
 * INVDL_MAX_WIDTH). */
static inline int invdl_bad_width(size_t width)
{
    return width == 0 || width > INVDL_MAX_WIDTH;
}

/* rows*cols without overflow; returns 0 on overflow or too many floats. */
static inline int invdl_mul_size(size_t rows, size_t cols, size_t *n)
{
    if (cols != 0 && rows > INVDL_MAX_ELEMS / cols)
        return 0;
    *n = rows * cols;
    return 1;
}

#endif /* INVDL_PRIVATE_H */
