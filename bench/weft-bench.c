/*
 * weft-bench: runs benchmark suites and prints weft's figure beside a
 * baseline measured in the same run.
 *
 *     weft-bench [--json] [--rounds N] [--load N] [--place one|spread] [SUITE|CASE...]
 *
 * Method: calibrate each side until one round takes about 0.1 s, then run
 * ROUNDS rounds alternating weft and baseline (so drift in machine load hits
 * both alike), in the order weft, baseline, baseline, weft, ... and take
 * each side's median. The order changes every round because a loaded
 * machine can fall into a pattern of period two: a case's fresh threads
 * start on one CPU or on two, turn and turn about, the CPU load their
 * predecessors left deciding where they go. Strict alternation then gave
 * one side every bad placement for a streak of rounds (a barrier's round
 * trip took 35-40 us on two CPUs against 7-10 on one, weft slow for seven
 * rounds running while pthread's rounds between them were fast, then the
 * reverse); with the order turned every round each side gets half of each.
 * Results are time per operation; speedup = baseline time / weft time, so
 * above 1 means weft is faster.
 * With --json, stdout carries one JSON object per result (DESIGN.md's
 * contract) and the human-readable table goes to stderr.
 *
 * Rows and bars (bench.h): each case prints a row of wall time per op, and
 * the cases that hand off between waiting threads (bench_case.cpu) a row
 * <case>_cpu of the process's CPU time per op as well: user + system of
 * the process and of the children it reaped during the call (a baseline
 * run as a program, through bench_run_timed), setup included. A row is
 * marked met or NOT MET against its bar: `bar` idle, `loaded_bar` and
 * `cpu_bar` under --load; an idle _cpu row has none. A case with a unit of
 * its own (bench_case.unit) is not calibrated: each round calls each side
 * once, and the figure it returns is the row's.
 *
 * --load N measures waiting on a busy machine: before each case the driver
 * starts N threads spinning in a separate process (weft-bench itself run
 * again with the hidden arguments `--busy N PID`), and kills and reaps it
 * after the case, so both sides of a case, calibration included, run beside
 * the same load. Reaped only after the last measurement, its CPU time never
 * enters RUSAGE_CHILDREN within one. Every row's case name gets `_loaded`
 * (before `_cpu`). The load process dies with the driver (PR_SET_PDEATHSIG)
 * and, at Ctrl-C, with the rest of the foreground process group.
 *
 * --place one|spread decides which CPUs the cases' threads run on (one CPU
 * for all, or spread over every CPU), the same for both sides, and pins the
 * load's threads one per CPU; rows get `_one` or `_spread` after `_loaded`.
 * Loaded figures need it: left to the scheduler, a case's placement is
 * chance and decides its figure (place.c has the measurements). The bars
 * apply to placed rows as to unplaced ones.
 *
 * The driver starts one idle thread before any case runs. glibc skips atomic
 * instructions in mutexes while a process has never had a second thread; a
 * program that takes locks has threads, so every case is measured the way
 * such a program runs.
 */
#include "bench.h"
#include "place.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES     128
#define MAX_ROUNDS    64
#define MAX_LOAD      256
#define ROUND_SECONDS 0.1

extern char **environ;

static const struct bench_case *cases[MAX_CASES];
static int ncases;

void bench_register(const struct bench_case *c)
{
    if (ncases < MAX_CASES)
        cases[ncases++] = c;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_run_timed(const char *command)
{
    bench_place_open_to_all(true);
    FILE *p = popen(command, "r");
    bench_place_open_to_all(false);
    double secs = -1;
    char line[256];
    if (p && fgets(line, sizeof line, p))
        secs = strtod(line, NULL);
    while (p && fgets(line, sizeof line, p)) /* read to the end: no SIGPIPE */
        ;
    if (!p || pclose(p) != 0 || secs < 0) {
        fprintf(stderr, "weft-bench: %s failed\n", command);
        exit(1);
    }
    return secs;
}

void bench_sink(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "weft-bench: %s\n", what);
    exit(1);
}

/* --- the load process ------------------------------------------------------- */

static void *spin(void *arg)
{
    (void)arg;
    volatile unsigned long counter = 0;
    for (;;)
        counter++;
    return NULL;
}

/* `weft-bench --busy N PID [CPU,...]`: N threads spinning until killed,
 * the i-th on the i-th CPU listed (wrapping) when CPUs are given. The death
 * signal is asked for first; a driver that died before that cannot send it,
 * so the parent is checked after: if it is no longer PID, the load stops. */
static int busy(int n, pid_t driver, const char *cpus)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != driver)
        return 1;
    const char *next = cpus;
    for (int i = 0; i < n; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        if (next) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET((int)strtol(next, (char **)&next, 10), &set);
            pthread_attr_setaffinity_np(&attr, sizeof set, &set);
            next = *next == ',' ? next + 1 : cpus;
        }
        pthread_t t;
        int err = pthread_create(&t, &attr, spin, NULL);
        pthread_attr_destroy(&attr);
        if (err != 0)
            return 1;
    }
    if (write(STDOUT_FILENO, "+", 1) != 1) /* spinning: the driver may go on */
        return 1;
    for (;;)
        pause();
}

