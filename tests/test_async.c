/*
 * The event loop and its tasks (weft/async.h): order, timers, joins,
 * cancellation, and tasks sharing weft's primitives with threads.
 */
#include "wt.h"
#include "wt_async.h"

#include "async/stack.h"
#include "base/base.h"
#include "base/park.h"

#include <weft/async.h>
#include <weft/future.h>
#include <weft/process.h>
#include <weft/queue.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <fenv.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void *run_main(weft_co_fn fn, void *arg)
{
    void *result = NULL;
    WT_EQ(weft_run(fn, arg, wt_run_opts(), &result), 0);
    return result;
}

/* Spawn a and b, join both (each must end with its value), free both. */
static void spawn_and_join_both(weft_co_fn a, weft_co_fn b)
{
    weft_co_t *t[2];
    WT_EQ(weft_co_spawn(&t[0], a, NULL, NULL), 0);
    WT_EQ(weft_co_spawn(&t[1], b, NULL, NULL), 0);
    for (int i = 0; i < 2; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
}

/* weft_run */

static void *answer(void *arg)
{
    (void)arg;
    WT_CHECK(weft_co_current() != NULL);
    WT_CHECK(strcmp(weft_co_name(weft_co_current()), "main") == 0);
    return (void *)42;
}

static void *nested_run(void *arg)
{
    (void)arg;
    WT_EQ(weft_run(answer, NULL, wt_run_opts(), NULL), -EPERM);
    return NULL;
}

static void *failing(void *arg)
{
    return weft_co_fail((int)(intptr_t)arg);
}

WT_CASE(run_returns_what_main_returns_or_its_error)
{
    WT_EQ((intptr_t)run_main(answer, NULL), 42);
    run_main(nested_run, NULL);
    WT_EQ(weft_run(failing, (void *)(intptr_t)-EIO, NULL, NULL), -EIO);
    WT_EQ(weft_run(NULL, NULL, NULL, NULL), -EINVAL);
    WT_CHECK(weft_co_current() == NULL);
    /* Outside a loop. */
    WT_EQ(weft_co_spawn(NULL, answer, NULL, NULL), -EPERM);
    WT_EQ(weft_co_all(NULL, 0), -EPERM);
    WT_CHECK(weft_co_fail(-EIO) == NULL);
}

/* Order: FIFO among ready tasks, each yield putting the task at the back. */
static char order[64];
static size_t order_len;

static void *note_twice(void *arg)
{
    order[order_len++] = (char)(intptr_t)arg;
    WT_EQ(weft_co_sleep(0), 0);
    order[order_len++] = (char)(intptr_t)arg;
    return NULL;
}

static void *spawn_abc(void *arg)
{
    (void)arg;
    weft_co_t *t[3];
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_co_spawn(&t[i], note_twice, (void *)(intptr_t)('a' + i), NULL), 0);
    order[order_len++] = '-';
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(ready_tasks_run_in_the_order_they_became_ready)
{
    wt_one_loop_only(); /* FIFO is one loop's order */
    order_len = 0;
    run_main(spawn_abc, NULL);
    order[order_len] = '\0';
    WT_CHECK(strcmp(order, "-abcabc") == 0);
}

/* Tasks that only yield to each other: each keeps its registers and its
 * rounding mode across every yield, and the loop still looks at its
 * timers between rounds, so a sleeper wakes while they spin. */
static atomic_int woke;

static void *yield_until_woken(void *arg)
{
    int mode = (int)(intptr_t)arg;
    fesetround(mode);
    uint64_t x0 = (uint64_t)mode + 1, x1 = x0 * 3 + 1, x2 = x1 * 3 + 1, x3 = x2 * 3 + 1;
    for (long i = 0; !atomic_load(&woke); i++) {
        WT_CHECK(i < 100000000); /* a loop that never fires its timer */
        WT_EQ(weft_co_sleep(0), 0);
        WT_EQ(fegetround(), mode);
        WT_CHECK(x1 == x0 * 3 + 1 && x2 == x1 * 3 + 1 && x3 == x2 * 3 + 1);
        x0 = x3 + (uint64_t)i, x1 = x0 * 3 + 1, x2 = x1 * 3 + 1, x3 = x2 * 3 + 1;
    }
    fesetround(FE_TONEAREST);
    return NULL;
}

static void *wake_later(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.001), 0);
    atomic_store(&woke, 1);
    return NULL;
}

static void *yielders_and_a_sleeper(void *arg)
{
    (void)arg;
    weft_co_t *t[3];
    WT_EQ(weft_co_spawn(&t[0], yield_until_woken, (void *)(intptr_t)FE_UPWARD, NULL), 0);
    WT_EQ(weft_co_spawn(&t[1], yield_until_woken, (void *)(intptr_t)FE_DOWNWARD, NULL), 0);
    WT_EQ(weft_co_spawn(&t[2], wake_later, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(yielding_tasks_keep_their_registers_and_rounding_and_let_timers_in)
{
    atomic_store(&woke, 0);
    run_main(yielders_and_a_sleeper, NULL);
}

/* The stacks of a wave of tasks that ended serve the next wave, however
 * many there were: the second wave maps no stack. */
enum { WAVE = 3000 };
static atomic_int stack_maps;

static void *counting_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    atomic_fetch_add(&stack_maps, 1);
    return mmap(addr, len, prot, flags, fd, offset);
}

static void *yield_once(void *arg)
{
    WT_EQ(weft_co_sleep(0), 0);
    return arg;
}

/* WAVE tasks alive at once, then all joined. */
static void wave(void)
{
    static weft_co_t *t[WAVE];
    for (int i = 0; i < WAVE; i++)
        WT_EQ(weft_co_spawn(&t[i], yield_once, NULL, NULL), 0);
    for (int i = 0; i < WAVE; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
}

static void *two_waves(void *arg)
{
    (void)arg;
    wave();
    atomic_store(&stack_maps, 0);
    weft__sys.mmap = counting_mmap;
    wave();
    weft__sys_reset();
    WT_EQ(atomic_load(&stack_maps), 0);
    return NULL;
}

WT_CASE(a_wave_of_tasks_reuses_the_stacks_of_the_wave_before)
{
    wt_one_loop_only(); /* each loop keeps the stacks of the tasks that ended on it */
    run_main(two_waves, NULL);
}

/* Joins. */

static void *plus_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

static void *self_join(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_join(weft_co_current(), WEFT_FOREVER, NULL), -EDEADLK);
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, plus_one, (void *)1, &(weft_co_opts_t){.name = "adder"}), 0);
    WT_CHECK(strcmp(weft_co_name(t), "adder") == 0);
    if (wt_threads() == 1) /* not run yet (another loop may have run it) */
        WT_EQ(weft_co_join(t, 0, NULL), -EAGAIN);
    void *v;
    WT_EQ(weft_co_join(t, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 2);
    WT_EQ(weft_future_done(weft_co_future(t)), 1);
    weft_co_free(t);
    WT_EQ(weft_co_spawn(&t, failing, (void *)(intptr_t)-ENOSPC, NULL), 0);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ENOSPC);
    WT_EQ(weft_co_join(t, NAN, NULL), -EINVAL);
    weft_co_free(t);
    WT_EQ(weft_co_join(NULL, WEFT_FOREVER, NULL), -EINVAL);
    WT_EQ(weft_co_spawn(&t, NULL, NULL, NULL), -EINVAL);
    return NULL;
}

