/*
 * Tests for the lock-order checker: seeded inversions (two locks, in one
 * thread or across threads, and a three-lock cycle) are reported once, with
 * the file and line of both acquisitions; consistent orders, re-entry and
 * read-under-read stay quiet; self-deadlock returns -EDEADLK; a Lock released
 * by another thread and a destroyed lock leave no false history; the
 * environment variable turns it on; out of memory it stops learning and
 * drops its reports, but the locks work on.
 */
#include "base/base.h"
#include "threads.h"
#include <weft/sync.h>

#include <math.h>
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

/* Run by lockdep_turned_on_by_environment in a child with WEFT_LOCKDEP set:
 * succeeds only if the library found the checker as WEFT_LOCKDEP_PROBE
 * says ("on" or "off") at load. */
WT_CASE(lockdep_env_probe)
{
    const char *expect = getenv("WEFT_LOCKDEP_PROBE");
    if (expect)
        WT_EQ(weft_lockdep_enable(false), strcmp(expect, "on") == 0);
}

static void probe_with(const char *value, const char *expect)
{
    fflush(NULL);
    pid_t pid = fork();
    WT_CHECK(pid >= 0);
    if (pid == 0) {
        setenv("WEFT_LOCKDEP", value, 1);
        setenv("WEFT_LOCKDEP_PROBE", expect, 1);
        execl("/proc/self/exe", "test_lockdep", "lockdep_env_probe", (char *)NULL);
        _exit(127);
    }
    int status;
    WT_EQ(waitpid(pid, &status, 0), pid);
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
}

WT_CASE(lockdep_turned_on_by_environment)
{
    probe_with("1", "on");
    probe_with("0", "off");
    probe_with("", "off");
}

/* --- acquires without a site, every kind born again ---------------------- */

/* The functions behind the acquire macros (for C++, or through a pointer)
 * take the locks as the macros do, checked, with the site unknown. */
WT_CASE(acquires_without_a_site_are_checked)
{
    checker_on();
    weft_lock_t l = WEFT_LOCK_INIT;
    weft_rlock_t r = WEFT_RLOCK_INIT;
    weft_critsec_t cs = WEFT_CRITSEC_INIT;
    weft_rwlock_t rw = WEFT_RWLOCK_INIT;
    weft_cond_t c = WEFT_COND_INIT;
    WT_EQ((weft_lock_acquire)(&l, WEFT_FOREVER), 0);
    WT_EQ((weft_lock_acquire)(&l, WEFT_FOREVER), -EDEADLK);
    WT_EQ(atomic_load(&reports), 1);
    WT_CHECK(strstr(last, "taken at an unknown site"));
    WT_EQ((weft_rlock_acquire)(&r, WEFT_FOREVER), 0);
    WT_EQ(weft_rlock_is_owned(&r), 1);
    WT_EQ((weft_critsec_enter)(&cs), 0);
    WT_EQ((weft_critsec_try_enter)(&cs), 0);
    WT_EQ((weft_rwlock_acquire_read)(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_readers(&rw), 1);
    WT_EQ(weft_rwlock_release_read(&rw), 0);
    WT_EQ((weft_rwlock_acquire_write)(&rw, WEFT_FOREVER), 0);
    WT_EQ(weft_rwlock_readers(&rw), -1);
    WT_EQ((weft_cond_acquire)(&c, WEFT_FOREVER), 0);
    WT_EQ(weft_cond_release(&c), 0);
    WT_EQ(weft_rwlock_release_write(&rw), 0);
    WT_EQ(weft_critsec_leave(&cs), 0);
    WT_EQ(weft_critsec_leave(&cs), 0);
    WT_EQ(weft_rlock_release(&r), 0);
    WT_EQ(weft_lock_release(&l), 0);
    /* Taken the other way round: one inversion, both ends unknown. */
    WT_EQ((weft_rlock_acquire)(&r, WEFT_FOREVER), 0);
    WT_EQ((weft_lock_acquire)(&l, WEFT_FOREVER), 0);
    WT_EQ(atomic_load(&reports), 2);
    WT_CHECK(strstr(last, "lock order inversion") && strstr(last, "an unknown site"));
    WT_EQ(weft_lock_release(&l), 0);
    WT_EQ(weft_rlock_release(&r), 0);
    WT_EQ(weft_lock_acquire(&l, NAN), -EINVAL); /* checked input, nothing held */
    WT_EQ(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&l), 0);
}

