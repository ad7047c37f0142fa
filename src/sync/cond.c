/*
 * Condition: Python's threading.Condition, without lost wake-ups, stolen
 * signals or spurious returns.
 *
 * Wake protocol. Counters, all changed under the bound lock except where
 * said:
 *
 *     seq       the futex sleepers wait on; every notify that grants
 *               wake-ups increments it
 *     waiters   threads inside wait() that no notify has counted yet
 *     tokens    wake-ups granted by notifies and not yet taken; a waiter
 *               takes one with a compare-and-swap, without the lock
 *     arrivals  the next ticket: each waiter takes one on entry
 *     limit     the arrivals count at the last notify that granted: only a
 *               waiter whose ticket is below it may take a token
 *
 * wait:   ticket = arrivals++; waiters++; release the lock;
 *         loop { s = seq; if ticket < limit and a token is taken -> done;
 *                sleep while seq == s (until the deadline) };
 *         re-acquire the lock; if no token was taken: take one now if
 *         eligible and any is left, else waiters-- and report the timeout.
 * notify(n): g = min(n, waiters); waiters -= g; limit = arrivals;
 *         tokens += g; seq++; wake g sleepers.
 *
 * Why it holds. waiters + tokens always equals the number of threads inside
 * wait() that have not returned: entering adds one waiter, notify moves
 * waiters to tokens, and each thread leaves by taking a token or, timed out
 * with none left, by removing itself from waiters. So notify(n) lets exactly
 * min(n, waiting) threads return notified: no extra returns (CPython's tests
 * count on that) and no spurious ones, because a waiter only returns 0 with
 * a token in hand. No wake-up is lost: a waiter reads seq before it looks for
 * a token, so a notify that lands after the look changes seq and the futex
 * sleep returns at once. No signal is stolen: the ticket limit keeps a thread
 * that began waiting after a notify from taking what that notify granted (a
 * notifier that goes on to wait itself would otherwise take the wake-up it
 * just gave, and leave the thread it meant to wake asleep); a later notify,
 * which counts the newcomer, lifts the limit over it. The futex wake reaches
 * only threads asleep when the notify ran, all of them eligible. A waiter
 * that times out after a notify counted it takes a token when it gets the
 * lock back: Python likewise counts a waiter notified if the notify came
 * before the waiter left.
 *
 * Sleeping is the last resort: a waiter first polls for its token with
 * backoff for about the cost of a sleep and a wake-up, and counts itself in
 * `sleepers` only when it goes to sleep; notify calls the kernel only when
 * that count is non-zero. (sleepers, seq) is a Dekker pair, both sides
 * sequentially consistent: a waiter registers and then sleeps on the seq it
 * read before registering, a notifier bumps seq and then reads sleepers, so
 * either the notifier sees the sleeper or the sleeper's futex wait sees the
 * new seq and returns at once.
 *
 * The lock is referred to by its offset from the condition, not a pointer, so
 * that a condition and its lock in memory shared between processes work
 * wherever each process maps it.
 */
#include "sync/hold.h"
#include "sync/owned.h"

#include <limits.h>

/* `kind`: which lock, plus KIND_SHARED for a process-shared condition. */
enum { BOUND_OWN, BOUND_LOCK, BOUND_RLOCK, KIND_SHARED = 0x100 };

static uint32_t kind(const weft_cond_t *c)
{
    return c->kind & ~(uint32_t)KIND_SHARED;
}

static bool shared(const weft_cond_t *c)
{
    return c->kind & KIND_SHARED;
}

static void *bound(weft_cond_t *c)
{
    return kind(c) == BOUND_OWN ? (void *)&c->own : (void *)((char *)c + c->lock);
}

static int bind(weft_cond_t *c, uint32_t k, void *lock, unsigned flags)
{
    *c = (weft_cond_t)WEFT_COND_INIT;
    c->kind = k | (flags & WEFT_SHARED ? KIND_SHARED : 0);
    c->lock = k == BOUND_OWN ? 0 : (intptr_t)((char *)lock - (char *)c);
    return k == BOUND_OWN ? weft_rlock_init(&c->own, flags) : 0;
}

