/*
 * Owner words: the lock word behind RLock, the critical section and the
 * process-shared form of Lock, which names the thread holding it.
 *
 * Word layout (32 bits, the futex the waiters sleep on):
 *
 *     bits 0-21  the owner's kernel thread id, 0 when free; in a private
 *                word, with bit 22 (WEFT__OWNER_TASK), an async task's id
 *     bits 22-26 OWNER_TAG (shared only): 1 + the owner's birth id
 *                modulo 31 (base/tid.c), or 0 when the owner could not
 *                learn its birth id
 *     bit  27    OWNER_PENDING (shared RLock only): the birth id beside the
 *                word is not yet the owner's
 *     bit  28    OWNER_MARK: always set in a process-shared word, so that
 *                lock.c tells a shared Lock from the private layout, and
 *                the inline fast paths never match a shared RLock
 *     bit  29    OWNER_NOTREC: not recoverable; nobody can take it again
 *     bit  30    OWNER_DIED: the previous owner died holding it, and the
 *                new owner has not yet declared the data consistent
 *     bit  31    OWNER_WAITERS: a thread may be asleep on the word
 *
 * Thread ids fit in 22 bits (the kernel's PID_MAX_LIMIT is 2^22) and are
 * unique across the system at any moment, so the same word works between
 * processes and names an owner that can be checked for being alive. But
 * not over time: once the owner is gone, the kernel gives its id to a new
 * thread, which would pass for the owner forever. So a shared owner is
 * named by its birth id too, which is never given out again. The shared
 * RLock (and critical section) keeps all 64 bits of it beside the word;
 * its owner takes the word with OWNER_PENDING set, writes its birth id, and
 * clears the bit, so a waiter compares the birth id only when it is the
 * owner's. The shared Lock has to stay 4 bytes, as the private one is the
 * same type; its word keeps 5 bits of the birth id (OWNER_TAG, the id
 * modulo 31, plus 1). That catches every reuse within 30 thread creations
 * of the owner's own (the deliberate kind: ns_last_pid, clone3's set_tid),
 * and 30 in 31 of the rest; for data that must survive any crash, share an
 * RLock. A thread that could not learn its own birth id (it was out of
 * descriptors when it first asked) names itself with tag 0, and a birth id
 * of WEFT__BIRTH_UNKNOWN beside an RLock: a waiter then judges that owner
 * by whether its thread id lives, as before birth ids, never by a
 * comparison that would take a live owner for a newcomer.
 *
 * Beside the word, a counter of registered sleepers (when the lock has room
 * for one) keeps the waiters bit exact. A sleeper that takes the lock sets
 * OWNER_WAITERS again only when other sleepers remain; with only the bit
 * (the classic "maybe waiters" mark of Drepper's mutex 3) it would have to
 * set it always, the mark would outlive the sleepers, and every later
 * acquirer would stop spinning and every release would make a useless
 * system call. The shared Lock has no room for the counter (it stays 4
 * bytes) and keeps the classic mark. The counter is a hint, never trusted
 * for correctness: a process killed while registered leaves it one too
 * high, which only costs that lock the exact mark.
 *
 * Robustness (shared locks only): a sleeper sleeps in slices of
 * OWNER_CHECK_NS and, before its first sleep and after every slice, checks
 * that the owner is alive. If it is not, the sleeper takes the lock with
 * OWNER_DIED set and returns -EOWNERDEAD; the new owner repairs the data and
 * calls *_consistent, or releases it as it is, which makes the lock
 * OWNER_NOTREC: every waiter and later caller gets -ENOTRECOVERABLE, as with
 * pthread's robust mutexes. The kernel's robust futex list cannot do this
 * for weft: each thread has exactly one list, and the C library owns it.
 */
#ifndef WEFT_SRC_SYNC_OWNED_H
#define WEFT_SRC_SYNC_OWNED_H

#include "sync/sync_int.h"

#define OWNER_TID     0x003fffffu
#define OWNER_ID      (OWNER_TID | WEFT__OWNER_TASK) /* a private word's owner (base.h) */
#define OWNER_TAG     0x07c00000u
#define OWNER_PENDING 0x08000000u
#define OWNER_MARK    0x10000000u
#define OWNER_NOTREC  0x20000000u
#define OWNER_DIED    0x40000000u
#define OWNER_WAITERS 0x80000000u

