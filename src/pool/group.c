/*
 * Task groups (weft/pool.h): fork-join without futures.
 *
 * Why. fib(30) with a future per task (bench/pool.c, pool_fib_30) spent
 * its time, by perf on 2 workers, in the future rather than in the
 * scheduling: a quarter in calloc and free (glibc 2.36's calloc never
 * takes from the per-thread cache of freed blocks, so every calloc and
 * free went the long way), a fifth in the future's Lock (taken four times
 * per task: set running, finish, watch and unwatch by the waiting
 * worker), a tenth in its reference counts, a twentieth reading the clock
 * for a wait without end; the deques, the submit and the run together
 * were about 15%. oneTBB's task_group pays none of that: its task is a
 * small object from a per-thread cache and its wait is a count on the
 * waiter's stack. A group does the same in C, with less: the task is
 * queued by value (three words in a deque slot, deque.h), so run()
 * allocates nothing; a task costs the group two atomic additions on one
 * word. What is left, by perf: those two, the deque's take fence and the
 * submit's wake-up check (evc.h), and the deque. fib(30) on 2 CPUs: about
 * 120 ms through groups, 165-190 through tbb::task_group, 230-290 through
 * futures (after the futures' own fixes: malloc, no Lock to start, late
 * watches).
 *
 * State. `state` is twice the number of tasks run and not finished, plus
 * bit 0, WAITING: a waiter may sleep, and whoever brings the count to 0
 * must wake it (`waker` says how: the pool of a worker that helps while it
 * waits, or NULL for a thread parked on `state`). The waiter sets the bit
 * only when it is about to sleep, with a compare-and-swap that fails if
 * the count is 0; the last finisher's subtraction either sees the bit or
 * comes before it; both act on one word, so neither misses the other.
 *
 * Lifetime. The waiter leaves only once `state` is exactly 0. A finisher
 * that found WAITING leaves it set while it wakes the waiter, and stores 0
 * last: nothing of the group is touched after that store, so once wait has
 * returned the group may go out of scope at once (a waiter that sees a
 * count of 0 with the bit still set waits the few instructions until that
 * store). A parked waiter is woken on `state` before the store, so no
 * wake-up reaches memory that has become something else.
 *
 * Errors. The first error is kept in `error` by a compare-and-swap from
 * 0; a task that finds it set when its turn comes is skipped, and run()
 * refuses new tasks. The waiter reads it after seeing the count at 0, and
 * clears it, so a group waited for can be used again.
 *
 * ThreadSanitizer (base/tsan.h): each finisher releases the group before
 * its subtraction, and wait acquires it after seeing 0; the hand-off of a
 * task to its thief goes through the deque's slot (deque.h) or the
 * injection queue.
 */
#include "base/spin.h"
#include "pool/future_int.h"
#include "pool/sched.h"

#include <math.h>

#define WAITING 1u
#define ONE     2u                    /* one task, in `state` */
#define LIMIT   (UINT32_MAX / 2 + 1u) /* 2^30 tasks */

static _Atomic uint32_t *state(weft_group_t *g)
{
    return (_Atomic uint32_t *)&g->state;
}

static _Atomic int32_t *error_of(weft_group_t *g)
{
    return (_Atomic int32_t *)&g->error;
}

static weft_pool_t *_Atomic *waker(weft_group_t *g)
{
    return (weft_pool_t * _Atomic *)&g->waker;
}

static void fail(weft_group_t *g, int error)
{
    int32_t none = 0;
    atomic_compare_exchange_strong_explicit(error_of(g), &none, error, memory_order_relaxed,
                                            memory_order_relaxed);
}

/* The last task has finished and the waiter may sleep: wake it, then let
 * it go. */
static void wake(weft_group_t *g)
{
    weft_pool_t *helping = atomic_load_explicit(waker(g), memory_order_relaxed);
    if (helping)
        weft__pool_wake(helping);
    else
        weft__unpark(state(g), 1, WEFT__WAIT_POOL);
    atomic_store_explicit(state(g), 0, memory_order_release);
}

/* A task of the group has finished, or will not run. */
static void finish(weft_group_t *g, int error)
{
    if (error)
        fail(g, error);
    weft__tsan_release(g);
    /* acquire: `waker`, written before the waiter set its bit */
    if (WEFT__UNLIKELY(atomic_fetch_sub_explicit(state(g), ONE, memory_order_acq_rel) ==
                       (ONE | WAITING)))
        wake(g);
}

void weft__group_exec(weft_group_t *g, const weft__task_t *t, int error)
{
    if (!error && !atomic_load_explicit(error_of(g), memory_order_relaxed))
        error = weft__task_run(t->fn, t->arg);
    finish(g, error);
}

int weft_group_init(weft_group_t *g, weft_pool_t *pool)
{
    if (!g)
        return -EINVAL;
    if (!pool && !(pool = weft__worker_pool()) && !(pool = weft_pool_default()))
        return -ENOMEM;
    *g = (weft_group_t){pool, NULL, 0, 0};
    return 0;
}

