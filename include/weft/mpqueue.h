/*
 * weft/mpqueue.h: queues between processes, after Python's
 * multiprocessing.Queue, SimpleQueue and JoinableQueue.
 *
 *     Python                                   weft
 *     q = Queue(maxsize)                       weft_mpqueue_new(&q, &(weft_mpqueue_opts_t){.maxsize})
 *     q = SimpleQueue()                        weft_mpqueue_new(&q, NULL)
 *     q = JoinableQueue()                      opts.joinable = true
 *     q.put(obj, block, timeout)               weft_mpqueue_put(q, buf, len, timeout)
 *     q.get(block, timeout)                    weft_mpqueue_get(q, buf, cap, timeout),
 *                                              weft_mpqueue_get_alloc(q, &buf, timeout)
 *     q.qsize(), q.empty(), q.full()           weft_mpqueue_qsize(q), _empty(q), _full(q)
 *     q.task_done(), q.join()                  weft_mpqueue_task_done(q), weft_mpqueue_join(q, t)
 *     q.close()                                weft_mpqueue_close(q)
 *
 * Messages are bytes (C has no pickling), copied into a ring in shared
 * memory and out again, whole and in order. The queue is a memfd; give it
 * to a child with weft_give_mpqueue(q) in opts.give and take it there with
 * weft_process_given_mpqueue (weft/process.h), under every start method.
 * In a forked child, every call on a queue it was not given is -EBADF
 * (though the fork copied the handle). By hand: keep weft_mpqueue_fd(q) in
 * opts.keep_fds and attach with weft_mpqueue_from_fd. Unlike Python's, a
 * put does not go through a
 * feeder thread: when it returns, the message is in the queue (qsize
 * counts it, a get in any process can take it), and nothing is lost if
 * the process exits right after.
 *
 * Crashes. A process killed in the middle of a put or a get leaves the
 * queue whole: the message it was putting is either entirely in the queue
 * or not at all, and the one it was getting either still there or gone.
 * The next process to use the queue finds out (the robust lock inside) and
 * completes or discards the half-done step before going on. A process
 * killed while waiting leaves nothing behind.
 *
 * Timeouts cover the whole call, including the wait for the queue's
 * internal lock while another process holds it (one stopped in the middle
 * of a put, say): a timeout of 0 tries once, and a lock that is busy then
 * is -EAGAIN like a full or empty queue; a positive timeout is -ETIMEDOUT
 * at its deadline whatever it was waiting for. The calls without a timeout
 * (qsize, empty, full, task_done) wait for the lock as long as it takes.
 *
 * Capacity: `capacity` bytes of messages (each costs its length rounded up
 * to 8, plus 8), and at most `maxsize` messages when maxsize > 0. A put
 * waits for room; a message that could never fit is -EMSGSIZE.
 */
#ifndef WEFT_MPQUEUE_H
#define WEFT_MPQUEUE_H

#include <weft/base.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_mpqueue weft_mpqueue_t;

typedef struct weft_mpqueue_opts {
    size_t maxsize;  /* messages; 0: no limit but capacity */
    size_t capacity; /* bytes of ring; 0: 1 MiB */
    bool joinable;   /* task_done and join (JoinableQueue) */
} weft_mpqueue_opts_t;

/* Errors: -EINVAL (maxsize or capacity over 2^31, or capacity below 64),
 * -ENOMEM, -EMFILE. */
WEFT_API int weft_mpqueue_new(weft_mpqueue_t **q, const weft_mpqueue_opts_t *opts);
/* Attach a queue by its descriptor, which the handle takes over. Errors:
 * -EINVAL (not a weft queue), -EBADF (not an open descriptor), -ENOMEM. */
WEFT_API int weft_mpqueue_from_fd(weft_mpqueue_t **q, int fd);
/* The descriptor (for keep_fds). -EINVAL; -EBADF (a queue not given). */
WEFT_API int weft_mpqueue_fd(weft_mpqueue_t *q);
/* Put len bytes (len may be 0) as one message. Errors: -EINVAL,
 * -EMSGSIZE (can never fit), -EAGAIN (full or busy, timeout 0),
 * -ETIMEDOUT. */
WEFT_API int weft_mpqueue_put(weft_mpqueue_t *q, const void *buf, size_t len, double timeout);
/* Take the oldest message into buf; its length. -EMSGSIZE when it is
 * longer than cap: it stays in the queue (take it with get_alloc). Errors
 * also: -EINVAL, -EAGAIN (empty or busy, timeout 0), -ETIMEDOUT. */
WEFT_API ssize_t weft_mpqueue_get(weft_mpqueue_t *q, void *buf, size_t cap, double timeout);
/* Take the oldest message into a new buffer (*buf, free() it; never NULL
 * on success, even for an empty message); its length. -ENOMEM leaves the
 * message in the queue. */
WEFT_API ssize_t weft_mpqueue_get_alloc(weft_mpqueue_t *q, void **buf, double timeout);
/* Messages in the queue; -EINVAL. */
WEFT_API int weft_mpqueue_qsize(weft_mpqueue_t *q);
/* 1 or 0; -EINVAL. */
WEFT_API int weft_mpqueue_empty(weft_mpqueue_t *q);
/* Full by maxsize (Python's full()). */
WEFT_API int weft_mpqueue_full(weft_mpqueue_t *q);
/* JoinableQueue: one message put earlier is processed. Errors: -EINVAL
 * (not joinable, or called more times than messages were put). */
WEFT_API int weft_mpqueue_task_done(weft_mpqueue_t *q);
/* Wait until every message put has been marked done. Errors: -EINVAL (not
 * joinable), -EAGAIN (tasks pending or busy, timeout 0), -ETIMEDOUT. */
WEFT_API int weft_mpqueue_join(weft_mpqueue_t *q, double timeout);
/* Release this process's handle (the queue lives while any process holds
 * it). -EINVAL. */
WEFT_API int weft_mpqueue_close(weft_mpqueue_t *q);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_MPQUEUE_H */