WT_CASE(join_gives_the_value_or_the_error_and_refuses_the_task_itself)
{
    run_main(self_join, NULL);
}

/* A loop keeps the memory of tasks it reaps when nobody holds them any
 * more, for the next spawns: a program that spawns and joins again and
 * again allocates next to nothing after the first. A task whose handle is
 * still held is never reused meanwhile. */
static atomic_int mallocs;

static void *counting_malloc(size_t size)
{
    atomic_fetch_add(&mallocs, 1);
    return malloc(size);
}

static void *spawn_join_many(void *arg)
{
    (void)arg;
    weft_co_t *kept, *t;
    WT_EQ(weft_co_spawn(&kept, plus_one, (void *)4, NULL), 0);
    WT_EQ(weft_co_join(kept, WEFT_FOREVER, NULL), 0);
    for (int i = 0; i < 100; i++) { /* kept's end is reaped meanwhile */
        WT_EQ(weft_co_spawn(&t, plus_one, (void *)(intptr_t)i, NULL), 0);
        WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
        weft_co_free(t);
    }
    atomic_store(&mallocs, 0);
    weft__sys.malloc = counting_malloc;
    for (int i = 0; i < 1000; i++) {
        void *v;
        WT_EQ(weft_co_spawn(&t, plus_one, (void *)(intptr_t)i, NULL), 0);
        WT_EQ(weft_co_join(t, WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, i + 1);
        weft_co_free(t);
    }
    weft__sys_reset();
    /* Under a sanitizer every task's memory is freed, for it to find
     * misuse. Otherwise a task reaped while its handle is held is freed by
     * the handle's holder: once a scheduler round (64 task runs, two a
     * spawn and join), the round's end finds the task ended before its
     * joiner freed the handle. */
    if (!wt_sanitizer())
        WT_CHECK(atomic_load(&mallocs) < 100);
    void *v;
    WT_EQ(weft_co_join(kept, 0, &v), 0);
    WT_EQ((intptr_t)v, 5);
    WT_EQ(weft_future_done(weft_co_future(kept)), 1);
    weft_co_free(kept);
    return NULL;
}

WT_CASE(spawning_and_joining_again_and_again_reuses_the_tasks_memory)
{
    wt_one_loop_only();
    run_main(spawn_join_many, NULL);
}

/* A join of a task of the same loop is woken by that task's end, not
 * through the future: the wake-up must reach the joiner only while it
 * still waits there, and every other waiter must still get the value. */
static weft_event_t gate;

static void *held_at_gate(void *arg)
{
    WT_EQ(weft_event_wait(&gate, WEFT_FOREVER), 0);
    return arg;
}

static void *open_gate(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_set(&gate), 0);
    return NULL;
}

static void *join_held(void *arg)
{
    void *v = NULL;
    WT_EQ(weft_co_join(arg, WEFT_FOREVER, &v), 0);
    return v;
}

static void *joins_time_out_and_share(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_init(&gate, 0), 0);
    weft_co_t *held, *opener, *joiners[3];
    WT_EQ(weft_co_spawn(&held, held_at_gate, (void *)7, NULL), 0);
    WT_EQ(weft_co_join(held, 0.01, NULL), -ETIMEDOUT);
    /* held ends while this task sleeps: the sleep runs its full length. */
    WT_EQ(weft_co_spawn(&opener, open_gate, NULL, NULL), 0);
    double t0 = wt_now();
    WT_EQ(weft_co_sleep(0.05), 0);
    WT_CHECK(wt_now() - t0 >= 0.05);
    void *v = NULL;
    WT_EQ(weft_co_join(held, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 7);
    weft_co_free(held);
    weft_co_free(opener);
    /* Three tasks wait for one, and so does this one. */
    WT_EQ(weft_event_clear(&gate), 0);
    WT_EQ(weft_co_spawn(&held, held_at_gate, (void *)8, NULL), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_co_spawn(&joiners[i], join_held, held, NULL), 0);
    WT_EQ(weft_co_spawn(&opener, open_gate, NULL, NULL), 0);
    WT_EQ(weft_co_join(held, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 8);
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_co_join(joiners[i], WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, 8);
        weft_co_free(joiners[i]);
    }
    weft_co_free(held);
    weft_co_free(opener);
    WT_EQ(weft_event_destroy(&gate), 0);
    return NULL;
}

WT_CASE(a_join_that_timed_out_is_not_woken_later_and_every_joiner_gets_the_value)
{
    run_main(joins_time_out_and_share, NULL);
}

/* A task's done callbacks run after its waiters are released: one may wait
 * for what the joiner does once its join returns (a joiner of the same
 * loop, woken by the task's end, is released before them too). */
static weft_event_t joined, called;
static int callback_rc = 1;

static void wait_for_the_joiner(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    callback_rc = weft_event_wait(&joined, 10.0);
    weft_event_set(&called);
}

