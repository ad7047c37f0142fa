/*
 * Cancelling tasks at every kind of suspension point, and cancellations
 * racing wake-ups: the waiting call returns -ECANCELED, the primitive stays
 * usable, and a wake-up already granted is neither lost nor doubled.
 */
#include "wt.h"
#include "wt_async.h"

#include <weft/async.h>
#include <weft/queue.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>

static void run_main(weft_co_fn fn)
{
    WT_EQ(weft_run(fn, NULL, wt_run_opts(), NULL), 0);
}

/* One kind of wait: block() puts the primitive in a state where wait()
 * blocks; unblock() undoes it afterwards; check() shows the primitive works
 * again for a new waiter. */
struct kind {
    const char *name;
    void (*block)(void);
    int (*wait)(void);
    void (*unblock)(void);
    void (*check)(void);
};

static weft_lock_t lock = WEFT_LOCK_INIT;
static weft_lock_t cond_lock = WEFT_LOCK_INIT;
static weft_cond_t cond;
static weft_sem_t sem;
static weft_event_t event;
static weft_queue_t *queue;
static weft_future_t *future;
static weft_co_t *sleeper;
static weft_thread_t *thread;
static wt_gate thread_gate;
static weft_waitgroup_t wg;
static weft_rwlock_t rw;
static weft_barrier_t barrier;

static void nothing(void)
{
}

/* Lock */
static void lock_block(void)
{
    WT_EQ(weft_lock_acquire(&lock, 0), 0);
}
static int lock_wait(void)
{
    int rc = weft_lock_acquire(&lock, WEFT_FOREVER);
    if (rc == 0)
        weft_lock_release(&lock);
    return rc;
}
static void lock_unblock(void)
{
    WT_EQ(weft_lock_release(&lock), 0);
}
static void lock_check(void)
{
    WT_EQ(weft_lock_acquire(&lock, 0), 0);
    WT_EQ(weft_lock_release(&lock), 0);
}

/* Condition: the cancelled wait still gives the lock back. */
static void cond_block(void)
{
    WT_EQ(weft_cond_init(&cond, &cond_lock, 0), 0);
}
static int cond_wait(void)
{
    WT_EQ(weft_cond_acquire(&cond, WEFT_FOREVER), 0);
    int rc = weft_cond_wait(&cond, WEFT_FOREVER);
    WT_EQ(weft_lock_locked(&cond_lock), 1); /* held again, either way */
    WT_EQ(weft_cond_release(&cond), 0);
    return rc;
}
static void cond_check(void)
{
    WT_EQ(weft_cond_acquire(&cond, 0), 0);
    WT_EQ(weft_cond_wait(&cond, 0.001), -ETIMEDOUT);
    WT_EQ(weft_cond_release(&cond), 0);
    WT_EQ(weft_cond_destroy(&cond), 0); /* nobody is counted as waiting */
}

/* Semaphore */
static void sem_block(void)
{
    WT_EQ(weft_sem_init(&sem, 0, 0), 0);
}
static int sem_wait(void)
{
    return weft_sem_acquire(&sem, WEFT_FOREVER);
}
static void sem_check(void)
{
    WT_EQ(weft_sem_release(&sem, 1), 0);
    WT_EQ(weft_sem_acquire(&sem, 0), 0);
    WT_EQ(weft_sem_value(&sem), 0);
}

/* Event */
static void event_block(void)
{
    WT_EQ(weft_event_init(&event, 0), 0);
}
static int event_wait(void)
{
    return weft_event_wait(&event, WEFT_FOREVER);
}
static void event_check(void)
{
    WT_EQ(weft_event_set(&event), 0);
    WT_EQ(weft_event_wait(&event, 0), 0);
}

/* Queue: get from an empty one, put into a full one. */
static void queue_block(void)
{
    WT_EQ(weft_queue_new(&queue, sizeof(int), 1), 0);
}
static int get_wait(void)
{
    int v;
    return weft_queue_get(queue, &v, WEFT_FOREVER);
}
static void get_check(void)
{
    int v = 5;
    WT_EQ(weft_queue_put(queue, &v, 0), 0);
    WT_EQ(weft_queue_get(queue, &v, 0), 0);
    WT_EQ(v, 5);
    weft_queue_free(queue);
}
static void full_block(void)
{
    queue_block();
    int v = 1;
    WT_EQ(weft_queue_put(queue, &v, 0), 0);
}
static int put_wait(void)
{
    int v = 2;
    return weft_queue_put(queue, &v, WEFT_FOREVER);
}
static void put_check(void)
{
    int v;
    WT_EQ(weft_queue_get(queue, &v, 0), 0);
    WT_EQ(v, 1);
    WT_EQ(weft_queue_get(queue, &v, 0), -EAGAIN); /* the cancelled put left nothing */
    weft_queue_free(queue);
}

