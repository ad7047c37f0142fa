/*
 * The GIL (weft/gil.h says what it does; this says how).
 *
 * State. The struct below lies over the caller's weft_gil_t. Its first
 * word is the drop request that weft_gil_check reads (a relaxed load, the
 * whole fast path); the second is the lock word:
 *
 *     bit 0  HELD     a thread holds the GIL
 *     bit 1  QUEUED   threads wait for it (alone: let go while they wait)
 *
 * so an acquire nobody contends is one compare-and-swap 0 -> HELD and its
 * release one HELD -> 0. Everything else (the two queues of waiters, the
 * holder's rank, the switch count, the mode) is guarded by `mu`, a weft Lock
 * held for a few instructions at a time and never across a wait.
 *
 * Waiting. A thread that finds the GIL held takes `mu`, sets QUEUED, puts a
 * waiter record from its own stack at the tail of its rank's queue and
 * parks on the record's `state` word. How the GIL then reaches it depends on
 * how the holder lets go, as in CPython:
 *
 * - On request (a check that finds the drop request set, or a release made
 *   while it is set): straight to the waiter chosen. The word stays HELD,
 *   `holder` becomes the waiter's, its state GRANTED. The thread that let go
 *   on request at a check queues itself first, so it cannot take the GIL
 *   straight back: CPython's forced switching, here by construction.
 * - Of its own accord (release, save: a blocking call is coming): the word
 *   becomes QUEUED without HELD, and the waiter chosen is told WOKEN, once
 *   (`woken` stays set until it acts). It takes `mu` and the GIL if nobody
 *   has meanwhile; a thread that arrives first may take a free GIL if it is
 *   of the first rank or no first-rank thread waits. So a thread back from a
 *   short blocking call carries on without waiting for the woken one to be
 *   scheduled, where handing the GIL over would make it wait twice: for that
 *   thread to run, then for it to check and hand back. A woken waiter that
 *   finds the GIL taken parks again; if the GIL then stays with one thread
 *   for an interval, it asks, and the next release hands over.
 *
 * A waiter marks its state SLEEPING before it parks, and only a signal that
 * finds the mark makes a system call to unpark it; the mark is cleared by
 * the signal. Signals are made under `mu` and the unpark after it: the waiter
 * may have seen its state and returned by then (a futex wake on a stack
 * address that is gone wakes nobody, and nothing is written there after the
 * state).
 *
 * Ranks. FIRST holds threads back from a blocking call (restore in priority
 * mode); SECOND everyone else. The GIL goes to the head of FIRST, unless
 * the head of SECOND has been passed over for a whole interval, counting
 * only the time FIRST holders had the GIL while it waited: then it goes
 * first (nobody takes the GIL ahead of it even when it is free), and its
 * turn is protected for one interval (a request made in that
 * time is honoured when it ends), so a stream of I/O threads cannot starve
 * the threads that compute, and threads that compute still cannot keep an
 * I/O thread waiting by taking turns among themselves.
 *
 * Requests. A waiter parks for one switch interval at a time. If the GIL
 * has not changed hands in that interval, it sets the drop request
 * (CPython's rule, in both modes). In priority mode a FIRST waiter sets it
 * at once, unless the holder came from FIRST too (I/O threads do not
 * preempt each other; they let go soon anyway). The holder honours a
 * request at its next check or release. Whenever the GIL changes hands the
 * request is set again only if a FIRST waiter has the right to preempt the
 * new holder.
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
#include "sync/hold.h"
#include "base/park.h"
#include "base/spin.h"

#include <weft/gil.h>
#include <weft/sync.h>

#include <stddef.h>
#include <string.h>

#define HELD   1u
#define QUEUED 2u
/* A waiter's state. */
#define GRANTED             1u          /* the GIL was handed to it */
#define WOKEN               2u          /* the GIL was let go: come and take it */
#define SLEEPING            4u          /* parked, or about to be: a signal must unpark it */
#define RESETTING           0x80000000u /* | the fork count the reset is for */
#define DEFAULT_INTERVAL_NS 5000000
#define MAX_INTERVAL        3600.0

