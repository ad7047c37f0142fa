/* Tests for the parking layer (base/park.h): that every blocking wait of
 * every primitive parks through it, so that the async layer's parker sees
 * them all, and that its hooks (the parker slot, the count of parked tasks,
 * the task unpark, the trace hooks) keep their contracts.
 *
 * The stand-in for the async layer parks each "task" (a thread that set
 * the parker slot) on a POSIX semaphore of its own instead of on the word,
 * so only an unpark that reaches the task side can wake it: a primitive
 * that slept or woke behind the layer's back would hang its case. */
#include "base/hooks.h"
#include "base/park.h"
#include "threads.h"
#include "wt.h"
#include <weft/future.h>
#include <weft/mpqueue.h>
#include <weft/pool.h>
#include <weft/process.h>
#include <weft/queue.h>
#include <weft/sync.h>

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --- the stand-in for the async layer ------------------------------------ */

struct parked {
    _Atomic uint32_t *word;
    sem_t wake;
    bool woken;
    struct parked *next;
};

static pthread_mutex_t lot = PTHREAD_MUTEX_INITIALIZER;
static struct parked *lot_list;
static _Atomic int parked_now, task_wakes;
static _Atomic unsigned last_flags;

static void unlink_parked(struct parked *me)
{
    for (struct parked **pp = &lot_list; *pp; pp = &(*pp)->next)
        if (*pp == me) {
            *pp = me->next;
            break;
        }
}

/* Sleep on the task's own semaphore until an unpark or the deadline. */
static int sleep_parked(struct parked *me, weft__deadline_t deadline)
{
    struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
    while ((deadline == WEFT__NEVER ? sem_wait(&me->wake)
                                    : sem_clockwait(&me->wake, CLOCK_MONOTONIC, &ts)) != 0 &&
           errno == EINTR)
        ;
    /* Under the lock: the waker may still be inside sem_post. */
    pthread_mutex_lock(&lot);
    bool woken = me->woken;
    if (!woken) {
        unlink_parked(me);
        atomic_fetch_sub(&weft__parked_tasks, 1);
        atomic_fetch_sub(&parked_now, 1);
    }
    pthread_mutex_unlock(&lot);
    sem_destroy(&me->wake);
    return woken ? 0 : -ETIMEDOUT;
}

static int fake_park(struct weft__parker *self, _Atomic uint32_t *word, uint32_t expected,
                     weft__deadline_t deadline, unsigned flags)
{
    (void)self;
    atomic_store(&last_flags, flags);
    struct parked me = {.word = word};
    sem_init(&me.wake, 0, 0);
    pthread_mutex_lock(&lot);
    atomic_fetch_add(&weft__parked_tasks, 1); /* a full fence, as park.h asks */
    if (atomic_load(word) != expected) {
        atomic_fetch_sub(&weft__parked_tasks, 1);
        pthread_mutex_unlock(&lot);
        sem_destroy(&me.wake);
        return 0;
    }
    me.next = lot_list;
    lot_list = &me;
    atomic_fetch_add(&parked_now, 1);
    pthread_mutex_unlock(&lot);
    return sleep_parked(&me, deadline);
}

static int fake_park_fd(struct weft__parker *self, int fd, unsigned events,
                        weft__deadline_t deadline, unsigned flags)
{
    (void)self;
    WT_EQ(events, WEFT_READABLE); /* what the primitives wait for */
    atomic_store(&last_flags, flags);
    atomic_fetch_add(&parked_now, 1);
    struct pollfd pfd = {fd, POLLIN, 0};
    int n;
    do {
        int64_t left = (deadline - weft__now_ns()) / 1000000 + 1; /* ms, rounded up */
        n = poll(&pfd, 1, deadline == WEFT__NEVER ? -1 : left < 0 ? 0 : (int)left);
    } while (n < 0 && errno == EINTR);
    atomic_fetch_sub(&parked_now, 1);
    return n;
}

static int fake_unpark(_Atomic uint32_t *word, int n, unsigned flags)
{
    (void)flags;
    int woke = 0;
    pthread_mutex_lock(&lot);
    for (struct parked **pp = &lot_list; *pp && woke < n;) {
        struct parked *p = *pp;
        if (p->word != word) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->woken = true;
        atomic_fetch_sub(&weft__parked_tasks, 1);
        atomic_fetch_sub(&parked_now, 1);
        sem_post(&p->wake);
        woke++;
    }
    pthread_mutex_unlock(&lot);
    atomic_fetch_add(&task_wakes, woke);
    return woke;
}

