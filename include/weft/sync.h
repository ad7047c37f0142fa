/*
 * weft/sync.h: synchronization primitives, after Python's threading module
 * (Lock, RLock), plus the critical section of the lecture (after Windows'
 * CRITICAL_SECTION) and Python's `with lock:` as WEFT_WITH.
 *
 * Every primitive is a caller-owned value of fixed size with a static
 * initialiser and _init/_destroy; none allocates. Errors and timeouts follow
 * weft/base.h: negative errno results, relative double timeouts (negative =
 * forever, 0 = try once and fail with -EAGAIN, NaN = -EINVAL).
 *
 *     Python                      weft
 *     lock = Lock()               weft_lock_t lock = WEFT_LOCK_INIT;
 *     lock.acquire(timeout=t)     weft_lock_acquire(&lock, t)
 *     lock.release()              weft_lock_release(&lock)
 *     with lock: ...              WEFT_WITH(&lock) { ... }
 *     rlock = RLock()             weft_rlock_t rlock = WEFT_RLOCK_INIT;
 *
 * Choosing a lock. weft_lock_t is the fastest and smallest (4 bytes): use it
 * unless you need re-entry. weft_rlock_t lets its owner acquire it again and
 * checks that only the owner releases it. weft_critsec_t is an RLock whose
 * spin count you set: spin longer when critical sections are short and
 * threads run on separate CPUs (a waiter that spins never pays for sleeping
 * and waking), spin 0 when sections are long or CPUs are scarce.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/base.h>

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Between processes. Every _init takes flags; WEFT_SHARED makes the primitive
 * work in memory shared between processes (MAP_SHARED, shm_open, memfd):
 * its sleepers use process-shared futexes, and nothing in it points into one
 * process's memory (a Condition refers to its lock by offset, so the two
 * must live in the same mapping). Without the flag a primitive is private to
 * the process, which makes sleeping and waking cheaper. A zero-filled
 * primitive is the private one, as are the static initialisers.
 *
 * Shared Lock, RLock and critical section are robust: if the thread holding
 * one dies (its process is killed, or it exits), a thread waiting for the lock
 * notices within 50 ms (at the end of any timed wait, at the latest) and takes
 * it with the result -EOWNERDEAD instead of 0. It holds the lock then, and
 * the data the lock protects may be half-updated: repair it and call
 * weft_*_consistent(), or release the lock as it is, which makes it
 * unrecoverable: every later acquire returns -ENOTRECOVERABLE. Owners are
 * named by kernel thread id, so the processes must share a pid namespace, and
 * a try (timeout 0) does not check the owner. In WEFT_WITH a lock that comes
 * back -EOWNERDEAD is released at once (unrecoverable) and the block skipped.
 *
 * The kernel gives a dead thread's id to new threads, so an owner is also
 * named by a birth id that is never given out again (the pidfs inode of the
 * thread on Linux 6.9 and later, else its start time): a newcomer with a
 * dead owner's id is not taken for the owner. A shared RLock or critical
 * section keeps the whole birth id, and tells every reuse. A shared Lock has
 * only its 4 bytes and keeps 5 bits of it: it tells a reuse within 30
 * thread creations of the owner's (every deliberate one, such as a write to
 * ns_last_pid) and 30 in 31 of the others. Share an RLock where the data
 * must survive any crash. A thread that could not learn its own birth id
 * (it was out of descriptors when it first asked) is judged by its id
 * alone, as owners were before birth ids: never taken for dead while it
 * lives.
 *
 * ABI change: weft_rlock_t grew from 16 to 24 bytes (and weft_critsec_t and
 * weft_cond_t with it) for the birth id, and shared words carry the birth
 * id's tag; processes that share a lock must use the same weft.
 */
#define WEFT_SHARED 1u

/*
 * Lock (threading.Lock): 4 bytes. Any thread may release it, as in Python;
 * releasing a lock that is not held is -EPERM. The private word holds a held
 * bit and counts the threads asleep on it; the shared form stays 4 bytes and
 * holds the owner's thread id instead (for robustness), with a mark bit
 * that tells the layouts apart.
 */
typedef struct weft_lock {
    uint32_t word;
} weft_lock_t;

#define WEFT_LOCK_INIT \
    {                  \
        0              \
    }

