/*
 * Tests for the lock-free MPMC ring under the queues: FIFO order with
 * wrap-around, full and empty, item sizes that are not multiples of a word,
 * bad sizes and failed allocation, and a stress run with four producers and
 * four consumers in which every item must arrive exactly once and each
 * producer's items in the order it put them.
 */
#include "base/base.h"
#include "queue/ring.h"
#include "threads.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Fill, overfill, drain and overdrain a ring of `cap` many times over. */
static void check_fifo(size_t cap)
{
    weft__ring_t *r = weft__ring_new(cap, sizeof(long));
    WT_CHECK(r != NULL);
    long v, n = (long)cap;
    WT_EQ(weft__ring_get(r, &v), -EAGAIN);
    for (long round = 0; round < 100; round++) { /* wraps many times */
        for (long i = 0; i < n; i++) {
            WT_EQ(weft__ring_size(r), (size_t)i);
            WT_EQ(weft__ring_put(r, &(long){round * n + i}), 0);
        }
        WT_EQ(weft__ring_put(r, &(long){-1}), -EAGAIN); /* exactly cap */
        WT_EQ(weft__ring_size(r), cap);
        for (long i = 0; i < n; i++) {
            WT_EQ(weft__ring_get(r, &v), 0);
            WT_EQ(v, round * n + i);
        }
        WT_EQ(weft__ring_get(r, &v), -EAGAIN);
        /* Half full: the positions drift against the cell boundaries. */
        WT_EQ(weft__ring_put(r, &(long){7}), 0);
        WT_EQ(weft__ring_get(r, &v), 0);
        WT_EQ(v, 7);
    }
    weft__ring_free(r);
}

WT_CASE(ring_is_fifo_and_holds_exactly_its_capacity)
{
    check_fifo(1);
    check_fifo(2);
    check_fifo(5);
    check_fifo(8);
    check_fifo(1000);
}

WT_CASE(ring_copies_odd_sized_items)
{
    struct odd {
        char bytes[13];
    } in, out;
    weft__ring_t *r = weft__ring_new(2, sizeof in);
    WT_CHECK(r != NULL);
    for (int k = 0; k < 10; k++) {
        memset(in.bytes, 'a' + k, sizeof in.bytes);
        WT_EQ(weft__ring_put(r, &in), 0);
        WT_EQ(weft__ring_get(r, &out), 0);
        WT_CHECK(memcmp(&in, &out, sizeof in) == 0);
    }
    char one = 'x', got = 0;
    weft__ring_t *bytes = weft__ring_new(1, 1);
    WT_EQ(weft__ring_put(bytes, &one), 0);
    WT_EQ(weft__ring_put(bytes, &one), -EAGAIN);
    WT_EQ(weft__ring_get(bytes, &got), 0);
    WT_EQ(got, 'x');
    weft__ring_free(bytes);
    weft__ring_free(r);
}

static void *no_calloc(size_t count, size_t size)
{
    (void)count, (void)size;
    return NULL;
}

WT_FAULT(ring_bad_sizes_and_no_memory)
{
    WT_CHECK(weft__ring_new(8, 0) == NULL);
    WT_CHECK(weft__ring_new(0, 8) == NULL);
    WT_CHECK(weft__ring_new(SIZE_MAX, 8) == NULL);
    WT_CHECK(weft__ring_new((size_t)1 << 40, (size_t)1 << 40) == NULL);
    weft__sys.calloc = no_calloc;
    WT_CHECK(weft__ring_new(8, 8) == NULL);
    weft__sys_reset();
    weft__ring_free(NULL);
}

enum { PRODUCERS = 4, CONSUMERS = 4 };

struct mpmc {
    weft__ring_t *ring;
    long per_producer;
    _Atomic int next_id;
    _Atomic long consumed;
    _Atomic unsigned char *seen; /* [producer * per_producer + seq] */
    _Atomic int disorder;
};

static void *produce(void *arg)
{
    struct mpmc *m = arg;
    long id = atomic_fetch_add(&m->next_id, 1);
    for (long i = 0; i < m->per_producer; i++) {
        long item = id * m->per_producer + i;
        while (weft__ring_put(m->ring, &item) == -EAGAIN)
            sched_yield();
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct mpmc *m = arg;
    long last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        last[p] = -1;
    long total = PRODUCERS * m->per_producer;
    while (atomic_load(&m->consumed) < total) {
        long item;
        if (weft__ring_get(m->ring, &item) == -EAGAIN) {
            sched_yield();
            continue;
        }
        atomic_fetch_add(&m->consumed, 1);
        atomic_fetch_add(&m->seen[item], 1);
        long p = item / m->per_producer, seq = item % m->per_producer;
        if (seq <= last[p]) /* one producer's items arrive in its order */
            atomic_store(&m->disorder, 1);
        last[p] = seq;
    }
    return NULL;
}

static void run_mpmc(size_t capacity)
{
    struct mpmc m = {.per_producer = wt_sanitizer() ? 20000 : 250000};
    m.ring = weft__ring_new(capacity, sizeof(long));
    m.seen = calloc((size_t)(PRODUCERS * m.per_producer), 1);
    WT_CHECK(m.ring && m.seen);
    weft_thread_t *t[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        t[i] = spawn(consume, &m);
    for (int i = 0; i < PRODUCERS; i++)
        t[CONSUMERS + i] = spawn(produce, &m);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        finish(t[i]);
    for (long i = 0; i < PRODUCERS * m.per_producer; i++)
        WT_EQ(m.seen[i], 1);
    WT_EQ(atomic_load(&m.disorder), 0);
    long v;
    WT_EQ(weft__ring_get(m.ring, &v), -EAGAIN);
    free((void *)m.seen);
    weft__ring_free(m.ring);
}

WT_STRESS(ring_delivers_every_item_once_in_order_per_producer)
{
    run_mpmc(64);
}

/* Three cells (a division per position) are full or empty most of the time:
 * every claim races with an operation on the same cell. */
WT_STRESS(ring_of_three_delivers_every_item_once)
{
    run_mpmc(3);
}