static void *callback_waits_for_joiner(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_init(&joined, 0), 0);
    WT_EQ(weft_event_init(&called, 0), 0);
    WT_EQ(weft_event_init(&gate, 0), 0);
    /* Held until the callback is added: a callback added once the task has
     * ended (it may, at once, on another loop in M:N mode) runs in the
     * caller. */
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, held_at_gate, (void *)7, NULL), 0);
    WT_EQ(weft_future_add_done_callback(weft_co_future(t), wait_for_the_joiner, NULL), 0);
    WT_EQ(weft_event_set(&gate), 0);
    void *v;
    WT_EQ(weft_co_join(t, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 7);
    WT_EQ(weft_event_set(&joined), 0);
    WT_EQ(weft_event_wait(&called, WEFT_FOREVER), 0);
    WT_EQ(callback_rc, 0);
    weft_co_free(t);
    WT_EQ(weft_event_destroy(&joined), 0);
    WT_EQ(weft_event_destroy(&called), 0);
    WT_EQ(weft_event_destroy(&gate), 0);
    return NULL;
}

WT_CASE(a_done_callback_may_wait_for_what_the_joiner_does_next)
{
    run_main(callback_waits_for_joiner, NULL);
}

/* Unparks look among tasks only while some task is counted as parked
 * (base/park.h); a loop of its own holds one count while any of its tasks
 * is parked. Parks that end by a wake-up, a timeout and a cancellation
 * all give their counts back. */
struct rally {
    weft_queue_t *there, *back;
};

static void *bounce(void *arg)
{
    struct rally *r = arg;
    for (int i = 0; i < 1000; i++) {
        long v;
        WT_EQ(weft_queue_get(r->there, &v, WEFT_FOREVER), 0);
        WT_EQ(weft_queue_put(r->back, &v, WEFT_FOREVER), 0);
    }
    return NULL;
}

static void *wait_gate(void *arg)
{
    return (void *)(intptr_t)weft_event_wait(&gate, *(double *)arg);
}

static void *parks_of_every_ending(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_init(&gate, 0), 0);
    struct rally r;
    WT_EQ(weft_queue_new(&r.there, sizeof(long), 1), 0);
    WT_EQ(weft_queue_new(&r.back, sizeof(long), 1), 0);
    double brief = 0.01, forever = WEFT_FOREVER;
    weft_co_t *ball, *timed, *cancelled;
    WT_EQ(weft_co_spawn(&ball, bounce, &r, NULL), 0);
    WT_EQ(weft_co_spawn(&timed, wait_gate, &brief, NULL), 0);
    WT_EQ(weft_co_spawn(&cancelled, wait_gate, &forever, NULL), 0);
    for (long i = 0; i < 1000; i++) {
        long v;
        WT_EQ(weft_queue_put(r.there, &i, WEFT_FOREVER), 0);
        WT_EQ(weft_queue_get(r.back, &v, WEFT_FOREVER), 0);
        WT_EQ(v, i);
    }
    WT_CHECK(atomic_load(&weft__parked_tasks) > 0); /* cancelled waits still */
    WT_EQ(weft_co_join(ball, WEFT_FOREVER, NULL), 0);
    void *v;
    WT_EQ(weft_co_join(timed, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, -ETIMEDOUT);
    WT_EQ(weft_co_cancel(cancelled), 1);
    WT_EQ(weft_co_join(cancelled, WEFT_FOREVER, NULL), -ECANCELED);
    weft_co_free(ball);
    weft_co_free(timed);
    weft_co_free(cancelled);
    weft_queue_free(r.there);
    weft_queue_free(r.back);
    WT_EQ(weft_event_destroy(&gate), 0);
    return NULL;
}

WT_CASE(parked_tasks_are_counted_until_their_parks_end_however_they_end)
{
    run_main(parks_of_every_ending, NULL);
    WT_EQ(atomic_load(&weft__parked_tasks), 0);
}

/* Timers: never early, and in deadline order. */
static double woke_at[4];
static int woke_order[4];
static _Atomic int woke_count;

static void *sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    double start = weft_monotonic(), seconds = 0.01 * (4 - i);
    WT_EQ(weft_co_sleep(seconds), 0);
    woke_at[i] = weft_monotonic() - start;
    WT_CHECK(woke_at[i] >= seconds);
    woke_order[atomic_fetch_add(&woke_count, 1)] = i;
    return NULL;
}

static void *sleepers(void *arg)
{
    (void)arg;
    weft_co_t *t[4];
    for (int i = 0; i < 4; i++)
        WT_EQ(weft_co_spawn(&t[i], sleeper, (void *)(intptr_t)i, NULL), 0);
    for (int i = 0; i < 4; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(sleeps_are_never_short_and_end_in_deadline_order)
{
    woke_count = 0;
    double start = wt_now();
    run_main(sleepers, NULL);
    WT_EQ(woke_count, 4);
    /* On one loop, in the order of their deadlines; on two, each loop fires
     * its own timers in order, but the loops are not ordered. */
    for (int i = 0; i < 4 && wt_threads() == 1; i++)
        WT_EQ(woke_order[i], 3 - i);
    /* The four sleeps overlapped: the longest, not their sum. */
    WT_CHECK(wt_now() - start < 0.1 * wt_slack());
    WT_EQ(weft_co_sleep(-1), -EINVAL);
    WT_EQ(weft_co_sleep(NAN), -EINVAL);
}

/* Cancellation. */

static void *sleep_long(void *arg)
{
    int *rc = arg;
    *rc = weft_co_sleep(60);
    return (void *)7;
}

static void *cancel_sleeper(void *arg)
{
    (void)arg;
    int rc = 1;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, sleep_long, &rc, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0); /* t is asleep now */
    WT_EQ(weft_co_cancelling(t), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_cancelling(t), 1);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(rc, -ECANCELED);
    WT_EQ(weft_future_cancelled(weft_co_future(t)), 1);
    WT_EQ(weft_co_cancel(t), 0); /* done */
    weft_co_free(t);
    return NULL;
}

WT_CASE(a_cancelled_sleep_returns_ecanceled_and_the_task_ends_cancelled)
{
    double start = wt_now();
    run_main(cancel_sleeper, NULL);
    WT_CHECK(wt_now() - start < 10);
}

/* A task that withdraws the cancellation goes on and ends with its value. */
static void *swallow(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(60), -ECANCELED);
    WT_EQ(weft_co_uncancel(weft_co_current()), 0);
    WT_EQ(weft_co_uncancel(weft_co_current()), -EPERM);
    WT_EQ(weft_co_sleep(0.001), 0); /* not cancelled again */
    return (void *)9;
}

