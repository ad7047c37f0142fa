/*
 * Tasks and other threads (weft/async.h): to_thread, posting calls and
 * tasks into a running loop, cancelling a task from outside, and what is
 * left once the loop has ended.
 */
#include "wt.h"
#include "wt_async.h"

#include "base/park.h"

#include <weft/async.h>
#include <weft/gil.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <stdint.h>
#include <unistd.h>

static void run_main(weft_co_fn fn, void *arg)
{
    WT_EQ(weft_run(fn, arg, wt_run_opts(), NULL), 0);
}

/* to_thread: the loop runs on while the job blocks its thread. */
static wt_gate job_gate;
static _Atomic int job_ended;
static _Atomic int ticks;

static void *blocking_job(void *arg)
{
    wt_gate_wait(&job_gate);
    atomic_store(&job_ended, 1);
    return (void *)((intptr_t)arg * 2);
}

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&job_ended)) {
        if (++ticks == 5)
            wt_gate_open(&job_gate); /* the loop ran while the job waited */
        if (weft_co_sleep(0.001) != 0)
            break;
    }
    return NULL;
}

static void *to_thread_main(void *arg)
{
    (void)arg;
    job_gate = (wt_gate)WT_GATE_INIT;
    atomic_store(&job_ended, 0);
    ticks = 0;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, ticker, NULL, NULL), 0);
    void *v;
    WT_EQ(weft_co_to_thread(blocking_job, (void *)21, &v), 0);
    WT_EQ((intptr_t)v, 42);
    WT_CHECK(ticks >= 5);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);
    WT_EQ(weft_co_to_thread(NULL, NULL, NULL), -EINVAL);
    return NULL;
}

/* Cancelled while it waits: the task leaves at once, the job runs on. */
static int waiter_rc;

static void *wait_for_job(void *arg)
{
    (void)arg;
    waiter_rc = weft_co_to_thread(blocking_job, (void *)1, NULL);
    return NULL;
}

static void *to_thread_cancelled(void *arg)
{
    (void)arg;
    job_gate = (wt_gate)WT_GATE_INIT;
    atomic_store(&job_ended, 0);
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, wait_for_job, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.001), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(waiter_rc, -ECANCELED);
    WT_EQ(atomic_load(&job_ended), 0); /* still blocked on its gate */
    wt_gate_open(&job_gate);
    while (!atomic_load(&job_ended))
        WT_EQ(weft_co_sleep(0.001), 0);
    weft_co_free(t);
    return NULL;
}

WT_CASE(to_thread_keeps_the_loop_running_and_a_cancelled_wait_leaves_the_job)
{
    run_main(to_thread_main, NULL);
    run_main(to_thread_cancelled, NULL);
}

/* Posting from another thread: a call, a task, a cancellation. */
static weft_loop_t *posted_loop;
static weft_event_t call_ran = WEFT_EVENT_INIT, thread_done = WEFT_EVENT_INIT;
static weft_co_t *victim;
static int victim_rc;
static pthread_t poster_id;

static void on_loop(void *arg)
{
    WT_CHECK(pthread_equal(pthread_self(), *(pthread_t *)arg)); /* the loop's thread */
    WT_CHECK(weft_co_current() == NULL);                        /* between tasks */
    WT_EQ(weft_event_set(&call_ran), 0);
}

static void *doubled(void *arg)
{
    WT_CHECK(weft_co_current() != NULL);
    return (void *)((intptr_t)arg * 2);
}

