/*
 * Lock: Python's threading.Lock in one 32-bit futex word.
 *
 *     bit 0      held
 *     bit 1      woken: a release has woken a sleeper that has not run yet
 *     bits 2-31  how many threads are registered to sleep on the word
 *
 * So 0 is free, 1 is held by a thread with nobody waiting, and 4k + 1 is
 * held with k threads asleep or about to be.
 *
 * Acquire is one compare-and-swap 0 -> 1 when the lock is free. Otherwise the
 * caller polls with backoff (while nobody sleeps: once threads sleep, the
 * holder is slow) and then registers as a sleeper (+2) and sleeps until it
 * can set bit 0, deregistering in the same compare-and-swap that takes the
 * lock. Release clears bit 0 and, if sleepers are registered and none is
 * already on its way (the woken bit, as in Go's sync.Mutex), sets the woken
 * bit and wakes one: an uncontended release makes no system call, and a
 * busy lock makes one wake-up per sleep, not one per release while the woken
 * thread is being scheduled. Every registered sleeper clears the woken bit
 * whenever it acts (takes the lock, goes to sleep, times out): clearing it
 * for another sleeper's wake-up costs at most one extra wake-up, while a
 * bit left set with nobody awake to clear it would stop all wake-ups.
 *
 * Why a count and not the classic "2 = maybe waiters" mark (Drepper's mutex
 * 3): a thread woken from sleep must take that lock with the mark set, since
 * other sleepers may remain, so the mark outlives the sleepers. Every later
 * acquirer then sees "waiters", stops spinning and sleeps, and a hand-off
 * pattern (a condition variable, a barrier) sleeps on every round forever.
 * The count is exact: it drops as each sleeper takes the lock or gives up.
 *
 * A sleeper that times out deregisters and clears the woken bit; if the lock
 * is free then and others still sleep, it wakes one of them, because the
 * release's single wake-up may have gone to it.
 *
 * There is no owner, as in Python: any thread may release a held lock.
 * Releasing a free lock is reported (-EPERM) and changes nothing.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define HELD    1u
#define WOKEN   2u
#define SLEEPER 4u

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

/* Set the held bit if it is clear. A sleeper taking the lock also leaves
 * the sleeper count and clears the woken bit (`leave` = SLEEPER | WOKEN);
 * a spinner (`leave` = 0) leaves both alone. */
static bool take(_Atomic uint32_t *w, uint32_t v, uint32_t leave)
{
    uint32_t next = ((v - (leave & SLEEPER)) & ~(leave & WOKEN)) | HELD;
    return !(v & HELD) && atomic_compare_exchange_strong_explicit(w, &v, next, memory_order_acquire,
                                                                  memory_order_relaxed);
}

/* Wake one sleeper unless one is already on its way. */
static void wake_one(_Atomic uint32_t *w, uint32_t v)
{
    while (v >= SLEEPER && !(v & (WOKEN | HELD))) {
        if (atomic_compare_exchange_weak_explicit(w, &v, v | WOKEN, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            weft__futex_wake(w, 1, false);
            return;
        }
    }
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
        if (take(w, v, SLEEPER | WOKEN))
            return 0;
        if (!(v & HELD)) {
            v = atomic_load_explicit(w, memory_order_relaxed);
            continue;
        }
        /* About to sleep: clear the woken bit first. Its wake-up either
         * reached a sleeper that is awake now, or nobody (every sleeper was
         * still on its way, like us); sleeping with it set would stop the
         * next release from waking anyone. */
        if ((v & WOKEN) && !atomic_compare_exchange_weak_explicit(
                               w, &v, v & ~WOKEN, memory_order_relaxed, memory_order_relaxed))
            continue;
        if (weft__futex_wait(w, v & ~WOKEN, deadline, false) == -ETIMEDOUT)
            break;
        v = atomic_load_explicit(w, memory_order_relaxed);
    }
    /* Timed out: leave, clear the woken bit (the release's wake-up may have
     * reached us at that moment) and pass the wake-up on. */
    v = atomic_fetch_sub_explicit(w, SLEEPER, memory_order_relaxed) - SLEEPER;
    if (v & WOKEN)
        v = atomic_fetch_and_explicit(w, ~WOKEN, memory_order_relaxed) & ~WOKEN;
    wake_one(w, v);
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
        wake_one(w, old & ~HELD);
    }
    return 0;
}

int weft_lock_locked(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    return (int)(atomic_load_explicit(WEFT__ATOMIC(&lock->word), memory_order_relaxed) & HELD);
}
