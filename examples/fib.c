/*
 * Recursive Fibonacci with nested tasks: every call above a cut-off
 * submits its first half as a task, computes the second itself and waits
 * for the first. Waiting inside a task does not block a worker: it runs
 * other tasks meanwhile (its own sub-tasks first), so the tree of tasks
 * completes even on a pool with a single worker, which the program shows
 * before using the default pool (one worker per CPU).
 *
 *     Python has no equivalent: a ThreadPoolExecutor task that waits for
 *     another task of the same executor can deadlock it.
 */
#include "check.h"
#include "timing.h"

#include <weft/pool.h>

#include <stdint.h>

enum { CUTOFF = 20 };

static weft_pool_t *pool;

static long fib_serial(long n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void *fib(void *arg)
{
    long n = (long)(intptr_t)arg;
    if (n < CUTOFF)
        return (void *)(intptr_t)fib_serial(n);
    weft_future_t *first;
    CHECK(weft_pool_submit(pool, fib, (void *)(intptr_t)(n - 1), &first));
    long second = (long)(intptr_t)fib((void *)(intptr_t)(n - 2));
    void *value;
    CHECK(weft_future_result(first, WEFT_FOREVER, &value)); /* runs tasks while it waits */
    weft_future_free(first);
    return (void *)(intptr_t)((long)(intptr_t)value + second);
}

static long run(long n, struct timing *t)
{
    *t = timing_start();
    weft_future_t *f;
    void *value;
    CHECK(weft_pool_submit(pool, fib, (void *)(intptr_t)n, &f));
    CHECK(weft_future_result(f, WEFT_FOREVER, &value));
    weft_future_free(f);
    timing_stop(t);
    return (long)(intptr_t)value;
}

int main(void)
{
    const long n = 38;
    struct timing one, all;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 1}));
    long a = run(n, &one);
    CHECK(weft_pool_free(pool));
    printf("fib(%ld) = %ld with 1 worker in %.3f s (nested waits, no deadlock)\n", n, a, one.wall);
    pool = weft_pool_default();
    long b = run(n, &all);
    int workers = weft_pool_workers(pool);
    printf("fib(%ld) = %ld with %d workers in %.3f s: %.1fx the speed of 1 worker, with %.1f CPUs "
           "in use\n",
           n, b, workers, all.wall, one.wall / all.wall, timing_cpus(&all));
    warn_if_busy(&all, workers);
    bool right = a == 39088169 && b == a;
    printf("right: %s\n", right ? "yes" : "NO");
    return right ? 0 : 1;
}
