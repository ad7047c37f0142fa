/* Tests for the spin policy (base/spin.h): polls follow the machine's load
 * as sampled from /proc/loadavg (here a file of the test's own), and the
 * hand-offs lose no wake-up and stay quick on a machine kept busy. */
#include "base/park.h"
#include "base/spin.h"
#include "threads.h"
#include "wt.h"
#include <weft/queue.h>
#include <weft/sync.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- the sampled load ------------------------------------------------------ */

static char loadavg[64] = "/tmp/weft-loadavg-XXXXXX";
static _Atomic int opens;

static int open_fake(const char *path, int flags)
{
    WT_CHECK(strcmp(path, "/proc/loadavg") == 0);
    atomic_fetch_add(&opens, 1);
    return open(loadavg, flags);
}

/* Make the fake say that `runnable` threads are runnable. */
static void set_runnable(long runnable)
{
    char text[64];
    int n = snprintf(text, sizeof text, "1.00 0.50 0.25 %ld/300 4242\n", runnable);
    int fd = open(loadavg, O_WRONLY | O_TRUNC);
    WT_CHECK(fd >= 0 && write(fd, text, (size_t)n) == n);
    close(fd);
}

/* Sample once the interval (20 ms) has surely passed on the coarse clock.
 * Slept with nanosleep, not weft_sleep: a park samples too, and the test
 * counts samples. */
static void sample_later(void)
{
    struct timespec ts = {0, 30000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    weft__spin_sample();
}

static uint16_t polls(enum weft__spin_kind kind)
{
    weft__spin_t s;
    weft__spin_begin(&s, kind);
    return s.polls;
}

static long online(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN);
}

static void fake_loadavg(void)
{
    if (!weft__spin_pays())
        exit(WT_SKIP_CODE); /* one CPU: never polls, nothing to decide */
    int fd = mkstemp(loadavg);
    WT_CHECK(fd >= 0);
    close(fd);
    weft__spin_open = open_fake;
}

WT_CASE(polls_stop_when_the_machine_is_busy_and_resume_when_idle)
{
    fake_loadavg();
    set_runnable(1); /* the sampler alone */
    sample_later();
    WT_CHECK(!weft__spin_busy());
    WT_EQ(polls(WEFT__SPIN_HANDOFF), 16);
    WT_EQ(polls(WEFT__SPIN_MUTEX), 16);
    WT_EQ(polls(WEFT__SPIN_BATCH), 6);
    /* As many others runnable as CPUs: a poller would take one's place. */
    set_runnable(online() + 1);
    sample_later();
    WT_CHECK(weft__spin_busy());
    WT_EQ(polls(WEFT__SPIN_HANDOFF), 0);
    WT_EQ(polls(WEFT__SPIN_BATCH), 1); /* a queue's partner streams: one late look */
    WT_CHECK(polls(WEFT__SPIN_MUTEX) > 0 && polls(WEFT__SPIN_MUTEX) < 16);
    /* One idle sample is not enough to poll again, two are. */
    set_runnable(online());
    sample_later();
    WT_CHECK(weft__spin_busy());
    sample_later();
    WT_CHECK(!weft__spin_busy());
    WT_EQ(polls(WEFT__SPIN_HANDOFF), 16);
    unlink(loadavg);
}

/* A task polls only for a lock's holder, no more than four times, and only
 * while its parker says other threads run its run's tasks (M:N mode): the
 * holder may be running there. Else it parks at once, for what it waits
 * for may be a task of its own loop, which cannot run until it parks. */
static bool others_run;

static bool fake_may_poll(struct weft__parker *p)
{
    (void)p;
    return others_run;
}

static struct weft__parker alone = {NULL, NULL, NULL, NULL};
static struct weft__parker beside = {NULL, NULL, NULL, fake_may_poll};

