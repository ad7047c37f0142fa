/*
 * Tests for Condition and Event: exact notify counts, no spurious returns,
 * timeouts never early, wait_for re-checking its predicate, RLocks released
 * completely during a wait, set-then-clear still releasing event waiters,
 * millions of hand-offs without a lost wake-up, and bad input. Behaviours
 * follow CPython's Lib/test/lock_tests.py.
 */
#include "threads.h"
#include <weft/sync.h>
#include <weft/thread.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint32_t load32(uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* --- Condition ------------------------------------------------------------- */

struct waiting {
    weft_cond_t *cond;
    double timeout;
    _Atomic int notified, timed_out;
};

static void *wait_once(void *arg)
{
    struct waiting *w = arg;
    WT_EQ(weft_cond_acquire(w->cond, WEFT_FOREVER), 0);
    int rc = weft_cond_wait(w->cond, w->timeout);
    WT_CHECK(rc == 0 || rc == -ETIMEDOUT);
    atomic_fetch_add(rc == 0 ? &w->notified : &w->timed_out, 1);
    WT_EQ(weft_cond_release(w->cond), 0);
    return NULL;
}

static bool waiters_are(void *arg)
{
    void **a = arg;
    weft_cond_t *c = a[0];
    return load32(&c->waiters) == (uint32_t)(uintptr_t)a[1];
}

static void await_waiters(weft_cond_t *c, unsigned n)
{
    void *arg[2] = {c, (void *)(uintptr_t)n};
    wt_wait_until(waiters_are, arg, 10 * wt_slack());
}

static bool notified_are(void *arg)
{
    void **a = arg;
    return atomic_load(&((struct waiting *)a[0])->notified) == (int)(uintptr_t)a[1];
}

static void await_notified(struct waiting *w, int n)
{
    void *arg[2] = {w, (void *)(uintptr_t)n};
    wt_wait_until(notified_are, arg, 10 * wt_slack());
}

static void notify_counts(weft_cond_t *cond)
{
    struct waiting w = {cond, WEFT_FOREVER, 0, 0};
    weft_thread_t *t[5];
    for (int round = 0; round < 2; round++) { /* twice: state must reset */
        atomic_store(&w.notified, 0);
        for (int i = 0; i < 5; i++)
            t[i] = spawn(wait_once, &w);
        await_waiters(cond, 5);
        /* The last waiter counts itself just before it lets the lock go:
         * take the lock once so that it surely has. */
        WEFT_WITH (cond) {
        }
        WT_EQ(weft_cond_notify(cond, 0), -EPERM); /* lock not held */
        WEFT_WITH (cond) {
            WT_EQ(weft_cond_notify(cond, 3), 3);
        }
        await_notified(&w, 3);
        /* Exactly three: the other two are still counted as waiting and no
         * wake-up is left over for them to take. */
        WT_EQ(load32(&cond->waiters), 2);
        WT_EQ(load32(&cond->tokens), 0);
        WEFT_WITH (cond) {
            WT_EQ(weft_cond_notify_all(cond), 2);
            WT_EQ(weft_cond_notify(cond, 1), 0); /* nobody left */
        }
        for (int i = 0; i < 5; i++)
            finish(t[i]);
        WT_EQ(atomic_load(&w.notified), 5);
        WT_EQ(atomic_load(&w.timed_out), 0);
        WT_EQ(weft_cond_destroy(cond), 0);
    }
}

WT_CASE(notify_wakes_exactly_n)
{
    weft_cond_t own = WEFT_COND_INIT; /* Python's Condition(): its own RLock */
    notify_counts(&own);
    weft_lock_t lock = WEFT_LOCK_INIT;
    weft_cond_t over_lock;
    WT_EQ(weft_cond_init(&over_lock, &lock, 0), 0);
    notify_counts(&over_lock);
    weft_rlock_t rlock = WEFT_RLOCK_INIT;
    weft_cond_t over_rlock;
    WT_EQ(weft_cond_init_rlock(&over_rlock, &rlock, 0), 0);
    notify_counts(&over_rlock);
}

