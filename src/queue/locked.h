/*
 * The stores under LifoQueue and PriorityQueue: an array under a weft Lock,
 * used as a stack or as a binary min-heap.
 *
 * Neither order has a cheap lock-free form (a lock-free stack serialises on
 * its top pointer anyway, and a heap reorders items on every operation), so
 * a 4-byte Lock held for a few dozen nanoseconds serves best; the blocking
 * queue on top only takes it to put or get, never while asleep.
 *
 * The heap keeps equal priorities in insertion order, as Python's
 * PriorityQueue users get by putting (priority, count, item) tuples: each
 * entry carries a 64-bit insertion number that breaks ties. The array grows
 * by doubling and never shrinks below its high-water mark.
 */
#ifndef WEFT_SRC_QUEUE_LOCKED_H
#define WEFT_SRC_QUEUE_LOCKED_H

#include "base/base.h"

typedef struct weft__locked weft__locked_t;
typedef int (*weft__cmp_fn)(const void *a, const void *b, void *arg);

/* cmp NULL: a stack (last in, first out); else a min-heap ordered by cmp
 * (negative: a comes first). maxsize 0 is unbounded. */
weft__locked_t *weft__locked_new(size_t item_size, size_t maxsize, weft__cmp_fn cmp, void *arg);
void weft__locked_free(weft__locked_t *s);

/* 0, -EAGAIN (maxsize reached) or -ENOMEM. If count is not NULL, `add` is
 * added to it under the lock when the put succeeds. */
int weft__locked_put(weft__locked_t *s, const void *item, _Atomic uint64_t *count, uint64_t add);
/* 0 or -EAGAIN (empty). item may be NULL to discard. */
int weft__locked_get(weft__locked_t *s, void *item);
size_t weft__locked_size(weft__locked_t *s);

#endif /* WEFT_SRC_QUEUE_LOCKED_H */
