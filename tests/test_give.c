/*
 * Tests for giving objects to a child (weft/process.h, opts.give): each
 * kind (a Pipe end, a process Queue, a Value, SharedMemory anonymous and
 * named) under each start method, reached in the child through one code
 * path; an object given on to a grandchild; a child that uses what it was
 * not given gets -EBADF at once, never a wait (the program of a first-time
 * user that hung); the request that carries gifts to a spawned child; and
 * bad input.
 */
#include "base/base.h"
#include "process/process_int.h"
#include "request.h"
#include "wt.h"
#include <weft/mpqueue.h>
#include <weft/process.h>
#include <weft/shm.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static weft_start_method_t method;
#define FOR_EACH_METHOD for (method = WEFT_START_FORK; method <= WEFT_START_FORKSERVER; method++)

static weft_process_t *started(weft_process_fn fn, const void *arg, size_t len,
                               const weft_give_t *give, size_t ngive)
{
    weft_process_opts_t opts = {.method = method, .give = give, .ngive = ngive};
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, fn, arg, len, &opts), 0);
    WT_EQ(weft_process_start(p), 0);
    return p;
}

/* Join within a generous bound (a hang fails here, not at the case's
 * timeout) and close; the exit code. */
static int finished(weft_process_t *p)
{
    int code = -1;
    WT_EQ(weft_process_join(p, 30 * wt_slack()), 0);
    WT_EQ(weft_process_exitcode(p, &code), 1);
    WT_EQ(weft_process_close(p), 0);
    return code;
}

/* A descriptor number in use by something else (/dev/null) from now on. */
static void occupy(int fd)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    WT_CHECK(null >= 0);
    if (null != fd) {
        WT_EQ(dup2(null, fd), fd);
        close(null);
    }
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* --- every kind under every method ---------------------------------------- */

/* arg: the named segment's name. The same code whatever the method. */
static int use_gifts(const void *arg, size_t len)
{
    (void)len;
    weft_conn_t *c, *again;
    weft_mpqueue_t *q;
    weft_shared_t *v;
    weft_shm_t *s, *named;
    if (weft_process_given_conn(0, &c) || weft_process_given_mpqueue(1, &q) ||
        weft_process_given_shared(2, &v) || weft_process_given_shm(3, &s) ||
        weft_process_given_shm(4, &named))
        return 1;
    void *m;
    if (weft_conn_send_bytes(c, "pipe", 4) != 0 || weft_conn_recv_bytes(c, &m) != -EPERM)
        return 2; /* the same end: it sends, and only sends */
    if (weft_mpqueue_put(q, "queue", 5, WEFT_FOREVER) != 0)
        return 3;
    WEFT_WITH (weft_shared_lock(v))
        *(long *)weft_shared_ptr(v) += 42;
    strcpy(weft_shm_buf(s), "memory");
    if (!weft_shm_name(named) || strcmp(weft_shm_name(named), arg) != 0)
        return 4;
    strcpy(weft_shm_buf(named), "named");
    if (weft_process_given_conn(0, &again) != 0 || again != c)
        return 5; /* the same handle every time */
    if (weft_process_given_conn(1, &again) != -EINVAL || weft_process_given_shm(5, &s) != -EBADF ||
        weft_process_given_conn(0, NULL) != -EINVAL)
        return 6;
    return weft_conn_close(c) == 0 && weft_mpqueue_close(q) == 0 ? 0 : 7;
}
WEFT_PROCESS_REGISTER(use_gifts);

