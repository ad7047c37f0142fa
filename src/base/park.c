/*
 * Parking (design in park.h): the futex underneath, the hooks around it.
 *
 * A thread's park is a FUTEX_WAIT_BITSET, because it is the one futex wait
 * that takes an absolute timeout, and without FUTEX_CLOCK_REALTIME that
 * timeout is on CLOCK_MONOTONIC: exactly weft's deadline. A plain
 * FUTEX_WAIT would take a relative timeout that we would have to recompute
 * (and could get wrong) on every spurious wake-up. Private futexes
 * (FUTEX_PRIVATE_FLAG) let the kernel skip the mm lookup; the shared form is
 * for words in memory mapped by several processes.
 *
 * A park never loops: a wake, a changed word (EAGAIN) and a signal (EINTR)
 * all return 0, and the caller re-checks its own condition, which is the
 * only correct reaction to any of them.
 *
 * Threads asleep on private words are counted, by the word's hash, in
 * `sleeping`: an unpark that finds none counted where its word hashes
 * skips its FUTEX_WAKE. A primitive counts its sleepers from before they
 * park (a Lock's sleeper count, an eventcount's waiters), and a task about
 * to park, or a thread still polling, is among them: the wake-up its
 * unpark sends reaches nobody, and cost a system call (a Lock that two
 * loops' tasks share made one on every other contended release). The
 * sleeper counts itself, then the kernel compares the word; the unparker
 * changes the word, fences, then reads the count: one of them sees the
 * other (the kernel's futex_wait orders its read of the word after the
 * count's read-modify-write with a full barrier). Process-shared words are
 * always woken: another process's sleepers are not counted here.
 */
#include "base/park.h"

#include "base/hooks.h"
#include "base/spin.h"

#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Thread_local struct weft__parker *weft__parker WEFT__TLS_FAST;
_Atomic uint32_t weft__parked_tasks;
_Thread_local struct weft__task_rec *weft__task_rec WEFT__TLS_FAST;
void (*_Atomic weft__lockdep_task_end)(void **slot);
void (*_Atomic weft__gils_suspend)(struct weft__task_gils *held);
void (*_Atomic weft__gils_resume)(struct weft__task_gils *held);
int (*_Atomic weft__task_unpark)(_Atomic uint32_t *word, int n, unsigned flags);
void (*_Atomic weft__loop_forget)(void);

static long sys_futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts,
                      uint32_t val3)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, val3);
}

