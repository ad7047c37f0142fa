/*
 * Tests for Barrier, Once and WaitGroup. Barrier behaviours follow CPython's
 * Lib/test/lock_tests.py BarrierTests: distinct indices each cycle, the
 * action once per cycle before anyone leaves, abort and reset breaking
 * waiters, timeouts (the call's and the default) breaking the barrier for
 * everyone, and a barrier of one. Beyond CPython's: threads that loop
 * straight back on a barrier with fewer parties than threads, reset with the
 * broken waiters coming straight back, a timeout racing the last arrival and
 * a storm of timeouts, aborts and resets (a cycle trips for all of its
 * waiters or for none), and what a round costs where nobody spins (one
 * sleep, counted through the trace hooks).
 */
#include "base/hooks.h"
#include "threads.h"
#include <weft/sync.h>
#include <weft/thread.h>

#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

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

/* --- threads that loop straight back ------------------------------------------ */

/* Three threads on a barrier of two: every cycle leaves one of them out, and a
 * thread released from one cycle races back into the next while its partner
 * may still be leaving. The action counts cycles and breaks the barrier after
 * the last one, which ends every thread's loop. */
struct looping {
    weft_barrier_t barrier;
    int cycles;
    _Atomic int actions, returns, by_index[2];
    _Atomic int wrong, early;
};

static _Thread_local int ran_action;

static int count_then_break(void *arg)
{
    struct looping *l = arg;
    ran_action = 1;
    if (atomic_load(&l->actions) == l->cycles)
        return -1;
    atomic_fetch_add(&l->actions, 1);
    return 0;
}

static void *loop_back(void *arg)
{
    struct looping *l = arg;
    for (;;) {
        int before = atomic_load(&l->actions);
        ran_action = 0;
        int index = weft_barrier_wait(&l->barrier, WEFT_FOREVER);
        if (index == WEFT_EBROKEN)
            return NULL;
        /* Every return so far came from a finished cycle, two per cycle. */
        int returned = atomic_fetch_add(&l->returns, 1) + 1;
        int after = atomic_load(&l->actions);
        if (after <= before || returned > 2 * after)
            atomic_fetch_add(&l->early, 1);
        /* Indices 0 and 1 only (a thread counted in a cycle that is still
         * emptying would get 2), and the action ran in the last arrival. */
        if (index < 0 || index > 1 || ran_action != (index == 1))
            atomic_fetch_add(&l->wrong, 1);
        else
            atomic_fetch_add(&l->by_index[index], 1);
    }
}

WT_STRESS(threads_looping_back_join_the_next_cycle)
{
    struct looping l = {.cycles = wt_sanitizer() ? 2000 : 20000};
    WT_EQ(weft_barrier_init(&l.barrier, 2, count_then_break, &l, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(loop_back, &l);
    for (int i = 0; i < 3; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&l.wrong), 0);
    WT_EQ(atomic_load(&l.early), 0);
    WT_EQ(atomic_load(&l.actions), l.cycles);
    WT_EQ(atomic_load(&l.by_index[0]), l.cycles); /* each index once a cycle */
    WT_EQ(atomic_load(&l.by_index[1]), l.cycles);
    WT_EQ(weft_barrier_broken(&l.barrier), 1);
    WT_EQ(weft_barrier_n_waiting(&l.barrier), 0);
    WT_EQ(weft_barrier_destroy(&l.barrier), 0);
}

/* --- reset, then straight back in ------------------------------------------------ */

static void *wait_again_when_broken(void *arg)
{
    int rc = weft_barrier_wait(arg, WEFT_FOREVER);
    return (void *)(intptr_t)(rc == WEFT_EBROKEN ? weft_barrier_wait(arg, WEFT_FOREVER) : -1000);
}

/* Two of three parties wait; reset() breaks their cycle, and they and the
 * thread that reset it go straight back in: all three meet in a fresh cycle,
 * however their leaving the broken one and their coming back interleave. */
WT_CASE(reset_then_straight_back_in_meets_in_a_fresh_cycle)
{
    weft_barrier_t b;
    WT_EQ(weft_barrier_init(&b, 3, NULL, NULL, WEFT_FOREVER, 0), 0);
    for (int round = 0; round < 50; round++) {
        weft_thread_t *t[2];
        for (int i = 0; i < 2; i++)
            t[i] = spawn(wait_again_when_broken, &b);
        await_waiting(&b, 2);
        WT_EQ(weft_barrier_destroy(&b), -EBUSY);
        WT_EQ(weft_barrier_reset(&b), 0);
        int sum = weft_barrier_wait(&b, WEFT_FOREVER);
        WT_CHECK(sum >= 0);
        for (int i = 0; i < 2; i++) {
            intptr_t rc = (intptr_t)finish(t[i]);
            WT_CHECK(rc >= 0);
            sum += (int)rc;
        }
        WT_EQ(sum, 0 + 1 + 2);
        WT_EQ(weft_barrier_broken(&b), 0);
    }
    WT_EQ(weft_barrier_destroy(&b), 0);
}

/* --- a timeout racing the last arrival --------------------------------------------- */

struct race {
    weft_barrier_t barrier;
    pthread_barrier_t line; /* the harness lines the two up with pthreads */
    int rounds;
    double delay[2000];
    int late_rc[2000];
};

static void spin_for(double seconds)
{
    for (double end = wt_now() + seconds; wt_now() < end;)
        ;
}

static void *arrive_late(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->line);
        spin_for(r->delay[i]);
        r->late_rc[i] = weft_barrier_wait(&r->barrier, WEFT_FOREVER);
        pthread_barrier_wait(&r->line);
    }
    return NULL;
}

