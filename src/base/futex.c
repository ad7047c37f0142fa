/*
 * The futex wrapper every blocking primitive in weft sleeps on.
 *
 * Waits use FUTEX_WAIT_BITSET because it is the one futex wait that takes an
 * absolute timeout, and without FUTEX_CLOCK_REALTIME that timeout is on
 * CLOCK_MONOTONIC: exactly weft's deadline. A plain FUTEX_WAIT would take a
 * relative timeout that we would have to recompute (and could get wrong) on
 * every spurious wake-up.
 *
 * Private futexes (FUTEX_PRIVATE_FLAG) let the kernel skip the mm lookup; the
 * shared form is for words in memory mapped by several processes.
 *
 * The wrapper never loops: a wake, a changed word (EAGAIN) and a signal
 * (EINTR) all return 0, and the caller re-checks its own condition, which is
 * the only correct reaction to any of them.
 */
#include "base/base.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long sys_futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts,
                      uint32_t val3)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, val3);
}

int weft__futex_wait(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline,
                     bool shared)
{
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
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

void weft__futex_wake(_Atomic uint32_t *word, int count, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    sys_futex(word, op, (uint32_t)count, NULL, 0);
}
