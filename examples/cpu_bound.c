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

int main(void)
{
    parts = weft_cpu_count() < MAX_PARTS ? weft_cpu_count() : MAX_PARTS;
    CHECK(weft_shared_new(&results, sizeof(long) * MAX_PARTS));
    double t0 = weft_monotonic();
    long serial = count_part(0, 1);
    double t_serial = weft_monotonic() - t0;
    t0 = weft_monotonic();
    long threads = with_threads();
    double t_threads = weft_monotonic() - t0;
    t0 = weft_monotonic();
    long processes = with_processes();
    double t_processes = weft_monotonic() - t0;
    printf("primes below %d: %ld\n", LIMIT, serial);
    printf("one thread        %.3f s\n", t_serial);
    printf("%d threads         %.3f s (%.1fx)\n", parts, t_threads, t_serial / t_threads);
    printf("%d processes       %.3f s (%.1fx)\n", parts, t_processes, t_serial / t_processes);
    CHECK(weft_shared_free(results));
    bool same = serial == threads && serial == processes;
    printf("all three agree: %s\n", same ? "yes" : "NO");
    return same ? 0 : 1;
}
