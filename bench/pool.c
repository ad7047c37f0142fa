/*
 * Suite "pool": weft's thread pool against the pools C programmers use:
 * GLib's GThreadPool, libuv's uv_queue_work, OpenMP tasks (GCC's libgomp),
 * oneTBB's task_group when it is installed (bench/pool_tbb.cpp), and, for
 * reference, Python's ThreadPoolExecutor.
 *
 * pool_empty_tasks: iters empty tasks submitted from the main thread to a
 * pool of 2 workers, then waited for. Each side in its own idiom: weft
 * submits without futures and shuts the pool down waiting
 * (weft_pool_shutdown, wait), GLib pushes and frees the pool waiting
 * (g_thread_pool_free(pool, FALSE, TRUE)), libuv queues a uv_work_t per
 * task and runs its loop until every completion callback has run (its
 * thread pool sized 2 by UV_THREADPOOL_SIZE). Time per task, pool start-up
 * included on every side but TBB's (pool_empty_tasks_tbb: run on one
 * task_group, one wait; TBB's workers outlive a call).
 *
 * pool_fib_30: fib(30) with a task per call, two child tasks and a wait
 * each (OpenMP's textbook task example: task, task, taskwait), 2 workers.
 * Time per fib(30). pool_fib_30_tbb: the same against a task_group per
 * call (TBB's own example), TBB's arena at its default size (every CPU).
 * pool_fib_30_group and pool_fib_30_group_tbb: weft's fork-join form, a
 * weft_group_t per call on the stack (TBB's example, written with weft),
 * against the same two.
 *
 * executor_submit: submit a task that returns its argument and collect
 * every result through its future, as a Python program does with
 * executor.submit and future.result (bench/py/executor.py, timed inside
 * the interpreter). Reported, no bar.
 */
#include "bench.h"
#include "pool_omp.h"
#ifdef WEFT_BENCH_TBB
#include "pool_tbb.h"
#endif

#include <weft/pool.h>

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "pool bench: %s failed\n", what);
    exit(1);
}

static weft_pool_t *weft_pool_of_2(void)
{
    weft_pool_t *p;
    if (weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 2}) != 0)
        die("weft_pool_new");
    return p;
}

/* --- empty tasks ------------------------------------------------------------ */

static void *weft_empty(void *arg)
{
    return arg;
}

static double weft_empty_tasks(long iters)
{
    double t0 = bench_now();
    weft_pool_t *p = weft_pool_of_2();
    for (long i = 0; i < iters; i++)
        if (weft_pool_submit(p, weft_empty, NULL, NULL) != 0)
            die("weft_pool_submit");
    weft_pool_free(p);
    return bench_now() - t0;
}

static void glib_empty(gpointer data, gpointer user)
{
    (void)data, (void)user;
}

static double glib_empty_tasks(long iters)
{
    double t0 = bench_now();
    GThreadPool *p = g_thread_pool_new(glib_empty, NULL, 2, TRUE, NULL);
    for (long i = 0; i < iters; i++)
        g_thread_pool_push(p, GINT_TO_POINTER(1), NULL); /* NULL is not a task */
    g_thread_pool_free(p, FALSE, TRUE);
    return bench_now() - t0;
}

static void uv_empty(uv_work_t *req)
{
    (void)req;
}

static void uv_after(uv_work_t *req, int status)
{
    (void)req, (void)status;
}

static double uv_empty_tasks(long iters)
{
    uv_work_t *reqs = malloc((size_t)iters * sizeof *reqs);
    if (!reqs)
        die("malloc");
    double t0 = bench_now();
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (long i = 0; i < iters; i++)
        if (uv_queue_work(&loop, &reqs[i], uv_empty, uv_after) != 0)
            die("uv_queue_work");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    double secs = bench_now() - t0;
    free(reqs);
    return secs;
}

/* --- fib(30) ----------------------------------------------------------------- */

static weft_pool_t *fib_pool;

static void *weft_fib(void *arg)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2)
        return (void *)n;
    weft_future_t *a, *b;
    void *x, *y;
    if (weft_pool_submit(fib_pool, weft_fib, (void *)(n - 1), &a) != 0 ||
        weft_pool_submit(fib_pool, weft_fib, (void *)(n - 2), &b) != 0)
        die("weft_pool_submit");
    weft_future_result(a, WEFT_FOREVER, &x);
    weft_future_result(b, WEFT_FOREVER, &y);
    weft_future_free(a);
    weft_future_free(b);
    return (void *)((intptr_t)x + (intptr_t)y);
}

