/*
 * Tests for weft/pool.h, after CPython's test_concurrent_futures
 * (test_thread_pool, test_shutdown, test_init): results and errors of
 * tasks, every task run exactly once under stress (from outside and from
 * inside the pool), recursive task trees with one worker, shutdown with
 * and without waiting and cancelling, the initializer and a failing one,
 * worker names, an idle pool's CPU use, parallel_for and map, bad input,
 * the progress bar as a terminal shows it, and the work-stealing deque:
 * its growth, alone and under a task that fans out, and its races. Then
 * the pool's failure paths: creation failing at each step, a broken pool,
 * a worker's timed wait, pools freed out of order, a submit racing the
 * last worker out, and a cancelling shutdown.
 */
#include "base/base.h"
#include "pool/deque.h"
#include "threads.h"
#include <weft/pool.h>
#include <weft/sync.h>

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static weft_pool_t *make(int workers)
{
    weft_pool_t *p;
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = workers}), 0);
    return p;
}

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

static void *failing(void *arg)
{
    WT_EQ(weft_task_fail((int)(intptr_t)arg), 0);
    return (void *)1; /* ignored: the task raised */
}

WT_CASE(submit_returns_values_and_errors)
{
    weft_pool_t *p = make(2);
    WT_EQ(weft_pool_workers(p), 2);
    weft_future_t *f[100];
    for (intptr_t i = 0; i < 100; i++)
        WT_EQ(weft_pool_submit(p, i % 10 == 9 ? failing : square, (void *)(i % 10 == 9 ? -EIO : i),
                               &f[i]),
              0);
    for (intptr_t i = 0; i < 100; i++) {
        void *v = NULL;
        int rc = weft_future_result(f[i], WEFT_FOREVER, &v);
        if (i % 10 == 9) {
            WT_EQ(rc, -EIO);
        } else {
            WT_EQ(rc, 0);
            WT_EQ((intptr_t)v, i * i);
        }
        WT_EQ(weft_future_done(f[i]), 1);
        weft_future_free(f[i]);
    }
    WT_EQ(weft_pool_free(p), 0);
}

/* Recursive Fibonacci with a task per call: every task waits for the two
 * it spawned, so with one worker the waits must run the sub-tasks. */
static void *fib(void *arg)
{
    intptr_t n = (intptr_t)arg;
    if (n < 2)
        return (void *)n;
    weft_pool_t *p = weft_pool_default();
    weft_future_t *a, *b;
    WT_EQ(weft_pool_submit(p, fib, (void *)(n - 1), &a), 0);
    WT_EQ(weft_pool_submit(p, fib, (void *)(n - 2), &b), 0);
    void *x, *y;
    WT_EQ(weft_future_result(b, WEFT_FOREVER, &y), 0);
    WT_EQ(weft_future_result(a, WEFT_FOREVER, &x), 0);
    weft_future_free(a);
    weft_future_free(b);
    return (void *)((intptr_t)x + (intptr_t)y);
}

struct tree {
    weft_pool_t *pool;
    int depth;
};

/* A binary tree of tasks on a given pool; returns the number of leaves. */
static void *tree(void *arg)
{
    struct tree *t = arg;
    if (t->depth == 0)
        return (void *)1;
    struct tree left = {t->pool, t->depth - 1}, right = left;
    weft_future_t *a, *b;
    WT_EQ(weft_pool_submit(t->pool, tree, &left, &a), 0);
    WT_EQ(weft_pool_submit(t->pool, tree, &right, &b), 0);
    void *x, *y;
    WT_EQ(weft_future_result(a, WEFT_FOREVER, &x), 0);
    WT_EQ(weft_future_result(b, WEFT_FOREVER, &y), 0);
    weft_future_free(a);
    weft_future_free(b);
    return (void *)((intptr_t)x + (intptr_t)y);
}

WT_CASE(nested_waiting_never_deadlocks_even_with_one_worker)
{
    for (int workers = 1; workers <= 3; workers++) {
        weft_pool_t *p = make(workers);
        struct tree root = {p, wt_sanitizer() ? 10 : 14};
        weft_future_t *f;
        WT_EQ(weft_pool_submit(p, tree, &root, &f), 0);
        void *leaves;
        WT_EQ(weft_future_result(f, WEFT_FOREVER, &leaves), 0);
        WT_EQ((intptr_t)leaves, 1 << root.depth);
        weft_future_free(f);
        WT_EQ(weft_pool_free(p), 0);
    }
    /* The default pool, as a recursive program would use it. */
    weft_future_t *f;
    WT_EQ(weft_pool_submit(weft_pool_default(), fib, (void *)(intptr_t)18, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 2584);
    weft_future_free(f);
    WT_CHECK(weft_pool_default() == weft_pool_default());
}

/* A task that waits with weft_wait for sub-tasks it submitted (queued
 * behind it on its worker's deque) runs them meanwhile, as it would in
 * weft_future_result: with one worker, nobody else would. Each return_when,
 * a repeated future among them. */
static void *wait_for_own_subtasks(void *arg)
{
    weft_pool_t *p = arg;
    for (int when = WEFT_FIRST_COMPLETED; when <= WEFT_ALL_COMPLETED; when++) {
        weft_future_t *f[3];
        for (int i = 0; i < 2; i++)
            WT_EQ(weft_pool_submit(p, fib, (void *)(intptr_t)10, &f[i]), 0);
        f[2] = f[0];
        int rc = weft_wait(f, 3, 10 * wt_slack(), when);
        WT_CHECK(rc >= 1 && rc <= 2);
        WT_EQ(weft_wait(f, 3, 10 * wt_slack(), WEFT_ALL_COMPLETED), 2);
        for (int i = 0; i < 2; i++)
            weft_future_free(f[i]);
    }
    return NULL;
}

WT_CASE(wait_in_a_task_runs_its_subtasks_even_with_one_worker)
{
    for (int workers = 1; workers <= 2; workers++) {
        weft_pool_t *p = make(workers);
        weft_future_t *f;
        WT_EQ(weft_pool_submit(p, wait_for_own_subtasks, p, &f), 0);
        WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), 0);
        weft_future_free(f);
        WT_EQ(weft_pool_free(p), 0);
    }
}

/* Every task runs exactly once: two outside threads submit, and some tasks
 * submit more from inside the pool (without futures: fire and forget). */
struct storm {
    weft_pool_t *pool;
    long per_thread;
    _Atomic unsigned char *ran;
    _Atomic long next_inner;
    long inner_base;
};

struct storm_task {
    struct storm *s;
    long id;
};

static void *storm_run(void *arg)
{
    struct storm_task *t = arg;
    atomic_fetch_add(&t->s->ran[t->id], 1);
    if (t->id < t->s->inner_base && t->id % 4 == 0) { /* spawn one from inside */
        struct storm_task *inner = malloc(sizeof *inner);
        WT_CHECK(inner != NULL);
        *inner =
            (struct storm_task){t->s, t->s->inner_base + atomic_fetch_add(&t->s->next_inner, 1)};
        WT_EQ(weft_pool_submit(t->s->pool, storm_run, inner, NULL), 0);
    }
    free(t);
    return NULL;
}

static void *storm_submit(void *arg)
{
    struct storm *s = arg;
    static _Atomic long next_id;
    for (long i = 0; i < s->per_thread; i++) {
        struct storm_task *t = malloc(sizeof *t);
        WT_CHECK(t != NULL);
        *t = (struct storm_task){s, atomic_fetch_add(&next_id, 1)};
        WT_EQ(weft_pool_submit(s->pool, storm_run, t, NULL), 0);
    }
    return NULL;
}

