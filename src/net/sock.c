/*
 * Sockets (weft/net.h): every socket non-blocking, and every call that
 * would block waits for readiness through the parking layer
 * (weft__park_fd), so that in an async task only the task waits, on its
 * loop's epoll, and a thread polls.
 *
 * Each call tries the system call first and waits only on EAGAIN, then
 * tries again: a socket that is ready costs one system call, as it would
 * blocking. A call's timeout is one deadline for the whole call, however
 * many waits it takes (a send of many bytes to a slow reader).
 *
 * Readiness waits are one-shot epoll registrations for now; the streams
 * and servers of weft/net.h to come register a connection once and keep
 * it, as libuv and Go's poller do.
 */
#include "base/park.h"
#include "net/net_int.h"
#include <weft/net.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct weft_sock {
    int fd;
    char *path; /* a Unix listener's, unlinked when it closes (as asyncio's servers) */
};

typedef union weft__addr addr_t;

/* host:port as a socket address if host is numeric (NULL: any IPv4):
 * 0, or 1 for a name to resolve. */
static int numeric_addr(const char *host, int port, addr_t *a, socklen_t *len)
{
    memset(a, 0, sizeof *a);
    if (!host || inet_pton(AF_INET, host, &a->in4.sin_addr) == 1) {
        a->in4.sin_family = AF_INET;
        a->in4.sin_port = htons((uint16_t)port);
        if (!host)
            a->in4.sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof a->in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
        a->in6.sin6_family = AF_INET6;
        a->in6.sin6_port = htons((uint16_t)port);
        *len = sizeof a->in6;
        return 0;
    }
    return 1;
}

/* host:port's addresses: the one a numeric host is, else the resolver's
 * (weft__resolve, which waits until the deadline). */
static int tcp_addrs(const char *host, int port, bool passive, weft__deadline_t deadline,
                     double timeout, struct weft__addrs *out)
{
    if (port < 0 || port > 65535 || (host && !*host))
        return -EINVAL;
    addr_t a;
    socklen_t len;
    if (numeric_addr(host, port, &a, &len) != 0)
        return weft__resolve(host, port, passive, deadline, timeout, out);
    out->addr = weft__malloc(sizeof *out->addr);
    out->len = weft__malloc(sizeof *out->len);
    if (!out->addr || !out->len) {
        weft__addrs_free(out);
        return -ENOMEM;
    }
    out->n = 1;
    out->addr[0] = a;
    out->len[0] = len;
    return 0;
}

