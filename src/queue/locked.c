/*
 * LIFO stack and stable binary min-heap under a Lock (design in locked.h).
 *
 * An entry is the 64-bit insertion number (heap only) followed by the item,
 * padded to 8 bytes. Sifting moves entries with memcpy through `hole`, a
 * scratch entry used only under the lock: the entry being placed waits
 * there while the others shift.
 */
#include "queue/locked.h"
#include "sync/hold.h"

#include <stdlib.h>
#include <string.h>
#include <weft/sync.h>

struct weft__locked {
    weft_lock_t lock;
    size_t item_size, stride, maxsize;
    size_t count, cap;
    uint64_t next_order;
    weft__cmp_fn cmp;
    void *arg;
    unsigned char *entries, *hole;
};

static size_t header(const weft__locked_t *s)
{
    return s->cmp ? sizeof(uint64_t) : 0;
}

static unsigned char *entry(const weft__locked_t *s, size_t i)
{
    return s->entries + i * s->stride;
}

weft__locked_t *weft__locked_new(size_t item_size, size_t maxsize, weft__cmp_fn cmp, void *arg)
{
    size_t head = cmp ? sizeof(uint64_t) : 0;
    size_t stride = head + (item_size + 7) / 8 * 8;
    if (item_size == 0 || stride < item_size || stride > SIZE_MAX / 64)
        return NULL;
    weft__locked_t *s = weft__calloc(1, sizeof *s);
    unsigned char *hole = weft__malloc(stride);
    if (!s || !hole) {
        free(s);
        free(hole);
        return NULL;
    }
    weft_lock_init(&s->lock, 0);
    s->item_size = item_size;
    s->stride = stride;
    s->maxsize = maxsize;
    s->cmp = cmp;
    s->arg = arg;
    s->hole = hole;
    return s;
}

void weft__locked_free(weft__locked_t *s)
{
    if (s) {
        free(s->entries);
        free(s->hole);
        free(s);
    }
}

static bool grow(weft__locked_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 16;
    if (s->maxsize && cap > s->maxsize)
        cap = s->maxsize;
    if (cap > SIZE_MAX / s->stride)
        return false;
    unsigned char *entries = weft__malloc(cap * s->stride);
    if (!entries)
        return false;
    if (s->count)
        memcpy(entries, s->entries, s->count * s->stride);
    free(s->entries);
    s->entries = entries;
    s->cap = cap;
    return true;
}

/* Does entry a come before entry b? By the caller's order, then by
 * insertion. */
static bool before(const weft__locked_t *s, const unsigned char *a, const unsigned char *b)
{
    int c = s->cmp(a + sizeof(uint64_t), b + sizeof(uint64_t), s->arg);
    if (c)
        return c < 0;
    uint64_t oa, ob;
    memcpy(&oa, a, sizeof oa);
    memcpy(&ob, b, sizeof ob);
    return oa < ob;
}

/* Place the entry in `hole` at index i, moving parents down past it. */
static void sift_up(weft__locked_t *s, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(s, s->hole, entry(s, parent)))
            break;
        memcpy(entry(s, i), entry(s, parent), s->stride);
        i = parent;
    }
    memcpy(entry(s, i), s->hole, s->stride);
}

/* Place the entry in `hole` at the root, moving smaller children up. */
static void sift_down(weft__locked_t *s)
{
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= s->count)
            break;
        if (child + 1 < s->count && before(s, entry(s, child + 1), entry(s, child)))
            child++;
        if (!before(s, entry(s, child), s->hole))
            break;
        memcpy(entry(s, i), entry(s, child), s->stride);
        i = child;
    }
    memcpy(entry(s, i), s->hole, s->stride);
}

/* Add item to the stack or heap; the caller holds the lock and has room. */
static void insert(weft__locked_t *s, const void *item)
{
    if (!s->cmp) {
        memcpy(entry(s, s->count++), item, s->item_size);
        return;
    }
    uint64_t order = s->next_order++;
    memcpy(s->hole, &order, sizeof order);
    memcpy(s->hole + sizeof order, item, s->item_size);
    sift_up(s, s->count++);
}

int weft__locked_put(weft__locked_t *s, const void *item, _Atomic uint64_t *count, uint64_t add)
{
    int rc = 0;
    weft__lock_hold(&s->lock);
    if (s->maxsize && s->count >= s->maxsize) {
        rc = -EAGAIN;
    } else if (s->count == s->cap && !grow(s)) {
        rc = -ENOMEM;
    } else {
        if (count)
            atomic_fetch_add_explicit(count, add, memory_order_release);
        insert(s, item);
    }
    weft_lock_release(&s->lock);
    return rc;
}

int weft__locked_get(weft__locked_t *s, void *item)
{
    int rc = 0;
    weft__lock_hold(&s->lock);
    if (s->count == 0) {
        rc = -EAGAIN;
    } else if (!s->cmp) {
        s->count--;
        if (item)
            memcpy(item, entry(s, s->count), s->item_size);
    } else {
        if (item)
            memcpy(item, entry(s, 0) + header(s), s->item_size);
        s->count--;
        memcpy(s->hole, entry(s, s->count), s->stride);
        sift_down(s);
    }
    weft_lock_release(&s->lock);
    return rc;
}

size_t weft__locked_size(weft__locked_t *s)
{
    weft__lock_hold(&s->lock);
    size_t n = s->count;
    weft_lock_release(&s->lock);
    return n;
}
