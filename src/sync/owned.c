/*
 * The contended path of the owner-checked recursive lock (layout and fast
 * paths in owned.h).
 *
 * First up to `spin` polls with backoff, abandoned early once the waiters
 * bit shows that others have already gone to sleep (the owner is slow).
 * Then sleep: a
 * sleeper first makes sure OWNED_WAITERS is set in the value it sleeps on,
 * and when it finds the lock free it takes it with OWNED_WAITERS set, since
 * other sleepers may remain; the owner's release then wakes the next one.
 */
#include "sync/owned.h"

static bool spin_for(_Atomic uint32_t *w, uint32_t me, uint32_t spin)
{
    if (!weft__spin_pays())
        return false;
    for (uint32_t i = 0, pause = 1; i < spin; i++, weft__backoff(&pause)) {
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (v == 0 && weft__owned_take(w, me))
            return true;
        if (v & OWNED_WAITERS)
            return false;
    }
    return false;
}

static int sleep_for(_Atomic uint32_t *w, uint32_t me, weft__deadline_t deadline)
{
    for (;;) {
        uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
        if (v == 0) {
            if (weft__owned_take(w, me | OWNED_WAITERS))
                return 0;
            continue;
        }
        if (!(v & OWNED_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(w, &v, v | OWNED_WAITERS, memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        if (weft__futex_wait(w, v | OWNED_WAITERS, deadline, false) == -ETIMEDOUT)
            return -ETIMEDOUT;
    }
}

static int contended(_Atomic uint32_t *w, uint32_t me, uint32_t spin, double timeout)
{
    if (timeout == 0)
        return -EAGAIN;
    if (spin_for(w, me, spin))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return sleep_for(w, me, deadline);
}

int weft__owned_acquire_slow(uint32_t *word, uint32_t *count, uint32_t spin, double timeout)
{
    if (isnan(timeout))
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(word);
    uint32_t me = (uint32_t)weft__gettid();
    if ((atomic_load_explicit(w, memory_order_relaxed) & OWNED_TID_MASK) == me) {
        if (*count == UINT32_MAX - 1)
            return -EOVERFLOW;
        (*count)++;
        return 0;
    }
    unsigned flags = timeout < 0 ? 0 : WEFT__TSAN_TRY;
    WEFT__TSAN_PRE_LOCK(word, flags);
    int rc = weft__owned_take(w, me) ? 0 : contended(w, me, spin, timeout);
    WEFT__TSAN_POST_LOCK(word, rc == 0 ? flags : flags | WEFT__TSAN_TRY_FAILED);
    return rc;
}

int weft__owned_release_slow(uint32_t *word, uint32_t *count)
{
    _Atomic uint32_t *w = WEFT__ATOMIC(word);
    if ((atomic_load_explicit(w, memory_order_relaxed) & OWNED_TID_MASK) !=
        (uint32_t)weft__gettid())
        return -EPERM;
    if (*count > 0) {
        (*count)--;
        return 0;
    }
    WEFT__TSAN_PRE_UNLOCK(word);
    if (atomic_exchange_explicit(w, 0, memory_order_release) & OWNED_WAITERS)
        weft__futex_wake(w, 1, false);
    WEFT__TSAN_POST_UNLOCK(word);
    return 0;
}
