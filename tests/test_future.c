/*
 * Tests for weft/future.h, after CPython's test_concurrent_futures
 * (test_future, test_wait, test_as_completed): states and transitions,
 * result with a value, an error or a cancellation, timeouts, waking a
 * waiter, callbacks exactly once (before, after and racing completion),
 * wait's three conditions, as_completed's order, waiters on one future
 * coming and going, a future freed unfinished, one freed by its waiter
 * while its finisher returns, and bad input.
 */
#include "base/base.h"
#include "threads.h"
#include <weft/future.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>

static weft_future_t *pending(void)
{
    weft_future_t *f;
    WT_EQ(weft_future_new(&f), 0);
    return f;
}

WT_CASE(promise_states_and_outcomes)
{
    weft_future_t *f = pending();
    WT_EQ(weft_future_done(f), 0);
    WT_EQ(weft_future_running(f), 0);
    WT_EQ(weft_future_cancelled(f), 0);
    void *v = NULL;
    WT_EQ(weft_future_result(f, 0, &v), -EAGAIN);
    WT_EQ(weft_future_set_result(f, &v), 0);
    WT_EQ(weft_future_done(f), 1);
    WT_EQ(weft_future_result(f, 0, &v), 0);
    WT_CHECK(v == &v);
    WT_EQ(weft_future_error(f, 0), 0);
    WT_EQ(weft_future_set_result(f, NULL), -EPERM); /* InvalidStateError */
    WT_EQ(weft_future_set_error(f, -EIO), -EPERM);
    WT_EQ(weft_future_cancel(f), 0);
    WT_EQ(weft_future_free(f), 0);

    f = pending();
    WT_EQ(weft_future_set_error(f, 0), -EINVAL);
    WT_EQ(weft_future_set_error(f, -EIO), 0);
    WT_EQ(weft_future_result(f, 0, &v), -EIO);
    WT_EQ(weft_future_error(f, WEFT_FOREVER), -EIO);
    WT_EQ(weft_future_free(f), 0);
}

WT_CASE(cancel_and_set_running)
{
    weft_future_t *f = pending();
    WT_EQ(weft_future_cancel(f), 1);
    WT_EQ(weft_future_cancel(f), 1); /* already cancelled: still true */
    WT_EQ(weft_future_cancelled(f), 1);
    WT_EQ(weft_future_done(f), 1);
    WT_EQ(weft_future_result(f, 0, NULL), -ECANCELED);
    WT_EQ(weft_future_set_running_or_notify_cancel(f), 0);
    WT_EQ(weft_future_set_result(f, NULL), -EPERM);
    weft_future_free(f);

    f = pending();
    WT_EQ(weft_future_set_running_or_notify_cancel(f), 1);
    WT_EQ(weft_future_running(f), 1);
    WT_EQ(weft_future_set_running_or_notify_cancel(f), -EPERM);
    WT_EQ(weft_future_cancel(f), 0); /* running: too late */
    WT_EQ(weft_future_set_result(f, NULL), 0);
    WT_EQ(weft_future_running(f), 0);
    WT_EQ(weft_future_cancel(f), 0);
    weft_future_free(f);
}

WT_CASE(result_times_out_on_the_monotonic_clock)
{
    weft_future_t *f = pending();
    double t0 = wt_now();
    WT_EQ(weft_future_result(f, 0.05, NULL), -ETIMEDOUT);
    double waited = wt_now() - t0;
    WT_CHECK(waited >= 0.05 && waited < 0.05 + 2 * wt_slack());
    weft_future_free(f);
}

struct result_waiter {
    weft_future_t *f;
    void *value;
    _Atomic int rc;
    _Atomic long tid;
};

static void *wait_result(void *arg)
{
    struct result_waiter *w = arg;
    atomic_store(&w->tid, weft_thread_get_native_id());
    atomic_store(&w->rc, weft_future_result(w->f, WEFT_FOREVER, &w->value));
    return NULL;
}

