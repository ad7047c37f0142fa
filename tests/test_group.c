/*
 * Tests for task groups (weft_group_t, weft/pool.h): recursive fork-join
 * with 1, 2 and 4 workers, nested groups, waits from outside the pool and
 * from a worker (and from a worker of another pool), many groups at once,
 * timeouts on both sides, the first error and the skipping of tasks not
 * started, cancellation, shutdown during a group and a cancelling one,
 * run() after shutdown, run() and wait() without memory, bad input, and
 * a randomized stress run of all of it.
 */
#include "base/base.h"
#include "threads.h"
#include <weft/pool.h>

#include <math.h>
#include <sched.h>
#include <stdlib.h>

static weft_pool_t *make(int workers)
{
    weft_pool_t *p;
    WT_EQ(weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = workers}), 0);
    return p;
}

static weft_group_t *group_on(weft_group_t *g, weft_pool_t *p)
{
    WT_EQ(weft_group_init(g, p), 0);
    return g;
}

/* --- fib, one group per call -------------------------------------------------- */

struct fib {
    long n, result;
};

static void *fib(void *arg)
{
    struct fib *f = arg;
    if (f->n < 2) {
        f->result = f->n;
        return NULL;
    }
    struct fib a = {f->n - 1, 0}, b = {f->n - 2, 0};
    weft_group_t g;
    group_on(&g, NULL); /* the worker's own pool */
    WT_EQ(weft_group_run(&g, fib, &a), 0);
    WT_EQ(weft_group_run(&g, fib, &b), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(weft_group_destroy(&g), 0);
    f->result = a.result + b.result;
    return NULL;
}

static long fib_on(weft_pool_t *p, long n)
{
    struct fib f = {n, -1};
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), fib, &f), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    return f.result;
}

/* Every call waits for its two halves, which its worker runs itself unless
 * another steals them: one worker never deadlocks, and more share it. */
WT_CASE(fib_through_groups_with_1_2_and_4_workers)
{
    int workers[] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        weft_pool_t *p = make(workers[i]);
        WT_EQ(fib_on(p, 20), 6765);
        WT_EQ(fib_on(p, 1), 1);
        WT_EQ(weft_pool_free(p), 0);
    }
}

/* --- nested groups ------------------------------------------------------------ */

struct tree {
    int depth;
    _Atomic long *leaves;
};

/* Four children per node, each level a group of its own; a node waits for
 * its group and fails if any child did. */
static void *branch(void *arg)
{
    struct tree *t = arg;
    if (t->depth == 0) {
        atomic_fetch_add(t->leaves, 1);
        return NULL;
    }
    struct tree kids[4];
    weft_group_t g;
    group_on(&g, NULL);
    for (int i = 0; i < 4; i++) {
        kids[i] = (struct tree){t->depth - 1, t->leaves};
        WT_EQ(weft_group_run(&g, branch, &kids[i]), 0);
    }
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    return NULL;
}

WT_CASE(nested_groups_wait_for_their_own_tasks)
{
    weft_pool_t *p = make(2);
    _Atomic long leaves = 0;
    struct tree root = {5, &leaves};
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), branch, &root), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&leaves), 1024);
    WT_EQ(weft_pool_free(p), 0);
}

/* --- waits that block ----------------------------------------------------------- */

static void *wait_at_gate(void *arg)
{
    wt_gate_wait(arg);
    return NULL;
}

struct opener {
    wt_gate *gate;
    long tid;
    const void *word;
};

static void *open_when_asleep(void *arg)
{
    struct opener *o = arg;
    wt_await_futex_sleep(o->tid, o->word, 10 * wt_slack());
    wt_gate_open(o->gate);
    return NULL;
}

/* From outside: timeout 0 tries once, a timeout expires, and a wait
 * without one sleeps (in a futex wait on the group) until the last task
 * finishes. */
