/*
 * The spin policy (design in spin.h): how each kind of waiter polls, the
 * machine's load as sampled by threads about to park, and waiting out a
 * thread between two steps of a lock-free operation (weft__stall).
 */
#include "base/spin.h"

#include "base/park.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Polls by kind, idle and busy: {polls, first pause, pause after an
 * immediate look, longest pause}. Busy, a queue still looks once, late
 * (spin.h says why). */
static const weft__spin_t idle_polls[] = {
    [WEFT__SPIN_HANDOFF] = {16, 0, 1, 64},
    [WEFT__SPIN_MUTEX] = {16, 0, 32, 64},
    [WEFT__SPIN_BATCH] = {6, 128, 128, 256},
};
static const weft__spin_t busy_polls[] = {
    [WEFT__SPIN_HANDOFF] = {0, 0, 0, 0},
    [WEFT__SPIN_MUTEX] = {2, 0, 32, 64},
    [WEFT__SPIN_BATCH] = {1, 128, 128, 256},
};

/* When the load was last sampled, and what the last two samples said (bit
 * 0 the latest, set if busy): busy as soon as one sample says so, idle
 * again after two in a row say not, so that polling stops at once when the
 * machine fills and a lone sample that missed the load does not restart it. */
#define SAMPLE_NS 20000000LL
static _Atomic int64_t sampled_at;
static _Atomic uint32_t verdicts;

bool weft__spin_busy(void)
{
    return atomic_load_explicit(&verdicts, memory_order_relaxed) != 0;
}

/* A task's looks for a lock's holder: few, since its loop's other tasks
 * wait meanwhile (Go's waiter looks four times). */
enum { TASK_POLLS = 4 };

static bool polling_pays(void)
{
    return !weft__parker && weft__spin_pays();
}

static bool task_polling_pays(enum weft__spin_kind kind)
{
    struct weft__parker *p = weft__parker;
    return kind == WEFT__SPIN_MUTEX && p->may_poll && p->may_poll(p) && weft__spin_pays();
}

void weft__spin_setup(weft__spin_t *s, enum weft__spin_kind kind)
{
    bool task = weft__parker != NULL;
    if (task ? !task_polling_pays(kind) : !polling_pays()) {
        *s = (weft__spin_t){0, 0, 0, 0};
        return;
    }
    *s = weft__spin_busy() ? busy_polls[kind] : idle_polls[kind];
    if (task && s->polls > TASK_POLLS)
        s->polls = TASK_POLLS;
}

void weft__spin_begin_n(weft__spin_t *s, enum weft__spin_kind kind, uint32_t polls)
{
    weft__spin_begin(s, kind);
    uint32_t most = weft__spin_busy() ? s->polls : UINT16_MAX;
    s->polls = (uint16_t)(!polling_pays() ? 0 : polls < most ? polls : most);
}

/* Runnable threads on the machine, from /proc/loadavg ("0.50 0.40 0.30
 * 3/456 789": the 3), or -1. */
int (*weft__spin_open)(const char *path, int flags) = weft__real_open;

static int runnable(void)
{
    char buf[128];
    if (weft__read_text(weft__spin_open, "/proc/loadavg", buf, sizeof buf) <= 0)
        return -1;
    const char *p = buf;
    for (int field = 0; field < 3 && p; field++)
        if ((p = strchr(p, ' ')))
            p++;
    return p && *p >= '0' && *p <= '9' ? atoi(p) : -1;
}

static int cpus_online(void)
{
    static _Atomic int n;
    int c = atomic_load_explicit(&n, memory_order_relaxed);
    if (c == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        c = online > 0 ? (int)online : 1;
        atomic_store_explicit(&n, c, memory_order_relaxed);
    }
    return c;
}

static int64_t coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void weft__spin_sample(void)
{
    if (!weft__spin_pays())
        return; /* one CPU: nothing to decide */
    int64_t now = coarse_now(), last = atomic_load_explicit(&sampled_at, memory_order_relaxed);
    if (now - last < SAMPLE_NS ||
        !atomic_compare_exchange_strong_explicit(&sampled_at, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return; /* sampled lately, or another thread is sampling now */
    int r = runnable();
    if (r < 0)
        return;
    uint32_t v = atomic_load_explicit(&verdicts, memory_order_relaxed);
    v = (v << 1 | (r - 1 >= cpus_online())) & 3; /* r - 1: all but the sampler */
    atomic_store_explicit(&verdicts, v, memory_order_relaxed);
}

/* Pauses first even on a busy machine: the thread being waited out is
 * between two steps a few instructions apart, so it is almost always
 * running, and a yield is dear there. Under EEVDF a thread that yields
 * while a busy loop shares its CPU gets it back only at the next tick (4 ms
 * at HZ=250); measured, a queue consumer that yielded at once waited 3.9 ms
 * per yield for an item its producer published nanoseconds later. */
void weft__stall(weft__stall_t *s)
{
    if (s->pauses > 256 || !weft__spin_pays()) {
        sched_yield();
        return;
    }
    for (uint32_t i = 0; i < s->pauses; i++)
        weft__cpu_relax();
    s->pauses *= 2;
}
