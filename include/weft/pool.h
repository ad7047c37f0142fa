/*
 * weft/pool.h: a thread pool, after Python's
 * concurrent.futures.ThreadPoolExecutor, on a work-stealing scheduler.
 *
 *     Python                                      weft
 *     ex = ThreadPoolExecutor(max_workers=n,      weft_pool_new(&ex, &(weft_pool_opts_t){
 *         thread_name_prefix=p,                       .max_workers = n, .thread_name_prefix = p,
 *         initializer=init, initargs=(a,))             .initializer = init, .initarg = a})
 *     f = ex.submit(fn, arg)                      weft_pool_submit(ex, fn, arg, &f)
 *     ex.map(fn, items)                           weft_pool_map(ex, fn, arg, items, results, n, ...)
 *                                                 or, over flat arrays as weft_ppool_map takes
 *                                                 them, weft_pool_map_items(ex, fn, items, n, ...)
 *     ex.shutdown(wait, cancel_futures)           weft_pool_shutdown(ex, wait, cancel_futures)
 *     with ThreadPoolExecutor() as ex: ...        weft_pool_free(ex) at the end (shuts down, waits)
 *     (no Python equivalent)                      weft_parallel_for(ex, begin, end, grain, fn, arg)
 *     asyncio.TaskGroup, for threads (tg.create_ weft_group_t: weft_group_init, weft_group_run,
 *         task, leaving `async with`)             weft_group_wait (below)
 *
 * Scheduling. Every worker has a deque of its own; a task submitted by a
 * worker goes to that worker's deque, a task submitted from outside to a
 * shared injection queue. An idle worker takes from its own deque (newest
 * first), then from the injection queue, then steals from the others
 * (oldest first), and after a short bounded spin parks on a futex: an idle
 * pool takes no CPU. A worker that waits for a future (weft_future_result,
 * weft_wait on the worker's own tasks) runs other tasks meanwhile, so a task
 * that submits sub-tasks and waits for them never deadlocks the pool, even
 * with one worker.
 *
 * Tasks are void *fn(void *arg), as thread functions: the return value
 * becomes the future's value; weft_task_fail(error) inside a task makes it
 * end with an error instead.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <weft/base.h>
#include <weft/future.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pool weft_pool_t;

typedef struct weft_pool_opts {
    int max_workers;                /* 0: weft_cpu_count() */
    const char *thread_name_prefix; /* NULL: "weftpool-N"; workers are "<prefix>_<i>" */
    /* Runs first in every worker. A negative result breaks the pool, as an
     * initializer that raises breaks Python's: pending tasks end with
     * WEFT_EBROKEN, and so does every later submit. */
    int (*initializer)(void *arg);
    void *initarg;
} weft_pool_opts_t;

/* opts may be NULL. Errors: -EINVAL (max_workers < 0), -ENOMEM, -EAGAIN
 * (threads could not be started), WEFT_ESHUTDOWN (the program is exiting:
 * pools are being shut down). */
WEFT_API int weft_pool_new(weft_pool_t **pool, const weft_pool_opts_t *opts);

/* Schedule fn(arg); *f (if f is not NULL) receives its future, which the
 * caller frees. Errors: -EINVAL, -ENOMEM, WEFT_ESHUTDOWN (after shutdown;
 * tasks of the pool itself may still submit, so running work can finish),
 * WEFT_EBROKEN. */
WEFT_API int weft_pool_submit(weft_pool_t *pool, void *(*fn)(void *arg), void *arg,
                              weft_future_t **f);

/* No more submissions from outside. cancel_futures cancels the tasks not
 * yet started; wait waits until every worker has finished its work and
 * exited. -EINVAL; -EDEADLK for wait from one of the pool's own workers. */
WEFT_API int weft_pool_shutdown(weft_pool_t *pool, bool wait, bool cancel_futures);

/* Shut down (waiting, not cancelling) and free. The pool's futures stay
 * valid. -EINVAL, -EDEADLK (from one of its own workers). */
WEFT_API int weft_pool_free(weft_pool_t *pool);

/* The number of worker threads. */
WEFT_API int weft_pool_workers(weft_pool_t *pool);

/* A pool with one worker per CPU, made at the first call and shut down
 * (finishing its queued work) when the program exits. Never free it.
 * NULL if it cannot be made now; a later call tries again. */
WEFT_API weft_pool_t *weft_pool_default(void);

/* Progress of map and parallel_for: fn(done, total, arg) after chunks
 * finish (from a worker that finished one; one call at a time, each with
 * more done than the call before, the last with done == total).
 * weft_progress_bar is a ready-made one: a tqdm-like bar on stderr. */
typedef void (*weft_progress_fn)(size_t done, size_t total, void *arg);

/* results[i] = fn(items[i], arg) for i < n, in chunks of chunksize items
 * (0: about four chunks per worker), results in order; waits for all.
 * Returns 0, or the first error (in item order) fn raised with
 * weft_task_fail, after every chunk has finished; a chunk stops at its
 * first failing item (the results of the items after it are not set).
 * progress may be NULL. */
WEFT_API int weft_pool_map(weft_pool_t *pool, void *(*fn)(void *item, void *arg), void *arg,
                           void *const *items, void **results, size_t n, size_t chunksize,
                           weft_progress_fn progress, void *progress_arg);

/* A task on bytes: reads the len bytes at arg, writes at most cap bytes of
 * result at out, returns the result's length or a negative error. The
 * process pool's tasks (weft_ptask_fn, weft/ppool.h) have this shape. */
typedef ssize_t (*weft_bytes_fn)(const void *arg, size_t len, void *out, size_t cap);

