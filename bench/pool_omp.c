/*
 * fib(n) with OpenMP tasks, the textbook way: each call makes a task for
 * each half and waits for both (task, task, taskwait), inside one parallel
 * region whose single thread starts the recursion. No cut-off, as on the
 * weft side: the point is the cost of a task.
 */
#include "pool_omp.h"

static long fib(int n)
{
    if (n < 2)
        return n;
    long x, y;
#pragma omp task shared(x)
    x = fib(n - 1);
#pragma omp task shared(y)
    y = fib(n - 2);
#pragma omp taskwait
    return x + y;
}

long bench_omp_fib(int n, int threads)
{
    long r = 0;
#pragma omp parallel num_threads(threads)
#pragma omp single
    r = fib(n);
    return r;
}