WT_CASE(blocked_result_wakes_at_completion)
{
    for (int how = 0; how < 3; how++) {
        struct result_waiter w = {.f = pending(), .rc = 1};
        weft_thread_t *t = spawn(wait_result, &w);
        while (!atomic_load(&w.tid))
            sched_yield();
        wt_await_futex_sleep(atomic_load(&w.tid), w.f, 10 * wt_slack());
        if (how == 0)
            WT_EQ(weft_future_set_result(w.f, &w), 0);
        else if (how == 1)
            WT_EQ(weft_future_set_error(w.f, -ENOSPC), 0);
        else
            WT_EQ(weft_future_cancel(w.f), 1);
        finish(t);
        WT_EQ(atomic_load(&w.rc), how == 0 ? 0 : how == 1 ? -ENOSPC : -ECANCELED);
        if (how == 0)
            WT_CHECK(w.value == &w);
        weft_future_free(w.f);
    }
}

static _Atomic int calls[8];
static weft_future_t *_Atomic called_with;

static void count_call(weft_future_t *f, void *arg)
{
    atomic_store(&called_with, f);
    atomic_fetch_add(&calls[(intptr_t)arg], 1);
}

static int order[4], ordered;

static void record_order(weft_future_t *f, void *arg)
{
    (void)f;
    order[ordered++] = (int)(intptr_t)arg;
}

WT_CASE(callbacks_run_once_in_order)
{
    weft_future_t *f = pending();
    for (intptr_t i = 0; i < 3; i++)
        WT_EQ(weft_future_add_done_callback(f, record_order, (void *)i), 0);
    WT_EQ(ordered, 0);
    WT_EQ(weft_future_set_result(f, NULL), 0);
    WT_EQ(ordered, 3);
    WT_EQ(order[0], 0);
    WT_EQ(order[1], 1);
    WT_EQ(order[2], 2);
    /* Added after completion: runs at once, in this thread. */
    WT_EQ(weft_future_add_done_callback(f, count_call, (void *)0), 0);
    WT_EQ(atomic_load(&calls[0]), 1);
    WT_CHECK(atomic_load(&called_with) == f);
    WT_EQ(weft_future_set_result(f, NULL), -EPERM); /* no second round */
    WT_EQ(ordered, 3);
    weft_future_free(f);
    /* Cancellation runs them too. */
    f = pending();
    WT_EQ(weft_future_add_done_callback(f, count_call, (void *)1), 0);
    WT_EQ(weft_future_cancel(f), 1);
    WT_EQ(atomic_load(&calls[1]), 1);
    weft_future_free(f);
}

/* Callbacks added by several threads while another completes the future:
 * every one runs exactly once, whichever side it lands on. */
struct adder {
    weft_future_t *f;
    int n;
};

static _Atomic long raced_calls;

static void count_raced(weft_future_t *f, void *arg)
{
    (void)f, (void)arg;
    atomic_fetch_add(&raced_calls, 1);
}

static void *add_callbacks(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < a->n; i++)
        WT_EQ(weft_future_add_done_callback(a->f, count_raced, NULL), 0);
    return NULL;
}

WT_STRESS(callbacks_racing_completion_run_exactly_once)
{
    int rounds = wt_sanitizer() ? 50 : 500;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&raced_calls, 0);
        struct adder a = {pending(), 50};
        weft_thread_t *t[2] = {spawn(add_callbacks, &a), spawn(add_callbacks, &a)};
        for (int spin = 0; spin < r % 50; spin++)
            sched_yield();
        WT_EQ(weft_future_set_result(a.f, NULL), 0);
        finish(t[0]);
        finish(t[1]);
        WT_EQ(atomic_load(&raced_calls), 100);
        weft_future_free(a.f);
    }
}