static void *poster(void *arg)
{
    pthread_t *loop_thread = arg;
    WT_EQ(weft_loop_call_soon(posted_loop, on_loop, loop_thread), 0);
    weft_future_t *f;
    WT_EQ(weft_loop_spawn(posted_loop, &f, doubled, (void *)8), 0);
    void *v;
    WT_EQ(weft_future_result(f, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 16);
    weft_future_free(f);
    WT_EQ(weft_co_cancel(victim), 1); /* from outside the loop */
    WT_EQ(weft_event_set(&thread_done), 0);
    return NULL;
}

static void *sleep_long(void *arg)
{
    (void)arg;
    victim_rc = weft_co_sleep(60);
    return NULL;
}

static void *posting_main(void *arg)
{
    (void)arg;
    static pthread_t me;
    me = pthread_self();
    posted_loop = weft_loop_current();
    WT_CHECK(posted_loop != NULL);
    WT_EQ(weft_co_spawn(&victim, sleep_long, NULL, NULL), 0);
    WT_EQ(pthread_create(&poster_id, NULL, poster, &me), 0);
    WT_EQ(weft_event_wait(&call_ran, WEFT_FOREVER), 0);
    WT_EQ(weft_co_join(victim, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(victim_rc, -ECANCELED);
    WT_EQ(weft_event_wait(&thread_done, WEFT_FOREVER), 0);
    return NULL;
}

/* A spawn posted to a loop that ends before it gets to it is cancelled. */
static weft_future_t *late;

static void *post_and_leave(void *arg)
{
    (void)arg;
    weft_loop_t *self = weft_loop_current();
    WT_EQ(weft_loop_spawn(self, &late, doubled, (void *)1), 0);
    weft_loop_free(self);
    return NULL;
}

WT_CASE(other_threads_post_calls_tasks_and_cancellations_into_a_loop)
{
    run_main(posting_main, NULL);
    WT_EQ(pthread_join(poster_id, NULL), 0);
    /* A handle outlives the run (and the count of its birth loop's portal
     * it took when the run reaped it): the task is over, nothing to post. */
    WT_EQ(weft_co_cancel(victim), 0);
    WT_EQ(weft_co_join(victim, 0, NULL), -ECANCELED);
    weft_co_free(victim);
    /* The loop has ended: its handle says so. */
    WT_EQ(weft_loop_call_soon(posted_loop, on_loop, NULL), WEFT_ESHUTDOWN);
    weft_future_t *f;
    WT_EQ(weft_loop_spawn(posted_loop, &f, doubled, NULL), WEFT_ESHUTDOWN);
    WT_EQ(weft_loop_free(posted_loop), 0);
    WT_CHECK(weft_loop_current() == NULL);
    WT_EQ(weft_loop_call_soon(NULL, on_loop, NULL), -EINVAL);

    run_main(post_and_leave, NULL);
    /* With a second loop, main may end there, and its own loop take the
     * spawn in before it stops: the task then runs, or starts cancelled. */
    if (wt_threads() == 1)
        WT_EQ(weft_future_cancelled(late), 1);
    else
        WT_CHECK(weft_future_done(late));
    weft_future_free(late);
}

/* The GIL's task side: a task that holds the GIL lets go of it while it is
 * suspended (a thread and the loop's other tasks take it meanwhile) and has
 * it again when it resumes; a task that ends holding it lets go. */
static weft_gil_t task_gil = WEFT_GIL_INIT;
static _Atomic int thread_had_gil;
static int other_task_had_gil;

static void *gil_thread(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&task_gil), 0); /* while the task sleeps */
    atomic_store(&thread_had_gil, 1);
    WT_EQ(weft_gil_release(&task_gil), 0);
    return NULL;
}

static void *other_gil_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_held(&task_gil), 0); /* another task's hold is not ours */
    WT_EQ(weft_gil_acquire(&task_gil), 0);
    other_task_had_gil = 1;
    WT_EQ(weft_gil_release(&task_gil), 0);
    return NULL;
}

static void *ends_holding(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&task_gil), 0);
    return NULL;
}

