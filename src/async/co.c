/*
 * Tasks (design in async_int.h and weft/async.h): start, end, join,
 * cancellation, and what a task asks of its loop.
 *
 * A task's outcome is a future (weft/future.h) made running at the start,
 * so that weft_future_cancel, which cancels only what has not started,
 * leaves it alone: tasks are cancelled through weft_co_cancel, at their
 * suspension points. Two references keep a task: the handle's and the
 * loop's, dropped when the scheduler has switched away from it for good.
 */
#include "async/async_int.h"

#include "pool/future_int.h"

/* A task owner id's number: the 22 bits below WEFT__OWNER_TASK. */
#define OWNER_NUMBERS (WEFT__OWNER_TASK - 1)

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Owner ids for tasks (base.h's weft__owner_id), made when a task first
 * takes an owner-checked lock: new ones up to the 22 bits the owner words
 * have for them, then a process-wide stack of freed ones. */
static pthread_mutex_t owners_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *owners_free, owners_freed, owners_cap, owners_next = 1;

/* A child forked while another thread held the lock starts it afresh. */
static void owners_in_child(void)
{
    pthread_mutex_init(&owners_mu, NULL);
}

WEFT__CONSTRUCTOR static void owners_boot(void)
{
    (void)pthread_atfork(NULL, NULL, owners_in_child);
}

static uint32_t owner_make(void)
{
    uint32_t id = 0;
    pthread_mutex_lock(&owners_mu);
    /* New ids first: a task that ended holding an RLock leaves it held by
     * its id, which then passes to no other task for the next four million
     * ids (a thread that exits holding a lock is no better off). */
    if (owners_next <= OWNER_NUMBERS)
        id = owners_next++ | WEFT__OWNER_TASK;
    else if (owners_freed)
        id = owners_free[--owners_freed];
    pthread_mutex_unlock(&owners_mu);
    return id;
}

static void owner_drop(uint32_t id)
{
    pthread_mutex_lock(&owners_mu);
    if (owners_freed == owners_cap) {
        uint32_t cap = owners_cap ? 2 * owners_cap : 64;
        uint32_t *ids = weft__sys.realloc(owners_free, cap * sizeof *ids);
        if (ids) {
            owners_free = ids;
            owners_cap = cap;
        }
    }
    if (owners_freed < owners_cap) /* else the id is lost, not reused */
        owners_free[owners_freed++] = id;
    pthread_mutex_unlock(&owners_mu);
}

/* base's weft__task_owner: the running task's id, made now if need be; 0
 * outside a task, or when no id is left (the task then passes for its
 * thread, as before tasks had ids). */
uint32_t weft__co_owner(void)
{
    struct weft__loop *l = weft__loop_self;
    struct weft_co *t = l ? l->current : NULL;
    if (t && !t->owner)
        t->owner = owner_make();
    return t ? t->owner : 0;
}

/* A task and its future are one allocation, the future first: the task is
 * counted by the future's references (the handle's, the loop's, and those
 * of whoever waits on the future), and the future's last reference frees
 * both. `anchor` is that future: the task's outcome too, unless the task
 * reports to a future made elsewhere (weft_loop_spawn). */
struct co_block {
    weft_future_t anchor;
    struct weft_co co;
};

static weft_future_t *anchor_of(struct weft_co *t)
{
    return (weft_future_t *)((char *)t - offsetof(struct co_block, co));
}

void weft__co_ref(struct weft_co *t)
{
    weft__future_ref(anchor_of(t));
}

static void co_unref(struct weft_co *t)
{
    weft__future_unref(anchor_of(t));
}

/* The anchor's drop: what the task holds besides its memory. */
static void co_drop(weft_future_t *f)
{
    struct weft_co *t = &((struct co_block *)f)->co;
    if (t->future != f)
        weft_future_free(t->future);
    if (t->portal_held)
        weft__portal_release(t->portal);
    free(t->name);
}

/* A task is listed (weft_co_all, the run's end) from its spawn until its
 * function returns, taken off the list on its own stack before its outcome
 * is published: whoever sees it done does not find it listed. */
static void unlist(struct weft_co *t)
{
    struct weft__sched *s = t->loop->sched;
    weft__sched_lock(s);
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        s->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    weft__sched_unlock(s);
}

/* A task of t's loop parked in weft_co_join until t ends (join_parked):
 * woken as the future's own waiters are. */
static void wake_joiner(void *arg)
{
    struct weft_co *t = arg;
    if (t->joiner)
        weft__loop_end_wait(t->joiner, &t->future->state);
}

/* The end of a task, on its own stack: publish the outcome, then leave for
 * good, returning the context to go to (ctx.h). */
static struct weft__ctx *co_main(void *arg, void *data)
{
    WEFT__UNUSED(data);
    struct weft_co *t = arg;
    weft__loop_arrive(t);
    void *value = t->fn(t->arg);
    unlist(t); /* before anyone can see it done */
    int outcome = t->cancels > 0 ? -ECANCELED : t->fail;
    if (weft__future_end(t->future, outcome ? NULL : value, outcome, outcome == -ECANCELED,
                         wake_joiner, t) < 0)
        wake_joiner(t); /* finished already (weft_future_set_result on it) */
    if (t->group)
        weft__co_group_child_ended(t, outcome);
    if (t->rec.lockdep) /* the checker's record of what it held */
        atomic_load_explicit(&weft__lockdep_task_end, memory_order_acquire)(&t->rec.lockdep);
    if (t->rec.gils.n) { /* a task that ends holding a GIL lets go of it */
        atomic_load_explicit(&weft__gils_suspend, memory_order_acquire)(&t->rec.gils);
        t->rec.gils.n = 0;
    }
    t->state = CO_DONE;
    return weft__loop_exit(t->loop, t);
}

/* A task's memory, kept by its loop when the loop reaps the task and holds
 * its last reference: spawning and joining again and again then costs no
 * malloc and free. Only on a plain loop (no sanitizer, whose allocator is
 * what finds a handle used after it was freed), and a few, since memory
 * kept here is no other thread's to reuse. */
enum { SPARES_MAX = 64 };

struct spare {
    struct spare *next;
};

static struct co_block *block_new(struct weft__loop *l)
{
    struct spare *s = l->spares;
    if (!s)
        return weft__zalloc(sizeof(struct co_block));
    l->spares = s->next;
    l->nspares--;
    weft__zero(s, sizeof(struct co_block));
    return (struct co_block *)s;
}

/* Give up the loop's reference to t: keep its memory if that was the last.
 * A task that outlives its reaping (its handle, a cancellation posted from
 * afar) counts the portal it was born with from now on: the portal's
 * loop, and so the portal, lives at least as long as the run, whose tasks
 * all end and are reaped before it does, so a task needs no count of its
 * own before (two read-modify-writes a spawn saved). */
static void block_release(struct weft__loop *l, struct weft_co *t)
{
    weft_future_t *a = anchor_of(t);
    bool last = atomic_load_explicit(&a->refs, memory_order_acquire) == 1;
    if (!last) {
        weft__portal_ref(t->portal);
        t->portal_held = true;
    }
    if (!last || !l->plain || l->nspares == SPARES_MAX) {
        co_unref(t);
        return;
    }
    weft__future_dispose(a);
    struct spare *s = (struct spare *)a;
    s->next = l->spares;
    l->spares = s;
    l->nspares++;
}

void weft__co_free_spares(struct weft__loop *l)
{
    for (struct spare *s = l->spares, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    l->spares = NULL;
    l->nspares = 0;
}

static int co_alloc(struct weft__loop *l, struct weft_co **out, bool handle,
                    const weft_co_opts_t *opts, weft_future_t *future)
{
    struct co_block *b = block_new(l);
    if (!b)
        return -ENOMEM;
    weft__future_init(&b->anchor);
    b->anchor.drop = co_drop;
    /* Nobody else sees the anchor yet: starting the task's own outcome
     * running (weft_future_set_running_or_notify_cancel's step) and,
     * below, counting the handle's reference need no read-modify-write. */
    if (!future)
        atomic_store_explicit(&b->anchor.state, F_RUNNING, memory_order_relaxed);
    struct weft_co *t = &b->co;
    t->future = future ? future : &b->anchor;
    if (future)
        weft__future_ref(future);
    t->name = opts && opts->name ? weft__strdup(opts->name) : NULL;
    size_t size = opts && opts->stack_size ? opts->stack_size : l->stack_size;
    int rc = opts && opts->name && !t->name ? -ENOMEM : weft__loop_stack(l, &t->stack, size);
    if (rc == 0)
        rc = weft__ctx_make(&t->ctx, weft__stack_lo(&t->stack), weft__stack_size(&t->stack),
                            co_main, t);
    if (rc != 0) {
        if (t->stack.map)
            weft__loop_put_stack(l, &t->stack);
        co_unref(t);
        return rc;
    }
    atomic_store_explicit(&b->anchor.refs, handle ? 2 : 1, memory_order_relaxed);
    *out = t;
    return 0;
}

/* A new task of l, ready to run; a group's child is linked to the group
 * before it can run (on another loop, in M:N mode). */
static int co_start(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                    void *arg, const weft_co_opts_t *opts, weft_future_t *future,
                    weft_co_group_t *group)
{
    /* A place in the timer heap for each task's parks: they cannot fail. */
    struct weft__sched *s = l->sched;
    weft__loop_reap_one(l);
    int rc = weft__loop_reserve(l);
    struct weft_co *t;
    if (rc == 0)
        rc = co_alloc(l, &t, handle, opts, future);
    if (rc != 0)
        return rc;
    /* Nobody else sees t yet: a plain store. */
    atomic_store_explicit(&t->loop, l, memory_order_relaxed);
    t->portal = l->portal; /* counted only if t outlives its reaping */
    t->fn = fn;
    t->arg = arg;
    t->id = s->mn ? atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed)
                  : atomic_load_explicit(&s->next_id, memory_order_relaxed);
    if (!s->mn)
        atomic_store_explicit(&s->next_id, t->id + 1, memory_order_relaxed);
    t->fd = t->fd_slot = -1;
    t->timer.index = WEFT__TIMER_IDLE;
    t->timer.fire = weft__co_park_timeout;
    /* Counted before it is listed: once listed, the run's end may look at
     * it (sched.c), and a task listed but not yet counted could let the
     * run end without it. */
    size_t live = weft__sched_add(s, &s->live, 1);
    if (live > weft__count_of(&s->peak)) /* a race loses a step of a heuristic, no more */
        atomic_store_explicit(&s->peak, live, memory_order_relaxed);
    weft__sched_lock(s);
    t->all_next = s->all;
    if (s->all)
        s->all->all_prev = t;
    s->all = t;
    bool stopping = atomic_load_explicit(&s->stopping, memory_order_relaxed);
    /* weft_run is ending (sched.c), or the group was aborted: cancelled at
     * birth. */
    if ((group && weft__co_group_link(group, t)) || stopping) {
        t->stopped = stopping;
        t->cancel_due = true;
        t->cancels = 1;
    }
    weft__sched_unlock(s);
    *out = t; /* before another loop can run it and end it */
    weft__co_wake(t, 0);
    return 0;
}

int weft__co_new(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn, void *arg,
                 const weft_co_opts_t *opts)
{
    return co_start(l, out, handle, fn, arg, opts, NULL, NULL);
}

int weft__co_new_with(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                      void *arg, const weft_co_opts_t *opts, weft_future_t *future)
{
    return co_start(l, out, handle, fn, arg, opts, future, NULL);
}

int weft__co_new_child(struct weft__loop *l, struct weft_co **out, bool handle, weft_co_fn fn,
                       void *arg, const weft_co_opts_t *opts, weft_co_group_t *group)
{
    return co_start(l, out, handle, fn, arg, opts, NULL, group);
}

void weft__co_reap(struct weft__loop *l, struct weft_co *t)
{
    if (t->owner)
        owner_drop(t->owner);
    weft__ctx_release(&t->ctx);
    weft__loop_put_stack(l, &t->stack);
    struct weft__sched *s = l->sched;
    bool main = t == s->main;
    /* weft_run's thread waits for main's end, then for the last task's. */
    if (weft__sched_add(s, &s->live, (size_t)-1) == 0 || main)
        if (s->mn)
            weft__sched_nudge(s->loops[0]);
    block_release(l, t);
}

int weft_co_spawn(weft_co_t **out, weft_co_fn fn, void *arg, const weft_co_opts_t *opts)
{
    struct weft__loop *l = weft__loop_self;
    if (!fn)
        return -EINVAL;
    if (!l)
        return -EPERM;
    struct weft_co *t;
    int rc = weft__co_new(l, &t, out != NULL, fn, arg, opts);
    if (rc == 0 && out)
        *out = t;
    return rc;
}

int weft_co_free(weft_co_t *t)
{
    if (!t)
        return -EINVAL;
    co_unref(t);
    return 0;
}

/* Whether l is a loop of s (l is not looked at: it may be gone). */
static bool in_run(struct weft__sched *s, struct weft__loop *l)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->loops[i] == l)
            return true;
    return false;
}

