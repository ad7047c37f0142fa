/*
 * Tasks waiting on words shared with other processes (WEFT_SHARED
 * primitives, process pools).
 *
 * Another process's unpark cannot see this process's parking table: it
 * only makes a futex wake. So a task that parks on a shared word hands the
 * futex wait to a helper thread and suspends; the helper sleeps on the
 * word, as a thread would, and wakes the task through its loop when the
 * futex wakes it or the word has changed. The task's own timer or a
 * cancellation may end the park first: the request's state settles which
 * side ended it (a compare-and-swap from WAITING), and a helper that lost
 * after consuming a futex wake passes that wake on, so that n wakes still
 * reach n waiters. The helper sleeps in slices, so that it notices a
 * request given up and goes away.
 *
 * The request is counted (the task's reference and the helper's), since
 * either side may be done with it first. One helper thread per wait, for
 * now: such waits are rare, and each costs a process-wide system call
 * anyway.
 */
#include "async/async_int.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { WAITING, WOKEN, ABANDONED };
#define SLICE_NS 50000000LL /* how soon a helper notices a request given up */

struct weft__shared_wait {
    _Atomic uint32_t *word;
    uint32_t expected;
    unsigned flags;
    struct weft_co *task;
    _Atomic int state;
    _Atomic int refs;
};

static void unref(struct weft__shared_wait *w)
{
    if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
        free(w);
}

static void *helper(void *arg)
{
    struct weft__shared_wait *w = arg;
    for (;;) {
        bool woken = false;
        if (atomic_load(w->word) == w->expected) {
            int rc = weft__park_futex(w->word, w->expected, weft__now_ns() + SLICE_NS, w->flags);
            if (rc == -ETIMEDOUT) {
                if (atomic_load(&w->state) == ABANDONED)
                    break;
                continue;
            }
            woken = true; /* maybe spurious: the task looks again anyway */
        }
        int waiting = WAITING;
        if (atomic_compare_exchange_strong(&w->state, &waiting, WOKEN))
            weft__co_wake(w->task, 0);
        else if (woken) /* the task left first: the wake goes to someone else */
            syscall(SYS_futex, (uint32_t *)w->word, FUTEX_WAKE, 1, NULL, NULL, 0);
        break;
    }
    unref(w);
    return NULL;
}

int weft__shared_park(struct weft_co *t, _Atomic uint32_t *word, uint32_t expected, unsigned flags)
{
    struct weft__shared_wait *w = weft__malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (struct weft__shared_wait){word, expected, flags, t, WAITING, 2};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN > 65536 ? PTHREAD_STACK_MIN : 65536);
    pthread_t th;
    int rc = weft__sys.pthread_create(&th, &attr, helper, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(w);
        return -rc;
    }
    t->shared = w;
    return 0;
}

bool weft__shared_abandon(struct weft_co *t)
{
    int waiting = WAITING;
    return atomic_compare_exchange_strong(&t->shared->state, &waiting, ABANDONED);
}

void weft__shared_done(struct weft_co *t)
{
    unref(t->shared);
    t->shared = NULL;
}