/* flags: 0 or WEFT_SHARED. */
WEFT_API int weft_lock_init(weft_lock_t *lock, unsigned flags);
/* -EBUSY if the lock is held. */
WEFT_API int weft_lock_destroy(weft_lock_t *lock);
/* Errors: -EINVAL, -EAGAIN (timeout 0 and held), -ETIMEDOUT; shared only:
 * -EOWNERDEAD (acquired), -ENOTRECOVERABLE. */
WEFT_API int weft_lock_acquire(weft_lock_t *lock, double timeout);
/* Errors: -EINVAL, -EPERM (not held). */
WEFT_API int weft_lock_release(weft_lock_t *lock);
/* 1 if held, 0 if free, -EINVAL for NULL. */
WEFT_API int weft_lock_locked(weft_lock_t *lock);
/* After -EOWNERDEAD: the state is repaired, the lock usable again. Errors:
 * -EINVAL (not a shared lock recovered from a dead owner), -EPERM (the
 * caller is not the thread that recovered it). */
WEFT_API int weft_lock_consistent(weft_lock_t *lock);

/*
 * RLock (threading.RLock): the owner may acquire it again; it is free once
 * released as many times as acquired. Release by a thread that does not own
 * it is -EPERM. The word holds the owner's kernel thread id.
 */
typedef struct weft_rlock {
    uint32_t word;     /* internal: the owner's thread id and state bits */
    uint32_t count;    /* re-entries beyond the first */
    uint32_t sleepers; /* internal: threads registered to sleep on word */
    uint32_t flags;    /* internal: as given to init */
    uint64_t birth;    /* internal (shared): the owner's birth id */
} weft_rlock_t;

#define WEFT_RLOCK_INIT \
    {                   \
        0, 0, 0, 0, 0   \
    }

WEFT_API int weft_rlock_init(weft_rlock_t *rlock, unsigned flags);
/* -EBUSY if the lock is held. */
WEFT_API int weft_rlock_destroy(weft_rlock_t *rlock);
/* Errors: -EINVAL, -EAGAIN, -ETIMEDOUT, -EOVERFLOW (held 2^32-1 times);
 * shared only: -EOWNERDEAD (acquired once), -ENOTRECOVERABLE. */
WEFT_API int weft_rlock_acquire(weft_rlock_t *rlock, double timeout);
/* Errors: -EINVAL, -EPERM (the caller does not own it). */
WEFT_API int weft_rlock_release(weft_rlock_t *rlock);
/* 1 if the calling thread owns it (Python's _is_owned), else 0; -EINVAL. */
WEFT_API int weft_rlock_is_owned(weft_rlock_t *rlock);
/* As weft_lock_consistent. */
WEFT_API int weft_rlock_consistent(weft_rlock_t *rlock);

/*
 * Critical section: a recursive, owner-checked lock with a spin count, after
 * Windows' CRITICAL_SECTION. enter waits as long as it takes; try_enter does
 * not wait; leave by a thread that is not the owner is -EPERM.
 */
typedef struct weft_critsec {
    weft_rlock_t lock; /* internal */
    uint32_t spin;
} weft_critsec_t;

/* The spin count WEFT_CRITSEC_INIT and weft_rlock_t use. */
#define WEFT_CRITSEC_DEFAULT_SPIN 16
#define WEFT_CRITSEC_INIT                          \
    {                                              \
        WEFT_RLOCK_INIT, WEFT_CRITSEC_DEFAULT_SPIN \
    }

/* spin: how many times a thread polls a held section before it sleeps. */
WEFT_API int weft_critsec_init(weft_critsec_t *cs, uint32_t spin, unsigned flags);
WEFT_API int weft_critsec_destroy(weft_critsec_t *cs);
/* Errors: -EINVAL, -EOVERFLOW; shared only: -EOWNERDEAD, -ENOTRECOVERABLE. */
WEFT_API int weft_critsec_enter(weft_critsec_t *cs);
/* Errors: -EINVAL, -EAGAIN (owned by another thread), -EOVERFLOW. */
WEFT_API int weft_critsec_try_enter(weft_critsec_t *cs);
/* Errors: -EINVAL, -EPERM. */
WEFT_API int weft_critsec_leave(weft_critsec_t *cs);
/* Change the spin count; returns the previous one, or -EINVAL. */
WEFT_API long weft_critsec_set_spin(weft_critsec_t *cs, uint32_t spin);
/* As weft_lock_consistent. */
WEFT_API int weft_critsec_consistent(weft_critsec_t *cs);

