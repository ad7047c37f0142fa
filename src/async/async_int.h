/*
 * Inside the async layer: the loop and the task, and how a parked task is
 * found and woken.
 *
 * A loop belongs to the thread that runs it. Its scheduler runs on that
 * thread's own stack (`home`) and takes tasks from the ready queue in FIFO
 * order; a task runs until it parks, yields or ends, and then switches to
 * the next ready task, or home when none is ready, the round is over or it
 * has ended (loop.c). Only the loop's thread touches the ready queue, the
 * timer heap and the stack cache. Other threads reach a loop through its
 * portal (portal.c): a mutex-guarded queue and an eventfd the loop's epoll
 * watches, written only when the queue goes from empty to not (libuv's
 * uv_async_send does the same), so a burst costs one wake-up.
 *
 * A park from a task (base/park.h's parker, lot.c) is settled under the
 * lock of the word's bucket in the parking table: the unpark, timer or
 * cancellation that takes the task's waiter off its bucket's list is the
 * one that ends the park, and says how (park_rc); the others find it gone
 * and do nothing. The task is then queued to its loop, and when it runs it
 * takes its own timer out of the heap (a timer may have fired meanwhile:
 * removing it twice is harmless).
 */
#ifndef WEFT_SRC_ASYNC_INT_H
#define WEFT_SRC_ASYNC_INT_H

#include "async/ctx.h"
#include "async/heap.h"
#include "async/stack.h"
#include "base/park.h"
#include <weft/async.h>
#include <weft/future.h>

#include <pthread.h>

struct weft__loop;

/* A descriptor wait as epoll knows it (loop.c). */
struct weft__fd_slot {
    struct weft_co *task; /* NULL when free */
    uint32_t gen;         /* moved on at every release */
    uint32_t next_free;   /* 1 + the next free slot, or 0 */
};

/* Stacks a loop puts aside before unmapping them in one go (loop.c). */
#define WEFT__ASIDE_MAX 64

/* A task's place in the parking table while it waits on a word. */
struct weft__waiter {
    _Atomic uint32_t *word;
    struct weft__waiter *prev, *next;
    bool linked; /* on its bucket's list (read and written under its lock) */
};

enum co_state { CO_READY, CO_RUNNING, CO_PARKED, CO_DONE };

struct weft_co {
    struct weft__ctx ctx;
    struct weft__loop *loop;
    struct weft_loop *portal;            /* its loop's, counted: it may outlive the loop */
    struct weft_co *next;                /* in a ready queue */
    struct weft_co *all_prev, *all_next; /* in the loop's list of live tasks */
    weft_future_t *future;               /* the outcome */
    weft_co_fn fn;
    void *arg;
    char *name; /* NULL: named by id */
    uint64_t id;
    enum co_state state;
    /* Parking. */
    struct weft__waiter waiter;
    struct weft__timer timer;
    int fd;      /* parked on this descriptor (epoll's), or -1, */
    int fd_slot; /*   named by this slot (loop.c), */
    bool fd_dup; /*   a duplicate of the caller's */
    int park_rc; /* how the park ended */
    /* Cancellation (Python 3.11's): requests not yet withdrawn, and
     * whether one is still to be delivered at a suspension point. */
    uint32_t cancels;
    bool cancel_due;
    bool stopped;                     /* cancelled by weft_run's end */
    int fail;                         /* weft_co_fail's error, or 0 */
    uint32_t owner;                   /* its owner id (base.h), 0 until it needs one */
    struct weft__task_gils gils;      /* the GILs it holds (base/park.h) */
    struct weft__shared_wait *shared; /* parked on a process-shared word */
    void *lockdep;                    /* the lock-order checker's record of what it holds */
    struct weft__stack stack;
    /* Scopes (scope.c): the group the task belongs to, its place among the
     * group's children, and the innermost timeout scope it is in. */
    weft_co_group_t *group;
    struct weft_co *sibling_prev, *sibling_next;
    weft_co_timeout_t *timeouts;
};

struct weft__loop {
    struct weft__parker parker; /* first: the parker is the loop */
    struct weft__ctx home;      /* the thread's own stack: the scheduler */
    struct weft_co *current;
    struct weft_co *requeue; /* a yielding task, queued when it has left (loop.c) */
    struct weft_co *ready, **ready_tail;
    size_t budget; /* task runs left in this round before the loop looks at I/O */
    struct weft__heap timers;
    int epfd;
    size_t fds_parked;           /* tasks parked on descriptors */
    struct weft__fd_slot *slots; /* their names for epoll (loop.c) */
    uint32_t nslots, free_slot;  /*   free_slot: 1 + the first free one, or 0 */
    struct weft_loop *portal;    /* other threads' door (portal.c) */
    /* Bookkeeping. */
    struct weft_co *all; /* live tasks */
    size_t live;
    size_t scopes; /* timeout scopes entered: each has a timer */
    uint64_t next_id;
    size_t stack_size;
    struct weft__stack *cache;                 /* stacks of ended tasks, for reuse */
    size_t cached;                             /* of CACHE_MAX places (loop.c) */
    struct weft__stack aside[WEFT__ASIDE_MAX]; /* to unmap, together */
    size_t set_aside;
    void *altstack; /* the thread's signal stack, if the loop made it */
    size_t altstack_size;
};

