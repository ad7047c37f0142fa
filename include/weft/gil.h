/*
 * weft/gil.h: a global interpreter lock for C programs, after CPython's GIL.
 *
 * A program that embeds a library or an interpreter that is not thread-safe
 * (CPython does this for its own interpreter, Ruby for its VM, Lua through
 * lua_lock, V8 through Locker) lets any number of threads run, but only the
 * one holding the GIL may touch that code. The holder calls weft_gil_check
 * often, as CPython's interpreter loop does between bytecodes: it costs one
 * load while nobody waits, and hands the GIL over when another thread has
 * asked for it. Around a blocking call (I/O, a sleep, a wait) the holder lets
 * the others run:
 *
 *     Python / CPython's C API          weft
 *     (the interpreter's own GIL)       weft_gil_t gil = WEFT_GIL_INIT;
 *     sys.setswitchinterval(0.005)      weft_gil_configure(&gil, WEFT_GIL_FAIR, 0.005)
 *     PyEval_RestoreThread / Save...    weft_gil_acquire(&gil) / weft_gil_release(&gil)
 *     PyGILState_Ensure / Release       st = weft_gil_ensure(&gil) / weft_gil_release_ensured(&gil, st)
 *     PyGILState_Check                  weft_gil_held(&gil)
 *     (the eval breaker)                weft_gil_check(&gil)
 *     Py_BEGIN/END_ALLOW_THREADS        WEFT_GIL_RELEASED(&gil) { read(fd, buf, n); }
 *
 * Two ways of choosing who runs next:
 *
 * - WEFT_GIL_FAIR is CPython's (3.2 and later). A thread that wants the GIL
 *   waits one switch interval (5 ms unless configured); if the GIL has not
 *   changed hands meanwhile, it asks the holder to let go, and the holder
 *   does so at its next check. The thread that let go cannot take the GIL
 *   straight back: it waits behind the others (forced switching).
 * - WEFT_GIL_PRIORITY (the default) fixes the convoy effect that CPython
 *   keeps (bpo-7946): there, a thread back from a blocking call waits a
 *   whole interval behind a thread that only computes, on every call, so
 *   one CPU-bound thread slows an I/O thread's every request by 5 ms. Here a
 *   thread coming back from a blocking call (weft_gil_restore, the end of
 *   WEFT_GIL_RELEASED) is served first, and asks a computing holder to let
 *   go at once; threads that compute are served in turn, and one that has
 *   waited a whole interval joins the first rank, so none starves.
 *
 * Waiters queue in order (in each rank) and the GIL passes directly to the
 * one served next. A thread that holds the GIL must release it before it
 * ends. After fork, the child's GIL is held by the thread that forked if
 * that thread held it (CPython's rule), free otherwise, and the other
 * threads' places in the queue are forgotten.
 *
 * weft_gil_t is a caller-owned value of fixed size; WEFT_GIL_INIT (all
 * zero) is a GIL in priority mode with a 5 ms interval. weft_gil_default()
 * is one for the whole process. Errors follow weft/base.h: -EINVAL for a
 * NULL or bad argument, -EPERM for a thread that does not hold the GIL
 * where it must (release, check), -EDEADLK for acquire by its holder.
 */
#ifndef WEFT_GIL_H
#define WEFT_GIL_H

#include <weft/base.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_gil {
    uint32_t drop_request; /* nonzero: a waiter asks the holder to let go (read by check) */
    uint32_t reserved_;
    uint64_t opaque_[47];
} weft_gil_t;

#define WEFT_GIL_INIT \
    {                 \
        0, 0,         \
        {             \
            0         \
        }             \
    }

enum {
    WEFT_GIL_PRIORITY = 0, /* back from a blocking call: served first (the default) */
    WEFT_GIL_FAIR = 1,     /* CPython's: every waiter waits its interval */
};

/* A GIL in `mode` with a switch interval of `interval` seconds (0: 5 ms).
 * Errors: -EINVAL (a NULL gil, an unknown mode, a negative or NaN interval,
 * or one above an hour). */
WEFT_API int weft_gil_init(weft_gil_t *gil, int mode, double interval);
/* Change the mode and interval of a GIL in use (sys.setswitchinterval);
 * waiters already queued keep their rank, and the interval they are in (the
 * new one applies from their next look, as in CPython). Errors as
 * weft_gil_init. */
WEFT_API int weft_gil_configure(weft_gil_t *gil, int mode, double interval);
/* -EBUSY while a thread holds it or waits for it. */
WEFT_API int weft_gil_destroy(weft_gil_t *gil);
/* The process's own GIL (priority mode, 5 ms until configured). */
WEFT_API weft_gil_t *weft_gil_default(void);

/* Take the GIL, waiting as long as it takes. -EDEADLK if the caller holds it
 * already (weft_gil_ensure nests). */
WEFT_API int weft_gil_acquire(weft_gil_t *gil);
/* Let go of the GIL: to the waiter that asked for it, if one has, else free
 * for whoever comes first (the next waiter is woken). -EPERM if the caller
 * does not hold it, or holds it nested (an inner weft_gil_ensure not yet
 * released). */
WEFT_API int weft_gil_release(weft_gil_t *gil);

/* Around a blocking call: release the GIL at any depth of ensure and return
 * the depth (>= 0), then take it back with restore, which in priority mode
 * serves the caller first. -EPERM if the caller does not hold it. */
