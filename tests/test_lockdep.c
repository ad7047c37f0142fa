/*
 * Tests for the lock-order checker: seeded inversions (two locks, in one
 * thread or across threads, and a three-lock cycle) are reported once, with
 * the file and line of both acquisitions; consistent orders, re-entry and
 * read-under-read stay quiet; self-deadlock returns -EDEADLK; a Lock released
 * by another thread and a destroyed lock leave no false history; the
 * environment variable turns it on.
 */
#include "threads.h"
#include <weft/sync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic int reports;
static char last[8192];

static void collect(const char *report, void *arg)
{
    (void)arg;
    atomic_fetch_add(&reports, 1);
    snprintf(last, sizeof last, "%s", report);
}

static void checker_on(void)
{
    WT_EQ(weft_lockdep_enable(true), false);
    weft_lockdep_set_reporter(collect, NULL);
}

/* Does the last report name this file at `line`? */
static bool names_line(int line)
{
    char needle[64];
    snprintf(needle, sizeof needle, "test_lockdep.c:%d ", line);
    return strstr(last, needle) != NULL;
}

WT_CASE(inversion_is_reported_once_with_both_sites)
{
    checker_on();
    weft_lock_t a = WEFT_LOCK_INIT, b = WEFT_LOCK_INIT;
    int line_a = __LINE__ + 1;
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), 0);
    int line_b = __LINE__ + 1;
    WT_EQ(weft_lock_acquire(&b, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&b), 0);
    WT_EQ(weft_lock_release(&a), 0);
    WT_EQ(atomic_load(&reports), 0);

    /* The opposite order, in the same thread: no deadlock can happen here,
     * but two threads doing these two things could. */
    int line_b2 = __LINE__ + 1;
    WT_EQ(weft_lock_acquire(&b, WEFT_FOREVER), 0);
    int line_a2 = __LINE__ + 1;
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&reports), 1);
    WT_CHECK(strstr(last, "lock order inversion"));
    WT_CHECK(names_line(line_b2) && names_line(line_a2)); /* the new order */
    WT_CHECK(names_line(line_a) && names_line(line_b));   /* the old one */
    WT_CHECK(strstr(last, "#0 "));                        /* backtraces */
    WT_EQ(weft_lock_release(&a), 0);
    WT_EQ(weft_lock_release(&b), 0);

    /* Once per pair. */
    WT_EQ(weft_lock_acquire(&b, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&a), 0);
    WT_EQ(weft_lock_release(&b), 0);
    WT_EQ(atomic_load(&reports), 1);
}

struct pair {
    weft_rlock_t *first, *second;
};

