/*
 * The lecture's GIL section, measured on this machine: the claims it makes
 * about Python's Global Interpreter Lock, each run for real, in C under
 * weft's GIL (weft/gil.h) and in the machine's CPython, side by side.
 *
 *   1. CPU-bound work split over threads does not speed up under a GIL;
 *      over processes it scales with the CPUs.
 *   2. I/O-bound work overlaps in threads even under a GIL: a thread lets
 *      go of the GIL while it waits.
 *   3. The convoy effect: a thread that only computes makes a thread that
 *      serves requests wait for the GIL after every blocking call. CPython
 *      (and weft's fair mode, which is CPython's algorithm) make it wait a
 *      whole switch interval (5 ms); weft's priority mode serves it first.
 *   4. Threads are light: ten thousand of them alive at once, and as many
 *      processes, with what each costs and the limits of this machine.
 *
 * CPython's figures come from bench/gil/lecture.py, the same workloads in
 * Python; without python3 their columns are left empty.
 */
#include "check.h"
#include "timing.h"

#include <weft/async.h>
#include <weft/gil.h>
#include <weft/process.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static weft_gil_t gil = WEFT_GIL_INIT;
static int cpus;

static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

static void fail(const char *what)
{
    perror(what);
    fflush(NULL);
    _exit(1); /* as CHECK does (check.h): exit would join threads that wait on us */
}

/* --- CPython's side ------------------------------------------------------------ */

/* Run lecture.py with these arguments; its first line of output in `out`.
 * False if python3 is not there or the script failed. */
static bool python(char *out, size_t cap, const char *fmt, ...)
{
    char args[256], cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout 120 python3 %s %s 2>/dev/null", WEFT_LECTURE_PY, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    bool ok = fgets(out, (int)cap, p) != NULL;
    return pclose(p) == 0 && ok;
}

