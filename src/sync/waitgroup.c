/*
 * WaitGroup, after Go's sync.WaitGroup: a counter of pending work and the
 * futex that wait() sleeps on while it is not zero.
 *
 * The count word:
 *
 *     bits 0-30  pending work (at most INT32_MAX)
 *     bit  31    SLEEPERS: a waiter may be asleep on the word
 *
 * A waiter sets SLEEPERS (one compare-and-swap) before it sleeps, on a word
 * whose count is not zero, and sleeps while the word is what it set. add()
 * changes the count with a compare-and-swap loop that refuses to go below
 * zero (Go panics there; weft reports -EINVAL and changes nothing); the one
 * that brings it to zero clears SLEEPERS in the same step and, if it was
 * set, wakes everyone. So an add that nobody waits for makes no system call,
 * and no wake-up is lost: a waiter's mark and the add that ends the work
 * meet in one word.
 *
 * Why one word, as Go packs its counter and waiter count into one: the
 * classic use is a waiter that frees the group as soon as wait() returns
 * (it was on the waiter's stack). Once an add has brought the count to
 * zero, that may happen at once, so the add must not touch the group after
 * its compare-and-swap; with the waiters counted in a word of their own it
 * had to read it afterwards. Nothing but the futex call follows now (the
 * process-shared flag is read before).
 */
#include "sync/sync_int.h"

#include <limits.h>

#define COUNT    0x7fffffffu
#define SLEEPERS 0x80000000u

int weft_waitgroup_init(weft_waitgroup_t *wg, unsigned flags)
{
    if (!wg || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *wg = (weft_waitgroup_t){0, 0, flags};
    return 0;
}

int weft_waitgroup_add(weft_waitgroup_t *wg, int n)
{
    if (!wg)
        return -EINVAL;
    _Atomic uint32_t *count = WEFT__ATOMIC(&wg->count);
    unsigned flags = weft__park_flags(WEFT__WAIT_GROUP, wg->flags & WEFT_SHARED);
    uint32_t v = atomic_load(count), word;
    int64_t next;
    /* Every add, not only the last: each done() hands its work to the
     * waiter, and it must precede the count that lets the waiter go. */
    weft__tsan_release(wg);
    do {
        next = (int64_t)(v & COUNT) + n;
        if (next < 0)
            return -EINVAL;
        if (next > INT32_MAX)
            return -EOVERFLOW;
        word = next == 0 ? 0 : (uint32_t)next | (v & SLEEPERS);
    } while (!atomic_compare_exchange_weak(count, &v, word));
    if (next == 0 && (v & SLEEPERS))
        weft__unpark(count, INT_MAX, flags);
    return 0;
}

int weft_waitgroup_done(weft_waitgroup_t *wg)
{
    return weft_waitgroup_add(wg, -1);
}

int weft_waitgroup_wait(weft_waitgroup_t *wg, double timeout)
{
    weft__deadline_t deadline;
    if (!wg || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    _Atomic uint32_t *count = WEFT__ATOMIC(&wg->count);
    unsigned flags = weft__park_flags(WEFT__WAIT_GROUP, wg->flags & WEFT_SHARED);
    uint32_t v = atomic_load(count);
    if (v != 0 && timeout == 0)
        return -EAGAIN;
    while (v != 0) {
        if (!(v & SLEEPERS) && !atomic_compare_exchange_weak(count, &v, v | SLEEPERS))
            continue; /* v is the word now: look again */
        int parked = weft__park(count, v | SLEEPERS, deadline, flags);
        v = atomic_load(count);
        if (parked < 0 && weft__park_outcome(parked, v == 0) < 0)
            return parked;
    }
    weft__tsan_acquire(wg);
    return 0;
}
