/*
 * Threads: creation, start, join, release and the per-thread accessors.
 * The state machine and ownership rules are described in thread_int.h.
 *
 * Cost. weft_thread_start adds nothing to pthread_create but two atomic
 * operations, and does not wait for the new thread to begin (Python's start()
 * does; here the values that wait would provide, ident and is_alive, are
 * published by start() itself, and the kernel tid is waited for only if
 * asked). Every join parks on the state word until the thread is DONE (so
 * that a task joining a thread suspends only itself, base/park.h), then the
 * joiner that claims the reap calls pthread_join, which may sleep a second
 * time for the few steps the thread has left after it marked itself DONE.
 *
 * Exit paths. The trampoline runs the thread's function inside a pthread
 * cleanup handler, so a thread that leaves through pthread_exit() (Python's
 * sys.exit() in a thread) or is cancelled still runs its thread-local
 * destructors and is marked finished, never leaving joiners hanging.
 *
 * ThreadSanitizer (base/tsan.h) learns of a start and a join from its
 * pthread_create and pthread_join interceptors only where weft calls them;
 * a timed join, and every joiner but the one that reaps, sees the end on
 * the state word alone. So both are annotated on the thread's address: the
 * start releases it and the new thread acquires it first thing; the thread
 * releases it as its last step (after its thread-local destructors) and a
 * join that succeeds acquires it.
 */
#include "thread/thread_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static _Atomic unsigned thread_counter;
static _Atomic size_t default_stack_size;

static bool inherit_daemon(void)
{
    struct weft_thread *self = weft__self;
    if (self)
        return atomic_load_explicit(&self->daemon, memory_order_relaxed);
    /* Threads weft does not know are dummies, and dummies are daemons;
     * the process's initial thread is the main thread, which is not. */
    return weft__gettid() != getpid();
}

/* One allocation holds the struct, the subclass state and the first name. */
static int thread_alloc(struct weft_thread **out, size_t data_size, const weft_thread_opts_t *opts)
{
    static const weft_thread_opts_t defaults = {0};
    if (!opts)
        opts = &defaults;
    int daemon = weft__daemon_flag(opts->daemon, inherit_daemon());
    if (daemon < 0)
        return daemon;
    if (opts->stack_size != 0 && opts->stack_size < WEFT_THREAD_STACK_MIN)
        return -EINVAL;
    char numbered[32];
    const char *name = opts->name;
    if (!name) {
        snprintf(numbered, sizeof numbered, "Thread-%u", atomic_fetch_add(&thread_counter, 1) + 1);
        name = numbered;
    }
    size_t name_len = strlen(name) + 1;
    if (data_size > SIZE_MAX / 2)
        return -ENOMEM;
    struct weft_thread *t = weft__calloc(1, sizeof *t + data_size + name_len);
    if (!t)
        return -ENOMEM;
    char *name_copy = (char *)t->data + data_size;
    memcpy(name_copy, name, name_len);
    atomic_init(&t->name, name_copy);
    t->kind = KIND_USER;
    t->handles = 1;
    t->stack_size = opts->stack_size;
    atomic_init(&t->daemon, daemon);
    weft__registry_link(t);
    *out = t;
    return 0;
}

int weft_thread_new(weft_thread_t **out, weft_thread_fn target, void *arg,
                    const weft_thread_opts_t *opts)
{
    if (!out || !target)
        return -EINVAL;
    int rc = thread_alloc(out, 0, opts);
    if (rc == 0) {
        (*out)->target = target;
        (*out)->arg = arg;
    }
    return rc;
}

int weft_thread_new_run(weft_thread_t **out, weft_thread_run_fn run, size_t data_size,
                        const weft_thread_opts_t *opts)
{
    if (!out || !run)
        return -EINVAL;
    int rc = thread_alloc(out, data_size, opts);
    if (rc == 0)
        (*out)->run = run;
    return rc;
}

void *weft_thread_data(weft_thread_t *t)
{
    return t && t->run ? t->data : NULL;
}