static int unix_addr(const char *path, addr_t *a, socklen_t *len)
{
    if (!path || !*path)
        return -EINVAL;
    size_t n = strlen(path);
    if (n >= sizeof a->un.sun_path)
        return -ENAMETOOLONG;
    memset(a, 0, sizeof *a);
    a->un.sun_family = AF_UNIX;
    memcpy(a->un.sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Wrap fd (taken over: closed on failure). */
static int wrap(int fd, weft_sock_t **out)
{
    weft_sock_t *s = weft__malloc(sizeof *s);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    *s = (weft_sock_t){fd, NULL};
    *out = s;
    return 0;
}

static int new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (family != AF_UNIX) { /* small writes go out at once, as asyncio sets it */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int listen_on(const addr_t *a, socklen_t len, const weft_listen_opts_t *opts,
                     weft_sock_t **out)
{
    bool unix_path = a->sa.sa_family == AF_UNIX;
    int fd = new_socket(a->sa.sa_family);
    if (fd < 0)
        return fd;
    int one = 1, backlog = opts && opts->backlog > 0 ? opts->backlog : SOMAXCONN, rc = 0;
    bool bound = false;
    if ((!unix_path && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ||
        (opts && opts->reuse_port &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        !(bound = bind(fd, &a->sa, len) == 0) || listen(fd, backlog) != 0)
        rc = -errno;
    char *path = NULL;
    if (rc == 0 && unix_path && !(path = weft__strdup(a->un.sun_path)))
        rc = -ENOMEM;
    if (rc != 0)
        close(fd);
    else if ((rc = wrap(fd, out)) == 0) /* which closes fd if it fails */
        (*out)->path = path;
    if (rc != 0 && unix_path && bound) /* the file bind made, given up */
        unlink(a->un.sun_path);
    if (rc != 0)
        free(path);
    return rc;
}

int weft_tcp_listen(weft_sock_t **out, const char *host, int port, const weft_listen_opts_t *opts)
{
    struct weft__addrs all = {0, NULL, NULL};
    int rc = out ? tcp_addrs(host, port, true, WEFT__NEVER, -1, &all) : -EINVAL;
    if (rc == 0)
        rc = listen_on(&all.addr[0], all.len[0], opts, out); /* the resolver's first */
    weft__addrs_free(&all);
    return rc;
}

int weft_unix_listen(weft_sock_t **out, const char *path, const weft_listen_opts_t *opts)
{
    addr_t a;
    socklen_t len;
    int rc = out ? unix_addr(path, &a, &len) : -EINVAL;
    return rc ? rc : listen_on(&a, len, opts, out);
}

/* Wait until fd is ready for `events` or the deadline passes: 0 to try
 * again, or the error to return (-ETIMEDOUT, -EAGAIN for a timeout of 0,
 * -ECANCELED). */
static int await_ready(int fd, unsigned events, weft__deadline_t deadline, double timeout)
{
    int rc = weft__park_fd(fd, events, deadline, WEFT__WAIT_FD);
    return rc > 0 ? 0 : rc == 0 ? weft__timeout_error(timeout) : rc;
}

static int begin(const void *s, double timeout, weft__deadline_t *deadline)
{
    return !s ? -EINVAL : weft__deadline(timeout, deadline);
}

/* accept(2): the errors of a connection that went away before it was
 * taken, and a signal: take the next one. */
static bool connection_gone(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

int weft_sock_accept(weft_sock_t *listener, weft_sock_t **out, double timeout)
{
    weft__deadline_t deadline;
    int rc = out ? begin(listener, timeout, &deadline) : -EINVAL;
    while (rc == 0) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1; /* TCP_NODELAY is not inherited; ENOTSUP for Unix: harmless */
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return wrap(fd, out);
        }
        if (errno == EAGAIN)
            rc = await_ready(listener->fd, WEFT_READABLE, deadline, timeout);
        else if (!connection_gone(errno))
            rc = -errno;
    }
    return rc;
}

/* A Unix listener's queue is full (EAGAIN): no readiness says when it has
 * room, so look again after a pause, 1 ms doubling to 64 ms, until the
 * deadline. 0 to try again, or the error to return. */
static int pause_before_retry(weft__deadline_t deadline, double timeout, int64_t *pause_ns)
{
    int64_t now = weft__now_ns(), left = deadline == WEFT__NEVER ? INT64_MAX : deadline - now;
    if (left <= 0)
        return weft__timeout_error(timeout);
    int64_t ns = *pause_ns < left ? *pause_ns : left;
    *pause_ns = *pause_ns < 64000000 ? 2 * *pause_ns : *pause_ns;
    return weft_sleep((double)ns / 1e9);
}

/* 0 connected, 1 under way, or -errno (non-blocking: never EINTR). */
static int connect_once(int fd, const addr_t *a, socklen_t len)
{
    if (connect(fd, &a->sa, len) == 0)
        return 0;
    return errno == EINPROGRESS ? 1 : -errno;
}

/* A non-blocking connect: under way (EINPROGRESS) until the socket is
 * writable, and then its outcome is SO_ERROR. */
static int connect_to(const addr_t *a, socklen_t len, weft__deadline_t deadline, double timeout,
                      weft_sock_t **out)
{
    int rc, fd = new_socket(a->sa.sa_family);
    if (fd < 0)
        return fd;
    int64_t pause_ns = 1000000;
    while ((rc = connect_once(fd, a, len)) == -EAGAIN && a->sa.sa_family == AF_UNIX &&
           (rc = pause_before_retry(deadline, timeout, &pause_ns)) == 0)
        ;
    while (rc == 1) { /* under way */
        int err = 0;
        socklen_t n = sizeof err;
        rc = await_ready(fd, WEFT_WRITABLE, deadline, timeout);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0)
            rc = -errno;
        else if (rc == 0 && err)
            rc = err == EINPROGRESS ? 1 : -err;
    }
    if (rc) {
        close(fd);
        return rc;
    }
    return wrap(fd, out);
}

/* Each address in turn until one takes the connection: the last one's
 * error otherwise (a name may have an IPv6 address the machine cannot
 * reach before the IPv4 one it can). */
int weft_tcp_connect(weft_sock_t **out, const char *host, int port, double timeout)
{
    weft__deadline_t deadline;
    struct weft__addrs all = {0, NULL, NULL};
    int rc = !out || !host ? -EINVAL : weft__deadline(timeout, &deadline); /* NULL: "any" */
    if (rc == 0)
        rc = tcp_addrs(host, port, false, deadline, timeout, &all);
    for (size_t i = 0; rc == 0 && i < all.n; i++) {
        rc = connect_to(&all.addr[i], all.len[i], deadline, timeout, out);
        if (rc == 0 || rc == -ECANCELED || rc == -ETIMEDOUT || rc == -EAGAIN || i + 1 == all.n)
            break;
        rc = 0;
    }
    weft__addrs_free(&all);
    return rc;
}

int weft_unix_connect(weft_sock_t **out, const char *path, double timeout)
{
    addr_t a;
    socklen_t len;
    weft__deadline_t deadline;
    int rc = out ? unix_addr(path, &a, &len) : -EINVAL;
    if (rc == 0)
        rc = weft__deadline(timeout, &deadline);
    return rc ? rc : connect_to(&a, len, deadline, timeout, out);
}

ssize_t weft_sock_recv(weft_sock_t *s, void *buf, size_t n, double timeout)
{
    weft__deadline_t deadline;
    int rc = buf || !n ? begin(s, timeout, &deadline) : -EINVAL;
    if (rc == 0 && n == 0)
        return 0; /* the kernel would say EAGAIN: nothing to wait for */
    while (rc == 0) {
        ssize_t got = recv(s->fd, buf, n, 0);
        if (got >= 0)
            return got;
        if (errno == EAGAIN)
            rc = await_ready(s->fd, WEFT_READABLE, deadline, timeout);
        else if (errno != EINTR)
            rc = -errno;
    }
    return rc;
}

ssize_t weft_sock_send(weft_sock_t *s, const void *buf, size_t n, double timeout)
{
    weft__deadline_t deadline;
    int rc = buf || !n ? begin(s, timeout, &deadline) : -EINVAL;
    size_t sent = 0;
    while (rc == 0 && sent < n) {
        ssize_t k = send(s->fd, (const char *)buf + sent, n - sent, MSG_NOSIGNAL);
        if (k >= 0)
            sent += (size_t)k;
        else if (errno == EAGAIN)
            rc = await_ready(s->fd, WEFT_WRITABLE, deadline, timeout);
        else if (errno != EINTR)
            rc = -errno;
    }
    if (sent == 0)
        return rc;
    if (rc == -ECANCELED) /* reported by the count: the task's next wait reports it */
        weft__park_recancel();
    return (ssize_t)sent;
}

int weft_sock_shutdown_write(weft_sock_t *s)
{
    if (!s)
        return -EINVAL;
    return shutdown(s->fd, SHUT_WR) == 0 ? 0 : -errno;
}

int weft_sock_close(weft_sock_t *s)
{
    if (!s)
        return -EINVAL;
    if (s->path)
        unlink(s->path);
    int rc = close(s->fd) == 0 || errno == EINTR ? 0 : -errno; /* Linux closes it even so */
    free(s->path);
    free(s);
    return rc;
}

int weft_sock_abort(weft_sock_t *s)
{
    if (!s)
        return -EINVAL;
    struct linger reset = {1, 0}; /* close sends a reset, not what is left */
    (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    return weft_sock_close(s);
}

int weft_sock_fd(weft_sock_t *s)
{
    return s ? s->fd : -EINVAL;
}

int weft_sock_port(weft_sock_t *s)
{
    addr_t a;
    socklen_t len = sizeof a;
    if (!s)
        return -EINVAL;
    if (getsockname(s->fd, &a.sa, &len) != 0)
        return -errno;
    if (a.sa.sa_family == AF_INET)
        return ntohs(a.in4.sin_port);
    if (a.sa.sa_family == AF_INET6)
        return ntohs(a.in6.sin6_port);
    return -EINVAL; /* a Unix socket has no port */
}
