/*
 * RWLock: shared (read) and exclusive (write) locking that prefers writers.
 *
 *     state       bits 0-29  READERS: how many threads hold it for reading,
 *                            or WRITE_LOCKED (all ones) while a writer does
 *                 bit 30     READERS_WAITING: readers may sleep on state
 *                 bit 31     WRITERS_WAITING: writers may sleep on wseq
 *     wseq        the futex writers sleep on, bumped to wake one
 *     writers     writers registered to wait (exact, unlike the bit)
 *     owner       the writer's thread id, for the release check
 *
 * Read: add one reader while the lock is not write-locked and no writer
 * waits; otherwise set READERS_WAITING and sleep on state. Write: swap an
 * unlocked state for WRITE_LOCKED; otherwise register, set WRITERS_WAITING,
 * and sleep on wseq (after reading it, re-check the state, so that an unlock
 * in between cannot be missed). Readers and writers sleep on different words
 * so that an unlock wakes exactly the side it means to: one writer, or every
 * reader.
 *
 * The unlock that leaves the lock free with waiters (the last reader, or the
 * writer) wakes a writer if one is registered, else all readers: a waiting
 * writer goes first, and since readers cannot enter while one waits, writers
 * are never starved. A writer that takes the lock sets WRITERS_WAITING again
 * only if other writers remain registered, as the owner words do (owned.h).
 *
 * Recursive reads: with writer preference, a thread that holds a read lock
 * and asks for another while a writer waits would wait for the writer, which
 * waits for it: the classic deadlock (glibc's PREFER_WRITER_NONRECURSIVE
 * kind has it). weft counts the read locks each thread holds, and a thread
 * that holds any may take a read lock even while writers wait. Writers still
 * cannot starve: such a thread only delays a writer that waits for it anyway.
 *
 * A writer that gives up (timeout) may have been the one an unlock woke, or
 * the last registered writer leaving WRITERS_WAITING behind; it clears the
 * bit if it was the last, lets readers in if it was holding them off, and
 * bumps wseq and wakes a writer so that no registered writer keeps sleeping
 * on a wake-up that went to it or a bit it cleared. Readers are woken all at
 * once, so a reader that gives up takes nothing from the others.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define READERS         0x3fffffffu
#define WRITE_LOCKED    READERS
#define MAX_READERS     (READERS - 1)
#define READERS_WAITING 0x40000000u
#define WRITERS_WAITING 0x80000000u

/* Read locks the calling thread holds, in any RWLock; a task's are its own
 * (base/park.h). After a wait, which may have moved the task to another
 * thread (M:N mode), they are looked up again through a function that is
 * not inlined, so that no thread's address is kept across the wait. */
static _Thread_local uint32_t thread_reads WEFT__TLS_FAST;

static WEFT__INLINE uint32_t *reads_held(void)
{
    struct weft__task_rec *task = weft__task_rec;
    return task ? &task->reads_held : &thread_reads;
}

WEFT__NOINLINE static uint32_t *reads_held_after_wait(void)
{
    return reads_held();
}

static bool shared(const weft_rwlock_t *rw)
{
    return rw->flags & WEFT_SHARED;
}

static bool unlocked(uint32_t s)
{
    return (s & READERS) == 0;
}

static bool write_locked(uint32_t s)
{
    return (s & READERS) == WRITE_LOCKED;
}

/* A reader may enter: not write-locked, room for one more, and no writer
 * waiting, unless the caller already holds a read lock (see the top). */
static bool read_lockable(uint32_t s)
{
    return (s & READERS) < MAX_READERS &&
           (!(s & WRITERS_WAITING) || *reads_held_after_wait() > 0); /* also after a wait */
}

int weft_rwlock_init(weft_rwlock_t *rw, unsigned flags)
{
    if (!rw || (flags & ~WEFT_SHARED))
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_forget(rw);
    *rw = (weft_rwlock_t){0, 0, 0, 0, flags};
    return 0;
}

int weft_rwlock_destroy(weft_rwlock_t *rw)
{
    if (!rw)
        return -EINVAL;
    if (atomic_load(WEFT__ATOMIC(&rw->state)) & READERS)
        return -EBUSY;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_forget(rw);
    return 0;
}

/* --- waking ---------------------------------------------------------------- */

static void wake_writer(weft_rwlock_t *rw)
{
    atomic_fetch_add(WEFT__ATOMIC(&rw->wseq), 1);
    weft__unpark(WEFT__ATOMIC(&rw->wseq), 1, weft__park_flags(WEFT__WAIT_RWLOCK, shared(rw)));
}

/* Clear READERS_WAITING and wake every reader, unless a writer holds the
 * lock (its unlock will do it). */
static void wake_readers(weft_rwlock_t *rw)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    uint32_t s = atomic_load(state);
    do {
        if (!(s & READERS_WAITING) || write_locked(s))
            return;
    } while (!atomic_compare_exchange_weak(state, &s, s & ~READERS_WAITING));
    weft__unpark(state, INT_MAX, weft__park_flags(WEFT__WAIT_RWLOCK, shared(rw)));
}

