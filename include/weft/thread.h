/*
 * weft/thread.h: threads, after Python's threading.Thread and the threading
 * module's functions, plus thread-local values (threading.local) and Timer.
 *
 *     Python                               weft
 *     t = Thread(target=f, args=(a,))      weft_thread_new(&t, f, a, NULL)
 *     Thread(target=f, args=(a,)).start()  weft_thread_start_new(&t, f, a, NULL)
 *     class T(Thread): def run(self)       weft_thread_new_run(&t, run, sizeof(state), NULL)
 *     t.start() / t.join(timeout)          weft_thread_start(t) / weft_thread_join(t, timeout, &res)
 *     t.is_alive(), t.name, t.daemon       weft_thread_is_alive(t), weft_thread_name(t), ...
 *     current_thread(), main_thread()      weft_thread_current(), weft_thread_main()
 *     enumerate(), active_count()          weft_thread_enumerate(), weft_thread_active_count()
 *     local()                              weft_local_t
 *     Timer(interval, f, args)             weft_timer_new(&t, interval, f, arg, NULL)
 *
 * Handles. weft_thread_new and weft_thread_new_run give the caller a handle it
 * releases with weft_thread_free; so does each entry weft_thread_enumerate
 * fills in. Freeing the handle of a thread that is still running is fine (the
 * thread runs on and cleans up after itself, like dropping the last reference
 * to a Python Thread object). weft_thread_current and weft_thread_main return
 * borrowed pointers: valid while that thread runs, never to be freed.
 *
 * Exit. As in Python, when the main thread ends the program normally
 * (returns from main or calls exit()) weft waits for every non-daemon thread
 * to finish; daemon threads are simply stopped. exit() called from another
 * thread ends the process at once, as it always does in C (Python's shutdown
 * also runs only in the main thread). weft_thread_join_at_exit(false) turns
 * the wait off. It runs in an atexit handler installed when weft is loaded,
 * so atexit handlers the program registers itself run before it.
 */
#ifndef WEFT_THREAD_H
#define WEFT_THREAD_H

#include <weft/base.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_thread weft_thread_t;

/* The target form: Thread(target=fn, args=(arg,)). The result is what join returns. */
typedef void *(*weft_thread_fn)(void *arg);

/* The subclass form: run(self), with the thread's own state at weft_thread_data(self). */
typedef void *(*weft_thread_run_fn)(weft_thread_t *self);

typedef struct weft_thread_opts {
    const char *name;  /* NULL: "Thread-N" */
    int daemon;        /* enum weft_daemon (weft/base.h): the creating thread's by default; threads
                          weft did not create count as daemons, as Python's dummy threads do */
    size_t stack_size; /* 0: the module default (weft_thread_set_stack_size) */
} weft_thread_opts_t;

/* The smallest stack a thread may be given, as in Python (32 KiB). */
#define WEFT_THREAD_STACK_MIN 32768

/* Create a thread that will call target(arg). opts may be NULL. Errors:
 * -EINVAL (NULL out or target, bad option), -ENOMEM. */
WEFT_API int weft_thread_new(weft_thread_t **out, weft_thread_fn target, void *arg,
                             const weft_thread_opts_t *opts);

/* Create a thread that will call run(self), with data_size bytes of zeroed
 * state of its own at weft_thread_data(self): the C form of subclassing
 * Thread and overriding run(). Fill the state in before starting the thread. */
WEFT_API int weft_thread_new_run(weft_thread_t **out, weft_thread_run_fn run, size_t data_size,
                                 const weft_thread_opts_t *opts);

/* The state of a thread made by weft_thread_new_run (suitably aligned for any
 * type), or NULL for other threads. */
WEFT_API void *weft_thread_data(weft_thread_t *t);

/* Start the thread. Errors: -EINVAL, -EPERM (already started: a thread starts
 * once, as in Python), -EAGAIN or -ENOMEM (the system cannot create a thread
 * now; the thread stays unstarted and may be started again). */
WEFT_API int weft_thread_start(weft_thread_t *t);

/* Create and start in one call, as Thread(target=fn, args=(arg,)).start()
 * reads: *out receives the started thread's handle (join and free it as
 * usual). Errors: those of weft_thread_new and weft_thread_start; on an
 * error nothing is left to free. */
WEFT_API int weft_thread_start_new(weft_thread_t **out, weft_thread_fn target, void *arg,
                                   const weft_thread_opts_t *opts);

/*
 * Wait up to `timeout` seconds for the thread to finish; on success store
 * what its function returned in *result (if result is not NULL). Joining a
 * finished thread again returns at once with the same result (Python allows
 * repeated joins), also from several threads at the same time.
 * Errors: -EINVAL (NULL thread, NaN timeout), -EDEADLK (the thread joining
 * itself, the main thread and a dummy included: Python's RuntimeError
 * "cannot join current thread"), -EPERM (not started yet, or another
 * thread weft did not create: the main thread, a dummy), -ETIMEDOUT (still running when the timeout
 * ran out), -EAGAIN (timeout 0 and still running).
 */
WEFT_API int weft_thread_join(weft_thread_t *t, double timeout, void **result);

/* Release a handle. Errors: -EINVAL for NULL or for a handle that has
 * already been released (as long as its memory has not been reused by a new
 * thread, which weft cannot tell from a valid handle). */
