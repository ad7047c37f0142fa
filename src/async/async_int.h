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

/* A small test-and-set lock for a few instructions (a bucket of the
 * parking table, a ready queue, the list of tasks): polling while another
 * holds it, yielding if that one seems not to be running. Never a park:
 * parking is built on these. The wait is out of line (lot.c), which leaves
 * the callers' fast paths with fewer registers to save. */
void weft__tas_wait(_Atomic uint32_t *mu);
static WEFT__INLINE void weft__tas_lock(_Atomic uint32_t *mu)
{
    if (atomic_exchange_explicit(mu, 1, memory_order_acquire))
        weft__tas_wait(mu);
}

static inline void weft__tas_unlock(_Atomic uint32_t *mu)
{
    atomic_store_explicit(mu, 0, memory_order_release);
}

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
    bool global; /* counted in weft__parked_tasks itself (lot.c) */
};

enum co_state { CO_READY, CO_RUNNING, CO_PARKED, CO_DONE };

struct weft_co {
    struct weft__ctx ctx;
    struct weft__loop *_Atomic loop;     /* where it runs, or waits to (sched.c) */
    struct weft_loop *portal;            /* its birth loop's: counted once t outlives */
    bool portal_held;                    /*   its reaping, for a later cancellation (co.c) */
    struct weft_co *next;                /* in a ready queue, or its loop's ended tasks */
    struct weft_co *all_prev, *all_next; /* in the loop's list of live tasks */
    weft_future_t *future;               /* the outcome */
    weft_co_fn fn;
    void *arg;
    char *name; /* NULL: named by id */
    uint64_t id;
    enum co_state state;
    /* Parking. */
    struct weft__waiter waiter;
    _Atomic uint32_t *loop_word; /* parked with WEFT__PARK_LOOP, on this word */
    struct weft__timer timer;
    int fd;             /* parked on this descriptor (epoll's), or -1, */
    int fd_slot;        /*   named by this slot (loop.c), */
    bool fd_dup;        /*   a duplicate of the caller's, */
    unsigned fd_events; /*   for these events (WEFT_READABLE, WEFT_WRITABLE) */
    int park_rc;        /* how the park ended */
    /* A task of the same loop parked in weft_co_join until this one ends,
     * woken by its end without the future's parking (co.c). */
    struct weft_co *joiner;
    /* Cancellation (Python 3.11's): requests not yet withdrawn, and
     * whether one is still to be delivered at a suspension point. */
    _Atomic uint32_t cancels; /* counted by the caller, from any thread */
    /* Requests from other threads counted but not yet delivered: the first
     * delivery, whoever makes it, answers them all (co.c). */
    _Atomic uint32_t undelivered;
    bool cancel_due;
    bool stopped;                     /* cancelled by weft_run's end */
    int fail;                         /* weft_co_fail's error, or 0 */
    uint32_t owner;                   /* its owner id (base.h), 0 until it needs one */
    struct weft__task_rec rec;        /* its GILs, locks and reads held (base/park.h) */
    struct weft__shared_wait *shared; /* parked on a process-shared word */
    struct weft__stack stack;
    /* Scopes (scope.c): the group the task belongs to, its place among the
     * group's children, and the innermost timeout scope it is in. */
    weft_co_group_t *group;
    struct weft_co *sibling_prev, *sibling_next;
    weft_co_timeout_t *timeouts;
};

/* The loops of one weft_run: one, or opts.threads in M:N mode (sched.c),
 * and what their tasks share. The locks and read-modify-writes are taken
 * only in M:N mode (mn). */
struct weft__sched {
    struct weft__loop **loops; /* n of them; loops[0] runs on weft_run's caller */
    size_t n;
    bool mn;
    pthread_t *workers;  /* the threads of loops[1..n) */
    _Atomic uint32_t mu; /* the list of tasks, and groups (scope.c) */
    struct weft_co *all; /* live tasks */
    _Atomic size_t live;
    _Atomic size_t peak;   /* the most tasks live at once: what a loop's stack cache keeps */
    _Atomic size_t scopes; /* timeout scopes entered: each has a timer */
    _Atomic uint64_t next_id;
    _Atomic size_t idle;   /* loops asleep with nothing to run */
    _Atomic bool stopping; /* main has ended: new tasks start cancelled */
    _Atomic bool over;     /* no task is left: the loops end */
    struct weft_co *main;
    size_t stack_size;
    _Atomic uint32_t starting; /* workers not yet started (sched.c) */
    _Atomic int start_error;   /*   and the first one's failure */
};