WT_CASE(each_kind_of_object_under_each_method)
{
    char name[64];
    snprintf(name, sizeof name, "/weft-give-%d", (int)getpid());
    FOR_EACH_METHOD {
        weft_conn_t *r, *w;
        weft_mpqueue_t *q;
        weft_shared_t *v;
        weft_shm_t *s, *named;
        WT_EQ(weft_pipe(&r, &w, false), 0);
        WT_EQ(weft_mpqueue_new(&q, NULL), 0);
        WT_EQ(weft_shared_new(&v, sizeof(long)), 0);
        WT_EQ(weft_shm_create(&s, NULL, 4096), 0);
        WT_EQ(weft_shm_create(&named, name, 4096), 0);
        weft_give_t give[] = {weft_give_conn(w), weft_give_mpqueue(q), weft_give_shared(v),
                              weft_give_shm(s), weft_give_shm(named)};
        weft_process_t *p = started(use_gifts, name, strlen(name) + 1, give, 5);
        WT_EQ(weft_conn_close(w), 0); /* the child has its own */
        char buf[16] = "";
        WT_EQ(weft_conn_recv_bytes_into(r, buf, sizeof buf), 4);
        WT_CHECK(memcmp(buf, "pipe", 4) == 0);
        WT_EQ(finished(p), 0);
        WT_EQ(weft_conn_recv_bytes_into(r, buf, sizeof buf), -EPIPE); /* the child closed it */
        WT_EQ(weft_mpqueue_get(q, buf, sizeof buf, 0), 5);
        WT_CHECK(memcmp(buf, "queue", 5) == 0);
        WT_EQ(*(long *)weft_shared_ptr(v), 42);
        WT_CHECK(strcmp(weft_shm_buf(s), "memory") == 0);
        WT_CHECK(strcmp(weft_shm_buf(named), "named") == 0);
        WT_EQ(weft_shm_unlink(named), 0);
        WT_EQ(weft_conn_close(r), 0);
        WT_EQ(weft_mpqueue_close(q), 0);
        WT_EQ(weft_shared_free(v), 0);
        WT_EQ(weft_shm_close(s), 0);
        WT_EQ(weft_shm_close(named), 0);
    }
}

/* --- given on -------------------------------------------------------------- */

static int put_one(const void *arg, size_t len)
{
    (void)arg, (void)len;
    weft_mpqueue_t *q;
    if (weft_process_given_mpqueue(0, &q) != 0)
        return 1;
    return weft_mpqueue_put(q, "grandchild", 10, WEFT_FOREVER) == 0 ? 0 : 2;
}
WEFT_PROCESS_REGISTER(put_one);

/* Gives its queue on to a child of its own under each method; its Value it
 * cannot give, not being the process that made it. */
static int relay(const void *arg, size_t len)
{
    (void)arg, (void)len;
    weft_mpqueue_t *q;
    weft_shared_t *v;
    if (weft_process_given_mpqueue(0, &q) != 0 || weft_process_given_shared(1, &v) != 0)
        return 1;
    for (int m = WEFT_START_FORK; m <= WEFT_START_FORKSERVER; m++) {
        weft_give_t give[] = {weft_give_mpqueue(q), weft_give_shared(v)};
        weft_process_opts_t opts = {.method = m, .give = give, .ngive = 2};
        weft_process_t *p;
        if (weft_process_new(&p, put_one, NULL, 0, &opts) != -EPERM)
            return 2;
        opts.ngive = 1;
        int code = -1;
        if (weft_process_new(&p, put_one, NULL, 0, &opts) != 0 || weft_process_start(p) != 0 ||
            weft_process_join(p, WEFT_FOREVER) != 0 || weft_process_exitcode(p, &code) != 1 ||
            code != 0)
            return 3;
        weft_process_close(p);
    }
    return 0;
}
WEFT_PROCESS_REGISTER(relay);

WT_CASE(a_child_gives_what_it_was_given_on)
{
    FOR_EACH_METHOD {
        weft_mpqueue_t *q;
        weft_shared_t *v;
        WT_EQ(weft_mpqueue_new(&q, NULL), 0);
        WT_EQ(weft_shared_new(&v, 8), 0);
        weft_give_t give[] = {weft_give_mpqueue(q), weft_give_shared(v)};
        WT_EQ(finished(started(relay, NULL, 0, give, 2)), 0);
        WT_EQ(weft_mpqueue_qsize(q), 3);
        WT_EQ(weft_mpqueue_close(q), 0);
        WT_EQ(weft_shared_free(v), 0);
    }
}

