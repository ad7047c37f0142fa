/*
 * Tests for weft_local_t (threading.local): isolation between threads,
 * destructors exactly once and before join returns, foreign threads, many
 * locals, destroy and slot reuse, destructors that set values again,
 * values left behind by a destroyed local, and allocation failures.
 */
#include "base/base.h"
#include "wt.h"
#include <weft/thread.h>

#include <stdlib.h>

static _Atomic int destroyed;
static _Atomic long destroyed_sum;
static _Atomic int destroyed_by_value[16]; /* for small values */

static void count_dtor(void *value)
{
    atomic_fetch_add(&destroyed, 1);
    atomic_fetch_add(&destroyed_sum, (long)(intptr_t)value);
    if ((uintptr_t)value < 16)
        atomic_fetch_add(&destroyed_by_value[(uintptr_t)value], 1);
}

static weft_local_t counted = WEFT_LOCAL_INIT(count_dtor);

/* Run fn(arg) in a weft thread to its end: its destructors have run after. */
static void run_thread(weft_thread_fn fn, void *arg)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, fn, arg, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_free(t), 0);
}

static void *set_and_read(void *arg)
{
    WT_CHECK(weft_local_get(&counted) == NULL); /* each thread starts empty */
    WT_EQ(weft_local_set(&counted, arg), 0);
    for (int i = 0; i < 1000; i++)
        WT_CHECK(weft_local_get(&counted) == arg);
    return NULL;
}

