/*
 * Tests for weft/process.h, after CPython's _test_multiprocessing, most of
 * them under each start method (fork, spawn, forkserver): exit codes and
 * signals, the argument bytes,
 * terminate and kill, join timeouts on the monotonic clock, the sentinel,
 * no zombies and no descriptor leaks after 1,000 lifecycles, descriptors
 * closed in the child unless kept, daemon children dying with a parent
 * killed by SIGKILL, active_children, current and parent process; Pipe
 * framing against hostile peers; shared memory, anonymous and named, and
 * a shared Value under its lock; and bad input.
 */
#include "base/base.h"
#include "process/process_int.h"
#include "request.h"
#include "threads.h"
#include <weft/process.h>
#include <weft/shm.h>

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The start method of the pass under way: the cases that run once per
 * method loop with FOR_EACH_METHOD; started() uses it unless told. */
static weft_start_method_t method;
#define FOR_EACH_METHOD for (method = WEFT_START_FORK; method <= WEFT_START_FORKSERVER; method++)

static weft_process_t *started(weft_process_fn fn, const void *arg, size_t len,
                               const weft_process_opts_t *opts)
{
    weft_process_opts_t o = opts ? *opts : (weft_process_opts_t){0};
    if (o.method == WEFT_START_DEFAULT)
        o.method = method;
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, fn, arg, len, &o), 0);
    if (o.method != WEFT_START_DEFAULT)
        WT_EQ(weft_process_start_method(p), o.method);
    WT_EQ(weft_process_start(p), 0);
    return p;
}

/* Join and close; returns the exit code. */
static int finished(weft_process_t *p)
{
    int code;
    WT_EQ(weft_process_join(p, 30 * wt_slack()), 0);
    WT_EQ(weft_process_exitcode(p, &code), 1);
    WT_EQ(weft_process_is_alive(p), 0);
    WT_EQ(weft_process_close(p), 0);
    return code;
}

static int return_arg(const void *arg, size_t len)
{
    WT_EQ(len, sizeof(int));
    return *(const int *)arg;
}
WEFT_PROCESS_REGISTER(return_arg);

static int raise_signal(const void *arg, size_t len)
{
    (void)len;
    raise(*(const int *)arg);
    return 99; /* not reached for a deadly signal */
}
WEFT_PROCESS_REGISTER(raise_signal);

WT_CASE(exit_codes_and_signals)
{
    FOR_EACH_METHOD {
        int codes[] = {0, 1, 7, 255};
        for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
            WT_EQ(finished(started(return_arg, &codes[i], sizeof(int), NULL)), codes[i]);
        int sigs[] = {SIGUSR1, SIGTERM, SIGKILL, SIGSEGV};
        size_t nsigs = wt_sanitizer() ? 3 : 4; /* sanitizers catch SIGSEGV themselves */
        for (size_t i = 0; i < nsigs; i++)
            WT_EQ(finished(started(raise_signal, &sigs[i], sizeof(int), NULL)), -sigs[i]);
    }
}

/* The child gets its own copy of the bytes: a checksum as the exit code. */
static int checksum(const void *arg, size_t len)
{
    const unsigned char *b = arg;
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + b[i];
    return (int)(sum % 251);
}
WEFT_PROCESS_REGISTER(checksum);

static int no_args(const void *arg, size_t len)
{
    return arg == NULL && len == 0 ? 42 : 1;
}
WEFT_PROCESS_REGISTER(no_args);

WT_CASE(the_child_gets_a_copy_of_the_bytes)
{
    static unsigned char data[300000]; /* more than a pipe holds */
    FOR_EACH_METHOD {
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (unsigned char)(i * 7);
        weft_process_t *p;
        weft_process_opts_t opts = {.method = method};
        WT_EQ(weft_process_new(&p, checksum, data, sizeof data, &opts), 0);
        memset(data, 0, sizeof data); /* copied at new: changing ours changes nothing */
        WT_EQ(weft_process_start(p), 0);
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (unsigned char)(i * 7);
        WT_EQ(finished(p), checksum(data, sizeof data));
        WT_EQ(finished(started(no_args, NULL, 0, NULL)), 42);
    }
}

static int wait_forever(const void *arg, size_t len)
{
    (void)arg, (void)len;
    while (pause() == -1) /* until killed: pause only ever returns -1 */
        ;
    return 0;
}
WEFT_PROCESS_REGISTER(wait_forever);

WT_CASE(terminate_kill_and_join_timeouts)
{
    FOR_EACH_METHOD {
        weft_process_t *p = started(wait_forever, NULL, 0, NULL);
        WT_EQ(weft_process_is_alive(p), 1);
        int code = -1;
        WT_EQ(weft_process_exitcode(p, &code), 0); /* Python's None */
        WT_EQ(weft_process_join(p, 0), -EAGAIN);
        double t0 = wt_now();
        WT_EQ(weft_process_join(p, 0.05), -ETIMEDOUT);
        double waited = wt_now() - t0;
        WT_CHECK(waited >= 0.05 && waited < 0.05 + 2 * wt_slack());
        WT_EQ(weft_process_close(p), -EBUSY); /* still running */
        WT_EQ(weft_process_terminate(p), 0);
        WT_EQ(finished(p), -SIGTERM);

        p = started(wait_forever, NULL, 0, NULL);
        WT_EQ(weft_process_kill(p), 0);
        WT_EQ(weft_process_join(p, WEFT_FOREVER), 0);
        WT_EQ(weft_process_terminate(p), 0); /* ended: left alone */
        WT_EQ(weft_process_kill(p), 0);
        WT_EQ(weft_process_exitcode(p, &code), 1);
        WT_EQ(code, -SIGKILL);
        WT_EQ(weft_process_close(p), 0);
    }
}

WT_CASE(the_sentinel_becomes_readable_when_the_process_ends)
{
    FOR_EACH_METHOD {
        weft_process_t *p = started(wait_forever, NULL, 0, NULL);
        int fd = weft_process_sentinel(p);
        WT_CHECK(fd >= 0);
        struct pollfd pfd = {fd, POLLIN, 0};
        WT_EQ(poll(&pfd, 1, 0), 0);
        WT_EQ(weft_process_kill(p), 0);
        WT_EQ(poll(&pfd, 1, (int)(10000 * wt_slack())), 1);
        WT_EQ(finished(p), -SIGKILL);
    }
}

/* Python's rule: once the sentinel is ready, is_alive, exitcode and
 * join(0) know the end. A forkserver child's sentinel was ready before the
 * server had reported its exit code (the window is the server's reaping). */
WT_CASE(a_ready_sentinel_means_the_exit_code_is_known)
{
    FOR_EACH_METHOD {
        for (int i = 0; i < 30; i++) {
            int code = 40 + i;
            weft_process_t *p = started(return_arg, &code, sizeof code, NULL);
            struct pollfd pfd = {weft_process_sentinel(p), POLLIN, 0};
            WT_EQ(poll(&pfd, 1, (int)(10000 * wt_slack())), 1);
            int got = -1;
            if (i % 3 == 0)
                WT_EQ(weft_process_is_alive(p), 0);
            else if (i % 3 == 1)
                WT_EQ(weft_process_join(p, 0), 0);
            WT_EQ(weft_process_exitcode(p, &got), 1);
            WT_EQ(got, code);
            WT_EQ(weft_process_close(p), 0);
        }
    }
}

/* The forkserver, the one child of ours that is not a weft handle's. */
static pid_t forkserver_pid(void)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    FILE *f = fopen(path, "r");
    WT_CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (pid_t)atoi(buf);
}

/* A server that dies leaves its children running: they are alive until
 * they end, and then end with 255 (no code came), as in Python. */
WT_FAULT(a_dead_forkserver_leaves_its_children_running)
{
    WT_EQ(weft_process_forkserver_start(), 0);
    pid_t server = forkserver_pid();
    WT_CHECK(server > 0);
    method = WEFT_START_FORKSERVER;
    weft_process_t *p = started(wait_forever, NULL, 0, NULL);
    WT_EQ(kill(server, SIGKILL), 0);
    wt_reap(server, 10 * wt_slack());
    WT_EQ(weft_process_is_alive(p), 1);
    WT_EQ(weft_process_join(p, 0.05), -ETIMEDOUT);
    WT_EQ(weft_process_kill(p), 0);
    WT_EQ(finished(p), 255);
}

