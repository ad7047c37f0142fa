/*
 * The event loop (design in async_int.h): the scheduler on the thread's
 * own stack, the parker that suspends a task where a thread would sleep,
 * timers, epoll, and the cache of stacks.
 *
 * Tasks switch to each other directly: a task that parks or yields jumps to
 * the next ready one (weft__loop_switch_away), and the scheduler's own stack
 * is entered only when nothing is ready or the round's budget is spent. A
 * round runs as many tasks as were ready when it began (asyncio runs that
 * many callbacks an iteration), but at least ROUND_MIN, so that tasks
 * handing off to each other do not come home to look at I/O every time.
 * Between rounds the scheduler waits in epoll_pwait2 for descriptors, the
 * portal's eventfd (portal.c) or the next timer, but only when nothing is
 * ready, and not at all while nothing could answer (no task on a descriptor,
 * and the portal quiet); then it fires due timers and takes in what other
 * threads queued. epoll_pwait2 takes its timeout in nanoseconds, so a timer
 * is never early and at most a wake-up late; where the kernel lacks it
 * (before 5.11), epoll_wait's milliseconds are rounded up.
 *
 * The parker is installed in base's per-thread slot while tasks run (and
 * emptied when the scheduler's stack is back), so that the scheduler
 * itself, and whatever it calls, waits as a thread does.
 */
#include "async/async_int.h"

#include "pool/future_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

_Thread_local struct weft__loop *weft__loop_self WEFT__TLS_FAST;

enum {
    STACK_DEFAULT = 64 * 1024,
    CACHE_FIRST = 1024,
    CACHE_MAX = 1 << 20,
    STACK_BATCH = 64,
    ASIDE_MAX = WEFT__ASIDE_MAX,
    EVENTS = 64,
    ROUND_MIN = 64,
};

/* Stacks. Those of the loop's own size are kept for reuse, pages already
 * touched (a first touch costs a page fault and the unmap another trip
 * into the kernel, about 1.7 us together here, more than the rest of a
 * task's life), and the cache is refilled a batch at a time (one mapping,
 * the guards in as few calls as the kernel allows); ASan is told to forget
 * the red zones of the frames an ended task abandoned. The cache keeps as
 * many stacks as the run ever had tasks alive at once (a thousand at the
 * least, a million at the most), so that a run keeps the stacks of its
 * busiest moment for the next one, as Go keeps its goroutines' stacks;
 * they go back to the kernel when the run ends. The bound is the run's,
 * not the loop's own: in M:N mode a stack goes back to the loop its task
 * ended on, and a loop that runs tasks others spawned would otherwise
 * collect stacks it never hands out. */
static size_t cache_limit(struct weft__loop *l)
{
    size_t peak = weft__count_of(&l->sched->peak);
    return peak < CACHE_FIRST ? CACHE_FIRST : peak > CACHE_MAX ? CACHE_MAX : peak;
}

/* Room in the cache for one more stack: false at the limit; else true if
 * the array has a free place, or if `grow` and the array can be made (on
 * first use: a loop of M:N mode that only runs tasks others spawned keeps
 * their stacks too, since unmapping each would cost every thread of the
 * process a TLB flush) or doubled. */
static bool cache_room(struct weft__loop *l, bool grow)
{
    if (l->cached >= cache_limit(l))
        return false;
    if (l->cached < l->cache_cap)
        return true;
    size_t cap = l->cache_cap ? 2 * l->cache_cap : CACHE_FIRST;
    struct weft__stack *cache = grow ? weft__sys.realloc(l->cache, cap * sizeof *cache) : NULL;
    if (!cache)
        return false;
    l->cache = cache;
    l->cache_cap = cap;
    return true;
}

/* An ended task goes straight to the next ready one, as a parking one
 * does, so that spawn-and-join costs one switch less, and leaves its
 * reaping (its stack back in the cache, its place in the run given up) to
 * the scheduler, which every round comes back to: reaping may unmap stacks
 * and free memory, work of a depth that an ending task's stack was not
 * sized for. Their stacks go back sooner, where that is a store into the
 * cache: the stack of the task that ended before, as the next one ends (so
 * that a task spawned and joined again and again runs on one hot stack),
 * and more as spawns need them. A spawn also reaps one whose stack is back
 * (it frees the memory the spawn then allocates: a spawning task's stack
 * has room for that), so that a round that spawns as many as ended does
 * not hold twice the tasks' memory. Each task ends on one loop's thread,
 * once, and only that thread reaps it. */