static struct weft__parker fake = {fake_park, fake_park_fd, NULL, NULL};

static bool one_parked(void *arg)
{
    (void)arg;
    return atomic_load(&parked_now) == 1;
}

/* --- one wait of every kind ----------------------------------------------- */

/* A scenario: `wait` runs in a task and must park; `wake`, run once it has,
 * must end the wait through an unpark (or a readable descriptor). */
struct scenario {
    const char *name;
    unsigned flags; /* expected: kind and shared bit */
    void (*setup)(void);
    int (*wait)(void);
    void (*wake)(void);
};

static weft_lock_t lock, shared_lock;
static weft_rlock_t rlock;
static weft_critsec_t critsec;
static weft_cond_t cond;
static bool cond_flag;
static weft_sem_t sem;
static weft_event_t event;
static weft_waitgroup_t wg;
static weft_once_t once;
static weft_rwlock_t rw;
static weft_barrier_t barrier;
static weft_queue_t *queue;
static weft_future_t *future;
static weft_thread_t *other;
static wt_gate gate;
static weft_process_t *child;
static weft_conn_t *conn_a, *conn_b;
static weft_mpqueue_t *mpq;
static int pipe_fds[2];

static void setup_lock(void)
{
    weft_lock_init(&lock, 0);
    weft_lock_acquire(&lock, WEFT_FOREVER);
}
static int wait_lock(void)
{
    int rc = weft_lock_acquire(&lock, WEFT_FOREVER);
    return rc ? rc : weft_lock_release(&lock);
}
static void wake_lock(void)
{
    weft_lock_release(&lock);
}

static void setup_shared_lock(void)
{
    weft_lock_init(&shared_lock, WEFT_SHARED);
    weft_lock_acquire(&shared_lock, WEFT_FOREVER);
}
static int wait_shared_lock(void)
{
    int rc = weft_lock_acquire(&shared_lock, WEFT_FOREVER);
    return rc ? rc : weft_lock_release(&shared_lock);
}
static void wake_shared_lock(void)
{
    weft_lock_release(&shared_lock);
}

static void setup_rlock(void)
{
    weft_rlock_init(&rlock, 0);
    weft_rlock_acquire(&rlock, WEFT_FOREVER);
}
static int wait_rlock(void)
{
    int rc = weft_rlock_acquire(&rlock, WEFT_FOREVER);
    return rc ? rc : weft_rlock_release(&rlock);
}
static void wake_rlock(void)
{
    weft_rlock_release(&rlock);
}

static void setup_critsec(void)
{
    weft_critsec_init(&critsec, 0, 0);
    weft_critsec_enter(&critsec);
}
static int wait_critsec(void)
{
    int rc = weft_critsec_enter(&critsec);
    return rc ? rc : weft_critsec_leave(&critsec);
}
static void wake_critsec(void)
{
    weft_critsec_leave(&critsec);
}

static void setup_cond(void)
{
    weft_lock_init(&lock, 0);
    weft_cond_init(&cond, &lock, 0);
    cond_flag = false;
}
static bool cond_flag_set(void *arg)
{
    (void)arg;
    return cond_flag;
}
static int wait_cond(void)
{
    weft_cond_acquire(&cond, WEFT_FOREVER);
    int rc = weft_cond_wait_for(&cond, cond_flag_set, NULL, WEFT_FOREVER);
    weft_cond_release(&cond);
    return rc;
}
static void wake_cond(void)
{
    weft_cond_acquire(&cond, WEFT_FOREVER);
    cond_flag = true;
    weft_cond_notify(&cond, 1);
    weft_cond_release(&cond);
}

static void setup_sem(void)
{
    weft_sem_init(&sem, 0, 0);
}
static int wait_sem(void)
{
    return weft_sem_acquire(&sem, WEFT_FOREVER);
}
static void wake_sem(void)
{
    weft_sem_release(&sem, 1);
}

static void setup_event(void)
{
    weft_event_init(&event, 0);
}
static int wait_event(void)
{
    return weft_event_wait(&event, WEFT_FOREVER);
}
static void wake_event(void)
{
    weft_event_set(&event);
}

