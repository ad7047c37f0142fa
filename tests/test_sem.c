/*
 * Tests for Semaphore and BoundedSemaphore: counting, release(n) waking
 * exactly n waiters, the bound, timeouts never early, a million hand-offs
 * without a lost wake-up, WEFT_WITH, bad input. Behaviours follow CPython's
 * Lib/test/lock_tests.py.
 */
#include "threads.h"
#include <weft/sync.h>
#include <weft/thread.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

WT_CASE(counting_and_try)
{
    weft_sem_t s;
    WT_EQ(weft_sem_init(&s, -1, 0), -EINVAL);
    WT_EQ(weft_sem_init(&s, 2, 0), 0);
    WT_EQ(weft_sem_acquire(&s, 0), 0);
    WT_EQ(weft_sem_acquire(&s, 0), 0);
    WT_EQ(weft_sem_acquire(&s, 0), -EAGAIN);
    WT_EQ(weft_sem_value(&s), 0);
    WT_EQ(weft_sem_release(&s, 1), 0);
    WT_EQ(weft_sem_acquire(&s, 0.005), 0);
    WT_EQ(weft_sem_release(&s, 0), -EINVAL); /* Python: ValueError */
    /* An unbounded semaphore may go above its initial value. */
    WT_EQ(weft_sem_release(&s, 5), 0);
    WT_EQ(weft_sem_value(&s), 5);
    WT_EQ(weft_sem_destroy(&s), 0);
    weft_sem_t one = WEFT_SEM_INIT(1);
    WEFT_WITH (&one) {
        WT_EQ(weft_sem_value(&one), 0);
        WT_EQ(weft_sem_acquire(&one, 0), -EAGAIN);
    }
    WT_EQ(weft_sem_value(&one), 1);
}

struct acquirer {
    weft_sem_t *sem;
    _Atomic int got;
};

static void *acquire_one(void *arg)
{
    struct acquirer *a = arg;
    WT_EQ(weft_sem_acquire(a->sem, WEFT_FOREVER), 0);
    atomic_fetch_add(&a->got, 1);
    return NULL;
}

static bool waiters_are(void *arg)
{
    void **a = arg;
    return __atomic_load_n(&((weft_sem_t *)a[0])->waiters, __ATOMIC_SEQ_CST) ==
           (uint32_t)(uintptr_t)a[1];
}

static bool got_is(void *arg)
{
    void **a = arg;
    return atomic_load(&((struct acquirer *)a[0])->got) == (int)(uintptr_t)a[1];
}

WT_CASE(release_n_wakes_exactly_n)
{
    weft_sem_t s = WEFT_SEM_INIT(0);
    struct acquirer a = {&s, 0};
    weft_thread_t *t[10];
    for (int i = 0; i < 10; i++)
        t[i] = spawn(acquire_one, &a);
    void *ten[2] = {&s, (void *)10};
    wt_wait_until(waiters_are, ten, 10 * wt_slack());
    const int batches[] = {3, 1, 6};
    int total = 0;
    for (int b = 0; b < 3; b++) {
        WT_EQ(weft_sem_release(&s, batches[b]), 0);
        total += batches[b];
        void *arg[2] = {&a, (void *)(uintptr_t)total};
        wt_wait_until(got_is, arg, 10 * wt_slack());
        /* Exactly that many got through: nothing is left to take. */
        WT_EQ(weft_sem_value(&s), 0);
    }
    for (int i = 0; i < 10; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&a.got), 10);
}

WT_CASE(bounded_refuses_over_release)
{
    weft_sem_t b;
    WT_EQ(weft_sem_init_bounded(&b, 2, 0), 0);
    WT_EQ(weft_sem_release(&b, 1), -EOVERFLOW);
    WT_EQ(weft_sem_acquire(&b, 0), 0);
    WT_EQ(weft_sem_release(&b, 2), -EOVERFLOW); /* one over */
    WT_EQ(weft_sem_release(&b, 1), 0);
    WT_EQ(weft_sem_release(&b, 1), -EOVERFLOW); /* after a balanced pair */
    WT_EQ(weft_sem_value(&b), 2);
    weft_sem_t z = WEFT_BOUNDED_SEM_INIT(0);
    WT_EQ(weft_sem_release(&z, 1), -EOVERFLOW);
    weft_sem_t top = WEFT_SEM_INIT(INT32_MAX - 1);
    WT_EQ(weft_sem_release(&top, 1), 0);
    WT_EQ(weft_sem_release(&top, 1), -EOVERFLOW); /* no wrap-around */
}

/* A completion semaphore freed as soon as its acquire returns, while the
 * releasing thread may still be inside release: nothing of it may be
 * touched after the swap that publishes the unit (run under ASan, a read
 * after the free shows). Half the rounds poll to free it at once. */
static void *release_once(void *arg)
{
    WT_EQ(weft_sem_release(arg, 1), 0);
    return NULL;
}

