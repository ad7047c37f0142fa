/*
 * The unbounded MPMC chain of blocks (design in chain.h).
 *
 * Words: a position p is stored as p << 1; bit 0 of the head word is
 * HAS_NEXT. A slot is a 32-bit state (WRITTEN, READ, DESTROY) padded to 8
 * bytes, then the item. The head and the tail, each a word and a block
 * pointer, sit on cache lines of their own.
 *
 * ThreadSanitizer (base/tsan.h) sees the allocation, the item copies and the
 * free of a block (calloc, memcpy and free are intercepted), so each step
 * that orders them is annotated: a new block is released at its address and
 * acquired by every producer that writes into it; a slot's state word is
 * released before each bit set on it (WRITTEN, READ, DESTROY) and acquired
 * by the thread that sees the bit, so the item goes from producer to
 * consumer with what the producer wrote before the put, and every reader's
 * copy comes before the free at the end of the walk.
 */
#include "queue/chain.h"

#include <stdlib.h>
#include <string.h>

#define LAP         64
#define BLOCK_SLOTS (LAP - 1)
#define STEP        ((size_t)2)
#define HAS_NEXT    ((size_t)1)
#define SLOT_HEADER 8

enum { WRITTEN = 1, READ = 2, DESTROY = 4 };

struct block {
    struct block *_Atomic next;
    _Alignas(8) unsigned char slots[]; /* BLOCK_SLOTS * stride */
};

struct end {
    _Atomic size_t word;
    struct block *_Atomic block;
    /* At the head: a tail word a get has read. The tail only grows, so any
     * value once read is at most the tail now, and every position below it
     * has been claimed by a put: a get below it need not read the tail. */
    _Atomic size_t tail_seen;
    char pad[WEFT__CACHE_LINE - 2 * sizeof(size_t) - sizeof(void *)];
};

struct weft__chain {
    struct end head, tail; /* each on a cache line of its own */
    size_t item_size, stride;
};

static size_t pos_of(size_t word)
{
    return word >> 1;
}

static size_t offset_of(size_t word)
{
    return pos_of(word) % LAP;
}

static _Atomic uint32_t *slot(const weft__chain_t *c, struct block *b, size_t off)
{
    return (_Atomic uint32_t *)(b->slots + off * c->stride);
}

static void *item_of(_Atomic uint32_t *state)
{
    return (unsigned char *)state + SLOT_HEADER;
}

static struct block *block_new(const weft__chain_t *c)
{
    struct block *b = weft__calloc(1, sizeof(struct block) + BLOCK_SLOTS * c->stride);
    if (b)
        weft__tsan_release(b); /* its zeroing, for the producers that write in it */
    return b;
}

/* Set `bit` on a slot's state, handing this thread's work on with it; the
 * state before. */
static uint32_t set_bit(_Atomic uint32_t *state, uint32_t bit, memory_order order)
{
    weft__tsan_release(state);
    return atomic_fetch_or_explicit(state, bit, order);
}

/* A bit set by set_bit seen on state: its setter's work comes first. */
static bool saw_bit(_Atomic uint32_t *state, uint32_t v, uint32_t bit)
{
    if (!(v & bit))
        return false;
    weft__tsan_acquire(state);
    return true;
}

weft__chain_t *weft__chain_new(size_t item_size)
{
    size_t stride = SLOT_HEADER + (item_size + 7) / 8 * 8;
    if (item_size == 0 || stride < item_size || stride > SIZE_MAX / 2 / BLOCK_SLOTS)
        return NULL;
    weft__chain_t *c = weft__calloc_lines(sizeof *c);
    if (c) {
        c->item_size = item_size;
        c->stride = stride;
    }
    return c;
}

void weft__chain_free(weft__chain_t *c)
{
    if (!c)
        return;
    size_t tail = pos_of(atomic_load(&c->tail.word));
    struct block *b = atomic_load(&c->head.block);
    for (size_t pos = pos_of(atomic_load(&c->head.word)); pos != tail; pos++) {
        if (pos % LAP == BLOCK_SLOTS) {
            struct block *next = atomic_load(&b->next);
            free(b);
            b = next;
        }
    }
    free(b);
    free(c);
}

int weft__chain_put(weft__chain_t *c, const void *item, _Atomic uint64_t *count, uint64_t add)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    size_t tail = atomic_load_explicit(&c->tail.word, memory_order_acquire);
    struct block *b = atomic_load_explicit(&c->tail.block, memory_order_acquire);
    struct block *spare = NULL; /* the next block, allocated before claiming */
    int rc = 0;
    for (;;) {
        size_t off = offset_of(tail);
        if (off == BLOCK_SLOTS) { /* the last slot's producer is linking a block in */
            weft__stall(&stall);
            tail = atomic_load_explicit(&c->tail.word, memory_order_acquire);
            b = atomic_load_explicit(&c->tail.block, memory_order_acquire);
            continue;
        }
        if ((!b || off + 1 == BLOCK_SLOTS) && !spare && !(spare = block_new(c))) {
            rc = -ENOMEM;
            break;
        }
        if (!b) { /* the very first put installs the first block */
            struct block *none = NULL;
            if (atomic_compare_exchange_strong(&c->tail.block, &none, spare)) {
                atomic_store_explicit(&c->head.block, spare, memory_order_release);
                spare = NULL;
            }
            /* Re-read both: others may have filled that block meanwhile, and
             * a word from a later block with this block would write there. */
            tail = atomic_load_explicit(&c->tail.word, memory_order_acquire);
            b = atomic_load_explicit(&c->tail.block, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&c->tail.word, &tail, tail + STEP,
                                                  memory_order_seq_cst, memory_order_acquire)) {
            if (off + 1 == BLOCK_SLOTS) { /* link the next block, step over the marker */
                atomic_store_explicit(&c->tail.block, spare, memory_order_release);
                atomic_store_explicit(&c->tail.word, tail + 2 * STEP, memory_order_release);
                atomic_store_explicit(&b->next, spare, memory_order_release);
                spare = NULL;
            }
            if (count)
                atomic_fetch_add_explicit(count, add, memory_order_release);
            _Atomic uint32_t *state = slot(c, b, off);
            weft__tsan_acquire(b);
            memcpy(item_of(state), item, c->item_size);
            set_bit(state, WRITTEN, memory_order_release);
            break;
        }
        b = atomic_load_explicit(&c->tail.block, memory_order_acquire);
        weft__cpu_relax();
    }
    if (WEFT__UNLIKELY(spare))
        free(spare); /* another put linked a block in first */
    return rc;
}