/* A task cancelled before it first runs learns it at its first wait. */
static void *first_wait(void *arg)
{
    int *seen = arg;
    *seen = weft_co_sleep(0);
    *seen = *seen * 10 + weft_co_sleep(0.001);
    return NULL;
}

static void *cancel_variants(void *arg)
{
    (void)arg;
    weft_co_t *t;
    void *v;
    WT_EQ(weft_co_spawn(&t, swallow, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 9);
    weft_co_free(t);
    WT_EQ(weft_co_cancel(NULL), -EINVAL);
    /* On one loop a new task runs only once its spawner waits; another
     * loop may run it at once. */
    if (wt_threads() > 1)
        return NULL;

    int seen = 1;
    WT_EQ(weft_co_spawn(&t, first_wait, &seen, NULL), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_cancel(t), 1); /* twice: two requests, one delivery */
    WT_EQ(weft_co_cancelling(t), 2);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(seen, -ECANCELED * 10);
    weft_co_free(t);
    return NULL;
}

WT_CASE(cancellation_is_delivered_once_and_can_be_withdrawn)
{
    run_main(cancel_variants, NULL);
}

/* At its end, weft_run cancels what is left and waits for it. */
static _Atomic int leftovers_ended;

static void *leftover(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(60), -ECANCELED);
    leftovers_ended++;
    return NULL;
}

static void *leave_some(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        WT_EQ(weft_co_spawn(NULL, leftover, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0);
    weft_co_t *all[8];
    WT_EQ(weft_co_all(all, 8), 6);
    WT_EQ(weft_co_all(all, 2), 6);
    return NULL;
}

/* weft_co_all lists a task until it ends, not until its loop has put its
 * stack away: an ending task goes straight to the task that joins it. */
static void *list_around_an_end(void *arg)
{
    (void)arg;
    weft_co_t *t, *all[4];
    WT_EQ(weft_co_spawn(&t, plus_one, NULL, NULL), 0);
    if (wt_threads() == 1) /* not run yet (another loop may have run it) */
        WT_EQ(weft_co_all(all, 4), 2);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_co_all(all, 4), 1);
    WT_CHECK(all[0] == weft_co_current());
    weft_co_free(t);
    return NULL;
}

WT_CASE(an_ended_task_is_no_longer_listed)
{
    run_main(list_around_an_end, NULL);
}

WT_CASE(run_cancels_the_tasks_main_leaves_behind)
{
    leftovers_ended = 0;
    double start = wt_now();
    run_main(leave_some, NULL);
    WT_EQ(leftovers_ended, 5);
    WT_CHECK(wt_now() - start < 10);
}

/* Many tasks, their stacks reused. TSan counts each task's fiber against
 * its limit of 8128 threads. */
enum { MANY = 10000 };

static int how_many(void)
{
    return wt_sanitizer() == 't' ? 2000 : MANY;
}

static void *nap(void *arg)
{
    WT_EQ(weft_co_sleep(0.001), 0);
    return arg;
}

static void *many(void *arg)
{
    (void)arg;
    static weft_co_t *t[MANY];
    for (int round = 0; round < 3; round++) {
        for (intptr_t i = 0; i < how_many(); i++)
            WT_EQ(weft_co_spawn(&t[i], nap, (void *)i, NULL), 0);
        for (intptr_t i = 0; i < how_many(); i++) {
            void *v;
            WT_EQ(weft_co_join(t[i], WEFT_FOREVER, &v), 0);
            WT_EQ((intptr_t)v, i);
            weft_co_free(t[i]);
        }
    }
    return NULL;
}

WT_CASE(thousands_of_tasks_sleep_at_once_three_times)
{
    run_main(many, NULL);
}

/* Tasks and threads sharing a Lock and an Event. */
static weft_lock_t shared_lock = WEFT_LOCK_INIT;
static weft_event_t go = WEFT_EVENT_INIT;
static long counter;

static void *locker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        WT_EQ(weft_lock_acquire(&shared_lock, WEFT_FOREVER), 0);
        long c = counter;
        if (i % 7 == 0)
            WT_EQ(weft_co_sleep(0), 0); /* suspended while holding it */
        counter = c + 1;
        WT_EQ(weft_lock_release(&shared_lock), 0);
    }
    return NULL;
}

static void *thread_locker(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_set(&go), 0);
    for (int i = 0; i < 1000; i++) {
        WT_EQ(weft_lock_acquire(&shared_lock, WEFT_FOREVER), 0);
        counter++;
        WT_EQ(weft_lock_release(&shared_lock), 0);
    }
    return NULL;
}

