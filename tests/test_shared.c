/*
 * Primitives in memory shared between processes (WEFT_SHARED): real forked
 * processes over a MAP_SHARED region, for mutual exclusion, hand-offs and
 * every waiting primitive; and robustness: a holder killed with SIGKILL
 * (reaped, or still a zombie), a waiter asleep when the holder dies, a
 * holder thread that exits, an unrepaired lock becoming unrecoverable, a
 * condition wait whose lock's next holder dies, a barrier whose last
 * arrival dies in the action, and a dead holder whose pid a new process
 * has been given (through ns_last_pid).
 *
 * Ordering between processes is deterministic: semaphores in the region for
 * hand-offs, and /proc (wt_await_child_futex_sleep) to know that a child is
 * asleep on a lock before its holder is killed.
 */
#include "base/base.h"
#include "birth.h"
#include "threads.h"
#include <weft/sync.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PROCS = 3, ITEMS = 8 };

struct region {
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_critsec_t cs;
    weft_sem_t ready, ping, pong;
    weft_cond_t not_empty, not_full, own;
    weft_event_t event;
    weft_barrier_t barrier;
    weft_waitgroup_t wg;
    weft_once_t once;
    long counter, iterations, items[ITEMS], head, tail, flag;
    int once_runs, barrier_mask[64];
    uint64_t holder_birth;
};

static struct region *region(void)
{
    struct region *r = wt_shared_map(sizeof *r);
    WT_EQ(weft_lock_init(&r->lock, WEFT_SHARED), 0);
    WT_EQ(weft_rlock_init(&r->rlock, WEFT_SHARED), 0);
    WT_EQ(weft_critsec_init(&r->cs, WEFT_CRITSEC_DEFAULT_SPIN, WEFT_SHARED), 0);
    WT_EQ(weft_sem_init(&r->ready, 0, WEFT_SHARED), 0);
    WT_EQ(weft_sem_init(&r->ping, 0, WEFT_SHARED), 0);
    WT_EQ(weft_sem_init(&r->pong, 0, WEFT_SHARED), 0);
    WT_EQ(weft_cond_init(&r->not_empty, &r->lock, WEFT_SHARED), 0);
    WT_EQ(weft_cond_init(&r->not_full, &r->lock, WEFT_SHARED), 0);
    WT_EQ(weft_cond_init(&r->own, NULL, WEFT_SHARED), 0);
    WT_EQ(weft_event_init(&r->event, WEFT_SHARED), 0);
    WT_EQ(weft_barrier_init(&r->barrier, PROCS, NULL, NULL, -1, WEFT_SHARED), 0);
    WT_EQ(weft_waitgroup_init(&r->wg, WEFT_SHARED), 0);
    WT_EQ(weft_once_init(&r->once, WEFT_SHARED), 0);
    return r;
}

/* --- the three robust locks behind one interface ----------------------- */

struct kind {
    int (*acquire)(struct region *r, double timeout);
    int (*release)(struct region *r);
    int (*consistent)(struct region *r);
    size_t word; /* offset of the futex word in the region */
};

static int lock_acq(struct region *r, double t)
{
    return weft_lock_acquire(&r->lock, t);
}
static int lock_rel(struct region *r)
{
    return weft_lock_release(&r->lock);
}
static int lock_fix(struct region *r)
{
    return weft_lock_consistent(&r->lock);
}
static int rlock_acq(struct region *r, double t)
{
    return weft_rlock_acquire(&r->rlock, t);
}
static int rlock_rel(struct region *r)
{
    return weft_rlock_release(&r->rlock);
}
static int rlock_fix(struct region *r)
{
    return weft_rlock_consistent(&r->rlock);
}
static int cs_acq(struct region *r, double t)
{
    return t == 0 ? weft_critsec_try_enter(&r->cs) : weft_critsec_enter(&r->cs);
}
static int cs_rel(struct region *r)
{
    return weft_critsec_leave(&r->cs);
}
static int cs_fix(struct region *r)
{
    return weft_critsec_consistent(&r->cs);
}

static const struct kind LOCK = {lock_acq, lock_rel, lock_fix, offsetof(struct region, lock)};
static const struct kind RLOCK = {rlock_acq, rlock_rel, rlock_fix, offsetof(struct region, rlock)};
static const struct kind CRITSEC = {cs_acq, cs_rel, cs_fix, offsetof(struct region, cs)};

static const void *word_of(struct region *r, const struct kind *k)
{
    return (const char *)r + k->word;
}

/* --- mutual exclusion across processes ---------------------------------- */

static struct region *shared;
static const struct kind *current_kind;

