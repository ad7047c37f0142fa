/*
 * The slow paths of owner words (layout in owned.h) and of the recursive
 * lock built on them.
 *
 * Acquire: one compare-and-swap if the word is free. Otherwise poll up to
 * `spin` times with backoff, giving up early once others sleep (the owner
 * is slow); then register as a sleeper and sleep until the word is free,
 * polling again (a Lock sleeper's share at most) after each wake-up,
 * taking it with OWNER_WAITERS set only if other sleepers remain. Before
 * each sleep the sleeper makes sure OWNER_WAITERS is set in the value it
 * sleeps on, so the owner's release, which clears the bit, wakes one.
 *
 * A fast acquirer may take a free word without the bit while sleepers
 * exist: the release that freed it has woken one of them, and that one
 * sets the bit again before sleeping. For the same reason a sleeper that
 * times out passes its wake-up on (it may have been the one woken).
 */
#include "sync/owned.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How long a waiter on a shared lock sleeps between checks that the owner
 * is still alive: the delay before a dead owner's lock is recovered. */
#define OWNER_CHECK_NS 50000000LL

int weft__fence_free;

/* Decided once, before main and before any other thread exists, so both
 * sides of every lock always agree on it (owned.h). */
WEFT__CONSTRUCTOR static void fence_free_init(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        weft__fence_free = 1;
}

/* How long a sleeper sleeps at most when its barrier failed (a seccomp
 * filter installed after the library loaded, say): by then every release
 * that could have missed it has finished, and later ones are atomic. */
#define BARRIER_FAILED_NS 1000000LL

/* The sleeper's half of the fence-free release: once per lock (owned.h).
 * False if the barrier was needed and failed. */