WEFT_API int weft_thread_free(weft_thread_t *t);

/* 1 from the moment start() succeeds until the function returns, else 0;
 * -EINVAL for NULL. */
WEFT_API int weft_thread_is_alive(weft_thread_t *t);

/* The thread's full name. The pointer stays valid until the handle is
 * released, even if the thread is renamed meanwhile; NULL for NULL. */
WEFT_API const char *weft_thread_name(weft_thread_t *t);

/* Rename the thread. weft keeps the whole name; the OS sees its first 15
 * bytes (cut on a UTF-8 character boundary), so top -H, gdb and perf show it.
 * The main thread and threads weft did not create keep their OS name.
 * Errors: -EINVAL, -ENOMEM. */
WEFT_API int weft_thread_set_name(weft_thread_t *t, const char *name);

/* Python's ident: an integer that identifies the thread while it runs (it may
 * be reused after the thread ends); the same value weft_thread_get_ident()
 * returns in that thread. 0 before start. */
WEFT_API unsigned long weft_thread_ident(weft_thread_t *t);

/* The kernel's thread id (what top -H and /proc/<pid>/task show), 0 before
 * start; -EINVAL for NULL. Right after start it may wait for the new thread
 * to record it, which takes microseconds. */
WEFT_API long weft_thread_native_id(weft_thread_t *t);

/* 1 for a daemon thread, 0 otherwise, -EINVAL for NULL. */
WEFT_API int weft_thread_daemon(weft_thread_t *t);

/* Errors: -EINVAL, -EPERM once the thread has been started. */
WEFT_API int weft_thread_set_daemon(weft_thread_t *t, bool daemon);

/* The calling thread. Threads weft did not create get a "dummy" entry named
 * "Dummy-N", a daemon that cannot be joined, removed when the thread exits.
 * NULL only when that entry cannot be allocated. Borrowed: do not free. */
WEFT_API weft_thread_t *weft_thread_current(void);

/* The main thread (the process's initial thread; in a forked child, the
 * thread that forked). Borrowed: do not free. */
WEFT_API weft_thread_t *weft_thread_main(void);

/*
 * A consistent snapshot of the threads alive now (started and not finished,
 * the main thread and dummies included). Fills up to `cap` entries of `out`,
 * each a handle to release with weft_thread_free, and returns how many threads
 * are alive (which may be more than cap). out may be NULL when cap is 0.
 */
WEFT_API int weft_thread_enumerate(weft_thread_t **out, size_t cap);

/* How many threads are alive: the length weft_thread_enumerate would report. */
WEFT_API int weft_thread_active_count(void);

/* The calling thread's ident (pthread_self() as an integer) and kernel id. */
WEFT_API unsigned long weft_thread_get_ident(void);
WEFT_API long weft_thread_get_native_id(void);

/* Python's threading.stack_size. get: the stack size new threads get by
 * default (0: the system's default). set: 0 restores the system default,
 * otherwise at least WEFT_THREAD_STACK_MIN (rounded up to whole pages); returns
 * the previous value, or -EINVAL. */
WEFT_API size_t weft_thread_get_stack_size(void);
WEFT_API long weft_thread_set_stack_size(long size);

/* Whether a normal exit waits for non-daemon threads (on by default). Returns
 * the previous setting. */
WEFT_API bool weft_thread_join_at_exit(bool enable);

/*
 * Thread-local values: threading.local. Each thread sees its own value, NULL
 * until it sets one. When a thread ends, the destructor (if any) is called
 * once for each non-NULL value it left, before join returns for weft threads,
 * at thread exit for others. As with pthread keys, weft_local_set does not
 * destroy the value it replaces, and weft_local_destroy does not destroy values
 * still set in other threads. No limit on the number of locals.
 *
 *     static weft_local_t buf = WEFT_LOCAL_INIT(free);
 */
typedef struct weft_local {
    void (*dtor)(void *value);
    uint64_t key; /* internal: 0 until first used */
} weft_local_t;

#define WEFT_LOCAL_INIT(dtor) \
    {                         \
        (dtor), 0             \
    }

WEFT_API int weft_local_init(weft_local_t *local, void (*dtor)(void *value));
WEFT_API int weft_local_destroy(weft_local_t *local);
/* The calling thread's value, NULL if none (or local is NULL). */
WEFT_API void *weft_local_get(weft_local_t *local);
/* Errors: -EINVAL, -ENOMEM. */
WEFT_API int weft_local_set(weft_local_t *local, void *value);

/*
 * Timer: a thread that calls fn(arg) after `interval` seconds unless
 * cancelled first (Python's threading.Timer, itself a Thread). The result is
 * an ordinary thread handle: start, join, name, daemon and free work on it.
 * A negative interval fires at once, as in Python.
 * Errors: -EINVAL (NULL out or fn, NaN interval), -ENOMEM.
 */
WEFT_API int weft_timer_new(weft_thread_t **out, double interval, weft_thread_fn fn, void *arg,
                            const weft_thread_opts_t *opts);

/* Stop a timer that has not fired yet. Returns 1 if this call prevented the
 * call to fn, 0 if fn had already started (or the timer was cancelled
 * before), -EINVAL if t is not a timer. Safe to race with the timer firing:
 * exactly one of the two wins. */
WEFT_API int weft_timer_cancel(weft_thread_t *t);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_THREAD_H */
