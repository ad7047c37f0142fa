/*
 * Queue, LifoQueue, PriorityQueue and SimpleQueue (weft/queue.h): blocking,
 * task counting and shutdown on top of three stores.
 *
 * Stores. A bounded FIFO queue is a ring of exactly maxsize cells (ring.h);
 * an unbounded one, and SimpleQueue, a chain of blocks (chain.h). A bounded
 * FIFO queue whose ring would pass 1 MiB is a chain plus a count of
 * items, so that Queue(maxsize=10**7) does not take memory for ten million
 * items it may never hold. LIFO and priority queues use the locked array
 * (locked.h).
 *
 * Blocking. Getters sleep on the eventcount `items`, putters on `room`
 * (evc.h): a successful put notifies one getter, a get one putter (bounded
 * queues only), and a woken thread passes the wake-up on while items (or
 * room) are left. Notifying costs a fence and a load while nobody sleeps.
 * The stores never report "empty" while a put is half done (nor "full"
 * while a get is), so a sleeper is never left behind an item.
 *
 * Tasks and puts in flight share one 64-bit word, `tasks`: the low 24 bits
 * count the puts between their check of `closed` and their claim of a place
 * in the store, the high 40 unfinished tasks (items put and not yet marked
 * done). A put adds IN_FLIGHT before it checks; the store, at the claim
 * (when the put is sure to succeed, before the item becomes visible), adds
 * CLAIMED, which turns the put in flight into an unfinished task in one
 * atomic step; a put that fails takes its IN_FLIGHT back. So a consumer can
 * never mark an item done before it is counted, and a put waiting for room
 * is no unfinished task (one task_done too many is refused while a put is
 * blocked, as in Python). Puts in flight are at most one a thread, far
 * below 2^24; unfinished tasks grow by one a put for ever in a program that
 * never calls task_done (a queue used as a plain channel), so they take the
 * top bits, where passing 2^40 wraps them alone instead of carrying into
 * the puts in flight and leaving shutdown to wait for a put that is not
 * there.
 *
 * Shutdown (Python 3.13's rule: once shutdown has returned, every put that
 * succeeded has its item got by a later get, or discarded by an immediate
 * shutdown). Shutdown sets SHUT, which puts refuse from then on, and waits
 * until no put is in flight: each that passed its check has claimed its
 * place, and a claimed place is as good as an item (the stores make a getter
 * wait for a claimed item rather than report "empty"). Only then does it
 * set DRAINED; an immediate shutdown then discards the items left, and as no
 * put can add one any more, the queue stays empty. A getter that finds the
 * queue empty reports the shutdown only once DRAINED is set, so it is never
 * told "shut down" while an accepted item is still on its way in. The put's
 * add and check and the shutdown's set and look are sequentially consistent,
 * so either the put sees SHUT or shutdown sees the put; the store's CLAIMED
 * add is a release, so a getter that sees DRAINED sees the claim too. Puts are a few
 * instructions from check to claim, so shutdown waits them out with the
 * stores' stall (pauses, then yields) and the put path pays no wake-up.
 *
 * ThreadSanitizer (base/tsan.h): an item's hand-off from put to get is
 * annotated by the stores (the ring's cell, the chain's slot, or the Lock
 * of the locked store), which carries what the producer wrote before the
 * put to the consumer; task_done releases the task count, which a join
 * that returns acquires.
 *
 * Layout: the words every operation reads and only shutdown writes share a
 * cache line; the eventcounts (written only around sleeps) take the next;
 * the task count, written by every put, takes a third, so that producers
 * and consumers do not pull one line back and forth.
 */
#include "base/evc.h"
#include "queue/chain.h"
#include "queue/locked.h"
#include "queue/queue_int.h"
#include "queue/ring.h"
#include <weft/queue.h>

#include <limits.h>
#include <math.h>
#include <stdlib.h>

size_t weft__queue_ring_max_bytes = (size_t)1 << 20;
uint64_t weft__queue_tasks_at_new;

enum store { RING, CHAIN, CHAIN_BOUNDED, LOCKED };
enum { SHUT = 1, DRAINED = 2 };