/* --- what a child was not given -------------------------------------------- */

/* The parent's handles, which a forked child has copies of. */
static weft_conn_t *parents_end;
static weft_mpqueue_t *parents_queue;
static weft_shm_t *parents_segment;

/* Uses an end it was not given: the first-time user's program, whose
 * parent then waited forever for this message. arg: the end's number. */
static int send_without_gift(const void *arg, size_t len)
{
    (void)len;
    int fd = *(const int *)arg;
    weft_conn_t *c;
    if (weft_process_given_conn(0, &c) != -EBADF)
        return 1;
    if (!parents_end) /* spawn, forkserver: a fresh program, nothing at the number */
        return !is_open(fd) || fd == weft_process_sentinel(weft_process_parent()) ? 0 : 2;
    if (weft_conn_send_bytes(parents_end, "x", 1) != -EBADF ||
        weft_conn_fileno(parents_end) != -EBADF || weft_conn_poll(parents_end, 0) != -EBADF)
        return 3;
    occupy(fd); /* the number, reused: close must leave it alone */
    return weft_conn_close(parents_end) == 0 && is_open(fd) ? 0 : 4;
}
WEFT_PROCESS_REGISTER(send_without_gift);

WT_CASE(a_pipe_end_not_given_is_ebadf_never_a_hang)
{
    FOR_EACH_METHOD {
        weft_conn_t *r;
        WT_EQ(weft_pipe(&r, &parents_end, false), 0);
        int fd = weft_conn_fileno(parents_end);
        weft_process_t *p = started(send_without_gift, &fd, sizeof fd, NULL, 0);
        WT_EQ(weft_conn_close(parents_end), 0);
        parents_end = NULL;
        void *m;
        WT_EQ(weft_conn_recv_bytes(r, &m), -EPIPE); /* no copy of the end is left */
        WT_EQ(finished(p), 0);
        WT_EQ(weft_conn_close(r), 0);
    }
}

/* A forked child given one queue: the parent's other handles are stale. */
static int use_only_the_gift(const void *arg, size_t len)
{
    (void)len;
    const int *fds = arg; /* the queue's and the segment's numbers */
    weft_mpqueue_t *given;
    char buf[8];
    if (weft_process_given_mpqueue(0, &given) != 0 || weft_mpqueue_put(given, "ok", 2, 0) != 0)
        return 1;
    if (weft_mpqueue_put(parents_queue, "no", 2, 0) != -EBADF ||
        weft_mpqueue_get(parents_queue, buf, sizeof buf, 0) != -EBADF ||
        weft_mpqueue_qsize(parents_queue) != -EBADF || weft_mpqueue_fd(parents_queue) != -EBADF)
        return 2;
    weft_process_t *p; /* nor can it give them on */
    weft_give_t give = weft_give_mpqueue(parents_queue);
    if (weft_process_new(&p, use_only_the_gift, NULL, 0,
                         &(weft_process_opts_t){.give = &give, .ngive = 1}) != -EBADF)
        return 3;
    /* Memory stays inherited under fork: the bytes, not the descriptor. */
    strcpy(weft_shm_buf(parents_segment), "inherited");
    if (weft_shm_fd(parents_segment) != -EBADF)
        return 4;
    occupy(fds[0]);
    occupy(fds[1]);
    if (weft_mpqueue_close(parents_queue) != 0 || weft_shm_close(parents_segment) != 0)
        return 5;
    return is_open(fds[0]) && is_open(fds[1]) ? 0 : 6; /* numbers it no longer owned */
}

static int fork_inherits_everything(void *arg)
{
    (void)arg;
    return weft_mpqueue_put(parents_queue, "fork()", 6, 0) == 0 ? 0 : 1;
}