/* A bit of an RLock's `flags` beside WEFT_SHARED: the lock has had a
 * sleeper, so its releases are atomic from now on (see below). */
#define OWNED_FENCED 0x80000000u

/* What the slow paths need to know about an owner word. */
struct weft__owner {
    _Atomic uint32_t *word;
    _Atomic uint32_t *sleepers; /* NULL: not counted, so assume others sleep */
    _Atomic uint32_t *flags;    /* NULL, or the RLock's (OWNED_FENCED) */
    _Atomic uint64_t *birth;    /* NULL, or the owner's birth id (shared) */
    uint32_t mark;              /* bits that stay set in the word */
    bool shared;                /* process-shared futex, and robust */
};

/* The tag of birth id `id` in a shared word: never 0 for a known id. */
static inline uint32_t weft__owner_tag(uint64_t id)
{
    return id == WEFT__BIRTH_UNKNOWN ? 0 : (uint32_t)(id % 31 + 1) << 22;
}

/* The calling thread as a shared word names it: id and tag. */
static inline uint32_t weft__owner_me(void)
{
    return (uint32_t)weft__gettid() | weft__owner_tag(weft__birth());
}

/* Take the word for the calling thread `me` (its id, or weft__owner_me()
 * on a shared word), polling up to `spin` times before sleeping. 0,
 * -EOWNERDEAD (taken, previous owner dead), -ENOTRECOVERABLE, -EAGAIN
 * (timeout 0), -ETIMEDOUT. */
int weft__owner_lock(const struct weft__owner *o, uint32_t me, uint32_t spin, double timeout);
/* Give the word up (the caller has checked it may) and wake a sleeper. */
void weft__owner_unlock(const struct weft__owner *o);

/* The RLock (and critical section) on top: recursion and owner checks. */
int weft__owned_acquire_slow(weft_rlock_t *r, uint32_t spin, double timeout);
int weft__owned_release_slow(weft_rlock_t *r);
int weft__owned_wake(weft_rlock_t *r);

/*
 * Fence-free release (private locks, when the kernel has membarrier). A
 * release is normally an atomic read-modify-write, because it must see a
 * sleeper that registers at the same moment: a plain store followed by a
 * load of the sleeper count may be reordered by the CPU (store to load), and
 * the wake-up lost. Instead the rare side pays: a thread that registers to
 * sleep calls membarrier(PRIVATE_EXPEDITED), which makes every running
 * thread of the process execute a full barrier. A release whose load of
 * `sleepers` came before that barrier made its store visible before the
 * sleeper looks at the word; one whose load came after sees the sleeper.
 * So the owner releases with a plain store and a load, and the uncontended
 * acquire-release pair costs one atomic instruction instead of two. (A
 * sleeper's waiters bit that the plain store overwrites does no harm: its
 * futex wait compares the word, which changed.) Shared locks cannot use it:
 * the private membarrier does not reach other processes.
 *
 * A membarrier interrupts every other running thread of the process, which
 * would make each sleep of a busy lock several times dearer. So it is paid
 * once per lock: the first sleeper sets OWNED_FENCED in the lock's flags
 * before its barrier, and from then on that lock's releases are atomic
 * (any release after the barrier sees the bit). Locks that never make a
 * thread sleep, the common case, keep the cheap release. Should the barrier
 * itself fail (a seccomp filter installed after the library loaded), the
 * sleeper's first sleep is bounded instead: once it ends, every release
 * that could have missed the sleeper is over. Without either, a test of
 * thousands of fresh locks (test_lock) strands a sleeper in half its runs.
 */
extern int weft__fence_free;

static inline uint32_t weft__owned_load(weft_rlock_t *r)
{
    return atomic_load_explicit(WEFT__ATOMIC(&r->word), memory_order_relaxed);
}