/* The running task of l waits for t, a task of l, which is the run's only
 * loop, so that t ends on this thread, and which reports to its own
 * future, which only its end finishes: its end wakes the waiter directly
 * (wake_joiner, where the future wakes its own waiters), without the
 * parking table or the future's count of task waiters. Only a deadline or
 * a cancellation ends the park otherwise (a second waiter of t waits on
 * the future). 0 once t has ended, or what ended the park. */
static int join_parked(struct weft__loop *l, struct weft_co *t, double timeout)
{
    struct weft_co *self = l->current;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    _Atomic uint32_t *word = &t->future->state;
    t->joiner = self;
    int rc = weft__park(word, atomic_load_explicit(word, memory_order_relaxed), deadline,
                        WEFT__WAIT_FUTURE | WEFT__PARK_LOOP);
    t->joiner = NULL;
    return weft__park_outcome(rc, weft__future_finished(t->future));
}

/* Wait for t; a waiter cancelled meanwhile is reported as such (t's own
 * cancellation comes back as -ECANCELED too, with t done). */
static int await_task(weft_co_t *t, double timeout, void **result, bool *cancelled)
{
    *cancelled = false;
    if (!t || isnan(timeout))
        return -EINVAL;
    struct weft__loop *l = weft__loop_self;
    /* The task itself; or a call posted to a loop of t's run, which runs on
     * the loop's own stack: waiting there would stop a loop t may need. */
    if (l && (l->current == t || (!l->current && in_run(l->sched, t->loop))))
        return -EDEADLK;
    if (l && l->current && !l->mn && t->loop == l && t->future == anchor_of(t) && timeout != 0 &&
        !t->joiner && !weft__future_finished(t->future)) {
        int rc = join_parked(l, t, timeout);
        if (rc < 0) {
            *cancelled = rc == -ECANCELED;
            return rc;
        }
    }
    int rc = weft_future_result(t->future, timeout, result);
    *cancelled = rc == -ECANCELED && !weft_future_done(t->future);
    return rc;
}

