/*
 * Future (weft/future.h): states, outcome, waiting, cancellation and
 * callbacks; the struct and its invariants are in future_int.h.
 *
 * Starting a task (PENDING to RUNNING) is one compare-and-swap, without
 * the Lock; cancelling is a compare-and-swap from PENDING too (under the
 * Lock), so exactly one of them wins. Every other change of state, and
 * the callbacks and watchers, are under the Lock.
 *
 * Finishing (set_result, set_error, cancel, the end of a task) takes the
 * Lock, stores the outcome and then the state, detaches the callbacks and
 * notifies the watchers, all under the Lock; then, outside it, wakes the
 * threads asleep in result() and runs the callbacks in order. Taking the
 * callbacks under the same Lock that add_done_callback checks the state
 * under is what makes each callback run exactly once: either the adder sees
 * the future finished and runs it itself, or the finisher finds it in the
 * list.
 *
 * result() sleeps on the state word with a sleepers count beside it,
 * unless the calling thread is a pool worker, which runs other tasks
 * instead. The sleeper counts itself under the Lock, having seen the state
 * unfinished, and the finisher reads the count under the Lock, having
 * stored the state: the Lock orders the two, so the state is a release
 * store, not a full fence, and a finish nobody waits for costs the Lock's
 * two compare-and-swaps and nothing more.
 *
 * ThreadSanitizer (base/tsan.h): finishing releases the future's address
 * before the state is stored, and whoever learns that it finished (result,
 * error, done, as_completed) acquires it, so what the task or the setter
 * wrote before is ordered before what the reader does after. A task's run
 * acquires it too, for what its submitter wrote before the submit
 * (pool.c releases it there).
 */
#include "pool/future_int.h"
#include "sync/hold.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

struct weft__callback {
    struct weft__callback *next;
    weft_future_cb fn;
    void *arg;
};

/* The task the calling thread runs, for weft_task_fail. */
static _Thread_local weft_future_t *current_task WEFT__TLS_FAST;
static _Thread_local int current_error WEFT__TLS_FAST;

/* malloc, not calloc: glibc's calloc (before 2.41) never takes from the
 * thread's cache of freed blocks, so with a future per task the cache
 * stayed full and every calloc and free went the long way; they took a
 * quarter of fib(30)'s time (bench/pool.c), and malloc half as much. */
void weft__future_init(weft_future_t *f)
{
    *f = (weft_future_t){.refs = 1};
    f->last = &f->callbacks;
}

weft_future_t *weft__future_alloc(void)
{
    weft_future_t *f = weft__malloc(sizeof *f);
    if (f)
        weft__future_init(f);
    return f;
}

