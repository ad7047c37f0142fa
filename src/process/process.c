/*
 * Process (weft/process.h): the handle, the fork start method, the child's
 * side of every method, reaping and the exit hook.
 *
 * Each started child has a pidfd, opened by the parent right after the
 * fork (the pid cannot be reused before the parent reaps it, so there is no
 * race). The pidfd is the sentinel, join polls it against a deadline on
 * the monotonic clock, and terminate and kill signal through it, so a
 * signal can never reach another process that got the pid later.
 *
 * Reaping happens once, under the handle's Lock, through waitid(WNOHANG)
 * after the pidfd says the child has ended (or to check without waiting);
 * a forkserver child is the server's to reap, and its exit code arrives on
 * the status descriptor instead (forkserver.c), a moment after the pidfd
 * is ready: a look that finds the pidfd ready waits for that code, so a
 * ready sentinel always means a known exit code, as in Python.
 * is_alive, exitcode, join, terminate and active_children all reap, so an
 * ended child does not linger as a zombie once anyone looks. Started
 * children are on a list for active_children and the exit hook; reaping
 * only records the outcome, and the list drops ended children under its
 * own lock (active_children, close), so the lock order is always list
 * first, then handle.
 *
 * The child: a daemon arms its parent's lifeline (hold_lifeline below) and
 * checks that the parent has not died already; every
 * descriptor but 0, 1, 2 and the ones asked for (kept or given) is closed;
 * it takes what it was given (give.c: a new epoch makes every handle a
 * fork copied but did not give stale); the handle for
 * the current process takes the child's name, the parent's becomes
 * weft_process_parent(); the function runs; then, as Python's children do,
 * it waits for its own non-daemon threads and children, flushes stdio and
 * leaves with _exit, so the parent's atexit handlers do not run twice.
 */
#include "process/process_int.h"
#include "sync/hold.h"
#include "thread/thread_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { P_NEW = WEFT__P_NEW, P_RUNNING = WEFT__P_RUNNING, P_ENDED = WEFT__P_ENDED };

static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_process_t *children;
static _Atomic unsigned process_counter;
static char main_name[] = "MainProcess";
static weft_process_t current = {
    .state = P_RUNNING, .pidfd = -1, .statusfd = -1, .borrowed = true, .name = main_name};
static weft_process_t parent = {.state = P_RUNNING, .pidfd = -1, .statusfd = -1, .borrowed = true};
static bool has_parent;
static int lifeline_r = -1, lifeline_w = -1; /* see hold_lifeline */
static _Atomic int default_method = WEFT_START_DEFAULT;