static void *take_in_order(void *arg)
{
    struct pair *p = arg;
    WT_EQ(weft_rlock_acquire(p->first, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_acquire(p->second, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_release(p->second), 0);
    WT_EQ(weft_rlock_release(p->first), 0);
    return NULL;
}

WT_CASE(inversion_across_threads_is_reported)
{
    checker_on();
    weft_rlock_t a = WEFT_RLOCK_INIT, b = WEFT_RLOCK_INIT;
    struct pair ab = {&a, &b}, ba = {&b, &a};
    finish(spawn(take_in_order, &ab));
    WT_EQ(atomic_load(&reports), 0);
    finish(spawn(take_in_order, &ba)); /* one after the other: no deadlock */
    WT_EQ(atomic_load(&reports), 1);
}

WT_CASE(three_lock_cycle_is_reported)
{
    checker_on();
    weft_critsec_t a = WEFT_CRITSEC_INIT, b = WEFT_CRITSEC_INIT, c = WEFT_CRITSEC_INIT;
    weft_critsec_t *order[3][2] = {{&a, &b}, {&b, &c}, {&c, &a}};
    for (int i = 0; i < 3; i++) {
        WEFT_WITH (order[i][0]) {
            WEFT_WITH (order[i][1]) {
                WT_EQ(atomic_load(&reports), i == 2);
            }
        }
    }
    WT_EQ(atomic_load(&reports), 1);
}

WT_CASE(with_blocks_are_named_by_their_own_lines)
{
    checker_on();
    weft_rwlock_t a = WEFT_RWLOCK_INIT, b = WEFT_RWLOCK_INIT;
    int line_a = __LINE__ + 1;
    WEFT_WITH_WRITE (&a) {
        WEFT_WITH_READ (&b) {
        }
    }
    int line_b = __LINE__ + 1;
    WEFT_WITH_READ (&b) {
        WEFT_WITH_WRITE (&a) {
        }
    }
    WT_EQ(atomic_load(&reports), 1);
    WT_CHECK(names_line(line_a) && names_line(line_a + 1));
    WT_CHECK(names_line(line_b) && names_line(line_b + 1));
}

struct orderly {
    weft_lock_t a, b;
    weft_rlock_t r;
    weft_rwlock_t rw;
};

static void *consistent_order(void *arg)
{
    struct orderly *o = arg;
    for (int i = 0; i < 1000; i++) {
        WEFT_WITH (&o->r) {
            WEFT_WITH (&o->r) { /* re-entry adds nothing */
                WEFT_WITH (&o->a) {
                    WEFT_WITH_READ (&o->rw) {
                        WEFT_WITH_READ (&o->rw) { /* read under read */
                            WEFT_WITH (&o->b) {
                            }
                        }
                    }
                }
            }
        }
        /* The other order, but by trying: a try cannot deadlock. */
        if (weft_lock_acquire(&o->b, 0) == 0) {
            if (weft_lock_acquire(&o->a, 0) == 0)
                WT_EQ(weft_lock_release(&o->a), 0);
            WT_EQ(weft_lock_release(&o->b), 0);
        }
    }
    return NULL;
}

WT_CASE(consistent_order_stays_quiet)
{
    checker_on();
    struct orderly o = {WEFT_LOCK_INIT, WEFT_LOCK_INIT, WEFT_RLOCK_INIT, WEFT_RWLOCK_INIT};
    weft_thread_t *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn(consistent_order, &o);
    for (int i = 0; i < 4; i++)
        finish(t[i]);
    WT_EQ(atomic_load(&reports), 0);
}

WT_CASE(self_deadlock_returns_edeadlk)
{
    checker_on();
    weft_lock_t lock = WEFT_LOCK_INIT;
    WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_acquire(&lock, 0), -EAGAIN); /* a try is no deadlock */
    WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), -EDEADLK);
    WT_EQ(atomic_load(&reports), 1);
    WT_CHECK(strstr(last, "self-deadlock"));
    WT_EQ(weft_lock_release(&lock), 0);

    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), -EDEADLK);
    WT_EQ(weft_rwlock_acquire_read(&rw, WEFT_FOREVER), -EDEADLK);
    WT_EQ(weft_rwlock_release_write(&rw), 0);
    WT_EQ(weft_rwlock_acquire_read(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_acquire_write(&rw, WEFT_FOREVER), -EDEADLK);
    WT_EQ(weft_rwlock_acquire_read(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ(atomic_load(&reports), 4);

    weft_rlock_t r = WEFT_RLOCK_INIT;
    WT_EQ(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_release(&r), 0);
    WT_EQ(weft_rlock_release(&r), 0);
    WT_EQ(atomic_load(&reports), 4);
}

static void *release_elsewhere(void *arg)
{
    return (void *)(intptr_t)weft_lock_release(arg);
}

WT_CASE(lock_released_by_another_thread_is_forgotten)
{
    checker_on();
    weft_lock_t lock = WEFT_LOCK_INIT;
    WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0);
    WT_EQ((intptr_t)finish(spawn(release_elsewhere, &lock)), 0);
    WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0); /* not a self-deadlock */
    WT_EQ(weft_lock_release(&lock), 0);
    WT_EQ(atomic_load(&reports), 0);
}

WT_CASE(destroyed_lock_leaves_no_history)
{
    checker_on();
    weft_lock_t a, b;
    WT_EQ(weft_lock_init(&a, 0), 0);
    WT_EQ(weft_lock_init(&b, 0), 0);
    WEFT_WITH (&a) {
        WEFT_WITH (&b) {
        }
    }
    WT_EQ(weft_lock_destroy(&b), 0);
    WT_EQ(weft_lock_init(&b, 0), 0); /* a new lock at the same address */
    WEFT_WITH (&b) {
        WEFT_WITH (&a) {
        }
    }
    WT_EQ(atomic_load(&reports), 0);
}

WT_CASE(turning_it_off_and_on_forgets)
{
    checker_on();
    weft_lock_t a = WEFT_LOCK_INIT, b = WEFT_LOCK_INIT;
    WEFT_WITH (&a) {
        WEFT_WITH (&b) {
        }
    }
    WT_EQ(weft_lockdep_enable(false), true);
    WEFT_WITH (&b) { /* unchecked while off */
        WEFT_WITH (&a) {
        }
    }
    WT_EQ(weft_lockdep_enable(true), false);
    WEFT_WITH (&b) {
        WEFT_WITH (&a) {
        }
    }
    WT_EQ(atomic_load(&reports), 0);
}

/* Run by lockdep_turned_on_by_environment in a child with WEFT_LOCKDEP=1:
 * succeeds only if the library found it on at load. */
WT_CASE(lockdep_env_probe)
{
    if (getenv("WEFT_LOCKDEP_PROBE"))
        WT_EQ(weft_lockdep_enable(false), true);
}

WT_CASE(lockdep_turned_on_by_environment)
{
    fflush(NULL);
    pid_t pid = fork();
    WT_CHECK(pid >= 0);
    if (pid == 0) {
        setenv("WEFT_LOCKDEP", "1", 1);
        setenv("WEFT_LOCKDEP_PROBE", "1", 1);
        execl("/proc/self/exe", "test_lockdep", "lockdep_env_probe", (char *)NULL);
        _exit(127);
    }
    int status;
    WT_EQ(waitpid(pid, &status, 0), pid);
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
}