WT_STRESS(every_task_runs_exactly_once)
{
    struct storm s = {.pool = make(2), .per_thread = wt_sanitizer() ? 50000 : 500000};
    s.inner_base = 2 * s.per_thread;
    long total = s.inner_base + s.inner_base / 4;
    s.ran = calloc((size_t)total, 1);
    WT_CHECK(s.ran != NULL);
    weft_thread_t *t[2] = {spawn(storm_submit, &s), spawn(storm_submit, &s)};
    finish(t[0]);
    finish(t[1]);
    WT_EQ(weft_pool_shutdown(s.pool, true, false), 0); /* waits for the queued ones */
    for (long i = 0; i < total; i++)
        WT_EQ(s.ran[i], 1);
    WT_EQ(weft_pool_free(s.pool), 0);
    free((void *)s.ran);
}

static weft_event_t gate;

static void *wait_gate(void *arg)
{
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    return arg;
}

static void *submit_after_shutdown(void *arg)
{
    weft_pool_t *p = arg;
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    weft_future_t *f;
    /* A task of the pool may still submit, so accepted work can finish. */
    WT_EQ(weft_pool_submit(p, square, (void *)(intptr_t)7, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    weft_future_free(f);
    return v;
}

WT_CASE(shutdown_waits_and_refuses_new_work)
{
    WT_EQ(weft_event_init(&gate, 0), 0);
    weft_pool_t *p = make(1);
    weft_future_t *busy, *queued[10], *inner;
    WT_EQ(weft_pool_submit(p, submit_after_shutdown, p, &inner), 0);
    for (intptr_t i = 0; i < 10; i++)
        WT_EQ(weft_pool_submit(p, square, (void *)i, &queued[i]), 0);
    WT_EQ(weft_pool_shutdown(p, false, false), 0);
    WT_EQ(weft_pool_submit(p, square, NULL, &busy), WEFT_ESHUTDOWN);
    WT_EQ(weft_event_set(&gate), 0);
    WT_EQ(weft_pool_shutdown(p, true, false), 0); /* the queued ones still run */
    void *v;
    WT_EQ(weft_future_result(inner, 0, &v), 0);
    WT_EQ((intptr_t)v, 49);
    for (intptr_t i = 0; i < 10; i++) {
        WT_EQ(weft_future_result(queued[i], 0, &v), 0);
        WT_EQ((intptr_t)v, i * i);
        weft_future_free(queued[i]);
    }
    weft_future_free(inner);
    WT_EQ(weft_pool_free(p), 0);
}

WT_CASE(shutdown_can_cancel_what_has_not_started)
{
    WT_EQ(weft_event_init(&gate, 0), 0);
    weft_pool_t *p = make(1);
    weft_future_t *running, *queued[10];
    WT_EQ(weft_pool_submit(p, wait_gate, (void *)5, &running), 0);
    while (!weft_future_running(running)) /* the only worker is busy */
        sched_yield();
    for (intptr_t i = 0; i < 10; i++)
        WT_EQ(weft_pool_submit(p, square, (void *)i, &queued[i]), 0);
    WT_EQ(weft_future_cancel(queued[0]), 1); /* one cancelled by hand first */
    WT_EQ(weft_pool_shutdown(p, false, true), 0);
    for (int i = 0; i < 10; i++) {
        WT_EQ(weft_future_cancelled(queued[i]), 1);
        WT_EQ(weft_future_result(queued[i], 0, NULL), -ECANCELED);
        weft_future_free(queued[i]);
    }
    WT_EQ(weft_future_running(running), 1);
    WT_EQ(weft_event_set(&gate), 0);
    void *v;
    WT_EQ(weft_future_result(running, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 5);
    weft_future_free(running);
    WT_EQ(weft_pool_free(p), 0);
}

static _Atomic int initialized;

static int init_worker(void *arg)
{
    WT_CHECK(arg == &initialized);
    atomic_fetch_add(&initialized, 1);
    return 0;
}

static int init_fails(void *arg)
{
    (void)arg;
    return -EIO;
}

static void *my_name(void *arg)
{
    (void)arg;
    return (void *)weft_thread_name(weft_thread_current());
}

WT_CASE(initializer_and_thread_names)
{
    weft_pool_t *p;
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 3,
                                                .thread_name_prefix = "crunch",
                                                .initializer = init_worker,
                                                .initarg = &initialized}),
          0);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(p, my_name, NULL, &f), 0);
    void *name;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &name), 0);
    WT_CHECK(strncmp(name, "crunch_", 7) == 0);
    weft_future_free(f);
    WT_EQ(weft_pool_free(p), 0);
    WT_EQ(atomic_load(&initialized), 3);

    /* A failing initializer breaks the pool (Python's BrokenThreadPool). */
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 1, .initializer = init_fails}), 0);
    int rc = weft_pool_submit(p, square, NULL, &f);
    if (rc == 0) { /* submitted before the worker got to its initializer */
        WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), WEFT_EBROKEN);
        weft_future_free(f);
    } else {
        WT_EQ(rc, WEFT_EBROKEN);
    }
    while (weft_pool_submit(p, square, NULL, NULL) == 0)
        sched_yield();
    WT_EQ(weft_pool_submit(p, square, NULL, NULL), WEFT_EBROKEN);
    WT_EQ(weft_pool_free(p), 0);
}

/* CPU time of the process in clock ticks, from /proc/self/stat. */
static long cpu_ticks(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    WT_CHECK(f != NULL);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    WT_CHECK(p != NULL);
    long utime, stime;
    WT_EQ(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime), 2);
    return utime + stime;
}

WT_CASE(an_idle_pool_uses_no_cpu)
{
    weft_pool_t *p;
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 4, .thread_name_prefix = "idle"}),
          0);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(p, square, NULL, &f), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_free(f);
    /* Wait until every worker sleeps in the kernel. */
    weft_thread_t *list[64];
    int n = weft_thread_enumerate(list, 64);
    WT_CHECK(n > 0 && n <= 64);
    int parked = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(weft_thread_name(list[i]), "idle_", 5) == 0) {
            wt_await_futex_sleep(weft_thread_native_id(list[i]), NULL, 10 * wt_slack());
            parked++;
        }
        weft_thread_free(list[i]);
    }
    WT_EQ(parked, 4);
    long before = cpu_ticks();
    struct timespec pause = {0, 300000000};
    nanosleep(&pause, NULL);
    /* Four spinning workers would burn 120 ticks (at 100 Hz); allow 5. */
    WT_CHECK(cpu_ticks() - before <= 5);
    WT_EQ(weft_pool_free(p), 0);
}

static _Atomic unsigned char visits[100000];

static void visit(size_t lo, size_t hi, void *arg)
{
    WT_CHECK(arg == visits);
    WT_CHECK(lo < hi);
    for (size_t i = lo; i < hi; i++)
        atomic_fetch_add(&visits[i], 1);
}

static _Atomic size_t progress_last, progress_calls;

static void track(size_t done, size_t total, void *arg)
{
    WT_CHECK(arg == &progress_last);
    WT_CHECK(done <= total);
    size_t last = atomic_load(&progress_last);
    while (last < done && !atomic_compare_exchange_weak(&progress_last, &last, done))
        ;
    atomic_fetch_add(&progress_calls, 1);
}

WT_CASE(parallel_for_visits_each_index_once)
{
    weft_pool_t *p = make(2);
    size_t grains[] = {0, 1, 7, 1000, 200000};
    for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
        memset(visits, 0, sizeof visits);
        atomic_store(&progress_last, 0);
        WT_EQ(weft_parallel_for(p, 10, 100000, grains[g], visit, visits, track, &progress_last), 0);
        for (size_t i = 0; i < 100000; i++)
            WT_EQ(visits[i], i >= 10);
        WT_EQ(atomic_load(&progress_last), 100000 - 10); /* the last report is the total */
    }
    memset(visits, 0, sizeof visits); /* fewer indices than pieces: one each */
    WT_EQ(weft_parallel_for(p, 0, 3, 0, visit, visits, NULL, NULL), 0);
    for (size_t i = 0; i < 4; i++)
        WT_EQ(visits[i], i < 3);
    WT_EQ(weft_parallel_for(p, 5, 5, 0, visit, visits, NULL, NULL), 0);
    WT_EQ(weft_parallel_for(p, 6, 5, 0, visit, visits, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_free(p), 0);
}

