/*
 * One queue between a task and a thread: a producer task on an event loop
 * puts items into a bounded weft_queue_t, and a plain thread gets them. In
 * asyncio that takes two kinds of queue (asyncio.Queue is not thread-safe,
 * queue.Queue blocks the loop) and call_soon_threadsafe between them; in
 * weft it is one queue. When the queue is full the task is suspended and
 * its loop runs the other task (a heartbeat here); the thread's get wakes
 * it through the loop.
 */
#include "check.h"

#include <weft/async.h>
#include <weft/queue.h>
#include <weft/thread.h>

#include <stdint.h>

enum { ITEMS = 20000, ROOM = 8, DONE = -1 };

static weft_queue_t *queue;
static int beats;

static void *consumer(void *arg)
{
    (void)arg;
    long sum = 0;
    for (;;) {
        int v;
        CHECK(weft_queue_get(queue, &v, WEFT_FOREVER));
        if (v == DONE)
            break;
        sum += v;
    }
    return (void *)(intptr_t)sum;
}

static void *heartbeat(void *arg)
{
    (void)arg;
    while (weft_co_sleep(0.001) == 0)
        beats++;
    return NULL;
}

static void *producer(void *arg)
{
    (void)arg;
    weft_co_t *beat;
    CHECK(weft_co_spawn(&beat, heartbeat, NULL, NULL));
    for (int i = 1; i <= ITEMS; i++) {
        CHECK(weft_queue_put(queue, &i, WEFT_FOREVER)); /* suspends the task when full */
        if (i % 1000 == 0)
            CHECK(weft_co_sleep(0.002)); /* now and then, let the heartbeat in */
    }
    int done = DONE;
    CHECK(weft_queue_put(queue, &done, WEFT_FOREVER));
    CHECK(weft_co_cancel(beat));
    weft_co_join(beat, WEFT_FOREVER, NULL);
    weft_co_free(beat);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(weft_queue_new(&queue, sizeof(int), ROOM));
    weft_thread_t *t;
    CHECK(weft_thread_start_new(&t, consumer, NULL, NULL));
    double start = weft_monotonic();
    CHECK(weft_run(producer, NULL, NULL, NULL));
    void *sum;
    CHECK(weft_thread_join(t, WEFT_FOREVER, &sum));
    weft_thread_free(t);
    long want = (long)ITEMS * (ITEMS + 1) / 2;
    printf("a task put %d items through a queue of %d to a thread in %.3f s: sum %ld (%s)\n", ITEMS,
           ROOM, weft_monotonic() - start, (long)(intptr_t)sum,
           (long)(intptr_t)sum == want ? "right" : "WRONG");
    printf("meanwhile the task's loop ran a heartbeat task %d times\n", beats);
    weft_queue_free(queue);
    return (long)(intptr_t)sum == want && beats > 0 ? 0 : 1;
}
