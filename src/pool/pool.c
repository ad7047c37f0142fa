/*
 * ThreadPoolExecutor (weft/pool.h): a work-stealing scheduler.
 *
 * Queues. Each worker owns a Chase-Lev deque (deque.h); submissions from
 * outside go to the injection queue, the lock-free chain of queue.h. A
 * worker looks for work in its own deque (newest first: the sub-task it
 * just made, whose data is still in its cache), then the injection queue,
 * then steals from the other deques starting at a random one (oldest
 * first: in a recursive split, the biggest piece). Both kinds of queue
 * hold tasks by value (function, argument, and the future or group to
 * tell, sched.h), so only a submit that asks for a future allocates.
 *
 * Parking. Idle workers sleep on one eventcount (base/evc.h) until work is
 * visible; every submit notifies it. The eventcount wakes one worker at a
 * time, and a woken worker that still sees work wakes the next, so a burst
 * of submissions spreads over the pool without a system call per task.
 * Before sleeping a worker keeps looking for some 30 us (search()).
 *
 * Waiting inside a task. A worker that waits (for a future, for futures
 * with weft_wait, for a group) keeps running tasks (its own deque first,
 * so a task that submits sub-tasks and then waits runs them itself); with
 * nothing to run it parks on the same eventcount, and what it waits for
 * broadcasts on that eventcount when it comes true. One loop does this
 * for every kind of wait (weft__worker_help, with a weft__until_t): the
 * kinds differ only in how they tell done, and in how they ask to be
 * woken, which they do only once the worker is about to sleep (a future's
 * watch, future_int.h; a group's waiting bit, group.c), as most waits end
 * before: their tasks were the worker's own. So recursive task trees never
 * deadlock, whatever the number of workers.
 *
 * Shutdown. `closed` stops submissions from outside; tasks of the pool may
 * still submit, so work already accepted can finish. A worker exits once
 * the pool is closed and nothing is visible in any queue; the last one to
 * go looks once more after counting itself out, and a submit that raced
 * the shutdown looks at the count after its push, so a task accepted then
 * is run by the last worker or, if every worker is gone, by its submitter
 * (leave, run_leftovers). Counting submits in flight instead cost two
 * locked instructions per submit, a third of an empty task's time.
 *
 * ThreadSanitizer (base/tsan.h): a task travels through its queue's slot,
 * which carries the hand-off (deque.h, queue/chain.c); a task's future is
 * released by the submit and acquired by the run as well, and its own
 * annotations carry the outcome back, as a group's carry its end.
 *
 * Exit. Like Python's executor, pools finish their queued work when the
 * program ends: a hook run by the thread registry's exit handler, before it
 * joins the other non-daemon threads, shuts every live pool down and joins
 * its workers.
 */
#include "base/evc.h"
#include "sync/hold.h"
#include "pool/future_int.h"
#include "pool/sched.h"
#include "queue/chain.h"
#include "thread/thread_int.h"
#include <weft/pool.h>
#include <weft/thread.h>

#include <stdio.h>
#include <stdlib.h>

/* Whom a queued task tells its outcome (sched.h): nobody, a future or a
 * group. */
static weft_future_t *future_of(const weft__task_t *t)
{
    return t->owner & WEFT__OWNER_GROUP ? NULL : (weft_future_t *)t->owner;
}

static weft_group_t *group_of(const weft__task_t *t)
{
    return t->owner & WEFT__OWNER_GROUP ? (weft_group_t *)(t->owner - WEFT__OWNER_GROUP) : NULL;
}

struct worker {
    weft__deque_t deque; /* first: its own cache lines */
    weft_pool_t *pool;
    weft_thread_t *thread;
    uint32_t rng; /* victim choice */
};

struct weft_pool {
    weft__chain_t *inject; /* tasks submitted from outside */
    struct worker *workers;
    int nworkers;
    int (*initializer)(void *arg);
    void *initarg;
    weft_lock_t lock;                            /* serialises joining the workers */
    weft_pool_t *next, *prev;                    /* live pools */
    _Atomic uint32_t closed;                     /* shut down: no more outside submissions */
    _Atomic uint32_t broken;                     /* an initializer failed */
    _Atomic uint32_t alive;                      /* workers that have not exited */
    _Alignas(WEFT__CACHE_LINE) weft__evc_t work; /* idle workers park here */
};

static _Thread_local struct worker *self WEFT__TLS_FAST;

/* Live pools, for the exit hook. */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_pool_t *pools;
static _Atomic unsigned pool_counter;

