/*
 * Tests for weft/thread.h: life cycle, join, names, ids, daemon, the module
 * functions, exit-time joining, fork, fault injection and bad input. The
 * behaviours follow CPython's Lib/test/test_threading.py where Python has them.
 */
#include "base/base.h"
#include "wt.h"
#include <weft/thread.h>

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *return_arg(void *arg)
{
    return arg;
}

static void *wait_gate(void *arg)
{
    wt_gate_wait(arg);
    return arg;
}

/* Start a thread that waits on `gate`. */
static weft_thread_t *start_gated(wt_gate *gate, const weft_thread_opts_t *opts)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, wait_gate, gate, opts), 0);
    WT_EQ(weft_thread_start(t), 0);
    return t;
}

static void join_free(weft_thread_t *t)
{
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_free(t), 0);
}

WT_CASE(target_lifecycle)
{
    weft_thread_t *t;
    wt_gate gate = WT_GATE_INIT;
    WT_EQ(weft_thread_new(&t, wait_gate, &gate, NULL), 0);
    WT_EQ(weft_thread_is_alive(t), 0);
    WT_EQ(weft_thread_ident(t), 0);
    WT_EQ(weft_thread_native_id(t), 0);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_is_alive(t), 1);
    WT_CHECK(weft_thread_ident(t) != 0);
    wt_gate_open(&gate);
    void *result = NULL;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
    WT_CHECK(result == &gate);
    WT_EQ(weft_thread_is_alive(t), 0);
    WT_EQ(weft_thread_free(t), 0);
}

/* The subclass form: the thread's state lives in the thread. */
struct counter_thread {
    int start, end;
    int seen;
};

static void *counter_run(weft_thread_t *self)
{
    struct counter_thread *me = weft_thread_data(self);
    WT_CHECK(weft_thread_current() == self);
    while (me->start < me->end) {
        me->start++;
        me->seen++;
    }
    return me;
}

WT_CASE(subclass_form_carries_state)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new_run(&t, counter_run, sizeof(struct counter_thread), NULL), 0);
    struct counter_thread *me = weft_thread_data(t);
    WT_CHECK(me != NULL);
    WT_CHECK(((uintptr_t)me % _Alignof(max_align_t)) == 0);
    WT_EQ(me->start + me->end + me->seen, 0); /* zeroed */
    *me = (struct counter_thread){3, 10, 0};
    WT_EQ(weft_thread_start(t), 0);
    void *result;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
    WT_CHECK(result == me);
    WT_EQ(me->seen, 7);
    WT_EQ(weft_thread_free(t), 0);

    weft_thread_t *plain;
    WT_EQ(weft_thread_new(&plain, return_arg, NULL, NULL), 0);
    WT_CHECK(weft_thread_data(plain) == NULL);
    WT_EQ(weft_thread_free(plain), 0); /* never started: released at once */
}

WT_CASE(start_twice_is_an_error)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_start(t), -EPERM);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_start(t), -EPERM); /* finished threads cannot restart either */
    WT_EQ(weft_thread_free(t), 0);
}

WT_CASE(join_before_start_is_an_error)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), -EPERM);
    WT_EQ(weft_thread_join(t, 0, NULL), -EPERM);
    WT_EQ(weft_thread_free(t), 0);
}

WT_CASE(start_new_creates_and_starts_in_one_call)
{
    weft_thread_t *t = NULL;
    WT_EQ(weft_thread_start_new(&t, return_arg, (void *)"ran", NULL), 0);
    void *result;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
    WT_CHECK(strcmp(result, "ran") == 0);
    WT_EQ(weft_thread_start(t), -EPERM); /* it was started */
    WT_EQ(weft_thread_free(t), 0);
    WT_EQ(weft_thread_start_new(NULL, return_arg, NULL, NULL), -EINVAL);
    WT_EQ(weft_thread_start_new(&t, NULL, NULL, NULL), -EINVAL);
}

static void *join_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_thread_join(weft_thread_current(), WEFT_FOREVER, NULL);
}

/* Run fn in a thread of its own to the end; what it returned. */
static intptr_t run_in_thread(weft_thread_fn fn)
{
    weft_thread_t *t;
    void *result;
    WT_EQ(weft_thread_start_new(&t, fn, NULL, NULL), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
    WT_EQ(weft_thread_free(t), 0);
    return (intptr_t)result;
}

WT_CASE(join_self_is_deadlock)
{
    WT_EQ(run_in_thread(join_self), -EDEADLK);
    /* The main thread joining itself, before and after it has asked for its
     * own handle: CPython's test_joining_current_thread. */
    WT_EQ(weft_thread_join(weft_thread_main(), 0, NULL), -EDEADLK);
    WT_CHECK(weft_thread_current() == weft_thread_main());
    WT_EQ(weft_thread_join(weft_thread_main(), WEFT_FOREVER, NULL), -EDEADLK);
}

static void *join_main(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)weft_thread_join(weft_thread_main(), 0, NULL);
}

WT_CASE(main_thread_cannot_be_joined_from_another)
{
    WT_EQ(run_in_thread(join_main), -EPERM); /* not a weft-made thread */
}

WT_CASE(join_timeout_never_early)
{
    wt_gate gate = WT_GATE_INIT;
    weft_thread_t *t = start_gated(&gate, NULL);
    const double timeouts[] = {0.001, 0.02, 0.05};
    for (int i = 0; i < 3; i++) {
        double t0 = wt_now();
        WT_EQ(weft_thread_join(t, timeouts[i], NULL), -ETIMEDOUT);
        double dt = wt_now() - t0;
        WT_CHECK(dt >= timeouts[i]);
        WT_CHECK(dt < timeouts[i] + 0.5 * wt_slack());
        WT_EQ(weft_thread_is_alive(t), 1);
    }
    WT_EQ(weft_thread_join(t, 0, NULL), -EAGAIN); /* timeout 0: try once */
    wt_gate_open(&gate);
    void *result;
    WT_EQ(weft_thread_join(t, 10 * wt_slack(), &result), 0);
    WT_CHECK(result == &gate);
    WT_EQ(weft_thread_free(t), 0);
}

