/*
 * Timer: Python's threading.Timer, a Thread subclass whose run() waits for
 * the interval and then calls the function unless cancelled.
 *
 * Here it is literally a weft thread in the subclass form: the timer's state
 * lives in the thread's own data, so every thread function (start, join,
 * name, daemon, free) applies to it. The state word decides the race between
 * cancel and firing: both try to move it from WAITING, with one
 * compare-and-swap each, so exactly one wins; cancel also wakes the sleeping
 * timer thread so it ends at once instead of at the deadline.
 */
#include "thread/thread_int.h"

#include <limits.h>
#include <math.h>

enum { TIMER_WAITING, TIMER_CANCELLED, TIMER_FIRED };

struct timer {
    double interval;
    weft_thread_fn fn;
    void *arg;
    _Atomic uint32_t state;
};

static bool leave_waiting(struct timer *tm, uint32_t to)
{
    uint32_t expected = TIMER_WAITING;
    return atomic_compare_exchange_strong(&tm->state, &expected, to);
}

static void *timer_run(weft_thread_t *self)
{
    struct timer *tm = weft_thread_data(self);
    weft__deadline_t deadline;
    weft__deadline(tm->interval, &deadline);
    while (atomic_load(&tm->state) == TIMER_WAITING)
        if (weft__park(&tm->state, TIMER_WAITING, deadline, WEFT__WAIT_TIMER) == -ETIMEDOUT)
            break;
    return leave_waiting(tm, TIMER_FIRED) ? tm->fn(tm->arg) : NULL;
}

int weft_timer_new(weft_thread_t **out, double interval, weft_thread_fn fn, void *arg,
                   const weft_thread_opts_t *opts)
{
    if (!out || !fn || isnan(interval))
        return -EINVAL;
    if (interval < 0) /* an interval, not a timeout: Python fires at once */
        interval = 0;
    int rc = weft_thread_new_run(out, timer_run, sizeof(struct timer), opts);
    if (rc == 0) {
        struct timer *tm = weft_thread_data(*out);
        tm->interval = interval;
        tm->fn = fn;
        tm->arg = arg;
    }
    return rc;
}

int weft_timer_cancel(weft_thread_t *t)
{
    if (!t || t->run != timer_run)
        return -EINVAL;
    struct timer *tm = weft_thread_data(t);
    if (!leave_waiting(tm, TIMER_CANCELLED))
        return 0;
    weft__unpark(&tm->state, INT_MAX, WEFT__WAIT_TIMER);
    return 1;
}