WT_CASE(a_forked_child_can_use_only_what_it_was_given)
{
    weft_mpqueue_t *q;
    WT_EQ(weft_mpqueue_new(&parents_queue, NULL), 0);
    WT_EQ(weft_mpqueue_new(&q, NULL), 0);
    WT_EQ(weft_shm_create(&parents_segment, NULL, 64), 0);
    int fds[2] = {weft_mpqueue_fd(parents_queue), weft_shm_fd(parents_segment)};
    method = WEFT_START_FORK;
    weft_give_t give = weft_give_mpqueue(q);
    WT_EQ(finished(started(use_only_the_gift, fds, sizeof fds, &give, 1)), 0);
    WT_EQ(weft_mpqueue_qsize(q), 1);
    WT_EQ(weft_mpqueue_qsize(parents_queue), 0);
    WT_CHECK(strcmp(weft_shm_buf(parents_segment), "inherited") == 0);
    /* fork() itself, not a weft start, keeps every handle, as in Python. */
    int status = wt_fork(fork_inherits_everything, NULL, 30 * wt_slack());
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    WT_EQ(weft_mpqueue_qsize(parents_queue), 1);
    WT_EQ(weft_mpqueue_close(parents_queue), 0);
    WT_EQ(weft_mpqueue_close(q), 0);
    WT_EQ(weft_shm_close(parents_segment), 0);
}

/* --- the request a spawned child reads ------------------------------------- */

WT_CASE(a_request_carries_the_gifts_and_refuses_bad_ones)
{
    weft_conn_t *a, *b;
    weft_shm_t *named;
    char name[64];
    snprintf(name, sizeof name, "/weft-give-req-%d", (int)getpid());
    WT_EQ(weft_pipe(&a, &b, true), 0);
    WT_EQ(weft_conn_set_max_message(b, 1000), 0);
    WT_EQ(weft_shm_create(&named, name, 64), 0);
    WT_EQ(weft_shm_unlink(named), 0);
    weft_give_t give[] = {weft_give_conn(b), weft_give_shm(named)};
    weft_process_t *p;
    weft_process_opts_t opts = {.method = WEFT_START_SPAWN, .give = give, .ngive = 2};
    WT_EQ(weft_process_new(&p, use_gifts, NULL, 0, &opts), 0);
    int fd;
    size_t size;
    char *good = wt_request_bytes(p, &fd, &size);
    struct weft__child c;
    void *mem;
    WT_EQ(weft__request_decode(fd, &c, &mem), 0);
    close(fd);
    WT_EQ(c.ngifts, 2);
    WT_EQ(c.nkeep, 2);
    WT_EQ(c.gifts[0].kind, WEFT_GIVE_KIND_CONN);
    WT_EQ(c.gifts[0].fd, weft_conn_fileno(b));
    WT_EQ(c.gifts[0].max, 1000);
    WT_CHECK(c.gifts[0].obj == NULL && c.gifts[0].name == NULL);
    WT_EQ(c.gifts[1].kind, WEFT_GIVE_KIND_SHM);
    WT_CHECK(c.gifts[1].name && strcmp(c.gifts[1].name, name) == 0);
    /* A gift of no known kind, or whose descriptor is not kept, is refused. */
    size_t at = (size_t)((char *)&c.gifts[0] - (char *)mem);
    free(mem);
    struct weft__gift g;
    const size_t fields[] = {offsetof(struct weft__gift, kind), offsetof(struct weft__gift, fd)};
    for (size_t i = 0; i < 2; i++) {
        char *bad = malloc(size);
        memcpy(bad, good, size);
        memcpy(&g, bad + at, sizeof g);
        int junk = 1000;
        memcpy((char *)&g + fields[i], &junk, sizeof junk);
        memcpy(bad + at, &g, sizeof g);
        fd = wt_request_fd(bad, size);
        WT_EQ(weft__request_decode(fd, &c, &mem), -EBADMSG);
        close(fd);
        free(bad);
    }
    free(good);
    WT_EQ(weft_process_close(p), 0);
    WT_EQ(weft_conn_close(a), 0);
    WT_EQ(weft_conn_close(b), 0);
    WT_EQ(weft_shm_close(named), 0);
}