WT_CASE(wait_conditions)
{
    weft_future_t *f[3] = {pending(), pending(), pending()};
    WT_EQ(weft_wait(f, 3, 0, WEFT_FIRST_COMPLETED), -EAGAIN);
    WT_EQ(weft_wait(f, 3, 0.02, WEFT_ALL_COMPLETED), -ETIMEDOUT);
    WT_EQ(weft_future_set_result(f[1], NULL), 0);
    WT_EQ(weft_wait(f, 3, WEFT_FOREVER, WEFT_FIRST_COMPLETED), 1);
    WT_EQ(weft_wait(f, 3, 0, WEFT_FIRST_EXCEPTION), -EAGAIN); /* no error yet, not all done */
    WT_EQ(weft_future_set_error(f[2], -EIO), 0);
    WT_EQ(weft_wait(f, 3, WEFT_FOREVER, WEFT_FIRST_EXCEPTION), 2);
    WT_EQ(weft_wait(f, 3, 0, WEFT_ALL_COMPLETED), -EAGAIN);
    WT_EQ(weft_future_cancel(f[0]), 1);
    WT_EQ(weft_wait(f, 3, WEFT_FOREVER, WEFT_ALL_COMPLETED), 3);
    /* A cancelled future is no exception: all done, none failed. */
    weft_future_t *g[2] = {pending(), f[0]};
    WT_EQ(weft_wait(g, 2, 0, WEFT_FIRST_EXCEPTION), -EAGAIN);
    WT_EQ(weft_wait(g, 2, 0, WEFT_FIRST_COMPLETED), 1);
    WT_EQ(weft_wait(NULL, 0, 0, WEFT_ALL_COMPLETED), 0); /* nothing to wait for */
    weft_future_t *twice[2] = {f[1], f[1]};
    WT_EQ(weft_wait(twice, 2, 0, WEFT_ALL_COMPLETED), 1); /* one future, counted once */
    WT_EQ(weft_future_set_result(g[0], NULL), 0);
    weft_future_free(g[0]);
    for (int i = 0; i < 3; i++)
        weft_future_free(f[i]);
}

struct completer {
    weft_future_t **f;
    int n;
    _Atomic long tid;
};

/* Complete f[n-1], f[n-2], ... f[0], each once the main thread sleeps. */
static void *complete_backwards(void *arg)
{
    struct completer *c = arg;
    for (int i = c->n - 1; i >= 0; i--) {
        while (!atomic_load(&c->tid))
            sched_yield();
        wt_await_futex_sleep(atomic_load(&c->tid), NULL, 10 * wt_slack());
        WT_EQ(weft_future_set_result(c->f[i], (void *)(intptr_t)i), 0);
    }
    return NULL;
}

WT_CASE(wait_wakes_when_satisfied)
{
    weft_future_t *f[3] = {pending(), pending(), pending()};
    struct completer c = {f, 3, 0};
    atomic_store(&c.tid, weft_thread_get_native_id());
    weft_thread_t *t = spawn(complete_backwards, &c);
    WT_EQ(weft_wait(f, 3, WEFT_FOREVER, WEFT_ALL_COMPLETED), 3);
    finish(t);
    for (int i = 0; i < 3; i++)
        weft_future_free(f[i]);
}

WT_CASE(as_completed_yields_in_completion_order)
{
    weft_future_t *f[4] = {pending(), pending(), pending(), pending()};
    WT_EQ(weft_future_set_result(f[2], NULL), 0); /* done before: first */
    weft_as_completed_t *it;
    WT_EQ(weft_as_completed_new(&it, f, 4, WEFT_FOREVER), 0);
    struct completer c = {f, 2, 0}; /* then f[1], f[0] */
    atomic_store(&c.tid, weft_thread_get_native_id());
    weft_thread_t *t = spawn(complete_backwards, &c);
    weft_future_t *got;
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == f[2]);
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == f[1]);
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == f[0]);
    finish(t);
    WT_EQ(weft_future_cancel(f[3]), 1);
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == f[3]);
    WT_EQ(weft_as_completed_next(it, &got), 0); /* all yielded */
    WT_EQ(weft_as_completed_free(it), 0);
    for (int i = 0; i < 4; i++)
        weft_future_free(f[i]);
}

/* Python takes a set of the futures: one given several times is waited for
 * and yielded once, and the others keep their order of first appearance. */
