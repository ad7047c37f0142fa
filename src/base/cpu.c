/*
 * weft_cpu_count(): how many CPUs this process may use.
 *
 * Like Python's os.process_cpu_count() this reads the affinity mask rather
 * than the number of CPUs online, so `taskset -c 0 prog` sees 1. The mask is
 * grown until the kernel accepts its size, so machines with more than the
 * 1024 CPUs of a static cpu_set_t are counted right too.
 */
#include "base/base.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

int weft_cpu_count(void)
{
    for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            break;
        size_t size = CPU_ALLOC_SIZE(ncpu);
        if (sched_getaffinity(0, size, set) == 0) {
            int n = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n > 0 ? n : 1;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