WT_STRESS(a_thousand_lifecycles_leave_no_zombies_or_descriptors)
{
    WT_EQ(weft_process_forkserver_start(), 0); /* its socket stays open */
    int fds = wt_count_fds();
    FOR_EACH_METHOD {
        int rounds = method == WEFT_START_FORK ? 1000 : method == WEFT_START_FORKSERVER ? 300 : 100;
        rounds /= wt_sanitizer() ? 5 : 1;
        for (int i = 0; i < rounds; i++) {
            int code = i % 256;
            weft_process_t *p = started(return_arg, &code, sizeof code, NULL);
            if (i % 3 == 0) { /* sometimes reaped by is_alive / active_children */
                while (weft_process_is_alive(p))
                    sched_yield();
            } else if (i % 3 == 1) {
                weft_process_t *list[4];
                while (weft_process_active_children(list, 4) > 0)
                    sched_yield();
            }
            WT_EQ(finished(p), code);
        }
        WT_EQ(wt_count_fds(), fds);
        /* No child left, not even a zombie (the forkserver runs on). */
        WT_CHECK(waitpid(-1, NULL, WNOHANG) <= 0);
    }
}

/* 0 if fd is closed in this process, 1 if open. */
static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static int check_fds(const void *arg, size_t len)
{
    (void)len;
    const int *fds = arg; /* [kept, not kept] */
    return is_open(fds[0]) * 10 + is_open(fds[1]) + is_open(1) * 100;
}
WEFT_PROCESS_REGISTER(check_fds);

WT_CASE(children_keep_only_the_descriptors_they_are_meant_to)
{
    FOR_EACH_METHOD {
        int pipes[2];
        WT_EQ(pipe(pipes), 0);
        weft_process_opts_t opts = {.keep_fds = &pipes[0], .nkeep_fds = 1};
        WT_EQ(finished(started(check_fds, pipes, sizeof pipes, &opts)), 110);
        WT_EQ(finished(started(check_fds, pipes, sizeof pipes, NULL)), 100);
        close(pipes[0]);
        close(pipes[1]);
    }
}

/* In a child: 10 if its stdin is closed, 11 if open. */
static int stdin_state(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 10 + is_open(0);
}
WEFT_PROCESS_REGISTER(stdin_state);

/* A process whose stdin is closed starts children with theirs closed, as
 * fork does, under every method: the descriptors a start opens (a spawn's
 * request, the forkserver's socket, which take the lowest free number)
 * neither pose as a child's stdin nor are refused by the child's boot for
 * their number, which made it run main instead of its function. */
WT_CASE(children_of_a_process_without_stdin_have_none)
{
    WT_EQ(weft_process_forkserver_start(), 0); /* its stdin is open: its children close it */
    WT_EQ(close(0), 0);
    FOR_EACH_METHOD
        WT_EQ(finished(started(stdin_state, NULL, 0, NULL)), 10);
    /* A server started now, with 0 closed, keeps its socket elsewhere. */
    pid_t server = forkserver_pid();
    WT_EQ(kill(server, SIGKILL), 0);
    wt_reap(server, 10 * wt_slack());
    method = WEFT_START_FORKSERVER;
    WT_EQ(finished(started(stdin_state, NULL, 0, NULL)), 10);
    WT_EQ(is_open(0), 0);
}

/* The middle process of the daemon test: starts a daemon child that
 * reports its pid through shared memory, then waits to be killed. */
struct daemon_test {
    _Atomic pid_t child;
};

/* arg: a descriptor to write one byte to once running. */
static int daemon_child(const void *arg, size_t len)
{
    (void)len;
    if (write(*(const int *)arg, "x", 1) != 1)
        return 1;
    while (pause() == -1) /* until killed: pause only ever returns -1 */
        ;
    return 0;
}
WEFT_PROCESS_REGISTER(daemon_child);

/* Started from a thread that ends before the parent does: the daemon must
 * outlive the thread (PR_SET_PDEATHSIG alone would kill it with the
 * thread) and die with the process. */
static void *start_daemon(void *arg)
{
    weft_process_t **p = arg;
    int up[2];
    char byte;
    if (pipe(up) != 0)
        return *p = NULL;
    weft_process_opts_t opts = {
        .daemon = true, .method = method, .keep_fds = &up[1], .nkeep_fds = 1};
    if (weft_process_new(p, daemon_child, &up[1], sizeof up[1], &opts) || weft_process_start(*p) ||
        read(up[0], &byte, 1) != 1) /* it runs: armed */
        *p = NULL;
    close(up[0]);
    close(up[1]);
    return NULL;
}

static int middle(void *arg)
{
    struct daemon_test *d = arg;
    weft_process_t *p;
    pthread_t t;
    if (pthread_create(&t, NULL, start_daemon, &p) || pthread_join(t, NULL) || !p) {
        atomic_store(&d->child, -1);
        return 1;
    }
    struct pollfd pfd = {weft_process_sentinel(p), POLLIN, 0};
    if (poll(&pfd, 1, 100) != 0) { /* alive after its starting thread ended */
        atomic_store(&d->child, -2);
        return 2;
    }
    atomic_store(&d->child, weft_process_pid(p));
    while (pause() == -1) /* until killed */
        ;
    return 0;
}

WT_FAULT(a_daemon_child_dies_with_its_parent_killed_by_sigkill)
{
    FOR_EACH_METHOD {
        struct daemon_test *d = wt_shared_map(sizeof *d);
        pid_t mid = wt_spawn(middle, d);
        double end = wt_now() + 10 * wt_slack();
        while (atomic_load(&d->child) == 0 && wt_now() < end)
            sched_yield();
        pid_t child = atomic_load(&d->child);
        WT_EQ(child > 0 ? 0 : child, 0); /* -1: no start, -2: died with the thread */
        int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
        WT_CHECK(pidfd >= 0);
        WT_EQ(kill(mid, SIGKILL), 0);
        wt_reap(mid, 10 * wt_slack());
        struct pollfd pfd = {pidfd, POLLIN, 0};
        WT_EQ(poll(&pfd, 1, (int)(10000 * wt_slack())), 1); /* the daemon died too */
        close(pidfd);
    }
}

/* arg: the parent's pid (a forkserver child's parent is the process that
 * asked for it, not the server that forked it). */
static int report_relatives(const void *arg, size_t len)
{
    (void)len;
    weft_process_t *self = weft_process_current(), *parent = weft_process_parent();
    if (strcmp(weft_process_name(self), "worker-7") != 0 || weft_process_pid(self) != getpid())
        return 1;
    if (!parent || weft_process_pid(parent) != *(const pid_t *)arg ||
        weft_process_is_alive(parent) != 1)
        return 2;
    if (strcmp(weft_process_name(parent), "MainProcess") != 0)
        return 3;
    weft_process_t *none[1];
    return weft_process_active_children(none, 1) == 0 ? 0 : 4; /* the parent's are not ours */
}
WEFT_PROCESS_REGISTER(report_relatives);

WT_CASE(current_parent_and_active_children)
{
    weft_process_t *self = weft_process_current();
    WT_CHECK(strcmp(weft_process_name(self), "MainProcess") == 0);
    WT_EQ(weft_process_pid(self), getpid());
    WT_EQ(weft_process_is_alive(self), 1);
    WT_CHECK(weft_process_parent() == NULL);
    WT_EQ(weft_process_join(self, 0), -EDEADLK);
    WT_EQ(weft_process_close(self), -EBUSY);

    FOR_EACH_METHOD {
        weft_process_t *a = started(wait_forever, NULL, 0, NULL);
        weft_process_t *b = started(wait_forever, NULL, 0, NULL);
        weft_process_opts_t named = {.name = "worker-7"};
        pid_t me = getpid();
        weft_process_t *c = started(report_relatives, &me, sizeof me, &named);
        WT_EQ(finished(c), 0);
        weft_process_t *list[8];
        WT_EQ(weft_process_active_children(list, 8), 2);
        WT_CHECK((list[0] == a && list[1] == b) || (list[0] == b && list[1] == a));
        WT_CHECK(strncmp(weft_process_name(a), "Process-", 8) == 0);
        WT_EQ(weft_process_kill(a), 0);
        WT_EQ(weft_process_join(a, WEFT_FOREVER), 0);
        WT_EQ(weft_process_active_children(list, 8), 1);
        WT_CHECK(list[0] == b);
        WT_EQ(weft_process_active_children(NULL, 0), 1); /* just the count */
        WT_EQ(weft_process_kill(b), 0);
        WT_EQ(finished(a), -SIGKILL);
        WT_EQ(finished(b), -SIGKILL);
        WT_EQ(weft_process_active_children(list, 8), 0);
    }
}