static void reap_list(struct weft__loop *l, struct weft_co **list)
{
    for (struct weft_co *t = *list, *next; t; t = next) {
        next = t->next;
        weft__co_reap(l, t);
    }
    *list = NULL;
}

static void reap_dead(struct weft__loop *l)
{
    reap_list(l, &l->dead);
    reap_list(l, &l->husks);
}

static bool ours(struct weft__loop *l, const struct weft__stack *s)
{
    size_t size = weft__stack_size(s);
    return size >= l->stack_size && size < l->stack_size + weft__page_size();
}

/* The stack of the task that ended last and still has one back in the
 * cache, if that is a store (room without growing the cache), the task
 * moved on to the husks; a stack of another size stays with its task, for
 * the reaping to unmap. False if there is none, or no room. */
static bool unstack_one(struct weft__loop *l)
{
    struct weft_co *t = l->dead;
    if (!t)
        return false;
    if (ours(l, &t->stack)) {
        if (!cache_room(l, false))
            return false;
        weft__ctx_unpoison(weft__stack_lo(&t->stack), weft__stack_size(&t->stack));
        l->cache[l->cached++] = t->stack;
        t->stack.map = NULL;
    }
    l->dead = t->next;
    t->next = l->husks;
    l->husks = t;
    return true;
}

void weft__loop_reap_one(struct weft__loop *l)
{
    while (l->cached < STACK_BATCH && unstack_one(l)) /* tasks ended this round */
        ;
    struct weft_co *t = l->husks;
    if (t) {
        l->husks = t->next;
        weft__co_reap(l, t);
    }
}

int weft__loop_stack(struct weft__loop *l, struct weft__stack *s, size_t size)
{
    if (size != l->stack_size)
        return weft__stack_map(s, size);
    if (l->cached == 0) {
        if (!cache_room(l, true))
            return -ENOMEM;
        /* Near the process's limit of mappings (mprotect'ed guards make
         * two a stack), a whole batch may not fit where one stack does. */
        int rc = weft__stack_map_many(l->cache, STACK_BATCH, size);
        if (rc != 0)
            return weft__stack_map(s, size);
        l->cached = STACK_BATCH;
    }
    *s = l->cache[--l->cached];
    return 0;
}

static int by_address(const void *a, const void *b)
{
    const char *x = ((const struct weft__stack *)a)->map, *y = ((const struct weft__stack *)b)->map;
    return (x > y) - (x < y);
}

/* Unmap the stacks put aside, neighbours together: stacks mapped in one
 * batch lie side by side, and tasks tend to end in the order they began,
 * so a munmap usually frees many (one system call and one TLB flush for
 * all of them). */
static void unmap_runs(struct weft__stack *stacks, size_t n)
{
    qsort(stacks, n, sizeof *stacks, by_address);
    for (size_t i = 0; i < n;) {
        struct weft__stack run = stacks[i++];
        while (i < n && stacks[i].map == run.map + run.map_len)
            run.map_len += stacks[i++].map_len;
        weft__stack_unmap(&run);
    }
}

static void unmap_aside(struct weft__loop *l)
{
    unmap_runs(l->aside, l->set_aside);
    l->set_aside = 0;
}

void weft__loop_put_stack(struct weft__loop *l, struct weft__stack *s)
{
    if (!s->map) /* back in the cache already (unstack_one) */
        return;
    weft__ctx_unpoison(weft__stack_lo(s), weft__stack_size(s));
    bool mine = ours(l, s);
    if (mine && cache_room(l, true)) {
        l->cache[l->cached++] = *s;
    } else if (mine) {
        l->aside[l->set_aside++] = *s;
        if (l->set_aside == ASIDE_MAX)
            unmap_aside(l);
    } else {
        weft__stack_unmap(s);
    }
}

/* The ready queue. */

/* Descriptor waits are named to epoll by a slot of the loop's table and
 * the slot's generation, not by the task: a wait whose descriptor the
 * program closed (while a duplicate keeps the file open, so epoll keeps the
 * entry) can still deliver one event (EPOLLONESHOT) after the task has
 * moved on, even ended; such an event names a slot whose generation has
 * moved on too, and is dropped. */
