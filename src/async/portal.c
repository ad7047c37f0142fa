/*
 * A loop's door for other threads (weft_loop_t): tasks they wake, and calls
 * they post (call_soon_threadsafe, run_coroutine_threadsafe, a cancellation
 * from outside), queued under a mutex and announced through an eventfd the
 * loop's epoll watches. The eventfd is written only when the queues go from
 * quiet to not (`signalled`), as libuv's uv_async_send does, so a burst
 * costs one wake-up; and only while the loop sleeps in epoll or is about to
 * (`dozing`): a loop that is running looks at `signalled` between rounds
 * anyway, so a task woken on a busy loop from another thread costs no
 * system call on either side. The loop sets dozing, fences and looks at
 * signalled once more before it sleeps; a poster sets signalled, fences and
 * looks at dozing: one of them sees the other.
 *
 * The portal is apart from the loop and counted, because other threads
 * keep handles to it that may outlive weft_run: once the loop has ended,
 * posting is WEFT_ESHUTDOWN, and calls still queued are dropped (a spawn's
 * future is cancelled, so that nobody waits for it for ever).
 */
#include "async/async_int.h"

#include "pool/future_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct weft_loop {
    pthread_mutex_t mu;
    struct weft_co *_Atomic inbox; /* woken by other threads, newest first */
    struct weft__call *calls, **calls_tail;
    bool closed; /* the loop has ended (under mu) */
    _Atomic uint32_t signalled;
    _Atomic uint32_t dozing;  /* the loop sleeps, or is about to */
    _Atomic uint32_t written; /* the eventfd has been written since it was read */
    _Atomic uint32_t refs;
    int evfd;
};

int weft__portal_new(struct weft_loop **out)
{
    struct weft_loop *p = weft__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->evfd < 0) {
        int err = -errno;
        free(p);
        return err;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->calls_tail = &p->calls;
    atomic_init(&p->refs, 1);
    *out = p;
    return 0;
}

int weft__portal_fd(struct weft_loop *p)
{
    return p->evfd;
}