int weft_group_run(weft_group_t *g, void *(*fn)(void *arg), void *arg)
{
    if (!g || !fn || !g->pool)
        return -EINVAL;
    if (atomic_load_explicit(error_of(g), memory_order_relaxed))
        return -ECANCELED;
    /* Counted first: the task may finish before the push returns. */
    uint32_t before = atomic_fetch_add_explicit(state(g), ONE, memory_order_relaxed);
    int rc = before < LIMIT ? 0 : -EOVERFLOW;
    if (rc == 0)
        rc =
            weft__pool_enqueue(g->pool, &(weft__task_t){fn, arg, (uintptr_t)g | WEFT__OWNER_GROUP});
    if (rc < 0)
        finish(g, 0);
    return rc;
}

/* 0 once every task has finished and the last has let go of the group
 * (state exactly 0), else -EAGAIN. */
static int done(void *arg)
{
    weft_group_t *g = arg;
    uint32_t s = atomic_load_explicit(state(g), memory_order_acquire);
    if (s >= ONE)
        return -EAGAIN;
    for (weft__stall_t stall = WEFT__STALL_INIT; s; s = atomic_load(state(g)))
        weft__stall(&stall); /* the last task is waking this waiter */
    return 0;
}

/* Ask the last task to wake this waiter (helping: its pool; NULL: parked
 * on state): -EAGAIN, or what done says if the count is 0 already. */
static int arm(weft_group_t *g, weft_pool_t *helping)
{
    atomic_store_explicit(waker(g), helping, memory_order_relaxed);
    uint32_t s = atomic_load_explicit(state(g), memory_order_relaxed);
    do
        if (s < ONE)
            return done(g);
    while (!atomic_compare_exchange_weak_explicit(state(g), &s, s | WAITING, memory_order_release,
                                                  memory_order_relaxed));
    return -EAGAIN;
}

/* After a timeout: take the request back, -ETIMEDOUT; or 0, if the last
 * task finished meanwhile (it clears the bit itself). */
static int disarm(weft_group_t *g)
{
    uint32_t s = atomic_load_explicit(state(g), memory_order_relaxed);
    do
        if (s < ONE)
            return done(g);
    while (!atomic_compare_exchange_weak_explicit(state(g), &s, s & ~WAITING, memory_order_relaxed,
                                                  memory_order_relaxed));
    return -ETIMEDOUT;
}

static int arm_helping(void *arg)
{
    return arm(arg, weft__worker_pool());
}

/* A worker runs the pool's tasks meanwhile (its own deque first, where
 * the group's tasks it ran itself are). */
static int wait_helping(weft_group_t *g, weft__deadline_t deadline)
{
    int rc = weft__worker_help(&(weft__until_t){done, arm_helping, g}, deadline);
    return rc == -ETIMEDOUT ? disarm(g) : rc;
}

/* Another thread polls briefly (the last tasks may be about to finish),
 * then parks on state. */
static int wait_parked(weft_group_t *g, weft__deadline_t deadline)
{
    weft__spin_t spin;
    for (weft__spin_begin(&spin, WEFT__SPIN_HANDOFF); weft__spin_next(&spin);)
        if (done(g) == 0)
            return 0;
    int rc = arm(g, NULL);
    for (uint32_t s; rc == -EAGAIN; rc = done(g)) {
        int parked = (s = atomic_load(state(g))) >= ONE
                         ? weft__park(state(g), s, deadline, WEFT__WAIT_POOL)
                         : 0;
        if (parked == -ETIMEDOUT)
            return disarm(g);
        if (parked == -ECANCELED) { /* a task, cancelled: unless the group is done now */
            if ((rc = disarm(g)) == -ETIMEDOUT)
                return parked;
            weft__park_recancel();
            return rc;
        }
    }
    return rc;
}

int weft_group_wait(weft_group_t *g, double timeout)
{
    if (!g || !g->pool || isnan(timeout))
        return -EINVAL;
    int rc = done(g);
    if (rc == -EAGAIN && timeout != 0) {
        weft__deadline_t deadline;
        weft__deadline(timeout, &deadline);
        rc = weft__worker_pool() ? wait_helping(g, deadline) : wait_parked(g, deadline);
    }
    if (rc < 0)
        return rc;
    weft__tsan_acquire(g);
    rc = atomic_load_explicit(error_of(g), memory_order_relaxed);
    atomic_store_explicit(error_of(g), 0, memory_order_relaxed); /* ready for reuse */
    return rc;
}

int weft_group_cancel(weft_group_t *g)
{
    if (!g || !g->pool)
        return -EINVAL;
    fail(g, -ECANCELED);
    return 0;
}

int weft_group_destroy(weft_group_t *g)
{
    if (!g || !g->pool)
        return -EINVAL;
    if (atomic_load(state(g)) != 0)
        return -EBUSY;
    g->pool = NULL;
    return 0;
}
