/*
 * weft/ppool.h: a pool of worker processes, after Python's
 * multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor, that
 * survives its workers' crashes.
 *
 *     Python                                   weft
 *     Pool(processes, initializer, initargs,   weft_ppool_new(&p, &(weft_ppool_opts_t){
 *          maxtasksperchild)                       .processes, .initializer, .initarg,
 *                                                  .initarg_len, .maxtasksperchild})
 *     ProcessPoolExecutor(max_workers)         the same pool
 *     pool.apply(f, args)                      weft_ppool_apply(p, f, arg, len, out, cap)
 *     pool.apply_async(f, args) / ex.submit    weft_ppool_submit(p, f, arg, len, &future)
 *     pool.map(f, items, chunksize)            weft_ppool_map(p, f, items, n, item_size, results,
 *     ex.map(f, items)                             result_size, chunksize, progress, arg)
 *     pool.map_async(...)                      weft_ppool_map_async(..., &future)
 *     pool.imap / imap_unordered               weft_ppool_imap_new(&it, ..., ordered) / _next
 *     pool.starmap(f, tuples)                  map over items that are structs of the arguments
 *     pool.close(); pool.join()                weft_ppool_close(p); weft_ppool_join(p, timeout)
 *     pool.terminate()                         weft_ppool_terminate(p)
 *     ex.shutdown(wait, cancel_futures)        weft_ppool_shutdown(p, wait, cancel_futures)
 *     ex.terminate_workers(), kill_workers()   weft_ppool_terminate_workers(p), _kill_workers(p)
 *
 * A task is a function that runs in a worker process on a copy of its
 * argument bytes and writes its result bytes:
 *
 *     ssize_t fn(const void *arg, size_t len, void *out, size_t cap);
 *
 * It returns the result's length (at most cap, which is opts.max_result),
 * or a negative error, which becomes the future's error. Futures are
 * weft/future.h's (weft_wait, as_completed and callbacks work on them);
 * read a result with weft_ppool_result. Arguments and results travel
 * through shared memory: each worker has a ring of tasks and a ring of
 * results, and nothing is written to a pipe per task.
 *
 * Crashes. A worker that dies (a signal, _exit, the OOM killer, a kill from
 * outside) fails only the task it was running, with WEFT_ECRASHED (and its
 * exit code, from weft_ppool_result); the tasks queued behind it go to
 * other workers, and a new worker takes its place. With opts.task_timeout,
 * a task running longer has its worker killed and replaced and fails with
 * -ETIMEDOUT. Python's pool, by contrast, breaks for good on one crash.
 *
 * Start methods (weft/process.h): opts.method, or at the first task the
 * rule of weft_process_new: forkserver when the task's function is
 * registered (WEFT_PROCESS_REGISTER), fork when it is not. With spawn and
 * forkserver every task function must be registered (-EINVAL otherwise);
 * with fork any function works, and a task can use every handle the
 * parent had when the worker started (a Pipe end, a process Queue), as
 * Python's pool workers do: unlike weft_process children, which use only
 * what they are given (weft/process.h), a pool's tasks have no way to be
 * given objects.
 */
#ifndef WEFT_PPOOL_H
#define WEFT_PPOOL_H

#include <weft/base.h>
#include <weft/future.h>
#include <weft/pool.h>
#include <weft/process.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_ppool weft_ppool_t;

typedef ssize_t (*weft_ptask_fn)(const void *arg, size_t len, void *out, size_t cap);

typedef struct weft_ppool_opts {
    int processes;               /* 0: weft_cpu_count() */
    weft_start_method_t method;  /* see above */
    weft_process_fn initializer; /* runs first in each worker; nonzero breaks the pool */
    const void *initarg;
    size_t initarg_len;
    int maxtasksperchild; /* 0: workers live as long as the pool */
    double task_timeout;  /* seconds; 0 or negative: none */
    size_t max_arg;       /* bytes of a task's argument; 0: 64 KiB */
    size_t max_result;    /* bytes of a task's result; 0: 64 KiB */
} weft_ppool_opts_t;

/* opts may be NULL. Workers start with the first task. Errors: -EINVAL,
 * -ENOMEM. */
WEFT_API int weft_ppool_new(weft_ppool_t **pool, const weft_ppool_opts_t *opts);

