/*
 * weft_cpu_count(): how many CPUs this process may use; and whether
 * spinning can pay at all (weft__spin_pays).
 *
 * Spinning pays when the thread waited for can run while its waiter spins:
 * when the process's threads have more than one CPU between them, and a
 * quota of at least 2. A thread's affinity mask alone does not say it: a
 * program that pins each thread to its own CPU (as servers and HPC codes
 * do) has threads with one CPU each and a process with many, and deciding
 * from whichever thread asked first made such a program never spin, and its
 * lock-free stalls yield at once; with a busy loop beside each thread, every
 * yield then waited for the next tick (a bounded queue between two pinned
 * threads moved an item per 2.4 us instead of 0.1). So every thread that
 * waits or wakes (park.c) shows its mask once (weft__note_cpus): the first
 * mask of more than one CPU, or two single-CPU masks that differ, and
 * spinning pays from then on. `taskset -c 0 prog` still never spins: every
 * thread has the same one CPU.
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

/* The quota must allow 2 whole CPUs, not the rounded count's 2: with 1.5, a
 * spinner burns time the holder needs, and once the period's quota is spent
 * the whole cgroup waits for the next period, holder and all. */
bool weft__quota_lets_spin(int (*open_file)(const char *path, int flags))
{
    return weft__cpu_quota(open_file) >= 2;
}

/* The one CPU every thread shown so far was pinned to (-1: none yet), and
 * whether the threads shown have more than one CPU between them. */
static _Atomic int lone_cpu = -1;
static _Atomic bool spread;
_Thread_local bool weft__cpus_shown WEFT__TLS_FAST;

/* A mask on the stack for 8192 CPUs: weft__show_cpus runs lazily, in whichever
 * thread first waits or wakes (a pool's worker, say), so it keeps away from
 * the allocator and the fault-injection table, which a test may be changing
 * meanwhile. A machine with more CPUs than that counts as several. */
#define SHOWN_CPUS 8192

void weft__show_cpus(void)
{
    weft__cpus_shown = true;
    unsigned long mask[SHOWN_CPUS / (8 * sizeof(unsigned long))];
    size_t size = sizeof mask;
    cpu_set_t *set = (cpu_set_t *)mask;
    if (sched_getaffinity(0, size, set) != 0 || CPU_COUNT_S(size, set) != 1) {
        atomic_store_explicit(&spread, true, memory_order_relaxed);
        return;
    }
    int cpu = 0;
    while (!CPU_ISSET_S(cpu, size, set))
        cpu++;
    int first = -1;
    if (!atomic_compare_exchange_strong_explicit(&lone_cpu, &first, cpu, memory_order_relaxed,
                                                 memory_order_relaxed) &&
        first != cpu)
        atomic_store_explicit(&spread, true, memory_order_relaxed);
}

/* In a fork's child only the forking thread is left: what the parent's
 * threads showed is no longer the process's. (A handler that failed to
 * register, out of memory at load time, leaves a child spinning where it
 * need not: slower, never wrong.) */
static void forget_cpus_in_child(void)
{
    weft__cpus_shown = false;
    atomic_store_explicit(&lone_cpu, -1, memory_order_relaxed);
    atomic_store_explicit(&spread, false, memory_order_relaxed);
}

WEFT__CONSTRUCTOR static void cpus_init(void)
{
    (void)pthread_atfork(NULL, NULL, forget_cpus_in_child);
}

bool weft__spin_pays(void)
{
    weft__note_cpus();
    if (!atomic_load_explicit(&spread, memory_order_relaxed))
        return false;
    /* The quota is read once (0 unknown, 1 no, 2 yes), with the C library's
     * open, not the table's: a later change of quota or of affinity only
     * makes spinning a little less useful, never incorrect. */
    static _Atomic int quota_ok;
    int q = atomic_load_explicit(&quota_ok, memory_order_relaxed);
    if (WEFT__UNLIKELY(q == 0)) {
        q = weft__quota_lets_spin(weft__real_open) ? 2 : 1;
        atomic_store_explicit(&quota_ok, q, memory_order_relaxed);
    }
    return q == 2;
}

int weft_cpu_count(void)
{
    int n = affinity_count();
    double quota = weft__cpu_quota(weft__sys.open);
    return quota < n ? whole_cpus(quota) : n;
}