static bool register_barrier(const struct weft__owner *o)
{
    if (!weft__fence_free || !o->flags || o->shared ||
        (atomic_load_explicit(o->flags, memory_order_relaxed) & OWNED_FENCED))
        return true;
    atomic_fetch_or(o->flags, OWNED_FENCED);
    return weft__sys.membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static bool is_free(uint32_t v)
{
    return !(v & (OWNER_TID | OWNER_NOTREC));
}

/* Whether threads other than a registered caller sleep on the word. */
static bool others_sleep(const struct weft__owner *o)
{
    return !o->sleepers || atomic_load_explicit(o->sleepers, memory_order_relaxed) > 1;
}

/* Replace the observed value v (free, or held by a dead owner) by one held
 * by `me` with `bits`; a waiters bit already there stays. Where a birth id
 * sits beside the word, the word is taken with OWNER_PENDING, and the bit
 * is cleared once the birth id is the new owner's (owned.h). */
static bool take(const struct weft__owner *o, uint32_t *v, uint32_t me, uint32_t bits)
{
    uint32_t pending = o->birth ? OWNER_PENDING : 0;
    if (!atomic_compare_exchange_strong_explicit(
            o->word, v, o->mark | me | (*v & OWNER_WAITERS) | bits | pending, memory_order_acquire,
            memory_order_relaxed))
        return false;
    if (pending) {
        atomic_store_explicit(o->birth, weft__birth(), memory_order_relaxed);
        atomic_fetch_and_explicit(o->word, ~OWNER_PENDING, memory_order_release);
    }
    return true;
}

/* Whether the owner named by v has ended: no thread has its id any more
 * (or a zombie has), or the thread that has it was born later, as its
 * birth id shows against the tag in the word and the full id beside it.
 * A thread whose birth id cannot be known now counts as the owner, and so
 * does any thread with the id of an owner that named itself without one
 * (tag 0, owned.h). */
static bool owner_gone(const struct weft__owner *o, uint32_t v)
{
    uint64_t id;
    if (!weft__birth_of((pid_t)(v & OWNER_TID), &id))
        return true;
    if (id == 0 || !(v & OWNER_TAG))
        return false;
    if (weft__owner_tag(id) != (v & OWNER_TAG))
        return true;
    if (!o->birth || (v & OWNER_PENDING))
        return false;
    /* The birth id beside the word is v's owner's while the word holds v
     * without the pending bit (it was written before the bit was cleared). */
    if (atomic_load_explicit(o->word, memory_order_acquire) != v)
        return false; /* changed: the caller looks again */
    return atomic_load_explicit(o->birth, memory_order_relaxed) != id;
}

static int try_once(const struct weft__owner *o, uint32_t me)
{
    uint32_t v = atomic_load_explicit(o->word, memory_order_relaxed);
    while (is_free(v))
        if (take(o, &v, me, 0))
            return 0;
    return v & OWNER_NOTREC ? -ENOTRECOVERABLE : -EAGAIN;
}

/* Poll up to `spin` times for the word to come free. A newcomer gives up
 * once others sleep (the owner is slow). A registered sleeper just woken
 * (`woken`) keeps polling, as a woken Lock sleeper does (lock.c): the
 * release that woke it cleared OWNER_WAITERS, so the owner's later
 * releases make no system call meanwhile, where sleeping again at once on
 * finding the word re-taken would set the bit again and cost the owner a
 * wake-up per round. It polls a Lock sleeper's share at most: a section's
 * own count is how long to poll before sleeping (sync.h), not a budget to
 * spend again on every wake-up of a word held for long stretches. */
static bool spin_for(const struct weft__owner *o, uint32_t me, uint32_t spin, bool woken)
{
    if (woken && spin > WEFT_CRITSEC_DEFAULT_SPIN)
        spin = WEFT_CRITSEC_DEFAULT_SPIN;
    weft__spin_t s;
    for (weft__spin_begin_n(&s, WEFT__SPIN_MUTEX, spin); weft__spin_next(&s);) {
        uint32_t v = atomic_load_explicit(o->word, memory_order_relaxed);
        if (is_free(v) && take(o, &v, me, woken && others_sleep(o) ? OWNER_WAITERS : 0))
            return true;
        if ((v & OWNER_NOTREC) ||
            (!woken && ((v & OWNER_WAITERS) ||
                        (o->sleepers && atomic_load_explicit(o->sleepers, memory_order_relaxed)))))
            return false;
    }
    return false;
}

/* The sleep loop of a registered sleeper, in slices of `slice` ns when
 * that is not 0. On a shared lock it checks the owner after every slice
 * that ended without a wake-up, the last one at the deadline itself; on a
 * private one a slice is the bounded first sleep after a failed barrier.
 * After a wake-up it polls (spin_for) before sleeping again. */
static int sleep_on(const struct weft__owner *o, uint32_t me, uint32_t spin,
                    weft__deadline_t deadline, int64_t slice)
{
    bool check = false, last = false;
    for (;;) {
        uint32_t v = atomic_load_explicit(o->word, memory_order_relaxed);
        if (v & OWNER_NOTREC)
            return -ENOTRECOVERABLE;
        uint32_t mark = others_sleep(o) ? OWNER_WAITERS : 0;
        if (is_free(v)) {
            if (take(o, &v, me, mark))
                return 0;
            continue;
        }
        if (check && owner_gone(o, v)) {
            if (take(o, &v, me, mark | OWNER_DIED))
                return -EOWNERDEAD;
            continue; /* changed meanwhile: look again, checking again */
        }
        if (last)
            return -ETIMEDOUT;
        check = false;
        if (!(v & OWNER_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(o->word, &v, v | OWNER_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        weft__deadline_t until = deadline;
        if (slice) {
            int64_t now = weft__now_ns();
            if (deadline - now > slice)
                until = now + slice;
        }
        int parked = weft__park(o->word, v | OWNER_WAITERS, until,
                                weft__park_flags(WEFT__WAIT_OWNED, o->shared));
        if (parked == -ECANCELED) /* a task, cancelled */
            return parked;
        if (parked == -ETIMEDOUT) {
            if (o->shared) {
                check = true;
                last = until == deadline;
            } else if (until == deadline) {
                return -ETIMEDOUT;
            } else {
                slice = 0;
            }
        } else if (spin_for(o, me, spin, true)) {
            return 0;
        }
    }
}

/* A sleeper that gives up may have taken the wake-up meant for another:
 * make sure the next release wakes someone, or wake one now if the word is
 * already free. */
static void pass_on(const struct weft__owner *o)
{
    if (!others_sleep(o))
        return;
    uint32_t v = atomic_load_explicit(o->word, memory_order_relaxed);
    for (;;) {
        if (is_free(v)) {
            weft__unpark(o->word, 1, weft__park_flags(WEFT__WAIT_OWNED, o->shared));
            return;
        }
        if (v & (OWNER_WAITERS | OWNER_NOTREC))
            return;
        if (atomic_compare_exchange_weak_explicit(o->word, &v, v | OWNER_WAITERS,
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

int weft__owner_lock(const struct weft__owner *o, uint32_t me, uint32_t spin, double timeout)
{
    int rc = try_once(o, me);
    if (rc != -EAGAIN || timeout == 0)
        return rc;
    if (spin_for(o, me, spin, false))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    int64_t slice = o->shared ? OWNER_CHECK_NS : 0;
    if (o->sleepers) {
        atomic_fetch_add(o->sleepers, 1);
        if (!register_barrier(o))
            slice = BARRIER_FAILED_NS;
    }
    rc = sleep_on(o, me, spin, deadline, slice);
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        pass_on(o);
    if (o->sleepers)
        atomic_fetch_sub_explicit(o->sleepers, 1, memory_order_relaxed);
    return rc;
}

void weft__owner_unlock(const struct weft__owner *o)
{
    uint32_t v = atomic_load_explicit(o->word, memory_order_relaxed);
    uint32_t next = o->mark | (v & OWNER_DIED ? OWNER_NOTREC : 0);
    v = atomic_exchange_explicit(o->word, next, memory_order_release);
    if (next & OWNER_NOTREC)
        weft__unpark(o->word, INT32_MAX, weft__park_flags(WEFT__WAIT_OWNED, o->shared));
    else if (v & OWNER_WAITERS)
        weft__unpark(o->word, 1, weft__park_flags(WEFT__WAIT_OWNED, o->shared));
}

static bool is_shared(weft_rlock_t *r)
{
    return atomic_load_explicit(WEFT__ATOMIC(&r->flags), memory_order_relaxed) & WEFT_SHARED;
}

static struct weft__owner owner_of(weft_rlock_t *r)
{
    bool shared = is_shared(r);
    return (struct weft__owner){WEFT__ATOMIC(&r->word),  WEFT__ATOMIC(&r->sleepers),
                                WEFT__ATOMIC(&r->flags), shared ? WEFT__ATOMIC64(&r->birth) : NULL,
                                shared ? OWNER_MARK : 0, shared};
}

int weft__owned_init(weft_rlock_t *r, unsigned flags)
{
    if (flags & ~(unsigned)WEFT_SHARED)
        return -EINVAL;
    *r = (weft_rlock_t){flags & WEFT_SHARED ? OWNER_MARK : 0, 0, 0, flags, 0};
    return 0;
}

/* A shared word is the caller's if it names the caller, id, tag and the
 * birth id beside it (a newcomer with a dead owner's id is not the owner).
 * The owner never sees its own word pending: it clears the bit in take. */
int weft__owned_is_mine_shared(weft_rlock_t *r, uint32_t v)
{
    return (v & (OWNER_TID | OWNER_TAG | OWNER_PENDING)) == weft__owner_me() &&
           atomic_load_explicit(WEFT__ATOMIC64(&r->birth), memory_order_relaxed) == weft__birth();
}

int weft__owned_destroy(weft_rlock_t *r)
{
    return weft__owned_load(r) & OWNER_TID ? -EBUSY : 0;
}

int weft__owned_acquire_slow(weft_rlock_t *r, uint32_t spin, double timeout)
{
    if (isnan(timeout))
        return -EINVAL;
    if (weft__owned_is_mine(r)) {
        if (r->count == UINT32_MAX - 1)
            return -EOVERFLOW;
        r->count++;
        return 0;
    }
    unsigned flags = timeout < 0 ? 0 : WEFT__TSAN_TRY;
    bool bracket = weft__tsan_lock_begin(r, flags);
    struct weft__owner o = owner_of(r);
    uint32_t me = o.shared ? weft__owner_me() : weft__owner_id();
    int rc = weft__owner_lock(&o, me, spin, timeout);
    if (rc == -EOWNERDEAD)
        r->count = 0; /* the dead owner's re-entries died with it */
    weft__tsan_lock_end(r, flags, bracket, rc == 0 || rc == -EOWNERDEAD);
    return rc;
}

int weft__owned_release_slow(weft_rlock_t *r)
{
    if (!weft__owned_is_mine(r))
        return -EPERM;
    if (r->count > 0) {
        r->count--;
        return 0;
    }
    weft__tsan_pre_unlock(r, 0);
    struct weft__owner o = owner_of(r);
    weft__owner_unlock(&o);
    weft__tsan_post_unlock(r, 0);
    return 0;
}

int weft__owned_release_checked(weft_rlock_t *r, const void *key)
{
    int rc = weft__owned_release(r);
    if (rc == 0)
        weft__lockdep_release(key);
    return rc;
}

/* A fence-free release found a registered sleeper (private lock). */
int weft__owned_wake(weft_rlock_t *r)
{
    weft__unpark(WEFT__ATOMIC(&r->word), 1, WEFT__WAIT_OWNED);
    return 0;
}

int weft__owned_consistent(weft_rlock_t *r)
{
    if (!weft__owned_is_mine(r))
        return -EPERM;
    if (!(weft__owned_load(r) & OWNER_DIED))
        return -EINVAL;
    atomic_fetch_and_explicit(WEFT__ATOMIC(&r->word), ~OWNER_DIED, memory_order_relaxed);
    return 0;
}
