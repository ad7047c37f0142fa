/*
 * Structured concurrency and time limits (weft/async.h): task groups,
 * timeout scopes, wait_for, gather, shield, and futures' waits on tasks.
 */
#include "wt.h"
#include "wt_async.h"

#include <weft/async.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

static void run_main(weft_co_fn fn)
{
    WT_EQ(weft_run(fn, NULL, wt_run_opts(), NULL), 0);
}

static int ended[8];
static _Atomic int ended_count;

/* Sleeps for arg milliseconds, then notes how its sleep ended. */
static void *napper(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    int rc = weft_co_sleep((double)ms / 1000);
    ended[atomic_fetch_add(&ended_count, 1)] = rc;
    return (void *)ms;
}

static void *failer(void *arg)
{
    WT_EQ(weft_co_sleep(0.001), 0);
    return weft_co_fail((int)(intptr_t)arg);
}

/* Groups. */

static void *group_ok(void *arg)
{
    (void)arg;
    ended_count = 0;
    int rc = 1;
    weft_co_t *t;
    WEFT_CO_GROUP(g, &rc)
    {
        WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)5, NULL), 0);
        WT_EQ(weft_co_group_spawn(g, &t, napper, (void *)1, NULL), 0);
    }
    WT_EQ(rc, 0);
    WT_EQ(ended_count, 2); /* nobody outlived the group */
    WT_EQ(weft_future_done(weft_co_future(t)), 1);
    weft_co_free(t);
    return NULL;
}

static void *group_fails(void *arg)
{
    (void)arg;
    ended_count = 0;
    int rc = 1, body = 1;
    WEFT_CO_GROUP(g, &rc)
    {
        WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)60000, NULL), 0);
        WT_EQ(weft_co_group_spawn(g, NULL, failer, (void *)(intptr_t)-EIO, NULL), 0);
        body = weft_co_sleep(60); /* the failure cancels the parent's wait too */
        WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)1, NULL), WEFT_ESHUTDOWN);
    }
    WT_EQ(body, -ECANCELED);
    WT_EQ(rc, -EIO);
    WT_EQ(ended_count, 1);
    WT_EQ(ended[0], -ECANCELED);                     /* the sibling */
    WT_EQ(weft_co_cancelling(weft_co_current()), 0); /* the group withdrew its request */
    WT_EQ(weft_co_sleep(0.001), 0);
    return NULL;
}

static weft_co_t *group_parent;
static int outer_rc, after_rc;

static void *parent_in_group(void *arg)
{
    (void)arg;
    WEFT_CO_GROUP(g, &outer_rc)
    {
        WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)60000, NULL), 0);
        WT_EQ(weft_co_sleep(60), -ECANCELED);
    }
    after_rc = weft_co_sleep(60); /* the cancellation is not swallowed */
    return NULL;
}

static void *group_cancelled(void *arg)
{
    (void)arg;
    ended_count = 0;
    WT_EQ(weft_co_spawn(&group_parent, parent_in_group, NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.001), 0);
    WT_EQ(weft_co_cancel(group_parent), 1);
    WT_EQ(weft_co_join(group_parent, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(outer_rc, -ECANCELED);
    WT_EQ(after_rc, -ECANCELED);
    WT_EQ(ended_count, 1);
    WT_EQ(ended[0], -ECANCELED);
    weft_co_free(group_parent);
    return NULL;
}

static void *group_left_early(void *arg)
{
    (void)arg;
    ended_count = 0;
    int rc = 1;
    for (int i = 0; i < 2; i++) {
        WEFT_CO_GROUP(g, &rc)
        {
            WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)2, NULL), 0);
            if (i == 0)
                break; /* out of the scope: the child is still waited for */
        }
    }
    WT_EQ(rc, 0);
    WT_EQ(ended_count, 2);
    return NULL;
}

/* A child starts a sibling while the scope's end already waits. */
static weft_co_group_t *spawning_group;

static void *spawns_a_sibling(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.005), 0); /* the parent is in the scope's end by now */
    WT_EQ(weft_co_group_spawn(spawning_group, NULL, napper, (void *)1, NULL), 0);
    return NULL;
}

static void *group_grows_at_its_end(void *arg)
{
    (void)arg;
    ended_count = 0;
    int rc = 1;
    WEFT_CO_GROUP(g, &rc)
    {
        spawning_group = g;
        WT_EQ(weft_co_group_spawn(g, NULL, spawns_a_sibling, NULL, NULL), 0);
    }
    WT_EQ(rc, 0);
    WT_EQ(ended_count, 1); /* the sibling was waited for too */
    return NULL;
}

