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
#include "base/spin.h"

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
 * Poll before registering: the partner (a producer for an empty queue, a
 * consumer for a full one) is usually running on another CPU and about to
 * make the condition true, and looking again costs neither side a system
 * call, where sleeping costs the waiter one and its waker another. The
 * looks come late (WEFT__SPIN_BATCH, spin.h), and that is what makes a
 * queue fast: a consumer that finds the queue empty and looks again at once
 * takes each item the moment it lands, and the two threads then trade the
 * cache lines of every cell and counter item by item; one that looks a few
 * microseconds later finds a batch and takes it while the producer writes
 * further ahead. Measured on a 2-CPU machine (one producer, one consumer, a
 * queue of 1024): polling from the first pause on, 450 ns per item;
 * sleeping at once, 100-140 ns; this schedule, 40-50 ns.
 */
static WEFT__INLINE int weft__evc_spin(int (*attempt)(void *arg), void *arg)
{
    int rc = -EAGAIN;
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_BATCH); rc == -EAGAIN && weft__spin_next(&s);)
        rc = attempt(arg);
    return rc;
}

/* Take the pending wake-up (whoever's it was) before looking again. The
 * fence orders the waiter's stores (its registration, the cleared flag)
 * before the loads of its check, against the notifier's fence. `counted`:
 * the waiter's last store was its count's read-modify-write, which is
 * that fence already where the hardware makes it one (base.h). */
static WEFT__INLINE void weft__evc_clear_pending(weft__evc_t *e, bool counted)
{
    if (atomic_load_explicit(&e->pending, memory_order_relaxed)) {
        atomic_store_explicit(&e->pending, 0, memory_order_relaxed);
        counted = false;
    }
    if (counted)
        weft__fence_after_atomic();
    else
        weft__fence();
}

static WEFT__INLINE int weft__evc_wait_inline(weft__evc_t *e, int (*attempt)(void *arg),
                                              bool (*more)(void *arg), void *arg,
                                              weft__deadline_t deadline)
{
    int rc = weft__evc_spin(attempt, arg);
    if (rc != -EAGAIN)
        return rc;
    atomic_fetch_add(&e->waiters, 1);
    for (bool counted = true;; counted = false) {
        uint32_t key = atomic_load(&e->seq);
        /* Take over any wake-up sent before the key was read: its seq bump
         * is in the key, so it will not end the sleep below, and notifiers
         * that skipped because of it rely on someone clearing `pending`
         * and then checking. (A wake-up sent after the key was read
         * changes seq, and the sleep returns at once.) */
        weft__evc_clear_pending(e, counted);
        if ((rc = attempt(arg)) != -EAGAIN)
            break;
        int parked = weft__park(&e->seq, key, deadline, e->kind);
        if (parked < 0) {
            weft__evc_clear_pending(e, false);
            /* At the deadline, one last look; a cancelled task takes nothing. */
            rc = parked == -ETIMEDOUT && (rc = attempt(arg)) != -EAGAIN ? rc : parked;
            break;
        }
    }
    atomic_fetch_sub(&e->waiters, 1);
    /* A wake-up may have been sent for this thread while it was on its way
     * out, and notifiers since skipped: pass it on if there is more. */
    weft__evc_clear_pending(e, true);
    /* Waiters that register from now on look at the condition themselves:
     * only one counted already needs the wake-up passed on. */
    if (rc == 0 && more && atomic_load_explicit(&e->waiters, memory_order_relaxed) && more(arg))
        weft__evc_notify(e);
    return rc;
}

/*
 * Wait until attempt(arg) returns anything but -EAGAIN ("not yet"), and
 * return that; -ETIMEDOUT at the deadline. attempt is tried first a few
 * times with backoff (when spinning pays), then around each sleep. more(arg),
 * if not NULL, says whether the condition still holds for another thread
 * after this one's success (items left after a get), to pass a wake-up on.
 * weft__evc_wait_inline is the same, for the hottest waits (a queue's get
 * and put): with attempt and more known where it is inlined, they are
 * inlined too.
 */
int weft__evc_wait(weft__evc_t *e, int (*attempt)(void *arg), bool (*more)(void *arg), void *arg,
                   weft__deadline_t deadline);

/* How many threads are registered to sleep (for destroy's -EBUSY). */
static inline uint32_t weft__evc_waiters(weft__evc_t *e)
{
    return atomic_load(&e->waiters);
}

#endif /* WEFT_SRC_BASE_EVC_H */