static void fail_at_500(size_t lo, size_t hi, void *arg)
{
    (void)arg;
    if (lo <= 500 && 500 < hi)
        weft_task_fail(-ERANGE);
}

static void fail_with_lo(size_t lo, size_t hi, void *arg)
{
    (void)hi, (void)arg;
    weft_task_fail(-(int)(lo + 1));
}

/* Items 3 and 5 fail with their own number. */
static void *fail_items_3_and_5(void *item, void *arg)
{
    (void)arg;
    intptr_t i = (intptr_t)item;
    if (i == 3 || i == 5)
        weft_task_fail(-(int)i);
    return item;
}

static void *times_ten(void *item, void *arg)
{
    WT_CHECK(arg == NULL);
    return (void *)((intptr_t)item * 10);
}

WT_CASE(map_keeps_order_and_errors_propagate)
{
    weft_pool_t *p = make(2);
    enum { N = 10000 };
    static void *items[N], *results[N];
    for (intptr_t i = 0; i < N; i++)
        items[i] = (void *)i;
    size_t chunks[] = {0, 1, 3, 64, N};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        memset(results, 0, sizeof results);
        WT_EQ(weft_pool_map(p, times_ten, NULL, items, results, N, chunks[c], NULL, NULL), 0);
        for (intptr_t i = 0; i < N; i++)
            WT_EQ((intptr_t)results[i], i * 10);
    }
    memset(results, 0, sizeof results); /* fewer items than pieces */
    WT_EQ(weft_pool_map(p, times_ten, NULL, items, results, 3, 0, NULL, NULL), 0);
    for (intptr_t i = 0; i < 4; i++)
        WT_EQ((intptr_t)results[i], i < 3 ? i * 10 : 0);
    WT_EQ(weft_parallel_for(p, 0, 1000, 10, fail_at_500, NULL, NULL, NULL), -ERANGE);
    /* Two failing items in one chunk: the first in item order wins. */
    WT_EQ(weft_pool_map(p, fail_items_3_and_5, NULL, items, results, 8, 8, NULL, NULL), -3);
    /* Every range fails: the first in item order wins, a range's own error
     * over its right halves'. */
    WT_EQ(weft_parallel_for(p, 0, 4, 1, fail_with_lo, NULL, NULL, NULL), -1);
    WT_EQ(weft_pool_free(p), 0);
}

/* The process pool's task shape: a long in, its square (a short result) out;
 * negative items fail with their value, TOO_LONG answers too long. */
enum { TOO_LONG = 1 << 20 };
static ssize_t square_item(const void *arg, size_t len, void *out, size_t cap)
{
    long x;
    WT_EQ(len, sizeof x);
    memcpy(&x, arg, sizeof x);
    if (x < 0)
        return x;
    int y = (int)(x * x);
    memcpy(out, &y, sizeof y);
    return x == TOO_LONG ? (ssize_t)cap + 1 : (ssize_t)sizeof y;
}

/* Neither bytes in nor bytes out: counts its calls. */
static _Atomic int bare_calls;
static ssize_t bare_item(const void *arg, size_t len, void *out, size_t cap)
{
    WT_CHECK(arg == NULL && len == 0 && out == NULL && cap == 0);
    atomic_fetch_add(&bare_calls, 1);
    return 0;
}

