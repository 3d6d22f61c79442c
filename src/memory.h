/*
 * memory.h - the one place the library asks for heap memory.
 *
 * Every allocation of the layer, model, trainer and persistence code goes
 * through these functions, so that a test build can make the k-th request
 * fail and check that every caller recovers (returns INVDL_ENOMEM or NULL,
 * frees what it took, leaves existing objects unchanged).
 *
 * Fault injection.  tests/meson.build compiles the library's sources a
 * second time with INVDL_FAULT_INJECTION defined, into a library only the
 * allocation-failure test links.  There every request first asks
 * invdl_fault_fail() whether to fail, and every block obtained or given
 * back is reported to invdl_fault_track(), so the test counts live blocks
 * without a leak checker.  Both hooks live in the test (tests/fault.c),
 * with the counters they need: the library that is built, installed and
 * linked by users has no such hook and no mutable global state.
 */
#ifndef INVDL_MEMORY_H
#define INVDL_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef INVDL_FAULT_INJECTION
/* 1 when this request must fail (tests/fault.c). */
int invdl_fault_fail(void);
/* +1 for a block handed out, -1 for one given back. */
void invdl_fault_track(int delta);
#define INVDL_FAULT_FAIL() invdl_fault_fail()
#define INVDL_FAULT_TRACK(delta) invdl_fault_track(delta)
#else
#define INVDL_FAULT_FAIL() 0
#define INVDL_FAULT_TRACK(delta) ((void)0)
#endif

static inline void *invdl_malloc(size_t size)
{
    if (INVDL_FAULT_FAIL())
        return NULL;
    void *p = malloc(size == 0 ? 1 : size);
    if (p != NULL)
        INVDL_FAULT_TRACK(1);
    return p;
}

static inline void invdl_free(void *p)
{
    if (p != NULL)
        INVDL_FAULT_TRACK(-1);
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
    if (INVDL_FAULT_FAIL())
        return NULL;
    void *q = realloc(p, count * size == 0 ? 1 : count * size);
    if (q != NULL && p == NULL)
        INVDL_FAULT_TRACK(1);
    return q;
}

/* As invdl_alloc_array(), zero-filled. */
static inline void *invdl_calloc_array(size_t count, size_t size)
{
    if (size != 0 && count > (size_t)PTRDIFF_MAX / size)
        return NULL;
    if (INVDL_FAULT_FAIL())
        return NULL;
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (p != NULL)
        INVDL_FAULT_TRACK(1);
    return p;
}

#endif /* INVDL_MEMORY_H */
