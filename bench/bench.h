/*
 * weft-bench's case registry. A suite file defines cases with BENCH_CASE:
 * weft's side and the baseline's side, each a function that performs `iters`
 * operations and returns the seconds they took (so setup stays outside the
 * timed part). The driver calibrates the iteration count, alternates the two
 * sides over several rounds, and reports the medians and their ratio.
 *
 * A case's bars are the speedups (baseline / weft) the issue asks for, one
 * per kind of row; 0 means the row is reported without a bar:
 *   bar         the wall time per op, idle (the row named after the case);
 *   loaded_bar  the wall time per op under `--load N` (row <case>_loaded);
 *   cpu_bar     the process's CPU time per op under `--load N` (row
 *               <case>_loaded_cpu).
 * A case with `cpu` set also gets a CPU-time row idle (<case>_cpu, no bar)
 * and loaded: the cases that hand off between waiting threads, where a
 * figure can be bought with spinning that the wall time alone hides.
 *
 * A case that measures something other than time (memory per task, say)
 * names its unit: each side is then called once per round with iters = 1
 * and returns the figure itself, lower being better as for times, so that
 * the speedup is still baseline / weft. There is no calibration and no CPU
 * row for such a case.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef double (*bench_fn)(long iters);

struct bench_case {
    const char *suite;
    const char *name;
    const char *baseline; /* the baseline's name in the JSON output */
    bench_fn weft, base;
    double bar;        /* idle, wall time; 0 = report only */
    double loaded_bar; /* under --load, wall time; 0 = report only */
    bool cpu;          /* also report CPU time per op */
    double cpu_bar;    /* under --load, CPU time (when cpu); 0 = report only */
    const char *unit;  /* NULL: time per op; else the figure's unit ("bytes/task") */
};

void bench_register(const struct bench_case *c);

/* BENCH_CASE(suite, name, "baseline", weft_fn, base_fn, bar [, .loaded_bar = x]
 *            [, .cpu = true] [, .cpu_bar = y] [, .unit = "u"]): the trailing arguments are
 * the initializers from `bar` on, so a case names only the bars it has. */
#define BENCH_CASE(suite_, name_, baseline_, weft_, base_, ...)      \
    __attribute__((constructor)) static void bench_reg_##name_(void) \
    {                                                                \
        static const struct bench_case c = {.suite = #suite_,        \
                                            .name = #name_,          \
                                            .baseline = baseline_,   \
                                            .weft = weft_,           \
                                            .base = base_,           \
                                            .bar = __VA_ARGS__};     \
        bench_register(&c);                                          \
    }

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Run a baseline program that times itself: the seconds it prints first
 * on its output (the rest is read and dropped). Exits on failure. The
 * program's CPU time counts in the case's CPU rows (pclose reaps it). */
double bench_run_timed(const char *command);

/* Keep a value alive so the compiler cannot drop the work that made it. */
void bench_sink(const void *p);

#ifdef __cplusplus
}
#endif

#endif
