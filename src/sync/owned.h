/*
 * The owner-checked recursive lock behind RLock and the critical section.
 *
 * Word layout (32 bits, the futex the waiters sleep on):
 *
 *     bits 0-29  the owner's kernel thread id, 0 when free
 *     bit  31    OWNED_WAITERS: some thread may be asleep waiting
 *
 * Kernel tids fit in 30 bits (pid_max is at most 2^22), and they are unique
 * across the whole system at any moment, which is what lets the same word
 * work between processes and name a dead owner. Beside the word, `count`
 * holds the re-entries beyond the first (0 while held once, and when free),
 * so a plain acquire and release never write it; only the owner touches it.
 *
 * Acquire: if the word already holds our tid this is a re-entry (count + 1).
 * Otherwise a compare-and-swap 0 -> tid; only when that fails does the call
 * leave this header, for weft__owned_contended (owned.c). Release by the
 * owner drops the count; at zero it exchanges the word to 0 and wakes one
 * sleeper if the waiters bit was set.
 *
 * The fast paths are inline so that rlock.c and critsec.c compile them into
 * their public functions: an uncontended acquire is one call, not three.
 */
#ifndef WEFT_SRC_SYNC_OWNED_H
#define WEFT_SRC_SYNC_OWNED_H

#include "sync/sync_int.h"

#define OWNED_WAITERS  0x80000000u
#define OWNED_TID_MASK 0x3fffffffu

/* Everything but the common case, out of line (owned.c): a fresh thread
 * with no cached tid yet, re-entry overflow, contention (spin, then sleep
 * until the word can be taken or the timeout ends), waking a sleeper. */
int weft__owned_acquire_slow(uint32_t *word, uint32_t *count, uint32_t spin, double timeout);
int weft__owned_release_slow(uint32_t *word, uint32_t *count);

static inline bool weft__owned_take(_Atomic uint32_t *w, uint32_t value)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(w, &expected, value, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* The fast paths only handle the common cases and otherwise tail-call the
 * slow ones, so they compile to leaf code without a stack frame. Under TSan
 * everything goes through the slow paths, which carry the annotations. */
static inline int weft__owned_acquire(uint32_t *word, uint32_t *count, uint32_t spin,
                                      double timeout)
{
#ifndef WEFT_TSAN
    _Atomic uint32_t *w = WEFT__ATOMIC(word);
    uint32_t me = (uint32_t)weft__cached_tid;
    if (WEFT__LIKELY(me != 0 && !isnan(timeout))) {
        /* Take it first (the common case); a failed swap returns the word,
         * which tells whether this is a re-entry. */
        uint32_t v = 0;
        if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(w, &v, me, memory_order_acquire,
                                                                 memory_order_relaxed)))
            return 0;
        if ((v & OWNED_TID_MASK) == me && WEFT__LIKELY(*count != UINT32_MAX - 1)) {
            (*count)++;
            return 0;
        }
    }
#endif
    return weft__owned_acquire_slow(word, count, spin, timeout);
}

static inline int weft__owned_release(uint32_t *word, uint32_t *count)
{
#ifndef WEFT_TSAN
    _Atomic uint32_t *w = WEFT__ATOMIC(word);
    uint32_t me = (uint32_t)weft__cached_tid;
    if (WEFT__LIKELY(me != 0 &&
                     (atomic_load_explicit(w, memory_order_relaxed) & OWNED_TID_MASK) == me)) {
        if (*count > 0) {
            (*count)--;
            return 0;
        }
        if (WEFT__UNLIKELY(atomic_exchange_explicit(w, 0, memory_order_release) & OWNED_WAITERS))
            weft__futex_wake(w, 1, false);
        return 0;
    }
#endif
    return weft__owned_release_slow(word, count);
}

/* Python's _release_save / _acquire_restore, for Condition.wait: release
 * however often the lock is held, and later take it back as often. */
static inline int weft__owned_release_save(uint32_t *word, uint32_t *count, uint32_t *saved)
{
    if ((atomic_load_explicit(WEFT__ATOMIC(word), memory_order_relaxed) & OWNED_TID_MASK) !=
        (uint32_t)weft__gettid())
        return -EPERM;
    *saved = *count;
    *count = 0;
    return weft__owned_release_slow(word, count);
}

static inline void weft__owned_acquire_restore(uint32_t *word, uint32_t *count, uint32_t saved)
{
    weft__owned_acquire(word, count, 0, WEFT_FOREVER);
    *count = saved;
}

static inline int weft__owned_is_mine(uint32_t *word)
{
    return (atomic_load_explicit(WEFT__ATOMIC(word), memory_order_relaxed) & OWNED_TID_MASK) ==
           (uint32_t)weft__gettid();
}

static inline int weft__owned_destroy(uint32_t *word)
{
    return atomic_load(WEFT__ATOMIC(word)) ? -EBUSY : 0;
}

#endif /* WEFT_SRC_SYNC_OWNED_H */
