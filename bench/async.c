/*
 * Suite "async": weft's tasks (weft/async.h) against the other ways to run
 * many flows of control on few threads: raw context switches (ucontext,
 * Boost.Context) and Go's goroutines. Every weft side runs inside one
 * weft_run, on the calling thread, and times itself from inside its main
 * task, so the loop's set-up (an epoll and an eventfd) is not counted; the
 * Go sides time themselves inside their process (bench/go/async.go), so
 * Go's start-up is not counted either.
 *
 * switch: two tasks yield to each other through the scheduler
 *   (weft_co_sleep(0) in a loop), per yield. Against two ucontext_t
 *   contexts ping-ponging with swapcontext, per swapcontext: the switch a C
 *   programmer gets from libc, which also saves and restores the signal
 *   mask (a system call each time). weft's yield is more than a switch (it
 *   queues the task, switches to the scheduler and from there to the next
 *   task) and still should be far cheaper.
 * switch_boost: the same weft side against Boost.Context's jump_fcontext
 *   between two raw contexts (bench/async_boost.cpp), Boost at its fastest:
 *   no scheduler at all, a stack from a buffer made once. It is the floor a
 *   context switch can reach; the bar asks that weft's scheduled yield stay
 *   within twice that.
 * spawn_join: spawn a task that returns at once, join it and free it, one
 *   at a time, per pair. Against Go with GOMAXPROCS=1 (one thread, as one
 *   loop): wg.Add(1); go func() { wg.Done() }(); wg.Wait(). Both sides
 *   create a flow of control with a stack of its own, run it and wait for
 *   it; both reuse the stack of the one before (weft's stack cache, Go's
 *   free goroutines).
 * spawn_1m_concurrent: spawn 1,000,000 tasks that each yield once, so that
 *   all are live at once, then join and free them all, per task. Against
 *   the same in Go (GOMAXPROCS=1): 1M goroutines each calling
 *   runtime.Gosched() once, and a WaitGroup. Both sides start cold, in a
 *   fresh run and a fresh process: every weft task needs a fresh stack
 *   (a page fault on its first page), where Go starts each goroutine on
 *   2 KiB of its heap. A round of 1M tasks takes about a second, so the
 *   iteration count is the number of tasks with 1M as its floor. Reported
 *   without a bar.
 * idle_task_rss: resident bytes per sleeping task, with 100,000 tasks each
 *   in weft_co_sleep(60) (read from /proc/self/statm before spawning them
 *   and once they all sleep; then they are cancelled and joined). Against
 *   100,000 goroutines blocked on a channel, measured the same way inside
 *   the Go program. malloc_trim first, so that memory freed by an earlier
 *   case and still resident is not reused for free. Not a time: the case
 *   has a unit of its own (bench.h), lower is better. Reported without a
 *   bar.
 * queue_pingpong_tasks: two tasks pass one item back and forth through two
 *   weft Queues bounded to one item, per round trip. Against two goroutines
 *   doing the same through two unbuffered channels, GOMAXPROCS at Go's
 *   default (one per CPU): the way Go programs hand a value over, with
 *   Go's scheduler free to use every CPU. weft's tasks share one thread,
 *   and the Queue is the same one threads use (a task parks where a thread
 *   would sleep).
 * lock_contended_tasks_mn: 1,000 tasks in M:N mode on 2 threads each take
 *   one weft Lock n/1,000 times to add one to a counter, per acquisition.
 *   Against 1,000 goroutines doing the same with one sync.Mutex,
 *   GOMAXPROCS=2. A task that finds the Lock held looks at it up to
 *   four times while the other loop is running tasks, then parks; Go's
 *   waiter spins a little first too.
 * gather_100k: 100,000 tasks that each yield once, gathered
 *   (weft_co_gather), per task. Against the same in Python's asyncio
 *   (bench/py/gather.py: create_task for each coroutine, then await
 *   asyncio.gather), timed inside the interpreter. Both create every task
 *   before any runs, and both return each task's value through the gather.
 *   Both time the second of two such waves in one run: the steady state of
 *   a program that gathers again and again, where weft's tasks find the
 *   stacks the first wave left (and Python its freed memory). The first
 *   wave's cost, fresh stacks, is what spawn_1m_concurrent measures.
 */
#include "bench.h"

#ifdef WEFT_BENCH_BOOST
#include "async_boost.h"
#endif

#include <weft/async.h>
#include <weft/queue.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
#include <unistd.h>

