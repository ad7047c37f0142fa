/*
 * Barrier: Python's threading.Barrier at the cost of pthread_barrier: in a
 * cycle each waiter sleeps at most once, and the last arrival makes at most
 * one wake-up call (none when every waiter caught the end while polling).
 *
 * Why not CPython's design, a Lock and a Condition with a draining state:
 * there a woken waiter must take the lock again before it may leave, and a
 * thread that loops straight back into wait() sleeps until the previous
 * cycle's waiters have left, so where nobody spins (a busy machine) a round
 * of two threads cost each of them two sleeps or more.
 *
 * The words, all inside the struct so that a shared barrier works:
 *
 *     lock     arrivals, the end of a cycle, abort and reset happen under
 *              it (a shared one is robust)
 *     count    arrivals in the current cycle
 *     seq      the current cycle's number, in steps of 8, and three marks:
 *                ASLEEP   a waiter sleeps or is about to: the end wakes
 *                ENDING   the lock holder is ending the cycle (the last
 *                         arrival running the action, a break waiting for
 *                         stragglers, below)
 *                TIMEOUT  a waiter's timeout expired: the cycle will break
 *     state    BROKEN (arrivals fail until reset), OUTCOME (how the last
 *              cycle that ended ended: set if it broke), SHARED, WRECKED
 *     leaving  waiters of ended cycles that have not read OUTCOME yet, and
 *              DRAINER, set while an ender waits for that count to reach 0
 *
 * A cycle ends under the lock: OUTCOME is written, count goes back to 0,
 * the waiters are added to `leaving`, and seq moves to the next number,
 * which wakes them. A waiter sleeps on seq without the lock, and once seq
 * has moved past its cycle it reads OUTCOME, counts itself out of
 * `leaving` and returns, all without the lock: that is the one sleep. A
 * thread coming straight back takes the lock after the cycle it left has
 * ended, so it joins the next one (CPython's draining rule, for free).
 *
 * A slow waiter may read OUTCOME after later cycles have ended too, which
 * is harmless while they ended the same way. An ender that would change
 * OUTCOME (the first break after trips, the first trip after a break)
 * first waits, holding the lock, until `leaving` is 0. Runs of trips never
 * wait, so a ping-pong never waits for anyone to drain; a break happens at
 * most once per reset. The wait cannot deadlock because a waiter whose
 * cycle has ended never needs the lock, which is why timeouts use a claim:
 *
 * A waiter whose timeout expires claims its cycle by setting TIMEOUT with a
 * compare-and-swap on the exact value it saw. If the cycle ended first, the
 * swap fails and the waiter leaves as released. If it succeeds, the cycle
 * can no longer trip: the last arrival claims with ENDING in the same way,
 * before it runs the action, fails, and counts itself out as too late
 * (a newcomer that sees TIMEOUT gets WEFT_EBROKEN too); abort leaves the
 * break to the claimer and reset waits for it. The claimer then takes the
 * lock, which is safe because it is not among anyone's leavers, and breaks
 * the cycle for everyone. So a timeout racing the last arrival ends with
 * all of the cycle tripped or all broken, never a mix.
 *
 * Robustness (shared): a holder of the lock that died may have left a cycle
 * half-ended and the counts wrong (a dead thread never leaves). The barrier
 * breaks, the waiters of a cycle in flight are released broken, and if
 * anything was in flight it is WRECKED: broken for good, since an ender
 * could otherwise wait for ever for the dead to leave. A cycle claimed on
 * timeout is left to its claimer, which has yet to take the lock. A party
 * killed inside wait() after its cycle ended never leaves: the next ender
 * that must drain waits DRAIN_PATIENCE_NS for leavers that make no
 * progress, then wrecks the barrier rather than hold its lock for ever
 * (CPython's draining state would hang on such a party for good).
 */
#include "sync/sync_int.h"

#include <limits.h>

#define SEQ_ASLEEP  1u
#define SEQ_ENDING  2u
#define SEQ_TIMEOUT 4u
#define SEQ_STEP    8u
#define SEQ_MARKS   (SEQ_STEP - 1)

#define BROKEN  1u
#define OUTCOME 2u
#define SHARED  4u
#define WRECKED 8u

#define DRAINER (1u << 31)

#define SEQ(b)     WEFT__ATOMIC(&(b)->seq)
#define STATE(b)   WEFT__ATOMIC(&(b)->state)
#define LEAVING(b) WEFT__ATOMIC(&(b)->leaving)

static uint32_t cycle(uint32_t seq)
{
    return seq & ~SEQ_MARKS;
}

/* state is written under the lock and read without it by leaving waiters. */
static uint32_t state(weft_barrier_t *b)
{
    return atomic_load_explicit(STATE(b), memory_order_relaxed);
}