WT_CASE(repeated_futures_count_once)
{
    weft_future_t *a = pending(), *b = pending(), *c = pending();
    weft_future_t *fs[6] = {b, a, b, c, a, b};
    WT_EQ(weft_future_set_result(c, NULL), 0);
    WT_EQ(weft_future_set_result(b, NULL), 0);
    WT_EQ(weft_wait(fs, 6, 0, WEFT_ALL_COMPLETED), -EAGAIN);
    WT_EQ(weft_wait(fs, 6, 0, WEFT_FIRST_COMPLETED), 2);
    weft_as_completed_t *it;
    WT_EQ(weft_as_completed_new(&it, fs, 6, WEFT_FOREVER), 0);
    weft_future_t *got;
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == b); /* done before, first appearance first */
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == c);
    struct completer done_a = {&a, 1, 0};
    atomic_store(&done_a.tid, weft_thread_get_native_id());
    weft_thread_t *t = spawn(complete_backwards, &done_a);
    WT_EQ(weft_as_completed_next(it, &got), 1);
    WT_CHECK(got == a);
    finish(t);
    WT_EQ(weft_as_completed_next(it, &got), 0); /* each yielded once */
    WT_EQ(weft_as_completed_free(it), 0);
    WT_EQ(weft_wait(fs, 6, WEFT_FOREVER, WEFT_ALL_COMPLETED), 3);
    weft_future_free(a);
    weft_future_free(b);
    weft_future_free(c);
}

/* Futures finishing (two threads, some with errors, some cancelled) while
 * as_completed and wait set up their watches over a list that names each
 * future three times: each distinct future is yielded exactly once, the
 * waits count each once, and nothing is touched after it is freed (ASan). */
enum { RACED = 24 };

struct finisher {
    weft_future_t **f;
    int first;
};

static void *finish_every_other(void *arg)
{
    struct finisher *fin = arg;
    for (int i = fin->first; i < RACED; i += 2) {
        int rc = i % 3 == 0   ? weft_future_set_result(fin->f[i], NULL)
                 : i % 3 == 1 ? weft_future_set_error(fin->f[i], -EIO)
                              : weft_future_cancel(fin->f[i]) - 1;
        WT_EQ(rc, 0);
    }
    return NULL;
}

WT_STRESS(futures_finishing_while_watched_through_repeats)
{
    for (int round = 0; round < (wt_sanitizer() ? 200 : 2000); round++) {
        weft_future_t *f[RACED], *list[3 * RACED];
        for (int i = 0; i < RACED; i++)
            f[i] = pending();
        for (int i = 0; i < 3 * RACED; i++) /* each three times, scattered */
            list[i] = f[(i * 7 + round) % RACED];
        struct finisher a = {f, 0}, b = {f, 1};
        weft_thread_t *t[2] = {spawn(finish_every_other, &a), spawn(finish_every_other, &b)};
        weft_as_completed_t *it;
        WT_EQ(weft_as_completed_new(&it, list, 3 * RACED, WEFT_FOREVER), 0);
        int rc = weft_wait(list, 3 * RACED, WEFT_FOREVER, WEFT_FIRST_EXCEPTION);
        WT_CHECK(rc >= 1 && rc <= RACED);
        unsigned seen[RACED] = {0};
        weft_future_t *got;
        for (int i = 0; i < RACED; i++) {
            WT_EQ(weft_as_completed_next(it, &got), 1);
            for (int j = 0; j < RACED; j++)
                seen[j] += got == f[j];
        }
        WT_EQ(weft_as_completed_next(it, &got), 0);
        WT_EQ(weft_as_completed_free(it), 0);
        for (int j = 0; j < RACED; j++)
            WT_EQ(seen[j], 1);
        WT_EQ(weft_wait(list, 3 * RACED, WEFT_FOREVER, WEFT_ALL_COMPLETED), RACED);
        finish(t[0]);
        finish(t[1]);
        for (int i = 0; i < RACED; i++)
            weft_future_free(f[i]);
    }
}

/* Fail the allocation numbered fail_at (from 0), let the others through. */
static int fail_at, allocations;

static void *calloc_failing_at(size_t count, size_t size)
{
    return allocations++ == fail_at ? NULL : calloc(count, size);
}

