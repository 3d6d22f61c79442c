/*
 * fault.c - the hooks src/memory.h calls in the fault-injection build.
 */
#include "fault.h"

#include "memory.h"

static size_t requests, fail_at;
static int fail_sticky, triggered, held;
static long live;

void fault_off(void)
{
    requests = fail_at = 0;
    fail_sticky = triggered = held = 0;
}

void fault_fail_nth(size_t k, int sticky)
{
    requests = 0;
    fail_at = k;
    fail_sticky = sticky;
    triggered = 0;
}

void fault_hold(int on)
{
    held = on;
}

size_t fault_requests(void)
{
    return requests;
}

int fault_triggered(void)
{
    return triggered;
}

long fault_live(void)
{
    return live;
}

int invdl_fault_fail(void)
{
    if (held)
        return 0;
    requests++;
    if (fail_at != 0 && (requests == fail_at || (fail_sticky && requests > fail_at))) {
        triggered = 1;
        return 1;
    }
    return 0;
}

void invdl_fault_track(int delta)
{
    live += delta;
}
