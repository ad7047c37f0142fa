/*
 * RLock: Python's threading.RLock, on the owner-checked recursive lock of
 * owned.c with the default spin count. The word names the owner, so release
 * by another thread is refused (-EPERM), as Python's RuntimeError.
 */
#include "sync/owned.h"

int weft_rlock_init(weft_rlock_t *rlock, unsigned flags)
{
    if (rlock && WEFT__LOCKDEP_ON())
        weft__lockdep_forget(rlock);
    return rlock ? weft__owned_init(rlock, flags) : -EINVAL;
}

int weft_rlock_destroy(weft_rlock_t *rlock)
{
    if (!rlock)
        return -EINVAL;
    int rc = weft__owned_destroy(rlock);
    if (rc == 0 && WEFT__LOCKDEP_ON())
        weft__lockdep_forget(rlock);
    return rc;
}

static int rlock_acquire(void *rlock, double timeout)
{
    return weft__owned_acquire(rlock, WEFT_CRITSEC_DEFAULT_SPIN, timeout);
}

int weft_rlock_acquire_at(weft_rlock_t *rlock, double timeout, const weft_site_t *site)
{
    return weft__acquire_entry(rlock, WEFT__LD_RECURSIVE, site, timeout, rlock_acquire);
}

int(weft_rlock_acquire)(weft_rlock_t *rlock, double timeout)
{
    return weft__acquire_entry(rlock, WEFT__LD_RECURSIVE, NULL, timeout, rlock_acquire);
}

int weft_rlock_release(weft_rlock_t *rlock)
{
    if (!rlock)
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        return weft__owned_release_checked(rlock, rlock);
    return weft__owned_release(rlock);
}

int weft_rlock_is_owned(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_is_mine(rlock) : -EINVAL;
}

int weft_rlock_consistent(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_consistent(rlock) : -EINVAL;
}
