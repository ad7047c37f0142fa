/*
 * The bounded multi-producer multi-consumer ring the queues are built on
 * (after Dmitry Vyukov's bounded MPMC queue): no lock, one compare-and-swap
 * per put or get, items copied by value.
 *
 * Each cell carries a sequence number beside its item. For the cell at
 * position p (p counts every put since creation; the cell is p % capacity):
 *
 *     seq == p          the cell is empty and waits for the put number p
 *     seq == p + 1      it holds the item of put p, for the get number p
 *     seq == p + cap    the get took it; empty again, for put p + cap
 *
 * A producer reads the put counter, checks that its cell's seq equals it,
 * and claims the position by advancing the counter with a compare-and-swap;
 * only then does it copy the item in and publish it by storing p + 1
 * (release). A consumer does the mirror image on the get counter. Producers
 * and consumers thus touch the shared counters once each, and the cells
 * hand items over with acquire/release pairs on their own seq. A seq behind
 * the counter means full (for a put) or empty (for a get); a seq ahead
 * means another thread claimed the position first: re-read and retry.
 *
 * The ring does not block and does not count: the queues add waiting
 * (futexes on the fill level) and Python's exact maxsize on top.
 */
#ifndef WEFT_SRC_QUEUE_RING_H
#define WEFT_SRC_QUEUE_RING_H

#include "base/base.h"

typedef struct weft__ring weft__ring_t;

/* capacity is rounded up to a power of two (at least 2); item_size >= 1.
 * NULL when out of memory or the sizes overflow. */
weft__ring_t *weft__ring_new(size_t capacity, size_t item_size);
void weft__ring_free(weft__ring_t *r);
size_t weft__ring_capacity(const weft__ring_t *r);

/* Copy item in (0) or report the ring full (-EAGAIN). */
int weft__ring_put(weft__ring_t *r, const void *item);
/* Copy the oldest item out (0) or report the ring empty (-EAGAIN). */
int weft__ring_get(weft__ring_t *r, void *item);

#endif /* WEFT_SRC_QUEUE_RING_H */
