/*
 * weft/process.h: processes, after Python's multiprocessing.Process.
 *
 *     Python                                   weft
 *     p = Process(target=f, args=(data,))      weft_process_new(&p, f, data, len, NULL)
 *     p.start(); p.join(timeout)               weft_process_start(p); weft_process_join(p, timeout)
 *     p.is_alive(), p.exitcode, p.pid          weft_process_is_alive(p), weft_process_exitcode(p,
 *                                              &code), weft_process_pid(p)
 *     p.terminate(), p.kill(), p.close()       weft_process_terminate(p), _kill(p), _close(p)
 *     p.name, p.daemon, p.sentinel             weft_process_name(p), opts.daemon,
 *                                              weft_process_sentinel(p)
 *     active_children(), current_process(),    weft_process_active_children(list, cap),
 *     parent_process()                         weft_process_current(), weft_process_parent()
 *
 * A process runs a C function on a copy of the bytes it was given (C has no
 * pickling: pass plain data, or put shared state in shared memory). The
 * function's return value, 0 to 255, is the exit code; a process killed by
 * signal N has exit code -N, as in Python.
 *
 * Start methods, as in Python (set one per process in opts.method, or for
 * every process with weft_process_set_start_method):
 *
 *   fork        The child is a copy of the parent at the moment of start,
 *               with one thread: the one that called start. Any function
 *               works, and the child sees the parent's memory as it was.
 *               The risk is a multithreaded parent: locks that its other
 *               threads held at the fork stay held in the child (weft's own
 *               are reset, so weft works there; a lock inside malloc or a
 *               library may not be). Fastest to start (~0.1 ms).
 *   spawn       posix_spawn of the running executable, which calls the
 *               function by its registered name (WEFT_PROCESS_REGISTER)
 *               before main. The child is a fresh program: nothing of the
 *               parent's memory, locks or threads, only the bytes given.
 *               Safe from any thread; slowest (an exec, ~1 ms).
 *   forkserver  A server process, spawned as above on first use, which is
 *               single-threaded for its whole life, forks each child. As
 *               safe as spawn and nearly as fast as fork. Its children are
 *               the server's, not ours: the server reports how they ended.
 *
 * The default: forkserver for a registered function (Python 3.14's default
 * on Linux), fork for one that is not (the only method that can run it).
 * A spawn or forkserver child inherits stdin, stdout and stderr as they are
 * at start, and sees the program as its constructors left it: globals
 * changed at run time in the parent are not carried over, pass what the
 * child needs in its bytes or in shared memory.
 *
 * Every child runs the function and ends with _exit (the parent's atexit
 * handlers and unflushed stdio buffers stay the parent's business; the
 * child flushes its own stdio).
 *
 * Giving objects: a Pipe end, a process Queue, a Value or Array, or a
 * SharedMemory segment goes to a child by naming it in opts.give, as
 * Python passes it in args, and the child gets it back by its index with
 * weft_process_given_conn (_mpqueue, _shared, _shm), the same call under
 * every start method (see "Giving objects to a child" below).
 *
 * Descriptors: the child keeps 0, 1 and 2, the descriptors of the objects
 * it is given and those listed in opts.keep_fds, at the same numbers;
 * every other descriptor is closed before the function runs, so a child
 * never holds a pipe end, socket or file it was not meant to have
 * (Python's spawn does the same; its fork does not).
 *
 * Exit: as in Python, when the main thread ends the program normally, weft
 * terminates daemon children and waits for the others.
 */
#ifndef WEFT_PROCESS_H
#define WEFT_PROCESS_H

#include <weft/base.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_process weft_process_t;

/* The child's work: arg points to the child's copy of the bytes given to
 * weft_process_new (NULL when there were none). Returns the exit code. */
typedef int (*weft_process_fn)(const void *arg, size_t len);

typedef enum weft_start_method {
    WEFT_START_DEFAULT = 0, /* weft_process_set_start_method's, or the rule above */
    WEFT_START_FORK,
    WEFT_START_SPAWN,
    WEFT_START_FORKSERVER,
} weft_start_method_t;

/* At most this many descriptors to keep: keep_fds and given objects together. */
#define WEFT_PROCESS_MAX_KEEP_FDS 64

/* An object to give a child (opts.give); make one with weft_give_conn and
 * its siblings below. */
typedef enum weft_give_kind {
    WEFT_GIVE_KIND_CONN = 1, /* weft_conn_t: a Pipe end */
    WEFT_GIVE_KIND_MPQUEUE,  /* weft_mpqueue_t (weft/mpqueue.h) */
    WEFT_GIVE_KIND_SHARED,   /* weft_shared_t: a Value or Array (weft/shm.h) */
    WEFT_GIVE_KIND_SHM,      /* weft_shm_t: SharedMemory (weft/shm.h) */
} weft_give_kind_t;

