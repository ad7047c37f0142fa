/*
 * weft-bench: runs benchmark suites and prints weft's figure beside a
 * baseline measured in the same run.
 *
 *     weft-bench [--json] [--rounds N] [SUITE...]
 *
 * Method: calibrate each side until one round takes about 0.1 s, then run
 * ROUNDS rounds alternating weft and baseline (so drift in machine load hits
 * both alike) and take each side's median. Results are time per operation;
 * speedup = baseline time / weft time, so above 1 means weft is faster.
 * With --json, stdout carries one JSON object per result (DESIGN.md's
 * contract) and the human-readable table goes to stderr.
 *
 * The driver starts one idle thread before any case runs. glibc skips atomic
 * instructions in mutexes while a process has never had a second thread; a
 * program that takes locks has threads, so every case is measured the way
 * such a program runs.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES     128
#define MAX_ROUNDS    64
#define ROUND_SECONDS 0.1

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
    FILE *p = popen(command, "r");
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

/* Iterations for one round of about ROUND_SECONDS. */
static long calibrate(bench_fn fn)
{
    long iters = 1;
    for (;;) {
        double t = fn(iters);
        if (t >= ROUND_SECONDS / 4 || iters > (1L << 40))
            return t > 0 ? (long)((double)iters * ROUND_SECONDS / t) + 1 : iters;
        iters *= t < ROUND_SECONDS / 100 ? 10 : 2;
    }
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

static void run_case(const struct bench_case *c, int rounds, bool json)
{
    long wi = calibrate(c->weft), bi = calibrate(c->base);
    double w[MAX_ROUNDS], b[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        w[r] = c->weft(wi) / (double)wi * 1e9;
        b[r] = c->base(bi) / (double)bi * 1e9;
    }
    double wm = median(w, rounds), bm = median(b, rounds);
    double speedup = bm / wm, scale;
    const char *unit = unit_for(wm < bm ? wm : bm, &scale);
    FILE *human = json ? stderr : stdout;
    fprintf(human, "%-8s %-22s weft %10.2f %s   %-16s %10.2f %s   speedup %5.2f", c->suite, c->name,
            wm * scale, unit, c->baseline, bm * scale, unit, speedup);
    if (c->bar > 0)
        fprintf(human, "   (bar >= %.2f: %s)", c->bar, speedup >= c->bar ? "met" : "NOT MET");
    fputc('\n', human);
    if (json)
        printf("{\"suite\":\"%s\",\"case\":\"%s\",\"unit\":\"%s\",\"weft\":%.4g,"
               "\"baseline\":\"%s\",\"baseline_value\":%.4g,\"speedup\":%.3f}\n",
               c->suite, c->name, unit, wm * scale, c->baseline, bm * scale, speedup);
    fflush(NULL);
}

static void *idle(void *arg)
{
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    for (;;)
        pthread_cond_wait(&never, &m);
    return arg;
}

static bool selected(const char *suite, char **names, int n)
{
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], suite) == 0)
            return true;
    return false;
}

static bool known_suite(const char *name)
{
    for (int i = 0; i < ncases; i++)
        if (strcmp(cases[i]->suite, name) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    bool json = false;
    int rounds = 9, nsuites = 0;
    char *suites[MAX_CASES];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "--rounds takes 1 to %d\n", MAX_ROUNDS);
                return 2;
            }
        } else if (known_suite(argv[i]) && nsuites < MAX_CASES) {
            suites[nsuites++] = argv[i];
        } else {
            fprintf(stderr, "usage: weft-bench [--json] [--rounds N] [SUITE...]\nsuites:");
            for (int j = 0; j < ncases; j++)
                if (j == 0 || strcmp(cases[j]->suite, cases[j - 1]->suite) != 0)
                    fprintf(stderr, " %s", cases[j]->suite);
            fputc('\n', stderr);
            return 2;
        }
    }
    pthread_t idler;
    if (pthread_create(&idler, NULL, idle, NULL) != 0) {
        fputs("weft-bench: cannot start its idle thread\n", stderr);
        return 1;
    }
    struct utsname u;
    uname(&u);
    fprintf(json ? stderr : stdout, "weft-bench: %s %s, %ld CPUs, medians of %d rounds\n",
            u.sysname, u.machine, sysconf(_SC_NPROCESSORS_ONLN), rounds);
    for (int i = 0; i < ncases; i++)
        if (selected(cases[i]->suite, suites, nsuites))
            run_case(cases[i], rounds, json);
    return 0;
}