/* The lock has just become free and has waiters: a writer first. */
static void wake_waiters(weft_rwlock_t *rw, uint32_t s)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    if (s & WRITERS_WAITING) {
        /* Clear the bit only while the lock is still free: whoever took it
         * meanwhile sees the bit and wakes a writer on release. */
        while (unlocked(s) && (s & WRITERS_WAITING))
            if (atomic_compare_exchange_weak(state, &s, s & ~WRITERS_WAITING))
                break;
        if (!unlocked(s))
            return;
        if (atomic_load(WEFT__ATOMIC(&rw->writers)) > 0) {
            wake_writer(rw);
            return;
        }
    }
    wake_readers(rw);
}

/* --- read side ------------------------------------------------------------- */

/* An acquire under ThreadSanitizer (base/tsan.h): `take` between the mutex
 * annotations. Out of line, so that the fast paths only test
 * WEFT__TSAN_ON() and tail-call it. */
WEFT__NOINLINE static int take_annotated(weft_rwlock_t *rw, unsigned flags, double timeout,
                                         int (*take)(void *rw, double timeout))
{
    flags |= timeout < 0 ? 0 : WEFT__TSAN_TRY;
    bool bracket = weft__tsan_lock_begin(rw, flags);
    int rc = take(rw, timeout);
    weft__tsan_lock_end(rw, flags, bracket, rc == 0);
    return rc;
}

static bool try_read(_Atomic uint32_t *state)
{
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    while (read_lockable(s))
        if (atomic_compare_exchange_weak_explicit(state, &s, s + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

WEFT__NOINLINE static int read_slow(weft_rwlock_t *rw, double timeout)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    if (timeout == 0)
        return -EAGAIN;
    weft__spin_t sp;
    for (weft__spin_begin(&sp, WEFT__SPIN_HANDOFF); weft__spin_next(&sp);)
        if (try_read(state))
            return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    for (;;) {
        if (try_read(state))
            return 0;
        uint32_t s = atomic_load(state);
        if (read_lockable(s))
            continue;
        if (!(s & READERS_WAITING) && !atomic_compare_exchange_weak(state, &s, s | READERS_WAITING))
            continue;
        int parked = weft__park(state, s | READERS_WAITING, deadline,
                                weft__park_flags(WEFT__WAIT_RWLOCK, shared(rw)));
        if (parked < 0)
            return weft__park_outcome(parked, parked == -ETIMEDOUT && try_read(state));
    }
}

static int read_take(void *obj, double timeout)
{
    weft_rwlock_t *rw = obj;
    if (try_read(WEFT__ATOMIC(&rw->state))) {
        ++*reads_held();
        return 0;
    }
    int rc = read_slow(rw, timeout);
    if (rc == 0)
        ++*reads_held_after_wait();
    return rc;
}

static int read_acquire(void *obj, double timeout)
{
    if (WEFT__TSAN_ON())
        return take_annotated(obj, WEFT__TSAN_READ, timeout, read_take);
    return read_take(obj, timeout);
}

int weft_rwlock_acquire_read_at(weft_rwlock_t *rw, double timeout, const weft_site_t *site)
{
    return weft__acquire_entry(rw, WEFT__LD_READ, site, timeout, read_acquire);
}

int(weft_rwlock_acquire_read)(weft_rwlock_t *rw, double timeout)
{
    return weft__acquire_entry(rw, WEFT__LD_READ, NULL, timeout, read_acquire);
}

int weft_rwlock_release_read(weft_rwlock_t *rw)
{
    if (WEFT__UNLIKELY(!rw))
        return -EINVAL;
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    uint32_t s = atomic_load_explicit(state, memory_order_relaxed);
    if (unlocked(s) || write_locked(s))
        return -EPERM;
    weft__tsan_pre_unlock(rw, WEFT__TSAN_READ);
    int rc = 0;
    do {
        if (unlocked(s) || write_locked(s)) {
            rc = -EPERM; /* released meanwhile by another thread: misuse */
            break;
        }
    } while (!atomic_compare_exchange_weak_explicit(state, &s, s - 1, memory_order_release,
                                                    memory_order_relaxed));
    uint32_t *held = reads_held();
    if (rc == 0 && *held > 0)
        --*held;
    if (rc == 0 && WEFT__LOCKDEP_ON())
        weft__lockdep_release(rw);
    if (rc == 0 && WEFT__UNLIKELY((s & READERS) == 1 && (s & (READERS_WAITING | WRITERS_WAITING))))
        wake_waiters(rw, s - 1);
    weft__tsan_post_unlock(rw, WEFT__TSAN_READ);
    return rc;
}

/* --- write side ------------------------------------------------------------ */

/* Take a free lock: WRITE_LOCKED, keeping READERS_WAITING, with `ww`
 * (WRITERS_WAITING or 0) for the writers still waiting. */
static bool take_write(_Atomic uint32_t *state, uint32_t s, uint32_t ww)
{
    uint32_t next = WRITE_LOCKED | (s & READERS_WAITING) | ww;
    return unlocked(s) && atomic_compare_exchange_strong_explicit(
                              state, &s, next, memory_order_acquire, memory_order_relaxed);
}

/* A registered writer that gives up (see the top). */
static void writer_gives_up(weft_rwlock_t *rw)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    if (atomic_fetch_sub(WEFT__ATOMIC(&rw->writers), 1) == 1) {
        atomic_fetch_and(state, ~WRITERS_WAITING);
        wake_readers(rw);
    }
    wake_writer(rw);
}

static int write_sleep(weft_rwlock_t *rw, weft__deadline_t deadline)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    _Atomic uint32_t *writers = WEFT__ATOMIC(&rw->writers);
    _Atomic uint32_t *wseq = WEFT__ATOMIC(&rw->wseq);
    atomic_fetch_add(writers, 1);
    for (;;) {
        uint32_t s = atomic_load(state);
        if (take_write(state, s, atomic_load(writers) > 1 ? WRITERS_WAITING : 0)) {
            atomic_fetch_sub(writers, 1);
            return 0;
        }
        if (unlocked(s))
            continue;
        if (!(s & WRITERS_WAITING) && !atomic_compare_exchange_weak(state, &s, s | WRITERS_WAITING))
            continue;
        uint32_t seq = atomic_load(wseq);
        if (atomic_load(state) != (s | WRITERS_WAITING))
            continue; /* changed since: maybe an unlock that saw our bit */
        int parked =
            weft__park(wseq, seq, deadline, weft__park_flags(WEFT__WAIT_RWLOCK, shared(rw)));
        if (parked < 0) {
            writer_gives_up(rw);
            return parked;
        }
    }
}

