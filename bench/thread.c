/*
 * Suite "thread": what weft's thread bookkeeping costs over raw pthreads.
 *
 * thread_create_join: one thread created, started and joined (and its handle
 * freed) per operation, against pthread_create + pthread_join with default
 * attributes: the same work a C programmer would write by hand.
 * current_thread: weft_thread_current() against pthread_self(). glibc
 * declares pthread_self const, so a plain loop would call it once and time
 * nothing; both sides are called through a volatile function pointer, so each
 * iteration performs one real call of each.
 */
#include "bench.h"

#include <weft/thread.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *empty(void *arg)
{
    return arg;
}

static double weft_create_join(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        weft_thread_t *t;
        if (weft_thread_new(&t, empty, NULL, NULL) || weft_thread_start(t) ||
            weft_thread_join(t, WEFT_FOREVER, NULL) || weft_thread_free(t)) {
            fputs("weft thread cycle failed\n", stderr);
            exit(1);
        }
    }
    return bench_now() - t0;
}

static double pthread_create_join(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, empty, NULL) || pthread_join(t, NULL)) {
            fputs("pthread cycle failed\n", stderr);
            exit(1);
        }
    }
    return bench_now() - t0;
}

BENCH_CASE(thread, thread_create_join, "pthread", weft_create_join, pthread_create_join, 0.8)

static weft_thread_t *(*volatile weft_self_fn)(void) = weft_thread_current;
static pthread_t (*volatile pthread_self_fn)(void) = pthread_self;

static double weft_current(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        bench_sink(weft_self_fn());
    return bench_now() - t0;
}

static double pthread_current(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        bench_sink((const void *)pthread_self_fn());
    return bench_now() - t0;
}

BENCH_CASE(thread, current_thread, "pthread_self", weft_current, pthread_current, 0)
