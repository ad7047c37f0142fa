/*
 * M:N mode: the tasks of one weft_run on two loops, each on its own thread
 * (the other async programs run again in this mode too, as *_mn). These
 * cases check what only M:N mode can break: tasks really move between
 * threads, hand-offs across threads are counted exactly, cancellations
 * race wake-ups from the other thread, a task keeps what it owns when it
 * moves, and a task inside a timeout scope stays on its loop.
 */
#include "base/base.h"
#include "wt.h"
#include "wt_async.h"

#include <weft/async.h>
#include <weft/gil.h>
#include <weft/queue.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void run_on(unsigned threads, weft_co_fn fn, void *arg)
{
    weft_run_opts_t opts = {.threads = threads};
    WT_EQ(weft_run(fn, arg, &opts, NULL), 0);
}

static void run_mn(weft_co_fn fn, void *arg)
{
    run_on(2, fn, arg);
}

/* Spawn n tasks of fn(i), join them all (each must end with 0). */
static void spawn_join_all(weft_co_fn fn, int n)
{
    weft_co_t **t = malloc((size_t)n * sizeof *t);
    WT_CHECK(t != NULL);
    for (int i = 0; i < n; i++)
        WT_EQ(weft_co_spawn(&t[i], fn, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < n; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    free(t);
}

static void *nothing(void *arg)
{
    return arg;
}

WT_CASE(bad_thread_counts_are_refused)
{
    weft_run_opts_t opts = {.threads = WEFT_RUN_THREADS_MAX + 1};
    WT_EQ(weft_run(nothing, NULL, &opts, NULL), -EINVAL);
}

/* Tasks yield until each has seen both threads run some task, or a
 * generous deadline passes: the other loop must steal. */
static _Atomic long seen[2];

static void *note_thread(void *arg)
{
    (void)arg;
    weft__deadline_t end = weft__now_ns() + 20 * 1000000000LL;
    for (;;) {
        long me = weft_thread_get_native_id(), expect = 0;
        if (!atomic_compare_exchange_strong(&seen[0], &expect, me) && expect != me) {
            expect = 0;
            atomic_compare_exchange_strong(&seen[1], &expect, me);
        }
        if (atomic_load(&seen[1]) != 0 || weft__now_ns() > end)
            break;
        WT_EQ(weft_co_sleep(0), 0);
    }
    return NULL;
}

static void *many_yielders(void *arg)
{
    (void)arg;
    spawn_join_all(note_thread, 64);
    return NULL;
}

WT_CASE(tasks_run_on_both_threads)
{
    run_mn(many_yielders, NULL);
    WT_CHECK(atomic_load(&seen[1]) != 0);
    WT_CHECK(atomic_load(&seen[0]) != atomic_load(&seen[1]));
}

/* A Lock held across yields (so that holders move), by tasks on both
 * threads and by a plain thread: the count is exact. */
static weft_lock_t lock = WEFT_LOCK_INIT;
static long counted;
enum { ROUNDS = 2000, TASKS = 50 };

static void *add_under_lock(void *arg)
{
    for (int i = 0; i < ROUNDS; i++) {
        WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0);
        long v = counted;
        if ((i + (intptr_t)arg) % 7 == 0)
            WT_EQ(weft_co_sleep(0), 0);
        counted = v + 1;
        WT_EQ(weft_lock_release(&lock), 0);
    }
    return NULL;
}

static void *thread_adds(void *arg)
{
    for (int i = 0; i < ROUNDS; i++) {
        WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0);
        counted++;
        WT_EQ(weft_lock_release(&lock), 0);
    }
    return arg;
}

static void *lock_crowd(void *arg)
{
    (void)arg;
    weft_thread_t *th;
    WT_EQ(weft_thread_new(&th, thread_adds, NULL, NULL), 0);
    WT_EQ(weft_thread_start(th), 0);
    spawn_join_all(add_under_lock, TASKS);
    WT_EQ(weft_thread_join(th, WEFT_FOREVER, NULL), 0);
    weft_thread_free(th);
    return NULL;
}

