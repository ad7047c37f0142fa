/*
 * The GIL (weft/gil.h says what it does; this says how).
 *
 * State. The struct below lies over the caller's weft_gil_t. Its first
 * word is the drop request that weft_gil_check reads (a relaxed load, the
 * whole fast path); the second is the lock word:
 *
 *     bit 0  HELD     a thread holds the GIL
 *     bit 1  QUEUED   threads wait for it (only ever set with HELD)
 *
 * so an acquire nobody contends is one compare-and-swap 0 -> HELD and its
 * release one HELD -> 0. Everything else (the two queues of waiters, the
 * holder's rank, the switch count, the mode) is guarded by `mu`, a weft Lock
 * held for a few instructions at a time and never across a wait.
 *
 * Waiting. A thread that finds the GIL held takes `mu`, sets QUEUED (or,
 * should the holder have let go meanwhile, takes the GIL), puts a waiter
 * record from its own stack at the tail of its rank's queue and parks on the
 * record's `granted` word. Whoever lets go with QUEUED set hands the GIL
 * straight to the waiter it chooses: the word stays HELD, `holder` becomes the
 * waiter's, and `granted` is set under `mu`, then unparked after `mu` is let
 * go (the waiter may have seen `granted` and returned by then: a futex wake on
 * a stack address that is gone wakes nobody, and nothing is written there
 * after `granted`). A thread that let go on request queues itself before it
 * hands over, so it cannot take the GIL straight back: CPython's forced
 * switching, here by construction.
 *
 * Ranks. FIRST holds threads back from a blocking call (restore in priority
 * mode); SECOND everyone else. A hand-off serves the head of FIRST, unless
 * the head of SECOND has waited a whole interval while FIRST was served
 * ahead of it: then it goes first, and its turn is protected for one
 * interval (a request made in that time is honoured when it ends), so a
 * stream of I/O threads cannot starve the threads that compute.
 *
 * Requests. A waiter parks for one switch interval at a time. If the GIL
 * has not changed hands in that interval, it sets the drop request
 * (CPython's rule, in both modes). In priority mode a FIRST waiter sets it
 * at once, unless the holder came from FIRST too (I/O threads do not
 * preempt each other; they let go soon anyway). The holder honours a
 * request at its next check: it queues itself in SECOND and hands over.
 * After every hand-off the request is set again only if a FIRST waiter
 * still has the right to preempt the new holder.
 *
 * Holders are named by a per-thread number (`self`), not by thread id: it
 * lives in thread-local memory, which a fork copies, so the thread that
 * forked is still the holder in the child. The fork handler counts forks
 * and notes the forking thread; every operation but check and held first
 * compares the GIL's generation with the count, and the first to find them
 * different resets the child's copy (a fresh `mu`, empty queues, the holder
 * kept only if it is the thread that forked) while the others wait for it.
 */
#include "base/base.h"
#include "base/park.h"
#include "base/spin.h"

#include <weft/gil.h>
#include <weft/sync.h>

#include <stddef.h>
#include <string.h>

#define HELD                1u
#define QUEUED              2u
#define RESETTING           UINT32_MAX
#define DEFAULT_INTERVAL_NS 5000000
#define MAX_INTERVAL        3600.0

enum { FIRST, SECOND };

struct waiter {
    struct waiter *next;
    uint64_t self;
    uint32_t depth; /* the ensure depth to hold the GIL at again */
    int rank;
    int64_t since;        /* when it began to wait */
    uint32_t seen_switch; /* the switch count at its last look */
    _Atomic uint32_t granted;
};

struct gil {
    _Atomic uint32_t drop; /* weft_gil_t.drop_request */
    _Atomic uint32_t word; /* HELD | QUEUED */
    weft_lock_t mu;
    _Atomic uint32_t gen; /* the fork count this state belongs to */
    int mode;
    int64_t interval_ns; /* 0: DEFAULT_INTERVAL_NS */
    _Atomic uint64_t holder;
    uint32_t depth; /* the holder's ensure nesting: the holder's alone */
    _Atomic uint32_t holder_first;
    _Atomic int64_t protect_until; /* a starved thread's turn: requests wait until then */
    uint32_t switch_no;
    struct waiter *head[2], *tail[2];
    const weft_gil_hooks_t *_Atomic hooks;
    struct {
        _Atomic uint64_t acquires, waits, switches, forced, wait_total_ns, wait_max_ns;
        _Atomic uint64_t hist[WEFT_GIL_HIST];
    } st;
};