WT_CASE(map_items_over_flat_arrays)
{
    weft_pool_t *p = make(2);
    enum { N = 1000 };
    static long items[N];
    static long results[N]; /* wider than the int written: zero-filled */
    for (long i = 0; i < N; i++)
        items[i] = i;
    size_t chunks[] = {0, 1, 7, N};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        memset(results, 0xff, sizeof results);
        WT_EQ(weft_pool_map_items(p, square_item, items, N, sizeof(long), results, sizeof(long),
                                  chunks[c], NULL, NULL),
              0);
        for (long i = 0; i < N; i++)
            WT_EQ(results[i], i * i);
    }
    items[5] = -5, items[9] = -9; /* one chunk, two failures: the first wins */
    WT_EQ(weft_pool_map_items(p, square_item, items, 10, sizeof(long), results, sizeof(long), 10,
                              NULL, NULL),
          -5);
    items[5] = TOO_LONG;
    WT_EQ(weft_pool_map_items(p, square_item, items, 10, sizeof(long), results, sizeof(long), 10,
                              NULL, NULL),
          -EMSGSIZE);
    WT_EQ(weft_pool_map_items(p, square_item, items, 0, sizeof(long), NULL, 0, 0, NULL, NULL), 0);
    /* Items and results of no size may be NULL (run under UBSan: no
     * arithmetic on them, no memset to them). */
    WT_EQ(weft_pool_map_items(p, bare_item, NULL, 5, 0, NULL, 0, 1, NULL, NULL), 0);
    WT_EQ(atomic_load(&bare_calls), 5);
    WT_EQ(weft_pool_map_items(p, NULL, items, 1, sizeof(long), results, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_map_items(p, square_item, NULL, 1, 8, results, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_map_items(p, square_item, items, SIZE_MAX, 8, results, 8, 0, NULL, NULL),
          -EINVAL);
    WT_EQ(weft_pool_map_items(p, square_item, items, 1, 8, NULL, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_map_items(p, square_item, items, SIZE_MAX / 4, 0, results, 8, 0, NULL, NULL),
          -EINVAL);
    WT_EQ(weft_pool_free(p), 0);
}

static void *free_own_pool(void *arg)
{
    WT_EQ(weft_pool_free(arg), -EDEADLK);
    WT_EQ(weft_pool_shutdown(arg, true, false), -EDEADLK);
    return NULL;
}

/* weft_task_fail takes a negative errno only; a bad one changes nothing. */
static void *fail_with_a_bad_code(void *arg)
{
    WT_EQ(weft_task_fail(0), -EINVAL);
    WT_EQ(weft_task_fail(EIO), -EINVAL);
    return arg;
}

WT_CASE(pool_bad_input)
{
    weft_pool_t *p;
    weft_future_t *f;
    WT_EQ(weft_pool_new(NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = -1}), -EINVAL);
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 4097}), -EINVAL);
    p = make(1);
    WT_EQ(weft_pool_submit(NULL, square, NULL, &f), -EINVAL);
    WT_EQ(weft_pool_submit(p, NULL, NULL, &f), -EINVAL);
    WT_EQ(weft_pool_shutdown(NULL, true, false), -EINVAL);
    WT_EQ(weft_pool_free(NULL), -EINVAL);
    WT_EQ(weft_pool_workers(NULL), -EINVAL);
    WT_EQ(weft_pool_map(p, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_map(p, times_ten, NULL, NULL, NULL, 5, 0, NULL, NULL), -EINVAL);
    void *items[1] = {NULL}, *results[1];
    WT_EQ(weft_pool_map(p, times_ten, NULL, items, NULL, 1, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_map(NULL, times_ten, NULL, items, results, 1, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_parallel_for(NULL, 0, 1, 0, visit, visits, NULL, NULL), -EINVAL);
    WT_EQ(weft_parallel_for(p, 0, 1, 0, NULL, NULL, NULL, NULL), -EINVAL);
    WT_EQ(weft_pool_submit(p, fail_with_a_bad_code, (void *)3, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 3);
    weft_future_free(f);
    WT_EQ(weft_pool_submit(p, free_own_pool, p, &f), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_free(f);
    WT_EQ(weft_pool_free(p), 0);
}

static int no_thread(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    (void)t, (void)attr, (void)fn, (void)arg;
    return EAGAIN;
}

static void never_called(weft_future_t *f, void *arg)
{
    (void)f, (void)arg;
    wt_fail(__FILE__, __LINE__, "a callback that failed to register ran", NULL);
}

/* Every allocation and thread start the pool and futures make can fail:
 * the call reports it, leaves nothing behind (ASan checks), and the next
 * call works. */
/* A default pool that could not be made is not NULL for good: the next
 * call, once threads can be had, makes it. */
static int no_default_thread(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                             void *arg)
{
    (void)t, (void)attr, (void)fn, (void)arg;
    return EAGAIN;
}

WT_FAULT(default_pool_is_made_once_it_can_be)
{
    weft__sys.pthread_create = no_default_thread;
    WT_CHECK(weft_pool_default() == NULL);
    weft__sys_reset();
    weft_pool_t *p = weft_pool_default();
    WT_CHECK(p != NULL);
    WT_CHECK(weft_pool_default() == p);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(p, square, (void *)7, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_CHECK(v == (void *)49);
    weft_future_free(f);
}

WT_FAULT(pool_and_futures_survive_failed_allocations)
{
    weft_pool_t *p;
    weft_future_t *f;
    weft__sys.aligned_alloc = wt_no_aligned_alloc; /* the pool, its workers, its queue */
    WT_EQ(weft_pool_new(&p, NULL), -ENOMEM);
    weft__sys_reset();
    weft__sys.malloc = wt_no_malloc; /* the deques' arrays */
    WT_EQ(weft_pool_new(&p, NULL), -ENOMEM);
    weft__sys_reset();
    weft__sys.pthread_create = no_thread;
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 3}), -EAGAIN);
    weft__sys_reset();

    p = make(2);
    weft__sys.malloc = wt_no_malloc; /* futures */
    WT_EQ(weft_pool_submit(p, square, NULL, &f), -ENOMEM);
    WT_EQ(weft_future_new(&f), -ENOMEM);
    weft__sys_reset();
    weft_future_t *g;
    WT_EQ(weft_future_new(&g), 0);
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_wait(&g, 1, 0, WEFT_ALL_COMPLETED), -ENOMEM);
    weft_as_completed_t *it;
    WT_EQ(weft_as_completed_new(&it, &g, 1, 0), -ENOMEM);
    weft__sys_reset();
    weft__sys.malloc = wt_no_malloc;
    WT_EQ(weft_future_add_done_callback(g, never_called, NULL), -ENOMEM);
    WT_EQ(weft_as_completed_new(&it, &g, 1, 0), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_future_set_result(g, NULL), 0);
    WT_EQ(weft_wait(&g, 1, 0, WEFT_ALL_COMPLETED), 1);
    weft_future_free(g);
    /* Everything works again. */
    WT_EQ(weft_pool_submit(p, square, (void *)(intptr_t)3, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 9);
    weft_future_free(f);
    WT_EQ(weft_pool_free(p), 0);
}

/*
 * Cancellation racing the workers: a thread cancels futures while the pool
 * picks their tasks up. Each one ends either cancelled, and then its task
 * never ran, or done, and then its task ran exactly once; its callback ran
 * exactly once either way.
 */
enum { RACED = 20000 };

struct raced {
    _Atomic unsigned char ran[RACED], called[RACED];
};

static void *mark_ran(void *arg)
{
    _Atomic unsigned char *slot = arg;
    atomic_fetch_add(slot, 1);
    return NULL;
}

static void mark_called(weft_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((_Atomic unsigned char *)arg, 1);
}

struct canceller {
    weft_future_t **f;
    int n;
};

static void *cancel_every_other(void *arg)
{
    struct canceller *c = arg;
    for (int i = 0; i < c->n; i += 2)
        WT_CHECK(weft_future_cancel(c->f[i]) >= 0);
    return NULL;
}

WT_STRESS(cancellation_races_execution)
{
    static struct raced r;
    static weft_future_t *f[RACED];
    int n = wt_sanitizer() ? RACED / 10 : RACED;
    weft_pool_t *p = make(2);
    WT_EQ(weft_event_init(&gate, 0), 0);
    weft_future_t *held[2]; /* both workers wait at the gate meanwhile */
    for (int i = 0; i < 2; i++)
        WT_EQ(weft_pool_submit(p, wait_gate, NULL, &held[i]), 0);
    for (int i = 0; i < n; i++) {
        WT_EQ(weft_pool_submit(p, mark_ran, &r.ran[i], &f[i]), 0);
        WT_EQ(weft_future_add_done_callback(f[i], mark_called, &r.called[i]), 0);
    }
    struct canceller c = {f, n};
    weft_thread_t *t = spawn(cancel_every_other, &c);
    WT_EQ(weft_event_set(&gate), 0); /* the workers start as the canceller does */
    finish(t);
    for (int i = 0; i < 2; i++) {
        WT_EQ(weft_future_result(held[i], WEFT_FOREVER, NULL), 0);
        weft_future_free(held[i]);
    }
    WT_EQ(weft_wait(f, (size_t)n, WEFT_FOREVER, WEFT_ALL_COMPLETED), n);
    /* As in Python, waiters wake before the callbacks run: those are all
     * over once the threads that finished the futures are joined. */
    WT_EQ(weft_pool_free(p), 0);
    for (int i = 0; i < n; i++) {
        int was_cancelled = weft_future_cancelled(f[i]);
        WT_CHECK(!was_cancelled || i % 2 == 0);
        WT_EQ(r.ran[i], !was_cancelled);
        WT_EQ(r.called[i], 1);
        WT_EQ(weft_future_result(f[i], 0, NULL), was_cancelled ? -ECANCELED : 0);
        weft_future_free(f[i]);
    }
}

/*
 * At exit every pool finishes and its workers are joined, even while a
 * task still running creates or frees pools: the exit hook must not hold
 * its list's lock while it joins (that task would wait for the lock, the
 * hook for the task). Run in a child, whose exit is the test.
 */
static weft_pool_t *exit_inner;

static void *free_inner_at_exit(void *arg)
{
    (void)arg;
    while (weft_pool_submit(exit_inner, square, NULL, NULL) == 0) /* until exit shuts it */
        sched_yield();
    WT_EQ(weft_pool_free(exit_inner), 0);
    weft_pool_t *late;
    WT_EQ(weft_pool_new(&late, NULL), WEFT_ESHUTDOWN); /* no new pools while exiting */
    return NULL;
}

static int exit_with_busy_pools(void *arg)
{
    (void)arg;
    weft_pool_t *outer = make(1);
    exit_inner = make(1);
    WT_EQ(weft_pool_submit(outer, free_inner_at_exit, NULL, NULL), 0);
    return 0; /* exit: the hook shuts both down and joins outer's worker */
}

WT_FAULT(exit_joins_pools_while_a_task_frees_one)
{
    int status = wt_fork(exit_with_busy_pools, NULL, 30 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
}

/*
 * Submits racing a shutdown: threads submit from outside while the pool
 * shuts down and its workers exit. Every submit is either refused
 * (WEFT_ESHUTDOWN) or its task runs: no accepted task is stranded after
 * the last worker leaves (the submitter then runs it itself).
 */
struct racer {
    weft_pool_t *pool;
    weft_future_t *f[4096];
    int accepted;
};

static void *submit_until_refused(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 4096; i++) {
        int rc = weft_pool_submit(r->pool, square, (void *)(intptr_t)i, &r->f[i]);
        if (rc == WEFT_ESHUTDOWN)
            break;
        WT_EQ(rc, 0);
        r->accepted++;
    }
    return NULL;
}

WT_STRESS(submits_racing_shutdown_are_refused_or_run)
{
    static struct racer r[2];
    for (int round = 0; round < (wt_sanitizer() ? 20 : 200); round++) {
        weft_pool_t *p = make(2);
        weft_thread_t *t[2];
        for (int k = 0; k < 2; k++) {
            r[k].pool = p;
            r[k].accepted = 0;
            t[k] = spawn(submit_until_refused, &r[k]);
        }
        for (int spin = 0; spin < round % 20; spin++)
            sched_yield();
        WT_EQ(weft_pool_shutdown(p, true, false), 0);
        for (int k = 0; k < 2; k++) {
            finish(t[k]);
            for (int i = 0; i < r[k].accepted; i++) {
                void *v;
                WT_EQ(weft_future_result(r[k].f[i], WEFT_FOREVER, &v), 0);
                WT_EQ((intptr_t)v, (intptr_t)i * i);
                weft_future_free(r[k].f[i]);
            }
        }
        WT_EQ(weft_pool_free(p), 0);
    }
}

/*
 * The progress bar, drawn on a pseudo-terminal that stands in for stderr
 * (the bar draws only on a terminal). The terminal is raw, so the test
 * reads exactly the bytes the bar wrote.
 */
struct tty {
    int master, slave, saved;
};

static void tty_open(struct tty *t)
{
    t->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (t->master < 0)
        wt_skip("no pseudo-terminals");
    WT_EQ(grantpt(t->master), 0);
    WT_EQ(unlockpt(t->master), 0);
    /* Non-blocking: a bar that draws too much fails the case, instead of
     * filling the terminal's buffer and blocking before the test reads. */
    t->slave = open(ptsname(t->master), O_RDWR | O_NOCTTY | O_NONBLOCK);
    WT_CHECK(t->slave >= 0);
    struct termios raw;
    WT_EQ(tcgetattr(t->slave, &raw), 0);
    cfmakeraw(&raw);
    WT_EQ(tcsetattr(t->slave, TCSANOW, &raw), 0);
    t->saved = dup(STDERR_FILENO);
    WT_CHECK(t->saved >= 0);
}

/* stderr is the terminal between on and off; checks run with it off, so
 * that a failing one is reported where it can be read. */
static void tty_on(struct tty *t)
{
    WT_EQ(dup2(t->slave, STDERR_FILENO), STDERR_FILENO);
}

static void tty_off(struct tty *t)
{
    WT_EQ(dup2(t->saved, STDERR_FILENO), STDERR_FILENO);
}

/* Everything written to the terminal so far, as a string: a marker goes
 * after it, and the master is read up to the marker. */
static void tty_read(struct tty *t, char *out, size_t size)
{
    WT_EQ(write(t->slave, "\1", 1), 1);
    size_t n = 0;
    for (;;) {
        struct pollfd pfd = {t->master, POLLIN, 0};
        WT_EQ(poll(&pfd, 1, (int)(10000 * wt_slack())), 1);
        WT_CHECK(n < size - 1);
        ssize_t got = read(t->master, out + n, size - 1 - n);
        WT_CHECK(got > 0);
        n += (size_t)got;
        if (out[n - 1] == '\1')
            break;
    }
    out[n - 1] = 0;
}

static void tty_close(struct tty *t)
{
    close(t->saved);
    close(t->slave);
    close(t->master);
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Seconds from the bar's mm:ss or h:mm:ss. */
static int clock_seconds(const char *text)
{
    int h, m, s;
    if (sscanf(text, "%d:%d:%d", &h, &m, &s) == 3)
        return h * 3600 + m * 60 + s;
    WT_EQ(sscanf(text, "%d:%d", &m, &s), 2);
    return m * 60 + s;
}

struct drawing {
    int percent, filled, spent, left;
    size_t done, total;
    double rate;
    char left_text[16];
    bool final; /* ended with a newline */
};

/* Parse the last line drawn in `out`, which must start with `label: ` (or
 * no label at all when NULL) and follow tqdm's shape. */
static struct drawing last_drawing(const char *out, const char *label)
{
    const char *line = strrchr(out, '\r');
    WT_CHECK(line != NULL);
    line++;
    if (label) {
        WT_CHECK(strncmp(line, label, strlen(label)) == 0);
        line += strlen(label);
        WT_CHECK(strncmp(line, ": ", 2) == 0);
        line += 2;
    }
    struct drawing d;
    char bar[21], spent[16];
    int end = 0;
    WT_EQ(sscanf(line, "%3d%%|%20c| %zu/%zu [%15[0-9:]<%15[0-9:], %lf it/s]%n", &d.percent, bar,
                 &d.done, &d.total, spent, d.left_text, &d.rate, &end),
          7);
    WT_CHECK(end > 0);
    bar[20] = 0;
    d.filled = (int)strspn(bar, "#");
    WT_EQ(strspn(bar + d.filled, " "), 20 - (size_t)d.filled); /* then blanks */
    d.spent = clock_seconds(spent);
    d.left = clock_seconds(d.left_text);
    d.final = strcmp(line + end, "\n") == 0;
    WT_CHECK(d.final || line[end] == 0);
    return d;
}

/* The estimate shown for `left` items at the shown rate (rounded to a
 * tenth): whole seconds, shown as 0 from 100 hours on. */
static void check_estimate(const struct drawing *d)
{
    WT_CHECK(d->rate > 0.05);
    double remaining = (double)(d->total - d->done);
    double fast = remaining / (d->rate + 0.05), slow = remaining / (d->rate - 0.05);
    if (fast > 359999)
        WT_EQ(d->left, 0);
    else if (slow <= 359999)
        WT_CHECK(d->left >= (int)fast && d->left <= (int)slow);
}

static void wait_past(double t)
{
    while (wt_now() < t) {
        struct timespec pause = {0, 5000000};
        nanosleep(&pause, NULL);
    }
}

WT_CASE(progress_bar_draws_on_a_terminal)
{
    static char out[65536];
    enum { TOTAL = 1000000 };
    struct tty tty;
    tty_open(&tty);

    /* A burst of calls draws at most ten times a second. */
    tty_on(&tty);
    double t0 = wt_now();
    weft_progress_bar(0, TOTAL, "work"); /* the bar starts: nothing to show yet */
    double t0_after = wt_now();
    for (size_t i = 1; i <= 1000; i++)
        weft_progress_bar(i, TOTAL, "work");
    double t1 = wt_now();
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    WT_CHECK(count_char(out, '\r') <= 1 + (int)((t1 - t0) * 10));

    /* A tenth of a second after the last draw, the next call draws: the
     * label, the share done, counts, time spent, the estimate and the
     * rate, measured from the bar's first call. */
    wait_past(t1 + 0.12);
    tty_on(&tty);
    double t2 = wt_now();
    weft_progress_bar(2000, TOTAL, "work");
    double t2_after = wt_now();
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    WT_EQ(count_char(out, '\r'), 1);
    struct drawing d = last_drawing(out, "work");
    WT_EQ(d.percent, 0);
    WT_EQ(d.filled, 0);
    WT_EQ(d.done, 2000);
    WT_EQ(d.total, TOTAL);
    WT_CHECK(!d.final);
    WT_CHECK(d.spent >= (int)(t2 - t0_after) && d.spent <= (int)(t2_after - t0));
    WT_CHECK(d.rate >= 2000 / (t2_after - t0) - 0.05 && d.rate <= 2000 / (t2 - t0_after) + 0.05);
    check_estimate(&d);

    /* A smaller count starts a new bar: its clock starts again. A slow
     * start makes an estimate past the hour, shown as h:mm:ss. */
    tty_on(&tty);
    double t3 = wt_now();
    weft_progress_bar(10, TOTAL, "work");
    double t3_after = wt_now();
    tty_off(&tty);
    wait_past(t3_after + 0.12);
    tty_on(&tty);
    double t4 = wt_now();
    weft_progress_bar(20, TOTAL, "work");
    double t4_after = wt_now();
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    WT_EQ(count_char(out, '\r'), 1);
    d = last_drawing(out, "work");
    WT_EQ(d.done, 20);
    WT_CHECK(d.rate >= 20 / (t4_after - t3) - 0.05 && d.rate <= 20 / (t4 - t3_after) + 0.05);
    check_estimate(&d);
    WT_EQ(count_char(d.left_text, ':'), d.left >= 3600 ? 2 : 1); /* h:mm:ss from the hour */

    /* Half done: half the bar. */
    wait_past(t4_after + 0.12);
    tty_on(&tty);
    weft_progress_bar(TOTAL / 2, TOTAL, "work");
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    d = last_drawing(out, "work");
    WT_EQ(d.percent, 50);
    WT_EQ(d.filled, 10);
    WT_EQ(d.done, TOTAL / 2);

    /* Reaching the total draws at once, for good: a full bar and a newline. */
    tty_on(&tty);
    weft_progress_bar(TOTAL, TOTAL, "work");
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    d = last_drawing(out, "work");
    WT_EQ(d.percent, 100);
    WT_EQ(d.filled, 20);
    WT_EQ(d.done, TOTAL);
    WT_EQ(d.left, 0);
    WT_CHECK(d.final);

    /* Without a label; a new total is a new bar, whose first call draws
     * only if it is already finished. */
    tty_on(&tty);
    weft_progress_bar(0, 0, NULL);
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    WT_CHECK(strcmp(out, "\r100%|####################| 0/0 [00:00<00:00, 0.0 it/s]\n") == 0);
    tty_on(&tty);
    weft_progress_bar(3, 4, NULL);
    weft_progress_bar(4, 4, NULL);
    tty_off(&tty);
    tty_read(&tty, out, sizeof out);
    WT_EQ(count_char(out, '\r'), 1);
    d = last_drawing(out, NULL);
    WT_EQ(d.done, 4);
    WT_EQ(d.total, 4);
    WT_CHECK(d.final);
    tty_close(&tty);
}

/* Logs and pipes stay clean: on anything but a terminal the bar is silent. */
WT_CASE(progress_bar_stays_off_pipes)
{
    int fds[2], saved = dup(STDERR_FILENO);
    WT_EQ(pipe2(fds, O_NONBLOCK), 0);
    WT_EQ(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    weft_progress_bar(0, 10, "quiet");
    weft_progress_bar(10, 10, "quiet"); /* on a terminal, the final line */
    WT_EQ(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    char c;
    WT_EQ(read(fds[0], &c, 1), -1);
    WT_EQ(errno, EAGAIN);
    close(fds[0]);
    close(fds[1]);
    close(saved);
}

/*
 * The work-stealing deque on its own: the owner pushes and takes at the
 * bottom, thieves steal at the top, and the array grows when full. An
 * element is a task by value, three words; element i has i in its
 * argument and ~i as its owner, so a torn copy would show.
 */
static void *item_fn(void *arg)
{
    return arg;
}

static int push_item(weft__deque_t *d, intptr_t i)
{
    return weft__deque_push(d, &(weft__task_t){item_fn, (void *)i, ~(uintptr_t)i});
}

/* The element's number, checked whole; 0 for none. */
static intptr_t item_of(bool got, const weft__task_t *t)
{
    if (!got)
        return 0;
    WT_CHECK(t->fn == item_fn);
    WT_EQ(t->owner, ~(uintptr_t)t->arg);
    return (intptr_t)t->arg;
}

static intptr_t take_one(weft__deque_t *d)
{
    weft__task_t t;
    return item_of(weft__deque_take(d, &t), &t);
}

static intptr_t steal_one(weft__deque_t *d)
{
    bool lost;
    weft__task_t t;
    intptr_t i = item_of(weft__deque_steal(d, &t, &lost), &t);
    WT_CHECK(!lost); /* no other thief here */
    return i;
}

/* Growing keeps every element in place: pushes past several sizes of the
 * array, with thieves having moved the top away from index 0 in between,
 * so the live range wraps around the old array when it is copied. */
WT_CASE(deque_grows_keeping_its_order)
{
    weft__deque_t d;
    WT_EQ(weft__deque_init(&d), 0);
    WT_CHECK(!weft__deque_busy(&d));
    for (intptr_t i = 1; i <= 1000; i++)
        WT_EQ(push_item(&d, i), 0);
    for (intptr_t i = 1; i <= 300; i++) /* the oldest first */
        WT_EQ(steal_one(&d), i);
    for (intptr_t i = 1001; i <= 5000; i++)
        WT_EQ(push_item(&d, i), 0);
    WT_CHECK(weft__deque_busy(&d));
    for (intptr_t i = 5000; i > 2000; i--) /* the newest first */
        WT_EQ(take_one(&d), i);
    for (intptr_t i = 301; i <= 2000; i++)
        WT_EQ(steal_one(&d), i);
    WT_EQ(take_one(&d), 0);
    WT_EQ(steal_one(&d), 0);
    WT_CHECK(!weft__deque_busy(&d));
    weft__deque_destroy(&d); /* the outgrown arrays too (ASan checks) */
}

/* A push that needs a bigger array it cannot get fails with -ENOMEM and
 * leaves the deque as it was. */
WT_FAULT(deque_push_fails_whole_when_it_cannot_grow)
{
    weft__deque_t d;
    WT_EQ(weft__deque_init(&d), 0);
    weft__sys.malloc = wt_no_malloc;
    intptr_t held = 0;
    int rc;
    while ((rc = push_item(&d, held + 1)) == 0)
        held++;
    weft__sys_reset();
    WT_EQ(rc, -ENOMEM);
    WT_CHECK(held >= 1 && (held & (held - 1)) == 0); /* a full power-of-two array */
    WT_EQ(push_item(&d, held + 1), 0);               /* grows now */
    WT_EQ(take_one(&d), held + 1);
    for (intptr_t i = 1; i <= held; i++)
        WT_EQ(steal_one(&d), i);
    WT_EQ(steal_one(&d), 0);
    weft__deque_destroy(&d);
}

/* The owner pushes and takes back, now a burst bigger than the array it
 * has, now one to three elements, so that it often races the two thieves
 * for the last one: each element is had exactly once, by the owner or by
 * one thief. */
struct heist {
    weft__deque_t deque;
    _Atomic unsigned char *had;
    _Atomic int thieves;
    _Atomic bool owner_done;
};

static void claim(struct heist *h, intptr_t i)
{
    WT_CHECK(i != 0);
    WT_EQ(atomic_fetch_add(&h->had[i - 1], 1), 0);
}

static void *thief(void *arg)
{
    struct heist *h = arg;
    atomic_fetch_add(&h->thieves, 1);
    for (;;) {
        bool done = atomic_load(&h->owner_done), lost;
        weft__task_t t;
        intptr_t i = item_of(weft__deque_steal(&h->deque, &t, &lost), &t);
        if (i)
            claim(h, i);
        else if (done && !lost)
            return NULL;
    }
}

WT_STRESS(deque_owner_and_thieves_have_each_element_once)
{
    enum { BURST = 700 };
    struct heist h = {.owner_done = false};
    long rounds = wt_sanitizer() ? 20000 : 200000, total = (rounds / 64 + 1) * BURST + 3 * rounds;
    h.had = calloc((size_t)total, 1);
    WT_CHECK(h.had != NULL);
    WT_EQ(weft__deque_init(&h.deque), 0);
    weft_thread_t *t[2] = {spawn(thief, &h), spawn(thief, &h)};
    while (atomic_load(&h.thieves) < 2)
        sched_yield();
    intptr_t next = 1;
    for (long r = 0; r < rounds; r++) {
        for (long i = 0, n = r % 64 ? 1 + r % 3 : BURST; i < n; i++)
            WT_EQ(push_item(&h.deque, next++), 0);
        intptr_t i;
        while ((i = take_one(&h.deque)) != 0)
            claim(&h, i);
    }
    atomic_store(&h.owner_done, true);
    finish(t[0]);
    finish(t[1]);
    WT_CHECK(next - 1 <= total);
    for (long i = 0; i < next - 1; i++)
        WT_EQ(h.had[i], 1);
    WT_CHECK(!weft__deque_busy(&h.deque));
    weft__deque_destroy(&h.deque);
    free((void *)h.had);
}

/* Through the pool: one task submits more sub-tasks than its deque's first
 * array holds, while the other workers steal them; each runs exactly once
 * and its future has its own result. */
enum { FAN = 5000 };

struct fan {
    weft_pool_t *pool;
    _Atomic unsigned char ran[FAN];
};

struct fan_task {
    struct fan *fan;
    intptr_t i;
};

static void *fan_leaf(void *arg)
{
    struct fan_task *t = arg;
    atomic_fetch_add(&t->fan->ran[t->i], 1);
    return (void *)(t->i * 3);
}

static void *fan_out(void *arg)
{
    struct fan *fan = arg;
    static struct fan_task tasks[FAN];
    static weft_future_t *f[FAN];
    for (intptr_t i = 0; i < FAN; i++) {
        tasks[i] = (struct fan_task){fan, i};
        WT_EQ(weft_pool_submit(fan->pool, fan_leaf, &tasks[i], &f[i]), 0);
    }
    for (intptr_t i = 0; i < FAN; i++) {
        void *v;
        WT_EQ(weft_future_result(f[i], WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, i * 3);
        weft_future_free(f[i]);
    }
    return NULL;
}

WT_CASE(a_task_submits_more_than_its_deque_holds)
{
    static struct fan fan;
    fan.pool = make(3);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(fan.pool, fan_out, &fan, &f), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_free(f);
    WT_EQ(weft_pool_free(fan.pool), 0);
    for (int i = 0; i < FAN; i++)
        WT_EQ(fan.ran[i], 1);
}

/* A submit from inside a task whose deque is full and cannot grow fails
 * with -ENOMEM and leaves nothing behind (ASan checks its future); what
 * was accepted before still runs. One worker: nobody steals meanwhile. */
static void *malloc_small(size_t size)
{
    return size <= 1024 ? malloc(size) : NULL; /* a future, not an array */
}

static void *fill_own_deque(void *arg)
{
    weft_pool_t *p = arg;
    static weft_future_t *f[1 << 16];
    int n = 0, rc;
    weft__sys.malloc = malloc_small; /* not the deque's next array */
    while ((rc = weft_pool_submit(p, square, (void *)(intptr_t)n, &f[n])) == 0)
        WT_CHECK(++n < 1 << 16);
    weft__sys_reset();
    WT_EQ(rc, -ENOMEM);
    WT_CHECK(n >= 1 && (n & (n - 1)) == 0); /* the first array, full */
    for (int i = 0; i < n; i++) {
        void *v;
        WT_EQ(weft_future_result(f[i], WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, (intptr_t)i * i);
        weft_future_free(f[i]);
    }
    return NULL;
}

WT_FAULT(a_submit_from_inside_fails_when_the_deque_cannot_grow)
{
    weft_pool_t *p = make(1);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(p, fill_own_deque, p, &f), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_free(f);
    WT_EQ(weft_pool_free(p), 0);
}

/*
 * Creating a pool fails whole at whichever step fails: each allocation
 * (the pool, its workers, its injection queue, each deque, each worker's
 * thread) and each worker's start, the first or a later one. The call
 * reports the error, the workers already started are joined (only the
 * main thread is left), nothing leaks (ASan), and with nothing failing
 * the same call works. Only the test's own thread fails: the workers it
 * started run as usual.
 */
static pthread_t failing_thread;
static int fail_step, steps;

static bool fail_here(void)
{
    return pthread_equal(pthread_self(), failing_thread) && steps++ == fail_step;
}

static void *malloc_failing_at(size_t size)
{
    return fail_here() ? NULL : malloc(size);
}

static void *calloc_failing_at(size_t count, size_t size)
{
    return fail_here() ? NULL : calloc(count, size);
}

static void *aligned_alloc_failing_at(size_t alignment, size_t size)
{
    return fail_here() ? NULL : aligned_alloc(alignment, size);
}

static int pthread_create_failing_at(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                     void *arg)
{
    return fail_here() ? EAGAIN : pthread_create(t, attr, fn, arg);
}

static void fail_step_of(int which)
{
    if (which == 0)
        weft__sys.malloc = malloc_failing_at;
    else if (which == 1)
        weft__sys.calloc = calloc_failing_at;
    else if (which == 2)
        weft__sys.aligned_alloc = aligned_alloc_failing_at;
    else
        weft__sys.pthread_create = pthread_create_failing_at;
}

WT_FAULT(pool_creation_fails_whole_at_each_step)
{
    failing_thread = pthread_self();
    static const int expected[] = {-ENOMEM, -ENOMEM, -ENOMEM, -EAGAIN};
    for (int which = 0; which < 4; which++) {
        int failed = 0, rc;
        for (fail_step = 0;; fail_step++) {
            steps = 0;
            fail_step_of(which);
            weft_pool_t *p;
            rc = weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 3});
            weft__sys_reset();
            if (rc == 0) {
                WT_EQ(weft_thread_active_count(), 4);
                WT_EQ(weft_pool_submit(p, square, (void *)(intptr_t)4, NULL), 0);
                WT_EQ(weft_pool_free(p), 0);
                WT_EQ(weft_thread_active_count(), 1);
                break;
            }
            WT_EQ(rc, expected[which]);
            WT_EQ(weft_thread_active_count(), 1); /* the started workers are joined */
            failed++;
        }
        WT_CHECK(failed >= 3); /* one step per worker at least */
    }
}

/* A task's timed wait for a future that does not finish in time ends with
 * -ETIMEDOUT, after the timeout, leaving the future pending; a worker
 * waits like any thread here, only running other tasks meanwhile. */
static void *wait_briefly(void *arg)
{
    weft_future_t *never = arg;
    double t0 = wt_now();
    WT_EQ(weft_future_result(never, 0.05, NULL), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_future_done(never), 0);
    return (void *)1;
}

WT_CASE(a_worker_times_out_waiting)
{
    weft_pool_t *p = make(1);
    weft_future_t *never, *f;
    WT_EQ(weft_future_new(&never), 0);
    WT_EQ(weft_pool_submit(p, wait_briefly, never, &f), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 1);
    weft_future_free(f);
    WT_EQ(weft_future_set_result(never, NULL), 0); /* no waiter left behind on it */
    weft_future_free(never);
    WT_EQ(weft_pool_free(p), 0);
}

/* Pools freed out of the order they were made leave the others whole:
 * the rest still run tasks, and the exit hook (in a child, whose exit is
 * the test) still finds and joins every one still alive. */
static int free_the_middle_pool(void *arg)
{
    (void)arg;
    weft_pool_t *p[3] = {make(1), make(1), make(1)};
    WT_EQ(weft_pool_free(p[1]), 0);
    WT_EQ(weft_pool_free(p[0]), 0); /* the oldest, last in the list */
    weft_pool_t *q = make(1);
    for (int i = 0; i < 100; i++) {
        WT_EQ(weft_pool_submit(p[2], square, NULL, NULL), 0);
        WT_EQ(weft_pool_submit(q, square, NULL, NULL), 0);
    }
    return weft_thread_active_count() == 3 ? 0 : 1; /* exit: the hook joins two pools */
}

WT_FAULT(pools_freed_in_any_order)
{
    int status = wt_fork(free_the_middle_pool, NULL, 30 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
}

/*
 * A submit that passed the shutdown check just before the pool shut down,
 * and pushed its task only after the last worker had left, runs the task
 * itself: it was accepted, so it runs. The test stops the submit between
 * the check and the push, at the injection queue's first allocation (its
 * first block), and shuts the pool down there, waiting for the workers.
 */
static weft_pool_t *closing_pool;

static void *calloc_shutting_down(size_t count, size_t size)
{
    weft__sys_reset();
    WT_EQ(weft_pool_shutdown(closing_pool, true, false), 0);
    WT_EQ(weft_thread_active_count(), 1); /* every worker has left */
    return calloc(count, size);
}

static _Atomic long ran_on;

static void *note_thread(void *arg)
{
    atomic_store(&ran_on, weft_thread_get_native_id());
    return arg;
}

WT_FAULT(a_submit_racing_the_last_worker_out_runs_its_task)
{
    for (int with_future = 0; with_future < 2; with_future++) {
        closing_pool = make(2);
        atomic_store(&ran_on, 0);
        weft__sys.calloc = calloc_shutting_down; /* (a future is malloc'd) */
        weft_future_t *f = NULL;
        WT_EQ(weft_pool_submit(closing_pool, note_thread, (void *)7, with_future ? &f : NULL), 0);
        WT_EQ(weft__sys.calloc, calloc); /* the shutdown did happen in between */
        WT_EQ(atomic_load(&ran_on), weft_thread_get_native_id()); /* run by the submitter */
        if (f) {
            void *v;
            WT_EQ(weft_future_result(f, 0, &v), 0);
            WT_EQ((intptr_t)v, 7);
            weft_future_free(f);
        }
        WT_EQ(weft_pool_submit(closing_pool, note_thread, NULL, NULL), WEFT_ESHUTDOWN);
        WT_EQ(weft_pool_free(closing_pool), 0);
    }
}

/* Shutting down with cancel_futures also cancels the sub-tasks a running
 * task queued in its own deque, and drops queued tasks nobody has a future
 * of: none of them runs. */
static _Atomic int dropped_ran;
static weft_future_t *queued_inside[3];
static weft_event_t queued;

static void *count_dropped(void *arg)
{
    atomic_fetch_add(&dropped_ran, 1);
    return arg;
}

static void *queue_then_wait(void *arg)
{
    weft_pool_t *p = arg;
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_pool_submit(p, count_dropped, NULL, &queued_inside[i]), 0);
    WT_EQ(weft_event_set(&queued), 0);
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_future_cancelled(queued_inside[i]), 1);
    return NULL;
}

WT_CASE(cancelling_shutdown_reaches_every_queue)
{
    WT_EQ(weft_event_init(&gate, 0), 0);
    WT_EQ(weft_event_init(&queued, 0), 0);
    weft_pool_t *p = make(1);
    weft_future_t *running;
    WT_EQ(weft_pool_submit(p, queue_then_wait, p, &running), 0);
    WT_EQ(weft_event_wait(&queued, WEFT_FOREVER), 0); /* the only worker waits at the gate */
    for (int i = 0; i < 5; i++)
        WT_EQ(weft_pool_submit(p, count_dropped, NULL, NULL), 0);
    WT_EQ(weft_pool_shutdown(p, false, true), 0);
    WT_EQ(weft_event_set(&gate), 0);
    WT_EQ(weft_future_result(running, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_pool_free(p), 0);
    WT_EQ(atomic_load(&dropped_ran), 0);
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_future_result(queued_inside[i], 0, NULL), -ECANCELED);
        weft_future_free(queued_inside[i]);
    }
    weft_future_free(running);
}

/* A pool whose initializer fails is broken (Python's BrokenThreadPool),
 * also for the tasks it accepted before: those with a future fail with
 * WEFT_EBROKEN, those without never run, and new ones are refused. */
static int init_fails_at_gate(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    return -EIO;
}

WT_CASE(a_broken_pool_fails_what_it_accepted)
{
    WT_EQ(weft_event_init(&gate, 0), 0);
    atomic_store(&dropped_ran, 0);
    weft_pool_t *p;
    WT_EQ(
        weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 1, .initializer = init_fails_at_gate}),
        0);
    weft_future_t *f;
    WT_EQ(weft_pool_submit(p, count_dropped, NULL, &f), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_pool_submit(p, count_dropped, NULL, NULL), 0);
    WT_EQ(weft_event_set(&gate), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, NULL), WEFT_EBROKEN);
    weft_future_free(f);
    WT_EQ(weft_pool_submit(p, count_dropped, NULL, NULL), WEFT_EBROKEN);
    WT_EQ(weft_pool_submit(p, count_dropped, NULL, &f), WEFT_EBROKEN);
    WT_EQ(weft_pool_free(p), 0); /* the worker drops the rest before it leaves */
    WT_EQ(atomic_load(&dropped_ran), 0);
}