typedef struct weft_give {
    weft_give_kind_t kind;
    void *obj;
} weft_give_t;

typedef struct weft_process_opts {
    const char *name;    /* NULL: "Process-N" */
    int daemon;          /* enum weft_daemon (weft/base.h): a daemon is killed when its parent
                            dies (even by SIGKILL) or exits; INHERIT (0) takes the current
                            process's flag, as Python does, YES (1, so `true` works), NO */
    const int *keep_fds; /* descriptors the child keeps besides 0, 1, 2 */
    size_t nkeep_fds;
    weft_start_method_t method;
    const weft_give_t *give; /* objects the child is given, by index (below) */
    size_t ngive;
} weft_process_opts_t;

/* Errors: -EINVAL (no fn, bytes without length or a NULL arg with one, a
 * negative descriptor to keep, an unknown daemon choice or method, spawn or
 * forkserver for a function that is not registered, or whose name two
 * registrations share; for opts.give: ngive without give, an unknown kind
 * or a NULL object, an object given twice, more than
 * WEFT_PROCESS_MAX_KEEP_FDS descriptors with keep_fds), -EBADF (a given
 * handle that this process may not use, see below, or whose descriptor is
 * closed), -EPERM (a Value or Array given by a process other than the one
 * that made it), -ENOMEM. */
WEFT_API int weft_process_new(weft_process_t **p, weft_process_fn fn, const void *arg, size_t len,
                              const weft_process_opts_t *opts);
/* Errors: -EINVAL, -EPERM (started before), -EBADF (a given object was
 * closed since new), -EAGAIN / -ENOMEM (fork failed). */
WEFT_API int weft_process_start(weft_process_t *p);
/* Wait for the process to end; 0 once it has. Errors: -EINVAL, -EPERM (not
 * started), -EDEADLK (the process itself), -ETIMEDOUT, -EAGAIN (timeout 0). */
WEFT_API int weft_process_join(weft_process_t *p, double timeout);
/* 1 if started and not ended, else 0; -EINVAL. */
WEFT_API int weft_process_is_alive(weft_process_t *p);
/* 1 and *code (0..255, or -signal) once it has ended; 0 while it has not
 * (Python's None); -EINVAL. */
WEFT_API int weft_process_exitcode(weft_process_t *p, int *code);
/* The process id; 0 before start. -EINVAL for NULL. */
WEFT_API pid_t weft_process_pid(weft_process_t *p);
/* SIGTERM / SIGKILL, if it is running (an ended process is left alone).
 * Errors: -EINVAL, -EPERM (not started). */
WEFT_API int weft_process_terminate(weft_process_t *p);
WEFT_API int weft_process_kill(weft_process_t *p);
/* Release the handle (Python's close). -EBUSY while the process runs. */
WEFT_API int weft_process_close(weft_process_t *p);
/* Name, valid until close (for the current and parent process, forever). */
WEFT_API const char *weft_process_name(weft_process_t *p);
/* 1 for a daemon, 0 if not; -EINVAL. */
WEFT_API int weft_process_daemon(weft_process_t *p);
/* A descriptor that becomes readable when the process ends (a pidfd), for
 * poll/epoll; owned by the handle. Once it is readable, is_alive, exitcode
 * and join(p, 0) report the end. Errors: -EINVAL, -EPERM (not started). */
WEFT_API int weft_process_sentinel(weft_process_t *p);

/* The method p starts with (never WEFT_START_DEFAULT); -EINVAL. */
WEFT_API int weft_process_start_method(weft_process_t *p);
/* The method for processes created from now on without one of their own
 * (Python's set_start_method); WEFT_START_DEFAULT restores the rule.
 * -EINVAL for an unknown method. */
WEFT_API int weft_process_set_start_method(weft_start_method_t method);
WEFT_API weft_start_method_t weft_process_get_start_method(void);
/* "fork", "spawn", "forkserver", "default"; NULL for an unknown value. */
WEFT_API const char *weft_start_method_name(weft_start_method_t method);
/* Start the forkserver now instead of at its first use (it is started
 * from a fresh executable either way, so this only moves the cost). */
WEFT_API int weft_process_forkserver_start(void);