struct weft__loop {
    struct weft__parker parker; /* first: the parker is the loop */
    struct weft__sched *sched;
    bool mn;                 /* sched->mn */
    bool plain;              /* one loop, no sanitizer: nothing to do after a switch */
    size_t index;            /* in sched->loops */
    _Atomic uint32_t rq_mu;  /* the ready queue's lock (M:N mode) */
    _Atomic size_t nready;   /* its length, for a look without the lock, */
    _Atomic size_t nmovable; /*   and how many of them may move (sched.c) */
    _Atomic uint32_t idle;   /* asleep in epoll with nothing to run */
    struct weft__ctx home;   /* the thread's own stack: the scheduler */
    struct weft_co *current;
    struct weft_co *requeue; /* a yielding task, queued when it has left (loop.c) */
    struct weft_co *dead;    /* ended tasks, reaped by the scheduler (loop.c): */
    struct weft_co *husks;   /*   with their stacks, and without */
    struct weft_co *ready, **ready_tail;
    size_t budget; /* task runs left in this round before the loop looks at I/O */
    struct weft__heap timers;
    int epfd;
    size_t fds_parked;           /* tasks parked on descriptors */
    size_t words_parked;         /* tasks parked in the table, one loop alone (lot.c) */
    void *spares;                /* ended tasks' memory kept for spawns (co.c), */
    size_t nspares;              /*   how many */
    struct weft__fd_slot *slots; /* their names for epoll (loop.c) */
    uint32_t nslots, free_slot;  /*   free_slot: 1 + the first free one, or 0 */
    struct weft_loop *portal;    /* other threads' door (portal.c) */
    /* Bookkeeping. */
    size_t stack_size;
    struct weft__stack *cache;                 /* stacks of ended tasks, for reuse */
    size_t cached, cache_cap;                  /* how many, of how many places (loop.c) */
    struct weft__stack aside[WEFT__ASIDE_MAX]; /* to unmap, together */
    size_t set_aside;
    void *altstack; /* the thread's signal stack, if the loop made it */
    size_t altstack_size;
};

/* A count another thread may change, read without its lock (a snapshot). */
static inline size_t weft__count_of(_Atomic size_t *count)
{
    return atomic_load_explicit(count, memory_order_relaxed);
}

/* The sched's shared state: counts changed with a read-modify-write, and
 * its lock taken, only in M:N mode. */
static inline size_t weft__sched_add(struct weft__sched *s, _Atomic size_t *count, size_t delta)
{
    if (s->mn)
        return atomic_fetch_add_explicit(count, delta, memory_order_acq_rel) + delta;
    size_t n = atomic_load_explicit(count, memory_order_relaxed) + delta;
    atomic_store_explicit(count, n, memory_order_relaxed);
    return n;
}

static inline void weft__sched_lock(struct weft__sched *s)
{
    if (s->mn)
        weft__tas_lock(&s->mu);
}

static inline void weft__sched_unlock(struct weft__sched *s)
{
    if (s->mn)
        weft__tas_unlock(&s->mu);
}

/* Room in l's timer heap for a timer of every live task and timeout scope
 * of the run, and one more: any of them may park here (0, or -ENOMEM). */
int weft__loop_reserve(struct weft__loop *l);

/* The loop the calling thread runs, or NULL. */
extern _Thread_local struct weft__loop *weft__loop_self WEFT__TLS_FAST;

/* Leave the running task t (parked, or queued again by a yield) for the
 * next ready task directly, or for the scheduler once the round's budget
 * is spent or nothing is ready. */
void weft__loop_switch_away(struct weft__loop *l, struct weft_co *t);
/* Queue the running task t again behind the ready ones, and switch away. */
void weft__loop_yield(struct weft__loop *l, struct weft_co *t);
/* Reap one task that ended this round, after taking back the stacks of
 * those ended since, up to a batch: a spawn does first, so that it takes a
 * hot stack and allocates what the reaping frees (loop.c). */
void weft__loop_reap_one(struct weft__loop *l);
/* The end of the running task t: the context to leave its stack for, for
 * good (the next ready task's, or the scheduler's, which reaps t), made
 * current (loop.c). */
struct weft__ctx *weft__loop_exit(struct weft__loop *l, struct weft_co *t);
/* What a task does first when it starts (loop.c). */
void weft__loop_arrive(struct weft_co *t);
/* Queue t to run on its loop, from any thread, with its park ended by rc. */
void weft__co_wake(struct weft_co *t, int rc);
/* From the loop's thread: end t's park with rc if it is parked and nothing
 * else has ended the park yet; true if this call did. */
bool weft__loop_end_park(struct weft_co *t, int rc);
/* From the loop's thread: end t's park if it is parked with WEFT__PARK_LOOP
 * on `word` (a join of a task of its loop, co.c). */
void weft__loop_end_wait(struct weft_co *t, _Atomic uint32_t *word);
/* weft_co_cancel on t's loop (l, the caller's): counted now (count) or
 * already (a request posted from another thread), and delivered. 1 done
 * so, 0 t has ended (or withdrew every request), -EAGAIN t moved to
 * another loop meanwhile. */
