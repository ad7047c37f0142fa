/*
 * Suite "queue": weft's Queue against the queues C and Go programmers hand
 * work over with: GLib's GAsyncQueue (a mutex, a condition variable and a
 * linked list; unbounded) and Go's buffered channel of capacity 1024.
 *
 * Each case moves pointer-sized items from producer threads to consumer
 * threads and reports wall time per item moved, from the moment all threads
 * are lined up to the last item's arrival: lower means more items per
 * second. Creating and joining the threads is left out of these transfer
 * cases, as the Go side leaves out its start-up: on a busy machine a new
 * thread may wait a whole scheduler tick to run, and so may a joiner, which
 * would add milliseconds to every C round and none to Go's (queue_pingpong,
 * against GLib only, still times them, alike on both sides). The threads
 * are raw pthreads on both C sides, lined up by a spin barrier, so only the
 * queue differs. weft's Queue is bounded to 1024 items, like the channel
 * (a bounded queue is the harder case: producers also wait for room), except
 * in queue_spsc_unbounded, which matches GAsyncQueue's shape exactly.
 * queue_pingpong sends one item back and forth through two queues and
 * reports the round trip: the latency a hand-off costs, where the other
 * cases measure throughput.
 *
 * The Go side (bench/go/chan.go) runs in its own process and times itself,
 * so its start-up is not counted; Go's scheduler runs the producer and the
 * consumer goroutines on its own threads, one per CPU.
 */
#include "bench.h"

#include <weft/queue.h>

#include <glib.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct ops {
    void *(*create)(size_t maxsize);
    void (*destroy)(void *q);
    void (*put)(void *q, long v);
    long (*get)(void *q);
};

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "queue bench: %s failed\n", what);
    exit(1);
}

/* --- weft ----------------------------------------------------------------- */

static void *weft_create(size_t maxsize)
{
    weft_queue_t *q;
    if (weft_queue_new(&q, sizeof(long), maxsize) != 0)
        die("weft_queue_new");
    return q;
}

static void weft_destroy(void *q)
{
    weft_queue_free(q);
}

static void weft_put(void *q, long v)
{
    if (weft_queue_put(q, &v, WEFT_FOREVER) != 0)
        die("weft_queue_put");
}

static long weft_get(void *q)
{
    long v;
    if (weft_queue_get(q, &v, WEFT_FOREVER) != 0)
        die("weft_queue_get");
    return v;
}

static const struct ops weft_ops = {weft_create, weft_destroy, weft_put, weft_get};

/* --- GLib ----------------------------------------------------------------- */

static void *glib_create(size_t maxsize)
{
    (void)maxsize; /* GAsyncQueue has no bound */
    return g_async_queue_new();
}

static void glib_destroy(void *q)
{
    g_async_queue_unref(q);
}

static void glib_put(void *q, long v)
{
    g_async_queue_push(q, GSIZE_TO_POINTER((gsize)v + 1)); /* NULL is not an item */
}

static long glib_get(void *q)
{
    return (long)GPOINTER_TO_SIZE(g_async_queue_pop(q)) - 1;
}

static const struct ops glib_ops = {glib_create, glib_destroy, glib_put, glib_get};

/* --- producers and consumers ---------------------------------------------- */

struct transfer {
    const struct ops *ops;
    void *q;
    long per_thread;
    int threads;
    atomic_int ready;
    atomic_long sum;
    _Atomic double start, end; /* the first thread through the line-up; the last item */
};

/* Set *at to t if t is later (`later`) or earlier than what it holds. */
static void keep(_Atomic double *at, double t, bool later)
{
    double old = atomic_load(at);
    while ((later ? t > old : t < old) && !atomic_compare_exchange_weak(at, &old, t))
        ;
}

static void line_up(struct transfer *t)
{
    atomic_fetch_add(&t->ready, 1);
    while (atomic_load(&t->ready) < t->threads)
        ;
    keep(&t->start, bench_now(), false);
}

