/*
 * weft/base.h: what every part of weft shares: the export macro, error codes,
 * time (timeouts, sleeping, the monotonic clock) and the CPU count.
 *
 * Errors: every function returns 0 (or a non-negative result) on success and a
 * negative errno value on failure. Codes that errno has no name for live below
 * -4096 so they never collide with one; weft_strerror() names them all.
 *
 * Timeouts are relative seconds as a double, as in Python. Any negative value
 * waits forever (WEFT_FOREVER is -1, the value Python's Lock.acquire uses; note
 * that Python's Thread.join treats other negative values as 0, weft does
 * not), 0 tries once and fails with -EAGAIN, a positive value that runs out
 * fails with -ETIMEDOUT, NaN is -EINVAL. Internally every
 * wait runs to an absolute CLOCK_MONOTONIC deadline, so neither a change of the
 * wall clock nor a spurious wake-up stretches or shortens it.
 */
#ifndef WEFT_BASE_H
#define WEFT_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* The library's version as MAJOR * 10000 + MINOR * 100 + PATCH, for checking
 * at run time that the headers and the loaded library agree. */
WEFT_API int weft_version(void);

/*
 * weft's own error codes, one line each: name, value, description. The enum
 * below and weft_strerror() are both generated from this list.
 */
#define WEFT_ERRORS(X)                                                                \
    X(WEFT_EBROKEN, -4097, "broken: a barrier or pool can no longer be used")         \
    X(WEFT_ESHUTDOWN, -4098, "shut down: the queue or executor accepts no more work") \
    X(WEFT_ECRASHED, -4099, "crashed: the worker process running the task died")      \
    X(WEFT_EMAPCOUNT, -4100,                                                          \
      "out of memory mappings: the process has as many as vm.max_map_count allows (sysctl)")

enum weft_error {
#define WEFT__ERROR_ENUM(name, value, text) name = value,
    WEFT_ERRORS(WEFT__ERROR_ENUM)
#undef WEFT__ERROR_ENUM
};

/* A static description of an error code, negative (as weft returns them) or
 * positive (as errno holds them); "unknown error" for codes weft never uses. */
WEFT_API const char *weft_strerror(int code);

/* The daemon choice in weft_thread_opts_t and weft_process_opts_t (their
 * `int daemon`). The default, as in Python, inherits the flag of whoever
 * creates the thread (the creating thread's) or the process (the current
 * process's). YES is 1, so `.daemon = true` asks for a daemon. */
enum weft_daemon {
    WEFT_DAEMON_INHERIT = 0,
    WEFT_DAEMON_YES = 1,
    WEFT_DAEMON_NO = 2,
};

/* Wait forever: any negative timeout means this. */
#define WEFT_FOREVER (-1.0)

/* Seconds on CLOCK_MONOTONIC, the clock all of weft's timeouts run on. */
WEFT_API double weft_monotonic(void);

/* What weft_wait_fd waits for, and what it reports ready. */
#define WEFT_READABLE 1u
#define WEFT_WRITABLE 2u

/* Wait until fd is ready for any of `events` (WEFT_READABLE, WEFT_WRITABLE
 * or both): the events ready, a nonzero mask of those asked for, or 0 once
 * the timeout has passed. A descriptor at end of file, hung up or in error
 * is ready for everything asked (the read or write that follows reports
 * which), as poll and Python's selectors say. -EINVAL (NaN, a negative fd,
 * no events or unknown ones), -EBADF (fd is not open), or -errno from poll.
 * In an async task only the task waits, on its loop's epoll, and
 * -ECANCELED ends the wait (asyncio's loop.add_reader and add_writer, as a
 * call that waits); a descriptor the loop cannot watch for want of memory
 * or descriptors is -ENOMEM or -EMFILE at once, rather than a poll that
 * would block the loop. */
WEFT_API int weft_wait_fd(int fd, unsigned events, double timeout);

/* weft_wait_fd(fd, WEFT_READABLE, timeout): 1 once readable, or 0. */
WEFT_API int weft_wait_readable(int fd, double timeout);

/* Sleep for `seconds` on the monotonic clock, resuming after signals (Python's
 * time.sleep). Negative, NaN or infinite durations are -EINVAL. In an async
 * task (weft/async.h) only the task sleeps, and -ECANCELED ends its sleep. */
WEFT_API int weft_sleep(double seconds);

/* The number of CPUs this process may use: the smaller of the affinity
 * mask (not the machine's total, as Python's os.process_cpu_count) and,
 * unlike Python but as Go's GOMAXPROCS and the JVM, the cgroup CPU quota:
 * quota/period CPUs (cgroup v2's cpu.max, v1's cpu.cfs_quota_us over
 * cpu.cfs_period_us), the tightest of the process's cgroup and its
 * ancestors, rounded up, so a container allowed 1.5 CPUs counts 2. A quota
 * that cannot be read counts as none. Always at least 1. */
WEFT_API int weft_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BASE_H */