void weft__future_ref(weft_future_t *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void weft__future_dispose(weft_future_t *f)
{
    for (struct weft__callback *c = f->callbacks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    if (f->drop)
        f->drop(f);
}

void weft__future_unref(weft_future_t *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    weft__future_dispose(f);
    free(f);
}

int weft_future_new(weft_future_t **f)
{
    if (!f)
        return -EINVAL;
    return (*f = weft__future_alloc()) ? 0 : -ENOMEM;
}

int weft_future_free(weft_future_t *f)
{
    if (!f)
        return -EINVAL;
    weft__future_unref(f);
    return 0;
}

/* What finish is asked for beyond the states: CANCELLED from RUNNING, for
 * a task of the async layer that stopped when asked. */
enum { F_STOPPED = F_DONE + 1 };

/* Store the final state: DONE from PENDING or RUNNING; CANCELLED only
 * from PENDING, which a worker may leave meanwhile (false then), or as
 * F_STOPPED from either. */
static bool publish(weft_future_t *f, uint32_t state)
{
    uint32_t pending = F_PENDING;
    if (state == F_CANCELLED)
        return atomic_compare_exchange_strong(&f->state, &pending, F_CANCELLED);
    atomic_store_explicit(&f->state, state == F_STOPPED ? F_CANCELLED : state,
                          memory_order_release);
    return true;
}

/* Called with f->lock held and f not finished: record the outcome, notify
 * the watchers; then, after unlocking, wake sleepers and run callbacks.
 * False, unlocked and unchanged, for a cancel that found f running. */
static bool finish_held(weft_future_t *f, uint32_t state, void *value, int error, bool held,
                        void (*wake)(void *arg), void *arg)
{
    f->value = value; /* read only once the state says finished */
    f->error = error;
    /* Taken before the state says finished: from then on a waiter may drop
     * the last outside reference (and so may a callback), unless the
     * caller's own lasts. */
    if (!held)
        weft__future_ref(f);
    weft__tsan_release(f);
    if (!publish(f, state)) {
        weft__lock_drop(&f->lock);
        if (!held)
            weft__future_unref(f);
        return false;
    }
    struct weft__callback *callbacks = f->callbacks;
    f->callbacks = NULL;
    f->last = &f->callbacks;
    for (weft__watch_t *e = f->watches; e; e = e->next) {
        e->linked = false;
        e->w->notify(e->w, f);
    }
    f->watches = NULL;
    /* Sleepers count themselves in under the Lock, having seen f not
     * finished: whoever is counted now has parked or will find the state
     * changed. */
    bool threads = atomic_load_explicit(&f->sleepers, memory_order_relaxed);
    bool tasks = atomic_load_explicit(&f->task_sleepers, memory_order_relaxed);
    weft__lock_drop(&f->lock);
    if (threads)
        weft__unpark(&f->state, INT_MAX, WEFT__WAIT_FUTURE);
    else if (tasks)
        weft__unpark_tasks(&f->state, INT_MAX, WEFT__WAIT_FUTURE);
    if (wake)
        wake(arg);
    if (f->notify)
        f->notify(f);
    for (struct weft__callback *c = callbacks, *next; c; c = next) {
        next = c->next;
        c->fn(f, c->arg);
        free(c);
    }
    if (!held)
        weft__future_unref(f);
    return true;
}

static bool finish(weft_future_t *f, uint32_t state, void *value, int error)
{
    return finish_held(f, state, value, error, false, NULL, NULL);
}

/* Take the Lock unless f has finished already (then false, not locked). */
static bool lock_unfinished(weft_future_t *f)
{
    weft__lock_hold(&f->lock);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) < F_CANCELLED)
        return true;
    weft__lock_drop(&f->lock);
    return false;
}

int weft_future_set_result(weft_future_t *f, void *value)
{
    if (!f)
        return -EINVAL;
    if (!lock_unfinished(f))
        return -EPERM;
    finish(f, F_DONE, value, 0);
    return 0;
}

int weft__future_finish(weft_future_t *f, void *value, int error)
{
    if (!lock_unfinished(f))
        return -EPERM;
    finish(f, F_DONE, value, error);
    return 0;
}

int weft__future_end(weft_future_t *f, void *value, int error, bool stopped,
                     void (*wake)(void *arg), void *arg)
{
    if (!lock_unfinished(f))
        return -EPERM;
    finish_held(f, stopped ? F_STOPPED : F_DONE, value, error, true, wake, arg);
    return 0;
}

int weft_future_set_error(weft_future_t *f, int error)
{
    if (!f || error >= 0)
        return -EINVAL;
    if (!lock_unfinished(f))
        return -EPERM;
    finish(f, F_DONE, NULL, error);
    return 0;
}

int weft_future_cancel(weft_future_t *f)
{
    if (!f)
        return -EINVAL;
    if (!lock_unfinished(f))
        return atomic_load(&f->state) == F_CANCELLED;
    return finish(f, F_CANCELLED, NULL, -ECANCELED);
}

int weft_future_set_running_or_notify_cancel(weft_future_t *f)
{
    if (!f)
        return -EINVAL;
    uint32_t s = F_PENDING; /* no Lock: cancel's compare-and-swap settles the race */
    if (atomic_compare_exchange_strong(&f->state, &s, F_RUNNING))
        return 1;
    return s == F_CANCELLED ? 0 : -EPERM;
}

int weft_future_cancelled(weft_future_t *f)
{
    return f ? atomic_load(&f->state) == F_CANCELLED : -EINVAL;
}

int weft_future_running(weft_future_t *f)
{
    return f ? atomic_load(&f->state) == F_RUNNING : -EINVAL;
}

int weft_future_done(weft_future_t *f)
{
    if (!f)
        return -EINVAL;
    if (!weft__future_finished(f))
        return 0;
    weft__tsan_acquire(f);
    return 1;
}