static void setup_wg(void)
{
    weft_waitgroup_init(&wg, 0);
    weft_waitgroup_add(&wg, 1);
}
static int wait_wg(void)
{
    return weft_waitgroup_wait(&wg, WEFT_FOREVER);
}
static void wake_wg(void)
{
    weft_waitgroup_done(&wg);
}

/* once: another thread runs the function, which holds until the gate opens. */
static void once_fn(void *arg)
{
    (void)arg;
    wt_gate_wait(&gate);
}
static void *run_once(void *arg)
{
    weft_once_call(&once, once_fn, NULL);
    return arg;
}
static bool once_running(void *arg)
{
    (void)arg;
    return atomic_load((_Atomic uint32_t *)&once.state) != 0;
}
static void setup_once(void)
{
    weft_once_init(&once, 0);
    gate = (wt_gate)WT_GATE_INIT;
    other = spawn(run_once, NULL);
    wt_wait_until(once_running, NULL, 10 * wt_slack());
}
static int wait_once(void)
{
    return weft_once_call(&once, once_fn, NULL);
}
static void wake_once(void)
{
    wt_gate_open(&gate);
    finish(other);
}

static void setup_rw_read(void)
{
    weft_rwlock_init(&rw, 0);
    weft_rwlock_acquire_write(&rw, WEFT_FOREVER);
}
static int wait_rw_read(void)
{
    int rc = weft_rwlock_acquire_read(&rw, WEFT_FOREVER);
    return rc ? rc : weft_rwlock_release_read(&rw);
}
static void wake_rw_read(void)
{
    weft_rwlock_release_write(&rw);
}

static void setup_rw_write(void)
{
    weft_rwlock_init(&rw, 0);
    weft_rwlock_acquire_read(&rw, WEFT_FOREVER);
}
static int wait_rw_write(void)
{
    int rc = weft_rwlock_acquire_write(&rw, WEFT_FOREVER);
    return rc ? rc : weft_rwlock_release_write(&rw);
}
static void wake_rw_write(void)
{
    weft_rwlock_release_read(&rw);
}

static void setup_barrier(void)
{
    weft_barrier_init(&barrier, 2, NULL, NULL, WEFT_FOREVER, 0);
}
static int wait_barrier(void)
{
    return weft_barrier_wait(&barrier, WEFT_FOREVER);
}
static void wake_barrier(void)
{
    WT_EQ(weft_barrier_wait(&barrier, WEFT_FOREVER), 1);
}

static void setup_queue_get(void)
{
    weft_queue_new(&queue, sizeof(int), 1);
}
static int wait_queue_get(void)
{
    int item;
    int rc = weft_queue_get(queue, &item, WEFT_FOREVER);
    weft_queue_free(queue);
    return rc ? rc : item - 7;
}
static void wake_queue_get(void)
{
    int item = 7;
    weft_queue_put(queue, &item, 0);
}

static void setup_queue_put(void)
{
    int item = 1;
    weft_queue_new(&queue, sizeof(int), 1);
    weft_queue_put(queue, &item, 0);
}
static int wait_queue_put(void)
{
    int item = 2;
    int rc = weft_queue_put(queue, &item, WEFT_FOREVER);
    weft_queue_free(queue);
    return rc;
}
static void wake_queue_put(void)
{
    int item;
    weft_queue_get(queue, &item, 0);
}

static int wait_queue_join(void)
{
    int rc = weft_queue_join(queue, WEFT_FOREVER);
    weft_queue_free(queue);
    return rc;
}
static void wake_queue_join(void)
{
    int item;
    weft_queue_get(queue, &item, 0);
    weft_queue_task_done(queue);
}

static void setup_future(void)
{
    weft_future_new(&future);
}
static int wait_future(void)
{
    void *value;
    int rc = weft_future_result(future, WEFT_FOREVER, &value);
    weft_future_free(future);
    return rc ? rc : value != &future;
}
static void wake_future(void)
{
    weft_future_set_result(future, &future);
}

/* A group whose one task waits at a gate, waited for from outside. */
static weft_pool_t *group_pool;
static weft_group_t group;
static wt_gate group_gate;

