/*
 * weft_wait and as_completed (weft/future.h), after Python's: a waiter
 * watches every future it was given and records each one, once, in the
 * order they finish (the ones finished already first); the waiting thread
 * sleeps on the waiter's eventcount until the record satisfies it.
 *
 * A future given more than once counts once, as in Python (which makes a
 * set of them): the waiter first copies out the distinct futures, in the
 * order they first appear.
 *
 * A pool worker that calls weft_wait runs the pool's other tasks while it
 * waits (the tasks it waits for may be queued behind it, on its own
 * deque), as weft_future_result does: each record then also wakes the
 * pool's sleepers, the waiting worker among them.
 *
 * A future records itself through its watch list (future_int.h) under its
 * own Lock, or, if it had finished before the watch was linked, the waiter
 * records it right away. Either way each distinct future is recorded
 * exactly once. Before the waiter's memory goes away every watch is
 * unlinked under its future's Lock, so no finishing future can touch it
 * afterwards. That Lock also orders, for ThreadSanitizer, a finished
 * future's outcome before weft_wait returns; as_completed acquires each
 * future it yields (base/tsan.h).
 */
#include "base/evc.h"
#include "pool/future_int.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

struct waiter {
    weft__watcher_t base; /* first: notify gets &base */
    weft__evc_t evc;
    size_t n;
    _Atomic size_t recorded;
    _Atomic int failed; /* a future finished with an error */
    weft_future_t *_Atomic *order;
    weft__watch_t *watches;
    weft_future_t **fs; /* distinct, in order of first appearance */
    weft_pool_t *pool;  /* weft_wait in a worker: its pool, else NULL */
};

static void record(struct waiter *w, weft_future_t *f)
{
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == F_DONE && f->error)
        atomic_store(&w->failed, 1);
    size_t i = atomic_fetch_add(&w->recorded, 1);
    atomic_store_explicit(&w->order[i], f, memory_order_release);
    weft__evc_notify(&w->evc);
    if (w->pool)
        weft__pool_wake(w->pool);
}

static void notify(weft__watcher_t *base, weft_future_t *f)
{
    record((struct waiter *)base, f);
}

static void unwatch_all(struct waiter *w)
{
    for (size_t i = 0; i < w->n; i++)
        weft__future_unwatch(w->fs[i], &w->watches[i]);
    free(w->watches);
    free((void *)w->order);
    free(w->fs);
}

/* Copy fs[0..n-1] without repeats into w->fs, keeping the first appearance
 * of each: each future is looked up in a set of those seen so far, open
 * addressing in a table at least twice n, so a wait on a hundred thousand
 * futures (a gather of as many tasks) does not pay for sorting them. */
static int copy_distinct(struct waiter *w, weft_future_t *const *fs, size_t n)
{
    int bits = 1;
    while (bits < 62 && ((size_t)1 << bits) < 2 * n)
        bits++;
    size_t mask = ((size_t)1 << bits) - 1;
    weft_future_t **seen = weft__calloc(mask + 1, sizeof *seen);
    w->fs = weft__calloc(n ? n : 1, sizeof *w->fs);
    if (!seen || !w->fs) {
        free(seen);
        free(w->fs);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t h = weft__hash_ptr(fs[i], bits);
        while (seen[h] && seen[h] != fs[i])
            h = (h + 1) & mask;
        if (!seen[h])
            seen[h] = w->fs[k++] = fs[i];
    }
    w->n = k;
    free(seen);
    return 0;
}

/* Set up w over fs and watch them all; -EINVAL or -ENOMEM. */
static int watch_all(struct waiter *w, weft_future_t *const *fs, size_t n, weft_pool_t *pool)
{
    if (!fs && n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    *w = (struct waiter){.base = {notify}, .pool = pool};
    weft__evc_init(&w->evc, WEFT__WAIT_POOL);
    if (copy_distinct(w, fs, n))
        return -ENOMEM;
    w->order = weft__calloc(w->n ? w->n : 1, sizeof *w->order);
    w->watches = weft__calloc(w->n ? w->n : 1, sizeof *w->watches);
    if (!w->order || !w->watches) {
        free((void *)w->order);
        free(w->watches);
        free(w->fs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < w->n; i++)
        if (!weft__future_watch(w->fs[i], &w->watches[i], &w->base))
            record(w, w->fs[i]);
    return 0;
}

struct condition {
    struct waiter *w;
    int return_when;
};

static int satisfied(void *arg)
{
    struct condition *c = arg;
    size_t done = atomic_load(&c->w->recorded);
    if (done == c->w->n || (c->return_when == WEFT_FIRST_COMPLETED && done > 0) ||
        (c->return_when == WEFT_FIRST_EXCEPTION && atomic_load(&c->w->failed)))
        return 0;
    return -EAGAIN;
}

int weft_wait(weft_future_t *const *fs, size_t n, double timeout, int return_when)
{
    if (isnan(timeout) || n > INT_MAX || return_when < WEFT_FIRST_COMPLETED ||
        return_when > WEFT_ALL_COMPLETED)
        return -EINVAL;
    struct waiter w;
    int rc = watch_all(&w, fs, n, weft__worker_pool());
    if (rc < 0)
        return rc;
    struct condition c = {&w, return_when};
    rc = satisfied(&c);
    if (rc == -EAGAIN && timeout != 0) {
        weft__deadline_t deadline;
        weft__deadline(timeout, &deadline);
        rc = w.pool ? weft__worker_help(&(weft__until_t){satisfied, NULL, &c}, deadline)
                    : weft__evc_wait(&w.evc, satisfied, NULL, &c, deadline);
    }
    unwatch_all(&w);
    return rc < 0 ? rc : (int)atomic_load(&w.recorded);
}

struct weft_as_completed {
    struct waiter w;
    size_t yielded;
    weft__deadline_t deadline;
};

int weft_as_completed_new(weft_as_completed_t **it, weft_future_t *const *fs, size_t n,
                          double timeout)
{
    if (!it || isnan(timeout))
        return -EINVAL;
    weft_as_completed_t *a = weft__malloc(sizeof *a);
    if (!a)
        return -ENOMEM;
    int rc = watch_all(&a->w, fs, n, NULL); /* may outlive a worker's task, and its pool */
    if (rc < 0) {
        free(a);
        return rc;
    }
    a->yielded = 0;
    weft__deadline(timeout, &a->deadline);
    *it = a;
    return 0;
}

static int next_recorded(void *arg)
{
    weft_as_completed_t *a = arg;
    return atomic_load_explicit(&a->w.order[a->yielded], memory_order_acquire) ? 0 : -EAGAIN;
}

int weft_as_completed_next(weft_as_completed_t *it, weft_future_t **f)
{
    if (!it || !f)
        return -EINVAL;
    if (it->yielded == it->w.n)
        return 0;
    int rc = next_recorded(it);
    if (rc == -EAGAIN)
        rc = weft__evc_wait(&it->w.evc, next_recorded, NULL, it, it->deadline);
    if (rc < 0)
        return rc;
    *f = atomic_load_explicit(&it->w.order[it->yielded++], memory_order_acquire);
    weft__tsan_acquire(*f); /* finished: its outcome's writes come first */
    return 1;
}

int weft_as_completed_free(weft_as_completed_t *it)
{
    if (!it)
        return -EINVAL;
    unwatch_all(&it->w);
    free(it);
    return 0;
}
