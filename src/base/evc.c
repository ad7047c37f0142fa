/*
 * The eventcount (design in evc.h): the sleeping side and the wake-ups.
 */
#include "base/evc.h"

#include <limits.h>

void weft__evc_wake_one(weft__evc_t *e)
{
    if (atomic_exchange(&e->pending, 1))
        return; /* another notifier got there first */
    atomic_fetch_add(&e->seq, 1);
    weft__unpark_after_atomic(&e->seq, 1, e->kind);
}

void weft__evc_wake_all(weft__evc_t *e)
{
    atomic_fetch_add(&e->seq, 1);
    weft__unpark_after_atomic(&e->seq, INT_MAX, e->kind);
}

int weft__evc_wait(weft__evc_t *e, int (*attempt)(void *arg), bool (*more)(void *arg), void *arg,
                   weft__deadline_t deadline)
{
    return weft__evc_wait_inline(e, attempt, more, arg, deadline);
}
