/*
 * weft/async.h: tasks on an event loop, after Python's asyncio, as stackful
 * coroutines: a task is a C function with a stack of its own, and any
 * function it calls may wait. There is no second set of primitives: a
 * Lock, Queue, Event or future waited on in a task suspends the task alone
 * and lets its loop run the others, and a task and a thread can share
 * them (weft/sync.h, weft/queue.h, weft/future.h).
 *
 *     Python                               weft
 *     asyncio.run(main())                  weft_run(main, arg, &opts, &result)
 *     t = asyncio.create_task(coro, name=) weft_co_spawn(&t, fn, arg, &opts)
 *     await t                              weft_co_join(t, timeout, &result)
 *     t.cancel(), t.uncancel()             weft_co_cancel(t), weft_co_uncancel(t)
 *     t.cancelling()                       weft_co_cancelling(t)
 *     t.done(), t.result(), callbacks      on weft_co_future(t) (weft/future.h)
 *     asyncio.current_task()               weft_co_current()
 *     asyncio.all_tasks()                  weft_co_all(out, cap)
 *     await asyncio.sleep(s)               weft_co_sleep(s)   (0: yield to the others)
 *     raise inside a task                  return weft_co_fail(error)
 *     CancelledError                       -ECANCELED from the call that was waiting
 *     await asyncio.to_thread(fn, arg)     weft_co_to_thread(fn, arg, &result)
 *     loop.call_soon_threadsafe(fn, arg)   weft_loop_call_soon(loop, fn, arg)
 *     run_coroutine_threadsafe(coro, loop) weft_loop_spawn(loop, &future, fn, arg)
 *
 * The prefix is weft_co_ (coroutine) so that these tasks are never taken
 * for a pool's tasks (weft/pool.h, weft_task_fail).
 *
 * Scheduling. A loop runs on the thread that called weft_run, one task at a
 * time, in the order they became ready (FIFO): between its waits a task
 * needs no lock against the other tasks of its loop, as in asyncio. A task
 * that computes without waiting holds its loop; weft_co_sleep(0) lets the
 * others run.
 *
 * M:N mode (opts.threads = N > 1, Go's model): the run's tasks share N
 * loops, the caller's thread and N - 1 more; a loop with nothing to run
 * takes half of another's ready tasks. Tasks then run in parallel: data
 * they share needs a Lock or atomics even between two waits, a task just
 * spawned may run (and end) before its spawner waits, there is no one FIFO
 * order, and timers fire in deadline order per loop. A task inside a
 * WEFT_TIMEOUT scope stays on its loop.
 *
 * Cancellation is delivered at a suspension point: the next (or current)
 * waiting call of the task returns -ECANCELED, once per request. A task that
 * was cancelled ends cancelled, whatever it returns, unless it withdrew each
 * request with weft_co_uncancel (what swallowing CancelledError is in
 * Python); a task that fails with -ECANCELED ends cancelled too. A wait that
 * was already granted (a Lock handed over, an item taken) completes; the
 * cancellation then waits for the next suspension point, so no wake-up is
 * lost.
 *
 * Stacks are 64 KiB of address space by default, committed as touched, with
 * a guard page below that faults; a finished task's stack is reused by the
 * next. A run keeps the stacks of its ended tasks, as many as it ever had
 * alive at once (a thousand at the least, a million at the most; in M:N
 * mode, each loop as many), with the pages they touched: its memory stays
 * near its busiest moment until weft_run returns. A fork meanwhile copies
 * their page tables too (about 0.2 ms per thousand stacks here); the spawn
 * and forkserver start methods (weft/process.h) copy nothing. Deep recursion or large arrays on a task's stack need a larger
 * stack_size; a task that overflows its stack is named on stderr and the
 * process aborts.
 *
 * Threads and processes. Owner-checked locks (RLock, critical section, write
 * lock, call_once in progress) and the GIL belong to the task that took
 * them, not to its thread; a task holding the GIL lets go of it while it is
 * suspended (weft/gil.h). A task may wait on primitives shared with other
 * processes (WEFT_SHARED): a helper thread waits on the futex for it. A
 * process forked from a task (weft/process.h) leaves the loop behind.
 *
 * Thread-local storage: every task of a loop runs on the loop's thread, so
 * errno and thread-locals are the thread's, shared by its tasks across their
 * waits (save errno before a call that may wait if you need it after). In
 * M:N mode a task may resume on another thread after any wait: a
 * thread-local read before the wait is another thread's after it.
 */