WT_FAULT(wait_and_as_completed_report_failed_allocations)
{
    weft_future_t *a = pending(), *b = pending();
    weft_future_t *fs[3] = {a, b, a};
    WT_EQ(weft_future_set_result(a, NULL), 0);
    int rc;
    fail_at = 0;
    do { /* every allocation fails once, the last run none */
        allocations = 0;
        weft__sys.calloc = calloc_failing_at;
        rc = weft_wait(fs, 3, 0, WEFT_FIRST_COMPLETED);
        weft__sys_reset();
        WT_CHECK(rc == -ENOMEM || rc == 1);
    } while (rc == -ENOMEM && ++fail_at < 100);
    WT_EQ(rc, 1);
    WT_CHECK(fail_at >= 3);
    weft_as_completed_t *it;
    fail_at = 0;
    do {
        allocations = 0;
        weft__sys.calloc = calloc_failing_at;
        rc = weft_as_completed_new(&it, fs, 3, WEFT_FOREVER);
        weft__sys_reset();
        WT_CHECK(rc == -ENOMEM || rc == 0);
    } while (rc == -ENOMEM && ++fail_at < 100);
    WT_EQ(rc, 0);
    WT_EQ(weft_as_completed_free(it), 0);
    weft__sys.malloc = wt_no_malloc; /* the iterator itself */
    WT_EQ(weft_as_completed_new(&it, fs, 3, WEFT_FOREVER), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_future_set_result(b, NULL), 0);
    weft_future_free(a);
    weft_future_free(b);
}

WT_CASE(as_completed_times_out)
{
    weft_future_t *f[2] = {pending(), pending()};
    WT_EQ(weft_future_set_result(f[0], NULL), 0);
    weft_as_completed_t *it;
    WT_EQ(weft_as_completed_new(&it, f, 2, 0.05), 0);
    weft_future_t *got;
    WT_EQ(weft_as_completed_next(it, &got), 1);
    double t0 = wt_now();
    WT_EQ(weft_as_completed_next(it, &got), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 < 0.05 + 2 * wt_slack());
    WT_EQ(weft_as_completed_free(it), 0); /* unwatches f[1] */
    WT_EQ(weft_future_set_result(f[1], NULL), 0);
    weft_future_free(f[0]);
    weft_future_free(f[1]);
}

WT_CASE(future_bad_input)
{
    weft_future_t *f = pending(), *none[1] = {NULL};
    weft_as_completed_t *it;
    WT_EQ(weft_future_new(NULL), -EINVAL);
    WT_EQ(weft_future_free(NULL), -EINVAL);
    WT_EQ(weft_future_result(NULL, 0, NULL), -EINVAL);
    WT_EQ(weft_future_result(f, NAN, NULL), -EINVAL);
    WT_EQ(weft_future_cancel(NULL), -EINVAL);
    WT_EQ(weft_future_done(NULL), -EINVAL);
    WT_EQ(weft_future_running(NULL), -EINVAL);
    WT_EQ(weft_future_cancelled(NULL), -EINVAL);
    WT_EQ(weft_future_add_done_callback(NULL, count_call, NULL), -EINVAL);
    WT_EQ(weft_future_add_done_callback(f, NULL, NULL), -EINVAL);
    WT_EQ(weft_future_set_result(NULL, NULL), -EINVAL);
    WT_EQ(weft_future_set_error(NULL, -EIO), -EINVAL);
    WT_EQ(weft_future_set_running_or_notify_cancel(NULL), -EINVAL);
    WT_EQ(weft_task_fail(-EIO), -EPERM); /* not inside a task */
    WT_EQ(weft_wait(none, 1, 0, WEFT_ALL_COMPLETED), -EINVAL);
    WT_EQ(weft_wait(&f, 1, 0, 0), -EINVAL);
    WT_EQ(weft_wait(&f, 1, 0, WEFT_ALL_COMPLETED + 1), -EINVAL);
    WT_EQ(weft_wait(&f, (size_t)INT_MAX + 1, 0, WEFT_ALL_COMPLETED), -EINVAL);
    WT_EQ(weft_wait(&f, 1, NAN, WEFT_ALL_COMPLETED), -EINVAL);
    WT_EQ(weft_wait(NULL, 1, 0, WEFT_ALL_COMPLETED), -EINVAL);
    WT_EQ(weft_as_completed_new(NULL, &f, 1, 0), -EINVAL);
    WT_EQ(weft_as_completed_new(&it, none, 1, 0), -EINVAL);
    WT_EQ(weft_as_completed_new(&it, &f, 1, NAN), -EINVAL);
    WT_EQ(weft_as_completed_next(NULL, &f), -EINVAL);
    WT_EQ(weft_as_completed_new(&it, &f, 1, 0), 0);
    WT_EQ(weft_as_completed_next(it, NULL), -EINVAL);
    WT_EQ(weft_as_completed_free(it), 0);
    WT_EQ(weft_as_completed_free(NULL), -EINVAL);
    WT_EQ(weft_future_done(f), 0); /* the rejected calls changed nothing */
    weft_future_free(f);
}