/* The loop the calling thread runs, or NULL. */
extern _Thread_local struct weft__loop *weft__loop_self WEFT__TLS_FAST;

/* Leave the running task t (parked, or queued again by a yield) for the
 * next ready task directly, or for the scheduler once the round's budget
 * is spent or nothing is ready. */
void weft__loop_switch_away(struct weft__loop *l, struct weft_co *t);
/* Queue the running task t again behind the ready ones, and switch away. */
void weft__loop_yield(struct weft__loop *l, struct weft_co *t);
/* What a task does first when it starts (loop.c). */
void weft__loop_arrive(struct weft_co *t);
/* Queue t to run on its loop, from any thread, with its park ended by rc. */
void weft__co_wake(struct weft_co *t, int rc);
/* From the loop's thread: end t's park with rc if it is parked and nothing
 * else has ended the park yet; true if this call did. */
bool weft__loop_end_park(struct weft_co *t, int rc);
/* A stack for a new task: a cached one if size is the loop's. */
int weft__loop_stack(struct weft__loop *l, struct weft__stack *s, size_t size);
/* Back to the cache (or unmapped) once its task has ended. */
void weft__loop_put_stack(struct weft__loop *l, struct weft__stack *s);

/* Tasks (co.c): a new task of l, ready to run (with a reference for a
 * handle, or only the loop's); the end of one that is done
 * (from the scheduler, after it switched home for the last time). */
int weft__co_new(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn, void *arg,
                 const weft_co_opts_t *opts);
/* The same with the outcome going to `future` (running, referenced by the
 * caller; the task takes a reference of its own). */
int weft__co_new_with(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                      void *arg, const weft_co_opts_t *opts, weft_future_t *future);
void weft__co_reap(struct weft__loop *l, struct weft_co *t);
/* Another reference to t (co.c: a task is counted by its future's). */
void weft__co_ref(struct weft_co *t);
/* base's weft__task_owner (co.c). */
uint32_t weft__co_owner(void);
/* A park's timer firing: the park ends with -ETIMEDOUT (loop.c). */
void weft__co_park_timeout(struct weft__timer *tm);
/* A child of a group has ended, with this outcome (scope.c). */
void weft__co_group_child_ended(struct weft_co *t, int outcome);

/* The portal (portal.c): a call other threads post to a loop, run on the
 * loop's thread (run), or dropped if the loop ends first (drop). */
struct weft__call {
    struct weft__call *next;
    void (*run)(struct weft__call *c);
    void (*drop)(struct weft__call *c);
};
int weft__portal_new(struct weft_loop **out);
int weft__portal_fd(struct weft_loop *p);
void weft__portal_ref(struct weft_loop *p);
void weft__portal_release(struct weft_loop *p);
void weft__portal_wake(struct weft_loop *p, struct weft_co *t);
int weft__portal_post(struct weft_loop *p, struct weft__call *c);
bool weft__portal_busy(struct weft_loop *p);
void weft__portal_take(struct weft_loop *p, struct weft_co **tasks, struct weft__call **calls);
/* The loop has ended: no more posts; queued calls are dropped. */
void weft__portal_close(struct weft_loop *p);
/* weft_co_cancel from another thread: 1 if posted, 0 if the loop ended. */
int weft__portal_cancel(struct weft_co *t);

/* Waits on process-shared words (shared.c): a helper thread waits on the
 * futex for t: 0, or -errno if none could start. abandon: the task's timer
 * or a cancellation ends the wait first (true), or the helper has (false).
 * done: after the task resumes. */
struct weft__shared_wait;
int weft__shared_park(struct weft_co *t, _Atomic uint32_t *word, uint32_t expected, unsigned flags);
bool weft__shared_abandon(struct weft_co *t);
void weft__shared_done(struct weft_co *t);

/* Stack overflows reported (overflow.c): the handler, and a signal stack
 * for the loop's thread unless it has one. */
int weft__overflow_watch(struct weft__loop *l);
void weft__overflow_unwatch(struct weft__loop *l);

/* The parking table (lot.c). Park the calling task t on word unless
 * *word != expected: 1 if it is now on the list (it must suspend), 0 if the
 * word had changed. */
int weft__lot_enqueue(struct weft_co *t, _Atomic uint32_t *word, uint32_t expected);
/* Take t's waiter off its list if it is still on it: true if this call did
 * (and so ends the park). */
bool weft__lot_dequeue(struct weft_co *t);
/* Install the table's unpark in base (once). */
void weft__lot_install(void);

#endif /* WEFT_SRC_ASYNC_INT_H */
