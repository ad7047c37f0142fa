/*
 * Scopes (design in weft/async.h): task groups and timeouts.
 *
 * A group lives in its parent task's frame and its children point to it,
 * so the parent must not leave the scope while any child lives: the scope's
 * end waits, parked on the count of live children, which the last child to
 * end unparks. A child that fails aborts the group: its siblings are
 * cancelled, and so is the parent while it is still in the scope's body,
 * so that whatever it waits for there ends; the group withdraws that
 * cancellation at the end (Python's TaskGroup does the same, with
 * uncancel), and reports the failure. A parent cancelled from outside (more
 * requests than the group's own) aborts the group at the end, and the
 * scope reports -ECANCELED with the cancellation re-armed, so that the code
 * after the scope learns of it too, as the CancelledError would propagate
 * out of an `async with` block in Python.
 *
 * A timeout scope is a timer in the loop's heap that cancels its task when
 * it fires; the task stays on that loop while it is in the scope (M:N
 * mode, sched.c). Scopes nest through the task's list of them (innermost first);
 * each withdraws only the cancellation it made.
 */
#include "async/async_int.h"

#include <errno.h>
#include <math.h>

enum {
    G_ENTERED = 1,
    G_ENDING = 2,           /* in the scope's end: no new children */
    G_ABORTED = 4,          /* a child failed, or the parent was cancelled */
    G_CANCELLED_PARENT = 8, /* the group asked the parent to stop */
};

static _Atomic uint32_t *live_word(weft_co_group_t *g)
{
    return (_Atomic uint32_t *)&g->live;
}

static unsigned live_of(weft_co_group_t *g)
{
    return atomic_load_explicit(live_word(g), memory_order_relaxed);
}

/* Children, linked through their sibling pointers. */
static struct weft_co *first_child(weft_co_group_t *g)
{
    return g->children;
}

static void link_child(weft_co_group_t *g, struct weft_co *t)
{
    t->group = g;
    t->sibling_prev = NULL;
    t->sibling_next = first_child(g);
    if (t->sibling_next)
        t->sibling_next->sibling_prev = t;
    g->children = t;
    atomic_store_explicit(live_word(g), live_of(g) + 1, memory_order_relaxed);
}

bool weft__co_group_link(weft_co_group_t *g, struct weft_co *t)
{
    link_child(g, t);
    return g->state & G_ABORTED; /* a sibling failed meanwhile */
}

static void unlink_child(weft_co_group_t *g, struct weft_co *t)
{
    if (t->sibling_prev)
        t->sibling_prev->sibling_next = t->sibling_next;
    else
        g->children = t->sibling_next;
    if (t->sibling_next)
        t->sibling_next->sibling_prev = t->sibling_prev;
    t->group = NULL;
    atomic_store_explicit(live_word(g), live_of(g) - 1, memory_order_relaxed);
}

static void abort_group(weft_co_group_t *g)
{
    if (g->state & G_ABORTED)
        return;
    g->state |= G_ABORTED;
    for (struct weft_co *t = first_child(g); t; t = t->sibling_next)
        weft_co_cancel(t);
    if (!(g->state & G_ENDING)) {
        g->state |= G_CANCELLED_PARENT;
        weft_co_cancel(g->parent);
    }
}

/* A group's children and state change under the run's lock: in M:N mode
 * its parent and children may run on different threads. */
static struct weft__sched *sched_of(weft_co_group_t *g)
{
    return ((struct weft_co *)g->parent)->loop->sched;
}

void weft__co_group_child_ended(struct weft_co *t, int outcome)
{
    weft_co_group_t *g = t->group;
    struct weft__sched *s = t->loop->sched; /* the parent's run too */
    weft__sched_lock(s);
    unlink_child(g, t);
    if (outcome < 0 && outcome != -ECANCELED && g->error == 0) {
        g->error = outcome;
        abort_group(g);
    }
    bool last = live_of(g) == 0;
    weft__sched_unlock(s);
    if (last)
        weft__unpark(live_word(g), 1, WEFT__WAIT_GROUP);
}

int weft_co_group_enter(weft_co_group_t *g)
{
    if (!g || (g->state & G_ENTERED))
        return 0;
    g->state |= G_ENTERED;
    struct weft__loop *l = weft__loop_self;
    if (!l || !l->current) {
        if (g->result)
            *g->result = -EPERM;
        return 0;
    }
    g->parent = l->current;
    return 1;
}