WT_CASE(a_semaphore_may_be_freed_as_soon_as_acquire_returns)
{
    int rounds = wt_sanitizer() ? 300 : 2000;
    for (int i = 0; i < rounds; i++) {
        weft_sem_t *done = malloc(sizeof *done);
        WT_EQ(weft_sem_init(done, 0, 0), 0);
        weft_thread_t *t = spawn(release_once, done);
        if (i % 2)
            while (weft_sem_acquire(done, 0) == -EAGAIN)
                ;
        else
            WT_EQ(weft_sem_acquire(done, WEFT_FOREVER), 0);
        WT_EQ(weft_sem_destroy(done), 0);
        free(done);
        finish(t);
    }
}

/* Many waiters, units released one and several at a time: every unit is
 * taken and every waiter ends, whether or not the sleepers bit is kept. */
static weft_sem_t pool_sem = WEFT_SEM_INIT(0);
static _Atomic int taken;

static void *take_units(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        WT_EQ(weft_sem_acquire(&pool_sem, WEFT_FOREVER), 0);
    atomic_fetch_add(&taken, (int)(long)arg);
    return NULL;
}

WT_CASE(units_released_in_batches_reach_every_sleeper)
{
    enum { THREADS = 6, EACH = 500 };
    weft_thread_t *t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = spawn(take_units, (void *)(long)EACH);
    for (int released = 0, k = 0; released < THREADS * EACH; k++) {
        int n = 1 + k % 4 < THREADS * EACH - released ? 1 + k % 4 : THREADS * EACH - released;
        WT_EQ(weft_sem_release(&pool_sem, n), 0);
        released += n;
    }
    for (int i = 0; i < THREADS; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&taken), THREADS * EACH);
    WT_EQ(weft_sem_value(&pool_sem), 0);
}

WT_CASE(timeouts_never_early)
{
    weft_sem_t s = WEFT_SEM_INIT(0);
    const double waits[] = {0.001, 0.02, 0.1};
    for (int i = 0; i < 3; i++) {
        double t0 = wt_now();
        WT_EQ(weft_sem_acquire(&s, waits[i]), -ETIMEDOUT);
        double dt = wt_now() - t0;
        WT_CHECK(dt >= waits[i]);
        WT_CHECK(dt < waits[i] + 0.5 * wt_slack());
    }
    WT_EQ(s.waiters, 0);
}

struct pingpong {
    weft_sem_t ping, pong;
    long rounds;
};

static void *ponger(void *arg)
{
    struct pingpong *p = arg;
    for (long i = 0; i < p->rounds; i++) {
        WT_EQ(weft_sem_acquire(&p->ping, WEFT_FOREVER), 0);
        WT_EQ(weft_sem_release(&p->pong, 1), 0);
    }
    return NULL;
}

WT_STRESS(handoffs_lose_no_wakeup)
{
    struct pingpong p = {WEFT_SEM_INIT(0), WEFT_SEM_INIT(0), wt_sanitizer() ? 100000 : 1000000};
    weft_thread_t *t = spawn(ponger, &p);
    for (long i = 0; i < p.rounds; i++) {
        WT_EQ(weft_sem_release(&p.ping, 1), 0);
        WT_EQ(weft_sem_acquire(&p.pong, WEFT_FOREVER), 0);
    }
    finish(t);
    WT_EQ(weft_sem_value(&p.ping) + weft_sem_value(&p.pong), 0);
}

/* Limits concurrency: never more than 3 inside, with 8 threads trying. */
struct limiter {
    weft_sem_t sem;
    _Atomic int inside, most;
};

static void *limited(void *arg)
{
    struct limiter *l = arg;
    for (int i = 0; i < 2000; i++) {
        WEFT_WITH (&l->sem) {
            int now = atomic_fetch_add(&l->inside, 1) + 1;
            int most = atomic_load(&l->most);
            while (now > most && !atomic_compare_exchange_weak(&l->most, &most, now))
                ;
            atomic_fetch_sub(&l->inside, 1);
        }
    }
    return NULL;
}

WT_STRESS(semaphore_bounds_concurrency)
{
    struct limiter l = {WEFT_BOUNDED_SEM_INIT(3), 0, 0};
    weft_thread_t *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn(limited, &l);
    for (int i = 0; i < 8; i++)
        finish(t[i]);
    WT_CHECK(atomic_load(&l.most) <= 3 && atomic_load(&l.most) >= 1);
    WT_EQ(weft_sem_value(&l.sem), 3);
}

WT_CASE(bad_input_matrix)
{
    weft_sem_t s = WEFT_SEM_INIT(1);
    WT_EQ(weft_sem_init(NULL, 1, 0), -EINVAL);
    WT_EQ(weft_sem_init_bounded(NULL, 1, 0), -EINVAL);
    WT_EQ(weft_sem_init_bounded(&s, -5, 0), -EINVAL);
    WT_EQ(weft_sem_destroy(NULL), -EINVAL);
    WT_EQ(weft_sem_acquire(NULL, 1), -EINVAL);
    WT_EQ(weft_sem_acquire(&s, NAN), -EINVAL);
    WT_EQ(weft_sem_release(NULL, 1), -EINVAL);
    WT_EQ(weft_sem_release(&s, -3), -EINVAL);
    WT_EQ(weft_sem_value(NULL), -EINVAL);
    WT_EQ(weft_sem_value(&s), 1);
}