/* Run fn on a copy of arg[0..len) in a worker; *f receives the future
 * (free it with weft_future_free). Errors: -EINVAL (len over max_arg, an
 * unregistered fn under spawn or forkserver), -ENOMEM, -EAGAIN (workers
 * could not be started), WEFT_ESHUTDOWN (closed), WEFT_EBROKEN (an
 * initializer failed). */
WEFT_API int weft_ppool_submit(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                               weft_future_t **f);

/* A finished task's result: *data (owned by the future) and *len; returns
 * 0, or the task's error: its own, WEFT_ECRASHED (then *exitcode, if not
 * NULL, is the worker's: -signal or its exit status), -ETIMEDOUT,
 * -ECANCELED. Waits up to timeout as weft_future_result. */
WEFT_API int weft_ppool_result(weft_future_t *f, double timeout, const void **data, size_t *len,
                               int *exitcode);

/* submit, wait, copy the result into out (cap bytes); its length or the
 * task's error (-EMSGSIZE if it does not fit). */
WEFT_API ssize_t weft_ppool_apply(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                                  void *out, size_t cap);

/* results[i] = fn(items[i]) for i < n: items of item_size bytes, results
 * of result_size bytes (a shorter result is zero-filled), in chunks of
 * chunksize items (0: about four chunks per worker, within max_arg and
 * max_result). Returns 0 or the first error in item order, once every
 * chunk has finished. progress may be NULL (weft_progress_bar draws one). */
WEFT_API int weft_ppool_map(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t n,
                            size_t item_size, void *results, size_t result_size, size_t chunksize,
                            weft_progress_fn progress, void *progress_arg);
/* The same, returning at once: *f finishes when every chunk has (its error
 * the first in item order); items and results must stay valid until then. */
WEFT_API int weft_ppool_map_async(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t n,
                                  size_t item_size, void *results, size_t result_size,
                                  size_t chunksize, weft_progress_fn progress, void *progress_arg,
                                  weft_future_t **f);

/* imap and imap_unordered: results one item at a time as chunks finish,
 * in item order or in the order they finish. items must stay valid until
 * weft_ppool_imap_free, which cancels the chunks not yet sent to a worker
 * and waits for the others. */
typedef struct weft_ppool_imap weft_ppool_imap_t;
WEFT_API int weft_ppool_imap_new(weft_ppool_imap_t **it, weft_ppool_t *pool, weft_ptask_fn fn,
                                 const void *items, size_t n, size_t item_size, size_t result_size,
                                 size_t chunksize, bool ordered);
/* The next result into out (result_size bytes); returns its item's index,
 * -ENOENT after the last, the item's error (then the index is lost; go on
 * calling), -ETIMEDOUT / -EAGAIN. */
WEFT_API ssize_t weft_ppool_imap_next(weft_ppool_imap_t *it, void *out, double timeout);
WEFT_API int weft_ppool_imap_free(weft_ppool_imap_t *it);

/* Pool.close: no more tasks; workers exit once the queued ones are done. */
WEFT_API int weft_ppool_close(weft_ppool_t *pool);
/* Pool.join: wait until every worker has exited (after close or
 * terminate). -EPERM if neither was called; -ETIMEDOUT / -EAGAIN. */
WEFT_API int weft_ppool_join(weft_ppool_t *pool, double timeout);
/* Pool.terminate: kill the workers now (SIGKILL); unfinished tasks end
 * with -ECANCELED. */
WEFT_API int weft_ppool_terminate(weft_ppool_t *pool);
/* Executor.shutdown: close; cancel_futures cancels tasks not yet started;
 * wait joins. */
WEFT_API int weft_ppool_shutdown(weft_ppool_t *pool, bool wait, bool cancel_futures);
/* Python 3.14's terminate_workers / kill_workers: SIGTERM or SIGKILL to
 * every worker, the pool shut down, unfinished tasks -ECANCELED. */
WEFT_API int weft_ppool_terminate_workers(weft_ppool_t *pool);
WEFT_API int weft_ppool_kill_workers(weft_ppool_t *pool);
/* Shut down (waiting), join and free. Futures stay valid. */
WEFT_API int weft_ppool_free(weft_ppool_t *pool);
/* Worker processes alive now (replacements included). */
WEFT_API int weft_ppool_workers(weft_ppool_t *pool);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PPOOL_H */