WT_CASE(a_lock_shared_by_tasks_on_two_threads_and_a_thread_counts_exactly)
{
    run_mn(lock_crowd, NULL);
    WT_EQ(counted, (long)(TASKS + 1) * ROUNDS);
}

/* Producers and consumers through one bounded queue: every item arrives
 * once. */
static weft_queue_t *queue;
static _Atomic long received_sum, received;
enum { ITEMS = 20000, PRODUCERS = 4, CONSUMERS = 4 };

static void *produce(void *arg)
{
    long base = (long)(intptr_t)arg * (ITEMS / PRODUCERS);
    for (long i = 0; i < ITEMS / PRODUCERS; i++) {
        long item = base + i + 1;
        WT_EQ(weft_queue_put(queue, &item, WEFT_FOREVER), 0);
    }
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    for (long i = 0; i < ITEMS / CONSUMERS; i++) {
        long item;
        WT_EQ(weft_queue_get(queue, &item, WEFT_FOREVER), 0);
        received_sum += item;
        received++;
    }
    return NULL;
}

static void *pipeline(void *arg)
{
    (void)arg;
    weft_co_t *t[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        WT_EQ(weft_co_spawn(&t[i], consume, NULL, NULL), 0);
    for (int i = 0; i < PRODUCERS; i++)
        WT_EQ(weft_co_spawn(&t[CONSUMERS + i], produce, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(a_queue_between_tasks_on_two_threads_delivers_every_item_once)
{
    WT_EQ(weft_queue_new(&queue, sizeof(long), 8), 0);
    run_mn(pipeline, NULL);
    WT_EQ(received, ITEMS);
    WT_EQ(received_sum, (long)ITEMS * (ITEMS + 1) / 2);
    weft_queue_free(queue);
}

/* Waiters on a semaphore, half of them cancelled while units are released
 * from the other thread: each unit is taken exactly once, or given back
 * by nobody (a cancelled waiter that was granted a unit keeps it). */
static weft_sem_t sem;
static _Atomic long granted, cancelled;
enum { SEM_WAITERS = 200 };

static void *sem_wait_once(void *arg)
{
    (void)arg;
    int rc = weft_sem_acquire(&sem, WEFT_FOREVER);
    if (rc == 0)
        granted++;
    else if (rc == -ECANCELED)
        cancelled++;
    else
        WT_EQ(rc, 0);
    return NULL;
}

static void *sem_releaser(void *arg)
{
    (void)arg;
    for (int i = 0; i < SEM_WAITERS; i++) {
        WT_EQ(weft_sem_release(&sem, 1), 0);
        if (i % 5 == 0)
            WT_EQ(weft_co_sleep(0), 0);
    }
    return NULL;
}

static void *sem_race(void *arg)
{
    (void)arg;
    weft_co_t *t[SEM_WAITERS], *rel;
    for (int i = 0; i < SEM_WAITERS; i++)
        WT_EQ(weft_co_spawn(&t[i], sem_wait_once, NULL, NULL), 0);
    WT_EQ(weft_co_spawn(&rel, sem_releaser, NULL, NULL), 0);
    for (int i = 0; i < SEM_WAITERS; i += 2)
        WT_CHECK(weft_co_cancel(t[i]) >= 0);
    WT_EQ(weft_co_join(rel, WEFT_FOREVER, NULL), 0);
    weft_co_free(rel);
    /* Whoever is still waiting gets the units the cancelled left. */
    for (int i = 0; i < SEM_WAITERS; i++) {
        weft_co_join(t[i], WEFT_FOREVER, NULL);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(cancellations_racing_releases_from_the_other_thread_lose_no_unit)
{
    for (int round = 0; round < 5; round++) {
        granted = cancelled = 0;
        WT_EQ(weft_sem_init(&sem, 0, 0), 0);
        run_mn(sem_race, NULL);
        /* Every release went to exactly one waiter or is still there. */
        WT_EQ(granted + weft_sem_value(&sem), SEM_WAITERS);
        WT_EQ(granted + cancelled, SEM_WAITERS);
        WT_EQ(weft_sem_destroy(&sem), 0);
    }
}

/* What a task owns moves with it: an RLock taken on one thread is
 * released on another, and the current task is still itself. */
static weft_rlock_t rlock = WEFT_RLOCK_INIT;
static _Atomic long moved;

static void *own_and_move(void *arg)
{
    (void)arg;
    weft_co_t *me = weft_co_current();
    for (int i = 0; i < 200; i++) {
        long before = weft_thread_get_native_id();
        WT_EQ(weft_rlock_acquire(&rlock, WEFT_FOREVER), 0);
        WT_EQ(weft_rlock_acquire(&rlock, 0), 0); /* re-entered: it is ours */
        WT_EQ(weft_co_sleep(0), 0);
        WT_CHECK(weft_co_current() == me);
        if (weft_thread_get_native_id() != before)
            moved++;
        WT_EQ(weft_rlock_release(&rlock), 0);
        WT_EQ(weft_rlock_release(&rlock), 0);
        WT_EQ(weft_rlock_release(&rlock), -EPERM);
    }
    return NULL;
}

static void *owners(void *arg)
{
    (void)arg;
    spawn_join_all(own_and_move, 16);
    return NULL;
}

WT_CASE(a_task_that_moves_keeps_its_rlock_and_stays_current)
{
    run_mn(owners, NULL);
    WT_EQ(weft_rlock_acquire(&rlock, 0), 0); /* left free */
    WT_EQ(weft_rlock_release(&rlock), 0);
}

/* Inside a timeout scope a task stays on its loop (the scope's timer is in
 * that loop's heap); the scope still fires. */
static _Atomic long strayed;

static void *scoped(void *arg)
{
    (void)arg;
    int rc = 1;
    WEFT_TIMEOUT(0.05, &rc)
    {
        long home = weft_thread_get_native_id();
        for (;;) {
            if (weft_co_sleep(0) == -ECANCELED)
                break;
            if (weft_thread_get_native_id() != home)
                strayed++;
        }
    }
    WT_EQ(rc, -ETIMEDOUT);
    return NULL;
}

static void *scopes(void *arg)
{
    (void)arg;
    spawn_join_all(scoped, 32);
    return NULL;
}

WT_CASE(a_task_in_a_timeout_scope_stays_on_its_thread)
{
    run_mn(scopes, NULL);
    WT_EQ(strayed, 0);
}

/* A group across threads: one child fails, the others (on either thread)
 * are cancelled, and the group reports the failure. */
static void *child(void *arg)
{
    if ((intptr_t)arg == 37)
        return weft_co_fail(-EIO);
    for (;;)
        if (weft_co_sleep(0.001) == -ECANCELED)
            return NULL;
}

static void *group_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        int rc = 1;
        WEFT_CO_GROUP(g, &rc)
        {
            /* The failure may come (from the other thread) while the
             * group is still being filled: it is closed from then on. */
            for (intptr_t i = 0; i < 64; i++) {
                int spawned = weft_co_group_spawn(g, NULL, child, (void *)i, NULL);
                WT_CHECK(spawned == 0 || (spawned == WEFT_ESHUTDOWN && i > 37));
            }
        }
        WT_EQ(rc, -EIO);
    }
    return NULL;
}

WT_CASE(a_group_across_threads_cancels_the_siblings_of_a_failure)
{
    run_mn(group_main, NULL);
}

/* main ends while tasks on both loops wait for ever: weft_run cancels
 * them all and returns. */
static weft_event_t never = WEFT_EVENT_INIT;

static void *wait_forever(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_wait(&never, WEFT_FOREVER), -ECANCELED);
    return NULL;
}

static void *leave_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500; i++)
        WT_EQ(weft_co_spawn(NULL, wait_forever, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.01), 0);
    return NULL;
}

WT_CASE(the_end_of_main_cancels_the_tasks_on_every_loop)
{
    run_mn(leave_many, NULL);
}

/* A task's RWLock reads are its own: one that reads, moves to the other
 * thread while a writer waits, and reads again, is let past the writer
 * (counted on the thread it left, it would wait for the writer, which
 * waits for its first read). Whether it moves is up to the loops; the
 * same count on one loop is checked in test_async.c. */
static weft_rwlock_t rw = WEFT_RWLOCK_INIT;

static void *write_once(void *arg)
{
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_release_write(&rw), 0);
    return arg;
}