static void ring(struct weft_loop *p)
{
    atomic_store(&p->written, 1);
    uint64_t one = 1;
    while (write(p->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void signal_loop(struct weft_loop *p)
{
    if (atomic_exchange(&p->signalled, 1))
        return;
    weft__fence_after_atomic();
    if (atomic_load_explicit(&p->dozing, memory_order_relaxed))
        ring(p);
}

bool weft__portal_doze(struct weft_loop *p)
{
    atomic_store_explicit(&p->dozing, 1, memory_order_relaxed);
    weft__fence();
    return !weft__portal_busy(p);
}

void weft__portal_wake_up(struct weft_loop *p)
{
    atomic_store_explicit(&p->dozing, 0, memory_order_relaxed);
}

void weft__portal_nudge(struct weft_loop *p)
{
    signal_loop(p);
}

/* A woken task is pushed on the inbox, a stack the loop takes whole: one
 * compare-and-swap, no lock, on the path of every wake-up from another
 * thread (M:N mode's loops wake each other's tasks all the time). */
void weft__portal_wake(struct weft_loop *p, struct weft_co *t)
{
    struct weft_co *head = atomic_load_explicit(&p->inbox, memory_order_relaxed);
    do
        t->next = head;
    while (!atomic_compare_exchange_weak_explicit(&p->inbox, &head, t, memory_order_release,
                                                  memory_order_relaxed));
    signal_loop(p);
}

int weft__portal_post(struct weft_loop *p, struct weft__call *c)
{
    c->next = NULL;
    pthread_mutex_lock(&p->mu);
    bool closed = p->closed;
    if (!closed) {
        *p->calls_tail = c;
        p->calls_tail = &c->next;
    }
    pthread_mutex_unlock(&p->mu);
    if (closed)
        return WEFT_ESHUTDOWN;
    signal_loop(p);
    return 0;
}

bool weft__portal_busy(struct weft_loop *p)
{
    return atomic_load_explicit(&p->signalled, memory_order_relaxed);
}

void weft__portal_take(struct weft_loop *p, struct weft_co **tasks, struct weft__call **calls)
{
    *tasks = NULL;
    *calls = NULL;
    /* Taking the signal (an exchange, which reads the poster's) comes
     * after whatever the poster queued before giving it. */
    if (!weft__portal_busy(p) || !atomic_exchange(&p->signalled, 0))
        return;
    uint64_t count;
    if (atomic_exchange(&p->written, 0))
        while (read(p->evfd, &count, sizeof count) < 0 && errno == EINTR)
            ;
    /* The inbox in the order the tasks were woken. */
    struct weft_co *t = atomic_exchange_explicit(&p->inbox, NULL, memory_order_acquire);
    while (t) {
        struct weft_co *next = t->next;
        t->next = *tasks;
        *tasks = t;
        t = next;
    }
    pthread_mutex_lock(&p->mu);
    *calls = p->calls;
    p->calls = NULL;
    p->calls_tail = &p->calls;
    pthread_mutex_unlock(&p->mu);
}

void weft__portal_close(struct weft_loop *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    struct weft__call *calls = p->calls;
    p->calls = NULL;
    p->calls_tail = &p->calls;
    pthread_mutex_unlock(&p->mu);
    for (struct weft__call *c = calls, *next; c; c = next) {
        next = c->next;
        c->drop(c);
    }
}

void weft__portal_ref(struct weft_loop *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

static void portal_unref(struct weft_loop *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    close(p->evfd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void weft__portal_release(struct weft_loop *p)
{
    portal_unref(p);
}

weft_loop_t *weft_loop_current(void)
{
    struct weft__loop *l = weft__loop_self;
    if (!l)
        return NULL;
    weft__portal_ref(l->portal);
    return l->portal;
}

int weft_loop_free(weft_loop_t *loop)
{
    if (!loop)
        return -EINVAL;
    portal_unref(loop);
    return 0;
}

/* Posted calls. */

struct call_fn {
    struct weft__call call;
    void (*fn)(void *arg);
    void *arg;
};

static void run_fn(struct weft__call *c)
{
    struct call_fn *cf = (struct call_fn *)c;
    cf->fn(cf->arg);
    free(cf);
}

static void drop_fn(struct weft__call *c)
{
    free(c);
}

int weft_loop_call_soon(weft_loop_t *loop, void (*fn)(void *arg), void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    struct call_fn *cf = weft__malloc(sizeof *cf);
    if (!cf)
        return -ENOMEM;
    *cf = (struct call_fn){{NULL, run_fn, drop_fn}, fn, arg};
    int rc = weft__portal_post(loop, &cf->call);
    if (rc != 0)
        free(cf);
    return rc;
}

struct call_spawn {
    struct weft__call call;
    weft_co_fn fn;
    void *arg;
    weft_future_t *future;
};

static void run_spawn(struct weft__call *c)
{
    struct call_spawn *cs = (struct call_spawn *)c;
    struct weft_co *t;
    /* A future cancelled before the loop got to it: no task. One that
     * cannot start gets the reason (-ENOMEM, WEFT_EMAPCOUNT). */
    int rc;
    if (weft_future_set_running_or_notify_cancel(cs->future) == 1 &&
        (rc = weft__co_new_with(weft__loop_self, &t, false, cs->fn, cs->arg, NULL, cs->future)) !=
            0)
        weft_future_set_error(cs->future, rc);
    weft_future_free(cs->future);
    free(cs);
}

static void drop_spawn(struct weft__call *c)
{
    struct call_spawn *cs = (struct call_spawn *)c;
    weft_future_cancel(cs->future);
    weft_future_free(cs->future);
    free(cs);
}

int weft_loop_spawn(weft_loop_t *loop, weft_future_t **f, weft_co_fn fn, void *arg)
{
    if (!loop || !f || !fn)
        return -EINVAL;
    struct call_spawn *cs = weft__malloc(sizeof *cs);
    weft_future_t *future = cs ? weft__future_alloc() : NULL;
    if (!future) {
        free(cs);
        return -ENOMEM;
    }
    weft__future_ref(future); /* the caller's, beside the call's */
    *cs = (struct call_spawn){{NULL, run_spawn, drop_spawn}, fn, arg, future};
    int rc = weft__portal_post(loop, &cs->call);
    if (rc != 0) {
        weft__future_unref(future);
        weft__future_unref(future);
        free(cs);
        return rc;
    }
    *f = future;
    return 0;
}

struct call_cancel {
    struct weft__call call;
    struct weft_co *task;
};

static void run_cancel(struct weft__call *c)
{
    struct call_cancel *cc = (struct call_cancel *)c;
    weft__co_cancel_arrived(cc->task);
    weft_co_free(cc->task);
    free(cc);
}

static void drop_cancel(struct weft__call *c)
{
    struct call_cancel *cc = (struct call_cancel *)c;
    weft_co_free(cc->task);
    free(cc);
}

int weft__portal_cancel(struct weft_co *t, struct weft_loop *p)
{
    struct call_cancel *cc = weft__malloc(sizeof *cc);
    if (!cc)
        return -ENOMEM;
    weft__co_ref(t);
    *cc = (struct call_cancel){{NULL, run_cancel, drop_cancel}, t};
    int rc = weft__portal_post(p, &cc->call);
    if (rc != 0)
        drop_cancel(&cc->call);
    return rc == WEFT_ESHUTDOWN ? 0 : rc < 0 ? rc : 1;
}