static double python_seconds(const char *fmt, ...)
{
    char args[256], out[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return python(out, sizeof out, "%s", args) ? atof(out) : -1;
}

/* --- 1. CPU-bound work ------------------------------------------------------------ */

enum { C_STEPS = 150000000, PY_STEPS = 6000000, MAX_WORKERS = 4 };
static const int worker_counts[] = {1, 2, 4};

/* The work: steps of a random-number generator, checking the GIL now and
 * then when it runs under one (as CPython's loop does between bytecodes). */
static uint64_t count_down(long steps, bool under_gil)
{
    uint64_t x = 1;
    for (long i = 0; i < steps; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        if (under_gil && (i & 4095) == 0)
            weft_gil_check(&gil);
    }
    return x;
}

static void *free_worker(void *arg)
{
    return (void *)(uintptr_t)count_down((long)(intptr_t)arg, false);
}

static void *gil_worker(void *arg)
{
    CHECK(weft_gil_acquire(&gil));
    uint64_t x = count_down((long)(intptr_t)arg, true);
    CHECK(weft_gil_release(&gil));
    return (void *)(uintptr_t)x;
}

static int process_worker(const void *arg, size_t len)
{
    (void)len;
    return (int)(count_down(*(const long *)arg, false) & 1);
}

static double run_threads(void *(*fn)(void *), int n, long steps_each)
{
    weft_thread_t *t[MAX_WORKERS];
    double t0 = weft_monotonic();
    for (int i = 0; i < n; i++)
        CHECK(weft_thread_start_new(&t[i], fn, (void *)(intptr_t)steps_each, NULL));
    for (int i = 0; i < n; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
    return weft_monotonic() - t0;
}

static double run_processes(int n, long steps_each)
{
    weft_process_t *p[MAX_WORKERS];
    weft_process_opts_t opts = {.method = WEFT_START_FORK};
    double t0 = weft_monotonic();
    for (int i = 0; i < n; i++) {
        CHECK(weft_process_new(&p[i], process_worker, &steps_each, sizeof steps_each, &opts));
        CHECK(weft_process_start(p[i]));
    }
    for (int i = 0; i < n; i++) {
        CHECK(weft_process_join(p[i], WEFT_FOREVER));
        CHECK(weft_process_close(p[i]));
    }
    return weft_monotonic() - t0;
}

static bool implausible; /* a speedup above what the CPUs allow was printed */

/* A row of speedups; one above what the machine's CPUs allow (by more than
 * noise) gets a star: the one-worker run was slowed by other work. */
static void speedup_row(const char *what, const double *t, const char *says)
{
    printf("  %-34s", what);
    for (int i = 0; i < 3; i++) {
        int most = worker_counts[i] < cpus ? worker_counts[i] : cpus;
        double x = t[0] / t[i];
        bool star = x > 1.15 * most;
        implausible |= star;
        if (t[0] <= 0 || t[i] <= 0)
            printf(" %9s", "-");
        else
            printf(" %7.2fx%s", x, star ? "*" : " ");
    }
    printf("  %s\n", says);
}

static void cpu_table(void)
{
    printf("1. CPU-bound work (a countdown) split over 1, 2 and 4 workers: speedup against 1 "
           "worker\n\n  %-34s %9s %9s %9s\n",
           "", "1", "2", "4");
    /* Each the best of three runs, as Python's timeit reports: on a shared
     * machine a single run of a few tenths of a second can take twice as
     * long as the next, and a speedup of such runs means nothing. */
    double t[5][3];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 5; k++)
            t[k][i] = 1e9;
    for (int run = 0; run < 3; run++)
        for (int i = 0; i < 3; i++) {
            int n = worker_counts[i];
            double once[5] = {
                run_threads(free_worker, n, C_STEPS / n), run_threads(gil_worker, n, C_STEPS / n),
                run_processes(n, C_STEPS / n), python_seconds("cpu %d %d threads", PY_STEPS, n),
                python_seconds("cpu %d %d processes", PY_STEPS, n)};
            for (int k = 0; k < 5; k++)
                if (once[k] < t[k][i])
                    t[k][i] = once[k];
        }
    speedup_row("C threads, no GIL", t[0], "threads run on every CPU");
    speedup_row("C threads under the weft GIL", t[1], "one at a time: no speed-up");
    speedup_row("C processes", t[2], "a GIL each: they scale");
    speedup_row("CPython threads", t[3], "the GIL: no speed-up");
    speedup_row("CPython processes (fork)", t[4], "they scale");
    if (cpus < 2)
        printf("  (this machine lets the program use 1 CPU: nothing can speed up here; the "
               "rows show\n   only what each way costs)\n");
    else
        printf("  (the most this machine allows is %dx)\n", cpus < 4 ? cpus : 4);
    if (implausible)
        printf("  * more than the CPUs allow: the one-worker run was slowed by other work on "
               "the machine\n");
    if (cpus >= 2) { /* one more run of two free threads: did they get two CPUs? */
        struct timing two = timing_start();
        run_threads(free_worker, 2, C_STEPS / 2);
        timing_stop(&two);
        warn_if_busy(&two, 2);
    }
}

/* --- 2. I/O-bound work -------------------------------------------------------------- */

enum { TASKS = 8 };
#define IO_NAP 0.03

/* A loopback server that answers each request after IO_NAP: a slow remote
 * service, one thread a connection. */
static int server_fd;

static void *answer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    if (recv(fd, &c, 1, 0) == 1) {
        nap(IO_NAP);
        send(fd, &c, 1, MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void *serve_slowly(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(server_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        if (pthread_create(&t, NULL, answer, (void *)(intptr_t)fd) != 0)
            fail("pthread_create");
        pthread_detach(t);
    }
}

static int listen_loopback(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail("listen");
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int io_port;

/* One task: a sleep, then a request; the GIL held except while waiting. */
static void io_task(void)
{
    CHECK(weft_gil_acquire(&gil));
    WEFT_GIL_RELEASED(&gil)
    {
        nap(IO_NAP);
    }
    WEFT_GIL_RELEASED(&gil)
    {
        int fd = connect_loopback(io_port);
        char c = 'x';
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || recv(fd, &c, 1, 0) != 1)
            fail("request");
        close(fd);
    }
    CHECK(weft_gil_release(&gil));
}

static void *io_thread(void *arg)
{
    (void)arg;
    io_task();
    return NULL;
}

/* The same as an async task: the sleep and the wait for the answer suspend
 * the task alone, and a task holding the GIL lets go of it while it is
 * suspended, as asyncio's thread does around its select. */
static void *io_coroutine(void *arg)
{
    (void)arg;
    CHECK(weft_gil_acquire(&gil));
    CHECK(weft_sleep(IO_NAP));
    int fd = connect_loopback(io_port);
    char c = 'x';
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || CHECK(weft_wait_readable(fd, WEFT_FOREVER)) != 1 ||
        recv(fd, &c, 1, 0) != 1)
        fail("request");
    close(fd);
    CHECK(weft_gil_release(&gil));
    return NULL;
}

static void *io_coroutines(void *arg)
{
    (void)arg;
    int rc;
    WEFT_CO_GROUP(g, &rc)
    {
        for (int i = 0; i < TASKS; i++)
            CHECK(weft_co_group_spawn(g, NULL, io_coroutine, NULL, NULL));
    }
    CHECK(rc);
    return NULL;
}

static int io_process(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    io_task();
    return 0;
}

static void io_table(void)
{
    pthread_t server;
    server_fd = listen_loopback(&io_port);
    if (pthread_create(&server, NULL, serve_slowly, NULL) != 0)
        fail("pthread_create");
    double t[2][4];
    double t0 = weft_monotonic();
    for (int i = 0; i < TASKS; i++)
        io_task();
    t[0][0] = weft_monotonic() - t0;
    weft_thread_t *th[TASKS];
    t0 = weft_monotonic();
    for (int i = 0; i < TASKS; i++)
        CHECK(weft_thread_start_new(&th[i], io_thread, NULL, NULL));
    for (int i = 0; i < TASKS; i++) {
        CHECK(weft_thread_join(th[i], WEFT_FOREVER, NULL));
        weft_thread_free(th[i]);
    }
    t[0][1] = weft_monotonic() - t0;
    weft_process_t *p[TASKS];
    weft_process_opts_t opts = {.method = WEFT_START_FORK};
    t0 = weft_monotonic();
    for (int i = 0; i < TASKS; i++) {
        CHECK(weft_process_new(&p[i], io_process, NULL, 0, &opts));
        CHECK(weft_process_start(p[i]));
    }
    for (int i = 0; i < TASKS; i++) {
        CHECK(weft_process_join(p[i], WEFT_FOREVER));
        CHECK(weft_process_close(p[i]));
    }
    t[0][2] = weft_monotonic() - t0;
    t0 = weft_monotonic();
    CHECK(weft_run(io_coroutines, NULL, NULL, NULL));
    t[0][3] = weft_monotonic() - t0;
    const char *kinds[] = {"sequential", "threads", "processes", "tasks"};
    for (int i = 0; i < 4; i++)
        t[1][i] = python_seconds("io %d %g %d %s", TASKS, IO_NAP, io_port, kinds[i]);
    shutdown(server_fd, SHUT_RDWR);
    close(server_fd);
    pthread_join(server, NULL);

    printf("\n2. I/O-bound work: %d tasks, each a %.0f ms sleep and a request that takes %.0f "
           "ms;\n   seconds, and speedup against doing them one after another\n\n  %-14s %18s "
           "%18s %18s %18s\n",
           TASKS, IO_NAP * 1000, IO_NAP * 1000, "", "one by one", "threads (GIL)", "processes",
           "async tasks");
    const char *who[] = {"C, weft GIL", "CPython"};
    for (int r = 0; r < 2; r++) {
        printf("  %-14s", who[r]);
        for (int i = 0; i < 4; i++) {
            if (t[r][i] <= 0)
                printf(" %18s", "-");
            else
                printf(" %8.3f s %6.1fx", t[r][i], t[r][0] / t[r][i]);
        }
        printf("\n");
    }
    printf("  threads overlap their waits even under a GIL: it is let go while they wait;\n"
           "  so do tasks, on one thread\n");
}

/* --- 3. the convoy effect ------------------------------------------------------------- */

enum { ECHOES = 60 };
static const int cpu_threads[] = {0, 1, 2, 4};

struct echo_server {
    int listener;
    atomic_bool stop;
    weft_thread_t *serve, *compute[4];
    int ncompute;
};

static void *echo_serve(void *arg)
{
    struct echo_server *s = arg;
    int fd = accept(s->listener, NULL, NULL), one = 1;
    if (fd < 0)
        fail("accept");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[64];
    CHECK(weft_gil_acquire(&gil));
    for (;;) {
        ssize_t n;
        WEFT_GIL_RELEASED(&gil)
        {
            n = recv(fd, buf, sizeof buf, 0);
        }
        if (n <= 0)
            break;
        WEFT_GIL_RELEASED(&gil)
        {
            n = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        }
    }
    CHECK(weft_gil_release(&gil));
    close(fd);
    return NULL;
}

static void *echo_compute(void *arg)
{
    struct echo_server *s = arg;
    CHECK(weft_gil_acquire(&gil));
    uint64_t x = 1;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
        x ^= count_down(4096, true);
    CHECK(weft_gil_release(&gil));
    return (void *)(uintptr_t)x;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Round trips of a client on port: the median and the p99, in ms. */
static void measure_echo(int port, double *median, double *p99)
{
    int fd = connect_loopback(port);
    double rt[ECHOES];
    char msg[64] = "ping";
    for (int i = -5; i < ECHOES; i++) { /* five first, uncounted: the server starts */
        double t0 = weft_monotonic();
        if (send(fd, msg, sizeof msg, MSG_NOSIGNAL) != sizeof msg ||
            recv(fd, msg, sizeof msg, MSG_WAITALL) != sizeof msg)
            fail("echo");
        if (i >= 0)
            rt[i] = (weft_monotonic() - t0) * 1000;
    }
    close(fd);
    qsort(rt, ECHOES, sizeof rt[0], by_value);
    *median = rt[ECHOES / 2];
    *p99 = rt[(ECHOES * 99 + 99) / 100 - 1];
}

static void weft_echo(int mode, int ncompute, double *median, double *p99)
{
    struct echo_server s = {.ncompute = ncompute};
    int port;
    CHECK(weft_gil_configure(&gil, mode, 0));
    s.listener = listen_loopback(&port);
    atomic_init(&s.stop, false);
    for (int i = 0; i < ncompute; i++)
        CHECK(weft_thread_start_new(&s.compute[i], echo_compute, &s, NULL));
    CHECK(weft_thread_start_new(&s.serve, echo_serve, &s, NULL));
    measure_echo(port, median, p99);
    CHECK(weft_thread_join(s.serve, WEFT_FOREVER, NULL));
    weft_thread_free(s.serve);
    atomic_store(&s.stop, true);
    for (int i = 0; i < ncompute; i++) {
        CHECK(weft_thread_join(s.compute[i], WEFT_FOREVER, NULL));
        weft_thread_free(s.compute[i]);
    }
    close(s.listener);
}

static bool python_echo(int ncompute, double *median, double *p99)
{
    char cmd[512], line[64];
    snprintf(cmd, sizeof cmd, "timeout 120 python3 %s echo %d 2>/dev/null", WEFT_LECTURE_PY,
             ncompute);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    bool ok = fgets(line, sizeof line, p) != NULL && atoi(line) > 0;
    if (ok)
        measure_echo(atoi(line), median, p99);
    return pclose(p) == 0 && ok;
}

static void convoy_table(void)
{
    printf("\n3. The convoy effect: an echo server's round trip (median / p99, ms) beside "
           "threads that\n   only compute, all under one GIL\n\n  %-22s %18s %18s %18s\n",
           "computing threads", "weft, fair", "weft, priority", "CPython");
    for (int i = 0; i < 4; i++) {
        double m[3], p[3];
        weft_echo(WEFT_GIL_FAIR, cpu_threads[i], &m[0], &p[0]);
        weft_echo(WEFT_GIL_PRIORITY, cpu_threads[i], &m[1], &p[1]);
        bool py = python_echo(cpu_threads[i], &m[2], &p[2]);
        printf("  %-22d", cpu_threads[i]);
        for (int k = 0; k < 3; k++) {
            if (k == 2 && !py)
                printf(" %18s", "-");
            else
                printf("   %6.2f / %6.2f", m[k], p[k]);
        }
        printf("\n");
    }
    CHECK(weft_gil_configure(&gil, WEFT_GIL_PRIORITY, 0));
    printf("  fair (CPython's rule): every reply waits a switch interval (5 ms) behind a "
           "computing thread;\n  priority: a thread back from I/O is served first, so the "
           "computing threads cost it little\n");
}

/* --- 4. threads are light --------------------------------------------------------------- */

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* kB of MemAvailable and of Committed_AS. */
static void meminfo(long *available, long *committed)
{
    char line[128];
    FILE *f = fopen("/proc/meminfo", "r");
    *available = *committed = 0;
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "MemAvailable: %ld", available);
        sscanf(line, "Committed_AS: %ld", committed);
    }
    if (f)
        fclose(f);
}

static weft_event_t let_go = WEFT_EVENT_INIT;

static void *wait_to_go(void *arg)
{
    (void)arg;
    weft_event_wait(&let_go, WEFT_FOREVER);
    return NULL;
}

static int wait_for_eof(const void *arg, size_t len)
{
    (void)len;
    char c;
    return (int)read(*(const int *)arg, &c, 1);
}

struct spawned {
    long alive;            /* how many were alive at once */
    int error;             /* why no more could start, or 0 */
    double start, end;     /* seconds */
    double mem, committed; /* kB per unit */
};

/* The figures per unit, from the machine's memory before and after. */
static void per_unit(struct spawned *r, long a0, long c0, long a1, long c1)
{
    long n = r->alive > 0 ? r->alive : 1;
    r->mem = (double)(a0 - a1) / (double)n;
    r->committed = (double)(c1 - c0) / (double)n;
}

/* Start n threads that wait to be let go (as many as the machine allows,
 * if fewer: the others are let go and joined all the same), then let them
 * go and join them. */
static struct spawned spawn_threads(long n)
{
    struct spawned r = {0};
    weft_thread_t **t = calloc((size_t)n, sizeof *t);
    long a0, c0, a1, c1;
    meminfo(&a0, &c0);
    double t0 = weft_monotonic();
    while (r.alive < n && !(r.error = weft_thread_start_new(&t[r.alive], wait_to_go, NULL, NULL)))
        r.alive++;
    r.start = weft_monotonic() - t0;
    meminfo(&a1, &c1);
    t0 = weft_monotonic();
    CHECK(weft_event_set(&let_go));
    for (long i = 0; i < r.alive; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
    r.end = weft_monotonic() - t0;
    per_unit(&r, a0, c0, a1, c1);
    free(t);
    return r;
}

static int start_waiting_process(weft_process_t **p, int *fd)
{
    weft_process_opts_t opts = {.method = WEFT_START_FORK, .keep_fds = fd, .nkeep_fds = 1};
    int rc = weft_process_new(p, wait_for_eof, fd, sizeof *fd, &opts);
    if (rc == 0 && (rc = weft_process_start(*p)) != 0)
        weft_process_close(*p);
    return rc;
}

/* The same with processes, each waiting for the end of a pipe. */
static struct spawned spawn_processes(long n)
{
    struct spawned r = {0};
    int fds[2];
    if (pipe(fds) != 0)
        fail("pipe");
    weft_process_t **p = calloc((size_t)n, sizeof *p);
    long a0, c0, a1, c1;
    meminfo(&a0, &c0);
    double t0 = weft_monotonic();
    while (r.alive < n && !(r.error = start_waiting_process(&p[r.alive], &fds[0])))
        r.alive++;
    r.start = weft_monotonic() - t0;
    meminfo(&a1, &c1);
    t0 = weft_monotonic();
    close(fds[1]);
    for (long i = 0; i < r.alive; i++) {
        CHECK(weft_process_join(p[i], WEFT_FOREVER));
        CHECK(weft_process_close(p[i]));
    }
    r.end = weft_monotonic() - t0;
    close(fds[0]);
    per_unit(&r, a0, c0, a1, c1);
    free(p);
    return r;
}

static bool python_spawn(long n, const char *kind, struct spawned *r)
{
    char out[256];
    *r = (struct spawned){.alive = n};
    return python(out, sizeof out, "spawn %ld %s", n, kind) &&
           sscanf(out, "%lf %lf %lf %lf", &r->start, &r->end, &r->mem, &r->committed) == 4;
}

static void spawned_row(const char *what, const struct spawned *r, bool ok)
{
    char mem[32];
    long n = r->alive > 0 ? r->alive : 1;
    if (!ok) {
        printf("  %-26s %7ld %34s\n", what, r->alive, "-");
        return;
    }
    if (r->mem >= 0.5)
        snprintf(mem, sizeof mem, "%8.0f kB", r->mem);
    else /* the machine freed more meanwhile than the units took */
        snprintf(mem, sizeof mem, "%11s", "(noise)");
    printf("  %-26s %7ld %9.1f us %9.1f us %s %9.0f kB\n", what, r->alive,
           r->start / (double)n * 1e6, r->end / (double)n * 1e6, mem, r->committed);
    if (r->error)
        printf("  %-26s (no more could start: %s)\n", "", weft_strerror(r->error));
}

/* How many units to keep alive at once: 10,000, or fewer if this machine's
 * limits (or half its free memory at 512 kB a unit) say so; *why
 * names the limit that did. */
static long how_many(long threads_max, long pid_max, long map_max, const char **why)
{
    long n = 10000, avail, committed;
    struct rlimit nproc, nofile;
    meminfo(&avail, &committed);
    getrlimit(RLIMIT_NPROC, &nproc);
    getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max; /* a process keeps a descriptor in its parent */
    setrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_NOFILE, &nofile);
    /* A limit /proc would not tell (-1, or no MemAvailable) is no limit here. */
    long limits[] = {threads_max > 0 ? threads_max / 2 : n,
                     pid_max > 0 ? pid_max / 2 : n,
                     map_max > 0 ? map_max / 4 : n,
                     avail > 0 ? avail / 1024 : n,
                     nproc.rlim_cur == RLIM_INFINITY ? n : (long)nproc.rlim_cur / 2,
                     nofile.rlim_cur == RLIM_INFINITY ? n : (long)nofile.rlim_cur - 64};
    const char *names[] = {"threads-max",        "pid_max",         "max_map_count", "free memory",
                           "processes per user", "open descriptors"};
    *why = NULL;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (limits[i] < n) {
            n = limits[i] > 1 ? limits[i] : 1;
            *why = names[i];
        }
    return n;
}

static void light_table(void)
{
    long threads_max = read_long("/proc/sys/kernel/threads-max");
    long pid_max = read_long("/proc/sys/kernel/pid_max");
    long map_max = read_long("/proc/sys/vm/max_map_count");
    const char *why;
    long n = how_many(threads_max, pid_max, map_max, &why), py_procs = n < 1000 ? n : 1000;
    printf("\n4. Threads are light: %ld of each alive at once; per unit, the time to start it "
           "and to end\n   and join it, and the memory it took (MemAvailable and Committed_AS "
           "of the machine)\n\n  %-26s %7s %12s %12s %11s %12s\n",
           n, "", "alive", "start", "end + join", "memory", "committed");
    struct spawned r;
    r = spawn_threads(n);
    spawned_row("C threads (weft)", &r, true);
    r = spawn_processes(n);
    spawned_row("C processes (weft, fork)", &r, true);
    bool ok = python_spawn(n, "threads", &r);
    spawned_row("CPython threads", &r, ok);
    ok = python_spawn(py_procs, "processes", &r);
    spawned_row("CPython processes (fork)", &r, ok);
    if (why)
        printf("  (fewer than 10000: this machine's %s would not allow twice as many)\n", why);
    printf("  this machine allows %ld threads in all (threads-max), %ld process and thread ids "
           "(pid_max),\n  %ld memory maps a process (max_map_count; a thread's stack takes "
           "two)\n",
           threads_max, pid_max, map_max);
    printf("  a thread's stack is committed in full but only touched pages take memory; "
           "memory figures\n  are the whole machine's and move with whatever else runs\n");
}

int main(void)
{
    cpus = weft_cpu_count();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("The GIL, measured on this machine (%d CPUs)\n\n", cpus);
    cpu_table();
    io_table();
    convoy_table();
    light_table();
    return 0;
}