/* In a child: its own daemon flag (1), and what a process it creates gets
 * by default (2), with NO (4) and with YES (8), as bits of the exit code. */
static int report_daemon_flags(const void *arg, size_t len)
{
    (void)arg, (void)len;
    int bits = weft_process_daemon(weft_process_current()) == 1;
    int choice[3] = {WEFT_DAEMON_INHERIT, WEFT_DAEMON_NO, WEFT_DAEMON_YES};
    for (int i = 0; i < 3; i++) {
        weft_process_t *p;
        weft_process_opts_t opts = {.daemon = choice[i]};
        if (weft_process_new(&p, report_daemon_flags, NULL, 0, &opts) != 0)
            return 64;
        bits |= (weft_process_daemon(p) == 1) << (i + 1);
        weft_process_close(p);
    }
    return bits;
}
WEFT_PROCESS_REGISTER(report_daemon_flags);

WT_CASE(the_daemon_flag_is_inherited_by_default_as_for_threads)
{
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, report_daemon_flags, NULL, 0, NULL), 0);
    WT_EQ(weft_process_daemon(p), 0); /* the main process is not a daemon */
    WT_EQ(weft_process_close(p), 0);
    WT_EQ(weft_process_new(&p, report_daemon_flags, NULL, 0, &(weft_process_opts_t){.daemon = 3}),
          -EINVAL);
    FOR_EACH_METHOD {
        weft_process_opts_t yes = {.daemon = true}; /* the old bool: YES */
        WT_EQ(finished(started(report_daemon_flags, NULL, 0, &yes)), 1 | 2 | 8);
        weft_process_opts_t no = {.daemon = WEFT_DAEMON_NO};
        WT_EQ(finished(started(report_daemon_flags, NULL, 0, &no)), 8);
        WT_EQ(finished(started(report_daemon_flags, NULL, 0, NULL)), 8);
    }
}

static int unregistered(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 5;
}

WT_CASE(start_methods_and_the_default_rule)
{
    WT_CHECK(strcmp(weft_start_method_name(WEFT_START_FORK), "fork") == 0);
    WT_CHECK(strcmp(weft_start_method_name(WEFT_START_SPAWN), "spawn") == 0);
    WT_CHECK(strcmp(weft_start_method_name(WEFT_START_FORKSERVER), "forkserver") == 0);
    WT_CHECK(weft_start_method_name((weft_start_method_t)9) == NULL);
    WT_EQ(weft_process_get_start_method(), WEFT_START_DEFAULT);
    /* The rule: forkserver for a registered function, fork for another. */
    weft_process_t *p = started(return_arg, &(int){3}, sizeof(int), NULL);
    WT_EQ(weft_process_start_method(p), WEFT_START_FORKSERVER);
    WT_EQ(finished(p), 3);
    p = started(unregistered, NULL, 0, NULL);
    WT_EQ(weft_process_start_method(p), WEFT_START_FORK);
    WT_EQ(finished(p), 5);
    /* Only fork can run a function that is not registered. */
    weft_process_opts_t opts = {.method = WEFT_START_SPAWN};
    WT_EQ(weft_process_new(&p, unregistered, NULL, 0, &opts), -EINVAL);
    opts.method = WEFT_START_FORKSERVER;
    WT_EQ(weft_process_new(&p, unregistered, NULL, 0, &opts), -EINVAL);
    opts.method = (weft_start_method_t)9;
    WT_EQ(weft_process_new(&p, return_arg, NULL, 0, &opts), -EINVAL);
    /* A process-wide default applies to processes without their own. */
    WT_EQ(weft_process_set_start_method(WEFT_START_SPAWN), 0);
    WT_EQ(weft_process_get_start_method(), WEFT_START_SPAWN);
    p = started(return_arg, &(int){4}, sizeof(int), NULL);
    WT_EQ(weft_process_start_method(p), WEFT_START_SPAWN);
    WT_EQ(finished(p), 4);
    WT_EQ(weft_process_new(&p, unregistered, NULL, 0, NULL), -EINVAL);
    WT_EQ(weft_process_set_start_method((weft_start_method_t)-1), -EINVAL);
    WT_EQ(weft_process_set_start_method(WEFT_START_DEFAULT), 0);
    WT_EQ(weft_process_start_method(NULL), -EINVAL);
    WT_EQ(weft_process_start_method(weft_process_current()), -EINVAL);
}

/* arg: descriptors; writes each one's number into itself. */
static int write_own_numbers(const void *arg, size_t len)
{
    const int *fds = arg;
    for (size_t i = 0; i < len / sizeof(int); i++)
        if (write(fds[i], &fds[i], sizeof(int)) != sizeof(int))
            return 1;
    return 0;
}
WEFT_PROCESS_REGISTER(write_own_numbers);

WT_CASE(kept_descriptors_keep_their_numbers)
{
    FOR_EACH_METHOD {
        /* Numbers low and high, in an order that makes naive moves collide. */
        int targets[] = {60, 4, 5, 200, 3};
        int reads[5], n = 5;
        for (int i = 0; i < n; i++) {
            int pp[2];
            WT_EQ(pipe(pp), 0);
            reads[i] = fcntl(pp[0], F_DUPFD_CLOEXEC, 300);
            close(pp[0]);
            int moved = fcntl(pp[1], F_DUPFD, 300);
            close(pp[1]);
            WT_EQ(dup2(moved, targets[i]), targets[i]);
            close(moved);
        }
        weft_process_opts_t opts = {.keep_fds = targets, .nkeep_fds = (size_t)n};
        WT_EQ(finished(started(write_own_numbers, targets, sizeof targets, &opts)), 0);
        for (int i = 0; i < n; i++) {
            int got = -1;
            WT_EQ(read(reads[i], &got, sizeof got), sizeof got);
            WT_EQ(got, targets[i]);
            close(reads[i]);
            close(targets[i]);
        }
    }
}

static int say_hello(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return printf("hello from the child\n") > 0 && fflush(stdout) == 0 ? 0 : 1;
}
WEFT_PROCESS_REGISTER(say_hello);

WT_CASE(children_use_stdout_as_it_is_at_start)
{
    WT_EQ(weft_process_forkserver_start(), 0); /* before the redirection */
    FOR_EACH_METHOD {
        int pp[2], saved = dup(1);
        WT_EQ(pipe(pp), 0);
        fflush(stdout);
        WT_EQ(dup2(pp[1], 1), 1);
        close(pp[1]);
        int code = finished(started(say_hello, NULL, 0, NULL));
        WT_EQ(dup2(saved, 1), 1);
        close(saved);
        WT_EQ(code, 0);
        char buf[64] = "";
        WT_CHECK(read(pp[0], buf, sizeof buf - 1) > 0);
        WT_CHECK(strcmp(buf, "hello from the child\n") == 0);
        close(pp[0]);
    }
}

/* arg: a descriptor; writes the pid of the process that forked us. */
static int report_forker(const void *arg, size_t len)
{
    (void)len;
    pid_t pp = getppid();
    if (write(*(const int *)arg, &pp, sizeof pp) != sizeof pp)
        return 1;
    while (pause() == -1) /* until killed */
        ;
    return 0;
}
WEFT_PROCESS_REGISTER(report_forker);