/* Iterations for a stress case: fewer under the sanitizers. */
static long scaled(long n)
{
    return wt_sanitizer() ? n / 20 : n;
}

static int hammer(void *arg)
{
    (void)arg;
    for (long i = 0; i < shared->iterations; i++) {
        if (current_kind->acquire(shared, WEFT_FOREVER) != 0)
            return 1;
        long v = shared->counter; /* a lost update shows if exclusion fails */
        if (current_kind == &RLOCK &&
            (weft_rlock_acquire(&shared->rlock, 0) != 0 || weft_rlock_release(&shared->rlock) != 0))
            return 2;
        shared->counter = v + 1;
        if (current_kind->release(shared) != 0)
            return 3;
    }
    return 0;
}

static void excludes(const struct kind *k)
{
    shared = region();
    current_kind = k;
    shared->iterations = scaled(1000000);
    pid_t pids[PROCS - 1];
    for (int i = 0; i < PROCS - 1; i++)
        pids[i] = wt_spawn(hammer, NULL);
    WT_EQ(hammer(NULL), 0);
    for (int i = 0; i < PROCS - 1; i++)
        WT_EQ(wt_reap(pids[i], 120), 0);
    WT_EQ(shared->counter, PROCS * shared->iterations);
    WT_EQ(k->acquire(shared, 0), 0); /* free again, and no sleeper left */
    WT_EQ(k->release(shared), 0);
    WT_EQ(shared->rlock.sleepers + shared->cs.lock.sleepers, 0);
}

WT_STRESS(lock_excludes_across_processes)
{
    excludes(&LOCK);
}

WT_STRESS(rlock_excludes_across_processes)
{
    excludes(&RLOCK);
}

WT_STRESS(critsec_excludes_across_processes)
{
    excludes(&CRITSEC);
}

/* --- hand-offs and waiting primitives across processes ----------------- */

static int pong(void *arg)
{
    (void)arg;
    for (long i = 0; i < shared->iterations; i++) {
        if (weft_sem_acquire(&shared->ping, WEFT_FOREVER) != 0 || shared->counter != 2 * i + 1)
            return 1;
        shared->counter++;
        weft_sem_release(&shared->pong, 1);
    }
    return 0;
}

WT_STRESS(sem_pingpong_across_processes)
{
    shared = region();
    shared->iterations = scaled(100000);
    pid_t child = wt_spawn(pong, NULL);
    for (long i = 0; i < shared->iterations; i++) {
        shared->counter++;
        WT_EQ(weft_sem_release(&shared->ping, 1), 0);
        WT_EQ(weft_sem_acquire(&shared->pong, WEFT_FOREVER), 0);
        WT_EQ(shared->counter, 2 * i + 2);
    }
    WT_EQ(wt_reap(child, 120), 0);
}

static int produce(void *arg)
{
    (void)arg;
    for (long i = 0; i < shared->iterations; i++) {
        WEFT_WITH (&shared->lock) {
            while (shared->tail - shared->head == ITEMS)
                weft_cond_wait(&shared->not_full, WEFT_FOREVER);
            shared->items[shared->tail++ % ITEMS] = i;
            weft_cond_notify(&shared->not_empty, 1);
        }
    }
    return 0;
}

WT_STRESS(cond_bounded_buffer_across_processes)
{
    shared = region();
    shared->iterations = scaled(200000);
    pid_t child = wt_spawn(produce, NULL);
    for (long i = 0; i < shared->iterations; i++) {
        long item = -1;
        WEFT_WITH (&shared->lock) {
            while (shared->tail == shared->head)
                WT_EQ(weft_cond_wait(&shared->not_empty, WEFT_FOREVER), 0);
            item = shared->items[shared->head++ % ITEMS];
            weft_cond_notify(&shared->not_full, 1);
        }
        WT_EQ(item, i);
    }
    WT_EQ(wt_reap(child, 120), 0);
}

static void once_fn(void *arg)
{
    (void)arg;
    shared->once_runs++;
}

/* Every waiting primitive once across processes: the condition with its own
 * lock, the event, the barrier (each index once per cycle), the wait group
 * and once. */
static int party(void *arg)
{
    (void)arg;
    if (weft_once_call(&shared->once, once_fn, NULL) != 0)
        return 1;
    WEFT_WITH (&shared->own) {
        while (!shared->flag)
            weft_cond_wait(&shared->own, WEFT_FOREVER);
    }
    if (weft_event_wait(&shared->event, WEFT_FOREVER) != 0)
        return 2;
    for (int k = 0; k < 64; k++) {
        int index = weft_barrier_wait(&shared->barrier, WEFT_BARRIER_DEFAULT);
        if (index < 0 || index >= PROCS)
            return 3;
        __atomic_fetch_or(&shared->barrier_mask[k], 1 << index, __ATOMIC_RELAXED);
    }
    weft_waitgroup_done(&shared->wg);
    return 0;
}