WT_CASE(a_wait_from_outside_times_out_then_sleeps_until_done)
{
    weft_pool_t *p = make(1);
    wt_gate gate = WT_GATE_INIT;
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), wait_at_gate, &gate), 0);
    WT_EQ(weft_group_wait(&g, 0), -EAGAIN);
    double t0 = wt_now();
    WT_EQ(weft_group_wait(&g, 0.05), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_group_destroy(&g), -EBUSY);
    struct opener o = {&gate, weft_thread_get_native_id(), &g.state};
    weft_thread_t *t = spawn(open_when_asleep, &o);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    finish(t);
    WT_EQ(weft_group_destroy(&g), 0);
    WT_EQ(weft_pool_free(p), 0);
}

/* From a worker: the group's task is on another worker, and the waiting
 * one has nothing else to run, so it sleeps; its timeouts expire, and the
 * task's end wakes it. */
struct inside {
    weft_pool_t *pool;
    _Atomic int started;
    wt_gate gate;
};

static void *signal_then_wait(void *arg)
{
    struct inside *in = arg;
    atomic_store(&in->started, 1);
    wt_gate_wait(&in->gate);
    return NULL;
}

static void *wait_inside(void *arg)
{
    struct inside *in = arg;
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, in->pool), signal_then_wait, in), 0);
    while (!atomic_load(&in->started)) /* the other worker steals it */
        sched_yield();
    WT_EQ(weft_group_wait(&g, 0), -EAGAIN);
    WT_EQ(weft_group_wait(&g, 0.02), -ETIMEDOUT);
    wt_gate_open(&in->gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    return NULL;
}

WT_CASE(a_wait_in_a_worker_times_out_and_is_woken)
{
    struct inside in = {.pool = make(2), .gate = WT_GATE_INIT};
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, in.pool), wait_inside, &in), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(weft_pool_free(in.pool), 0);
}

/* A worker's timed wait returns at its deadline even while its own deque
 * still holds tasks of the group to run (it looks at the clock between
 * them): 100 tasks of 10 ms, a wait of 20 ms. */
static void *nap(void *arg)
{
    WT_EQ(weft_sleep(0.01), 0);
    atomic_fetch_add((_Atomic long *)arg, 1);
    return NULL;
}

static void *wait_briefly_among_tasks(void *arg)
{
    (void)arg;
    _Atomic long ran = 0;
    weft_group_t g;
    group_on(&g, NULL);
    for (int i = 0; i < 100; i++)
        WT_EQ(weft_group_run(&g, nap, &ran), 0);
    WT_EQ(weft_group_wait(&g, 0.02), -ETIMEDOUT);
    WT_CHECK(atomic_load(&ran) < 100);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&ran), 100);
    return NULL;
}

WT_CASE(a_worker_times_out_while_it_has_tasks_to_run)
{
    weft_pool_t *p = make(1);
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), wait_briefly_among_tasks, NULL), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(weft_pool_free(p), 0);
}

/* A worker of one pool waits for a group of another: it runs its own
 * pool's tasks meanwhile, among them one that the group's task waits for,
 * and the group's end wakes it through its own pool. One worker each. */
static weft_pool_t *pool_a, *pool_b;

static void *answer(void *arg)
{
    return arg;
}

static void *ask_pool_a(void *arg)
{
    weft_future_t *f;
    void *v;
    WT_EQ(weft_pool_submit(pool_a, answer, arg, &f), 0);
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_CHECK(v == arg);
    weft_future_free(f);
    return NULL;
}

static void *wait_for_pool_b(void *arg)
{
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, pool_b), ask_pool_a, arg), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    return NULL;
}

WT_CASE(a_worker_waits_for_a_group_of_another_pool)
{
    pool_a = make(1);
    pool_b = make(1);
    for (int i = 0; i < 100; i++) {
        weft_group_t g;
        WT_EQ(weft_group_run(group_on(&g, pool_a), wait_for_pool_b, &g), 0);
        WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    }
    WT_EQ(weft_pool_free(pool_b), 0);
    WT_EQ(weft_pool_free(pool_a), 0);
}

