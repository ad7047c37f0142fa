/*
 * weft_run, and M:N mode: the tasks of one run on opts.threads loops, one
 * per thread (Go's model, where asyncio has one thread).
 *
 * Each loop keeps what it had alone: its ready queue, timer heap, epoll,
 * stack cache and portal. A task runs on one loop at a time (t->loop) and
 * parks there; whatever wakes it queues it back on that loop (directly
 * from the loop's thread, else through its portal), which then gives back
 * the park's timer and descriptor on its own thread (loop.c). So a task
 * changes loops only while it sits in a ready queue: a loop that runs out
 * of work takes half of another's queue (work stealing), and a loop that
 * queues a task wakes one that sleeps, so that it can come and take it.
 * Ready queues are FIFO lists under a small lock rather than the pool's
 * Chase-Lev deques: their owner's end is last-in first-out, which would
 * run a yielding task again before the others, and a list needs no memory
 * to queue into, so a wake-up never fails.
 *
 * Going to sleep without losing a wake-up (Dekker's pattern): a loop sets
 * its idle flag, fences, and looks at every queue once more; a loop that
 * queues a task fences and then looks for an idle flag to clear. One of
 * them sees the other.
 *
 * The end: once main has ended, every live task is cancelled once, under
 * the sched's lock, and so is every task started from then on, at its
 * birth; when the last one is reaped the loops stop, the workers exit,
 * and weft_run's thread tears everything down.
 *
 * A task inside a timeout scope stays on its loop, whose heap holds the
 * scope's timer.
 */
#include "async/async_int.h"

#include "pool/future_int.h"

#include <errno.h>
#include <stdlib.h>

enum { STACK_DEFAULT = 64 * 1024, STEAL_MAX = 32 };

void weft__sched_nudge(struct weft__loop *l)
{
    weft__portal_nudge(l->portal);
}

/* Stealing. */

size_t weft__sched_steal(struct weft__loop *l)
{
    struct weft__sched *s = l->sched;
    for (size_t i = 1; i < s->n; i++) {
        struct weft__loop *v = s->loops[(l->index + i) % s->n];
        size_t movable = weft__count_of(&v->nmovable);
        if (movable == 0 || weft__loop_reserve(l) != 0)
            continue;
        size_t half = (movable + 1) / 2;
        struct weft_co *got[STEAL_MAX];
        size_t n = weft__loop_detach(v, l, got, half < STEAL_MAX ? half : STEAL_MAX);
        for (size_t k = 0; k < n; k++)
            weft__loop_adopt(l, got[k]);
        if (n)
            return n;
    }
    return 0;
}

/* Sleeping and waking. */

static bool sched_over(struct weft__loop *l, void *arg);

static bool work_anywhere(struct weft__loop *l)
{
    struct weft__sched *s = l->sched;
    for (size_t i = 0; i < s->n; i++)
        if (weft__count_of(&s->loops[i]->nmovable))
            return true;
    return sched_over(l, NULL);
}

bool weft__sched_idle_begin(struct weft__loop *l)
{
    struct weft__sched *s = l->sched;
    atomic_store_explicit(&l->idle, 1, memory_order_relaxed);
    atomic_fetch_add(&s->idle, 1);
    weft__fence_after_atomic();
    if (!work_anywhere(l) && !weft__portal_busy(l->portal))
        return true;
    weft__sched_idle_end(l);
    return false;
}

void weft__sched_idle_end(struct weft__loop *l)
{
    if (atomic_exchange_explicit(&l->idle, 0, memory_order_relaxed))
        atomic_fetch_sub_explicit(&l->sched->idle, 1, memory_order_relaxed);
}

void weft__sched_wake_idle(struct weft__loop *from)
{
    struct weft__sched *s = from->sched;
    weft__fence();
    if (!atomic_load_explicit(&s->idle, memory_order_relaxed))
        return;
    for (size_t i = 1; i < s->n; i++) {
        struct weft__loop *v = s->loops[(from->index + i) % s->n];
        if (atomic_load_explicit(&v->idle, memory_order_relaxed) &&
            atomic_exchange_explicit(&v->idle, 0, memory_order_relaxed)) {
            atomic_fetch_sub_explicit(&s->idle, 1, memory_order_relaxed);
            weft__sched_nudge(v);
            return;
        }
    }
}

/* The end of a run. */

static bool main_done(struct weft__loop *l, void *arg)
{
    WEFT__UNUSED(l);
    return weft__future_finished(arg);
}

/* Once main has ended: cancel every task still live, once; those started
 * from now on start cancelled (co.c). */
static bool rest_cancelled(struct weft__loop *l, void *arg)
{
    WEFT__UNUSED(arg);
    struct weft__sched *s = l->sched;
    if (!atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        weft__sched_lock(s);
        atomic_store_explicit(&s->stopping, true, memory_order_relaxed);
        for (struct weft_co *t = s->all; t; t = t->all_next)
            if (!t->stopped) {
                t->stopped = true;
                weft_co_cancel(t);
            }
        weft__sched_unlock(s);
    }
    return atomic_load_explicit(&s->live, memory_order_acquire) == 0;
}