static const uint64_t PORTAL_EVENT = UINT64_MAX;

static int slot_take(struct weft__loop *l, struct weft_co *t, uint64_t *name)
{
    if (l->free_slot == 0) {
        uint32_t n = l->nslots ? 2 * l->nslots : 16;
        struct weft__fd_slot *slots = weft__sys.realloc(l->slots, n * sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (uint32_t i = l->nslots; i < n; i++)
            slots[i] = (struct weft__fd_slot){NULL, 0, i + 1 < n ? i + 2 : 0};
        l->free_slot = l->nslots + 1;
        l->slots = slots;
        l->nslots = n;
    }
    uint32_t i = l->free_slot - 1;
    l->free_slot = l->slots[i].next_free;
    l->slots[i].task = t;
    *name = (uint64_t)l->slots[i].gen << 32 | i;
    return (int)i;
}

static void slot_drop(struct weft__loop *l, int i)
{
    l->slots[i].task = NULL;
    l->slots[i].gen++;
    l->slots[i].next_free = l->free_slot;
    l->free_slot = (uint32_t)i + 1;
}

static struct weft_co *slot_task(struct weft__loop *l, uint64_t name)
{
    uint32_t i = (uint32_t)name;
    if (name == PORTAL_EVENT || i >= l->nslots || l->slots[i].gen != (uint32_t)(name >> 32))
        return NULL;
    return l->slots[i].task;
}

/* What a park holds of its loop (its timer, its descriptor's place in
 * epoll) goes back when the park ends, on the loop's own thread: the task
 * may next run on another one (M:N mode). */
static void leave_park(struct weft__loop *l, struct weft_co *t)
{
    weft__heap_remove(&l->timers, &t->timer);
    if (t->fd_slot >= 0) {
        slot_drop(l, t->fd_slot);
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, t->fd, NULL);
        if (t->fd_dup)
            close(t->fd);
        t->fd = t->fd_slot = -1;
        t->fd_dup = false;
        l->fds_parked--;
    }
}

/* The ready queue: FIFO, and locked in M:N mode, where other loops take
 * tasks from its head (weft__loop_detach). nready and nmovable change
 * under the lock and are read without it. A task inside a timeout scope
 * does not move: its scope's timer is in this loop's heap. */
static WEFT__INLINE void count_add(_Atomic size_t *c, size_t delta)
{
    atomic_store_explicit(c, weft__count_of(c) + delta, memory_order_relaxed);
}

static WEFT__INLINE void rq_lock(struct weft__loop *l)
{
    if (l->mn)
        weft__tas_lock(&l->rq_mu);
}

static WEFT__INLINE void rq_unlock(struct weft__loop *l)
{
    if (l->mn)
        weft__tas_unlock(&l->rq_mu);
}

/* Only M:N mode counts the queue (others look at it without its lock),
 * and what in it may move. */
static WEFT__INLINE void count_ready(struct weft__loop *l, struct weft_co *t, size_t delta)
{
    if (!l->mn)
        return;
    count_add(&l->nready, delta);
    if (!t->timeouts)
        count_add(&l->nmovable, delta);
}

static WEFT__INLINE bool none_ready(struct weft__loop *l)
{
    return l->mn ? !weft__count_of(&l->nready) : !l->ready;
}

static WEFT__INLINE void enqueue(struct weft__loop *l, struct weft_co *t)
{
    t->state = CO_READY;
    t->next = NULL;
    rq_lock(l);
    *l->ready_tail = t;
    l->ready_tail = &t->next;
    count_ready(l, t, 1);
    rq_unlock(l);
}

static WEFT__INLINE void push_ready(struct weft__loop *l, struct weft_co *t)
{
    if (t->state == CO_PARKED)
        leave_park(l, t);
    enqueue(l, t);
    if (l->mn)
        weft__sched_wake_idle(l);
}

void weft__loop_adopt(struct weft__loop *l, struct weft_co *t)
{
    enqueue(l, t);
}