WT_CASE(waiting_primitives_across_processes)
{
    shared = region();
    WT_EQ(weft_waitgroup_add(&shared->wg, PROCS - 1), 0);
    pid_t pids[PROCS - 1];
    for (int i = 0; i < PROCS - 1; i++)
        pids[i] = wt_spawn(party, NULL);
    WT_EQ(weft_once_call(&shared->once, once_fn, NULL), 0);
    WEFT_WITH (&shared->own) {
        shared->flag = 1;
        weft_cond_notify_all(&shared->own);
    }
    WT_EQ(weft_event_set(&shared->event), 0);
    for (int k = 0; k < 64; k++) {
        int index = weft_barrier_wait(&shared->barrier, WEFT_BARRIER_DEFAULT);
        WT_CHECK(index >= 0 && index < PROCS);
        __atomic_fetch_or(&shared->barrier_mask[k], 1 << index, __ATOMIC_RELAXED);
    }
    WT_EQ(weft_waitgroup_wait(&shared->wg, 60), 0);
    for (int i = 0; i < PROCS - 1; i++)
        WT_EQ(wt_reap(pids[i], 60), 0);
    WT_EQ(shared->once_runs, 1);
    for (int k = 0; k < 64; k++)
        WT_EQ(shared->barrier_mask[k], (1 << PROCS) - 1); /* each index once */
}

/* --- robustness: the holder dies ---------------------------------------- */

/* Take the lock (an RLock twice), say so, and wait to be killed. */
static int hold_and_wait(void *arg)
{
    (void)arg;
    if (current_kind->acquire(shared, WEFT_FOREVER) != 0)
        return 1;
    if (current_kind == &RLOCK && current_kind->acquire(shared, WEFT_FOREVER) != 0)
        return 1;
    shared->holder_birth = weft__birth();
    weft_sem_release(&shared->ready, 1);
    for (;;)
        pause();
}

static pid_t start_holder(const struct kind *k)
{
    shared = region();
    current_kind = k;
    pid_t holder = wt_spawn(hold_and_wait, NULL);
    WT_EQ(weft_sem_acquire(&shared->ready, 60), 0);
    return holder;
}

