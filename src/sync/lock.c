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
 * Acquire is one compare-and-swap 0 -> 1 when the lock is free, and one more
 * from the value seen when it is free with sleepers counted (one woken and
 * yet to run: on one CPU that lasts until the holder's time slice ends, and
 * the holder takes and releases it all that time). Otherwise the
 * caller polls with backoff (while nobody sleeps: once threads sleep, the
 * holder is slow) and then registers as a sleeper (+4) and sleeps until it
 * can set bit 0, deregistering in the same compare-and-swap that takes the
 * lock. Release clears bit 0 and, if sleepers are registered and none is
 * already on its way (the woken bit, as in Go's sync.Mutex), sets the woken
 * bit and wakes one: an uncontended release makes no system call, and a
 * busy lock makes one wake-up per sleep, not one per release while the woken
 * thread is being scheduled. Every registered sleeper clears the woken bit
 * whenever it acts (takes the lock, goes to sleep, times out), except that
 * one that has not slept yet takes the lock as a newcomer would: clearing it
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
 *
 * The process-shared Lock must name its holder to be robust, and 4 bytes
 * have no room for both a holder and a sleeper count: its word is an owner
 * word (owned.h) with OWNER_MARK always set, naming the holder by id and
 * by the tag of its birth id (no room for all of it either). Since
 * sleepers are fewer than threads (under 2^22), the private count never
 * reaches that bit, and the fast paths, which only ever see 0 and HELD,
 * send every shared-lock call to the slow paths below, which tell the two
 * layouts apart by the mark.
 */
#include "sync/hold.h"
#include "sync/owned.h"

#include <limits.h>

#define HELD    1u
#define WOKEN   2u
#define SLEEPER 4u

int weft_lock_init(weft_lock_t *lock, unsigned flags)
{
    if (!lock || (flags & ~WEFT_SHARED))
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_forget(lock);
    atomic_init(WEFT__ATOMIC(&lock->word), flags & WEFT_SHARED ? OWNER_MARK : 0);
    return 0;
}

/* The owner-word view of a shared Lock. */
static struct weft__owner shared_owner(_Atomic uint32_t *w)
{
    return (struct weft__owner){w, NULL, NULL, NULL, OWNER_MARK, true};
}

static bool is_shared(uint32_t v)
{
    return v & OWNER_MARK;
}

/* Held, in either layout. */
static bool is_held(uint32_t v)
{
    return is_shared(v) ? (v & (OWNER_TID | OWNER_NOTREC)) != 0 : (v & HELD) != 0;
}

int weft_lock_destroy(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    uint32_t v = atomic_load(WEFT__ATOMIC(&lock->word));
    if (is_shared(v) ? v & OWNER_TID : v)
        return -EBUSY;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_forget(lock);
    return 0;
}

/* Set the held bit if it is clear. A sleeper taking the lock also leaves
 * the sleeper count and clears the woken bit (`leave` = SLEEPER | WOKEN);
 * a spinner (`leave` = 0) leaves both alone; a registered thread that has
 * not slept yet (`leave` = SLEEPER) leaves the count and the woken bit, which
 * is another sleeper's, unless it was the last one counted: a woken sleeper
 * stays counted until it acts, so then the bit is nobody's, and left set on
 * a free lock it would make destroy report it busy and every later acquire
 * and release take two atomics. */
static bool take(_Atomic uint32_t *w, uint32_t v, uint32_t leave)
{
    uint32_t next = v - (leave & SLEEPER);
    bool last = (leave & SLEEPER) && next < SLEEPER;
    if ((leave & WOKEN) || last)
        next &= ~WOKEN;
    next |= HELD;
    return !(v & HELD) && atomic_compare_exchange_strong_explicit(w, &v, next, memory_order_acquire,
                                                                  memory_order_relaxed);
}

/* Wake one sleeper unless one is already on its way. */
static void wake_one(_Atomic uint32_t *w, uint32_t v)
{
    while (v >= SLEEPER && !(v & (WOKEN | HELD))) {
        if (atomic_compare_exchange_weak_explicit(w, &v, v | WOKEN, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            weft__unpark(w, 1, WEFT__WAIT_LOCK);
            return;
        }
    }
}

/* Poll for the lock before sleeping. A newcomer (`leave` 0) gives up once
 * others sleep: the holder is slow. A sleeper just woken (`leave` SLEEPER |
 * WOKEN, as for take) keeps polling, leaving the woken bit set meanwhile, so
 * that the holder's releases make no further system calls while it is awake
 * (Go's sync.Mutex lets its woken waiter spin too); sleeping again at once
 * on finding the lock re-taken would cost the holder one wake-up system call
 * per round. */
static bool spin(_Atomic uint32_t *w, uint32_t leave)
{
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_MUTEX); weft__spin_next(&s);) {
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (take(w, v, leave))
            return true;
        if (!leave && v >= SLEEPER)
            return false;
    }
    return false;
}