/*
 * Condition (threading.Condition), bound to a lock when initialised: a
 * weft_lock_t, a weft_rlock_t, or (Python's default, and what
 * WEFT_COND_INIT gives) an RLock of its own. An RLock is released completely
 * for the wait and re-acquired with its count. wait() returns 0 only when
 * notified: never spuriously, and notify(n) lets exactly min(n, waiting)
 * waiters return. Waiting or notifying without holding the lock is -EPERM
 * (for a plain Lock, detectable only when nobody holds it).
 */
typedef struct weft_cond {
    uint32_t seq;      /* internal: futex word, bumped by every notify */
    uint32_t waiters;  /* internal: waiting and not yet notified */
    uint32_t tokens;   /* internal: notified and not yet returned */
    uint32_t arrivals; /* internal: tickets handed to waiters */
    uint32_t limit;    /* internal: tickets below this may be notified */
    uint32_t sleepers; /* internal: waiters asleep in the kernel */
    uint32_t kind;     /* internal: which kind of lock it is bound to */
    intptr_t lock;     /* internal: the bound lock, relative to this struct */
    weft_rlock_t own;  /* the lock of a condition made without one */
} weft_cond_t;

#define WEFT_COND_INIT                          \
    {                                           \
        0, 0, 0, 0, 0, 0, 0, 0, WEFT_RLOCK_INIT \
    }

/* Bind to `lock`, or to an RLock of its own when lock is NULL. With
 * WEFT_SHARED the lock must be shared too, else -EINVAL. */
WEFT_API int weft_cond_init(weft_cond_t *cond, weft_lock_t *lock, unsigned flags);
WEFT_API int weft_cond_init_rlock(weft_cond_t *cond, weft_rlock_t *rlock, unsigned flags);
/* -EBUSY while threads wait on it. */
WEFT_API int weft_cond_destroy(weft_cond_t *cond);
/* Acquire and release the bound lock (Python's cond.acquire/release). */
WEFT_API int weft_cond_acquire(weft_cond_t *cond, double timeout);
WEFT_API int weft_cond_release(weft_cond_t *cond);
/* Release the lock, wait for a notify, re-acquire the lock. Returns 0 when
 * notified, -ETIMEDOUT (or -EAGAIN for timeout 0) otherwise; the lock is held
 * again either way. Errors: -EINVAL, -EPERM (lock not held); with a shared
 * lock, what re-acquiring it reported: -EOWNERDEAD (held) or
 * -ENOTRECOVERABLE (not held). */
WEFT_API int weft_cond_wait(weft_cond_t *cond, double timeout);
/* Python's wait_for: wait until pred(arg) is true, checking it first and
 * after every wake-up, within one overall deadline. 0 when it holds,
 * -ETIMEDOUT / -EAGAIN when it still does not at the deadline. */
WEFT_API int weft_cond_wait_for(weft_cond_t *cond, bool (*pred)(void *arg), void *arg,
                                double timeout);
/* Wake up to n waiters (n >= 0); returns how many will return notified.
 * Errors: -EINVAL, -EPERM. */
WEFT_API int weft_cond_notify(weft_cond_t *cond, int n);
WEFT_API int weft_cond_notify_all(weft_cond_t *cond);

/*
 * Semaphore and BoundedSemaphore (threading.Semaphore, BoundedSemaphore):
 * a counter that acquire decrements, waiting while it is 0, and release
 * increments. A bounded semaphore refuses to go above its initial value
 * (-EOVERFLOW, Python's ValueError).
 */
typedef struct weft_sem {
    uint32_t value;   /* internal: read it with weft_sem_value */
    uint32_t waiters; /* internal */
    uint32_t max;     /* UINT32_MAX: unbounded */
    uint32_t flags;   /* internal: as given to init */
} weft_sem_t;

#define WEFT_SEM_INIT(value)      \
    {                             \
        (value), 0, UINT32_MAX, 0 \
    }
#define WEFT_BOUNDED_SEM_INIT(value) \
    {                                \
        (value), 0, (value), 0       \
    }

