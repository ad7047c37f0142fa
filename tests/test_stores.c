/*
 * Tests for the two lock-free MPMC stores under the queues, the bounded
 * ring and the unbounded chain of blocks: FIFO order across wrap-around and
 * block boundaries, full and empty, sizes, item sizes that are not
 * multiples of a word, bad sizes and failed allocation, and stress runs
 * with four producers and four consumers in which every item must arrive
 * exactly once and each producer's items in the order it put them.
 */
#include "base/base.h"
#include "queue/chain.h"
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
            WT_EQ(weft__ring_put(r, &(long){round * n + i}, NULL, 0), 0);
        }
        WT_EQ(weft__ring_put(r, &(long){-1}, NULL, 0), -EAGAIN); /* exactly cap */
        WT_EQ(weft__ring_size(r), cap);
        for (long i = 0; i < n; i++) {
            WT_EQ(weft__ring_get(r, &v), 0);
            WT_EQ(v, round * n + i);
        }
        WT_EQ(weft__ring_get(r, &v), -EAGAIN);
        /* Half full: the positions drift against the cell boundaries. */
        WT_EQ(weft__ring_put(r, &(long){7}, NULL, 0), 0);
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
        WT_EQ(weft__ring_put(r, &in, NULL, 0), 0);
        WT_EQ(weft__ring_get(r, &out), 0);
        WT_CHECK(memcmp(&in, &out, sizeof in) == 0);
    }
    /* One byte in and out, and not a byte more (the buffers are a word
     * long, as a word's item is copied differently). */
    char one[sizeof(uint64_t)] = "xyz", got[sizeof(uint64_t)] = {0};
    weft__ring_t *bytes = weft__ring_new(1, 1);
    WT_EQ(weft__ring_put(bytes, one, NULL, 0), 0);
    WT_EQ(weft__ring_put(bytes, one, NULL, 0), -EAGAIN);
    WT_EQ(weft__ring_get(bytes, got), 0);
    WT_EQ(got[0], 'x');
    WT_EQ(got[1], 0);
    weft__ring_free(bytes);
    weft__ring_free(r);
}

WT_FAULT(ring_bad_sizes_and_no_memory)
{
    WT_CHECK(weft__ring_new(8, 0) == NULL);
    WT_CHECK(weft__ring_new(0, 8) == NULL);
    WT_CHECK(weft__ring_new(SIZE_MAX, 8) == NULL);
    WT_CHECK(weft__ring_new((size_t)1 << 40, (size_t)1 << 40) == NULL);
    weft__sys.calloc = wt_no_calloc;
    WT_CHECK(weft__ring_new(8, 8) == NULL);
    weft__sys_reset();
    weft__ring_free(NULL);
}

enum { PRODUCERS = 4, CONSUMERS = 4 };

/* Either store, behind the same two calls. */
struct store {
    int (*put)(void *s, const void *item);
    int (*get)(void *s, void *item);
    void *s;
};

static int ring_put(void *s, const void *item)
{
    return weft__ring_put(s, item, NULL, 0);
}

static int ring_get(void *s, void *item)
{
    return weft__ring_get(s, item);
}

static int chain_put(void *s, const void *item)
{
    return weft__chain_put(s, item, NULL, 0);
}

static int chain_get(void *s, void *item)
{
    return weft__chain_get(s, item);
}