WT_CASE(join_again_returns_same_result)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, return_arg, (void *)0x1234, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    void *r1 = NULL, *r2 = NULL, *r3 = NULL;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &r1), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &r2), 0);
    WT_EQ(weft_thread_join(t, 0, &r3), 0);
    WT_CHECK(r1 == (void *)0x1234 && r2 == r1 && r3 == r1);
    WT_EQ(weft_thread_free(t), 0);
}

struct multi_join {
    weft_thread_t *target;
    double timeout;
};

static void *joiner(void *arg)
{
    struct multi_join *mj = arg;
    void *result = NULL;
    int rc = weft_thread_join(mj->target, mj->timeout, &result);
    return rc == 0 ? result : NULL;
}

WT_CASE(many_threads_join_one)
{
    /* As test_threading's test_join_from_multiple_threads: every joiner,
     * with or without a timeout, sees the same result. */
    for (int round = 0; round < 20; round++) {
        wt_gate gate = WT_GATE_INIT;
        weft_thread_t *target = start_gated(&gate, NULL);
        weft_thread_t *joiners[6];
        struct multi_join mj[6];
        for (int i = 0; i < 6; i++) {
            mj[i] = (struct multi_join){target, i % 2 ? WEFT_FOREVER : 60.0};
            WT_EQ(weft_thread_new(&joiners[i], joiner, &mj[i], NULL), 0);
            WT_EQ(weft_thread_start(joiners[i]), 0);
        }
        wt_gate_open(&gate);
        for (int i = 0; i < 6; i++) {
            void *result;
            WT_EQ(weft_thread_join(joiners[i], WEFT_FOREVER, &result), 0);
            WT_CHECK(result == &gate);
            WT_EQ(weft_thread_free(joiners[i]), 0);
        }
        join_free(target);
    }
}

static bool read_comm(long tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

static void *report_comm(void *arg)
{
    char *buf = arg;
    read_comm(weft_thread_get_native_id(), buf, 32);
    return NULL;
}

WT_CASE(names_default_custom_and_os_visible)
{
    weft_thread_t *a, *b;
    WT_EQ(weft_thread_new(&a, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_new(&b, return_arg, NULL, NULL), 0);
    unsigned na, nb;
    WT_EQ(sscanf(weft_thread_name(a), "Thread-%u", &na), 1);
    WT_EQ(sscanf(weft_thread_name(b), "Thread-%u", &nb), 1);
    WT_CHECK(nb > na);
    WT_EQ(weft_thread_free(a), 0);
    WT_EQ(weft_thread_free(b), 0);

    /* The OS sees 15 bytes, weft keeps the whole name. */
    char comm[32] = "";
    weft_thread_opts_t opts = {.name = "a-rather-long-thread-name"};
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, report_comm, comm, &opts), 0);
    WT_CHECK(strcmp(weft_thread_name(t), "a-rather-long-thread-name") == 0);
    WT_EQ(weft_thread_start(t), 0);
    join_free(t);
    WT_CHECK(strcmp(comm, "a-rather-long-t") == 0);

    /* Never cut inside a UTF-8 character: "aпоток-" is 12 bytes and 'ж' is
     * 2, so the 15-byte limit falls inside the second 'ж'. */
    opts.name = "aпоток-жжжжж";
    WT_EQ(weft_thread_new(&t, report_comm, comm, &opts), 0);
    WT_EQ(weft_thread_start(t), 0);
    join_free(t);
    WT_CHECK(strcmp(comm, "aпоток-ж") == 0);
}

struct handshake {
    wt_gate started, release;
};

static void *signal_then_wait(void *arg)
{
    struct handshake *h = arg;
    wt_gate_open(&h->started);
    wt_gate_wait(&h->release);
    return NULL;
}

WT_CASE(rename_running_thread)
{
    struct handshake h = {WT_GATE_INIT, WT_GATE_INIT};
    weft_thread_opts_t opts = {.name = "before"};
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, signal_then_wait, &h, &opts), 0);
    WT_EQ(weft_thread_start(t), 0);
    /* The thread sets its OS name before it calls its function. */
    wt_gate_wait(&h.started);
    const char *old = weft_thread_name(t);
    long tid = weft_thread_native_id(t);
    char comm[32];
    WT_CHECK(read_comm(tid, comm, sizeof comm) && strcmp(comm, "before") == 0);
    WT_EQ(weft_thread_set_name(t, "after-the-rename-is-long"), 0);
    WT_CHECK(strcmp(weft_thread_name(t), "after-the-rename-is-long") == 0);
    WT_CHECK(strcmp(old, "before") == 0); /* the old pointer stays valid */
    WT_CHECK(read_comm(tid, comm, sizeof comm) && strcmp(comm, "after-the-rena") != 0);
    WT_CHECK(strcmp(comm, "after-the-renam") == 0);
    wt_gate_open(&h.release);
    join_free(t);

    /* Renaming before start and after the end only changes weft's name. */
    WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_set_name(t, "renamed"), 0);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_set_name(t, "finished"), 0);
    WT_CHECK(strcmp(weft_thread_name(t), "finished") == 0);
    WT_EQ(weft_thread_free(t), 0);
}

/* A thread that renames itself shows the new name to the OS too. */
static void *rename_self(void *arg)
{
    char *comm = arg;
    WT_EQ(weft_thread_set_name(weft_thread_current(), "renamed-by-itself"), 0);
    read_comm(weft_thread_get_native_id(), comm, 32);
    return NULL;
}

