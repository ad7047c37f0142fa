/*
 * Tests for weft/queue.h, after CPython's test_queue: the order of each
 * kind, exact maxsize, full and empty, timeouts on the monotonic clock,
 * blocked putters and getters woken, task_done and join, the 3.13 shutdown
 * semantics, SimpleQueue, bad input and failed allocation; and stress runs
 * in which every item put must come out exactly once, with blocked threads,
 * timed-out waiters and shutdowns racing the traffic.
 *
 * Every case that does not depend on the order runs over every kind,
 * including the bounded FIFO queue's chain form (forced through the test
 * hook), so each store is exercised through the blocking layer.
 */
#include "base/base.h"
#include "queue/queue_int.h"
#include "threads.h"
#include <weft/queue.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

enum kind { FIFO, CHAINED, LIFO, PRIO, SIMPLE, KINDS };

static int cmp_long(const void *a, const void *b, void *arg)
{
    (void)arg;
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* A queue of longs of the given kind (SIMPLE ignores maxsize). */
static weft_queue_t *make(enum kind k, size_t maxsize)
{
    weft_queue_t *q = NULL;
    size_t ring_max = weft__queue_ring_max_bytes;
    if (k == CHAINED)
        weft__queue_ring_max_bytes = 0;
    int rc = k == LIFO     ? weft_lifo_queue_new(&q, sizeof(long), maxsize)
             : k == PRIO   ? weft_priority_queue_new(&q, sizeof(long), maxsize, cmp_long, NULL)
             : k == SIMPLE ? weft_simple_queue_new(&q, sizeof(long))
                           : weft_queue_new(&q, sizeof(long), maxsize);
    weft__queue_ring_max_bytes = ring_max;
    WT_EQ(rc, 0);
    return q;
}

static void drop(weft_queue_t *q)
{
    WT_EQ(weft_queue_free(q), 0);
}

static long get_now(weft_queue_t *q)
{
    long v = -1;
    WT_EQ(weft_queue_get(q, &v, 0), 0);
    return v;
}

/* Put a scrambled sequence and check what comes out: as put (FIFO), reversed
 * (LIFO) or sorted (priority). */
static void check_order(enum kind k, size_t maxsize)
{
    enum { N = 11 };
    weft_queue_t *q = make(k, maxsize);
    long put[N];
    WT_EQ(weft_queue_empty(q), 1);
    for (long i = 0; i < N; i++) {
        put[i] = (i * 7) % N;
        WT_EQ(weft_queue_full(q), 0);
        WT_EQ(weft_queue_put(q, &put[i], 0), 0);
        WT_EQ(weft_queue_qsize(q), i + 1);
    }
    WT_EQ(weft_queue_empty(q), 0);
    if (maxsize) {
        WT_EQ(weft_queue_full(q), 1);
        WT_EQ(weft_queue_put(q, &(long){99}, 0), -EAGAIN);
        WT_EQ(weft_queue_qsize(q), N);
    }
    for (long i = 0; i < N; i++) {
        long want = k == LIFO ? put[N - 1 - i] : k == PRIO ? i : put[i];
        WT_EQ(get_now(q), want);
    }
    long v;
    WT_EQ(weft_queue_get(q, &v, 0), -EAGAIN);
    WT_EQ(weft_queue_empty(q), 1);
    WT_EQ(weft_queue_qsize(q), 0);
    drop(q);
}

WT_CASE(each_kind_has_its_order_and_exact_maxsize)
{
    for (enum kind k = 0; k < KINDS; k++) {
        check_order(k, 0);
        if (k != SIMPLE)
            check_order(k, 11);
    }
}

/* The FIFO ring holds exactly maxsize items, not the next power of two. */
WT_CASE(bounded_queues_hold_exactly_maxsize_over_many_rounds)
{
    for (enum kind k = 0; k < SIMPLE; k++)
        for (size_t maxsize = 1; maxsize <= 6; maxsize++) {
            weft_queue_t *q = make(k, maxsize);
            for (int round = 0; round < 20; round++) {
                for (size_t i = 0; i < maxsize; i++)
                    WT_EQ(weft_queue_put(q, &(long){(long)i}, 0), 0);
                WT_EQ(weft_queue_put(q, &(long){-1}, 0), -EAGAIN);
                for (size_t i = 0; i < maxsize; i++)
                    get_now(q);
                WT_EQ(weft_queue_get(q, &(long){0}, 0), -EAGAIN);
            }
            drop(q);
        }
}

struct prio_item {
    int prio, seq;
};

static int prio_arg;

static int cmp_prio(const void *a, const void *b, void *arg)
{
    WT_CHECK(arg == &prio_arg); /* the argument given at creation */
    return ((const struct prio_item *)a)->prio - ((const struct prio_item *)b)->prio;
}

WT_CASE(priority_queue_is_stable_for_equal_priorities)
{
    weft_queue_t *q;
    WT_EQ(weft_priority_queue_new(&q, sizeof(struct prio_item), 0, cmp_prio, &prio_arg), 0);
    for (int i = 0; i < 300; i++) {
        struct prio_item it = {(i * 37) % 5, i};
        WT_EQ(weft_queue_put(q, &it, 0), 0);
    }
    struct prio_item last = {-1, -1}, it;
    for (int i = 0; i < 300; i++) {
        WT_EQ(weft_queue_get(q, &it, 0), 0);
        WT_CHECK(it.prio > last.prio || (it.prio == last.prio && it.seq > last.seq));
        last = it;
    }
    drop(q);
}

WT_CASE(timeouts_run_on_the_monotonic_clock)
{
    for (enum kind k = 0; k < KINDS; k++) {
        weft_queue_t *q = make(k, k == SIMPLE ? 0 : 1);
        long v;
        double t0 = wt_now();
        WT_EQ(weft_queue_get(q, &v, 0.05), -ETIMEDOUT);
        double waited = wt_now() - t0;
        WT_CHECK(waited >= 0.05 && waited < 0.05 + 2 * wt_slack());
        if (k != SIMPLE) {
            WT_EQ(weft_queue_put(q, &(long){1}, 0.05), 0);
            t0 = wt_now();
            WT_EQ(weft_queue_put(q, &(long){2}, 0.05), -ETIMEDOUT);
            waited = wt_now() - t0;
            WT_CHECK(waited >= 0.05 && waited < 0.05 + 2 * wt_slack());
            WT_EQ(weft_queue_qsize(q), 1); /* the timed-out put left no trace */
            WT_EQ(weft_queue_task_done(q), 0);
            WT_EQ(weft_queue_task_done(q), -EINVAL);
        }
        drop(q);
    }
}

struct blocked {
    weft_queue_t *q;
    long item;
    double timeout;
    _Atomic int rc;
    _Atomic long tid;
};

static void *blocked_get(void *arg)
{
    struct blocked *b = arg;
    atomic_store(&b->tid, weft_thread_get_native_id());
    atomic_store(&b->rc, weft_queue_get(b->q, &b->item, b->timeout));
    return NULL;
}

static void *blocked_put(void *arg)
{
    struct blocked *b = arg;
    atomic_store(&b->tid, weft_thread_get_native_id());
    atomic_store(&b->rc, weft_queue_put(b->q, &b->item, b->timeout));
    return NULL;
}

/* Start fn on b and return once it is asleep in the queue. */
static weft_thread_t *start_blocked(void *(*fn)(void *), struct blocked *b)
{
    atomic_store(&b->rc, 1);
    atomic_store(&b->tid, 0);
    weft_thread_t *t = spawn(fn, b);
    while (atomic_load(&b->tid) == 0)
        sched_yield();
    wt_await_futex_sleep(atomic_load(&b->tid), NULL, 10 * wt_slack());
    WT_EQ(atomic_load(&b->rc), 1);
    return t;
}

WT_CASE(blocked_getter_wakes_on_put_and_putter_on_get)
{
    for (enum kind k = 0; k < KINDS; k++) {
        weft_queue_t *q = make(k, k == SIMPLE ? 0 : 1);
        struct blocked b = {.q = q, .timeout = WEFT_FOREVER};
        weft_thread_t *t = start_blocked(blocked_get, &b);
        WT_EQ(weft_queue_put(q, &(long){42}, 0), 0);
        finish(t);
        WT_EQ(atomic_load(&b.rc), 0);
        WT_EQ(b.item, 42);
        if (k != SIMPLE) {
            WT_EQ(weft_queue_put(q, &(long){1}, 0), 0);
            b.item = 2;
            t = start_blocked(blocked_put, &b);
            WT_EQ(get_now(q), 1);
            finish(t);
            WT_EQ(atomic_load(&b.rc), 0);
            WT_EQ(get_now(q), 2);
        }
        drop(q);
    }
}

WT_CASE(task_done_and_join)
{
    for (enum kind k = 0; k < SIMPLE; k++) {
        weft_queue_t *q = make(k, 0);
        WT_EQ(weft_queue_join(q, 0), 0); /* nothing put: nothing to wait for */
        WT_EQ(weft_queue_task_done(q), -EINVAL);
        for (long i = 0; i < 5; i++)
            WT_EQ(weft_queue_put(q, &i, 0), 0);
        WT_EQ(weft_queue_join(q, 0), -EAGAIN);
        WT_EQ(weft_queue_join(q, 0.02), -ETIMEDOUT);
        for (int i = 0; i < 5; i++)
            get_now(q);
        for (int i = 0; i < 4; i++)
            WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_join(q, 0), -EAGAIN); /* taken out is not done */
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_join(q, WEFT_FOREVER), 0);
        WT_EQ(weft_queue_task_done(q), -EINVAL); /* Python's ValueError */
        drop(q);
    }
}

