/*
 * Sockets (weft/net.h): echo over TCP (IPv4, IPv6) and Unix sockets between
 * tasks, many connections at once, a send larger than the socket buffers
 * to a slow reader, timeouts (never early), refusal, cancellation of a task
 * waiting in accept or recv, end of stream and reset, a thread and a task
 * on either end, and bad input. Loopback only; every listener a case
 * opens it closes.
 */
#include "wt.h"
#include "wt_async.h"

#include <weft/net.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *run_main(weft_co_fn fn, void *arg)
{
    void *result = NULL;
    WT_EQ(weft_run(fn, arg, wt_run_opts(), &result), 0);
    return result;
}

static weft_co_t *spawn(weft_co_fn fn, void *arg)
{
    weft_co_t *t;
    WT_EQ(weft_co_spawn(&t, fn, arg, NULL), 0);
    return t;
}

static void join(weft_co_t *t)
{
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), 0);
    weft_co_free(t);
}

/* Receive exactly n bytes (0), or what recv said first when it is not more. */
static ssize_t recv_all(weft_sock_t *s, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = weft_sock_recv(s, (char *)buf + got, n - got, WEFT_FOREVER);
        if (k <= 0)
            return k;
        got += (size_t)k;
    }
    return (ssize_t)n;
}

/* A listener on a loopback port the kernel picks, and a connection through
 * it: c the client's end, s the server's. */
static void connected_pair(weft_sock_t **ls, weft_sock_t **c, weft_sock_t **s)
{
    WT_EQ(weft_tcp_listen(ls, "127.0.0.1", 0, NULL), 0);
    WT_EQ(weft_tcp_connect(c, "127.0.0.1", weft_sock_port(*ls), 5), 0);
    WT_EQ(weft_sock_accept(*ls, s, 5), 0);
}

static void close_pair(weft_sock_t *ls, weft_sock_t *c, weft_sock_t *s)
{
    WT_EQ(weft_sock_close(c), 0);
    WT_EQ(weft_sock_close(s), 0);
    WT_EQ(weft_sock_close(ls), 0);
}

/* --- echo ------------------------------------------------------------------ */

/* Echo one connection until its end of stream, then close it. */
static void *echo_connection(void *arg)
{
    weft_sock_t *s = arg;
    char buf[1024];
    ssize_t n;
    while ((n = weft_sock_recv(s, buf, sizeof buf, WEFT_FOREVER)) > 0)
        WT_EQ(weft_sock_send(s, buf, (size_t)n, WEFT_FOREVER), n);
    WT_EQ(n, 0);
    WT_EQ(weft_sock_close(s), 0);
    return NULL;
}

enum { CLIENTS = 20, ROUNDS = 10 };

/* Accept CLIENTS connections, a task for each. */
static void *echo_server(void *arg)
{
    weft_sock_t *ls = arg;
    weft_co_t *handlers[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        weft_sock_t *s;
        WT_EQ(weft_sock_accept(ls, &s, WEFT_FOREVER), 0);
        handlers[i] = spawn(echo_connection, s);
    }
    for (int i = 0; i < CLIENTS; i++)
        join(handlers[i]);
    return NULL;
}

struct endpoint {
    const char *host; /* NULL: a Unix socket at path */
    int port;
    char path[64];
};

static weft_sock_t *dial(const struct endpoint *e)
{
    weft_sock_t *s;
    WT_EQ(e->host ? weft_tcp_connect(&s, e->host, e->port, WEFT_FOREVER)
                  : weft_unix_connect(&s, e->path, WEFT_FOREVER),
          0);
    return s;
}

