/*
 * Internal view of a thread (weft_thread_t) shared by thread.c, registry.c,
 * local.c and timer.c.
 *
 * Life cycle, in the `state` word (also the futex joiners sleep on):
 *
 *     NEW --start--> STARTING --pthread_create ok--> RUNNING --target returns--> DONE
 *                       |                                                      ^
 *                       +-- pthread_create failed: back to NEW                 |
 *                       +-- the new thread finished before start() noticed ----+
 *
 * STATE_WAITERS is or-ed in by a joiner before it sleeps, so the thread only
 * pays for a futex wake when somebody is actually waiting. A failed start
 * wakes the joiners and clears it: back in NEW the word is plain NEW again.
 *
 * Ownership: `handles` counts the references users hold (one from _new, one
 * per entry returned by weft_thread_enumerate); a running thread holds an
 * implicit reference of its own. The struct is freed when no handle is left
 * and the thread is not running (NEW or DONE), by whichever of weft_thread_free
 * and the finishing thread comes last. `handles` and the list links are only
 * touched under the registry lock, which also orders the finishing thread's
 * NEW/RUNNING -> DONE step against renames and weft_thread_free.
 *
 * Reaping: exactly one caller wins `reaped` (0 -> 1) and either joins the
 * pthread (a joiner) or detaches it (weft_thread_free of a running thread), so
 * the pthread is released exactly once whatever the interleaving.
 */
#ifndef WEFT_SRC_THREAD_INT_H
#define WEFT_SRC_THREAD_INT_H

#include "base/park.h"
#include <weft/thread.h>

#include <stdalign.h>
#include <stddef.h>

enum {
    STATE_NEW = 0,
    STATE_STARTING = 1,
    STATE_RUNNING = 2,
    STATE_DONE = 3,
    STATE_MASK = 3,
    STATE_WAITERS = 4,
};

enum weft__thread_kind {
    KIND_USER,  /* made by weft_thread_new / _new_run */
    KIND_MAIN,  /* the process's initial thread: static, never freed */
    KIND_DUMMY, /* a thread weft did not create, seen by weft_thread_current */
};

/* Names are immutable once published: a rename allocates a new one and keeps
 * the old, so a pointer from weft_thread_name() stays valid until the handle
 * is freed, even while another thread renames. */
struct weft__name {
    struct weft__name *older;
    char text[];
};

/* Tid word value while somebody waits for the new thread to publish its tid. */
#define TID_WAITING 0x80000000u

struct weft_thread {
    struct weft_thread *prev, *next; /* registry list, under the registry lock */
    _Atomic uint32_t state;          /* STATE_*, futex for joiners */
    _Atomic uint32_t tid;            /* kernel tid, 0 until the thread publishes it */
    _Atomic unsigned long ident;     /* pthread_t as an integer, 0 before start */
    _Atomic uint32_t reaped;         /* 1 once pthread_join or _detach is claimed */
    _Atomic bool daemon;
    bool os_named; /* the thread has set its OS-visible name */
    enum weft__thread_kind kind;
    unsigned handles; /* user references, under the registry lock */
    _Atomic(const char *) name;
    struct weft__name *names; /* every name allocated for this thread */
    size_t stack_size;        /* 0: the module default */
    weft_thread_fn target;    /* target form ... */
    void *arg;
    weft_thread_run_fn run; /* ... or the "subclass" form */
    void *result;
    alignas(max_align_t) unsigned char data[]; /* user state of the subclass form */
};

/* The registry: every live weft_thread_t, in one list under one lock. */
void weft__registry_lock(void);
void weft__registry_unlock(void);
void weft__registry_link(struct weft_thread *t);
void weft__registry_unlink(struct weft_thread *t);
bool weft__registry_contains(const struct weft_thread *t);
/* t is the calling thread (the main thread's entry too, before the main
 * thread has asked for its handle). */
bool weft__thread_is_self(const struct weft_thread *t);

/* The calling thread's struct, NULL until weft_thread_current() or the
 * trampoline sets it. */
extern _Thread_local struct weft_thread *weft__self WEFT__TLS_FAST;

/* Release a struct no one references any more (never the static main one). */
void weft__thread_destroy(struct weft_thread *t);

/* Mark a running thread finished: under the registry lock, publish DONE, wake
 * joiners; returns true when no handle is left, and the caller must then
 * destroy the struct after dropping the lock. */
bool weft__thread_mark_done(struct weft_thread *t);

/* Store the thread's kernel tid and wake weft_thread_native_id waiters. */
void weft__publish_tid(struct weft_thread *t, uint32_t tid);

/* The OS-visible form of a name: at most 15 bytes, cut on a UTF-8 boundary. */
void weft__os_name(const char *name, char out[16]);

/* Run and clear the calling thread's weft_local_t values (thread exit). */
/* Register fn to run in the exit handler, before it joins the non-daemon
 * threads (Python's threading._register_atexit), in registration order; a
 * function registered twice runs once. The pools shut down there, and the
 * processes reap their children. At most 8. */
void weft__at_exit(void (*fn)(void));
/* What the exit handler does (the hooks, then joining the non-daemon
 * threads), for a forked child that ends with _exit. */
void weft__exit_threads(void);
void weft__locals_exit(void);

#endif /* WEFT_SRC_THREAD_INT_H */