WT_FAULT(a_killed_forkserver_is_replaced)
{
    int pp[2];
    WT_EQ(pipe(pp), 0);
    weft_process_opts_t opts = {
        .method = WEFT_START_FORKSERVER, .keep_fds = &pp[1], .nkeep_fds = 1};
    weft_process_t *orphan = started(report_forker, &pp[1], sizeof pp[1], &opts);
    opts.daemon = true;
    weft_process_t *daemon = started(report_forker, &pp[1], sizeof pp[1], &opts);
    pid_t server[2];
    WT_EQ(read(pp[0], &server[0], sizeof(pid_t)), sizeof(pid_t));
    WT_EQ(read(pp[0], &server[1], sizeof(pid_t)), sizeof(pid_t));
    WT_EQ(server[0], server[1]);
    WT_CHECK(server[0] != getpid());
    WT_EQ(kill(server[0], SIGKILL), 0);
    /* Its daemon child dies with it (from our side: the code is unknown, as
     * Python reports it, 255); the other is orphaned and runs on. */
    WT_EQ(finished(daemon), 255);
    WT_EQ(weft_process_is_alive(orphan), 1);
    WT_EQ(weft_process_kill(orphan), 0); /* through its pidfd: still ours to kill */
    WT_EQ(finished(orphan), 255);
    close(pp[0]);
    close(pp[1]);
    /* The next start finds the server gone and starts another. */
    weft_process_t *p = started(return_arg, &(int){9}, sizeof(int),
                                &(weft_process_opts_t){.method = WEFT_START_FORKSERVER});
    WT_EQ(finished(p), 9);
    WT_EQ(waitpid(server[0], NULL, WNOHANG), -1); /* the dead server was reaped */
}

/* A request memfd holding `len` bytes of `data`. */
WT_CASE(requests_that_do_not_add_up_are_refused)
{
    weft_process_t *p;
    int x = 77;
    WT_EQ(weft_process_new(&p, return_arg, &x, sizeof x,
                           &(weft_process_opts_t){.method = WEFT_START_SPAWN, .name = "n"}),
          0);
    int fd;
    size_t size;
    char *good = wt_request_bytes(p, &fd, &size);
    struct weft__child c;
    void *mem;
    WT_EQ(weft__request_decode(fd, &c, &mem), 0);
    WT_CHECK(c.fn == return_arg && c.len == sizeof x && *(const int *)c.arg == 77);
    WT_CHECK(strcmp(c.name, "n") == 0 && c.parent == getpid() && c.nkeep == 0);
    free(mem);
    close(fd);
    /* Every truncation, and a flipped byte anywhere in the header or the
     * names, is refused; nothing is run and nothing crashes. */
    for (size_t cut = 0; cut < size; cut++) {
        fd = wt_request_fd(good, cut);
        WT_EQ(weft__request_decode(fd, &c, &mem), -EBADMSG);
        close(fd);
    }
    char *bad = malloc(size + 1);
    for (size_t i = 0; i < size; i++) {
        memcpy(bad, good, size);
        bad[i] ^= 0x40;
        fd = wt_request_fd(bad, size);
        int rc = weft__request_decode(fd, &c, &mem);
        close(fd);
        if (rc == 0) { /* the argument bytes, or a name that still reads */
            free(mem);
            continue;
        }
        WT_CHECK(rc == -EBADMSG || rc == -ENOENT);
    }
    memcpy(bad, good, size);
    bad[size] = 0; /* one byte too many */
    fd = wt_request_fd(bad, size + 1);
    WT_EQ(weft__request_decode(fd, &c, &mem), -EBADMSG);
    close(fd);
    free(bad);
    free(good);
    WT_EQ(weft_process_close(p), 0);
}

extern char **environ;

/* Run this test program with WEFT_CHILD=value and descriptor fd kept; its
 * wait status. */
static int run_self_with(const char *value, int fd, const char *arg)
{
    char var[128];
    snprintf(var, sizeof var, "WEFT_CHILD=%s", value);
    char *env[] = {var, NULL};
    char self[] = "test_process";
    char *argv[] = {self, (char *)arg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, fd, fd);
    int devnull = open("/dev/null", O_WRONLY);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);
    pid_t pid;
    WT_EQ(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(devnull);
    return wt_reap(pid, 60 * wt_slack());
}

WT_CASE(a_stray_weft_child_variable_is_ignored)
{
    char v[64];
    int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    const char *stray[] = {"", "s", "x:5:1:0", "s:1:1:0", "s:5:0:0", "s:5:1:0:9", "f:5:1:0"};
    for (size_t i = 0; i < sizeof stray / sizeof *stray; i++) {
        int status = run_self_with(stray[i], -1, "--list");
        WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* main ran */
    }
    /* A real descriptor that is not a request: main runs too. */
    snprintf(v, sizeof v, "s:%d:%d:0", file, (int)getpid());
    int status = run_self_with(v, file, "--list");
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    snprintf(v, sizeof v, "f:%d:%d:0", file, (int)getpid());
    status = run_self_with(v, file, "--list");
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(file);
    /* A request that cannot be read ends the child, rather than run main. */
    int req = wt_request_fd("garbage", 7);
    snprintf(v, sizeof v, "s:%d:%d:0", req, (int)getpid());
    status = run_self_with(v, req, "--list");
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 127);
    close(req);
}

WT_CASE(process_bad_input)
{
    weft_process_t *p;
    int fd = -1, x = 0, code;
    WT_EQ(weft_process_new(NULL, return_arg, NULL, 0, NULL), -EINVAL);
    WT_EQ(weft_process_new(&p, NULL, NULL, 0, NULL), -EINVAL);
    WT_EQ(weft_process_new(&p, return_arg, NULL, 4, NULL), -EINVAL);
    WT_EQ(weft_process_new(&p, return_arg, NULL, 0,
                           &(weft_process_opts_t){.keep_fds = &fd, .nkeep_fds = 1}),
          -EINVAL);
    WT_EQ(weft_process_new(&p, return_arg, NULL, 0, &(weft_process_opts_t){.nkeep_fds = 1}),
          -EINVAL);
    int many[WEFT_PROCESS_MAX_KEEP_FDS + 1] = {0};
    WT_EQ(weft_process_new(&p, return_arg, NULL, 0,
                           &(weft_process_opts_t){.keep_fds = many, .nkeep_fds = 65}),
          -EINVAL);
    WT_EQ(weft_process_start(NULL), -EINVAL);
    WT_EQ(weft_process_join(NULL, 0), -EINVAL);
    WT_EQ(weft_process_is_alive(NULL), -EINVAL);
    WT_EQ(weft_process_exitcode(NULL, &code), -EINVAL);
    WT_EQ(weft_process_terminate(NULL), -EINVAL);
    WT_EQ(weft_process_kill(NULL), -EINVAL);
    WT_EQ(weft_process_close(NULL), -EINVAL);
    WT_EQ(weft_process_sentinel(NULL), -EINVAL);
    WT_EQ(weft_process_daemon(NULL), -EINVAL);
    WT_EQ(weft_process_active_children(NULL, 1), -EINVAL);
    WT_EQ(weft_process_new(&p, return_arg, &x, sizeof x, NULL), 0);
    WT_EQ(weft_process_join(p, 0), -EPERM); /* not started */
    WT_EQ(weft_process_join(p, NAN), -EINVAL);
    WT_EQ(weft_process_terminate(p), -EPERM);
    WT_EQ(weft_process_sentinel(p), -EPERM);
    WT_EQ(weft_process_exitcode(p, &code), 0);
    WT_EQ(weft_process_exitcode(weft_process_current(), &code), 0); /* it runs */
    WT_EQ(weft_process_pid(NULL), -EINVAL);
    WT_EQ(weft_process_is_alive(p), 0);
    WT_EQ(weft_process_daemon(p), 0);
    WT_EQ(weft_process_start(p), 0);
    WT_EQ(weft_process_start(p), -EPERM); /* once only */
    WT_EQ(finished(p), 0);
}

/* Ends a fifth of a second after it starts: outlives a parent that
 * returns at once, unless that parent waits for it. */
