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
#include "base/tsan.h"

#include <string.h>

typedef struct weft__ring weft__ring_t;

struct weft__ring {
    _Atomic size_t put_pos;
    char pad1[WEFT__CACHE_LINE - sizeof(size_t)];
    _Atomic size_t get_pos;
    char pad2[WEFT__CACHE_LINE - sizeof(size_t)];
    size_t cap, stride, item_size;
    unsigned shift; /* log2(cap) when cap is a power of two, else 0 */
    unsigned char *cells;
};

/* capacity >= 1, item_size >= 1. NULL when out of memory or the sizes
 * overflow. */
weft__ring_t *weft__ring_new(size_t capacity, size_t item_size);
void weft__ring_free(weft__ring_t *r);

/* The operations, inline in the queue: the fast path of each is a few
 * instructions, the loop that waits out an operation in flight is in
 * ring.c. */

/* The cell and lap of position pos. */
static inline _Atomic size_t *weft__ring_locate(const weft__ring_t *r, size_t pos, size_t *lap)
{
    size_t idx;
    if (r->shift || r->cap == 1) {
        *lap = pos >> r->shift;
        idx = pos & (r->cap - 1);
    } else {
        *lap = pos / r->cap;
        idx = pos % r->cap;
    }
    return (_Atomic size_t *)(r->cells + idx * r->stride);
}

static inline void *weft__ring_item(_Atomic size_t *seq)
{
    return (unsigned char *)seq + sizeof(size_t);
}

/* An item's copy: a word (a pointer, a number: most queues' items) in one
 * move, anything else through the C library's memcpy. */
static WEFT__INLINE void weft__ring_copy(void *to, const void *from, size_t size)
{
    if (size == sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, from, sizeof word);
        memcpy(to, &word, sizeof word);
    } else {
        memcpy(to, from, size);
    }
}

/*
 * Claim the next position on `counter` (the put or the get counter; `full`
 * is 0 for a put, 1 for a get, the low bit of the seq it expects). Returns
 * the cell, or NULL when the ring is full (put) or empty (get): the cell
 * lags behind and the other counter, `other`, says no operation on it is in
 * flight: for a put the get counter is a whole lap behind, for a get the put
 * counter has not passed the position.
 */
enum weft__ring_look { WEFT__RING_TAKEN, WEFT__RING_NONE, WEFT__RING_IN_FLIGHT, WEFT__RING_AGAIN };

/* One look at position *pos: the cell taken (*cell), none to take, an
 * operation on the cell in flight, or look again at *pos, moved on. */
static WEFT__INLINE enum weft__ring_look weft__ring_look(weft__ring_t *r, _Atomic size_t *counter,
                                                         _Atomic size_t *other, size_t full,
                                                         size_t *pos, _Atomic size_t **cell)
{
    size_t lap;
    _Atomic size_t *seq = weft__ring_locate(r, *pos, &lap);
    size_t want = 2 * lap + full;
    size_t have = atomic_load_explicit(seq, memory_order_acquire);
    if (have == want) {
        if (!atomic_compare_exchange_weak_explicit(counter, pos, *pos + 1, memory_order_relaxed,
                                                   memory_order_relaxed))
            return WEFT__RING_AGAIN;
        weft__tsan_acquire(seq);
        *cell = seq;
        return WEFT__RING_TAKEN;
    }
    size_t now = atomic_load_explicit(counter, memory_order_acquire);
    if ((intptr_t)(have - want) < 0 && now == *pos) {
        /* Signed: `other` may have moved on since `have` was read. */
        intptr_t ahead = (intptr_t)(atomic_load_explicit(other, memory_order_acquire) - *pos);
        return (full ? ahead <= 0 : -ahead >= (intptr_t)r->cap) ? WEFT__RING_NONE
                                                                : WEFT__RING_IN_FLIGHT;
    }
    *pos = now;
    return WEFT__RING_AGAIN;
}

/* The first look inline, which is all that an operation on a ring not
 * fought over takes; the loop with its backoff out of line. */
_Atomic size_t *weft__ring_claim_slow(weft__ring_t *r, _Atomic size_t *counter,
                                      _Atomic size_t *other, size_t full, size_t pos);

static WEFT__INLINE _Atomic size_t *weft__ring_claim(weft__ring_t *r, _Atomic size_t *counter,
                                                     _Atomic size_t *other, size_t full)
{
    size_t pos = atomic_load_explicit(counter, memory_order_relaxed);
    _Atomic size_t *cell = NULL;
    enum weft__ring_look first = weft__ring_look(r, counter, other, full, &pos, &cell);
    return first == WEFT__RING_TAKEN || first == WEFT__RING_NONE
               ? cell
               : weft__ring_claim_slow(r, counter, other, full, pos);
}

/* Hand a claimed cell on: to the get (after a put) or the next put. */
static inline void weft__ring_pass_on(_Atomic size_t *seq)
{
    weft__tsan_release(seq);
    atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
                          memory_order_release);
}

static inline int weft__ring_put(weft__ring_t *r, const void *item, _Atomic uint64_t *count,
                                 uint64_t add)
{
    _Atomic size_t *seq = weft__ring_claim(r, &r->put_pos, &r->get_pos, 0);
    if (!seq)
        return -EAGAIN;
    if (count)
        atomic_fetch_add_explicit(count, add, memory_order_release);
    weft__ring_copy(weft__ring_item(seq), item, r->item_size);
    weft__ring_pass_on(seq);
    return 0;
}

static inline int weft__ring_get(weft__ring_t *r, void *item)
{
    _Atomic size_t *seq = weft__ring_claim(r, &r->get_pos, &r->put_pos, 1);
    if (!seq)
        return -EAGAIN;
    if (item)
        weft__ring_copy(item, weft__ring_item(seq), r->item_size);
    weft__ring_pass_on(seq);
    return 0;
}

/* Copy item in (0) or report the ring full (-EAGAIN). If count is not
 * NULL, `add` is added to it once the put is sure to succeed (it has its
 * cell), before the item becomes visible: the queue counts its tasks so. */
/* Copy the oldest item out (0) or report the ring empty (-EAGAIN); a NULL
 * item discards it. */
/* How many items the ring holds (a snapshot, 0 to capacity). */
size_t weft__ring_size(const weft__ring_t *r);

#endif /* WEFT_SRC_QUEUE_RING_H */
