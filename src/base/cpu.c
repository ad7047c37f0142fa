/*
 * weft_cpu_count(): how many CPUs this process may use; and whether
 * spinning can pay at all (weft__spin_pays).
 *
 * The count is the smaller of two limits:
 *   - the affinity mask, as Python's os.process_cpu_count() reads it, rather
 *     than the CPUs online, so `taskset -c 0 prog` sees 1. The mask is grown
 *     until the kernel accepts its size, so machines with more than the 1024
 *     CPUs of a static cpu_set_t are counted right too. Where the mask
 *     cannot be had (out of memory, a seccomp filter), the CPUs online.
 *   - the cgroup CPU quota (quota.c), which Python ignores and Go's
 *     GOMAXPROCS and the JVM's container support honour: quota/period
 *     rounded up, at least 1, so a container given 1.5 CPUs of a 64-CPU
 *     host counts 2 (Go's rounding: the half CPU is there to be used), and
 *     a pool's default size fits the container, not the host.
 */
#include "base/base.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* The CPUs in the affinity mask, grown as the kernel asks. */
static int affinity_count(void)
{
    for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        size_t size = CPU_ALLOC_SIZE(ncpu);
        cpu_set_t *set = weft__calloc(1, size);
        if (!set)
            break;
        if (weft__sys.sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            free(set);
            return n > 0 ? n : 1;
        }
        free(set);
        if (errno != EINVAL)
            break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* A CPU count from a quota of `cpus` CPUs: rounded up, at least 1. */
static int whole_cpus(double cpus)
{
    int n = (int)cpus;
    return n < cpus ? n + 1 : n > 0 ? n : 1;
}

/* Asked first with a mask on the stack, which holds 1024 CPUs: this runs
 * lazily, in whichever thread stalls first (a pool's worker, say), so it
 * keeps away from the allocator and the fault-injection table, which a test
 * may be changing meanwhile; hence weft__spin_pays passes the C library's
 * open, not the table's. The quota's reader allocates nothing either (its
 * buffers are on the stack) and, cached by weft__spin_pays, runs once. Only
 * a larger machine needs affinity_count's grown mask.
 *
 * The quota must allow 2 whole CPUs, not the rounded count's 2: with 1.5, a
 * spinner burns time the holder needs, and once the period's quota is spent
 * the whole cgroup waits for the next period, holder and all. */
bool weft__several_cpus(int (*open_file)(const char *path, int flags))
{
    cpu_set_t set;
    bool several =
        sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) > 1 : affinity_count() > 1;
    return several && weft__cpu_quota(open_file) >= 2;
}

bool weft__spin_pays(void)
{
    /* Read once: 0 unknown, 1 no, 2 yes. A later change of affinity or
     * quota only makes spinning a little less useful, never incorrect. */
    static _Atomic int pays;
    int p = atomic_load_explicit(&pays, memory_order_relaxed);
    if (WEFT__UNLIKELY(p == 0)) {
        p = weft__several_cpus(weft__real_open) ? 2 : 1;
        atomic_store_explicit(&pays, p, memory_order_relaxed);
    }
    return p == 2;
}

int weft_cpu_count(void)
{
    int n = affinity_count();
    double quota = weft__cpu_quota(weft__sys.open);
    return quota < n ? whole_cpus(quota) : n;
}