WT_CASE(wait_and_notify_need_the_lock)
{
    weft_cond_t c = WEFT_COND_INIT;
    WT_EQ(weft_cond_wait(&c, 0.01), -EPERM);
    WT_EQ(weft_cond_notify(&c, 1), -EPERM);
    WT_EQ(weft_cond_notify_all(&c), -EPERM);
    WT_EQ(weft_cond_acquire(&c, WEFT_FOREVER), 0);
    WT_EQ(weft_cond_acquire(&c, 0), 0); /* the default lock is an RLock */
    WT_EQ(weft_cond_notify(&c, 1), 0);
    WT_EQ(weft_cond_release(&c), 0);
    WT_EQ(weft_cond_release(&c), 0);
    WT_EQ(weft_cond_release(&c), -EPERM);
}

WT_CASE(wait_timeouts_never_early)
{
    weft_cond_t c = WEFT_COND_INIT;
    WT_EQ(weft_cond_acquire(&c, WEFT_FOREVER), 0);
    const double waits[] = {0.001, 0.02, 0.1};
    for (int i = 0; i < 3; i++) {
        double t0 = wt_now();
        WT_EQ(weft_cond_wait(&c, waits[i]), -ETIMEDOUT);
        double dt = wt_now() - t0;
        WT_CHECK(dt >= waits[i]);
        WT_CHECK(dt < waits[i] + 0.5 * wt_slack());
        WT_EQ(weft_rlock_is_owned(&c.own), 1); /* held again after the wait */
    }
    WT_EQ(weft_cond_wait(&c, 0), -EAGAIN);
    WT_EQ(load32(&c.waiters), 0);
    WT_EQ(weft_cond_release(&c), 0);
}

struct rlock_wait {
    weft_cond_t cond;
    weft_rlock_t rlock;
    _Atomic int taken_meanwhile;
    int count_after;
};

static void *wait_holding_three(void *arg)
{
    struct rlock_wait *r = arg;
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_rlock_acquire(&r->rlock, WEFT_FOREVER), 0);
    WT_EQ(weft_cond_wait(&r->cond, WEFT_FOREVER), 0);
    r->count_after = (int)r->rlock.count + 1;
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_rlock_release(&r->rlock), 0);
    return NULL;
}

WT_CASE(rlock_is_released_completely_during_wait)
{
    struct rlock_wait r = {.rlock = WEFT_RLOCK_INIT};
    WT_EQ(weft_cond_init_rlock(&r.cond, &r.rlock, 0), 0);
    weft_thread_t *t = spawn(wait_holding_three, &r);
    await_waiters(&r.cond, 1);
    /* Held three times by the waiter, yet free for us while it waits (it
     * counts itself a waiter just before it lets go, hence no try). */
    WT_EQ(weft_rlock_acquire(&r.rlock, 30), 0);
    WT_EQ(weft_cond_notify(&r.cond, 1), 1);
    WT_EQ(weft_rlock_release(&r.rlock), 0);
    finish(t);
    WT_EQ(r.count_after, 3);
    WT_EQ(r.rlock.word, 0);
}

struct counter_state {
    weft_cond_t cond;
    int state;
    int target;
};

static bool reached(void *arg)
{
    struct counter_state *s = arg;
    return s->state >= s->target;
}

static void *wait_for_four(void *arg)
{
    struct counter_state *s = arg;
    WT_EQ(weft_cond_acquire(&s->cond, WEFT_FOREVER), 0);
    int rc = weft_cond_wait_for(&s->cond, reached, s, WEFT_FOREVER);
    int seen = s->state;
    WT_EQ(weft_cond_release(&s->cond), 0);
    return (void *)(intptr_t)(rc == 0 ? seen : rc);
}

