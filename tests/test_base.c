/* Tests for the base layer: error names, deadlines, sleep, futex, CPU count,
 * birth ids (with pidfs, by start time, without /proc), fault injection. */
#include "base/base.h"
#include "base/evc.h"
#include "base/park.h"
#include "birth.h"
#include "wt.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    /* Codes weft passes on from the system, in weft's words all the same. */
    WT_CHECK(strncmp(weft_strerror(-EINTR), "EINTR: ", 7) == 0);
    WT_CHECK(strncmp(weft_strerror(-ESRCH), "ESRCH: ", 7) == 0);
    WT_CHECK(strncmp(weft_strerror(-ENOSYS), "ENOSYS: ", 8) == 0);
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

WT_CASE(park_value_mismatch_returns_at_once)
{
    _Atomic uint32_t word = 5;
    WT_EQ(weft__park(&word, 4, WEFT__NEVER, 0), 0);
    WT_EQ(weft__park(&word, 4, WEFT__NEVER, WEFT__PARK_SHARED), 0);
}

WT_CASE(park_deadline_never_early)
{
    _Atomic uint32_t word = 0;
    weft__deadline_t d;
    weft__deadline(0.03, &d);
    int rc;
    /* Loop as callers do: spurious returns are allowed, early timeouts not. */
    while ((rc = weft__park(&word, 0, d, 0)) == 0)
        ;
    WT_EQ(rc, -ETIMEDOUT);
    WT_CHECK(weft__now_ns() >= d);
    weft__deadline(0, &d);
    WT_EQ(weft__park(&word, 0, d, WEFT__PARK_SHARED), -ETIMEDOUT);
}

struct waker {
    _Atomic uint32_t word;
    bool shared;
};

static void *wake_later(void *arg)
{
    struct waker *w = arg;
    atomic_store(&w->word, 1);
    weft__unpark(&w->word, 1, w->shared ? WEFT__PARK_SHARED : 0);
    return NULL;
}

WT_CASE(unpark_releases_parked_thread)
{
    for (int shared = 0; shared < 2; shared++) {
        struct waker w = {0, shared};
        pthread_t th;
        WT_EQ(pthread_create(&th, NULL, wake_later, &w), 0);
        while (atomic_load(&w.word) == 0)
            weft__park(&w.word, 0, WEFT__NEVER, shared ? WEFT__PARK_SHARED : 0);
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
    int fds[2];
    double waited_futex, waited_sleep, waited_poll;
};

static void *wait_through_signals(void *arg)
{
    struct interrupted *w = arg;
    double t0 = wt_now(); /* before the deadline is set, never after */
    weft__deadline_t d;
    weft__deadline(0.1, &d);
    while (weft__park(&w->word, 0, d, 0) == 0)
        ;
    w->waited_futex = wt_now() - t0;
    t0 = wt_now();
    weft_sleep(0.1);
    w->waited_sleep = wt_now() - t0;
    t0 = wt_now();
    weft__deadline(0.1, &d);
    if (weft__park_fd(w->fds[0], WEFT_READABLE, d, 0) == 0)
        w->waited_poll = wt_now() - t0;
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
    WT_EQ(pipe(w.fds), 0);
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
    WT_CHECK(w.waited_poll >= 0.1);
    close(w.fds[0]);
    close(w.fds[1]);
}

WT_CASE(park_fd_to_a_deadline)
{
    int fds[2];
    WT_EQ(pipe(fds), 0);
    weft__deadline_t d;
    weft__deadline(0, &d);
    WT_EQ(weft__park_fd(fds[0], WEFT_READABLE, d, 0), 0); /* try once */
    weft__deadline(0.03, &d);
    WT_EQ(weft__park_fd(fds[0], WEFT_READABLE, d, 0), 0);
    WT_CHECK(weft__now_ns() >= d); /* never early */
    WT_EQ(write(fds[1], "x", 1), 1);
    WT_EQ(weft__park_fd(fds[0], WEFT_READABLE, WEFT__NEVER, 0), 1);
    /* Further away than poll's milliseconds reach (24 days). */
    WT_EQ(weft__park_fd(fds[0], WEFT_READABLE, weft__now_ns() + 30LL * 86400 * 1000000000, 0), 1);
    close(fds[0]);
    close(fds[1]);
}

/* --- eventcounts ---------------------------------------------------------- */

WT_CASE(evc_notifiers_skip_while_a_wakeup_is_on_its_way)
{
    weft__evc_t e = {0};
    weft__evc_notify(&e); /* nobody registered: nothing at all */
    WT_EQ(e.seq, 0);
    weft__evc_wake_one(&e);
    WT_EQ(e.seq, 1);
    WT_EQ(e.pending, 1);
    weft__evc_wake_one(&e); /* one on its way already: no second bump */
    WT_EQ(e.seq, 1);
    weft__evc_wake_all(&e); /* broadcasts do not wait for it */
    WT_EQ(e.seq, 2);
}

struct slot {
    weft__evc_t evc;
    _Atomic int items;
};

static int take_item(void *arg)
{
    struct slot *s = arg;
    int n = atomic_load(&s->items);
    while (n > 0)
        if (atomic_compare_exchange_weak(&s->items, &n, n - 1))
            return 0;
    return -EAGAIN;
}

static bool items_left(void *arg)
{
    return atomic_load(&((struct slot *)arg)->items) > 0;
}

static void *put_items(void *arg)
{
    struct slot *s = arg;
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&s->items, 1);
        weft__evc_notify(&s->evc);
    }
    return NULL;
}

