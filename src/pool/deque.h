/*
 * The Chase-Lev work-stealing deque, in the C11 form of Lê, Pop, Cohen and
 * Zappa Nardelli (PPoPP 2013): one per pool worker. The owner pushes and
 * takes at the bottom (last in, first out: the task it just made, still
 * hot in its cache); other workers steal at the top (the oldest task,
 * usually the biggest piece of a recursive split).
 *
 * top and bottom are 64-bit counters on cache lines of their own; the
 * elements live in a power-of-two array indexed modulo its size. The owner
 * and thieves meet only over the last element, which they settle with one
 * compare-and-swap on top; the seq_cst fences (take: after publishing the
 * lowered bottom; steal: between reading top and bottom) are the ones the
 * paper proves necessary. The owner grows the array when full, copying the
 * live range; an outgrown array is kept until the deque is destroyed,
 * because a thief may still be reading it.
 *
 * Elements are tasks by value (three words), so that a task needs no
 * memory of its own to be queued (a group's task, weft/pool.h). A thief
 * reads an element before its compare-and-swap settles whether it may
 * have it, and may read it torn, half overwritten by a later push of the
 * owner's into the same slot; but the owner writes that slot again only
 * after top has moved past it, which makes that thief's compare-and-swap
 * fail, so a torn copy is always discarded. Each word is a relaxed atomic,
 * so the read is no data race either.
 *
 * ThreadSanitizer (base/tsan.h): a push releases its slot's address before
 * publishing it, a steal acquires it once it has won, and a grow releases
 * the slots it copies into; so a task's data is handed to its thief even
 * when this file is not instrumented.
 */
#ifndef WEFT_SRC_POOL_DEQUE_H
#define WEFT_SRC_POOL_DEQUE_H

#include "base/base.h"

struct weft__deque_array;

/* What a deque holds: a task as the pool queues it (pool.c says what
 * `owner` means). */
typedef struct weft__task {
    void *(*fn)(void *arg);
    void *arg;
    uintptr_t owner;
} weft__task_t;

typedef struct weft__deque {
    _Atomic int64_t top;
    char pad1[WEFT__CACHE_LINE - sizeof(int64_t)];
    _Atomic int64_t bottom;
    struct weft__deque_array *_Atomic array;
    struct weft__deque_array *retired; /* outgrown arrays (owner only) */
    char pad2[WEFT__CACHE_LINE - sizeof(int64_t) - 2 * sizeof(void *)];
} weft__deque_t;

/* -ENOMEM. */
int weft__deque_init(weft__deque_t *d);
void weft__deque_destroy(weft__deque_t *d);

/* Owner only. push: 0 or -ENOMEM (the array could not grow). take: the
 * newest element into *t, or false when empty. */
int weft__deque_push(weft__deque_t *d, const weft__task_t *t);
bool weft__deque_take(weft__deque_t *d, weft__task_t *t);

/* Any thread: the oldest element into *t, or false when empty or when
 * another thread won the race for it (*lost says which: try again). */
bool weft__deque_steal(weft__deque_t *d, weft__task_t *t, bool *lost);

/* Whether it holds anything (a snapshot). */
bool weft__deque_busy(weft__deque_t *d);

#endif /* WEFT_SRC_POOL_DEQUE_H */
