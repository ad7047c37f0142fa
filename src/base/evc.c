/*
 * The eventcount (design in evc.h): the sleeping side and the wake-up.
 */
#include "base/evc.h"

void weft__evc_wake(weft__evc_t *e, int n)
{
    atomic_fetch_add(&e->seq, 1);
    weft__futex_wake(&e->seq, n, false);
}

/* Poll before registering: a partner that answers within microseconds (a
 * hand-off between two running threads) then costs neither side a system
 * call. */
static int spin(int (*attempt)(void *arg), void *arg)
{
    int rc = -EAGAIN;
    if (!weft__spin_pays())
        return rc;
    weft__stall_t stall = WEFT__STALL_INIT;
    for (int i = 0; i < 8 && rc == -EAGAIN; i++) {
        weft__stall(&stall);
        rc = attempt(arg);
    }
    return rc;
}

int weft__evc_wait(weft__evc_t *e, int (*attempt)(void *arg), void *arg,
                   weft__deadline_t deadline)
{
    int rc = spin(attempt, arg);
    if (rc != -EAGAIN)
        return rc;
    atomic_fetch_add(&e->waiters, 1);
    for (;;) {
        uint32_t key = atomic_load(&e->seq);
        if ((rc = attempt(arg)) != -EAGAIN)
            break;
        if (weft__futex_wait(&e->seq, key, deadline, false) == -ETIMEDOUT) {
            if ((rc = attempt(arg)) == -EAGAIN)
                rc = -ETIMEDOUT;
            break;
        }
    }
    atomic_fetch_sub(&e->waiters, 1);
    return rc;
}