/* --- many groups at once ------------------------------------------------------- */

static weft_pool_t *shared_pool;

static void *add_one(void *arg)
{
    atomic_fetch_add((_Atomic long *)arg, 1);
    return NULL;
}

/* Groups of 1 to 20 tasks, each waited for and checked, one after the
 * other on the caller's stack. */
static void *groups_in_a_row(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        _Atomic long count = 0;
        weft_group_t g;
        group_on(&g, shared_pool);
        long n = 1 + r % 20;
        for (long i = 0; i < n; i++)
            WT_EQ(weft_group_run(&g, add_one, &count), 0);
        WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
        WT_EQ(atomic_load(&count), n);
    }
    return NULL;
}

WT_CASE(many_groups_at_once_from_outside_and_inside)
{
    shared_pool = make(2);
    long rounds = wt_sanitizer() ? 200 : 2000;
    weft_thread_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn(groups_in_a_row, (void *)(intptr_t)rounds);
    weft_group_t g; /* and tasks of the pool doing the same */
    group_on(&g, shared_pool);
    for (int i = 0; i < 4; i++)
        WT_EQ(weft_group_run(&g, groups_in_a_row, (void *)(intptr_t)rounds), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    for (int i = 0; i < 4; i++)
        finish(t[i]);
    WT_EQ(weft_pool_free(shared_pool), 0);
}

/* --- errors and cancellation ----------------------------------------------------- */

static void *fail_with(void *arg)
{
    WT_EQ(weft_task_fail((int)(intptr_t)arg), 0);
    return NULL;
}

/* One worker, held at a gate by the group's first task while a failing
 * task and ten more are queued behind it (in order, from outside): the
 * failure skips the ten, run() refuses more, and wait reports the error
 * once; the group is then clean for another round. */
WT_CASE(the_first_error_skips_what_has_not_started)
{
    weft_pool_t *p = make(1);
    wt_gate gate = WT_GATE_INIT;
    _Atomic long ran = 0;
    weft_group_t g;
    group_on(&g, p);
    WT_EQ(weft_group_run(&g, wait_at_gate, &gate), 0);
    WT_EQ(weft_group_run(&g, fail_with, (void *)(intptr_t)-EIO), 0);
    for (int i = 0; i < 10; i++)
        WT_EQ(weft_group_run(&g, add_one, &ran), 0);
    wt_gate_open(&gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), -EIO);
    WT_EQ(atomic_load(&ran), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0); /* reported once */
    WT_EQ(weft_group_run(&g, add_one, &ran), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&ran), 1);
    WT_EQ(weft_pool_free(p), 0);
}

/* Two tasks that both fail, both running: the first to end is the
 * group's error. The second fails only once it sees the group failed (in
 * the group's error word). */
struct duel {
    weft_group_t group;
    _Atomic int running;
};

static void *fail_first(void *arg)
{
    struct duel *d = arg;
    atomic_fetch_add(&d->running, 1);
    while (atomic_load(&d->running) < 2)
        sched_yield();
    weft_task_fail(-EIO);
    return NULL;
}

static void *fail_second(void *arg)
{
    struct duel *d = arg;
    atomic_fetch_add(&d->running, 1);
    while (atomic_load((_Atomic int32_t *)&d->group.error) == 0)
        sched_yield();
    weft_task_fail(-EPIPE);
    return NULL;
}

WT_CASE(of_two_failures_the_first_wins)
{
    weft_pool_t *p = make(2);
    struct duel d = {.running = 0};
    group_on(&d.group, p);
    WT_EQ(weft_group_run(&d.group, fail_first, &d), 0);
    WT_EQ(weft_group_run(&d.group, fail_second, &d), 0);
    WT_EQ(weft_group_wait(&d.group, WEFT_FOREVER), -EIO);
    WT_EQ(weft_pool_free(p), 0);
}