/* A put waiting for room is no unfinished task yet: with one item in a full
 * queue and a put blocked, a second task_done is one too many (CPython
 * counts a put's task only once its item is in). */
WT_CASE(blocked_put_is_no_unfinished_task)
{
    for (enum kind k = 0; k < SIMPLE; k++) {
        weft_queue_t *q = make(k, 1);
        WT_EQ(weft_queue_put(q, &(long){1}, 0), 0);
        struct blocked b = {.q = q, .item = 2, .timeout = WEFT_FOREVER};
        weft_thread_t *t = start_blocked(blocked_put, &b);
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_task_done(q), -EINVAL);
        WT_EQ(weft_queue_join(q, 0), 0);
        WT_EQ(get_now(q), 1);
        finish(t);
        WT_EQ(atomic_load(&b.rc), 0);
        WT_EQ(weft_queue_join(q, 0), -EAGAIN); /* the blocked put's item is in now */
        WT_EQ(get_now(q), 2);
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_join(q, 0), 0);
        drop(q);
    }
}

struct joiner {
    weft_queue_t *q;
    _Atomic int rc;
    _Atomic long tid;
};

static void *join_queue(void *arg)
{
    struct joiner *j = arg;
    atomic_store(&j->tid, weft_thread_get_native_id());
    atomic_store(&j->rc, weft_queue_join(j->q, WEFT_FOREVER));
    return NULL;
}