static int nap_then_end(const void *arg, size_t len)
{
    (void)arg, (void)len;
    weft_sleep(0.2);
    return 0;
}
WEFT_PROCESS_REGISTER(nap_then_end);

/* The middle process of the exit test: starts a daemon child that would
 * run forever and a child that ends by itself a little later, notes their
 * pids, and returns without joining either. */
static int leave_children(void *arg)
{
    pid_t *pids = arg;
    weft_process_t *d =
        started(wait_forever, NULL, 0, &(weft_process_opts_t){.daemon = WEFT_DAEMON_YES});
    weft_process_t *c = started(nap_then_end, NULL, 0, NULL);
    pids[0] = weft_process_pid(d);
    pids[1] = weft_process_pid(c);
    return 0;
}

/* At exit, as in Python: daemon children are terminated and every child
 * is joined, so the program ends without leaving orphans or zombies (both
 * are gone, reaped, once it has ended). */
WT_CASE(exit_terminates_daemon_children_and_joins_the_rest)
{
    pid_t *pids = wt_shared_map(2 * sizeof(pid_t));
    FOR_EACH_METHOD {
        int status = wt_fork(leave_children, pids, 30 * wt_slack());
        WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < 2; i++)
            WT_CHECK(pids[i] > 0 && kill(pids[i], 0) == -1 && errno == ESRCH);
    }
}

/* --- system calls that fail ---------------------------------------------- */

/* Stand-ins for weft__sys entries: each fails the way its call can. */
static pid_t fork_eagain(void)
{
    errno = EAGAIN;
    return -1;
}

static pid_t fork_enomem(void)
{
    errno = ENOMEM;
    return -1;
}

static int no_pidfd(pid_t pid, unsigned flags)
{
    (void)pid, (void)flags;
    errno = EMFILE;
    return -1;
}

static int no_memfd(const char *name, unsigned flags)
{
    (void)name, (void)flags;
    errno = EMFILE;
    return -1;
}

static int no_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    (void)pid, (void)path, (void)fa, (void)attr, (void)argv, (void)envp;
    return EAGAIN;
}

static int no_socketpair(int domain, int type, int protocol, int sv[2])
{
    (void)domain, (void)type, (void)protocol, (void)sv;
    errno = ENFILE;
    return -1;
}

static ssize_t sendmsg_enobufs(int fd, const struct msghdr *msg, int flags)
{
    (void)fd, (void)msg, (void)flags;
    errno = ENOBUFS;
    return -1;
}

/* One start that meets `fault` (installed by set, undone by
 * weft__sys_reset) fails with `error`, leaving no descriptor, child or
 * zombie behind and the handle as it was: it starts at the next try. */
static void start_fails_cleanly(weft_start_method_t m, void (*set)(void), int error)
{
    int fds = wt_count_fds();
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, return_arg, &(int){5}, sizeof(int),
                           &(weft_process_opts_t){.method = m}),
          0);
    set();
    int rc = weft_process_start(p);
    weft__sys_reset();
    WT_EQ(rc, error);
    WT_EQ(wt_count_fds(), fds);
    WT_CHECK(waitpid(-1, NULL, WNOHANG) <= 0); /* no zombie (the server, if any, lives) */
    WT_EQ(weft_process_is_alive(p), 0);
    WT_EQ(weft_process_join(p, 0), -EPERM); /* never started */
    WT_EQ(weft_process_start(p), 0);
    WT_EQ(finished(p), 5);
}

static void set_fork_eagain(void)
{
    weft__sys.fork = fork_eagain;
}

static void set_fork_enomem(void)
{
    weft__sys.fork = fork_enomem;
}

static void set_no_pidfd(void)
{
    weft__sys.pidfd_open = no_pidfd;
}

static void set_no_memfd(void)
{
    weft__sys.memfd_create = no_memfd;
}

static void set_no_spawn(void)
{
    weft__sys.posix_spawn = no_spawn;
}

static void set_sendmsg_enobufs(void)
{
    weft__sys.sendmsg = sendmsg_enobufs;
}

/* A child started but not watchable (no pidfd) is killed and reaped, not
 * left running unseen: the zombie check in start_fails_cleanly. */
WT_FAULT(a_start_whose_system_calls_fail_leaves_nothing_behind)
{
    WT_EQ(weft_process_forkserver_start(), 0); /* its socket is no leak */
    start_fails_cleanly(WEFT_START_FORK, set_fork_eagain, -EAGAIN);
    start_fails_cleanly(WEFT_START_FORK, set_fork_enomem, -ENOMEM);
    start_fails_cleanly(WEFT_START_FORK, set_no_pidfd, -EMFILE);
    start_fails_cleanly(WEFT_START_SPAWN, set_no_memfd, -EMFILE);
    start_fails_cleanly(WEFT_START_SPAWN, set_no_spawn, -EAGAIN);
    start_fails_cleanly(WEFT_START_SPAWN, set_no_pidfd, -EMFILE);
    start_fails_cleanly(WEFT_START_FORKSERVER, set_no_memfd, -EMFILE);
    start_fails_cleanly(WEFT_START_FORKSERVER, set_sendmsg_enobufs, -ENOBUFS);
}

/* A forkserver that cannot be started fails the start (or
 * weft_process_forkserver_start) with the reason, and is started at the
 * next try. */
WT_FAULT(a_forkserver_that_cannot_start_fails_the_start_cleanly)
{
    int fds = wt_count_fds();
    weft__sys.socketpair = no_socketpair;
    WT_EQ(weft_process_forkserver_start(), -ENFILE);
    weft__sys_reset();
    WT_EQ(wt_count_fds(), fds);
    start_fails_cleanly(WEFT_START_FORKSERVER, set_no_spawn, -EAGAIN);
}

/* sendmsg that stops the forkserver, hands it the request, and kills it:
 * the server dies with the request in flight, certainly before it could
 * act on it. */
static pid_t doomed_server;

static ssize_t send_then_kill_server(int fd, const struct msghdr *msg, int flags)
{
    WT_EQ(kill(doomed_server, SIGSTOP), 0); /* pending before the send: it runs no more */
    ssize_t n = sendmsg(fd, msg, flags);
    WT_EQ(kill(doomed_server, SIGKILL), 0);
    return n;
}

/* A server that dies between a request and its reply fails that start
 * with -EAGAIN (it may have forked the child, so the start is not
 * repeated); it is reaped, nothing is left open, and the next start gets
 * a new server. */
WT_FAULT(a_forkserver_lost_mid_request_fails_that_start_only)
{
    int fds = wt_count_fds();
    WT_EQ(weft_process_forkserver_start(), 0);
    pid_t server = doomed_server = forkserver_pid();
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, return_arg, &(int){6}, sizeof(int),
                           &(weft_process_opts_t){.method = WEFT_START_FORKSERVER}),
          0);
    weft__sys.sendmsg = send_then_kill_server;
    int rc = weft_process_start(p);
    weft__sys_reset();
    WT_EQ(rc, -EAGAIN);
    WT_EQ(wt_count_fds(), fds);                /* the dead server's socket too */
    WT_EQ(waitpid(server, NULL, WNOHANG), -1); /* reaped */
    WT_EQ(weft_process_start(p), 0);
    WT_CHECK(forkserver_pid() != server);
    WT_EQ(finished(p), 6);
}

static pid_t test_pid;

/* pidfd_open that fails in children only. */
static int no_pidfd_in_children(pid_t pid, unsigned flags)
{
    return getpid() == test_pid ? (int)syscall(SYS_pidfd_open, pid, flags) : no_pidfd(pid, flags);
}

/* In a child: whether it has a parent handle (1) that tells the parent
 * lives (2), cannot be joined (4) and has no sentinel (8). */
static int parent_without_pidfd(const void *arg, size_t len)
{
    (void)arg, (void)len;
    weft_process_t *parent = weft_process_parent();
    return (parent != NULL) + (weft_process_is_alive(parent) == 1) * 2 +
           (weft_process_join(parent, 0) == -EPERM) * 4 + (weft_process_sentinel(parent) < 0) * 8;
}

/* A forked child that cannot open a pidfd for its parent falls back on
 * its parent's pid, which cannot be reused while the parent lives. */
