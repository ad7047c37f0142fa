/*
 * Semaphore and BoundedSemaphore: Python's threading.Semaphore and
 * BoundedSemaphore on one futex word, the value itself.
 *
 * acquire takes a unit with a compare-and-swap while the value is above 0;
 * at 0 it registers in `waiters` and sleeps while the value reads 0. release
 * adds to the value and then wakes up to n sleepers if `waiters` is non-zero.
 * The two sides form a Dekker pair on (value, waiters), both sequentially
 * consistent: either the releaser sees the registered waiter, or the waiter
 * sees the new value before it sleeps (and the futex re-checks the value
 * inside the kernel), so no wake-up is lost and an uncontended release
 * makes no system call.
 */
#include "sync/sync_int.h"

#include <limits.h>

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
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
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
        if (weft__park(value, 0, deadline,
                       weft__park_flags(WEFT__WAIT_SEM, sem->flags & WEFT_SHARED)) == -ETIMEDOUT) {
            rc = try_down(value) ? 0 : -ETIMEDOUT;
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
    uint32_t max = sem->max == UINT32_MAX ? UINT32_MAX - 1 : sem->max;
    uint32_t v = atomic_load_explicit(value, memory_order_relaxed);
    weft__tsan_release(sem); /* before the unit can be taken */
    do {
        if (v > max || (uint32_t)n > max - v)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(value, &v, v + (uint32_t)n));
    if (atomic_load(WEFT__ATOMIC(&sem->waiters)))
        weft__unpark(value, n, weft__park_flags(WEFT__WAIT_SEM, sem->flags & WEFT_SHARED));
    return 0;
}

long weft_sem_value(weft_sem_t *sem)
{
    return sem ? (long)atomic_load(WEFT__ATOMIC(&sem->value)) : -EINVAL;
}
