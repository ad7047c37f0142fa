/*
 * weft/net.h: sockets whose waits suspend only the calling task in an async
 * task (weft/async.h) and block only the calling thread elsewhere, as
 * asyncio's loop.sock_* calls do, without callbacks: TCP over IPv4 and
 * IPv6, and Unix stream sockets.
 *
 *     Python (asyncio)                        weft
 *     sock = socket(); bind; listen           weft_tcp_listen(&ls, "127.0.0.1", 0, NULL)
 *     await loop.sock_accept(ls)              weft_sock_accept(ls, &s, timeout)
 *     await loop.sock_connect(s, addr)        weft_tcp_connect(&s, host, port, timeout)
 *     await loop.sock_recv(s, n)              weft_sock_recv(s, buf, n, timeout)
 *     await loop.sock_sendall(s, data)        weft_sock_send(s, buf, n, timeout)
 *     s.shutdown(SHUT_WR)                     weft_sock_shutdown_write(s)
 *     s.close()                               weft_sock_close(s)
 *     transport.abort()                       weft_sock_abort(s)
 *
 * Hosts are numeric addresses ("127.0.0.1", "::1"; NULL listens on every
 * IPv4 address) or names ("localhost"), which getaddrinfo looks up on the
 * default thread pool (weft/pool.h), at most four at a time so that slow
 * DNS cannot take every worker; a connect tries each address in turn, a
 * listener takes the first. A name that does not exist is -ENOENT, a
 * resolver that fails -EIO. Ports are 0-65535, 0 for one the kernel picks
 * (weft_sock_port says which). Every socket is non-blocking and
 * close-on-exec, TCP ones with TCP_NODELAY on (as asyncio sets it), and a
 * send to a peer that has gone is -EPIPE, never SIGPIPE.
 *
 * Timeouts are relative seconds for the whole call, as everywhere in weft
 * (negative: forever; 0: try once, -EAGAIN if it would wait). In a task,
 * a cancellation ends a wait with -ECANCELED. A socket may have one call
 * receiving and one sending at a time (from any tasks or threads); close
 * it only when no call on it is under way, as a file descriptor.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <weft/base.h>

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_sock weft_sock_t;

typedef struct weft_listen_opts {
    int backlog;     /* connections waiting to be accepted; 0: SOMAXCONN */
    bool reuse_port; /* SO_REUSEPORT: several listeners on one port (one per loop) */
} weft_listen_opts_t;

/* A listening TCP socket on host:port (SO_REUSEADDR, as asyncio's servers).
 * -EINVAL (an empty host, a port outside 0-65535), the lookup's error, or
 * -errno from socket, bind or listen (-EADDRINUSE). */
WEFT_API int weft_tcp_listen(weft_sock_t **out, const char *host, int port,
                             const weft_listen_opts_t *opts);

/* A listening Unix stream socket at path (which must not exist;
 * -ENAMETOOLONG past the 107 bytes sockaddr_un holds). */
WEFT_API int weft_unix_listen(weft_sock_t **out, const char *path, const weft_listen_opts_t *opts);

/* The next connection made to a listening socket. */
WEFT_API int weft_sock_accept(weft_sock_t *listener, weft_sock_t **out, double timeout);

/* A connection to host:port, or to a Unix socket at path: -ECONNREFUSED,
 * -ETIMEDOUT, or another -errno from connect. */
WEFT_API int weft_tcp_connect(weft_sock_t **out, const char *host, int port, double timeout);
WEFT_API int weft_unix_connect(weft_sock_t **out, const char *path, double timeout);

/* Up to n bytes received once some are there: how many, or 0 at end of
 * stream (n of 0 returns 0 at once). */
WEFT_API ssize_t weft_sock_recv(weft_sock_t *s, void *buf, size_t n, double timeout);

/* Send all n bytes, waiting for room as the peer reads: n; fewer if the
 * timeout passed, the task was cancelled or an error came after some were
 * sent; or the error if none were (-EPIPE, -ECONNRESET). */
WEFT_API ssize_t weft_sock_send(weft_sock_t *s, const void *buf, size_t n, double timeout);

/* No more sending: the peer receives end of stream once it has the rest. */
WEFT_API int weft_sock_shutdown_write(weft_sock_t *s);

/* Close (the peer gets what was sent, then end of stream), or abort (the
 * peer's calls fail with -ECONNRESET, and what was not yet sent is
 * dropped); either frees s. */
WEFT_API int weft_sock_close(weft_sock_t *s);
WEFT_API int weft_sock_abort(weft_sock_t *s);

/* The descriptor, for options weft does not set (owned by s); the local
 * port of a TCP socket (a listener's on port 0 included). */
WEFT_API int weft_sock_fd(weft_sock_t *s);
WEFT_API int weft_sock_port(weft_sock_t *s);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_NET_H */