static void *read_move_read(void *arg)
{
    (void)arg;
    WT_EQ(weft_rwlock_acquire_read(&rw, WEFT_FOREVER), 0);
    weft_thread_t *w;
    WT_EQ(weft_thread_new(&w, write_once, NULL, NULL), 0);
    WT_EQ(weft_thread_start(w), 0);
    wt_await_waiting_writer(&rw);
    long first = weft_thread_get_native_id();
    for (int i = 0; i < 10000 && weft_thread_get_native_id() == first; i++)
        WT_EQ(weft_co_sleep(0), 0); /* the busy task below keeps the other loop taking */
    WT_EQ(weft_rwlock_acquire_read(&rw, 10 * wt_slack()), 0);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(weft_thread_join(w, WEFT_FOREVER, NULL), 0);
    weft_thread_free(w);
    return NULL;
}

static _Atomic bool reads_done;

static void *keep_busy(void *arg)
{
    while (!atomic_load(&reads_done))
        WT_EQ(weft_co_sleep(0), 0);
    return arg;
}

static void *reads_main(void *arg)
{
    (void)arg;
    weft_co_t *busy[4], *reader;
    for (int i = 0; i < 4; i++)
        WT_EQ(weft_co_spawn(&busy[i], keep_busy, NULL, NULL), 0);
    WT_EQ(weft_co_spawn(&reader, read_move_read, NULL, NULL), 0);
    WT_EQ(weft_co_join(reader, WEFT_FOREVER, NULL), 0);
    weft_co_free(reader);
    atomic_store(&reads_done, true);
    for (int i = 0; i < 4; i++) {
        WT_EQ(weft_co_join(busy[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(busy[i]);
    }
    return NULL;
}

WT_CASE(a_task_that_moves_reads_again_past_a_waiting_writer)
{
    run_mn(reads_main, NULL);
    WT_EQ(rw.state, 0);
}

/* Tasks that hold the GIL across a yield: letting go of it may park the
 * task (on the GIL's own lock), and it may come back on the other loop;
 * the yield must go on from there, not from the loop it left. */
static weft_gil_t mn_gil = WEFT_GIL_INIT;

static void *gil_yielder(void *arg)
{
    for (int i = 0; i < 5000; i++) {
        WT_EQ(weft_gil_acquire(&mn_gil), 0);
        WT_EQ(weft_co_sleep(0), 0);
        WT_EQ(weft_gil_release(&mn_gil), 0);
    }
    return arg;
}

static void *gil_crowd(void *arg)
{
    (void)arg;
    spawn_join_all(gil_yielder, 32);
    return NULL;
}

WT_CASE(tasks_holding_the_gil_across_a_yield_move_safely)
{
    for (int round = 0; round < 16; round++)
        run_on(4, gil_crowd, NULL); /* more loops than CPUs: more moves */
}

/* A task that is not a child of a group feeds it children, keeping their
 * handles, while the group's end waits: a child may end on the other loop
 * before the spawn lets go of the place it held open, and then the spawn
 * must wake the end itself. */
static void *trivial(void *arg)
{
    return arg;
}

static void *short_nap(void *arg)
{
    WT_EQ(weft_co_sleep(0.0005), 0);
    return arg;
}

static void *feed_group(void *arg)
{
    weft_co_group_t *g = arg;
    for (int i = 0; i < 20; i++) {
        weft_co_t *c = NULL;
        if (weft_co_group_spawn(g, &c, trivial, NULL, NULL) != 0)
            return NULL; /* the group has ended */
        weft_co_free(c);
        weft_co_sleep(0.00005);
    }
    return NULL;
}

static void *feeders(void *arg)
{
    (void)arg;
    for (int round = 0; round < 300; round++) {
        /* The group outlives its scope here: the feeder may still call
         * on it after the end (and is refused). */
        int rc = 1;
        weft_co_group_t g = {NULL, NULL, &rc, 0, 0, 0};
        weft_co_t *f = NULL;
        if (weft_co_group_enter(&g)) {
            WT_EQ(weft_co_group_spawn(&g, NULL, short_nap, NULL, NULL), 0);
            WT_EQ(weft_co_spawn(&f, feed_group, &g, NULL), 0);
        }
        weft_co_group_end(&g);
        WT_EQ(rc, 0);
        WT_EQ(weft_co_join(f, WEFT_FOREVER, NULL), 0);
        weft_co_free(f);
    }
    return NULL;
}

WT_CASE(a_spawn_into_a_group_from_outside_wakes_its_end)
{
    run_on(3, feeders, NULL); /* more loops than CPUs: more ways to lose it */
}

/* Failures at the start: a worker thread that cannot start, or any one of
 * the run's allocations, fail weft_run cleanly (the loops and threads made
 * so far undone), and the next run works. */
static _Atomic int creates_left, allocs_left;

static int create_some(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (atomic_fetch_sub(&creates_left, 1) <= 0)
        return EAGAIN;
    return pthread_create(th, attr, fn, arg);
}

static void *malloc_some(size_t size)
{
    return atomic_fetch_sub(&allocs_left, 1) <= 0 ? NULL : malloc(size);
}

static void *calloc_some(size_t count, size_t size)
{
    return atomic_fetch_sub(&allocs_left, 1) <= 0 ? NULL : calloc(count, size);
}

WT_FAULT(a_run_that_cannot_start_fails_cleanly)
{
    weft__sys.pthread_create = create_some;
    for (int made = 0; made < 3; made++) {
        atomic_store(&creates_left, made);
        WT_EQ(weft_run(nothing, NULL, &(weft_run_opts_t){.threads = 4}, NULL), -EAGAIN);
    }
    weft__sys_reset();
    for (int ok = 0; ok < 12; ok++) {
        atomic_store(&allocs_left, ok);
        weft__sys.malloc = malloc_some;
        weft__sys.calloc = calloc_some;
        int rc = weft_run(nothing, NULL, &(weft_run_opts_t){.threads = 3}, NULL);
        weft__sys_reset();
        WT_CHECK(rc == -ENOMEM || rc == 0);
    }
    run_on(3, nothing, NULL);
}

/* A loop keeps the stacks of the tasks that ended on it, and in M:N mode
 * those are often tasks another loop spawned: it keeps no more than the
 * run ever had alive at once (a thousand at the least), and unmaps the
 * rest, however many tasks pass through. 64,000 tasks in batches of 64
 * would leave gigabytes mapped otherwise. */
enum { BATCHES = 1000, BATCH = 64 };

static long mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    WT_CHECK(f != NULL);
    WT_EQ(fscanf(f, "%ld", &pages), 1);
    fclose(f);
    return pages * sysconf(_SC_PAGESIZE);
}

static void *yield_thrice(void *arg)
{
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_co_sleep(0), 0);
    return arg;
}

static void *batches(void *arg)
{
    (void)arg;
    long before = mapped_bytes();
    for (int b = 0; b < BATCHES; b++)
        spawn_join_all(yield_thrice, BATCH);
    long grown = mapped_bytes() - before;
    WT_CHECK(grown < 1024L * 1024 * 1024);
    return NULL;
}

WT_CASE(a_loop_keeps_no_more_stacks_than_the_run_had_tasks_alive)
{
    run_mn(batches, NULL);
}