WT_FAULT(a_child_without_a_pidfd_for_its_parent_still_knows_it)
{
    test_pid = getpid();
    weft__sys.pidfd_open = no_pidfd_in_children;
    weft_process_t *p =
        started(parent_without_pidfd, NULL, 0, &(weft_process_opts_t){.method = WEFT_START_FORK});
    int code = finished(p);
    weft__sys_reset();
    WT_EQ(code, 15);
}

/* --- Pipe ------------------------------------------------------------------ */

static weft_conn_t *conn_a, *conn_b;

static void open_pipe(bool duplex)
{
    WT_EQ(weft_pipe(&conn_a, &conn_b, duplex), 0);
}

static void close_pipe(void)
{
    if (conn_a)
        WT_EQ(weft_conn_close(conn_a), 0);
    if (conn_b)
        WT_EQ(weft_conn_close(conn_b), 0);
    conn_a = conn_b = NULL;
}

WT_CASE(pipe_carries_whole_messages)
{
    open_pipe(true);
    static char big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    WT_EQ(weft_conn_poll(conn_b, 0), 0);
    WT_EQ(weft_conn_send_bytes(conn_a, "", 0), 0);
    WT_EQ(weft_conn_send_bytes(conn_a, "x", 1), 0);
    WT_EQ(weft_conn_send_bytes(conn_a, big, sizeof big), 0);
    WT_EQ(weft_conn_poll(conn_b, 0), 1);
    void *m;
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), 0);
    free(m);
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), 1);
    WT_EQ(*(char *)m, 'x');
    free(m);
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), (ssize_t)sizeof big);
    WT_CHECK(memcmp(m, big, sizeof big) == 0);
    free(m);
    /* The other way, into caller buffers; one too small is skipped. */
    char small[4];
    WT_EQ(weft_conn_send_bytes(conn_b, "hello", 5), 0);
    WT_EQ(weft_conn_send_bytes(conn_b, "hey", 3), 0);
    WT_EQ(weft_conn_recv_bytes_into(conn_a, small, sizeof small), -EMSGSIZE);
    WT_EQ(weft_conn_recv_bytes_into(conn_a, small, sizeof small), 3);
    WT_CHECK(memcmp(small, "hey", 3) == 0);
    double t0 = wt_now();
    WT_EQ(weft_conn_poll(conn_a, 0.05), 0);
    WT_CHECK(wt_now() - t0 >= 0.05);
    close_pipe();
}

WT_CASE(pipe_ends_report_direction_and_close)
{
    open_pipe(false); /* a receives, b sends */
    void *m;
    WT_EQ(weft_conn_send_bytes(conn_a, "x", 1), -EPERM);
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EPERM);
    WT_EQ(weft_conn_poll(conn_b, 0), -EPERM); /* as a receive there: it once said 1 */
    WT_EQ(weft_conn_poll(conn_a, 0), 0);
    WT_EQ(weft_conn_send_bytes(conn_b, "last", 4), 0);
    WT_EQ(weft_conn_close(conn_b), 0);
    conn_b = NULL;
    WT_EQ(weft_conn_poll(conn_a, 0), 1);
    WT_EQ(weft_conn_recv_bytes(conn_a, &m), 4); /* what was sent before the close */
    free(m);
    WT_EQ(weft_conn_recv_bytes(conn_a, &m), -EPIPE); /* Python's EOFError */
    close_pipe();
    open_pipe(true);
    WT_EQ(weft_conn_close(conn_a), 0);
    conn_a = NULL;
    WT_EQ(weft_conn_send_bytes(conn_b, "x", 1), -EPIPE); /* no SIGPIPE */
    close_pipe();
}

/* Write a raw header (and some bytes) as a hostile peer would. */
static void raw_send(weft_conn_t *c, uint64_t header, const void *body, size_t len)
{
    int fd = weft_conn_fileno(c);
    WT_EQ(write(fd, &header, sizeof header), (ssize_t)sizeof header);
    if (len)
        WT_EQ(write(fd, body, len), (ssize_t)len);
}

WT_FAULT(pipe_rejects_hostile_headers_without_allocating)
{
    void *m = NULL;
    uint64_t lengths[] = {(uint64_t)1 << 62, ~(uint64_t)0, ((uint64_t)64 << 20) + 1};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        open_pipe(true);
        raw_send(conn_a, lengths[i], NULL, 0);
        weft__sys.malloc = wt_no_malloc; /* an allocation would show as -ENOMEM */
        WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EBADMSG);
        weft__sys_reset();
        WT_EQ(weft_conn_send_bytes(conn_a, "ok", 2), 0);
        WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EBADMSG); /* broken for good */
        close_pipe();
    }
    /* A message cut short by the peer's close. */
    open_pipe(true);
    raw_send(conn_a, 100, "0123456789", 10);
    WT_EQ(weft_conn_close(conn_a), 0);
    conn_a = NULL;
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EBADMSG);
    close_pipe();
    /* A maximum set by the receiver. */
    open_pipe(true);
    WT_EQ(weft_conn_set_max_message(conn_b, 10), 0);
    WT_EQ(weft_conn_set_max_message(conn_b, 0), -EINVAL);
    WT_EQ(weft_conn_send_bytes(conn_b, "01234567890", 11), -EMSGSIZE);
    WT_EQ(weft_conn_send_bytes(conn_a, "01234567890", 11), 0);
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EBADMSG);
    close_pipe();
    /* With no maximum to speak of, a length past what ssize_t holds. */
    open_pipe(true);
    WT_EQ(weft_conn_set_max_message(conn_b, SIZE_MAX), 0);
    raw_send(conn_a, ~(uint64_t)0, NULL, 0);
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), -EBADMSG);
    close_pipe();
}

/* A message that cannot be taken (no memory for it, or bigger than the
 * caller's buffer, by many reads' worth) is read and dropped: the next one
 * comes out whole. */
WT_FAULT(pipe_drops_a_message_it_cannot_take_and_stays_in_step)
{
    static char big[20000];
    char small[8];
    void *m;
    memset(big, 'b', sizeof big);
    open_pipe(true);
    WT_EQ(weft_conn_send_bytes(conn_a, big, sizeof big), 0);
    WT_EQ(weft_conn_send_bytes(conn_a, "next", 4), 0);
    weft__sys.malloc = wt_no_malloc;
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_conn_recv_bytes(conn_b, &m), 4);
    WT_CHECK(memcmp(m, "next", 4) == 0);
    free(m);
    WT_EQ(weft_conn_send_bytes(conn_a, big, sizeof big), 0);
    WT_EQ(weft_conn_send_bytes(conn_a, "after", 5), 0);
    WT_EQ(weft_conn_recv_bytes_into(conn_b, small, sizeof small), -EMSGSIZE);
    WT_EQ(weft_conn_recv_bytes_into(conn_b, small, sizeof small), 5);
    WT_CHECK(memcmp(small, "after", 5) == 0);
    close_pipe();
}

/* The child end of a pipe: echo each message back reversed, until the
 * parent closes its end. */
static int echo_reversed(const void *arg, size_t len)
{
    (void)len;
    weft_conn_t *c;
    if (weft_conn_from_fd(&c, *(const int *)arg) < 0)
        return 1;
    void *m;
    ssize_t n;
    while ((n = weft_conn_recv_bytes(c, &m)) >= 0) {
        char *s = m;
        for (ssize_t i = 0; i < n / 2; i++) {
            char t = s[i];
            s[i] = s[n - 1 - i];
            s[n - 1 - i] = t;
        }
        if (weft_conn_send_bytes(c, s, (size_t)n) < 0)
            return 2;
        free(m);
    }
    weft_conn_close(c);
    return n == -EPIPE ? 0 : 3;
}