#ifndef WEFT_ASYNC_H
#define WEFT_ASYNC_H

#include <weft/base.h>
#include <weft/future.h>
#include <weft/sync.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_co weft_co_t;
typedef void *(*weft_co_fn)(void *arg);

typedef struct weft_run_opts {
    size_t stack_size; /* each task's, in bytes; 0: 64 KiB */
    unsigned threads;  /* loops, one per thread (M:N mode), at most
                          WEFT_RUN_THREADS_MAX; 0 or 1: one */
} weft_run_opts_t;

#define WEFT_RUN_THREADS_MAX 1024

/*
 * Run main(arg) as the first task of a new loop on the calling thread, until
 * it ends; then cancel the tasks still running and wait for them (as
 * asyncio.run does). 0 and *result (may be NULL) for main's value, else
 * main's error (-ECANCELED if it was cancelled). -EPERM if the thread already
 * runs a loop, -EINVAL (also for more than WEFT_RUN_THREADS_MAX threads),
 * -ENOMEM, -EMFILE, WEFT_EMAPCOUNT, -EAGAIN (a thread could not start).
 */
WEFT_API int weft_run(weft_co_fn main, void *arg, const weft_run_opts_t *opts, void **result);

typedef struct weft_co_opts {
    const char *name;  /* copied; NULL: "co-<id>" */
    size_t stack_size; /* 0: the loop's */
} weft_co_opts_t;

/*
 * Start fn(arg) as a task of the calling thread's loop (from a task, or a
 * call posted to the loop); it runs once the caller waits or yields (in
 * M:N mode another loop may take it and run it at once). *out
 * gets a reference (weft_co_free drops it); out may be NULL for a task
 * nobody will join. opts may be NULL. -EPERM outside a loop (from another
 * thread, use weft_loop_spawn), -EINVAL, -ENOMEM, WEFT_EMAPCOUNT.
 */
WEFT_API int weft_co_spawn(weft_co_t **out, weft_co_fn fn, void *arg, const weft_co_opts_t *opts);
/* Drop the reference weft_co_spawn gave; the task runs on. -EINVAL. */
WEFT_API int weft_co_free(weft_co_t *t);

/* Wait for t to end: 0 and *result, its error, or -ECANCELED if t ended
 * cancelled; -ETIMEDOUT/-EAGAIN, or -ECANCELED if the caller is cancelled
 * while it waits; -EDEADLK for the calling task itself, or from a call
 * posted to t's loop (it runs on the loop's own stack: waiting there would
 * stop the loop). Works from another thread too. */
WEFT_API int weft_co_join(weft_co_t *t, double timeout, void **result);
/* t's outcome as a future (borrowed; valid while the caller holds t): for
 * weft_wait, weft_as_completed and done callbacks. */
WEFT_API weft_future_t *weft_co_future(weft_co_t *t);

/* Ask t to stop at its next suspension point: 1 if asked, 0 if t has
 * already ended. From any thread: from outside t's loop the request is
 * posted to the loop (call_soon_threadsafe(t.cancel) in Python), which
 * needs memory (-ENOMEM). -EINVAL. */
WEFT_API int weft_co_cancel(weft_co_t *t);
/* Withdraw one cancellation: the requests left. -EPERM if none. */
WEFT_API int weft_co_uncancel(weft_co_t *t);
/* The requests not withdrawn. */
WEFT_API int weft_co_cancelling(weft_co_t *t);

/* The calling task, or NULL outside one. */
WEFT_API weft_co_t *weft_co_current(void);
/* The task's name: the one given, or "co-<id>", made on the first call
 * (so call it from the task's loop, as everything but join and cancel). */