static void kill_and_reap(pid_t pid)
{
    WT_EQ(kill(pid, SIGKILL), 0);
    int status;
    WT_EQ(waitpid(pid, &status, 0), pid);
    WT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* After -EOWNERDEAD the caller holds the lock once (the dead owner's
 * re-entries are gone); repaired, it works as before. */
static void recover(const struct kind *k)
{
    WT_EQ(k->consistent(shared), 0);
    WT_EQ(k->consistent(shared), -EINVAL); /* already consistent */
    WT_EQ(k->release(shared), 0);
    WT_EQ(k->acquire(shared, 0), 0);
    WT_EQ(k->release(shared), 0);
    WT_EQ(k->release(shared), -EPERM);
}

static void reaped_owner(const struct kind *k)
{
    kill_and_reap(start_holder(k));
    WT_EQ(k->acquire(shared, 0), -EAGAIN); /* a try does not check the owner */
    WT_EQ(k->acquire(shared, 30), -EOWNERDEAD);
    recover(k);
}

WT_FAULT(lock_recovers_from_killed_owner)
{
    reaped_owner(&LOCK);
}

WT_FAULT(rlock_recovers_from_killed_owner)
{
    reaped_owner(&RLOCK);
}

WT_FAULT(critsec_recovers_from_killed_owner)
{
    reaped_owner(&CRITSEC);
}

/* WEFT_GUARD_RC hands the caller a lock whose owner died, held, to repair;
 * the end of the scope releases it. */
static int guard_repairs(void)
{
    WEFT_GUARD_RC(&shared->lock, rc);
    if (rc == -EOWNERDEAD)
        WT_EQ(weft_lock_consistent(&shared->lock), 0);
    return rc;
}

WT_FAULT(guard_rc_hands_over_a_dead_owners_lock)
{
    kill_and_reap(start_holder(&LOCK));
    WT_EQ(guard_repairs(), -EOWNERDEAD);
    WT_EQ(weft_lock_acquire(&shared->lock, 0), 0); /* released, and consistent */
    WT_EQ(weft_lock_release(&shared->lock), 0);
}

/* Without pidfs too: a killed owner (reaped, or still a zombie) is dead. */
WT_FAULT(dead_owner_is_dead_by_start_time)
{
    wt_birth_by_start_time();
    reaped_owner(&RLOCK);
    pid_t holder = start_holder(&LOCK);
    WT_CHECK(shared->holder_birth & WT_TICKS_KIND);
    WT_EQ(kill(holder, SIGKILL), 0);
    WT_EQ(weft_lock_acquire(&shared->lock, 30), -EOWNERDEAD);
    recover(&LOCK);
    WT_EQ(waitpid(holder, NULL, 0), holder);
}

/* An owner that could not learn its own birth id (out of descriptors when
 * it first asked) is still the owner while its thread lives: a waiter must
 * not take its lock for a dead owner's, and its release must work. */
static int no_fds_open(const char *path, int flags)
{
    (void)path, (void)flags;
    errno = EMFILE;
    return -1;
}

static int no_fds_pidfd_open(pid_t pid, unsigned flags)
{
    (void)pid, (void)flags;
    errno = EMFILE;
    return -1;
}

struct blind_owner {
    const struct kind *k;
    wt_gate holding, release;
    _Atomic int released;
};

static void *hold_without_birth(void *arg)
{
    struct blind_owner *b = arg;
    WT_EQ(b->k->acquire(shared, WEFT_FOREVER), 0);
    wt_gate_open(&b->holding);
    wt_gate_wait(&b->release);
    atomic_store(&b->released, b->k->release(shared));
    return NULL;
}

WT_FAULT(an_owner_without_a_birth_id_is_still_the_owner)
{
    const struct kind *kinds[] = {&LOCK, &RLOCK};
    for (size_t i = 0; i < 2; i++) {
        shared = region();
        struct blind_owner b = {kinds[i], WT_GATE_INIT, WT_GATE_INIT, 1};
        weft__sys.open = no_fds_open;
        weft__sys.pidfd_open = no_fds_pidfd_open;
        weft_thread_t *t = spawn(hold_without_birth, &b);
        wt_gate_wait(&b.holding);
        weft__sys_reset();
        WT_EQ(b.k->acquire(shared, 0.2), -ETIMEDOUT); /* not -EOWNERDEAD */
        wt_gate_open(&b.release);
        finish(t);
        WT_EQ(atomic_load(&b.released), 0);
        WT_EQ(b.k->acquire(shared, 0), 0);
        WT_EQ(b.k->release(shared), 0);
    }
}

WT_FAULT(zombie_owner_counts_as_dead)
{
    pid_t holder = start_holder(&LOCK);
    WT_EQ(kill(holder, SIGKILL), 0);
    /* Not reaped yet: the owner's thread id still exists, as a zombie. */
    WT_EQ(weft_lock_acquire(&shared->lock, 30), -EOWNERDEAD);
    recover(&LOCK);
    WT_EQ(waitpid(holder, NULL, 0), holder);
}

static int wait_for_lock(void *arg)
{
    (void)arg;
    int rc = current_kind->acquire(shared, 60);
    if (rc == -EOWNERDEAD && current_kind->consistent(shared) == 0 &&
        current_kind->release(shared) == 0)
        return 42;
    return rc == -ENOTRECOVERABLE ? 43 : 1;
}

/* A waiter already asleep when the holder dies is woken by its next check. */
static void sleeping_waiter(const struct kind *k)
{
    pid_t holder = start_holder(k);
    pid_t waiter = wt_spawn(wait_for_lock, NULL);
    wt_await_child_futex_sleep(waiter, word_of(shared, k), 60);
    kill_and_reap(holder);
    int status = wt_reap(waiter, 60);
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 42);
    WT_EQ(k->acquire(shared, 0), 0);
    WT_EQ(k->release(shared), 0);
}

WT_FAULT(lock_waiter_recovers_when_owner_dies)
{
    sleeping_waiter(&LOCK);
}

WT_FAULT(rlock_waiter_recovers_when_owner_dies)
{
    sleeping_waiter(&RLOCK);
}

WT_FAULT(critsec_waiter_recovers_when_owner_dies)
{
    sleeping_waiter(&CRITSEC);
}

