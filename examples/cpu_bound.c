/*
 * The lecture's CPU-bound example: the same work (counting primes below
 * 2,000,000 by trial division) done once in one thread, then split across
 * threads, then across processes, timed. Processes have their own memory,
 * so their results come back through shared memory (a shared Array), each
 * writing its own slot.
 *
 * In Python the threads would not go faster than one thread (the GIL lets
 * one thread run Python code at a time), which is why the lecture reaches
 * for multiprocessing. In C both threads and processes use every core;
 * processes cost a fork each and share nothing unless asked.
 */
#include "check.h"
#include "timing.h"

#include <weft/process.h>
#include <weft/shm.h>
#include <weft/thread.h>

#include <stdbool.h>
#include <stdint.h>

enum { LIMIT = 2000000, CHUNK = 1000, MAX_PARTS = 64 };

static bool is_prime(long n)
{
    if (n < 2)
        return false;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* Part k of `parts`: every parts-th chunk of CHUNK numbers, starting at
 * chunk k, so that every part gets a fair share of the big (slow) numbers
 * and of the even ones (fast: 2 divides them). */
static long count_part(long k, long parts)
{
    long count = 0;
    for (long start = k * CHUNK; start < LIMIT; start += parts * CHUNK)
        for (long n = start; n < start + CHUNK && n < LIMIT; n++)
            count += is_prime(n);
    return count;
}

static int parts;
static weft_shared_t *results; /* long[parts], one slot per process */

static void *thread_part(void *arg)
{
    return (void *)(intptr_t)count_part((long)(intptr_t)arg, parts);
}

static int process_part(const void *arg, size_t len)
{
    (void)len;
    long k = *(const long *)arg;
    ((long *)weft_shared_ptr(results))[k] = count_part(k, parts);
    return 0;
}

static long with_threads(void)
{
    weft_thread_t *t[MAX_PARTS];
    for (intptr_t k = 0; k < parts; k++) {
        CHECK(weft_thread_new(&t[k], thread_part, (void *)k, NULL));
        CHECK(weft_thread_start(t[k]));
    }
    long total = 0;
    for (int k = 0; k < parts; k++) {
        void *count;
        CHECK(weft_thread_join(t[k], WEFT_FOREVER, &count));
        total += (long)(intptr_t)count;
        weft_thread_free(t[k]);
    }
    return total;
}

static long with_processes(void)
{
    weft_process_t *p[MAX_PARTS];
    for (long k = 0; k < parts; k++) {
        CHECK(weft_process_new(&p[k], process_part, &k, sizeof k, NULL));
        CHECK(weft_process_start(p[k]));
    }
    long total = 0;
    for (int k = 0; k < parts; k++) {
        int code;
        CHECK(weft_process_join(p[k], WEFT_FOREVER));
        CHECK(weft_process_exitcode(p[k], &code));
        CHECK(weft_process_close(p[k]));
        if (code != 0)
            return -1;
        total += ((long *)weft_shared_ptr(results))[k];
    }
    return total;
}

static void print_row(const char *what, const struct timing *t, double serial)
{
    printf("%-16s %7.3f s %8.1fx %12.1f\n", what, t->wall, serial / t->wall, timing_cpus(t));
}

int main(void)
{
    parts = weft_cpu_count() < MAX_PARTS ? weft_cpu_count() : MAX_PARTS;
    CHECK(weft_shared_new(&results, sizeof(long) * MAX_PARTS));
    struct timing one = timing_start();
    long serial = count_part(0, 1);
    timing_stop(&one);
    struct timing threaded = timing_start();
    long threads = with_threads();
    timing_stop(&threaded);
    struct timing forked = timing_start();
    long processes = with_processes();
    timing_stop(&forked);
    CHECK(weft_shared_free(results));
    bool same = serial == threads && serial == processes;
    printf("primes below %d: %ld, the same count all three ways: %s\n\n", LIMIT, serial,
           same ? "yes" : "NO");
    char label[2][32];
    snprintf(label[0], sizeof label[0], "%d threads", parts);
    snprintf(label[1], sizeof label[1], "%d processes", parts);
    printf("%-16s %9s %9s %12s\n", "", "wall time", "speedup", "CPUs in use");
    print_row("one thread", &one, one.wall);
    print_row(label[0], &threaded, one.wall);
    print_row(label[1], &forked, one.wall);
    printf("\nspeedup = one thread's time / this run's time; the most this machine allows is "
           "%d.0x.\nIn CPython the GIL would hold the threads' line near 1.0x on any machine; "
           "in C both threads\nand processes run on every CPU at once.\n",
           parts);
    struct timing both = {threaded.wall + forked.wall, threaded.cpu + forked.cpu};
    warn_if_busy(&both, parts);
    return same ? 0 : 1;
}