_Static_assert(sizeof(struct gil) <= sizeof(weft_gil_t), "weft_gil_t too small");
_Static_assert(_Alignof(struct gil) <= _Alignof(weft_gil_t), "weft_gil_t misaligned");
_Static_assert(offsetof(struct gil, drop) == offsetof(weft_gil_t, drop_request),
               "the drop request must be where weft_gil_check reads it");

static struct gil *gil_of(weft_gil_t *gil)
{
    return (struct gil *)gil;
}

/* --- who is asking, and forks --------------------------------------------- */

static _Atomic uint64_t next_self = 1;
static _Thread_local uint64_t self_id WEFT__TLS_FAST;

static uint64_t me(void)
{
    if (WEFT__UNLIKELY(self_id == 0))
        self_id = atomic_fetch_add_explicit(&next_self, 1, memory_order_relaxed);
    return self_id;
}

static _Atomic uint32_t forks;
static uint64_t forker; /* in a child: the self of the thread that forked */

static void count_fork_in_child(void)
{
    forker = self_id;
    uint32_t n = atomic_load_explicit(&forks, memory_order_relaxed) + 1;
    atomic_store_explicit(&forks, n == RESETTING ? 0 : n, memory_order_relaxed);
}

WEFT__CONSTRUCTOR static void gil_boot(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork_in_child);
}

/* The child's copy, made consistent by the one thread that resets it. */
static void reset_in_child(struct gil *g)
{
    bool keep = forker != 0 && atomic_load_explicit(&g->holder, memory_order_relaxed) == forker;
    weft_lock_init(&g->mu, 0);
    g->head[FIRST] = g->tail[FIRST] = g->head[SECOND] = g->tail[SECOND] = NULL;
    atomic_store_explicit(&g->drop, 0, memory_order_relaxed);
    atomic_store_explicit(&g->protect_until, 0, memory_order_relaxed);
    atomic_store_explicit(&g->word, keep ? HELD : 0, memory_order_relaxed);
    if (!keep) {
        atomic_store_explicit(&g->holder, 0, memory_order_relaxed);
        g->depth = 0;
    }
}

static void settle_fork_slow(struct gil *g, uint32_t now)
{
    uint32_t gen = atomic_load_explicit(&g->gen, memory_order_acquire);
    while (gen != now) {
        if (gen == RESETTING) {
            sched_yield();
            gen = atomic_load_explicit(&g->gen, memory_order_acquire);
        } else if (atomic_compare_exchange_weak_explicit(
                       &g->gen, &gen, RESETTING, memory_order_acquire, memory_order_acquire)) {
            reset_in_child(g);
            atomic_store_explicit(&g->gen, now, memory_order_release);
            return;
        }
    }
}

static inline void settle_fork(struct gil *g)
{
    uint32_t now = atomic_load_explicit(&forks, memory_order_relaxed);
    if (WEFT__UNLIKELY(atomic_load_explicit(&g->gen, memory_order_acquire) != now))
        settle_fork_slow(g, now);
}

/* --- events and statistics ------------------------------------------------ */

static void emit(struct gil *g, int event)
{
    const weft_gil_hooks_t *h = atomic_load_explicit(&g->hooks, memory_order_acquire);
    if (WEFT__UNLIKELY(h != NULL) && h->event)
        h->event((weft_gil_t *)g, event, h->arg);
}

/* Counters written by one thread at a time (the holder, or a thread under
 * `mu`) and read by weft_gil_stats at any time. */
static void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void count_wait(struct gil *g, int64_t ns)
{
    uint64_t us = (uint64_t)(ns < 0 ? 0 : ns) / 1000;
    int bucket = 0;
    while (bucket < WEFT_GIL_HIST - 1 && us >= (1ull << bucket) - (bucket == 0))
        bucket++;
    bump(&g->st.waits, 1);
    bump(&g->st.wait_total_ns, (uint64_t)ns);
    bump(&g->st.hist[bucket], 1);
    if ((uint64_t)ns > atomic_load_explicit(&g->st.wait_max_ns, memory_order_relaxed))
        atomic_store_explicit(&g->st.wait_max_ns, (uint64_t)ns, memory_order_relaxed);
}