WT_FAULT(unrepaired_lock_becomes_unrecoverable)
{
    const struct kind *kinds[] = {&LOCK, &RLOCK, &CRITSEC};
    for (int i = 0; i < 3; i++) {
        const struct kind *k = kinds[i];
        kill_and_reap(start_holder(k));
        WT_EQ(k->acquire(shared, 30), -EOWNERDEAD);
        /* A waiter sleeps behind us while we give up on the data. */
        pid_t waiter = wt_spawn(wait_for_lock, NULL);
        wt_await_child_futex_sleep(waiter, word_of(shared, k), 60);
        WT_EQ(k->release(shared), 0);
        int status = wt_reap(waiter, 60);
        WT_CHECK(WIFEXITED(status));
        WT_EQ(WEXITSTATUS(status), 43);
        WT_EQ(k->acquire(shared, 0), -ENOTRECOVERABLE);
        WT_EQ(k->acquire(shared, 1), -ENOTRECOVERABLE);
        if (k == &LOCK)
            WT_EQ(weft_lock_locked(&shared->lock), 1); /* nobody can take it */
        WT_EQ(k->release(shared), -EPERM);
    }
    /* The last region's critical section: init makes a fresh start. */
    WT_EQ(weft_critsec_destroy(&shared->cs), 0);
    WT_EQ(weft_critsec_init(&shared->cs, 0, WEFT_SHARED), 0);
    WT_EQ(weft_critsec_try_enter(&shared->cs), 0);
    WT_EQ(weft_critsec_leave(&shared->cs), 0);
}

static void *take_and_exit(void *arg)
{
    weft_critsec_enter(arg);
    return NULL;
}

WT_FAULT(thread_that_exits_holding_counts_as_dead)
{
    /* TSan would report the recovery as a double lock: it has no
     * annotation for a mutex repaired after its owner died (its own pthread
     * interceptor calls an internal MutexRepair). Between processes, the
     * other cases, TSan never sees the dead owner. */
    if (wt_sanitizer() == 't')
        return;
    shared = region();
    finish(spawn(take_and_exit, &shared->cs));
    WT_EQ(weft_critsec_enter(&shared->cs), -EOWNERDEAD);
    WT_EQ(weft_critsec_consistent(&shared->cs), 0);
    WT_EQ(weft_critsec_leave(&shared->cs), 0);
}

WT_FAULT(with_releases_a_dead_owners_lock_unrepaired)
{
    kill_and_reap(start_holder(&LOCK));
    int ran = 0;
    WEFT_WITH (&shared->lock) {
        ran = 1;
    }
    WT_EQ(ran, 0);
    WT_EQ(weft_lock_acquire(&shared->lock, 0), -ENOTRECOVERABLE);
}

/* The child takes the lock the parent's wait released, notifies, and dies
 * holding it: the parent's wait ends notified but with the lock taken over
 * from a dead holder. */
static int notify_and_die(void *arg)
{
    (void)arg;
    weft_lock_acquire(&shared->lock, WEFT_FOREVER);
    weft_cond_notify(&shared->not_empty, 1);
    raise(SIGKILL);
    return 1;
}

WT_FAULT(cond_wait_reports_a_dead_lock_holder)
{
    shared = region();
    WT_EQ(weft_lock_acquire(&shared->lock, WEFT_FOREVER), 0);
    pid_t child = wt_spawn(notify_and_die, NULL);
    WT_EQ(weft_cond_wait(&shared->not_empty, 60), -EOWNERDEAD);
    WT_EQ(weft_lock_consistent(&shared->lock), 0);
    WT_EQ(weft_lock_release(&shared->lock), 0);
    WT_EQ(waitpid(child, NULL, 0), child);
}

/* The last arrival of a shared barrier is killed inside its action, holding
 * the barrier's lock. A waiter whose timeout expires meanwhile notices and
 * breaks the barrier, one without a timeout is released broken with it, and
 * the barrier stays broken: its cycle was under way, so its counts cannot
 * be trusted. The child arrives after the waiters; should a waiter's timeout
 * expire first (a slow machine), the round is tried again with a longer one. */
static int signal_then_wait_to_die(void *arg)
{
    (void)arg;
    if (weft_sem_release(&shared->ready, 1) != 0)
        return -1;
    for (;;)
        pause();
}

static int arrive_last(void *arg)
{
    (void)arg;
    shared->flag = weft_barrier_wait(&shared->barrier, WEFT_FOREVER) == WEFT_EBROKEN; /* late */
    weft_sem_release(&shared->ready, 1);
    return 0;
}

static void *wait_barrier_for(void *arg)
{
    return (void *)(intptr_t)weft_barrier_wait(&shared->barrier, *(double *)arg);
}

static bool two_waiting(void *arg)
{
    (void)arg;
    return weft_barrier_n_waiting(&shared->barrier) == 2;
}