void (*weft__lock_registered)(weft_lock_t *lock);

/* Until it has slept, a sleeper that finds the lock free takes it as a
 * newcomer would, leaving the woken bit alone: the bit belongs to a sleeper
 * already woken, which will clear it when it runs. Clearing it here cost a
 * wake-up system call per release on one CPU, where nobody polls and every
 * contended acquire comes this way: after each release the holder took the
 * lock again, clearing the bit of the sleeper it had woken, which could not
 * run until the holder's time slice ended, and woke it again at the next
 * release, and the next. */
static int sleep_for(_Atomic uint32_t *w, weft__deadline_t deadline)
{
    uint32_t v = atomic_fetch_add_explicit(w, SLEEPER, memory_order_relaxed) + SLEEPER;
    if (WEFT__UNLIKELY(weft__lock_registered)) {
        weft__lock_registered((weft_lock_t *)w);
        v = atomic_load_explicit(w, memory_order_relaxed);
    }
    uint32_t leave = SLEEPER;
    int rc;
    for (;;) {
        if (take(w, v, leave))
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
        if ((rc = weft__park(w, v & ~WOKEN, deadline, WEFT__WAIT_LOCK)) < 0)
            break;
        leave = SLEEPER | WOKEN;
        if (spin(w, leave))
            return 0;
        v = atomic_load_explicit(w, memory_order_relaxed);
    }
    /* Timed out (or, in a task, cancelled): leave, clear the woken bit (the
     * release's wake-up may have reached us at that moment) and pass the
     * wake-up on. */
    v = atomic_fetch_sub_explicit(w, SLEEPER, memory_order_relaxed) - SLEEPER;
    if (v & WOKEN)
        v = atomic_fetch_and_explicit(w, ~WOKEN, memory_order_relaxed) & ~WOKEN;
    wake_one(w, v);
    return rc;
}

WEFT__NOINLINE static int lock_slow(_Atomic uint32_t *w, uint32_t v, double timeout)
{
    if (is_shared(v)) {
        struct weft__owner o = shared_owner(w);
        return weft__owner_lock(&o, weft__owner_me(), WEFT_CRITSEC_DEFAULT_SPIN, timeout);
    }
    /* Free, with sleepers counted, after the fast path's swaps lost to a
     * change of the word: take it as a newcomer, at once. */
    if (take(w, v, 0))
        return 0;
    if (timeout == 0)
        return -EAGAIN;
    if (spin(w, 0))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return sleep_for(w, deadline);
}

