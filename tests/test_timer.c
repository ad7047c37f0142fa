/*
 * Tests for Timer (threading.Timer): fires after its interval, never early;
 * cancel before firing prevents the call; cancel racing the fire has exactly
 * one winner; a timer is an ordinary thread; bad input.
 */
#include "wt.h"
#include <weft/thread.h>

#include <math.h>

static void *stamp(void *arg)
{
    *(double *)arg = wt_now();
    return arg;
}

WT_CASE(fires_after_interval_never_early)
{
    for (int i = 0; i < 3; i++) {
        double fired = 0;
        weft_thread_t *t;
        WT_EQ(weft_timer_new(&t, 0.03, stamp, &fired, NULL), 0);
        double t0 = wt_now();
        WT_EQ(weft_thread_start(t), 0);
        void *result;
        WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
        WT_CHECK(result == &fired); /* join returns what fn returned */
        WT_CHECK(fired - t0 >= 0.03);
        WT_CHECK(fired - t0 < 0.03 + 0.5 * wt_slack());
        WT_EQ(weft_timer_cancel(t), 0); /* too late: it has fired */
        WT_EQ(weft_thread_free(t), 0);
    }
}

WT_CASE(zero_or_negative_interval_fires_at_once)
{
    const double intervals[] = {0, -1, -1e9};
    for (int i = 0; i < 3; i++) {
        double fired = 0;
        weft_thread_t *t;
        WT_EQ(weft_timer_new(&t, intervals[i], stamp, &fired, NULL), 0);
        WT_EQ(weft_thread_start(t), 0);
        WT_EQ(weft_thread_join(t, 10 * wt_slack(), NULL), 0);
        WT_CHECK(fired > 0);
        WT_EQ(weft_thread_free(t), 0);
    }
}

WT_CASE(cancel_before_fire_prevents_the_call)
{
    double fired = 0;
    weft_thread_t *t;
    WT_EQ(weft_timer_new(&t, 3600, stamp, &fired, NULL), 0);
    WT_EQ(weft_timer_cancel(t), 1); /* even before start */
    WT_EQ(weft_thread_start(t), 0);
    void *result = &result;
    /* Cancelled: the thread ends at once instead of after an hour. */
    WT_EQ(weft_thread_join(t, 10 * wt_slack(), &result), 0);
    WT_CHECK(result == NULL && fired == 0);
    WT_EQ(weft_timer_cancel(t), 0);
    WT_EQ(weft_thread_free(t), 0);

    WT_EQ(weft_timer_new(&t, 3600, stamp, &fired, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_timer_cancel(t), 1); /* while it waits */
    WT_EQ(weft_timer_cancel(t), 0); /* once only */
    WT_EQ(weft_thread_join(t, 10 * wt_slack(), NULL), 0);
    WT_CHECK(fired == 0);
    WT_EQ(weft_thread_free(t), 0);
}

static _Atomic int calls;

static void *count_call(void *arg)
{
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return NULL;
}

WT_STRESS(cancel_racing_fire_has_one_winner)
{
    int cancelled = 0;
    for (int i = 0; i < 2000; i++) {
        weft_thread_t *t;
        WT_EQ(weft_timer_new(&t, 0, count_call, NULL, NULL), 0);
        int before = atomic_load(&calls);
        WT_EQ(weft_thread_start(t), 0);
        int rc = weft_timer_cancel(t);
        WT_CHECK(rc == 0 || rc == 1);
        WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
        /* Exactly one of: the call happened, or cancel prevented it. */
        WT_EQ(atomic_load(&calls) - before + rc, 1);
        cancelled += rc;
        WT_EQ(weft_thread_free(t), 0);
    }
    WT_CHECK(cancelled >= 0);
}

WT_CASE(timer_is_a_thread)
{
    weft_thread_opts_t opts = {.name = "my-timer", .daemon = WEFT_DAEMON_YES};
    weft_thread_t *t;
    WT_EQ(weft_timer_new(&t, 3600, count_call, NULL, &opts), 0);
    WT_CHECK(weft_thread_daemon(t) == 1);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_is_alive(t), 1);
    WT_EQ(weft_thread_join(t, 0.01, NULL), -ETIMEDOUT);
    WT_EQ(weft_timer_cancel(t), 1);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_free(t), 0);
}

WT_CASE(bad_input)
{
    weft_thread_t *t;
    WT_EQ(weft_timer_new(NULL, 1, count_call, NULL, NULL), -EINVAL);
    WT_EQ(weft_timer_new(&t, 1, NULL, NULL, NULL), -EINVAL);
    WT_EQ(weft_timer_new(&t, NAN, count_call, NULL, NULL), -EINVAL);
    WT_EQ(weft_timer_cancel(NULL), -EINVAL);
    /* An ordinary thread is not a timer. */
    WT_EQ(weft_thread_new(&t, count_call, NULL, NULL), 0);
    WT_EQ(weft_timer_cancel(t), -EINVAL);
    WT_EQ(weft_thread_free(t), 0);
}