int weft__loop_cancel(struct weft__loop *l, struct weft_co *t, bool count);
/* A request posted from another thread, delivered on t's loop (co.c). */
void weft__co_cancel_arrived(struct weft_co *t);
/* At a suspension point of the running task t: -ECANCELED if a
 * cancellation is due (it is delivered now), else 0. */
int weft__co_take_cancel(struct weft_co *t);
/* A stack for a new task: a cached one if size is the loop's. */
int weft__loop_stack(struct weft__loop *l, struct weft__stack *s, size_t size);
/* Back to the cache (or unmapped) once its task has ended. */
void weft__loop_put_stack(struct weft__loop *l, struct weft__stack *s);

/* M:N mode (sched.c). A loop with nothing to run takes ready tasks from
 * the others (steal: how many), or announces that it is going to sleep
 * (idle_begin: false if work turned up meanwhile; idle_end once awake); a
 * loop that queues a task wakes a sleeping one to take it. */
size_t weft__sched_steal(struct weft__loop *l);
bool weft__sched_idle_begin(struct weft__loop *l);
void weft__sched_idle_end(struct weft__loop *l);
void weft__sched_wake_idle(struct weft__loop *from);
/* Wake loop l to look at its portal and the sched's state. */
void weft__sched_nudge(struct weft__loop *l);
/* From v's ready queue, up to max tasks free to move, now l's (loop.c). */
size_t weft__loop_detach(struct weft__loop *v, struct weft__loop *l, struct weft_co **out,
                         size_t max);
void weft__loop_adopt(struct weft__loop *l, struct weft_co *t);
/* The loop's life (loop.c), and its scheduler until done(l, arg). */
int weft__loop_init(struct weft__loop *l, struct weft__sched *s, size_t index);
void weft__loop_destroy(struct weft__loop *l);
/* On the thread that runs l, first and last: 0, or -errno. */
int weft__loop_enter(struct weft__loop *l);
void weft__loop_leave(struct weft__loop *l);
void weft__loop_run_until(struct weft__loop *l, bool (*done)(struct weft__loop *l, void *arg),
                          void *arg);

/* Tasks (co.c): a new task of l, ready to run (with a reference for a
 * handle, or only the loop's); the end of one that is done
 * (from the scheduler, after it switched home for the last time). */
int weft__co_new(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn, void *arg,
                 const weft_co_opts_t *opts);
/* The same with the outcome going to `future` (running, referenced by the
 * caller; the task takes a reference of its own). */
int weft__co_new_with(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                      void *arg, const weft_co_opts_t *opts, weft_future_t *future);
/* The same for a child of group (scope.c links it). */
int weft__co_new_child(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                       void *arg, const weft_co_opts_t *opts, weft_co_group_t *group);
void weft__co_reap(struct weft__loop *l, struct weft_co *t);
/* Free the memory of ended tasks that l kept for spawns (co.c). */
void weft__co_free_spares(struct weft__loop *l);
/* Another reference to t (co.c: a task is counted by its future's). */
void weft__co_ref(struct weft_co *t);
/* base's weft__task_owner (co.c). */
uint32_t weft__co_owner(void);
/* A park's timer firing: the park ends with -ETIMEDOUT (loop.c). */
void weft__co_park_timeout(struct weft__timer *tm);
/* Link a new task t to group, under the run's lock: true if the group
 * has been aborted, and t must start cancelled (scope.c). */
bool weft__co_group_link(weft_co_group_t *g, struct weft_co *t);
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
/* Wake the loop to look at its portal, with nothing posted. */
void weft__portal_nudge(struct weft_loop *p);
/* The loop is about to sleep in epoll: false if something came meanwhile
 * (it must not sleep); wake_up once it is back. */
bool weft__portal_doze(struct weft_loop *p);
void weft__portal_wake_up(struct weft_loop *p);
int weft__portal_post(struct weft_loop *p, struct weft__call *c);
bool weft__portal_busy(struct weft_loop *p);
void weft__portal_take(struct weft_loop *p, struct weft_co **tasks, struct weft__call **calls);
/* The loop has ended: no more posts; queued calls are dropped. */
void weft__portal_close(struct weft_loop *p);
/* weft_co_cancel from another thread, posted to p: 1 if posted, 0 if the
 * loop ended. */
int weft__portal_cancel(struct weft_co *t, struct weft_loop *p);

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
/* The end of a park that weft__lot_enqueue counted, on the task's loop's
 * thread, once the task has left the table. */
void weft__lot_uncount(struct weft_co *t);
/* Install the table's unpark in base (once). */
void weft__lot_install(void);

#endif /* WEFT_SRC_ASYNC_INT_H */
