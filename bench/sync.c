/*
 * Suite "sync": weft's locks against the pthread primitives a C programmer
 * would otherwise use, each at its best setting.
 *
 * Uncontended cases time one acquire + release in a single thread.
 * Contended cases run two threads that each take the lock iters/2 times
 * around a tiny critical section (one shared counter increment) and report
 * wall time per operation: lower means more total throughput. The threads
 * are raw pthreads on both sides, lined up by a spin barrier, so only the
 * lock differs.
 *
 * critsec_short runs at the default spin count against glibc's adaptive
 * mutex (PTHREAD_MUTEX_ADAPTIVE_NP, its spinning mutex); critsec_spin_0 and
 * critsec_spin_4000 show what the spin count does to the same workload.
 */
#include "bench.h"

#include <weft/sync.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* --- two threads hammering one lock ------------------------------------------ */

struct pair {
    void (*op)(void *ctx, long n);
    void *ctx;
    long n;
    atomic_int ready;
};

static void *pair_worker(void *arg)
{
    struct pair *p = arg;
    atomic_fetch_add(&p->ready, 1);
    while (atomic_load(&p->ready) < 2)
        ;
    p->op(p->ctx, p->n);
    return NULL;
}

static double run_pair(void (*op)(void *, long), void *ctx, long iters)
{
    struct pair p = {op, ctx, iters / 2 > 0 ? iters / 2 : 1, 0};
    pthread_t t[2];
    double t0 = bench_now();
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, pair_worker, &p) != 0) {
            fputs("pthread_create failed\n", stderr);
            exit(1);
        }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    return bench_now() - t0;
}

static long shared_counter;

/* --- Lock ------------------------------------------------------------------------ */

static weft_lock_t wlock = WEFT_LOCK_INIT;
static pthread_mutex_t pmutex = PTHREAD_MUTEX_INITIALIZER;

static double weft_lock_single(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        weft_lock_acquire(&wlock, WEFT_FOREVER);
        weft_lock_release(&wlock);
    }
    return bench_now() - t0;
}

static double pthread_mutex_single(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        pthread_mutex_lock(&pmutex);
        pthread_mutex_unlock(&pmutex);
    }
    return bench_now() - t0;
}

BENCH_CASE(sync, lock_uncontended, "pthread_mutex", weft_lock_single, pthread_mutex_single, 1.0)

/* The lock-order checker's cost when on: the same loop as lock_uncontended,
 * inside an outer lock so that every acquire also checks an order, against
 * the checker off. (Off, its cost is one load and branch per operation, part
 * of every other figure here.) */
static weft_lock_t wouter = WEFT_LOCK_INIT;

static double weft_lock_single_checked(long iters)
{
    weft_lockdep_enable(true);
    weft_lock_acquire(&wouter, WEFT_FOREVER);
    double t = weft_lock_single(iters);
    weft_lock_release(&wouter);
    weft_lockdep_enable(false);
    return t;
}

BENCH_CASE(sync, lockdep_on, "weft_lockdep_off", weft_lock_single_checked, weft_lock_single, 0)

static void weft_lock_loop(void *ctx, long n)
{
    for (long i = 0; i < n; i++) {
        weft_lock_acquire(ctx, WEFT_FOREVER);
        shared_counter++;
        weft_lock_release(ctx);
    }
}

static void pthread_mutex_loop(void *ctx, long n)
{
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(ctx);
        shared_counter++;
        pthread_mutex_unlock(ctx);
    }
}

static double weft_lock_pair(long iters)
{
    return run_pair(weft_lock_loop, &wlock, iters);
}

static double pthread_mutex_pair(long iters)
{
    return run_pair(pthread_mutex_loop, &pmutex, iters);
}

BENCH_CASE(sync, lock_contended_2t, "pthread_mutex", weft_lock_pair, pthread_mutex_pair, 1.5,
           .loaded_bar = 1.0, .cpu = true)

/* --- RLock ------------------------------------------------------------------------ */

static weft_rlock_t wrlock = WEFT_RLOCK_INIT;
static pthread_mutex_t precursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static double weft_rlock_single(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        weft_rlock_acquire(&wrlock, WEFT_FOREVER);
        weft_rlock_release(&wrlock);
    }
    return bench_now() - t0;
}

static double pthread_recursive_single(long iters)
{
    double t0 = bench_now();
    for (long i = 0; i < iters; i++) {
        pthread_mutex_lock(&precursive);
        pthread_mutex_unlock(&precursive);
    }
    return bench_now() - t0;
}

BENCH_CASE(sync, rlock_uncontended, "pthread_mutex_recursive", weft_rlock_single,
           pthread_recursive_single, 1.0)

