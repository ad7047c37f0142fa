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
    return weft__owned_init(&cs->lock, flags);
}

int weft_critsec_destroy(weft_critsec_t *cs)
{
    return cs ? weft__owned_destroy(&cs->lock) : -EINVAL;
}

int weft_critsec_enter(weft_critsec_t *cs)
{
    if (!cs)
        return -EINVAL;
    return weft__owned_acquire(&cs->lock, __atomic_load_n(&cs->spin, __ATOMIC_RELAXED),
                               WEFT_FOREVER);
}

int weft_critsec_try_enter(weft_critsec_t *cs)
{
    return cs ? weft__owned_acquire(&cs->lock, 0, 0) : -EINVAL;
}

int weft_critsec_leave(weft_critsec_t *cs)
{
    return cs ? weft__owned_release(&cs->lock) : -EINVAL;
}

long weft_critsec_set_spin(weft_critsec_t *cs, uint32_t spin)
{
    return cs ? (long)__atomic_exchange_n(&cs->spin, spin, __ATOMIC_RELAXED) : -EINVAL;
}

int weft_critsec_consistent(weft_critsec_t *cs)
{
    return cs ? weft__owned_consistent(&cs->lock) : -EINVAL;
}