enum { FIRST, SECOND };

struct waiter {
    struct waiter *next;
    uint64_t self;
    uint32_t depth; /* the ensure depth to hold the GIL at again */
    int rank;
    bool woken;           /* told WOKEN and not yet acted on it (under mu) */
    int64_t since;        /* when it began to wait */
    int64_t passed_over;  /* of its wait, the time FIRST holders had the GIL */
    uint32_t seen_switch; /* the switch count at its last look */
    _Atomic uint32_t state;
};

struct gil {
    _Atomic uint32_t drop; /* weft_gil_t.drop_request */
    _Atomic uint32_t word; /* HELD | QUEUED */
    weft_lock_t mu;
    _Atomic uint32_t gen; /* the fork count this state belongs to */
    int mode;
    int64_t interval_ns; /* 0: DEFAULT_INTERVAL_NS */
    _Atomic uint64_t holder;
    _Atomic uint64_t last_self; /* the last thread to take it */
    uint32_t depth;             /* the holder's ensure nesting: the holder's alone */
    _Atomic uint32_t holder_first;
    _Atomic int64_t protect_until; /* a starved thread's turn: requests wait until then */
    int64_t turn_start;            /* when the holder took it, if it queued for it */
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

/* An async task is a holder of its own (its owner id, base.h), marked so
 * that it never equals a thread's self. */
#define TASK_SELF (1ull << 63)

/* The running task's record of its GILs (base/park.h), or NULL on a
 * thread. Looked up through a function that is not inlined: a task may wait
 * between two lookups in one function and come back on another thread (M:N
 * mode), and a compiler may keep a thread's address (on aarch64, the thread
 * pointer register) across the wait. */
WEFT__NOINLINE static struct weft__task_gils *task_gils(void)
{
    struct weft__task_rec *task = weft__task_rec;
    return task ? &task->gils : NULL;
}

static uint64_t me(void)
{
    if (WEFT__UNLIKELY(task_gils() != NULL))
        return TASK_SELF | weft__owner_id();
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
    atomic_store_explicit(&forks, n & ~RESETTING, memory_order_relaxed);
}

static void gils_suspend(struct weft__task_gils *r);
static void gils_resume(struct weft__task_gils *r);

WEFT__CONSTRUCTOR static void gil_boot(void)
{
    (void)pthread_atfork(NULL, NULL, count_fork_in_child);
    atomic_store_explicit(&weft__gils_suspend, gils_suspend, memory_order_release);
    atomic_store_explicit(&weft__gils_resume, gils_resume, memory_order_release);
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
        if (gen == (RESETTING | now)) { /* a thread of this process resets it */
            sched_yield();
            gen = atomic_load_explicit(&g->gen, memory_order_acquire);
        } else if (atomic_compare_exchange_weak_explicit(&g->gen, &gen, RESETTING | now,
                                                         memory_order_acquire,
                                                         memory_order_acquire)) {
            /* (A mark for another count is an ancestor's reset, cut short by
             * a fork: nobody here will finish it, so this thread does.) */
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
    while (bucket < WEFT_GIL_HIST - 1 && us >= (1ull << bucket))
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
    int64_t ns = __atomic_load_n(&g->interval_ns, __ATOMIC_RELAXED);
    return ns ? ns : DEFAULT_INTERVAL_NS;
}

static bool holds(struct gil *g)
{
    return atomic_load_explicit(&g->holder, memory_order_relaxed) == me();
}

/* May a FIRST waiter ask the holder to let go at once? (Under mu.) */
static bool first_may_preempt(struct gil *g)
{
    return __atomic_load_n(&g->mode, __ATOMIC_RELAXED) == WEFT_GIL_PRIORITY &&
           !atomic_load_explicit(&g->holder_first, memory_order_relaxed);
}

static void set_holder(struct gil *g, uint64_t self, int rank, uint32_t depth)
{
    atomic_store_explicit(&g->holder, self, memory_order_relaxed);
    atomic_store_explicit(&g->holder_first, rank == FIRST, memory_order_relaxed);
    g->depth = depth;
}

/* The calling thread has just taken the GIL. */
static void acquired(struct gil *g)
{
    bump(&g->st.acquires, 1);
    emit(g, WEFT_GIL_EVENT_ACQUIRED);
}

/* The holder is `self` now: its rank, its depth, its protection. A change
 * of thread is a switch; and the drop request is set again only if a FIRST
 * waiter may preempt this holder. (Under mu, or with nobody queued.) */
static void now_held_by(struct gil *g, uint64_t self, int rank, uint32_t depth, int64_t now,
                        int64_t protect)
{
    set_holder(g, self, rank, depth);
    g->turn_start = now;
    atomic_store_explicit(&g->protect_until, protect, memory_order_relaxed);
    if (atomic_load_explicit(&g->last_self, memory_order_relaxed) != self) {
        atomic_store_explicit(&g->last_self, self, memory_order_relaxed);
        g->switch_no++;
        bump(&g->st.switches, 1);
    }
    atomic_store_explicit(&g->drop, g->head[FIRST] && first_may_preempt(g), memory_order_relaxed);
}

/* Ask the holder to let go at its next check. */
static void ask(struct gil *g)
{
    atomic_store_explicit(&g->drop, 1, memory_order_relaxed);
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

/* Take w off its queue (under mu); QUEUED goes with the last waiter. */
static void unlink_waiter(struct gil *g, struct waiter *w)
{
    struct waiter **p = &g->head[w->rank], *prev = NULL;
    while (*p != w) {
        prev = *p;
        p = &(*p)->next;
    }
    *p = w->next;
    if (g->tail[w->rank] == w)
        g->tail[w->rank] = prev;
    if (!g->head[FIRST] && !g->head[SECOND])
        atomic_fetch_and_explicit(&g->word, ~QUEUED, memory_order_relaxed);
}

/* Is w a SECOND waiter that FIRST holders have kept waiting a whole
 * interval? Only their turns count: threads that compute wait an interval
 * for each other all the time, and had the whole wait counted, each would
 * be served ahead of the FIRST rank with a protected turn, which made an
 * echo server beside four of them wait 15 ms a request, as in fair mode. */
static bool starved(struct gil *g, struct waiter *w)
{
    return w->rank == SECOND && w->passed_over >= interval_of(g);
}

/* A FIRST holder's turn ends (under mu): the SECOND waiters were passed
 * over for the part of it they waited through. (A turn taken by the fast
 * path began before any of them queued: turn_start is older than `since`.) */
static void credit_passed_over(struct gil *g, int64_t now)
{
    if (!atomic_load_explicit(&g->holder_first, memory_order_relaxed))
        return;
    for (struct waiter *w = g->head[SECOND]; w; w = w->next)
        w->passed_over += now - (g->turn_start > w->since ? g->turn_start : w->since);
}

/* The waiter to serve next (under mu, with someone queued). */
static struct waiter *best(struct gil *g)
{
    struct waiter *second = g->head[SECOND];
    if (second && (!g->head[FIRST] || starved(g, second)))
        return second;
    return g->head[FIRST];
}

/* May a thread of `rank` take the GIL while it is free and others queue?
 * (Under mu.) The first rank may, unless the head of the second has been
 * passed over for an interval: else I/O threads that come back one after
 * the other would take the free GIL ahead of it every time, and it would
 * never be served (45-70 ms waits with a 2 ms interval, measured). The
 * second rank may only while no first-rank thread waits. */
static bool may_take_free(struct gil *g, int rank)
{
    struct waiter *second = g->head[SECOND];
    if (rank == FIRST)
        return !second || !starved(g, second);
    return !g->head[FIRST];
}

/* The protection a waiter taking the GIL now earns. */
static int64_t protection(struct gil *g, struct waiter *w, int64_t now)
{
    return starved(g, w) ? now + interval_of(g) : 0;
}

/* Set w's state; w if it must be unparked. */
static struct waiter *signal_waiter(struct waiter *w, uint32_t what)
{
    uint32_t old = atomic_exchange_explicit(&w->state, what, memory_order_release);
    return old & SLEEPING ? w : NULL;
}

/* Unpark w (a system call, no memory of w's is touched: it may be gone). */
static void wake(struct waiter *w)
{
    if (w)
        weft__unpark(&w->state, 1, WEFT__WAIT_GIL);
}

/* Make the GIL w's (under mu, the caller holding the GIL, someone queued):
 * off the queue, the holder. The caller tells w with grant() once it has let
 * go of mu: until then w cannot leave, and once told it may take the GIL,
 * let it go, destroy it and free its memory, mu with it. */
static struct waiter *hand_over(struct gil *g, int64_t now)
{
    struct waiter *w = best(g);
    int64_t protect = protection(g, w, now);
    unlink_waiter(g, w);
    now_held_by(g, w->self, w->rank, w->depth, now, protect);
    return w;
}

static void grant(struct waiter *w)
{
    if (w)
        wake(signal_waiter(w, GRANTED));
}

/* Let go of the GIL of one's own accord with threads queued (under mu):
 * free it, and wake the waiter served next unless it is awake already. */
static struct waiter *let_go(struct gil *g)
{
    atomic_store_explicit(&g->word, QUEUED, memory_order_release);
    struct waiter *w = best(g);
    if (w->woken)
        return NULL;
    w->woken = true;
    return signal_waiter(w, WOKEN);
}

/* Take the GIL if it is free (under mu, QUEUED set): for a woken waiter, or
 * one whose interval passed while the GIL was free. */
static bool claim(struct gil *g, struct waiter *w)
{
    w->woken = false;
    if (atomic_load_explicit(&g->word, memory_order_relaxed) & HELD)
        return false;
    if (w != best(g) && !may_take_free(g, w->rank))
        return false; /* the one served next is woken: its turn */
    int64_t now = weft__now_ns(), protect = protection(g, w, now);
    /* HELD before w leaves the queue: with w the last, the word would be 0
     * between the two, and a fast acquire would take the GIL too. */
    atomic_fetch_or_explicit(&g->word, HELD, memory_order_relaxed);
    unlink_waiter(g, w);
    now_held_by(g, w->self, w->rank, w->depth, now, protect);
    return true;
}

/* w's state is WOKEN: take the GIL, or go back to waiting. */
static bool act_on_wake(struct gil *g, struct waiter *w)
{
    weft__lock_hold(&g->mu);
    bool mine = atomic_load_explicit(&w->state, memory_order_acquire) == GRANTED || claim(g, w);
    uint32_t woken = WOKEN; /* a grant may come meanwhile: keep it */
    if (!mine)
        atomic_compare_exchange_strong_explicit(&w->state, &woken, 0, memory_order_relaxed,
                                                memory_order_relaxed);
    weft_lock_release(&g->mu);
    return mine;
}

/* One switch interval has passed for w without the GIL: take it if it is
 * free, else ask for it if it has not changed hands meanwhile; and the next
 * interval, as configured now. */
static bool interval_passed(struct gil *g, struct waiter *w, int64_t *interval)
{
    weft__lock_hold(&g->mu);
    *interval = interval_of(g);
    uint32_t state = atomic_load_explicit(&w->state, memory_order_acquire) & ~SLEEPING;
    bool mine = state == GRANTED || (state == 0 && claim(g, w));
    if (!mine && state == 0) {
        if (g->switch_no == w->seen_switch)
            ask(g);
        w->seen_switch = g->switch_no;
    }
    weft_lock_release(&g->mu);
    return mine;
}

/* Whether w holds the GIL now, from its state. */
static bool settled(struct gil *g, struct waiter *w, uint32_t state)
{
    return state == GRANTED || (state == WOKEN && act_on_wake(g, w));
}

/* Wait until w holds the GIL: poll a little, then park, one interval at a
 * time. */
static void wait_turn(struct gil *g, struct waiter *w, int64_t interval)
{
    weft__deadline_t deadline = w->since + interval;
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_HANDOFF); weft__spin_next(&s);) {
        uint32_t state = atomic_load_explicit(&w->state, memory_order_acquire);
        if (state && settled(g, w, state))
            return;
        if (weft__now_ns() >= deadline)
            break; /* a short interval: time to ask, not to look */
    }
    /* A task waits for its turn even if cancelled (the GIL is taken back
     * however a task resumes), and learns of the cancellation afterwards. */
    bool cancelled = false;
    for (;;) {
        uint32_t state = atomic_load_explicit(&w->state, memory_order_acquire);
        if (state == 0) {
            atomic_compare_exchange_strong_explicit(&w->state, &state, SLEEPING,
                                                    memory_order_relaxed, memory_order_relaxed);
            continue;
        }
        if (state != SLEEPING) {
            if (settled(g, w, state))
                break;
            continue;
        }
        int parked = weft__park(&w->state, SLEEPING, deadline, WEFT__WAIT_GIL);
        cancelled |= parked == -ECANCELED;
        if (parked == -ETIMEDOUT) {
            if (interval_passed(g, w, &interval))
                break;
            deadline = weft__now_ns() + interval;
        }
    }
    if (cancelled)
        weft__park_recancel();
}

/* Queue w (under mu, QUEUED set; mu is let go here) and wait for the GIL.
 * A holder that lets go on request queues first and hands over second
 * (`hand_over_first`): the GIL cannot come straight back to it. */
static void queue_and_wait(struct gil *g, struct waiter *w, bool hand_over_first)
{
    w->since = weft__now_ns();
    atomic_init(&w->state, 0);
    enqueue(g, w);
    struct waiter *next = NULL;
    if (hand_over_first)
        next = hand_over(g, w->since);
    else if (w->rank == FIRST && first_may_preempt(g))
        ask(g);
    w->seen_switch = g->switch_no;
    int64_t interval = interval_of(g);
    weft_lock_release(&g->mu);
    grant(next);
    emit(g, WEFT_GIL_EVENT_READY);
    wait_turn(g, w, interval);
    count_wait(g, weft__now_ns() - w->since);
    acquired(g);
}

static int take_slow(struct gil *g, uint64_t self, int rank, uint32_t depth)
{
    weft__lock_hold(&g->mu);
    uint32_t v = atomic_load_explicit(&g->word, memory_order_relaxed);
    for (;;) {
        if (!(v & HELD) && (!(v & QUEUED) || may_take_free(g, rank))) {
            if (atomic_compare_exchange_weak_explicit(&g->word, &v, v | HELD, memory_order_acquire,
                                                      memory_order_relaxed)) {
                now_held_by(g, self, rank, depth, weft__now_ns(), 0);
                weft_lock_release(&g->mu);
                acquired(g);
                return 0;
            }
        } else if ((v & QUEUED) || atomic_compare_exchange_weak_explicit(&g->word, &v, v | QUEUED,
                                                                         memory_order_relaxed,
                                                                         memory_order_relaxed)) {
            break;
        }
    }
    struct waiter w = {.self = self, .depth = depth, .rank = rank};
    queue_and_wait(g, &w, false);
    return 0;
}

static int take_as(struct gil *g, int rank, uint32_t depth)
{
    uint64_t self = me();
    if (atomic_load_explicit(&g->holder, memory_order_relaxed) == self)
        return -EDEADLK;
    uint32_t v = 0;
    if (atomic_compare_exchange_strong_explicit(&g->word, &v, HELD, memory_order_acquire,
                                                memory_order_relaxed)) {
        /* Nobody queued: no switch to count, no request to set. */
        set_holder(g, self, rank, depth);
        atomic_store_explicit(&g->last_self, self, memory_order_relaxed);
        acquired(g);
        return 0;
    }
    return take_slow(g, self, rank, depth);
}

/* --- the task side (base/park.h) -------------------------------------------- */

/* The running task's record of the GILs it holds (nothing outside tasks). */
static void record_held(struct gil *g)
{
    struct weft__task_gils *r = task_gils();
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        if (r->held[i].gil == g)
            return;
    if (r->n < WEFT__TASK_GILS) /* beyond: held across suspensions, as by a thread */
        r->held[r->n++].gil = g;
}

static void record_released(struct gil *g)
{
    struct weft__task_gils *r = task_gils();
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n; i++)
        if (r->held[i].gil == g) {
            r->held[i] = r->held[--r->n];
            return;
        }
}