/* With one CPU to run on, spinning cannot pay (the partner cannot run
 * meanwhile): waiters go to sleep at once and still miss no item. */
WT_CASE(one_cpu_never_spins_and_loses_nothing)
{
    wt_pin_to_one_cpu();
    WT_CHECK(!weft__spin_pays());
    struct slot s = {0};
    pthread_t th;
    WT_EQ(pthread_create(&th, NULL, put_items, &s), 0);
    weft__deadline_t d;
    weft__deadline(60, &d);
    for (int i = 0; i < 1000; i++)
        WT_EQ(weft__evc_wait(&s.evc, take_item, items_left, &s, d), 0);
    WT_EQ(pthread_join(th, NULL), 0);
    weft__deadline(0.01, &d);
    WT_EQ(weft__evc_wait(&s.evc, take_item, items_left, &s, d), -ETIMEDOUT);
    WT_EQ(s.evc.waiters, 0);
    weft__stall_t stall = WEFT__STALL_INIT;
    weft__stall(&stall); /* yields instead of pausing */
    WT_EQ(stall.pauses, 1);
}

static int proc_error = ENOENT;

/* /proc unreadable (EACCES), or unmounted (a chroot, say), which shows as
 * ENOENT, the same error as for a thread that has ended. */
static int no_proc(const char *path, int flags)
{
    (void)path, (void)flags;
    errno = proc_error;
    return -1;
}

/* The CPU count tests read no cgroup files (no_proc), so that the count is
 * the mask's alone, whatever quota the machine has (test_quota's part). */
WT_CASE(cpu_count_follows_affinity)
{
    weft__sys.open = no_proc;
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
    weft__sys_reset();
}

/* A machine of 4096 CPUs, every other one ours: the kernel refuses masks
 * smaller than its own (EINVAL), so the count must grow the mask. */
static int affinity_of_4096(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid;
    if (size < CPU_ALLOC_SIZE(4096)) {
        errno = EINVAL;
        return -1;
    }
    CPU_ZERO_S(size, set);
    for (int cpu = 0; cpu < 4096; cpu += 2)
        CPU_SET_S(cpu, size, set);
    return 0;
}

static int affinity_refused(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid, (void)size, (void)set;
    errno = EPERM; /* a seccomp filter, say */
    return -1;
}

static int affinity_too_big(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid, (void)size, (void)set;
    errno = EINVAL; /* no mask is ever big enough */
    return -1;
}

static int affinity_empty(pid_t pid, size_t size, cpu_set_t *set)
{
    (void)pid;
    CPU_ZERO_S(size, set);
    return 0;
}

