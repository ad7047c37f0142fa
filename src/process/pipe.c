/*
 * Pipe and connection ends (weft/process.h).
 *
 * Both ends are a Unix stream socket pair, also for a one-way pipe (whose
 * unused directions are shut down): sends use MSG_NOSIGNAL, so a closed
 * peer is -EPIPE and never SIGPIPE, which a plain pipe cannot offer.
 *
 * A message is an 8-byte length in host order (both ends are on one
 * machine) followed by the bytes. Sends and receives loop over partial
 * transfers and EINTR. The receiver checks the length against its maximum
 * before allocating anything; a length over it, or a stream that ends
 * inside a message, breaks the end for good (the stream can no longer be
 * trusted to be in step). A message too big for a caller's buffer is read
 * and dropped in pieces, so the stream stays in step.
 *
 * An end given to a child (give.h) travels as its descriptor, directions
 * and maximum; an end a forked child was not given is stale there (its
 * epoch): every call is -EBADF and close frees it without closing the
 * descriptor number, which is no longer its own.
 */
#include "base/park.h"
#include "sync/hold.h"
#include "process/give.h"
#include <weft/process.h>
#include <weft/sync.h>

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX ((size_t)64 << 20)

enum { CAN_SEND = 1, CAN_RECV = 2 };

struct weft_conn {
    int fd;
    int can;
    bool broken;
    unsigned epoch; /* give.h */
    size_t max;
    weft_lock_t send_lock, recv_lock;
};

static weft_conn_t *conn_new(int fd, int can)
{
    weft_conn_t *c = weft__calloc(1, sizeof *c);
    if (c) {
        c->fd = fd;
        c->can = can;
        c->max = DEFAULT_MAX;
        c->epoch = weft__epoch;
    }
    return c;
}

/* 0 if c can be used here; -EINVAL, or -EBADF for an end not given. */
static int usable(const weft_conn_t *c)
{
    return !c ? -EINVAL : WEFT__MINE(c) ? 0 : -EBADF;
}

int weft__conn_describe(void *obj, struct weft__gift *g)
{
    weft_conn_t *c = obj;
    int rc = usable(c);
    if (rc < 0)
        return rc;
    g->fd = c->fd;
    g->can = (uint32_t)c->can;
    g->max = c->max;
    return 0;
}

void weft__conn_claim(void *c)
{
    ((weft_conn_t *)c)->epoch = weft__epoch;
}

int weft__conn_rebuild(const struct weft__gift *g, void **out)
{
    weft_conn_t *c = conn_new(g->fd, (int)g->can);
    if (c)
        c->max = (size_t)g->max;
    *out = c;
    return c ? 0 : -ENOMEM;
}