/* value >= 0, else -EINVAL (Python's ValueError); the static initialisers
 * take a value up to 2^31-1 too. */
WEFT_API int weft_sem_init(weft_sem_t *sem, int value, unsigned flags);
WEFT_API int weft_sem_init_bounded(weft_sem_t *sem, int value, unsigned flags);
/* -EBUSY while threads wait on it. */
WEFT_API int weft_sem_destroy(weft_sem_t *sem);
/* Errors: -EINVAL, -EAGAIN (timeout 0 and value 0), -ETIMEDOUT. */
WEFT_API int weft_sem_acquire(weft_sem_t *sem, double timeout);
/* Add n >= 1 and wake up to n waiters. Errors: -EINVAL (n < 1), -EOVERFLOW
 * (above a bounded semaphore's initial value, or above 2^31-1). */
WEFT_API int weft_sem_release(weft_sem_t *sem, int n);
/* The current value (never negative), -EINVAL for NULL. */
WEFT_API long weft_sem_value(weft_sem_t *sem);

/*
 * Event (threading.Event): a flag threads can wait for. A wait returns 0 once
 * the flag is set; a set followed at once by a clear still releases every
 * thread that was waiting, as in Python.
 */
typedef struct weft_event {
    uint32_t word;  /* internal: flag, waiters bit, generation */
    uint32_t flags; /* internal: as given to init */
} weft_event_t;

#define WEFT_EVENT_INIT \
    {                   \
        0, 0            \
    }

WEFT_API int weft_event_init(weft_event_t *event, unsigned flags);
WEFT_API int weft_event_destroy(weft_event_t *event);
WEFT_API int weft_event_set(weft_event_t *event);
WEFT_API int weft_event_clear(weft_event_t *event);
/* 1 if set, 0 if not, -EINVAL for NULL. */
WEFT_API int weft_event_is_set(weft_event_t *event);
/* Errors: -EINVAL, -EAGAIN (timeout 0, not set), -ETIMEDOUT. */
WEFT_API int weft_event_wait(weft_event_t *event, double timeout);

/*
 * Barrier (threading.Barrier): `parties` threads wait until all have arrived,
 * then all go on. wait returns the arrival index, 0 .. parties-1 (each index
 * once per cycle). The optional action runs once per cycle, in the last
 * thread to arrive, before anyone is released; if it returns a negative
 * value the barrier breaks. A timeout (the call's, or the barrier's default
 * when the call passes WEFT_BARRIER_DEFAULT), abort(), or reset() while
 * threads wait breaks the barrier: every waiter gets WEFT_EBROKEN, as
 * Python's BrokenBarrierError, until reset() makes it usable again.
 */
typedef struct weft_barrier {
    weft_lock_t lock; /* internal: arrivals and the end of each cycle */
    uint32_t seq;     /* internal: the cycle's number; waiters sleep on it */
    uint32_t count;   /* internal: arrivals in the current cycle */
    uint32_t leaving; /* internal: released threads still inside wait() */
    uint32_t state;   /* internal: broken, how the last cycle ended, shared */
    uint32_t parties;
    double timeout; /* the default timeout */
    int (*action)(void *arg);
    void *arg;
} weft_barrier_t;

/* Pass as the timeout of weft_barrier_wait to use the barrier's default. */
#define WEFT_BARRIER_DEFAULT (-2.0)

/* parties >= 1 (else -EINVAL); action may be NULL; timeout: the default
 * for waits, negative for none. Shared between processes, the action must
 * be valid in all of them (processes forked from one parent), and a party
 * that dies inside wait() breaks it for good (WEFT_EBROKEN, which reset()
 * cannot undo): the others' waits end broken at their timeout, or a few
 * seconds after the next break, so give the barrier a default timeout. */
WEFT_API int weft_barrier_init(weft_barrier_t *barrier, unsigned parties, int (*action)(void *arg),
                               void *arg, double timeout, unsigned flags);
/* -EBUSY while threads wait on it. */
WEFT_API int weft_barrier_destroy(weft_barrier_t *barrier);
/* The arrival index, or WEFT_EBROKEN, -EINVAL. */
WEFT_API int weft_barrier_wait(weft_barrier_t *barrier, double timeout);
WEFT_API int weft_barrier_abort(weft_barrier_t *barrier);
/* WEFT_EBROKEN if the barrier cannot be repaired: a shared one whose
 * process died inside it while a cycle was under way. */
