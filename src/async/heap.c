/*
 * The timer heap (design in heap.h).
 */
#include "async/heap.h"

#include <errno.h>
#include <stdlib.h>

static bool before(const struct weft__timer *a, const struct weft__timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void place(struct weft__heap *h, size_t i, struct weft__timer *t)
{
    h->nodes[i] = t;
    t->index = i;
}

/* Move the node at i towards the root while it is due before its parent,
 * then towards the leaves while a child is due before it. */
static void settle(struct weft__heap *h, size_t i)
{
    struct weft__timer *t = h->nodes[i];
    while (i > 0 && before(t, h->nodes[(i - 1) / 2])) {
        place(h, i, h->nodes[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && before(h->nodes[c + 1], h->nodes[c]))
            c++;
        if (!before(h->nodes[c], t))
            break;
        place(h, i, h->nodes[c]);
        i = c;
    }
    place(h, i, t);
}

int weft__heap_reserve(struct weft__heap *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < n)
        cap *= 2;
    struct weft__timer **nodes = weft__sys.realloc(h->nodes, cap * sizeof *nodes);
    if (!nodes)
        return -ENOMEM;
    h->nodes = nodes;
    h->cap = cap;
    return 0;
}

void weft__heap_push(struct weft__heap *h, struct weft__timer *t, weft__deadline_t deadline)
{
    t->deadline = deadline;
    t->seq = h->seq++;
    h->nodes[h->len] = t;
    settle(h, h->len++);
}

void weft__heap_remove(struct weft__heap *h, struct weft__timer *t)
{
    size_t i = t->index;
    if (i == WEFT__TIMER_IDLE)
        return;
    t->index = WEFT__TIMER_IDLE;
    struct weft__timer *last = h->nodes[--h->len];
    if (i < h->len) {
        h->nodes[i] = last;
        settle(h, i);
    }
}

void weft__heap_free(struct weft__heap *h)
{
    free(h->nodes);
    *h = (struct weft__heap){0};
}