WEFT_API int weft_gil_save(weft_gil_t *gil);
WEFT_API int weft_gil_restore(weft_gil_t *gil, int saved);

/* Hold the GIL whether or not the caller already does: returns 1 if it held
 * it already (a nested ensure), 0 if it took it now. Give the result to
 * weft_gil_release_ensured, which releases only what its ensure took. -EPERM
 * for a result that does not match the caller's state (an inner ensure not
 * yet released, or a GIL not held); -EOVERFLOW past 2^31 - 1 nested ensures. */
WEFT_API int weft_gil_ensure(weft_gil_t *gil);
WEFT_API int weft_gil_release_ensured(weft_gil_t *gil, int ensured);

/* 1 if the calling thread holds the GIL, 0 if not. */
WEFT_API int weft_gil_held(weft_gil_t *gil);

/* Let the next waiter run now, if one waits, and take the GIL back after it:
 * 1 if the GIL changed hands, 0 if nobody waited (or a thread passed over for
 * an interval is having its protected turn). -EPERM if the caller does not
 * hold it. */
WEFT_API int weft_gil_yield(weft_gil_t *gil);

/* What the holder calls often: 0 at once (one load) unless a waiter has asked
 * for the GIL, else weft_gil_yield's result. The fast path does not check
 * that the caller holds the GIL: a thread that does not gets 0, or -EPERM
 * while a request is pending. */
static inline int weft_gil_check(weft_gil_t *gil)
{
    if (__builtin_expect(gil != NULL && __atomic_load_n(&gil->drop_request, __ATOMIC_RELAXED) == 0,
                         1))
        return 0;
    return weft_gil_yield(gil);
}

/* Statistics since init. wait_hist[i] counts the acquires that waited less
 * than 2^i microseconds and at least half that (i = 0: under 1 us); the
 * last bucket counts every longer wait. */
#define WEFT_GIL_HIST 24
typedef struct weft_gil_stats {
    uint64_t acquires;      /* every time a thread took the GIL */
    uint64_t waits;         /* acquires that had to wait */
    uint64_t switches;      /* hand-overs from one thread straight to a waiting one */
    uint64_t forced;        /* hand-overs a waiter asked for (drop requests honoured) */
    uint64_t wait_total_ns; /* time spent waiting, all waits */
    uint64_t wait_max_ns;
    uint64_t wait_hist[WEFT_GIL_HIST];
} weft_gil_stats_t;
WEFT_API int weft_gil_stats(weft_gil_t *gil, weft_gil_stats_t *stats);

/*
 * Events (Ruby's GVL instrumentation): `event` is called in the thread
 * concerned with WEFT_GIL_EVENT_READY when it starts to wait (not when it
 * takes a free GIL), WEFT_GIL_EVENT_ACQUIRED once it holds the GIL, and
 * WEFT_GIL_EVENT_RELEASED just before it lets go (so each release of one
 * thread comes before the next thread's acquire). The hooks must outlive
 * their use; NULL removes them. They must not use the GIL themselves.
 */
enum { WEFT_GIL_EVENT_READY = 1, WEFT_GIL_EVENT_ACQUIRED = 2, WEFT_GIL_EVENT_RELEASED = 3 };
typedef struct weft_gil_hooks {
    void (*event)(weft_gil_t *gil, int event, void *arg);
    void *arg;
} weft_gil_hooks_t;
WEFT_API int weft_gil_set_hooks(weft_gil_t *gil, const weft_gil_hooks_t *hooks);

#ifndef __cplusplus
/*
 * Run a statement or block without the GIL (Py_BEGIN_ALLOW_THREADS ...
 * Py_END_ALLOW_THREADS): the GIL is released before it and taken back after,
 * with the priority of a thread back from a blocking call, however the block
 * is left: break and continue leave the block (not an enclosing loop);
 * return and goto out of it take the GIL back too, after the return value
 * was computed without it. A caller that does not hold the GIL runs the
 * block all the same. The block must end as it began, without the GIL: had
 * it taken the GIL, the restore at its end would fail (-EDEADLK, dropped).
 */
struct weft__gil_scope {
    weft_gil_t *gil;
    int saved; /* weft_gil_save's result: restore only what it released */
    int once;
};
static inline struct weft__gil_scope weft__gil_scope_begin(weft_gil_t *gil)
{
    struct weft__gil_scope s = {gil, weft_gil_save(gil), 1};
    return s;
}
static inline void weft__gil_scope_end(struct weft__gil_scope *s)
{
    if (s->saved >= 0)
        (void)weft_gil_restore(s->gil, s->saved);
}
#define WEFT__GIL_CAT2(a, b) a##b
#define WEFT__GIL_CAT(a, b)  WEFT__GIL_CAT2(a, b)
#define WEFT__GIL_RELEASED(s, gil)                                                           \
    for (struct weft__gil_scope s                                                            \
         __attribute__((cleanup(weft__gil_scope_end), unused)) = weft__gil_scope_begin(gil); \
         s.once; s.once = 0)
#define WEFT_GIL_RELEASED(gil) WEFT__GIL_RELEASED(WEFT__GIL_CAT(weft__gil_scope_, __COUNTER__), gil)
#endif

#ifdef __cplusplus
}
#endif

#endif /* WEFT_GIL_H */