/* The first ready task, taken off the queue, or NULL. */
static WEFT__INLINE struct weft_co *pop_ready(struct weft__loop *l)
{
    if (none_ready(l))
        return NULL;
    rq_lock(l);
    struct weft_co *t = l->ready;
    if (t) {
        if ((l->ready = t->next) == NULL)
            l->ready_tail = &l->ready;
        count_ready(l, t, (size_t)-1);
    }
    rq_unlock(l);
    return t;
}

size_t weft__loop_detach(struct weft__loop *v, struct weft__loop *l, struct weft_co **out,
                         size_t max)
{
    size_t n = 0;
    rq_lock(v);
    for (struct weft_co **pp = &v->ready, *t; n < max && (t = *pp) != NULL;) {
        if (t->timeouts) {
            pp = &t->next;
            continue;
        }
        if ((*pp = t->next) == NULL)
            v->ready_tail = pp;
        t->loop = l;
        out[n++] = t;
    }
    count_add(&v->nready, -n);
    count_add(&v->nmovable, -n);
    rq_unlock(v);
    return n;
}

/* From another thread: through the portal of the loop t parked on (which
 * lives while t does), kept alive meanwhile (once t is queued, the loop may
 * end before the eventfd is written). */
static WEFT__NOINLINE void wake_from_afar(struct weft__loop *l, struct weft_co *t)
{
    struct weft_loop *p = l->portal;
    weft__portal_ref(p);
    weft__portal_wake(p, t);
    weft__portal_release(p);
}

void weft__co_wake(struct weft_co *t, int rc)
{
    t->park_rc = rc;
    struct weft__loop *l = t->loop;
    if (WEFT__LIKELY(weft__loop_self == l))
        push_ready(l, t);
    else
        wake_from_afar(l, t);
}

/* What other threads queued: woken tasks, then calls (which run here, on
 * the scheduler's stack, outside any task). */
static void take_remote(struct weft__loop *l)
{
    struct weft_co *tasks;
    struct weft__call *calls;
    weft__portal_take(l->portal, &tasks, &calls);
    for (struct weft_co *t = tasks, *next; t; t = next) {
        next = t->next;
        push_ready(l, t);
    }
    for (struct weft__call *c = calls, *next; c; c = next) {
        next = c->next;
        c->run(c);
    }
}

/* Ending a park from the loop's thread (a timer, a cancellation): a park on
 * a word is settled under its bucket's lock, against an unpark from any
 * thread; a sleep or a descriptor wait only the loop's thread can end. */
bool weft__loop_end_park(struct weft_co *t, int rc)
{
    if (t->shared        ? !weft__shared_abandon(t)
        : t->waiter.word ? !weft__lot_dequeue(t)
                         : t->state != CO_PARKED)
        return false;
    weft__co_wake(t, rc);
    return true;
}

void weft__loop_end_wait(struct weft_co *t, _Atomic uint32_t *word)
{
    if (t->state == CO_PARKED && t->loop_word == word)
        weft__co_wake(t, 0);
}

int weft__loop_cancel(struct weft__loop *l, struct weft_co *t, bool count)
{
    /* Under the queue's lock, so that no other loop takes t meanwhile. A
     * request posted from another thread that finds it delivered already
     * (by an earlier one, or by a scope's end re-arming it) does nothing. */
    rq_lock(l);
    bool moved = t->loop != l;
    if (moved || t->state == CO_DONE ||
        (!count && (t->cancels == 0 || atomic_exchange(&t->undelivered, 0) == 0))) {
        rq_unlock(l);
        return moved ? -EAGAIN : 0;
    }
    if (count)
        t->cancels++;
    bool parked = t->state == CO_PARKED;
    if (!parked)
        t->cancel_due = true;
    rq_unlock(l);
    /* A park this ends returns -ECANCELED: the delivery. Otherwise the
     * next one does. Only this thread queues a task parked here. */
    if (!parked)
        return 1;
    if (weft__loop_end_park(t, -ECANCELED))
        atomic_store(&t->undelivered, 0);
    else
        t->cancel_due = true;
    return 1;
}

/* Parking a task. */

/* A task holding GILs lets go of them while it is suspended (base/park.h),
 * and takes them back when it resumes. Both happen outside the suspension
 * proper: before the task is put anywhere (the parking table, the timer
 * heap, the ready queue, a descriptor slot) and after it has left them all.
 * Letting go and taking back may themselves park the task (on a GIL's
 * internal lock, or for its turn behind another holder), and the task has
 * one place in each of those: a park made while another is registered
 * linked its waiter a second time, pushed its timer twice, or ran it from
 * the ready queue while it was parked. */
