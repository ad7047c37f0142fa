/*
 * The lecture's Thread subclass, MyThread(start, end, timeout) with its own
 * run(), in C: the thread's fields live in the thread itself
 * (weft_thread_new_run reserves room for them) and the run function receives
 * the thread as `self`, exactly like Python's run(self).
 */
#include "check.h"

#include <weft/thread.h>

struct my_thread {
    int start, end;
    double timeout;
};

static void *my_thread_run(weft_thread_t *self)
{
    struct my_thread *me = weft_thread_data(self);
    while (me->start < me->end) {
        printf("Thread: %d\n", me->start);
        me->start++;
        weft_sleep(me->timeout);
    }
    return NULL;
}

/* MyThread(start, end, timeout): Thread.__init__ plus the fields. */
static weft_thread_t *my_thread_new(int start, int end, double timeout)
{
    weft_thread_t *t;
    CHECK(weft_thread_new_run(&t, my_thread_run, sizeof(struct my_thread), NULL));
    struct my_thread *me = weft_thread_data(t);
    *me = (struct my_thread){start, end, timeout};
    return t;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);

    weft_thread_t *thread1 = my_thread_new(3, 10, 1);
    weft_thread_t *thread2 = my_thread_new(5, 20, 0.5);
    CHECK(weft_thread_start(thread1));
    CHECK(weft_thread_start(thread2));

    for (int i = 0; i < 5; i++) {
        printf("MAIN THREAD\n");
        weft_sleep(0.5);
    }

    CHECK(weft_thread_join(thread1, WEFT_FOREVER, NULL));
    CHECK(weft_thread_join(thread2, WEFT_FOREVER, NULL));
    printf("END\n");

    weft_thread_free(thread1);
    weft_thread_free(thread2);
    return 0;
}