WT_CASE(wait_for_rechecks_its_predicate)
{
    struct counter_state s = {WEFT_COND_INIT, 0, 4};
    weft_thread_t *t = spawn(wait_for_four, &s);
    for (int i = 0; i < 4; i++) {
        await_waiters(&s.cond, 1);
        WEFT_WITH (&s.cond) {
            s.state++;
            WT_EQ(weft_cond_notify(&s.cond, 1), 1);
        }
    }
    WT_EQ((intptr_t)finish(t), 4);

    /* Never true: the predicate's failure is reported at the deadline. */
    s.target = 100;
    WT_EQ(weft_cond_acquire(&s.cond, WEFT_FOREVER), 0);
    double t0 = wt_now();
    WT_EQ(weft_cond_wait_for(&s.cond, reached, &s, 0.05), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_cond_wait_for(&s.cond, reached, &s, 0), -EAGAIN);
    s.target = 0; /* already true: no wait at all */
    WT_EQ(weft_cond_wait_for(&s.cond, reached, &s, 0), 0);
    WT_EQ(weft_cond_release(&s.cond), 0);
}

/* Two threads take turns through one condition a million times: any lost
 * wake-up hangs the test. */
struct turns {
    weft_cond_t cond;
    weft_lock_t lock;
    long turn, rounds;
};

struct player {
    struct turns *t;
    long parity;
};

static void *play(void *arg)
{
    struct player *p = arg;
    struct turns *t = p->t;
    WT_EQ(weft_cond_acquire(&t->cond, WEFT_FOREVER), 0);
    for (long i = 0; i < t->rounds; i++) {
        while (t->turn % 2 != p->parity)
            WT_EQ(weft_cond_wait(&t->cond, WEFT_FOREVER), 0);
        t->turn++;
        WT_EQ(weft_cond_notify(&t->cond, 1) >= 0, 1);
    }
    WT_EQ(weft_cond_release(&t->cond), 0);
    return NULL;
}

WT_STRESS(cond_handoffs_lose_no_wakeup)
{
    struct turns t = {.lock = WEFT_LOCK_INIT, .rounds = wt_sanitizer() ? 50000 : 500000};
    WT_EQ(weft_cond_init(&t.cond, &t.lock, 0), 0);
    struct player a = {&t, 0}, b = {&t, 1};
    weft_thread_t *ta = spawn(play, &a), *tb = spawn(play, &b);
    finish(ta);
    finish(tb);
    WT_EQ(t.turn, 2 * t.rounds);
}

/* Many waiters with short random timeouts and a notifier granting random
 * counts: every grant must turn into exactly one notified return. */
struct storm {
    weft_cond_t cond;
    _Atomic int notified, granted, stop;
};

static void *storm_waiter(void *arg)
{
    struct storm *s = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    while (!atomic_load(&s->stop)) {
        WT_EQ(weft_cond_acquire(&s->cond, WEFT_FOREVER), 0);
        int rc = weft_cond_wait(&s->cond, (rand_r(&seed) % 3) * 0.0005);
        WT_CHECK(rc == 0 || rc == -ETIMEDOUT || rc == -EAGAIN);
        if (rc == 0)
            atomic_fetch_add(&s->notified, 1);
        WT_EQ(weft_cond_release(&s->cond), 0);
    }
    return NULL;
}

WT_STRESS(notify_grants_match_notified_returns)
{
    struct storm s = {.cond = WEFT_COND_INIT};
    weft_thread_t *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = spawn(storm_waiter, &s);
    unsigned seed = 7;
    double end = wt_now() + 1.0;
    while (wt_now() < end) {
        WEFT_WITH (&s.cond) {
            int g = weft_cond_notify(&s.cond, (int)(rand_r(&seed) % 4));
            WT_CHECK(g >= 0);
            atomic_fetch_add(&s.granted, g);
        }
    }
    atomic_store(&s.stop, 1);
    WEFT_WITH (&s.cond) {
        atomic_fetch_add(&s.granted, weft_cond_notify_all(&s.cond));
    }
    for (int i = 0; i < 6; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&s.notified), atomic_load(&s.granted));
    WT_CHECK(atomic_load(&s.granted) > 0);
    WT_EQ(load32(&s.cond.waiters) + load32(&s.cond.tokens), 0);
}

/* --- Event --------------------------------------------------------------------- */

struct event_wait {
    weft_event_t *event;
    _Atomic int returned;
};

