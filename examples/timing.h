/* Timing for the examples that show a speedup. A speedup alone misleads on
 * a busy machine: two threads that get one CPU between them look exactly
 * like threads held back by a GIL. So each run records its wall time and
 * the CPU time it used meanwhile (this process's threads and its reaped
 * children), whose ratio is how many CPUs it really had, and the examples
 * print that beside the speedup and warn when the machine was busy. */
#ifndef WEFT_EXAMPLE_TIMING_H
#define WEFT_EXAMPLE_TIMING_H

#include <weft/base.h>

#include <stdio.h>
#include <sys/resource.h>

struct timing {
    double wall, cpu;
};

static inline double cpu_seconds(void)
{
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    double s = 0;
    const struct timeval *tv[] = {&self.ru_utime, &self.ru_stime, &children.ru_utime,
                                  &children.ru_stime};
    for (int i = 0; i < 4; i++)
        s += (double)tv[i]->tv_sec + (double)tv[i]->tv_usec / 1e6;
    return s;
}

static inline struct timing timing_start(void)
{
    return (struct timing){weft_monotonic(), cpu_seconds()};
}

static inline void timing_stop(struct timing *t)
{
    t->wall = weft_monotonic() - t->wall;
    t->cpu = cpu_seconds() - t->cpu;
}

/* How many CPUs the run kept busy on average. */
static inline double timing_cpus(const struct timing *t)
{
    return t->wall > 0 ? t->cpu / t->wall : 0;
}

/* After a parallel run that asked for `wanted` CPUs: say so if it got much
 * less, with the load average, so the figures are read for what they are. */
static inline void warn_if_busy(const struct timing *t, int wanted)
{
    if (timing_cpus(t) >= 0.75 * wanted)
        return;
    double load = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = 0;
        fclose(f);
    }
    printf("note: the parallel run had only %.1f of the %d CPUs it asked for (load average "
           "%.1f):\n      other programs are busy on this machine, so its speedup is lower than "
           "an idle machine gives.\n",
           timing_cpus(t), wanted, load);
}

#endif