void weft__os_name(const char *name, char out[16])
{
    size_t len = strlen(name);
    if (len > 15) {
        len = 15;
        /* Do not cut a multi-byte character: back off continuation bytes. */
        while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, name, len);
    out[len] = '\0';
}

void weft__publish_tid(struct weft_thread *t, uint32_t tid)
{
    if (atomic_exchange(&t->tid, tid) == TID_WAITING)
        weft__unpark(&t->tid, INT_MAX, WEFT__WAIT_THREAD);
}

/* Cleanup handler: runs when the function returns and on pthread_exit. */
static void thread_finish(void *arg)
{
    struct weft_thread *t = arg;
    weft__locals_exit();
    weft__self = NULL;
    if (weft__thread_mark_done(t))
        weft__thread_destroy(t);
}

static void *trampoline(void *arg)
{
    struct weft_thread *t = arg;
    weft__tsan_acquire(t);
    weft__self = t;
    atomic_store_explicit(&t->ident, (unsigned long)pthread_self(), memory_order_relaxed);
    weft__publish_tid(t, (uint32_t)weft__gettid());

    /* Under the registry lock so that a concurrent rename is not lost. */
    char os_name[16];
    weft__registry_lock();
    weft__os_name(atomic_load_explicit(&t->name, memory_order_relaxed), os_name);
    prctl(PR_SET_NAME, os_name, 0, 0, 0);
    t->os_named = true;
    weft__registry_unlock();

    pthread_cleanup_push(thread_finish, t);
    t->result = t->run ? t->run(t) : t->target(t->arg);
    pthread_cleanup_pop(1);
    return NULL;
}

/* Move from STARTING to `to`, unless the new thread already finished; wake
 * joiners who slept meanwhile. To RUNNING the waiters bit stays (they sleep
 * on until the thread is done); back to NEW, after a failed start, it goes:
 * every joiner gives up on a thread not started, and a later start expects
 * plain NEW. */
static void leave_starting(struct weft_thread *t, uint32_t to)
{
    uint32_t keep = to == STATE_NEW ? 0 : STATE_WAITERS;
    uint32_t s = atomic_load(&t->state);
    while ((s & STATE_MASK) == STATE_STARTING &&
           !atomic_compare_exchange_weak(&t->state, &s, to | (s & keep)))
        ;
    if ((s & STATE_MASK) == STATE_STARTING && (s & STATE_WAITERS))
        weft__unpark(&t->state, INT_MAX, WEFT__WAIT_THREAD);
}