/* A future, and joins. */
static void future_block(void)
{
    WT_EQ(weft_future_new(&future), 0);
}
static int future_wait(void)
{
    return weft_future_result(future, WEFT_FOREVER, NULL);
}
static void future_check(void)
{
    WT_EQ(weft_future_set_result(future, (void *)3), 0);
    WT_EQ(weft_future_done(future), 1);
    weft_future_free(future);
}

static void *sleep_a_minute(void *arg)
{
    (void)arg;
    weft_co_sleep(60);
    return NULL;
}
static void join_block(void)
{
    WT_EQ(weft_co_spawn(&sleeper, sleep_a_minute, NULL, NULL), 0);
}
static int join_wait(void)
{
    return weft_co_join(sleeper, WEFT_FOREVER, NULL);
}
static void join_check(void)
{
    /* A join passes its cancellation on, as `await task` does. */
    WT_EQ(weft_future_cancelled(weft_co_future(sleeper)), 1);
    WT_EQ(weft_co_cancel(sleeper), 0);
    weft_co_free(sleeper);
}

static void *wait_gate(void *arg)
{
    (void)arg;
    wt_gate_wait(&thread_gate);
    return (void *)4;
}
static void thread_block(void)
{
    thread_gate = (wt_gate)WT_GATE_INIT;
    WT_EQ(weft_thread_start_new(&thread, wait_gate, NULL, NULL), 0);
}
static int thread_wait(void)
{
    return weft_thread_join(thread, WEFT_FOREVER, NULL);
}
static void thread_check(void)
{
    wt_gate_open(&thread_gate);
    void *v;
    WT_EQ(weft_thread_join(thread, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 4);
    weft_thread_free(thread);
}

/* WaitGroup, RWLock, Barrier */
static void wg_block(void)
{
    WT_EQ(weft_waitgroup_init(&wg, 0), 0);
    WT_EQ(weft_waitgroup_add(&wg, 1), 0);
}
static int wg_wait(void)
{
    return weft_waitgroup_wait(&wg, WEFT_FOREVER);
}
static void wg_check(void)
{
    WT_EQ(weft_waitgroup_done(&wg), 0);
    WT_EQ(weft_waitgroup_wait(&wg, 0), 0);
}

static void rw_block(void)
{
    WT_EQ(weft_rwlock_init(&rw, 0), 0);
    WT_EQ(weft_rwlock_acquire_write(&rw, 0), 0);
}
static int rw_wait(void)
{
    int rc = weft_rwlock_acquire_write(&rw, WEFT_FOREVER);
    if (rc == 0)
        weft_rwlock_release_write(&rw);
    return rc;
}
static void rw_unblock(void)
{
    WT_EQ(weft_rwlock_release_write(&rw), 0);
}
static void rw_check(void)
{
    WT_EQ(weft_rwlock_acquire_write(&rw, 0), 0); /* no writer left queued */
    WT_EQ(weft_rwlock_release_write(&rw), 0);
    WT_EQ(weft_rwlock_destroy(&rw), 0);
}

static void barrier_block(void)
{
    WT_EQ(weft_barrier_init(&barrier, 2, NULL, NULL, -1, 0), 0);
}
static int barrier_wait(void)
{
    return weft_barrier_wait(&barrier, WEFT_FOREVER);
}
static void barrier_check(void)
{
    /* Cancelled like a timeout: the cycle is broken, reset repairs it. */
    WT_EQ(weft_barrier_wait(&barrier, 0), WEFT_EBROKEN);
    WT_EQ(weft_barrier_reset(&barrier), 0);
    WT_EQ(weft_barrier_destroy(&barrier), 0);
}

static int sleep_wait(void)
{
    return weft_co_sleep(60);
}

static const struct kind kinds[] = {
    {"lock", lock_block, lock_wait, lock_unblock, lock_check},
    {"condition", cond_block, cond_wait, nothing, cond_check},
    {"semaphore", sem_block, sem_wait, nothing, sem_check},
    {"event", event_block, event_wait, nothing, event_check},
    {"queue get", queue_block, get_wait, nothing, get_check},
    {"queue put", full_block, put_wait, nothing, put_check},
    {"future", future_block, future_wait, nothing, future_check},
    {"task join", join_block, join_wait, nothing, join_check},
    {"thread join", thread_block, thread_wait, nothing, thread_check},
    {"wait group", wg_block, wg_wait, nothing, wg_check},
    {"rwlock", rw_block, rw_wait, rw_unblock, rw_check},
    {"barrier", barrier_block, barrier_wait, nothing, barrier_check},
    {"sleep", nothing, sleep_wait, nothing, nothing},
};

static _Atomic int waited;

static void *waiter(void *arg)
{
    const struct kind *k = arg;
    waited = k->wait();
    return NULL;
}

static void *cancel_each_kind(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const struct kind *k = &kinds[i];
        k->block();
        waited = 1;
        weft_co_t *t;
        WT_EQ(weft_co_spawn(&t, waiter, (void *)k, NULL), 0);
        WT_EQ(weft_co_sleep(0), 0); /* t runs, and parks */
        WT_EQ(waited, 1);
        WT_EQ(weft_co_cancel(t), 1);
        if (weft_co_join(t, WEFT_FOREVER, NULL) != -ECANCELED || waited != -ECANCELED)
            fprintf(stderr, "cancelling a %s wait: %d\n", k->name, waited);
        WT_EQ(waited, -ECANCELED);
        weft_co_free(t);
        k->unblock();
        k->check();
    }
    return NULL;
}