WT_CASE(values_are_per_thread_and_destroyed_before_join_returns)
{
    enum { N = 8 };
    WT_EQ(weft_local_set(&counted, (void *)1000), 0);
    weft_thread_t *t[N];
    for (intptr_t i = 0; i < N; i++) {
        WT_EQ(weft_thread_new(&t[i], set_and_read, (void *)(i + 1), NULL), 0);
        WT_EQ(weft_thread_start(t[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        WT_EQ(weft_thread_join(t[i], WEFT_FOREVER, NULL), 0);
        /* Joined means this thread's destructor has run, once. */
        WT_EQ(atomic_load(&destroyed_by_value[i + 1]), 1);
        WT_EQ(weft_thread_free(t[i]), 0);
    }
    WT_EQ(atomic_load(&destroyed), N);
    WT_EQ(atomic_load(&destroyed_sum), N * (N + 1) / 2);
    WT_CHECK(weft_local_get(&counted) == (void *)1000); /* main's own value untouched */
}

WT_CASE(null_values_are_not_destroyed)
{
    run_thread(set_and_read, NULL);
    WT_EQ(atomic_load(&destroyed), 0);
}

static void *foreign_set(void *arg)
{
    WT_EQ(weft_local_set(&counted, arg), 0);
    return NULL;
}

WT_CASE(foreign_threads_destroy_at_exit)
{
    pthread_t pt;
    WT_EQ(pthread_create(&pt, NULL, foreign_set, (void *)5), 0);
    pthread_join(pt, NULL);
    WT_EQ(atomic_load(&destroyed), 1);
    WT_EQ(atomic_load(&destroyed_sum), 5);
}

static void *exit_with_value(void *arg)
{
    WT_EQ(weft_local_set(&counted, arg), 0);
    pthread_exit(NULL);
}

WT_CASE(pthread_exit_runs_destructors_once)
{
    run_thread(exit_with_value, (void *)3);
    WT_EQ(atomic_load(&destroyed), 1);
    WT_EQ(atomic_load(&destroyed_sum), 3);
}

enum { MANY = 3000 }; /* more than PTHREAD_KEYS_MAX (1024) */
static weft_local_t many[MANY];

static void *use_many(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < MANY; i++)
        WT_EQ(weft_local_set(&many[i], (void *)(i + 1)), 0);
    for (intptr_t i = 0; i < MANY; i++)
        WT_CHECK(weft_local_get(&many[i]) == (void *)(i + 1));
    return NULL;
}

WT_CASE(no_limit_on_the_number_of_locals)
{
    for (int i = 0; i < MANY; i++)
        WT_EQ(weft_local_init(&many[i], count_dtor), 0);
    run_thread(use_many, NULL);
    WT_EQ(atomic_load(&destroyed), MANY);
    WT_EQ(atomic_load(&destroyed_sum), (long)MANY * (MANY + 1) / 2);
    for (int i = 0; i < MANY; i++)
        WT_EQ(weft_local_destroy(&many[i]), 0);
}

static weft_local_t first, second;

static void *set_first(void *arg)
{
    WT_EQ(weft_local_set(&first, arg), 0);
    return NULL;
}

WT_CASE(destroy_forgets_values_and_slots_are_reused_safely)
{
    WT_EQ(weft_local_init(&first, count_dtor), 0);
    WT_EQ(weft_local_set(&first, (void *)1), 0);
    WT_EQ(weft_local_destroy(&first), 0);
    WT_CHECK(weft_local_get(&first) == NULL);
    /* A new local may reuse the slot; the stale value must not show. */
    WT_EQ(weft_local_init(&second, count_dtor), 0);
    WT_CHECK(weft_local_get(&second) == NULL);
    WT_EQ(weft_local_set(&second, (void *)2), 0);
    WT_CHECK(weft_local_get(&second) == (void *)2);
    WT_EQ(weft_local_destroy(&second), 0);
    WT_EQ(weft_local_destroy(&second), 0); /* twice is harmless */

    /* A live local's value is destroyed at its thread's exit, and only it:
     * values 1 and 2, left behind by destroyed locals, never are. */
    WT_EQ(weft_local_init(&first, count_dtor), 0);
    run_thread(set_first, (void *)4);
    WT_EQ(atomic_load(&destroyed), 1);
    WT_EQ(atomic_load(&destroyed_sum), 4);
    WT_EQ(weft_local_destroy(&first), 0);
}

static weft_local_t phoenix;
static _Atomic int phoenix_calls;

/* A destructor that sets a value again, like pthread's classic trap. */
static void phoenix_dtor(void *value)
{
    atomic_fetch_add(&phoenix_calls, 1);
    if ((intptr_t)value < 3)
        weft_local_set(&phoenix, (void *)((intptr_t)value + 1));
}

static void *set_phoenix(void *arg)
{
    WT_EQ(weft_local_set(&phoenix, arg), 0);
    return NULL;
}

WT_CASE(destructor_that_sets_again_gets_more_rounds)
{
    WT_EQ(weft_local_init(&phoenix, phoenix_dtor), 0);
    run_thread(set_phoenix, (void *)1);
    WT_EQ(atomic_load(&phoenix_calls), 3); /* values 1, 2, 3 */
    /* A destructor that never stops is cut off after a bounded number of
     * rounds instead of looping forever. */
    atomic_store(&phoenix_calls, 0);
    run_thread(set_phoenix, (void *)-100);
    WT_CHECK(atomic_load(&phoenix_calls) >= 4 && atomic_load(&phoenix_calls) <= 8);
}

static weft_local_t identity;

struct identity_check {
    weft_thread_t *self;
    int same, active;
};

static void identity_dtor(void *value)
{
    struct identity_check *c = value;
    c->same = weft_thread_current() == c->self;
    c->active = weft_thread_active_count();
}

static void *foreign_identity(void *arg)
{
    struct identity_check *c = arg;
    c->self = weft_thread_current(); /* a dummy entry */
    WT_EQ(weft_local_set(&identity, c), 0);
    return NULL;
}

WT_CASE(foreign_destructors_see_the_thread_as_itself)
{
    WT_EQ(weft_local_init(&identity, identity_dtor), 0);
    struct identity_check c = {0};
    pthread_t pt;
    WT_EQ(pthread_create(&pt, NULL, foreign_identity, &c), 0);
    pthread_join(pt, NULL);
    WT_EQ(c.same, 1);   /* not a fresh dummy */
    WT_EQ(c.active, 2); /* main and this thread, nothing more */
    WT_EQ(weft_thread_active_count(), 1);
    WT_EQ(weft_local_destroy(&identity), 0);
}

/*
 * A value another thread set through a local that is destroyed before
 * that thread exits is never destroyed, neither by the old destructor nor
 * by the destructor of a new local that took over the slot meanwhile.
 */
static weft_local_t doomed, successor;
static _Atomic int successor_dtor_calls;

static void successor_dtor(void *value)
{
    (void)value;
    atomic_fetch_add(&successor_dtor_calls, 1);
}

struct left_behind {
    wt_gate set, go;
};

static void *set_then_wait(void *arg)
{
    struct left_behind *l = arg;
    WT_EQ(weft_local_set(&doomed, (void *)5), 0);
    wt_gate_open(&l->set);
    wt_gate_wait(&l->go);
    return NULL;
}

WT_CASE(values_of_a_destroyed_local_are_left_alone)
{
    for (int reuse = 0; reuse < 2; reuse++) {
        atomic_store(&destroyed, 0);
        WT_EQ(weft_local_init(&doomed, count_dtor), 0);
        struct left_behind l = {WT_GATE_INIT, WT_GATE_INIT};
        weft_thread_t *t;
        WT_EQ(weft_thread_new(&t, set_then_wait, &l, NULL), 0);
        WT_EQ(weft_thread_start(t), 0);
        wt_gate_wait(&l.set);
        WT_EQ(weft_local_destroy(&doomed), 0);
        if (reuse) { /* the first free slot: the doomed one's */
            WT_EQ(weft_local_init(&successor, successor_dtor), 0);
            WT_EQ(weft_local_set(&successor, (void *)6), 0);
        }
        wt_gate_open(&l.go);
        WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
        WT_EQ(weft_thread_free(t), 0);
        WT_EQ(atomic_load(&destroyed), 0);
        WT_EQ(atomic_load(&successor_dtor_calls), 0);
        if (reuse) {
            WT_CHECK(weft_local_get(&successor) == (void *)6);
            WT_EQ(weft_local_destroy(&successor), 0);
        }
    }
}

/* A set that cannot get memory (for the table of slots, or for the
 * thread's block of values) fails with -ENOMEM and stores nothing; the
 * next set works, and its value is destroyed once at the thread's end. */
static int fail_at, allocations;

static void *calloc_failing_at(size_t count, size_t size)
{
    return allocations++ == fail_at ? NULL : calloc(count, size);
}

static weft_local_t fragile = WEFT_LOCAL_INIT(count_dtor);

static void *set_under_failures(void *arg)
{
    (void)arg;
    int rc;
    for (fail_at = 0;; fail_at++) {
        allocations = 0;
        weft__sys.calloc = calloc_failing_at;
        rc = weft_local_set(&fragile, (void *)3);
        weft__sys_reset();
        if (rc == 0)
            break;
        WT_EQ(rc, -ENOMEM);
        WT_CHECK(weft_local_get(&fragile) == NULL);
    }
    WT_EQ(fail_at, 2); /* the table, then the block */
    WT_CHECK(weft_local_get(&fragile) == (void *)3);
    return NULL;
}

WT_FAULT(a_set_without_memory_stores_nothing)
{
    run_thread(set_under_failures, NULL);
    WT_EQ(atomic_load(&destroyed_by_value[3]), 1);
    WT_EQ(atomic_load(&destroyed), 1);
}

WT_CASE(bad_input)
{
    WT_EQ(weft_local_init(NULL, NULL), -EINVAL);
    WT_EQ(weft_local_destroy(NULL), -EINVAL);
    WT_EQ(weft_local_set(NULL, (void *)1), -EINVAL);
    WT_CHECK(weft_local_get(NULL) == NULL);
    weft_local_t unused = WEFT_LOCAL_INIT(NULL);
    WT_CHECK(weft_local_get(&unused) == NULL);
    WT_EQ(weft_local_destroy(&unused), 0);
}
