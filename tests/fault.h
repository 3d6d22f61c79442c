/*
 * fault.h - allocation failure on demand, for the library built with
 * INVDL_FAULT_INJECTION (src/memory.h).
 *
 * The counters are plain globals: only single-threaded tests link this,
 * and only against the fault-injection build of the library.
 */
#ifndef INVDL_TEST_FAULT_H
#define INVDL_TEST_FAULT_H

#include <stddef.h>

/* No failures from now on; the request count restarts at 0. */
void fault_off(void);

/* The k-th request from now (k >= 1) fails, and with `sticky` every later
 * one too. */
void fault_fail_nth(size_t k, int sticky);

/* While held (on != 0) requests neither fail nor count: for the checks a
 * test makes between the calls under test. */
void fault_hold(int on);

/* Requests since fault_off() or fault_fail_nth(). */
size_t fault_requests(void);

/* Whether a request failed since then. */
int fault_triggered(void);

/* Blocks the library holds now. */
long fault_live(void);

#endif /* INVDL_TEST_FAULT_H */