WT_CASE(a_thread_renames_itself)
{
    char comm[32] = "";
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, rename_self, comm, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    join_free(t);
    WT_CHECK(strcmp(comm, "renamed-by-itse") == 0);
}

struct ids {
    unsigned long ident;
    long native_id;
    wt_gate *gate;
};

static void *record_ids(void *arg)
{
    struct ids *ids = arg;
    ids->ident = weft_thread_get_ident();
    ids->native_id = weft_thread_get_native_id();
    WT_CHECK(weft_thread_ident(weft_thread_current()) == ids->ident);
    wt_gate_wait(ids->gate);
    return NULL;
}

WT_CASE(idents_unique_and_consistent)
{
    enum { N = 16 };
    wt_gate gate = WT_GATE_INIT;
    weft_thread_t *t[N];
    struct ids ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = (struct ids){0, 0, &gate};
        WT_EQ(weft_thread_new(&t[i], record_ids, &ids[i], NULL), 0);
        WT_EQ(weft_thread_start(t[i]), 0);
        /* native_id right after start waits for the thread to publish it. */
        WT_CHECK(weft_thread_native_id(t[i]) > 0);
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++) {
            WT_CHECK(weft_thread_ident(t[i]) != weft_thread_ident(t[j]));
            WT_CHECK(weft_thread_native_id(t[i]) != weft_thread_native_id(t[j]));
        }
        WT_CHECK(weft_thread_native_id(t[i]) != weft_thread_get_native_id());
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%ld", weft_thread_native_id(t[i]));
        WT_EQ(access(path, F_OK), 0);
    }
    wt_gate_open(&gate);
    for (int i = 0; i < N; i++) {
        WT_EQ(weft_thread_join(t[i], WEFT_FOREVER, NULL), 0);
        /* What the thread saw of itself is what others see of it. */
        WT_CHECK(ids[i].ident == weft_thread_ident(t[i]));
        WT_EQ(ids[i].native_id, weft_thread_native_id(t[i]));
        WT_EQ(weft_thread_free(t[i]), 0);
    }
    WT_EQ(weft_thread_get_native_id(), getpid()); /* the main thread */
    WT_EQ(weft_thread_ident(weft_thread_main()), weft_thread_get_ident());
    WT_EQ(weft_thread_native_id(weft_thread_main()), getpid());
}

static void *make_child_and_report_daemon(void *arg)
{
    (void)arg;
    weft_thread_t *child;
    WT_EQ(weft_thread_new(&child, return_arg, NULL, NULL), 0);
    intptr_t daemon = weft_thread_daemon(child);
    WT_EQ(weft_thread_free(child), 0);
    return (void *)daemon;
}

static void *foreign_make_child(void *arg)
{
    return make_child_and_report_daemon(arg);
}

WT_CASE(daemon_inherited_and_fixed_at_start)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, make_child_and_report_daemon, NULL, NULL), 0);
    WT_EQ(weft_thread_daemon(t), 0); /* the main thread is not a daemon */
    WT_EQ(weft_thread_set_daemon(t, true), 0);
    WT_EQ(weft_thread_daemon(t), 1);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_set_daemon(t, false), -EPERM);
    void *child_daemon;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &child_daemon), 0);
    WT_EQ((intptr_t)child_daemon, 1); /* made by a daemon: a daemon */
    WT_EQ(weft_thread_set_daemon(t, false), -EPERM);
    WT_EQ(weft_thread_free(t), 0);

    weft_thread_opts_t opts = {.daemon = WEFT_DAEMON_YES};
    WT_EQ(weft_thread_new(&t, return_arg, NULL, &opts), 0);
    WT_EQ(weft_thread_daemon(t), 1);
    WT_EQ(weft_thread_free(t), 0);
    opts.daemon = WEFT_DAEMON_NO;
    WT_EQ(weft_thread_new(&t, return_arg, NULL, &opts), 0);
    WT_EQ(weft_thread_daemon(t), 0);
    WT_EQ(weft_thread_free(t), 0);

    /* A thread weft did not create counts as a daemon (a Python dummy). */
    pthread_t pt;
    WT_EQ(pthread_create(&pt, NULL, foreign_make_child, NULL), 0);
    pthread_join(pt, &child_daemon);
    WT_EQ((intptr_t)child_daemon, 1);
}

struct foreign_report {
    weft_thread_t *self;
    char name[32];
    int daemon, alive, join_rc, same_twice;
    wt_gate ready, hold;
};

static void *foreign_current(void *arg)
{
    struct foreign_report *r = arg;
    r->self = weft_thread_current();
    snprintf(r->name, sizeof r->name, "%s", weft_thread_name(r->self));
    r->daemon = weft_thread_daemon(r->self);
    r->alive = weft_thread_is_alive(r->self);
    r->join_rc = weft_thread_join(r->self, 0, NULL);
    r->same_twice = weft_thread_current() == r->self;
    WT_EQ(weft_thread_native_id(r->self), weft_thread_get_native_id());
    wt_gate_open(&r->ready);
    wt_gate_wait(&r->hold);
    return NULL;
}