WT_FAULT(cpu_count_grows_the_mask_and_falls_back)
{
    weft__sys.open = no_proc;
    weft__sys.sched_getaffinity = affinity_of_4096;
    WT_EQ(weft_cpu_count(), 2048);
    /* Without a mask: the CPUs online. */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    weft__sys.sched_getaffinity = affinity_refused;
    WT_EQ(weft_cpu_count(), online);
    weft__sys.sched_getaffinity = affinity_too_big;
    WT_EQ(weft_cpu_count(), online);
    weft__sys.sched_getaffinity = sched_getaffinity;
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_cpu_count(), online);
    weft__sys.calloc = calloc;
    /* Never 0, whatever the kernel says. */
    weft__sys.sched_getaffinity = affinity_empty;
    WT_EQ(weft_cpu_count(), 1);
    weft__sys_reset();
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
    /* A size that rounds past SIZE_MAX is refused, not wrapped to a few
     * bytes. */
    WT_CHECK(weft__calloc_lines(SIZE_MAX - 8) == NULL);
    void *p = weft__calloc_lines(1);
    WT_CHECK(p && (uintptr_t)p % WEFT__CACHE_LINE == 0);
    free(p);
}

/* --- birth ids ------------------------------------------------------------ */

/* A thread that reports its ids and lives until told to end. */
struct born {
    wt_gate go;
    _Atomic pid_t tid;
    _Atomic uint64_t birth;
    pthread_t th;
};

static void *live_until_told(void *arg)
{
    struct born *b = arg;
    atomic_store(&b->birth, weft__birth());
    atomic_store(&b->tid, weft__gettid());
    wt_gate_wait(&b->go);
    return NULL;
}

static bool has_tid(void *arg)
{
    return atomic_load(&((struct born *)arg)->tid) != 0;
}

static void be_born(struct born *b)
{
    *b = (struct born){.go = WT_GATE_INIT};
    WT_EQ(pthread_create(&b->th, NULL, live_until_told, b), 0);
    wt_wait_until(has_tid, b, 30);
}

static bool task_gone(void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)atomic_load((_Atomic pid_t *)arg));
    return access(path, F_OK) != 0;
}

/* End the thread and wait until the kernel has let its id go. */
static void end_born(struct born *b)
{
    wt_gate_open(&b->go);
    WT_EQ(pthread_join(b->th, NULL), 0);
    wt_wait_until(task_gone, &b->tid, 30);
}

