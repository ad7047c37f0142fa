/*
 * The bounded MPMC ring (design in ring.h). The two position counters sit
 * on cache lines of their own, apart from each other and from the cells,
 * so producers and consumers do not slow each other down through false
 * sharing; each cell is padded to a multiple of the sequence number's
 * alignment so that every seq is naturally aligned.
 */
#include "queue/ring.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

/* The counters 64 bytes apart are on different cache lines whatever the
 * struct's own alignment, so plain malloc serves. */
struct weft__ring {
    _Atomic size_t put_pos;
    char pad1[CACHE_LINE - sizeof(size_t)];
    _Atomic size_t get_pos;
    char pad2[CACHE_LINE - sizeof(size_t)];
    size_t mask, item_size, stride;
    unsigned char *cells;
};

static _Atomic size_t *seq_of(const weft__ring_t *r, size_t pos)
{
    return (_Atomic size_t *)(r->cells + (pos & r->mask) * r->stride);
}

static void *item_of(const weft__ring_t *r, size_t pos)
{
    return r->cells + (pos & r->mask) * r->stride + sizeof(size_t);
}

weft__ring_t *weft__ring_new(size_t capacity, size_t item_size)
{
    if (item_size == 0 || capacity > ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        return NULL;
    size_t cap = 2;
    while (cap < capacity)
        cap *= 2;
    size_t align = _Alignof(size_t);
    size_t stride = (sizeof(size_t) + item_size + align - 1) / align * align;
    if (stride < item_size || cap > SIZE_MAX / stride)
        return NULL;
    weft__ring_t *r = weft__malloc(sizeof *r);
    unsigned char *cells = weft__malloc(cap * stride);
    if (!r || !cells) {
        free(r);
        free(cells);
        return NULL;
    }
    memset(r, 0, sizeof *r);
    r->mask = cap - 1;
    r->item_size = item_size;
    r->stride = stride;
    r->cells = cells;
    for (size_t i = 0; i < cap; i++)
        atomic_init(seq_of(r, i), i);
    atomic_init(&r->put_pos, 0);
    atomic_init(&r->get_pos, 0);
    return r;
}

void weft__ring_free(weft__ring_t *r)
{
    if (r) {
        free(r->cells);
        free(r);
    }
}

size_t weft__ring_capacity(const weft__ring_t *r)
{
    return r->mask + 1;
}

/* Claim the position at `counter` whose cell's seq reads `pos + lag`:
 * returns it, or SIZE_MAX when the cell lags behind (full or empty). */
static size_t claim(weft__ring_t *r, _Atomic size_t *counter, size_t lag)
{
    size_t pos = atomic_load_explicit(counter, memory_order_relaxed);
    for (;;) {
        size_t seq = atomic_load_explicit(seq_of(r, pos), memory_order_acquire);
        intptr_t dif = (intptr_t)(seq - (pos + lag));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(counter, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                return pos;
        } else if (dif < 0) {
            return SIZE_MAX;
        } else {
            pos = atomic_load_explicit(counter, memory_order_relaxed);
        }
    }
}

int weft__ring_put(weft__ring_t *r, const void *item)
{
    size_t pos = claim(r, &r->put_pos, 0);
    if (pos == SIZE_MAX)
        return -EAGAIN;
    memcpy(item_of(r, pos), item, r->item_size);
    atomic_store_explicit(seq_of(r, pos), pos + 1, memory_order_release);
    return 0;
}

int weft__ring_get(weft__ring_t *r, void *item)
{
    size_t pos = claim(r, &r->get_pos, 1);
    if (pos == SIZE_MAX)
        return -EAGAIN;
    memcpy(item, item_of(r, pos), r->item_size);
    atomic_store_explicit(seq_of(r, pos), pos + r->mask + 1, memory_order_release);
    return 0;
}