static bool work_visible(weft_pool_t *p)
{
    if (weft__chain_size(p->inject))
        return true;
    for (int i = 0; i < p->nworkers; i++)
        if (weft__deque_busy(&p->workers[i].deque))
            return true;
    return false;
}

static bool may_exit(weft_pool_t *p)
{
    return atomic_load(&p->closed) && !work_visible(p);
}

/* Leave the pool; false if this was the last worker and work has shown up
 * since (a submit that raced the shutdown): then it stays. A submit reads
 * `alive` after its push, this reads the queues after the decrement, so
 * either the last worker sees the task or the submitter sees no worker
 * (and runs the task itself, run_leftovers). */
static bool leave(weft_pool_t *p)
{
    if (atomic_fetch_sub(&p->alive, 1) != 1 || !work_visible(p))
        return true;
    atomic_fetch_add(&p->alive, 1);
    return false;
}

static uint32_t next_random(struct worker *w)
{
    w->rng ^= w->rng << 13; /* xorshift32 */
    w->rng ^= w->rng >> 17;
    w->rng ^= w->rng << 5;
    return w->rng;
}

static bool steal(struct worker *w, weft__task_t *t)
{
    weft_pool_t *p = w->pool;
    int n = p->nworkers;
    for (int round = 0; round < 4; round++) {
        bool lost_any = false;
        uint32_t start = next_random(w) % (uint32_t)n;
        for (int k = 0; k < n; k++) {
            struct worker *victim = &p->workers[(start + (uint32_t)k) % (uint32_t)n];
            if (victim == w)
                continue;
            bool lost;
            if (weft__deque_steal(&victim->deque, t, &lost))
                return true;
            lost_any |= lost;
        }
        if (!lost_any)
            break;
    }
    return false;
}

/* Fill *t with work to do: false if there is none anywhere. */
static bool find_work(struct worker *w, weft__task_t *t)
{
    return weft__deque_take(&w->deque, t) || weft__chain_get(w->pool->inject, t) == 0 ||
           steal(w, t);
}

/* Run a task with a future, and drop the pool's reference to it. */
static void run_future(weft_future_t *f, int broken)
{
    if (weft_future_set_running_or_notify_cancel(f) == 1) {
        if (broken)
            weft_future_set_error(f, broken);
        else
            weft__future_run(f);
    }
    weft__future_unref(f);
}

static void run(weft_pool_t *p, const weft__task_t *t)
{
    int broken = atomic_load_explicit(&p->broken, memory_order_relaxed) ? WEFT_EBROKEN : 0;
    if (group_of(t))
        weft__group_exec(group_of(t), t, broken);
    else if (future_of(t))
        run_future(future_of(t), broken);
    else if (!broken) /* nobody to tell of a broken pool */
        weft__task_run(t->fn, t->arg);
}

static int idle_attempt(void *arg)
{
    weft_pool_t *p = arg;
    return work_visible(p) || atomic_load(&p->closed) ? 0 : -EAGAIN;
}

static bool more_work(void *arg)
{
    return work_visible(arg);
}

/*
 * Before parking, a worker that found nothing keeps looking for about
 * 20 us: twice a few microseconds apart, then yielding the CPU between
 * looks (Go's scheduler keeps idle threads "spinning" the same way). A
 * worker that parks at the first gap in a stream of submissions has to be
 * woken with a system call by the submitter, whose next submissions are
 * late by that much, which starves the workers again: a feedback loop that
 * made a million empty tasks take 80 ns each in some runs and 170 in
 * others, with ten thousand context switches. With these looks, 80 in all.
 */
#define SEARCH_POLLS 8

static bool search(struct worker *w, weft__task_t *t)
{
    weft__stall_t stall = {128};
    for (int i = 0; i < SEARCH_POLLS; i++) {
        weft__stall(&stall);
        if (find_work(w, t))
            return true;
    }
    return false;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    weft_pool_t *p = w->pool;
    self = w;
    if (p->initializer && p->initializer(p->initarg) < 0) {
        atomic_store(&p->broken, 1);
        weft__evc_notify_all(&p->work);
    }
    for (;;) {
        weft__task_t t;
        if (find_work(w, &t) || search(w, &t)) {
            run(p, &t);
            continue;
        }
        if (may_exit(p) && leave(p))
            break;
        weft__evc_wait(&p->work, idle_attempt, more_work, p, WEFT__NEVER);
    }
    self = NULL;
    return NULL;
}

/* --- waiting as a worker ------------------------------------------------- */

struct help {
    weft_pool_t *pool;
    const weft__until_t *until;
};