/* Start the load and wait until its threads spin. It is a new program, not
 * a fork: the driver has threads, and a fork would copy only one of them
 * and whatever locks the others held. PR_SET_PDEATHSIG fires when the
 * thread that started the child ends, so it is started from main's thread,
 * which lives as long as the driver. */
static pid_t start_load(int n, enum bench_place place)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        die("cannot make the load's pipe");
    char nbuf[16], pidbuf[24];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    snprintf(pidbuf, sizeof pidbuf, "%ld", (long)getpid());
    char cpubuf[CPU_SETSIZE * 5] = "";
    int cpus[CPU_SETSIZE], ncpus = place ? bench_place_cpus(cpus, CPU_SETSIZE) : 0;
    for (int i = 0, len = 0; i < ncpus; i++)
        len += snprintf(cpubuf + len, sizeof cpubuf - (size_t)len, "%s%d", i ? "," : "", cpus[i]);
    char *argv[] = {"weft-bench", "--busy", nbuf, pidbuf, ncpus ? cpubuf : NULL, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO); /* its report */
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    char ready;
    if (err != 0 || read(fds[0], &ready, 1) != 1)
        die("the load process did not start");
    close(fds[0]);
    return pid;
}

/* Only this waitpid may reap the load: one elsewhere (a wait for any child)
 * could have reaped it within a measurement and added its CPU time there. */
static void stop_load(pid_t pid)
{
    kill(pid, SIGKILL);
    if (waitpid(pid, NULL, 0) != pid)
        die("the load process was reaped elsewhere: CPU figures may count it");
}

/* --- measuring --------------------------------------------------------------- */

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* User + system seconds of this process and of its reaped children. */
static double cpu_seconds(void)
{
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    return tv_seconds(self.ru_utime) + tv_seconds(self.ru_stime) + tv_seconds(children.ru_utime) +
           tv_seconds(children.ru_stime);
}

/* One measured call: a placement counts the threads it starts from 0. */
static double call(bench_fn fn, long iters)
{
    bench_place_restart();
    return fn(iters);
}

/* Iterations for one round of about ROUND_SECONDS. A run long enough to
 * judge by is repeated and the faster taken: on a busy machine one thread
 * of a case may wait a whole scheduler tick (4 ms at HZ=250) to start, and a
 * case of a few items that hit such a wait would be calibrated to a handful
 * of items per round, each round then timing mostly thread start-up. */
static long calibrate(bench_fn fn)
{
    long iters = 1;
    for (;;) {
        double t = call(fn, iters);
        if (t >= ROUND_SECONDS / 4) {
            double again = call(fn, iters);
            t = again < t ? again : t;
        }
        if (t >= ROUND_SECONDS / 4 || iters > (1L << 40))
            return t > 0 ? (long)((double)iters * ROUND_SECONDS / t) + 1 : iters;
        iters *= t < ROUND_SECONDS / 100 ? 10 : 2;
    }
}

/* One side's rounds: nanoseconds per op, wall and CPU; or, for a case
 * with a unit of its own (`figure`), the figures the side returned. */
struct side {
    bench_fn fn;
    long iters;
    bool figure;
    double wall[MAX_ROUNDS], cpu[MAX_ROUNDS];
};