int weft_cond_init(weft_cond_t *cond, weft_lock_t *lock, unsigned flags)
{
    if (!cond || (flags & ~WEFT_SHARED))
        return -EINVAL;
    /* A shared condition needs a shared lock, and a shared lock (which has
     * the owner mark in its word, even when free) a shared condition. */
    if (lock && !(atomic_load(WEFT__ATOMIC(&lock->word)) & OWNER_MARK) != !(flags & WEFT_SHARED))
        return -EINVAL;
    return bind(cond, lock ? BOUND_LOCK : BOUND_OWN, lock, flags);
}

int weft_cond_init_rlock(weft_cond_t *cond, weft_rlock_t *rlock, unsigned flags)
{
    if (!cond || !rlock || (flags & ~WEFT_SHARED) ||
        (__atomic_load_n(&rlock->flags, __ATOMIC_RELAXED) & WEFT_SHARED) != (flags & WEFT_SHARED))
        return -EINVAL;
    return bind(cond, BOUND_RLOCK, rlock, flags);
}

int weft_cond_destroy(weft_cond_t *cond)
{
    if (!cond)
        return -EINVAL;
    return atomic_load(WEFT__ATOMIC(&cond->waiters)) || atomic_load(WEFT__ATOMIC(&cond->tokens))
               ? -EBUSY
               : 0;
}

int weft_cond_acquire_at(weft_cond_t *cond, double timeout, const weft_site_t *site)
{
    if (!cond)
        return -EINVAL;
    return kind(cond) == BOUND_LOCK ? weft_lock_acquire_at(bound(cond), timeout, site)
                                    : weft_rlock_acquire_at(bound(cond), timeout, site);
}

int(weft_cond_acquire)(weft_cond_t *cond, double timeout)
{
    return weft_cond_acquire_at(cond, timeout, NULL);
}

int weft_cond_release(weft_cond_t *cond)
{
    if (!cond)
        return -EINVAL;
    return kind(cond) == BOUND_LOCK ? weft_lock_release(bound(cond))
                                    : weft_rlock_release(bound(cond));
}

/* Whether the caller holds the bound lock, as far as that can be known: a
 * plain Lock has no owner, so only "nobody holds it" is detectable. */
static bool held(weft_cond_t *c)
{
    if (kind(c) == BOUND_LOCK)
        return weft_lock_locked(bound(c)) == 1;
    return weft__owned_is_mine(bound(c));
}

static void release_lock(weft_cond_t *c, uint32_t *saved)
{
    if (kind(c) == BOUND_LOCK)
        weft_lock_release(bound(c));
    else
        weft__owned_release_save(bound(c), saved);
}

/* 0, or for a shared lock -EOWNERDEAD / -ENOTRECOVERABLE. */
/* The lock is taken back whatever happens (Python's asyncio.Condition
 * too): a task cancelled meanwhile waits on, and learns of it at once. */
static int reacquire_lock(weft_cond_t *c, uint32_t saved)
{
    int rc;
    bool cancelled = false;
    while ((rc = kind(c) == BOUND_LOCK
                     ? weft__lock_hold(bound(c))
                     : weft__owned_acquire_restore(bound(c), saved)) == -ECANCELED)
        cancelled = true;
    if (cancelled)
        weft__park_recancel();
    return rc;
}

/* Take a granted wake-up, if the ticket is old enough to be granted one. */
static bool take_token(weft_cond_t *c, uint32_t ticket)
{
    uint32_t limit = atomic_load_explicit(WEFT__ATOMIC(&c->limit), memory_order_acquire);
    if ((int32_t)(ticket - limit) >= 0)
        return false;
    _Atomic uint32_t *tokens = WEFT__ATOMIC(&c->tokens);
    uint32_t t = atomic_load_explicit(tokens, memory_order_acquire);
    while (t > 0)
        if (atomic_compare_exchange_weak_explicit(tokens, &t, t - 1, memory_order_acquire,
                                                  memory_order_acquire))
            return true;
    return false;
}