WT_CASE(a_group_waits_for_its_children_and_reports_the_first_failure)
{
    run_main(group_ok);
    run_main(group_fails);
    run_main(group_cancelled);
    run_main(group_left_early);
    run_main(group_grows_at_its_end);
    int rc = 1, ran = 0;
    WEFT_CO_GROUP(g, &rc)
    {
        ran = 1;
    }
    WT_EQ(rc, -EPERM); /* not in a task */
    WT_EQ(ran, 0);
}

/* Timeouts. */

static void *timeouts(void *arg)
{
    (void)arg;
    int rc = 1, slept = 1;
    double start = weft_monotonic();
    WEFT_TIMEOUT(0.02, &rc)
    {
        slept = weft_co_sleep(60);
    }
    WT_CHECK(weft_monotonic() - start >= 0.02);
    WT_EQ(rc, -ETIMEDOUT);
    WT_EQ(slept, -ECANCELED);
    WT_EQ(weft_co_cancelling(weft_co_current()), 0);

    WEFT_TIMEOUT(10, &rc)
    {
        slept = weft_co_sleep(0.001);
    }
    WT_EQ(rc, 0);
    WT_EQ(slept, 0);

    /* Nested: the outer deadline passes inside the inner scope. */
    int inner = 1;
    WEFT_TIMEOUT(0.02, &rc)
    {
        WEFT_TIMEOUT(10, &inner)
        {
            slept = weft_co_sleep(60);
        }
        WT_EQ(weft_co_sleep(60), -ECANCELED); /* still being cancelled */
    }
    WT_EQ(inner, -ECANCELED);
    WT_EQ(rc, -ETIMEDOUT);
    /* ...and the inner one's. */
    WEFT_TIMEOUT(10, &rc)
    {
        WEFT_TIMEOUT(0.01, &inner)
        {
            slept = weft_co_sleep(60);
        }
        WT_EQ(weft_co_sleep(0.001), 0);
    }
    WT_EQ(inner, -ETIMEDOUT);
    WT_EQ(rc, 0);

    /* Rescheduled out of the way. */
    WEFT_TIMEOUT(0.01, &rc)
    {
        WT_EQ(weft_co_reschedule(10), 0);
        slept = weft_co_sleep(0.03);
    }
    WT_EQ(rc, 0);
    WT_EQ(slept, 0);
    WT_EQ(weft_co_reschedule(1), -EPERM); /* no scope */

    WEFT_TIMEOUT(NAN, &rc)
    {
        WT_CHECK(0);
    }
    WT_EQ(rc, -EINVAL);
    return NULL;
}

/* The lecture's case: a group of "downloads" under a deadline. */
static void *downloads_with_deadline(void *arg)
{
    (void)arg;
    ended_count = 0;
    int group_rc = 1, rc = 1;
    WEFT_TIMEOUT(0.05, &rc)
    {
        WEFT_CO_GROUP(g, &group_rc)
        {
            WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)1, NULL), 0);
            WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)60000, NULL), 0);
            WT_EQ(weft_co_group_spawn(g, NULL, napper, (void *)60000, NULL), 0);
        }
    }
    WT_EQ(group_rc, -ECANCELED);
    WT_EQ(rc, -ETIMEDOUT);
    WT_EQ(ended_count, 3);
    WT_EQ(ended[0], 0);
    WT_EQ(ended[1], -ECANCELED);
    WT_EQ(ended[2], -ECANCELED);
    WT_EQ(weft_co_cancelling(weft_co_current()), 0);
    return NULL;
}

WT_CASE(a_timeout_scope_cancels_its_work_and_reports_etimedout)
{
    run_main(timeouts);
    run_main(downloads_with_deadline);
    int rc = 1;
    WEFT_TIMEOUT(1, &rc)
    {
        WT_CHECK(0);
    }
    WT_EQ(rc, -EPERM);
}

/* wait_for, shield, join, gather, weft_wait. */

