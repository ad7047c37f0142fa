/*
 * Locks that weft takes for itself: a future's, a queue's, a process's, a
 * pool's. Their holders never wait long, and the code after the acquire
 * counts on holding the lock; so in an async task (weft/async.h) such an
 * acquire is not cancelled: a cancellation that arrives meanwhile is kept
 * for the task's next wait. Returns what weft_lock_acquire does, but never
 * -ECANCELED (0, or -EOWNERDEAD for a shared lock).
 *
 * A free private lock is taken, and one held with nobody waiting given
 * back, with one compare-and-swap inline (the word's layout is lock.c's),
 * when neither the lock-order checker nor ThreadSanitizer needs to see the
 * call; everything else (waiting, waking, a shared lock, whose word always
 * has its mark set) goes the public way.
 */
#ifndef WEFT_SRC_SYNC_HOLD_H
#define WEFT_SRC_SYNC_HOLD_H

#include "sync/sync_int.h"

int weft__lock_hold_at(weft_lock_t *lock, const weft_site_t *site);

static WEFT__INLINE int weft__lock_hold_fast(weft_lock_t *lock, const weft_site_t *site)
{
    uint32_t free = 0;
    if (!WEFT__LOCKDEP_ON() && !WEFT__TSAN_ON() &&
        atomic_compare_exchange_strong_explicit(WEFT__ATOMIC(&lock->word), &free, 1,
                                                memory_order_acquire, memory_order_relaxed))
        return 0;
    return weft__lock_hold_at(lock, site);
}
#define weft__lock_hold(lock) weft__lock_hold_fast((lock), WEFT_SITE)

/* Release a lock the caller holds (weft_lock_release, inline when quick). */
static WEFT__INLINE void weft__lock_drop(weft_lock_t *lock)
{
    uint32_t held = 1;
    if (!WEFT__LOCKDEP_ON() && !WEFT__TSAN_ON() &&
        atomic_compare_exchange_strong_explicit(WEFT__ATOMIC(&lock->word), &held, 0,
                                                memory_order_release, memory_order_relaxed))
        return;
    weft_lock_release(lock);
}

#endif /* WEFT_SRC_SYNC_HOLD_H */