WEFT_API int weft_barrier_reset(weft_barrier_t *barrier);
WEFT_API int weft_barrier_parties(weft_barrier_t *barrier);
/* Threads waiting in the current cycle. */
WEFT_API int weft_barrier_n_waiting(weft_barrier_t *barrier);
/* 1 if broken, 0 if not, -EINVAL. */
WEFT_API int weft_barrier_broken(weft_barrier_t *barrier);

/*
 * RWLock: many readers or one writer. Writers are preferred: once a writer
 * waits, new readers wait behind it, so a stream of readers cannot starve
 * writers. A thread that already holds a read lock may take another even
 * while a writer waits (a recursive read therefore never deadlocks, unlike
 * with glibc's writer-preferring kind). Releasing what the caller does not
 * hold is -EPERM: a write lock held by another thread, or a lock nobody
 * holds for reading (which reader holds it is not tracked).
 */
typedef struct weft_rwlock {
    uint32_t state;   /* internal: readers or write-locked, waiting bits */
    uint32_t wseq;    /* internal: futex writers sleep on */
    uint32_t writers; /* internal: writers waiting */
    uint32_t owner;   /* internal: the writer's thread id */
    uint32_t flags;   /* internal: as given to init */
} weft_rwlock_t;

#define WEFT_RWLOCK_INIT \
    {                    \
        0, 0, 0, 0, 0    \
    }

WEFT_API int weft_rwlock_init(weft_rwlock_t *rw, unsigned flags);
/* -EBUSY if held. */
WEFT_API int weft_rwlock_destroy(weft_rwlock_t *rw);
/* Errors: -EINVAL, -EAGAIN (timeout 0), -ETIMEDOUT. */
WEFT_API int weft_rwlock_acquire_read(weft_rwlock_t *rw, double timeout);
WEFT_API int weft_rwlock_release_read(weft_rwlock_t *rw);
/* Errors: -EINVAL, -EAGAIN (timeout 0), -ETIMEDOUT. */
WEFT_API int weft_rwlock_acquire_write(weft_rwlock_t *rw, double timeout);
WEFT_API int weft_rwlock_release_write(weft_rwlock_t *rw);
/* How many threads hold it for reading; -1 while write-locked. */
WEFT_API int weft_rwlock_readers(weft_rwlock_t *rw);

/*
 * Once: run a function exactly once, however many threads call at the same
 * time; all of them return after it has finished. A call from inside the
 * function itself is -EDEADLK instead of a hang.
 */
typedef struct weft_once {
    uint32_t state; /* internal */
    uint32_t flags; /* internal: as given to init */
} weft_once_t;

#define WEFT_ONCE_INIT \
    {                  \
        0, 0           \
    }

/* For a Once in shared memory (the static initialiser is private). */
WEFT_API int weft_once_init(weft_once_t *once, unsigned flags);
WEFT_API int weft_once_call(weft_once_t *once, void (*fn)(void *arg), void *arg);

/*
 * WaitGroup (Go's sync.WaitGroup): a counter of pending work. add(n) counts
 * work in (n may be negative), done() counts one piece out, wait blocks until
 * the counter is 0. A counter that would go below 0 is refused (-EINVAL) and
 * left unchanged. The group may be freed as soon as wait returns. Reusing
 * it (an add after the count reached 0) before every wait of the last round
 * has returned may keep such a waiter waiting for the next 0, as it saw the
 * count above 0 again; Go forbids that reuse.
 */
typedef struct weft_waitgroup {
    uint32_t count;    /* internal */
    uint32_t reserved; /* internal: unused, keeps the layout */
    uint32_t flags;    /* internal: as given to init */
} weft_waitgroup_t;

#define WEFT_WAITGROUP_INIT \
    {                       \
        0, 0, 0             \
    }

WEFT_API int weft_waitgroup_init(weft_waitgroup_t *wg, unsigned flags);
/* Errors: -EINVAL (below 0), -EOVERFLOW (above INT32_MAX). */
WEFT_API int weft_waitgroup_add(weft_waitgroup_t *wg, int n);
WEFT_API int weft_waitgroup_done(weft_waitgroup_t *wg);
/* Errors: -EINVAL, -EAGAIN (timeout 0, work pending), -ETIMEDOUT. */
WEFT_API int weft_waitgroup_wait(weft_waitgroup_t *wg, double timeout);

