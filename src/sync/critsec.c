/*
 * Critical section, after Windows' CRITICAL_SECTION: a recursive,
 * owner-checked lock (owned.c) whose spin count the caller sets. enter waits
 * as long as it takes, try_enter never waits.
 *
 * When to use which: the spin count trades CPU for latency. With short
 * critical sections on a machine with spare CPUs a waiter that keeps polling
 * gets the lock the moment it is released, without the two system calls and
 * the context switches of sleeping and being woken; with long sections, or
 * more runnable threads than CPUs, the polling only burns time the holder
 * could use (weft never spins when the process has a single CPU).
 */
#include "sync/owned.h"

int weft_critsec_init(weft_critsec_t *cs, uint32_t spin, unsigned flags)
{
    if (!cs)
        return -EINVAL;
    cs->spin = spin;
    if (WEFT__LOCKDEP_ON())
        weft__lockdep_forget(cs);
    return weft__owned_init(&cs->lock, flags);
}

int weft_critsec_destroy(weft_critsec_t *cs)
{
    if (!cs)
        return -EINVAL;
    int rc = weft__owned_destroy(&cs->lock);
    if (rc == 0 && WEFT__LOCKDEP_ON())
        weft__lockdep_forget(cs);
    return rc;
}

/* enter (timeout forever, the section's spin count) or try_enter (0). */
static int cs_acquire(void *obj, double timeout)
{
    weft_critsec_t *cs = obj;
    uint32_t spin = timeout == 0 ? 0 : __atomic_load_n(&cs->spin, __ATOMIC_RELAXED);
    return weft__owned_acquire(&cs->lock, spin, timeout);
}

int weft_critsec_enter_at(weft_critsec_t *cs, const weft_site_t *site)
{
    return weft__acquire_entry(cs, WEFT__LD_RECURSIVE, site, WEFT_FOREVER, cs_acquire);
}

int(weft_critsec_enter)(weft_critsec_t *cs)
{
    return weft__acquire_entry(cs, WEFT__LD_RECURSIVE, NULL, WEFT_FOREVER, cs_acquire);
}

int weft_critsec_try_enter_at(weft_critsec_t *cs, const weft_site_t *site)
{
    return weft__acquire_entry(cs, WEFT__LD_RECURSIVE, site, 0, cs_acquire);
}

int(weft_critsec_try_enter)(weft_critsec_t *cs)
{
    return weft__acquire_entry(cs, WEFT__LD_RECURSIVE, NULL, 0, cs_acquire);
}

int weft_critsec_leave(weft_critsec_t *cs)
{
    if (!cs)
        return -EINVAL;
    if (WEFT__LOCKDEP_ON())
        return weft__owned_release_checked(&cs->lock, cs);
    return weft__owned_release(&cs->lock);
}

long weft_critsec_set_spin(weft_critsec_t *cs, uint32_t spin)
{
    return cs ? (long)__atomic_exchange_n(&cs->spin, spin, __ATOMIC_RELAXED) : -EINVAL;
}

int weft_critsec_consistent(weft_critsec_t *cs)
{
    return cs ? weft__owned_consistent(&cs->lock) : -EINVAL;
}