/* --- critical section -------------------------------------------------------------- */

static weft_critsec_t wcs = WEFT_CRITSEC_INIT;
static pthread_mutex_t padaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

static void critsec_loop(void *ctx, long n)
{
    for (long i = 0; i < n; i++) {
        weft_critsec_enter(ctx);
        shared_counter++;
        weft_critsec_leave(ctx);
    }
}

static double critsec_pair_with(uint32_t spin, long iters)
{
    weft_critsec_set_spin(&wcs, spin);
    return run_pair(critsec_loop, &wcs, iters);
}

static double critsec_pair_default(long iters)
{
    return critsec_pair_with(WEFT_CRITSEC_DEFAULT_SPIN, iters);
}

static double critsec_pair_0(long iters)
{
    return critsec_pair_with(0, iters);
}

static double critsec_pair_4000(long iters)
{
    return critsec_pair_with(4000, iters);
}

static double adaptive_pair(long iters)
{
    return run_pair(pthread_mutex_loop, &padaptive, iters);
}

BENCH_CASE(sync, critsec_short, "pthread_mutex_adaptive", critsec_pair_default, adaptive_pair, 1.0,
           .loaded_bar = 1.0, .cpu = true)
BENCH_CASE(sync, critsec_spin_0, "pthread_mutex_adaptive", critsec_pair_0, adaptive_pair, 0)
BENCH_CASE(sync, critsec_spin_4000, "pthread_mutex_adaptive", critsec_pair_4000, adaptive_pair, 0)

/* --- RWLock: read-mostly ---------------------------------------------------------- */

/* Every 20th operation of each thread writes (95% reads); a read looks at
 * the shared counter, a write increments it. glibc's default rwlock, which
 * prefers readers, is the fastest pthread kind for this mix (its
 * writer-preferring kind measured twice as slow). */
static weft_rwlock_t wrw = WEFT_RWLOCK_INIT;
static pthread_rwlock_t prw = PTHREAD_RWLOCK_INITIALIZER;
static volatile long read_sink;

static void weft_rw_loop(void *ctx, long n)
{
    for (long i = 0; i < n; i++) {
        if (i % 20 == 0) {
            weft_rwlock_acquire_write(ctx, WEFT_FOREVER);
            shared_counter++;
            weft_rwlock_release_write(ctx);
        } else {
            weft_rwlock_acquire_read(ctx, WEFT_FOREVER);
            read_sink = shared_counter;
            weft_rwlock_release_read(ctx);
        }
    }
}

static void pthread_rw_loop(void *ctx, long n)
{
    for (long i = 0; i < n; i++) {
        if (i % 20 == 0) {
            pthread_rwlock_wrlock(ctx);
            shared_counter++;
            pthread_rwlock_unlock(ctx);
        } else {
            pthread_rwlock_rdlock(ctx);
            read_sink = shared_counter;
            pthread_rwlock_unlock(ctx);
        }
    }
}

static double weft_rw_pair(long iters)
{
    return run_pair(weft_rw_loop, &wrw, iters);
}

static double pthread_rw_pair(long iters)
{
    return run_pair(pthread_rw_loop, &prw, iters);
}

BENCH_CASE(sync, rwlock_read_mostly, "pthread_rwlock", weft_rw_pair, pthread_rw_pair, 1.0)

/* --- hand-offs: two threads taking turns ----------------------------------------- */

#include <semaphore.h>

/* Round trip: one side posts "ping" and waits for "pong", the other the
 * reverse; a round trip is two hand-offs, each waking a thread that waits. */
static double pingpong(void *(*responder)(void *), void (*ask)(long), void *ctx, long iters)
{
    pthread_t t;
    if (pthread_create(&t, NULL, responder, ctx) != 0)
        exit(1);
    double t0 = bench_now();
    ask(iters);
    double dt = bench_now() - t0;
    pthread_join(t, NULL);
    return dt;
}

static weft_sem_t wping, wpong;
static long rounds;

static void *weft_sem_responder(void *arg)
{
    for (long i = 0; i < rounds; i++) {
        weft_sem_acquire(&wping, WEFT_FOREVER);
        weft_sem_release(&wpong, 1);
    }
    return arg;
}

static void weft_sem_ask(long n)
{
    for (long i = 0; i < n; i++) {
        weft_sem_release(&wping, 1);
        weft_sem_acquire(&wpong, WEFT_FOREVER);
    }
}

static double weft_sem_pingpong(long iters)
{
    rounds = iters;
    weft_sem_init(&wping, 0, 0);
    weft_sem_init(&wpong, 0, 0);
    return pingpong(weft_sem_responder, weft_sem_ask, NULL, iters);
}

static sem_t pping, ppong;

