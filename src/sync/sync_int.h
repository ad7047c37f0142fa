/*
 * Internal helpers for the sync layer: access to the words of the public
 * structs as C11 atomics, the lock-order checker's entry points and the
 * bounded spin.
 *
 * The public structs hold plain uint32_t words so that the headers stay
 * valid C++ and C without <stdatomic.h>; here they are viewed as
 * _Atomic uint32_t, which has the same size and alignment (checked below).
 *
 * Every primitive annotates its hand-offs for ThreadSanitizer (base/tsan.h):
 * Lock (releasable by any thread, as in Python) and the hand-off primitives
 * as happens-before edges, the owner-checked locks as real mutexes.
 */
#ifndef WEFT_SRC_SYNC_INT_H
#define WEFT_SRC_SYNC_INT_H

#include "base/park.h"
#include "base/spin.h"
#include "base/tsan.h"
#include <weft/sync.h>

#include <math.h>

/* TSan's mutex annotations around an acquire that may wait (begin returns
 * what end needs). In an async task the wait switches fibers, and TSan
 * ignores synchronisation between pre_lock and post_lock, fiber switches
 * included; so a task annotates its acquire only once it has the lock,
 * both calls together. */
static inline bool weft__tsan_lock_begin(const void *m, unsigned flags)
{
    bool bracket = !weft__parker;
    if (bracket)
        weft__tsan_pre_lock(m, flags);
    return bracket;
}

static inline void weft__tsan_lock_end(const void *m, unsigned flags, bool bracket, bool got)
{
    if (!bracket) {
        if (!got)
            return;
        weft__tsan_pre_lock(m, flags);
    }
    weft__tsan_post_lock(m, got ? flags : flags | WEFT__TSAN_TRY_FAILED);
}

_Static_assert(sizeof(_Atomic uint32_t) == sizeof(uint32_t) &&
                   _Alignof(_Atomic uint32_t) == _Alignof(uint32_t),
               "sync words are viewed as atomics");

#define WEFT__ATOMIC(p) ((_Atomic uint32_t *)(p))

_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t) &&
                   _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
               "birth ids are viewed as atomics");
#define WEFT__ATOMIC64(p) ((_Atomic uint64_t *)(p))

/*
 * The lock-order checker (lockdep.c). Every lock operation tests
 * WEFT__LOCKDEP_ON() once; when it is on, acquires go through
 * weft__lockdep_acquire, which checks, calls `acquire` and records the
 * lock as held (its input already checked by weft__acquire_entry, NaN
 * timeouts refused), and releases call weft__lockdep_release.
 */
enum { WEFT__LD_LOCK, WEFT__LD_RECURSIVE, WEFT__LD_READ, WEFT__LD_WRITE };
extern int weft__lockdep_on;
#define WEFT__LOCKDEP_ON() WEFT__UNLIKELY(__atomic_load_n(&weft__lockdep_on, __ATOMIC_RELAXED))
int weft__lockdep_acquire(void *lock, int kind, const weft_site_t *site, double timeout,
                          int (*acquire)(void *lock, double timeout));
void weft__lockdep_release(const void *lock);
/* The lock at this address is new (init) or gone (destroy). */
void weft__lockdep_forget(const void *lock);

/* The common entry of every acquire: check the input, then take the lock
 * through the checker or directly. Inlined with a constant `acquire`, it
 * compiles into each public function with the lock's own fast path. */
static inline int weft__acquire_entry(void *lock, int kind, const weft_site_t *site, double timeout,
                                      int (*acquire)(void *lock, double timeout))
{
    if (WEFT__UNLIKELY(!lock || isnan(timeout)))
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        return weft__lockdep_acquire(lock, kind, site, timeout, acquire);
    return acquire(lock, timeout);
}

/* Test hook: called by a Lock acquirer just after it has registered as a
 * sleeper, before it first looks at the word again, so a test can change
 * the word in that window; NULL (the default) outside tests. */
extern void (*weft__lock_registered)(weft_lock_t *lock);

#endif /* WEFT_SRC_SYNC_INT_H */