int weft__pidfd_open(pid_t pid)
{
    int fd = weft__sys.pidfd_open(pid, 0);
    return fd < 0 ? -errno : fd;
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The method a new process uses, or -EINVAL. */
static int choose_method(weft_start_method_t asked, bool registered)
{
    if (asked == WEFT_START_DEFAULT)
        asked = atomic_load(&default_method);
    switch (asked) {
    case WEFT_START_DEFAULT:
        return registered ? WEFT_START_FORKSERVER : WEFT_START_FORK;
    case WEFT_START_FORK:
        return asked;
    case WEFT_START_SPAWN:
    case WEFT_START_FORKSERVER:
        return registered ? (int)asked : -EINVAL;
    }
    return -EINVAL;
}

int weft_process_new(weft_process_t **out, weft_process_fn fn, const void *arg, size_t len,
                     const weft_process_opts_t *opts)
{
    weft_process_opts_t o = opts ? *opts : (weft_process_opts_t){0};
    int daemon = weft__daemon_flag(o.daemon, current.daemon);
    if (!out || !fn || (len && !arg) || (o.nkeep_fds && !o.keep_fds) ||
        o.nkeep_fds > WEFT_PROCESS_MAX_KEEP_FDS || daemon < 0)
        return -EINVAL;
    for (size_t i = 0; i < o.nkeep_fds; i++)
        if (o.keep_fds[i] < 0)
            return -EINVAL;
    const char *fn_name = weft__registered_name(WEFT__FN(fn));
    int method = choose_method(o.method, fn_name != NULL);
    if (method < 0)
        return method;
    weft_process_t *p = weft__calloc(1, sizeof *p);
    char generated[32];
    if (!o.name) {
        snprintf(generated, sizeof generated, "Process-%u",
                 atomic_fetch_add(&process_counter, 1) + 1);
        o.name = generated;
    }
    if (p) {
        p->name = weft__strdup(o.name);
        p->arg = len ? weft__malloc(len) : NULL;
    }
    int rc = !p || !p->name || (len && !p->arg) ? -ENOMEM : weft__gifts_take(p, &o);
    if (rc < 0) {
        if (p) {
            free(p->name);
            free(p->arg);
        }
        free(p);
        return rc;
    }
    if (len)
        memcpy(p->arg, arg, len);
    p->len = len;
    p->fn = fn;
    p->fn_name = fn_name;
    p->method = method;
    p->daemon = daemon;
    p->pidfd = p->statusfd = -1;
    weft_lock_init(&p->lock, 0);
    *out = p;
    return 0;
}

static bool kept(const struct weft__child *c, int fd, int also)
{
    if (fd == also)
        return true;
    for (size_t i = 0; i < c->nkeep; i++)
        if (c->keep[i] == fd)
            return true;
    return false;
}

static int by_number(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* close_range over the gaps between the kept descriptors: a few system
 * calls whatever the parent had open. Closing them one by one from the
 * list in /proc made starting N children from a parent that holds a
 * descriptor per child quadratic: 6,000 children took 7.5 ms each. False
 * if the kernel has no close_range. */
static bool close_gaps(const struct weft__child *p, int also)
{
    int keep[WEFT_PROCESS_MAX_KEEP_FDS + 1]; /* give.c keeps nkeep to the maximum */
    size_t n = 0;
    if (p->nkeep > WEFT_PROCESS_MAX_KEEP_FDS)
        return false;
    for (size_t i = 0; i < p->nkeep; i++)
        keep[n++] = p->keep[i];
    if (also >= 0)
        keep[n++] = also;
    qsort(keep, n, sizeof keep[0], by_number);
    unsigned from = 3;
    for (size_t i = 0; i < n; i++) {
        unsigned fd = (unsigned)keep[i];
        if (fd > from && syscall(SYS_close_range, from, fd - 1, 0u) != 0)
            return false;
        if (fd + 1 > from)
            from = fd + 1;
    }
    return syscall(SYS_close_range, from, ~0u, 0u) == 0;
}

/* Close every descriptor from 3 up but the kept ones and `also`. */
static void close_inherited(const struct weft__child *p, int also)
{
    if (close_gaps(p, also))
        return;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != self && !kept(p, fd, also) && e->d_name[0] != '.')
            close(fd);
    }
    closedir(d);
}

/*
 * A daemon dies with its parent. PR_SET_PDEATHSIG alone would not do: it
 * fires when the *thread* that forked the child ends, and a child started
 * from a short-lived thread would die with that thread. So the parent
 * keeps the write end of a lifeline pipe for as long as it lives (close-on-
 * exec, and closed in every forked child by the fork guard), and a daemon
 * opens the read end anew through /proc (its own open file description,
 * whose owner and signal no sibling can change) with O_ASYNC and F_SETSIG
 * SIGKILL: when the last write end closes, which is when the parent's
 * process ends, however it ends, the kernel sends the daemon SIGKILL. A
 * parent already gone shows as a hang-up right after arming. A forkserver
 * child has no lifeline: its forking parent is the single-threaded server,
 * so PR_SET_PDEATHSIG is exact, and the server kills its daemons when its
 * client goes. Returns the descriptor to keep open, or -1.
 */