static void *posix_sem_responder(void *arg)
{
    for (long i = 0; i < rounds; i++) {
        sem_wait(&pping);
        sem_post(&ppong);
    }
    return arg;
}

static void posix_sem_ask(long n)
{
    for (long i = 0; i < n; i++) {
        sem_post(&pping);
        sem_wait(&ppong);
    }
}

static double posix_sem_pingpong(long iters)
{
    rounds = iters;
    sem_init(&pping, 0, 0);
    sem_init(&ppong, 0, 0);
    return pingpong(posix_sem_responder, posix_sem_ask, NULL, iters);
}

BENCH_CASE(sync, sem_pingpong, "sem_t", weft_sem_pingpong, posix_sem_pingpong, 1.0,
           .loaded_bar = 0.9, .cpu = true, .cpu_bar = 0.9)

/* A turn counter under a lock and a condition: wait while it is not my turn,
 * take the turn, notify the other side. */
static weft_lock_t wturn_lock = WEFT_LOCK_INIT;
static weft_cond_t wturn_cond;
static pthread_mutex_t pturn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pturn_cond = PTHREAD_COND_INITIALIZER;
static long turn;

static void weft_take_turns(long n, long parity)
{
    weft_lock_acquire(&wturn_lock, WEFT_FOREVER);
    for (long i = 0; i < n; i++) {
        while (turn % 2 != parity)
            weft_cond_wait(&wturn_cond, WEFT_FOREVER);
        turn++;
        weft_cond_notify(&wturn_cond, 1);
    }
    weft_lock_release(&wturn_lock);
}

static void *weft_cond_responder(void *arg)
{
    weft_take_turns(rounds, 1);
    return arg;
}

static void weft_cond_ask(long n)
{
    weft_take_turns(n, 0);
}

static double weft_cond_pingpong(long iters)
{
    rounds = iters;
    turn = 0;
    weft_cond_init(&wturn_cond, &wturn_lock, 0);
    return pingpong(weft_cond_responder, weft_cond_ask, NULL, iters);
}

static void pthread_take_turns(long n, long parity)
{
    pthread_mutex_lock(&pturn_lock);
    for (long i = 0; i < n; i++) {
        while (turn % 2 != parity)
            pthread_cond_wait(&pturn_cond, &pturn_lock);
        turn++;
        pthread_cond_signal(&pturn_cond);
    }
    pthread_mutex_unlock(&pturn_lock);
}

static void *pthread_cond_responder(void *arg)
{
    pthread_take_turns(rounds, 1);
    return arg;
}

static void pthread_cond_ask(long n)
{
    pthread_take_turns(n, 0);
}

static double pthread_cond_pingpong(long iters)
{
    rounds = iters;
    turn = 0;
    return pingpong(pthread_cond_responder, pthread_cond_ask, NULL, iters);
}

BENCH_CASE(sync, cond_pingpong, "pthread_cond", weft_cond_pingpong, pthread_cond_pingpong, 1.0,
           .loaded_bar = 0.9, .cpu = true, .cpu_bar = 0.9)

/* --- barrier: two threads meeting again and again ---------------------------- */

static weft_barrier_t wbarrier;
static pthread_barrier_t pbarrier;

static void *weft_barrier_partner(void *arg)
{
    for (long i = 0; i < rounds; i++)
        weft_barrier_wait(&wbarrier, WEFT_FOREVER);
    return arg;
}

static void weft_barrier_meet(long n)
{
    for (long i = 0; i < n; i++)
        weft_barrier_wait(&wbarrier, WEFT_FOREVER);
}

static double weft_barrier_2t(long iters)
{
    rounds = iters;
    weft_barrier_init(&wbarrier, 2, NULL, NULL, WEFT_FOREVER, 0);
    return pingpong(weft_barrier_partner, weft_barrier_meet, NULL, iters);
}

static void *pthread_barrier_partner(void *arg)
{
    for (long i = 0; i < rounds; i++)
        pthread_barrier_wait(&pbarrier);
    return arg;
}

static void pthread_barrier_meet(long n)
{
    for (long i = 0; i < n; i++)
        pthread_barrier_wait(&pbarrier);
}

static double pthread_barrier_2t(long iters)
{
    rounds = iters;
    pthread_barrier_init(&pbarrier, NULL, 2);
    double dt = pingpong(pthread_barrier_partner, pthread_barrier_meet, NULL, iters);
    pthread_barrier_destroy(&pbarrier);
    return dt;
}

BENCH_CASE(sync, barrier_2t, "pthread_barrier", weft_barrier_2t, pthread_barrier_2t, 1.0,
           .loaded_bar = 0.9, .cpu = true, .cpu_bar = 0.9)