WEFT_API const char *weft_co_name(weft_co_t *t);
/* Up to cap of the live tasks of the calling thread's run into out (no
 * references taken): how many there are in all. -EPERM outside a loop. In
 * M:N mode a task on another loop may end and be freed at any moment: use
 * only those you also hold a handle to. */
WEFT_API int weft_co_all(weft_co_t **out, size_t cap);

/* Sleep for seconds; 0 lets the other ready tasks run first. Outside a
 * task, the thread sleeps (weft_sleep). 0, -ECANCELED, -EINVAL. */
WEFT_API int weft_co_sleep(double seconds);

/* Inside a task: end it with this (negative) error instead of its return
 * value, like an exception raised in a Python task. Returns NULL, so that
 * `return weft_co_fail(err);` reads as it does. Outside a task (or for an
 * error >= 0) nothing happens. */
WEFT_API void *weft_co_fail(int error);

/*
 * Waiting for tasks. weft_co_join waits as `await t` does: a caller that is
 * cancelled while it waits cancels t too, waits for t to end, and returns
 * -ECANCELED. weft_co_shield waits without passing the cancellation on
 * (asyncio.shield): t runs on. weft_co_wait_for gives up at the timeout,
 * cancels t and waits for it to end (asyncio.wait_for): -ETIMEDOUT.
 * weft_wait and weft_as_completed (weft/future.h) take weft_co_future(t).
 */
WEFT_API int weft_co_shield(weft_co_t *t, double timeout, void **result);
WEFT_API int weft_co_wait_for(weft_co_t *t, double timeout, void **result);

/*
 * asyncio.gather: wait for n tasks; values[i] (may be NULL) gets each one's
 * value. Without errors (return_exceptions=False): the first error among
 * them, in their order, as soon as one has failed (the others run on), else
 * 0. With errors (return_exceptions=True): wait for all, errors[i] gets each
 * one's error or 0, and the result is 0. A gather that is cancelled cancels
 * the tasks it waits for and returns -ECANCELED. -EINVAL, -ENOMEM.
 */
WEFT_API int weft_co_gather(weft_co_t *const *ts, size_t n, void **values, int *errors);

/*
 * Between threads and loops.
 *
 * weft_co_to_thread (asyncio.to_thread) runs fn(arg) on the default thread
 * pool (weft/pool.h) and waits for it: the task is suspended, its loop
 * runs on. A task cancelled while it waits gets -ECANCELED at once, but the
 * job runs on to its end on its thread: a thread cannot be stopped from
 * outside (Python's to_thread behaves the same).
 *
 * A loop as other threads see it is a weft_loop_t: weft_loop_current()
 * gives the calling thread's (with a reference, NULL outside a loop),
 * weft_loop_free drops it. It stays valid after the loop has ended; from
 * then on posting is WEFT_ESHUTDOWN.
 *   weft_loop_call_soon (loop.call_soon_threadsafe): fn(arg) runs on the
 *       loop's thread between tasks, soon; it may spawn tasks.
 *   weft_loop_spawn (asyncio.run_coroutine_threadsafe): fn(arg) as a task of
 *       the loop; *f is its outcome (a reference for the caller, to wait on
 *       with weft_future_result). Cancelling *f before the task starts
 *       keeps it from starting; a loop that ends first cancels it.
 * Errors: -EINVAL, -ENOMEM, WEFT_ESHUTDOWN.
 */
typedef struct weft_loop weft_loop_t;
WEFT_API int weft_co_to_thread(weft_co_fn fn, void *arg, void **result);
WEFT_API weft_loop_t *weft_loop_current(void);
WEFT_API int weft_loop_free(weft_loop_t *loop);
WEFT_API int weft_loop_call_soon(weft_loop_t *loop, void (*fn)(void *arg), void *arg);
WEFT_API int weft_loop_spawn(weft_loop_t *loop, weft_future_t **f, weft_co_fn fn, void *arg);

/* Internal: a timer of the loop's heap (a timeout scope embeds one). */
struct weft__timer {
    int64_t deadline;
    uint64_t seq;
    size_t index;
    void (*fire)(struct weft__timer *self);
};