/*
 * Lock-order checker. Off by default; on when the environment has
 * WEFT_LOCKDEP=1 as the library loads, or after weft_lockdep_enable(true).
 * It records the order in which the calling threads take Lock, RLock,
 * critical-section and RWLock instances, and reports an inversion (A taken
 * before B in one place, B before A in another) the first time it becomes
 * possible, even if no deadlock happened; waiting forever for a
 * non-recursive lock the thread already holds is reported and returns
 * -EDEADLK instead of hanging. Reports name both acquisition sites (file,
 * line and function, recorded by the macros below in C) with backtraces,
 * and go to stderr or to the function given to weft_lockdep_set_reporter.
 * Off, it costs each lock operation one predictable branch.
 *
 * The checker assumes a lock is released by the thread that took it (use a
 * Semaphore or Event, not a Lock, to signal between threads while it is on)
 * and knows locks by address: destroy a lock before reusing its memory.
 */
typedef struct weft_site {
    const char *file;
    int line;
    const char *func;
} weft_site_t;

/* Returns whether it was on. Turning it on or off forgets what it learnt. */
WEFT_API bool weft_lockdep_enable(bool on);
/* fn(report, arg) for every report (NULL: print to stderr). */
WEFT_API void weft_lockdep_set_reporter(void (*fn)(const char *report, void *arg), void *arg);

/* The acquire functions with the caller's site; in C the plain names are
 * macros that pass it, so reports name the caller's line. */
WEFT_API int weft_lock_acquire_at(weft_lock_t *lock, double timeout, const weft_site_t *site);
WEFT_API int weft_rlock_acquire_at(weft_rlock_t *rlock, double timeout, const weft_site_t *site);
WEFT_API int weft_critsec_enter_at(weft_critsec_t *cs, const weft_site_t *site);
WEFT_API int weft_critsec_try_enter_at(weft_critsec_t *cs, const weft_site_t *site);
WEFT_API int weft_cond_acquire_at(weft_cond_t *cond, double timeout, const weft_site_t *site);
WEFT_API int weft_rwlock_acquire_read_at(weft_rwlock_t *rw, double timeout,
                                         const weft_site_t *site);
WEFT_API int weft_rwlock_acquire_write_at(weft_rwlock_t *rw, double timeout,
                                          const weft_site_t *site);

#if !defined(__cplusplus)
/* The calling line as a static weft_site_t: no run-time cost but its
 * address. */
#define WEFT_SITE                                                              \
    __extension__({                                                            \
        static const weft_site_t weft__site_ = {__FILE__, __LINE__, __func__}; \
        &weft__site_;                                                          \
    })
#define weft_lock_acquire(lock, timeout) weft_lock_acquire_at((lock), (timeout), WEFT_SITE)
#define weft_rlock_acquire(rl, timeout)  weft_rlock_acquire_at((rl), (timeout), WEFT_SITE)
#define weft_critsec_enter(cs)           weft_critsec_enter_at((cs), WEFT_SITE)
#define weft_critsec_try_enter(cs)       weft_critsec_try_enter_at((cs), WEFT_SITE)
#define weft_cond_acquire(cond, timeout) weft_cond_acquire_at((cond), (timeout), WEFT_SITE)
#define weft_rwlock_acquire_read(rw, t)  weft_rwlock_acquire_read_at((rw), (t), WEFT_SITE)
#define weft_rwlock_acquire_write(rw, t) weft_rwlock_acquire_write_at((rw), (t), WEFT_SITE)
#endif