static int hold_lifeline(const struct weft__child *c)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", c->lifeline);
    int fd = c->lifeline >= 0 ? open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
    if (fd < 0 || fcntl(fd, F_SETOWN, getpid()) < 0 || fcntl(fd, F_SETSIG, SIGKILL) < 0 ||
        fcntl(fd, F_SETFL, O_RDONLY | O_NONBLOCK | O_ASYNC) < 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != c->real_parent) /* died before the request took effect */
            weft__exit_now(1);
        return fd < 0 ? -1 : (close(fd), -1);
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
        weft__exit_now(1);
    return fd;
}

/* The read end of this process's lifeline, made on first use; -errno. */
static int lifeline(void)
{
    pthread_mutex_lock(&children_lock);
    int rc = 0;
    if (lifeline_r < 0) {
        int fds[2];
        rc = pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
        if (rc == 0) {
            lifeline_r = fds[0];
            lifeline_w = fds[1];
        }
    }
    rc = rc < 0 ? rc : lifeline_r;
    pthread_mutex_unlock(&children_lock);
    return rc;
}

int weft__lifeline_for(const weft_process_t *p)
{
    return p->daemon ? lifeline() : -1;
}

_Noreturn void weft__child_run(const struct weft__child *c)
{
    weft__park_leave_loop(); /* forked from a task: its loop stays in the parent */
    close_inherited(c, c->daemon ? hold_lifeline(c) : -1);
    weft__gifts_receive(c->gifts, c->ngifts, c->inherit_all);
    parent.name = current.name;
    parent.pid = c->parent;
    parent.pidfd = weft__fd_above_stdio(weft__pidfd_open(c->parent));
    has_parent = true;
    current.name = (char *)c->name;
    current.daemon = c->daemon; /* what its own children inherit */
    int code = c->fn(c->arg, c->len);
    weft__exit_threads(); /* its own non-daemon threads and children */
    fflush(NULL);
    weft__exit_now(code & 0xff);
}

static void link_child(weft_process_t *p)
{
    pthread_mutex_lock(&children_lock);
    p->next = children;
    p->prev = NULL;
    if (children)
        children->prev = p;
    children = p;
    pthread_mutex_unlock(&children_lock);
}

/* With children_lock held. */
static void unlink_child(weft_process_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (children == p)
        children = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
}

/*
 * At exit, as Python's multiprocessing does: daemon children are
 * terminated, then every child is joined, so none is left a zombie or an
 * orphan. The list's lock is held throughout: a handle on it cannot be
 * closed (freed) meanwhile.
 */
static void exit_hook(void)
{
    pthread_mutex_lock(&children_lock);
    for (weft_process_t *p = children; p; p = p->next)
        if (p->daemon)
            weft_process_terminate(p);
    for (weft_process_t *p = children; p; p = p->next)
        weft_process_join(p, WEFT_FOREVER);
    pthread_mutex_unlock(&children_lock);
}

int weft__adopt_child(weft_process_t *p, pid_t pid)
{
    int fd = weft__pidfd_open(pid);
    if (fd < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return fd;
    }
    p->pid = pid;
    p->pidfd = fd;
    return 0;
}

static int start_fork(weft_process_t *p)
{
    int lifeline = weft__lifeline_for(p);
    if (lifeline < -1)
        return lifeline;
    struct weft__child c = {
        .lifeline = lifeline,
        .fn = p->fn,
        .arg = p->arg,
        .len = p->len,
        .name = p->name,
        .daemon = p->daemon,
        .keep = p->keep,
        .nkeep = p->nkeep,
        .gifts = p->gifts,
        .ngifts = p->ngifts,
        .inherit_all = p->inherit_all,
        .parent = getpid(),
        .real_parent = getpid(),
    };
    fflush(NULL); /* or both copies of a buffer would be written */
    pid_t pid = weft__sys.fork();
    if (pid == 0)
        weft__child_run(&c);
    if (pid < 0)
        return errno == ENOMEM ? -ENOMEM : -EAGAIN;
    return weft__adopt_child(p, pid);
}