/*
 * Giving objects to a child (Python's Process(target=f, args=(conn, q))).
 * The parent names them in the options,
 *
 *     weft_give_t give[] = {weft_give_conn(child_end), weft_give_mpqueue(q)};
 *     weft_process_opts_t opts = {.give = give, .ngive = 2};
 *
 * and the child function gets them back by index, in one code path for
 * every start method:
 *
 *     weft_conn_t *c;
 *     weft_mpqueue_t *q;
 *     if (weft_process_given_conn(0, &c) < 0 || weft_process_given_mpqueue(1, &q) < 0)
 *         return 1;
 *
 * The child's handle is to the same object: the same pipe (its directions
 * and maximum message too), the same queue, the same shared bytes. A
 * forked child gets its copy of the parent's handle; a spawn or forkserver
 * child one rebuilt from the descriptor before its function runs. The
 * handle is the child's: use it from any thread, close it when done (a
 * Pipe end, say, so that the parent's receive sees -EPIPE) or leave it for
 * the process's end; every call returns the same handle, so do not ask
 * again after closing it. A child can give what it was given on to its
 * own children, except a Value or Array, which only the process that made
 * it can give (its descriptor stays there). weft_process_new reads the
 * handles (give[] itself need not outlive the call); keep them open until
 * start, which fails with -EBADF if one was closed meanwhile.
 *
 * A child gets only what it is given. Under spawn and forkserver it has
 * nothing else: the descriptor of an object it was not given is closed
 * (weft_conn_from_fd and the like: -EBADF). A forked child also has its
 * copies of every other handle the parent had, but those are stale: every
 * call on a Pipe end or queue it was not given is -EBADF, never a wait
 * for a message that cannot come, and closing one releases its memory
 * without closing the descriptor number (closed in the child, and perhaps
 * reused since). Memory is the exception, as it is used by pointer and a
 * fork inherits every mapping: a forked child can still read and write the
 * bytes of a Value, Array or SharedMemory it was not given (Python's rule
 * under fork: everything is inherited), though weft_shm_fd and
 * weft_shm_unlink are -EBADF there; give memory too, and the same code
 * works under every method. A process forked by fork() itself, not by
 * weft, inherits every handle, as in Python.
 */
struct weft_mpqueue; /* weft/mpqueue.h */
struct weft_shared;  /* weft/shm.h */
struct weft_shm;     /* weft/shm.h */
typedef struct weft_conn weft_conn_t;

static inline weft_give_t weft_give_conn(weft_conn_t *c)
{
    weft_give_t g = {WEFT_GIVE_KIND_CONN, c};
    return g;
}
static inline weft_give_t weft_give_mpqueue(struct weft_mpqueue *q)
{
    weft_give_t g = {WEFT_GIVE_KIND_MPQUEUE, q};
    return g;
}
static inline weft_give_t weft_give_shared(struct weft_shared *v)
{
    weft_give_t g = {WEFT_GIVE_KIND_SHARED, v};
    return g;
}
static inline weft_give_t weft_give_shm(struct weft_shm *s)
{
    weft_give_t g = {WEFT_GIVE_KIND_SHM, s};
    return g;
}

/* In a child: the i-th object it was given (0-based, in opts.give's
 * order). Errors: -EINVAL (a NULL out, or the i-th object is of another
 * kind), -EBADF (no i-th object: fewer were given, or this process is not
 * a child started by weft), or what rebuilding it met in a spawn or
 * forkserver child (-ENOMEM). */
WEFT_API int weft_process_given_conn(size_t i, weft_conn_t **c);
WEFT_API int weft_process_given_mpqueue(size_t i, struct weft_mpqueue **q);
WEFT_API int weft_process_given_shared(size_t i, struct weft_shared **v);
WEFT_API int weft_process_given_shm(size_t i, struct weft_shm **s);

/*
 * Registration, for spawn and forkserver: at file scope,
 *
 *     static int work(const void *arg, size_t len) { ... }
 *     WEFT_PROCESS_REGISTER(work);
 *
 * enters the function in a registry under its name, before main, in every
 * copy of the program; a spawned child finds it there by name. Process
 * functions, process pool tasks (weft/ppool.h) and initializers are all
 * registered this way. The semicolon is part of the use, as after any
 * declaration: the macro ends in an extern declaration (of a variable
 * never defined or used), so the line compiles cleanly under -Wpedantic in
 * C and C++, where a semicolon after a function body would be an empty
 * declaration. The names
 * of registered functions must be unique (two static functions of one name
 * in different files make that name unusable: -EINVAL at new). Register in
 * the executable or a library it links, not in a dlopen()ed module.
 *
 * A spawn or forkserver child runs the function from a constructor, right
 * after the registrations: before main, and before the program's own
 * constructors that have no priority (C++ globals among them). The
 * variable WEFT_CHILD in the environment marks such a child; weft removes
 * it before the function runs.
 */
