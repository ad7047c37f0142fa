/*
 * ThreadPoolExecutor.map for a CPU-bound job, with a progress bar: for each
 * of 2000 numbers, the length of its Collatz sequence summed over a
 * stretch of starting values (pure arithmetic, so the work scales with the
 * cores). The pool runs the items in chunks on one worker per CPU;
 * weft_progress_bar draws a tqdm-like bar on stderr when it is a terminal
 * (count, rate, time left). The results come back in item order, and the
 * program checks them against a plain loop.
 *
 *     Python:  with ThreadPoolExecutor() as ex:
 *                  results = list(tqdm(ex.map(work, items), total=len(items)))
 */
#include "check.h"
#include "timing.h"

#include <weft/pool.h>

#include <stdint.h>

enum { ITEMS = 2000, STRETCH = 300 };

static long collatz_steps(long n)
{
    long steps = 0;
    for (; n != 1; steps++)
        n = n % 2 ? 3 * n + 1 : n / 2;
    return steps;
}

/* The work for one item: the total length of STRETCH sequences. */
static void *work(void *item, void *arg)
{
    (void)arg;
    long base = (long)(intptr_t)item * STRETCH + 1, total = 0;
    for (long n = base; n < base + STRETCH; n++)
        total += collatz_steps(n);
    return (void *)(intptr_t)total;
}

int main(void)
{
    static void *items[ITEMS], *results[ITEMS];
    for (intptr_t i = 0; i < ITEMS; i++)
        items[i] = (void *)i;
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, NULL)); /* one worker per CPU */
    printf("%d items on %d workers\n", ITEMS, weft_pool_workers(pool));
    int workers = weft_pool_workers(pool);
    struct timing parallel = timing_start();
    CHECK(weft_pool_map(pool, work, NULL, items, results, ITEMS, 20, weft_progress_bar, "collatz"));
    timing_stop(&parallel);
    CHECK(weft_pool_free(pool));

    struct timing serial = timing_start();
    bool same = true;
    for (int i = 0; i < ITEMS; i++)
        same &= work(items[i], NULL) == results[i];
    timing_stop(&serial);
    printf("pool %.3f s with %.1f CPUs in use, plain loop %.3f s: %.1fx the speed; results in "
           "order and equal: %s\n",
           parallel.wall, timing_cpus(&parallel), serial.wall, serial.wall / parallel.wall,
           same ? "yes" : "NO");
    warn_if_busy(&parallel, workers);
    return same ? 0 : 1;
}