/* A future freed before it finishes frees its callbacks unrun (ASan
 * checks the frees): nobody is left to finish it. */
WT_CASE(an_unfinished_future_frees_its_callbacks)
{
    weft_future_t *f = pending();
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_future_add_done_callback(f, count_call, (void *)(intptr_t)i), 0);
    WT_EQ(weft_future_free(f), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(atomic_load(&calls[i]), 0);
}

/* Several waiters watch one future; one that goes away unlinks itself from
 * the front, the middle or the back of the future's list, and the others
 * still see it finish. */
WT_CASE(waiters_on_one_future_come_and_go)
{
    for (int gone = 0; gone < 3; gone++) {
        weft_future_t *f = pending(), *got;
        weft_as_completed_t *it[3];
        for (int i = 0; i < 3; i++)
            WT_EQ(weft_as_completed_new(&it[i], &f, 1, WEFT_FOREVER), 0);
        WT_EQ(weft_as_completed_free(it[gone]), 0);
        WT_EQ(weft_future_set_result(f, NULL), 0);
        for (int i = 0; i < 3; i++) {
            if (i == gone)
                continue;
            WT_EQ(weft_as_completed_next(it[i], &got), 1);
            WT_CHECK(got == f);
            WT_EQ(weft_as_completed_next(it[i], &got), 0);
            WT_EQ(weft_as_completed_free(it[i]), 0);
        }
        weft_future_free(f);
    }
}

/* A promise's only reference belongs to the thread that waits for it,
 * which frees it as soon as it sees it finished, while the thread that
 * finished it (with a value, an error or a cancel) is still inside that
 * call: finishing holds a reference of its own from before the state says
 * finished, so nothing it does afterwards touches freed memory (ASan and
 * TSan report it if it does). */
struct promise_hand {
    weft_future_t *_Atomic f;
    _Atomic bool stop;
};

static void *finish_handed_promises(void *arg)
{
    struct promise_hand *c = arg;
    for (unsigned n = 0; !atomic_load(&c->stop); n++) {
        weft_future_t *f = atomic_exchange(&c->f, NULL);
        if (!f)
            continue;
        if (n % 3 == 0)
            WT_EQ(weft_future_set_result(f, c), 0);
        else if (n % 3 == 1)
            WT_EQ(weft_future_set_error(f, -ENOSPC), 0);
        else
            WT_EQ(weft_future_cancel(f), 1);
    }
    return NULL;
}

WT_STRESS(a_waiter_frees_the_future_while_its_finisher_returns)
{
    struct promise_hand c = {NULL, false};
    weft_thread_t *t = spawn(finish_handed_promises, &c);
    double end = wt_now() + 1.0;
    for (long n = 0; n < 2000000 && wt_now() < end; n++) {
        weft_future_t *f = pending();
        atomic_store(&c.f, f);
        for (unsigned spin = 1; !weft_future_done(f); spin++)
            WT_CHECK(spin % 4096 || wt_now() < end + 10 * wt_slack()); /* not hung */
        int rc = weft_future_result(f, 0, NULL);
        WT_CHECK(rc == 0 || rc == -ENOSPC || rc == -ECANCELED);
        weft_future_free(f);
    }
    atomic_store(&c.stop, true);
    finish(t);
}
