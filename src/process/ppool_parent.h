/*
 * The process pool's parent side (weft/ppool.h): the pool, its tasks and
 * its workers as the parent keeps them, shared by the four files that make
 * it up (what the parent shares with its worker processes is ppool_int.h):
 *
 *     ppool.c      the public calls: creating the pool and starting it at
 *                  its first task, submitting, results, and its end (close,
 *                  terminate, join, shutdown, free, the exit hook)
 *     pdispatch.c  pending tasks to the workers' in-rings, and a task taken
 *                  back from a busy worker for an idle one
 *     pcollect.c   results from the out-rings to the futures; the assist
 *                  hook through which a waiting thread collects
 *     pmanager.c   the manager thread: workers started, reaped, killed for
 *                  their timeouts and replaced
 *
 * A task is in exactly one place: the pool's pending list; a worker's list
 * of tasks posted and not collected, in the order posted, which is the
 * order its results come back in; or a `done` list on the stack of the
 * thread that concluded it. Everything here is read and written under the
 * pool's Lock, except that a done list is finished (futures, then hooks)
 * after the Lock is released, since a future's callbacks may call the pool.
 */
#ifndef WEFT_PPOOL_PARENT_H
#define WEFT_PPOOL_PARENT_H

#include "pool/future_int.h"
#include "process/ppool_int.h"
#include <weft/sync.h>

#include <poll.h>
#include <pthread.h>

#define WEFT__PPOOL_PAGE     4096u /* the doorbell page; worker slots follow */
#define WEFT__PTASK_HDR_ROOM (sizeof(struct weft__ptask_hdr) + WEFT__PNAME_MAX)

enum { WEFT__PP_OPEN, WEFT__PP_CLOSED, WEFT__PP_TERMINATED, WEFT__PP_BROKEN };

/* A finished task's value: its result bytes, or a crashed worker's exit
 * code. */
struct weft__presult {
    int exitcode;
    size_t len;
    unsigned char data[];
};

struct weft__ptask {
    struct weft__ptask *next;
    weft_future_t *f;
    uint64_t id;
    weft_ptask_fn fn;
    uint32_t kind, item_size, result_size, count;
    const void *arg;
    size_t len;
    void *owned;            /* the copy of a submitted argument */
    weft_future_cb on_done; /* a map's chunk: called once f has finished */
    void *on_done_arg;
    int forced;              /* the error if its worker dies: -ETIMEDOUT, -ECANCELED */
    _Atomic uint32_t *claim; /* in the in-ring it was posted to */
    /* the outcome, once collected */
    void *value;
    int error;
};

struct weft__pworker {
    weft_process_t *proc; /* NULL: none at this index */
    struct weft__pslot *slot;
    struct weft__ptask *head, *tail; /* posted, not collected, in order */
    int outstanding;
    uint64_t collected;
    uint32_t assigned;
    bool stop_sent, killed;
};

struct weft_ppool {
    weft_lock_t lock;
    weft_ppool_opts_t o;
    void *initarg;
    int n;
    struct weft__pworker *w;
    int memfd, eventfd;
    unsigned char *map;
    size_t map_size, slot_size;
    uint64_t in_cap, out_cap;
    struct weft__ppage *page;
    struct pollfd *pfd; /* the manager's: the eventfd and a pidfd per worker */
    struct weft__ptask *pend_head, *pend_tail;
    int state;
    bool launched, manager_started;
    bool manager_idle; /* asleep with nothing to time: wake it to rebalance */
    weft_start_method_t method;
    uint64_t next_id;
    pthread_t manager;
    weft_event_t ended;
    struct weft_ppool *next_pool, *prev_pool; /* under pools_lock */
    bool exit_seen;
    /* The handle's reference and one per future not yet freed: a thread
     * may still be collecting for a future (assist) when the handle is
     * freed, so the memory goes with the last of them. */
    _Atomic unsigned refs;
};

static inline struct weft__pslot *weft__ppool_slot(struct weft_ppool *pool, int i)
{
    return (struct weft__pslot *)(pool->map + WEFT__PPOOL_PAGE + (size_t)i * pool->slot_size);
}

static inline void weft__ptask_push_back(struct weft__ptask **head, struct weft__ptask **tail,
                                         struct weft__ptask *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

static inline void weft__ptask_push_front(struct weft__ptask **head, struct weft__ptask **tail,
                                          struct weft__ptask *t)
{
    t->next = *head;
    *head = t;
    if (!*tail)
        *tail = t;
}

static inline struct weft__ptask *weft__ptask_pop_front(struct weft__ptask **head,
                                                        struct weft__ptask **tail)
{
    struct weft__ptask *t = *head;
    if (t && !(*head = t->next))
        *tail = NULL;
    return t;
}

/* Record t's outcome and move it to the done list. */
static inline void weft__ptask_conclude(struct weft__ptask **done, struct weft__ptask *t,
                                        void *value, int error)
{
    t->value = value;
    t->error = error;
    t->next = *done;
    *done = t;
}

/* pdispatch.c: move pending tasks to workers with room; when w's oldest
 * task began (-1: not begun, or already over); take back a task queued
 * behind a long one for an idle worker (ns until worth looking again, -1:
 * never). */
void weft__ppool_dispatch(struct weft_ppool *pool, struct weft__ptask **done);
int64_t weft__ppool_head_began(struct weft__pworker *w);
int64_t weft__ppool_rebalance(struct weft_ppool *pool);
/* Test hook: called (lock held) just before the compare-and-swap by which
 * the parent takes a posted task back, with the task's claim word, so
 * that a test can let the worker claim the task first. */
extern void (*weft__ppool_take_back_hook)(_Atomic uint32_t *claim);

/* pcollect.c: collect what one worker or every worker has published (and
 * dispatch after); whether any result waits; finish a done list; free a
 * task; a future of the pool's, holding a reference to it (NULL: no
 * memory); the assist hook of the pool's futures, by which they are told
 * from others. */
void weft__ppool_collect_worker(struct weft__pworker *w, struct weft__ptask **done);
void weft__ppool_collect(struct weft_ppool *pool, struct weft__ptask **done);
bool weft__ppool_results_waiting(struct weft_ppool *pool);
void weft__ppool_finish_done(struct weft__ptask *done);
void weft__ptask_free(struct weft__ptask *t);
weft_future_t *weft__ppool_new_future(struct weft_ppool *pool);
int weft__ppool_assist(weft_future_t *f, weft__deadline_t deadline);

/* pmanager.c: start worker i; wake the manager; fail every task not yet
 * finished with error (pending ones now, posted ones when their worker
 * dies); the manager thread. */
int weft__ppool_launch(struct weft_ppool *pool, int i);
void weft__ppool_wake_manager(struct weft_ppool *pool);
void weft__ppool_fail_all(struct weft_ppool *pool, struct weft__ptask **done, int error);
void *weft__ppool_manager(void *arg);

/* ppool.c: drop a reference to the pool (the last frees it). */
void weft__ppool_unref(struct weft_ppool *pool);

#endif /* WEFT_PPOOL_PARENT_H */