enum {
    SPAWN_FLOOR = 1000000, /* spawn_1m_concurrent's tasks at the least */
    IDLE_TASKS = 100000,   /* idle_task_rss's */
};

_Noreturn static void die(const char *what, int err)
{
    fprintf(stderr, "async bench: %s failed (%d)\n", what, err);
    exit(1);
}

/* A weft side: `fn` runs as the main task of a loop of its own and sets
 * `value` from inside: the seconds its n operations took, or the figure. */
struct job {
    long n;
    double value;
};

static double run_on(weft_co_fn fn, long n, unsigned threads)
{
    struct job j = {n, 0};
    int rc = weft_run(fn, &j, &(weft_run_opts_t){.threads = threads}, NULL);
    if (rc != 0)
        die("weft_run", rc);
    return j.value;
}

static double run(weft_co_fn fn, long n)
{
    return run_on(fn, n, 1);
}

static weft_co_t *spawn(weft_co_fn fn, void *arg)
{
    weft_co_t *t;
    int rc = weft_co_spawn(&t, fn, arg, NULL);
    if (rc != 0)
        die("weft_co_spawn", rc);
    return t;
}

/* Join and free t, which must end with `expect`. */
static void join(weft_co_t *t, int expect)
{
    int rc = weft_co_join(t, WEFT_FOREVER, NULL);
    if (rc != expect)
        die("weft_co_join", rc);
    weft_co_free(t);
}

#if defined(WEFT_BENCH_GO_ASYNC) || defined(WEFT_BENCH_PY_GATHER)
/* The task of spawn_1m_concurrent and gather_100k: one yield. */
static void *yield_once(void *arg)
{
    int rc = weft_co_sleep(0);
    if (rc != 0)
        die("weft_co_sleep(0)", rc);
    return arg;
}
#endif

/* --- switch: weft ------------------------------------------------------------ */

static void *yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        int rc = weft_co_sleep(0);
        if (rc != 0)
            die("weft_co_sleep(0)", rc);
    }
    return NULL;
}

static void *switch_main(void *arg)
{
    struct job *j = arg;
    long a = (j->n + 1) / 2, b = j->n / 2; /* yields: n in all */
    double t0 = bench_now();
    weft_co_t *ta = spawn(yielder, &a), *tb = spawn(yielder, &b);
    join(ta, 0);
    join(tb, 0);
    j->value = bench_now() - t0;
    return NULL;
}

static double weft_switch(long iters)
{
    return run(switch_main, iters);
}

/* --- switch: ucontext -------------------------------------------------------- */

static ucontext_t uc_home, uc_other;

static void uc_bounce(void)
{
    for (;;)
        swapcontext(&uc_other, &uc_home);
}

static double ucontext_switch(long iters)
{
    static _Alignas(64) char stack[64 * 1024];
    if (getcontext(&uc_other) != 0)
        die("getcontext", errno);
    uc_other.uc_stack.ss_sp = stack;
    uc_other.uc_stack.ss_size = sizeof stack;
    uc_other.uc_link = NULL;
    makecontext(&uc_other, uc_bounce, 0);
    long rounds = (iters + 1) / 2; /* two switches each: there and back */
    double t0 = bench_now();
    for (long i = 0; i < rounds; i++)
        swapcontext(&uc_home, &uc_other);
    double secs = bench_now() - t0;
    return secs * (double)iters / (double)(2 * rounds);
}

BENCH_CASE(async, switch, "ucontext_swapcontext", weft_switch, ucontext_switch, 10.0)
#ifdef WEFT_BENCH_BOOST
BENCH_CASE(async, switch_boost, "boost_context", weft_switch, bench_boost_switch, 0.5)
#endif

#ifdef WEFT_BENCH_GO_ASYNC
/* The remaining cases' baselines are Go's. go-async MODE N: the figure it
 * prints first (seconds, or bytes). */
static double go(const char *mode, long n)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %ld", WEFT_BENCH_GO_ASYNC, mode, n);
    return bench_run_timed(cmd);
}

/* --- spawn_join -------------------------------------------------------------- */

static void *nothing(void *arg)
{
    return arg;
}

static void *spawn_join_main(void *arg)
{
    struct job *j = arg;
    double t0 = bench_now();
    for (long i = 0; i < j->n; i++)
        join(spawn(nothing, NULL), 0);
    j->value = bench_now() - t0;
    return NULL;
}

static double weft_spawn_join(long iters)
{
    return run(spawn_join_main, iters);
}