/* A task cancels its own group: what is queued behind it is skipped,
 * run() is refused, and the group reports -ECANCELED. */
static void *cancel_own_group(void *arg)
{
    weft_group_t *g = arg;
    WT_EQ(weft_group_cancel(g), 0);
    WT_EQ(weft_group_run(g, add_one, NULL), -ECANCELED);
    return NULL;
}

WT_CASE(cancel_skips_what_has_not_started)
{
    weft_pool_t *p = make(1);
    wt_gate gate = WT_GATE_INIT;
    _Atomic long ran = 0;
    weft_group_t g;
    group_on(&g, p);
    WT_EQ(weft_group_run(&g, wait_at_gate, &gate), 0);
    WT_EQ(weft_group_run(&g, cancel_own_group, &g), 0);
    for (int i = 0; i < 10; i++)
        WT_EQ(weft_group_run(&g, add_one, &ran), 0);
    wt_gate_open(&gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), -ECANCELED);
    WT_EQ(atomic_load(&ran), 0);
    WT_EQ(weft_pool_free(p), 0);
}

/* --- shutdown -------------------------------------------------------------------- */

/* The pool shuts down while a group's root task is held at a gate: its
 * subtree (runs from inside) still runs to the end, while a run from
 * outside is refused. */
struct held_tree {
    wt_gate gate;
    struct tree tree;
};

static void *hold_then_branch(void *arg)
{
    struct held_tree *h = arg;
    wt_gate_wait(&h->gate);
    return branch(&h->tree);
}

WT_CASE(shutdown_lets_a_running_group_finish_and_refuses_outside_runs)
{
    weft_pool_t *p = make(2);
    _Atomic long leaves = 0;
    struct held_tree h = {WT_GATE_INIT, {4, &leaves}};
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), hold_then_branch, &h), 0);
    WT_EQ(weft_pool_shutdown(p, false, false), 0);
    WT_EQ(weft_group_run(&g, add_one, &leaves), WEFT_ESHUTDOWN);
    wt_gate_open(&h.gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&leaves), 256);
    WT_EQ(weft_group_destroy(&g), 0); /* the refused run left nothing counted */
    WT_EQ(weft_pool_free(p), 0);
}

/* A cancelling shutdown skips the group's queued tasks, and the group
 * reports -ECANCELED; the running one finishes. */
WT_CASE(a_cancelling_shutdown_skips_queued_group_tasks)
{
    struct inside in = {.pool = make(1), .gate = WT_GATE_INIT};
    _Atomic long ran = 0;
    weft_group_t g;
    group_on(&g, in.pool);
    WT_EQ(weft_group_run(&g, signal_then_wait, &in), 0);
    while (!atomic_load(&in.started))
        sched_yield();
    for (int i = 0; i < 5; i++)
        WT_EQ(weft_group_run(&g, add_one, &ran), 0);
    WT_EQ(weft_pool_shutdown(in.pool, false, true), 0);
    wt_gate_open(&in.gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), -ECANCELED);
    WT_EQ(atomic_load(&ran), 0);
    WT_EQ(weft_pool_free(in.pool), 0);
}

/* --- without memory -------------------------------------------------------------- */

static void no_memory(void)
{
    weft__sys.malloc = wt_no_malloc;
    weft__sys.calloc = wt_no_calloc;
    weft__sys.realloc = wt_no_realloc;
    weft__sys.aligned_alloc = wt_no_aligned_alloc;
}

/* With every allocation failing, a task runs groups (fib(15): 1973
 * groups, runs and waits) on its deque's first array; then fills that
 * array with one group (its one worker runs nothing meanwhile) until a
 * run fails with -ENOMEM, leaving nothing counted. */