static void *gil_holder(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&task_gil), 0);
    WT_EQ(weft_gil_ensure(&task_gil), 1); /* nested: the depth comes back too */
    weft_co_t *other;
    WT_EQ(weft_co_spawn(&other, other_gil_task, NULL, NULL), 0);
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, gil_thread, NULL), 0);
    while (!atomic_load(&thread_had_gil))
        WT_EQ(weft_co_sleep(0.001), 0); /* suspended: the GIL is let go */
    WT_EQ(pthread_join(th, NULL), 0);
    WT_EQ(weft_co_join(other, WEFT_FOREVER, NULL), 0);
    weft_co_free(other);
    WT_EQ(other_task_had_gil, 1);
    WT_EQ(weft_gil_held(&task_gil), 1);         /* and held again now */
    WT_EQ(weft_gil_release(&task_gil), -EPERM); /* still nested */
    WT_EQ(weft_gil_release_ensured(&task_gil, 1), 0);
    WT_EQ(weft_gil_release(&task_gil), 0);
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, ends_holding, NULL, NULL), 0);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);
    return NULL;
}

WT_CASE(a_task_lets_go_of_the_gil_while_it_is_suspended)
{
    atomic_store(&thread_had_gil, 0);
    other_task_had_gil = 0;
    run_main(gil_holder, NULL);
    WT_EQ(weft_gil_acquire(&task_gil), 0); /* the task that ended holding it let go */
    WT_EQ(weft_gil_release(&task_gil), 0);
}

/* A call posted to a loop runs on the loop's own stack: a join there would
 * stop the loop the joined task needs, and is refused. */
static weft_co_t *join_target;
static int posted_join_rc = 1;
static weft_event_t posted_ran = WEFT_EVENT_INIT;

static void join_from_call(void *arg)
{
    (void)arg;
    posted_join_rc = weft_co_join(join_target, WEFT_FOREVER, NULL);
    weft_event_set(&posted_ran);
}

static void *post_a_join(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_spawn(&join_target, doubled, (void *)1, NULL), 0);
    weft_loop_t *self = weft_loop_current();
    WT_EQ(weft_loop_call_soon(self, join_from_call, NULL), 0);
    WT_EQ(weft_event_wait(&posted_ran, WEFT_FOREVER), 0);
    WT_EQ(posted_join_rc, -EDEADLK);
    WT_EQ(weft_co_join(join_target, WEFT_FOREVER, NULL), 0);
    weft_co_free(join_target);
    weft_loop_free(self);
    return NULL;
}

WT_CASE(a_posted_call_may_not_join_a_task_of_its_loop)
{
    run_main(post_a_join, NULL);
}

/* fork while another thread's task is parked: the child's parking table
 * starts empty and its own loop parks and wakes tasks as usual. */
static weft_event_t fork_release = WEFT_EVENT_INIT;
static weft_lock_t child_lock = WEFT_LOCK_INIT;
static int child_count;

static void *park_on_event(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_wait(&fork_release, WEFT_FOREVER), 0);
    return NULL;
}

static void *loop_in_thread(void *arg)
{
    (void)arg;
    WT_EQ(weft_run(park_on_event, NULL, wt_run_opts(), NULL), 0);
    return NULL;
}

static bool a_task_is_parked(void *arg)
{
    (void)arg;
    return atomic_load(&weft__parked_tasks) > 0;
}

static void *child_locker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        if (weft_lock_acquire(&child_lock, WEFT_FOREVER) != 0)
            return weft_co_fail(-EIO);
        int c = child_count;
        weft_co_sleep(0);
        child_count = c + 1;
        weft_lock_release(&child_lock);
    }
    return NULL;
}

static void *child_main(void *arg)
{
    (void)arg;
    weft_co_t *t[3];
    for (int i = 0; i < 3; i++)
        if (weft_co_spawn(&t[i], child_locker, NULL, NULL) != 0)
            return weft_co_fail(-EIO);
    for (int i = 0; i < 3; i++)
        if (weft_co_join(t[i], WEFT_FOREVER, NULL) != 0)
            return weft_co_fail(-EIO);
    return NULL;
}

