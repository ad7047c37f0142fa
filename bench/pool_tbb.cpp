/*
 * oneTBB baselines of the pool suite, shaped like weft's side (pool.c):
 *
 * fib: one task per call and no cut-off, each call running its two halves
 * as tasks of a task_group of its own and waiting for both, as TBB's own
 * Fibonacci example does; the top call is a task too, as weft submits it.
 *
 * empty tasks: `iters` empty lambdas run on one task_group and one wait.
 *
 * TBB at its defaults: its arena spans every CPU the process may use, the
 * calling thread taking part while it waits. Its worker threads are TBB's
 * global pool and outlive a call, so unlike weft's side no pool start-up
 * is timed after the first call.
 */
#include "pool_tbb.h"

#include "bench.h"

#include <oneapi/tbb/task_group.h>

#include <cstdio>
#include <cstdlib>

namespace
{

long fib(long n)
{
    if (n < 2)
        return n;
    long x, y;
    tbb::task_group g;
    g.run([&] { x = fib(n - 1); });
    g.run([&] { y = fib(n - 2); });
    g.wait();
    return x + y;
}

} // namespace

double bench_tbb_fib_30(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        long r = 0;
        tbb::task_group g;
        g.run([&] { r = fib(30); });
        g.wait();
        if (r != 832040) {
            std::fputs("pool bench: TBB fib(30) failed\n", stderr);
            std::exit(1);
        }
    }
    return bench_now() - t0;
}

double bench_tbb_empty_tasks(long iters)
{
    double t0 = bench_now();
    tbb::task_group g;
    for (long i = 0; i < iters; i++)
        g.run([] {});
    g.wait();
    return bench_now() - t0;
}
