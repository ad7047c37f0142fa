/*
 * Spinning before parking: whether to, and how long, decided in one place.
 *
 * A waiter whose partner is running on another CPU gets its answer in
 * microseconds; polling for it costs neither side a system call, where
 * parking costs the waiter a sleep and its waker a wake-up (about 5 us
 * between them, and far more on a busy machine). So every primitive polls
 * a little before it parks (before it registers as a sleeper, so that its
 * waker still needs no system call), through this loop:
 *
 *     weft__spin_t s;
 *     for (weft__spin_begin(&s, WEFT__SPIN_HANDOFF); weft__spin_next(&s);)
 *         if (try()) return 0;
 *     ... register, park ...
 *
 * Between looks the pause doubles up to a maximum: a waiter that looked
 * constantly would pull the word's cache line away from the thread that
 * works on it on every look, so each of that thread's own accesses would
 * miss; looked at rarely, it runs many from its own cache between two.
 * How a waiter polls depends on what it waits for (the kinds below); whether
 * it polls at all, and how often, depends on the machine:
 *
 * - One CPU to run on (the affinity mask, the cgroup quota): never. The
 *   partner cannot run while we poll (weft__spin_pays).
 * - A busy machine: barely. When more threads are runnable than there are
 *   CPUs, a poller burns the time slice its partner is queued for; and the
 *   scheduler, seeing a thread that never sleeps, stops treating it as
 *   interactive, so once it does sleep its wake-up waits behind the other
 *   work. Measured with two busy loops on two CPUs: a Condition ping-pong
 *   that polled for 18 us took 50 us per round, against pthread's 9 us that
 *   sleeps at once. So hand-offs park at once. A waiter for a Lock still
 *   polls twice (its holder is usually running: the critical section is
 *   short). A queue's waiter looks once, a few microseconds late: its
 *   partner streams. A consumer that has just emptied the queue while its
 *   producer runs finds the next batch there, where parking at once made it
 *   sleep after every few dozen items and its producer pay a wake-up each
 *   time (perf sched: a wake-up every 30 us). One producer and one consumer
 *   beside two busy loops, medians of 10 runs: 97 ns an item against 115,
 *   and 158 against 224 in a noisier hour; two looks were no better. The
 *   kind is every eventcount's (evc.h), so the pool's idle workers and
 *   waits for futures look once too, at a few microseconds per sleep.
 *
 * "Busy" is what the kernel says: the number of runnable threads on the
 * whole machine (/proc/loadavg's fourth field, the scheduler's nr_running),
 * less the caller, against the CPUs online. It is sampled by a thread that
 * is about to park anyway (weft__spin_sample, from the park path), at most
 * every 20 ms, so it costs a poller nothing and a sleeper one read of the
 * coarse clock. One busy sample stops polling; two idle ones in a row
 * restart it. The count is the whole machine's against all its CPUs, so a
 * process pinned to a few idle CPUs of a busy host polls less than it
 * could, and one whose cgroup quota is spent on an idle host more: the
 * kernel offers no cheap count per CPU set or per cgroup. Parking is also what ends a stale verdict:
 * while polls succeed nobody parks and nothing needs to change; once the
 * machine fills, polls fail, waiters park, and the next sample says busy.
 * The alternatives weighed, and why not them:
 * - the kernel's rule, spin while the lock's owner runs: user space cannot
 *   see whether another thread is on a CPU without a system call per poll;
 * - glibc's adaptive mutex, a moving average of past spins: it learns how
 *   long a critical section takes, not whether the machine has room, and
 *   keeps polling on a full machine as long as polls eventually succeed;
 * - Go's rule, spin only while some processor is idle: the right question,
 *   which Go can answer for its own scheduler only; the kernel's count of
 *   runnable threads answers it for the machine, other processes included;
 * - a poll that took far longer than polls take (the poller was preempted):
 *   a sure sign, but a late one, as a time slice is already lost.
 */