/* Ends with _exit: the parent's loop thread is not in the child, and a
 * leak checker at exit would take what it holds for leaks. */
static int forked_child(void *arg)
{
    (void)arg;
    if (atomic_load(&weft__parked_tasks) != 0)
        weft__exit_now(2);
    if (weft_run(child_main, NULL, wt_run_opts(), NULL) != 0 || child_count != 300)
        weft__exit_now(3);
    weft__exit_now(0);
}

WT_CASE(a_child_forked_beside_a_parked_task_starts_with_an_empty_table)
{
    wt_skip_forks_under_tsan_mn();
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, loop_in_thread, NULL), 0);
    wt_wait_until(a_task_is_parked, NULL, 10);
    WT_EQ(wt_fork(forked_child, NULL, 30 * wt_slack()), 0);
    WT_EQ(weft_event_set(&fork_release), 0);
    WT_EQ(pthread_join(th, NULL), 0);
}

/* A primitive shared with another process (WEFT_SHARED): a task waiting on
 * it leaves its loop running, a set from the other process wakes it, and
 * its own timeout and a cancellation end its wait as for any other. */
static weft_event_t *shared_event;
static _Atomic int shared_ticks;

/* Forked by the harness from inside a task, so it waits without weft (a
 * weft wait there would be the task's; weft's own processes leave the loop
 * behind, see test_async's fork case). */
static int set_after_a_while(void *arg)
{
    (void)arg;
    usleep(20000);
    weft_event_set(shared_event);
    weft__exit_now(0);
}

static void *shared_ticker(void *arg)
{
    (void)arg;
    while (!weft_event_is_set(shared_event)) {
        shared_ticks++;
        if (weft_co_sleep(0.001) != 0)
            break;
    }
    return NULL;
}

static int shared_wait_rc = 9;

static void *wait_shared(void *arg)
{
    shared_wait_rc = weft_event_wait(shared_event, arg ? *(double *)arg : WEFT_FOREVER);
    return NULL;
}

static void *shared_main(void *arg)
{
    (void)arg;
    weft_co_t *tick, *t;
    /* Its own timeout. */
    double brief = 0.01;
    WT_EQ(weft_co_spawn(&t, wait_shared, &brief, NULL), 0);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);
    WT_EQ(shared_wait_rc, -ETIMEDOUT);
    /* Cancelled. */
    WT_EQ(weft_co_spawn(&t, wait_shared, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.005), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    weft_co_free(t);
    WT_EQ(shared_wait_rc, -ECANCELED);
    /* Set by another process, while the loop runs on. */
    WT_EQ(weft_co_spawn(&tick, shared_ticker, NULL, NULL), 0);
    WT_EQ(weft_co_spawn(&t, wait_shared, NULL, NULL), 0);
    pid_t child = wt_spawn(set_after_a_while, NULL);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(shared_wait_rc, 0);
    WT_CHECK(shared_ticks > 0); /* the loop was not blocked meanwhile */
    WT_EQ(weft_co_join(tick, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);
    weft_co_free(tick);
    WT_EQ(wt_reap(child, 30), 0);
    return NULL;
}

WT_CASE(a_task_waits_on_a_shared_primitive_without_blocking_its_loop)
{
    shared_event = wt_shared_map(sizeof *shared_event);
    WT_EQ(weft_event_init(shared_event, WEFT_SHARED), 0);
    run_main(shared_main, NULL);
}

/* A task that holds the GIL resumes while a thread holds it: the task waits
 * for its turn (a park of the task) and must not let go of the thread's
 * hold meanwhile, nor take the GIL from under it. */
static weft_gil_t resume_gil = WEFT_GIL_INIT;
static _Atomic int resume_thread_has;
static _Atomic int resume_thread_held, resume_thread_release;

static void *resume_gil_thread(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&resume_gil), 0);
    atomic_store(&resume_thread_has, 1);
    weft_sleep(0.1); /* the task's sleep ends meanwhile: it waits for its turn */
    atomic_store(&resume_thread_held, weft_gil_held(&resume_gil));
    atomic_store(&resume_thread_release, weft_gil_release(&resume_gil));
    return NULL;
}