typedef struct weft_process_entry {
    const char *name;
    weft_process_fn fn;
    struct weft_process_entry *next;
    int ambiguous;
} weft_process_entry_t;
/* Called by WEFT_PROCESS_REGISTER's constructors; not for direct use. */
WEFT_API void weft_process_register(weft_process_entry_t *entry);
WEFT_API void weft_process_boot(void);

#define WEFT_PROCESS_REGISTER(fn)                                                  \
    static weft_process_entry_t weft_process_entry_##fn = {                        \
        #fn, (weft_process_fn)(void (*)(void))(fn), NULL, 0};                      \
    __attribute__((constructor(101))) static void weft_process_register_##fn(void) \
    {                                                                              \
        weft_process_register(&weft_process_entry_##fn);                           \
    }                                                                              \
    __attribute__((constructor(65535))) static void weft_process_boot_##fn(void)   \
    {                                                                              \
        weft_process_boot();                                                       \
    }                                                                              \
    extern int weft_process_registered_##fn

/* Children started by this process and still running: reaps the ended ones
 * (so no zombies are left), fills up to cap borrowed handles (valid until
 * the owner closes them) and returns how many are running. */
WEFT_API int weft_process_active_children(weft_process_t **list, int cap);
/* The calling process: "MainProcess", or in a child its own name (borrowed;
 * pid, name and exitcode work on it). */
WEFT_API weft_process_t *weft_process_current(void);
/* In a child started by weft: its parent (borrowed; pid, name, is_alive and
 * sentinel work on it). NULL in the main process. */
WEFT_API weft_process_t *weft_process_parent(void);

/*
 * Pipe (multiprocessing.Pipe): two connected ends that carry whole
 * messages of bytes. weft_pipe(&a, &b, true) gives two ends that both send
 * and receive; with duplex false, a only receives and b only sends
 * (Python's (r, w) order). Give an end to a child with weft_give_conn
 * (above); by hand, keep weft_conn_fileno in opts.keep_fds and adopt the
 * descriptor there with weft_conn_from_fd (a duplex end).
 *
 * Messages are framed by an 8-byte length. A peer that closes its end is
 * seen as -EPIPE, by a send and, once the messages sent before are read,
 * by a receive (Python's EOFError); a send never raises SIGPIPE. A
 * receive refuses a length above the end's maximum (64 MiB unless set)
 * without allocating it, and the end is then broken (-EBADMSG from then
 * on): a hostile or corrupt peer cannot make it allocate gigabytes. One
 * thread at a time sends and one receives on an end (each direction has
 * its own lock), so messages are never interleaved. In a forked child,
 * every call on an end it was not given is -EBADF (see Giving above).
 */
/* Errors: -EINVAL, -ENOMEM, -EMFILE / -ENFILE. */
WEFT_API int weft_pipe(weft_conn_t **a, weft_conn_t **b, bool duplex);
/* Adopt a descriptor (an end kept by a child) as a duplex end. Errors:
 * -EINVAL, -EBADF (not an open descriptor), -ENOMEM. */
WEFT_API int weft_conn_from_fd(weft_conn_t **c, int fd);
/* The descriptor, owned by the end. */
WEFT_API int weft_conn_fileno(weft_conn_t *c);
/* Largest message a receive accepts (>= 1). */
WEFT_API int weft_conn_set_max_message(weft_conn_t *c, size_t max);
/* Send len bytes as one message. Errors: -EINVAL, -EPERM (a receive-only
 * end), -EPIPE (the peer closed), -EMSGSIZE (over the end's maximum). */
WEFT_API int weft_conn_send_bytes(weft_conn_t *c, const void *buf, size_t len);
/* Receive one message into a new buffer (*buf, free() it); returns its
 * length. Errors: -EINVAL, -EPERM (a send-only end), -EPIPE (the peer
 * closed, nothing left), -EBADMSG (a length over the maximum, or a
 * message cut short: the end is broken), -ENOMEM. */
WEFT_API ssize_t weft_conn_recv_bytes(weft_conn_t *c, void **buf);
/* Receive one message into buf; -EMSGSIZE (Python's BufferTooShort) when it
 * does not fit: the message is skipped, so the next receive gets the next. */
WEFT_API ssize_t weft_conn_recv_bytes_into(weft_conn_t *c, void *buf, size_t cap);
/* 1 if a receive would not block (a message, or the peer's close), 0 when
 * the timeout passes first. Errors: -EINVAL, -EPERM (a send-only end). */
WEFT_API int weft_conn_poll(weft_conn_t *c, double timeout);
/* Close the end and free it. -EINVAL. */
WEFT_API int weft_conn_close(weft_conn_t *c);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_PROCESS_H */
