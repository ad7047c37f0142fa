/*
 * weft/queue.h: thread-safe queues, after Python's queue module.
 *
 *     Python                          weft
 *     q = Queue(maxsize)              weft_queue_new(&q, sizeof(item), maxsize)
 *     LifoQueue(maxsize)              weft_lifo_queue_new(&q, sizeof(item), maxsize)
 *     PriorityQueue(maxsize)          weft_priority_queue_new(&q, size, maxsize, cmp, arg)
 *     SimpleQueue()                   weft_simple_queue_new(&q, sizeof(item))
 *     q.put(x, timeout=t)             weft_queue_put(q, &x, t)
 *     q.put_nowait(x)  (Full)         weft_queue_put(q, &x, 0)  (-EAGAIN)
 *     x = q.get(timeout=t)            weft_queue_get(q, &x, t)
 *     q.get_nowait()   (Empty)        weft_queue_get(q, &x, 0)  (-EAGAIN)
 *     q.qsize(), q.empty(), q.full()  weft_queue_qsize(q), _empty(q), _full(q)
 *     q.task_done(), q.join()         weft_queue_task_done(q), weft_queue_join(q, t)
 *     q.shutdown(immediate)           weft_queue_shutdown(q, immediate)
 *     ShutDown                        WEFT_ESHUTDOWN
 *
 * Items are copied in and out by value: a queue is created with its item
 * size, and put copies that many bytes from the pointer it is given, get
 * copies them out. To pass large objects, queue pointers to them.
 *
 * maxsize 0 means unbounded, as in Python; otherwise the queue holds at most
 * maxsize items and a put waits (up to its timeout) for room. Timeouts are
 * weft's: seconds as a double, negative waits forever, 0 tries once and
 * reports -EAGAIN (Python's Full and Empty), a timed wait that runs out
 * reports -ETIMEDOUT.
 *
 * Implementation. Queue is lock-free: a bounded queue is a ring of exactly
 * maxsize cells with a sequence number each, an unbounded one a chain of
 * blocks claimed by index; threads sleep only when the queue is full or
 * empty, and a put or get wakes a sleeper only if there is one (no system
 * call otherwise). LifoQueue and PriorityQueue keep an array (a stack, a
 * heap) under a lock. SimpleQueue is the unbounded Queue without the task
 * count and shutdown, which makes its put and get a little cheaper.
 *
 * Tasks. Every put counts an unfinished task once its item is in the queue
 * (a put still waiting for room is none); task_done counts one done, and
 * join waits until none are left. More task_done calls than items put is
 * -EINVAL (Python's ValueError).
 *
 * Shutdown (Python 3.13). After weft_queue_shutdown(q, false), put fails with
 * WEFT_ESHUTDOWN at once, get still returns the items left and then fails
 * with WEFT_ESHUTDOWN instead of waiting; threads blocked in put or get wake
 * up and do the same. Once shutdown has returned, every put that succeeded
 * has its item got by a later get: a getter is not told WEFT_ESHUTDOWN
 * while a racing put's item can still arrive (shutdown waits for the puts
 * already past their check, a few instructions each). With immediate, the
 * items left are discarded as well,
 * each counted as a task done (so join returns once the tasks taken out
 * before are done), and get fails at once. Shutting down twice is fine;
 * immediate after plain shutdown discards what is left.
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <weft/base.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_queue weft_queue_t;

/* A PriorityQueue's order: negative when a comes out before b (lowest
 * first, as Python's heapq), 0 for equal priorities, which come out in the
 * order they were put. arg is the one given at creation. */
typedef int (*weft_queue_cmp_fn)(const void *a, const void *b, void *arg);

/* Constructors: *q receives the new queue. item_size >= 1. Errors: -EINVAL,
 * -ENOMEM. */
WEFT_API int weft_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize);
WEFT_API int weft_lifo_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize);
WEFT_API int weft_priority_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize,
                                     weft_queue_cmp_fn cmp, void *arg);
WEFT_API int weft_simple_queue_new(weft_queue_t **q, size_t item_size);

/* Free the queue and any items in it. -EBUSY while threads sleep in it; the
 * caller must know that no thread is still inside a call on the queue (has
 * joined them, say): a thread just woken may still be on its way out. */
WEFT_API int weft_queue_free(weft_queue_t *q);

/* Errors: -EINVAL, -EAGAIN (timeout 0 and full), -ETIMEDOUT, -ENOMEM (an
 * unbounded queue could not grow), WEFT_ESHUTDOWN. */
WEFT_API int weft_queue_put(weft_queue_t *q, const void *item, double timeout);
/* Errors: -EINVAL, -EAGAIN (timeout 0 and empty), -ETIMEDOUT, WEFT_ESHUTDOWN
 * (shut down and empty). */
WEFT_API int weft_queue_get(weft_queue_t *q, void *item, double timeout);

/* The number of items (a snapshot: other threads may change it at once).
 * -EINVAL for NULL. */
WEFT_API long weft_queue_qsize(weft_queue_t *q);
/* 1 or 0 (snapshots, like qsize), -EINVAL for NULL. */
WEFT_API int weft_queue_empty(weft_queue_t *q);
WEFT_API int weft_queue_full(weft_queue_t *q);

/* Errors: -EINVAL (NULL, or more calls than items put), -ENOTSUP
 * (SimpleQueue). */
WEFT_API int weft_queue_task_done(weft_queue_t *q);
/* Wait until every item put has been marked done. Errors: -EINVAL,
 * -EAGAIN / -ETIMEDOUT, -ENOTSUP (SimpleQueue). */
WEFT_API int weft_queue_join(weft_queue_t *q, double timeout);
/* Errors: -EINVAL, -ENOTSUP (SimpleQueue). */
WEFT_API int weft_queue_shutdown(weft_queue_t *q, bool immediate);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_QUEUE_H */