/* map over flat arrays, as weft_ppool_map takes them: fn(items + i *
 * item_size, item_size, results + i * result_size, result_size) for i < n,
 * in chunks of chunksize items (0: about four chunks per worker). A result
 * shorter than result_size is zero-filled; fn's negative result (or an
 * error raised with weft_task_fail) is the item's error, a longer result
 * -EMSGSIZE. Returns 0 or the first error in item order, after every chunk
 * has finished (a chunk stops at its first failing item). So a map moves
 * between the thread and the process pool by changing only the pool. */
WEFT_API int weft_pool_map_items(weft_pool_t *pool, weft_bytes_fn fn, const void *items, size_t n,
                                 size_t item_size, void *results, size_t result_size,
                                 size_t chunksize, weft_progress_fn progress, void *progress_arg);

/* fn(lo, hi, arg) over [begin, end) split recursively into ranges of at
 * most grain (0: about eight per worker), in parallel; waits for all.
 * Returns 0 or the first error raised with weft_task_fail. */
WEFT_API int weft_parallel_for(weft_pool_t *pool, size_t begin, size_t end, size_t grain,
                               void (*fn)(size_t lo, size_t hi, void *arg), void *arg,
                               weft_progress_fn progress, void *progress_arg);

/*
 * Task groups: structured fork-join, after oneTBB's task_group, Go's
 * errgroup and Rayon's scope; for threads what asyncio.TaskGroup is for
 * coroutines.
 *
 *     weft_group_t g;
 *     weft_group_init(&g, pool);
 *     weft_group_run(&g, left, &l);
 *     weft_group_run(&g, right, &r);
 *     int rc = weft_group_wait(&g, WEFT_FOREVER);   (0, or the first error)
 *
 * A group is a value of the caller's, usually on its stack, that counts
 * the tasks run in it and not yet finished. It costs what a task costs and
 * no more: run allocates nothing (the task is queued by value: on the
 * calling worker's own deque, or the pool's injection queue from outside),
 * there is no future, and a wait in a worker runs the pool's tasks (its
 * own deque first, so usually the group's own) until the group is done,
 * so recursive groups never deadlock, whatever the number of workers. A
 * wait from outside the pool sleeps until the last task finishes. Results
 * go wherever arg points: a task's return value is ignored.
 *
 * Errors, as errgroup and TBB report them: a task that calls
 * weft_task_fail(error) fails the group. The first error wins; the
 * group's tasks not started yet are then skipped (cancelled, as TBB and
 * asyncio.TaskGroup do), and wait returns that error once every task that
 * did start has finished. weft_group_cancel does the same with
 * -ECANCELED. Errors do not cross groups by themselves: a task that waits
 * for a group of its own passes a failure on with weft_task_fail.
 *
 * Rules. Wait for a group before it goes out of scope, until wait returns
 * anything but -ETIMEDOUT or -EAGAIN: until then its tasks still use it.
 * (weft_group_destroy checks: -EBUSY while any task may use it.) After
 * such a wait the group is empty and clean, and may be used again. Tasks
 * are run by the group's owner or by its tasks (not by another thread
 * while the owner waits), and one thread waits at a time; a task never
 * waits for its own group (it would wait for itself).
 *
 * Shutdown. After weft_pool_shutdown a run from outside the pool is
 * refused (WEFT_ESHUTDOWN), while the tasks of the pool may still run
 * more, so a group already under way finishes; shutdown's cancel_futures
 * skips the group tasks not yet started, and their group's wait returns
 * -ECANCELED.
 */
typedef struct weft_group {
    weft_pool_t *pool; /* internal */
    void *waker;       /* internal */
    uint32_t state;    /* internal */
    int32_t error;     /* internal */
} weft_group_t;

/* A group on pool; pool NULL: the pool whose worker the calling thread
 * is, else weft_pool_default(). -EINVAL, -ENOMEM (no pool given, and the
 * default pool cannot be made). */
WEFT_API int weft_group_init(weft_group_t *g, weft_pool_t *pool);

/* Queue fn(arg) in the group; allocates nothing (but a queue growing now
 * and then). Errors, with nothing queued: -EINVAL, -ECANCELED (the group
 * has failed or was cancelled), WEFT_ESHUTDOWN (from outside the pool,
 * after shutdown), WEFT_EBROKEN, -ENOMEM (the queue could not grow),
 * -EOVERFLOW (2^30 tasks unfinished). */
WEFT_API int weft_group_run(weft_group_t *g, void *(*fn)(void *arg), void *arg);

/* Wait until every task of the group has finished, then return 0 or the
 * group's first error (-ECANCELED if cancelled first). A worker of a pool
 * runs tasks while it waits. While waiting: -ETIMEDOUT, -EAGAIN (timeout
 * 0); the tasks go on. -EINVAL. */
WEFT_API int weft_group_wait(weft_group_t *g, double timeout);

/* Fail the group with -ECANCELED (unless it has failed already): tasks
 * not started yet are skipped, later runs refused; running ones finish.
 * Callable from the group's tasks too. -EINVAL. */
WEFT_API int weft_group_cancel(weft_group_t *g);

/* Retire the group: -EBUSY (and nothing changes) while tasks may still
 * use it, i.e. before a wait has returned; afterwards it is unusable
 * until initialised again. -EINVAL. */
WEFT_API int weft_group_destroy(weft_group_t *g);

/* A terminal progress bar (count, rate, ETA, like tqdm) on stderr, drawn
 * only when stderr is a terminal, at most 10 times a second; arg is a
 * label (const char *) or NULL. */
WEFT_API void weft_progress_bar(size_t done, size_t total, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_POOL_H */