#define IN_FLIGHT_BITS 24
#define IN_FLIGHT      UINT64_C(1)
#define PUTS_IN_FLIGHT ((UINT64_C(1) << IN_FLIGHT_BITS) - 1)
#define TASK           (UINT64_C(1) << IN_FLIGHT_BITS)
#define CLAIMED        (TASK - IN_FLIGHT) /* one put in flight becomes a task */

struct weft_queue {
    enum store store;
    bool simple; /* SimpleQueue: no tasks, no shutdown */
    size_t maxsize;
    union {
        weft__ring_t *ring;
        weft__chain_t *chain;
        weft__locked_t *locked;
    } s;
    _Atomic uint32_t closed;

    _Alignas(WEFT__CACHE_LINE) weft__evc_t items; /* getters wait for an item */
    weft__evc_t room;                             /* putters wait for room */
    weft__evc_t done;                             /* joiners wait for no unfinished tasks */

    _Alignas(WEFT__CACHE_LINE) _Atomic uint64_t tasks; /* puts in flight, unfinished tasks */
    _Atomic size_t count; /* CHAIN_BOUNDED: items held plus puts under way */
};

/* CHAIN_BOUNDED: reserve a place below maxsize, then put. A put that
 * fails (out of memory) gives its place back, and a putter may have found
 * the queue full because of it and gone to sleep: it is woken as by a get. */
static int bounded_chain_put(weft_queue_t *q, const void *item, _Atomic uint64_t *tasks)
{
    size_t n = atomic_load_explicit(&q->count, memory_order_relaxed);
    do {
        if (n >= q->maxsize)
            return -EAGAIN;
    } while (!atomic_compare_exchange_weak(&q->count, &n, n + 1));
    int rc = weft__chain_put(q->s.chain, item, tasks, CLAIMED);
    if (rc) {
        atomic_fetch_sub(&q->count, 1);
        weft__evc_notify(&q->room);
    }
    return rc;
}

/* Put item in the store; at the claim, the put in flight becomes a task
 * (SimpleQueue counts neither). */
static WEFT__INLINE int store_put(weft_queue_t *q, const void *item)
{
    _Atomic uint64_t *tasks = q->simple ? NULL : &q->tasks;
    switch (q->store) {
    case RING:
        return weft__ring_put(q->s.ring, item, tasks, CLAIMED);
    case CHAIN:
        return weft__chain_put(q->s.chain, item, tasks, CLAIMED);
    case CHAIN_BOUNDED:
        return bounded_chain_put(q, item, tasks);
    default:
        return weft__locked_put(q->s.locked, item, tasks, CLAIMED);
    }
}

static WEFT__INLINE int store_get(weft_queue_t *q, void *item)
{
    int rc;
    switch (q->store) {
    case RING:
        return weft__ring_get(q->s.ring, item);
    case CHAIN:
        return weft__chain_get(q->s.chain, item);
    case CHAIN_BOUNDED:
        if ((rc = weft__chain_get(q->s.chain, item)) == 0)
            atomic_fetch_sub(&q->count, 1);
        return rc;
    default:
        return weft__locked_get(q->s.locked, item);
    }
}

static size_t store_size(weft_queue_t *q)
{
    switch (q->store) {
    case RING:
        return weft__ring_size(q->s.ring);
    case CHAIN:
    case CHAIN_BOUNDED:
        return weft__chain_size(q->s.chain);
    default:
        return weft__locked_size(q->s.locked);
    }
}

static void store_free(weft_queue_t *q)
{
    switch (q->store) {
    case RING:
        weft__ring_free(q->s.ring);
        break;
    case CHAIN:
    case CHAIN_BOUNDED:
        weft__chain_free(q->s.chain);
        break;
    default:
        weft__locked_free(q->s.locked);
    }
}