WT_CASE(a_task_polls_for_a_lock_only_while_other_threads_run_tasks)
{
    fake_loadavg();
    set_runnable(1);
    sample_later();
    sample_later();
    WT_CHECK(!weft__spin_busy());
    weft__parker = &alone;
    WT_EQ(polls(WEFT__SPIN_MUTEX), 0);
    WT_EQ(polls(WEFT__SPIN_HANDOFF), 0);
    weft__parker = &beside;
    others_run = false;
    WT_EQ(polls(WEFT__SPIN_MUTEX), 0);
    others_run = true;
    WT_EQ(polls(WEFT__SPIN_MUTEX), 4);
    WT_EQ(polls(WEFT__SPIN_HANDOFF), 0);
    WT_EQ(polls(WEFT__SPIN_BATCH), 0);
    set_runnable(online() + 1); /* busy: the kind's busy share, if fewer */
    sample_later();
    WT_CHECK(weft__spin_busy());
    uint16_t busy = polls(WEFT__SPIN_MUTEX);
    WT_CHECK(busy > 0 && busy <= 4);
    weft__parker = NULL;
    WT_CHECK(polls(WEFT__SPIN_MUTEX) >= busy);
    unlink(loadavg);
}

/* A thread caught between two steps of another's lock-free operation
 * pauses before it yields, busy machine or not: the other is almost always
 * running, and a yield beside a busy loop costs a scheduler tick. A stall
 * that paused doubles its pauses; one that yielded leaves them. */
WT_CASE(a_stall_pauses_before_it_yields_even_when_busy)
{
    fake_loadavg();
    set_runnable(online() + 1);
    sample_later();
    WT_CHECK(weft__spin_busy());
    weft__stall_t s = WEFT__STALL_INIT;
    weft__stall(&s);
    WT_EQ(s.pauses, 2);
    for (int i = 0; i < 8; i++)
        weft__stall(&s);
    WT_EQ(s.pauses, 512); /* past 256 pauses: from now on it yields */
    weft__stall(&s);
    WT_EQ(s.pauses, 512);
    unlink(loadavg);
}

WT_CASE(a_caller_spin_count_is_capped_only_when_busy)
{
    fake_loadavg();
    weft__spin_t s;
    set_runnable(1);
    sample_later();
    weft__spin_begin_n(&s, WEFT__SPIN_MUTEX, 4000);
    WT_EQ(s.polls, 4000);
    weft__spin_begin_n(&s, WEFT__SPIN_MUTEX, 0);
    WT_EQ(s.polls, 0);
    set_runnable(2 * online() + 1);
    sample_later();
    weft__spin_begin_n(&s, WEFT__SPIN_MUTEX, 4000);
    WT_EQ(s.polls, polls(WEFT__SPIN_MUTEX));
    unlink(loadavg);
}

WT_CASE(the_load_is_sampled_by_parks_at_most_every_interval)
{
    fake_loadavg();
    set_runnable(1);
    _Atomic uint32_t word = 0;
    weft__deadline_t d;
    weft__deadline(0.03, &d);
    WT_EQ(weft__park(&word, 0, d, 0), -ETIMEDOUT); /* may wake early: loop */
    while (weft__park(&word, 0, d, 0) != -ETIMEDOUT)
        ;
    int first = atomic_load(&opens);
    WT_CHECK(first >= 1);
    /* Parks in quick succession do not read it again. */
    for (int i = 0; i < 100; i++)
        weft__park(&word, 1, WEFT__NEVER, 0); /* word differs: returns at once */
    WT_CHECK(atomic_load(&opens) <= first + 1);
    unlink(loadavg);
}

WT_CASE(an_unreadable_load_changes_nothing)
{
    fake_loadavg();
    set_runnable(2 * online() + 1);
    sample_later();
    WT_CHECK(weft__spin_busy());
    int fd = open(loadavg, O_WRONLY | O_TRUNC);
    WT_CHECK(fd >= 0 && write(fd, "garbage\n", 8) == 8);
    close(fd);
    sample_later();
    sample_later();
    WT_CHECK(weft__spin_busy());
    unlink(loadavg);
    sample_later(); /* the file is gone */
    sample_later();
    WT_CHECK(weft__spin_busy());
}

/* --- which CPUs the process's threads have ------------------------------- */

/* The i-th CPU this process may use, or skip the case if it has fewer than
 * two, or a quota that forbids spinning anyway. */