WT_FAULT(barrier_breaks_for_good_when_its_last_arrival_dies_in_the_action)
{
    shared = region();
    double forever = WEFT_FOREVER;
    for (double timeout = 0.05;; timeout *= 2) {
        WT_CHECK(timeout < 60);
        WT_EQ(weft_barrier_init(&shared->barrier, 3, signal_then_wait_to_die, NULL, forever,
                                WEFT_SHARED),
              0);
        shared->flag = 0;
        weft_thread_t *timed = spawn(wait_barrier_for, &timeout);
        weft_thread_t *untimed = spawn(wait_barrier_for, &forever);
        wt_wait_until(two_waiting, NULL, 10 * wt_slack());
        pid_t child = wt_spawn(arrive_last, NULL);
        WT_EQ(weft_sem_acquire(&shared->ready, 60), 0);
        if (shared->flag) { /* the timeout came first: no action, nobody died */
            WT_EQ(wt_reap(child, 60), 0);
        } else {
            kill_and_reap(child);
        }
        WT_EQ((intptr_t)finish(timed), WEFT_EBROKEN);
        WT_EQ((intptr_t)finish(untimed), WEFT_EBROKEN);
        if (!shared->flag)
            break;
    }
    WT_EQ(weft_barrier_broken(&shared->barrier), 1);
    WT_EQ(weft_barrier_wait(&shared->barrier, WEFT_FOREVER), WEFT_EBROKEN);
    WT_EQ(weft_barrier_reset(&shared->barrier), WEFT_EBROKEN);
    WT_EQ(weft_barrier_broken(&shared->barrier), 1);
}

/* --- robustness: the dead holder's pid is reused --------------------------- */

/* Fork a child whose pid is `want`, running fn(arg): the kernel gives the
 * next process ns_last_pid + 1, and the file's lock keeps other writers
 * out meanwhile (CRIU's way). 0 if the machine does not let us, or other
 * processes took the pid first every time. */
static pid_t spawn_as(pid_t want, int (*fn)(void *), void *arg)
{
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char last[16];
    int n = snprintf(last, sizeof last, "%d", (int)want - 1);
    pid_t got = 0;
    for (int tries = 0; tries < 50 && got != want; tries++) {
        if (flock(fd, LOCK_EX) < 0)
            break;
        bool set = pwrite(fd, last, (size_t)n, 0) == n;
        got = set ? wt_spawn(fn, arg) : 0;
        flock(fd, LOCK_UN);
        if (!set)
            break;
        if (got != want) {
            kill(got, SIGKILL);
            waitpid(got, NULL, 0);
        }
    }
    close(fd);
    return got == want ? got : 0;
}

static pid_t dead_pid;

/* A newcomer with the dead holder's pid: once let go (ping), it waits to be
 * killed or, given an argument, takes the lock itself (wait_for_lock). */
static int newcomer(void *takes)
{
    if (getpid() != dead_pid)
        return 99;                    /* not the pid wanted: spawn_as kills it */
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed case */
    if (weft_sem_acquire(&shared->ping, WEFT_FOREVER) != 0)
        return 1;
    if (takes)
        return wait_for_lock(NULL);
    for (;;)
        pause();
}

/* Start times (birth ids without pidfs) count clock ticks, and a newcomer
 * started within the dead holder's own tick would pass for it: the
 * fallback's documented blind spot. Wait for the clock to leave it. */
static bool past_holders_tick(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t now = (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)(ts.tv_nsec / (1000000000 / hz));
    return now > (shared->holder_birth & ~WT_TICKS_KIND);
}

/* Kill the holder of a `k` lock, give its pid to a newcomer, and return the
 * newcomer once its birth id differs from the holder's where `k` can see
 * it (a Lock keeps 5 bits of it: retry the rare newcomer that matches
 * them). Skips where the pid cannot be reused, or the kernel's birth ids
 * (start times, before Linux 6.9) cannot tell the two apart. */
static pid_t newcomer_for(const struct kind *k, bool takes)
{
    dead_pid = start_holder(k);
    kill_and_reap(dead_pid);
    if (shared->holder_birth & WT_TICKS_KIND)
        wt_wait_until(past_holders_tick, NULL, 10);
    uint64_t seen = k == &LOCK ? 31 : UINT64_MAX;
    for (int tries = 0; tries < 8; tries++) {
        pid_t pid = spawn_as(dead_pid, newcomer, takes ? &dead_pid : NULL);
        if (!pid)
            wt_skip("cannot give a dead holder's pid to a new process through "
                    "/proc/sys/kernel/ns_last_pid (needs root in the pid namespace)");
        uint64_t id;
        WT_EQ(weft__birth_of(pid, &id), 1);
        if ((id ^ shared->holder_birth) & seen)
            return pid;
        kill_and_reap(pid);
    }
    wt_skip("this kernel's birth ids cannot tell a process from one that had its pid "
            "a moment ago");
}