/* The reader of a slot is done with block b: free it if every slot from
 * `from` on has been read too, else hand the freeing to the first slot's
 * reader that has not finished (it sees DESTROY when it sets READ). */
static void release_block(const weft__chain_t *c, struct block *b, size_t from)
{
    for (size_t off = from; off < BLOCK_SLOTS - 1; off++) {
        _Atomic uint32_t *state = slot(c, b, off);
        if (!saw_bit(state, atomic_load_explicit(state, memory_order_acquire), READ) &&
            !saw_bit(state, set_bit(state, DESTROY, memory_order_acq_rel), READ))
            return;
    }
    free(b);
}

/* The consumer of a block's last slot moves the head to the next block,
 * which the slot's producer links in just after claiming the slot. */
static void advance_head(weft__chain_t *c, struct block *b, size_t head)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    struct block *next;
    while (!(next = atomic_load_explicit(&b->next, memory_order_acquire)))
        weft__stall(&stall);
    size_t word = (head & ~HAS_NEXT) + STEP;
    if (atomic_load_explicit(&next->next, memory_order_acquire))
        word |= HAS_NEXT;
    atomic_store_explicit(&c->head.block, next, memory_order_release);
    atomic_store_explicit(&c->head.word, word, memory_order_release);
}

static void take(weft__chain_t *c, struct block *b, size_t off, void *item)
{
    _Atomic uint32_t *state = slot(c, b, off);
    weft__stall_t stall = WEFT__STALL_INIT;
    while (!saw_bit(state, atomic_load_explicit(state, memory_order_acquire), WRITTEN))
        weft__stall(&stall); /* claimed, still being copied in */
    if (item)
        memcpy(item, item_of(state), c->item_size);
    if (off + 1 == BLOCK_SLOTS)
        release_block(c, b, 0);
    else if (saw_bit(state, set_bit(state, READ, memory_order_acq_rel), DESTROY))
        release_block(c, b, off + 1);
}

/* Is the position at `head` claimed by a put, as far as the tail a get last
 * read says? Then the get need not read the tail word, which the producers
 * write at every put: a consumer behind its producer by a batch reads it once
 * per batch, not once per item. */
static bool below_tail_seen(weft__chain_t *c, size_t head)
{
    return pos_of(head) < pos_of(atomic_load_explicit(&c->head.tail_seen, memory_order_relaxed));
}

int weft__chain_get(weft__chain_t *c, void *item)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    size_t head = atomic_load_explicit(&c->head.word, memory_order_acquire);
    struct block *b = atomic_load_explicit(&c->head.block, memory_order_acquire);
    for (;;) {
        size_t off = offset_of(head);
        size_t next = head + STEP;
        if (off != BLOCK_SLOTS && !(head & HAS_NEXT) && !below_tail_seen(c, head)) {
            /* Still in the tail's block: is there anything to take? */
            weft__fence();
            size_t tail = atomic_load_explicit(&c->tail.word, memory_order_relaxed);
            if (pos_of(head) == pos_of(tail))
                return -EAGAIN;
            atomic_store_explicit(&c->head.tail_seen, tail, memory_order_relaxed);
            if (pos_of(head) / LAP != pos_of(tail) / LAP)
                next |= HAS_NEXT;
        }
        if (off == BLOCK_SLOTS || !b) { /* at the marker, or the first put is linking */
            weft__stall(&stall);
            head = atomic_load_explicit(&c->head.word, memory_order_acquire);
            b = atomic_load_explicit(&c->head.block, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&c->head.word, &head, next, memory_order_seq_cst,
                                                  memory_order_acquire)) {
            if (off + 1 == BLOCK_SLOTS)
                advance_head(c, b, next);
            take(c, b, off, item);
            return 0;
        }
        b = atomic_load_explicit(&c->head.block, memory_order_acquire);
        weft__cpu_relax();
    }
}

size_t weft__chain_size(weft__chain_t *c)
{
    for (;;) {
        size_t tail = atomic_load(&c->tail.word);
        size_t head = atomic_load(&c->head.word);
        if (atomic_load(&c->tail.word) != tail)
            continue;
        size_t t = pos_of(tail), h = pos_of(head);
        t += t % LAP == BLOCK_SLOTS; /* a marker counts as the next block's start */
        h += h % LAP == BLOCK_SLOTS;
        return (t - h) - (t / LAP - h / LAP);
    }
}