static int take(struct gil *g, int rank, uint32_t depth)
{
    int rc = take_as(g, rank, depth);
    if (rc == 0)
        record_held(g);
    return rc;
}

static void give(struct gil *g);

/* A task about to be suspended lets go of its GILs, keeping their depths.
 * While the hooks work the record reads as empty: letting go (on `mu`) and
 * taking back (a turn behind another holder) may park the task, and that
 * park calls the hooks again. It let go a second time of a GIL already let
 * go or not yet taken back, clearing the holder another thread had, and
 * the task then took the GIL from under that thread. */
static void gils_suspend(struct weft__task_gils *r)
{
    uint32_t n = r->n;
    r->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct gil *g = r->held[i].gil;
        r->held[i].depth = (int)g->depth;
        give(g);
    }
    r->n = n;
}

/* ...and takes them back when it resumes, first in line in priority mode
 * (as from a blocking call), waiting as a task if another holds one; a
 * cancellation meanwhile waits for the task's next wait. */
static void gils_resume(struct weft__task_gils *r)
{
    bool cancelled = false;
    uint32_t n = r->n;
    r->n = 0; /* as in gils_suspend */
    for (uint32_t i = 0; i < n; i++) {
        struct gil *g = r->held[i].gil;
        int rank =
            __atomic_load_n(&g->mode, __ATOMIC_RELAXED) == WEFT_GIL_PRIORITY ? FIRST : SECOND;
        int rc;
        while ((rc = take_as(g, rank, (uint32_t)r->held[i].depth)) == -ECANCELED)
            cancelled = true;
    }
    r->n = n;
    if (cancelled)
        weft__park_recancel();
}