static void *lock_sharers(void *arg)
{
    (void)arg;
    weft_co_t *t[4];
    for (int i = 0; i < 4; i++)
        WT_EQ(weft_co_spawn(&t[i], locker, NULL, NULL), 0);
    weft_thread_t *th;
    WT_EQ(weft_thread_start_new(&th, thread_locker, NULL, NULL), 0);
    WT_EQ(weft_event_wait(&go, WEFT_FOREVER), 0); /* set by the thread: a remote wake-up */
    for (int i = 0; i < 4; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    WT_EQ(weft_thread_join(th, WEFT_FOREVER, NULL), 0);
    weft_thread_free(th);
    return NULL;
}

WT_CASE(tasks_and_a_thread_share_a_lock_without_losing_an_update)
{
    counter = 0;
    run_main(lock_sharers, NULL);
    WT_EQ(counter, 5000);
}

/* RWLock reads are counted per task: behind a waiting writer, the task
 * that holds a read may read again, and another task of the same thread,
 * which holds none, waits for the writer like anybody else. */
static weft_rwlock_t reads_rw = WEFT_RWLOCK_INIT;
static void *reads_write(void *arg)
{
    WT_EQ(weft_rwlock_acquire_write(&reads_rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_release_write(&reads_rw), 0);
    return arg;
}

static void *read_without_holding(void *arg)
{
    (void)arg;
    WT_EQ(weft_rwlock_acquire_read(&reads_rw, 0.05), -ETIMEDOUT);
    return NULL;
}

static void *reads_per_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_rwlock_acquire_read(&reads_rw, WEFT_FOREVER), 0);
    weft_thread_t *w;
    WT_EQ(weft_thread_new(&w, reads_write, NULL, NULL), 0);
    WT_EQ(weft_thread_start(w), 0);
    wt_await_waiting_writer(&reads_rw);
    weft_co_t *other;
    WT_EQ(weft_co_spawn(&other, read_without_holding, NULL, NULL), 0);
    WT_EQ(weft_co_join(other, WEFT_FOREVER, NULL), 0);
    weft_co_free(other);
    WT_EQ(weft_rwlock_acquire_read(&reads_rw, 0), 0); /* past the writer: it holds one */
    WT_EQ(weft_rwlock_release_read(&reads_rw), 0);
    WT_EQ(weft_rwlock_release_read(&reads_rw), 0);
    WT_EQ(weft_thread_join(w, WEFT_FOREVER, NULL), 0);
    weft_thread_free(w);
    return NULL;
}

WT_CASE(rwlock_reads_are_counted_per_task)
{
    run_main(reads_per_task, NULL);
    WT_EQ(reads_rw.state, 0);
}

/* A thread joins a task's future while the loop runs in another. */
static weft_future_t *published;
static wt_gate published_gate = WT_GATE_INIT, read_gate = WT_GATE_INIT;

static void *publish_then_sleep(void *arg)
{
    (void)arg;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, nap, (void *)5, NULL), 0);
    published = weft_co_future(t);
    wt_gate_open(&published_gate);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    wt_gate_wait(&read_gate); /* the thread is done with the future */
    weft_co_free(t);
    return NULL;
}

static void *loop_thread(void *arg)
{
    return run_main(publish_then_sleep, arg);
}

WT_CASE(a_thread_waits_for_a_task_of_another_threads_loop)
{
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, loop_thread, NULL), 0);
    wt_gate_wait(&published_gate);
    void *v;
    WT_EQ(weft_future_result(published, WEFT_FOREVER, &v), 0);
    WT_EQ((intptr_t)v, 5);
    wt_gate_open(&read_gate);
    WT_EQ(pthread_join(th, NULL), 0);
}

/* A task that overflows its stack is named on stderr, and the process
 * aborts (in a child, whose stderr goes to a file). */
static volatile int depth_limit = 1 << 30; /* never reached: the stack ends first */

static int deep(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return n >= depth_limit ? 0 : deep(n + 1) + pad[0];
}

static void *overflow(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)deep(0);
}

static void *spawn_overflow(void *arg)
{
    (void)arg;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, overflow, NULL, &(weft_co_opts_t){.name = "bottomless"}), 0);
    weft_co_join(t, WEFT_FOREVER, NULL);
    return NULL;
}

static int overflow_child(void *arg)
{
    int fd = *(int *)arg;
    dup2(fd, STDERR_FILENO);
    weft_run(spawn_overflow, NULL, wt_run_opts(), NULL);
    return 0;
}

WT_CASE(a_stack_overflow_names_the_task_and_aborts)
{
    char path[] = "/tmp/weft-overflow-XXXXXX";
    int fd = mkstemp(path);
    WT_CHECK(fd >= 0);
    unlink(path);
    int status = wt_fork(overflow_child, &fd, 30 * wt_slack());
    char text[4096] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    WT_CHECK(WIFSIGNALED(status));
    if (wt_sanitizer() == 'a') { /* ASan's own report comes first */
        WT_CHECK(strstr(text, "stack-overflow") || strstr(text, "bottomless"));
        return;
    }
    WT_EQ(WTERMSIG(status), SIGABRT);
    if (!strstr(text, "task 'bottomless' overflowed its stack of 65536 bytes"))
        fprintf(stderr, "stderr was: %s\n", text);
    WT_CHECK(strstr(text, "task 'bottomless' overflowed its stack of 65536 bytes") != NULL);
}

/* Out of memory: a spawn fails cleanly, and what was spawned before still
 * sleeps with a timeout (its place in the timer heap was reserved). */
static void *spawn_without_memory(void *arg)
{
    (void)arg;
    weft_co_t *t[200];
    weft__sys.malloc = wt_no_malloc;
    WT_EQ(weft_co_spawn(&t[0], nap, NULL, NULL), -ENOMEM);
    weft__sys_reset();
    weft__sys.realloc = wt_no_realloc; /* the timer heap cannot grow */
    int n = 0, rc;
    while (n < 200 && (rc = weft_co_spawn(&t[n], nap, (void *)(intptr_t)n, NULL)) == 0)
        n++;
    WT_EQ(rc, -ENOMEM);
    int to_rc = 1;
    WEFT_TIMEOUT(10, &to_rc)
    {
        WT_CHECK(0); /* no place for the scope's timer either */
    }
    WT_EQ(to_rc, -ENOMEM);
    weft__sys_reset();
    for (int i = 0; i < n; i++) {
        void *v;
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, i);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_FAULT(a_spawn_without_memory_fails_and_the_others_still_time_out)
{
    /* The failures injected are the process's: the other loop's would fail too. */
    wt_one_loop_only();
    run_main(spawn_without_memory, NULL);
}

/* Owner-checked primitives are owned by the task that took them, not by
 * its thread: another task of the same loop neither re-enters nor
 * releases them. */
static weft_rlock_t task_rlock = WEFT_RLOCK_INIT;
static weft_critsec_t task_cs = WEFT_CRITSEC_INIT;
static weft_rwlock_t task_rw = WEFT_RWLOCK_INIT;
static weft_once_t task_once = WEFT_ONCE_INIT;
static int once_runs;
static weft_event_t owner_go = WEFT_EVENT_INIT;

static void slow_init(void *arg)
{
    (void)arg;
    once_runs++;
    WT_EQ(weft_co_sleep(0.005), 0); /* the other task calls meanwhile */
}

static void *owner_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_rlock_acquire(&task_rlock, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_acquire(&task_rlock, WEFT_FOREVER), 0); /* its own re-entry */
    WT_EQ(weft_critsec_enter(&task_cs), 0);
    WT_EQ(weft_rwlock_acquire_write(&task_rw, 0), 0);
    WT_EQ(weft_event_set(&owner_go), 0);
    WT_EQ(weft_once_call(&task_once, slow_init, NULL), 0);
    WT_EQ(weft_rwlock_release_write(&task_rw), 0);
    WT_EQ(weft_critsec_leave(&task_cs), 0);
    WT_EQ(weft_rlock_release(&task_rlock), 0);
    WT_EQ(weft_rlock_release(&task_rlock), 0);
    return NULL;
}