WT_CASE(current_thread_main_and_dummies)
{
    weft_thread_t *main_thread = weft_thread_current();
    WT_CHECK(main_thread == weft_thread_main());
    WT_CHECK(strcmp(weft_thread_name(main_thread), "MainThread") == 0);
    WT_EQ(weft_thread_daemon(main_thread), 0);
    WT_EQ(weft_thread_is_alive(main_thread), 1);
    WT_EQ(weft_thread_active_count(), 1);

    /* A pthread weft did not create gets a dummy entry while it lives. */
    struct foreign_report r = {.ready = WT_GATE_INIT, .hold = WT_GATE_INIT};
    pthread_t pt;
    WT_EQ(pthread_create(&pt, NULL, foreign_current, &r), 0);
    wt_gate_wait(&r.ready);
    WT_EQ(weft_thread_active_count(), 2);
    weft_thread_t *list[4];
    WT_EQ(weft_thread_enumerate(list, 4), 2);
    WT_CHECK(list[0] == r.self || list[1] == r.self);
    WT_EQ(weft_thread_free(list[0]), 0);
    WT_EQ(weft_thread_free(list[1]), 0);
    WT_EQ(weft_thread_join(r.self, 0, NULL), -EPERM); /* another thread's dummy */
    wt_gate_open(&r.hold);
    pthread_join(pt, NULL);
    WT_CHECK(strncmp(r.name, "Dummy-", 6) == 0);
    WT_EQ(r.daemon, 1);
    WT_EQ(r.alive, 1);
    WT_EQ(r.join_rc, -EDEADLK); /* a dummy joining itself */
    WT_EQ(r.same_twice, 1);
    /* The dummy went away with its thread (its key destructor ran before
     * pthread_join returned). */
    WT_EQ(weft_thread_active_count(), 1);
}

WT_CASE(dummy_outlives_thread_while_enumerated)
{
    /* A handle from enumerate keeps a dummy's entry valid after its thread
     * has gone: it reads as finished, then frees cleanly. */
    struct foreign_report r = {.ready = WT_GATE_INIT, .hold = WT_GATE_INIT};
    pthread_t pt;
    WT_EQ(pthread_create(&pt, NULL, foreign_current, &r), 0);
    wt_gate_wait(&r.ready);
    weft_thread_t *list[2];
    WT_EQ(weft_thread_enumerate(list, 2), 2);
    wt_gate_open(&r.hold);
    pthread_join(pt, NULL);
    weft_thread_t *dummy = list[0] == weft_thread_main() ? list[1] : list[0];
    WT_EQ(weft_thread_is_alive(dummy), 0);
    WT_CHECK(strncmp(weft_thread_name(dummy), "Dummy-", 6) == 0);
    WT_EQ(weft_thread_free(list[0]), 0);
    WT_EQ(weft_thread_free(list[1]), 0);
    WT_EQ(weft_thread_free(dummy), -EINVAL); /* released twice */
}

WT_CASE(enumerate_snapshot_and_cap)
{
    enum { N = 5 };
    wt_gate gate = WT_GATE_INIT;
    weft_thread_t *t[N];
    for (int i = 0; i < N; i++)
        t[i] = start_gated(&gate, NULL);
    weft_thread_t *unstarted;
    WT_EQ(weft_thread_new(&unstarted, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_active_count(), N + 1);
    weft_thread_t *list[N + 1];
    WT_EQ(weft_thread_enumerate(list, 3), N + 1); /* total, though only 3 filled */
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_thread_free(list[i]), 0);
    WT_EQ(weft_thread_enumerate(NULL, 0), N + 1);
    WT_EQ(weft_thread_enumerate(list, N + 1), N + 1);
    for (int i = 0; i < N + 1; i++) {
        WT_CHECK(list[i] != unstarted);
        int found = list[i] == weft_thread_main();
        for (int j = 0; j < N; j++)
            found += list[i] == t[j];
        WT_EQ(found, 1);
        WT_EQ(weft_thread_free(list[i]), 0);
    }
    wt_gate_open(&gate);
    for (int i = 0; i < N; i++)
        join_free(t[i]);
    WT_EQ(weft_thread_free(unstarted), 0);
    WT_EQ(weft_thread_active_count(), 1);
}

static _Atomic bool churn_stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        weft_thread_t *t;
        WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), 0);
        WT_EQ(weft_thread_start(t), 0);
        if (rand() % 2) {
            join_free(t);
        } else {
            WT_EQ(weft_thread_free(t), 0); /* let it finish on its own */
        }
    }
    return NULL;
}

static bool only_main_left(void *arg)
{
    (void)arg;
    return weft_thread_active_count() == 1;
}

WT_STRESS(enumerate_while_threads_come_and_go)
{
    weft_thread_t *spawners[3];
    for (int i = 0; i < 3; i++) {
        WT_EQ(weft_thread_new(&spawners[i], churn, NULL, NULL), 0);
        WT_EQ(weft_thread_start(spawners[i]), 0);
    }
    double end = wt_now() + 1.0;
    long snapshots = 0;
    while (wt_now() < end) {
        weft_thread_t *list[64];
        int n = weft_thread_enumerate(list, 64);
        WT_CHECK(n >= 4); /* main and the spawners are always there */
        int filled = n < 64 ? n : 64;
        for (int i = 0; i < filled; i++) {
            /* Every entry is a live handle, whatever its thread does now. */
            WT_CHECK(weft_thread_name(list[i]) != NULL);
            /* A thread seen finished has published its ident (one seen
             * starting may not have yet). */
            if (weft_thread_is_alive(list[i]) == 0)
                WT_CHECK(weft_thread_ident(list[i]) != 0);
            WT_EQ(weft_thread_free(list[i]), 0);
        }
        snapshots++;
    }
    atomic_store(&churn_stop, true);
    for (int i = 0; i < 3; i++)
        join_free(spawners[i]);
    wt_wait_until(only_main_left, NULL, 10 * wt_slack());
    WT_CHECK(snapshots > 0);
}

static _Atomic int detached_done;

static void *mark_done(void *arg)
{
    wt_gate_wait(arg);
    atomic_fetch_add(&detached_done, 1);
    return NULL;
}