static void measure(struct side *s, int round)
{
    double cpu0 = cpu_seconds();
    double v = call(s->fn, s->iters);
    s->wall[round] = s->figure ? v : v / (double)s->iters * 1e9;
    s->cpu[round] = (cpu_seconds() - cpu0) / (double)s->iters * 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Pick the unit that keeps the figure readable: ns, us or ms per op. */
static const char *unit_for(double ns, double *scale)
{
    if (ns >= 1e6) {
        *scale = 1e-6;
        return "ms/op";
    }
    if (ns >= 1e3) {
        *scale = 1e-3;
        return "us/op";
    }
    *scale = 1;
    return "ns/op";
}

/* --- reporting --------------------------------------------------------------- */

struct options {
    bool json;
    int rounds;
    int load;               /* busy threads beside each case; 0 = none */
    enum bench_place place; /* where the cases' threads run (place.c) */
};

/* One row: the case's name with `suffix`, weft's and the baseline's median
 * (ns per op), checked against `bar` unless it is 0. */
static void report(const struct bench_case *c, const struct options *o, bool cpu, double wm,
                   double bm, double bar)
{
    char name[128];
    const char *place = bench_place_name(o->place);
    snprintf(name, sizeof name, "%s%s%s%s%s", c->name, o->load ? "_loaded" : "", *place ? "_" : "",
             place, cpu ? "_cpu" : "");
    bool json = o->json;
    double speedup = bm / wm, scale = 1;
    const char *unit = c->unit ? c->unit : unit_for(wm < bm ? wm : bm, &scale);
    FILE *human = json ? stderr : stdout;
    fprintf(human, "%-8s %-28s weft %10.2f %s   %-16s %10.2f %s   speedup %5.2f", c->suite, name,
            wm * scale, unit, c->baseline, bm * scale, unit, speedup);
    if (bar > 0)
        fprintf(human, "   (bar >= %.2f: %s)", bar, speedup >= bar ? "met" : "NOT MET");
    fputc('\n', human);
    if (json)
        printf("{\"suite\":\"%s\",\"case\":\"%s\",\"unit\":\"%s\",\"weft\":%.4g,"
               "\"baseline\":\"%s\",\"baseline_value\":%.4g,\"speedup\":%.3f,\"bar\":%.2f}\n",
               c->suite, name, unit, wm * scale, c->baseline, bm * scale, speedup, bar);
    fflush(NULL);
}

static void run_case(const struct bench_case *c, const struct options *o)
{
    pid_t load = o->load ? start_load(o->load, o->place) : 0;
    bool figure = c->unit != NULL;
    struct side w = {.fn = c->weft, .figure = figure}, b = {.fn = c->base, .figure = figure};
    w.iters = figure ? 1 : calibrate(w.fn);
    b.iters = figure ? 1 : calibrate(b.fn);
    for (int r = 0; r < o->rounds; r++) {
        struct side *first = r % 2 ? &b : &w, *second = r % 2 ? &w : &b;
        measure(first, r);
        measure(second, r);
    }
    if (load)
        stop_load(load);
    bool loaded = o->load > 0;
    report(c, o, false, median(w.wall, o->rounds), median(b.wall, o->rounds),
           loaded ? c->loaded_bar : c->bar);
    if (c->cpu && !figure)
        report(c, o, true, median(w.cpu, o->rounds), median(b.cpu, o->rounds),
               loaded ? c->cpu_bar : 0);
}

/* --- main ---------------------------------------------------------------------- */

static void *idle(void *arg)
{
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    for (;;)
        pthread_cond_wait(&never, &m);
    return arg;
}

/* Picked by its suite's name or its own. */
static bool selected(const struct bench_case *c, char **names, int n)
{
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], c->suite) == 0 || strcmp(names[i], c->name) == 0)
            return true;
    return false;
}

static bool known_name(const char *name)
{
    for (int i = 0; i < ncases; i++)
        if (strcmp(cases[i]->suite, name) == 0 || strcmp(cases[i]->name, name) == 0)
            return true;
    return false;
}

/* A numeric option's value in [lo, hi], or exit with the usage error. */
static int option_value(const char *option, const char *text, int lo, int hi)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s takes %d to %d\n", option, lo, hi);
        exit(2);
    }
    return (int)v;
}

_Noreturn static void usage(void)
{
    fprintf(stderr, "usage: weft-bench [--json] [--rounds N] [--load N] [--place one|spread]\n"
                    "                  [SUITE|CASE...]\nsuites:");
    for (int j = 0; j < ncases; j++)
        if (j == 0 || strcmp(cases[j]->suite, cases[j - 1]->suite) != 0)
            fprintf(stderr, " %s", cases[j]->suite);
    fputc('\n', stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "--busy") == 0)
        return busy(option_value("--busy", argv[2], 1, MAX_LOAD), (pid_t)atol(argv[3]),
                    argc == 5 ? argv[4] : NULL);
    struct options o = {.json = false, .rounds = 9, .load = 0};
    int nsuites = 0;
    char *suites[MAX_CASES];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o.json = true;
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            o.rounds = option_value("--rounds", argv[++i], 1, MAX_ROUNDS);
        else if (strcmp(argv[i], "--load") == 0 && i + 1 < argc)
            o.load = option_value("--load", argv[++i], 1, MAX_LOAD);
        else if (strcmp(argv[i], "--place") == 0 && i + 1 < argc &&
                 bench_place_parse(argv[i + 1]) > 0)
            o.place = (enum bench_place)bench_place_parse(argv[++i]);
        else if (known_name(argv[i]) && nsuites < MAX_CASES)
            suites[nsuites++] = argv[i];
        else
            usage();
    }
    bench_place_setup(o.place);
    pthread_t idler;
    if (pthread_create(&idler, NULL, idle, NULL) != 0)
        die("cannot start its idle thread");
    struct utsname u;
    uname(&u);
    FILE *human = o.json ? stderr : stdout;
    fprintf(human, "weft-bench: %s %s, %ld CPUs, medians of %d rounds", u.sysname, u.machine,
            sysconf(_SC_NPROCESSORS_ONLN), o.rounds);
    if (o.load)
        fprintf(human, ", %d busy threads beside each case", o.load);
    if (o.place)
        fprintf(human, ", placement %s", bench_place_name(o.place));
    fputc('\n', human);
    for (int i = 0; i < ncases; i++)
        if (selected(cases[i], suites, nsuites))
            run_case(cases[i], &o);
    return 0;
}