/* Let go (the caller holds the GIL, of its own accord): to the waiter
 * served next if one has asked for it, else free for whoever comes first. */
static void give(struct gil *g)
{
    emit(g, WEFT_GIL_EVENT_RELEASED);
    atomic_store_explicit(&g->holder, 0, memory_order_relaxed);
    atomic_store_explicit(&g->protect_until, 0, memory_order_relaxed);
    uint32_t v = HELD;
    if (atomic_compare_exchange_strong_explicit(&g->word, &v, 0, memory_order_release,
                                                memory_order_relaxed))
        return;
    weft__lock_hold(&g->mu);
    int64_t now = weft__now_ns();
    credit_passed_over(g, now);
    if (atomic_load_explicit(&g->drop, memory_order_relaxed)) {
        bump(&g->st.forced, 1);
        struct waiter *w = hand_over(g, now);
        weft_lock_release(&g->mu);
        grant(w);
    } else {
        struct waiter *w = let_go(g);
        weft_lock_release(&g->mu);
        wake(w);
    }
}

/* --- the public functions -------------------------------------------------- */

/* The GIL behind a public call's argument, made current in a forked child;
 * NULL for a NULL argument. */
static struct gil *enter(weft_gil_t *gil)
{
    struct gil *g = gil_of(gil);
    if (g)
        settle_fork(g);
    return g;
}