/*
 * Scoped locking, Python's `with lock:`, in two forms.
 *
 * WEFT_WITH(&lock) { ... } runs the block with the lock held and releases it
 * on every way out of the block: the end, break, continue, return and goto
 * (a gcc/clang cleanup handler does it). It is a one-pass loop, so `break`
 * and `continue` inside it leave the block, not a loop around it (the Linux
 * kernel's scoped_guard has the same rule, for the same reason). If the lock
 * cannot be acquired at all (a NULL pointer, an unrecoverable shared lock, a
 * lock the thread already holds, which the lock-order checker refuses with
 * -EDEADLK), the block is skipped; a shared lock whose owner died is released unrepaired (see
 * above) and the block skipped.
 *
 * WEFT_GUARD(&lock); is a statement: the lock is held from there to the end
 * of the enclosing scope, and released on every way out of it, so `break`
 * and `continue` reach the loop around it (the kernel's guard(mutex)):
 *
 *     for (;;) {
 *         WEFT_GUARD(&lock);
 *         if (count >= end)
 *             break;          // leaves the loop, releasing the lock
 *         count++;
 *     }                       // released here on every other pass
 *
 * Nothing may jump into a guard's scope from before it (a `goto out;` above
 * it to a label below it, a later case label of the switch it is in): its
 * release would run on a guard that was never set up. Such a jump does not
 * compile, with gcc as with clang; put the guard in a block of its own.
 *
 * A statement cannot skip what follows it, so WEFT_GUARD never goes on
 * without the lock: if the acquire fails it calls weft_guard_failed(), which
 * prints the site and the error to stderr and aborts. Where an acquire can
 * fail (a shared lock, the lock-order checker on), use
 * WEFT_GUARD_RC(&lock, rc);, which declares `const int rc` holding the
 * acquire's result and releases the lock at the end of the scope only if it
 * was taken: rc is 0, or -EOWNERDEAD with the lock held (repair the data and
 * call weft_*_consistent(), or leave it unrepaired), or another negative
 * code with the lock not held.
 *
 * All three work for weft_lock_t, weft_rlock_t, weft_critsec_t, weft_cond_t
 * (its lock) and weft_sem_t (one unit); for a weft_rwlock_t use
 * WEFT_WITH_READ / WEFT_WITH_WRITE, WEFT_GUARD_READ / WEFT_GUARD_WRITE and
 * WEFT_GUARD_READ_RC / WEFT_GUARD_WRITE_RC.
 */
#if !defined(__cplusplus)
/* Prints "weft: WEFT_GUARD at file:line (func): <weft_strerror(error)>" to
 * stderr and aborts. */
WEFT_API _Noreturn void weft_guard_failed(const weft_site_t *site, int error);

struct weft__guard {
    void *obj; /* NULL when the lock is not held */
    int (*release)(void *obj);
    int rc;
    const weft_site_t *site;
    int once; /* WEFT_WITH's one pass */
};

static inline void weft__guard_release(struct weft__guard *g)
{
    if (g->obj)
        g->release(g->obj);
}

/* One pair per lock type: take it (obj NULL when that fails; held with
 * -EOWNERDEAD) and give it back through a void * the guard can hold. */