WEFT__NOINLINE static int write_slow(weft_rwlock_t *rw, double timeout)
{
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    uint32_t s = atomic_load(state);
    if (take_write(state, s, s & WRITERS_WAITING)) /* keep a woken writer's due */
        return 0;
    if (timeout == 0)
        return -EAGAIN;
    weft__spin_t sp;
    for (weft__spin_begin(&sp, WEFT__SPIN_HANDOFF); weft__spin_next(&sp);) {
        s = atomic_load_explicit(state, memory_order_relaxed);
        if (s & (READERS_WAITING | WRITERS_WAITING))
            break; /* others sleep already: the holder is slow */
        if (take_write(state, s, 0))
            return 0;
    }
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return write_sleep(rw, deadline);
}

static int write_take(void *obj, double timeout)
{
    weft_rwlock_t *rw = obj;
    uint32_t s = 0;
    int rc = atomic_compare_exchange_strong_explicit(WEFT__ATOMIC(&rw->state), &s, WRITE_LOCKED,
                                                     memory_order_acquire, memory_order_relaxed)
                 ? 0
                 : write_slow(rw, timeout);
    if (rc == 0)
        atomic_store_explicit(WEFT__ATOMIC(&rw->owner), weft__owner_id(), memory_order_relaxed);
    return rc;
}

static int write_acquire(void *obj, double timeout)
{
    if (WEFT__TSAN_ON())
        return take_annotated(obj, 0, timeout, write_take);
    return write_take(obj, timeout);
}

int weft_rwlock_acquire_write_at(weft_rwlock_t *rw, double timeout, const weft_site_t *site)
{
    return weft__acquire_entry(rw, WEFT__LD_WRITE, site, timeout, write_acquire);
}

int(weft_rwlock_acquire_write)(weft_rwlock_t *rw, double timeout)
{
    return weft__acquire_entry(rw, WEFT__LD_WRITE, NULL, timeout, write_acquire);
}

int weft_rwlock_release_write(weft_rwlock_t *rw)
{
    if (WEFT__UNLIKELY(!rw))
        return -EINVAL;
    _Atomic uint32_t *state = WEFT__ATOMIC(&rw->state);
    _Atomic uint32_t *owner = WEFT__ATOMIC(&rw->owner);
    if (!write_locked(atomic_load_explicit(state, memory_order_relaxed)) ||
        atomic_load_explicit(owner, memory_order_relaxed) != weft__owner_id())
        return -EPERM;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_release(rw);
    weft__tsan_pre_unlock(rw, 0);
    atomic_store_explicit(owner, 0, memory_order_relaxed);
    uint32_t s =
        atomic_fetch_sub_explicit(state, WRITE_LOCKED, memory_order_release) - WRITE_LOCKED;
    if (WEFT__UNLIKELY(s & (READERS_WAITING | WRITERS_WAITING)))
        wake_waiters(rw, s);
    weft__tsan_post_unlock(rw, 0);
    return 0;
}

int weft_rwlock_readers(weft_rwlock_t *rw)
{
    if (!rw)
        return -EINVAL;
    uint32_t s = atomic_load_explicit(WEFT__ATOMIC(&rw->state), memory_order_relaxed);
    return write_locked(s) ? -1 : (int)(s & READERS);
}
