/* The oneTBB side of the pool suite, in C++ (bench/pool_tbb.cpp), behind a
 * C ABI so that pool.c registers it like any other baseline. Each function
 * performs `iters` operations and returns the seconds they took. */
#ifndef WEFT_BENCH_POOL_TBB_H
#define WEFT_BENCH_POOL_TBB_H

#ifdef __cplusplus
extern "C" {
#endif

/* fib(30) with a task_group per call, `iters` times. */
double bench_tbb_fib_30(long iters);

/* `iters` empty tasks run on one task_group, then one wait. */
double bench_tbb_empty_tasks(long iters);

#ifdef __cplusplus
}
#endif

#endif
