/*
 * Barrier: Python's threading.Barrier, state machine and all.
 *
 *     FILLING (0)     threads arrive and wait
 *     DRAINING (1)    the last one arrived: waiters leave; newcomers wait
 *                     until the last of them has left
 *     RESETTING (-1)  reset() while threads waited: they leave broken;
 *                     the barrier is FILLING again once they have all left
 *     BROKEN (-2)     a timeout, abort() or a failed action; everyone gets
 *                     WEFT_EBROKEN until reset()
 *
 * Everything happens under one Lock and one Condition bound to it, exactly
 * as CPython does it: the draining state is what lets a thread that loops
 * straight back into wait() join the next cycle without being counted in the
 * one still emptying. Sleeping is rare in practice, because the Condition's
 * waiters poll briefly before they sleep.
 */
#include "sync/sync_int.h"

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

int weft_barrier_init(weft_barrier_t *b, unsigned parties, int (*action)(void *arg), void *arg,
                      double timeout)
{
    if (!b || parties == 0 || parties > INT32_MAX || isnan(timeout))
        return -EINVAL;
    *b = (weft_barrier_t){.lock = WEFT_LOCK_INIT,
                          .parties = parties,
                          .timeout = timeout,
                          .action = action,
                          .arg = arg};
    return weft_cond_init(&b->cond, &b->lock);
}

int weft_barrier_destroy(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    int busy = 0;
    WEFT_WITH (&b->lock) {
        busy = b->count > 0;
    }
    return busy ? -EBUSY : 0;
}

static void set_state(weft_barrier_t *b, int32_t state)
{
    b->state = state;
    weft_cond_notify_all(&b->cond);
}

static bool settled(void *arg)
{
    weft_barrier_t *b = arg;
    return b->state != DRAINING && b->state != RESETTING;
}

static bool released(void *arg)
{
    return ((weft_barrier_t *)arg)->state != FILLING;
}

/* The last arrival: run the action, then let everyone go. */
static int trip(weft_barrier_t *b)
{
    if (b->action && b->action(b->arg) < 0) {
        set_state(b, BROKEN);
        return WEFT_EBROKEN;
    }
    set_state(b, DRAINING);
    return 0;
}

static int wait_release(weft_barrier_t *b, double timeout)
{
    if (weft_cond_wait_for(&b->cond, released, b, timeout) < 0) {
        set_state(b, BROKEN);
        return WEFT_EBROKEN;
    }
    return b->state < 0 ? WEFT_EBROKEN : 0;
}

int weft_barrier_wait(weft_barrier_t *b, double timeout)
{
    if (!b || isnan(timeout))
        return -EINVAL;
    if (timeout == WEFT_BARRIER_DEFAULT)
        timeout = b->timeout;
    int rc = 0;
    WEFT_WITH (&b->lock) {
        weft_cond_wait_for(&b->cond, settled, b, WEFT_FOREVER);
        if (b->state < 0) {
            rc = WEFT_EBROKEN;
            break;
        }
        uint32_t index = b->count++;
        rc = index + 1 == b->parties ? trip(b) : wait_release(b, timeout);
        if (rc == 0)
            rc = (int)index;
        if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING))
            set_state(b, FILLING);
    }
    return rc;
}

int weft_barrier_abort(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    WEFT_WITH (&b->lock) {
        set_state(b, BROKEN);
    }
    return 0;
}

int weft_barrier_reset(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    WEFT_WITH (&b->lock) {
        /* With threads inside, they leave broken and the last one out makes
         * the barrier FILLING again; without, it is FILLING at once. */
        set_state(b, b->count > 0 && (b->state == FILLING || b->state == BROKEN) ? RESETTING
                     : b->count > 0                                              ? b->state
                                                                                 : FILLING);
    }
    return 0;
}

int weft_barrier_parties(weft_barrier_t *b)
{
    return b ? (int)b->parties : -EINVAL;
}

int weft_barrier_n_waiting(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    int n = 0;
    WEFT_WITH (&b->lock) {
        n = b->state == FILLING ? (int)b->count : 0;
    }
    return n;
}

int weft_barrier_broken(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    int broken = 0;
    WEFT_WITH (&b->lock) {
        broken = b->state == BROKEN;
    }
    return broken;
}