/* Python lets set_result finish a running future; the task's own outcome
 * then comes too late and is dropped, and the callbacks run once. */
static void *return_after_gate(void *arg)
{
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    return arg;
}

static void count_callback(weft_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((_Atomic int *)arg, 1);
}

WT_CASE(a_running_task_can_be_finished_from_outside)
{
    WT_EQ(weft_event_init(&gate, 0), 0);
    weft_pool_t *p = make(1);
    weft_future_t *f;
    static _Atomic int called;
    WT_EQ(weft_pool_submit(p, return_after_gate, (void *)1, &f), 0);
    WT_EQ(weft_future_add_done_callback(f, count_callback, (void *)&called), 0);
    while (weft_future_running(f) != 1)
        sched_yield();
    WT_EQ(weft_future_set_result(f, (void *)2), 0);
    WT_EQ(weft_event_set(&gate), 0);
    WT_EQ(weft_pool_shutdown(p, true, false), 0); /* the task has returned */
    void *v;
    WT_EQ(weft_future_result(f, 0, &v), 0);
    WT_EQ((intptr_t)v, 2);
    WT_EQ(atomic_load(&called), 1);
    weft_future_free(f);
    WT_EQ(weft_pool_free(p), 0);
}

/* A range task that cannot get memory for a half's future runs the rest
 * of its range itself: with every split failing (allocations fail on the
 * workers' threads only), the root runs the whole range in one call, and
 * parallel_for still succeeds. On a shut-down pool it fails at once. */
