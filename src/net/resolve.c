/*
 * Name resolution (net_int.h): getaddrinfo on the default thread pool,
 * asyncio's loop.getaddrinfo, since the C library's resolver blocks.
 *
 * At most LOOKUPS_MAX lookups run at once, counted by a semaphore that a
 * lookup holds from before it is submitted until its job has ended, not
 * until its caller stops waiting: a caller that gives up (its deadline, a
 * cancellation) leaves the job running, and slow DNS could otherwise fill
 * the pool with lookups nobody waits for. The job and its caller share the
 * lookup, counted; whichever lets go last frees it, and the answer with it.
 */
#include "net/net_int.h"

#include <weft/future.h>
#include <weft/pool.h>
#include <weft/sync.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOOKUPS_MAX = 4 };

static weft_sem_t lookups = WEFT_SEM_INIT(LOOKUPS_MAX);

struct lookup {
    _Atomic int refs; /* the caller's and the job's */
    char *host;
    char port[8];
    bool passive;
    int rc;  /* getaddrinfo's, */
    int err; /*   and errno for EAI_SYSTEM (the job's thread's) */
    struct addrinfo *res;
};

static void lookup_release(struct lookup *l)
{
    if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (l->res)
        freeaddrinfo(l->res);
    free(l->host);
    free(l);
}

static void *lookup_job(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags =
                                 AI_ADDRCONFIG | AI_NUMERICSERV | (l->passive ? AI_PASSIVE : 0)};
    l->rc = getaddrinfo(l->host, l->port, &hints, &l->res);
    l->err = l->rc == EAI_SYSTEM ? errno : 0;
    weft_sem_release(&lookups, 1);
    lookup_release(l);
    return NULL;
}

/* The time left before deadline, as a timeout: -1 for never. */
static double seconds_left(weft__deadline_t deadline)
{
    if (deadline == WEFT__NEVER)
        return -1;
    int64_t left = deadline - weft__now_ns();
    return left > 0 ? (double)left / 1e9 : 0;
}

static int lookup_error(int rc, int err)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
    case EAI_ADDRFAMILY:
        return -ENOENT;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return err ? -err : -EIO;
    default:
        return -EIO;
    }
}

/* Copy the answer out: the caller's own, whatever becomes of the lookup. */
static int take_answer(const struct addrinfo *res, struct weft__addrs *out)
{
    size_t n = 0;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        n += a->ai_addrlen <= sizeof(union weft__addr);
    out->addr = weft__calloc(n ? n : 1, sizeof *out->addr);
    out->len = weft__calloc(n ? n : 1, sizeof *out->len);
    if (!out->addr || !out->len) {
        weft__addrs_free(out);
        return -ENOMEM;
    }
    out->n = 0;
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_addrlen > sizeof(union weft__addr))
            continue;
        memcpy(&out->addr[out->n], a->ai_addr, a->ai_addrlen);
        out->len[out->n++] = a->ai_addrlen;
    }
    return out->n ? 0 : -ENOENT;
}

static int lookup_new(const char *host, int port, bool passive, struct lookup **out)
{
    struct lookup *l = weft__calloc(1, sizeof *l);
    char *copy = weft__strdup(host);
    if (!l || !copy) {
        free(l);
        free(copy);
        return -ENOMEM;
    }
    atomic_init(&l->refs, 2);
    l->host = copy;
    l->passive = passive;
    snprintf(l->port, sizeof l->port, "%d", port);
    *out = l;
    return 0;
}

int weft__resolve(const char *host, int port, bool passive, weft__deadline_t deadline,
                  double timeout, struct weft__addrs *out)
{
    *out = (struct weft__addrs){0, NULL, NULL};
    weft_pool_t *pool = weft_pool_default();
    if (!pool)
        return -ENOMEM;
    int rc = weft_sem_acquire(&lookups, seconds_left(deadline));
    if (rc != 0)
        return rc == -ETIMEDOUT ? weft__timeout_error(timeout) : rc;
    struct lookup *l;
    weft_future_t *f;
    if ((rc = lookup_new(host, port, passive, &l)) == 0 &&
        (rc = weft_pool_submit(pool, lookup_job, l, &f)) != 0) {
        atomic_store_explicit(&l->refs, 1, memory_order_relaxed); /* no job to count */
        lookup_release(l);
    }
    if (rc != 0) {
        weft_sem_release(&lookups, 1);
        return rc;
    }
    rc = weft_future_result(f, seconds_left(deadline), NULL);
    weft_future_free(f); /* the pool keeps its own while the job runs */
    if (rc == 0)
        rc = l->rc ? lookup_error(l->rc, l->err) : take_answer(l->res, out);
    else if (rc == -ETIMEDOUT || rc == -EAGAIN)
        rc = weft__timeout_error(timeout);
    lookup_release(l);
    return rc;
}

void weft__addrs_free(struct weft__addrs *a)
{
    free(a->addr);
    free(a->len);
    *a = (struct weft__addrs){0, NULL, NULL};
}
