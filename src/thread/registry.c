/*
 * The thread registry: Python's threading._active, plus what happens at the
 * edges of a thread's and a process's life.
 *
 * Every weft_thread_t that has not been released sits in one circular list
 * under one mutex: user threads from creation until freed, the static main
 * thread, and "dummy" entries for threads weft did not create (made on their
 * first weft_thread_current() and removed by a pthread key destructor when the
 * thread exits). The lock is held for list edits, the snapshot in
 * weft_thread_enumerate (so the snapshot is consistent), handle counts and the
 * finishing step of a thread; never while waiting for anything.
 *
 * Exit: an atexit handler, installed by the library constructor, joins
 * non-daemon threads one at a time until none is left (a thread may start
 * others while it finishes), like Python's threading._shutdown.
 *
 * Fork: the child has only the thread that called fork. The atfork handlers
 * hold the registry lock across fork so the list is consistent, then in the
 * child mark every other thread finished (joins of them return at once and
 * never pthread_join a thread that does not exist), and make the forking
 * thread the main thread, as Python's _after_fork does.
 */
#include "thread/thread_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct weft_thread *registry_head; /* circular; the main thread is always in it */

static struct weft_thread main_thread;
static struct weft_thread *main_ptr = &main_thread;
static _Atomic bool join_at_exit = true;
static _Atomic unsigned dummy_counter;
static pthread_key_t dummy_key;

_Thread_local struct weft_thread *weft__self WEFT__TLS_FAST;

void weft__registry_lock(void)
{
    pthread_mutex_lock(&registry_mutex);
}

void weft__registry_unlock(void)
{
    pthread_mutex_unlock(&registry_mutex);
}

static void link_locked(struct weft_thread *t)
{
    if (!registry_head) {
        t->prev = t->next = t;
        registry_head = t;
        return;
    }
    t->next = registry_head;
    t->prev = registry_head->prev;
    t->prev->next = t;
    registry_head->prev = t;
}

void weft__registry_link(struct weft_thread *t)
{
    weft__registry_lock();
    link_locked(t);
    weft__registry_unlock();
}

void weft__registry_unlink(struct weft_thread *t)
{
    if (t->next == t) {
        registry_head = NULL;
    } else {
        t->prev->next = t->next;
        t->next->prev = t->prev;
        if (registry_head == t)
            registry_head = t->next;
    }
    t->prev = t->next = NULL;
}

bool weft__registry_contains(const struct weft_thread *t)
{
    struct weft_thread *x = registry_head;
    if (x) {
        do {
            if (x == t)
                return true;
            x = x->next;
        } while (x != registry_head);
    }
    return false;
}

static bool alive(const struct weft_thread *t)
{
    uint32_t s = atomic_load(&t->state) & STATE_MASK;
    return s == STATE_STARTING || s == STATE_RUNNING;
}

/* The process's initial thread calls this to take the main entry. */
static void bind_main(void)
{
    atomic_store(&main_thread.ident, (unsigned long)pthread_self());
    weft__publish_tid(&main_thread, (uint32_t)weft__gettid());
    weft__self = &main_thread;
}

/* pthread key destructor: a thread weft did not create is exiting. Its
 * thread-local values go first, so their destructors still see the thread
 * as itself. */
static void dummy_exit(void *arg)
{
    struct weft_thread *t = arg;
    weft__locals_exit();
    if (weft__self == t)
        weft__self = NULL;
    if (weft__thread_mark_done(t))
        weft__thread_destroy(t);
}

WEFT__COLD static struct weft_thread *current_slow(void)
{
    if (weft__gettid() == getpid()) {
        bind_main();
        return &main_thread;
    }
    char name[32];
    int len = snprintf(name, sizeof name, "Dummy-%u", atomic_fetch_add(&dummy_counter, 1) + 1);
    struct weft_thread *t = weft__calloc(1, sizeof *t + (size_t)len + 1);
    if (!t)
        return NULL;
    memcpy(t->data, name, (size_t)len + 1);
    atomic_init(&t->name, (const char *)t->data);
    t->kind = KIND_DUMMY;
    atomic_init(&t->state, STATE_RUNNING);
    atomic_init(&t->daemon, true);
    atomic_init(&t->ident, (unsigned long)pthread_self());
    atomic_init(&t->tid, (uint32_t)weft__gettid());
    atomic_init(&t->reaped, 1);
    if (pthread_setspecific(dummy_key, t) != 0) {
        free(t);
        return NULL;
    }
    weft__registry_link(t);
    weft__self = t;
    return t;
}

weft_thread_t *weft_thread_current(void)
{
    struct weft_thread *t = weft__self;
    return WEFT__LIKELY(t != NULL) ? t : current_slow();
}

weft_thread_t *weft_thread_main(void)
{
    return main_ptr;
}