#ifndef WEFT_SRC_BASE_SPIN_H
#define WEFT_SRC_BASE_SPIN_H

#include "base/park.h"

/* What a waiter waits for, which says how it should poll. */
enum weft__spin_kind {
    /* A partner's answer (a semaphore, a condition, a barrier, a future):
     * look at once, then after 1, 2, 4 ... 64 pauses, 16 looks in all
     * (about 18 us, the cost of a sleep and its wake-up). */
    WEFT__SPIN_HANDOFF,
    /* A lock's holder to leave: look at once, then from 32 pauses on. Each
     * look pulls the lock's cache line from a holder that may take it
     * again and again; looking every microsecond rather than every few
     * nanoseconds doubled the throughput of two threads on one Lock. */
    WEFT__SPIN_MUTEX,
    /* A producer to fill a queue (and every other eventcount's waiter: an
     * idle pool worker, a wait for futures): first after 128 pauses, then
     * every 256, six looks in all. A consumer that looked at once would take
     * each item the moment it lands and trade cache lines with the producer
     * item by item; one that looks a few microseconds later takes a batch
     * (evc.c measures). The looks must span a sleep and its wake-up (about
     * 18 us here): two threads answering each other through two queues
     * that polled for less (two looks, 5 us on a CPU whose pause takes 13
     * ns) stayed in step only until one of them slept once; from then on
     * each found the other asleep and slept too, and a round trip took 6 to
     * 82 us from run to run. With six, 3-8 us. */
    WEFT__SPIN_BATCH,
};

typedef struct weft__spin {
    uint16_t polls; /* looks left */
    uint16_t pause; /* pauses before the next look */
    uint16_t first; /* the pause after a first look made at once */
    uint16_t max;   /* the longest pause */
} weft__spin_t;

/* Set up the polls for `kind`, as many as the machine allows now (none on
 * one CPU, fewer when it is busy). A task polls only for a lock's holder
 * (WEFT__SPIN_MUTEX), only a few times, and only while its parker says
 * other threads run tasks of its run: what else it waits for, and a holder
 * when no other thread runs, may be another task of its own loop, which
 * cannot run until it parks. A loop running alone is told inline, since
 * every wait of a task comes here. */
void weft__spin_setup(weft__spin_t *s, enum weft__spin_kind kind);
static inline void weft__spin_begin(weft__spin_t *s, enum weft__spin_kind kind)
{
    if (weft__parker && !weft__parker->may_poll)
        *s = (weft__spin_t){0, 0, 0, 0};
    else
        weft__spin_setup(s, kind);
}

/* The same with the caller's own number of polls (a critical section's
 * spin count) in place of the kind's: all of them while the machine has
 * room, no more than the kind's busy share when it is busy. */
void weft__spin_begin_n(weft__spin_t *s, enum weft__spin_kind kind, uint32_t polls);

/* Before each look: pause (doubling the pause up to its maximum) and say
 * whether to look again; false once the polls are spent. */
static inline bool weft__spin_next(weft__spin_t *s)
{
    if (s->polls == 0)
        return false;
    s->polls--;
    for (uint32_t k = 0; k < s->pause; k++)
        weft__cpu_relax();
    s->pause = s->pause == 0 ? s->first : s->pause * 2 > s->max ? s->max : s->pause * 2;
    return true;
}

/* Is the machine busy (more runnable threads than CPUs), as last sampled? */
bool weft__spin_busy(void);

/* Called by a thread about to sleep: take a new sample of the machine's
 * load if the last is older than the sampling interval. */
void weft__spin_sample(void);

/* How the sampler opens /proc/loadavg: the C library's open, not the
 * fault-injection table's (it runs in whichever thread parks, while a test
 * may be changing the table); tests point it at a file of their own. */
extern int (*weft__spin_open)(const char *path, int flags);

#endif /* WEFT_SRC_BASE_SPIN_H */