static weft_thread_t *start_joiner(struct joiner *j)
{
    atomic_store(&j->rc, 1);
    weft_thread_t *t = spawn(join_queue, j);
    while (atomic_load(&j->tid) == 0)
        sched_yield();
    wt_await_futex_sleep(atomic_load(&j->tid), NULL, 10 * wt_slack());
    return t;
}

WT_CASE(join_returns_at_the_last_task_done)
{
    weft_queue_t *q = make(FIFO, 0);
    WT_EQ(weft_queue_put(q, &(long){1}, 0), 0);
    get_now(q);
    struct joiner j = {.q = q};
    weft_thread_t *t = start_joiner(&j);
    WT_EQ(atomic_load(&j.rc), 1);
    WT_EQ(weft_queue_task_done(q), 0);
    finish(t);
    WT_EQ(atomic_load(&j.rc), 0);
    drop(q);
}

WT_CASE(shutdown_fails_puts_and_drains_gets)
{
    for (enum kind k = 0; k < SIMPLE; k++) {
        weft_queue_t *q = make(k, 2);
        WT_EQ(weft_queue_put(q, &(long){1}, 0), 0);
        WT_EQ(weft_queue_put(q, &(long){2}, 0), 0);
        struct blocked b = {.q = q, .item = 3, .timeout = WEFT_FOREVER};
        weft_thread_t *t = start_blocked(blocked_put, &b);
        WT_EQ(weft_queue_shutdown(q, false), 0);
        finish(t); /* the blocked putter is released */
        WT_EQ(atomic_load(&b.rc), WEFT_ESHUTDOWN);
        WT_EQ(weft_queue_put(q, &(long){4}, WEFT_FOREVER), WEFT_ESHUTDOWN);
        WT_EQ(weft_queue_qsize(q), 2);
        get_now(q); /* what was put before still comes out */
        get_now(q);
        long v;
        WT_EQ(weft_queue_get(q, &v, WEFT_FOREVER), WEFT_ESHUTDOWN);
        WT_EQ(weft_queue_get(q, &v, 0), WEFT_ESHUTDOWN);
        WT_EQ(weft_queue_shutdown(q, false), 0); /* again: fine */
        WT_EQ(weft_queue_join(q, 0), -EAGAIN);   /* failed puts left no task */
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_join(q, 0), 0);
        drop(q);
    }
}