int weft_process_start(weft_process_t *p)
{
    if (!p || p->borrowed)
        return -EINVAL;
    weft__lock_hold(&p->lock);
    if (p->state != P_NEW) {
        weft_lock_release(&p->lock);
        return -EPERM;
    }
    int rc = weft__gifts_check(p);
    if (rc == 0)
        rc = p->method == WEFT_START_FORK    ? start_fork(p)
             : p->method == WEFT_START_SPAWN ? weft__start_spawn(p)
                                             : weft__start_forkserver(p);
    if (rc == 0) {
        p->state = P_RUNNING;
        link_child(p);
    }
    weft_lock_release(&p->lock);
    weft__at_exit(exit_hook);
    return rc;
}

static bool readable_now(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, 0) == 1;
}

/*
 * A forkserver child: its exit code as the server reports it; if the
 * server died first (end of stream, no code), 255 once the child is gone,
 * as Python reports it. The pidfd is ready as soon as the child has
 * ended, a moment before the server has reaped it and written the code;
 * from then on the code (or the end of the stream, should the server die)
 * is certain to come, so it is waited for: a ready sentinel means an
 * exit code, under every start method.
 */
static bool reap_served(weft_process_t *p)
{
    bool gone = readable_now(p->pidfd);
    int code = 255;
    if (p->statusfd >= 0) {
        /* The status follows the exit at once: a task waits for it even
         * if cancelled, and learns of that at its next wait. */
        if (gone && weft__park_fd(p->statusfd, WEFT_READABLE, WEFT__NEVER, WEFT__WAIT_PROCESS) ==
                        -ECANCELED) {
            weft__park_fd(p->statusfd, WEFT_READABLE, WEFT__NEVER, WEFT__WAIT_PROCESS);
            weft__park_recancel();
        }
        ssize_t n = read(p->statusfd, &code, sizeof code);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return false;
        close(p->statusfd);
        p->statusfd = -1;
        if (n == sizeof code)
            gone = true; /* the server has reaped it */
        else
            code = 255;
    }
    if (!gone && !readable_now(p->pidfd))
        return false; /* orphaned by the server, and still running */
    p->exitcode = code;
    p->state = P_ENDED;
    return true;
}

/* Reap p if it has ended (caller holds p->lock); true once it has. */
static bool reap(weft_process_t *p)
{
    if (p->state != P_RUNNING)
        return p->state == P_ENDED;
    if (p->method == WEFT_START_FORKSERVER)
        return reap_served(p);
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) < 0 || si.si_pid != p->pid)
        return false;
    p->exitcode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    p->state = P_ENDED;
    return true;
}

/* The parent, seen from a child: alive while its pidfd is not readable. */
static bool parent_alive(void)
{
    if (parent.pidfd < 0)
        return getppid() == parent.pid;
    return !readable_now(parent.pidfd);
}

int weft_process_is_alive(weft_process_t *p)
{
    if (!p)
        return -EINVAL;
    if (p == &current)
        return 1;
    if (p == &parent)
        return parent_alive();
    weft__lock_hold(&p->lock);
    bool alive = p->state == P_RUNNING && !reap(p);
    weft_lock_release(&p->lock);
    return alive;
}

int weft_process_exitcode(weft_process_t *p, int *code)
{
    if (!p || !code)
        return -EINVAL;
    if (p->borrowed)
        return 0;
    weft__lock_hold(&p->lock);
    bool ended = reap(p);
    if (ended)
        *code = p->exitcode;
    weft_lock_release(&p->lock);
    return ended;
}

int weft_process_join(weft_process_t *p, double timeout)
{
    if (!p || isnan(timeout))
        return -EINVAL;
    if (p == &current)
        return -EDEADLK;
    if (p->borrowed)
        return -EPERM; /* only a child can be joined */
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    bool expired = false;
    for (;;) {
        weft__lock_hold(&p->lock);
        int state = p->state;
        bool ended = state == P_RUNNING && reap(p);
        int fd = p->statusfd >= 0 ? p->statusfd : p->pidfd;
        weft_lock_release(&p->lock);
        if (state == P_NEW)
            return -EPERM;
        if (state == P_ENDED || ended)
            return 0;
        if (expired) /* looked once more after the deadline */
            return weft__timeout_error(timeout);
        int parked = weft__park_fd(fd, WEFT_READABLE, deadline, WEFT__WAIT_PROCESS);
        if (parked == -ECANCELED) /* a task, cancelled */
            return parked;
        expired = parked == 0;
    }
}

