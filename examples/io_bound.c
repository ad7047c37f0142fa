/*
 * The lecture's I/O-bound case, four ways: many "downloads", each of which
 * only waits (a sleep stands in for the network), done one after another,
 * in threads, in processes and in async tasks, timed.
 *
 * Waiting needs no CPU, so everything but the sequential run takes about
 * one download's time however many there are; what differs is what each
 * waiter costs. A thread is a kernel thread with its own stack; a process
 * is a whole copy of the program; a task is a small stack and a switch that
 * costs about a function call, so a single thread runs ten thousand of
 * them at once (the last row), as asyncio does, but in C.
 */
#include "check.h"

#include <weft/async.h>
#include <weft/process.h>
#include <weft/thread.h>

#include <stdint.h>

enum { DOWNLOADS = 20, MANY = 10000 };
#define WAIT 0.05 /* seconds each download waits */

static void *download(void *arg)
{
    (void)arg;
    CHECK(weft_sleep(WAIT)); /* in a task, only the task waits */
    return NULL;
}

static int download_process(const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return weft_sleep(WAIT) == 0 ? 0 : 1;
}

static void sequential(int n)
{
    for (int i = 0; i < n; i++)
        download(NULL);
}

static void in_threads(int n)
{
    weft_thread_t *t[DOWNLOADS];
    for (int i = 0; i < n; i++)
        CHECK(weft_thread_start_new(&t[i], download, NULL, NULL));
    for (int i = 0; i < n; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
}

static void in_processes(int n)
{
    weft_process_t *p[DOWNLOADS];
    for (int i = 0; i < n; i++) {
        CHECK(weft_process_new(&p[i], download_process, NULL, 0, NULL));
        CHECK(weft_process_start(p[i]));
    }
    for (int i = 0; i < n; i++) {
        CHECK(weft_process_join(p[i], WEFT_FOREVER));
        CHECK(weft_process_close(p[i]));
    }
}

/* asyncio.gather over n tasks, in a task group: none outlives the call. */
static void *gather_downloads(void *arg)
{
    int n = (int)(intptr_t)arg, rc;
    WEFT_CO_GROUP(g, &rc)
    {
        for (int i = 0; i < n; i++)
            CHECK(weft_co_group_spawn(g, NULL, download, NULL, NULL));
    }
    CHECK(rc);
    return NULL;
}

static void in_tasks(int n)
{
    CHECK(weft_run(gather_downloads, (void *)(intptr_t)n, NULL, NULL));
}

static void timed(const char *how, void (*run)(int n), int n)
{
    double start = weft_monotonic();
    run(n);
    double took = weft_monotonic() - start;
    printf("  %-22s %6d downloads  %7.3f s  (%.1fx one download)\n", how, n, took, took / WAIT);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("each download waits %.0f ms\n", WAIT * 1000);
    timed("one after another", sequential, DOWNLOADS);
    timed("threads", in_threads, DOWNLOADS);
    timed("processes", in_processes, DOWNLOADS);
    timed("async tasks", in_tasks, DOWNLOADS);
    timed("async tasks, one thread", in_tasks, MANY);
    return 0;
}
