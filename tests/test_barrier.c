/*
 * Tests for Barrier, Once and WaitGroup. Barrier behaviours follow CPython's
 * Lib/test/lock_tests.py BarrierTests: distinct indices each cycle, the
 * action once per cycle before anyone leaves, abort and reset breaking
 * waiters, timeouts (the call's and the default) breaking the barrier for
 * everyone, and a barrier of one.
 */
#include "threads.h"
#include <weft/sync.h>
#include <weft/thread.h>

#include <math.h>
#include <stdint.h>

enum { N = 5 };

struct cycles {
    weft_barrier_t barrier;
    int cycles;
    _Atomic int actions;
    _Atomic int index_mask[16]; /* per cycle: which indices were returned */
    _Atomic int ahead;          /* a thread seen in a later cycle too early */
};

static int count_action(void *arg)
{
    atomic_fetch_add(&((struct cycles *)arg)->actions, 1);
    return 0;
}

static void *run_cycles(void *arg)
{
    struct cycles *c = arg;
    for (int k = 0; k < c->cycles; k++) {
        int index = weft_barrier_wait(&c->barrier, WEFT_BARRIER_DEFAULT);
        WT_CHECK(index >= 0 && index < N);
        atomic_fetch_or(&c->index_mask[k % 16], 1 << index);
        /* The action ran for this cycle before anyone was released. */
        if (atomic_load(&c->actions) < k + 1)
            atomic_store(&c->ahead, 1);
    }
    return NULL;
}

