/*
 * Tests for RWLock: its invariants under stress (never a writer with a reader
 * or with another writer) in threads and in processes over shared memory,
 * writer preference, the recursive-read rule, timeouts on both sides (a
 * writer that gives up lets the readers it held back in), the release checks,
 * WEFT_WITH_READ / WEFT_WITH_WRITE, and bad input.
 */
#include "threads.h"
#include <weft/sync.h>
#include <weft/thread.h>

#include <math.h>
#include <stdlib.h>

/* --- invariants under stress ----------------------------------------------- */

struct mix {
    weft_rwlock_t rw;
    _Atomic int readers, writers; /* inside, counted by the test */
    _Atomic int broken;
    long ops, writes, reads_seen_max;
    unsigned seed;
};

static void check_inside(struct mix *m, bool writing)
{
    int r = atomic_load(&m->readers), w = atomic_load(&m->writers);
    if (writing ? (r != 0 || w != 1) : (w != 0 || r < 1))
        atomic_store(&m->broken, 1);
}

/* One thread (or process) of the mix: 1 write in `write_every`, some with a
 * short timeout, the rest reads. */
static int run_mix(struct mix *m, unsigned seed, int write_every)
{
    long writes = 0;
    for (long i = 0; i < m->ops; i++) {
        double timeout = rand_r(&seed) % 8 == 0 ? 0.0001 : WEFT_FOREVER;
        if (rand_r(&seed) % write_every == 0) {
            int rc = weft_rwlock_acquire_write(&m->rw, timeout);
            if (rc == -ETIMEDOUT)
                continue;
            if (rc != 0)
                return 1;
            atomic_fetch_add(&m->writers, 1);
            check_inside(m, true);
            writes++;
            atomic_fetch_sub(&m->writers, 1);
            if (weft_rwlock_release_write(&m->rw) != 0)
                return 2;
        } else {
            int rc = weft_rwlock_acquire_read(&m->rw, timeout);
            if (rc == -ETIMEDOUT)
                continue;
            if (rc != 0)
                return 3;
            atomic_fetch_add(&m->readers, 1);
            check_inside(m, false);
            atomic_fetch_sub(&m->readers, 1);
            if (weft_rwlock_release_read(&m->rw) != 0)
                return 4;
        }
    }
    __atomic_fetch_add(&m->writes, writes, __ATOMIC_RELAXED);
    return 0;
}

static void *mix_thread(void *arg)
{
    struct mix *m = arg;
    unsigned seed = __atomic_add_fetch(&m->seed, 7919, __ATOMIC_RELAXED);
    return (void *)(intptr_t)run_mix(m, seed, 5);
}

WT_STRESS(rwlock_never_mixes_readers_and_writers)
{
    for (int n = 2; n <= 8; n *= 2) {
        struct mix m = {.rw = WEFT_RWLOCK_INIT, .ops = wt_sanitizer() ? 20000 : 300000};
        weft_thread_t *t[8];
        for (int i = 0; i < n; i++)
            t[i] = spawn(mix_thread, &m);
        for (int i = 0; i < n; i++)
            WT_EQ((intptr_t)finish(t[i]), 0);
        WT_EQ(atomic_load(&m.broken), 0);
        WT_CHECK(m.writes > 0);
        WT_EQ(m.rw.state, 0); /* free, no waiting bit left behind */
        WT_EQ(m.rw.writers, 0);
    }
}

static struct mix *shared_mix;

static int mix_process(void *arg)
{
    return run_mix(shared_mix, (unsigned)(intptr_t)arg, 5);
}

WT_STRESS(rwlock_never_mixes_readers_and_writers_across_processes)
{
    shared_mix = wt_shared_map(sizeof *shared_mix);
    WT_EQ(weft_rwlock_init(&shared_mix->rw, WEFT_SHARED), 0);
    shared_mix->ops = wt_sanitizer() ? 20000 : 300000;
    pid_t pids[2];
    for (int i = 0; i < 2; i++)
        pids[i] = wt_spawn(mix_process, (void *)(intptr_t)(i + 1));
    WT_EQ(mix_process((void *)(intptr_t)99), 0);
    for (int i = 0; i < 2; i++)
        WT_EQ(wt_reap(pids[i], 120), 0);
    WT_EQ(atomic_load(&shared_mix->broken), 0);
    WT_CHECK(shared_mix->writes > 0);
    WT_EQ(shared_mix->rw.state, 0);
}

/* --- basics -------------------------------------------------------------------- */