static void *at_group_gate(void *arg)
{
    wt_gate_wait(arg);
    return NULL;
}
static void setup_group(void)
{
    WT_EQ(weft_pool_new(&group_pool, &(weft_pool_opts_t){.max_workers = 1}), 0);
    group_gate = (wt_gate)WT_GATE_INIT;
    WT_EQ(weft_group_init(&group, group_pool), 0);
    WT_EQ(weft_group_run(&group, at_group_gate, &group_gate), 0);
}
static int wait_group(void)
{
    int rc = weft_group_wait(&group, WEFT_FOREVER);
    return rc ? rc : weft_group_destroy(&group);
}
static void wake_group(void)
{
    wt_gate_open(&group_gate);
}

static int wait_futures(void)
{
    int rc = weft_wait(&future, 1, WEFT_FOREVER, WEFT_ALL_COMPLETED);
    weft_future_free(future);
    return rc == 1 ? 0 : -1; /* one future done */
}

static int wait_as_completed(void)
{
    weft_as_completed_t *it;
    weft_future_t *f = NULL;
    int rc = weft_as_completed_new(&it, &future, 1, WEFT_FOREVER);
    if (rc == 0) {
        rc = weft_as_completed_next(it, &f);
        weft_as_completed_free(it);
    }
    weft_future_free(future);
    return rc == 1 && f == future ? 0 : -1;
}

static void *held_at_gate(void *arg)
{
    wt_gate_wait(&gate);
    return arg;
}
static void setup_join(void)
{
    gate = (wt_gate)WT_GATE_INIT;
    other = spawn(held_at_gate, NULL);
}
static int wait_join(void)
{
    int rc = weft_thread_join(other, WEFT_FOREVER, NULL);
    weft_thread_free(other);
    return rc;
}
static void wake_join(void)
{
    wt_gate_open(&gate);
}

static int wait_sleep(void)
{
    return weft_sleep(0.01);
}
static void wake_nothing(void)
{
}