static void *other_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_event_wait(&owner_go, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_acquire(&task_rlock, 0), -EAGAIN); /* not a re-entry */
    WT_EQ(weft_rlock_release(&task_rlock), -EPERM);
    WT_EQ(weft_critsec_try_enter(&task_cs), -EAGAIN);
    WT_EQ(weft_critsec_leave(&task_cs), -EPERM);
    WT_EQ(weft_rwlock_release_write(&task_rw), -EPERM);
    WT_EQ(weft_once_call(&task_once, slow_init, NULL), 0); /* waits, no -EDEADLK */
    WT_EQ(once_runs, 1);
    WT_EQ(weft_rlock_acquire(&task_rlock, WEFT_FOREVER), 0); /* once the owner lets go */
    WT_EQ(weft_rlock_release(&task_rlock), 0);
    WT_EQ(weft_critsec_enter(&task_cs), 0);
    WT_EQ(weft_critsec_leave(&task_cs), 0);
    return NULL;
}

static void *two_owners(void *arg)
{
    (void)arg;
    spawn_and_join_both(owner_task, other_task);
    return NULL;
}

WT_CASE(owner_checked_locks_belong_to_the_task_not_its_thread)
{
    run_main(two_owners, NULL);
    /* And the thread, after its loop, is itself again. */
    WT_EQ(weft_rlock_acquire(&task_rlock, 0), 0);
    WT_EQ(weft_rlock_release(&task_rlock), 0);
}

/* A million tasks asleep at once (guard pages on), then all joined. Scaled
 * down under the sanitizers (TSan counts each task's fiber against its
 * 8128 threads) and where guards are mprotect'ed pages (two mappings a
 * stack, against vm.max_map_count). */
static _Atomic long million_woke;
static weft_event_t million_counted = WEFT_EVENT_INIT;

/* Waits until main has counted them all live (with two loops, the other
 * one would otherwise run the first tasks to their end meanwhile), then
 * sleeps with all the others. */
static void *sleep_briefly(void *arg)
{
    WT_EQ(weft_event_wait(&million_counted, WEFT_FOREVER), 0);
    WT_EQ(weft_co_sleep(0.2), 0);
    million_woke++;
    return arg;
}

static void *a_million(void *arg)
{
    long n = (long)(intptr_t)arg;
    weft_co_t **t = malloc((size_t)n * sizeof *t);
    WT_CHECK(t != NULL);
    for (long i = 0; i < n; i++)
        WT_EQ(weft_co_spawn(&t[i], sleep_briefly, (void *)(intptr_t)i, NULL), 0);
    weft_co_t *all[1];
    WT_EQ(weft_co_all(all, 1), n + 1); /* all live at once, and main */
    WT_EQ(weft_event_set(&million_counted), 0);
    for (long i = 0; i < n; i++) {
        void *v;
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, i);
        weft_co_free(t[i]);
    }
    free(t);
    return NULL;
}

WT_STRESS(a_million_tasks_sleep_at_once)
{
    long n = 1000000;
    if (wt_sanitizer() == 't')
        n = 5000;
    else if (wt_sanitizer())
        n = 100000;
    else if (weft__stack_guard_kind() == WEFT__GUARD_MPROTECT)
        n = 20000;
    million_woke = 0;
    double start = wt_now();
    run_main(a_million, (void *)(intptr_t)n);
    WT_EQ(million_woke, n);
    printf("%ld tasks in %.2f s\n", n, wt_now() - start);
}

/* Descriptors: two tasks waiting for the same one. epoll takes a descriptor
 * once; the second wait must not fall back to blocking the loop's thread
 * (the task that writes would never run). */

static weft_conn_t *poll_r, *poll_w;
static int polled[2];

static void *conn_poller(void *arg)
{
    polled[(intptr_t)arg] = weft_conn_poll(poll_r, 2);
    return NULL;
}

static void *conn_writer(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.01), 0);
    WT_EQ(weft_conn_send_bytes(poll_w, "x", 1), 0);
    return NULL;
}

static void *two_pollers_one_writer(void *arg)
{
    (void)arg;
    weft_co_t *t[3];
    WT_EQ(weft_co_spawn(&t[0], conn_poller, (void *)0, NULL), 0);
    WT_EQ(weft_co_spawn(&t[1], conn_poller, (void *)1, NULL), 0);
    WT_EQ(weft_co_spawn(&t[2], conn_writer, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_co_join(t[i], WEFT_FOREVER, NULL), 0);
        weft_co_free(t[i]);
    }
    return NULL;
}

WT_CASE(two_tasks_wait_for_one_descriptor_without_blocking_the_loop)
{
    WT_EQ(weft_pipe(&poll_r, &poll_w, false), 0);
    int fds = wt_count_fds();
    double start = wt_now();
    run_main(two_pollers_one_writer, NULL);
    WT_CHECK(wt_now() - start < 1); /* not the pollers' 2 s timeouts */
    WT_EQ(polled[0], 1);
    WT_EQ(polled[1], 1);
    WT_EQ(wt_count_fds(), fds); /* no duplicate left open */
    weft_conn_close(poll_r);
    weft_conn_close(poll_w);
}

