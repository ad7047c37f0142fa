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
                      double timeout, unsigned flags)
{
    if (!b || parties == 0 || parties > INT32_MAX || isnan(timeout) || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *b = (weft_barrier_t){.parties = parties, .timeout = timeout, .action = action, .arg = arg};
    weft_lock_init(&b->lock, flags);
    return weft_cond_init(&b->cond, &b->lock, flags);
}

static bool lock_barrier(weft_barrier_t *b);

int weft_barrier_destroy(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return 0;
    int busy = b->count > 0;
    weft_lock_release(&b->lock);
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

/* A wait that came back with the lock taken from a holder that died (a
 * shared barrier whose process was killed): the state may be half-updated,
 * so the barrier breaks, for good if the dead one was inside wait(). */
static int recover(weft_barrier_t *b, int rc)
{
    if (rc != -EOWNERDEAD)
        return rc;
    weft_lock_consistent(&b->lock);
    set_state(b, BROKEN);
    return WEFT_EBROKEN;
}

/* Take the lock; false if it is unrecoverable (never by weft's own doing,
 * since recover() always repairs it). */
static bool lock_barrier(weft_barrier_t *b)
{
    int rc = weft_lock_acquire(&b->lock, WEFT_FOREVER);
    recover(b, rc);
    return rc == 0 || rc == -EOWNERDEAD;
}

static int wait_release(weft_barrier_t *b, double timeout)
{
    if (recover(b, weft_cond_wait_for(&b->cond, released, b, timeout)) < 0) {
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
    if (!lock_barrier(b))
        return WEFT_EBROKEN;
    recover(b, weft_cond_wait_for(&b->cond, settled, b, WEFT_FOREVER));
    if (b->state < 0) {
        weft_lock_release(&b->lock);
        return WEFT_EBROKEN;
    }
    uint32_t index = b->count++;
    int rc = index + 1 == b->parties ? trip(b) : wait_release(b, timeout);
    if (--b->count == 0 && (b->state == DRAINING || b->state == RESETTING))
        set_state(b, FILLING);
    weft_lock_release(&b->lock);
    return rc == 0 ? (int)index : rc;
}

int weft_barrier_abort(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (lock_barrier(b)) {
        set_state(b, BROKEN);
        weft_lock_release(&b->lock);
    }
    return 0;
}

int weft_barrier_reset(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return WEFT_EBROKEN;
    /* With threads inside, they leave broken and the last one out makes the
     * barrier FILLING again; without, it is FILLING at once. */
    set_state(b, b->count > 0 && (b->state == FILLING || b->state == BROKEN) ? RESETTING
                 : b->count > 0                                              ? b->state
                                                                             : FILLING);
    weft_lock_release(&b->lock);
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
    if (!lock_barrier(b))
        return 0;
    int n = b->state == FILLING ? (int)b->count : 0;
    weft_lock_release(&b->lock);
    return n;
}

int weft_barrier_broken(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return 1;
    int broken = b->state == BROKEN;
    weft_lock_release(&b->lock);
    return broken;
}