WT_CASE(shutdown_releases_every_blocked_getter)
{
    enum { GETTERS = 3 };
    for (enum kind k = 0; k < SIMPLE; k++) {
        weft_queue_t *q = make(k, 0);
        struct blocked b[GETTERS];
        weft_thread_t *t[GETTERS];
        for (int i = 0; i < GETTERS; i++) {
            b[i] = (struct blocked){.q = q, .timeout = WEFT_FOREVER};
            t[i] = start_blocked(blocked_get, &b[i]);
        }
        WT_EQ(weft_queue_shutdown(q, false), 0);
        for (int i = 0; i < GETTERS; i++) {
            finish(t[i]);
            WT_EQ(atomic_load(&b[i].rc), WEFT_ESHUTDOWN);
        }
        drop(q);
    }
}

WT_CASE(immediate_shutdown_discards_items_as_done)
{
    for (enum kind k = 0; k < SIMPLE; k++) {
        weft_queue_t *q = make(k, 0);
        for (long i = 0; i < 100; i++) /* more than a block of the chain */
            WT_EQ(weft_queue_put(q, &i, 0), 0);
        get_now(q);
        get_now(q);
        struct joiner j = {.q = q};
        weft_thread_t *t = start_joiner(&j);
        WT_EQ(weft_queue_shutdown(q, true), 0);
        WT_EQ(weft_queue_qsize(q), 0);
        long v;
        WT_EQ(weft_queue_get(q, &v, WEFT_FOREVER), WEFT_ESHUTDOWN);
        WT_EQ(weft_queue_put(q, &v, 0), WEFT_ESHUTDOWN);
        WT_EQ(atomic_load(&j.rc), 1); /* the two taken out are not done yet */
        WT_EQ(weft_queue_task_done(q), 0);
        WT_EQ(weft_queue_task_done(q), 0);
        finish(t);
        WT_EQ(atomic_load(&j.rc), 0);
        WT_EQ(weft_queue_task_done(q), -EINVAL);
        drop(q);
    }
}

WT_CASE(immediate_shutdown_after_plain_shutdown_discards)
{
    weft_queue_t *q = make(FIFO, 4);
    WT_EQ(weft_queue_put(q, &(long){1}, 0), 0);
    WT_EQ(weft_queue_put(q, &(long){2}, 0), 0);
    WT_EQ(weft_queue_shutdown(q, false), 0);
    WT_EQ(weft_queue_qsize(q), 2);
    WT_EQ(weft_queue_shutdown(q, true), 0);
    WT_EQ(weft_queue_qsize(q), 0);
    WT_EQ(weft_queue_join(q, 0), 0);
    drop(q);
}

/* A program that never calls task_done (a queue used as a plain channel, as
 * Python allows) runs its task count up by one a put, forever: at its limit
 * it must wrap on its own, not spill into the puts in flight beside it in
 * the same word, which would leave shutdown waiting for a put that is not
 * there. Run in a child, which a hung shutdown cannot take the case down
 * with. */
static int shut_down_at_the_task_limit(void *arg)
{
    (void)arg;
    for (enum kind k = 0; k < SIMPLE; k++)
        for (size_t maxsize = 0; maxsize <= 4; maxsize += 4) {
            weft__queue_tasks_at_new = (UINT64_C(1) << 40) - 1;
            weft_queue_t *q = make(k, maxsize);
            weft__queue_tasks_at_new = 0;
            WT_EQ(weft_queue_put(q, &(long){7}, 0), 0);
            WT_EQ(weft_queue_shutdown(q, false), 0);
            WT_EQ(weft_queue_put(q, &(long){8}, 0), WEFT_ESHUTDOWN);
            WT_EQ(get_now(q), 7);
            WT_EQ(weft_queue_get(q, &(long){0}, WEFT_FOREVER), WEFT_ESHUTDOWN);
            drop(q);
        }
    return 0;
}