static bool store_new(weft_queue_t *q, size_t item_size, weft__cmp_fn cmp, void *arg, bool lifo)
{
    if (lifo || cmp) {
        q->store = LOCKED;
        return (q->s.locked = weft__locked_new(item_size, q->maxsize, cmp, arg)) != NULL;
    }
    if (q->maxsize && q->maxsize <= weft__queue_ring_max_bytes / (item_size + sizeof(size_t))) {
        q->store = RING;
        return (q->s.ring = weft__ring_new(q->maxsize, item_size)) != NULL;
    }
    q->store = q->maxsize ? CHAIN_BOUNDED : CHAIN;
    return (q->s.chain = weft__chain_new(item_size)) != NULL;
}

static int create(weft_queue_t **out, size_t item_size, size_t maxsize, weft__cmp_fn cmp, void *arg,
                  bool lifo)
{
    if (!out || item_size == 0 || item_size > SIZE_MAX / 64)
        return -EINVAL;
    weft_queue_t *q = weft__calloc_lines(sizeof *q);
    if (!q)
        return -ENOMEM;
    q->maxsize = maxsize;
    weft__evc_init(&q->items, WEFT__WAIT_QUEUE);
    weft__evc_init(&q->room, WEFT__WAIT_QUEUE);
    weft__evc_init(&q->done, WEFT__WAIT_QUEUE);
    atomic_init(&q->tasks, weft__queue_tasks_at_new * TASK);
    if (!store_new(q, item_size, cmp, arg, lifo)) {
        free(q);
        return -ENOMEM;
    }
    *out = q;
    return 0;
}

int weft_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize)
{
    return create(q, item_size, maxsize, NULL, NULL, false);
}

int weft_lifo_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize)
{
    return create(q, item_size, maxsize, NULL, NULL, true);
}

int weft_priority_queue_new(weft_queue_t **q, size_t item_size, size_t maxsize,
                            weft_queue_cmp_fn cmp, void *arg)
{
    return cmp ? create(q, item_size, maxsize, cmp, arg, false) : -EINVAL;
}

int weft_simple_queue_new(weft_queue_t **q, size_t item_size)
{
    int rc = create(q, item_size, 0, NULL, NULL, false);
    if (rc == 0)
        (*q)->simple = true;
    return rc;
}

int weft_queue_free(weft_queue_t *q)
{
    if (!q)
        return -EINVAL;
    if (weft__evc_waiters(&q->items) || weft__evc_waiters(&q->room) || weft__evc_waiters(&q->done))
        return -EBUSY;
    store_free(q);
    free(q);
    return 0;
}

/* Count up to n tasks done (no more than are unfinished); wake the joiners
 * when none are left. Returns how many were counted. */
