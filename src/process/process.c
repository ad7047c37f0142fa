/*
 * Process (weft/process.h): the fork start method, reaping and the exit
 * hook.
 *
 * Each started child has a pidfd, opened by the parent right after the
 * fork (the pid cannot be reused before the parent reaps it, so there is no
 * race). The pidfd is the sentinel, join polls it against a deadline on
 * the monotonic clock, and terminate and kill signal through it, so a
 * signal can never reach another process that got the pid later.
 *
 * Reaping happens once, under the handle's Lock, through waitid(WNOHANG)
 * after the pidfd says the child has ended (or to check without waiting):
 * is_alive, exitcode, join, terminate and active_children all reap, so an
 * ended child does not linger as a zombie once anyone looks. Started
 * children are on a list for active_children and the exit hook; reaping
 * only records the outcome, and the list drops ended children under its
 * own lock (active_children, close), so the lock order is always list
 * first, then handle.
 *
 * The child: a daemon asks for SIGKILL when its parent dies and then checks
 * that the parent has not died already (the race prctl leaves open); every
 * descriptor but 0, 1, 2 and the ones asked for is closed; the handle for
 * the current process takes the child's name, the parent's becomes
 * weft_process_parent(); the function runs; then, as Python's children do,
 * it waits for its own non-daemon threads and children, flushes stdio and
 * leaves with _exit, so the parent's atexit handlers do not run twice.
 */
#include "base/base.h"
#include "thread/thread_int.h"
#include <weft/process.h>
#include <weft/sync.h>

#include <dirent.h>
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

enum { P_NEW, P_RUNNING, P_ENDED };

struct weft_process {
    weft_lock_t lock; /* state, reaping */
    int state;
    pid_t pid;
    int pidfd;
    int exitcode;
    bool daemon, borrowed;
    char *name;
    weft_process_fn fn;
    void *arg;
    size_t len;
    int *keep;
    size_t nkeep;
    weft_process_t *next, *prev; /* children: started, not yet reaped */
};

static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_process_t *children;
static _Atomic unsigned process_counter;
static char main_name[] = "MainProcess";
static weft_process_t current = {
    .state = P_RUNNING, .pidfd = -1, .borrowed = true, .name = main_name};
static weft_process_t parent = {.state = P_RUNNING, .pidfd = -1, .borrowed = true};
static bool has_parent;

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int weft_process_new(weft_process_t **out, weft_process_fn fn, const void *arg, size_t len,
                     const weft_process_opts_t *opts)
{
    weft_process_opts_t o = opts ? *opts : (weft_process_opts_t){0};
    if (!out || !fn || (len && !arg) || (o.nkeep_fds && !o.keep_fds))
        return -EINVAL;
    for (size_t i = 0; i < o.nkeep_fds; i++)
        if (o.keep_fds[i] < 0)
            return -EINVAL;
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
        p->keep = o.nkeep_fds ? weft__malloc(o.nkeep_fds * sizeof(int)) : NULL;
    }
    if (!p || !p->name || (len && !p->arg) || (o.nkeep_fds && !p->keep)) {
        if (p) {
            free(p->name);
            free(p->arg);
            free(p->keep);
        }
        free(p);
        return -ENOMEM;
    }
    if (len)
        memcpy(p->arg, arg, len);
    if (o.nkeep_fds)
        memcpy(p->keep, o.keep_fds, o.nkeep_fds * sizeof(int));
    p->len = len;
    p->nkeep = o.nkeep_fds;
    p->fn = fn;
    p->daemon = o.daemon;
    p->pidfd = -1;
    weft_lock_init(&p->lock, 0);
    *out = p;
    return 0;
}

static bool kept(const weft_process_t *p, int fd)
{
    for (size_t i = 0; i < p->nkeep; i++)
        if (p->keep[i] == fd)
            return true;
    return false;
}

/* Close every descriptor from 3 up but the kept ones. */
static void close_inherited(const weft_process_t *p)
{
    if (p->nkeep == 0 && syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != self && !kept(p, fd) && e->d_name[0] != '.')
            close(fd);
    }
    closedir(d);
}

static _Noreturn void run_child(weft_process_t *p, pid_t ppid)
{
    if (p->daemon) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != ppid) /* died before the request took effect */
            _exit(1);
    }
    close_inherited(p);
    parent.name = current.name;
    parent.pid = ppid;
    parent.pidfd = sys_pidfd_open(ppid);
    has_parent = true;
    current.name = p->name;
    int code = p->fn(p->arg, p->len);
    weft__exit_threads(); /* its own non-daemon threads and children */
    fflush(NULL);
    _exit(code & 0xff);
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

int weft_process_start(weft_process_t *p)
{
    if (!p || p->borrowed)
        return -EINVAL;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    if (p->state != P_NEW) {
        weft_lock_release(&p->lock);
        return -EPERM;
    }
    pid_t ppid = getpid();
    fflush(NULL); /* or both copies of a buffer would be written */
    pid_t pid = fork();
    if (pid == 0)
        run_child(p, ppid);
    int rc = 0;
    if (pid < 0) {
        rc = errno == ENOMEM ? -ENOMEM : -EAGAIN;
    } else if ((p->pidfd = sys_pidfd_open(pid)) < 0) {
        rc = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    } else {
        p->pid = pid;
        p->state = P_RUNNING;
        link_child(p);
    }
    weft_lock_release(&p->lock);
    weft__at_exit(exit_hook);
    return rc;
}

/* Reap p if it has ended (caller holds p->lock); true once it has. */
static bool reap(weft_process_t *p)
{
    if (p->state != P_RUNNING)
        return p->state == P_ENDED;
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
    struct pollfd pfd = {parent.pidfd, POLLIN, 0};
    return poll(&pfd, 1, 0) == 0;
}

int weft_process_is_alive(weft_process_t *p)
{
    if (!p)
        return -EINVAL;
    if (p == &current)
        return 1;
    if (p == &parent)
        return parent_alive();
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
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
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
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
        weft_lock_acquire(&p->lock, WEFT_FOREVER);
        int state = p->state;
        bool ended = state == P_RUNNING && reap(p);
        int fd = p->pidfd;
        weft_lock_release(&p->lock);
        if (state == P_NEW)
            return -EPERM;
        if (state == P_ENDED || ended)
            return 0;
        if (expired) /* looked once more after the deadline */
            return weft__timeout_error(timeout);
        expired = weft__poll_readable(fd, deadline) == 0;
    }
}

static int signal_child(weft_process_t *p, int sig)
{
    if (!p || p->borrowed)
        return -EINVAL;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
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
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    bool running = p->state == P_RUNNING && !reap(p);
    weft_lock_release(&p->lock);
    if (running)
        return -EBUSY;
    pthread_mutex_lock(&children_lock);
    unlink_child(p);
    pthread_mutex_unlock(&children_lock);
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p->name);
    free(p->arg);
    free(p->keep);
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
}

__attribute__((constructor)) static void process_init(void)
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