static bool gils_suspend(struct weft_co *t)
{
    if (WEFT__LIKELY(!t->rec.gils.n))
        return false;
    void (*hook)(struct weft__task_gils *) =
        atomic_load_explicit(&weft__gils_suspend, memory_order_acquire);
    hook(&t->rec.gils);
    return true;
}

static void gils_resume(struct weft_co *t, bool let_go)
{
    if (WEFT__LIKELY(!let_go))
        return;
    void (*hook)(struct weft__task_gils *) =
        atomic_load_explicit(&weft__gils_resume, memory_order_acquire);
    hook(&t->rec.gils);
}

/* t is the running task from now on: the loop's and the thread's slots
 * that name it (its owner id is 0 until it needs one). */
static void make_current(struct weft__loop *l, struct weft_co *t)
{
    t->state = CO_RUNNING;
    l->current = t;
    weft__owner_self = t->owner;
    weft__task_rec = &t->rec;
}

/* The first thing a context does when it is resumed on a loop's thread:
 * queue the task that yielded to it. A yielding task is queued only once
 * it has left its stack, so that no other thread can take it from the
 * queue and resume it while it is still on its way out (M:N mode); Go's
 * gopark finishes on g0 for the same reason. */
static void arrive(struct weft__loop *l)
{
    struct weft_co *t = l->requeue;
    if (WEFT__UNLIKELY(t != NULL)) {
        l->requeue = NULL;
        push_ready(l, t);
    }
}

void weft__loop_arrive(struct weft_co *t)
{
    arrive(t->loop);
}

void weft__loop_switch_away(struct weft__loop *l, struct weft_co *t)
{
    struct weft_co *next = l->budget ? pop_ready(l) : NULL;
    struct weft__ctx *to = &l->home;
    if (next) {
        l->budget--;
        make_current(l, next);
        to = &next->ctx;
    }
    /* A plain loop has nothing to do once t is resumed: a tail jump, as in
     * weft__loop_yield, which returns straight to whoever parked t. */
    if (l->plain) {
        weft__ctx_jump(&t->ctx.sp, to->sp, (void *)&weft__ctx_nothing);
        return;
    }
    weft__ctx_switch(&t->ctx, to, NULL);
    /* Resumed, perhaps on another thread than the one it left: its loop is
     * t->loop now, whatever l was. */
    if (l->mn)
        arrive(t->loop);
}

/* A yield that must do something once t is resumed: take back its GILs,
 * queue the task that switched to it (M:N mode), tell a sanitizer. */
static WEFT__NOINLINE void yield_slow(struct weft__loop *l, struct weft_co *t)
{
    bool let_go = gils_suspend(t);
    l = t->loop;                          /* letting go of a GIL may have parked t, and moved it */
    if (none_ready(l) && l->budget > 0) { /* nobody else to run: t goes on */
        l->budget--;
    } else {
        /* With one loop nobody can take t before it is off its stack. */
        if (l->mn)
            l->requeue = t;
        else
            enqueue(l, t);
        weft__loop_switch_away(l, t);
    }
    gils_resume(t, let_go);
}

/* The common yield (one loop, no GIL held, no sanitizer) straight to the
 * next ready task. Nothing is left to do once t is resumed, so the
 * compiler keeps nothing across the jump, and the jump's own saves are
 * the only ones: this is what makes a yield cost little more than the
 * switch. */
void weft__loop_yield(struct weft__loop *l, struct weft_co *t)
{
    if (WEFT__UNLIKELY(!l->plain || t->rec.gils.n || !l->budget)) {
        yield_slow(l, t);
        return;
    }
    if (!l->ready) {
        l->budget--; /* nobody else to run: t goes on */
        return;
    }
    /* t joins the queue's tail and its head leaves, which is never t. */
    struct weft_co *next = l->ready;
    t->state = CO_READY;
    t->next = NULL;
    *l->ready_tail = t;
    l->ready_tail = &t->next;
    l->ready = next->next;
    l->budget--;
    make_current(l, next);
    weft__ctx_jump(&t->ctx.sp, next->ctx.sp, (void *)&weft__ctx_nothing);
}