/* --- bad input -------------------------------------------------------------- */

static int nothing(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 0;
}
WEFT_PROCESS_REGISTER(nothing);

static int new_with(const weft_give_t *give, size_t ngive, const int *keep, size_t nkeep)
{
    weft_process_opts_t opts = {.give = give, .ngive = ngive, .keep_fds = keep, .nkeep_fds = nkeep};
    weft_process_t *p;
    int rc = weft_process_new(&p, nothing, NULL, 0, &opts);
    if (rc == 0)
        WT_EQ(weft_process_close(p), 0);
    return rc;
}

WT_CASE(giving_bad_input)
{
    weft_conn_t *a, *b;
    WT_EQ(weft_pipe(&a, &b, true), 0);
    weft_give_t one = weft_give_conn(b);
    WT_EQ(new_with(NULL, 1, NULL, 0), -EINVAL);
    WT_EQ(new_with(&one, WEFT_PROCESS_MAX_KEEP_FDS + 1, NULL, 0), -EINVAL);
    WT_EQ(new_with(&(weft_give_t){WEFT_GIVE_KIND_CONN, NULL}, 1, NULL, 0), -EINVAL);
    WT_EQ(new_with(&(weft_give_t){(weft_give_kind_t)0, b}, 1, NULL, 0), -EINVAL);
    WT_EQ(new_with(&(weft_give_t){(weft_give_kind_t)99, b}, 1, NULL, 0), -EINVAL);
    weft_give_t twice[] = {weft_give_conn(b), weft_give_conn(a), weft_give_conn(b)};
    WT_EQ(new_with(twice, 3, NULL, 0), -EINVAL);
    WT_EQ(new_with(twice, 2, NULL, 0), 0);
    /* Gifts and kept descriptors share the limit; a number in both counts once. */
    int keep[WEFT_PROCESS_MAX_KEEP_FDS];
    for (int i = 0; i < WEFT_PROCESS_MAX_KEEP_FDS; i++)
        keep[i] = 1000 + i;
    WT_EQ(new_with(&one, 1, keep, WEFT_PROCESS_MAX_KEEP_FDS), -EINVAL);
    WT_EQ(new_with(&one, 1, keep, WEFT_PROCESS_MAX_KEEP_FDS - 1), 0);
    keep[0] = weft_conn_fileno(b);
    WT_EQ(new_with(&one, 1, keep, WEFT_PROCESS_MAX_KEEP_FDS), 0);
    /* The main process was given nothing. */
    weft_conn_t *c;
    WT_EQ(weft_process_given_conn(0, &c), -EBADF);
    WT_EQ(weft_process_given_conn(0, NULL), -EINVAL);
    WT_EQ(weft_process_given_mpqueue(0, NULL), -EINVAL);
    WT_EQ(weft_process_given_shared(0, NULL), -EINVAL);
    WT_EQ(weft_process_given_shm(0, NULL), -EINVAL);
    /* Closed between new and start: -EBADF at start, also when the number
     * has been reused meanwhile, and nothing runs. */
    FOR_EACH_METHOD {
        for (int reuse = 0; reuse < 2; reuse++) {
            weft_process_t *p;
            weft_process_opts_t opts = {.method = method, .give = &one, .ngive = 1};
            WT_EQ(weft_process_new(&p, nothing, NULL, 0, &opts), 0);
            int fd = weft_conn_fileno(b);
            WT_EQ(weft_conn_close(b), 0);
            if (reuse)
                occupy(fd);
            WT_EQ(weft_process_start(p), -EBADF);
            WT_EQ(weft_process_close(p), 0);
            if (reuse)
                close(fd);
            WT_EQ(weft_conn_close(a), 0);
            WT_EQ(weft_pipe(&a, &b, true), 0);
            one = weft_give_conn(b);
        }
    }
    WT_EQ(weft_conn_close(a), 0);
    WT_EQ(weft_conn_close(b), 0);
}
