/*
 * The process pool's manager (design of the whole in ppool_parent.h): the
 * thread that keeps a pool's workers going, and the start of a worker.
 *
 * The manager sleeps in poll() on the workers' pidfds and the pool's
 * eventfd (written by a worker that publishes a result while the manager
 * listens, and by the parent when there is something new to time or to
 * rebalance), then, under the pool's Lock, collects, reaps dead workers,
 * kills those over their task timeout and starts replacements at the dead
 * ones' indexes. When a worker dies, its slot's `started` count says
 * whether the oldest of its tasks was running (it fails with
 * WEFT_ECRASHED, or -ETIMEDOUT if the pool killed the worker for its
 * timeout); the rest never began and go back to the front of the pending
 * list. A failing initializer breaks the pool, as in Python. The manager
 * ends when no worker is left and none will be started, and sets `ended`.
 *
 * Timeouts are deadlines counted from the moment the worker began the task
 * (weft__deadline_from: a timeout too long to count never fires).
 */
#include "process/ppool_parent.h"
#include "sync/hold.h"
#include "process/process_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct weft__presult *crash_value(int exitcode)
{
    struct weft__presult *r = weft__calloc(1, sizeof *r);
    if (r)
        r->exitcode = exitcode;
    return r;
}

static void reset_slot(struct weft_ppool *pool, int i)
{
    struct weft__pslot *s = weft__ppool_slot(pool, i);
    size_t hdr = (sizeof *s + 63) & ~(size_t)63;
    memset(s, 0, hdr);
    s->in.cap = pool->in_cap;
    s->in.off = hdr - offsetof(struct weft__pslot, in);
    s->out.cap = pool->out_cap;
    s->out.off = hdr + pool->in_cap - offsetof(struct weft__pslot, out);
    pool->w[i] = (struct weft__pworker){.slot = s};
}

int weft__ppool_launch(struct weft_ppool *pool, int i)
{
    reset_slot(pool, i);
    size_t len = sizeof(struct weft__pworker_arg) + pool->o.initarg_len;
    struct weft__pworker_arg *a = weft__calloc(1, len);
    if (!a)
        return -ENOMEM;
    *a = (struct weft__pworker_arg){
        .memfd = pool->memfd,
        .eventfd = pool->eventfd,
        .index = (uint32_t)i,
        .maxtasks = (uint32_t)pool->o.maxtasksperchild,
        .map_size = pool->map_size,
        .slot_off = WEFT__PPOOL_PAGE + (uint64_t)i * pool->slot_size,
        .max_result = pool->o.max_result,
        .by_name = pool->method != WEFT_START_FORK,
        .has_init = pool->o.initializer != NULL,
        .initarg_len = (uint32_t)pool->o.initarg_len,
        .init_fnptr = (uint64_t)(uintptr_t)pool->o.initializer,
    };
    const char *init =
        pool->o.initializer ? weft__registered_name(WEFT__FN(pool->o.initializer)) : NULL;
    if (init)
        snprintf(a->init_name, sizeof a->init_name, "%s", init);
    if (pool->o.initarg_len)
        memcpy(a + 1, pool->initarg, pool->o.initarg_len);
    char name[32];
    snprintf(name, sizeof name, "PoolWorker-%d", i + 1);
    int keep[2] = {pool->memfd, pool->eventfd};
    weft_process_opts_t po = {
        .name = name, .daemon = true, .keep_fds = keep, .nkeep_fds = 2, .method = pool->method};
    weft_process_t *p;
    int rc = weft_process_new(&p, weft__pworker_main, a, len, &po);
    free(a);
    if (rc == 0) /* as Python's workers: tasks use what a fork gave them */
        p->inherit_all = true;
    if (rc == 0 && (rc = weft_process_start(p)) < 0)
        weft_process_close(p);
    if (rc == 0)
        pool->w[i].proc = p;
    return rc;
}

void weft__ppool_wake_manager(struct weft_ppool *pool)
{
    uint64_t one = 1;
    ssize_t n = write(pool->eventfd, &one, sizeof one);
    (void)n; /* a full counter is readable anyway */
}

void weft__ppool_fail_all(struct weft_ppool *pool, struct weft__ptask **done, int error)
{
    struct weft__ptask *t;
    while ((t = weft__ptask_pop_front(&pool->pend_head, &pool->pend_tail)) != NULL)
        weft__ptask_conclude(done, t, NULL, error);
    for (int i = 0; i < pool->n; i++)
        for (struct weft__ptask *x = pool->w[i].head; x; x = x->next)
            x->forced = error;
}

