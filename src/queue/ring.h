/*
 * The bounded multi-producer multi-consumer ring the queues are built on
 * (after Dmitry Vyukov's bounded MPMC queue): no lock, one compare-and-swap
 * per put or get, items copied by value, exactly `capacity` cells.
 *
 * Positions count every put (and every get) since creation; position p lives
 * in cell p % capacity, in lap p / capacity. Each cell carries a sequence
 * number beside its item that says which operation it waits for:
 *
 *     seq == 2 * lap        empty: waits for the put of this lap
 *     seq == 2 * lap + 1    holds that put's item: waits for the get
 *     seq == 2 * (lap + 1)  the get took it: empty for the next lap's put
 *
 * (Counting in steps of two, not Vyukov's p and p + 1, keeps "full" and
 * "empty for the next lap" apart when the capacity is 1; counting laps, not
 * positions, makes a zero-filled cell an empty one of lap 0, so the cells
 * come from calloc and a large ring's pages are only touched when used.)
 *
 * A producer reads the put counter, checks that its cell's seq is the one it
 * expects, and claims the position by advancing the counter with a
 * compare-and-swap; only then does it copy the item in and publish it by
 * storing the next seq (release). A consumer does the mirror image on the
 * get counter. Producers and consumers thus touch the shared counters once
 * each, and the cells hand items over with acquire/release pairs on their
 * own seq. A seq ahead of the expected one means another thread claimed
 * the position first: re-read the counter and retry.
 *
 * A seq behind the expected one means full (for a put) or empty (for a get)
 * only if the other counter agrees: a get whose cell is not published yet
 * while the put counter has moved past it has found a producer between its
 * claim and its publication (perhaps preempted). The ring then waits for
 * that producer instead of reporting "empty", so that a waiter above never
 * goes to sleep with items in the ring and nobody left to wake it.
 *
 * The ring neither sleeps nor counts beyond this: the queues add blocking
 * (queue.c) on top.
 */
#ifndef WEFT_SRC_QUEUE_RING_H
#define WEFT_SRC_QUEUE_RING_H

#include "base/base.h"

typedef struct weft__ring weft__ring_t;

/* capacity >= 1, item_size >= 1. NULL when out of memory or the sizes
 * overflow. */
weft__ring_t *weft__ring_new(size_t capacity, size_t item_size);
void weft__ring_free(weft__ring_t *r);

/* Copy item in (0) or report the ring full (-EAGAIN). If count is not
 * NULL, `add` is added to it once the put is sure to succeed (it has its
 * cell), before the item becomes visible: the queue counts its tasks so. */
int weft__ring_put(weft__ring_t *r, const void *item, _Atomic uint64_t *count, uint64_t add);
/* Copy the oldest item out (0) or report the ring empty (-EAGAIN); a NULL
 * item discards it. */
int weft__ring_get(weft__ring_t *r, void *item);
/* How many items the ring holds (a snapshot, 0 to capacity). */
size_t weft__ring_size(const weft__ring_t *r);

#endif /* WEFT_SRC_QUEUE_RING_H */