/* The mode is read without mu by restore, the interval by waiters as they
 * re-arm (under mu): both stored atomically. A positive interval is at
 * least a nanosecond (0 would mean the default). */
static void set_config(struct gil *g, int mode, double interval)
{
    int64_t ns = (int64_t)(interval * 1e9);
    __atomic_store_n(&g->mode, mode, __ATOMIC_RELAXED);
    __atomic_store_n(&g->interval_ns, interval > 0 && ns < 1 ? 1 : ns, __ATOMIC_RELAXED);
}

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
    set_config(g, mode, interval);
    atomic_store_explicit(&g->gen, atomic_load_explicit(&forks, memory_order_relaxed),
                          memory_order_relaxed);
    return 0;
}

int weft_gil_configure(weft_gil_t *gil, int mode, double interval)
{
    struct gil *g = check_config(mode, interval) ? NULL : enter(gil);
    if (!g)
        return -EINVAL;
    weft__lock_hold(&g->mu);
    set_config(g, mode, interval);
    weft_lock_release(&g->mu);
    return 0;
}

int weft_gil_destroy(weft_gil_t *gil)
{
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
    return atomic_load(&g->word) ? -EBUSY : 0;
}

weft_gil_t *weft_gil_default(void)
{
    static weft_gil_t the_gil = WEFT_GIL_INIT;
    return &the_gil;
}