static int signal_child(weft_process_t *p, int sig)
{
    if (!p || p->borrowed)
        return -EINVAL;
    weft__lock_hold(&p->lock);
    int rc = 0;
    if (p->state == P_NEW)
        rc = -EPERM;
    else if (!reap(p) && sys_pidfd_send_signal(p->pidfd, sig) < 0 && errno != ESRCH)
        rc = -errno;
    weft_lock_release(&p->lock);
    return rc;
}

int weft_process_terminate(weft_process_t *p)
{
    return signal_child(p, SIGTERM);
}

int weft_process_kill(weft_process_t *p)
{
    return signal_child(p, SIGKILL);
}

int weft_process_close(weft_process_t *p)
{
    if (!p)
        return -EINVAL;
    if (p->borrowed)
        return -EBUSY;
    weft__lock_hold(&p->lock);
    bool running = p->state == P_RUNNING && !reap(p);
    weft_lock_release(&p->lock);
    if (running)
        return -EBUSY;
    pthread_mutex_lock(&children_lock);
    unlink_child(p);
    pthread_mutex_unlock(&children_lock);
    if (p->pidfd >= 0)
        close(p->pidfd); /* a forkserver child's status pipe went when it was reaped */
    free(p->name);
    free(p->arg);
    weft__gifts_release(p);
    free(p);
    return 0;
}

const char *weft_process_name(weft_process_t *p)
{
    return p ? p->name : NULL;
}

pid_t weft_process_pid(weft_process_t *p)
{
    if (!p)
        return -EINVAL;
    return p == &current ? getpid() : p->pid;
}

int weft_process_daemon(weft_process_t *p)
{
    return p ? p->daemon : -EINVAL;
}

int weft_process_sentinel(weft_process_t *p)
{
    if (!p || p == &current)
        return -EINVAL;
    return p->pidfd >= 0 ? p->pidfd : -EPERM;
}

int weft_process_active_children(weft_process_t **list, int cap)
{
    if (cap < 0 || (cap && !list))
        return -EINVAL;
    int n = 0;
    pthread_mutex_lock(&children_lock);
    for (weft_process_t *p = children, *next; p; p = next) {
        next = p->next;
        if (weft_process_is_alive(p) == 1) {
            if (n < cap)
                list[n] = p;
            n++;
        } else {
            unlink_child(p);
        }
    }
    pthread_mutex_unlock(&children_lock);
    return n;
}

/* In a forked child the parent's children are not ours (their handles stay
 * as they are). */
static void forget_children(void)
{
    children = NULL;
    /* Only the parent may hold the lifeline's write end. The read end stays
     * open: a daemon child of ours reopens it (and closes it with the rest),
     * and it is close-on-exec for any other child. */
    if (lifeline_w >= 0)
        close(lifeline_w);
    lifeline_r = lifeline_w = -1;
}

WEFT__CONSTRUCTOR static void process_init(void)
{
    weft__fork_guard(&children_lock, WEFT__RANK_CHILDREN, forget_children);
}

weft_process_t *weft_process_current(void)
{
    return &current;
}

weft_process_t *weft_process_parent(void)
{
    return has_parent ? &parent : NULL;
}

int weft_process_start_method(weft_process_t *p)
{
    return !p || p->borrowed ? -EINVAL : (int)p->method;
}

int weft_process_set_start_method(weft_start_method_t method)
{
    if (!weft_start_method_name(method))
        return -EINVAL;
    atomic_store(&default_method, method);
    return 0;
}

weft_start_method_t weft_process_get_start_method(void)
{
    return atomic_load(&default_method);
}

const char *weft_start_method_name(weft_start_method_t method)
{
    static const char *const names[] = {"default", "fork", "spawn", "forkserver"};
    return (unsigned)method < sizeof names / sizeof *names ? names[method] : NULL;
}