/* A waiter's timeout expires about when its partner arrives: the cycle either
 * trips for both or breaks for both, never one of each. */
WT_STRESS(timeout_racing_the_last_arrival_agrees_for_both)
{
    static struct race r;
    r.rounds = wt_sanitizer() ? 300 : 2000;
    const double timeout = 200e-6;
    for (int i = 0; i < r.rounds; i++)
        r.delay[i] = timeout * (i % 40) / 20; /* 0 .. twice the timeout */
    WT_EQ(weft_barrier_init(&r.barrier, 2, NULL, NULL, WEFT_FOREVER, 0), 0);
    WT_EQ(pthread_barrier_init(&r.line, NULL, 2), 0);
    weft_thread_t *t = spawn(arrive_late, &r);
    int tripped = 0;
    for (int i = 0; i < r.rounds; i++) {
        pthread_barrier_wait(&r.line);
        int rc = weft_barrier_wait(&r.barrier, timeout);
        pthread_barrier_wait(&r.line);
        WT_CHECK(rc >= 0 || rc == WEFT_EBROKEN);
        WT_EQ(rc >= 0, r.late_rc[i] >= 0);
        if (rc >= 0)
            WT_EQ(rc + r.late_rc[i], 1);
        else
            WT_EQ(weft_barrier_reset(&r.barrier), 0);
        tripped += rc >= 0;
    }
    finish(t);
    printf("%d of %d rounds tripped\n", tripped, r.rounds);
    WT_EQ(weft_barrier_n_waiting(&r.barrier), 0);
    WT_EQ(weft_barrier_destroy(&r.barrier), 0);
    pthread_barrier_destroy(&r.line);
}

/* --- a storm of timeouts, aborts and resets -------------------------------------------- */

/* Four threads on a barrier of three wait with short or no timeouts while
 * another thread aborts and resets it now and then. Whatever happens, a
 * cycle trips for all of its waiters or for none: every index is returned
 * exactly as often as the action ran, and nobody hangs. */
struct storm {
    weft_barrier_t barrier;
    _Atomic int stop, actions, by_index[3], wrong;
};

static int count_action_storm(void *arg)
{
    ran_action = 1;
    atomic_fetch_add(&((struct storm *)arg)->actions, 1);
    return 0;
}

static void *storm_party(void *arg)
{
    struct storm *s = arg;
    static const double timeouts[] = {WEFT_FOREVER, 0, 20e-6, 200e-6, 2e-3};
    static _Atomic unsigned seed = 1;
    unsigned i = atomic_fetch_add(&seed, 7919);
    for (; !atomic_load(&s->stop); i = i * 1103515245 + 12345) {
        ran_action = 0;
        int index = weft_barrier_wait(&s->barrier, timeouts[(i >> 16) % 5]);
        if (index == WEFT_EBROKEN) {
            if (ran_action) /* the action ran: the cycle tripped */
                atomic_fetch_add(&s->wrong, 1);
            if ((i >> 20) % 2)
                weft_barrier_reset(&s->barrier);
        } else if (index < 0 || index > 2 || ran_action != (index == 2)) {
            atomic_fetch_add(&s->wrong, 1);
        } else {
            atomic_fetch_add(&s->by_index[index], 1);
        }
    }
    return NULL;
}

