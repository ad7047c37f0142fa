/*
 * Futures inside weft: the struct, shared by future.c and the pool (which
 * keeps a task's function and argument in its future), and the watch list
 * through which wait(), as_completed() and pool workers learn that a future
 * finished.
 *
 * The state word is also the futex that result() sleeps on: PENDING and
 * RUNNING below CANCELLED and DONE, so "finished" is state >= CANCELLED.
 * Finishing (leaving PENDING or RUNNING for CANCELLED or DONE) happens
 * under the future's Lock, which also guards the callbacks and the
 * watchers; only PENDING to RUNNING is a compare-and-swap without it,
 * which cancel's own compare-and-swap from PENDING settles. The
 * finishing thread publishes the outcome (value, error) before the state
 * with a release store, so a reader that sees the state finished needs
 * no lock.
 */
#ifndef WEFT_SRC_POOL_FUTURE_INT_H
#define WEFT_SRC_POOL_FUTURE_INT_H

#include "base/park.h"
#include "pool/sched.h"
#include <weft/future.h>
#include <weft/pool.h>
#include <weft/sync.h>

enum { F_PENDING, F_RUNNING, F_CANCELLED, F_DONE };

/* Something that wants to know when futures finish: notify runs under the
 * finishing future's Lock, so it must be short and take no other lock. */
typedef struct weft__watcher {
    void (*notify)(struct weft__watcher *w, weft_future_t *f);
} weft__watcher_t;

/* One watcher's entry in one future's list. */
typedef struct weft__watch {
    struct weft__watch *next, *prev;
    weft__watcher_t *w;
    bool linked;
} weft__watch_t;

struct weft__callback;

struct weft_future {
    _Atomic uint32_t state;
    _Atomic uint32_t sleepers;      /* threads asleep in result() */
    _Atomic uint32_t task_sleepers; /* async tasks parked there: they need no futex wake */
    _Atomic uint32_t refs;
    weft_lock_t lock;
    int error;
    void *value;
    struct weft__callback *callbacks, **last;
    weft__watch_t *watches;
    /* Set by the pool for a task. */
    void *(*fn)(void *arg);
    void *arg;
    /* Set by the process pool: assist runs in a thread about to wait for
     * f (it collects results until f finishes or the deadline passes, then
     * returns 0 or -ETIMEDOUT); notify runs once f has finished, for the
     * threads asleep in assist, which do not sleep on f's state; drop runs
     * when the last reference goes (the value, the pool's reference). */
    int (*assist)(weft_future_t *f, weft__deadline_t deadline);
    void (*notify)(weft_future_t *f);
    void (*drop)(weft_future_t *f);
};

/* A future with one reference, or NULL. */
weft_future_t *weft__future_alloc(void);
/* The same in memory of the caller's, which must start with it (the last
 * reference frees that memory, after f->drop): an async task and its
 * future are one allocation. */
void weft__future_init(weft_future_t *f);
void weft__future_ref(weft_future_t *f);
void weft__future_unref(weft_future_t *f);
/* What the last reference's drop does but the free: for a caller that
 * holds that reference (it has seen the count at 1) and keeps the memory
 * for another future. */
void weft__future_dispose(weft_future_t *f);

/* Link a watch into f's list: true, or false if f has already finished
 * (nothing linked, nothing will be notified). */
bool weft__future_watch(weft_future_t *f, weft__watch_t *e, weft__watcher_t *w);
/* Unlink it if still linked; afterwards f never notifies w again. */
void weft__future_unwatch(weft_future_t *f, weft__watch_t *e);

/* An async task's end, which holds a reference to f throughout: f done
 * with value and error, or, if stopped (the task stopped when asked),
 * cancelled whether it was pending or running; -EPERM if already
 * finished. wake(arg), if not NULL, runs where f's sleepers are woken:
 * after the outcome is published, before the callbacks, one of which may
 * wait for what a waiter does next. */
int weft__future_end(weft_future_t *f, void *value, int error, bool stopped,
                     void (*wake)(void *arg), void *arg);

/* Finish f with both a value and an error (the process pool keeps a
 * crashed task's exit code in its value); -EPERM if already finished. */
int weft__future_finish(weft_future_t *f, void *value, int error);

/* Run a task's future: the function, then its outcome (value, or the
 * error weft_task_fail set). The caller has made it RUNNING. */
void weft__future_run(weft_future_t *f);
/* The error the calling task has raised so far (0: none). */
int weft__task_error(void);

/* Run a task nobody waits for (its outcome is dropped): what it raised
 * with weft_task_fail, or 0. */
int weft__task_run(void *(*fn)(void *arg), void *arg);

static inline bool weft__future_finished(const weft_future_t *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) >= F_CANCELLED;
}

#endif /* WEFT_SRC_POOL_FUTURE_INT_H */
