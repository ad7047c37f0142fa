/*
 * The Chase-Lev deque (design in deque.h). Element slots are atomics
 * accessed relaxed: owner and thief may touch the same slot at once, and
 * the protocol, not the slot, decides who gets the element. Publication
 * goes through bottom: push stores it with release after writing the slot,
 * steal loads it with acquire before reading the slot.
 */
#include "pool/deque.h"

#include "base/tsan.h"

#include <stdlib.h>

#define FIRST_SIZE 256

typedef void *(*task_fn)(void *arg);

struct slot {
    _Atomic(task_fn) fn;
    void *_Atomic arg;
    _Atomic uintptr_t owner;
};

struct weft__deque_array {
    int64_t size; /* a power of two */
    struct weft__deque_array *older;
    struct slot slots[];
};

static struct weft__deque_array *array_new(int64_t size)
{
    struct weft__deque_array *a = weft__malloc(sizeof *a + (size_t)size * sizeof(struct slot));
    if (a) {
        a->size = size;
        a->older = NULL;
    }
    return a;
}

static struct slot *slot(struct weft__deque_array *a, int64_t i)
{
    return &a->slots[i & (a->size - 1)];
}

static void store(struct slot *s, const weft__task_t *t)
{
    atomic_store_explicit(&s->fn, t->fn, memory_order_relaxed);
    atomic_store_explicit(&s->arg, t->arg, memory_order_relaxed);
    atomic_store_explicit(&s->owner, t->owner, memory_order_relaxed);
}

static void load(struct slot *s, weft__task_t *t)
{
    t->fn = atomic_load_explicit(&s->fn, memory_order_relaxed);
    t->arg = atomic_load_explicit(&s->arg, memory_order_relaxed);
    t->owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
}

int weft__deque_init(weft__deque_t *d)
{
    struct weft__deque_array *a = array_new(FIRST_SIZE);
    if (!a)
        return -ENOMEM;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->array, a);
    d->retired = NULL;
    return 0;
}

void weft__deque_destroy(weft__deque_t *d)
{
    free(atomic_load(&d->array));
    for (struct weft__deque_array *a = d->retired, *older; a; a = older) {
        older = a->older;
        free(a);
    }
}

/* Double the array, copying the live elements [t, b). */
static struct weft__deque_array *grow(weft__deque_t *d, struct weft__deque_array *a, int64_t t,
                                      int64_t b)
{
    struct weft__deque_array *bigger = array_new(a->size * 2);
    if (!bigger)
        return NULL;
    for (int64_t i = t; i < b; i++) {
        weft__task_t x;
        load(slot(a, i), &x);
        weft__tsan_release(slot(bigger, i));
        store(slot(bigger, i), &x);
    }
    atomic_store_explicit(&d->array, bigger, memory_order_release);
    a->older = d->retired;
    d->retired = a;
    return bigger;
}

int weft__deque_push(weft__deque_t *d, const weft__task_t *x)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);
    if (b - t > a->size - 1 && !(a = grow(d, a, t, b)))
        return -ENOMEM;
    weft__tsan_release(slot(a, b));
    store(slot(a, b), x);
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return 0;
}

bool weft__deque_take(weft__deque_t *d, weft__task_t *x)
{
    /* Empty (thieves only ever shrink it): no need for the fence below,
     * which a worker looking for work would otherwise pay per task. */
    if (atomic_load_explicit(&d->bottom, memory_order_relaxed) <=
        atomic_load_explicit(&d->top, memory_order_relaxed))
        return false;
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
    weft__fence();
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    bool got = t <= b;
    if (got) {
        load(slot(a, b), x);
        if (t == b) { /* the last one: race the thieves for it */
            got = atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                          memory_order_relaxed);
            atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
        }
    } else {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    }
    return got;
}

bool weft__deque_steal(weft__deque_t *d, weft__task_t *x, bool *lost)
{
    *lost = false;
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    weft__fence();
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if (t >= b)
        return false;
    struct weft__deque_array *a = atomic_load_explicit(&d->array, memory_order_acquire);
    load(slot(a, t), x);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed)) {
        *lost = true;
        return false;
    }
    weft__tsan_acquire(slot(a, t));
    return true;
}

bool weft__deque_busy(weft__deque_t *d)
{
    return atomic_load(&d->bottom) - atomic_load(&d->top) > 0;
}