/* A worker's loop ends with the run, but not before a task that a call
 * already taken from its portal started as the run was ending. */
static bool sched_over(struct weft__loop *l, void *arg)
{
    WEFT__UNUSED(arg);
    struct weft__sched *s = l->sched;
    return atomic_load_explicit(&s->over, memory_order_acquire) &&
           atomic_load_explicit(&s->live, memory_order_acquire) == 0;
}

/* base's weft__loop_forget: in a forked child, the thread runs no loop. */
static void forget_loop(void)
{
    weft__loop_self = NULL;
}

/* The threads of M:N mode. */

/* A worker says how its start went before it runs: weft_run fails as a
 * whole if one could not. */
static void *worker(void *arg)
{
    struct weft__loop *l = arg;
    struct weft__sched *s = l->sched;
    int rc = weft__loop_enter(l);
    if (rc != 0) {
        int none = 0;
        atomic_compare_exchange_strong(&s->start_error, &none, rc);
    }
    if (atomic_fetch_sub(&s->starting, 1) == 1)
        weft__unpark(&s->starting, 1, 0);
    if (rc != 0)
        return NULL;
    weft__loop_run_until(l, sched_over, NULL);
    weft__loop_leave(l);
    return NULL;
}

static int workers_started(struct weft__sched *s)
{
    for (uint32_t left; (left = atomic_load(&s->starting)) != 0;)
        weft__park(&s->starting, left, WEFT__NEVER, 0);
    return atomic_load(&s->start_error);
}

static void sched_free(struct weft__sched *s, size_t started)
{
    /* No more calls from other threads: those still queued are dropped
     * (a spawn's future cancelled). */
    for (size_t i = 0; i < s->n; i++)
        if (s->loops && s->loops[i] && s->loops[i]->portal)
            weft__portal_close(s->loops[i]->portal);
    atomic_store_explicit(&s->over, true, memory_order_release);
    for (size_t i = 1; i <= started; i++) {
        weft__sched_nudge(s->loops[i]);
        pthread_join(s->workers[i - 1], NULL);
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->loops[i]) {
            weft__loop_destroy(s->loops[i]);
            free(s->loops[i]);
        }
    free(s->loops);
    free(s->workers);
}

/* n loops, and the threads of all but the first: 0, or an error with
 * everything undone. */
static int sched_init(struct weft__sched *s, const weft_run_opts_t *opts)
{
    size_t n = opts && opts->threads > 1 ? opts->threads : 1;
    *s = (struct weft__sched){.n = n, .mn = n > 1};
    s->stack_size = opts && opts->stack_size ? opts->stack_size : STACK_DEFAULT;
    atomic_init(&s->next_id, 1);
    s->loops = weft__calloc(n, sizeof *s->loops);
    s->workers = weft__calloc(n, sizeof *s->workers);
    int rc = s->loops && s->workers ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        s->loops[i] = weft__malloc(sizeof *s->loops[i]);
        rc = s->loops[i] ? weft__loop_init(s->loops[i], s, i) : -ENOMEM;
    }
    size_t started = 0;
    atomic_init(&s->starting, (uint32_t)n - 1);
    while (rc == 0 && started + 1 < n &&
           (rc = -weft__sys.pthread_create(&s->workers[started], NULL, worker,
                                           s->loops[started + 1])) == 0)
        started++;
    if (rc != 0) /* those never started will not say */
        atomic_fetch_sub(&s->starting, (uint32_t)(n - 1 - started));
    if (s->workers && rc == 0)
        rc = workers_started(s);
    if (rc == 0)
        rc = weft__loop_enter(s->loops[0]);
    if (rc != 0 && s->loops)
        sched_free(s, started);
    else if (rc != 0)
        free(s->workers);
    return rc;
}

int weft_run(weft_co_fn main, void *arg, const weft_run_opts_t *opts, void **result)
{
    if (!main || (opts && opts->threads > WEFT_RUN_THREADS_MAX))
        return -EINVAL;
    if (weft__loop_self)
        return -EPERM;
    struct weft__sched s;
    int rc = sched_init(&s, opts);
    if (rc != 0)
        return rc;
    struct weft__loop *l = s.loops[0];
    weft__lot_install();
    atomic_store_explicit(&weft__task_owner, weft__co_owner, memory_order_release);
    atomic_store_explicit(&weft__loop_forget, forget_loop, memory_order_release);
    rc = weft__co_new(l, &s.main, true, main, arg, &(weft_co_opts_t){"main", 0});
    if (rc == 0) {
        weft__loop_run_until(l, main_done, s.main->future);
        weft__loop_run_until(l, rest_cancelled, NULL);
        rc = weft_future_result(s.main->future, 0, result);
        weft_co_free(s.main);
    }
    weft__loop_leave(l);
    sched_free(&s, s.n - 1);
    return rc;
}