static pthread_t main_thread;
static _Atomic int range_calls;

static void *malloc_failing_off_main(size_t size)
{
    return pthread_equal(pthread_self(), main_thread) ? malloc(size) : NULL;
}

static void visit_counting(size_t lo, size_t hi, void *arg)
{
    atomic_fetch_add(&range_calls, 1);
    visit(lo, hi, arg);
}

WT_FAULT(parallel_for_runs_what_it_cannot_split)
{
    main_thread = pthread_self();
    weft_pool_t *p = make(2);
    memset(visits, 0, sizeof visits);
    atomic_store(&progress_last, 0);
    atomic_store(&progress_calls, 0);
    weft__sys.malloc = malloc_failing_off_main;
    int rc = weft_parallel_for(p, 0, 1000, 10, visit_counting, visits, track, &progress_last);
    weft__sys_reset();
    WT_EQ(rc, 0);
    WT_EQ(atomic_load(&range_calls), 1);
    for (size_t i = 0; i < 1000; i++)
        WT_EQ(visits[i], 1);
    WT_EQ(atomic_load(&progress_calls), 1);
    WT_EQ(atomic_load(&progress_last), 1000);

    WT_EQ(weft_pool_shutdown(p, true, false), 0);
    WT_EQ(weft_parallel_for(p, 0, 1000, 10, visit_counting, visits, NULL, NULL), WEFT_ESHUTDOWN);
    WT_EQ(atomic_load(&range_calls), 1);
    WT_EQ(weft_pool_free(p), 0);
}