/* The waiter was cancelled: so is t, and the waiter waits for its end. */
static int cancel_and_wait(weft_co_t *t)
{
    /* The waiter is among the tasks it waited for (a gather of itself):
     * it is cancelled already, and cannot wait for its own end. Cancelling
     * it again would make every wait below return -ECANCELED at once, and
     * the loop would never end. */
    struct weft__loop *l = weft__loop_self;
    if (l && l->current == t)
        return -ECANCELED;
    if (weft_co_cancel(t) >= 0)
        while (weft_future_result(t->future, WEFT_FOREVER, NULL) == -ECANCELED &&
               !weft_future_done(t->future))
            weft_co_cancel(t); /* cancelled again: pass that on too */
    return -ECANCELED;
}

int weft_co_join(weft_co_t *t, double timeout, void **result)
{
    bool cancelled;
    int rc = await_task(t, timeout, result, &cancelled);
    return cancelled ? cancel_and_wait(t) : rc;
}

int weft_co_shield(weft_co_t *t, double timeout, void **result)
{
    bool cancelled;
    return await_task(t, timeout, result, &cancelled);
}

int weft_co_wait_for(weft_co_t *t, double timeout, void **result)
{
    bool cancelled;
    int rc = await_task(t, timeout, result, &cancelled);
    if (cancelled)
        return cancel_and_wait(t);
    if (rc != -ETIMEDOUT && rc != -EAGAIN)
        return rc;
    /* Python 3.11: a task that ends in the meantime still gives its
     * result; one that was cancelled is a timeout. */
    cancel_and_wait(t);
    rc = weft_future_result(t->future, 0, result);
    return rc == -ECANCELED ? -ETIMEDOUT : rc;
}