/* init and destroy start every kind afresh, as destroyed_lock_leaves_no_history
 * shows for Lock: `a` then `x`, x born again, then `x` then `a` is no
 * inversion. */
WT_CASE(every_kind_born_again_has_no_history)
{
    checker_on();
    weft_lock_t a = WEFT_LOCK_INIT;
    weft_rlock_t r;
    weft_critsec_t cs;
    weft_rwlock_t rw;
    WT_EQ(weft_rlock_init(&r, 0), 0);
    WT_EQ(weft_critsec_init(&cs, 0, 0), 0);
    WT_EQ(weft_rwlock_init(&rw, 0), 0);
    for (int round = 0; round < 2; round++) {
        WEFT_WITH (&a) {
            if (round == 0) {
                WEFT_WITH (&r) {
                }
                WEFT_WITH (&cs) {
                }
                WEFT_WITH_WRITE (&rw) {
                }
            }
        }
        if (round == 0) {
            WT_EQ(weft_rlock_destroy(&r), 0);
            WT_EQ(weft_rlock_init(&r, 0), 0);
            WT_EQ(weft_critsec_destroy(&cs), 0);
            WT_EQ(weft_critsec_init(&cs, 0, 0), 0);
            WT_EQ(weft_rwlock_destroy(&rw), 0);
            WT_EQ(weft_rwlock_init(&rw, 0), 0);
        }
    }
    WEFT_WITH (&r) {
        WEFT_WITH (&cs) {
            WEFT_WITH_READ (&rw) {
                WEFT_WITH (&a) {
                }
            }
        }
    }
    WT_EQ(atomic_load(&reports), 0);
    WT_EQ(weft_lockdep_enable(true), true); /* on already: keeps what it knows */
    WEFT_WITH (&cs) {
        WEFT_WITH (&r) {
        }
    }
    WT_EQ(atomic_load(&reports), 1);
}

/* --- a bigger graph --------------------------------------------------------- */

enum { MANY = 700 };

/* Past the first index table (512 locks): every lock is still found, and
 * a retired one stays retired. */
WT_CASE(many_locks_keep_their_history)
{
    checker_on();
    weft_lock_t *locks = calloc(MANY, sizeof *locks);
    WT_CHECK(locks);
    WT_EQ(weft_lock_acquire(&locks[0], WEFT_FOREVER), 0);
    for (int i = 1; i < MANY; i++) {
        WT_EQ(weft_lock_acquire(&locks[i], WEFT_FOREVER), 0);
        WT_EQ(weft_lock_release(&locks[i]), 0);
        if (i % 100 == 0) { /* retired before the index grows */
            WT_EQ(weft_lock_destroy(&locks[i]), 0);
            WT_EQ(weft_lock_init(&locks[i], 0), 0);
        }
    }
    WT_EQ(weft_lock_release(&locks[0]), 0);
    WT_EQ(atomic_load(&reports), 0);
    for (int i = 1; i < MANY; i++) {
        WT_EQ(weft_lock_acquire(&locks[i], WEFT_FOREVER), 0);
        WT_EQ(weft_lock_acquire(&locks[0], WEFT_FOREVER), 0);
        WT_EQ(weft_lock_release(&locks[0]), 0);
        WT_EQ(weft_lock_release(&locks[i]), 0);
        WT_EQ(atomic_load(&reports), i - (i / 100));
    }
    free(locks);
}

/* The search for a way back visits each lock once: from `a`, c and b both
 * lead to the dead end y, and only d leads on, to x. */
WT_CASE(path_search_goes_round_dead_ends)
{
    checker_on();
    weft_lock_t a = WEFT_LOCK_INIT, b = WEFT_LOCK_INIT, c = WEFT_LOCK_INIT, d = WEFT_LOCK_INIT,
                x = WEFT_LOCK_INIT, y = WEFT_LOCK_INIT;
    weft_lock_t *pairs[][2] = {{&a, &d}, {&d, &x}, {&b, &y}, {&c, &y}, {&a, &b}, {&a, &c}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        WEFT_WITH (pairs[i][0]) {
            WEFT_WITH (pairs[i][1]) {
            }
        }
    }
    WT_EQ(atomic_load(&reports), 0);
    WEFT_WITH (&x) {
        WEFT_WITH (&a) {
        }
    }
    WT_EQ(atomic_load(&reports), 1);
}

/* A report whose sites are longer than the report's buffer is cut short,
 * never overrun. */