#define WEFT__GUARD_PAIR(type, name, take, give)                                            \
    static inline int weft__give_##name(void *obj)                                          \
    {                                                                                       \
        return give((type *)obj);                                                           \
    }                                                                                       \
    static inline struct weft__guard weft__guard_##name(type *obj, const weft_site_t *site) \
    {                                                                                       \
        struct weft__guard g = {obj, weft__give_##name, take, site, 1};                     \
        if (g.rc < 0 && g.rc != -EOWNERDEAD)                                                \
            g.obj = NULL;                                                                   \
        return g;                                                                           \
    }

WEFT__GUARD_PAIR(weft_lock_t, lock, weft_lock_acquire_at(obj, WEFT_FOREVER, site),
                 weft_lock_release)
WEFT__GUARD_PAIR(weft_rlock_t, rlock, weft_rlock_acquire_at(obj, WEFT_FOREVER, site),
                 weft_rlock_release)
WEFT__GUARD_PAIR(weft_critsec_t, critsec, weft_critsec_enter_at(obj, site), weft_critsec_leave)
WEFT__GUARD_PAIR(weft_cond_t, cond, weft_cond_acquire_at(obj, WEFT_FOREVER, site),
                 weft_cond_release)
static inline int weft__sem_release_one(weft_sem_t *sem)
{
    return weft_sem_release(sem, 1);
}
WEFT__GUARD_PAIR(weft_sem_t, sem, ((void)site, weft_sem_acquire(obj, WEFT_FOREVER)),
                 weft__sem_release_one)

WEFT__GUARD_PAIR(weft_rwlock_t, read, weft_rwlock_acquire_read_at(obj, WEFT_FOREVER, site),
                 weft_rwlock_release_read)
WEFT__GUARD_PAIR(weft_rwlock_t, write, weft_rwlock_acquire_write_at(obj, WEFT_FOREVER, site),
                 weft_rwlock_release_write)

/* WEFT_WITH's start: a lock whose owner died goes back unrepaired. */
static inline struct weft__guard weft__with(struct weft__guard g)
{
    if (g.rc == -EOWNERDEAD) {
        g.release(g.obj);
        g.obj = NULL;
    }
    return g;
}

static inline struct weft__guard weft__guard_or_fail(struct weft__guard g)
{
    if (g.rc < 0)
        weft_guard_failed(g.site, g.rc); /* the owner-died case included */
    return g;
}

#define WEFT__GUARD(x)                             \
    _Generic((x), weft_lock_t *                    \
             : weft__guard_lock, weft_rlock_t *    \
             : weft__guard_rlock, weft_critsec_t * \
             : weft__guard_critsec, weft_cond_t *  \
             : weft__guard_cond, weft_sem_t *      \
             : weft__guard_sem)(x, WEFT_SITE)

#define WEFT__CAT2(a, b) a##b
#define WEFT__CAT(a, b)  WEFT__CAT2(a, b)
/* unused: a WEFT_GUARD's variable is only ever read by its cleanup, which
 * clang's -Wunused-variable does not count. */
#define WEFT__GUARD_VAR(g, init) \
    struct weft__guard g __attribute__((cleanup(weft__guard_release), unused)) = init
#define WEFT__WITH_AS(g, init) \
    for (WEFT__GUARD_VAR(g, weft__with(init)); g.obj && g.once; g.once = 0)
#define WEFT__NEW(g)        WEFT__CAT(g, __COUNTER__)
#define WEFT_WITH(x)        WEFT__WITH_AS(WEFT__NEW(weft__with_), WEFT__GUARD(x))
#define WEFT_WITH_READ(rw)  WEFT__WITH_AS(WEFT__NEW(weft__with_), weft__guard_read(rw, WEFT_SITE))
#define WEFT_WITH_WRITE(rw) WEFT__WITH_AS(WEFT__NEW(weft__with_), weft__guard_write(rw, WEFT_SITE))

/* A statement guard: a jump past it into its scope would run the cleanup on
 * an uninitialized guard. clang refuses that jump for the cleanup alone, gcc
 * only into the scope of a variably modified type, so one is declared just
 * before the guard (a typedef: nothing is allocated; -Wvla kept quiet). */
static inline int weft__guard_scope(void)
{
    return 1;
}
#define WEFT__VLA_QUIET _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wvla\"")
#define WEFT__VLA_LOUD  _Pragma("GCC diagnostic pop")
#define WEFT__GUARD_STMT(g, init)                                          \
    WEFT__VLA_QUIET typedef char WEFT__CAT(g, _scope)[weft__guard_scope()] \
        __attribute__((unused));                                           \
    WEFT__VLA_LOUD WEFT__GUARD_VAR(g, init)

#define WEFT_GUARD(x) WEFT__GUARD_STMT(WEFT__NEW(weft__guard_), weft__guard_or_fail(WEFT__GUARD(x)))
#define WEFT_GUARD_READ(rw) \
    WEFT__GUARD_STMT(WEFT__NEW(weft__guard_), weft__guard_or_fail(weft__guard_read(rw, WEFT_SITE)))
#define WEFT_GUARD_WRITE(rw) \
    WEFT__GUARD_STMT(WEFT__NEW(weft__guard_), weft__guard_or_fail(weft__guard_write(rw, WEFT_SITE)))
#define WEFT__GUARD_RC(g, init, var) \
    WEFT__GUARD_STMT(g, init);       \
    const int var = g.rc
#define WEFT_GUARD_RC(x, var) WEFT__GUARD_RC(WEFT__NEW(weft__guard_), WEFT__GUARD(x), var)
#define WEFT_GUARD_READ_RC(rw, var) \
    WEFT__GUARD_RC(WEFT__NEW(weft__guard_), weft__guard_read(rw, WEFT_SITE), var)
#define WEFT_GUARD_WRITE_RC(rw, var) \
    WEFT__GUARD_RC(WEFT__NEW(weft__guard_), weft__guard_write(rw, WEFT_SITE), var)
#endif /* !__cplusplus */

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