int weft__park_futex(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline,
                     unsigned flags)
{
    int op = FUTEX_WAIT_BITSET | (flags & WEFT__PARK_SHARED ? 0 : FUTEX_PRIVATE_FLAG);
    struct timespec ts, *tsp = NULL;
    if (deadline != WEFT__NEVER) {
        if (deadline <= weft__now_ns())
            return -ETIMEDOUT;
        ts.tv_sec = deadline / 1000000000LL;
        ts.tv_nsec = deadline % 1000000000LL;
        tsp = &ts;
    }
    if (sys_futex(word, op, expected, tsp, FUTEX_BITSET_MATCH_ANY) == -1 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;
}

/* poll's and epoll's event bits are the same numbers on Linux. */
_Static_assert(POLLIN == 0x1 && POLLOUT == 0x4 && POLLERR == 0x8 && POLLHUP == 0x10,
               "poll's bits are epoll's");

unsigned weft__fd_ready(unsigned events, uint32_t revents)
{
    if (revents & (POLLERR | POLLHUP))
        return events; /* the read or write that follows says which */
    return ((revents & POLLIN) ? events & WEFT_READABLE : 0) |
           ((revents & POLLOUT) ? events & WEFT_WRITABLE : 0);
}

uint32_t weft__fd_interest(unsigned events)
{
    return ((events & WEFT_READABLE) ? POLLIN : 0) | ((events & WEFT_WRITABLE) ? POLLOUT : 0);
}

/* Wait for fd to be ready, across EINTR and poll's millisecond steps. */
int weft__park_fd_poll(int fd, unsigned events, weft__deadline_t deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline != WEFT__NEVER) {
            int64_t left = (deadline - weft__now_ns() + 999999) / 1000000; /* round up */
            ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd pfd = {fd, (short)weft__fd_interest(events), 0};
        int n = poll(&pfd, 1, ms);
        if (n > 0)
            return pfd.revents & POLLNVAL ? -EBADF
                                          : (int)weft__fd_ready(events, (uint32_t)pfd.revents);
        if (n == 0 && ms == 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

WEFT__COLD static void trace_begin(const struct weft__hooks *h, const void *word, unsigned flags)
{
    if (h->park_begin)
        h->park_begin(word, flags);
}

WEFT__COLD static void trace_end(const struct weft__hooks *h, const void *word, unsigned flags,
                                 int rc)
{
    if (h->park_end)
        h->park_end(word, flags, rc);
}

enum { SLEEPING_BITS = 6 };
static struct {
    _Alignas(WEFT__CACHE_LINE) _Atomic uint32_t n;
} sleeping[1 << SLEEPING_BITS];

static _Atomic uint32_t *sleeping_on(const _Atomic uint32_t *word)
{
    return &sleeping[weft__hash_ptr(word, SLEEPING_BITS)].n;
}

/* A thread's sleep, out of line: it is a system call anyway, and a task's
 * park then saves no registers on its way through. */
static WEFT__NOINLINE int park_thread(_Atomic uint32_t *word, uint32_t expected,
                                      weft__deadline_t deadline, unsigned flags)
{
    weft__spin_sample(); /* about to sleep: the moment to look at the load */
    if (flags & WEFT__PARK_SHARED)
        return weft__park_futex(word, expected, deadline, flags);
    _Atomic uint32_t *count = sleeping_on(word);
    atomic_fetch_add(count, 1);
    int rc = weft__park_futex(word, expected, deadline, flags);
    atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
    return rc;
}

static int park(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline,
                unsigned flags)
{
    struct weft__parker *p = weft__parker;
    if (WEFT__UNLIKELY(p))
        return p->park(p, word, expected, deadline, flags);
    return park_thread(word, expected, deadline, flags);
}

WEFT__COLD static int park_traced(const struct weft__hooks *h, _Atomic uint32_t *word,
                                  uint32_t expected, weft__deadline_t deadline, unsigned flags)
{
    trace_begin(h, word, flags);
    int rc = park(word, expected, deadline, flags);
    trace_end(h, word, flags, rc);
    return rc;
}

/* Untraced, the park is a tail call: a task resumed returns straight to
 * the waiting primitive, one frame less to unwind after a switch. */
int weft__park(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline, unsigned flags)
{
    const struct weft__hooks *h = weft__hooks_get();
    if (WEFT__UNLIKELY(h))
        return park_traced(h, word, expected, deadline, flags);
    return park(word, expected, deadline, flags);
}

int weft__park_fd(int fd, unsigned events, weft__deadline_t deadline, unsigned flags)
{
    const struct weft__hooks *h = weft__hooks_get();
    if (WEFT__UNLIKELY(h))
        trace_begin(h, NULL, flags);
    struct weft__parker *p = weft__parker;
    int rc = WEFT__UNLIKELY(p) ? p->park_fd(p, fd, events, deadline, flags)
                               : weft__park_fd_poll(fd, events, deadline);
    if (WEFT__UNLIKELY(h))
        trace_end(h, NULL, flags, rc);
    return rc;
}

void weft__park_leave_loop(void)
{
    weft__parker = NULL;
    weft__task_rec = NULL; /* the GIL, too, sees a thread again */
    weft__owner_self = 0;
    void (*forget)(void) = atomic_load_explicit(&weft__loop_forget, memory_order_acquire);
    if (forget)
        forget();
}

void weft__park_recancel(void)
{
    struct weft__parker *p = weft__parker;
    if (p && p->recancel)
        p->recancel(p);
}

/* Tasks first: they are counted, so that n covers tasks and threads. */
WEFT__COLD static int unpark_tasks(_Atomic uint32_t *word, int n, unsigned flags)
{
    int (*unpark)(_Atomic uint32_t *, int, unsigned) =
        atomic_load_explicit(&weft__task_unpark, memory_order_acquire);
    return unpark ? unpark(word, n, flags) : 0;
}

void weft__unpark_tasks(_Atomic uint32_t *word, int n, unsigned flags)
{
    weft__fence();
    if (atomic_load_explicit(&weft__parked_tasks, memory_order_relaxed))
        unpark_tasks(word, n, flags);
}

static WEFT__INLINE void unpark(_Atomic uint32_t *word, int n, unsigned flags, bool after_atomic)
{
    weft__note_cpus(); /* a thread that only ever wakes others counts too */
    if (after_atomic)
        weft__fence_after_atomic();
    else
        weft__fence();
    if (WEFT__UNLIKELY(atomic_load_explicit(&weft__parked_tasks, memory_order_relaxed)) &&
        (n -= unpark_tasks(word, n, flags)) <= 0)
        return;
    bool shared = flags & WEFT__PARK_SHARED;
    if (!shared && !atomic_load_explicit(sleeping_on(word), memory_order_relaxed))
        return;
    sys_futex(word, FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG), (uint32_t)n, NULL, 0);
}

void weft__unpark(_Atomic uint32_t *word, int n, unsigned flags)
{
    unpark(word, n, flags, false);
}

void weft__unpark_after_atomic(_Atomic uint32_t *word, int n, unsigned flags)
{
    unpark(word, n, flags, true);
}
