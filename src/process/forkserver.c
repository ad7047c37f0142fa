/*
 * The forkserver start method: a server process forks the children, so a
 * multithreaded program never forks itself.
 *
 * The server is a spawned copy of the program (spawn.c, boot.c) that never
 * reaches main and never starts a thread: its forks are as safe as a
 * single-threaded program's. It talks to its client over a SOCK_SEQPACKET
 * socket pair, one message per request and per reply, descriptors passed
 * with SCM_RIGHTS:
 *
 *   request   int32 stdio mask (which of 0, 1, 2 follow)
 *             fds: the request memfd (spawn.c's format), the write end of a
 *                  status pipe, the client's open stdio, the kept descriptors
 *   reply     int32 pid, int32 error (0 or -errno)
 *             fds: the child's pidfd, when the error is 0
 *
 * The server decodes the request before forking, so a bad one is an error
 * in the reply, not a dead child. The child moves the passed descriptors
 * to the numbers they had in the client (through numbers above all of
 * them, so no move overwrites another) and runs as any child does. The
 * server reaps its children as SIGCHLD arrives (a signalfd in its poll
 * loop) and writes each exit code into that child's status pipe, which the
 * client reads to reap (process.c); the pidfd gives the client poll and
 * signals that cannot hit a reused pid.
 *
 * The client's requests are serialized by one mutex, a request and its
 * reply together. When the client dies, its end of the socket closes: the
 * server kills its daemon children and exits, and its other children live
 * on, as the children of a dead parent do. A server found dead when a
 * request is sent is reaped and started again once; a server that dies
 * between a request and its reply fails that start with -EAGAIN (it may
 * or may not have forked the child, so the start is not repeated).
 */
#include "process/process_int.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_FDS = 2 + 3 + WEFT_PROCESS_MAX_KEEP_FDS };

static pthread_mutex_t server_lock = PTHREAD_MUTEX_INITIALIZER;
static int server_sock = -1;
static pid_t server_pid;

/* Send len bytes and n descriptors as one message. */
static int send_fds(int sock, const void *buf, size_t len, const int *fds, size_t n)
{
    union {
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n) {
        memset(&ctl, 0, sizeof ctl);
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    ssize_t rc;
    do
        rc = weft__sys.sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

/* Receive one message of exactly len bytes and its descriptors (close-on-
 * exec); the number of descriptors, 0 at the end of the stream with *len
 * set to 0, or -errno: -EBADMSG for a message of another size, -EMFILE for
 * a whole message whose descriptors did not fit this process's table
 * (those that came are closed either way). */
static int recv_fds(int sock, void *buf, size_t *len, int *fds)
{
    union {
        char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, *len};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl};
    ssize_t got;
    do
        got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return -errno;
    int n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds + n, CMSG_DATA(c), (size_t)k * sizeof(int));
            n += k;
        }
    bool whole = (size_t)got == *len && !(msg.msg_flags & MSG_TRUNC);
    if (got == 0 && n == 0) {
        *len = 0;
        return 0;
    }
    if (!whole || (msg.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < n; i++)
            close(fds[i]);
        return whole ? -EMFILE : -EBADMSG;
    }
    return n;
}

/* ---- the client ---- */

