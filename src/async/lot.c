/*
 * The parking table for tasks (design in async_int.h and base/park.h).
 *
 * WebKit's ParkingLot keyed by address: a fixed table of buckets, each a
 * small lock and a FIFO list of the task waiters whose words hash to it. Words
 * waited on by threads never come here: threads sleep on the futex, and an
 * unpark reaches this table only while some task is parked (the count in
 * base, read after a fence).
 *
 * Why the check happens under the bucket's lock: a task counts itself,
 * fences, and compares its word with the bucket locked; an unparker
 * changes the word, fences, reads the count, and takes the same lock to
 * look. Either the unparker's lock comes first, and then its change
 * happens before the task's compare, which fails; or the task's enqueue
 * comes first, and the unparker finds it. (Peeking at the list without the
 * lock would lose a task that has compared but not yet enqueued.) Without
 * the fences, a count still in the parker's store buffer could be missed
 * by an unparker whose change the parker has not seen: x86 hides that,
 * aarch64 does not.
 *
 * Sleeps (weft_sleep) and descriptor waits never enter the table: only the
 * loop's own thread ends those (its timers, its epoll, a cancellation),
 * and a million sleeping tasks must not lengthen anybody's bucket.
 *
 * 4096 buckets: a bucket's list holds the waiters of every word hashed to
 * it, and an unpark walks past other words' waiters to find its own, so
 * the table is sized for many distinct words waited on at once.
 */
#include "async/async_int.h"

#include <stddef.h>
#include <string.h>

enum { BUCKET_BITS = 12 };

struct bucket {
    _Atomic uint32_t mu; /* 1 while held (bucket_lock) */
    struct weft__waiter *head, *tail;
} __attribute__((aligned(WEFT__CACHE_LINE)));

/* All zero is an unlocked bucket with an empty list. */
static struct bucket table[1 << BUCKET_BITS];

WEFT__NOINLINE void weft__tas_wait(_Atomic uint32_t *mu)
{
    weft__stall_t stall = WEFT__STALL_INIT;
    do
        while (atomic_load_explicit(mu, memory_order_relaxed))
            weft__stall(&stall);
    while (atomic_exchange_explicit(mu, 1, memory_order_acquire));
}

/* A bucket's lock guards a few instructions (a compare, a link, a walk of
 * the waiters). */
static WEFT__INLINE void bucket_lock(struct bucket *b)
{
    weft__tas_lock(&b->mu);
}

static WEFT__INLINE void bucket_unlock(struct bucket *b)
{
    weft__tas_unlock(&b->mu);
}

static struct bucket *bucket_of(const void *word)
{
    return &table[weft__hash_ptr(word, BUCKET_BITS)];
}

static struct weft_co *task_of(struct weft__waiter *w)
{
    return (struct weft_co *)((char *)w - offsetof(struct weft_co, waiter));
}

/*
 * The count that sends unparks here (weft__parked_tasks, base/park.h). In
 * M:N mode each parked task is counted there. A loop that runs alone counts
 * its parked tasks itself, on its own thread, and holds one count there
 * while it has any: two tasks handing off to each other, one parked while
 * the other runs, then make no read-modify-write on a word every thread of
 * the process reads. The loop's count drops once the task is back on its
 * thread (weft__lot_uncount), not when it is unlinked, which any thread
 * may do: the process's count is high for that while, which costs an
 * unparker a needless look, never a lost wake-up. A parker whose loop held
 * the count already counted it with an earlier read-modify-write, so the
 * count is visible before its look at the word, as when it counts now.
 */
static void count_parked(struct weft__waiter *w, struct weft__loop *l)
{
    w->global = l->mn;
    if (l->mn || l->words_parked++ == 0)
        atomic_fetch_add(&weft__parked_tasks, 1);
}

static void uncount_loop(struct weft__loop *l)
{
    if (--l->words_parked == 0)
        atomic_fetch_sub_explicit(&weft__parked_tasks, 1, memory_order_relaxed);
}

void weft__lot_uncount(struct weft_co *t)
{
    if (!t->waiter.global)
        uncount_loop(t->loop);
}

static void unlink_waiter(struct bucket *b, struct weft__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->tail = w->prev;
    w->linked = false;
    if (w->global)
        atomic_fetch_sub_explicit(&weft__parked_tasks, 1, memory_order_relaxed);
}

int weft__lot_enqueue(struct weft_co *t, _Atomic uint32_t *word, uint32_t expected)
{
    struct bucket *b = bucket_of(word);
    struct weft__waiter *w = &t->waiter;
    struct weft__loop *l = t->loop;
    bucket_lock(b);
    count_parked(w, l);
    weft__fence_after_atomic();
    if (atomic_load_explicit(word, memory_order_relaxed) != expected) {
        bool global = w->global;
        bucket_unlock(b);
        if (global)
            atomic_fetch_sub_explicit(&weft__parked_tasks, 1, memory_order_relaxed);
        else
            uncount_loop(l);
        return 0;
    }
    *w = (struct weft__waiter){word, b->tail, NULL, true, w->global};
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    bucket_unlock(b);
    return 1;
}

bool weft__lot_dequeue(struct weft_co *t)
{
    struct bucket *b = bucket_of(t->waiter.word);
    bucket_lock(b);
    bool was = t->waiter.linked;
    if (was)
        unlink_waiter(b, &t->waiter);
    bucket_unlock(b);
    return was;
}

/* base's weft__task_unpark: the first n tasks parked on word, woken after
 * the bucket is unlocked (a wake takes the loop's own locks). */
static int lot_unpark(_Atomic uint32_t *word, int n, unsigned flags)
{
    WEFT__UNUSED(flags);
    struct bucket *b = bucket_of(word);
    struct weft__waiter *woken = NULL, **tail = &woken;
    int count = 0;
    bucket_lock(b);
    for (struct weft__waiter *w = b->head, *next; w && count < n; w = next) {
        next = w->next;
        if (w->word != word)
            continue;
        unlink_waiter(b, w);
        w->next = NULL;
        *tail = w;
        tail = &w->next;
        count++;
    }
    bucket_unlock(b);
    for (struct weft__waiter *w = woken, *next; w; w = next) {
        next = w->next; /* read before the task can run and park again */
        weft__co_wake(task_of(w), 0);
    }
    return count;
}

/* In a forked child only the forking thread lives on: the tasks parked in
 * the table are the parent's (a child forked from a task leaves its loop
 * behind, see base/park.h), and a bucket's lock may have been held by a
 * thread that is not there. The child starts with an empty table. */
static void empty_in_child(void)
{
    memset(table, 0, sizeof table);
    atomic_store_explicit(&weft__parked_tasks, 0, memory_order_relaxed);
}

WEFT__CONSTRUCTOR static void lot_boot(void)
{
    (void)pthread_atfork(NULL, NULL, empty_in_child);
}

void weft__lot_install(void)
{
    atomic_store_explicit(&weft__task_unpark, lot_unpark, memory_order_release);
}