WT_CASE(rwlock_basics)
{
    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    WT_EQ(sizeof rw, 20);
    WT_EQ(weft_rwlock_readers(&rw), 0);
    WT_EQ(weft_rwlock_acquire_read(&rw, 0), 0);
    WT_EQ(weft_rwlock_acquire_read(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_readers(&rw), 2);
    WT_EQ(weft_rwlock_acquire_write(&rw, 0), -EAGAIN);
    WT_EQ(weft_rwlock_acquire_write(&rw, 0.01), -ETIMEDOUT);
    WT_EQ(weft_rwlock_destroy(&rw), -EBUSY);
    WT_EQ(weft_rwlock_release_write(&rw), -EPERM);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(weft_rwlock_release_read(&rw), -EPERM);
    WT_EQ(weft_rwlock_acquire_write(&rw, 0), 0);
    WT_EQ(weft_rwlock_readers(&rw), -1);
    WT_EQ(weft_rwlock_acquire_read(&rw, 0), -EAGAIN);
    WT_EQ(weft_rwlock_acquire_write(&rw, 0), -EAGAIN);
    WT_EQ(weft_rwlock_release_read(&rw), -EPERM);
    WT_EQ(weft_rwlock_release_write(&rw), 0);
    WT_EQ(weft_rwlock_release_write(&rw), -EPERM);
    WT_EQ(weft_rwlock_destroy(&rw), 0);
    WT_EQ(rw.state, 0);
}

static void *release_write_elsewhere(void *arg)
{
    return (void *)(intptr_t)weft_rwlock_release_write(arg);
}

WT_CASE(rwlock_write_release_by_another_thread_is_refused)
{
    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), 0);
    WT_EQ((intptr_t)finish(spawn(release_write_elsewhere, &rw)), -EPERM);
    WT_EQ(weft_rwlock_release_write(&rw), 0);
}

/* --- writer preference and the recursive-read rule -------------------------- */

struct order {
    weft_rwlock_t rw;
    _Atomic long tid;
    _Atomic int step; /* who got in, in order: 1 writer, 2 late reader */
    _Atomic int writer_step, reader_step;
    double timeout;
    int rc;
};

static bool tid_known(void *arg)
{
    return atomic_load((_Atomic long *)arg) != 0;
}

static void *writer(void *arg)
{
    struct order *o = arg;
    atomic_store(&o->tid, weft_thread_get_native_id());
    o->rc = weft_rwlock_acquire_write(&o->rw, o->timeout);
    if (o->rc == 0) {
        atomic_store(&o->writer_step, atomic_fetch_add(&o->step, 1) + 1);
        weft_rwlock_release_write(&o->rw);
    }
    return NULL;
}

static void *late_reader(void *arg)
{
    struct order *o = arg;
    atomic_store(&o->tid, weft_thread_get_native_id());
    WT_EQ(weft_rwlock_acquire_read(&o->rw, WEFT_FOREVER), 0);
    atomic_store(&o->reader_step, atomic_fetch_add(&o->step, 1) + 1);
    WT_EQ(weft_rwlock_release_read(&o->rw), 0);
    return NULL;
}

/* Start the writer and wait until it sleeps behind the main thread's read. */
static weft_thread_t *waiting_writer(struct order *o)
{
    WT_EQ(weft_rwlock_acquire_read(&o->rw, WEFT_FOREVER), 0);
    weft_thread_t *w = spawn(writer, o);
    wt_wait_until(tid_known, &o->tid, 60);
    wt_await_futex_sleep(atomic_load(&o->tid), &o->rw.wseq, 60);
    atomic_store(&o->tid, 0);
    return w;
}

WT_CASE(rwlock_prefers_a_waiting_writer)
{
    struct order o = {.rw = WEFT_RWLOCK_INIT, .timeout = WEFT_FOREVER};
    weft_thread_t *w = waiting_writer(&o);
    /* New readers now wait behind the writer. */
    weft_thread_t *r = spawn(late_reader, &o);
    wt_wait_until(tid_known, &o.tid, 60);
    wt_await_futex_sleep(atomic_load(&o.tid), &o.rw.state, 60);
    WT_EQ(weft_rwlock_release_read(&o.rw), 0);
    finish(w);
    finish(r);
    WT_EQ(o.rc, 0);
    WT_EQ(atomic_load(&o.writer_step), 1);
    WT_EQ(atomic_load(&o.reader_step), 2);
}