/*
 * Task groups (asyncio.TaskGroup, Trio's nurseries): children never outlive
 * their group. The first child to fail cancels its siblings and the task
 * that runs the group (at its current or next wait, inside the group's
 * scope); leaving the scope waits for every child; then the group reports
 * the first failure (other failures are not kept), or -ECANCELED if the
 * task running it was cancelled from outside, else 0.
 *
 *     int rc;
 *     WEFT_CO_GROUP(g, &rc) {
 *         weft_co_group_spawn(g, NULL, fetch, url1, NULL);
 *         weft_co_group_spawn(g, NULL, fetch, url2, NULL);
 *     }
 *     if (rc < 0) ...   -- set when the scope is left, by break or return too
 *
 * Only in a task: elsewhere the block is skipped and rc is -EPERM.
 */
typedef struct weft_co_group {
    void *parent, *children; /* internal */
    int *result;
    int error;      /* internal: the first failure */
    unsigned live;  /* internal: children not ended */
    unsigned state; /* internal */
} weft_co_group_t;

/* Start a child (weft_co_spawn's arguments), from the task running the
 * group or from a child, also while the scope's end waits for the others:
 * WEFT_ESHUTDOWN once the group is aborted or has ended, -EPERM from a task
 * of another loop. */
WEFT_API int weft_co_group_spawn(weft_co_group_t *g, weft_co_t **out, weft_co_fn fn, void *arg,
                                 const weft_co_opts_t *opts);

/*
 * asyncio.timeout: the code in the scope is cancelled at the deadline, and
 * the scope reports -ETIMEDOUT (else 0) when it is left. Scopes nest; the
 * one whose deadline passes reports it, and the cancellation it made does
 * not leak out of it. weft_co_reschedule moves the deadline of the
 * innermost scope of the calling task (negative: none).
 *
 *     int rc;
 *     WEFT_TIMEOUT(2.5, &rc) {
 *         weft_co_join(t, WEFT_FOREVER, NULL);
 *     }
 *     if (rc == -ETIMEDOUT) ...
 *
 * Only in a task: elsewhere the block is skipped and rc is -EPERM; a NaN
 * timeout skips it with -EINVAL.
 */
typedef struct weft_co_timeout {
    struct weft__timer timer; /* internal */
    void *task, *outer;       /* internal */
    double seconds;
    int *result;
    int state; /* internal */
} weft_co_timeout_t;

WEFT_API int weft_co_reschedule(double seconds);

/* The scope forms' halves, for C++ or hand-written scopes: enter returns 1
 * the first time (the scope's body runs), 0 after; end (once, however the
 * scope is left) waits for the children, or clears the timer, and stores the
 * result. */
WEFT_API int weft_co_group_enter(weft_co_group_t *g);
WEFT_API void weft_co_group_end(weft_co_group_t *g);
WEFT_API int weft_co_timeout_enter(weft_co_timeout_t *to);
WEFT_API void weft_co_timeout_end(weft_co_timeout_t *to);

#if !defined(__cplusplus)
#define WEFT__CO_GROUP_AS(s, g, rcp)                                                 \
    for (weft_co_group_t s                                                           \
         __attribute__((cleanup(weft_co_group_end))) = {NULL, NULL, (rcp), 0, 0, 0}, \
         *g = &s;                                                                    \
         weft_co_group_enter(g);)
#define WEFT_CO_GROUP(g, rcp) WEFT__CO_GROUP_AS(WEFT__NEW(weft__group_), g, rcp)

#define WEFT__TIMEOUT_AS(s, secs, rcp)                                                         \
    for (weft_co_timeout_t s                                                                   \
         __attribute__((cleanup(weft_co_timeout_end))) = {.seconds = (secs), .result = (rcp)}; \
         weft_co_timeout_enter(&s);)
#define WEFT_TIMEOUT(seconds, rcp) WEFT__TIMEOUT_AS(WEFT__NEW(weft__timeout_), seconds, rcp)
#endif

#ifdef __cplusplus
}
#endif

#endif /* WEFT_ASYNC_H */
