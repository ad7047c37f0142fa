/*
 * Time: deadlines and sleeping, all on CLOCK_MONOTONIC.
 *
 * A relative timeout becomes an absolute deadline once, at the start of an
 * operation; every wait inside it (a futex wait that may wake spuriously, a
 * retry after EINTR) then runs to that same deadline, so the total wait is
 * never longer than asked for, and never shorter: a wait only reports
 * -ETIMEDOUT after reading the clock past the deadline.
 */
#include "base/park.h"

#include <math.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

int64_t weft__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

double weft_monotonic(void)
{
    return (double)weft__now_ns() / (double)NS_PER_SEC;
}

int weft__deadline_from(int64_t start, double timeout, weft__deadline_t *out)
{
    if (isnan(timeout))
        return -EINVAL;
    if (timeout < 0) {
        *out = WEFT__NEVER;
        return 0;
    }
    double ns = timeout * (double)NS_PER_SEC;
    if (ns >= (double)(WEFT__NEVER - start)) {
        *out = WEFT__NEVER;
        return 0;
    }
    /* Round up (by hand: the library does not link libm): a deadline a
     * fraction of a nanosecond short would end the wait early. */
    int64_t whole = (int64_t)ns;
    *out = start + whole + ((double)whole < ns);
    return 0;
}

int weft__deadline(double timeout, weft__deadline_t *out)
{
    /* A wait without end reads no clock: a worker waiting for its own
     * sub-tasks may wait millions of times a second, and the clock took 5%
     * of fib(30) with futures (bench/pool.c). */
    if (timeout < 0) {
        *out = WEFT__NEVER;
        return 0;
    }
    return weft__deadline_from(weft__now_ns(), timeout, out);
}

int weft__timeout_error(double timeout)
{
    return timeout == 0 ? -EAGAIN : -ETIMEDOUT;
}

int weft_sleep(double seconds)
{
    if (isnan(seconds) || seconds < 0 || isinf(seconds))
        return -EINVAL;
    weft__deadline_t deadline;
    weft__deadline(seconds, &deadline);
    /* Parked on a word that nobody unparks, so that only the deadline ends
     * the sleep, and a task's sleep suspends the task alone. */
    _Atomic uint32_t never = 0;
    int rc;
    while ((rc = weft__park(&never, 0, deadline, WEFT__WAIT_SLEEP | WEFT__PARK_LOOP)) != -ETIMEDOUT)
        if (rc == -ECANCELED) /* a task's sleep, cancelled */
            return rc;
    return 0;
}

int weft_wait_fd(int fd, unsigned events, double timeout)
{
    weft__deadline_t deadline;
    if (fd < 0 || !events || (events & ~(WEFT_READABLE | WEFT_WRITABLE)) ||
        weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    return weft__park_fd(fd, events, deadline, WEFT__WAIT_FD);
}

int weft_wait_readable(int fd, double timeout)
{
    return weft_wait_fd(fd, WEFT_READABLE, timeout);
}