static int suspend(struct weft__loop *l, struct weft_co *t)
{
    t->state = CO_PARKED;
    weft__loop_switch_away(l, t);
    t->waiter.word = NULL;
    t->loop_word = NULL;
    return t->park_rc;
}

/* Whether the park may begin: -ECANCELED (delivered now), -ETIMEDOUT, or
 * 0 with t's timer set for the deadline (its place reserved at spawn). */
static int begin_park(struct weft__loop *l, struct weft_co *t, weft__deadline_t deadline)
{
    if (t->cancel_due)
        return weft__co_take_cancel(t);
    if (deadline == WEFT__NEVER)
        return 0;
    if (deadline <= weft__now_ns())
        return -ETIMEDOUT;
    weft__heap_push(&l->timers, &t->timer, deadline);
    return 0;
}

/* A word shared with other processes: their unparks would not look in
 * this process's table, so a helper thread waits on the futex for the task
 * (shared.c); without one, the loop's thread waits itself. */
static int shared_park(struct weft__loop *l, struct weft_co *t, _Atomic uint32_t *word,
                       uint32_t expected, weft__deadline_t deadline, unsigned flags)
{
    int rc = begin_park(l, t, deadline);
    if (rc != 0)
        return rc;
    if (atomic_load(word) != expected) {
        weft__heap_remove(&l->timers, &t->timer);
        return 0;
    }
    if (weft__shared_park(t, word, expected, flags) != 0) {
        weft__heap_remove(&l->timers, &t->timer);
        return weft__park_futex(word, expected, deadline, flags);
    }
    t->waiter.word = NULL;
    rc = suspend(l, t);
    weft__shared_done(t);
    return rc;
}

static int park_word(struct weft__loop *l, struct weft_co *t, _Atomic uint32_t *word,
                     uint32_t expected, weft__deadline_t deadline, unsigned flags)
{
    int rc = begin_park(l, t, deadline);
    if (rc != 0)
        return rc;
    t->waiter.word = NULL;
    if (flags & WEFT__PARK_LOOP) {
        /* Only this thread ends such a park, but letting go of a GIL may
         * have parked t meanwhile, while what it waits for happened. */
        if (atomic_load_explicit(word, memory_order_relaxed) != expected) {
            weft__heap_remove(&l->timers, &t->timer);
            return 0;
        }
        t->loop_word = word;
        return suspend(l, t);
    }
    if (!weft__lot_enqueue(t, word, expected)) {
        weft__heap_remove(&l->timers, &t->timer);
        return 0;
    }
    rc = suspend(l, t);
    weft__lot_uncount(t);
    return rc;
}

static int task_park(struct weft__parker *p, _Atomic uint32_t *word, uint32_t expected,
                     weft__deadline_t deadline, unsigned flags)
{
    struct weft_co *t = ((struct weft__loop *)p)->current;
    bool let_go = gils_suspend(t);
    struct weft__loop *l = t->loop; /* letting go may have parked t, and moved it */
    int rc = flags & WEFT__PARK_SHARED ? shared_park(l, t, word, expected, deadline, flags)
                                       : park_word(l, t, word, expected, deadline, flags);
    gils_resume(t, let_go);
    return rc;
}

static int park_fd(struct weft__loop *l, struct weft_co *t, int fd, unsigned events,
                   weft__deadline_t deadline)
{
    /* At the deadline, one look (0 or the events ready), as a thread's
     * poll makes. */
    int rc = begin_park(l, t, deadline);
    if (rc != 0)
        return rc == -ETIMEDOUT ? weft__park_fd_poll(fd, events, deadline) : rc;
    uint64_t name = 0;
    int slot = slot_take(l, t, &name);
    struct epoll_event ev = {.events = weft__fd_interest(events) | EPOLLONESHOT, .data.u64 = name};
    if (slot < 0) {
        weft__heap_remove(&l->timers, &t->timer);
        return slot; /* no memory: polling would block the loop's thread */
    }
    int watched = fd, err = 0;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* Another task waits on fd already: epoll keeps one entry per
         * descriptor number, so this task watches a duplicate (the same
         * open file under another number). Polling here instead would
         * block the loop's thread, and with it whichever task was to make
         * fd ready. */
        err = errno;
        watched = err == EEXIST ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
        if (watched >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, watched, &ev) == 0)
            err = 0;
        else if (err == EEXIST)
            err = errno; /* no descriptor for the duplicate, or no room in epoll */
    }
    if (err) {
        if (watched >= 0)
            close(watched);
        slot_drop(l, slot);
        weft__heap_remove(&l->timers, &t->timer);
        /* A descriptor epoll refuses (a regular file, always ready) or one
         * not open: one look, which says so at once. Anything else (no
         * descriptors, no memory): the error, not a poll that would block
         * the loop's thread. */
        return err == EPERM || err == EBADF ? weft__park_fd_poll(fd, events, deadline) : -err;
    }
    /* Given back by leave_park. */
    t->fd = watched;
    t->fd_slot = slot;
    t->fd_dup = watched != fd;
    t->fd_events = events;
    l->fds_parked++;
    rc = suspend(l, t);
    return rc == -ETIMEDOUT ? weft__park_fd_poll(fd, events, deadline) : rc;
}