WT_CASE(task_count_at_its_limit_does_not_block_shutdown)
{
    int status = wt_fork(shut_down_at_the_task_limit, NULL, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

WT_CASE(simple_queue_has_no_tasks_or_shutdown)
{
    weft_queue_t *q = make(SIMPLE, 0);
    for (long i = 0; i < 1000; i++)
        WT_EQ(weft_queue_put(q, &i, 0), 0); /* never full */
    WT_EQ(weft_queue_full(q), 0);
    WT_EQ(weft_queue_task_done(q), -ENOTSUP);
    WT_EQ(weft_queue_join(q, 0), -ENOTSUP);
    WT_EQ(weft_queue_shutdown(q, false), -ENOTSUP);
    for (long i = 0; i < 1000; i++)
        WT_EQ(get_now(q), i);
    for (long i = 0; i < 10; i++) /* left in it: freed with it */
        WT_EQ(weft_queue_put(q, &i, 0), 0);
    drop(q);
}

WT_CASE(queue_bad_input)
{
    weft_queue_t *q;
    long v = 0;
    WT_EQ(weft_queue_new(NULL, 8, 0), -EINVAL);
    WT_EQ(weft_queue_new(&q, 0, 0), -EINVAL);
    WT_EQ(weft_queue_new(&q, SIZE_MAX, 0), -EINVAL);
    WT_EQ(weft_queue_new(&q, SIZE_MAX, 4), -EINVAL);
    WT_EQ(weft_queue_new(&q, SIZE_MAX - 7, 10), -EINVAL); /* item + seq would wrap */
    WT_EQ(weft_lifo_queue_new(&q, 0, 0), -EINVAL);
    WT_EQ(weft_priority_queue_new(&q, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_simple_queue_new(&q, 0), -EINVAL);
    WT_EQ(weft_queue_put(NULL, &v, 0), -EINVAL);
    WT_EQ(weft_queue_get(NULL, &v, 0), -EINVAL);
    WT_EQ(weft_queue_qsize(NULL), -EINVAL);
    WT_EQ(weft_queue_empty(NULL), -EINVAL);
    WT_EQ(weft_queue_full(NULL), -EINVAL);
    WT_EQ(weft_queue_task_done(NULL), -EINVAL);
    WT_EQ(weft_queue_join(NULL, 0), -EINVAL);
    WT_EQ(weft_queue_shutdown(NULL, false), -EINVAL);
    WT_EQ(weft_queue_free(NULL), -EINVAL);
    for (enum kind k = 0; k < KINDS; k++) {
        q = make(k, 0);
        WT_EQ(weft_queue_put(q, NULL, 0), -EINVAL);
        WT_EQ(weft_queue_put(q, &v, NAN), -EINVAL);
        WT_EQ(weft_queue_get(q, NULL, 0), -EINVAL);
        WT_EQ(weft_queue_get(q, &v, NAN), -EINVAL);
        WT_EQ(weft_queue_join(q, NAN), -EINVAL);
        WT_EQ(weft_queue_qsize(q), 0); /* the rejected calls changed nothing */
        WT_EQ(weft_queue_join(q, 0), k == SIMPLE ? -ENOTSUP : 0);
        /* Freeing a queue a thread sleeps in is refused. */
        struct blocked b = {.q = q, .timeout = WEFT_FOREVER};
        weft_thread_t *t = start_blocked(blocked_get, &b);
        WT_EQ(weft_queue_free(q), -EBUSY);
        WT_EQ(weft_queue_put(q, &(long){5}, 0), 0);
        finish(t);
        WT_EQ(b.item, 5);
        drop(q);
    }
}

WT_FAULT(queue_no_memory)
{
    weft_queue_t *q;
    weft__sys.aligned_alloc = wt_no_aligned_alloc;
    WT_EQ(weft_queue_new(&q, 8, 4), -ENOMEM);
    weft__sys_reset();
    weft__sys.calloc = wt_no_calloc; /* the ring's cells */
    WT_EQ(weft_queue_new(&q, 8, 4), -ENOMEM);
    weft__sys_reset();
    weft__sys.malloc = wt_no_malloc; /* the lifo store's scratch entry */
    WT_EQ(weft_lifo_queue_new(&q, 8, 4), -ENOMEM);
    weft__sys_reset();
    /* An unbounded queue that cannot grow fails the put, and the task it
     * counted is taken back. */
    for (enum kind k = 0; k < KINDS; k++) {
        q = make(k, 0);
        weft__sys.calloc = wt_no_calloc;
        weft__sys.malloc = wt_no_malloc;
        WT_EQ(weft_queue_put(q, &(long){1}, WEFT_FOREVER), -ENOMEM);
        weft__sys_reset();
        WT_EQ(weft_queue_qsize(q), 0);
        if (k != SIMPLE)
            WT_EQ(weft_queue_join(q, 0), 0);
        WT_EQ(weft_queue_put(q, &(long){2}, 0), 0);
        WT_EQ(get_now(q), 2);
        drop(q);
    }
}

/* The bounded FIFO queue's chain form reserves its place below maxsize
 * before it allocates: a put that then runs out of memory gives its place
 * back, and a put that found the queue full meanwhile and went to sleep
 * must be woken for it. The first allocation stalls until that put sleeps,
 * then fails. */
static _Atomic int stall_armed;
static wt_gate reserved = WT_GATE_INIT, sleeper_asleep = WT_GATE_INIT;

static void *calloc_failing_once_late(size_t count, size_t size)
{
    if (!atomic_exchange(&stall_armed, 0))
        return calloc(count, size);
    wt_gate_open(&reserved);
    wt_gate_wait(&sleeper_asleep);
    return NULL;
}

static void *put_out_of_memory(void *arg)
{
    atomic_store(&stall_armed, 1);
    WT_EQ(weft_queue_put(arg, &(long){1}, 0), -ENOMEM);
    return NULL;
}

WT_FAULT(failed_put_wakes_a_put_that_waited_for_its_place)
{
    weft_queue_t *q = make(CHAINED, 1);
    weft__sys.calloc = calloc_failing_once_late;
    weft_thread_t *failing = spawn(put_out_of_memory, q);
    wt_gate_wait(&reserved);
    struct blocked b = {.q = q, .item = 2, .timeout = WEFT_FOREVER};
    weft_thread_t *t = start_blocked(blocked_put, &b);
    wt_gate_open(&sleeper_asleep);
    finish(failing);
    WT_EQ(weft_thread_join(t, 10 * wt_slack(), NULL), 0); /* not left asleep */
    WT_EQ(weft_thread_free(t), 0);
    weft__sys_reset();
    WT_EQ(atomic_load(&b.rc), 0);
    WT_EQ(get_now(q), 2);
    drop(q);
}

/* A put caught between its check of the shutdown flag and its claim of a
 * place (here: in the allocation of the store's first block or array) has
 * been accepted. Shutdown waits for it, a getter asleep before gets its
 * item rather than "shut down" (plain shutdown), and an immediate shutdown
 * leaves nothing behind once it returns. */
static _Atomic int catch_armed, caught, let_go;

static void wait_for_flag(_Atomic int *flag)
{
    double end = wt_now() + 10 * wt_slack();
    while (!atomic_load(flag)) {
        WT_CHECK(wt_now() < end);
        sched_yield();
    }
}

static void *caught_allocation(size_t size)
{
    if (atomic_exchange(&catch_armed, 0)) {
        atomic_store(&caught, 1);
        wait_for_flag(&let_go);
    }
    return malloc(size);
}

static void *caught_malloc(size_t size)
{
    return caught_allocation(size);
}

static void *caught_calloc(size_t count, size_t size)
{
    void *p = caught_allocation(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

struct shutter {
    weft_queue_t *q;
    bool immediate;
    _Atomic int done;
};

static void *shut_down(void *arg)
{
    struct shutter *s = arg;
    WT_EQ(weft_queue_shutdown(s->q, s->immediate), 0);
    if (s->immediate) /* the getter may have the item already, or not */
        WT_EQ(weft_queue_qsize(s->q), 0);
    atomic_store(&s->done, 1);
    return NULL;
}

static void *put_seven(void *arg)
{
    atomic_store(&catch_armed, 1);
    WT_EQ(weft_queue_put(arg, &(long){7}, WEFT_FOREVER), 0);
    return NULL;
}

static void shutdown_waits_for_put_in_flight(enum kind k, size_t maxsize, bool immediate)
{
    weft_queue_t *q = make(k, maxsize);
    atomic_store(&caught, 0);
    atomic_store(&let_go, 0);
    weft__sys.malloc = caught_malloc;
    weft__sys.calloc = caught_calloc;
    weft_thread_t *p = spawn(put_seven, q);
    wait_for_flag(&caught);
    struct blocked b = {.q = q, .timeout = WEFT_FOREVER};
    weft_thread_t *g = start_blocked(blocked_get, &b);
    struct shutter s = {q, immediate, 0};
    weft_thread_t *t = spawn(shut_down, &s);
    double until = wt_now() + 0.05;
    while (wt_now() < until && !atomic_load(&s.done))
        sched_yield();
    WT_EQ(atomic_load(&s.done), 0); /* it waits for the put */
    WT_EQ(atomic_load(&b.rc), 1);
    atomic_store(&let_go, 1);
    finish(p);
    finish(t);
    finish(g);
    weft__sys_reset();
    if (immediate) { /* got before the discarding, or discarded */
        WT_CHECK(atomic_load(&b.rc) == 0 || atomic_load(&b.rc) == WEFT_ESHUTDOWN);
    } else {
        WT_EQ(atomic_load(&b.rc), 0);
    }
    if (atomic_load(&b.rc) == 0) {
        WT_EQ(b.item, 7);
        WT_EQ(weft_queue_task_done(q), 0);
    }
    WT_EQ(weft_queue_qsize(q), 0);
    WT_EQ(weft_queue_get(q, &(long){0}, WEFT_FOREVER), WEFT_ESHUTDOWN);
    WT_EQ(weft_queue_join(q, 0), 0);
    drop(q);
}

WT_CASE(shutdown_waits_for_a_put_caught_in_flight)
{
    for (enum kind k = 0; k < SIMPLE; k++)
        for (int immediate = 0; immediate < 2; immediate++) {
            shutdown_waits_for_put_in_flight(k, 0, immediate);
            if (k != FIFO) /* a bounded FIFO queue is a ring, allocated whole */
                shutdown_waits_for_put_in_flight(k, 4, immediate);
        }
}

/*
 * Stress: producers put their numbered items, consumers take them (half of
 * them with short timeouts, so that waiters give up while wake-ups are
 * under way) and mark each done; when the producers are through, a
 * shutdown releases the consumers once the queue is drained. Every item
 * must arrive exactly once, each producer's in its order for FIFO kinds.
 */
enum { PRODUCERS = 4, CONSUMERS = 4 };

struct traffic {
    weft_queue_t *q;
    enum kind kind;
    long per_producer;
    _Atomic int next_id, next_consumer;
    _Atomic long consumed;
    _Atomic unsigned char *seen;
    _Atomic int disorder;
};

static void *producer(void *arg)
{
    struct traffic *tr = arg;
    long id = atomic_fetch_add(&tr->next_id, 1);
    for (long i = 0; i < tr->per_producer; i++) {
        long item = id * tr->per_producer + i;
        WT_EQ(weft_queue_put(tr->q, &item, WEFT_FOREVER), 0);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct traffic *tr = arg;
    bool timed = atomic_fetch_add(&tr->next_consumer, 1) % 2;
    long last[PRODUCERS] = {-1, -1, -1, -1};
    for (;;) {
        long item;
        int rc = weft_queue_get(tr->q, &item, timed ? 0.001 : WEFT_FOREVER);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc == WEFT_ESHUTDOWN)
            break;
        WT_EQ(rc, 0);
        if (item < 0) /* SimpleQueue's end marker */
            break;
        atomic_fetch_add(&tr->consumed, 1);
        atomic_fetch_add(&tr->seen[item], 1);
        long p = item / tr->per_producer, seq = item % tr->per_producer;
        if (seq <= last[p] && (tr->kind == FIFO || tr->kind == CHAINED))
            atomic_store(&tr->disorder, 1);
        last[p] = seq;
        if (tr->kind != SIMPLE)
            WT_EQ(weft_queue_task_done(tr->q), 0);
    }
    return NULL;
}

static void run_traffic(enum kind k, size_t maxsize)
{
    struct traffic tr = {.q = make(k, maxsize), .kind = k};
    tr.per_producer = wt_sanitizer() ? 5000 : 50000;
    long total = PRODUCERS * tr.per_producer;
    tr.seen = calloc((size_t)total, 1);
    WT_CHECK(tr.seen != NULL);
    weft_thread_t *c[CONSUMERS], *p[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        c[i] = spawn(consumer, &tr);
    for (int i = 0; i < PRODUCERS; i++)
        p[i] = spawn(producer, &tr);
    for (int i = 0; i < PRODUCERS; i++)
        finish(p[i]);
    if (k == SIMPLE) { /* no shutdown: one end marker per consumer, after the items */
        for (int i = 0; i < CONSUMERS; i++)
            WT_EQ(weft_queue_put(tr.q, &(long){-1}, 0), 0);
    } else {
        WT_EQ(weft_queue_join(tr.q, WEFT_FOREVER), 0);
        WT_EQ(weft_queue_shutdown(tr.q, false), 0);
    }
    for (int i = 0; i < CONSUMERS; i++)
        finish(c[i]);
    for (long i = 0; i < total; i++)
        WT_EQ(tr.seen[i], 1);
    WT_EQ(atomic_load(&tr.disorder), 0);
    free((void *)tr.seen);
    drop(tr.q);
}

WT_STRESS(traffic_through_small_bounded_queues)
{
    for (enum kind k = 0; k < SIMPLE; k++)
        run_traffic(k, 4);
}

WT_STRESS(traffic_through_unbounded_queues)
{
    for (enum kind k = 0; k < KINDS; k++)
        if (k != CHAINED) /* unbounded FIFO is the chain already */
            run_traffic(k, 0);
}

/*
 * Shutdown in the middle of traffic: producers put until the queue refuses,
 * consumers take and mark done until it refuses. Whatever the interleaving,
 * a put that succeeded must have its item got (plain shutdown: consumers
 * are told "shut down" only once no accepted item can still arrive) or
 * discarded (immediate: the queue is empty from the moment shutdown
 * returns, a put that landed just after the discarding included), and every
 * task must count as done, the discarded ones included.
 */
struct race {
    weft_queue_t *q;
    _Atomic long got, put;
};

static void *racing_producer(void *arg)
{
    struct race *r = arg;
    long i = 0;
    int rc;
    while ((rc = weft_queue_put(r->q, &i, WEFT_FOREVER)) == 0) {
        atomic_fetch_add(&r->put, 1);
        i++;
    }
    WT_EQ(rc, WEFT_ESHUTDOWN);
    return NULL;
}

static void *racing_consumer(void *arg)
{
    struct race *r = arg;
    long v;
    int rc;
    while ((rc = weft_queue_get(r->q, &v, WEFT_FOREVER)) == 0) {
        atomic_fetch_add(&r->got, 1);
        WT_EQ(weft_queue_task_done(r->q), 0);
    }
    WT_EQ(rc, WEFT_ESHUTDOWN);
    return NULL;
}

static void race_shutdown(bool immediate)
{
    for (enum kind k = 0; k < SIMPLE; k++)
        for (int round = 0; round < (wt_sanitizer() ? 20 : 100); round++) {
            struct race r = {.q = make(k, round % 2 ? 8 : 0)};
            weft_thread_t *t[4];
            for (int i = 0; i < 4; i++)
                t[i] = spawn(i % 2 ? racing_producer : racing_consumer, &r);
            while (atomic_load(&r.got) < 200)
                sched_yield();
            WT_EQ(weft_queue_shutdown(r.q, immediate), 0);
            if (immediate) /* the producers may still be trying */
                WT_EQ(weft_queue_qsize(r.q), 0);
            for (int i = 0; i < 4; i++)
                finish(t[i]);
            WT_EQ(weft_queue_qsize(r.q), 0);
            if (!immediate) /* nothing accepted was stranded */
                WT_EQ(atomic_load(&r.got), atomic_load(&r.put));
            WT_EQ(weft_queue_join(r.q, 0), 0);
            drop(r.q);
        }
}

WT_STRESS(immediate_shutdown_races_with_traffic)
{
    race_shutdown(true);
}

WT_STRESS(plain_shutdown_strands_no_accepted_item)
{
    race_shutdown(false);
}

/*
 * One producer and one consumer through queues of one to three items and of
 * 1024, both blocking: each side goes to sleep and is woken again and again,
 * with its partner's notifications arriving while it registers, sleeps and
 * leaves. A wake-up lost in any of those windows hangs the run.
 */
struct hand_off {
    weft_queue_t *q;
    long n;
};

static void *hand_off_producer(void *arg)
{
    struct hand_off *h = arg;
    for (long i = 0; i < h->n; i++)
        WT_EQ(weft_queue_put(h->q, &i, WEFT_FOREVER), 0);
    return NULL;
}

WT_STRESS(hand_off_through_tiny_queues_loses_no_wakeup)
{
    for (enum kind k = 0; k < SIMPLE; k++)
        for (size_t maxsize = 1; maxsize <= 4; maxsize++) {
            struct hand_off h = {make(k, maxsize == 4 ? 1024 : maxsize),
                                 wt_sanitizer() ? 20000 : 200000};
            weft_thread_t *t = spawn(hand_off_producer, &h);
            for (long i = 0; i < h.n; i++) {
                long v;
                WT_EQ(weft_queue_get(h.q, &v, WEFT_FOREVER), 0);
                if (k != LIFO && k != PRIO)
                    WT_EQ(v, i);
            }
            finish(t);
            drop(h.q);
        }
}