int weft_co_gather(weft_co_t *const *ts, size_t n, void **values, int *errors)
{
    if (n && !ts)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!ts[i])
            return -EINVAL;
    weft_future_t **fs = weft__calloc(n ? n : 1, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        fs[i] = ts[i]->future;
    int rc =
        n ? weft_wait(fs, n, WEFT_FOREVER, errors ? WEFT_ALL_COMPLETED : WEFT_FIRST_EXCEPTION) : 0;
    free(fs);
    if (rc == -ECANCELED) { /* the gatherer was cancelled: so are the tasks */
        for (size_t i = 0; i < n; i++)
            cancel_and_wait(ts[i]);
        return rc;
    }
    if (rc < 0)
        return rc;
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        weft_future_t *f = ts[i]->future;
        int err = weft_future_done(f) ? weft_future_result(f, 0, values ? &values[i] : NULL) : 0;
        if (errors)
            errors[i] = err;
        if (err < 0 && first == 0)
            first = err;
    }
    return errors ? 0 : first;
}

weft_future_t *weft_co_future(weft_co_t *t)
{
    return t ? t->future : NULL;
}

int weft_co_cancel(weft_co_t *t)
{
    if (!t)
        return -EINVAL;
    struct weft__loop *self = weft__loop_self, *l = t->loop;
    if (self == l) {
        int rc = weft__loop_cancel(l, t, true);
        if (rc != -EAGAIN)
            return rc;
        l = t->loop; /* taken by another loop of the run meanwhile */
    }
    /* From another thread: counted now, as Python counts it, and delivered
     * by a call posted to the loop t is on, if it is one of the caller's
     * run (they all live as long as t does); else to the portal t was born
     * with, which outlives the run, and whose loop passes it on. */
    if (weft_future_done(t->future))
        return 0;
    /* Undelivered first: whoever sees the count delivers for it. */
    t->undelivered++;
    t->cancels++;
    int rc = weft__portal_cancel(t, self && in_run(self->sched, l) ? l->portal : t->portal);
    if (rc <= 0) { /* no memory, or t's loop (and so t) has ended */
        t->cancels--;
        t->undelivered--;
    }
    return rc;
}