static int help_attempt(void *arg)
{
    struct help *h = arg;
    return h->until->done(h->until->arg) != -EAGAIN || work_visible(h->pool) ? 0 : -EAGAIN;
}

/* A waiting worker woken for work passes the wake-up on like an idle one:
 * otherwise a second task, whose notification found the first's wake-up
 * pending, would wait while an idle worker sleeps. */
static bool help_more(void *arg)
{
    return work_visible(((struct help *)arg)->pool);
}

weft_pool_t *weft__worker_pool(void)
{
    return self ? self->pool : NULL;
}

void weft__pool_wake(weft_pool_t *p)
{
    weft__evc_notify_all(&p->work);
}

/* A timed wait also looks at the clock between the tasks it runs, so that
 * a stream of them cannot hold it past its deadline. */
static bool past(weft__deadline_t deadline)
{
    return deadline != WEFT__NEVER && weft__now_ns() >= deadline;
}

int weft__worker_help(const weft__until_t *u, weft__deadline_t deadline)
{
    struct worker *w = self;
    struct help h = {w->pool, u};
    bool armed = !u->arm;
    int rc;
    while ((rc = u->done(u->arg)) == -EAGAIN) {
        weft__task_t t;
        if (find_work(w, &t)) {
            run(w->pool, &t);
            if (past(deadline) && (rc = u->done(u->arg)) == -EAGAIN)
                return -ETIMEDOUT;
            continue;
        }
        if (!armed) {
            armed = true;
            if ((rc = u->arm(u->arg)) != -EAGAIN)
                return rc;
        }
        if (weft__evc_wait(&w->pool->work, help_attempt, help_more, &h, deadline) == -ETIMEDOUT &&
            (rc = u->done(u->arg)) == -EAGAIN)
            return -ETIMEDOUT;
    }
    return rc;
}

/* A worker's wait for a future. It watches the future only once it is
 * about to sleep: most futures a worker waits for are its own sub-tasks,
 * which it runs itself meanwhile, and a watch costs two turns of the
 * future's Lock. Once watched, the future wakes the pool's sleepers when
 * it finishes (the waiter cannot be told apart from idle workers). */
struct future_wait {
    weft__watcher_t base; /* first */
    weft_pool_t *pool;
    weft_future_t *f;
    weft__watch_t watch;
    bool watched;
};

static void future_notify(weft__watcher_t *base, weft_future_t *f)
{
    (void)f;
    weft__pool_wake(((struct future_wait *)base)->pool);
}

static int future_done(void *arg)
{
    return weft__future_finished(((struct future_wait *)arg)->f) ? 0 : -EAGAIN;
}

static int watch_future(void *arg)
{
    struct future_wait *fw = arg;
    fw->watched = weft__future_watch(fw->f, &fw->watch, &fw->base);
    return fw->watched ? -EAGAIN : 0;
}

int weft__worker_wait(weft_future_t *f, weft__deadline_t deadline)
{
    struct worker *w = self;
    if (!w)
        return -ENOENT;
    struct future_wait fw = {{future_notify}, w->pool, f, {0}, false};
    int rc = weft__worker_help(&(weft__until_t){future_done, watch_future, &fw}, deadline);
    if (fw.watched)
        weft__future_unwatch(f, &fw.watch);
    return rc;
}

/* --- creating, submitting, shutting down ---------------------------------- */

static void join_workers(weft_pool_t *p);

/*
 * At exit, as Python's executor does: every pool finishes its queued work,
 * and its workers are joined (a finished thread nobody joins is a leak).
 * The joining happens outside pools_lock, on a snapshot of the list: a
 * task still running may create or free a pool, which takes that lock.
 * From here on a freed pool keeps its memory (the hook may still hold it;
 * the process is ending) and a new pool is refused (nobody would shut it
 * down, and its workers would hold up the exit).
 */
static bool exiting; /* under pools_lock */

static void exit_hook(void)
{
    pthread_mutex_lock(&pools_lock);
    exiting = true;
    size_t n = 0;
    for (weft_pool_t *p = pools; p; p = p->next)
        n++;
    weft_pool_t **all = malloc((n ? n : 1) * sizeof *all);
    n = 0;
    for (weft_pool_t *p = pools; p && all; p = p->next)
        all[n++] = p;
    pthread_mutex_unlock(&pools_lock);
    for (size_t i = 0; i < n; i++)
        weft_pool_shutdown(all[i], false, false);
    for (size_t i = 0; i < n; i++)
        join_workers(all[i]);
    free(all);
}

