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

_Atomic size_t *weft__ring_claim_slow(weft__ring_t *r, _Atomic size_t *counter,
                                      _Atomic size_t *other, size_t full, size_t pos)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    _Atomic size_t *cell = NULL;
    for (;;) {
        switch (weft__ring_look(r, counter, other, full, &pos, &cell)) {
        case WEFT__RING_TAKEN:
        case WEFT__RING_NONE:
            return cell;
        case WEFT__RING_IN_FLIGHT:
            weft__stall(&stall); /* an operation on this cell is in flight */
            break;
        case WEFT__RING_AGAIN:
            break;
        }
    }
}

size_t weft__ring_size(const weft__ring_t *r)
{
    size_t got = atomic_load_explicit(&r->get_pos, memory_order_relaxed);
    size_t put = atomic_load_explicit(&r->put_pos, memory_order_relaxed);
    size_t n = put - got;
    return (intptr_t)n < 0 ? 0 : n > r->cap ? r->cap : n;
}