int weft_thread_enumerate(weft_thread_t **out, size_t cap)
{
    if (!out && cap > 0)
        return -EINVAL;
    int count = 0;
    weft__registry_lock();
    struct weft_thread *t = registry_head;
    if (t) {
        do {
            if (alive(t)) {
                if ((size_t)count < cap) {
                    out[count] = t;
                    t->handles++;
                }
                count++;
            }
            t = t->next;
        } while (t != registry_head);
    }
    weft__registry_unlock();
    return count;
}

int weft_thread_active_count(void)
{
    return weft_thread_enumerate(NULL, 0);
}

unsigned long weft_thread_get_ident(void)
{
    return (unsigned long)pthread_self();
}

long weft_thread_get_native_id(void)
{
    return (long)weft__gettid();
}

bool weft_thread_join_at_exit(bool enable)
{
    return atomic_exchange(&join_at_exit, enable);
}

/* Python's shutdown runs in the main thread only. A C program can call exit()
 * from any thread; joining there could wait for a thread that is itself
 * joining the exiting one, so only the main thread's exit waits. */
static bool in_main_thread(void)
{
    return weft__self ? weft__self == main_ptr : weft__gettid() == getpid();
}

bool weft__thread_is_self(const struct weft_thread *t)
{
    return t == weft__self || (t == main_ptr && in_main_thread());
}

/* A handle to some alive non-daemon user thread other than the caller. */
static struct weft_thread *next_to_join(void)
{
    struct weft_thread *found = NULL, *t;
    weft__registry_lock();
    t = registry_head;
    do {
        if (t->kind == KIND_USER && t != weft__self && alive(t) && !atomic_load(&t->daemon)) {
            found = t;
            found->handles++;
            break;
        }
        t = t->next;
    } while (t != registry_head);
    weft__registry_unlock();
    return found;
}

static void (*_Atomic exit_hooks[8])(void);

void weft__at_exit(void (*fn)(void))
{
    for (size_t i = 0; i < sizeof exit_hooks / sizeof *exit_hooks; i++) {
        void (*none)(void) = NULL;
        if (atomic_load(&exit_hooks[i]) == fn ||
            atomic_compare_exchange_strong(&exit_hooks[i], &none, fn))
            return;
    }
}

void weft__exit_threads(void)
{
    struct weft_thread *t;
    if (!in_main_thread() || !atomic_load(&join_at_exit))
        return;
    for (size_t i = 0; i < sizeof exit_hooks / sizeof *exit_hooks; i++) {
        void (*hook)(void) = atomic_load(&exit_hooks[i]);
        if (hook)
            hook();
    }
    while (atomic_load(&join_at_exit) && (t = next_to_join()) != NULL) {
        weft_thread_join(t, WEFT_FOREVER, NULL);
        weft_thread_free(t);
    }
}

static void exit_handler(void)
{
    weft__exit_threads();
}

static void fork_prepare(void)
{
    weft__registry_lock();
}

static void fork_parent(void)
{
    weft__registry_unlock();
}

static void fork_child(void)
{
    struct weft_thread *self = weft__self, *t = registry_head, *next;
    struct weft_thread *last = registry_head->prev;
    for (bool more = true; more; t = next) {
        more = t != last;
        next = t->next;
        if (t == self || !alive(t))
            continue;
        /* The thread does not exist here: finished, and never to be reaped. */
        atomic_store(&t->state, STATE_DONE);
        atomic_store(&t->reaped, 1);
        if (t->handles == 0 && t->kind != KIND_MAIN) {
            weft__registry_unlink(t);
            weft__thread_destroy(t);
        }
    }
    if (!self) {
        atomic_store(&main_thread.state, STATE_RUNNING);
        bind_main();
        self = &main_thread;
    }
    /* A new id in the child (base/tid.c's handler, which runs first, has
     * dropped the parent's from the cache). */
    weft__publish_tid(self, (uint32_t)weft__gettid());
    if (self != &main_thread) {
        /* As in Python, the forking thread becomes the main thread. A dummy
         * turns into a proper one (named MainThread, not a daemon); either
         * kind is pinned by a handle so weft_thread_main() never dangles. */
        self->handles++;
        if (self->kind == KIND_DUMMY) {
            atomic_store(&self->name, "MainThread");
            atomic_store(&self->daemon, false);
        }
    }
    main_ptr = self;
    weft__registry_unlock();
}

WEFT__CONSTRUCTOR static void registry_init(void)
{
    main_thread.kind = KIND_MAIN;
    main_thread.handles = 1; /* never released: the main entry is static */
    atomic_init(&main_thread.name, "MainThread");
    atomic_init(&main_thread.state, STATE_RUNNING);
    atomic_init(&main_thread.reaped, 1);
    atomic_init(&main_thread.tid, (uint32_t)getpid()); /* its tid is the pid */
    link_locked(&main_thread);
    if (weft__gettid() == getpid())
        bind_main();
    if (pthread_key_create(&dummy_key, dummy_exit) != 0 || atexit(exit_handler) != 0 ||
        pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
        /* Only possible when the process is out of keys or memory at load. */
        fputs("weft: cannot initialise the thread registry\n", stderr);
        abort();
    }
}