static void *waits(void *arg)
{
    (void)arg;
    weft_co_t *t;
    void *v;
    WT_EQ(weft_co_spawn(&t, napper, (void *)60000, NULL), 0);
    WT_EQ(weft_co_wait_for(t, 0.01, &v), -ETIMEDOUT);
    WT_EQ(weft_future_cancelled(weft_co_future(t)), 1);
    weft_co_free(t);
    WT_EQ(weft_co_spawn(&t, napper, (void *)1, NULL), 0);
    WT_EQ(weft_co_wait_for(t, 10, &v), 0);
    WT_EQ((intptr_t)v, 1);
    weft_co_free(t);

    weft_co_t *ts[3];
    void *values[3] = {0};
    int errors[3] = {1, 1, 1};
    WT_EQ(weft_co_spawn(&ts[0], napper, (void *)3, NULL), 0);
    WT_EQ(weft_co_spawn(&ts[1], failer, (void *)(intptr_t)-ENOENT, NULL), 0);
    WT_EQ(weft_co_spawn(&ts[2], napper, (void *)2, NULL), 0);
    WT_EQ(weft_co_gather(ts, 3, values, errors), 0);
    WT_EQ((intptr_t)values[0], 3);
    WT_EQ(errors[0], 0);
    WT_EQ(errors[1], -ENOENT);
    WT_EQ((intptr_t)values[2], 2);
    WT_EQ(weft_co_gather(ts, 3, values, NULL), -ENOENT);
    WT_EQ(weft_co_gather(NULL, 1, NULL, NULL), -EINVAL);
    WT_EQ(weft_co_gather(NULL, 0, NULL, NULL), 0);

    /* weft_wait and as_completed take a task's future. */
    weft_future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = weft_co_future(ts[i]);
    WT_EQ(weft_wait(fs, 3, WEFT_FOREVER, WEFT_ALL_COMPLETED), 3);
    weft_as_completed_t *it;
    WT_EQ(weft_as_completed_new(&it, fs, 3, WEFT_FOREVER), 0);
    weft_future_t *f;
    int n = 0;
    while (weft_as_completed_next(it, &f) == 1)
        n++;
    WT_EQ(n, 3);
    weft_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        weft_co_free(ts[i]);
    return NULL;
}

static weft_co_t *inner_task;
static int waiter_rc;

static void *shielding(void *arg)
{
    waiter_rc = arg ? weft_co_shield(inner_task, WEFT_FOREVER, NULL)
                    : weft_co_join(inner_task, WEFT_FOREVER, NULL);
    return NULL;
}

static void shield_or_join(bool shield)
{
    weft_co_t *w;
    WT_EQ(weft_co_spawn(&inner_task, napper, (void *)20, NULL), 0);
    WT_EQ(weft_co_spawn(&w, shielding, shield ? (void *)1 : NULL, NULL), 0);
    WT_EQ(weft_co_sleep(0.001), 0);
    WT_EQ(weft_co_cancel(w), 1);
    WT_EQ(weft_co_join(w, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(waiter_rc, -ECANCELED);
    void *v;
    if (shield) { /* inner_task ran on to its end */
        WT_EQ(weft_co_join(inner_task, WEFT_FOREVER, &v), 0);
        WT_EQ((intptr_t)v, 20);
    } else { /* cancelled with its waiter, as `await task` does */
        WT_EQ(weft_future_cancelled(weft_co_future(inner_task)), 1);
    }
    weft_co_free(w);
    weft_co_free(inner_task);
}

static void *shields(void *arg)
{
    (void)arg;
    shield_or_join(true);
    shield_or_join(false);
    return NULL;
}

WT_CASE(wait_for_gather_shield_and_futures_on_tasks)
{
    run_main(waits);
    run_main(shields);
}

/* A task that gathers itself among others waits until it is cancelled (as
 * in Python), and a cancellation must then end the gather: passing it on to
 * the tasks gathered must not pass it back to the gatherer for ever. */

static weft_co_t *gatherer;

static void *cancel_gatherer(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.01), 0);
    WT_EQ(weft_co_cancel(gatherer), 1);
    return NULL;
}

static void *gathers_itself(void *arg)
{
    (void)arg;
    gatherer = weft_co_current();
    weft_co_t *ts[2];
    WT_EQ(weft_co_spawn(&ts[0], cancel_gatherer, NULL, NULL), 0);
    ts[1] = gatherer;
    WT_EQ(weft_co_gather(ts, 2, NULL, NULL), -ECANCELED);
    WT_EQ(weft_future_done(weft_co_future(ts[0])), 1);
    weft_co_free(ts[0]);
    return NULL;
}

WT_CASE(a_task_gathering_itself_ends_when_cancelled)
{
    WT_EQ(weft_run(gathers_itself, NULL, wt_run_opts(), NULL), -ECANCELED);
}