WT_STRESS(storm_of_timeouts_aborts_and_resets_never_splits_a_cycle)
{
    struct storm s = {0};
    WT_EQ(weft_barrier_init(&s.barrier, 3, count_action_storm, &s, WEFT_FOREVER, 0), 0);
    weft_thread_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn(storm_party, &s);
    for (int k = 0; k < (wt_sanitizer() ? 100 : 1000); k++) {
        weft_sleep(100e-6);
        WT_EQ(k % 3 ? weft_barrier_reset(&s.barrier) : weft_barrier_abort(&s.barrier), 0);
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 4; i++) {
        /* Waiters without a timeout are released by the aborts. */
        while (weft_thread_join(t[i], 1e-3, NULL) == -ETIMEDOUT)
            weft_barrier_abort(&s.barrier);
        WT_EQ(weft_thread_free(t[i]), 0);
    }
    WT_EQ(atomic_load(&s.wrong), 0);
    int actions = atomic_load(&s.actions);
    printf("%d cycles tripped\n", actions);
    for (int i = 0; i < 3; i++)
        WT_EQ(atomic_load(&s.by_index[i]), actions);
    WT_EQ(weft_barrier_reset(&s.barrier), 0);
    WT_EQ(weft_barrier_n_waiting(&s.barrier), 0);
    WT_EQ(weft_barrier_destroy(&s.barrier), 0);
}

/* --- what a round costs --------------------------------------------------------------- */

/* Parks on any word inside the barrier (its lock included), counted per
 * thread through the trace hooks. */
static weft_barrier_t pingpong;
static _Thread_local int parks;

static void count_park(const void *word, unsigned flags)
{
    (void)flags;
    const char *w = word, *b = (const char *)&pingpong;
    if (w >= b && w < b + sizeof pingpong)
        parks++;
}

static const struct weft__hooks park_counter = {count_park, NULL};

enum { ROUNDS = 400 };

static void *meet_often(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        WT_CHECK(weft_barrier_wait(&pingpong, WEFT_FOREVER) >= 0);
    return (void *)(intptr_t)parks;
}

/* Two threads on one CPU, where nobody spins: in each round the first to
 * arrive must sleep once, and that should be all. A waiter that had to take
 * a lock again after its wake-up, or a thread back early that waited for
 * the previous cycle to empty, would sleep twice. */
WT_CASE(a_round_costs_one_sleep_when_nobody_spins)
{
    wt_pin_to_one_cpu();
    WT_CHECK(!weft__spin_pays()); /* decided after the pinning */
    WT_EQ(weft_barrier_init(&pingpong, 2, NULL, NULL, WEFT_FOREVER, 0), 0);
    atomic_store(&weft__hooks, &park_counter);
    weft_thread_t *t = spawn(meet_often, NULL);
    int mine = (int)(intptr_t)meet_often(NULL);
    int theirs = (int)(intptr_t)finish(t);
    atomic_store(&weft__hooks, NULL);
    printf("%d rounds: %d + %d sleeps\n", ROUNDS, mine, theirs);
    WT_CHECK(mine <= ROUNDS && theirs <= ROUNDS);
    WT_CHECK(mine + theirs <= ROUNDS + ROUNDS / 10);
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

/* The group lives on the waiter's stack or heap and goes as soon as wait()
 * returns, while the thread whose done() let it go may still be inside
 * done(): nothing of the group may be touched after the count reaches 0
 * (run under ASan, a read after the free shows). */
static void *done_once(void *arg)
{
    WT_EQ(weft_waitgroup_done(arg), 0);
    return NULL;
}

WT_CASE(waitgroup_may_be_freed_as_soon_as_wait_returns)
{
    int rounds = wt_sanitizer() ? 300 : 2000;
    for (int i = 0; i < rounds; i++) {
        weft_waitgroup_t *wg = malloc(sizeof *wg);
        WT_EQ(weft_waitgroup_init(wg, 0), 0);
        WT_EQ(weft_waitgroup_add(wg, 1), 0);
        weft_thread_t *t = spawn(done_once, wg);
        /* Half the rounds poll (timeout 0) to free it the moment the count
         * reaches 0, where a sleeping waiter would be woken late. */
        if (i % 2)
            while (weft_waitgroup_wait(wg, 0) == -EAGAIN)
                ;
        else
            WT_EQ(weft_waitgroup_wait(wg, WEFT_FOREVER), 0);
        free(wg);
        finish(t);
    }
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