/* A process forked from a task (weft_process_start, fork method): the
 * child runs its function alone, as a program of its own; the parent's loop
 * and tasks stay in the parent. */

static _Atomic int *bystander_runs;

static void *bystander(void *arg)
{
    (void)arg;
    atomic_fetch_add(bystander_runs, 1);
    return NULL;
}

static void *forty_two(void *arg)
{
    (void)arg;
    return (void *)42;
}

static int forked_child(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    int code = 0;
    if (weft_sleep(0.01) != 0) /* a thread's sleep, not a task's */
        code |= 1;
    if (weft_co_current() != NULL)
        code |= 2;
    void *r = NULL;
    if (weft_run(forty_two, NULL, wt_run_opts(), &r) != 0 || r != (void *)42)
        code |= 4;
    return code;
}

static void *fork_from_task(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_spawn(NULL, bystander, NULL, NULL), 0); /* ready, not yet run */
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, forked_child, NULL, 0,
                           &(weft_process_opts_t){.method = WEFT_START_FORK}),
          0);
    WT_EQ(weft_process_start(p), 0);
    WT_EQ(weft_process_join(p, 30), 0);
    int code = -1;
    WT_EQ(weft_process_exitcode(p, &code), 1);
    WT_EQ(code, 0);
    WT_EQ(weft_process_close(p), 0);
    return NULL;
}

WT_CASE(a_process_forked_from_a_task_leaves_the_loop_behind)
{
    wt_skip_forks_under_tsan_mn();
    bystander_runs = wt_shared_map(sizeof *bystander_runs);
    run_main(fork_from_task, NULL);
    WT_EQ(atomic_load(bystander_runs), 1); /* in the parent only */
}

/* weft_wait_readable: a thread polls, a task parks (its loop runs on); at
 * the timeout one look still reports a descriptor that is readable. */
static int readable_fds[2];
static int readable_rc = 9;

static void *wait_pipe(void *arg)
{
    (void)arg;
    readable_rc = weft_wait_readable(readable_fds[0], 10);
    return NULL;
}

static void *write_pipe(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.005), 0);
    WT_EQ(write(readable_fds[1], "x", 1), 1);
    return NULL;
}

static void *readable_tasks(void *arg)
{
    (void)arg;
    WT_EQ(weft_wait_readable(readable_fds[0], 0), 0); /* nothing yet: one look */
    WT_EQ(weft_wait_readable(readable_fds[0], 0.005), 0);
    spawn_and_join_both(wait_pipe, write_pipe);
    WT_EQ(readable_rc, 1);
    WT_EQ(weft_wait_readable(readable_fds[0], 0), 1); /* still unread */
    return NULL;
}

WT_CASE(wait_readable_suspends_a_task_and_looks_once_at_the_timeout)
{
    WT_EQ(pipe(readable_fds), 0);
    WT_EQ(weft_wait_readable(readable_fds[0], 0), 0);
    WT_EQ(weft_wait_readable(-1, 1), -EINVAL);
    WT_EQ(weft_wait_readable(readable_fds[0], NAN), -EINVAL);
    run_main(readable_tasks, NULL);
    WT_EQ(weft_wait_readable(readable_fds[0], 1), 1); /* a thread polls */
    close(readable_fds[0]);
    close(readable_fds[1]);
}

/* weft_wait_fd: readiness to write as well as to read, reported as a mask
 * of what was asked; a reader and a writer waiting on one descriptor at
 * once (epoll takes a descriptor once: the second watches a duplicate);
 * a hang-up or an error is ready for everything asked. */
static int duplex[2];                   /* a socket pair, each end nonblocking */
static _Atomic int wait_rc[2] = {9, 9}; /* atomic: set after an event TSan cannot see */

static void fill(int fd)
{
    char buf[4096] = {0};
    while (write(fd, buf, sizeof buf) > 0)
        ;
    WT_EQ(errno, EAGAIN);
}

static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static void *wait_to_read(void *arg)
{
    (void)arg;
    wait_rc[0] = weft_wait_fd(duplex[0], WEFT_READABLE, WEFT_FOREVER);
    return NULL;
}

static void *wait_to_write(void *arg)
{
    (void)arg;
    wait_rc[1] = weft_wait_fd(duplex[0], WEFT_WRITABLE, WEFT_FOREVER);
    return NULL;
}

static void *duplex_tasks(void *arg)
{
    (void)arg;
    fill(duplex[0]);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_READABLE | WEFT_WRITABLE, 0), 0);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_WRITABLE, 0.005), 0);
    weft_co_t *t[2];
    WT_EQ(weft_co_spawn(&t[0], wait_to_read, NULL, NULL), 0);
    WT_EQ(weft_co_spawn(&t[1], wait_to_write, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0); /* both run, and park: nothing is ready */
    WT_EQ(wait_rc[0], 9);
    WT_EQ(wait_rc[1], 9);
    drain(duplex[1]); /* room to write */
    WT_EQ(weft_co_join(t[1], WEFT_FOREVER, NULL), 0);
    WT_EQ(wait_rc[1], (int)WEFT_WRITABLE);
    WT_EQ(wait_rc[0], 9); /* nothing to read yet */
    WT_EQ(write(duplex[1], "x", 1), 1);
    WT_EQ(weft_co_join(t[0], WEFT_FOREVER, NULL), 0);
    WT_EQ(wait_rc[0], (int)WEFT_READABLE);
    weft_co_free(t[0]);
    weft_co_free(t[1]);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_READABLE | WEFT_WRITABLE, WEFT_FOREVER),
          (int)(WEFT_READABLE | WEFT_WRITABLE));
    /* The other end gone: a hang-up, ready for whatever is asked. */
    drain(duplex[0]);
    close(duplex[1]);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_READABLE, WEFT_FOREVER), (int)WEFT_READABLE);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_WRITABLE, WEFT_FOREVER), (int)WEFT_WRITABLE);
    return NULL;
}