static int task_park_fd(struct weft__parker *p, int fd, unsigned events, weft__deadline_t deadline,
                        unsigned flags)
{
    WEFT__UNUSED(flags);
    struct weft_co *t = ((struct weft__loop *)p)->current;
    bool let_go = gils_suspend(t);
    int rc = park_fd(t->loop, t, fd, events, deadline); /* t->loop: as in task_park */
    gils_resume(t, let_go);
    return rc;
}

static void task_recancel(struct weft__parker *p)
{
    struct weft__loop *l = (struct weft__loop *)p;
    l->current->cancel_due = true;
}

/* M:N mode: another loop of the run is awake, so a lock's holder may be
 * running there, about to let go (spin.h). */
static bool task_may_poll(struct weft__parker *p)
{
    struct weft__sched *s = ((struct weft__loop *)p)->sched;
    return weft__count_of(&s->idle) + 1 < s->n;
}

/* The scheduler. */

struct weft__ctx *weft__loop_exit(struct weft__loop *l, struct weft_co *t)
{
    /* The task that ended before t is off its stack: the next spawn can
     * have it (hot in the cache) if taking it back is a store. t's own
     * stack stays t's until it has left it: only this thread reaps. */
    unstack_one(l);
    t->next = l->dead;
    l->dead = t;
    struct weft_co *next = l->budget ? pop_ready(l) : NULL;
    if (!next)
        return &l->home;
    l->budget--;
    make_current(l, next);
    return &next->ctx;
}

/* Run t; the tasks switch among themselves until one comes back home (the
 * budget spent, nothing ready, or its end), which may not be t. */
static void run_task(struct weft__loop *l, struct weft_co *t)
{
    make_current(l, t);
    weft__parker = &l->parker;
    weft__ctx_switch(&l->home, &t->ctx, NULL);
    l->current = NULL;
    arrive(l);
    weft__parker = NULL;
    weft__owner_self = 0; /* the thread's own again, worked out when needed */
    weft__task_rec = NULL;
    reap_dead(l);
}

/* One round: as many task runs as were ready when it began (asyncio runs
 * that many callbacks an iteration), but at least ROUND_MIN, so that tasks
 * handing off to each other do not come home to look at I/O every time. */
static void run_ready(struct weft__loop *l)
{
    size_t n = 0;
    if (l->mn)
        n = weft__count_of(&l->nready);
    else
        for (struct weft_co *t = l->ready; t; t = t->next)
            n++;
    l->budget = n > ROUND_MIN ? n : ROUND_MIN;
    for (struct weft_co *t; l->budget > 0 && (t = pop_ready(l)) != NULL;) {
        l->budget--;
        run_task(l, t);
    }
}

