/*
 * Event: Python's threading.Event in one futex word.
 *
 *     bit 0      the flag
 *     bit 1      waiters: some thread may be asleep on the word
 *     bits 2-31  generation: how many times the flag went from clear to set
 *
 * A waiter notes the generation when it starts and returns as soon as the
 * flag is set or the generation has moved on. The generation is what makes
 * set() followed at once by clear() release every thread that was waiting,
 * as Python promises: by the time a woken waiter looks, the flag may be clear
 * again, but the generation has changed. set() wakes only if the waiters bit
 * was set, so setting an event nobody waits for makes no system call.
 */
#include "sync/sync_int.h"

#include <limits.h>

#define EV_SET     1u
#define EV_WAITERS 2u
#define EV_GEN_ONE 4u

int weft_event_init(weft_event_t *event, unsigned flags)
{
    if (!event || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *event = (weft_event_t){0, flags};
    return 0;
}

int weft_event_destroy(weft_event_t *event)
{
    return event ? 0 : -EINVAL;
}

int weft_event_set(weft_event_t *event)
{
    if (!event)
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&event->word);
    weft__tsan_release(event);
    uint32_t v = atomic_load(w);
    do {
        if (v & EV_SET)
            return 0;
    } while (!atomic_compare_exchange_weak(w, &v, ((v & ~EV_WAITERS) + EV_GEN_ONE) | EV_SET));
    if (v & EV_WAITERS)
        weft__unpark(w, INT_MAX, weft__park_flags(WEFT__WAIT_EVENT, event->flags & WEFT_SHARED));
    return 0;
}

int weft_event_clear(weft_event_t *event)
{
    if (!event)
        return -EINVAL;
    atomic_fetch_and(WEFT__ATOMIC(&event->word), ~EV_SET);
    return 0;
}

int weft_event_is_set(weft_event_t *event)
{
    return event ? (int)(atomic_load(WEFT__ATOMIC(&event->word)) & EV_SET) : -EINVAL;
}

int weft_event_wait(weft_event_t *event, double timeout)
{
    weft__deadline_t deadline;
    if (!event || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    _Atomic uint32_t *w = WEFT__ATOMIC(&event->word);
    uint32_t v = atomic_load(w);
    uint32_t gen = v / EV_GEN_ONE;
    while (!(v & EV_SET) && v / EV_GEN_ONE == gen) {
        if (timeout == 0)
            return -EAGAIN;
        if (!(v & EV_WAITERS) && !atomic_compare_exchange_weak(w, &v, v | EV_WAITERS))
            continue;
        int parked = weft__park(w, v | EV_WAITERS, deadline,
                                weft__park_flags(WEFT__WAIT_EVENT, event->flags & WEFT_SHARED));
        if (parked < 0) {
            v = atomic_load(w);
            if (weft__park_outcome(parked, (v & EV_SET) || v / EV_GEN_ONE != gen) < 0)
                return parked;
            break;
        }
        v = atomic_load(w);
    }
    weft__tsan_acquire(event);
    return 0;
}