/* --- holding --------------------------------------------------------------- */

static int64_t interval_of(struct gil *g)
{
    return g->interval_ns ? g->interval_ns : DEFAULT_INTERVAL_NS;
}

static void became_holder(struct gil *g, uint64_t self, int rank, uint32_t depth)
{
    atomic_store_explicit(&g->holder, self, memory_order_relaxed);
    atomic_store_explicit(&g->holder_first, rank == FIRST, memory_order_relaxed);
    g->depth = depth;
    bump(&g->st.acquires, 1);
    emit(g, WEFT_GIL_EVENT_ACQUIRED);
}

static bool holds(struct gil *g)
{
    return atomic_load_explicit(&g->holder, memory_order_relaxed) == me();
}

/* Ask the holder to let go at its next check. */
static void ask(struct gil *g)
{
    atomic_store_explicit(&g->drop, 1, memory_order_relaxed);
}

/* May a FIRST waiter ask the holder to let go at once? (Under mu.) */
static bool first_may_preempt(struct gil *g)
{
    return g->mode == WEFT_GIL_PRIORITY &&
           !atomic_load_explicit(&g->holder_first, memory_order_relaxed);
}

static void enqueue(struct gil *g, struct waiter *w)
{
    w->next = NULL;
    if (g->tail[w->rank])
        g->tail[w->rank]->next = w;
    else
        g->head[w->rank] = w;
    g->tail[w->rank] = w;
}

static struct waiter *dequeue(struct gil *g, int rank)
{
    struct waiter *w = g->head[rank];
    if (w && !(g->head[rank] = w->next))
        g->tail[rank] = NULL;
    return w;
}

/* The waiter served next, taken off its queue (under mu); *starved says it
 * is a SECOND waiter served ahead of FIRST ones after a whole interval. */
static struct waiter *choose(struct gil *g, int64_t now, bool *starved)
{
    struct waiter *second = g->head[SECOND];
    *starved = g->head[FIRST] && second && now - second->since >= interval_of(g);
    if (*starved || !g->head[FIRST])
        return dequeue(g, SECOND);
    return dequeue(g, FIRST);
}

/* Give the GIL to the next waiter (under mu, with QUEUED set); the caller
 * unparks the result after letting go of mu. */
static struct waiter *hand_off(struct gil *g)
{
    int64_t now = weft__now_ns();
    bool starved;
    struct waiter *w = choose(g, now, &starved);
    if (!g->head[FIRST] && !g->head[SECOND])
        atomic_store_explicit(&g->word, HELD, memory_order_relaxed);
    atomic_store_explicit(&g->holder, w->self, memory_order_relaxed);
    atomic_store_explicit(&g->holder_first, w->rank == FIRST, memory_order_relaxed);
    atomic_store_explicit(&g->protect_until, starved ? now + interval_of(g) : 0,
                          memory_order_relaxed);
    g->depth = w->depth;
    g->switch_no++;
    atomic_store_explicit(&g->drop, g->head[FIRST] && first_may_preempt(g), memory_order_relaxed);
    bump(&g->st.switches, 1);
    count_wait(g, now - w->since);
    atomic_store_explicit(&w->granted, 1, memory_order_release);
    return w;
}

static void wake(struct waiter *w)
{
    weft__unpark(&w->granted, 1, WEFT__WAIT_GIL);
}

/* One switch interval has passed for w without the GIL (under mu). */
static void interval_passed(struct gil *g, struct waiter *w)
{
    if (g->switch_no == w->seen_switch)
        ask(g);
    w->seen_switch = g->switch_no;
}

/* Park until a hand-off grants w the GIL, looking again every interval. */
static void wait_turn(struct gil *g, struct waiter *w, int64_t interval)
{
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_HANDOFF); weft__spin_next(&s);)
        if (atomic_load_explicit(&w->granted, memory_order_acquire))
            return;
    weft__deadline_t deadline = weft__now_ns() + interval;
    while (!atomic_load_explicit(&w->granted, memory_order_acquire)) {
        if (weft__park(&w->granted, 0, deadline, WEFT__WAIT_GIL) != -ETIMEDOUT)
            continue;
        weft_lock_acquire(&g->mu, WEFT_FOREVER);
        if (!atomic_load_explicit(&w->granted, memory_order_relaxed))
            interval_passed(g, w);
        weft_lock_release(&g->mu);
        deadline = weft__now_ns() + interval;
    }
}