/* Others wait for the lock while the newcomer lives. */
static void reused_pid_waiter(const struct kind *k)
{
    pid_t pid = newcomer_for(k, false);
    WT_EQ(k->acquire(shared, 10 * wt_slack()), -EOWNERDEAD);
    recover(k);
    kill_and_reap(pid);
}

/* The same without pidfs: start times still tell the newcomer apart. */
WT_FAULT(lock_owner_dead_though_its_pid_lives_on_by_start_time)
{
    wt_birth_by_start_time();
    reused_pid_waiter(&LOCK);
}

WT_FAULT(rlock_owner_dead_though_its_pid_lives_on_by_start_time)
{
    wt_birth_by_start_time();
    reused_pid_waiter(&RLOCK);
}

WT_FAULT(lock_owner_dead_though_its_pid_lives_on)
{
    reused_pid_waiter(&LOCK);
}

WT_FAULT(rlock_owner_dead_though_its_pid_lives_on)
{
    reused_pid_waiter(&RLOCK);
}

WT_FAULT(critsec_owner_dead_though_its_pid_lives_on)
{
    reused_pid_waiter(&CRITSEC);
}

/* The newcomer takes the lock itself: it is not the owner (an RLock must
 * not count it a re-entry), and recovers it. */
static void reused_pid_taker(const struct kind *k)
{
    pid_t pid = newcomer_for(k, true);
    WT_EQ(weft_sem_release(&shared->ping, 1), 0);
    int status = wt_reap(pid, 30 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 42);
    WT_EQ(k->acquire(shared, 0), 0);
    WT_EQ(k->release(shared), 0);
}

WT_FAULT(lock_newcomer_with_the_owners_pid_recovers_it)
{
    reused_pid_taker(&LOCK);
}

WT_FAULT(rlock_newcomer_with_the_owners_pid_recovers_it)
{
    reused_pid_taker(&RLOCK);
}

WT_FAULT(critsec_newcomer_with_the_owners_pid_recovers_it)
{
    reused_pid_taker(&CRITSEC);
}

/* --- bad input ----------------------------------------------------------- */

static void *consistent_elsewhere(void *arg)
{
    return (void *)(intptr_t)weft_lock_consistent(arg);
}

WT_CASE(shared_bad_input)
{
    weft_lock_t lock, plock;
    weft_rlock_t rlock, prlock;
    weft_critsec_t cs;
    weft_cond_t cond;
    weft_sem_t sem;
    weft_event_t event;
    weft_barrier_t barrier;
    weft_waitgroup_t wg;
    weft_once_t once;
    WT_EQ(weft_lock_init(&lock, 2), -EINVAL);
    WT_EQ(weft_rlock_init(&rlock, 2), -EINVAL);
    WT_EQ(weft_critsec_init(&cs, 1, 2), -EINVAL);
    WT_EQ(weft_sem_init(&sem, 1, 2), -EINVAL);
    WT_EQ(weft_sem_init_bounded(&sem, 1, 2), -EINVAL);
    WT_EQ(weft_event_init(&event, 2), -EINVAL);
    WT_EQ(weft_barrier_init(&barrier, 2, NULL, NULL, -1, 2), -EINVAL);
    WT_EQ(weft_waitgroup_init(&wg, 2), -EINVAL);
    WT_EQ(weft_once_init(&once, 2), -EINVAL);
    WT_EQ(weft_once_init(NULL, 0), -EINVAL);
    WT_EQ(weft_cond_init(&cond, NULL, 2), -EINVAL);

    /* A condition and its lock agree on sharing. */
    WT_EQ(weft_lock_init(&lock, WEFT_SHARED), 0);
    WT_EQ(weft_lock_init(&plock, 0), 0);
    WT_EQ(weft_rlock_init(&rlock, WEFT_SHARED), 0);
    WT_EQ(weft_rlock_init(&prlock, 0), 0);
    WT_EQ(weft_cond_init(&cond, &plock, WEFT_SHARED), -EINVAL);
    WT_EQ(weft_cond_init(&cond, &lock, 0), -EINVAL);
    WT_EQ(weft_cond_init_rlock(&cond, &prlock, WEFT_SHARED), -EINVAL);
    WT_EQ(weft_cond_init_rlock(&cond, &rlock, 0), -EINVAL);
    WT_EQ(weft_cond_init(&cond, &lock, WEFT_SHARED), 0);
    WT_EQ(weft_cond_init_rlock(&cond, &rlock, WEFT_SHARED), 0);

    /* consistent: only after -EOWNERDEAD, only by the new owner. */
    WT_EQ(weft_lock_consistent(NULL), -EINVAL);
    WT_EQ(weft_rlock_consistent(NULL), -EINVAL);
    WT_EQ(weft_critsec_consistent(NULL), -EINVAL);
    WT_EQ(weft_lock_consistent(&plock), -EINVAL);
    WT_EQ(weft_lock_consistent(&lock), -EINVAL);
    WT_EQ(weft_rlock_consistent(&rlock), -EPERM); /* not held */
    WT_EQ(weft_rlock_acquire(&rlock, 0), 0);
    WT_EQ(weft_rlock_consistent(&rlock), -EINVAL);
    WT_EQ(weft_rlock_release(&rlock), 0);

    kill_and_reap(start_holder(&LOCK));
    WT_EQ(weft_lock_acquire(&shared->lock, 30), -EOWNERDEAD);
    weft_thread_t *t = spawn(consistent_elsewhere, &shared->lock);
    WT_EQ((intptr_t)finish(t), -EPERM);
    WT_EQ(weft_lock_consistent(&shared->lock), 0);
    WT_EQ(weft_lock_locked(&shared->lock), 1);
    WT_EQ(weft_lock_destroy(&shared->lock), -EBUSY);
    WT_EQ(weft_lock_release(&shared->lock), 0);
    WT_EQ(weft_lock_release(&shared->lock), -EPERM);
    WT_EQ(weft_lock_locked(&shared->lock), 0);
    WT_EQ(weft_lock_destroy(&shared->lock), 0);
}

