/*
 * RLock: Python's threading.RLock, on the owner-checked recursive lock of
 * owned.c with the default spin count. The word names the owner, so release
 * by another thread is refused (-EPERM), as Python's RuntimeError.
 */
#include "sync/owned.h"

int weft_rlock_init(weft_rlock_t *rlock, unsigned flags)
{
    return rlock ? weft__owned_init(rlock, flags) : -EINVAL;
}

int weft_rlock_destroy(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_destroy(rlock) : -EINVAL;
}

int weft_rlock_acquire(weft_rlock_t *rlock, double timeout)
{
    if (!rlock)
        return -EINVAL;
    return weft__owned_acquire(rlock, WEFT_CRITSEC_DEFAULT_SPIN, timeout);
}

int weft_rlock_release(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_release(rlock) : -EINVAL;
}

int weft_rlock_is_owned(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_is_mine(rlock) : -EINVAL;
}

int weft_rlock_consistent(weft_rlock_t *rlock)
{
    return rlock ? weft__owned_consistent(rlock) : -EINVAL;
}