WT_CASE(free_while_running_lets_thread_finish)
{
    wt_gate gate = WT_GATE_INIT;
    for (int i = 0; i < 8; i++) {
        weft_thread_t *t;
        WT_EQ(weft_thread_new(&t, mark_done, &gate, NULL), 0);
        WT_EQ(weft_thread_start(t), 0);
        WT_EQ(weft_thread_free(t), 0);
    }
    WT_EQ(weft_thread_active_count(), 9);
    wt_gate_open(&gate);
    wt_wait_until(only_main_left, NULL, 10 * wt_slack());
    WT_EQ(atomic_load(&detached_done), 8);
}

static void *exit_early(void *arg)
{
    (void)arg;
    pthread_exit((void *)1);
    return NULL;
}

WT_CASE(pthread_exit_still_finishes_the_thread)
{
    /* Python's sys.exit() in a thread ends just that thread; the C analogue
     * is pthread_exit. Joiners must not hang and the entry must go. */
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, exit_early, NULL, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    void *result = (void *)2;
    WT_EQ(weft_thread_join(t, 30 * wt_slack(), &result), 0);
    WT_CHECK(result == NULL);
    WT_EQ(weft_thread_is_alive(t), 0);
    WT_EQ(weft_thread_free(t), 0);
    WT_EQ(weft_thread_active_count(), 1);
}

WT_CASE(stack_size_get_set)
{
    WT_EQ(weft_thread_get_stack_size(), 0);
    WT_EQ(weft_thread_set_stack_size(-1), -EINVAL);
    WT_EQ(weft_thread_set_stack_size(WEFT_THREAD_STACK_MIN - 1), -EINVAL);
    WT_EQ(weft_thread_set_stack_size(1 << 20), 0);
    WT_EQ(weft_thread_get_stack_size(), 1 << 20);
    WT_EQ(weft_thread_set_stack_size(WEFT_THREAD_STACK_MIN + 1), 1 << 20);
    long page = sysconf(_SC_PAGESIZE);
    WT_EQ(weft_thread_get_stack_size() % (size_t)page, 0); /* rounded to pages */
    WT_CHECK(weft_thread_get_stack_size() > WEFT_THREAD_STACK_MIN);
    WT_EQ(weft_thread_set_stack_size(0),
          (long)((WEFT_THREAD_STACK_MIN + 1 + page - 1) / page * page));
    WT_EQ(weft_thread_get_stack_size(), 0);
}

static void *report_stack_size(void *arg)
{
    (void)arg;
    pthread_attr_t attr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstacksize(&attr, &size);
        pthread_attr_destroy(&attr);
    }
    return (void *)size;
}

WT_CASE(stack_size_applies_to_new_threads)
{
    const size_t sizes[] = {256 * 1024, 3 * 1024 * 1024};
    for (int i = 0; i < 2; i++) {
        /* Once through the module default, once through the options. */
        weft_thread_opts_t opts = {0};
        if (i == 0)
            WT_EQ(weft_thread_set_stack_size((long)sizes[i]), 0);
        else
            opts.stack_size = sizes[i];
        weft_thread_t *t;
        WT_EQ(weft_thread_new(&t, report_stack_size, NULL, &opts), 0);
        WT_EQ(weft_thread_start(t), 0);
        void *got;
        WT_EQ(weft_thread_join(t, WEFT_FOREVER, &got), 0);
        WT_CHECK((size_t)got >= sizes[i]);
        if (!wt_sanitizer()) /* sanitizers enlarge stacks for their own use */
            WT_CHECK((size_t)got < sizes[i] + 64 * 1024);
        WT_EQ(weft_thread_free(t), 0);
        weft_thread_set_stack_size(0);
    }
}

/* --- exit-time joining, checked in child processes --------------------- */

static int pipe_w = -1;

static void *slow_writer(void *arg)
{
    weft_sleep(0.1);
    ssize_t n = write(pipe_w, arg, strlen(arg));
    (void)n;
    return NULL;
}

static wt_gate never_opened = WT_GATE_INIT;

/* Writes only if the process outlives a gate nobody opens: never. */
static void *blocked_writer(void *arg)
{
    wt_gate_wait(&never_opened);
    return slow_writer(arg);
}

static int exit_with_thread(void *arg)
{
    const weft_thread_opts_t *opts = arg;
    weft_thread_t *t;
    if (weft_thread_new(&t, slow_writer, (void *)"done", opts) || weft_thread_start(t))
        return 3;
    return 0; /* exit() runs while the thread still sleeps */
}

/* If exit waited for this thread the child would hang, and wt_fork fails. */
static int exit_with_blocked_thread(void *arg)
{
    const weft_thread_opts_t *opts = arg;
    weft_thread_t *t;
    if (weft_thread_new(&t, blocked_writer, (void *)"done", opts) || weft_thread_start(t))
        return 3;
    return 0;
}

static int exit_with_blocked_thread_opted_out(void *arg)
{
    if (weft_thread_join_at_exit(false) != true)
        return 4;
    return exit_with_blocked_thread(arg);
}

static void *start_writer_then_end(void *arg)
{
    weft_thread_t *t;
    weft_thread_opts_t opts = {.daemon = WEFT_DAEMON_NO};
    if (weft_thread_new(&t, slow_writer, arg, &opts) == 0 && weft_thread_start(t) == 0)
        weft_thread_free(t);
    return NULL;
}

static int exit_with_grandchild(void *arg)
{
    (void)arg;
    weft_thread_t *t;
    if (weft_thread_new(&t, start_writer_then_end, (void *)"done", NULL) || weft_thread_start(t) ||
        weft_thread_free(t))
        return 3;
    return 0;
}

/* Run `fn` in a child; return what its threads wrote to the pipe by the time
 * the child exited. */