/* Progress reports arrive in order: each shows more done than the one
 * before, as weft/pool.h promises (the progress bar would take a smaller
 * count for a new bar and start its clock again), however the workers
 * that finish ranges race each other to report. */
struct reports {
    pthread_mutex_t lock;
    size_t last, calls, backwards;
};

static void check_order(size_t done, size_t total, void *arg)
{
    struct reports *r = arg;
    WT_CHECK(done <= total);
    pthread_mutex_lock(&r->lock);
    r->backwards += done <= r->last;
    r->last = done;
    r->calls++;
    pthread_mutex_unlock(&r->lock);
}

static void nothing(size_t lo, size_t hi, void *arg)
{
    (void)lo, (void)hi, (void)arg;
}

WT_CASE(progress_reports_only_grow)
{
    weft_pool_t *p = make(4);
    struct reports r = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    size_t n = wt_sanitizer() ? 20000 : 100000;
    for (int round = 0; round < 3; round++) {
        r.last = 0;
        WT_EQ(weft_parallel_for(p, 0, n, 1, nothing, NULL, check_order, &r), 0);
        WT_EQ(r.last, n);
    }
    WT_EQ(r.backwards, 0);
    WT_CHECK(r.calls > 0);
    WT_EQ(weft_pool_free(p), 0);
}