static size_t finish_tasks(weft_queue_t *q, size_t n)
{
    uint64_t word = atomic_load_explicit(&q->tasks, memory_order_relaxed), left, k;
    do {
        left = word / TASK;
        k = n < left ? n : left;
        if (k == 0)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&q->tasks, &word, word - k * TASK,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (left == k)
        weft__evc_notify_all(&q->done);
    return (size_t)k;
}

/* Immediate shutdown: throw the items away, each a task done. */
static void discard_all(weft_queue_t *q)
{
    size_t n = 0;
    while (store_get(q, NULL) == 0)
        n++;
    if (n) {
        finish_tasks(q, n);
        weft__evc_notify_all(&q->room);
    }
}

struct op {
    weft_queue_t *q;
    void *item;
};

static WEFT__INLINE int attempt_put(void *arg)
{
    struct op *op = arg;
    weft_queue_t *q = op->q;
    if (q->simple)
        return store_put(q, op->item);
    if (atomic_load_explicit(&q->closed, memory_order_relaxed))
        return WEFT_ESHUTDOWN;
    atomic_fetch_add(&q->tasks, IN_FLIGHT);
    int rc = atomic_load(&q->closed) ? WEFT_ESHUTDOWN : store_put(q, op->item);
    if (rc)
        atomic_fetch_sub_explicit(&q->tasks, IN_FLIGHT, memory_order_release);
    return rc;
}

static WEFT__INLINE int attempt_get(void *arg)
{
    struct op *op = arg;
    int rc = store_get(op->q, op->item);
    if (rc == -EAGAIN && atomic_load(&op->q->closed) & DRAINED)
        rc = store_get(op->q, op->item) ? WEFT_ESHUTDOWN : 0; /* the last puts' items */
    return rc;
}

/* After a woken getter's success: items left for the next sleeper? */
static WEFT__INLINE bool items_left(void *arg)
{
    return store_size(((struct op *)arg)->q) > 0;
}

/* After a woken putter's success: room left for the next sleeper? */
static WEFT__INLINE bool room_left(void *arg)
{
    weft_queue_t *q = ((struct op *)arg)->q;
    return store_size(q) < q->maxsize;
}

/* Inline, with attempt and more known: a get or put that waits runs them
 * without a call through a pointer. */
static WEFT__INLINE int wait_for(weft__evc_t *e, int (*attempt)(void *arg), bool (*more)(void *arg),
                                 void *arg, double timeout)
{
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    return weft__evc_wait_inline(e, attempt, more, arg, deadline);
}

int weft_queue_put(weft_queue_t *q, const void *item, double timeout)
{
    if (WEFT__UNLIKELY(!q || !item || isnan(timeout)))
        return -EINVAL;
    struct op op = {q, (void *)item};
    int rc = attempt_put(&op);
    if (rc == -EAGAIN && timeout != 0)
        rc = wait_for(&q->room, attempt_put, room_left, &op, timeout);
    if (rc == 0)
        weft__evc_notify(&q->items);
    return rc;
}

int weft_queue_get(weft_queue_t *q, void *item, double timeout)
{
    if (WEFT__UNLIKELY(!q || !item || isnan(timeout)))
        return -EINVAL;
    struct op op = {q, item};
    int rc = attempt_get(&op);
    if (rc == -EAGAIN && timeout != 0)
        rc = wait_for(&q->items, attempt_get, items_left, &op, timeout);
    if (rc == 0 && q->maxsize)
        weft__evc_notify(&q->room);
    return rc;
}

long weft_queue_qsize(weft_queue_t *q)
{
    if (!q)
        return -EINVAL;
    size_t n = store_size(q);
    return n > LONG_MAX ? LONG_MAX : (long)n;
}

int weft_queue_empty(weft_queue_t *q)
{
    return q ? store_size(q) == 0 : -EINVAL;
}

int weft_queue_full(weft_queue_t *q)
{
    return q ? q->maxsize && store_size(q) >= q->maxsize : -EINVAL;
}

int weft_queue_task_done(weft_queue_t *q)
{
    if (!q)
        return -EINVAL;
    if (q->simple)
        return -ENOTSUP;
    weft__tsan_release(&q->tasks);
    return finish_tasks(q, 1) ? 0 : -EINVAL;
}

static int attempt_join(void *arg)
{
    weft_queue_t *q = arg;
    return atomic_load_explicit(&q->tasks, memory_order_acquire) / TASK ? -EAGAIN : 0;
}

int weft_queue_join(weft_queue_t *q, double timeout)
{
    if (!q || isnan(timeout))
        return -EINVAL;
    if (q->simple)
        return -ENOTSUP;
    int rc = attempt_join(q);
    if (rc == -EAGAIN && timeout != 0)
        rc = wait_for(&q->done, attempt_join, NULL, q, timeout);
    if (rc == 0)
        weft__tsan_acquire(&q->tasks);
    return rc;
}

int weft_queue_shutdown(weft_queue_t *q, bool immediate)
{
    if (!q)
        return -EINVAL;
    if (q->simple)
        return -ENOTSUP;
    atomic_fetch_or(&q->closed, SHUT);
    weft__evc_notify_all(&q->room); /* blocked puts fail now */
    weft__stall_t stall = WEFT__STALL_INIT;
    while (atomic_load(&q->tasks) & PUTS_IN_FLIGHT) /* puts past their check */
        weft__stall(&stall);
    atomic_fetch_or(&q->closed, DRAINED);
    if (immediate)
        discard_all(q);
    weft__evc_notify_all(&q->items);
    return 0;
}