WT_CASE(a_cancelled_task_leaves_every_kind_of_wait_with_ecanceled)
{
    run_main(cancel_each_kind);
}

/* Races: a waiter woken and then cancelled before it runs keeps what it
 * was given (the cancellation comes at its next wait); one cancelled and
 * then "woken" was never counted, so the wake-up goes to the next. */
static int got[2], next_wait[2];

static void *lock_racer(void *arg)
{
    int i = (int)(intptr_t)arg;
    got[i] = weft_lock_acquire(&lock, WEFT_FOREVER);
    if (got[i] == 0) {
        next_wait[i] = weft_co_sleep(0);
        weft_lock_release(&lock);
    }
    return NULL;
}

static void race_lock(bool release_first)
{
    weft_co_t *t[2];
    got[0] = got[1] = next_wait[0] = next_wait[1] = 1;
    WT_EQ(weft_lock_acquire(&lock, 0), 0);
    for (int i = 0; i < 2; i++)
        WT_EQ(weft_co_spawn(&t[i], lock_racer, (void *)(intptr_t)i, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0); /* both parked, t[0] first */
    if (release_first) {
        WT_EQ(weft_lock_release(&lock), 0); /* wakes t[0] */
        WT_EQ(weft_co_cancel(t[0]), 1);
    } else {
        WT_EQ(weft_co_cancel(t[0]), 1);
        WT_EQ(weft_lock_release(&lock), 0); /* t[0] is gone: wakes t[1] */
    }
    for (int i = 0; i < 2; i++)
        weft_co_join(t[i], WEFT_FOREVER, NULL);
    if (release_first) {
        WT_EQ(got[0], 0);                /* the hand-over it was woken for */
        WT_EQ(next_wait[0], -ECANCELED); /* and then the cancellation */
    } else {
        WT_EQ(got[0], -ECANCELED);
    }
    WT_EQ(got[1], 0); /* the other waiter was not stranded */
    WT_EQ(next_wait[1], 0);
    for (int i = 0; i < 2; i++)
        weft_co_free(t[i]);
    lock_check();
}

static void *sem_racer(void *arg)
{
    int i = (int)(intptr_t)arg;
    got[i] = weft_sem_acquire(&sem, WEFT_FOREVER);
    next_wait[i] = weft_co_sleep(0);
    return NULL;
}

static void race_sem(bool release_first)
{
    weft_co_t *t[2];
    got[0] = got[1] = next_wait[0] = next_wait[1] = 1;
    WT_EQ(weft_sem_init(&sem, 0, 0), 0);
    for (int i = 0; i < 2; i++)
        WT_EQ(weft_co_spawn(&t[i], sem_racer, (void *)(intptr_t)i, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0);
    if (release_first) {
        WT_EQ(weft_sem_release(&sem, 1), 0);
        WT_EQ(weft_co_cancel(t[0]), 1);
    } else {
        WT_EQ(weft_co_cancel(t[0]), 1);
        WT_EQ(weft_sem_release(&sem, 1), 0);
    }
    WT_EQ(weft_co_join(t[0], WEFT_FOREVER, NULL), -ECANCELED);
    if (release_first) {
        WT_EQ(got[0], 0); /* it took the unit; t[1] still waits */
        WT_EQ(next_wait[0], -ECANCELED);
        WT_EQ(weft_co_sleep(0), 0);
        WT_EQ(got[1], 1);
        WT_EQ(weft_sem_release(&sem, 1), 0);
    } else {
        WT_EQ(got[0], -ECANCELED);
    }
    WT_EQ(weft_co_join(t[1], WEFT_FOREVER, NULL), 0);
    WT_EQ(got[1], 0);
    WT_EQ(weft_sem_value(&sem), 0); /* one unit each, none made or lost */
    for (int i = 0; i < 2; i++)
        weft_co_free(t[i]);
}

static void *cond_racer(void *arg)
{
    int i = (int)(intptr_t)arg;
    WT_EQ(weft_cond_acquire(&cond, WEFT_FOREVER), 0);
    got[i] = weft_cond_wait(&cond, WEFT_FOREVER);
    WT_EQ(weft_cond_release(&cond), 0);
    next_wait[i] = weft_co_sleep(0);
    return NULL;
}

/* notify(1), then the notified waiter is cancelled: it keeps the
 * notification, and the other is not released (exactly one). */
static void race_cond(void)
{
    weft_co_t *t[2];
    got[0] = got[1] = next_wait[0] = next_wait[1] = 1;
    WT_EQ(weft_cond_init(&cond, &cond_lock, 0), 0);
    for (int i = 0; i < 2; i++)
        WT_EQ(weft_co_spawn(&t[i], cond_racer, (void *)(intptr_t)i, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0);
    WT_EQ(weft_cond_acquire(&cond, 0), 0);
    WT_EQ(weft_cond_notify(&cond, 1), 1);
    WT_EQ(weft_cond_release(&cond), 0);
    WT_EQ(weft_co_cancel(t[0]), 1);
    WT_EQ(weft_co_join(t[0], WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(got[0], 0);
    WT_EQ(next_wait[0], -ECANCELED);
    WT_EQ(got[1], 1); /* still waiting */
    WT_EQ(weft_cond_acquire(&cond, 0), 0);
    WT_EQ(weft_cond_notify(&cond, 1), 1);
    WT_EQ(weft_cond_release(&cond), 0);
    WT_EQ(weft_co_join(t[1], WEFT_FOREVER, NULL), 0);
    WT_EQ(got[1], 0);
    for (int i = 0; i < 2; i++)
        weft_co_free(t[i]);
    WT_EQ(weft_cond_destroy(&cond), 0);
}

static void *races(void *arg)
{
    (void)arg;
    race_lock(true);
    race_lock(false);
    race_sem(true);
    race_sem(false);
    race_cond();
    return NULL;
}

WT_CASE(a_cancellation_racing_a_wake_up_loses_and_doubles_nothing)
{
    /* The order of events is set by running the tasks one after another
     * (test_mn.c races them across threads). */
    wt_one_loop_only();
    run_main(races);
}

/* A cancellation from another thread is counted at once and delivered by a
 * call posted to the task's loop; if the task learns of it first (a
 * timeout scope's end re-arms it), the posted call must not deliver it a
 * second time. */
static _Atomic int dd_inside, dd_cancelled;
static int dd_scope = 1, dd_first = 1, dd_second = 1;

static void *dd_task(void *arg)
{
    (void)arg;
    WEFT_TIMEOUT(60, &dd_scope)
    {
        atomic_store(&dd_inside, 1);
        while (!atomic_load(&dd_cancelled))
            ; /* no suspension point: the posted delivery must wait */
    }
    dd_first = weft_co_sleep(0.001);
    dd_second = weft_co_sleep(0.001);
    return NULL;
}

static void *dd_canceller(void *arg)
{
    while (!atomic_load(&dd_inside))
        sched_yield();
    WT_EQ(weft_co_cancel(arg), 1);
    atomic_store(&dd_cancelled, 1);
    return NULL;
}

static void *dd_main(void *arg)
{
    (void)arg;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, dd_task, NULL, NULL), 0);
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, dd_canceller, t), 0);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(pthread_join(th, NULL), 0);
    weft_co_free(t);
    return NULL;
}

WT_CASE(a_cancellation_from_another_thread_is_delivered_once)
{
    run_main(dd_main);
    WT_EQ(dd_scope, -ECANCELED);
    WT_EQ(dd_first, -ECANCELED);
    WT_EQ(dd_second, 0);
}