static int start_pthread(struct weft_thread *t, pthread_t *pt)
{
    size_t stack = t->stack_size ? t->stack_size : atomic_load(&default_stack_size);
    if (stack == 0)
        return weft__sys.pthread_create(pt, NULL, trampoline, t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = pthread_attr_setstacksize(&attr, stack);
    if (rc == 0)
        rc = weft__sys.pthread_create(pt, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    return rc;
}

int weft_thread_start(weft_thread_t *t)
{
    if (!t)
        return -EINVAL;
    uint32_t expected = STATE_NEW;
    if (t->kind != KIND_USER ||
        !atomic_compare_exchange_strong(&t->state, &expected, STATE_STARTING))
        return -EPERM;
    weft__tsan_release(t);
    pthread_t pt;
    int rc = start_pthread(t, &pt);
    if (rc != 0) {
        /* Back to NEW first, then release native_id waiters, who re-check
         * the state. Only a waiting mark is cleared: a retried start from
         * another thread may already have published a real tid. */
        leave_starting(t, STATE_NEW);
        uint32_t mark = TID_WAITING;
        if (atomic_compare_exchange_strong(&t->tid, &mark, 0))
            weft__unpark(&t->tid, INT_MAX, WEFT__WAIT_THREAD);
        return -rc;
    }
    atomic_store_explicit(&t->ident, (unsigned long)pt, memory_order_relaxed);
    leave_starting(t, STATE_RUNNING);
    return 0;
}

int weft_thread_start_new(weft_thread_t **out, weft_thread_fn target, void *arg,
                          const weft_thread_opts_t *opts)
{
    if (!out)
        return -EINVAL;
    weft_thread_t *t;
    int rc = weft_thread_new(&t, target, arg, opts);
    if (rc < 0)
        return rc;
    if ((rc = weft_thread_start(t)) < 0) {
        weft_thread_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static bool claim_reap(struct weft_thread *t)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong(&t->reaped, &expected, 1);
}

/* Sleep until the thread is DONE; -EPERM if its start failed meanwhile. */
static int wait_done(struct weft_thread *t, weft__deadline_t deadline)
{
    for (;;) {
        uint32_t s = atomic_load(&t->state);
        if ((s & STATE_MASK) == STATE_DONE)
            return 0;
        if ((s & STATE_MASK) == STATE_NEW)
            return -EPERM;
        if (!(s & STATE_WAITERS) && !atomic_compare_exchange_weak(&t->state, &s, s | STATE_WAITERS))
            continue;
        int parked = weft__park(&t->state, s | STATE_WAITERS, deadline, WEFT__WAIT_THREAD);
        if (parked < 0)
            return weft__park_outcome(parked, (atomic_load(&t->state) & STATE_MASK) == STATE_DONE);
    }
}

int weft_thread_join(weft_thread_t *t, double timeout, void **result)
{
    weft__deadline_t deadline;
    if (!t || weft__deadline(timeout, &deadline) < 0)
        return -EINVAL;
    if (weft__thread_is_self(t)) /* the main thread or a dummy too, as in Python */
        return -EDEADLK;
    if (t->kind != KIND_USER)
        return -EPERM;
    uint32_t s = atomic_load(&t->state) & STATE_MASK;
    if (s == STATE_NEW)
        return -EPERM;
    /* Parked until DONE, even with no timeout, where pthread_join alone
     * would do: every wait goes through the parking layer, so that a task
     * joining a thread suspends only itself. */
    int rc = wait_done(t, deadline);
    if (rc == -ETIMEDOUT)
        return weft__timeout_error(timeout);
    if (rc < 0)
        return rc;
    /* Past DONE the thread only has its return left: this is brief. */
    if (claim_reap(t))
        pthread_join((pthread_t)atomic_load_explicit(&t->ident, memory_order_relaxed), NULL);
    weft__tsan_acquire(t);
    if (result)
        *result = t->result;
    return 0;
}

int weft_thread_free(weft_thread_t *t)
{
    if (!t)
        return -EINVAL;
    weft__registry_lock();
    if (!weft__registry_contains(t) || t->handles == 0 ||
        (t->kind == KIND_MAIN && t->handles == 1)) {
        weft__registry_unlock();
        return -EINVAL;
    }
    uint32_t s = atomic_load(&t->state) & STATE_MASK;
    bool last = --t->handles == 0;
    /* A started pthread nobody joined is detached; a running thread then
     * frees its own struct when it finishes (weft__thread_mark_done). */
    if (last && t->kind == KIND_USER && s != STATE_NEW && claim_reap(t))
        pthread_detach((pthread_t)atomic_load_explicit(&t->ident, memory_order_relaxed));
    bool destroy = last && (s == STATE_NEW || s == STATE_DONE);
    if (destroy)
        weft__registry_unlink(t);
    weft__registry_unlock();
    if (destroy)
        weft__thread_destroy(t);
    return 0;
}

bool weft__thread_mark_done(struct weft_thread *t)
{
    weft__registry_lock();
    weft__tsan_release(t);
    uint32_t old = atomic_exchange(&t->state, STATE_DONE);
    /* Woken under the lock: once it is dropped a joiner may free the struct. */
    if (old & STATE_WAITERS)
        weft__unpark(&t->state, INT_MAX, WEFT__WAIT_THREAD);
    bool orphan = t->handles == 0;
    if (orphan)
        weft__registry_unlink(t);
    weft__registry_unlock();
    return orphan;
}

void weft__thread_destroy(struct weft_thread *t)
{
    if (t->kind == KIND_MAIN)
        return;
    struct weft__name *n = t->names;
    while (n) {
        struct weft__name *older = n->older;
        free(n);
        n = older;
    }
    free(t);
}

int weft_thread_is_alive(weft_thread_t *t)
{
    if (!t)
        return -EINVAL;
    uint32_t s = atomic_load(&t->state) & STATE_MASK;
    return s == STATE_STARTING || s == STATE_RUNNING;
}

const char *weft_thread_name(weft_thread_t *t)
{
    return t ? atomic_load_explicit(&t->name, memory_order_acquire) : NULL;
}

int weft_thread_set_name(weft_thread_t *t, const char *name)
{
    if (!t || !name)
        return -EINVAL;
    size_t len = strlen(name) + 1;
    struct weft__name *n = weft__malloc(sizeof *n + len);
    if (!n)
        return -ENOMEM;
    memcpy(n->text, name, len);
    char os_name[16];
    weft__os_name(name, os_name);
    weft__registry_lock();
    n->older = t->names;
    t->names = n;
    atomic_store_explicit(&t->name, n->text, memory_order_release);
    /* Not DONE under the lock means the kernel thread still exists. */
    if (t->kind == KIND_USER && t->os_named &&
        (atomic_load(&t->state) & STATE_MASK) != STATE_DONE) {
        if (t == weft__self)
            prctl(PR_SET_NAME, os_name, 0, 0, 0);
        else
            pthread_setname_np((pthread_t)atomic_load(&t->ident), os_name);
    }
    weft__registry_unlock();
    return 0;
}

unsigned long weft_thread_ident(weft_thread_t *t)
{
    return t ? atomic_load_explicit(&t->ident, memory_order_relaxed) : 0;
}

long weft_thread_native_id(weft_thread_t *t)
{
    if (!t)
        return -EINVAL;
    for (;;) {
        uint32_t tid = atomic_load(&t->tid);
        if (tid != 0 && tid != TID_WAITING)
            return (long)tid;
        /* Mark first, then look at the state: a failed start that resets the
         * word after our mark also wakes us (see weft_thread_start). A thread
         * that is not starting or running will never publish a tid (it was
         * never started, or it vanished in a fork before it could). */
        if (tid == 0 && !atomic_compare_exchange_strong(&t->tid, &tid, TID_WAITING))
            continue;
        uint32_t s = atomic_load(&t->state) & STATE_MASK;
        if (s == STATE_NEW || s == STATE_DONE)
            return 0;
        if (weft__park(&t->tid, TID_WAITING, WEFT__NEVER, WEFT__WAIT_THREAD) == -ECANCELED)
            return -ECANCELED; /* a task, cancelled */
    }
}

int weft_thread_daemon(weft_thread_t *t)
{
    return t ? atomic_load_explicit(&t->daemon, memory_order_relaxed) : -EINVAL;
}

int weft_thread_set_daemon(weft_thread_t *t, bool daemon)
{
    if (!t)
        return -EINVAL;
    if ((atomic_load(&t->state) & STATE_MASK) != STATE_NEW)
        return -EPERM;
    atomic_store_explicit(&t->daemon, daemon, memory_order_relaxed);
    return 0;
}

size_t weft_thread_get_stack_size(void)
{
    return atomic_load(&default_stack_size);
}

long weft_thread_set_stack_size(long size)
{
    if (size < 0 || (size > 0 && size < WEFT_THREAD_STACK_MIN))
        return -EINVAL;
    long page = sysconf(_SC_PAGESIZE);
    if (size > LONG_MAX - page)
        return -EINVAL;
    size_t rounded = size ? (size_t)((size + page - 1) / page * page) : 0;
    return (long)atomic_exchange(&default_stack_size, rounded);
}