/* Messages of growing sizes, each echoed whole, then end of stream. */
static void *echo_client(void *arg)
{
    weft_sock_t *s = dial(arg);
    char out[600], in[600];
    for (int r = 0; r < ROUNDS; r++) {
        size_t n = 1 + (size_t)r * 60;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)(r + i);
        WT_EQ(weft_sock_send(s, out, n, WEFT_FOREVER), (ssize_t)n);
        WT_EQ(recv_all(s, in, n), (ssize_t)n);
        WT_CHECK(memcmp(in, out, n) == 0);
    }
    WT_EQ(weft_sock_shutdown_write(s), 0);
    WT_EQ(weft_sock_recv(s, in, sizeof in, WEFT_FOREVER), 0); /* the server's close */
    WT_EQ(weft_sock_close(s), 0);
    return NULL;
}

static void echo_with(weft_sock_t *ls, struct endpoint *e)
{
    weft_co_t *server = spawn(echo_server, ls);
    weft_co_t *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        clients[i] = spawn(echo_client, e);
    for (int i = 0; i < CLIENTS; i++)
        join(clients[i]);
    join(server);
    WT_EQ(weft_sock_close(ls), 0);
}

static void *echo_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls;
    struct endpoint v4 = {"127.0.0.1", 0, ""};
    WT_EQ(weft_tcp_listen(&ls, "127.0.0.1", 0, NULL), 0);
    v4.port = weft_sock_port(ls);
    WT_CHECK(v4.port > 0);
    echo_with(ls, &v4);

    struct endpoint v6 = {"::1", 0, ""};
    if (weft_tcp_listen(&ls, "::1", 0, NULL) == 0) { /* a machine without IPv6 skips it */
        v6.port = weft_sock_port(ls);
        echo_with(ls, &v6);
    }

    struct endpoint un = {NULL, 0, ""};
    snprintf(un.path, sizeof un.path, "/tmp/weft-net-%d.sock", (int)getpid());
    unlink(un.path);
    WT_EQ(weft_unix_listen(&ls, un.path, NULL), 0);
    WT_EQ(weft_sock_port(ls), -EINVAL);
    echo_with(ls, &un);
    unlink(un.path);
    return NULL;
}

WT_CASE(tasks_echo_over_tcp_ipv4_ipv6_and_unix_sockets_many_at_once)
{
    run_main(echo_main, NULL);
}

/* --- back-pressure ------------------------------------------------------- */

enum { BIG = 4 << 20 };

static void *slow_reader(void *arg)
{
    weft_sock_t *s = arg;
    static char buf[8192];
    size_t total = 0;
    ssize_t n;
    while ((n = weft_sock_recv(s, buf, sizeof buf, WEFT_FOREVER)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            WT_EQ((unsigned char)buf[i], (unsigned char)((total + (size_t)i) % 251));
        total += (size_t)n;
        WT_EQ(weft_co_sleep(0), 0); /* let the sender find the buffers full */
    }
    WT_EQ(n, 0);
    WT_EQ(total, BIG);
    WT_EQ(weft_sock_close(s), 0);
    return NULL;
}

static void *big_send_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls, *c, *s;
    connected_pair(&ls, &c, &s);
    WT_EQ(weft_sock_close(ls), 0);
    weft_co_t *reader = spawn(slow_reader, s);
    char *data = malloc(BIG);
    WT_CHECK(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (char)(i % 251);
    WT_EQ(weft_sock_send(c, data, BIG, WEFT_FOREVER), BIG);
    WT_EQ(weft_sock_shutdown_write(c), 0);
    join(reader);
    WT_EQ(weft_sock_close(c), 0);
    free(data);
    return NULL;
}

WT_CASE(a_send_larger_than_the_buffers_waits_for_a_slow_reader)
{
    run_main(big_send_main, NULL);
}

/* --- timeouts, refusal, reset --------------------------------------------- */

static void *timeouts_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls, *c, *s;
    WT_EQ(weft_tcp_listen(&ls, "127.0.0.1", 0, NULL), 0);
    int port = weft_sock_port(ls);
    WT_EQ(weft_sock_accept(ls, &s, 0), -EAGAIN); /* try once */
    double t0 = weft_monotonic();
    WT_EQ(weft_sock_accept(ls, &s, 0.02), -ETIMEDOUT);
    WT_CHECK(weft_monotonic() - t0 >= 0.02); /* never early */
    WT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, 5), 0);
    WT_EQ(weft_sock_accept(ls, &s, 5), 0);
    char b;
    WT_EQ(weft_sock_recv(s, &b, 1, 0), -EAGAIN);
    t0 = weft_monotonic();
    WT_EQ(weft_sock_recv(s, &b, 1, 0.02), -ETIMEDOUT);
    WT_CHECK(weft_monotonic() - t0 >= 0.02);
    WT_EQ(weft_sock_recv(s, &b, 0, 0), 0);
    /* An abort resets the connection: the peer's recv fails. */
    WT_EQ(weft_sock_abort(c), 0);
    WT_EQ(weft_sock_recv(s, &b, 1, 5), -ECONNRESET);
    WT_EQ(weft_sock_close(s), 0);
    WT_EQ(weft_sock_close(ls), 0);
    /* Nothing listens on the port now. */
    WT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, 5), -ECONNREFUSED);
    return NULL;
}