static void child_output(int (*fn)(void *), void *arg, char *out, size_t size)
{
    int fds[2];
    WT_EQ(pipe(fds), 0);
    pipe_w = fds[1];
    int status = wt_fork(fn, arg, 10 * wt_slack());
    close(fds[1]);
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ssize_t n = read(fds[0], out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fds[0]);
}

WT_CASE(exit_joins_non_daemon_threads)
{
    char out[16];
    weft_thread_opts_t non_daemon = {.daemon = WEFT_DAEMON_NO};
    child_output(exit_with_thread, &non_daemon, out, sizeof out);
    WT_CHECK(strcmp(out, "done") == 0);
    /* Threads started by a finishing thread are waited for too. */
    child_output(exit_with_grandchild, NULL, out, sizeof out);
    WT_CHECK(strcmp(out, "done") == 0);
}

WT_CASE(exit_does_not_wait_for_daemons_or_when_opted_out)
{
    char out[16];
    weft_thread_opts_t daemon = {.daemon = WEFT_DAEMON_YES};
    child_output(exit_with_blocked_thread, &daemon, out, sizeof out);
    WT_CHECK(strcmp(out, "") == 0);
    weft_thread_opts_t non_daemon = {.daemon = WEFT_DAEMON_NO};
    child_output(exit_with_blocked_thread_opted_out, &non_daemon, out, sizeof out);
    WT_CHECK(strcmp(out, "") == 0);
}

/* --- fork ---------------------------------------------------------------- */

static weft_thread_t *forked_sibling;

static int after_fork(void *arg)
{
    (void)arg;
    /* Only the forking thread exists in the child: it is the main thread,
     * the sibling reads as finished and joins at once. */
    if (weft_thread_active_count() != 1 || weft_thread_is_alive(forked_sibling) != 0)
        return 4;
    if (weft_thread_join(forked_sibling, 0, NULL) != 0 || weft_thread_free(forked_sibling) != 0)
        return 5;
    if (weft_thread_main() != weft_thread_current() ||
        weft_thread_native_id(weft_thread_main()) != getpid() ||
        weft_thread_get_native_id() != getpid())
        return 6;
    /* Threads still work in the child. (TSan cannot follow threads made
     * after a fork of a multithreaded process, so its build skips this.) */
    if (wt_sanitizer() == 't')
        return 0;
    weft_thread_t *t;
    void *r;
    if (weft_thread_new(&t, return_arg, (void *)7, NULL) || weft_thread_start(t) ||
        weft_thread_join(t, WEFT_FOREVER, &r) || r != (void *)7 || weft_thread_free(t))
        return 7;
    return 0;
}

static void *fork_from_thread(void *arg)
{
    (void)arg;
    int status = wt_fork(after_fork, NULL, 10 * wt_slack());
    return (void *)(intptr_t)(WIFEXITED(status) ? WEXITSTATUS(status) : 100);
}

