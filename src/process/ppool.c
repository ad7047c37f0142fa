/*
 * The process pool (weft/ppool.h), parent side.
 *
 * Tasks wait in the pool's pending list until a worker has room: at most
 * DEPTH (2) tasks are posted to a worker's in-ring at a time, each to the
 * worker with the fewest. Two keep a worker fed (its next task is there
 * when it finishes one). When a worker is idle and another has a task
 * queued behind one that has run a millisecond or more, the parent takes
 * the queued task back and sends it to the idle worker: each posted task
 * has a claim word in the ring, and the worker (to run it) and the parent
 * (to take it back) race for it with one compare-and-swap, so exactly one
 * wins; a worker skips a task it lost. The parent keeps, per worker, the list of tasks posted and
 * not yet collected, in order: results come back in that order, and when a
 * worker dies, the slot's `started` count says whether the oldest one was
 * running (it fails with WEFT_ECRASHED, or -ETIMEDOUT if the pool killed
 * the worker for its timeout) while the rest go back to the front of the
 * pending list. A replacement worker then takes the dead one's index.
 *
 * Collecting results and finishing futures is done by whoever is there:
 * a thread waiting for a pool future (the future's assist hook: it spins
 * briefly on the out-rings, then sleeps on the doorbell futex, so a result
 * reaches its waiter with one wake-up), and the manager thread, which
 * sleeps in poll() on the workers' pidfds and the pool's eventfd and also
 * reaps dead workers, kills those over their task timeout and starts
 * replacements. Everything parent-side is under the pool's Lock; futures
 * are finished after it is released, since their callbacks may call the
 * pool.
 *
 * Lifecycle: OPEN takes tasks; close makes it CLOSED, and once nothing is
 * pending every worker gets a STOP after its tasks; terminate (and
 * terminate_workers, kill_workers) makes it TERMINATED: workers are
 * signalled and every unfinished task ends -ECANCELED; a failing
 * initializer makes it BROKEN. The manager ends when no worker is left
 * and none will be started, and sets `ended`, which join waits for.
 */
#include "pool/future_int.h"
#include "process/ppool_int.h"
#include "process/process_int.h"
#include "thread/thread_int.h"

#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define DEPTH    2
#define PAGE     4096u
#define SPIN_NS  30000
#define HDR_ROOM (sizeof(struct weft__ptask_hdr) + WEFT__PNAME_MAX)

enum { OPEN, CLOSED, TERMINATED, BROKEN };

struct presult {
    int exitcode;
    size_t len;
    unsigned char data[];
};