int weft_pipe(weft_conn_t **a, weft_conn_t **b, bool duplex)
{
    if (!a || !b)
        return -EINVAL;
    int fds[2];
    if (weft__sys.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    if (!duplex) { /* a receives, b sends */
        shutdown(fds[0], SHUT_WR);
        shutdown(fds[1], SHUT_RD);
    }
    *a = conn_new(fds[0], duplex ? CAN_SEND | CAN_RECV : CAN_RECV);
    *b = conn_new(fds[1], duplex ? CAN_SEND | CAN_RECV : CAN_SEND);
    if (!*a || !*b) {
        free(*a);
        free(*b);
        close(fds[0]);
        close(fds[1]);
        return -ENOMEM;
    }
    return 0;
}

int weft_conn_from_fd(weft_conn_t **c, int fd)
{
    if (!c || fd < 0)
        return -EINVAL;
    if (fcntl(fd, F_GETFD) < 0)
        return -EBADF; /* adopting it would only fail later, or close a stranger's */
    return (*c = conn_new(fd, CAN_SEND | CAN_RECV)) ? 0 : -ENOMEM;
}

int weft_conn_fileno(weft_conn_t *c)
{
    int rc = usable(c);
    return rc < 0 ? rc : c->fd;
}

int weft_conn_set_max_message(weft_conn_t *c, size_t max)
{
    int rc = usable(c);
    if (rc < 0 || max == 0)
        return rc < 0 ? rc : -EINVAL;
    c->max = max;
    return 0;
}

int weft_conn_close(weft_conn_t *c)
{
    if (!c)
        return -EINVAL;
    if (WEFT__MINE(c))
        close(c->fd);
    free(c);
    return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int weft_conn_send_bytes(weft_conn_t *c, const void *buf, size_t len)
{
    if (!c || (len && !buf))
        return -EINVAL;
    if (!WEFT__MINE(c))
        return -EBADF;
    if (!(c->can & CAN_SEND))
        return -EPERM;
    if (len > c->max)
        return -EMSGSIZE;
    uint64_t header = len;
    weft__lock_hold(&c->send_lock);
    int rc = send_all(c->fd, &header, sizeof header);
    if (rc == 0)
        rc = send_all(c->fd, buf, len);
    weft_lock_release(&c->send_lock);
    return rc;
}

/* Read exactly len bytes (buf NULL: read and drop them): 0, -EPIPE at an
 * end of stream before the first byte, -EBADMSG at one after it. */
static int recv_all(int fd, void *buf, size_t len)
{
    char scratch[4096], *p = buf;
    size_t got = 0;
    while (got < len) {
        size_t want = len - got;
        if (!buf && want > sizeof scratch)
            want = sizeof scratch;
        ssize_t n = recv(fd, buf ? p + got : scratch, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? -EPIPE : -errno;
        if (n == 0)
            return got ? -EBADMSG : -EPIPE;
        got += (size_t)n;
    }
    return 0;
}

/* Read a header; the length, or an error (breaking the end if bad). */
static ssize_t recv_header(weft_conn_t *c)
{
    if (c->broken)
        return -EBADMSG;
    uint64_t header;
    int rc = recv_all(c->fd, &header, sizeof header);
    if (rc == 0 && (header > c->max || header > (uint64_t)SSIZE_MAX))
        rc = -EBADMSG;
    if (rc == -EBADMSG)
        c->broken = true;
    return rc < 0 ? rc : (ssize_t)header;
}

static ssize_t recv_body(weft_conn_t *c, void *buf, size_t len)
{
    int rc = recv_all(c->fd, buf, len);
    if (rc == -EPIPE && len) /* the stream ended inside the message */
        rc = -EBADMSG;
    if (rc == -EBADMSG)
        c->broken = true;
    return rc < 0 ? rc : (ssize_t)len;
}

ssize_t weft_conn_recv_bytes(weft_conn_t *c, void **buf)
{
    if (!c || !buf)
        return -EINVAL;
    if (!WEFT__MINE(c))
        return -EBADF;
    if (!(c->can & CAN_RECV))
        return -EPERM;
    weft__lock_hold(&c->recv_lock);
    ssize_t len = recv_header(c);
    void *data = NULL;
    if (len >= 0 && !(data = weft__malloc(len ? (size_t)len : 1))) {
        recv_body(c, NULL, (size_t)len); /* keep in step */
        len = -ENOMEM;
    }
    if (len >= 0)
        len = recv_body(c, data, (size_t)len);
    weft_lock_release(&c->recv_lock);
    if (len < 0) {
        free(data);
        return len;
    }
    *buf = data;
    return len;
}

ssize_t weft_conn_recv_bytes_into(weft_conn_t *c, void *buf, size_t cap)
{
    if (!c || (cap && !buf))
        return -EINVAL;
    if (!WEFT__MINE(c))
        return -EBADF;
    if (!(c->can & CAN_RECV))
        return -EPERM;
    weft__lock_hold(&c->recv_lock);
    ssize_t len = recv_header(c);
    if (len >= 0 && (size_t)len > cap) {
        ssize_t rc = recv_body(c, NULL, (size_t)len); /* drop it, stay in step */
        len = rc < 0 ? rc : -EMSGSIZE;
    } else if (len >= 0) {
        len = recv_body(c, buf, (size_t)len);
    }
    weft_lock_release(&c->recv_lock);
    return len;
}

int weft_conn_poll(weft_conn_t *c, double timeout)
{
    if (!c || isnan(timeout))
        return -EINVAL;
    if (!WEFT__MINE(c))
        return -EBADF;
    if (!(c->can & CAN_RECV))
        return -EPERM; /* its read side is shut down: always "readable" */
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return weft__park_fd(c->fd, WEFT_READABLE, deadline, WEFT__WAIT_PROCESS);
}