static void set_state(weft_barrier_t *b, uint32_t s)
{
    atomic_store_explicit(STATE(b), s, memory_order_relaxed);
}

static unsigned park_flags(weft_barrier_t *b)
{
    return weft__park_flags(WEFT__WAIT_BARRIER, state(b) & SHARED);
}

int weft_barrier_init(weft_barrier_t *b, unsigned parties, int (*action)(void *arg), void *arg,
                      double timeout, unsigned flags)
{
    if (!b || parties == 0 || parties > INT32_MAX || isnan(timeout) || (flags & ~WEFT_SHARED))
        return -EINVAL;
    *b = (weft_barrier_t){.state = flags & WEFT_SHARED ? SHARED : 0,
                          .parties = parties,
                          .timeout = timeout,
                          .action = action,
                          .arg = arg};
    return weft_lock_init(&b->lock, flags);
}

/* How long the ender of a shared barrier waits for leavers that make no
 * progress before it takes them for dead: a process killed inside wait()
 * never leaves, and the lock, which the ender holds, would otherwise be
 * held for ever, hanging every later call. Live leavers are awake already
 * and leave within microseconds (a whole slice on a loaded machine). */
#define DRAIN_PATIENCE_NS 2000000000LL

/* Wait until every waiter released so far has read OUTCOME. The lock is
 * held, so no cycle ends meanwhile and the count only falls. A shared
 * barrier whose leavers stop leaving is WRECKED instead. */
static void drain(weft_barrier_t *b)
{
    _Atomic uint32_t *leaving = LEAVING(b);
    bool shared = state(b) & SHARED;
    uint32_t v = atomic_fetch_or(leaving, DRAINER) | DRAINER;
    weft__deadline_t give_up = shared ? weft__now_ns() + DRAIN_PATIENCE_NS : WEFT__NEVER;
    bool cancelled = false; /* the leavers are on their way: wait for them anyway */
    while (v != DRAINER) {
        int parked = weft__park(leaving, v, give_up, park_flags(b));
        cancelled |= parked == -ECANCELED;
        if (parked == -ETIMEDOUT && atomic_load(leaving) == v) {
            set_state(b, state(b) | BROKEN | WRECKED);
            break;
        }
        uint32_t seen = v;
        if ((v = atomic_load(leaving)) != seen && shared)
            give_up = weft__now_ns() + DRAIN_PATIENCE_NS; /* someone left: patience again */
    }
    atomic_fetch_and(leaving, ~DRAINER);
    if (cancelled)
        weft__park_recancel();
}

static void set_outcome(weft_barrier_t *b, bool broken)
{
    uint32_t s = state(b);
    if (!(s & OUTCOME) == !broken)
        return;
    if (!(s & WRECKED)) /* else the count may include the dead */
        drain(b);
    set_state(b, state(b) ^ OUTCOME); /* drain may have wrecked it */
}

/* End the current cycle (lock held, the cycle claimed): publish how it
 * ended, count the `readers` who will read that, and move seq on. True if
 * a waiter sleeps: the caller wakes them once it has released the lock, so
 * that a woken thread coming straight back does not find it held. */
static bool end_cycle(weft_barrier_t *b, bool broken, uint32_t readers)
{
    set_outcome(b, broken);
    b->count = 0;
    atomic_fetch_add_explicit(LEAVING(b), readers, memory_order_relaxed);
    weft__tsan_release(&b->seq);
    /* Only marks change beside us: the number is the lock holder's. */
    uint32_t next = cycle(atomic_load_explicit(SEQ(b), memory_order_relaxed)) + SEQ_STEP;
    return atomic_exchange_explicit(SEQ(b), next, memory_order_release) & SEQ_ASLEEP;
}

/* Release the lock, then wake the waiters of a cycle that ended. Nothing
 * of the barrier is read after the release: its last leaver may destroy
 * it (a wake-up on a freed futex word is harmless). */
static void unlock_and_wake(weft_barrier_t *b, bool wake)
{
    unsigned flags = park_flags(b);
    weft_lock_release(&b->lock);
    if (wake)
        weft__unpark(SEQ(b), INT_MAX, flags);
}

/* Claim the current cycle for ending (lock held): false if a waiter whose
 * timeout expired claimed it first; that waiter ends it then. */