int weft__co_take_cancel(struct weft_co *t)
{
    if (!t->cancel_due)
        return 0;
    t->cancel_due = false;
    atomic_store(&t->undelivered, 0);
    return -ECANCELED;
}

void weft__co_cancel_arrived(struct weft_co *t)
{
    struct weft__loop *self = weft__loop_self, *l = t->loop;
    if (self == l && weft__loop_cancel(l, t, false) != -EAGAIN)
        return;
    if (!weft_future_done(t->future)) /* on to the loop that took it */
        weft__portal_cancel(t, t->loop->portal);
}

int weft_co_uncancel(weft_co_t *t)
{
    if (!t)
        return -EINVAL;
    if (weft__loop_self != t->loop || t->cancels == 0)
        return -EPERM;
    if (--t->cancels == 0) {
        t->cancel_due = false;
        atomic_store(&t->undelivered, 0);
    }
    return (int)t->cancels;
}

int weft_co_cancelling(weft_co_t *t)
{
    return t ? (int)t->cancels : -EINVAL;
}

weft_co_t *weft_co_current(void)
{
    struct weft__loop *l = weft__loop_self;
    return l ? l->current : NULL;
}

const char *weft_co_name(weft_co_t *t)
{
    if (!t)
        return NULL;
    if (!t->name) {
        char buf[32];
        snprintf(buf, sizeof buf, "co-%" PRIu64, t->id);
        t->name = weft__strdup(buf);
    }
    return t->name ? t->name : "co";
}

int weft_co_all(weft_co_t **out, size_t cap)
{
    struct weft__loop *l = weft__loop_self;
    if (!l)
        return -EPERM;
    if (!out && cap)
        return -EINVAL;
    size_t n = 0;
    weft__sched_lock(l->sched);
    for (struct weft_co *t = l->sched->all; t; t = t->all_next, n++)
        if (n < cap)
            out[n] = t;
    weft__sched_unlock(l->sched);
    return (int)n;
}

int weft_co_sleep(double seconds)
{
    struct weft__loop *l = weft__loop_self;
    if (seconds != 0 || !l || !l->current)
        return weft_sleep(seconds);
    struct weft_co *t = l->current;
    if (t->cancel_due)
        return weft__co_take_cancel(t);
    weft__loop_yield(l, t);
    return 0;
}

int weft_co_to_thread(weft_co_fn fn, void *arg, void **result)
{
    weft_pool_t *pool = weft_pool_default();
    if (!fn)
        return -EINVAL;
    if (!pool)
        return -ENOMEM;
    weft_future_t *f;
    int rc = weft_pool_submit(pool, fn, arg, &f);
    if (rc != 0)
        return rc;
    rc = weft_future_result(f, WEFT_FOREVER, result);
    weft_future_free(f); /* the pool keeps its own while the job runs */
    return rc;
}

void *weft_co_fail(int error)
{
    struct weft__loop *l = weft__loop_self;
    if (l && l->current && error < 0)
        l->current->fail = error;
    return NULL;
}