int weft_co_group_spawn(weft_co_group_t *g, weft_co_t **out, weft_co_fn fn, void *arg,
                        const weft_co_opts_t *opts)
{
    if (!g || !fn)
        return -EINVAL;
    struct weft__loop *l = weft__loop_self;
    if (!l)
        return -EPERM;
    /* While the scope's end waits, a child may still start a sibling (as in
     * Python's TaskGroup and Trio); not once the group is aborted, nor once
     * nobody is left to wait for. The parent is looked at under the lock of
     * the caller's run: the end clears it under the same lock. */
    struct weft__sched *s = l->sched;
    weft__sched_lock(s);
    struct weft_co *parent = g->parent;
    if (!parent || parent->loop->sched != s) {
        weft__sched_unlock(s);
        return -EPERM;
    }
    bool closed = (g->state & G_ABORTED) || ((g->state & G_ENDING) && live_of(g) == 0);
    if (!closed)
        atomic_store_explicit(live_word(g), live_of(g) + 1, memory_order_relaxed); /* held open */
    weft__sched_unlock(s);
    if (closed)
        return WEFT_ESHUTDOWN;
    struct weft_co *t;
    int rc = weft__co_new_child(l, &t, out != NULL, fn, arg, opts, g);
    weft__sched_lock(s);
    atomic_store_explicit(live_word(g), live_of(g) - 1, memory_order_relaxed);
    bool last = live_of(g) == 0;
    weft__sched_unlock(s);
    if (rc == 0 && out)
        *out = t;
    /* The place held open was the last (the child, if any, has ended on
     * another loop already): the scope's end may be waiting for it. */
    if (last)
        weft__unpark(live_word(g), 1, WEFT__WAIT_GROUP);
    return rc;
}

void weft_co_group_end(weft_co_group_t *g)
{
    struct weft_co *parent = g->parent;
    if (!parent)
        return;
    struct weft__sched *s = sched_of(g);
    weft__sched_lock(s);
    g->state |= G_ENDING;
    unsigned own = g->state & G_CANCELLED_PARENT ? 1 : 0;
    bool outside = parent->cancels > own;
    if (outside)
        abort_group(g);
    weft__sched_unlock(s);
    for (uint32_t live; (live = live_of(g)) != 0;) {
        if (weft__park(live_word(g), live, WEFT__NEVER, WEFT__WAIT_GROUP) == -ECANCELED &&
            parent->cancels > own) {
            outside = true;
            weft__sched_lock(s);
            abort_group(g);
            weft__sched_unlock(s);
        }
    }
    weft__sched_lock(s); /* after the last child's unlock: what it left is seen */
    g->parent = NULL;
    weft__sched_unlock(s);
    if (g->state & G_CANCELLED_PARENT)
        weft_co_uncancel(parent);
    int rc = g->error ? g->error : outside ? -ECANCELED : 0;
    if (outside)
        weft__park_recancel();
    if (g->result)
        *g->result = rc;
}

/* Timeouts. */

enum { TO_NEW, TO_INSIDE, TO_FIRED, TO_DONE };

static weft_co_timeout_t *scope_of(struct weft__timer *tm)
{
    return (weft_co_timeout_t *)((char *)tm - offsetof(weft_co_timeout_t, timer));
}

static void timeout_fired(struct weft__timer *tm)
{
    weft_co_timeout_t *to = scope_of(tm);
    to->state = TO_FIRED;
    weft_co_cancel(to->task);
}

/* (Re)set the scope's timer; its place in the heap is reserved. */
static void arm(weft_co_timeout_t *to, double seconds)
{
    struct weft_co *t = to->task;
    weft__heap_remove(&t->loop->timers, &to->timer);
    weft__deadline_t deadline;
    if (seconds >= 0 && weft__deadline(seconds, &deadline) == 0)
        weft__heap_push(&t->loop->timers, &to->timer, deadline);
}

static void leave_early(weft_co_timeout_t *to, int rc)
{
    to->state = TO_DONE;
    if (to->result)
        *to->result = rc;
}

int weft_co_timeout_enter(weft_co_timeout_t *to)
{
    if (!to || to->state != TO_NEW)
        return 0;
    struct weft__loop *l = weft__loop_self;
    if (!l || !l->current) {
        leave_early(to, -EPERM);
        return 0;
    }
    if (isnan(to->seconds)) {
        leave_early(to, -EINVAL);
        return 0;
    }
    struct weft_co *t = l->current;
    if (weft__loop_reserve(l) != 0) {
        leave_early(to, -ENOMEM);
        return 0;
    }
    weft__sched_add(l->sched, &l->sched->scopes, 1);
    to->task = t;
    to->timer = (struct weft__timer){.index = WEFT__TIMER_IDLE, .fire = timeout_fired};
    arm(to, to->seconds);
    to->outer = t->timeouts;
    t->timeouts = to;
    to->state = TO_INSIDE;
    return 1;
}

void weft_co_timeout_end(weft_co_timeout_t *to)
{
    if (to->state != TO_INSIDE && to->state != TO_FIRED)
        return;
    struct weft_co *t = to->task;
    weft__heap_remove(&t->loop->timers, &to->timer);
    weft__sched_add(t->loop->sched, &t->loop->sched->scopes, (size_t)-1);
    t->timeouts = to->outer;
    int rc = 0;
    if (to->state == TO_FIRED) {
        weft_co_uncancel(t);
        rc = -ETIMEDOUT;
    }
    if (t->cancels > 0) { /* a cancellation from outside the scope */
        weft__park_recancel();
        rc = rc ? rc : -ECANCELED;
    }
    to->state = TO_DONE;
    if (to->result)
        *to->result = rc;
}

int weft_co_reschedule(double seconds)
{
    struct weft__loop *l = weft__loop_self;
    struct weft_co *t = l ? l->current : NULL;
    if (isnan(seconds))
        return -EINVAL;
    if (!t || !t->timeouts || t->timeouts->state != TO_INSIDE)
        return -EPERM;
    arm(t->timeouts, seconds);
    return 0;
}