int weft_gil_acquire(weft_gil_t *gil)
{
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
    return take(g, SECOND, 0);
}

int weft_gil_release(weft_gil_t *gil)
{
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
    if (!holds(g) || g->depth != 0)
        return -EPERM;
    record_released(g);
    give(g);
    return 0;
}

int weft_gil_save(weft_gil_t *gil)
{
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
    if (!holds(g))
        return -EPERM;
    int depth = (int)g->depth;
    record_released(g);
    give(g);
    return depth;
}

int weft_gil_restore(weft_gil_t *gil, int saved)
{
    struct gil *g = saved < 0 ? NULL : enter(gil);
    if (!g)
        return -EINVAL;
    /* The mode is read without mu: a restore racing a configure may take
     * either rank, as if it had come just before or after. */
    int mode = __atomic_load_n(&g->mode, __ATOMIC_RELAXED);
    return take(g, mode == WEFT_GIL_PRIORITY ? FIRST : SECOND, (uint32_t)saved);
}

int weft_gil_ensure(weft_gil_t *gil)
{
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
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
    struct gil *g = ensured != 0 && ensured != 1 ? NULL : enter(gil);
    if (!g)
        return -EINVAL;
    if (!holds(g) || (ensured ? g->depth == 0 : g->depth != 0))
        return -EPERM;
    if (ensured) {
        g->depth--;
    } else {
        record_released(g);
        give(g);
    }
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
    struct gil *g = enter(gil);
    if (!g)
        return -EINVAL;
    if (!holds(g))
        return -EPERM;
    if (!(atomic_load_explicit(&g->word, memory_order_relaxed) & QUEUED))
        return 0;
    int64_t protect = atomic_load_explicit(&g->protect_until, memory_order_relaxed);
    if (protect && weft__now_ns() < protect)
        return 0; /* a starved thread's turn: the request waits */
    /* While the caller holds the GIL, waiters leave the queues only by its
     * own hand-offs: with QUEUED seen, someone is there to hand over to. */
    emit(g, WEFT_GIL_EVENT_RELEASED);
    weft__lock_hold(&g->mu);
    credit_passed_over(g, weft__now_ns()); /* before this thread queues */
    if (atomic_load_explicit(&g->drop, memory_order_relaxed))
        bump(&g->st.forced, 1);
    struct waiter self = {.self = me(), .depth = g->depth, .rank = SECOND};
    /* A task waits for its turn off the record of GILs it holds: the GIL
     * is the waiter's now, and the suspension of the task's park must not
     * let go of it on the task's behalf (nor take it back on resuming). */
    record_released(g);
    queue_and_wait(g, &self, true);
    record_held(g);
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