static void *wait_event(void *arg)
{
    struct event_wait *e = arg;
    WT_EQ(weft_event_wait(e->event, WEFT_FOREVER), 0);
    atomic_fetch_add(&e->returned, 1);
    return NULL;
}

WT_CASE(event_set_clear_wait)
{
    weft_event_t ev = WEFT_EVENT_INIT;
    WT_EQ(weft_event_is_set(&ev), 0);
    WT_EQ(weft_event_wait(&ev, 0), -EAGAIN);
    double t0 = wt_now();
    WT_EQ(weft_event_wait(&ev, 0.05), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_event_set(&ev), 0);
    WT_EQ(weft_event_set(&ev), 0);
    WT_EQ(weft_event_is_set(&ev), 1);
    WT_EQ(weft_event_wait(&ev, 0), 0);
    WT_EQ(weft_event_wait(&ev, WEFT_FOREVER), 0);
    WT_EQ(weft_event_clear(&ev), 0);
    WT_EQ(weft_event_clear(&ev), 0);
    WT_EQ(weft_event_is_set(&ev), 0);
    WT_EQ(weft_event_destroy(&ev), 0);
}

WT_CASE(event_releases_all_waiters_even_if_cleared_at_once)
{
    for (int round = 0; round < 2; round++) {
        weft_event_t ev = WEFT_EVENT_INIT;
        struct event_wait e = {&ev, 0};
        weft_thread_t *t[5];
        for (int i = 0; i < 5; i++)
            t[i] = spawn(wait_event, &e);
        /* All five asleep on the event before it is set. */
        for (int i = 0; i < 5; i++)
            wt_await_futex_sleep(weft_thread_native_id(t[i]), &ev.word, 10 * wt_slack());
        WT_EQ(weft_event_set(&ev), 0);
        if (round == 1)
            WT_EQ(weft_event_clear(&ev), 0); /* set, then clear at once */
        for (int i = 0; i < 5; i++)
            finish(t[i]);
        WT_EQ(atomic_load(&e.returned), 5);
    }
}

/* --- bad input ----------------------------------------------------------------- */

static bool never(void *arg)
{
    (void)arg;
    return false;
}

WT_CASE(bad_input_matrix)
{
    weft_cond_t c = WEFT_COND_INIT;
    weft_event_t ev = WEFT_EVENT_INIT;
    WT_EQ(weft_cond_init(NULL, NULL, 0), -EINVAL);
    WT_EQ(weft_cond_init_rlock(&c, NULL, 0), -EINVAL);
    WT_EQ(weft_cond_init_rlock(NULL, &c.own, 0), -EINVAL);
    WT_EQ(weft_cond_destroy(NULL), -EINVAL);
    WT_EQ(weft_cond_acquire(NULL, 1), -EINVAL);
    WT_EQ(weft_cond_release(NULL), -EINVAL);
    WT_EQ(weft_cond_wait(NULL, 1), -EINVAL);
    WT_EQ(weft_cond_wait(&c, NAN), -EINVAL);
    WT_EQ(weft_cond_wait_for(&c, NULL, NULL, 1), -EINVAL);
    WT_EQ(weft_cond_wait_for(&c, never, NULL, NAN), -EINVAL);
    WT_EQ(weft_cond_notify(NULL, 1), -EINVAL);
    WT_EQ(weft_cond_notify_all(NULL), -EINVAL);
    WT_EQ(weft_cond_acquire(&c, WEFT_FOREVER), 0);
    WT_EQ(weft_cond_notify(&c, -1), -EINVAL);
    WT_EQ(weft_cond_release(&c), 0);
    WT_EQ(weft_event_init(NULL, 0), -EINVAL);
    WT_EQ(weft_event_destroy(NULL), -EINVAL);
    WT_EQ(weft_event_set(NULL), -EINVAL);
    WT_EQ(weft_event_clear(NULL), -EINVAL);
    WT_EQ(weft_event_is_set(NULL), -EINVAL);
    WT_EQ(weft_event_wait(NULL, 1), -EINVAL);
    WT_EQ(weft_event_wait(&ev, NAN), -EINVAL);
}