static void *fib_and_fill_without_memory(void *arg)
{
    _Atomic long *ran = arg;
    no_memory();
    struct fib f = {15, 0};
    fib(&f);
    WT_EQ(f.result, 610);
    weft_group_t g;
    group_on(&g, NULL);
    int rc;
    long queued = 0;
    while ((rc = weft_group_run(&g, add_one, ran)) == 0)
        queued++;
    weft__sys_reset();
    WT_EQ(rc, -ENOMEM);
    WT_CHECK(queued >= 1 && (queued & (queued - 1)) == 0); /* the first array, full */
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(ran), queued);
    WT_EQ(weft_group_destroy(&g), 0);
    return NULL;
}

WT_FAULT(run_and_wait_allocate_nothing)
{
    weft_pool_t *p = make(1);
    _Atomic long ran = 0;
    weft_group_t g;
    WT_EQ(weft_group_run(group_on(&g, p), fib_and_fill_without_memory, &ran), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(weft_pool_free(p), 0);
}

/* From outside, the injection queue grows now and then; a run that cannot
 * make it grow fails whole, and what was accepted before runs. */
WT_FAULT(an_outside_run_that_cannot_queue_fails_whole)
{
    weft_pool_t *p = make(1);
    wt_gate gate = WT_GATE_INIT;
    _Atomic long ran = 0;
    weft_group_t g;
    group_on(&g, p);
    WT_EQ(weft_group_run(&g, wait_at_gate, &gate), 0); /* hold the worker */
    no_memory();
    int rc;
    long queued = 0;
    while ((rc = weft_group_run(&g, add_one, &ran)) == 0)
        WT_CHECK(++queued < 100000);
    weft__sys_reset();
    WT_EQ(rc, -ENOMEM);
    wt_gate_open(&gate);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&ran), queued);
    WT_EQ(weft_pool_free(p), 0);
}

/* --- bad input --------------------------------------------------------------------- */

WT_CASE(group_bad_input)
{
    weft_pool_t *p = make(1);
    weft_group_t g;
    WT_EQ(weft_group_init(NULL, p), -EINVAL);
    group_on(&g, p);
    WT_EQ(weft_group_run(NULL, add_one, NULL), -EINVAL);
    WT_EQ(weft_group_run(&g, NULL, NULL), -EINVAL);
    WT_EQ(weft_group_wait(NULL, 0), -EINVAL);
    WT_EQ(weft_group_wait(&g, NAN), -EINVAL);
    WT_EQ(weft_group_cancel(NULL), -EINVAL);
    WT_EQ(weft_group_destroy(NULL), -EINVAL);
    WT_EQ(weft_group_wait(&g, 0), 0); /* empty: done at once */
    g.state = 1u << 31;               /* as if 2^30 tasks were unfinished */
    WT_EQ(weft_group_run(&g, add_one, NULL), -EOVERFLOW);
    WT_EQ(g.state, 1u << 31); /* nothing counted */
    g.state = 0;
    WT_EQ(weft_group_destroy(&g), 0);
    WT_EQ(weft_group_run(&g, add_one, NULL), -EINVAL); /* destroyed */
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), -EINVAL);
    WT_EQ(weft_group_cancel(&g), -EINVAL);
    WT_EQ(weft_group_destroy(&g), -EINVAL);
    /* No pool: outside the pool's workers, the default pool. */
    _Atomic long ran = 0;
    WT_EQ(weft_group_init(&g, NULL), 0);
    WT_CHECK(g.pool == weft_pool_default());
    WT_EQ(weft_group_run(&g, add_one, &ran), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&ran), 1);
    WT_EQ(weft_pool_free(p), 0);
}

/* --- stress ------------------------------------------------------------------------- */