static int usable_cpu(int i)
{
    cpu_set_t set;
    WT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    if (CPU_COUNT(&set) < 2 || !weft__quota_lets_spin(weft__sys.open))
        exit(WT_SKIP_CODE);
    for (int cpu = 0;; cpu++)
        if (CPU_ISSET(cpu, &set) && i-- == 0)
            return cpu;
}

static void pin_to(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    WT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
}

struct pinned {
    int cpu;
    bool wake; /* wake a word instead of asking */
    bool pays; /* what the thread was told */
};

static void *ask_pinned(void *arg)
{
    struct pinned *p = arg;
    pin_to(p->cpu);
    static _Atomic uint32_t word;
    if (p->wake)
        weft__unpark(&word, 1, 0);
    else
        p->pays = weft__spin_pays();
    return NULL;
}

static bool ask_on(int cpu, bool wake)
{
    struct pinned p = {cpu, wake, false};
    pthread_t t;
    WT_EQ(pthread_create(&t, NULL, ask_pinned, &p), 0);
    WT_EQ(pthread_join(t, NULL), 0);
    return p.pays;
}

/* A program that pins each thread to a CPU of its own has threads of one
 * CPU each and a process of several: it spins once two threads on two
 * CPUs have shown themselves, where a thread's own mask said never. */
WT_CASE(threads_pinned_to_different_cpus_spin)
{
    int a = usable_cpu(0), b = usable_cpu(1);
    pin_to(a);
    WT_CHECK(!weft__spin_pays());
    WT_CHECK(!ask_on(a, false)); /* another thread, the same CPU */
    WT_CHECK(!weft__spin_pays());
    WT_CHECK(ask_on(b, false));
    WT_CHECK(weft__spin_pays());
}

/* A thread that only wakes others (a producer that never waits) shows its
 * CPU too: its consumer, pinned elsewhere, may spin for it. */
WT_CASE(a_thread_that_only_wakes_counts_its_cpu)
{
    int a = usable_cpu(0), b = usable_cpu(1);
    pin_to(a);
    WT_CHECK(!weft__spin_pays());
    ask_on(b, true);
    WT_CHECK(weft__spin_pays());
}

static int one_cpu_child(void *arg)
{
    int cpu = *(int *)arg;
    pin_to(cpu); /* the forking thread is all there is now, on one CPU */
    if (weft__spin_pays() || ask_on(cpu, false) || weft__spin_pays())
        return 1;
    return 0;
}

/* A fork's child has only the forking thread: what the parent's threads
 * showed must not make a child whose threads share one CPU spin. */