static int wait_events(struct weft__loop *l, struct epoll_event *ev, weft__deadline_t deadline)
{
    struct timespec ts, *tsp = NULL;
    int64_t left = 0;
    if (deadline != WEFT__NEVER) {
        left = deadline - weft__now_ns();
        left = left < 0 ? 0 : left;
        ts = (struct timespec){left / 1000000000, left % 1000000000};
        tsp = &ts;
    }
    static _Atomic bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        int n = epoll_pwait2(l->epfd, ev, EVENTS, tsp, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    int ms = !tsp                           ? -1
             : left > INT32_MAX * 1000000LL ? INT32_MAX
                                            : (int)((left + 999999) / 1000000);
    return epoll_wait(l->epfd, ev, EVENTS, ms);
}

static void poll_events(struct weft__loop *l)
{
    bool busy = !none_ready(l) || weft__portal_busy(l->portal);
    if (busy && l->fds_parked == 0)
        return;
    /* With nothing to run, an M:N loop says it is going to sleep, so that
     * a loop queueing work wakes it; unless work turned up meanwhile. */
    if (!busy && l->mn && !weft__sched_idle_begin(l))
        busy = true;
    if (!busy && !weft__portal_doze(l->portal))
        busy = true;
    struct weft__timer *next = weft__heap_top(&l->timers);
    weft__deadline_t deadline = busy ? 0 : next ? next->deadline : WEFT__NEVER;
    struct epoll_event ev[EVENTS];
    int n = wait_events(l, ev, deadline);
    weft__portal_wake_up(l->portal);
    if (l->mn)
        weft__sched_idle_end(l);
    for (int i = 0; i < n; i++) {
        struct weft_co *t = slot_task(l, ev[i].data.u64);
        if (t && t->state == CO_PARKED)
            weft__co_wake(t, (int)weft__fd_ready(t->fd_events, ev[i].events));
    }
}

/* A park's timer (each task's fire). */
void weft__co_park_timeout(struct weft__timer *tm)
{
    weft__loop_end_park((struct weft_co *)((char *)tm - offsetof(struct weft_co, timer)),
                        -ETIMEDOUT);
}

static void fire_timers(struct weft__loop *l)
{
    struct weft__timer *tm = weft__heap_top(&l->timers);
    if (!tm)
        return;
    int64_t now = weft__now_ns();
    for (; tm && tm->deadline <= now; tm = weft__heap_top(&l->timers)) {
        weft__heap_remove(&l->timers, tm);
        tm->fire(tm);
    }
}

void weft__loop_run_until(struct weft__loop *l, bool (*done)(struct weft__loop *l, void *arg),
                          void *arg)
{
    while (!done(l, arg)) {
        run_ready(l);
        if (done(l, arg))
            break; /* not into epoll with nothing left to wait for */
        if (l->mn && none_ready(l))
            weft__sched_steal(l);
        poll_events(l);
        fire_timers(l);
        take_remote(l);
    }
}

/* A loop. */

int weft__loop_reserve(struct weft__loop *l)
{
    struct weft__sched *s = l->sched;
    return weft__heap_reserve(&l->timers,
                              weft__count_of(&s->live) + weft__count_of(&s->scopes) + 1);
}

int weft__loop_init(struct weft__loop *l, struct weft__sched *s, size_t index)
{
    *l = (struct weft__loop){
        .parker = {task_park, task_park_fd, task_recancel, s->mn ? task_may_poll : NULL},
        .sched = s,
        .mn = s->mn,
        .plain = !s->mn && !WEFT__ASAN_FIBERS() && !WEFT__TSAN_FIBERS(),
        .index = index,
        .epfd = -1};
    l->ready_tail = &l->ready;
    l->stack_size = s->stack_size;
    int rc = weft__portal_new(&l->portal);
    if (rc != 0)
        return rc;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = PORTAL_EVENT};
    if (l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, weft__portal_fd(l->portal), &ev) != 0)
        return -errno;
    return 0;
}

/* What belongs to the thread that runs the loop: its own stack as the
 * scheduler's context (TSan's fiber is the thread's), and its signal
 * stack. */
int weft__loop_enter(struct weft__loop *l)
{
    weft__ctx_self(&l->home);
    int rc = weft__overflow_watch(l);
    if (rc == 0)
        weft__loop_self = l;
    return rc;
}

void weft__loop_leave(struct weft__loop *l)
{
    weft__overflow_unwatch(l);
    weft__loop_self = NULL;
}

void weft__loop_destroy(struct weft__loop *l)
{
    unmap_aside(l);
    if (l->cached) /* the cache's batches, whole again */
        unmap_runs(l->cache, l->cached);
    l->cached = 0;
    free(l->cache);
    weft__co_free_spares(l);
    weft__heap_free(&l->timers);
    free(l->slots);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->portal) {
        weft__portal_close(l->portal);
        weft__portal_release(l->portal);
    }
}