WT_CASE(timeouts_are_never_early_and_refusal_and_reset_are_reported)
{
    run_main(timeouts_main, NULL);
}

/* --- cancellation ------------------------------------------------------ */

static _Atomic int accept_rc = 9, recv_rc = 9;

static void *waits_in_accept(void *arg)
{
    weft_sock_t *s;
    atomic_store(&accept_rc, weft_sock_accept(arg, &s, WEFT_FOREVER));
    return NULL;
}

static void *waits_in_recv(void *arg)
{
    char b;
    atomic_store(&recv_rc, (int)weft_sock_recv(arg, &b, 1, WEFT_FOREVER));
    return NULL;
}

static void *cancel_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls, *c, *s;
    connected_pair(&ls, &c, &s);
    weft_co_t *a = spawn(waits_in_accept, ls), *r = spawn(waits_in_recv, s);
    WT_EQ(weft_co_sleep(0), 0);
    WT_EQ(weft_co_cancel(a), 1);
    WT_EQ(weft_co_cancel(r), 1);
    WT_EQ(weft_co_join(a, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(weft_co_join(r, WEFT_FOREVER, NULL), -ECANCELED);
    WT_EQ(atomic_load(&accept_rc), -ECANCELED);
    WT_EQ(atomic_load(&recv_rc), -ECANCELED);
    weft_co_free(a);
    weft_co_free(r);
    /* The sockets are still good. */
    WT_EQ(weft_sock_send(c, "x", 1, 5), 1);
    char b;
    WT_EQ(weft_sock_recv(s, &b, 1, 5), 1);
    WT_EQ(b, 'x');
    close_pair(ls, c, s);
    return NULL;
}

WT_CASE(a_cancelled_task_leaves_accept_and_recv_with_ecanceled)
{
    run_main(cancel_main, NULL);
}

/* A send cancelled after some bytes went returns their count, and the
 * cancellation is not lost: the task's next wait reports it. */
enum { HUGE_SEND = 64 << 20 };
static _Atomic ssize_t sent_before_cancel;
static _Atomic int wait_after_send = 9;

static void *sends_until_cancelled(void *arg)
{
    char *data = calloc(1, HUGE_SEND);
    WT_CHECK(data);
    atomic_store(&sent_before_cancel, weft_sock_send(arg, data, HUGE_SEND, WEFT_FOREVER));
    atomic_store(&wait_after_send, weft_co_sleep(10));
    free(data);
    return NULL;
}

static void *partial_send_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls, *c, *s;
    connected_pair(&ls, &c, &s); /* s never reads */
    weft_co_t *t = spawn(sends_until_cancelled, c);
    WT_EQ(weft_co_sleep(0), 0);
    WT_EQ(weft_co_cancel(t), 1);
    WT_EQ(weft_co_join(t, WEFT_FOREVER, NULL), -ECANCELED);
    weft_co_free(t);
    ssize_t sent = atomic_load(&sent_before_cancel);
    WT_CHECK(sent > 0 && sent < HUGE_SEND);
    WT_EQ(atomic_load(&wait_after_send), -ECANCELED);
    close_pair(ls, c, s);
    return NULL;
}

