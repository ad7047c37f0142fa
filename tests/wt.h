/*
 * wt: weft's test harness. A test program defines cases with WT_CASE(name)
 * (label "unit"), WT_STRESS(name) (label "stress": longer randomized runs) or
 * WT_FAULT(name) (label "fault": injected failures, signals, fork at awkward
 * moments); CMake reads those lines
 * and registers every case with CTest as its own process, so a crash or a
 * deadlock fails one case, within that case's timeout, and cases start from a
 * fresh process (an empty thread registry). Run a program with a case name to
 * run that case, with no argument to run them all (each in a forked process
 * of its own, likewise), with --list to list them.
 *
 * Checks abort the case at the first failure with the file, line, expression
 * and, for WT_EQ, both values.
 */
#ifndef WT_H
#define WT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef void (*wt_fn)(void);
void wt_register(const char *name, wt_fn fn);
_Noreturn void wt_fail(const char *file, int line, const char *expr, const char *detail);
void wt_fail_eq(const char *file, int line, const char *a, const char *b, long long va,
                long long vb);

#define WT__CASE(name)                                           \
    static void wt_case_##name(void);                            \
    __attribute__((constructor)) static void wt_reg_##name(void) \
    {                                                            \
        wt_register(#name, wt_case_##name);                      \
    }                                                            \
    static void wt_case_##name(void)
#define WT_CASE(name)   WT__CASE(name)
#define WT_STRESS(name) WT__CASE(name)
#define WT_FAULT(name)  WT__CASE(name)

#define WT_CHECK(cond)                                \
    do {                                              \
        if (!(cond))                                  \
            wt_fail(__FILE__, __LINE__, #cond, NULL); \
    } while (0)

#define WT_EQ(a, b)                                               \
    do {                                                          \
        long long wt_a_ = (long long)(a), wt_b_ = (long long)(b); \
        if (wt_a_ != wt_b_)                                       \
            wt_fail_eq(__FILE__, __LINE__, #a, #b, wt_a_, wt_b_); \
    } while (0)

/* End the case as skipped, saying why: for a case whose premise the
 * machine cannot provide (CTest reports it as skipped, not passed). */
#define WT_SKIP_CODE 77
_Noreturn void wt_skip(const char *why);

/* Seconds on CLOCK_MONOTONIC. */
double wt_now(void);

/* Which slow build this is: 0, 'a' (ASan+UBSan), 't' (TSan) or 'c' (coverage:
 * -O0 with atomic counters); tests scale their rounds down when it is not 0. */
int wt_sanitizer(void);

/* How much slower than normal the build runs (sanitizers), for the upper
 * bounds of timing checks: generous, never used for lower bounds. */
double wt_slack(void);

/* A one-shot gate built on pthreads (the harness must not trust the code
 * under test): wait blocks until open. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} wt_gate;
#define WT_GATE_INIT                                           \
    {                                                          \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 \
    }
void wt_gate_open(wt_gate *g);
void wt_gate_wait(wt_gate *g);

/* Spin (yielding) until pred(arg) holds; fails the case after `seconds`.
 * For conditions with no event to wait on, such as a detached thread's
 * registry entry going away. */
void wt_wait_until(bool (*pred)(void *arg), void *arg, double seconds);

/* Wait until thread `tid` (a kernel id) is asleep in a futex wait on `addr`
 * (NULL: on any word, for primitives whose words the test cannot see), as
 * /proc/self/task/<tid>/syscall shows: the deterministic way to know a
 * waiter has really gone to sleep before acting on it. */
void wt_await_futex_sleep(long tid, const void *addr, double seconds);

/* Fork, run fn(arg) in the child, and return the child's wait status; the
 * child exits with fn's return value. Fails the case after `seconds`. */
int wt_fork(int (*fn)(void *arg), void *arg, double seconds);
/* The two halves of wt_fork: start the child (it exits with fn's value),
 * and wait for it; a child still running after `seconds` is killed and the
 * case fails. */
pid_t wt_spawn(int (*fn)(void *arg), void *arg);
int wt_reap(pid_t pid, double seconds);
/* wt_await_futex_sleep for the main thread of child process `pid`. */
void wt_await_child_futex_sleep(pid_t pid, const void *addr, double seconds);
/* Pin the calling thread (and the threads it starts later) to the first
 * CPU it may run on: a one-CPU machine, as far as it can tell. */
void wt_pin_to_one_cpu(void);

/* Allocators that always fail, for weft's fault-injection table (weft__sys):
 * set one, call, and weft__sys_reset(). */
void *wt_no_malloc(size_t size);
void *wt_no_calloc(size_t count, size_t size);
void *wt_no_realloc(void *p, size_t size);
void *wt_no_aligned_alloc(size_t alignment, size_t size);

/* Descriptors open in this process (entries of /proc/self/fd). */
int wt_count_fds(void);

/* Zeroed memory shared with children forked after the call. */
void *wt_shared_map(size_t size);

#endif /* WT_H */
