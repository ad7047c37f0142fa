/*
 * The process pool's dispatch (design of the whole in ppool_parent.h):
 * pending tasks to the workers' in-rings.
 *
 * Tasks wait in the pool's pending list until a worker has room: at most
 * DEPTH (2) tasks are posted to a worker's in-ring at a time, each to the
 * worker with the fewest. Two keep a worker fed (its next task is there
 * when it finishes one). When a worker is idle and another has a task
 * queued behind one that has run a millisecond or more, the parent takes
 * the queued task back and sends it to the idle worker: each posted task
 * has a claim word in the ring, and the worker (to run it) and the parent
 * (to take it back) race for it with one compare-and-swap, so exactly one
 * wins; a worker skips a task it lost. Once a closed pool has nothing
 * pending, every worker gets a STOP after its tasks.
 *
 * Dispatch runs under the pool's Lock in whichever thread has changed what
 * it depends on: a submit (a new task), a collect (room freed), the
 * manager (a replacement, a task taken back, a dead worker's tasks
 * requeued).
 */
#include "process/ppool_parent.h"
#include "process/process_int.h"

#include <string.h>

#define DEPTH 2

static void wake_worker(struct weft__pslot *s)
{
    atomic_fetch_add(&s->task_seq, 1); /* a full barrier before the read of asleep */
    if (atomic_load(&s->asleep))
        weft__unpark(&s->task_seq, 1, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
}

/* Post t to w's in-ring; false if it has no room now. */
static bool post(struct weft_ppool *pool, struct weft__pworker *w, struct weft__ptask *t)
{
    unsigned char head[WEFT__PTASK_HDR_ROOM] = {0};
    struct weft__ptask_hdr h = {
        .id = t->id,
        .fnptr = (uint64_t)(uintptr_t)t->fn,
        .kind = t->kind,
        .item_size = t->item_size,
        .result_size = t->result_size,
        .count = t->count,
        .arg_len = (uint32_t)t->len,
    };
    if (pool->method != WEFT_START_FORK) {
        const char *name = weft__registered_name(WEFT__FN(t->fn));
        size_t n = strlen(name) + 1;
        h.name_len = (uint32_t)weft__round8(n);
        memcpy(head + sizeof h, name, n);
    }
    memcpy(head, &h, sizeof h);
    void *m = weft__ring_put(&w->slot->in, head, sizeof h + h.name_len, t->arg, t->len);
    if (!m)
        return false;
    t->claim = weft__ptask_claim(m);
    weft__ptask_push_back(&w->head, &w->tail, t);
    if (w->outstanding++ == 0 && pool->o.task_timeout > 0)
        weft__ppool_wake_manager(pool); /* it may be asleep with no timeout to watch */
    w->assigned++;
    wake_worker(w->slot);
    return true;
}

static bool may_take(const struct weft_ppool *pool, const struct weft__pworker *w)
{
    return w->proc && !w->stop_sent && !w->killed && w->outstanding < DEPTH &&
           !(pool->o.maxtasksperchild && w->assigned >= (uint32_t)pool->o.maxtasksperchild);
}

static void send_stops(struct weft_ppool *pool)
{
    struct weft__ptask_hdr stop = {.kind = WEFT__PT_STOP};
    for (int i = 0; i < pool->n; i++) {
        struct weft__pworker *w = &pool->w[i];
        if (w->proc && !w->stop_sent && weft__ring_put(&w->slot->in, &stop, sizeof stop, NULL, 0)) {
            w->stop_sent = true;
            wake_worker(w->slot);
        }
    }
}

/*
 * When w's oldest task began (CLOCK_MONOTONIC ns), or -1 if it has not, or
 * the worker has moved on from it (its result is waiting to be collected).
 * The worker stores started_ns and running_id before it bumps started, so
 * a running_id read after started belongs to that task or a later one.
 */
int64_t weft__ppool_head_began(struct weft__pworker *w)
{
    if (atomic_load(&w->slot->started) <= w->collected ||
        atomic_load(&w->slot->running_id) != w->head->id)
        return -1;
    return atomic_load(&w->slot->started_ns);
}

/* How long a worker's task must have run before the task queued behind it
 * is taken back for an idle worker: less, and a stream of short tasks would
 * shuttle between workers. */
#define REVOKE_NS 1000000

/* w's task queued behind the one it runs, if that one began REVOKE_NS or
 * more ago; otherwise NULL, and *wait_ns says how long until it may be. */
static struct weft__ptask *stuck_behind(struct weft__pworker *w, int64_t now, int64_t *wait_ns)
{
    if (!w->proc || !w->head || !w->head->next || w->killed)
        return NULL;
    int64_t began = weft__ppool_head_began(w);
    if (began < 0) {
        *wait_ns = REVOKE_NS; /* not begun yet, or moving on: look again */
        return NULL;
    }
    int64_t ran = now - began;
    if (ran >= REVOKE_NS)
        return w->tail;
    *wait_ns = *wait_ns < REVOKE_NS - ran ? *wait_ns : REVOKE_NS - ran;
    return NULL;
}

void (*weft__ppool_take_back_hook)(_Atomic uint32_t *claim);

/* Take t, the last of w's tasks, back to the front of the pending list;
 * false if the worker claimed it first. */
static bool take_back(struct weft_ppool *pool, struct weft__pworker *w, struct weft__ptask *t)
{
    if (weft__ppool_take_back_hook)
        weft__ppool_take_back_hook(t->claim);
    uint32_t posted = WEFT__PT_POSTED;
    if (!atomic_compare_exchange_strong(t->claim, &posted, WEFT__PT_REVOKED))
        return false;
    struct weft__ptask *before = w->head;
    while (before->next != t)
        before = before->next;
    before->next = NULL;
    w->tail = before;
    w->outstanding--;
    w->assigned--;
    weft__ptask_push_front(&pool->pend_head, &pool->pend_tail, t);
    return true;
}

/*
 * A worker with nothing to do while another has a task queued behind a
 * long one: take that task back, for dispatch to send to the idle one.
 * Returns nanoseconds until it is worth looking again (-1: never).
 */
int64_t weft__ppool_rebalance(struct weft_ppool *pool)
{
    bool idle = false;
    for (int i = 0; i < pool->n && !idle; i++)
        idle = may_take(pool, &pool->w[i]) && pool->w[i].outstanding == 0;
    if (!idle || pool->pend_head)
        return -1;
    int64_t now = weft__now_ns(), wait = INT64_MAX;
    for (int i = 0; i < pool->n; i++) {
        struct weft__ptask *t = stuck_behind(&pool->w[i], now, &wait);
        if (t && take_back(pool, &pool->w[i], t))
            return -1; /* one at a time: dispatch sends it, and calls again */
    }
    return wait == INT64_MAX ? -1 : wait;
}

/* Move pending tasks to workers with room (lock held). */
void weft__ppool_dispatch(struct weft_ppool *pool, struct weft__ptask **done)
{
    while (pool->state != WEFT__PP_TERMINATED) {
        if (!pool->pend_head && weft__ppool_rebalance(pool) >= 0 && pool->manager_idle) {
            pool->manager_idle = false; /* it looks again when the time comes */
            weft__ppool_wake_manager(pool);
        }
        if (!pool->pend_head)
            break;
        struct weft__pworker *best = NULL;
        for (int i = 0; i < pool->n; i++)
            if (may_take(pool, &pool->w[i]) &&
                (!best || pool->w[i].outstanding < best->outstanding))
                best = &pool->w[i];
        if (!best)
            break;
        struct weft__ptask *t = weft__ptask_pop_front(&pool->pend_head, &pool->pend_tail);
        if (weft_future_running(t->f) != 1 && weft_future_set_running_or_notify_cancel(t->f) == 0) {
            weft__ptask_conclude(done, t, NULL, -ECANCELED);
            continue;
        }
        if (!post(pool, best, t)) { /* its ring is full: again after the next collect */
            weft__ptask_push_front(&pool->pend_head, &pool->pend_tail, t);
            break;
        }
    }
    if (pool->state == WEFT__PP_CLOSED && !pool->pend_head)
        send_stops(pool);
}
