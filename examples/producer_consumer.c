/*
 * A bounded buffer with Condition: producers wait while it is full,
 * consumers while it is empty. Both conditions share one lock, the one that
 * guards the buffer; each wait sits in a loop over its condition, as with
 * Python's Condition.wait_for.
 */
#include "check.h"

#include <weft/sync.h>
#include <weft/thread.h>

enum { SLOTS = 4, PRODUCERS = 2, CONSUMERS = 2, ITEMS = 10 };

static weft_lock_t lock = WEFT_LOCK_INIT; /* guards everything below */
static weft_cond_t not_full, not_empty;
static int buffer[SLOTS], head, length;
static long consumed_sum;

static void put(int item)
{
    WEFT_WITH (&lock) {
        while (length == SLOTS)
            CHECK(weft_cond_wait(&not_full, WEFT_FOREVER));
        buffer[(head + length++) % SLOTS] = item;
        CHECK(weft_cond_notify(&not_empty, 1));
    }
}

static int get(void)
{
    int item = 0;
    WEFT_WITH (&lock) {
        while (length == 0)
            CHECK(weft_cond_wait(&not_empty, WEFT_FOREVER));
        item = buffer[head];
        head = (head + 1) % SLOTS;
        length--;
        CHECK(weft_cond_notify(&not_full, 1));
    }
    return item;
}

static void *producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 1; i <= ITEMS; i++) {
        put(id * 100 + i);
        printf("producer %d put %d\n", id, id * 100 + i);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    for (int i = 0; i < PRODUCERS * ITEMS / CONSUMERS; i++) {
        int item = get();
        printf("    consumer %d got %d\n", (int)(intptr_t)arg, item);
        WEFT_WITH (&lock) {
            consumed_sum += item;
        }
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(weft_cond_init(&not_full, &lock, 0));
    CHECK(weft_cond_init(&not_empty, &lock, 0));
    weft_thread_t *t[PRODUCERS + CONSUMERS];
    for (intptr_t i = 0; i < PRODUCERS + CONSUMERS; i++) {
        if (i < PRODUCERS)
            CHECK(weft_thread_new(&t[i], producer, (void *)(i + 1), NULL));
        else
            CHECK(weft_thread_new(&t[i], consumer, (void *)(i - PRODUCERS + 1), NULL));
        CHECK(weft_thread_start(t[i]));
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
    long expected = 0;
    for (int p = 1; p <= PRODUCERS; p++)
        for (int i = 1; i <= ITEMS; i++)
            expected += p * 100 + i;
    printf("consumed everything produced: %s (sum %ld)\n", consumed_sum == expected ? "yes" : "NO",
           consumed_sum);
    return consumed_sum == expected ? 0 : 1;
}
