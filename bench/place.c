/*
 * Placement: which CPUs a case's threads run on (weft-bench --place).
 *
 * Why. On a machine whose CPUs are all busy, what a hand-off costs depends
 * first on whether its two threads share a CPU: on one CPU a wake-up is a
 * context switch (a round trip of 5-10 us here, beside two busy loops on two
 * CPUs), on two each wake-up must win its CPU back from a busy loop (35-80
 * us). Left to itself the scheduler picks one or the other from its load
 * history and keeps the choice for seconds, so an unplaced loaded run
 * compares whichever placement each side happened to get: the same code gave
 * speedups from 0.13 to 6 against the same baseline. With a placement the
 * driver decides, the same way for weft and for the baseline:
 *
 *   one     every thread of the process on the first CPU it may use;
 *   spread  the driver's main thread (one side of every ping-pong) on the
 *           first CPU, the threads a case starts on the following CPUs in
 *           turn, wrapping around.
 *
 * The load's spinners go one per CPU under both (weft-bench.c, busy()).
 *
 * How. The main thread pins itself, and `one` needs nothing more: threads
 * inherit their creator's CPU mask. For `spread`, weft-bench defines
 * pthread_create. An executable's symbols come first in the dynamic
 * linker's lookup, so libweft, GLib, libuv, libgomp and oneTBB all start
 * their threads through it; it hands the new thread a trampoline that pins
 * the thread before its own function runs, so no code of the case runs on
 * the wrong CPU. The count of threads restarts before every measured call
 * (bench_place_restart), so the k-th thread a call starts gets the same CPU
 * in every round and on both sides. A baseline run as a program (Go) is
 * given every CPU of the placement and its own runtime places its threads.
 */
#include "place.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum bench_place mode;
static int cpus[CPU_SETSIZE], ncpus; /* the CPUs the process may use, in order */
static atomic_int started;           /* threads started since the last restart */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static create_fn real_create(void)
{
    static _Atomic(create_fn) real;
    create_fn f = atomic_load_explicit(&real, memory_order_acquire);
    if (!f) {
        void *sym = dlsym(RTLD_NEXT, "pthread_create");
        memcpy(&f, &sym, sizeof f); /* POSIX: a dlsym result may be a function */
        if (!f) {
            fputs("weft-bench: no pthread_create to call\n", stderr);
            abort();
        }
        atomic_store_explicit(&real, f, memory_order_release);
    }
    return f;
}

/* Run the calling thread on cpus[first .. first + n - 1]. */
static void pin_self(int first, int n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = first; i < first + n; i++)
        CPU_SET(cpus[i], &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("weft-bench: sched_setaffinity");
        exit(1);
    }
}

struct start {
    void *(*fn)(void *);
    void *arg;
    int cpu; /* an index into cpus */
};

static void *trampoline(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    pin_self(s.cpu, 1);
    return s.fn(s.arg);
}

__attribute__((visibility("default"))) int pthread_create(pthread_t *restrict t,
                                                          const pthread_attr_t *restrict attr,
                                                          void *(*fn)(void *), void *restrict arg)
{
    if (mode != BENCH_PLACE_SPREAD)
        return real_create()(t, attr, fn, arg);
    struct start *s = malloc(sizeof *s);
    if (!s)
        return EAGAIN;
    int k = atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    *s = (struct start){fn, arg, (1 + k) % ncpus};
    int err = real_create()(t, attr, trampoline, s);
    if (err != 0)
        free(s);
    return err;
}

int bench_place_parse(const char *name)
{
    if (strcmp(name, "one") == 0)
        return BENCH_PLACE_ONE;
    if (strcmp(name, "spread") == 0)
        return BENCH_PLACE_SPREAD;
    return -1;
}

const char *bench_place_name(enum bench_place p)
{
    return p == BENCH_PLACE_ONE ? "one" : p == BENCH_PLACE_SPREAD ? "spread" : "";
}

/* Learn the CPUs the process may use, once, before any pinning. */
static int learn_cpus(void)
{
    cpu_set_t set;
    if (ncpus == 0 && sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                cpus[ncpus++] = c;
    return ncpus;
}

int bench_place_cpus(int *out, int max)
{
    int n = learn_cpus() < max ? ncpus : max;
    memcpy(out, cpus, (size_t)n * sizeof *out);
    return n;
}

void bench_place_setup(enum bench_place p)
{
    if (p == BENCH_PLACE_NONE || learn_cpus() == 0)
        return;
    mode = p;
    pin_self(0, 1);
}

void bench_place_restart(void)
{
    atomic_store_explicit(&started, 0, memory_order_relaxed);
}

void bench_place_open_to_all(bool open)
{
    if (mode == BENCH_PLACE_SPREAD)
        pin_self(0, open ? ncpus : 1);
}
