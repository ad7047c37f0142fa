/*
 * Inside weft/net.h: socket addresses, and the resolver that turns a host
 * name into them (resolve.c) for the sockets (sock.c).
 */
#ifndef WEFT_SRC_NET_NET_INT_H
#define WEFT_SRC_NET_NET_INT_H

#include "base/base.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

union weft__addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
};

/* What a host resolves to, in the resolver's order. */
struct weft__addrs {
    size_t n;
    union weft__addr *addr;
    socklen_t *len;
};

/* The TCP addresses of host:port (a name or a numeric address; passive:
 * for a listener), looked up by getaddrinfo on the default thread pool, at
 * most a few lookups at a time (slow DNS must not take every worker of the
 * pool, libuv's trap), the wait ending at the deadline (timeout: what the
 * caller asked, for its error) or at a cancellation. 0, or -ENOENT (no
 * such name), -EIO (the resolver failed), -ENOMEM, -ETIMEDOUT, -EAGAIN,
 * -ECANCELED. Free the addresses with weft__addrs_free. */
int weft__resolve(const char *host, int port, bool passive, weft__deadline_t deadline,
                  double timeout, struct weft__addrs *out);
void weft__addrs_free(struct weft__addrs *a);

#endif /* WEFT_SRC_NET_NET_INT_H */