/* The fast paths handle only the common cases (a free lock, a re-entry, a
 * release with nobody waiting) and otherwise tail-call the slow ones, so
 * they compile to leaf code without a stack frame. Under ThreadSanitizer
 * everything goes through the slow paths, which carry the annotations. */
static inline int weft__owned_acquire(weft_rlock_t *r, uint32_t spin, double timeout)
{
    if (WEFT__TSAN_ON())
        return weft__owned_acquire_slow(r, spin, timeout);
    uint32_t me = weft__owner_self;
    if (WEFT__LIKELY(me != 0 && !isnan(timeout))) {
        /* Swap at once, as glibc and Go do: looking first made the swap
         * wait for the load, 3 ns of an uncontended 15 (an enter and a
         * leave), which on one CPU, where every section is uncontended
         * but for preemptions, put it 10% behind glibc's adaptive mutex.
         * The polls of a contended enter (owned.c) still look first. */
        uint32_t v = 0;
        if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(
                WEFT__ATOMIC(&r->word), &v, me, memory_order_acquire, memory_order_relaxed)))
            return 0;
        /* Never a shared word: it carries OWNER_MARK. */
        if ((v & (OWNER_ID | OWNER_MARK)) == me && WEFT__LIKELY(r->count != UINT32_MAX - 1)) {
            r->count++;
            return 0;
        }
    }
    return weft__owned_acquire_slow(r, spin, timeout);
}

static inline int weft__owned_release(weft_rlock_t *r)
{
    if (WEFT__TSAN_ON())
        return weft__owned_release_slow(r);
    uint32_t me = weft__owner_self;
    /* The mode first, so that on a contended (fenced) lock nothing comes
     * between reading the word and swapping it. */
    bool plain = weft__fence_free &&
                 atomic_load_explicit(WEFT__ATOMIC(&r->flags), memory_order_relaxed) == 0;
    uint32_t v = weft__owned_load(r);
    if (WEFT__LIKELY(me != 0 && v == me)) {
        if (r->count > 0) {
            r->count--;
            return 0;
        }
        if (WEFT__LIKELY(plain)) {
            atomic_store_explicit(WEFT__ATOMIC(&r->word), 0, memory_order_release);
            if (WEFT__LIKELY(
                    atomic_load_explicit(WEFT__ATOMIC(&r->sleepers), memory_order_relaxed) == 0))
                return 0;
            return weft__owned_wake(r);
        }
        if (WEFT__LIKELY(atomic_compare_exchange_strong_explicit(
                WEFT__ATOMIC(&r->word), &v, 0, memory_order_release, memory_order_relaxed)))
            return 0;
    }
    return weft__owned_release_slow(r);
}

int weft__owned_is_mine_shared(weft_rlock_t *r, uint32_t v);
static inline int weft__owned_is_mine(weft_rlock_t *r)
{
    uint32_t v = weft__owned_load(r);
    if (WEFT__UNLIKELY(v & OWNER_MARK))
        return weft__owned_is_mine_shared(r, v);
    return (v & OWNER_ID) == weft__owner_id();
}

/* Python's _release_save / _acquire_restore, for Condition.wait: release
 * however often the lock is held, and later take it back as often. */
static inline int weft__owned_release_save(weft_rlock_t *r, uint32_t *saved)
{
    if (!weft__owned_is_mine(r))
        return -EPERM;
    *saved = r->count;
    r->count = 0;
    return weft__owned_release_slow(r);
}

/* The result of the re-acquire (0, -EOWNERDEAD, -ENOTRECOVERABLE). */
static inline int weft__owned_acquire_restore(weft_rlock_t *r, uint32_t saved)
{
    int rc = weft__owned_acquire_slow(r, 0, WEFT_FOREVER);
    if (rc == 0)
        r->count = saved;
    return rc;
}

/* Release with the checker on: the lock itself, then (if that worked) the
 * checker's record of `key`. */
int weft__owned_release_checked(weft_rlock_t *r, const void *key);

int weft__owned_init(weft_rlock_t *r, unsigned flags);
int weft__owned_destroy(weft_rlock_t *r);
int weft__owned_consistent(weft_rlock_t *r);

#endif /* WEFT_SRC_SYNC_OWNED_H */