WT_CASE(a_fork_child_forgets_the_parents_cpus)
{
    int a = usable_cpu(0), b = usable_cpu(1);
    pin_to(a);
    WT_CHECK(!weft__spin_pays());
    WT_CHECK(ask_on(b, false));
    int status = wt_fork(one_cpu_child, &b, 60);
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Threads that all share one CPU never spin however many there are. */
WT_CASE(threads_pinned_to_one_cpu_never_spin)
{
    int b = usable_cpu(1);
    pin_to(b);
    for (int i = 0; i < 4; i++)
        WT_CHECK(!ask_on(b, i % 2));
    WT_CHECK(!weft__spin_pays());
}

/* --- hand-offs on a busy machine ------------------------------------------ */

/* Busy-loop until killed, or until the parent goes. */
_Noreturn static void spin_forever(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    for (volatile unsigned long n = 0;; n++)
        ;
}

/* Processes that keep every CPU busy until stop_load. */
static pid_t start_load(void)
{
    pid_t self = getpid(), pid = fork();
    WT_CHECK(pid >= 0);
    if (pid == 0) {
        pid_t first = getpid();
        for (long i = 1; i < online(); i++)
            if (fork() == 0)
                spin_forever(first);
        spin_forever(self);
    }
    return pid;
}

/* The first busy process; the others follow it (their parent death signal). */
static void stop_load(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

#define ROUNDS (wt_sanitizer() ? 300 : 2000)

static weft_sem_t ping, pong;
static weft_lock_t lock;
static weft_cond_t cond;
static long turn;
static weft_barrier_t barrier;
static weft_queue_t *there, *back;

static void *sem_partner(void *arg)
{
    for (int i = 0; i < ROUNDS; i++) {
        WT_EQ(weft_sem_acquire(&ping, WEFT_FOREVER), 0);
        WT_EQ(weft_sem_release(&pong, 1), 0);
    }
    return arg;
}

static void take_turns(long parity)
{
    weft_lock_acquire(&lock, WEFT_FOREVER);
    for (int i = 0; i < ROUNDS; i++) {
        while (turn % 2 != parity)
            WT_EQ(weft_cond_wait(&cond, WEFT_FOREVER), 0);
        turn++;
        weft_cond_notify(&cond, 1);
    }
    weft_lock_release(&lock);
}

static void *cond_partner(void *arg)
{
    take_turns(1);
    return arg;
}

static void *barrier_partner(void *arg)
{
    for (int i = 0; i < ROUNDS; i++)
        WT_CHECK(weft_barrier_wait(&barrier, WEFT_FOREVER) >= 0);
    return arg;
}

static void *queue_partner(void *arg)
{
    for (long i = 0, v; i < ROUNDS; i++) {
        WT_EQ(weft_queue_get(there, &v, WEFT_FOREVER), 0);
        WT_EQ(v, i);
        WT_EQ(weft_queue_put(back, &v, WEFT_FOREVER), 0);
    }
    return arg;
}

static long counter;
static void *lock_partner(void *arg)
{
    for (int i = 0; i < 50 * ROUNDS; i++) {
        WT_EQ(weft_lock_acquire(&lock, WEFT_FOREVER), 0);
        counter++;
        WT_EQ(weft_lock_release(&lock), 0);
    }
    return arg;
}

WT_STRESS(hand_offs_lose_no_wake_up_on_a_busy_machine)
{
    pid_t load = start_load();
    double t0 = wt_now();
    weft_sem_init(&ping, 0, 0);
    weft_sem_init(&pong, 0, 0);
    weft_thread_t *t = spawn(sem_partner, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        WT_EQ(weft_sem_release(&ping, 1), 0);
        WT_EQ(weft_sem_acquire(&pong, WEFT_FOREVER), 0);
    }
    finish(t);

    weft_lock_init(&lock, 0);
    weft_cond_init(&cond, &lock, 0);
    t = spawn(cond_partner, NULL);
    take_turns(0);
    finish(t);
    WT_EQ(turn, 2 * ROUNDS);

    weft_barrier_init(&barrier, 2, NULL, NULL, WEFT_FOREVER, 0);
    t = spawn(barrier_partner, NULL);
    for (int i = 0; i < ROUNDS; i++)
        WT_CHECK(weft_barrier_wait(&barrier, WEFT_FOREVER) >= 0);
    finish(t);

    WT_EQ(weft_queue_new(&there, sizeof(long), 1), 0);
    WT_EQ(weft_queue_new(&back, sizeof(long), 1), 0);
    t = spawn(queue_partner, NULL);
    for (long i = 0, v; i < ROUNDS; i++) {
        WT_EQ(weft_queue_put(there, &i, WEFT_FOREVER), 0);
        WT_EQ(weft_queue_get(back, &v, WEFT_FOREVER), 0);
    }
    finish(t);
    weft_queue_free(there);
    weft_queue_free(back);

    t = spawn(lock_partner, NULL);
    lock_partner(NULL);
    finish(t);
    WT_EQ(counter, 100 * ROUNDS);

    bool busy = weft__spin_busy();
    stop_load(load);
    /* About 10 ms per hand-off would be a convoy: on a loaded 2-CPU machine
     * each takes tens of microseconds. */
    double took = wt_now() - t0;
    if (took > 30 * wt_slack())
        fprintf(stderr, "hand-offs took %.1f s\n", took);
    WT_CHECK(took < 30 * wt_slack());
    /* The load was seen, wherever /proc/loadavg can be read. */
    if (weft__spin_pays() && access("/proc/loadavg", R_OK) == 0)
        WT_CHECK(busy);
}