/* The child reads one byte from the pipe, then exits. */
static int child_reads(const void *arg, size_t len)
{
    (void)arg, (void)len;
    char c;
    return read(pipe_fds[0], &c, 1) == 1 ? 0 : 1;
}
static void setup_process(void)
{
    WT_EQ(pipe(pipe_fds), 0);
    weft_process_opts_t o = {.method = WEFT_START_FORK, .keep_fds = pipe_fds, .nkeep_fds = 1};
    WT_EQ(weft_process_new(&child, child_reads, NULL, 0, &o), 0);
    WT_EQ(weft_process_start(child), 0);
}
static int wait_process(void)
{
    int code = -1, rc = weft_process_join(child, WEFT_FOREVER);
    weft_process_exitcode(child, &code);
    weft_process_close(child);
    return rc ? rc : code;
}
static void wake_process(void)
{
    WT_EQ(write(pipe_fds[1], "x", 1), 1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

static void setup_conn(void)
{
    WT_EQ(weft_pipe(&conn_a, &conn_b, true), 0);
}
static int wait_conn(void)
{
    return weft_conn_poll(conn_b, WEFT_FOREVER) == 1 ? 0 : -1;
}
static void wake_conn(void)
{
    WT_EQ(weft_conn_send_bytes(conn_a, "x", 1), 0);
}

static void setup_mpqueue(void)
{
    WT_EQ(weft_mpqueue_new(&mpq, NULL), 0);
}
static int wait_mpqueue(void)
{
    char c;
    ssize_t n = weft_mpqueue_get(mpq, &c, 1, WEFT_FOREVER);
    return n == 1 && c == 'x' ? 0 : -1;
}
static void wake_mpqueue(void)
{
    WT_EQ(weft_mpqueue_put(mpq, "x", 1, 0), 0);
}

static const struct scenario scenarios[] = {
    {"lock", WEFT__WAIT_LOCK, setup_lock, wait_lock, wake_lock},
    {"shared lock", WEFT__WAIT_OWNED | WEFT__PARK_SHARED, setup_shared_lock, wait_shared_lock,
     wake_shared_lock},
    {"rlock", WEFT__WAIT_OWNED, setup_rlock, wait_rlock, wake_rlock},
    {"critsec", WEFT__WAIT_OWNED, setup_critsec, wait_critsec, wake_critsec},
    {"cond", WEFT__WAIT_COND, setup_cond, wait_cond, wake_cond},
    {"sem", WEFT__WAIT_SEM, setup_sem, wait_sem, wake_sem},
    {"event", WEFT__WAIT_EVENT, setup_event, wait_event, wake_event},
    {"waitgroup", WEFT__WAIT_GROUP, setup_wg, wait_wg, wake_wg},
    {"once", WEFT__WAIT_ONCE, setup_once, wait_once, wake_once},
    {"rwlock read", WEFT__WAIT_RWLOCK, setup_rw_read, wait_rw_read, wake_rw_read},
    {"rwlock write", WEFT__WAIT_RWLOCK, setup_rw_write, wait_rw_write, wake_rw_write},
    {"barrier", WEFT__WAIT_BARRIER, setup_barrier, wait_barrier, wake_barrier},
    {"queue get", WEFT__WAIT_QUEUE, setup_queue_get, wait_queue_get, wake_queue_get},
    {"queue put", WEFT__WAIT_QUEUE, setup_queue_put, wait_queue_put, wake_queue_put},
    {"queue join", WEFT__WAIT_QUEUE, setup_queue_put, wait_queue_join, wake_queue_join},
    {"future", WEFT__WAIT_FUTURE, setup_future, wait_future, wake_future},
    {"wait", WEFT__WAIT_POOL, setup_future, wait_futures, wake_future},
    {"as_completed", WEFT__WAIT_POOL, setup_future, wait_as_completed, wake_future},
    {"group", WEFT__WAIT_POOL, setup_group, wait_group, wake_group},
    {"thread join", WEFT__WAIT_THREAD, setup_join, wait_join, wake_join},
    {"sleep", WEFT__WAIT_SLEEP | WEFT__PARK_LOOP, NULL, wait_sleep, wake_nothing},
    {"process join", WEFT__WAIT_PROCESS, setup_process, wait_process, wake_process},
    {"pipe poll", WEFT__WAIT_PROCESS, setup_conn, wait_conn, wake_conn},
    {"mpqueue get", WEFT__WAIT_PROCESS | WEFT__PARK_SHARED, setup_mpqueue, wait_mpqueue,
     wake_mpqueue},
};

static void *as_task(void *arg)
{
    const struct scenario *s = arg;
    weft__parker = &fake;
    int rc = s->wait();
    weft__parker = NULL;
    return (void *)(intptr_t)rc;
}

static void run(const struct scenario *s)
{
    if (s->setup)
        s->setup();
    int wakes = atomic_load(&task_wakes);
    weft_thread_t *t = spawn(as_task, (void *)s);
    wt_wait_until(one_parked, NULL, 10 * wt_slack());
    unsigned flags = atomic_load(&last_flags);
    if (flags != s->flags)
        fprintf(stderr, "%s: parked with flags %#x, expected %#x\n", s->name, flags, s->flags);
    WT_EQ(flags, s->flags);
    s->wake();
    intptr_t rc = (intptr_t)finish(t);
    if (rc != 0)
        fprintf(stderr, "%s: the wait returned %ld\n", s->name, (long)rc);
    WT_EQ(rc, 0);
    WT_EQ(atomic_load(&parked_now), 0);
    /* A word's waiter is woken by an unpark that reached the task side. */
    if (WEFT__PARK_KIND(s->flags) != WEFT__PARK_KIND(WEFT__WAIT_SLEEP) &&
        WEFT__PARK_KIND(s->flags) != WEFT__PARK_KIND(WEFT__WAIT_PROCESS))
        WT_CHECK(atomic_load(&task_wakes) > wakes);
}

WT_CASE(every_blocking_wait_parks_through_the_layer)
{
    atomic_store(&weft__task_unpark, fake_unpark);
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
        run(&scenarios[i]);
    WT_EQ(atomic_load(&weft__parked_tasks), 0);
    weft_mpqueue_close(mpq);
    weft_pool_free(group_pool);
    weft_conn_close(conn_a);
    weft_conn_close(conn_b);
}

/* --- unpark counts tasks and threads together ----------------------------- */

static _Atomic uint32_t word;
static _Atomic int thread_wakes;

static void *park_thread(void *arg)
{
    while (atomic_load(&word) == 0) {
        weft__park(&word, 0, WEFT__NEVER, 0);
        atomic_fetch_add(&thread_wakes, 1);
    }
    return arg;
}

static void *park_task(void *arg)
{
    weft__parker = &fake;
    weft__park(&word, 0, WEFT__NEVER, 0);
    weft__parker = NULL;
    return arg;
}

WT_CASE(unpark_counts_tasks_and_threads_together)
{
    atomic_store(&weft__task_unpark, fake_unpark);
    weft_thread_t *thread = spawn(park_thread, NULL);
    wt_await_futex_sleep(weft_thread_native_id(thread), &word, 10 * wt_slack());
    weft_thread_t *task = spawn(park_task, NULL);
    wt_wait_until(one_parked, NULL, 10 * wt_slack());
    /* One wake-up: it goes to the task, and the thread sleeps on. */
    weft__unpark(&word, 1, 0);
    finish(task);
    WT_EQ(atomic_load(&parked_now), 0);
    wt_await_futex_sleep(weft_thread_native_id(thread), &word, 10 * wt_slack());
    WT_EQ(atomic_load(&thread_wakes), 0);
    atomic_store(&word, 1);
    weft__unpark(&word, 1, 0);
    finish(thread);
    WT_CHECK(atomic_load(&thread_wakes) >= 1);
}

/* An unpark skips its system call when no thread sleeps on a word that
 * hashes where its word does; the sleeper counts itself before the kernel
 * compares the word, the waker changes the word before it looks at the
 * count, so no wake-up is lost. Two threads hand a turn back and forth
 * through bare parks on two words, many times, with words beside them
 * where a third thread sleeps throughout (its count is in some bucket, so
 * some unparks find a count and some none): a lost wake-up hangs. */
enum { TURNS = 20000 };
static _Atomic uint32_t turn[2], idle_word;

static void *take_turns(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint32_t i = 0; i < TURNS; i++) {
        uint32_t v;
        while ((v = atomic_load(&turn[me])) <= i)
            weft__park(&turn[me], v, WEFT__NEVER, 0);
        atomic_store(&turn[!me], i + 1 + (uint32_t)me);
        weft__unpark(&turn[!me], 1, 0);
    }
    return NULL;
}

static void *sleep_throughout(void *arg)
{
    while (atomic_load(&idle_word) == 0)
        weft__park(&idle_word, 0, WEFT__NEVER, 0);
    return arg;
}

WT_CASE(bare_parks_and_unparks_lose_no_wake_up)
{
    weft_thread_t *idler = spawn(sleep_throughout, NULL);
    wt_await_futex_sleep(weft_thread_native_id(idler), &idle_word, 10 * wt_slack());
    weft_thread_t *second = spawn(take_turns, (void *)1);
    atomic_store(&turn[0], 1); /* the first turn */
    take_turns((void *)0);
    finish(second);
    atomic_store(&idle_word, 1);
    weft__unpark(&idle_word, 1, 0);
    finish(idler);
}

/* --- the trace hooks ------------------------------------------------------ */

/* Only the semaphore's waits are counted: the test's own joins park too. */
static _Atomic int begins, ends;
static const void *_Atomic begin_word;

static void on_begin(const void *w, unsigned flags)
{
    if (flags != WEFT__WAIT_SEM)
        return;
    atomic_store(&begin_word, w);
    atomic_fetch_add(&begins, 1);
}

static void on_end(const void *w, unsigned flags, int rc)
{
    if (flags != WEFT__WAIT_SEM)
        return;
    WT_CHECK(w == atomic_load(&begin_word) && rc == 0);
    atomic_fetch_add(&ends, 1);
}

static const struct weft__hooks tracer = {on_begin, on_end};

static void *sem_waiter(void *arg)
{
    WT_EQ(weft_sem_acquire(arg, WEFT_FOREVER), 0);
    return NULL;
}

WT_CASE(trace_hooks_see_each_wait_that_slept)
{
    weft_sem_t s;
    weft_sem_init(&s, 0, 0);
    atomic_store(&weft__hooks, &tracer);
    weft_thread_t *t = spawn(sem_waiter, &s);
    wt_await_futex_sleep(weft_thread_native_id(t), &s, 10 * wt_slack());
    WT_EQ(atomic_load(&begins), 1);
    WT_CHECK(atomic_load(&begin_word) == &s);
    weft_sem_release(&s, 1);
    finish(t);
    atomic_store(&weft__hooks, NULL);
    WT_EQ(atomic_load(&begins), 1);
    WT_EQ(atomic_load(&ends), 1);
    /* Off again: nothing more is reported. */
    WT_EQ(weft_sem_acquire(&s, 0.001), -ETIMEDOUT);
    WT_EQ(atomic_load(&begins), 1);
}
