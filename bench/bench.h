/*
 * weft-bench's case registry. A suite file defines cases with BENCH_CASE:
 * weft's side and the baseline's side, each a function that performs `iters`
 * operations and returns the seconds they took (so setup stays outside the
 * timed part). The driver calibrates the iteration count, alternates the two
 * sides over several rounds, and reports the medians and their ratio.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <stdbool.h>

typedef double (*bench_fn)(long iters);

struct bench_case {
    const char *suite;
    const char *name;
    const char *baseline; /* the baseline's name in the JSON output */
    bench_fn weft, base;
    double bar; /* speedup the issue asks for; 0 = report only */
};

void bench_register(const struct bench_case *c);

#define BENCH_CASE(suite_, name_, baseline_, weft_, base_, bar_)                             \
    __attribute__((constructor)) static void bench_reg_##name_(void)                         \
    {                                                                                        \
        static const struct bench_case c = {#suite_, #name_, baseline_, weft_, base_, bar_}; \
        bench_register(&c);                                                                  \
    }

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Run a baseline program that times itself: the seconds it prints first
 * on its output (the rest is read and dropped). Exits on failure. */
double bench_run_timed(const char *command);

/* Keep a value alive so the compiler cannot drop the work that made it. */
void bench_sink(const void *p);

#endif
