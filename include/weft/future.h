/*
 * weft/future.h: futures, after Python's concurrent.futures.Future, wait and
 * as_completed.
 *
 *     Python                               weft
 *     f = executor.submit(fn, arg)         weft_pool_submit(pool, fn, arg, &f)  (weft/pool.h)
 *     f.result(timeout)                    weft_future_result(f, timeout, &value)
 *     f.exception(timeout)                 weft_future_error(f, timeout)
 *     f.cancel(), f.cancelled()            weft_future_cancel(f), weft_future_cancelled(f)
 *     f.running(), f.done()                weft_future_running(f), weft_future_done(f)
 *     f.add_done_callback(fn)              weft_future_add_done_callback(f, fn, arg)
 *     Future(); set_result / set_exception weft_future_new(&f); weft_future_set_result /
 *                                          weft_future_set_error
 *     raise inside a task                  weft_task_fail(error)
 *     wait(fs, timeout, return_when)       weft_wait(fs, n, timeout, return_when)
 *     as_completed(fs, timeout)            weft_as_completed_new / _next / _free
 *
 * A future ends in one of three ways: with a value (a void *, 0 returned),
 * with an error (a negative int, returned as is: an errno value, a WEFT_E*
 * code or the caller's own) or cancelled (-ECANCELED, Python's
 * CancelledError).
 *
 * Ownership. weft_future_new and weft_pool_submit give the caller a
 * reference, dropped with weft_future_free; the pool keeps its own while
 * the task is queued or running, so freeing a future whose task has not
 * run yet is fine (the task still runs, unless cancelled). A thread that
 * completes a future holds a reference of its own until it is done with
 * it, so a waiter may free the future as soon as its wait returns; but
 * the last reference must not be dropped while another thread is still
 * waiting on the future (result, weft_wait, as_completed).
 *
 * Callbacks run exactly once: at once, in the calling thread, if the future
 * is already done; otherwise in the thread that completes or cancels it,
 * after its waiters are released, in the order they were added.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <weft/base.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future_t;
typedef void (*weft_future_cb)(weft_future_t *f, void *arg);

/* A pending future for the caller to complete (a promise). -EINVAL, -ENOMEM. */
WEFT_API int weft_future_new(weft_future_t **f);
/* Drop the caller's reference. -EINVAL for NULL. */
WEFT_API int weft_future_free(weft_future_t *f);

/* Wait for the future, then: 0 and *value (value may be NULL), its error
 * (negative), or -ECANCELED. While waiting: -ETIMEDOUT, -EAGAIN (timeout 0).
 * A pool worker that waits runs other tasks meanwhile (weft/pool.h). */
WEFT_API int weft_future_result(weft_future_t *f, double timeout, void **value);
/* As result, without the value: 0 for a value, else the error. */
WEFT_API int weft_future_error(weft_future_t *f, double timeout);

/* Cancel a future that has not started: 1 if it is (now or already)
 * cancelled, 0 if it is running or done. */
WEFT_API int weft_future_cancel(weft_future_t *f);
/* 1 or 0 each; -EINVAL for NULL. */
WEFT_API int weft_future_cancelled(weft_future_t *f);
WEFT_API int weft_future_running(weft_future_t *f);
WEFT_API int weft_future_done(weft_future_t *f);

/* Errors: -EINVAL, -ENOMEM. */
WEFT_API int weft_future_add_done_callback(weft_future_t *f, weft_future_cb fn, void *arg);

/* For executors: 1 if the future was pending and is now running, 0 if it was
 * cancelled (the caller must not run it); -EPERM if running or done. */
WEFT_API int weft_future_set_running_or_notify_cancel(weft_future_t *f);
/* Complete the future. -EPERM if it is already done or cancelled (Python's
 * InvalidStateError); set_error takes a negative error, else -EINVAL. */
WEFT_API int weft_future_set_result(weft_future_t *f, void *value);
WEFT_API int weft_future_set_error(weft_future_t *f, int error);

/* Inside a pool task: end the task with this (negative) error instead of
 * its return value, like an exception raised in a Python task. -EPERM
 * outside a task, -EINVAL for an error >= 0. */
WEFT_API int weft_task_fail(int error);

enum weft_return_when {
    WEFT_FIRST_COMPLETED = 1, /* any future done or cancelled */
    WEFT_FIRST_EXCEPTION = 2, /* any future done with an error, else all done */
    WEFT_ALL_COMPLETED = 3,
};

/* Wait until return_when holds for fs[0..n-1]: returns how many of them are
 * done. A future that appears more than once counts once (Python takes a
 * set). -ETIMEDOUT (-EAGAIN for timeout
 * 0) when it does not hold in time; weft_future_done tells which are done
 * (Python returns its done and not_done sets either way). Errors: -EINVAL,
 * -ENOMEM. */
WEFT_API int weft_wait(weft_future_t *const *fs, size_t n, double timeout, int return_when);

/* as_completed: yields each distinct future of fs once (a repeated one
 * too), as it completes (those done already first). The timeout counts from
 * weft_as_completed_new. */
typedef struct weft_as_completed weft_as_completed_t;
WEFT_API int weft_as_completed_new(weft_as_completed_t **it, weft_future_t *const *fs, size_t n,
                                   double timeout);
/* 1 and *f (borrowed: the caller's reference is the one it passed in), 0
 * when every future has been yielded, -ETIMEDOUT when the time is up. */
WEFT_API int weft_as_completed_next(weft_as_completed_t *it, weft_future_t **f);
WEFT_API int weft_as_completed_free(weft_as_completed_t *it);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_FUTURE_H */