static double weft_fib_30(long iters)
{
    fib_pool = weft_pool_of_2();
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        weft_future_t *f;
        void *v;
        if (weft_pool_submit(fib_pool, weft_fib, (void *)(intptr_t)30, &f) != 0 ||
            weft_future_result(f, WEFT_FOREVER, &v) != 0 || (intptr_t)v != 832040)
            die("weft fib(30)");
        weft_future_free(f);
    }
    double secs = bench_now() - t0;
    weft_pool_free(fib_pool);
    return secs;
}

struct fib {
    long n, result;
};

static void *group_fib(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->result = f->n;
        return NULL;
    }
    struct fib a = {f->n - 1, 0}, b = {f->n - 2, 0};
    weft_group_t g;
    if (weft_group_init(&g, fib_pool) != 0 || weft_group_run(&g, group_fib, &a) != 0 ||
        weft_group_run(&g, group_fib, &b) != 0 || weft_group_wait(&g, WEFT_FOREVER) != 0)
        die("weft_group");
    f->result = a.result + b.result;
    return NULL;
}

static double weft_group_fib_30(long iters)
{
    fib_pool = weft_pool_of_2();
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        struct fib f = {30, 0};
        weft_group_t g;
        if (weft_group_init(&g, fib_pool) != 0 || weft_group_run(&g, group_fib, &f) != 0 ||
            weft_group_wait(&g, WEFT_FOREVER) != 0 || f.result != 832040)
            die("weft group fib(30)");
    }
    double secs = bench_now() - t0;
    weft_pool_free(fib_pool);
    return secs;
}

static double omp_fib_30(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (bench_omp_fib(30, 2) != 832040)
            die("OpenMP fib(30)");
    return bench_now() - t0;
}

/* --- submit + result, against Python ----------------------------------------- */

static double weft_submit_result(long iters)
{
    weft_pool_t *p = weft_pool_of_2();
    weft_future_t **fs = malloc((size_t)iters * sizeof *fs);
    if (!fs)
        die("malloc");
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (weft_pool_submit(p, weft_empty, (void *)(intptr_t)i, &fs[i]) != 0)
            die("weft_pool_submit");
    long sum = 0;
    for (long i = 0; i < iters; i++) {
        void *v;
        weft_future_result(fs[i], WEFT_FOREVER, &v);
        sum += (intptr_t)v;
        weft_future_free(fs[i]);
    }
    double secs = bench_now() - t0;
    bench_sink(&sum);
    free(fs);
    weft_pool_free(p);
    return secs;
}

static double python_submit_result(long iters)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 %s %ld", WEFT_BENCH_PY_EXECUTOR, iters);
    return bench_run_timed(cmd);
}

__attribute__((constructor)) static void size_uv_pool(void)
{
    setenv("UV_THREADPOOL_SIZE", "2", 1); /* read when libuv starts its pool */
}

BENCH_CASE(pool, pool_empty_tasks, "glib_thread_pool", weft_empty_tasks, glib_empty_tasks, 3.0,
           .loaded_bar = 3.0)
BENCH_CASE(pool, pool_empty_tasks_uv, "uv_queue_work", weft_empty_tasks, uv_empty_tasks, 2.0)
BENCH_CASE(pool, pool_fib_30, "openmp_tasks", weft_fib_30, omp_fib_30, 1.0)
BENCH_CASE(pool, pool_fib_30_group, "openmp_tasks", weft_group_fib_30, omp_fib_30, 1.0,
           .loaded_bar = 1.0)
BENCH_CASE(pool, executor_submit, "python_thread_pool_executor", weft_submit_result,
           python_submit_result, 0)

#ifdef WEFT_BENCH_TBB
BENCH_CASE(pool, pool_empty_tasks_tbb, "tbb_task_group", weft_empty_tasks, bench_tbb_empty_tasks,
           1.0, .loaded_bar = 1.0)
/* Futures against TBB's task_group: reported, as the bar is the group's
 * (below): a future is an object of its own, allocated, shared and
 * counted, where a task_group's child is a slot in a deque (BENCHMARKS.md). */
BENCH_CASE(pool, pool_fib_30_tbb, "tbb_task_group", weft_fib_30, bench_tbb_fib_30, 0)
BENCH_CASE(pool, pool_fib_30_group_tbb, "tbb_task_group", weft_group_fib_30, bench_tbb_fib_30, 1.0,
           .loaded_bar = 1.0)
#endif