/* Wait to a deadline; the caller has checked the lock is held. */
static int wait_until(weft_cond_t *c, weft__deadline_t deadline)
{
    _Atomic uint32_t *seq = WEFT__ATOMIC(&c->seq);
    _Atomic uint32_t *waiters = WEFT__ATOMIC(&c->waiters);
    uint32_t ticket =
        atomic_fetch_add_explicit(WEFT__ATOMIC(&c->arrivals), 1, memory_order_relaxed);
    atomic_fetch_add_explicit(waiters, 1, memory_order_relaxed);
    uint32_t saved = 0;
    release_lock(c, &saved);
    _Atomic uint32_t *sleepers = WEFT__ATOMIC(&c->sleepers);
    bool notified = false, timed_out = false;
    int parked = 0;
    weft__spin_t sp = {0, 0, 0, 0};
    if (deadline > weft__now_ns())
        weft__spin_begin(&sp, WEFT__SPIN_HANDOFF);
    for (;;) {
        uint32_t s = atomic_load(seq);
        if ((notified = take_token(c, ticket)) || timed_out)
            break;
        if (weft__spin_next(&sp))
            continue;
        atomic_fetch_add(sleepers, 1);
        parked = weft__park(seq, s, deadline, weft__park_flags(WEFT__WAIT_COND, shared(c)));
        timed_out = parked < 0;
        atomic_fetch_sub(sleepers, 1);
    }
    int rc = reacquire_lock(c, saved);
    if (!notified && !(notified = take_token(c, ticket)))
        atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
    /* Cancelled, but notified too: the notification is kept (notify(n)
     * still releases n waiters) and the cancellation waits for later. */
    if (notified && parked == -ECANCELED)
        weft__park_recancel();
    return rc < 0 ? rc : notified ? 0 : parked == -ECANCELED ? parked : -ETIMEDOUT;
}

/* The result of a wait that did not end notified. */
static int wait_error(int rc, double timeout)
{
    return rc == -ETIMEDOUT ? weft__timeout_error(timeout) : rc;
}

int weft_cond_wait(weft_cond_t *cond, double timeout)
{
    weft__deadline_t deadline;
    if (!cond || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    if (!held(cond))
        return -EPERM;
    return wait_error(wait_until(cond, deadline), timeout);
}

int weft_cond_wait_for(weft_cond_t *cond, bool (*pred)(void *arg), void *arg, double timeout)
{
    weft__deadline_t deadline;
    if (!cond || !pred || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    if (!held(cond))
        return -EPERM;
    while (!pred(arg)) {
        int rc = wait_until(cond, deadline);
        if (rc == -ETIMEDOUT)
            return pred(arg) ? 0 : weft__timeout_error(timeout);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int weft_cond_notify(weft_cond_t *cond, int n)
{
    if (!cond || n < 0)
        return -EINVAL;
    if (!held(cond))
        return -EPERM;
    _Atomic uint32_t *waiters = WEFT__ATOMIC(&cond->waiters);
    uint32_t w = atomic_load_explicit(waiters, memory_order_relaxed);
    uint32_t granted = (uint32_t)n < w ? (uint32_t)n : w;
    if (granted == 0)
        return 0;
    atomic_store_explicit(waiters, w - granted, memory_order_relaxed);
    atomic_store_explicit(WEFT__ATOMIC(&cond->limit),
                          atomic_load_explicit(WEFT__ATOMIC(&cond->arrivals), memory_order_relaxed),
                          memory_order_release);
    atomic_fetch_add_explicit(WEFT__ATOMIC(&cond->tokens), granted, memory_order_release);
    atomic_fetch_add(WEFT__ATOMIC(&cond->seq), 1);
    if (atomic_load(WEFT__ATOMIC(&cond->sleepers)))
        weft__unpark(WEFT__ATOMIC(&cond->seq), granted > INT_MAX ? INT_MAX : (int)granted,
                     weft__park_flags(WEFT__WAIT_COND, shared(cond)));
    return (int)granted;
}

int weft_cond_notify_all(weft_cond_t *cond)
{
    return weft_cond_notify(cond, INT_MAX);
}