/* Queue w (under mu, QUEUED set) and wait for the GIL. */
static void queue_and_wait(struct gil *g, struct waiter *w)
{
    w->since = weft__now_ns();
    w->seen_switch = g->switch_no;
    atomic_init(&w->granted, 0);
    enqueue(g, w);
    if (w->rank == FIRST && first_may_preempt(g))
        ask(g);
    int64_t interval = interval_of(g);
    weft_lock_release(&g->mu);
    emit(g, WEFT_GIL_EVENT_READY);
    wait_turn(g, w, interval);
    bump(&g->st.acquires, 1);
    emit(g, WEFT_GIL_EVENT_ACQUIRED);
}

static int take_slow(struct gil *g, uint64_t self, int rank, uint32_t depth)
{
    weft_lock_acquire(&g->mu, WEFT_FOREVER);
    uint32_t v = atomic_load_explicit(&g->word, memory_order_relaxed);
    for (;;) {
        if (!(v & HELD)) {
            if (atomic_compare_exchange_weak_explicit(&g->word, &v, v | HELD, memory_order_acquire,
                                                      memory_order_relaxed)) {
                weft_lock_release(&g->mu);
                became_holder(g, self, rank, depth);
                return 0;
            }
        } else if ((v & QUEUED) || atomic_compare_exchange_weak_explicit(&g->word, &v, v | QUEUED,
                                                                         memory_order_relaxed,
                                                                         memory_order_relaxed)) {
            break;
        }
    }
    struct waiter w = {.self = self, .depth = depth, .rank = rank};
    queue_and_wait(g, &w);
    return 0;
}

static int take(struct gil *g, int rank, uint32_t depth)
{
    uint64_t self = me();
    if (atomic_load_explicit(&g->holder, memory_order_relaxed) == self)
        return -EDEADLK;
    uint32_t v = 0;
    if (atomic_compare_exchange_strong_explicit(&g->word, &v, HELD, memory_order_acquire,
                                                memory_order_relaxed)) {
        became_holder(g, self, rank, depth);
        return 0;
    }
    return take_slow(g, self, rank, depth);
}

/* Let go (the caller holds the GIL), handing it over if anyone waits. */
static void give(struct gil *g)
{
    emit(g, WEFT_GIL_EVENT_RELEASED);
    atomic_store_explicit(&g->holder, 0, memory_order_relaxed);
    uint32_t v = HELD;
    if (atomic_compare_exchange_strong_explicit(&g->word, &v, 0, memory_order_release,
                                                memory_order_relaxed))
        return;
    weft_lock_acquire(&g->mu, WEFT_FOREVER);
    struct waiter *w = hand_off(g);
    weft_lock_release(&g->mu);
    wake(w);
}

/* --- the public functions -------------------------------------------------- */

static int check_config(int mode, double interval)
{
    if ((mode != WEFT_GIL_PRIORITY && mode != WEFT_GIL_FAIR) || !(interval >= 0) ||
        interval > MAX_INTERVAL)
        return -EINVAL;
    return 0;
}

int weft_gil_init(weft_gil_t *gil, int mode, double interval)
{
    if (!gil || check_config(mode, interval))
        return -EINVAL;
    struct gil *g = gil_of(gil);
    memset(gil, 0, sizeof *gil);
    g->mode = mode;
    g->interval_ns = (int64_t)(interval * 1e9);
    atomic_store_explicit(&g->gen, atomic_load_explicit(&forks, memory_order_relaxed),
                          memory_order_relaxed);
    return 0;
}

int weft_gil_configure(weft_gil_t *gil, int mode, double interval)
{
    if (!gil || check_config(mode, interval))
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    weft_lock_acquire(&g->mu, WEFT_FOREVER);
    g->mode = mode;
    g->interval_ns = (int64_t)(interval * 1e9);
    weft_lock_release(&g->mu);
    return 0;
}

int weft_gil_destroy(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    return atomic_load(&g->word) ? -EBUSY : 0;
}

weft_gil_t *weft_gil_default(void)
{
    static weft_gil_t the_gil = WEFT_GIL_INIT;
    return &the_gil;
}

