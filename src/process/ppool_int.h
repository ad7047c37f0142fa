/*
 * The process pool's shared memory: what the parent (ppool.c and the files
 * of ppool_parent.h) and its workers (pworker.c) both read and write.
 *
 * One memfd per pool: a page of pool-wide words, then one region per
 * worker index (a replacement reuses its predecessor's region, reset):
 *
 *     struct weft__ppage        the results doorbell
 *     struct weft__pslot + in ring + out ring      worker 0
 *     ...                                          worker n-1
 *
 * Each ring has one producer and one consumer (in: parent to worker,
 * out: worker to parent), so it needs no lock: the producer writes a
 * message past the tail and then publishes the tail with a release store;
 * the consumer reads up to the tail it acquired and then publishes the
 * head. A message is an 8-byte header (its length) and its bytes padded
 * to 8; a length of RING_WRAP means the rest of the ring is unused. A ring
 * of at least twice the largest message always takes a message when it is
 * empty. A dead worker can only leave its own rings half-written, and the
 * parent resets those before a replacement starts.
 *
 * The doorbell: a worker that has published a result bumps results_seq
 * and then wakes the futex if `collectors` says a parent thread may sleep
 * on it, and writes the pool's eventfd if the manager thread is asleep in
 * poll (`manager_listening`). Parent threads announce themselves before
 * their last look at the rings, so a result is either seen or rung for.
 */
#ifndef WEFT_PPOOL_INT_H
#define WEFT_PPOOL_INT_H

#include "base/park.h"
#include <weft/ppool.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WEFT__RING_WRAP UINT32_MAX
/* Room for a registered name with its NUL, padded to 8 bytes: longer names
 * cannot be used by spawn and forkserver pools (-EINVAL). */
#define WEFT__PNAME_MAX 256

struct weft__ring {
    _Atomic uint64_t head; /* consumer's */
    char pad1[56];
    _Atomic uint64_t tail; /* producer's */
    char pad2[56];
    uint64_t cap; /* bytes, a multiple of 8 */
    uint64_t off; /* where the bytes start, from the slot's start */
};

struct weft__ppage {
    _Atomic uint32_t results_seq; /* futex: bumped by every result */
    _Atomic uint32_t collectors;  /* parent threads that may sleep on it */
    _Atomic uint32_t manager_listening;
};

struct weft__pslot {
    _Atomic uint32_t task_seq; /* futex: bumped by the parent for every task */
    _Atomic uint32_t asleep;   /* the worker sleeps on task_seq */
    _Atomic uint32_t room_seq; /* futex: bumped when the parent frees out-ring room */
    _Atomic uint32_t wants_room;
    _Atomic uint32_t init_failed;
    _Atomic uint64_t started;    /* tasks begun */
    _Atomic uint64_t running_id; /* the id of the last one begun */
    _Atomic int64_t started_ns;  /* CLOCK_MONOTONIC when it began */
    struct weft__ring in, out;
};

/* Task kinds. */
enum { WEFT__PT_CALL = 1, WEFT__PT_CHUNK = 2, WEFT__PT_STOP = 3 };

/* A posted task's claim word, in the ring: the worker takes a task, or the
 * parent takes it back for an idle worker, by one compare-and-swap from
 * POSTED, so exactly one of them gets it. */
enum { WEFT__PT_POSTED = 0, WEFT__PT_TAKEN = 1, WEFT__PT_REVOKED = 2 };

struct weft__ptask_hdr {
    uint64_t id;
    uint64_t fnptr; /* fork: the function itself */
    uint32_t kind;
    uint32_t name_len; /* spawn, forkserver: its registered name, NUL included */
    uint32_t item_size, result_size, count;
    uint32_t arg_len;
    uint32_t claim; /* read and written in place, atomically */
    uint32_t pad;
};

static inline _Atomic uint32_t *weft__ptask_claim(void *msg)
{
    return (_Atomic uint32_t *)((unsigned char *)msg + offsetof(struct weft__ptask_hdr, claim));
}

struct weft__presult_hdr {
    uint64_t id;
    int32_t error;
    uint32_t len;
};

/* What a worker process is started with (its argument bytes). */
struct weft__pworker_arg {
    int memfd, eventfd;
    uint32_t index;
    uint32_t maxtasks;
    uint64_t map_size, slot_off;
    uint64_t max_result;
    int32_t by_name; /* functions come by name (spawn, forkserver) */
    int32_t has_init;
    uint32_t initarg_len;
    uint64_t init_fnptr;             /* fork */
    char init_name[WEFT__PNAME_MAX]; /* spawn, forkserver */
    /* initarg bytes follow */
};

static inline uint64_t weft__round8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static inline unsigned char *weft__ring_bytes(struct weft__ring *r)
{
    return (unsigned char *)r + r->off;
}

/* Producer: append a message made of two parts; where its bytes are in
 * the ring, or NULL if there is no room. */
static inline void *weft__ring_put(struct weft__ring *r, const void *a, size_t alen, const void *b,
                                   size_t blen)
{
    uint64_t need = 8 + weft__round8(alen + blen);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t pos = tail % r->cap;
    uint64_t skip = pos + need > r->cap ? r->cap - pos : 0;
    if (tail - head + skip + need > r->cap)
        return NULL;
    unsigned char *base = weft__ring_bytes(r);
    uint32_t h[2] = {WEFT__RING_WRAP, 0};
    if (skip)
        memcpy(base + pos, h, sizeof h);
    unsigned char *at = base + (tail + skip) % r->cap;
    h[0] = (uint32_t)(alen + blen);
    memcpy(at, h, sizeof h);
    memcpy(at + 8, a, alen);
    if (blen)
        memcpy(at + 8 + alen, b, blen);
    atomic_store_explicit(&r->tail, tail + skip + need, memory_order_release);
    return at + 8;
}

/* Consumer: the oldest message's bytes and length, or NULL if empty. */
static inline void *weft__ring_peek(struct weft__ring *r, uint32_t *len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    unsigned char *base = weft__ring_bytes(r);
    uint32_t h[2];
    memcpy(h, base + head % r->cap, sizeof h);
    if (h[0] == WEFT__RING_WRAP) {
        head += r->cap - head % r->cap;
        memcpy(h, base + head % r->cap, sizeof h);
    }
    *len = h[0];
    return base + head % r->cap + 8;
}

/* Consumer: drop the message peek returned (len its length). */
static inline void weft__ring_pop(struct weft__ring *r, uint32_t len)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t h[2];
    memcpy(h, weft__ring_bytes(r) + head % r->cap, sizeof h);
    if (h[0] == WEFT__RING_WRAP)
        head += r->cap - head % r->cap;
    atomic_store_explicit(&r->head, head + 8 + weft__round8(len), memory_order_release);
}

static inline bool weft__ring_empty(struct weft__ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire) ==
           atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* ppool.c, for pmap.c: queue a chunk of count items (borrowed until it
 * finishes); on_done (if not NULL) is called once its future has finished,
 * however it ends, without an allocation that could fail; the pool's
 * largest argument and result. */
int weft__ppool_submit_chunk(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t count,
                             size_t item_size, size_t result_size, weft_future_cb on_done,
                             void *on_done_arg, weft_future_t **f);
size_t weft__ppool_limits(weft_ppool_t *pool, size_t *max_result);
/* ppool.c: a future that collects the pool's results while it is waited
 * for (the aggregate future of a map). */
int weft__ppool_future(weft_ppool_t *pool, weft_future_t **f);

/* pworker.c: the worker process's main (registered). */
int weft__pworker_main(const void *arg, size_t len);

#endif /* WEFT_PPOOL_INT_H */
