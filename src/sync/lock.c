/*
 * Lock: Python's threading.Lock in one 32-bit futex word.
 *
 *     0  free
 *     1  held, nobody asleep on it
 *     2  held, and some thread may be asleep on it
 *
 * Acquire is one compare-and-swap 0 -> 1 when the lock is free. Otherwise the
 * caller spins a bounded number of times (only while the word is 1: a 2
 * means others already gave up spinning, so the holder is slow) and then
 * sleeps. A sleeper always sets the word to 2 with an exchange before it
 * sleeps, and takes the lock with that same exchange when it returns 0, so
 * the word says "maybe waiters" whenever anyone might sleep (Drepper's
 * "Futexes Are Tricky", mutex 3). Release is an exchange to 0 and a wake only
 * when the old value was 2: an uncontended release makes no system call.
 *
 * There is no owner, as in Python: any thread may release a held lock.
 * Releasing a free lock is reported (-EPERM) and changes nothing, because the
 * exchange stores 0 over 0.
 *
 * Spinning pays when the holder runs on another CPU and holds the lock
 * briefly; it is skipped when the process may use only one CPU.
 */
#include "sync/sync_int.h"

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

static bool try_take(_Atomic uint32_t *w)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(w, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

WEFT__NOINLINE static int lock_slow(_Atomic uint32_t *w, double timeout)
{
    if (timeout == 0)
        return -EAGAIN;
    if (weft__spin_take(w, SPIN_POLLS, 1, 2))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    while (atomic_exchange_explicit(w, 2, memory_order_acquire) != 0)
        if (weft__futex_wait(w, 2, deadline, false) == -ETIMEDOUT)
            return -ETIMEDOUT;
    return 0;
}

int weft_lock_acquire(weft_lock_t *lock, double timeout)
{
    if (WEFT__UNLIKELY(!lock || isnan(timeout)))
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    if (WEFT__LIKELY(try_take(w)) || lock_slow(w, timeout) == 0) {
        WEFT__TSAN_ACQUIRE(lock);
        return 0;
    }
    return timeout == 0 ? -EAGAIN : -ETIMEDOUT;
}

int weft_lock_release(weft_lock_t *lock)
{
    if (WEFT__UNLIKELY(!lock))
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    WEFT__TSAN_RELEASE(lock);
    uint32_t old = atomic_exchange_explicit(w, 0, memory_order_release);
    if (WEFT__UNLIKELY(old != 1)) {
        if (old == 0)
            return -EPERM;
        weft__futex_wake(w, 1, false);
    }
    return 0;
}

int weft_lock_locked(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    return atomic_load_explicit(WEFT__ATOMIC(&lock->word), memory_order_relaxed) != 0;
}