WT_CASE(fork_leaves_a_consistent_registry)
{
    /* Fork only once the sibling is parked in its wait: a thread still
     * setting itself up may hold an allocator lock at the fork, which the
     * child would then wait for forever (glibc's malloc guards against
     * that; ASan's allocator does not). */
    struct handshake h = {WT_GATE_INIT, WT_GATE_INIT};
    WT_EQ(weft_thread_new(&forked_sibling, signal_then_wait, &h, NULL), 0);
    WT_EQ(weft_thread_start(forked_sibling), 0);
    wt_gate_wait(&h.started);
    int status = wt_fork(after_fork, NULL, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
    /* Forking from a weft thread: that thread becomes the child's main. */
    weft_thread_t *forker;
    WT_EQ(weft_thread_new(&forker, fork_from_thread, NULL, NULL), 0);
    WT_EQ(weft_thread_start(forker), 0);
    void *rc;
    WT_EQ(weft_thread_join(forker, WEFT_FOREVER, &rc), 0);
    WT_EQ((intptr_t)rc, 0);
    WT_EQ(weft_thread_free(forker), 0);
    wt_gate_open(&h.release);
    join_free(forked_sibling);
}

/* A thread whose handle was freed while it ran (detached) does not exist
 * in a forked child: it is not among the child's threads, and the child's
 * exit does not wait for it, though it is not a daemon. */
static int only_main_in_child(void *arg)
{
    (void)arg;
    weft_thread_t *list[4];
    int n = weft_thread_enumerate(list, 4);
    if (n != 1 || list[0] != weft_thread_main())
        return 4;
    weft_thread_free(list[0]);
    return 0;
}

WT_CASE(fork_drops_detached_threads)
{
    struct handshake h = {WT_GATE_INIT, WT_GATE_INIT};
    weft_thread_t *t;
    weft_thread_opts_t opts = {.daemon = WEFT_DAEMON_NO};
    WT_EQ(weft_thread_new(&t, signal_then_wait, &h, &opts), 0);
    WT_EQ(weft_thread_start(t), 0);
    wt_gate_wait(&h.started); /* parked before the fork (see above) */
    WT_EQ(weft_thread_free(t), 0);
    int status = wt_fork(only_main_in_child, NULL, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
    WT_EQ(weft_thread_active_count(), 2); /* the parent's is still there */
    wt_gate_open(&h.release);
    wt_wait_until(only_main_left, NULL, 10 * wt_slack());
}

static int dummy_child(void *arg)
{
    (void)arg;
    weft_thread_t *self = weft_thread_current();
    if (self != weft_thread_main() || strcmp(weft_thread_name(self), "MainThread") != 0 ||
        weft_thread_daemon(self) != 0 || weft_thread_native_id(self) != getpid())
        return 4;
    /* Threads made by the new main thread are not daemons: exit waits. */
    weft_thread_t *t;
    if (weft_thread_new(&t, return_arg, NULL, NULL) || weft_thread_daemon(t) != 0)
        return 5;
    weft_thread_free(t);
    return 0;
}

static void *fork_from_dummy(void *arg)
{
    (void)arg;
    weft_thread_current(); /* now a dummy: "Dummy-N", a daemon */
    int status = wt_fork(dummy_child, NULL, 10 * wt_slack());
    return (void *)(intptr_t)(WIFEXITED(status) ? WEXITSTATUS(status) : 100);
}

WT_CASE(fork_from_a_foreign_thread_makes_it_main)
{
    /* As CPython's _DummyThread._after_fork: the dummy becomes MainThread. */
    pthread_t pt;
    void *rc;
    WT_EQ(pthread_create(&pt, NULL, fork_from_dummy, NULL), 0);
    pthread_join(pt, &rc);
    WT_EQ((intptr_t)rc, 0);
}

static weft_thread_t *starting;
static int fork_in_create_status = -1;

static int native_id_of_starting(void *arg)
{
    (void)arg;
    /* The thread was between start and pthread_create when the process
     * forked: in the child it never runs, so it reads as finished and its
     * kernel id as unknown, without waiting for it. */
    return weft_thread_is_alive(starting) == 0 && weft_thread_native_id(starting) == 0 ? 0 : 4;
}

static int fork_then_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                            void *arg)
{
    fork_in_create_status = wt_fork(native_id_of_starting, NULL, 10 * wt_slack());
    return pthread_create(t, attr, fn, arg);
}

WT_FAULT(fork_while_a_thread_starts)
{
    WT_EQ(weft_thread_new(&starting, return_arg, NULL, NULL), 0);
    weft__sys.pthread_create = fork_then_create;
    WT_EQ(weft_thread_start(starting), 0);
    weft__sys_reset();
    WT_CHECK(WIFEXITED(fork_in_create_status));
    WT_EQ(WEXITSTATUS(fork_in_create_status), 0);
    join_free(starting);
}

static weft_thread_t *exiting;

static void *join_the_exiting(void *arg)
{
    (void)arg;
    weft_thread_join(exiting, WEFT_FOREVER, NULL);
    return NULL;
}

static void *exit_from_worker(void *arg)
{
    (void)arg;
    weft_thread_t *joiner;
    weft_thread_opts_t opts = {.daemon = WEFT_DAEMON_NO};
    if (weft_thread_new(&joiner, join_the_exiting, NULL, &opts) || weft_thread_start(joiner))
        exit(3);
    exit(0); /* the joiner waits for us: waiting for it here would hang */
}

static int worker_calls_exit(void *arg)
{
    (void)arg;
    if (weft_thread_new(&exiting, exit_from_worker, NULL, NULL) || weft_thread_start(exiting))
        return 3;
    wt_gate never = WT_GATE_INIT;
    wt_gate_wait(&never); /* the worker's exit() ends the process */
    return 4;
}

WT_FAULT(exit_from_a_worker_does_not_wait)
{
    /* Only the main thread's exit joins non-daemon threads, as Python's
     * shutdown runs in the main thread; a worker calling exit() ends the
     * process at once (wt_fork fails the case if the child hangs). */
    int status = wt_fork(worker_calls_exit, NULL, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status));
    WT_EQ(WEXITSTATUS(status), 0);
}

/* --- fault injection ------------------------------------------------------- */

static int fail_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    (void)t;
    (void)attr;
    (void)fn;
    (void)arg;
    return EAGAIN;
}

/* A foreign thread's weft_thread_current has no entry to give while its
 * allocation fails (NULL), and makes one once it can. */
static void *current_without_memory(void *arg)
{
    (void)arg;
    weft__sys.calloc = wt_no_calloc;
    weft_thread_t *none = weft_thread_current();
    weft__sys_reset();
    WT_CHECK(none == NULL);
    WT_EQ(weft_thread_active_count(), 1);
    weft_thread_t *self = weft_thread_current();
    WT_CHECK(self != NULL && strncmp(weft_thread_name(self), "Dummy-", 6) == 0);
    WT_CHECK(weft_thread_current() == self);
    WT_EQ(weft_thread_active_count(), 2);
    return NULL;
}

WT_FAULT(resource_failures_are_reported)
{
    weft_thread_t *t = NULL;
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), -ENOMEM);
    WT_EQ(weft_timer_new(&t, 1.0, return_arg, NULL, NULL), -ENOMEM);
    weft__sys_reset();

    WT_EQ(weft_thread_new(&t, return_arg, (void *)9, NULL), 0);
    weft__sys.pthread_create = fail_create;
    WT_EQ(weft_thread_start(t), -EAGAIN);
    WT_EQ(weft_thread_is_alive(t), 0);
    WT_EQ(weft_thread_native_id(t), 0);
    WT_EQ(weft_thread_join(t, 0, NULL), -EPERM);
    weft_thread_t *other = NULL; /* create-and-start frees what it made (ASan checks) */
    WT_EQ(weft_thread_start_new(&other, return_arg, NULL, NULL), -EAGAIN);
    WT_CHECK(other == NULL);
    weft__sys_reset();
    WT_EQ(weft_thread_start(t), 0); /* it can be started once the system can */
    void *r;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &r), 0);
    WT_CHECK(r == (void *)9);
    weft__sys.malloc = wt_no_malloc; /* a rename keeps the old name */
    WT_EQ(weft_thread_set_name(t, "never"), -ENOMEM);
    weft__sys_reset();
    WT_CHECK(strncmp(weft_thread_name(t), "Thread-", 7) == 0);
    WT_EQ(weft_thread_free(t), 0);

    pthread_t pt; /* a foreign thread without memory for its entry */
    WT_EQ(pthread_create(&pt, NULL, current_without_memory, NULL), 0);
    WT_EQ(pthread_join(pt, &r), 0);
    WT_CHECK(r == NULL);
    WT_EQ(weft_thread_active_count(), 1);
}