WT_CASE(pipe_between_processes)
{
    open_pipe(true);
    int fd = weft_conn_fileno(conn_b);
    weft_process_opts_t opts = {.keep_fds = &fd, .nkeep_fds = 1};
    weft_process_t *p = started(echo_reversed, &fd, sizeof fd, &opts);
    WT_EQ(weft_conn_close(conn_b), 0); /* the child has its copy */
    conn_b = NULL;
    const char *words[] = {"lecture", "process", "thread", ""};
    for (size_t i = 0; i < 4; i++) {
        WT_EQ(weft_conn_send_bytes(conn_a, words[i], strlen(words[i])), 0);
        void *m;
        ssize_t n = weft_conn_recv_bytes(conn_a, &m);
        WT_EQ(n, (ssize_t)strlen(words[i]));
        for (ssize_t k = 0; k < n; k++)
            WT_EQ(((char *)m)[k], words[i][n - 1 - k]);
        free(m);
    }
    close_pipe(); /* the child sees the end and exits 0 */
    WT_EQ(finished(p), 0);
}

WT_CASE(pipe_bad_input)
{
    weft_conn_t *c;
    void *m;
    WT_EQ(weft_pipe(NULL, &c, true), -EINVAL);
    WT_EQ(weft_conn_from_fd(&c, -1), -EINVAL);
    int closed = dup(0);
    WT_CHECK(closed >= 0);
    close(closed);
    WT_EQ(weft_conn_from_fd(&c, closed), -EBADF); /* not an open descriptor */
    WT_EQ(weft_conn_send_bytes(NULL, "x", 1), -EINVAL);
    WT_EQ(weft_conn_recv_bytes(NULL, &m), -EINVAL);
    WT_EQ(weft_conn_recv_bytes_into(NULL, NULL, 0), -EINVAL);
    WT_EQ(weft_conn_poll(NULL, 0), -EINVAL);
    WT_EQ(weft_conn_close(NULL), -EINVAL);
    WT_EQ(weft_conn_fileno(NULL), -EINVAL);
    open_pipe(true);
    WT_EQ(weft_conn_send_bytes(conn_a, NULL, 1), -EINVAL);
    WT_EQ(weft_conn_recv_bytes(conn_a, NULL), -EINVAL);
    WT_EQ(weft_conn_recv_bytes_into(conn_a, NULL, 4), -EINVAL);
    WT_EQ(weft_conn_poll(conn_a, NAN), -EINVAL);
    close_pipe();
    open_pipe(false); /* a receives, b sends */
    WT_EQ(weft_conn_poll(conn_b, 0), -EPERM);
    close_pipe();
}

/* --- shared memory ------------------------------------------------------------ */

static int write_through_fd(const void *arg, size_t len)
{
    (void)len;
    weft_shm_t *s;
    if (weft_shm_from_fd(&s, *(const int *)arg) < 0)
        return 1;
    strcpy(weft_shm_buf(s), "from the child");
    return weft_shm_close(s) == 0 ? 0 : 2;
}
WEFT_PROCESS_REGISTER(write_through_fd);

static int write_by_name(const void *arg, size_t len)
{
    (void)len;
    weft_shm_t *s;
    if (weft_shm_attach(&s, arg) < 0)
        return 1;
    strcpy(weft_shm_buf(s), "attached by name");
    return weft_shm_close(s) == 0 ? 0 : 2;
}
WEFT_PROCESS_REGISTER(write_by_name);

WT_CASE(shared_memory_anonymous_and_named)
{
    FOR_EACH_METHOD {
        weft_shm_t *s;
        WT_EQ(weft_shm_create(&s, NULL, 4096), 0);
        WT_CHECK(weft_shm_name(s) == NULL);
        WT_EQ(weft_shm_size(s), 4096);
        int fd = weft_shm_fd(s);
        weft_process_opts_t keep = {.keep_fds = &fd, .nkeep_fds = 1};
        WT_EQ(finished(started(write_through_fd, &fd, sizeof fd, &keep)), 0);
        WT_CHECK(strcmp(weft_shm_buf(s), "from the child") == 0);
        WT_EQ(weft_shm_unlink(s), -EINVAL); /* nothing to unlink */
        WT_EQ(weft_shm_close(s), 0);

        char name[64];
        snprintf(name, sizeof name, "/weft-test-%d", (int)getpid());
        WT_EQ(weft_shm_create(&s, name, 100), 0);
        weft_shm_t *again;
        WT_EQ(weft_shm_create(&again, name, 100), -EEXIST); /* never opens an existing one */
        struct stat st;
        WT_EQ(fstat(weft_shm_fd(s), &st), 0);
        WT_EQ(st.st_mode & 0777, 0600);
        WT_EQ(finished(started(write_by_name, name, strlen(name) + 1, NULL)), 0);
        WT_CHECK(strcmp(weft_shm_buf(s), "attached by name") == 0);
        WT_EQ(weft_shm_unlink(s), 0);
        WT_EQ(weft_shm_unlink(s), -ENOENT);
        WT_EQ(weft_shm_attach(&again, name), -ENOENT);
        WT_CHECK(strcmp(weft_shm_buf(s), "attached by name") == 0); /* mapped still */
        WT_EQ(weft_shm_close(s), 0);
    }
}

static weft_shared_t *counter;

static int fd_in_child(void *v)
{
    return weft_shared_fd(v) == -EPERM ? 0 : 1;
}

static int count_up(const void *arg, size_t len)
{
    (void)arg, (void)len;
    long *n = weft_shared_ptr(counter);
    for (int i = 0; i < 20000; i++)
        WEFT_WITH (weft_shared_lock(counter))
            ++*n;
    return 0;
}

WT_CASE(shared_value_with_its_lock_across_processes)
{
    WT_EQ(weft_shared_new(&counter, sizeof(long)), 0);
    WT_EQ(weft_shared_size(counter), sizeof(long));
    WT_EQ(*(long *)weft_shared_ptr(counter), 0); /* zeroed */
    weft_process_t *p[3];
    weft_process_opts_t forked = {.method = WEFT_START_FORK}; /* the handle as it is */
    for (int i = 0; i < 3; i++)
        p[i] = started(count_up, NULL, 0, &forked);
    count_up(NULL, 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(finished(p[i]), 0);
    WT_EQ(*(long *)weft_shared_ptr(counter), 4 * 20000);
    WT_EQ(weft_shared_free(counter), 0);
}

/* arg: the Value's descriptor; attach and count under its lock. */
static int count_up_by_fd(const void *arg, size_t len)
{
    (void)len;
    weft_shared_t *v;
    if (weft_shared_from_fd(&v, *(const int *)arg) < 0)
        return 1;
    long *n = weft_shared_ptr(v);
    for (int i = 0; i < 10000; i++)
        WEFT_WITH (weft_shared_lock(v))
            ++*n;
    return weft_shared_free(v) == 0 ? 0 : 2;
}
WEFT_PROCESS_REGISTER(count_up_by_fd);

WT_CASE(shared_value_by_descriptor_under_each_method)
{
    FOR_EACH_METHOD {
        weft_shared_t *v;
        WT_EQ(weft_shared_new(&v, sizeof(long)), 0);
        int fd = weft_shared_fd(v);
        WT_CHECK(fd >= 0);
        weft_process_opts_t keep = {.keep_fds = &fd, .nkeep_fds = 1};
        weft_process_t *p[2];
        for (int i = 0; i < 2; i++)
            p[i] = started(count_up_by_fd, &fd, sizeof fd, &keep);
        for (int i = 0; i < 2; i++)
            WT_EQ(finished(p[i]), 0);
        WT_EQ(*(long *)weft_shared_ptr(v), 2 * 10000);
        WT_EQ(weft_shared_free(v), 0);
        WT_EQ(fcntl(fd, F_GETFD), -1); /* the creator's descriptor went with it */
    }
    /* Only the creator hands out the descriptor; a forked child uses the
     * handle. And a descriptor that is not a Value is refused. */
    weft_shared_t *v;
    WT_EQ(weft_shared_new(&v, 8), 0);
    int status = wt_fork(fd_in_child, v, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    WT_EQ(weft_shared_free(v), 0);
    int junk = memfd_create("junk", MFD_CLOEXEC);
    WT_EQ(ftruncate(junk, 4096), 0);
    weft_shared_t *w;
    WT_EQ(weft_shared_from_fd(&w, junk), -EINVAL);
    close(junk);
    WT_EQ(weft_shared_from_fd(&w, -1), -EINVAL);
    WT_EQ(weft_shared_fd(NULL), -EINVAL);
}

WT_CASE(shared_memory_bad_input)
{
    weft_shm_t *s;
    weft_shared_t *v;
    WT_EQ(weft_shm_create(NULL, NULL, 1), -EINVAL);
    WT_EQ(weft_shm_create(&s, NULL, 0), -EINVAL);
    WT_EQ(weft_shm_create(&s, "noslash", 1), -EINVAL);
    WT_EQ(weft_shm_create(&s, "/a/b", 1), -EINVAL);
    WT_EQ(weft_shm_create(&s, "/", 1), -EINVAL);
    WT_EQ(weft_shm_attach(&s, NULL), -EINVAL);
    WT_EQ(weft_shm_from_fd(&s, -1), -EINVAL);
    WT_EQ(weft_shm_close(NULL), -EINVAL);
    WT_EQ(weft_shm_unlink(NULL), -EINVAL);
    WT_EQ(weft_shm_fd(NULL), -EINVAL);
    WT_EQ(weft_shared_new(&v, 0), -EINVAL);
    WT_EQ(weft_shared_new(NULL, 8), -EINVAL);
    WT_EQ(weft_shared_free(NULL), -EINVAL);
    int empty = memfd_create("empty", MFD_CLOEXEC);
    WT_EQ(weft_shared_from_fd(&v, empty), -EINVAL); /* too small to be one */
    WT_EQ(weft_shm_from_fd(&s, empty), -EINVAL);    /* nothing to map: and it took the fd */
    WT_EQ(is_open(empty), 0);
    WT_EQ(weft_shared_from_fd(&v, empty), -EBADF);
}

static void *no_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)off;
    errno = ENOMEM;
    return MAP_FAILED;
}

