/*
 * A binary min-heap of timers, ordered by deadline and, among equal
 * deadlines, by the order they were added (so timers due together fire in
 * the order they were set). Each node knows its own index, so removing a
 * timer that did not fire is O(log n) too, and a million timers cost 8
 * bytes of heap array each plus the node the caller embeds.
 *
 * Not thread-safe: a loop's heap is touched by its own thread only.
 */
#ifndef WEFT_SRC_ASYNC_HEAP_H
#define WEFT_SRC_ASYNC_HEAP_H

#include "base/base.h"

#include <weft/async.h>

#include <stddef.h>

/* struct weft__timer is in weft/async.h (a timeout scope embeds one):
 * its deadline, the order among equal deadlines, its index in the heap's
 * array (WEFT__TIMER_IDLE when not in it) and what firing it does. */
#define WEFT__TIMER_IDLE SIZE_MAX

struct weft__heap {
    struct weft__timer **nodes;
    size_t len, cap;
    uint64_t seq;
};

/* Room for n timers: 0, or -ENOMEM. Pushing never allocates, so that a
 * task's park, which cannot fail, never needs memory: the loop reserves a
 * place for each task and each timeout scope when it is made. */
int weft__heap_reserve(struct weft__heap *h, size_t n);
/* Add t (the caller reserved its place). */
void weft__heap_push(struct weft__heap *h, struct weft__timer *t, weft__deadline_t deadline);
/* Remove t if it is in the heap (else nothing). */
void weft__heap_remove(struct weft__heap *h, struct weft__timer *t);
/* The earliest timer, or NULL. */
static inline struct weft__timer *weft__heap_top(const struct weft__heap *h)
{
    return h->len ? h->nodes[0] : NULL;
}
void weft__heap_free(struct weft__heap *h);

#endif /* WEFT_SRC_ASYNC_HEAP_H */
