/* Tests for the base layer: error names, deadlines, sleep, futex, CPU count,
 * fault injection. */
#include "base/base.h"
#include "wt.h"

#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

WT_CASE(strerror_names_every_code)
{
    WT_CHECK(strcmp(weft_strerror(0), "success") == 0);
    /* Every errno code the headers document or the sources return has a
     * name of weft's: "NAME: description", whatever its sign. */
#define WT_CODE(name)                                                           \
    WT_CHECK(strncmp(weft_strerror(-name), #name ": ", sizeof #name + 1) == 0); \
    WT_CHECK(strcmp(weft_strerror(-name), weft_strerror(name)) == 0);
#include "error_codes.h"
#undef WT_CODE
    WT_CHECK(strncmp(weft_strerror(WEFT_EBROKEN), "WEFT_EBROKEN: ", 14) == 0);
    WT_CHECK(strncmp(weft_strerror(WEFT_ESHUTDOWN), "WEFT_ESHUTDOWN: ", 16) == 0);
    WT_CHECK(strncmp(weft_strerror(WEFT_ECRASHED), "WEFT_ECRASHED: ", 15) == 0);
    WT_CHECK(WEFT_EBROKEN < -4096 && WEFT_ESHUTDOWN < -4096 && WEFT_ECRASHED < -4096);
    /* Codes weft only passes on from the system: the C library's words. */
    WT_CHECK(strcmp(weft_strerror(-ENOSPC), "unknown error") != 0);
    WT_CHECK(strcmp(weft_strerror(-99999), "unknown error") == 0);
    WT_CHECK(strcmp(weft_strerror(INT_MIN), "unknown error") == 0);
    WT_EQ(weft_version(),
          WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 + WEFT_VERSION_PATCH);
}

WT_CASE(deadline_conversion)
{
    weft__deadline_t d;
    WT_EQ(weft__deadline(NAN, &d), -EINVAL);
    WT_EQ(weft__deadline(-1.0, &d), 0);
    WT_CHECK(d == WEFT__NEVER);
    WT_EQ(weft__deadline(-0.5, &d), 0); /* every negative value is forever */
    WT_CHECK(d == WEFT__NEVER);
    WT_EQ(weft__deadline(1e300, &d), 0);
    WT_CHECK(d == WEFT__NEVER);
    WT_EQ(weft__deadline(INFINITY, &d), 0);
    WT_CHECK(d == WEFT__NEVER);
    int64_t before = weft__now_ns();
    WT_EQ(weft__deadline(0, &d), 0);
    WT_CHECK(d >= before && d <= weft__now_ns());
    WT_EQ(weft__deadline(1.5, &d), 0);
    WT_CHECK(d >= before + 1500000000LL);
    WT_EQ(weft__timeout_error(0), -EAGAIN);
    WT_EQ(weft__timeout_error(0.1), -ETIMEDOUT);
}

WT_CASE(monotonic_clock)
{
    double a = weft_monotonic(), b = weft_monotonic();
    WT_CHECK(a > 0 && b >= a);
    WT_CHECK(fabs(a - wt_now()) < 1.0);
}

WT_CASE(sleep_never_early)
{
    for (int i = 0; i < 5; i++) {
        double t0 = wt_now();
        WT_EQ(weft_sleep(0.02), 0);
        double dt = wt_now() - t0;
        WT_CHECK(dt >= 0.02);
        WT_CHECK(dt < 0.02 + 1.0 * wt_slack());
    }
    WT_EQ(weft_sleep(0), 0);
}

WT_CASE(sleep_bad_input)
{
    WT_EQ(weft_sleep(-1), -EINVAL);
    WT_EQ(weft_sleep(NAN), -EINVAL);
    WT_EQ(weft_sleep(INFINITY), -EINVAL);
}

WT_CASE(futex_wait_value_mismatch_returns_at_once)
{
    _Atomic uint32_t word = 5;
    WT_EQ(weft__futex_wait(&word, 4, WEFT__NEVER, false), 0);
    WT_EQ(weft__futex_wait(&word, 4, WEFT__NEVER, true), 0);
}

WT_CASE(futex_wait_deadline_never_early)
{
    _Atomic uint32_t word = 0;
    weft__deadline_t d;
    weft__deadline(0.03, &d);
    int rc;
    /* Loop as callers do: spurious returns are allowed, early timeouts not. */
    while ((rc = weft__futex_wait(&word, 0, d, false)) == 0)
        ;
    WT_EQ(rc, -ETIMEDOUT);
    WT_CHECK(weft__now_ns() >= d);
    weft__deadline(0, &d);
    WT_EQ(weft__futex_wait(&word, 0, d, true), -ETIMEDOUT);
}

struct waker {
    _Atomic uint32_t word;
    bool shared;
};

static void *wake_later(void *arg)
{
    struct waker *w = arg;
    atomic_store(&w->word, 1);
    weft__futex_wake(&w->word, 1, w->shared);
    return NULL;
}

WT_CASE(futex_wake_releases_waiter)
{
    for (int shared = 0; shared < 2; shared++) {
        struct waker w = {0, shared};
        pthread_t th;
        WT_EQ(pthread_create(&th, NULL, wake_later, &w), 0);
        while (atomic_load(&w.word) == 0)
            weft__futex_wait(&w.word, 0, WEFT__NEVER, shared);
        pthread_join(th, NULL);
    }
}

/* Signals interrupt futex waits and sleeps (EINTR); neither may end early. */
static void on_signal(int sig)
{
    (void)sig;
}

struct interrupted {
    _Atomic bool done;
    _Atomic uint32_t word;
    double waited_futex, waited_sleep;
};

static void *wait_through_signals(void *arg)
{
    struct interrupted *w = arg;
    double t0 = wt_now(); /* before the deadline is set, never after */
    weft__deadline_t d;
    weft__deadline(0.1, &d);
    while (weft__futex_wait(&w->word, 0, d, false) == 0)
        ;
    w->waited_futex = wt_now() - t0;
    t0 = wt_now();
    weft_sleep(0.1);
    w->waited_sleep = wt_now() - t0;
    atomic_store(&w->done, true);
    return NULL;
}

WT_FAULT(signals_do_not_shorten_waits)
{
    /* No SA_RESTART: every signal really interrupts the system call. */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    WT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    struct interrupted w = {0};
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, wait_through_signals, &w), 0);
    while (!atomic_load(&w.done)) {
        pthread_kill(th, SIGUSR1);
        sched_yield();
    }
    pthread_join(th, NULL);
    WT_CHECK(w.waited_futex >= 0.1);
    WT_CHECK(w.waited_sleep >= 0.1);
    WT_CHECK(w.waited_sleep < 0.1 + 2.0 * wt_slack());
}

WT_CASE(cpu_count_follows_affinity)
{
    cpu_set_t set;
    WT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    WT_EQ(weft_cpu_count(), CPU_COUNT(&set));
    /* Like `taskset -c <one cpu>`: the count must drop to 1. */
    int first = 0;
    while (!CPU_ISSET(first, &set))
        first++;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    WT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    WT_EQ(weft_cpu_count(), 1);
    WT_EQ(sched_setaffinity(0, sizeof set, &set), 0);
}

WT_FAULT(allocation_failure_is_reported)
{
    weft__sys.malloc = wt_no_malloc;
    WT_CHECK(weft__malloc(16) == NULL);
    WT_CHECK(weft__strdup("x") == NULL);
    weft__sys_reset();
    char *s = weft__strdup("weft");
    WT_CHECK(s && strcmp(s, "weft") == 0);
    free(s);
}