WT_CASE(a_send_cancelled_midway_returns_its_count_and_keeps_the_cancellation)
{
    run_main(partial_send_main, NULL);
}

/* A Unix listener whose queue is full makes a connect wait (it looks again
 * after pauses: no readiness says when there is room) until its timeout,
 * or until the listener takes one; its file goes when it closes. */
static weft_sock_t *full_listener;

static void *accept_one_later(void *arg)
{
    (void)arg;
    WT_EQ(weft_co_sleep(0.02), 0);
    weft_sock_t *s;
    WT_EQ(weft_sock_accept(full_listener, &s, 5), 0);
    WT_EQ(weft_sock_close(s), 0);
    return NULL;
}

static void *full_backlog_main(void *arg)
{
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-net-full-%d.sock", (int)getpid());
    unlink(path);
    WT_EQ(weft_unix_listen(&full_listener, path, &(weft_listen_opts_t){.backlog = 1}), 0);
    weft_sock_t *queued[16], *c;
    int n = 0, rc;
    while (n < 16 && (rc = weft_unix_connect(&queued[n], path, 0)) == 0)
        n++;
    WT_EQ(rc, -EAGAIN); /* full: try once */
    double t0 = weft_monotonic();
    WT_EQ(weft_unix_connect(&c, path, 0.05), -ETIMEDOUT);
    WT_CHECK(weft_monotonic() - t0 >= 0.05);
    weft_co_t *t = spawn(accept_one_later, NULL);
    WT_EQ(weft_unix_connect(&c, path, 5), 0); /* once the other task made room */
    join(t);
    WT_EQ(weft_sock_close(c), 0);
    for (int i = 0; i < n; i++)
        WT_EQ(weft_sock_close(queued[i]), 0);
    WT_EQ(weft_sock_close(full_listener), 0);
    WT_EQ(access(path, F_OK), -1); /* gone with its listener */
    WT_EQ(weft_unix_listen(&full_listener, path, NULL), 0);
    WT_EQ(weft_sock_close(full_listener), 0);
    return NULL;
}

WT_CASE(a_unix_connect_to_a_full_queue_waits_for_room_or_its_timeout)
{
    run_main(full_backlog_main, NULL);
}

/* --- a thread and a task --------------------------------------------------- */

static int shared_port;

static void *thread_client(void *arg)
{
    (void)arg;
    struct endpoint e = {"127.0.0.1", shared_port, ""};
    return echo_client(&e);
}

static void *thread_and_task_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls;
    WT_EQ(weft_tcp_listen(&ls, "127.0.0.1", 0, NULL), 0);
    shared_port = weft_sock_port(ls);
    weft_co_t *server = spawn(echo_server, ls);
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        WT_EQ(pthread_create(&threads[i], NULL, thread_client, NULL), 0);
    join(server); /* the threads' connections, served by tasks */
    for (int i = 0; i < CLIENTS; i++)
        WT_EQ(pthread_join(threads[i], NULL), 0);
    WT_EQ(weft_sock_close(ls), 0);
    return NULL;
}

WT_CASE(threads_connect_to_a_server_of_tasks)
{
    run_main(thread_and_task_main, NULL);
}

/* --- names ------------------------------------------------------------------ */

/* Names are looked up on the default thread pool, a few at a time: many
 * tasks connecting to "localhost" at once all get there (and the lookups
 * beyond the cap wait their turn), and a name that does not exist is
 * -ENOENT (or -EIO where no resolver answers at all). */
enum { DIALERS = 16 };
static int named_port;

static void *dial_localhost(void *arg)
{
    (void)arg;
    weft_sock_t *c;
    WT_EQ(weft_tcp_connect(&c, "localhost", named_port, 30), 0);
    WT_EQ(weft_sock_send(c, "n", 1, 5), 1);
    WT_EQ(weft_sock_close(c), 0);
    return NULL;
}