struct mpmc {
    struct store store;
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
        while (m->store.put(m->store.s, &item) == -EAGAIN)
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
        if (m->store.get(m->store.s, &item) == -EAGAIN) {
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

/* per_producer items from each of PRODUCERS threads to CONSUMERS threads. */
static void run_mpmc(struct store store, long per_producer)
{
    struct mpmc m = {.store = store,
                     .per_producer = wt_sanitizer() ? per_producer / 10 : per_producer};
    m.seen = calloc((size_t)(PRODUCERS * m.per_producer), 1);
    WT_CHECK(m.seen != NULL);
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
    WT_EQ(store.get(store.s, &v), -EAGAIN);
    free((void *)m.seen);
}

WT_STRESS(ring_delivers_every_item_once_in_order_per_producer)
{
    weft__ring_t *r = weft__ring_new(64, sizeof(long));
    WT_CHECK(r != NULL);
    run_mpmc((struct store){ring_put, ring_get, r}, 250000);
    weft__ring_free(r);
}

/* Three cells (a division per position) are full or empty most of the time:
 * every claim races with an operation on the same cell. Fewer items: eight
 * threads polling three cells crawl when other processes take the CPUs, as
 * every consumer waits out a producer preempted between claim and publish. */
WT_STRESS(ring_of_three_delivers_every_item_once)
{
    weft__ring_t *r = weft__ring_new(3, sizeof(long));
    WT_CHECK(r != NULL);
    run_mpmc((struct store){ring_put, ring_get, r}, 25000);
    weft__ring_free(r);
}

/* Blocks are linked in and freed by their readers all the time (a block
 * holds 63 items), often while the chain is empty. */
WT_STRESS(chain_delivers_every_item_once_in_order_per_producer)
{
    weft__chain_t *c = weft__chain_new(sizeof(long));
    WT_CHECK(c != NULL);
    run_mpmc((struct store){chain_put, chain_get, c}, 250000);
    weft__chain_free(c);
}

WT_CASE(chain_is_fifo_across_blocks)
{
    weft__chain_t *c = weft__chain_new(sizeof(long));
    WT_CHECK(c != NULL);
    long v;
    WT_EQ(weft__chain_get(c, &v), -EAGAIN);
    WT_EQ(weft__chain_size(c), 0);
    long next_in = 0, next_out = 0;
    /* Grow and shrink by uneven steps so that both ends cross block
     * boundaries at every offset. */
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 7 * round + 5; i++) {
            WT_EQ(weft__chain_put(c, &next_in, NULL, 0), 0);
            next_in++;
        }
        WT_EQ(weft__chain_size(c), (size_t)(next_in - next_out));
        for (int i = 0; i < 5 * round + 3; i++) {
            WT_EQ(weft__chain_get(c, &v), 0);
            WT_EQ(v, next_out++);
        }
        WT_EQ(weft__chain_size(c), (size_t)(next_in - next_out));
    }
    while (next_out < next_in) {
        WT_EQ(weft__chain_get(c, &v), 0);
        WT_EQ(v, next_out++);
    }
    WT_EQ(weft__chain_get(c, &v), -EAGAIN);
    WT_EQ(weft__chain_size(c), 0);
    /* Items left behind are freed with the chain (ASan checks). */
    for (long i = 0; i < 1000; i++)
        WT_EQ(weft__chain_put(c, &i, NULL, 0), 0);
    weft__chain_free(c);
    weft__chain_free(NULL);
}

WT_CASE(chain_copies_odd_sized_items)
{
    struct odd {
        char bytes[13];
    } in, out;
    weft__chain_t *c = weft__chain_new(sizeof in);
    WT_CHECK(c != NULL);
    for (int k = 0; k < 200; k++) {
        memset(in.bytes, 'a' + k % 26, sizeof in.bytes);
        WT_EQ(weft__chain_put(c, &in, NULL, 0), 0);
    }
    for (int k = 0; k < 200; k++) {
        WT_EQ(weft__chain_get(c, &out), 0);
        WT_EQ(out.bytes[0], 'a' + k % 26);
        WT_EQ(out.bytes[12], 'a' + k % 26);
    }
    weft__chain_free(c);
}

static _Atomic int callocs_left;

static void *calloc_until(size_t count, size_t size)
{
    return atomic_fetch_sub(&callocs_left, 1) > 0 ? calloc(count, size) : NULL;
}

/* A put that cannot get a new block fails cleanly and the chain stays whole:
 * the block is allocated before any position is claimed. */
WT_FAULT(chain_bad_sizes_and_no_memory)
{
    WT_CHECK(weft__chain_new(0) == NULL);
    WT_CHECK(weft__chain_new(SIZE_MAX) == NULL);
    WT_CHECK(weft__chain_new(SIZE_MAX / 64) == NULL);
    weft__sys.aligned_alloc = wt_no_aligned_alloc;
    WT_CHECK(weft__chain_new(8) == NULL);
    weft__sys_reset();
    weft__chain_t *c = weft__chain_new(sizeof(long));
    WT_CHECK(c != NULL);
    weft__sys.calloc = calloc_until;
    WT_EQ(weft__chain_put(c, &(long){1}, NULL, 0), -ENOMEM); /* no first block */
    atomic_store(&callocs_left, 1);
    long v, n = 0;
    while (weft__chain_put(c, &n, NULL, 0) == 0) /* fills the first block */
        n++;
    WT_EQ(n, 62); /* the 63rd put needs the next block first */
    atomic_store(&callocs_left, 1);
    for (long i = n; i < n + 100; i++)
        WT_EQ(weft__chain_put(c, &i, NULL, 0), i < 125 ? 0 : -ENOMEM);
    weft__sys_reset();
    for (long i = 0; i < 125; i++) {
        WT_EQ(weft__chain_get(c, &v), 0);
        WT_EQ(v, i);
    }
    WT_EQ(weft__chain_get(c, &v), -EAGAIN);
    weft__chain_free(c);
}
