/*
 * Suite "process": weft's processes and process pool against raw fork,
 * pipes and waitpid, and against Python's multiprocessing and
 * ProcessPoolExecutor (bench/py/mp.py, timed inside the interpreter).
 *
 * pool_apply_roundtrip: one tiny task at a time through a pool of one
 * worker (weft_ppool_apply), against a 1-byte round trip over two pipes
 * between two processes, the cheapest hand-off a C programmer would write.
 * Time per round trip.
 *
 * pool_map_tiny: a map of 1,000,000 longs through an identity function on
 * 2 workers with the default chunking, against Python's Pool(2).map with
 * its default chunking. Time per map.
 *
 * executor_submit_tiny: submit a task that returns its argument and collect
 * every result through its future, against ProcessPoolExecutor(2) doing
 * the same. Time per task.
 *
 * process_start_<method>: start and join a process that does nothing, with
 * that start method, against Python's Process(target=f).start(); join()
 * under the same method. Time per process.
 *
 * fork_start_join: weft's fork method against fork() and waitpid() by hand.
 *
 * Process starts run in weft-bench-start (bench/start.c), a program that
 * links only weft, since a fork's cost grows with what the forking process
 * has mapped; Python's run in an interpreter of their own. Pools and
 * Python's forkserver are started before the clock runs, on both sides.
 */
#include "bench.h"

#include <weft/ppool.h>
#include <weft/process.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "process bench: %s failed\n", what);
    exit(1);
}

static ssize_t tiny(const void *arg, size_t len, void *out, size_t cap)
{
    if (len > cap)
        return -EMSGSIZE;
    memcpy(out, arg, len);
    return (ssize_t)len;
}
WEFT_PROCESS_REGISTER(tiny);

static weft_ppool_t *pool_of(int n)
{
    weft_ppool_t *p;
    long x = 0, y;
    if (weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = n}) != 0 ||
        weft_ppool_apply(p, tiny, &x, sizeof x, &y, sizeof y) != sizeof y)
        die("weft_ppool_new");
    return p;
}

static double python(const char *args, long iters)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 %s %s %ld", WEFT_BENCH_PY_MP, args, iters);
    return bench_run_timed(cmd);
}

/* --- round trips ------------------------------------------------------------ */

static double weft_apply_roundtrip(long iters)
{
    static weft_ppool_t *p;
    if (!p)
        p = pool_of(1);
    long x = 0, y;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (weft_ppool_apply(p, tiny, &i, sizeof i, &y, sizeof y) != sizeof y)
            die("weft_ppool_apply");
    double secs = bench_now() - t0;
    bench_sink(&x);
    return secs;
}

static double pipe_pingpong(long iters)
{
    int to[2], from[2];
    if (pipe(to) || pipe(from))
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(to[1]);
        close(from[0]);
        while (read(to[0], &c, 1) == 1 && write(from[1], &c, 1) == 1)
            ;
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    char c = 'x';
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1)
            die("pipe round trip");
    double secs = bench_now() - t0;
    close(to[1]); /* the child reads the end of the stream and exits */
    waitpid(pid, NULL, 0);
    close(from[0]);
    return secs;
}

/* --- map ---------------------------------------------------------------------- */

enum { MAP_ITEMS = 1000000 };

/* The arrays are allocated per call and freed (unmapped) after, so that
 * the cases after this one fork a process of ordinary size. */
static double weft_map_tiny(long iters)
{
    static weft_ppool_t *p;
    if (!p)
        p = pool_of(2);
    long *items = malloc(MAP_ITEMS * sizeof *items), *results = malloc(MAP_ITEMS * sizeof *results);
    if (!items || !results)
        die("malloc");
    for (long i = 0; i < MAP_ITEMS; i++)
        items[i] = i;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (weft_ppool_map(p, tiny, items, MAP_ITEMS, sizeof(long), results, sizeof(long), 0, NULL,
                           NULL) != 0)
            die("weft_ppool_map");
    double secs = bench_now() - t0;
    bench_sink(results);
    free(items);
    free(results);
    return secs;
}

static double python_map_tiny(long iters)
{
    return python("pool_map", iters);
}

/* --- submit ------------------------------------------------------------------- */

static double weft_submit_tiny(long iters)
{
    static weft_ppool_t *p;
    if (!p)
        p = pool_of(2);
    weft_future_t **fs = malloc((size_t)iters * sizeof *fs);
    if (!fs)
        die("malloc");
    long sum = 0;
    double t0 = bench_now();
    for (long i = 0; i < iters; i++)
        if (weft_ppool_submit(p, tiny, &i, sizeof i, &fs[i]) != 0)
            die("weft_ppool_submit");
    for (long i = 0; i < iters; i++) {
        const void *data;
        if (weft_ppool_result(fs[i], WEFT_FOREVER, &data, NULL, NULL) != 0)
            die("weft_ppool_result");
        sum += *(const long *)data;
        weft_future_free(fs[i]);
    }
    double secs = bench_now() - t0;
    bench_sink(&sum);
    free(fs);
    return secs;
}

static double python_submit_tiny(long iters)
{
    return python("executor", iters);
}

/* --- process start ---------------------------------------------------------- */

static double start(const char *how, long iters)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %ld", WEFT_BENCH_START, how, iters);
    return bench_run_timed(cmd);
}

static double weft_start_fork(long iters)
{
    return start("fork", iters);
}

static double weft_start_spawn(long iters)
{
    return start("spawn", iters);
}

static double weft_start_forkserver(long iters)
{
    return start("forkserver", iters);
}

static double fork_waitpid(long iters)
{
    return start("raw", iters);
}

static double python_start_fork(long iters)
{
    return python("start fork", iters);
}

static double python_start_spawn(long iters)
{
    return python("start spawn", iters);
}

static double python_start_forkserver(long iters)
{
    return python("start forkserver", iters);
}

BENCH_CASE(process, fork_start_join, "fork_waitpid", weft_start_fork, fork_waitpid, 0.8)
BENCH_CASE(process, process_start_fork, "python_process_start_fork", weft_start_fork,
           python_start_fork, 10.0)
BENCH_CASE(process, process_start_spawn, "python_process_start_spawn", weft_start_spawn,
           python_start_spawn, 10.0)
BENCH_CASE(process, process_start_forkserver, "python_process_start_forkserver",
           weft_start_forkserver, python_start_forkserver, 10.0)
BENCH_CASE(process, pool_apply_roundtrip, "pipe_pingpong", weft_apply_roundtrip, pipe_pingpong, 1.0)
BENCH_CASE(process, pool_map_tiny, "python_mp_pool_map", weft_map_tiny, python_map_tiny, 5.0)
BENCH_CASE(process, executor_submit_tiny, "python_process_pool_executor", weft_submit_tiny,
           python_submit_tiny, 20.0)