static void *producer(void *arg)
{
    struct transfer *t = arg;
    line_up(t);
    for (long i = 0; i < t->per_thread; i++)
        t->ops->put(t->q, i);
    return NULL;
}

static void *consumer(void *arg)
{
    struct transfer *t = arg;
    line_up(t);
    long sum = 0;
    for (long i = 0; i < t->per_thread; i++)
        sum += t->ops->get(t->q);
    keep(&t->end, bench_now(), true);
    atomic_fetch_add(&t->sum, sum);
    return NULL;
}

/* Move iters items through pairs producer/consumer pairs. */
static double transfer(const struct ops *ops, size_t maxsize, int pairs, long iters)
{
    struct transfer t = {
        ops, ops->create(maxsize), iters / pairs > 0 ? iters / pairs : 1, 2 * pairs, 0, 0, HUGE_VAL,
        0};
    pthread_t th[8];
    for (int i = 0; i < 2 * pairs; i++)
        if (pthread_create(&th[i], NULL, i % 2 ? consumer : producer, &t) != 0)
            die("pthread_create");
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);
    double secs = atomic_load(&t.end) - atomic_load(&t.start);
    long sum = atomic_load(&t.sum);
    bench_sink(&sum);
    ops->destroy(t.q);
    return secs;
}

static double weft_spsc(long iters)
{
    return transfer(&weft_ops, 1024, 1, iters);
}

static double glib_spsc(long iters)
{
    return transfer(&glib_ops, 0, 1, iters);
}

static double weft_spsc_unbounded(long iters)
{
    return transfer(&weft_ops, 0, 1, iters);
}

static double weft_mpmc(long iters)
{
    return transfer(&weft_ops, 1024, 2, iters);
}

static double glib_mpmc(long iters)
{
    return transfer(&glib_ops, 0, 2, iters);
}

/* --- ping-pong: latency rather than throughput ---------------------------- */

struct rally {
    const struct ops *ops;
    void *there, *back;
    long n;
};

static void *returner(void *arg)
{
    struct rally *r = arg;
    for (long i = 0; i < r->n; i++)
        r->ops->put(r->back, r->ops->get(r->there));
    return NULL;
}

/* One item sent back and forth: time per round trip. */
static double ping_pong(const struct ops *ops, long iters)
{
    struct rally r = {ops, ops->create(1), ops->create(1), iters};
    pthread_t t;
    double t0 = bench_now();
    if (pthread_create(&t, NULL, returner, &r) != 0)
        die("pthread_create");
    long sum = 0;
    for (long i = 0; i < iters; i++) {
        ops->put(r.there, i);
        sum += ops->get(r.back);
    }
    pthread_join(t, NULL);
    double secs = bench_now() - t0;
    bench_sink(&sum);
    ops->destroy(r.there);
    ops->destroy(r.back);
    return secs;
}

static double weft_pingpong(long iters)
{
    return ping_pong(&weft_ops, iters);
}

static double glib_pingpong(long iters)
{
    return ping_pong(&glib_ops, iters);
}

BENCH_CASE(queue, queue_spsc, "glib_async_queue", weft_spsc, glib_spsc, 2.0)
BENCH_CASE(queue, queue_spsc_unbounded, "glib_async_queue", weft_spsc_unbounded, glib_spsc, 2.0)
BENCH_CASE(queue, queue_mpmc_2x2, "glib_async_queue", weft_mpmc, glib_mpmc, 2.0)
BENCH_CASE(queue, queue_pingpong, "glib_async_queue", weft_pingpong, glib_pingpong, 1.0,
           .loaded_bar = 0.9, .cpu = true, .cpu_bar = 0.9)

#ifdef WEFT_BENCH_GO_CHAN
/* --- Go ------------------------------------------------------------------- */

static double go_spsc(long iters)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %ld", WEFT_BENCH_GO_CHAN, iters);
    return bench_run_timed(cmd);
}

BENCH_CASE(queue, queue_spsc_go, "go_chan_buffered", weft_spsc, go_spsc, 1.0, .loaded_bar = 0.9,
           .cpu = true)
#endif
