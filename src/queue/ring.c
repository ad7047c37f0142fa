/*
 * The bounded MPMC ring (design in ring.h). The two position counters sit
 * on cache lines of their own, apart from each other and from the cells,
 * so producers and consumers do not slow each other down through false
 * sharing; each cell is padded to a multiple of the sequence number's
 * alignment so that every seq is naturally aligned. A capacity that is a
 * power of two finds its cell with a shift and a mask, any other with one
 * division.
 *
 * ThreadSanitizer (base/tsan.h): the cell's seq is the hand-off, from a put
 * to the get that takes the item and from that get to the next lap's put,
 * which reuses the cell. Each operation acquires the cell's address once it
 * has claimed it and releases it before it moves the seq on, so that TSan
 * orders the item copies (a word's move, which it instruments, or memcpy,
 * which it intercepts) and, through the put's release, whatever the
 * producer wrote before the put.
 */
#include "queue/ring.h"

#include <stdlib.h>
#include <string.h>

struct weft__ring {
    _Atomic size_t put_pos;
    char pad1[WEFT__CACHE_LINE - sizeof(size_t)];
    _Atomic size_t get_pos;
    char pad2[WEFT__CACHE_LINE - sizeof(size_t)];
    size_t cap, stride, item_size;
    unsigned shift; /* log2(cap) when cap is a power of two, else 0 */
    unsigned char *cells;
};

/* The cell and lap of position pos. */
static _Atomic size_t *locate(const weft__ring_t *r, size_t pos, size_t *lap)
{
    size_t idx;
    if (r->shift || r->cap == 1) {
        *lap = pos >> r->shift;
        idx = pos & (r->cap - 1);
    } else {
        *lap = pos / r->cap;
        idx = pos % r->cap;
    }
    return (_Atomic size_t *)(r->cells + idx * r->stride);
}

static void *item_of(_Atomic size_t *seq)
{
    return (unsigned char *)seq + sizeof(size_t);
}

/* An item's copy: a word (a pointer, a number: most queues' items) in one
 * move, anything else through the C library's memcpy. */
static WEFT__INLINE void copy_item(void *to, const void *from, size_t size)
{
    if (size == sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, from, sizeof word);
        memcpy(to, &word, sizeof word);
    } else {
        memcpy(to, from, size);
    }
}

weft__ring_t *weft__ring_new(size_t capacity, size_t item_size)
{
    size_t align = _Alignof(size_t);
    size_t stride = (sizeof(size_t) + item_size + align - 1) / align * align;
    if (item_size == 0 || capacity == 0 || stride < item_size || capacity > SIZE_MAX / 4 / stride)
        return NULL;
    weft__ring_t *r = weft__calloc(1, sizeof *r);
    unsigned char *cells = weft__calloc(capacity, stride);
    if (!r || !cells) {
        free(r);
        free(cells);
        return NULL;
    }
    r->cap = capacity;
    r->stride = stride;
    r->item_size = item_size;
    r->cells = cells;
    if ((capacity & (capacity - 1)) == 0)
        r->shift = (unsigned)__builtin_ctzl(capacity);
    return r;
}

void weft__ring_free(weft__ring_t *r)
{
    if (r) {
        free(r->cells);
        free(r);
    }
}

/*
 * Claim the next position on `counter` (the put or the get counter; `full`
 * is 0 for a put, 1 for a get, the low bit of the seq it expects). Returns
 * the cell, or NULL when the ring is full (put) or empty (get): the cell
 * lags behind and the other counter, `other`, says no operation on it is in
 * flight: for a put the get counter is a whole lap behind, for a get the put
 * counter has not passed the position.
 */
enum look { TAKEN, NONE, IN_FLIGHT, AGAIN };

/* One look at position *pos: the cell taken (*cell), none to take, an
 * operation on the cell in flight, or look again at *pos, moved on. */
static WEFT__INLINE enum look look(weft__ring_t *r, _Atomic size_t *counter, _Atomic size_t *other,
                                   size_t full, size_t *pos, _Atomic size_t **cell)
{
    size_t lap;
    _Atomic size_t *seq = locate(r, *pos, &lap);
    size_t want = 2 * lap + full;
    size_t have = atomic_load_explicit(seq, memory_order_acquire);
    if (have == want) {
        if (!atomic_compare_exchange_weak_explicit(counter, pos, *pos + 1, memory_order_relaxed,
                                                   memory_order_relaxed))
            return AGAIN;
        weft__tsan_acquire(seq);
        *cell = seq;
        return TAKEN;
    }
    size_t now = atomic_load_explicit(counter, memory_order_acquire);
    if ((intptr_t)(have - want) < 0 && now == *pos) {
        /* Signed: `other` may have moved on since `have` was read. */
        intptr_t ahead = (intptr_t)(atomic_load_explicit(other, memory_order_acquire) - *pos);
        return (full ? ahead <= 0 : -ahead >= (intptr_t)r->cap) ? NONE : IN_FLIGHT;
    }
    *pos = now;
    return AGAIN;
}

static WEFT__NOINLINE _Atomic size_t *claim_slow(weft__ring_t *r, _Atomic size_t *counter,
                                                 _Atomic size_t *other, size_t full, size_t pos)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    _Atomic size_t *cell = NULL;
    for (;;) {
        switch (look(r, counter, other, full, &pos, &cell)) {
        case TAKEN:
        case NONE:
            return cell;
        case IN_FLIGHT:
            weft__stall(&stall); /* an operation on this cell is in flight */
            break;
        case AGAIN:
            break;
        }
    }
}

/* The first look inline, which is all that an operation on a ring not
 * fought over takes; the loop with its backoff out of line. */
static WEFT__INLINE _Atomic size_t *claim(weft__ring_t *r, _Atomic size_t *counter,
                                          _Atomic size_t *other, size_t full)
{
    size_t pos = atomic_load_explicit(counter, memory_order_relaxed);
    _Atomic size_t *cell = NULL;
    enum look first = look(r, counter, other, full, &pos, &cell);
    return first == TAKEN || first == NONE ? cell : claim_slow(r, counter, other, full, pos);
}

/* Hand a claimed cell on: to the get (after a put) or the next put. */
static void pass_on(_Atomic size_t *seq)
{
    weft__tsan_release(seq);
    atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
                          memory_order_release);
}

int weft__ring_put(weft__ring_t *r, const void *item, _Atomic uint64_t *count, uint64_t add)
{
    _Atomic size_t *seq = claim(r, &r->put_pos, &r->get_pos, 0);
    if (!seq)
        return -EAGAIN;
    if (count)
        atomic_fetch_add_explicit(count, add, memory_order_release);
    copy_item(item_of(seq), item, r->item_size);
    pass_on(seq);
    return 0;
}

int weft__ring_get(weft__ring_t *r, void *item)
{
    _Atomic size_t *seq = claim(r, &r->get_pos, &r->put_pos, 1);
    if (!seq)
        return -EAGAIN;
    if (item)
        copy_item(item, item_of(seq), r->item_size);
    pass_on(seq);
    return 0;
}

size_t weft__ring_size(const weft__ring_t *r)
{
    size_t got = atomic_load_explicit(&r->get_pos, memory_order_relaxed);
    size_t put = atomic_load_explicit(&r->put_pos, memory_order_relaxed);
    size_t n = put - got;
    return (intptr_t)n < 0 ? 0 : n > r->cap ? r->cap : n;
}