static void *names_main(void *arg)
{
    (void)arg;
    weft_sock_t *ls;
    WT_EQ(weft_tcp_listen(&ls, "localhost", 0, NULL), 0);
    named_port = weft_sock_port(ls);
    weft_co_t *t[DIALERS];
    for (int i = 0; i < DIALERS; i++)
        t[i] = spawn(dial_localhost, NULL);
    for (int i = 0; i < DIALERS; i++) {
        weft_sock_t *s;
        char b;
        WT_EQ(weft_sock_accept(ls, &s, 30), 0);
        WT_EQ(weft_sock_recv(s, &b, 1, 30), 1);
        WT_EQ(b, 'n');
        WT_EQ(weft_sock_close(s), 0);
    }
    for (int i = 0; i < DIALERS; i++)
        join(t[i]);
    WT_EQ(weft_sock_close(ls), 0);
    weft_sock_t *c;
    int rc = weft_tcp_connect(&c, "no-such-host.invalid", 80, 30);
    WT_CHECK(rc == -ENOENT || rc == -EIO);
    return NULL;
}

WT_CASE(names_are_resolved_a_few_at_a_time_and_unknown_ones_reported)
{
    run_main(names_main, NULL);
}

/* --- bad input ---------------------------------------------------------- */

WT_CASE(bad_input_is_refused)
{
    weft_sock_t *s;
    WT_EQ(weft_tcp_listen(NULL, "127.0.0.1", 0, NULL), -EINVAL);
    WT_EQ(weft_tcp_listen(&s, "", 0, NULL), -EINVAL);
    WT_EQ(weft_tcp_listen(&s, "127.0.0.1", -1, NULL), -EINVAL);
    WT_EQ(weft_tcp_listen(&s, "127.0.0.1", 65536, NULL), -EINVAL);
    WT_EQ(weft_tcp_connect(&s, NULL, 80, 1), -EINVAL);
    WT_EQ(weft_tcp_connect(&s, "127.0.0.1", 80, NAN), -EINVAL);
    WT_EQ(weft_unix_listen(&s, "", NULL), -EINVAL);
    WT_EQ(weft_unix_connect(&s, NULL, 1), -EINVAL);
    char longer[200];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    WT_EQ(weft_unix_listen(&s, longer, NULL), -ENAMETOOLONG);
    WT_EQ(weft_sock_accept(NULL, &s, 0), -EINVAL);
    WT_EQ(weft_sock_recv(NULL, longer, 1, 0), -EINVAL);
    WT_EQ(weft_sock_send(NULL, longer, 1, 0), -EINVAL);
    WT_EQ(weft_sock_shutdown_write(NULL), -EINVAL);
    WT_EQ(weft_sock_close(NULL), -EINVAL);
    WT_EQ(weft_sock_abort(NULL), -EINVAL);
    WT_EQ(weft_sock_fd(NULL), -EINVAL);
    WT_EQ(weft_sock_port(NULL), -EINVAL);
    WT_EQ(weft_tcp_listen(&s, "127.0.0.1", 0, NULL), 0);
    WT_EQ(weft_sock_recv(s, NULL, 1, 0), -EINVAL);
    WT_EQ(weft_sock_accept(s, NULL, 0), -EINVAL);
    WT_EQ(weft_sock_accept(s, &s, NAN), -EINVAL);
    /* Two listeners on one port: refused, unless both ask to share it. */
    weft_sock_t *again;
    WT_EQ(weft_tcp_listen(&again, "127.0.0.1", weft_sock_port(s), NULL), -EADDRINUSE);
    WT_EQ(weft_sock_close(s), 0);
    weft_listen_opts_t share = {.reuse_port = true};
    WT_EQ(weft_tcp_listen(&s, "127.0.0.1", 0, &share), 0);
    WT_EQ(weft_tcp_listen(&again, "127.0.0.1", weft_sock_port(s), &share), 0);
    WT_EQ(weft_sock_close(again), 0);
    WT_EQ(weft_sock_close(s), 0);
}