static void *resume_gil_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&resume_gil), 0);
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, resume_gil_thread, NULL), 0);
    while (!atomic_load(&resume_thread_has))
        WT_EQ(weft_co_sleep(0.001), 0);
    /* Resumed: the thread has let go by now, and the GIL is the task's. */
    WT_EQ(weft_gil_held(&resume_gil), 1);
    WT_EQ(pthread_join(th, NULL), 0);
    WT_EQ(weft_gil_release(&resume_gil), 0);
    return NULL;
}

WT_CASE(a_task_resuming_behind_a_thread_waits_for_the_gil)
{
    run_main(resume_gil_task, NULL);
    WT_EQ(atomic_load(&resume_thread_held), 1);
    WT_EQ(atomic_load(&resume_thread_release), 0);
}

/* A task that yields the GIL to a waiting thread (weft_gil_yield, what
 * weft_gil_check does on request) waits for its turn as a task: the GIL is
 * the thread's meanwhile, and the task's suspension must not let go of it. */
static weft_gil_t yield_gil = WEFT_GIL_INIT;
static _Atomic int yield_thread_held, yield_thread_release;

static void *yield_gil_thread(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&yield_gil), 0); /* queued behind the task */
    weft_sleep(0.05);                       /* the task parks for its turn meanwhile */
    atomic_store(&yield_thread_held, weft_gil_held(&yield_gil));
    atomic_store(&yield_thread_release, weft_gil_release(&yield_gil));
    return NULL;
}

static void *yield_gil_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&yield_gil), 0);
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, yield_gil_thread, NULL), 0);
    int rc;
    while ((rc = weft_gil_yield(&yield_gil)) == 0)
        ; /* until the thread queues */
    WT_EQ(rc, 1);
    WT_EQ(weft_gil_held(&yield_gil), 1);
    WT_EQ(weft_gil_release(&yield_gil), 0);
    WT_EQ(pthread_join(th, NULL), 0);
    return NULL;
}

WT_CASE(a_task_that_yields_the_gil_leaves_it_to_the_thread)
{
    run_main(yield_gil_task, NULL);
    WT_EQ(atomic_load(&yield_thread_held), 1);
    WT_EQ(atomic_load(&yield_thread_release), 0);
}

/* A GIL-holding task whose park (with a deadline) is ended by a thread that
 * then keeps the GIL: the task takes the GIL back behind the thread, which
 * parks it again, and that park must not meet the first one's timer or
 * waiter still in place. */
static weft_gil_t again_gil = WEFT_GIL_INIT;
static weft_event_t again_event = WEFT_EVENT_INIT;
static _Atomic int again_release = 1;

static void *again_thread(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&again_gil), 0); /* the task let go: it is parked */
    WT_EQ(weft_event_set(&again_event), 0);
    weft_sleep(0.05); /* the task wakes and waits for its turn meanwhile */
    atomic_store(&again_release, weft_gil_release(&again_gil));
    return NULL;
}

static void *again_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_gil_acquire(&again_gil), 0);
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, again_thread, NULL), 0);
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_event_wait(&again_event, 10.0), 0);
        WT_EQ(weft_gil_held(&again_gil), 1);
        WT_EQ(weft_co_sleep(0.001), 0); /* the timer heap still works */
    }
    WT_EQ(pthread_join(th, NULL), 0);
    WT_EQ(weft_gil_release(&again_gil), 0);
    return NULL;
}

WT_CASE(a_task_waiting_for_the_gil_after_a_park_parks_afresh)
{
    run_main(again_task, NULL);
    WT_EQ(atomic_load(&again_release), 0);
}