WT_CASE(report_with_huge_sites_is_cut_short)
{
    checker_on();
    enum { LONG = 20000 };
    char *name = malloc(LONG);
    WT_CHECK(name);
    memset(name, 'f', LONG - 1);
    name[LONG - 1] = 0;
    weft_site_t site = {name, 1, "f"};
    weft_lock_t a = WEFT_LOCK_INIT, b = WEFT_LOCK_INIT;
    for (int i = 0; i < 2; i++) {
        weft_lock_t *first = i ? &b : &a, *second = i ? &a : &b;
        WT_EQ(weft_lock_acquire_at(first, WEFT_FOREVER, &site), 0);
        WT_EQ(weft_lock_acquire_at(second, WEFT_FOREVER, &site), 0);
        WT_EQ(weft_lock_release(second), 0);
        WT_EQ(weft_lock_release(first), 0);
    }
    WT_EQ(atomic_load(&reports), 1);
    WT_CHECK(strlen(last) < sizeof last && strstr(last, "lock order inversion"));
    free(name);
}

/* A lock taken before the checker was on, released by another thread
 * than the one whose stack is listed first: nothing to drop, no harm. */
static void *take_and_keep(void *arg)
{
    WT_EQ(weft_lock_acquire(arg, WEFT_FOREVER), 0);
    return NULL;
}

WT_CASE(release_of_a_lock_nobody_is_known_to_hold)
{
    weft_lock_t before = WEFT_LOCK_INIT, kept = WEFT_LOCK_INIT, mine = WEFT_LOCK_INIT;
    WT_EQ(weft_lock_acquire(&before, WEFT_FOREVER), 0);
    checker_on();
    WT_EQ(weft_lock_acquire(&mine, WEFT_FOREVER), 0);
    finish(spawn(take_and_keep, &kept)); /* listed, and gone, holding it */
    WT_EQ(weft_lock_release(&before), 0);
    WT_EQ(weft_lock_release(&kept), 0);
    WT_EQ(weft_lock_release(&mine), 0);
    WT_EQ(weft_lock_acquire(&kept, WEFT_FOREVER), 0); /* no self-deadlock */
    WT_EQ(weft_lock_release(&kept), 0);
    WT_EQ(atomic_load(&reports), 0);
}

/* --- out of memory ------------------------------------------------------- */

/* Take `first` then `second`, then the other way round. */
static void both_orders(weft_lock_t *first, weft_lock_t *second)
{
    for (int i = 0; i < 2; i++) {
        WT_EQ(weft_lock_acquire(i ? second : first, WEFT_FOREVER), 0);
        WT_EQ(weft_lock_acquire(i ? first : second, WEFT_FOREVER), 0);
        WT_EQ(weft_lock_release(i ? first : second), 0);
        WT_EQ(weft_lock_release(i ? second : first), 0);
    }
}

/* Every allocation of the checker failing in turn: the graph's arrays, its
 * index, its edges, a report. The locks work on, the checker learns
 * nothing it could not store, and a dropped report reaches nobody. */
WT_FAULT(checker_out_of_memory_learns_nothing_and_locks_work)
{
    checker_on();
    weft_lock_t a = WEFT_LOCK_INIT, b = WEFT_LOCK_INIT;
    weft__sys.realloc = wt_no_realloc; /* no node */
    both_orders(&a, &b);
    weft__sys_reset();
    weft__sys.calloc = wt_no_calloc; /* nodes, but no index */
    both_orders(&a, &b);
    weft__sys_reset();
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), 0); /* nodes and index */
    weft__sys.realloc = wt_no_realloc;             /* no edge */
    WT_EQ(weft_lock_acquire(&b, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_release(&b), 0);
    WT_EQ(weft_lock_release(&a), 0);
    both_orders(&b, &a);
    weft__sys_reset();
    WT_EQ(atomic_load(&reports), 0);
    /* Self-deadlock needs no memory to be found; its report does. */
    weft__sys.malloc = wt_no_malloc;
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), 0);
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), -EDEADLK);
    weft__sys_reset();
    WT_EQ(atomic_load(&reports), 0);
    WT_EQ(weft_lock_acquire(&a, WEFT_FOREVER), -EDEADLK);
    WT_EQ(atomic_load(&reports), 1);
    WT_EQ(weft_lock_release(&a), 0);
    /* With memory back, it learns again. */
    both_orders(&a, &b);
    WT_EQ(atomic_load(&reports), 2);
}