WT_CASE(wait_fd_waits_for_reading_and_writing_in_tasks_and_threads)
{
    WT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, duplex), 0);
    WT_EQ(weft_wait_fd(duplex[0], 0, 1), -EINVAL);
    WT_EQ(weft_wait_fd(duplex[0], 4, 1), -EINVAL);
    WT_EQ(weft_wait_fd(-1, WEFT_READABLE, 1), -EINVAL);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_WRITABLE, NAN), -EINVAL);
    /* A thread polls. */
    WT_EQ(weft_wait_fd(duplex[0], WEFT_READABLE | WEFT_WRITABLE, 1), (int)WEFT_WRITABLE);
    WT_EQ(weft_wait_fd(duplex[0], WEFT_READABLE, 0), 0);
    run_main(duplex_tasks, NULL);
    close(duplex[0]);
    int spare = dup(0);
    WT_CHECK(spare >= 0);
    close(spare); /* surely not open now */
    WT_EQ(weft_wait_fd(spare, WEFT_WRITABLE, 1), -EBADF);
}

/* A task's wait on a descriptor that cannot be watched for want of memory
 * (the loop's table of descriptor waits cannot grow) or of descriptors (a
 * second waiter on one descriptor watches a duplicate) fails at once with
 * that error: polling instead would block the loop's thread, and with it
 * the task that was to make the descriptor ready. */
static void *watch_without_resources(void *arg)
{
    (void)arg;
    int fds[2];
    WT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    weft__sys.realloc = wt_no_realloc;
    WT_EQ(weft_wait_fd(fds[0], WEFT_READABLE, 30), -ENOMEM);
    weft__sys_reset();
    /* A reader waits on fds[0]; a writer's wait on it needs a duplicate. */
    weft_co_t *reader;
    wait_rc[0] = 9;
    duplex[0] = fds[0];
    WT_EQ(weft_co_spawn(&reader, wait_to_read, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0), 0); /* it parks: nothing to read */
    fill(fds[0]);
    struct rlimit was, now;
    WT_EQ(getrlimit(RLIMIT_NOFILE, &was), 0);
    now = was;
    now.rlim_cur = (rlim_t)fds[1] + 8;
    WT_EQ(setrlimit(RLIMIT_NOFILE, &now), 0);
    int spare[256], n = 0; /* the gaps below the limit, filled */
    while (n < 256 && (spare[n] = dup(0)) >= 0)
        n++;
    WT_EQ(errno, EMFILE);
    WT_EQ(weft_wait_fd(fds[0], WEFT_WRITABLE, 30), -EMFILE);
    while (n > 0)
        close(spare[--n]);
    WT_EQ(setrlimit(RLIMIT_NOFILE, &was), 0);
    WT_EQ(write(fds[1], "x", 1), 1);
    WT_EQ(weft_co_join(reader, WEFT_FOREVER, NULL), 0);
    WT_EQ(wait_rc[0], (int)WEFT_READABLE);
    weft_co_free(reader);
    close(fds[0]);
    close(fds[1]);
    return NULL;
}

WT_FAULT(a_descriptor_wait_without_memory_or_descriptors_fails_at_once)
{
    wt_one_loop_only(); /* the failures injected are the process's */
    run_main(watch_without_resources, NULL);
}

/* A descriptor closed by the program while a task waits on it, its file
 * kept open by a duplicate: epoll keeps the entry, and its one late event
 * must not reach the task, which has timed out and ended meanwhile. */
static int closed_fds[2];

static void *wait_then_end(void *arg)
{
    (void)arg;
    /* Times out, and its last look finds the descriptor closed. */
    WT_EQ(weft_wait_readable(closed_fds[0], 0.03), -EBADF);
    return NULL;
}

static void *close_under_a_waiter(void *arg)
{
    (void)arg;
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, wait_then_end, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.005), 0);
    int keep = dup(closed_fds[0]);
    WT_CHECK(keep >= 0);
    close(closed_fds[0]); /* the entry stays: `keep` holds the file open */
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);                        /* the task is gone */
    WT_EQ(write(closed_fds[1], "x", 1), 1); /* the stale entry fires */
    WT_EQ(weft_wait_readable(keep, 1), 1);
    WT_EQ(weft_co_sleep(0.005), 0); /* the loop looks at its events */
    close(keep);
    return NULL;
}

WT_CASE(a_late_event_for_a_closed_descriptor_reaches_nobody)
{
    WT_EQ(pipe(closed_fds), 0);
    run_main(close_under_a_waiter, NULL);
    close(closed_fds[1]);
}

/* The lock-order checker keeps a record per task: one task holding L1
 * while another, on the same thread, takes L2 is no order L1 -> L2, so a
 * thread taking L2 then L1 afterwards is reported for nothing. */
static weft_lock_t order_a = WEFT_LOCK_INIT, order_b = WEFT_LOCK_INIT;
static int order_reports;

static void count_report(const char *report, void *arg)
{
    (void)arg;
    fprintf(stderr, "%s\n", report);
    order_reports++;
}

static void *hold_a_across_a_yield(void *arg)
{
    (void)arg;
    WT_EQ(weft_lock_acquire(&order_a, WEFT_FOREVER), 0);
    WT_EQ(weft_co_sleep(0.002), 0); /* the other task takes order_b meanwhile */
    WT_EQ(weft_lock_release(&order_a), 0);
    return NULL;
}

static void *take_b(void *arg)
{
    (void)arg;
    WT_EQ(weft_lock_acquire(&order_b, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&order_b), 0);
    return NULL;
}

static void *interleave_locks(void *arg)
{
    (void)arg;
    spawn_and_join_both(hold_a_across_a_yield, take_b);
    return NULL;
}

WT_CASE(the_lock_order_checker_keeps_a_record_per_task)
{
    weft_lockdep_set_reporter(count_report, NULL);
    weft_lockdep_enable(true);
    order_reports = 0;
    run_main(interleave_locks, NULL);
    WT_EQ(weft_lock_acquire(&order_b, WEFT_FOREVER), 0); /* b then a: not an inversion */
    WT_EQ(weft_lock_acquire(&order_a, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&order_a), 0);
    WT_EQ(weft_lock_release(&order_b), 0);
    weft_lockdep_enable(false);
    weft_lockdep_set_reporter(NULL, NULL);
    WT_EQ(order_reports, 0);
}