static inline int lock_take(_Atomic uint32_t *w, double timeout)
{
    uint32_t v = 0;
    if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(w, &v, HELD, memory_order_acquire,
                                                             memory_order_relaxed)))
        return 0;
    /* Free with sleepers counted (one woken and yet to run): as quick. */
    if (!(v & (HELD | OWNER_MARK)) &&
        atomic_compare_exchange_strong_explicit(w, &v, v | HELD, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    return lock_slow(w, v, timeout);
}

/* Under ThreadSanitizer: the acquire seen as a hand-off from the release. */
WEFT__NOINLINE static int lock_take_annotated(weft_lock_t *lock, double timeout)
{
    int rc = lock_take(WEFT__ATOMIC(&lock->word), timeout);
    if (rc == 0 || rc == -EOWNERDEAD)
        weft__tsan_acquire(lock);
    return rc;
}

/* The lock itself, without the checker; the caller has checked the input. */
static int lock_acquire(void *lock, double timeout)
{
    if (WEFT__TSAN_ON())
        return lock_take_annotated(lock, timeout);
    return lock_take(WEFT__ATOMIC(&((weft_lock_t *)lock)->word), timeout);
}

int weft_lock_acquire_at(weft_lock_t *lock, double timeout, const weft_site_t *site)
{
    return weft__acquire_entry(lock, WEFT__LD_LOCK, site, timeout, lock_acquire);
}

int(weft_lock_acquire)(weft_lock_t *lock, double timeout)
{
    return weft__acquire_entry(lock, WEFT__LD_LOCK, NULL, timeout, lock_acquire);
}

WEFT__NOINLINE static int unlock_slow(_Atomic uint32_t *w, uint32_t v)
{
    if (is_shared(v)) {
        if (!(v & OWNER_TID))
            return -EPERM; /* free, or unrecoverable: nobody holds it */
        struct weft__owner o = shared_owner(w);
        weft__owner_unlock(&o);
        return 0;
    }
    /* Release and claim the wake-up in one step: once the lock is free, the
     * next holder may release it, destroy it and free its memory (POSIX
     * allows that of a mutex; glibc's bug 13690 was a write after it), so
     * nothing but the futex call may touch the word after this swap. */
    uint32_t next;
    do {
        if (!(v & HELD))
            return -EPERM; /* not held, or another thread released it first */
        next = v & ~HELD;
        if (next >= SLEEPER)
            next |= WOKEN;
    } while (!atomic_compare_exchange_weak_explicit(w, &v, next, memory_order_release,
                                                    memory_order_relaxed));
    if (!(v & WOKEN) && (next & WOKEN))
        weft__unpark(w, 1, WEFT__WAIT_LOCK);
    return 0;
}

static inline int lock_give(weft_lock_t *lock)
{
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    uint32_t v = HELD;
    if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(w, &v, 0, memory_order_release,
                                                             memory_order_relaxed)))
        return 0;
    /* Held with a sleeper already woken: nobody to wake, as quick. */
    if ((v & (HELD | WOKEN | OWNER_MARK)) == (HELD | WOKEN) &&
        atomic_compare_exchange_strong_explicit(w, &v, v & ~HELD, memory_order_release,
                                                memory_order_relaxed))
        return 0;
    return unlock_slow(w, v);
}

WEFT__NOINLINE static int lock_give_annotated(weft_lock_t *lock)
{
    weft__tsan_release(lock);
    return lock_give(lock);
}

static inline int lock_release(weft_lock_t *lock)
{
    if (WEFT__TSAN_ON())
        return lock_give_annotated(lock);
    return lock_give(lock);
}

/* The checker forgets the lock first: once released, another thread may
 * take it at once. */
WEFT__NOINLINE static int lock_release_checked(weft_lock_t *lock)
{
    weft__lockdep_release(lock);
    return lock_release(lock);
}

int weft_lock_release(weft_lock_t *lock)
{
    if (WEFT__UNLIKELY(!lock))
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        return lock_release_checked(lock);
    return lock_release(lock);
}

int weft_lock_locked(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    return is_held(atomic_load_explicit(WEFT__ATOMIC(&lock->word), memory_order_relaxed));
}

int weft_lock_consistent(weft_lock_t *lock)
{
    if (!lock)
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&lock->word);
    uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
    if (!is_shared(v) || !(v & OWNER_DIED))
        return -EINVAL;
    if ((v & (OWNER_TID | OWNER_TAG)) != weft__owner_me())
        return -EPERM;
    atomic_fetch_and_explicit(w, ~OWNER_DIED, memory_order_relaxed);
    return 0;
}

int weft__lock_hold_at(weft_lock_t *lock, const weft_site_t *site)
{
    int rc;
    bool cancelled = false;
    while ((rc = weft_lock_acquire_at(lock, WEFT_FOREVER, site)) == -ECANCELED)
        cancelled = true;
    if (cancelled)
        weft__park_recancel();
    return rc;
}