static double go_spawn_join(long iters)
{
    return go("spawn_join", iters);
}

BENCH_CASE(async, spawn_join, "go_goroutine_waitgroup", weft_spawn_join, go_spawn_join, 2.0)

/* --- spawn_1m_concurrent ----------------------------------------------------- */

static void *spawn_all_main(void *arg)
{
    struct job *j = arg;
    weft_co_t **t = malloc((size_t)j->n * sizeof *t);
    if (!t)
        die("malloc", -ENOMEM);
    double t0 = bench_now();
    for (long i = 0; i < j->n; i++)
        t[i] = spawn(yield_once, NULL);
    for (long i = 0; i < j->n; i++)
        join(t[i], 0);
    j->value = bench_now() - t0;
    free(t);
    return NULL;
}

/* The tasks a call spawns: iters, but at least SPAWN_FLOOR; the seconds
 * returned are scaled to iters of them. */
static long spawn_count(long iters)
{
    return iters < SPAWN_FLOOR ? SPAWN_FLOOR : iters;
}

static double weft_spawn_all(long iters)
{
    long n = spawn_count(iters);
    return run(spawn_all_main, n) * (double)iters / (double)n;
}

static double go_spawn_all(long iters)
{
    long n = spawn_count(iters);
    return go("spawn_concurrent", n) * (double)iters / (double)n;
}

BENCH_CASE(async, spawn_1m_concurrent, "go_goroutine_waitgroup", weft_spawn_all, go_spawn_all, 0)
#endif /* WEFT_BENCH_GO_ASYNC */

/* --- gather_100k ------------------------------------------------------------- */

#ifdef WEFT_BENCH_PY_GATHER
enum { GATHER = 100000 };

/* GATHER tasks, each yielding once, gathered: the same shape as the
 * asyncio program, which creates them all and awaits gather(). Seconds. */
static double gather_wave(weft_co_t **t, long n)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        t[i] = spawn(yield_once, (void *)i);
    int rc = weft_co_gather(t, (size_t)n, NULL, NULL);
    if (rc != 0)
        die("weft_co_gather", rc);
    double secs = bench_now() - t0;
    for (long i = 0; i < n; i++)
        weft_co_free(t[i]);
    return secs;
}

/* The second of two waves is timed, as in the asyncio program: a program
 * that gathers once in its life does not care how fast. */
static void *gather_main(void *arg)
{
    struct job *j = arg;
    weft_co_t **t = malloc((size_t)j->n * sizeof *t);
    if (!t)
        die("malloc", -ENOMEM);
    gather_wave(t, j->n);
    j->value = gather_wave(t, j->n);
    free(t);
    return NULL;
}

/* Per task, from rounds of GATHER tasks (iters only picks how many rounds). */
static double weft_gather(long iters)
{
    long rounds = iters / GATHER + 1;
    double s = 0;
    for (long r = 0; r < rounds; r++)
        s += run(gather_main, GATHER);
    return s * (double)iters / (double)(rounds * GATHER);
}

static double py_gather(long iters)
{
    long rounds = iters / GATHER + 1;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s %d", WEFT_BENCH_PY_GATHER, GATHER);
    double s = 0;
    for (long r = 0; r < rounds; r++)
        s += bench_run_timed(cmd);
    return s * (double)iters / (double)(rounds * GATHER);
}

BENCH_CASE(async, gather_100k, "python_asyncio_gather", weft_gather, py_gather, 10.0)
#endif /* WEFT_BENCH_PY_GATHER */

#ifdef WEFT_BENCH_GO_ASYNC

/* --- idle_task_rss ----------------------------------------------------------- */

/* The process's resident bytes. */
static double resident(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, pages;
    if (!f || fscanf(f, "%ld %ld", &size, &pages) != 2)
        die("reading /proc/self/statm", errno);
    fclose(f);
    return (double)pages * (double)sysconf(_SC_PAGESIZE);
}

static void *sleeper(void *arg)
{
    int rc = weft_co_sleep(60);
    if (rc != -ECANCELED)
        die("weft_co_sleep(60)", rc);
    return arg;
}

