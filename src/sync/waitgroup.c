/*
 * WaitGroup, after Go's sync.WaitGroup: a counter of pending work and the
 * futex that wait() sleeps on while it is not zero.
 *
 * add() changes the counter with a compare-and-swap loop that refuses to go
 * below zero (Go panics there; weft reports -EINVAL and changes nothing).
 * The transition to zero wakes all waiters if any registered: (count,
 * waiters) is a Dekker pair, both sides sequentially consistent, so a waiter
 * either sees zero or is seen, and an add that nobody waits for makes no
 * system call.
 */
#include "sync/sync_int.h"

#include <limits.h>

int weft_waitgroup_init(weft_waitgroup_t *wg, unsigned flags)
{
    if (!wg || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *wg = (weft_waitgroup_t){0, 0, flags};
    return 0;
}

int weft_waitgroup_add(weft_waitgroup_t *wg, int n)
{
    if (!wg)
        return -EINVAL;
    _Atomic uint32_t *count = WEFT__ATOMIC(&wg->count);
    uint32_t v = atomic_load(count);
    int64_t next;
    /* Every add, not only the last: each done() hands its work to the
     * waiter, and it must precede the count that lets the waiter go. */
    weft__tsan_release(wg);
    do {
        next = (int64_t)(int32_t)v + n;
        if (next < 0)
            return -EINVAL;
        if (next > INT32_MAX)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(count, &v, (uint32_t)next));
    if (next == 0 && atomic_load(WEFT__ATOMIC(&wg->waiters)))
        weft__unpark(count, INT_MAX, weft__park_flags(WEFT__WAIT_GROUP, wg->flags & WEFT_SHARED));
    return 0;
}

int weft_waitgroup_done(weft_waitgroup_t *wg)
{
    return weft_waitgroup_add(wg, -1);
}

int weft_waitgroup_wait(weft_waitgroup_t *wg, double timeout)
{
    weft__deadline_t deadline;
    if (!wg || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    _Atomic uint32_t *count = WEFT__ATOMIC(&wg->count);
    uint32_t v = atomic_load(count);
    if (v != 0) {
        if (timeout == 0)
            return -EAGAIN;
        atomic_fetch_add(WEFT__ATOMIC(&wg->waiters), 1);
        while ((v = atomic_load(count)) != 0)
            if (weft__park(count, v, deadline,
                           weft__park_flags(WEFT__WAIT_GROUP, wg->flags & WEFT_SHARED)) ==
                -ETIMEDOUT)
                break;
        atomic_fetch_sub(WEFT__ATOMIC(&wg->waiters), 1);
        if (v != 0 && (v = atomic_load(count)) != 0)
            return -ETIMEDOUT;
    }
    weft__tsan_acquire(wg);
    return 0;
}