/*
 * A start that fails releases whoever waits on the thread meanwhile: a
 * native_id waiting for the kernel id gets 0 (there will be none), a
 * timed join gets -EPERM (not started) instead of sleeping out its
 * timeout, and the thread can be started again. The failing
 * pthread_create holds off until both are asleep.
 */
static weft_thread_t *failing;
static wt_gate waiters_go = WT_GATE_INIT;
static _Atomic long waiter_tid[2];

static void *native_id_waiter(void *arg)
{
    (void)arg;
    atomic_store(&waiter_tid[0], weft_thread_get_native_id());
    wt_gate_wait(&waiters_go);
    return (void *)(intptr_t)weft_thread_native_id(failing);
}

static void *timed_joiner(void *arg)
{
    (void)arg;
    atomic_store(&waiter_tid[1], weft_thread_get_native_id());
    wt_gate_wait(&waiters_go);
    return (void *)(intptr_t)weft_thread_join(failing, 30 * wt_slack(), NULL);
}

static int fail_once_waited_for(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                void *arg)
{
    (void)t, (void)attr, (void)fn, (void)arg;
    wt_gate_open(&waiters_go);
    for (int i = 0; i < 2; i++)
        wt_await_futex_sleep(atomic_load(&waiter_tid[i]), NULL, 10 * wt_slack());
    return EAGAIN;
}

WT_FAULT(a_failed_start_releases_its_waiters)
{
    WT_EQ(weft_thread_new(&failing, return_arg, (void *)5, NULL), 0);
    pthread_t waiter[2];
    WT_EQ(pthread_create(&waiter[0], NULL, native_id_waiter, NULL), 0);
    WT_EQ(pthread_create(&waiter[1], NULL, timed_joiner, NULL), 0);
    while (!atomic_load(&waiter_tid[0]) || !atomic_load(&waiter_tid[1]))
        sched_yield();
    weft__sys.pthread_create = fail_once_waited_for;
    WT_EQ(weft_thread_start(failing), -EAGAIN);
    weft__sys_reset();
    void *rc[2];
    for (int i = 0; i < 2; i++)
        WT_EQ(pthread_join(waiter[i], &rc[i]), 0);
    WT_EQ((intptr_t)rc[0], 0);
    WT_EQ((intptr_t)rc[1], -EPERM);
    WT_EQ(weft_thread_start(failing), 0);
    WT_CHECK(weft_thread_native_id(failing) > 0);
    void *r;
    WT_EQ(weft_thread_join(failing, WEFT_FOREVER, &r), 0);
    WT_CHECK(r == (void *)5);
    WT_EQ(weft_thread_free(failing), 0);
}

/* --- bad input ------------------------------------------------------------- */

WT_CASE(bad_input_matrix)
{
    weft_thread_t *t;
    weft_thread_opts_t bad_daemon = {.daemon = 7};
    weft_thread_opts_t tiny_stack = {.stack_size = 100};
    WT_EQ(weft_thread_new(NULL, return_arg, NULL, NULL), -EINVAL);
    WT_EQ(weft_thread_new(&t, NULL, NULL, NULL), -EINVAL);
    WT_EQ(weft_thread_new(&t, return_arg, NULL, &bad_daemon), -EINVAL);
    WT_EQ(weft_thread_new(&t, return_arg, NULL, &tiny_stack), -EINVAL);
    WT_EQ(weft_thread_new_run(NULL, counter_run, 8, NULL), -EINVAL);
    WT_EQ(weft_thread_new_run(&t, NULL, 8, NULL), -EINVAL);
    WT_EQ(weft_thread_new_run(&t, counter_run, (size_t)-1, NULL), -ENOMEM);
    WT_EQ(weft_thread_start(NULL), -EINVAL);
    WT_EQ(weft_thread_join(NULL, 1, NULL), -EINVAL);
    WT_EQ(weft_thread_free(NULL), -EINVAL);
    WT_EQ(weft_thread_is_alive(NULL), -EINVAL);
    WT_CHECK(weft_thread_name(NULL) == NULL);
    WT_CHECK(weft_thread_data(NULL) == NULL);
    WT_EQ(weft_thread_set_name(NULL, "x"), -EINVAL);
    WT_EQ(weft_thread_ident(NULL), 0);
    WT_EQ(weft_thread_native_id(NULL), -EINVAL);
    WT_EQ(weft_thread_daemon(NULL), -EINVAL);
    WT_EQ(weft_thread_set_daemon(NULL, true), -EINVAL);
    WT_EQ(weft_thread_enumerate(NULL, 3), -EINVAL);
    WT_EQ(weft_thread_set_stack_size(-4096), -EINVAL);
    WT_EQ(weft_thread_set_stack_size(1), -EINVAL);
    WT_EQ(weft_thread_set_stack_size(LONG_MAX), -EINVAL); /* cannot round up to a page */
    WT_EQ(weft_thread_start(weft_thread_main()), -EPERM);
    WT_EQ(weft_thread_free(weft_thread_main()), -EINVAL); /* borrowed, never freed */

    WT_EQ(weft_thread_new(&t, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_set_name(t, NULL), -EINVAL);
    WT_EQ(weft_thread_start(t), 0);
    WT_EQ(weft_thread_join(t, NAN, NULL), -EINVAL);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0);
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, NULL), 0); /* double join: fine, as in Python */
    WT_EQ(weft_thread_free(t), 0);
    WT_EQ(weft_thread_free(t), -EINVAL); /* double free: reported */

    weft_thread_t *never;
    WT_EQ(weft_thread_new(&never, return_arg, NULL, NULL), 0);
    WT_EQ(weft_thread_free(never), 0);
    WT_EQ(weft_thread_free(never), -EINVAL);
}