static void *idle_main(void *arg)
{
    struct job *j = arg;
    weft_co_t **t = malloc((size_t)j->n * sizeof *t);
    if (!t)
        die("malloc", -ENOMEM);
    weft_co_t *volatile *touch = t; /* the array's pages resident before the first reading */
    for (long i = 0; i < j->n; i++)
        touch[i] = NULL;
    malloc_trim(0);
    double before = resident();
    for (long i = 0; i < j->n; i++)
        t[i] = spawn(sleeper, NULL);
    int rc = weft_co_sleep(0); /* each task runs into its sleep before main runs again */
    if (rc != 0)
        die("weft_co_sleep(0)", rc);
    j->value = (resident() - before) / (double)j->n;
    for (long i = 0; i < j->n; i++)
        weft_co_cancel(t[i]);
    for (long i = 0; i < j->n; i++)
        join(t[i], -ECANCELED);
    free(t);
    return NULL;
}

static double weft_idle_rss(long iters)
{
    (void)iters; /* a figure, not a time: called once a round */
    return run(idle_main, IDLE_TASKS);
}

static double go_idle_rss(long iters)
{
    (void)iters;
    return go("rss", IDLE_TASKS);
}

BENCH_CASE(async, idle_task_rss, "go_goroutine_rss", weft_idle_rss, go_idle_rss, 0,
           .unit = "bytes/task")

/* --- queue_pingpong_tasks ---------------------------------------------------- */

struct rally {
    weft_queue_t *there, *back;
    long n;
};

static void *returner(void *arg)
{
    struct rally *r = arg;
    for (long i = 0; i < r->n; i++) {
        long v;
        int rc = weft_queue_get(r->there, &v, WEFT_FOREVER);
        if (rc == 0)
            rc = weft_queue_put(r->back, &v, WEFT_FOREVER);
        if (rc != 0)
            die("weft_queue_get/put (returner)", rc);
    }
    return NULL;
}

static void *pingpong_main(void *arg)
{
    struct job *j = arg;
    struct rally r = {NULL, NULL, j->n};
    int rc = weft_queue_new(&r.there, sizeof(long), 1);
    if (rc == 0)
        rc = weft_queue_new(&r.back, sizeof(long), 1);
    if (rc != 0)
        die("weft_queue_new", rc);
    long sum = 0;
    double t0 = bench_now();
    weft_co_t *t = spawn(returner, &r);
    for (long i = 0; i < j->n; i++) {
        long v;
        rc = weft_queue_put(r.there, &i, WEFT_FOREVER);
        if (rc == 0)
            rc = weft_queue_get(r.back, &v, WEFT_FOREVER);
        if (rc != 0)
            die("weft_queue_put/get", rc);
        sum += v;
    }
    join(t, 0);
    j->value = bench_now() - t0;
    bench_sink(&sum);
    weft_queue_free(r.there);
    weft_queue_free(r.back);
    return NULL;
}

static double weft_pingpong(long iters)
{
    return run(pingpong_main, iters);
}

static double go_pingpong(long iters)
{
    return go("pingpong", iters);
}

BENCH_CASE(async, queue_pingpong_tasks, "go_chan_unbuffered", weft_pingpong, go_pingpong, 2.0)

/* --- lock_contended_tasks_mn ------------------------------------------------- */

enum { LOCKERS = 1000 };

struct crowd {
    weft_lock_t lock;
    long each, counter;
};

static void *add_locked(void *arg)
{
    struct crowd *c = arg;
    for (long i = 0; i < c->each; i++) {
        int rc = weft_lock_acquire(&c->lock, WEFT_FOREVER);
        if (rc != 0)
            die("weft_lock_acquire", rc);
        c->counter++;
        weft_lock_release(&c->lock);
    }
    return NULL;
}

static void *crowd_main(void *arg)
{
    struct job *j = arg;
    struct crowd c = {WEFT_LOCK_INIT, j->n > LOCKERS ? j->n / LOCKERS : 1, 0};
    static weft_co_t *t[LOCKERS];
    double t0 = bench_now();
    for (int i = 0; i < LOCKERS; i++)
        t[i] = spawn(add_locked, &c);
    for (int i = 0; i < LOCKERS; i++)
        join(t[i], 0);
    double secs = bench_now() - t0;
    if (c.counter != c.each * LOCKERS)
        die("lock_contended_tasks_mn: a lost update", -EIO);
    j->value = secs * (double)j->n / (double)(c.each * LOCKERS);
    return NULL;
}

static double weft_crowd(long iters)
{
    return run_on(crowd_main, iters, 2);
}

static double go_crowd(long iters)
{
    return go("mutex", iters);
}

BENCH_CASE(async, lock_contended_tasks_mn, "go_sync_mutex", weft_crowd, go_crowd, 1.0)
#endif /* WEFT_BENCH_GO_ASYNC */