/* Pipes, segments and shared values that cannot have their descriptors,
 * mappings or handles fail with the reason and leave nothing open, and a
 * named segment that could not be made is not left behind. */
WT_FAULT(pipes_and_shared_memory_without_resources_fail_cleanly)
{
    int fds = wt_count_fds();
    weft_conn_t *a, *b;
    weft__sys.socketpair = no_socketpair;
    WT_EQ(weft_pipe(&a, &b, true), -ENFILE);
    weft__sys_reset();
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_pipe(&a, &b, false), -ENOMEM);
    WT_EQ(weft_conn_from_fd(&a, 1), -ENOMEM);
    weft__sys_reset();
    WT_EQ(wt_count_fds(), fds);

    char name[32];
    snprintf(name, sizeof name, "/weft-nores-%d", (int)getpid());
    weft_shm_t *s;
    weft_shared_t *v;
    weft__sys.memfd_create = no_memfd;
    WT_EQ(weft_shm_create(&s, NULL, 4096), -EMFILE);
    WT_EQ(weft_shared_new(&v, 8), -EMFILE);
    weft__sys_reset();
    weft__sys.mmap = no_mmap;
    WT_EQ(weft_shm_create(&s, NULL, 4096), -ENOMEM);
    WT_EQ(weft_shm_create(&s, name, 4096), -ENOMEM);
    WT_EQ(weft_shared_new(&v, 8), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_shm_attach(&s, name), -ENOENT); /* not left behind */
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_shm_create(&s, name, 4096), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_shm_attach(&s, name), -ENOENT);
    WT_EQ(wt_count_fds(), fds);

    WT_EQ(weft_shared_new(&v, 8), 0);
    int fd = dup(weft_shared_fd(v));
    weft_shared_t *again;
    weft__sys.mmap = no_mmap;
    WT_EQ(weft_shared_from_fd(&again, fd), -ENOMEM);
    weft__sys_reset();
    WT_EQ(is_open(fd), 1); /* still the caller's */
    WT_EQ(weft_shared_from_fd(&again, fd), 0);
    WT_EQ(weft_shared_free(again), 0);
    WT_EQ(weft_shared_free(v), 0);
    WT_EQ(wt_count_fds(), fds);
}

/* --- fork while other threads use weft ---------------------------------------- */

#include <weft/pool.h>

static _Atomic int hammering;
static weft_lock_t hammer_lock = WEFT_LOCK_INIT;

static void *echo_task(void *arg)
{
    return arg;
}

/* Keep weft's internal locks busy: pools, child processes, the checker. */
static void *hammer(void *arg)
{
    (void)arg;
    int zero = 0;
    while (atomic_load(&hammering)) {
        weft_pool_t *p;
        if (weft_pool_new(&p, &(weft_pool_opts_t){.max_workers = 1}) == 0) {
            weft_pool_submit(p, echo_task, NULL, NULL);
            weft_pool_free(p);
        }
        weft_process_t *c;
        weft_process_opts_t forked = {.method = WEFT_START_FORK};
        if (weft_process_new(&c, return_arg, &zero, sizeof zero, &forked) == 0) {
            if (weft_process_start(c) == 0)
                weft_process_join(c, WEFT_FOREVER);
            weft_process_close(c);
        }
        WEFT_WITH (&hammer_lock)
            sched_yield();
    }
    return NULL;
}

/* In the child: every part of weft the hammers were using still works. */
static int check_weft(void)
{
    weft_process_t *none[1];
    if (weft_process_active_children(none, 1) != 0) /* the parent's are not ours */
        return 1;
    weft_pool_t *pools[2] = {NULL, weft_pool_default()};
    if (weft_pool_new(&pools[0], &(weft_pool_opts_t){.max_workers = 1}) < 0 || !pools[1])
        return 2;
    for (int i = 0; i < 2; i++) {
        weft_future_t *f;
        void *v = NULL;
        if (weft_pool_submit(pools[i], echo_task, (void *)(intptr_t)7, &f) < 0 ||
            weft_future_result(f, 10, &v) < 0 || (intptr_t)v != 7)
            return 3 + i;
        weft_future_free(f);
    }
    weft_pool_free(pools[0]);
    int five = 5, code = -1;
    weft_process_t *c;
    if (weft_process_new(&c, return_arg, &five, sizeof five, NULL) < 0 ||
        weft_process_start(c) < 0 || weft_process_join(c, 10) < 0 ||
        weft_process_exitcode(c, &code) != 1 || code != 5)
        return 5;
    weft_process_close(c);
    /* A lock the hammers used is copied in whatever state the fork caught
     * (held, or with a woken waiter that did not follow): a try answers at
     * once either way, through the checker, whose mutex the fork guards. */
    int rc = weft_lock_acquire(&hammer_lock, 0);
    if (rc != 0 && rc != -EAGAIN)
        return 6;
    return 0;
}

/* Ends with _exit: memory the hammers had allocated at the fork is
 * unreachable in the child (their threads did not follow), and
 * LeakSanitizer's check at exit would report it. */
static int use_weft(void *arg)
{
    (void)arg;
    int rc = check_weft();
    fflush(NULL);
    _exit(rc);
}

WT_FAULT(fork_while_other_threads_use_weft_leaves_the_child_usable)
{
    /* The sanitizers cannot follow this; the release build runs it.
     * TSan refuses outright: a child forked from a multithreaded process may
     * not start threads under it, and the child's pools must. Under ASan
     * (GCC 12's libasan) the child's first new pool runs no task in most
     * runs; its pthread_create interceptor keeps a thread registry behind a
     * lock that, as far as we can tell, it does not guard across fork, and
     * the hammers create threads all the time: a child forked while one is
     * inside pthread_create inherits that lock held. */
    if (wt_sanitizer())
        return;
    weft_lockdep_enable(true);
    atomic_store(&hammering, 1);
    weft_thread_t *t[2] = {spawn(hammer, NULL), spawn(hammer, NULL)};
    for (int round = 0; round < (wt_sanitizer() ? 10 : 40); round++) {
        int status = wt_fork(use_weft, NULL, 30 * wt_slack());
        WT_CHECK(WIFEXITED(status));
        WT_EQ(WEXITSTATUS(status), 0);
    }
    atomic_store(&hammering, 0);
    finish(t[0]);
    finish(t[1]);
    weft_lockdep_enable(false);
}