static bool claim(weft_barrier_t *b)
{
    uint32_t v = atomic_load_explicit(SEQ(b), memory_order_relaxed);
    while (!(v & SEQ_TIMEOUT))
        if (atomic_compare_exchange_weak_explicit(SEQ(b), &v, v | SEQ_ENDING, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* The lock came back from a holder that died (a shared barrier whose
 * process was killed): see the header comment. */
static void recover(weft_barrier_t *b)
{
    weft_lock_consistent(&b->lock);
    uint32_t v = atomic_load(SEQ(b));
    bool in_flight = b->count > 0 || (v & (SEQ_ENDING | SEQ_TIMEOUT)) || atomic_load(LEAVING(b));
    set_state(b, state(b) | BROKEN | (in_flight ? WRECKED : 0));
    if (((v & SEQ_ENDING) || (b->count > 0 && claim(b))) && end_cycle(b, true, b->count))
        weft__unpark(SEQ(b), INT_MAX, park_flags(b));
}

/* Take the lock; false at the timeout or if it is unrecoverable (never by
 * weft's own doing, since recover() always repairs it). */
/* The lock is held only briefly, and a cycle claimed must be ended: a task
 * cancelled meanwhile takes it all the same, and learns of it later. */
static bool lock_within(weft_barrier_t *b, double timeout)
{
    int rc;
    bool cancelled = false;
    while ((rc = weft_lock_acquire(&b->lock, timeout)) == -ECANCELED)
        cancelled = true;
    if (cancelled)
        weft__park_recancel();
    if (rc == -EOWNERDEAD)
        recover(b);
    return rc == 0 || rc == -EOWNERDEAD;
}

static bool lock_barrier(weft_barrier_t *b)
{
    return lock_within(b, WEFT_FOREVER);
}

int weft_barrier_destroy(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return 0;
    /* A wrecked barrier's count of leavers may include the dead. */
    int busy = b->count > 0 || (atomic_load(LEAVING(b)) != 0 && !(state(b) & WRECKED));
    weft_lock_release(&b->lock);
    return busy ? -EBUSY : 0;
}

/* Poll for the end of cycle `id` before sleeping, as a hand-off
 * (base/spin.h): a partner arriving within microseconds then costs neither
 * side a system call. Returns seq as last seen. */
static uint32_t spin(_Atomic uint32_t *seq, uint32_t id)
{
    uint32_t v = atomic_load_explicit(seq, memory_order_acquire);
    weft__spin_t s;
    for (weft__spin_begin(&s, WEFT__SPIN_HANDOFF); cycle(v) == id && weft__spin_next(&s);)
        v = atomic_load_explicit(seq, memory_order_acquire);
    return v;
}

/* Past its deadline, a waiter whose cycle the lock holder is ending waits
 * for the lock instead, since the holder of a shared one may have died
 * (recover() then ends the cycle), and a shared lock's acquire notices
 * that. In slices: a waiter must never wait for the lock once its cycle
 * has ended, because the next holder may be an ender waiting for it. */
static void probe_ender(weft_barrier_t *b)
{
    if (lock_within(b, 0.05))
        weft_lock_release(&b->lock);
}

/* Sleep until cycle `id` has ended, or until the deadline unless a waiter
 * that timed out first is ending it. Returns seq as last seen: still in
 * cycle `id` and not being ended only at the deadline, or when a task was
 * cancelled (then *parked is -ECANCELED; it is left alone otherwise). */
static uint32_t wait_cycle(weft_barrier_t *b, uint32_t id, weft__deadline_t deadline, int *parked)
{
    _Atomic uint32_t *seq = SEQ(b);
    unsigned flags = park_flags(b);
    uint32_t v = spin(seq, id);
    while (cycle(v) == id) {
        if (!(v & SEQ_ASLEEP) &&
            !atomic_compare_exchange_weak_explicit(seq, &v, v | SEQ_ASLEEP, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        v |= SEQ_ASLEEP;
        bool claimed = (v & (SEQ_ENDING | SEQ_TIMEOUT)) == SEQ_TIMEOUT;
        int rc = weft__park(seq, v, claimed ? WEFT__NEVER : deadline, flags);
        if (rc == -ECANCELED) /* for the caller; the next park waits on */
            *parked = rc;
        if (rc < 0 && !(v & SEQ_ENDING))
            return atomic_load_explicit(seq, memory_order_acquire);
        if (rc == -ETIMEDOUT)
            probe_ender(b);
        v = atomic_load_explicit(seq, memory_order_acquire);
    }
    return v;
}

/* A waiter whose cycle has ended (it saw seq move, with acquire): its
 * outcome, then out. The decrement is its last touch of the barrier unless
 * an ender waits for it, and that one holds the lock, so the barrier cannot
 * be destroyed in between. */
static int leave(weft_barrier_t *b)
{
    weft__tsan_acquire(&b->seq);
    uint32_t s = state(b);
    if (atomic_fetch_sub_explicit(LEAVING(b), 1, memory_order_release) == (DRAINER | 1))
        weft__unpark(LEAVING(b), 1, weft__park_flags(WEFT__WAIT_BARRIER, s & SHARED));
    return s & OUTCOME ? WEFT_EBROKEN : 0;
}

/* The claimer of a cycle whose timeout expired: break it for everyone. */
static int break_cycle(weft_barrier_t *b)
{
    if (!lock_barrier(b))
        return WEFT_EBROKEN;
    /* Should this thread die now, recover() sees a cycle half-ended. */
    atomic_fetch_or_explicit(SEQ(b), SEQ_ENDING, memory_order_relaxed);
    set_state(b, state(b) | BROKEN);
    unlock_and_wake(b, end_cycle(b, true, b->count - 1));
    return WEFT_EBROKEN;
}

/* A waiter of cycle `id`, after its arrival. */
static int await_end(weft_barrier_t *b, uint32_t id, weft__deadline_t deadline)
{
    uint32_t v;
    int parked = 0;
    while (cycle(v = wait_cycle(b, id, deadline, &parked)) == id) {
        if (!(v & (SEQ_ENDING | SEQ_TIMEOUT)) &&
            atomic_compare_exchange_strong_explicit(SEQ(b), &v, v | SEQ_TIMEOUT,
                                                    memory_order_relaxed, memory_order_relaxed)) {
            /* A task cancelled breaks the cycle as a timeout does (threading's
             * Barrier; asyncio's would let it leave the count instead). */
            int rc = break_cycle(b);
            return parked == -ECANCELED ? parked : rc;
        }
    }
    if (parked == -ECANCELED)
        weft__park_recancel(); /* the cycle ended anyway */
    return leave(b);
}

/* The last arrival (lock held): run the action, then release everyone. */
static int trip(weft_barrier_t *b, uint32_t index)
{
    if (!claim(b)) {
        /* A waiter timed out just before: the cycle breaks without us. */
        b->count--;
        weft_lock_release(&b->lock);
        return WEFT_EBROKEN;
    }
    bool failed = b->action && b->action(b->arg) < 0;
    if (failed)
        set_state(b, state(b) | BROKEN);
    unlock_and_wake(b, end_cycle(b, failed, b->parties - 1));
    return failed ? WEFT_EBROKEN : (int)index;
}

int weft_barrier_wait(weft_barrier_t *b, double timeout)
{
    if (!b || isnan(timeout))
        return -EINVAL;
    if (timeout == WEFT_BARRIER_DEFAULT)
        timeout = b->timeout;
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    if (!lock_barrier(b))
        return WEFT_EBROKEN;
    uint32_t v = atomic_load_explicit(SEQ(b), memory_order_relaxed);
    if ((state(b) & BROKEN) || (v & SEQ_TIMEOUT)) {
        weft_lock_release(&b->lock);
        return WEFT_EBROKEN;
    }
    uint32_t index = b->count++;
    if (index + 1 == b->parties)
        return trip(b, index);
    weft_lock_release(&b->lock);
    int rc = await_end(b, cycle(v), deadline);
    return rc < 0 ? rc : (int)index;
}

int weft_barrier_abort(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (lock_barrier(b)) {
        set_state(b, state(b) | BROKEN);
        bool wake = b->count > 0 && claim(b) && end_cycle(b, true, b->count);
        unlock_and_wake(b, wake);
    }
    return 0;
}

int weft_barrier_reset(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return WEFT_EBROKEN;
    /* A waiter that timed out is breaking the cycle: its break comes first
     * (a task waits for it even if cancelled, and learns of that later). */
    int parked = 0;
    while (b->count > 0 && !claim(b)) {
        uint32_t id = cycle(atomic_load(SEQ(b)));
        weft_lock_release(&b->lock);
        wait_cycle(b, id, WEFT__NEVER, &parked);
        if (!lock_barrier(b))
            return WEFT_EBROKEN;
    }
    if (parked == -ECANCELED)
        weft__park_recancel();
    /* Threads inside leave broken; the barrier is usable at once. */
    bool wake = b->count > 0 && end_cycle(b, true, b->count);
    uint32_t s = state(b);
    if (!(s & WRECKED))
        set_state(b, s & ~BROKEN);
    unlock_and_wake(b, wake);
    return s & WRECKED ? WEFT_EBROKEN : 0;
}

int weft_barrier_parties(weft_barrier_t *b)
{
    return b ? (int)b->parties : -EINVAL;
}

int weft_barrier_n_waiting(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return 0;
    int n = state(b) & BROKEN ? 0 : (int)b->count;
    weft_lock_release(&b->lock);
    return n;
}

int weft_barrier_broken(weft_barrier_t *b)
{
    if (!b)
        return -EINVAL;
    if (!lock_barrier(b))
        return 1;
    int broken = (state(b) & BROKEN) != 0;
    weft_lock_release(&b->lock);
    return broken;
}