static void handle_death(struct weft_ppool *pool, int i, struct weft__ptask **done)
{
    struct weft__pworker *w = &pool->w[i];
    weft__ppool_collect_worker(w, done); /* what it finished before dying */
    int code = 0;
    weft_process_exitcode(w->proc, &code);
    if (atomic_load(&w->slot->init_failed) && pool->state != WEFT__PP_TERMINATED &&
        pool->state != WEFT__PP_BROKEN) { /* as Python's: a failed initializer breaks the pool */
        pool->state = WEFT__PP_BROKEN;
        weft__ppool_fail_all(pool, done, WEFT_EBROKEN);
        for (int k = 0; k < pool->n; k++)
            if (pool->w[k].proc && k != i)
                weft_process_kill(pool->w[k].proc);
    }
    struct weft__ptask *t;
    if (w->head && atomic_load(&w->slot->started) > w->collected) {
        t = weft__ptask_pop_front(&w->head, &w->tail);
        weft__ptask_conclude(done, t, crash_value(code), t->forced ? t->forced : WEFT_ECRASHED);
    }
    /* The rest never started: back to the front of the queue, in order. */
    struct weft__ptask *back = NULL, *back_tail = NULL;
    while ((t = weft__ptask_pop_front(&w->head, &w->tail)) != NULL)
        if (t->forced || pool->state == WEFT__PP_TERMINATED || pool->state == WEFT__PP_BROKEN)
            weft__ptask_conclude(done, t, NULL, t->forced ? t->forced : -ECANCELED);
        else
            weft__ptask_push_back(&back, &back_tail, t);
    if (back) {
        back_tail->next = pool->pend_head;
        pool->pend_head = back;
        if (!pool->pend_tail)
            pool->pend_tail = back_tail;
    }
    weft_process_close(w->proc);
    w->proc = NULL;
}

/* Nanoseconds from now until `seconds` after start; INT64_MAX for a time
 * too far to count (weft__deadline_from saturates: an infinite or huge
 * timeout never fires). */
static int64_t ns_until(int64_t start, double seconds, int64_t now)
{
    weft__deadline_t due;
    weft__deadline_from(start, seconds, &due);
    return due == WEFT__NEVER ? INT64_MAX : due - now;
}

/* A poll timeout that does not end before ns have passed. */
static int poll_ms(int64_t ns)
{
    int64_t ms = ns / 1000000 + 1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Kill workers over their task's time; milliseconds until the next look.
 * A task posted but not begun is looked at again within a quarter of the
 * limit, since nothing tells the manager when it begins; a worker that has
 * moved on from the oldest task is never killed for it. */
static int check_timeouts(struct weft_ppool *pool)
{
    double limit = pool->o.task_timeout;
    if (limit <= 0)
        return -1;
    int64_t now = weft__now_ns(), next = INT64_MAX;
    for (int i = 0; i < pool->n; i++) {
        struct weft__pworker *w = &pool->w[i];
        if (!w->proc || !w->head || w->killed)
            continue;
        int64_t left, began = weft__ppool_head_began(w);
        if (began < 0) {
            left = ns_until(now, limit / 4, now);
            left = left > 1000000 ? left : 1000000;
        } else if ((left = ns_until(began, limit, now)) <= 0) {
            w->head->forced = -ETIMEDOUT;
            w->killed = true;
            weft_process_kill(w->proc);
            continue;
        }
        next = left < next ? left : next;
    }
    return next == INT64_MAX ? -1 : poll_ms(next);
}

/* One round of the manager (lock held): false when it is done. */
static bool tend(struct weft_ppool *pool, struct weft__ptask **done, struct pollfd *pfd, int *npfd,
                 int *timeout_ms)
{
    weft__ppool_collect(pool, done);
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].proc && weft_process_is_alive(pool->w[i].proc) == 0)
            handle_death(pool, i, done);
    bool restart =
        pool->state == WEFT__PP_OPEN || (pool->state == WEFT__PP_CLOSED && pool->pend_head);
    bool failed = false;
    for (int i = 0; restart && i < pool->n; i++)
        if (!pool->w[i].proc)
            failed |= weft__ppool_launch(pool, i) < 0;
    weft__ppool_dispatch(pool, done); /* which takes tasks back when it can */
    int64_t again =
        pool->state == WEFT__PP_TERMINATED || pool->pend_head ? -1 : weft__ppool_rebalance(pool);
    if (again == -1 && pool->pend_head)
        weft__ppool_dispatch(pool, done); /* rebalance took one back just now */
    *timeout_ms = check_timeouts(pool);
    if (again >= 0 && (*timeout_ms < 0 || poll_ms(again) < *timeout_ms))
        *timeout_ms = poll_ms(again);
    pool->manager_idle = *timeout_ms < 0;
    if (failed && (*timeout_ms < 0 || *timeout_ms > 100))
        *timeout_ms = 100; /* try again soon */
    *npfd = 0;
    pfd[(*npfd)++] = (struct pollfd){pool->eventfd, POLLIN, 0};
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].proc)
            pfd[(*npfd)++] = (struct pollfd){weft_process_sentinel(pool->w[i].proc), POLLIN, 0};
    return *npfd > 1 || restart;
}

void *weft__ppool_manager(void *arg)
{
    struct weft_ppool *pool = arg;
    struct pollfd *pfd = pool->pfd;
    for (;;) {
        struct weft__ptask *done = NULL;
        int npfd, timeout_ms;
        weft__lock_hold(&pool->lock);
        bool going = tend(pool, &done, pfd, &npfd, &timeout_ms);
        weft_lock_release(&pool->lock);
        weft__ppool_finish_done(done);
        if (!going)
            break;
        atomic_store(&pool->page->manager_listening, 1);
        if (!weft__ppool_results_waiting(pool))
            poll(pfd, (nfds_t)npfd, timeout_ms);
        atomic_store(&pool->page->manager_listening, 0);
        uint64_t count;
        ssize_t n = read(pool->eventfd, &count, sizeof count);
        (void)n; /* nonblocking: nothing to read is fine */
    }
    weft_event_set(&pool->ended);
    return NULL;
}
