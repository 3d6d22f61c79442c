/*
 * memory.h - the one place the library asks for heap memory.
 *
 * Every allocation of the layer, model, trainer and persistence code goes
 * through these functions, so that a test build can make the k-th request
 * fail and check that every caller recovers (returns INVDL_ENOMEM or NULL,
 * frees what it took, leaves existing objects unchanged).
 */
#ifndef INVDL_MEMORY_H
#define INVDL_MEMORY_H

#include <stddef.h>
#include <stdlib.h>

static inline void *invdl_malloc(size_t size)
{
    return malloc(size == 0 ? 1 : size);
}

static inline void invdl_free(void *p)
{
    free(p);
}

/* count*size bytes, or NULL when the product overflows or exceeds
 * PTRDIFF_MAX (pointer arithmetic over the whole array must be defined). */
static inline void *invdl_alloc_array(size_t count, size_t size)
{
    if (size != 0 && count > (size_t)PTRDIFF_MAX / size)
        return NULL;
    return invdl_malloc(count * size);
}

/* Resizes p to count*size bytes; NULL (p untouched) on failure. */
static inline void *invdl_realloc_array(void *p, size_t count, size_t size)
{
    if (size != 0 && count > (size_t)PTRDIFF_MAX / size)
        return NULL;
    return realloc(p, count * size == 0 ? 1 : count * size);
}

/* As invdl_alloc_array(), zero-filled. */
static inline void *invdl_calloc_array(size_t count, size_t size)
{
    if (size != 0 && count > (size_t)PTRDIFF_MAX / size)
        return NULL;
    return calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
}

#endif /* INVDL_MEMORY_H */