/* A child process that has exited and is not reaped yet: a zombie. */
static pid_t zombie(void)
{
    pid_t child = fork();
    WT_CHECK(child >= 0);
    if (child == 0)
        weft__exit_now(0);
    siginfo_t si;
    WT_EQ(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
    return child;
}

/* What tid.c promises whichever kind of birth id the process uses: a live
 * thread has one, the same every time, which its own thread sees too; an
 * ended thread and a zombie are dead. `kind` is WT_TICKS_KIND for start
 * times, which two threads born in the same tick share. */
static void check_birth_ids(uint64_t kind)
{
    uint64_t me = weft__birth(), id;
    WT_CHECK(me != 0 && (me & WT_TICKS_KIND) == kind);
    WT_EQ(weft__birth_of(weft__gettid(), &id), 1);
    WT_CHECK(id == me);
    struct born b;
    be_born(&b);
    WT_EQ(weft__birth_of(b.tid, &id), 1);
    WT_CHECK(id == b.birth && (id & WT_TICKS_KIND) == kind);
    WT_CHECK(kind ? id >= me : id != me);
    /* A name that mimics the end of /proc's name field and a zombie's
     * state fools nobody. */
    WT_EQ(pthread_setname_np(b.th, "x) Z 1 2 3"), 0);
    WT_EQ(weft__birth_of(b.tid, &id), 1);
    WT_CHECK(id == b.birth);
    end_born(&b);
    id = 1;
    WT_EQ(weft__birth_of(b.tid, &id), 0);
    WT_CHECK(id == 0);
    pid_t child = zombie();
    WT_EQ(weft__birth_of(child, &id), 0);
    WT_EQ(waitpid(child, NULL, 0), child);
}

WT_CASE(birth_ids_name_threads_for_life)
{
    if (weft__birth() & WT_TICKS_KIND)
        wt_skip("the kernel has no pidfs (Linux 6.9): birth ids are start times");
    check_birth_ids(0);
}

WT_CASE(birth_ids_fall_back_to_start_times_without_pidfs)
{
    wt_birth_by_start_time();
    check_birth_ids(WT_TICKS_KIND);
    /* Clock ticks since boot, as /proc counts them. */
    struct timespec ts;
    WT_EQ(clock_gettime(CLOCK_BOOTTIME, &ts), 0);
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t now = (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)(ts.tv_nsec / (1000000000 / hz));
    WT_CHECK((weft__birth() & ~WT_TICKS_KIND) <= now);
}

static int pidfd_out_of_fds(pid_t pid, unsigned flags)
{
    (void)pid, (void)flags;
    errno = EMFILE;
    return -1;
}

/* Out of descriptors for a pidfd: /proc still tells a live thread from an
 * ended one, but its start time is no pidfs id to compare, so none. */
WT_FAULT(birth_of_without_a_pidfd_asks_proc)
{
    uint64_t kind = weft__birth() & WT_TICKS_KIND, id;
    struct born b;
    be_born(&b);
    weft__sys.pidfd_open = pidfd_out_of_fds;
    WT_EQ(weft__birth_of(b.tid, &id), 1);
    WT_CHECK(id == (kind ? b.birth : 0));
    end_born(&b);
    WT_EQ(weft__birth_of(b.tid, &id), 0);
    weft__sys_reset();
}

/* Whether this kernel's pidfds carry birth ids (pidfs, Linux 6.9). */
static bool kernel_has_pidfs(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    struct statfs fs;
    bool ok = fd >= 0 && fstatfs(fd, &fs) == 0 && fs.f_type == 0x50494446;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Out of descriptors at the first look says nothing about the kernel: the
 * process must not settle on start times then, while every other process
 * names threads by pidfs inodes (each side would take the other's live
 * lock owners for dead, the two kinds never matching). */
WT_FAULT(birth_kind_is_not_decided_out_of_descriptors)
{
    if (!kernel_has_pidfs())
        wt_skip("the kernel has no pidfs (Linux 6.9)");
    uint64_t id;
    weft__sys.pidfd_open = pidfd_out_of_fds;
    WT_EQ(weft__birth_of(weft__gettid(), &id), 1);
    WT_CHECK(id == 0);
    weft__sys_reset();
    WT_CHECK(weft__birth() != 0 && !(weft__birth() & WT_TICKS_KIND));
}

/* Without /proc only kill(tid, 0) is left: a live thread counts as alive
 * with no id to compare (so its lock is never taken from it), an ended one
 * as dead, and a zombie, which kill cannot tell, as alive until reaped. */
WT_FAULT(birth_of_without_proc_asks_kill)
{
    wt_birth_by_start_time();
    int errors[] = {EACCES, ENOENT};
    for (int i = 0; i < 2; i++) {
        struct born b;
        be_born(&b);
        uint64_t id = 1;
        proc_error = errors[i];
        weft__sys.open = no_proc;
        WT_EQ(weft__birth_of(b.tid, &id), 1);
        WT_CHECK(id == 0);
        WT_EQ(weft__birth_of(weft__gettid(), &id), 1);
        end_born(&b);
        WT_EQ(weft__birth_of(b.tid, &id), 0);
        pid_t child = zombie();
        WT_EQ(weft__birth_of(child, &id), 1);
        WT_EQ(waitpid(child, NULL, 0), child);
        WT_EQ(weft__birth_of(child, &id), 0);
        weft__sys_reset();
    }
}

static struct born *ending;

/* Open the thread's stat file, then let the thread end before it is read. */
static int open_then_end(const char *path, int flags)
{
    int fd = open(path, flags);
    end_born(ending);
    return fd;
}

WT_FAULT(birth_of_a_thread_that_ends_while_asked)
{
    wt_birth_by_start_time();
    struct born b;
    be_born(&b);
    ending = &b;
    weft__sys.open = open_then_end;
    uint64_t id = 1;
    WT_EQ(weft__birth_of(b.tid, &id), 0);
    WT_CHECK(id == 0);
    weft__sys_reset();
}