WT_CASE(rwlock_recursive_read_passes_a_waiting_writer)
{
    struct order o = {.rw = WEFT_RWLOCK_INIT, .timeout = WEFT_FOREVER};
    weft_thread_t *w = waiting_writer(&o);
    /* Holding a read lock, take another: it must not wait for the writer
     * (which waits for us). */
    WT_EQ(weft_rwlock_acquire_read(&o.rw, 0), 0);
    WT_EQ(weft_rwlock_readers(&o.rw), 2);
    WT_EQ(weft_rwlock_release_read(&o.rw), 0);
    WT_EQ(weft_rwlock_release_read(&o.rw), 0);
    finish(w);
    WT_EQ(o.rc, 0);
}

static void *try_read_elsewhere(void *arg)
{
    return (void *)(intptr_t)weft_rwlock_acquire_read(arg, 0);
}

WT_CASE(rwlock_writer_that_gives_up_lets_readers_in)
{
    struct order o = {.rw = WEFT_RWLOCK_INIT, .timeout = 0.3};
    weft_thread_t *w = waiting_writer(&o);
    /* While the writer waits, a reader holding nothing is turned away. */
    WT_EQ((intptr_t)finish(spawn(try_read_elsewhere, &o.rw)), -EAGAIN);
    weft_thread_t *r = spawn(late_reader, &o); /* sleeps behind the writer */
    finish(w);
    WT_EQ(o.rc, -ETIMEDOUT);
    /* The writer gave up: the reader gets in although we still read. */
    finish(r);
    WT_EQ(atomic_load(&o.reader_step), 1);
    WT_EQ(weft_rwlock_readers(&o.rw), 1);
    WT_EQ(weft_rwlock_release_read(&o.rw), 0);
    WT_EQ(o.rw.state, 0);
    WT_EQ(o.rw.writers, 0);
}

WT_CASE(rwlock_timeouts_never_early)
{
    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), 0);
    for (int k = 0; k < 2; k++) {
        double t0 = wt_now();
        int rc = k ? weft_rwlock_acquire_write(&rw, 0.05) : weft_rwlock_acquire_read(&rw, 0.05);
        double took = wt_now() - t0;
        WT_EQ(rc, -ETIMEDOUT); /* even for itself: a write lock is not recursive */
        WT_CHECK(took >= 0.05);
    }
    WT_EQ(weft_rwlock_release_write(&rw), 0);
}

/* --- WEFT_WITH_READ / WEFT_WITH_WRITE ---------------------------------------- */

static int leave_by_return(weft_rwlock_t *rw)
{
    WEFT_WITH_WRITE (rw) {
        return weft_rwlock_readers(rw);
    }
    return 0;
}

WT_CASE(rwlock_with_forms_release_on_every_exit)
{
    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    WEFT_WITH_READ (&rw) {
        WT_EQ(weft_rwlock_readers(&rw), 1);
        WEFT_WITH_READ (&rw) {
            WT_EQ(weft_rwlock_readers(&rw), 2);
        }
    }
    WT_EQ(weft_rwlock_readers(&rw), 0);
    WEFT_WITH_WRITE (&rw) {
        WT_EQ(weft_rwlock_readers(&rw), -1);
        break;
    }
    WT_EQ(weft_rwlock_readers(&rw), 0);
    WT_EQ(leave_by_return(&rw), -1);
    WT_EQ(weft_rwlock_readers(&rw), 0);
    int ran = 0;
    WEFT_WITH_READ ((weft_rwlock_t *)NULL) {
        ran = 1;
    }
    WT_EQ(ran, 0);
}

WT_CASE(rwlock_bad_input)
{
    weft_rwlock_t rw;
    WT_EQ(weft_rwlock_init(NULL, 0), -EINVAL);
    WT_EQ(weft_rwlock_init(&rw, 2), -EINVAL);
    WT_EQ(weft_rwlock_init(&rw, 0), 0);
    WT_EQ(weft_rwlock_destroy(NULL), -EINVAL);
    WT_EQ(weft_rwlock_acquire_read(NULL, 0), -EINVAL);
    WT_EQ(weft_rwlock_acquire_write(NULL, 0), -EINVAL);
    WT_EQ(weft_rwlock_acquire_read(&rw, NAN), -EINVAL);
    WT_EQ(weft_rwlock_acquire_write(&rw, NAN), -EINVAL);
    WT_EQ(weft_rwlock_release_read(NULL), -EINVAL);
    WT_EQ(weft_rwlock_release_write(NULL), -EINVAL);
    WT_EQ(weft_rwlock_readers(NULL), -EINVAL);
    WT_EQ(rw.state, 0);
}