int weft_gil_acquire(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    return take(g, SECOND, 0);
}

int weft_gil_release(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    if (!holds(g) || g->depth != 0)
        return -EPERM;
    give(g);
    return 0;
}

int weft_gil_save(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    if (!holds(g))
        return -EPERM;
    int depth = (int)g->depth;
    give(g);
    return depth;
}

int weft_gil_restore(weft_gil_t *gil, int saved)
{
    if (!gil || saved < 0)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    /* The mode is read without mu: a restore racing a configure may take
     * either rank, as if it had come just before or after. */
    int mode = __atomic_load_n(&g->mode, __ATOMIC_RELAXED);
    return take(g, mode == WEFT_GIL_PRIORITY ? FIRST : SECOND, (uint32_t)saved);
}

int weft_gil_ensure(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    if (holds(g)) {
        if (g->depth == INT32_MAX)
            return -EOVERFLOW;
        g->depth++;
        return 1;
    }
    return take(g, SECOND, 0);
}

int weft_gil_release_ensured(weft_gil_t *gil, int ensured)
{
    if (!gil || (ensured != 0 && ensured != 1))
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    if (!holds(g) || (ensured ? g->depth == 0 : g->depth != 0))
        return -EPERM;
    if (ensured)
        g->depth--;
    else
        give(g);
    return 0;
}

int weft_gil_held(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    return holds(gil_of(gil));
}

int weft_gil_yield(weft_gil_t *gil)
{
    if (!gil)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    settle_fork(g);
    if (!holds(g))
        return -EPERM;
    if (!(atomic_load_explicit(&g->word, memory_order_relaxed) & QUEUED))
        return 0;
    int64_t protect = atomic_load_explicit(&g->protect_until, memory_order_relaxed);
    if (protect && weft__now_ns() < protect)
        return 0; /* a starved thread's turn: the request waits */
    /* Waiters leave the queues only by a hand-off, which only the holder
     * makes: with QUEUED seen, someone is there to hand over to. */
    emit(g, WEFT_GIL_EVENT_RELEASED);
    weft_lock_acquire(&g->mu, WEFT_FOREVER);
    if (atomic_load_explicit(&g->drop, memory_order_relaxed))
        bump(&g->st.forced, 1);
    /* Queue first, hand over second: the GIL cannot come straight back, and
     * the queue stays non-empty (QUEUED set) through the hand-off, so the new
     * holder's release cannot miss this thread. */
    struct waiter self = {.self = me(), .depth = g->depth, .rank = SECOND};
    self.since = weft__now_ns();
    atomic_init(&self.granted, 0);
    enqueue(g, &self);
    struct waiter *next = hand_off(g);
    self.seen_switch = g->switch_no;
    int64_t interval = interval_of(g);
    weft_lock_release(&g->mu);
    wake(next);
    emit(g, WEFT_GIL_EVENT_READY);
    wait_turn(g, &self, interval);
    bump(&g->st.acquires, 1);
    emit(g, WEFT_GIL_EVENT_ACQUIRED);
    return 1;
}

int weft_gil_stats(weft_gil_t *gil, weft_gil_stats_t *out)
{
    if (!gil || !out)
        return -EINVAL;
    struct gil *g = gil_of(gil);
    *out = (weft_gil_stats_t){
        .acquires = atomic_load_explicit(&g->st.acquires, memory_order_relaxed),
        .waits = atomic_load_explicit(&g->st.waits, memory_order_relaxed),
        .switches = atomic_load_explicit(&g->st.switches, memory_order_relaxed),
        .forced = atomic_load_explicit(&g->st.forced, memory_order_relaxed),
        .wait_total_ns = atomic_load_explicit(&g->st.wait_total_ns, memory_order_relaxed),
        .wait_max_ns = atomic_load_explicit(&g->st.wait_max_ns, memory_order_relaxed),
    };
    for (int i = 0; i < WEFT_GIL_HIST; i++)
        out->wait_hist[i] = atomic_load_explicit(&g->st.hist[i], memory_order_relaxed);
    return 0;
}

int weft_gil_set_hooks(weft_gil_t *gil, const weft_gil_hooks_t *hooks)
{
    if (!gil)
        return -EINVAL;
    atomic_store_explicit(&gil_of(gil)->hooks, hooks, memory_order_release);
    return 0;
}