int weft_future_add_done_callback(weft_future_t *f, weft_future_cb fn, void *arg)
{
    if (!f || !fn)
        return -EINVAL;
    struct weft__callback *c = weft__malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct weft__callback){NULL, fn, arg};
    if (lock_unfinished(f)) {
        *f->last = c;
        f->last = &c->next;
        weft__lock_drop(&f->lock);
        return 0;
    }
    free(c);
    fn(f, arg);
    return 0;
}

bool weft__future_watch(weft_future_t *f, weft__watch_t *e, weft__watcher_t *w)
{
    if (!lock_unfinished(f))
        return false;
    *e = (weft__watch_t){f->watches, NULL, w, true};
    if (f->watches)
        f->watches->prev = e;
    f->watches = e;
    weft__lock_drop(&f->lock);
    return true;
}

void weft__future_unwatch(weft_future_t *f, weft__watch_t *e)
{
    weft__lock_hold(&f->lock);
    if (e->linked) {
        if (e->prev)
            e->prev->next = e->next;
        else
            f->watches = e->next;
        if (e->next)
            e->next->prev = e->prev;
        e->linked = false;
    }
    weft__lock_drop(&f->lock);
}

/* Sleep until f finishes or the deadline passes. */
static int sleep_until_finished(weft_future_t *f, weft__deadline_t deadline)
{
    int rc = 0;
    _Atomic uint32_t *sleepers = weft__parker ? &f->task_sleepers : &f->sleepers;
    if (!lock_unfinished(f))
        return 0;
    atomic_fetch_add_explicit(sleepers, 1, memory_order_relaxed);
    weft__lock_drop(&f->lock);
    for (;;) {
        uint32_t s = atomic_load(&f->state);
        if (s >= F_CANCELLED)
            break;
        int parked = weft__park(&f->state, s, deadline, WEFT__WAIT_FUTURE);
        if (parked < 0) {
            rc = weft__park_outcome(parked, weft__future_finished(f));
            break;
        }
    }
    atomic_fetch_sub_explicit(sleepers, 1, memory_order_relaxed);
    return rc;
}

static int await_finished(weft_future_t *f, double timeout)
{
    if (weft__future_finished(f))
        return 0;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    if (f->assist) { /* a result may be waiting to be collected, even for timeout 0 */
        int rc = f->assist(f, deadline);
        return rc == -ETIMEDOUT ? weft__timeout_error(timeout) : rc;
    }
    if (timeout == 0)
        return -EAGAIN;
    int rc = weft__worker_wait(f, deadline);
    return rc == -ENOENT ? sleep_until_finished(f, deadline) : rc;
}

int weft_future_result(weft_future_t *f, double timeout, void **value)
{
    if (!f || isnan(timeout))
        return -EINVAL;
    int rc = await_finished(f, timeout);
    if (rc < 0)
        return rc;
    weft__tsan_acquire(f);
    if (f->error)
        return f->error;
    if (value)
        *value = f->value;
    return 0;
}

int weft_future_error(weft_future_t *f, double timeout)
{
    return weft_future_result(f, timeout, NULL);
}

int weft__task_error(void)
{
    return current_error;
}

int weft_task_fail(int error)
{
    if (!current_task)
        return -EPERM;
    if (error >= 0)
        return -EINVAL;
    current_error = error;
    return 0;
}

/* Stands for the current task when no future waits for its outcome (a
 * task submitted without one, a group's), so that weft_task_fail works
 * there too. */
static weft_future_t orphan;

/* Call fn(arg) as task f: returns the value, *error what it raised. */
static void *call_as(weft_future_t *f, void *(*fn)(void *arg), void *arg, int *error)
{
    weft_future_t *outer = current_task; /* a task may run others while it waits */
    int outer_error = current_error;
    current_task = f;
    current_error = 0;
    void *value = fn(arg);
    *error = current_error;
    current_task = outer;
    current_error = outer_error;
    return value;
}

void weft__future_run(weft_future_t *f)
{
    weft__tsan_acquire(f); /* what the submitter wrote before the submit */
    int error;
    void *value = call_as(f, f->fn, f->arg, &error);
    if (lock_unfinished(f)) /* unless someone completed it meanwhile */
        finish(f, F_DONE, error ? NULL : value, error);
}

int weft__task_run(void *(*fn)(void *arg), void *arg)
{
    int error;
    call_as(&orphan, fn, arg, &error);
    return error;
}