static bool link_pool(weft_pool_t *p)
{
    pthread_mutex_lock(&pools_lock);
    bool ok = !exiting;
    if (ok) {
        p->next = pools;
        if (pools)
            pools->prev = p;
        pools = p;
    }
    pthread_mutex_unlock(&pools_lock);
    weft__at_exit(exit_hook);
    return ok;
}

/* Unlink; false if the exit hook may still use the pool's memory. */
static bool unlink_pool(weft_pool_t *p)
{
    pthread_mutex_lock(&pools_lock);
    if (p->prev)
        p->prev->next = p->next;
    else
        pools = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    bool ok = !exiting;
    pthread_mutex_unlock(&pools_lock);
    return ok;
}

static void pool_destroy(weft_pool_t *p)
{
    for (int i = 0; i < p->nworkers; i++)
        weft__deque_destroy(&p->workers[i].deque);
    weft__chain_free(p->inject);
    free(p->workers);
    free(p);
}

static int start_workers(weft_pool_t *p, const char *prefix)
{
    unsigned id = atomic_fetch_add(&pool_counter, 1);
    atomic_store(&p->alive, (uint32_t)p->nworkers); /* less the ones that fail to start */
    for (int i = 0; i < p->nworkers; i++) {
        char name[64];
        if (prefix)
            snprintf(name, sizeof name, "%s_%d", prefix, i);
        else
            snprintf(name, sizeof name, "weftpool-%u_%d", id, i);
        struct worker *w = &p->workers[i];
        weft_thread_opts_t opts = {.name = name, .daemon = WEFT_DAEMON_NO};
        int rc = weft_thread_new(&w->thread, worker_main, w, &opts);
        if (rc == 0 && (rc = weft_thread_start(w->thread)) < 0) {
            weft_thread_free(w->thread);
            w->thread = NULL;
        }
        if (rc < 0) {
            atomic_fetch_sub(&p->alive, (uint32_t)(p->nworkers - i));
            return rc;
        }
    }
    return 0;
}

static int pool_alloc(weft_pool_t **out, int n)
{
    weft_pool_t *p = weft__calloc_lines(sizeof *p);
    if (!p)
        return -ENOMEM;
    weft__evc_init(&p->work, WEFT__WAIT_POOL);
    p->workers = weft__calloc_lines((size_t)n * sizeof *p->workers);
    p->inject = weft__chain_new(sizeof(weft__task_t));
    bool ok = p->workers && p->inject;
    /* nworkers counts the deques made, so that destroy frees just those. */
    for (int i = 0; ok && i < n; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        w->rng = 0x9e3779b9u * (uint32_t)(i + 1);
        ok = weft__deque_init(&w->deque) == 0;
        p->nworkers += ok;
    }
    if (!ok) {
        pool_destroy(p);
        return -ENOMEM;
    }
    weft_lock_init(&p->lock, 0);
    *out = p;
    return 0;
}