static void lockstep(int cycles)
{
    struct cycles c = {.cycles = cycles};
    WT_EQ(weft_barrier_init(&c.barrier, N, count_action, &c, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[N];
    for (int i = 0; i < N; i++)
        t[i] = spawn(run_cycles, &c);
    for (int i = 0; i < N; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&c.actions), cycles);
    WT_EQ(atomic_load(&c.ahead), 0);
    if (cycles <= 16)
        for (int k = 0; k < cycles; k++)
            WT_EQ(atomic_load(&c.index_mask[k]), (1 << N) - 1); /* each index once */
    WT_EQ(weft_barrier_n_waiting(&c.barrier), 0);
    WT_EQ(weft_barrier_broken(&c.barrier), 0);
    WT_EQ(weft_barrier_parties(&c.barrier), N);
    WT_EQ(weft_barrier_destroy(&c.barrier), 0);
}

WT_CASE(barrier_cycles_with_distinct_indices_and_one_action_each)
{
    lockstep(1);
    lockstep(10);
}

WT_STRESS(barrier_many_cycles)
{
    lockstep(wt_sanitizer() ? 500 : 5000);
}

struct breaking {
    weft_barrier_t barrier;
    double timeout;
    _Atomic int broken_seen;
};

static void *wait_expect_broken(void *arg)
{
    struct breaking *b = arg;
    int rc = weft_barrier_wait(&b->barrier, b->timeout);
    if (rc == WEFT_EBROKEN)
        atomic_fetch_add(&b->broken_seen, 1);
    return (void *)(intptr_t)rc;
}

static bool n_waiting_is(void *arg)
{
    void **a = arg;
    return weft_barrier_n_waiting(a[0]) == (int)(intptr_t)a[1];
}

static void await_waiting(weft_barrier_t *b, int n)
{
    void *arg[2] = {b, (void *)(intptr_t)n};
    wt_wait_until(n_waiting_is, arg, 10 * wt_slack());
}

static void *plain_wait(void *arg)
{
    return (void *)(intptr_t)weft_barrier_wait(arg, WEFT_FOREVER);
}

/* All N parties pass a (working) barrier. */
static void all_pass(weft_barrier_t *b)
{
    weft_thread_t *t[N - 1];
    for (int i = 0; i < N - 1; i++)
        t[i] = spawn(plain_wait, b);
    int sum = weft_barrier_wait(b, WEFT_FOREVER);
    for (int i = 0; i < N - 1; i++)
        sum += (int)(intptr_t)finish(t[i]);
    WT_EQ(sum, N * (N - 1) / 2);
}

/* N - 1 parties wait; `breaker` is applied while they do; each of them
 * must come back with WEFT_EBROKEN. */
static void break_waiters(struct breaking *b, int (*breaker)(weft_barrier_t *))
{
    *b = (struct breaking){.timeout = WEFT_FOREVER};
    WT_EQ(weft_barrier_init(&b->barrier, N, NULL, NULL, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[N - 1];
    for (int i = 0; i < N - 1; i++)
        t[i] = spawn(wait_expect_broken, b);
    await_waiting(&b->barrier, N - 1);
    WT_EQ(breaker(&b->barrier), 0);
    for (int i = 0; i < N - 1; i++)
        WT_EQ((intptr_t)finish(t[i]), WEFT_EBROKEN);
}

WT_CASE(abort_breaks_waiters_and_reset_repairs)
{
    struct breaking br;
    weft_barrier_t *b = &br.barrier;
    break_waiters(&br, weft_barrier_abort);
    WT_EQ(weft_barrier_broken(b), 1);
    WT_EQ(weft_barrier_wait(b, WEFT_FOREVER), WEFT_EBROKEN); /* stays broken */
    WT_EQ(weft_barrier_reset(b), 0);
    WT_EQ(weft_barrier_broken(b), 0);
    all_pass(b);
}

WT_CASE(reset_while_waiting_breaks_them_then_works)
{
    struct breaking br;
    break_waiters(&br, weft_barrier_reset);
    WT_EQ(weft_barrier_broken(&br.barrier), 0);
    all_pass(&br.barrier);
}

static int failing_action(void *arg)
{
    (void)arg;
    return -1;
}

WT_CASE(failing_action_breaks_the_barrier)
{
    struct breaking b = {.timeout = WEFT_FOREVER};
    WT_EQ(weft_barrier_init(&b.barrier, 3, failing_action, NULL, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = spawn(wait_expect_broken, &b);
    await_waiting(&b.barrier, 2);
    WT_EQ(weft_barrier_wait(&b.barrier, WEFT_FOREVER), WEFT_EBROKEN); /* ran the action */
    for (int i = 0; i < 2; i++)
        WT_EQ((intptr_t)finish(t[i]), WEFT_EBROKEN);
    WT_EQ(weft_barrier_broken(&b.barrier), 1);
}

WT_CASE(timeouts_break_the_barrier_for_everyone)
{
    struct breaking b = {.timeout = 0.05};
    WT_EQ(weft_barrier_init(&b.barrier, N, NULL, NULL, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[N - 1];
    double t0 = wt_now();
    for (int i = 0; i < N - 1; i++)
        t[i] = spawn(wait_expect_broken, &b);
    for (int i = 0; i < N - 1; i++)
        WT_EQ((intptr_t)finish(t[i]), WEFT_EBROKEN);
    WT_CHECK(wt_now() - t0 >= 0.05);
    /* The latecomer finds it broken. */
    WT_EQ(weft_barrier_wait(&b.barrier, WEFT_FOREVER), WEFT_EBROKEN);

    /* The default timeout applies when the call asks for it. */
    weft_barrier_t two;
    WT_EQ(weft_barrier_init(&two, 2, NULL, NULL, 0.05, 0), 0);
    t0 = wt_now();
    WT_EQ(weft_barrier_wait(&two, WEFT_BARRIER_DEFAULT), WEFT_EBROKEN);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_barrier_broken(&two), 1);
}

WT_CASE(barrier_of_one_never_waits)
{
    weft_barrier_t one;
    WT_EQ(weft_barrier_init(&one, 1, NULL, NULL, WEFT_FOREVER, 0), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_barrier_wait(&one, WEFT_FOREVER), 0);
}

/* --- Once -------------------------------------------------------------------- */

static weft_once_t once = WEFT_ONCE_INIT;
static _Atomic int once_runs, once_finished;

static void init_slowly(void *arg)
{
    (void)arg;
    atomic_fetch_add(&once_runs, 1);
    weft_sleep(0.02);
    atomic_store(&once_finished, 1);
}

static void *call_once(void *arg)
{
    (void)arg;
    WT_EQ(weft_once_call(&once, init_slowly, NULL), 0);
    return (void *)(intptr_t)atomic_load(&once_finished); /* must see it done */
}

WT_CASE(once_runs_exactly_once_and_everyone_waits_for_it)
{
    weft_thread_t *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn(call_once, NULL);
    for (int i = 0; i < 8; i++)
        WT_EQ((intptr_t)finish(t[i]), 1);
    WT_EQ(atomic_load(&once_runs), 1);
    WT_EQ(weft_once_call(&once, init_slowly, NULL), 0);
    WT_EQ(atomic_load(&once_runs), 1);
}

static weft_once_t recursive = WEFT_ONCE_INIT;
static int inner_rc = 1;

static void call_myself(void *arg)
{
    (void)arg;
    inner_rc = weft_once_call(&recursive, call_myself, NULL);
}

WT_CASE(once_called_from_itself_is_a_deadlock)
{
    WT_EQ(weft_once_call(&recursive, call_myself, NULL), 0);
    WT_EQ(inner_rc, -EDEADLK);
    WT_EQ(weft_once_call(NULL, call_myself, NULL), -EINVAL);
    WT_EQ(weft_once_call(&recursive, NULL, NULL), -EINVAL);
}

/* --- WaitGroup --------------------------------------------------------------- */

static void *work_then_done(void *arg)
{
    weft_sleep(0.01);
    WT_EQ(weft_waitgroup_done(arg), 0);
    return NULL;
}

WT_CASE(waitgroup_waits_for_all_work)
{
    weft_waitgroup_t wg = WEFT_WAITGROUP_INIT;
    WT_EQ(weft_waitgroup_wait(&wg, 0), 0); /* nothing pending */
    WT_EQ(weft_waitgroup_add(&wg, 8), 0);
    weft_thread_t *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn(work_then_done, &wg);
    WT_EQ(weft_waitgroup_wait(&wg, WEFT_FOREVER), 0);
    WT_EQ(wg.count, 0);
    for (int i = 0; i < 8; i++)
        finish(t[i]);
}

WT_CASE(waitgroup_counter_never_negative_and_timeouts)
{
    weft_waitgroup_t wg;
    WT_EQ(weft_waitgroup_init(&wg, 0), 0);
    WT_EQ(weft_waitgroup_done(&wg), -EINVAL);
    WT_EQ(weft_waitgroup_add(&wg, 2), 0);
    WT_EQ(weft_waitgroup_add(&wg, -3), -EINVAL);
    WT_EQ(wg.count, 2); /* unchanged */
    WT_EQ(weft_waitgroup_add(&wg, INT32_MAX), -EOVERFLOW);
    WT_EQ(weft_waitgroup_wait(&wg, 0), -EAGAIN);
    double t0 = wt_now();
    WT_EQ(weft_waitgroup_wait(&wg, 0.03), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.03);
    WT_EQ(weft_waitgroup_add(&wg, -2), 0);
    WT_EQ(weft_waitgroup_wait(&wg, 0), 0);
}

WT_CASE(bad_input_matrix)
{
    weft_barrier_t b;
    WT_EQ(weft_barrier_init(NULL, 2, NULL, NULL, 1, 0), -EINVAL);
    WT_EQ(weft_barrier_init(&b, 0, NULL, NULL, 1, 0), -EINVAL);
    WT_EQ(weft_barrier_init(&b, 2, NULL, NULL, NAN, 0), -EINVAL);
    WT_EQ(weft_barrier_init(&b, 2, NULL, NULL, 1, 0), 0);
    WT_EQ(weft_barrier_wait(NULL, 1), -EINVAL);
    WT_EQ(weft_barrier_wait(&b, NAN), -EINVAL);
    WT_EQ(weft_barrier_abort(NULL), -EINVAL);
    WT_EQ(weft_barrier_reset(NULL), -EINVAL);
    WT_EQ(weft_barrier_parties(NULL), -EINVAL);
    WT_EQ(weft_barrier_n_waiting(NULL), -EINVAL);
    WT_EQ(weft_barrier_broken(NULL), -EINVAL);
    WT_EQ(weft_barrier_destroy(NULL), -EINVAL);
    WT_EQ(weft_barrier_destroy(&b), 0);
    weft_waitgroup_t wg = WEFT_WAITGROUP_INIT;
    WT_EQ(weft_waitgroup_init(NULL, 0), -EINVAL);
    WT_EQ(weft_waitgroup_add(NULL, 1), -EINVAL);
    WT_EQ(weft_waitgroup_done(NULL), -EINVAL);
    WT_EQ(weft_waitgroup_wait(NULL, 1), -EINVAL);
    WT_EQ(weft_waitgroup_wait(&wg, NAN), -EINVAL);
}
