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

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Lock (threading.Lock): 4 bytes. Any thread may release it, as in Python;
 * releasing a lock that is not held is -EPERM. The word is 0 when free, 1
 * when held, 2 when held with threads asleep waiting for it.
 */
typedef struct weft_lock {
    uint32_t word;
} weft_lock_t;

#define WEFT_LOCK_INIT {0}

WEFT_API int weft_lock_init(weft_lock_t *lock);
/* -EBUSY if the lock is held. */
WEFT_API int weft_lock_destroy(weft_lock_t *lock);
/* Errors: -EINVAL, -EAGAIN (timeout 0 and held), -ETIMEDOUT. */
WEFT_API int weft_lock_acquire(weft_lock_t *lock, double timeout);
/* Errors: -EINVAL, -EPERM (not held). */
WEFT_API int weft_lock_release(weft_lock_t *lock);
/* 1 if held, 0 if free, -EINVAL for NULL. */
WEFT_API int weft_lock_locked(weft_lock_t *lock);

/*
 * RLock (threading.RLock): the owner may acquire it again; it is free once
 * released as many times as acquired. Release by a thread that does not own
 * it is -EPERM. The word holds the owner's kernel thread id.
 */
typedef struct weft_rlock {
    uint32_t word;
    uint32_t count; /* re-entries beyond the first */
} weft_rlock_t;

#define WEFT_RLOCK_INIT {0, 0}

WEFT_API int weft_rlock_init(weft_rlock_t *rlock);
/* -EBUSY if the lock is held. */
WEFT_API int weft_rlock_destroy(weft_rlock_t *rlock);
/* Errors: -EINVAL, -EAGAIN, -ETIMEDOUT, -EOVERFLOW (held 2^32-1 times). */
WEFT_API int weft_rlock_acquire(weft_rlock_t *rlock, double timeout);
/* Errors: -EINVAL, -EPERM (the caller does not own it). */
WEFT_API int weft_rlock_release(weft_rlock_t *rlock);
/* 1 if the calling thread owns it (Python's _is_owned), else 0; -EINVAL. */
WEFT_API int weft_rlock_is_owned(weft_rlock_t *rlock);

/*
 * Critical section: a recursive, owner-checked lock with a spin count, after
 * Windows' CRITICAL_SECTION. enter waits as long as it takes; try_enter does
 * not wait; leave by a thread that is not the owner is -EPERM.
 */
typedef struct weft_critsec {
    uint32_t word;
    uint32_t count;
    uint32_t spin;
} weft_critsec_t;

/* The spin count WEFT_CRITSEC_INIT and weft_rlock_t use. */
#define WEFT_CRITSEC_DEFAULT_SPIN 16
#define WEFT_CRITSEC_INIT {0, 0, WEFT_CRITSEC_DEFAULT_SPIN}

/* spin: how many times a thread polls a held section before it sleeps. */
WEFT_API int weft_critsec_init(weft_critsec_t *cs, uint32_t spin);
WEFT_API int weft_critsec_destroy(weft_critsec_t *cs);
/* Errors: -EINVAL, -EOVERFLOW. */
WEFT_API int weft_critsec_enter(weft_critsec_t *cs);
/* Errors: -EINVAL, -EAGAIN (owned by another thread), -EOVERFLOW. */
WEFT_API int weft_critsec_try_enter(weft_critsec_t *cs);
/* Errors: -EINVAL, -EPERM. */
WEFT_API int weft_critsec_leave(weft_critsec_t *cs);
/* Change the spin count; returns the previous one, or -EINVAL. */
WEFT_API long weft_critsec_set_spin(weft_critsec_t *cs, uint32_t spin);

/*
 * WEFT_WITH(&lock) { ... }: Python's `with lock:`. The block runs with the
 * lock held, and the lock is released on every way out of the block: the end,
 * break, continue, return and goto (a gcc/clang cleanup handler does it).
 * Works for weft_lock_t, weft_rlock_t and weft_critsec_t. If the lock cannot
 * be acquired at all (a NULL pointer), the block is skipped.
 *
 * One difference from Python: the macro is a one-pass loop, so `break` and
 * `continue` inside the block leave the block (releasing the lock), not a
 * loop around it; to leave an enclosing loop, set a flag or use goto. (The
 * Linux kernel's scoped_guard has the same rule, for the same reason.)
 */
#if !defined(__cplusplus)
struct weft__guard {
    void *obj;
    int (*release)(void *obj);
    int once;
};

static inline void weft__guard_release(struct weft__guard *g)
{
    if (g->obj)
        g->release(g->obj);
}

/* One pair per lock type: take it (NULL object when that fails) and give it
 * back through a void * the guard can hold. */
#define WEFT__GUARD_PAIR(type, name, take, give)                                                   \
    static inline int weft__give_##name(void *obj)                                                 \
    {                                                                                              \
        return give((type *)obj);                                                                  \
    }                                                                                              \
    static inline struct weft__guard weft__guard_##name(type *obj)                                 \
    {                                                                                              \
        struct weft__guard g = {obj, weft__give_##name, 1};                                        \
        if (take < 0)                                                                              \
            g.obj = NULL;                                                                          \
        return g;                                                                                  \
    }

WEFT__GUARD_PAIR(weft_lock_t, lock, weft_lock_acquire(obj, WEFT_FOREVER), weft_lock_release)
WEFT__GUARD_PAIR(weft_rlock_t, rlock, weft_rlock_acquire(obj, WEFT_FOREVER), weft_rlock_release)
WEFT__GUARD_PAIR(weft_critsec_t, critsec, weft_critsec_enter(obj), weft_critsec_leave)

#define WEFT__GUARD(x)                                                                             \
    _Generic((x),                                                                                  \
        weft_lock_t *: weft__guard_lock,                                                           \
        weft_rlock_t *: weft__guard_rlock,                                                         \
        weft_critsec_t *: weft__guard_critsec)(x)

#define WEFT__CAT2(a, b) a##b
#define WEFT__CAT(a, b) WEFT__CAT2(a, b)
#define WEFT__WITH(g, x)                                                                           \
    for (struct weft__guard g __attribute__((cleanup(weft__guard_release))) = WEFT__GUARD(x);      \
         g.obj && g.once; g.once = 0)
#define WEFT_WITH(x) WEFT__WITH(WEFT__CAT(weft__with_, __COUNTER__), x)
#endif /* !__cplusplus */

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_H */
