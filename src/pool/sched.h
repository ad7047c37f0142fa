/*
 * The scheduler as the rest of src/pool sees it (pool.c provides it):
 * queueing a task, and waiting as a worker, which runs the pool's other
 * tasks meanwhile.
 *
 * A queued task (deque.h's weft__task_t) is a function, its argument and
 * an owner word saying whom to tell its outcome: 0 for nobody, a future's
 * address, or a group's address with bit 0 set (OWNER_GROUP; futures and
 * groups are at least 8-byte aligned).
 */
#ifndef WEFT_SRC_POOL_SCHED_H
#define WEFT_SRC_POOL_SCHED_H

#include "base/base.h"
#include "pool/deque.h"
#include <weft/pool.h>

#define WEFT__OWNER_GROUP ((uintptr_t)1)

/* Queue t on p as a submit does: on the calling worker's deque if it is
 * one of p's, else on p's injection queue (refused after shutdown:
 * WEFT_ESHUTDOWN); wakes a worker. WEFT_EBROKEN, -ENOMEM. */
int weft__pool_enqueue(weft_pool_t *p, const weft__task_t *t);

/* The pool whose worker the calling thread is, or NULL. */
weft_pool_t *weft__worker_pool(void);

/* Wake p's sleeping workers, a helping one among them: for whatever a
 * helping worker waits on (weft__worker_help) when it comes true. */
void weft__pool_wake(weft_pool_t *p);

/*
 * What a helping worker waits for. done(arg) says whether it has come:
 * anything but -EAGAIN ends the wait with that result. arm(arg), if not
 * NULL, is called once, only when the worker has run out of tasks and is
 * about to sleep (most waits end before: their tasks were the worker's
 * own); it makes whoever makes done true call weft__pool_wake (a future's
 * watch, a group's waiting bit), and returns as done does. Without arm,
 * that must hold from the start.
 */
typedef struct weft__until {
    int (*done)(void *arg);
    int (*arm)(void *arg);
    void *arg;
} weft__until_t;

/* As a worker (weft__worker_pool() not NULL), run the pool's tasks until
 * u is done, and return its result, or -ETIMEDOUT once the deadline has
 * passed (seen between two tasks, or asleep; arm may not have been
 * called). */
int weft__worker_help(const weft__until_t *u, weft__deadline_t deadline);

/* Wait for f as a worker, running other tasks meanwhile. -ENOENT if the
 * calling thread is not a pool worker. */
int weft__worker_wait(weft_future_t *f, weft__deadline_t deadline);

/* Provided by group.c: run a group's queued task t (error 0), or finish
 * it unrun with error (a broken pool, a cancelling shutdown). */
void weft__group_exec(weft_group_t *g, const weft__task_t *t, int error);

#endif /* WEFT_SRC_POOL_SCHED_H */
