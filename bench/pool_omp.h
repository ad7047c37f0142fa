/* The OpenMP side of the pool suite, in a file of its own because only it
 * is compiled with -fopenmp. */
#ifndef WEFT_BENCH_POOL_OMP_H
#define WEFT_BENCH_POOL_OMP_H

/* fib(n) with an OpenMP task per call, on `threads` threads. */
long bench_omp_fib(int n, int threads);

#endif
