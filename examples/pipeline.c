/*
 * A pipeline of stages joined by bounded queues, Python's queue module in
 * C: one thread reads numbers, three test them for primality, one collects
 * the primes. Each queue holds at most 16 items, so a fast stage waits for
 * a slow one instead of piling work up in memory (back-pressure).
 *
 * The end of the stream travels through the pipeline as a shutdown
 * (Python 3.13's Queue.shutdown): the reader shuts the first queue when it
 * is done; the testers drain it and then see WEFT_ESHUTDOWN; the last tester
 * to finish shuts the second queue, and the collector drains that. No
 * sentinel values, no counting of end markers per consumer.
 *
 *     reader --numbers--> tester x3 --primes--> collector
 */
#include "check.h"

#include <weft/queue.h>
#include <weft/thread.h>

#include <stdatomic.h>
#include <stdbool.h>

enum { LIMIT = 200000, TESTERS = 3, QUEUE_SIZE = 16 };

static weft_queue_t *numbers, *primes;
static atomic_int testers_running = TESTERS;

static bool is_prime(long n)
{
    if (n < 2)
        return false;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static void *reader(void *arg)
{
    (void)arg;
    for (long n = 1; n <= LIMIT; n++)
        CHECK(weft_queue_put(numbers, &n, WEFT_FOREVER)); /* waits while 16 are queued */
    CHECK(weft_queue_shutdown(numbers, false));           /* end of stream */
    return NULL;
}

static void *tester(void *arg)
{
    long n, tested = 0;
    int rc;
    while ((rc = weft_queue_get(numbers, &n, WEFT_FOREVER)) == 0) {
        tested++;
        if (is_prime(n))
            CHECK(weft_queue_put(primes, &n, WEFT_FOREVER));
    }
    if (rc != WEFT_ESHUTDOWN) /* anything else is an error */
        CHECK(rc);
    printf("tester %d tested %ld numbers\n", (int)(intptr_t)arg, tested);
    if (atomic_fetch_sub(&testers_running, 1) == 1)
        CHECK(weft_queue_shutdown(primes, false)); /* the last tester ends the next stage */
    return NULL;
}

static void *collector(void *arg)
{
    long *count = arg, p, sum = 0;
    int rc;
    while ((rc = weft_queue_get(primes, &p, WEFT_FOREVER)) == 0) {
        ++*count;
        sum += p;
    }
    if (rc != WEFT_ESHUTDOWN)
        CHECK(rc);
    printf("collector: %ld primes up to %d, their sum %ld\n", *count, LIMIT, sum);
    return NULL;
}

static weft_thread_t *start(void *(*fn)(void *), void *arg, const char *name)
{
    weft_thread_t *t;
    CHECK(weft_thread_new(&t, fn, arg, &(weft_thread_opts_t){.name = name}));
    CHECK(weft_thread_start(t));
    return t;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(weft_queue_new(&numbers, sizeof(long), QUEUE_SIZE));
    CHECK(weft_queue_new(&primes, sizeof(long), QUEUE_SIZE));
    long count = 0;
    weft_thread_t *t[TESTERS + 2];
    t[0] = start(reader, NULL, "reader");
    for (intptr_t i = 1; i <= TESTERS; i++)
        t[i] = start(tester, (void *)i, "tester");
    t[TESTERS + 1] = start(collector, &count, "collector");
    for (int i = 0; i < TESTERS + 2; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
    CHECK(weft_queue_free(numbers));
    CHECK(weft_queue_free(primes));
    bool right = count == 17984; /* pi(200000) */
    printf("every prime arrived: %s\n", right ? "yes" : "NO");
    return right ? 0 : 1;
}
