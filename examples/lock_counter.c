/*
 * The lecture's lock program, done right. Two MyThread objects count a shared
 * `count` up to their own `end` while the main thread prints "MAIN THREAD".
 * The Python version has two bugs: run() assigns to `count` without
 * declaring it global (Python then treats it as a local and fails), and it
 * calls lock.aquire(). Here `count` is one variable shared by all threads,
 * and the lock guards every read and write of it: checking it against `end`,
 * printing it and incrementing it happen as one step, so no two threads ever
 * print the same value or step past `end`.
 */
#include "check.h"

#include <weft/sync.h>
#include <weft/thread.h>

static int count;                         /* shared by every thread... */
static weft_lock_t lock = WEFT_LOCK_INIT; /* ...and only touched holding this */

struct my_thread {
    int end;
    double timeout;
};

static void *my_thread_run(weft_thread_t *self)
{
    struct my_thread *me = weft_thread_data(self);
    for (;;) {
        CHECK(weft_lock_acquire(&lock, WEFT_FOREVER));
        bool done = count >= me->end;
        if (!done)
            printf("%s: %d\n", weft_thread_name(self), count++);
        CHECK(weft_lock_release(&lock));
        if (done)
            return NULL;
        weft_sleep(me->timeout);
    }
}

static weft_thread_t *my_thread_new(int end, double timeout)
{
    weft_thread_t *t;
    CHECK(weft_thread_new_run(&t, my_thread_run, sizeof(struct my_thread), NULL));
    *(struct my_thread *)weft_thread_data(t) = (struct my_thread){end, timeout};
    return t;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    weft_thread_t *thread1 = my_thread_new(10, 1);
    weft_thread_t *thread2 = my_thread_new(20, 0.5);
    CHECK(weft_thread_start(thread1));
    CHECK(weft_thread_start(thread2));
    for (int i = 0; i < 5; i++) {
        printf("MAIN THREAD\n");
        weft_sleep(0.5);
    }
    CHECK(weft_thread_join(thread1, WEFT_FOREVER, NULL));
    CHECK(weft_thread_join(thread2, WEFT_FOREVER, NULL));
    printf("END: count = %d\n", count);
    weft_thread_free(thread1);
    weft_thread_free(thread2);
    return 0;
}
