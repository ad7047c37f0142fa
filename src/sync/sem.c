/*
 * Semaphore and BoundedSemaphore: Python's threading.Semaphore and
 * BoundedSemaphore on one futex word:
 *
 *     bits 0-30  the value (at most 2^31 - 1)
 *     bit  31    SLEEPERS: a waiter may be asleep on the word
 *
 * acquire takes a unit with a compare-and-swap while the value is above 0;
 * at 0 it counts itself in `waiters`, sets SLEEPERS and sleeps while the
 * word is 0 | SLEEPERS. release adds to the value in one compare-and-swap
 * and, if SLEEPERS was set, wakes up to n sleepers, or all of them when it
 * clears the bit: it keeps the bit only while more threads wait than it
 * releases units (musl's rule). A sleeper's mark and the release meet in
 * one word, so no wake-up is lost, and a release nobody waits for makes no
 * system call.
 *
 * Why the mark is in the word: a waiter may destroy and free the semaphore
 * as soon as its acquire returns (POSIX allows it, glibc's bug 12674 was a
 * sem_post that read memory after it), so release must not touch the
 * semaphore after the swap that publishes its units; with the waiters read
 * from a word of their own afterwards, it did. The count of waiters read
 * before the swap only decides whether to keep the bit, and a stale one
 * costs at most a wake-up of everyone.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define VALUE    0x7fffffffu
#define SLEEPERS 0x80000000u

static int init(weft_sem_t *sem, int value, bool bounded, unsigned flags)
{
    if (!sem || value < 0 || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *sem = (weft_sem_t){(uint32_t)value, 0, bounded ? (uint32_t)value : UINT32_MAX, flags};
    return 0;
}

int weft_sem_init(weft_sem_t *sem, int value, unsigned flags)
{
    return init(sem, value, false, flags);
}

int weft_sem_init_bounded(weft_sem_t *sem, int value, unsigned flags)
{
    return init(sem, value, true, flags);
}

int weft_sem_destroy(weft_sem_t *sem)
{
    if (!sem)
        return -EINVAL;
    return atomic_load(WEFT__ATOMIC(&sem->waiters)) ? -EBUSY : 0;
}

static bool try_down(_Atomic uint32_t *value)
{
    uint32_t v = atomic_load_explicit(value, memory_order_relaxed);
    while (v & VALUE)
        if (atomic_compare_exchange_weak_explicit(value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* Mark the word as slept on (it reads 0 units); false if it changed. */
static bool mark_sleeping(_Atomic uint32_t *value)
{
    uint32_t v = 0;
    return atomic_compare_exchange_strong(value, &v, SLEEPERS) || v == SLEEPERS;
}

/* Poll for a unit before sleeping: a partner that answers within
 * microseconds (a ping-pong) then costs neither side a system call, because
 * a releaser only wakes when a waiter has registered. */
static bool spin_down(_Atomic uint32_t *value)
{
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_HANDOFF); weft__spin_next(&s);)
        if (try_down(value))
            return true;
    return false;
}

WEFT__NOINLINE static int sem_wait(weft_sem_t *sem, double timeout)
{
    _Atomic uint32_t *value = WEFT__ATOMIC(&sem->value);
    if (spin_down(value))
        return 0;
    _Atomic uint32_t *waiters = WEFT__ATOMIC(&sem->waiters);
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    atomic_fetch_add(waiters, 1);
    int rc = 0;
    while (!try_down(value)) {
        int parked = mark_sleeping(value)
                         ? weft__park(value, SLEEPERS, deadline,
                                      weft__park_flags(WEFT__WAIT_SEM, sem->flags & WEFT_SHARED))
                         : 0;
        if (parked < 0) {
            rc = weft__park_outcome(parked, parked == -ETIMEDOUT && try_down(value));
            break;
        }
    }
    atomic_fetch_sub(waiters, 1);
    return rc;
}

static inline int sem_take(weft_sem_t *sem, double timeout)
{
    if (try_down(WEFT__ATOMIC(&sem->value)))
        return 0;
    return timeout == 0 ? -EAGAIN : sem_wait(sem, timeout);
}

/* Under ThreadSanitizer: the unit taken as a hand-off from its release. */
WEFT__NOINLINE static int sem_take_annotated(weft_sem_t *sem, double timeout)
{
    int rc = sem_take(sem, timeout);
    if (rc == 0)
        weft__tsan_acquire(sem);
    return rc;
}

int weft_sem_acquire(weft_sem_t *sem, double timeout)
{
    if (WEFT__UNLIKELY(!sem || isnan(timeout)))
        return -EINVAL;
    if (WEFT__TSAN_ON())
        return sem_take_annotated(sem, timeout);
    return sem_take(sem, timeout);
}

int weft_sem_release(weft_sem_t *sem, int n)
{
    if (!sem || n < 1)
        return -EINVAL;
    _Atomic uint32_t *value = WEFT__ATOMIC(&sem->value);
    unsigned flags = weft__park_flags(WEFT__WAIT_SEM, sem->flags & WEFT_SHARED);
    uint32_t max = sem->max == UINT32_MAX ? VALUE : sem->max;
    uint32_t waiting = atomic_load(WEFT__ATOMIC(&sem->waiters));
    uint32_t v = atomic_load_explicit(value, memory_order_relaxed), next;
    weft__tsan_release(sem); /* before the unit can be taken */
    do {
        uint32_t units = v & VALUE;
        if (units > max || (uint32_t)n > max - units)
            return -EOVERFLOW;
        next = units + (uint32_t)n;
        if ((v & SLEEPERS) && waiting > (uint32_t)n)
            next |= SLEEPERS; /* more wait than it releases: they will sleep again */
    } while (!atomic_compare_exchange_weak(value, &v, next));
    /* Nothing of the semaphore is touched from here on but by the futex. */
    if (v & SLEEPERS)
        weft__unpark(value, next & SLEEPERS ? n : INT_MAX, flags);
    return 0;
}

long weft_sem_value(weft_sem_t *sem)
{
    return sem ? (long)(atomic_load(WEFT__ATOMIC(&sem->value)) & VALUE) : -EINVAL;
}
