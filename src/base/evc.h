/*
 * An eventcount: sleeping until a condition that other threads make true
 * without a lock (an item appears in a lock-free queue, a counter reaches
 * zero), with no lost wake-ups and no system call for the notifier while
 * nobody sleeps. The queues sleep on one per direction; the pool parks its
 * idle workers on one.
 *
 * Two words: `seq`, the futex word, which a notifier bumps when it wakes
 * anyone, and `waiters`, the number of threads registered to sleep.
 *
 *     waiter                                notifier
 *     waiters += 1            (seq_cst)     make the condition true
 *     key = seq                             fence            (seq_cst)
 *     if condition: done                    if waiters:
 *     futex_wait(seq, key)                      seq += 1; futex_wake(seq)
 *
 * Either the notifier sees the registration and bumps seq (then the waiter
 * either read the new key and saw the condition, or its futex_wait finds seq
 * changed and returns), or the waiter's check comes after the notifier's
 * fence in the single order of seq_cst operations and sees the condition.
 *
 * A notifier wakes as many waiters as it made conditions true (one item:
 * one getter). A woken waiter that finds its condition gone again (another
 * thread took the item first) sleeps again, which is right: the item went to
 * someone. A waiter that gives up at its deadline checks once more before it
 * leaves, so a wake-up meant for it is not carried away by its departure.
 */
#ifndef WEFT_SRC_BASE_EVC_H
#define WEFT_SRC_BASE_EVC_H

#include "base/base.h"

typedef struct weft__evc {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
} weft__evc_t;

void weft__evc_wake(weft__evc_t *e, int n);

/* After making a condition true (with a release store or stronger): wake up
 * to n of the threads waiting for it, if there are any. */
static inline void weft__evc_notify(weft__evc_t *e, int n)
{
    weft__fence();
    if (WEFT__UNLIKELY(atomic_load_explicit(&e->waiters, memory_order_relaxed)))
        weft__evc_wake(e, n);
}

/*
 * Wait until attempt(arg) returns anything but -EAGAIN ("not yet"), and
 * return that; -ETIMEDOUT at the deadline. attempt is tried first a few
 * times with backoff (when spinning pays), then around each sleep.
 */
int weft__evc_wait(weft__evc_t *e, int (*attempt)(void *arg), void *arg,
                   weft__deadline_t deadline);

/* How many threads are registered to sleep (for destroy's -EBUSY). */
static inline uint32_t weft__evc_waiters(weft__evc_t *e)
{
    return atomic_load(&e->waiters);
}

#endif /* WEFT_SRC_BASE_EVC_H */
