/* The wt harness (see wt.h). */
#define _GNU_SOURCE
#include "wt.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 256

static struct {
    const char *name;
    wt_fn fn;
} cases[MAX_CASES];
static int ncases;
static const char *current = "?";

void wt_register(const char *name, wt_fn fn)
{
    if (ncases == MAX_CASES) {
        fputs("wt: too many cases\n", stderr);
        abort();
    }
    cases[ncases].name = name;
    cases[ncases].fn = fn;
    ncases++;
}

void wt_fail(const char *file, int line, const char *expr, const char *detail)
{
    fprintf(stderr, "FAIL %s: %s:%d: %s%s%s\n", current, file, line, expr, detail ? ": " : "",
            detail ? detail : "");
    fflush(NULL);
    _exit(1);
}

void wt_fail_eq(const char *file, int line, const char *a, const char *b, long long va,
                long long vb)
{
    char detail[160];
    snprintf(detail, sizeof detail, "%lld != %lld", va, vb);
    char expr[256];
    snprintf(expr, sizeof expr, "%s == %s", a, b);
    wt_fail(file, line, expr, detail);
}

void wt_skip(const char *why)
{
    printf("SKIP %s: %s\n", current, why);
    fflush(NULL);
    _exit(WT_SKIP_CODE);
}

double wt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WT_TSAN 1
#elif __has_feature(address_sanitizer)
#define WT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WT_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define WT_ASAN 1
#endif

int wt_sanitizer(void)
{
#if defined(WT_TSAN)
    return 't';
#elif defined(WT_ASAN)
    return 'a';
#elif defined(WEFT_COVERAGE)
    return 'c'; /* -O0 and atomic counters: as slow as a sanitizer */
#else
    return 0;
#endif
}

double wt_slack(void)
{
    return wt_sanitizer() ? 20.0 : 4.0;
}

void wt_gate_open(wt_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

void wt_gate_wait(wt_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

void wt_wait_until(bool (*pred)(void *arg), void *arg, double seconds)
{
    double end = wt_now() + seconds;
    while (!pred(arg)) {
        if (wt_now() > end)
            wt_fail(__FILE__, __LINE__, "condition not reached in time", NULL);
        sched_yield();
    }
}

struct futex_sleep {
    long pid, tid;
    const void *addr;
};

static bool in_futex_sleep(void *arg)
{
    struct futex_sleep *s = arg;
    char path[64], line[256];
    if (s->pid)
        snprintf(path, sizeof path, "/proc/%ld/task/%ld/syscall", s->pid, s->tid);
    else
        snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", s->tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    long nr;
    unsigned long a0;
    return ok && sscanf(line, "%ld %lx", &nr, &a0) == 2 && nr == SYS_futex &&
           (!s->addr || a0 == (unsigned long)s->addr);
}

void wt_await_futex_sleep(long tid, const void *addr, double seconds)
{
    struct futex_sleep s = {0, tid, addr};
    wt_wait_until(in_futex_sleep, &s, seconds);
}

void wt_await_child_futex_sleep(pid_t pid, const void *addr, double seconds)
{
    struct futex_sleep s = {pid, pid, addr};
    wt_wait_until(in_futex_sleep, &s, seconds);
}

void *wt_no_malloc(size_t size)
{
    (void)size;
    return NULL;
}

void *wt_no_calloc(size_t count, size_t size)
{
    (void)count, (void)size;
    return NULL;
}

void *wt_no_realloc(void *p, size_t size)
{
    (void)p, (void)size;
    return NULL;
}

void *wt_no_aligned_alloc(size_t alignment, size_t size)
{
    (void)alignment, (void)size;
    return NULL;
}

int wt_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        wt_fail(__FILE__, __LINE__, "opendir(/proc/self/fd)", strerror(errno));
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

void *wt_shared_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        wt_fail(__FILE__, __LINE__, "mmap", strerror(errno));
    return p;
}

pid_t wt_spawn(int (*fn)(void *arg), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        wt_fail(__FILE__, __LINE__, "fork", strerror(errno));
    if (pid == 0)
        exit(fn(arg));
    return pid;
}

void wt_pin_to_one_cpu(void)
{
    cpu_set_t set, one;
    WT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    CPU_ZERO(&one);
    for (int cpu = 0; !CPU_COUNT(&one); cpu++)
        if (CPU_ISSET(cpu, &set))
            CPU_SET(cpu, &one);
    WT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
}

int wt_fork(int (*fn)(void *arg), void *arg, double seconds)
{
    return wt_reap(wt_spawn(fn, arg), seconds);
}

int wt_reap(pid_t pid, double seconds)
{
    double end = wt_now() + seconds;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (wt_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            wt_fail(__FILE__, __LINE__, "child did not exit in time", NULL);
        }
        usleep(1000);
    }
    return status;
}

static void run(int i)
{
    current = cases[i].name;
    cases[i].fn();
    printf("ok %s\n", current);
    fflush(stdout);
}

/* Every case in a process of its own, as under CTest, so cases never see
 * each other's state; returns how many failed. */
static int run_all(void)
{
    int failed = 0, skipped = 0;
    for (int i = 0; i < ncases; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            run(i);
            exit(0);
        }
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == WT_SKIP_CODE) {
            skipped++;
        } else if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL %s\n", cases[i].name);
            failed++;
        }
    }
    printf("%d passed, %d skipped, %d failed\n", ncases - failed - skipped, skipped, failed);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ncases; i++)
            puts(cases[i].name);
        return 0;
    }
    if (argc == 1)
        return run_all() ? 1 : 0;
    for (int i = 0; i < ncases; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            run(i);
            return 0;
        }
    }
    fprintf(stderr, "no case named %s\n", argv[1]);
    return 2;
}
