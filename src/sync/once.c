/*
 * Once: run a function exactly once.
 *
 * The word is 0 before the call, ONCE_DONE after it, and while the function
 * runs, the runner's owner id (base.h: its thread's, or its task's) shifted
 * left by one (so never ONCE_DONE),
 * with ONCE_WAITERS set once another caller sleeps on it. The first caller
 * swaps 0 for its running value, calls the function and publishes ONCE_DONE
 * with release order; later callers return after one acquire load. Naming
 * the runner lets a recursive call from inside the function report -EDEADLK
 * instead of waiting for itself forever.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define ONCE_DONE    1u
#define ONCE_WAITERS 0x80000000u

int weft_once_init(weft_once_t *once, unsigned flags)
{
    if (!once || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *once = (weft_once_t){0, flags};
    return 0;
}

int weft_once_call(weft_once_t *once, void (*fn)(void *arg), void *arg)
{
    if (!once || !fn)
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&once->state);
    uint32_t v = atomic_load_explicit(w, memory_order_acquire);
    if (WEFT__LIKELY(v == ONCE_DONE) && !WEFT__TSAN_ON())
        return 0; /* under TSan, done is acquired below */
    uint32_t me = weft__owner_id() << 1;
    if (v == 0 && atomic_compare_exchange_strong(w, &v, me)) {
        fn(arg);
        weft__tsan_release(once);
        if (atomic_exchange_explicit(w, ONCE_DONE, memory_order_release) & ONCE_WAITERS)
            weft__unpark(w, INT_MAX, weft__park_flags(WEFT__WAIT_ONCE, once->flags & WEFT_SHARED));
        return 0;
    }
    bool cancelled = false; /* a task waits for the initialisation all the same */
    while (v != ONCE_DONE) {
        if ((v & ~ONCE_WAITERS) == me)
            return -EDEADLK;
        if (!(v & ONCE_WAITERS) && !atomic_compare_exchange_weak(w, &v, v | ONCE_WAITERS))
            continue;
        cancelled |=
            weft__park(w, v | ONCE_WAITERS, WEFT__NEVER,
                       weft__park_flags(WEFT__WAIT_ONCE, once->flags & WEFT_SHARED)) == -ECANCELED;
        v = atomic_load_explicit(w, memory_order_acquire);
    }
    if (cancelled)
        weft__park_recancel();
    weft__tsan_acquire(once);
    return 0;
}