static int server_launch(void)
{
    int sv[2];
    if (weft__sys.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* Ours must not pass for our stdin in the children we fork, the
     * server's is found by its number. */
    sv[0] = weft__fd_above_stdio(sv[0]);
    sv[1] = weft__fd_above_stdio(sv[1]);
    char **env = weft__child_environ('f', sv[1]);
    pid_t pid = sv[0] < 0   ? sv[0]
                : sv[1] < 0 ? sv[1]
                : env       ? weft__spawn_self(env, &sv[1], 1)
                            : -ENOMEM;
    free(env);
    close(sv[1]); /* close(-1) is harmless */
    if (pid < 0) {
        close(sv[0]);
        return (int)pid;
    }
    server_sock = sv[0];
    server_pid = pid;
    return 0;
}

/* The server has gone: forget it, and reap it. */
static void server_drop(void)
{
    close(server_sock);
    server_sock = -1;
    waitpid(server_pid, NULL, 0);
}

int weft_process_forkserver_start(void)
{
    pthread_mutex_lock(&server_lock);
    int rc = server_sock >= 0 ? 0 : server_launch();
    pthread_mutex_unlock(&server_lock);
    return rc;
}

/* Which of 0, 1 and 2 are open (bits 0-2): looked at before a start
 * opens anything, which would take the number of one that is closed. */
static int32_t stdio_open(void)
{
    int32_t mask = 0;
    for (int fd = 0; fd < 3; fd++)
        mask |= (fcntl(fd, F_GETFD) >= 0) << fd;
    return mask;
}

/* One request and its reply; -EPIPE when the request found no server. */
static int exchange(int req, int status_w, int32_t mask, const weft_process_t *p, pid_t *pid,
                    int *pidfd)
{
    int fds[MAX_FDS] = {req, status_w};
    size_t n = 2;
    for (int fd = 0; fd < 3; fd++)
        if (mask & (1 << fd))
            fds[n++] = fd;
    for (size_t i = 0; i < p->nkeep; i++)
        fds[n++] = p->keep[i];
    int rc = send_fds(server_sock, &mask, sizeof mask, fds, n);
    if (rc == -EPIPE || rc == -ECONNRESET)
        return -EPIPE;
    if (rc < 0)
        return rc;
    int32_t reply[2];
    size_t len = sizeof reply;
    int got = recv_fds(server_sock, reply, &len, fds);
    if (got == -EMFILE && reply[1] == 0) {
        /* The child runs, but its pidfd found no room here: end it (it is
         * alive and unreaped, so the pid is still its own). */
        kill(reply[0], SIGKILL);
        return -EMFILE;
    }
    if (got < 0 || len == 0) {
        server_drop();
        return -EAGAIN;
    }
    if (reply[1] < 0 || got != 1) {
        for (int i = 0; i < got; i++)
            close(fds[i]);
        return reply[1] < 0 ? reply[1] : -EBADMSG;
    }
    *pid = reply[0];
    *pidfd = fds[0];
    return 0;
}

int weft__start_forkserver(weft_process_t *p)
{
    for (size_t i = 0; i < p->nkeep; i++)
        if (fcntl(p->keep[i], F_GETFD) < 0)
            return -EBADF; /* a descriptor to keep that is not open */
    int32_t mask = stdio_open();
    int req = weft__request_encode(p, -1); /* the server's children need no lifeline */
    if (req < 0)
        return req;
    int st[2];
    if (pipe2(st, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(req);
        return rc;
    }
    fcntl(st[0], F_SETFL, O_NONBLOCK);
    pid_t pid = 0;
    int pidfd = -1, rc = -EPIPE;
    pthread_mutex_lock(&server_lock);
    for (int attempt = 0; attempt < 2 && rc == -EPIPE; attempt++) {
        if (server_sock < 0 && (rc = server_launch()) < 0)
            break;
        rc = exchange(req, st[1], mask, p, &pid, &pidfd);
        if (rc == -EPIPE)
            server_drop();
    }
    pthread_mutex_unlock(&server_lock);
    close(req);
    close(st[1]);
    if (rc < 0) {
        close(st[0]);
        return rc == -EPIPE ? -EAGAIN : rc;
    }
    p->pid = pid;
    p->pidfd = pidfd;
    p->statusfd = st[0];
    return 0;
}

/* A forked child of ours is not the server's client: it starts its own
 * server if it needs one. */
static void forget_server(void)
{
    if (server_sock >= 0)
        close(server_sock);
    server_sock = -1;
}

WEFT__CONSTRUCTOR static void forkserver_init(void)
{
    weft__fork_guard(&server_lock, WEFT__RANK_FORKSERVER, forget_server);
}

/* ---- the server ---- */

struct served {
    pid_t pid;
    int status_w;
    bool daemon;
};

static struct served *served;
static size_t nserved, cap_served;

/* Move the passed descriptors to their numbers in the client: first all
 * above every number involved, then down to their targets. */
static void place_fds(const int *from, const int *to, size_t n)
{
    int floor = 3;
    for (size_t i = 0; i < n; i++) {
        floor = from[i] >= floor ? from[i] + 1 : floor;
        floor = to[i] >= floor ? to[i] + 1 : floor;
    }
    int high[3 + WEFT_PROCESS_MAX_KEEP_FDS];
    for (size_t i = 0; i < n; i++) {
        high[i] = from[i] < 0 ? -1 : fcntl(from[i], F_DUPFD, floor);
        if (from[i] >= 0)
            close(from[i]);
    }
    for (size_t i = 0; i < n; i++) {
        if (high[i] < 0) {
            close(to[i]); /* closed in the client: closed here */
            continue;
        }
        dup2(high[i], to[i]);
        close(high[i]);
    }
}

static _Noreturn void become_child(struct weft__child *c, const int *fds, int32_t mask)
{
    sigset_t none;
    sigemptyset(&none);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int from[3 + WEFT_PROCESS_MAX_KEEP_FDS], to[3 + WEFT_PROCESS_MAX_KEEP_FDS];
    size_t n = 0, k = 2;
    for (int fd = 0; fd < 3; fd++, n++) {
        from[n] = mask & (1 << fd) ? fds[k++] : -1;
        to[n] = fd;
    }
    for (size_t i = 0; i < c->nkeep; i++, n++) {
        from[n] = fds[k++];
        to[n] = c->keep[i];
    }
    place_fds(from, to, n);
    weft__child_run(c);
}

static int remember(pid_t pid, int status_w, bool daemon)
{
    if (nserved == cap_served) {
        size_t cap = cap_served ? 2 * cap_served : 16;
        struct served *bigger = realloc(served, cap * sizeof *bigger);
        if (!bigger)
            return -ENOMEM;
        served = bigger;
        cap_served = cap;
    }
    served[nserved++] = (struct served){pid, status_w, daemon};
    return 0;
}

/* Fork the child one request asks for; the reply's error. */
static int32_t fork_one(const int *fds, int n, int32_t mask, pid_t *pid, int *pidfd)
{
    int stdio = __builtin_popcount((unsigned)mask & 7);
    struct weft__child c;
    void *mem = NULL;
    int32_t rc = n < 2 + stdio ? -EBADMSG : weft__request_decode(fds[0], &c, &mem);
    if (rc == 0 && (size_t)n != 2 + (size_t)stdio + c.nkeep)
        rc = -EBADMSG;
    bool forked = false;
    if (rc == 0) {
        c.real_parent = getpid();
        *pid = weft__sys.fork();
        if (*pid == 0)
            become_child(&c, fds, mask);
        forked = *pid > 0;
        rc = forked ? 0 : errno == ENOMEM ? -ENOMEM : -EAGAIN;
    }
    if (forked && (*pidfd = weft__pidfd_open(*pid)) < 0) {
        rc = *pidfd; /* a child nobody can watch: end it (it is reaped as usual) */
        kill(*pid, SIGKILL);
    }
    bool kept = forked && remember(*pid, fds[1], c.daemon) == 0;
    free(mem);
    for (int i = 0; i < n; i++)
        if (!(i == 1 && kept)) /* status_w belongs to the table now */
            close(fds[i]);
    return rc;
}

/* Tell the client how child pid ended. */
static void report(pid_t pid, int code)
{
    for (size_t i = 0; i < nserved; i++)
        if (served[i].pid == pid) {
            ssize_t n = write(served[i].status_w, &code, sizeof code);
            (void)n; /* a client that has gone is no longer asking */
            close(served[i].status_w);
            served[i] = served[--nserved];
            return;
        }
}

static void reap_all(void)
{
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
            return;
        report(si.si_pid, si.si_code == CLD_EXITED ? si.si_status : -si.si_status);
    }
}

/* The client has gone: its daemon children go with it. */
static _Noreturn void shut_down(void)
{
    for (size_t i = 0; i < nserved; i++)
        if (served[i].daemon)
            kill(served[i].pid, SIGKILL);
    weft__exit_now(0);
}

static void serve_request(int sock)
{
    int32_t mask;
    size_t len = sizeof mask;
    int fds[MAX_FDS];
    int n = recv_fds(sock, &mask, &len, fds);
    if ((n == 0 && len == 0) || (n < 0 && n != -EBADMSG && n != -EMFILE))
        shut_down();
    pid_t pid = 0;
    int pidfd = -1;
    int32_t err = n < 0 ? n : fork_one(fds, n, mask, &pid, &pidfd);
    int32_t reply[2] = {err == 0 ? pid : 0, err};
    send_fds(sock, reply, sizeof reply, &pidfd, err == 0);
    if (pidfd >= 0)
        close(pidfd);
}

_Noreturn void weft__forkserver_serve(int sock, pid_t client)
{
    (void)client; /* its end of the socket tells when it has gone */
    if (sock > 3)
        syscall(SYS_close_range, 3u, (unsigned)sock - 1, 0u);
    syscall(SYS_close_range, (unsigned)sock + 1, ~0u, 0u);
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        weft__exit_now(1); /* the client sees the server gone */
    for (;;) {
        struct pollfd pfd[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0)
            continue;
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            reap_all();
        }
        if (pfd[0].revents)
            serve_request(sock);
    }
}
