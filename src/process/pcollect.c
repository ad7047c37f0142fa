/*
 * The process pool's collecting (design of the whole in ppool_parent.h):
 * results from the workers' out-rings to the tasks' futures.
 *
 * A worker's results come back in the order its tasks were posted, so each
 * belongs to the oldest task on that worker's list. Collecting is done by
 * whoever is there: a thread waiting for a pool future (the future's assist
 * hook: it spins briefly on the out-rings, then sleeps on the doorbell
 * futex, so a result reaches its waiter with one wake-up) and the manager
 * thread (pmanager.c). A worker waiting for room in its out-ring is woken
 * once a collect has made some. Collected tasks are concluded under the
 * pool's Lock and finished after it is released: the future first, then a
 * map chunk's hook.
 *
 * A pool future holds a reference to the pool (drop gives it back), so a
 * thread still collecting for a future never outlives the pool's memory.
 */
#include "process/ppool_parent.h"
#include "sync/hold.h"

#include <stdlib.h>
#include <string.h>

#define SPIN_NS 30000

void weft__ptask_free(struct weft__ptask *t)
{
    free(t->owned);
    free(t);
}

/* Outside the lock: finish the futures (each notify wakes the threads
 * asleep in assist), then call the chunks' hooks. */
void weft__ppool_finish_done(struct weft__ptask *done)
{
    for (struct weft__ptask *t = done, *next; t; t = next) {
        next = t->next;
        if (weft__future_finish(t->f, t->value, t->error) < 0)
            free(t->value); /* cancelled before it ran */
        if (t->on_done)
            t->on_done(t->f, t->on_done_arg);
        weft__future_unref(t->f);
        weft__ptask_free(t);
    }
}

void weft__ppool_collect_worker(struct weft__pworker *w, struct weft__ptask **done)
{
    uint32_t len;
    void *m;
    bool any = false;
    while (w->head && (m = weft__ring_peek(&w->slot->out, &len)) != NULL) {
        struct weft__presult_hdr h;
        memcpy(&h, m, sizeof h);
        struct weft__ptask *t = weft__ptask_pop_front(&w->head, &w->tail);
        struct weft__presult *r = weft__malloc(sizeof *r + h.len);
        if (r) {
            r->exitcode = 0;
            r->len = h.len;
            memcpy(r->data, (unsigned char *)m + sizeof h, h.len);
        }
        weft__ptask_conclude(done, t, r, h.id != t->id ? -EBADMSG : r ? h.error : -ENOMEM);
        w->outstanding--;
        w->collected++;
        weft__ring_pop(&w->slot->out, len);
        any = true;
    }
    weft__fence(); /* the heads published before the look at wants_room */
    if (any && atomic_load(&w->slot->wants_room)) {
        atomic_fetch_add(&w->slot->room_seq, 1);
        weft__unpark(&w->slot->room_seq, 1, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    }
}

void weft__ppool_collect(struct weft_ppool *pool, struct weft__ptask **done)
{
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].proc)
            weft__ppool_collect_worker(&pool->w[i], done);
    weft__ppool_dispatch(pool, done);
}

bool weft__ppool_results_waiting(struct weft_ppool *pool)
{
    for (int i = 0; i < pool->n; i++)
        if (!weft__ring_empty(&weft__ppool_slot(pool, i)->out))
            return true;
    return false;
}

static void collect_and_finish(struct weft_ppool *pool)
{
    struct weft__ptask *done = NULL;
    weft__lock_hold(&pool->lock);
    weft__ppool_collect(pool, &done);
    weft_lock_release(&pool->lock);
    weft__ppool_finish_done(done);
}

/* The assist hook of the pool's futures: collect until f has finished. */
int weft__ppool_assist(weft_future_t *f, weft__deadline_t deadline)
{
    struct weft_ppool *pool = f->arg;
    struct weft__ppage *page = pool->page;
    for (;;) {
        collect_and_finish(pool);
        if (weft__future_finished(f))
            return 0;
        int64_t now = weft__now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        int64_t end = now + SPIN_NS < deadline ? now + SPIN_NS : deadline;
        while (!weft__ppool_results_waiting(pool) && !weft__future_finished(f) &&
               weft__now_ns() < end)
            for (int i = 0; i < 64; i++)
                weft__cpu_relax();
        if (weft__ppool_results_waiting(pool) || weft__future_finished(f))
            continue;
        uint32_t seq = atomic_load(&page->results_seq);
        atomic_fetch_add(&page->collectors, 1); /* a full barrier before the looks */
        if (!weft__ppool_results_waiting(pool) && !weft__future_finished(f))
            weft__park(&page->results_seq, seq, deadline, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
        atomic_fetch_sub(&page->collectors, 1);
    }
}

/* A future's notify: wake the threads asleep in assist. The finished state
 * was stored (a release) before the fence and this look at collectors, and
 * assist counts itself in collectors (a full barrier) before it looks at
 * the state: one of them sees the other. */
static void notify(weft_future_t *f)
{
    struct weft_ppool *pool = f->arg;
    weft__fence();
    if (atomic_load_explicit(&pool->page->collectors, memory_order_relaxed)) {
        atomic_fetch_add(&pool->page->results_seq, 1);
        weft__unpark(&pool->page->results_seq, INT32_MAX, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    }
}

static void drop(weft_future_t *f)
{
    free(f->value);
    weft__ppool_unref(f->arg);
}

/* A future of the pool's, holding a reference to it; NULL: no memory. */
weft_future_t *weft__ppool_new_future(struct weft_ppool *pool)
{
    weft_future_t *f = weft__future_alloc();
    if (f) {
        f->assist = weft__ppool_assist;
        f->notify = notify;
        f->drop = drop;
        f->arg = pool;
        atomic_fetch_add(&pool->refs, 1);
    }
    return f;
}
