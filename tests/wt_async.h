/*
 * The async test programs run twice under CTest: on one loop, and in M:N
 * mode (WT_THREADS=2 in the environment, tests/CMakeLists.txt). wt_run_opts
 * gives weft_run the mode; cases that check what only one loop promises
 * (FIFO order, no lock needed between two waits) skip themselves in M:N
 * mode with wt_one_loop_only().
 */
#ifndef WT_ASYNC_H
#define WT_ASYNC_H

#include <weft/async.h>

#include <stdatomic.h>

#include <stdlib.h>

static inline unsigned wt_threads(void)
{
    const char *e = getenv("WT_THREADS");
    return e ? (unsigned)atoi(e) : 1;
}

static inline const weft_run_opts_t *wt_run_opts(void)
{
    static weft_run_opts_t opts;
    opts.threads = wt_threads();
    return &opts;
}

/* Skip (exit 77) in M:N mode. */
#define wt_one_loop_only()    \
    do {                      \
        if (wt_threads() > 1) \
            exit(77);         \
    } while (0)

/* From a task: wait until a writer waits on rw (the top bit of its state,
 * sync/rwlock.c), letting the loop run meanwhile. Read from the lock
 * rather than from the writer's thread in /proc, which qemu-user does not
 * show as a futex wait. */
static inline void wt_await_waiting_writer(weft_rwlock_t *rw)
{
    while (!(atomic_load((_Atomic uint32_t *)&rw->state) & 0x80000000u))
        if (weft_co_sleep(0.001) != 0)
            abort();
}

/* TSan cannot start threads in a child forked from a process with more
 * than one (die_after_fork), and in M:N mode the loop's are there. */
#define wt_skip_forks_under_tsan_mn()                  \
    do {                                               \
        if (wt_threads() > 1 && wt_sanitizer() == 't') \
            exit(77);                                  \
    } while (0)

#endif /* WT_ASYNC_H */
