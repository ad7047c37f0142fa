/*
 * An eventcount: sleeping until a condition that other threads make true
 * without a lock (an item appears in a lock-free queue, a counter reaches
 * zero), with no lost wake-ups and no system call for the notifier while
 * nobody sleeps. The queues sleep on one per direction; the pool parks its
 * idle workers on one.
 *
 * Three words: `seq`, the futex word, which a notifier bumps when it wakes
 * anyone; `waiters`, the number of threads registered to sleep; `pending`,
 * set while a wake-up is on its way and no waiter has taken it yet.
 *
 *     waiter                                notifier
 *     waiters += 1                          make the condition true
 *     loop:                                 fence
 *       key = seq                           if waiters && !pending:
 *       pending = 0; fence                      pending = 1
 *       if condition: done                      seq += 1; futex_wake(seq, 1)
 *       futex_wait(seq, key)
 *
 * No lost wake-up: either the notifier sees the registration, or the
 * waiter's check comes after the notifier's fence and sees the condition
 * (each side stores, fences, then loads what the other stored). A waiter
 * that reads its key after the bump sees the condition; one that read it
 * before finds seq changed and does not sleep.
 *
 * No wake-up storm: a thread woken from the kernel takes microseconds to
 * run, and stays registered meanwhile; without `pending` every notifier in
 * that window (a producer putting item after item) would make a futex
 * system call of its own. With it they skip, and the woken thread, once it
 * has what it waited for, passes the wake-up on if more is there (the
 * `more` callback) and anyone still sleeps: Java's LinkedBlockingQueue
 * cascades its signals the same way. Skipping is safe because whoever
 * clears `pending` (a waiter that woke, timed out or left) fences and then
 * checks the condition or `more`, so a notification that found `pending`
 * set is seen by the thread that clears it. A waiter clears it after
 * reading its key, every time round: a wake-up sent before that read is
 * already counted in the key, so it will not end the coming sleep, and a
 * flag it left set would make every later notifier skip while the waiter
 * sleeps on. (Two hangs came from flags that outlived the check meant to
 * consume them: one set for a waiter already leaving, one set just before
 * a waiter read its key; the stress tests in test_queue and test_pool
 * reproduce both.)
 *
 * Broadcasts (shutdown, the last task done) bypass `pending` and wake all.
 */
#ifndef WEFT_SRC_BASE_EVC_H
#define WEFT_SRC_BASE_EVC_H

#include "base/park.h"

typedef struct weft__evc {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    _Atomic uint32_t pending;
    uint32_t kind; /* what its waits are for: a WEFT__WAIT_ kind (park.h) */
} weft__evc_t;

/* An eventcount for waits of `kind`, in memory that was zeroed. */
static inline void weft__evc_init(weft__evc_t *e, uint32_t kind)
{
    e->kind = kind;
}

void weft__evc_wake_one(weft__evc_t *e);
void weft__evc_wake_all(weft__evc_t *e);

/* After making a condition true for one thread (one item put): wake one
 * sleeper, unless a wake-up is already on its way or nobody sleeps. */
static inline void weft__evc_notify(weft__evc_t *e)
{
    weft__fence();
    if (WEFT__UNLIKELY(atomic_load_explicit(&e->waiters, memory_order_relaxed)) &&
        !atomic_load_explicit(&e->pending, memory_order_relaxed))
        weft__evc_wake_one(e);
}

/* After making a condition true for every thread (shutdown): wake all. */
static inline void weft__evc_notify_all(weft__evc_t *e)
{
    weft__fence();
    if (WEFT__UNLIKELY(atomic_load_explicit(&e->waiters, memory_order_relaxed)))
        weft__evc_wake_all(e);
}

/*
 * Wait until attempt(arg) returns anything but -EAGAIN ("not yet"), and
 * return that; -ETIMEDOUT at the deadline. attempt is tried first a few
 * times with backoff (when spinning pays), then around each sleep. more(arg),
 * if not NULL, says whether the condition still holds for another thread
 * after this one's success (items left after a get), to pass a wake-up on.
 */
int weft__evc_wait(weft__evc_t *e, int (*attempt)(void *arg), bool (*more)(void *arg), void *arg,
                   weft__deadline_t deadline);

/* How many threads are registered to sleep (for destroy's -EBUSY). */
static inline uint32_t weft__evc_waiters(weft__evc_t *e)
{
    return atomic_load(&e->waiters);
}

#endif /* WEFT_SRC_BASE_EVC_H */