int weft_pool_new(weft_pool_t **out, const weft_pool_opts_t *opts)
{
    weft_pool_opts_t o = opts ? *opts : (weft_pool_opts_t){0};
    if (!out || o.max_workers < 0 || o.max_workers > 4096)
        return -EINVAL;
    weft_pool_t *p;
    int rc = pool_alloc(&p, o.max_workers ? o.max_workers : weft_cpu_count());
    if (rc < 0)
        return rc;
    p->initializer = o.initializer;
    p->initarg = o.initarg;
    if (!link_pool(p)) { /* the program is exiting */
        pool_destroy(p);
        return WEFT_ESHUTDOWN;
    }
    if ((rc = start_workers(p, o.thread_name_prefix)) < 0) {
        weft_pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int weft_pool_workers(weft_pool_t *p)
{
    return p ? p->nworkers : -EINVAL;
}

/* A submit that raced a shutdown and found every worker gone runs what is
 * left in the injection queue itself: it was accepted, so it must run. */
static void run_leftovers(weft_pool_t *p)
{
    weft__task_t t;
    while (weft__chain_get(p->inject, &t) == 0)
        run(p, &t);
}

/* Queue t: into the calling worker's own deque, if it is one of p's, or
 * the injection queue. */
static int push(weft_pool_t *p, const weft__task_t *t)
{
    struct worker *inside = self && self->pool == p ? self : NULL;
    if (atomic_load_explicit(&p->broken, memory_order_relaxed))
        return WEFT_EBROKEN;
    if (!inside && atomic_load(&p->closed))
        return WEFT_ESHUTDOWN;
    return inside ? weft__deque_push(&inside->deque, t) : weft__chain_put(p->inject, t, NULL, 0);
}

int weft__pool_enqueue(weft_pool_t *p, const weft__task_t *t)
{
    int rc = push(p, t);
    if (rc < 0)
        return rc;
    weft__evc_notify(&p->work); /* its fence orders the push before this load: */
    if (WEFT__UNLIKELY(atomic_load(&p->alive) == 0))
        run_leftovers(p);
    return 0;
}

int weft_pool_submit(weft_pool_t *p, void *(*fn)(void *arg), void *arg, weft_future_t **out)
{
    if (!p || !fn)
        return -EINVAL;
    weft__task_t t = {fn, arg, 0};
    weft_future_t *f = NULL;
    /* Queues hold tasks by value: only a caller that wants a future gets
     * one. */
    if (out) {
        if (!(f = weft__future_alloc()))
            return -ENOMEM;
        f->fn = fn;
        f->arg = arg;
        weft__future_ref(f);   /* the caller's, before a worker can run it and drop the pool's */
        weft__tsan_release(f); /* for the run, after the push */
        t.owner = (uintptr_t)f;
    }
    int rc = weft__pool_enqueue(p, &t);
    if (rc < 0 && f) {
        weft__future_unref(f);
        weft__future_unref(f);
    }
    if (rc == 0 && out)
        *out = f;
    return rc;
}

/* A task that will not run: its future is cancelled, its group told. */
static void drop(const weft__task_t *t)
{
    if (group_of(t)) {
        weft__group_exec(group_of(t), t, -ECANCELED);
    } else if (future_of(t)) {
        weft_future_cancel(future_of(t));
        weft__future_unref(future_of(t));
    }
}

/* Cancel every task not started yet. */
static void cancel_queued(weft_pool_t *p)
{
    weft__task_t t;
    while (weft__chain_get(p->inject, &t) == 0)
        drop(&t);
    for (int i = 0; i < p->nworkers; i++) {
        bool lost = true;
        while (weft__deque_steal(&p->workers[i].deque, &t, &lost) || lost)
            if (!lost)
                drop(&t);
    }
}

static void join_workers(weft_pool_t *p)
{
    weft__lock_hold(&p->lock);
    for (int i = 0; i < p->nworkers; i++) {
        weft_thread_t *t = p->workers[i].thread;
        if (t) {
            weft_thread_join(t, WEFT_FOREVER, NULL);
            weft_thread_free(t);
            p->workers[i].thread = NULL;
        }
    }
    weft_lock_release(&p->lock);
}

int weft_pool_shutdown(weft_pool_t *p, bool wait, bool cancel_futures)
{
    if (!p)
        return -EINVAL;
    if (wait && self && self->pool == p)
        return -EDEADLK;
    atomic_store(&p->closed, 1);
    if (cancel_futures)
        cancel_queued(p);
    weft__evc_notify_all(&p->work);
    if (wait)
        join_workers(p);
    return 0;
}

int weft_pool_free(weft_pool_t *p)
{
    int rc = weft_pool_shutdown(p, true, false);
    if (rc < 0)
        return rc;
    if (unlink_pool(p))
        pool_destroy(p);
    return 0;
}

/* The default pool, made by the first call that can make it: a failure
 * (out of memory, no threads to be had) is not remembered, so a later call
 * tries again rather than getting NULL for the rest of the process. */
static weft_lock_t default_lock = WEFT_LOCK_INIT;
static weft_pool_t *_Atomic default_pool;

weft_pool_t *weft_pool_default(void)
{
    weft_pool_t *p = atomic_load_explicit(&default_pool, memory_order_acquire);
    if (WEFT__LIKELY(p != NULL))
        return p;
    weft__lock_hold(&default_lock);
    p = atomic_load_explicit(&default_pool, memory_order_relaxed);
    weft_pool_t *made;
    if (!p && weft_pool_new(&made, &(weft_pool_opts_t){.thread_name_prefix = "weftpool"}) == 0) {
        p = made;
        atomic_store_explicit(&default_pool, p, memory_order_release);
    }
    weft_lock_release(&default_lock);
    return p;
}

/* In a forked child the parent's pools have no workers: forget them (their
 * memory stays, unused); the default pool is made anew if asked for. */
static void forget_pools(void)
{
    pools = NULL;
    atomic_store_explicit(&default_pool, NULL, memory_order_relaxed);
    default_lock = (weft_lock_t)WEFT_LOCK_INIT; /* perhaps held by a thread gone */
}

WEFT__CONSTRUCTOR static void pool_init(void)
{
    weft__fork_guard(&pools_lock, WEFT__RANK_POOLS, forget_pools);
}