WT_CASE(shared_sizes_unchanged)
{
    /* The shared Lock fits the same 4 bytes: the flag lives in the word. */
    weft_lock_t lock;
    WT_EQ(sizeof lock, 4);
    WT_EQ(weft_lock_init(&lock, WEFT_SHARED), 0);
    WT_EQ(weft_lock_locked(&lock), 0);
    WT_EQ(weft_lock_acquire(&lock, 0), 0);
    WT_EQ(weft_lock_acquire(&lock, 0), -EAGAIN);
    WT_EQ(weft_lock_locked(&lock), 1);
    WT_EQ(weft_lock_release(&lock), 0);
}

/* A party of a shared barrier is killed asleep in wait(); the others trip
 * that cycle without it, but it never leaves. The next break must drain the
 * cycle's leavers: it gives up on the dead one and wrecks the barrier,
 * rather than hold the barrier's lock for ever (which hung both waiters'
 * timeouts and every later call). */
static int wait_to_be_killed(void *arg)
{
    (void)arg;
    weft_barrier_wait(&shared->barrier, WEFT_FOREVER);
    return 0;
}

static void *meet_then_time_out(void *arg)
{
    (void)arg;
    intptr_t first = weft_barrier_wait(&shared->barrier, WEFT_FOREVER);
    if (first < 0)
        return (void *)first;
    return (void *)(intptr_t)weft_barrier_wait(&shared->barrier, 0.1);
}

static bool one_waiting(void *arg)
{
    (void)arg;
    return weft_barrier_n_waiting(&shared->barrier) == 1;
}

WT_FAULT(barrier_party_killed_asleep_leaves_it_wrecked_not_hung)
{
    shared = region();
    WT_EQ(weft_barrier_init(&shared->barrier, 3, NULL, NULL, WEFT_FOREVER, WEFT_SHARED), 0);
    pid_t child = wt_spawn(wait_to_be_killed, NULL);
    wt_wait_until(one_waiting, NULL, 10 * wt_slack());
    wt_await_child_futex_sleep(child, &shared->barrier.seq, 10 * wt_slack());
    kill_and_reap(child);
    double t0 = wt_now();
    weft_thread_t *a = spawn(meet_then_time_out, NULL);
    weft_thread_t *b = spawn(meet_then_time_out, NULL);
    WT_EQ((intptr_t)finish(a), WEFT_EBROKEN);
    WT_EQ((intptr_t)finish(b), WEFT_EBROKEN);
    WT_CHECK(wt_now() - t0 < 10 * wt_slack()); /* the patience is 2 s */
    WT_EQ(weft_barrier_broken(&shared->barrier), 1);
    WT_EQ(weft_barrier_reset(&shared->barrier), WEFT_EBROKEN);
    WT_EQ(weft_barrier_wait(&shared->barrier, 0.01), WEFT_EBROKEN);
    WT_EQ(weft_barrier_destroy(&shared->barrier), 0);
}
