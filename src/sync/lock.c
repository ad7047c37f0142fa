/*
 * Lock: Python's threading.Lock in one 32-bit futex word.
 *
 *     bit 0      held
 *     bits 1-31  how many threads are registered to sleep on the word
 *
 * So 0 is free, 1 is held by a thread with nobody waiting, and 2k + 1 is
 * held with k threads asleep or about to be.
 *
 * Acquire is one compare-and-swap 0 -> 1 when the lock is free. Otherwise the
 * caller polls with backoff (while nobody sleeps: once threads sleep, the
 * holder is slow) and then registers as a sleeper (+2) and sleeps until it
 * can set bit 0, deregistering in the same compare-and-swap that takes the
 * lock. Release clears bit 0 and wakes one sleeper if any is registered, so
 * an uncontended release makes no system call.
 *
 * Why a count and not the classic "2 = maybe waiters" mark (Drepper's mutex
 * 3): a thread woken from sleep must take that lock with the mark set, since
 * other sleepers may remain, so the mark outlives the sleepers. Every later
 * acquirer then sees "waiters", stops spinning and sleeps, and a hand-off
 * pattern (a condition variable, a barrier) sleeps on every round forever.
 * The count is exact: it drops as each sleeper takes the lock or gives up.
 *
 * A sleeper that times out deregisters; if the lock is free then and others
 * still sleep, it wakes one of them, because the release's single wake-up
 * may have gone to it.
 *
 * There is no owner, as in Python: any thread may release a held lock.
 * Releasing a free lock is reported (-EPERM) and changes nothing.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define HELD    1u
#define SLEEPER 2u

int weft_lock_init(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    atomic_init(WEFT__ATOMIC(&lock->word), 0);
    return 0;
}

int weft_lock_destroy(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    return atomic_load(WEFT__ATOMIC(&lock->word)) ? -EBUSY : 0;
}

/* Set the held bit if it is clear, keeping the sleeper count (minus `leave`,
 * for a sleeper taking the lock). */
static bool take(_Atomic uint32_t *w, uint32_t v, uint32_t leave)
{
    return !(v & HELD) &&
           atomic_compare_exchange_strong_explicit(w, &v, (v - leave) | HELD, memory_order_acquire,
                                                   memory_order_relaxed);
}

static bool spin(_Atomic uint32_t *w)
{
    if (!weft__spin_pays())
        return false;
    for (uint32_t i = 0, pause = 1; i < SPIN_POLLS; i++, weft__backoff(&pause)) {
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (take(w, v, 0))
            return true;
        if (v >= SLEEPER)
            return false;
    }
    return false;
}

static int sleep_for(_Atomic uint32_t *w, weft__deadline_t deadline)
{
    uint32_t v = atomic_fetch_add_explicit(w, SLEEPER, memory_order_relaxed) + SLEEPER;
    for (;;) {
        if (take(w, v, SLEEPER))
            return 0;
        if (v & HELD) {
            if (weft__futex_wait(w, v, deadline, false) == -ETIMEDOUT)
                break;
        }
        v = atomic_load_explicit(w, memory_order_relaxed);
    }
    v = atomic_fetch_sub_explicit(w, SLEEPER, memory_order_relaxed) - SLEEPER;
    if (!(v & HELD) && v >= SLEEPER)
        weft__futex_wake(w, 1, false);
    return -ETIMEDOUT;
}

WEFT__NOINLINE static int lock_slow(_Atomic uint32_t *w, double timeout)
{
    if (timeout == 0)
        return -EAGAIN;
    if (spin(w))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return sleep_for(w, deadline);
}

int weft_lock_acquire(weft_lock_t *lock, double timeout)
{
    if (WEFT__UNLIKELY(!lock || isnan(timeout)))
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    uint32_t expected = 0;
    int rc = WEFT__LIKELY(atomic_compare_exchange_strong_explicit(
                 w, &expected, HELD, memory_order_acquire, memory_order_relaxed))
                 ? 0
                 : lock_slow(w, timeout);
    if (rc == 0)
        WEFT__TSAN_ACQUIRE(lock);
    return rc;
}

int weft_lock_release(weft_lock_t *lock)
{
    if (WEFT__UNLIKELY(!lock))
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    WEFT__TSAN_RELEASE(lock);
    uint32_t old = atomic_fetch_and_explicit(w, ~HELD, memory_order_release);
    if (WEFT__UNLIKELY(old != HELD)) {
        if (!(old & HELD))
            return -EPERM;
        weft__futex_wake(w, 1, false);
    }
    return 0;
}

int weft_lock_locked(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    return (int)(atomic_load_explicit(WEFT__ATOMIC(&lock->word), memory_order_relaxed) & HELD);
}