/*
 * Random trees of groups on a 3-worker pool, from 3 outside threads and
 * from inside: each node runs 0 to 4 children in a group of its own, and
 * waits with timeouts of 0 or a few microseconds until it is done (each
 * timeout racing the last child's end); now and then a leaf fails. A
 * tree's shape and failures follow from its seed alone, so the test knows
 * what to expect: a tree without a failing leaf runs every node once and
 * its wait returns 0; one with a failing leaf returns -EIO, after running
 * no more nodes than it has.
 */
struct node {
    int depth;
    uint32_t seed;
    _Atomic long *ran;
};

static uint32_t next_seed(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A node's children's seeds (returns how many) and whether it fails. */
static int plan(int depth, uint32_t seed, uint32_t kids[4], bool *fails)
{
    *fails = depth == 0 && next_seed(&seed) % 64 == 0;
    int k = depth == 0 ? 0 : (int)(next_seed(&seed) % 5);
    for (int i = 0; i < k; i++)
        kids[i] = next_seed(&seed) | 1;
    return k;
}

/* The number of nodes in the tree; *fails if a leaf of it fails. */
static long tree_size(int depth, uint32_t seed, bool *fails)
{
    uint32_t kids[4];
    bool me;
    long size = 1;
    for (int i = 0, k = plan(depth, seed, kids, &me); i < k; i++)
        size += tree_size(depth - 1, kids[i], fails);
    *fails |= me;
    return size;
}

static int wait_with_timeouts(weft_group_t *g, uint32_t seed)
{
    int rc;
    while ((rc = weft_group_wait(g, next_seed(&seed) % 2 ? 0 : 2e-6)) == -EAGAIN ||
           rc == -ETIMEDOUT)
        ;
    return rc;
}

static void *random_node(void *arg)
{
    struct node *n = arg, kids[4];
    atomic_fetch_add(n->ran, 1);
    uint32_t seeds[4];
    bool fails;
    int k = plan(n->depth, n->seed, seeds, &fails), rc = 0;
    if (fails)
        weft_task_fail(-EIO);
    weft_group_t g;
    group_on(&g, NULL);
    for (int i = 0; i < k && rc == 0; i++) {
        kids[i] = (struct node){n->depth - 1, seeds[i], n->ran};
        rc = weft_group_run(&g, random_node, &kids[i]);
        WT_CHECK(rc == 0 || rc == -ECANCELED);
    }
    if ((rc = wait_with_timeouts(&g, n->seed ^ 0x5bd1e995u)) != 0) {
        WT_EQ(rc, -EIO);
        weft_task_fail(rc);
    }
    return NULL;
}

static void *random_trees(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg;
    long rounds = wt_sanitizer() ? 300 : 5000;
    for (long r = 0; r < rounds; r++) {
        _Atomic long ran = 0;
        struct node root = {4, next_seed(&seed) | 1, &ran};
        bool fails = false;
        long size = tree_size(root.depth, root.seed, &fails);
        weft_group_t g;
        WT_EQ(weft_group_run(group_on(&g, shared_pool), random_node, &root), 0);
        WT_EQ(wait_with_timeouts(&g, seed), fails ? -EIO : 0);
        if (fails)
            WT_CHECK(atomic_load(&ran) >= 1 && atomic_load(&ran) <= size);
        else
            WT_EQ(atomic_load(&ran), size);
        WT_EQ(weft_group_destroy(&g), 0);
    }
    return NULL;
}

WT_STRESS(random_trees_of_groups_with_timeouts_and_failures)
{
    shared_pool = make(3);
    weft_thread_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(random_trees, (void *)(uintptr_t)(0x9e3779b9u * (unsigned)(i + 1)));
    weft_group_t g;
    group_on(&g, shared_pool);
    WT_EQ(weft_group_run(&g, random_trees, (void *)(uintptr_t)0x1234567u), 0);
    WT_EQ(weft_group_wait(&g, WEFT_FOREVER), 0);
    for (int i = 0; i < 3; i++)
        finish(t[i]);
    WT_EQ(weft_pool_free(shared_pool), 0);
}