struct ptask {
    struct ptask *next;
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

struct pworker {
    weft_process_t *proc; /* NULL: none at this index */
    struct weft__pslot *slot;
    struct ptask *head, *tail; /* posted, not collected, in order */
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
    struct pworker *w;
    int memfd, eventfd;
    unsigned char *map;
    size_t map_size, slot_size;
    uint64_t in_cap, out_cap;
    struct weft__ppage *page;
    struct pollfd *pfd; /* the manager's: the eventfd and a pidfd per worker */
    struct ptask *pend_head, *pend_tail;
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

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct weft_ppool *pools;

/* Can spawn and forkserver workers call fn (NULL: nothing to call)? */
static bool usable_by_name(void (*fn)(void))
{
    const char *name = fn ? weft__registered_name(fn) : "";
    return name && strlen(name) < WEFT__PNAME_MAX;
}

/* ---- tasks and results ---- */

static void free_task(struct ptask *t)
{
    free(t->owned);
    free(t);
}

static void push_back(struct ptask **head, struct ptask **tail, struct ptask *t)
{
    t->next = NULL;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

static void push_front(struct ptask **head, struct ptask **tail, struct ptask *t)
{
    t->next = *head;
    *head = t;
    if (!*tail)
        *tail = t;
}

static struct ptask *pop_front(struct ptask **head, struct ptask **tail)
{
    struct ptask *t = *head;
    if (t && !(*head = t->next))
        *tail = NULL;
    return t;
}

/* Record t's outcome and move it to the done list. */
static void conclude(struct ptask **done, struct ptask *t, void *value, int error)
{
    t->value = value;
    t->error = error;
    t->next = *done;
    *done = t;
}

static struct presult *crash_value(int exitcode)
{
    struct presult *r = weft__calloc(1, sizeof *r);
    if (r)
        r->exitcode = exitcode;
    return r;
}

/* Outside the lock: finish the futures (each notify wakes the threads
 * asleep in assist), then call the chunks' hooks. */
static void finish_done(struct ptask *done)
{
    for (struct ptask *t = done, *next; t; t = next) {
        next = t->next;
        if (weft__future_finish(t->f, t->value, t->error) < 0)
            free(t->value); /* cancelled before it ran */
        if (t->on_done)
            t->on_done(t->f, t->on_done_arg);
        weft__future_unref(t->f);
        free_task(t);
    }
}

/* ---- workers ---- */

static struct weft__pslot *slot_at(struct weft_ppool *pool, int i)
{
    return (struct weft__pslot *)(pool->map + PAGE + (size_t)i * pool->slot_size);
}

static void reset_slot(struct weft_ppool *pool, int i)
{
    struct weft__pslot *s = slot_at(pool, i);
    size_t hdr = (sizeof *s + 63) & ~(size_t)63;
    memset(s, 0, hdr);
    s->in.cap = pool->in_cap;
    s->in.off = hdr - offsetof(struct weft__pslot, in);
    s->out.cap = pool->out_cap;
    s->out.off = hdr + pool->in_cap - offsetof(struct weft__pslot, out);
    pool->w[i] = (struct pworker){.slot = s};
}

static int launch(struct weft_ppool *pool, int i)
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
        .slot_off = PAGE + (uint64_t)i * pool->slot_size,
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
    if (rc == 0 && (rc = weft_process_start(p)) < 0)
        weft_process_close(p);
    if (rc == 0)
        pool->w[i].proc = p;
    return rc;
}

static void wake_worker(struct weft__pslot *s)
{
    atomic_fetch_add(&s->task_seq, 1); /* a full barrier before the read of asleep */
    if (atomic_load(&s->asleep))
        weft__futex_wake(&s->task_seq, 1, true);
}

static void wake_manager(struct weft_ppool *pool)
{
    uint64_t one = 1;
    ssize_t n = write(pool->eventfd, &one, sizeof one);
    (void)n; /* a full counter is readable anyway */
}

/* Post t to w's in-ring; false if it has no room now. */
static bool post(struct weft_ppool *pool, struct pworker *w, struct ptask *t)
{
    unsigned char head[HDR_ROOM] = {0};
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
    push_back(&w->head, &w->tail, t);
    if (w->outstanding++ == 0 && pool->o.task_timeout > 0)
        wake_manager(pool); /* it may be asleep with no timeout to watch */
    w->assigned++;
    wake_worker(w->slot);
    return true;
}

static bool may_take(const struct weft_ppool *pool, const struct pworker *w)
{
    return w->proc && !w->stop_sent && !w->killed && w->outstanding < DEPTH &&
           !(pool->o.maxtasksperchild && w->assigned >= (uint32_t)pool->o.maxtasksperchild);
}

static void send_stops(struct weft_ppool *pool)
{
    struct weft__ptask_hdr stop = {.kind = WEFT__PT_STOP};
    for (int i = 0; i < pool->n; i++) {
        struct pworker *w = &pool->w[i];
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
static int64_t head_began(struct pworker *w)
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
static struct ptask *stuck_behind(struct pworker *w, int64_t now, int64_t *wait_ns)
{
    if (!w->proc || !w->head || !w->head->next || w->killed)
        return NULL;
    int64_t began = head_began(w);
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

/* Take t, the last of w's tasks, back to the front of the pending list;
 * false if the worker claimed it first. */
static bool take_back(struct weft_ppool *pool, struct pworker *w, struct ptask *t)
{
    uint32_t posted = WEFT__PT_POSTED;
    if (!atomic_compare_exchange_strong(t->claim, &posted, WEFT__PT_REVOKED))
        return false;
    struct ptask *before = w->head;
    while (before->next != t)
        before = before->next;
    before->next = NULL;
    w->tail = before;
    w->outstanding--;
    w->assigned--;
    push_front(&pool->pend_head, &pool->pend_tail, t);
    return true;
}

/*
 * A worker with nothing to do while another has a task queued behind a
 * long one: take that task back, for dispatch to send to the idle one.
 * Returns nanoseconds until it is worth looking again (-1: never).
 */
static int64_t rebalance(struct weft_ppool *pool)
{
    bool idle = false;
    for (int i = 0; i < pool->n && !idle; i++)
        idle = may_take(pool, &pool->w[i]) && pool->w[i].outstanding == 0;
    if (!idle || pool->pend_head)
        return -1;
    int64_t now = weft__now_ns(), wait = INT64_MAX;
    for (int i = 0; i < pool->n; i++) {
        struct ptask *t = stuck_behind(&pool->w[i], now, &wait);
        if (t && take_back(pool, &pool->w[i], t))
            return -1; /* one at a time: dispatch sends it, and calls again */
    }
    return wait == INT64_MAX ? -1 : wait;
}

/* Move pending tasks to workers with room (lock held). */
static void dispatch(struct weft_ppool *pool, struct ptask **done)
{
    while (pool->state != TERMINATED) {
        if (!pool->pend_head && rebalance(pool) >= 0 && pool->manager_idle) {
            pool->manager_idle = false; /* it looks again when the time comes */
            wake_manager(pool);
        }
        if (!pool->pend_head)
            break;
        struct pworker *best = NULL;
        for (int i = 0; i < pool->n; i++)
            if (may_take(pool, &pool->w[i]) &&
                (!best || pool->w[i].outstanding < best->outstanding))
                best = &pool->w[i];
        if (!best)
            break;
        struct ptask *t = pop_front(&pool->pend_head, &pool->pend_tail);
        if (weft_future_running(t->f) != 1 && weft_future_set_running_or_notify_cancel(t->f) == 0) {
            conclude(done, t, NULL, -ECANCELED);
            continue;
        }
        if (!post(pool, best, t)) { /* its ring is full: again after the next collect */
            push_front(&pool->pend_head, &pool->pend_tail, t);
            break;
        }
    }
    if (pool->state == CLOSED && !pool->pend_head)
        send_stops(pool);
}

/* ---- collecting ---- */

static void collect_worker(struct pworker *w, struct ptask **done)
{
    uint32_t len;
    void *m;
    bool any = false;
    while (w->head && (m = weft__ring_peek(&w->slot->out, &len)) != NULL) {
        struct weft__presult_hdr h;
        memcpy(&h, m, sizeof h);
        struct ptask *t = pop_front(&w->head, &w->tail);
        struct presult *r = weft__malloc(sizeof *r + h.len);
        if (r) {
            r->exitcode = 0;
            r->len = h.len;
            memcpy(r->data, (unsigned char *)m + sizeof h, h.len);
        }
        conclude(done, t, r, h.id != t->id ? -EBADMSG : r ? h.error : -ENOMEM);
        w->outstanding--;
        w->collected++;
        weft__ring_pop(&w->slot->out, len);
        any = true;
    }
    weft__fence(); /* the heads published before the look at wants_room */
    if (any && atomic_load(&w->slot->wants_room)) {
        atomic_fetch_add(&w->slot->room_seq, 1);
        weft__futex_wake(&w->slot->room_seq, 1, true);
    }
}

static void collect(struct weft_ppool *pool, struct ptask **done)
{
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].proc)
            collect_worker(&pool->w[i], done);
    dispatch(pool, done);
}

static bool results_waiting(struct weft_ppool *pool)
{
    for (int i = 0; i < pool->n; i++)
        if (!weft__ring_empty(&slot_at(pool, i)->out))
            return true;
    return false;
}

static void collect_and_finish(struct weft_ppool *pool)
{
    struct ptask *done = NULL;
    weft_lock_acquire(&pool->lock, WEFT_FOREVER);
    collect(pool, &done);
    weft_lock_release(&pool->lock);
    finish_done(done);
}

/* The assist hook of the pool's futures: collect until f has finished. */
static int assist(weft_future_t *f, weft__deadline_t deadline)
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
        while (!results_waiting(pool) && !weft__future_finished(f) && weft__now_ns() < end)
            for (int i = 0; i < 64; i++)
                weft__cpu_relax();
        if (results_waiting(pool) || weft__future_finished(f))
            continue;
        uint32_t seq = atomic_load(&page->results_seq);
        atomic_fetch_add(&page->collectors, 1); /* a full barrier before the looks */
        if (!results_waiting(pool) && !weft__future_finished(f))
            weft__futex_wait(&page->results_seq, seq, deadline, true);
        atomic_fetch_sub(&page->collectors, 1);
    }
}

static void pool_unref(struct weft_ppool *pool);

/* A future's notify: wake the threads asleep in assist. The finished state
 * was stored (sequentially consistent) before this look at collectors, and
 * assist counts itself in collectors before it looks at the state. */
static void notify(weft_future_t *f)
{
    struct weft_ppool *pool = f->arg;
    if (atomic_load(&pool->page->collectors)) {
        atomic_fetch_add(&pool->page->results_seq, 1);
        weft__futex_wake(&pool->page->results_seq, INT32_MAX, true);
    }
}

static void drop(weft_future_t *f)
{
    free(f->value);
    pool_unref(f->arg);
}

/* A future of the pool's, holding a reference to it; NULL: no memory. */
static weft_future_t *new_future(struct weft_ppool *pool)
{
    weft_future_t *f = weft__future_alloc();
    if (f) {
        f->assist = assist;
        f->notify = notify;
        f->drop = drop;
        f->arg = pool;
        atomic_fetch_add(&pool->refs, 1);
    }
    return f;
}

/* ---- deaths, timeouts, replacements (the manager, lock held) ---- */

static void fail_all(struct weft_ppool *pool, struct ptask **done, int error)
{
    struct ptask *t;
    while ((t = pop_front(&pool->pend_head, &pool->pend_tail)) != NULL)
        conclude(done, t, NULL, error);
    for (int i = 0; i < pool->n; i++)
        for (struct ptask *x = pool->w[i].head; x; x = x->next)
            x->forced = error;
}

static void handle_death(struct weft_ppool *pool, int i, struct ptask **done)
{
    struct pworker *w = &pool->w[i];
    collect_worker(w, done); /* what it finished before dying */
    int code = 0;
    weft_process_exitcode(w->proc, &code);
    if (atomic_load(&w->slot->init_failed) && pool->state != TERMINATED &&
        pool->state != BROKEN) { /* as Python's: a failed initializer breaks the pool */
        pool->state = BROKEN;
        fail_all(pool, done, WEFT_EBROKEN);
        for (int k = 0; k < pool->n; k++)
            if (pool->w[k].proc && k != i)
                weft_process_kill(pool->w[k].proc);
    }
    struct ptask *t;
    if (w->head && atomic_load(&w->slot->started) > w->collected) {
        t = pop_front(&w->head, &w->tail);
        conclude(done, t, crash_value(code), t->forced ? t->forced : WEFT_ECRASHED);
    }
    /* The rest never started: back to the front of the queue, in order. */
    struct ptask *back = NULL, *back_tail = NULL;
    while ((t = pop_front(&w->head, &w->tail)) != NULL)
        if (t->forced || pool->state == TERMINATED || pool->state == BROKEN)
            conclude(done, t, NULL, t->forced ? t->forced : -ECANCELED);
        else
            push_back(&back, &back_tail, t);
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
        struct pworker *w = &pool->w[i];
        if (!w->proc || !w->head || w->killed)
            continue;
        int64_t left, began = head_began(w);
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
static bool tend(struct weft_ppool *pool, struct ptask **done, struct pollfd *pfd, int *npfd,
                 int *timeout_ms)
{
    collect(pool, done);
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].proc && weft_process_is_alive(pool->w[i].proc) == 0)
            handle_death(pool, i, done);
    bool restart = pool->state == OPEN || (pool->state == CLOSED && pool->pend_head);
    bool failed = false;
    for (int i = 0; restart && i < pool->n; i++)
        if (!pool->w[i].proc)
            failed |= launch(pool, i) < 0;
    dispatch(pool, done); /* which takes tasks back when it can */
    int64_t again = pool->state == TERMINATED || pool->pend_head ? -1 : rebalance(pool);
    if (again == -1 && pool->pend_head)
        dispatch(pool, done); /* rebalance took one back just now */
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

static void *manager(void *arg)
{
    struct weft_ppool *pool = arg;
    struct pollfd *pfd = pool->pfd;
    for (;;) {
        struct ptask *done = NULL;
        int npfd, timeout_ms;
        weft_lock_acquire(&pool->lock, WEFT_FOREVER);
        bool going = tend(pool, &done, pfd, &npfd, &timeout_ms);
        weft_lock_release(&pool->lock);
        finish_done(done);
        if (!going)
            break;
        atomic_store(&pool->page->manager_listening, 1);
        if (!results_waiting(pool))
            poll(pfd, (nfds_t)npfd, timeout_ms);
        atomic_store(&pool->page->manager_listening, 0);
        uint64_t count;
        ssize_t n = read(pool->eventfd, &count, sizeof count);
        (void)n; /* nonblocking: nothing to read is fine */
    }
    weft_event_set(&pool->ended);
    return NULL;
}

/* ---- the pool ---- */

static void unlink_pool(struct weft_ppool *pool)
{
    pthread_mutex_lock(&pools_lock);
    if (pool->prev_pool)
        pool->prev_pool->next_pool = pool->next_pool;
    else if (pools == pool)
        pools = pool->next_pool;
    if (pool->next_pool)
        pool->next_pool->prev_pool = pool->prev_pool;
    pthread_mutex_unlock(&pools_lock);
}

static void free_pool(struct weft_ppool *pool)
{
    if (pool->map)
        munmap(pool->map, pool->map_size);
    if (pool->memfd >= 0)
        close(pool->memfd);
    if (pool->eventfd >= 0)
        close(pool->eventfd);
    free(pool->initarg);
    free(pool->w);
    free(pool->pfd);
    free(pool);
}

static int make_memory(struct weft_ppool *pool)
{
    uint64_t in_msg = 8 + weft__round8(HDR_ROOM + pool->o.max_arg);
    uint64_t out_msg = 8 + weft__round8(sizeof(struct weft__presult_hdr) + pool->o.max_result);
    pool->in_cap = 2 * in_msg;
    pool->out_cap = 2 * out_msg;
    size_t hdr = (sizeof(struct weft__pslot) + 63) & ~(size_t)63;
    pool->slot_size = (hdr + pool->in_cap + pool->out_cap + PAGE - 1) / PAGE * PAGE;
    pool->map_size = PAGE + (size_t)pool->n * pool->slot_size;
    pool->memfd = memfd_create("weft-ppool", MFD_CLOEXEC);
    pool->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->memfd < 0 || pool->eventfd < 0)
        return -errno;
    if (ftruncate(pool->memfd, (off_t)pool->map_size) < 0)
        return -ENOMEM;
    void *m = mmap(NULL, pool->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, pool->memfd, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    pool->map = m;
    pool->page = m;
    return 0;
}

int weft_ppool_new(weft_ppool_t **out, const weft_ppool_opts_t *opts)
{
    weft_ppool_opts_t o = opts ? *opts : (weft_ppool_opts_t){0};
    if (!out || o.processes < 0 || o.maxtasksperchild < 0 || isnan(o.task_timeout) ||
        !weft_start_method_name(o.method) || (o.initarg_len && !o.initarg) ||
        o.max_arg > (1u << 30) || o.max_result > (1u << 30) || o.initarg_len > (1u << 20))
        return -EINVAL;
    if (o.method != WEFT_START_FORK && o.method != WEFT_START_DEFAULT &&
        !usable_by_name(WEFT__FN(o.initializer)))
        return -EINVAL;
    o.processes = o.processes ? o.processes : weft_cpu_count();
    o.max_arg = o.max_arg ? o.max_arg : 65536;
    o.max_result = o.max_result ? o.max_result : 65536;
    struct weft_ppool *pool = weft__calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    pool->memfd = pool->eventfd = -1;
    pool->o = o;
    pool->n = o.processes;
    pool->w = weft__calloc((size_t)pool->n, sizeof *pool->w);
    /* The manager's, allocated here: a manager that could not have it
     * would leave the pool running without anyone to reap, replace or
     * time its workers. */
    pool->pfd = weft__calloc((size_t)pool->n + 1, sizeof *pool->pfd);
    pool->initarg = o.initarg_len ? weft__malloc(o.initarg_len) : NULL;
    int rc =
        !pool->w || !pool->pfd || (o.initarg_len && !pool->initarg) ? -ENOMEM : make_memory(pool);
    if (rc < 0) {
        free_pool(pool);
        return rc;
    }
    if (o.initarg_len)
        memcpy(pool->initarg, o.initarg, o.initarg_len);
    weft_lock_init(&pool->lock, 0);
    weft_event_init(&pool->ended, 0);
    atomic_init(&pool->refs, 1);
    pthread_mutex_lock(&pools_lock);
    pool->next_pool = pools;
    if (pools)
        pools->prev_pool = pool;
    pools = pool;
    pthread_mutex_unlock(&pools_lock);
    *out = pool;
    return 0;
}

/* Start the workers and the manager at the first task (lock held). */
static int launch_all(struct weft_ppool *pool, weft_ptask_fn first)
{
    weft_start_method_t m = pool->o.method ? pool->o.method : weft_process_get_start_method();
    if (m == WEFT_START_DEFAULT)
        m = weft__registered_name(WEFT__FN(first)) ? WEFT_START_FORKSERVER : WEFT_START_FORK;
    pool->method = m;
    if (m != WEFT_START_FORK && !usable_by_name(WEFT__FN(pool->o.initializer)))
        return -EINVAL; /* a fresh program could only call it by name */
    int rc = 0;
    for (int i = 0; i < pool->n && rc == 0; i++)
        rc = launch(pool, i);
    if (rc == 0 && weft__sys.pthread_create(&pool->manager, NULL, manager, pool) != 0)
        rc = -EAGAIN;
    if (rc < 0) {
        for (int i = 0; i < pool->n; i++)
            if (pool->w[i].proc) {
                weft_process_kill(pool->w[i].proc);
                weft_process_join(pool->w[i].proc, WEFT_FOREVER);
                weft_process_close(pool->w[i].proc);
                pool->w[i].proc = NULL;
            }
        return rc == -ENOMEM ? rc : -EAGAIN;
    }
    pool->launched = pool->manager_started = true;
    return 0;
}

/* Queue t (lock not held); on success *f gets a reference if f != NULL. */
static int submit_task(struct weft_ppool *pool, struct ptask *t, weft_future_t **f)
{
    weft_future_t *fut = new_future(pool);
    if (!fut) {
        free_task(t);
        return -ENOMEM;
    }
    t->f = fut;
    struct ptask *done = NULL;
    weft_lock_acquire(&pool->lock, WEFT_FOREVER);
    int rc = pool->state == BROKEN ? WEFT_EBROKEN : pool->state != OPEN ? WEFT_ESHUTDOWN : 0;
    if (rc == 0 && !pool->launched)
        rc = launch_all(pool, t->fn);
    if (rc == 0 && pool->method != WEFT_START_FORK && !usable_by_name(WEFT__FN(t->fn)))
        rc = -EINVAL;
    if (rc == 0) {
        t->id = ++pool->next_id;
        if (f) {
            weft__future_ref(fut);
            *f = fut;
        }
        push_back(&pool->pend_head, &pool->pend_tail, t);
        dispatch(pool, &done);
    }
    weft_lock_release(&pool->lock);
    finish_done(done);
    if (rc < 0) {
        weft__future_unref(fut);
        free_task(t);
    }
    return rc;
}

static struct ptask *new_task(weft_ptask_fn fn, const void *arg, size_t len, bool copy)
{
    struct ptask *t = weft__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fn = fn;
    t->kind = WEFT__PT_CALL;
    t->len = len;
    t->arg = arg;
    if (copy && len) {
        if (!(t->owned = weft__malloc(len))) {
            free(t);
            return NULL;
        }
        memcpy(t->owned, arg, len);
        t->arg = t->owned;
    }
    return t;
}

int weft_ppool_submit(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                      weft_future_t **f)
{
    if (!pool || !fn || (len && !arg) || len > pool->o.max_arg)
        return -EINVAL;
    struct ptask *t = new_task(fn, arg, len, true);
    return t ? submit_task(pool, t, f) : -ENOMEM;
}

int weft__ppool_submit_chunk(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t count,
                             size_t item_size, size_t result_size, weft_future_cb on_done,
                             void *on_done_arg, weft_future_t **f)
{
    struct ptask *t = new_task(fn, items, count * item_size, false);
    if (!t)
        return -ENOMEM;
    t->kind = WEFT__PT_CHUNK;
    t->count = (uint32_t)count;
    t->item_size = (uint32_t)item_size;
    t->result_size = (uint32_t)result_size;
    t->on_done = on_done;
    t->on_done_arg = on_done_arg;
    return submit_task(pool, t, f);
}

int weft__ppool_future(weft_ppool_t *pool, weft_future_t **f)
{
    return (*f = new_future(pool)) ? 0 : -ENOMEM;
}

size_t weft__ppool_limits(weft_ppool_t *pool, size_t *max_result)
{
    *max_result = pool->o.max_result;
    return pool->o.max_arg;
}

int weft_ppool_result(weft_future_t *f, double timeout, const void **data, size_t *len,
                      int *exitcode)
{
    if (!f || f->assist != assist)
        return -EINVAL;
    void *value = NULL;
    int rc = weft_future_result(f, timeout, &value);
    struct presult *r = f->value;
    if (rc == WEFT_ECRASHED && exitcode && r)
        *exitcode = r->exitcode;
    if (rc == 0) {
        if (data)
            *data = r ? r->data : NULL;
        if (len)
            *len = r ? r->len : 0;
    }
    return rc;
}

ssize_t weft_ppool_apply(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                         void *out, size_t cap)
{
    if (cap && !out)
        return -EINVAL;
    weft_future_t *f;
    int rc = weft_ppool_submit(pool, fn, arg, len, &f);
    if (rc < 0)
        return rc;
    const void *data;
    size_t n;
    rc = weft_ppool_result(f, WEFT_FOREVER, &data, &n, NULL);
    if (rc == 0 && n > cap)
        rc = -EMSGSIZE;
    if (rc == 0 && n)
        memcpy(out, data, n);
    weft_future_free(f);
    return rc < 0 ? rc : (ssize_t)n;
}

/* ---- ending ---- */

static int end_pool(weft_ppool_t *pool, int state, int sig, bool cancel_pending)
{
    if (!pool)
        return -EINVAL;
    struct ptask *done = NULL;
    weft_lock_acquire(&pool->lock, WEFT_FOREVER);
    if (cancel_pending) {
        struct ptask *t, *keep_head = NULL, *keep_tail = NULL;
        while ((t = pop_front(&pool->pend_head, &pool->pend_tail)) != NULL)
            if (weft_future_running(t->f) == 1) /* sent back by a dead worker */
                push_back(&keep_head, &keep_tail, t);
            else if (weft_future_cancel(t->f) >= 0)
                conclude(&done, t, NULL, -ECANCELED);
        pool->pend_head = keep_head;
        pool->pend_tail = keep_tail;
    }
    if (pool->state == OPEN || (state == TERMINATED && pool->state == CLOSED))
        pool->state = state;
    if (state == TERMINATED) {
        fail_all(pool, &done, -ECANCELED);
        for (int i = 0; i < pool->n; i++)
            if (pool->w[i].proc) /* through the pidfd: never a reused pid */
                (sig == SIGTERM ? weft_process_terminate : weft_process_kill)(pool->w[i].proc);
    }
    dispatch(pool, &done);
    if (!pool->launched)
        weft_event_set(&pool->ended);
    weft_lock_release(&pool->lock);
    finish_done(done);
    if (pool->launched)
        wake_manager(pool);
    return 0;
}

int weft_ppool_close(weft_ppool_t *pool)
{
    return end_pool(pool, CLOSED, 0, false);
}

int weft_ppool_terminate(weft_ppool_t *pool)
{
    return end_pool(pool, TERMINATED, SIGKILL, true);
}

int weft_ppool_terminate_workers(weft_ppool_t *pool)
{
    return end_pool(pool, TERMINATED, SIGTERM, true);
}

int weft_ppool_kill_workers(weft_ppool_t *pool)
{
    return end_pool(pool, TERMINATED, SIGKILL, true);
}

int weft_ppool_join(weft_ppool_t *pool, double timeout)
{
    if (!pool || isnan(timeout))
        return -EINVAL;
    weft_lock_acquire(&pool->lock, WEFT_FOREVER);
    bool open = pool->state == OPEN;
    weft_lock_release(&pool->lock);
    return open ? -EPERM : weft_event_wait(&pool->ended, timeout);
}

int weft_ppool_shutdown(weft_ppool_t *pool, bool wait, bool cancel_futures)
{
    int rc = end_pool(pool, CLOSED, 0, cancel_futures);
    return rc == 0 && wait ? weft_ppool_join(pool, WEFT_FOREVER) : rc;
}

static void pool_unref(struct weft_ppool *pool)
{
    if (atomic_fetch_sub(&pool->refs, 1) == 1)
        free_pool(pool);
}

int weft_ppool_free(weft_ppool_t *pool)
{
    int rc = weft_ppool_shutdown(pool, true, false);
    if (rc < 0)
        return rc;
    if (pool->manager_started)
        pthread_join(pool->manager, NULL);
    unlink_pool(pool);
    pool_unref(pool);
    return 0;
}

int weft_ppool_workers(weft_ppool_t *pool)
{
    if (!pool)
        return -EINVAL;
    int n = 0;
    weft_lock_acquire(&pool->lock, WEFT_FOREVER);
    for (int i = 0; i < pool->n; i++)
        n += pool->w[i].proc != NULL;
    weft_lock_release(&pool->lock);
    return n;
}

/* At exit, as the thread pools do: every pool finishes its queued work
 * (each once; the list lock is not held meanwhile, since shutting down may
 * start processes, and fork takes that lock). */
static void exit_hook(void)
{
    for (;;) {
        pthread_mutex_lock(&pools_lock);
        struct weft_ppool *p = pools;
        while (p && p->exit_seen)
            p = p->next_pool;
        if (p)
            p->exit_seen = true;
        pthread_mutex_unlock(&pools_lock);
        if (!p)
            return;
        weft_ppool_shutdown(p, true, false);
    }
}

static void forget_pools(void)
{
    pools = NULL; /* a forked child has none of its parent's workers */
}

WEFT__CONSTRUCTOR static void ppool_init(void)
{
    weft__fork_guard(&pools_lock, WEFT__RANK_PPOOLS, forget_pools);
    weft__at_exit(exit_hook);
}
