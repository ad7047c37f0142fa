/*
 * "This lock can be written shorter", says the lecture, and leaves the code
 * blank. In Python the shorter form is `with lock:`; in weft it is
 * WEFT_WITH(&lock) { ... }, which releases the lock however the block is
 * left. The same program as lock_counter.c, with the loop body in that form:
 * the early exit (break) releases the lock too.
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
    bool done = false;
    while (!done) {
        WEFT_WITH (&lock) {
            if ((done = count >= me->end))
                break; /* leaves the WEFT_WITH block: the lock is released */
            printf("%s: %d\n", weft_thread_name(self), count++);
        }
        if (!done)
            weft_sleep(me->timeout);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct my_thread params[2] = {{10, 1}, {20, 0.5}};
    weft_thread_t *threads[2];
    for (int i = 0; i < 2; i++) {
        CHECK(weft_thread_new_run(&threads[i], my_thread_run, sizeof(struct my_thread), NULL));
        *(struct my_thread *)weft_thread_data(threads[i]) = params[i];
        CHECK(weft_thread_start(threads[i]));
    }
    for (int i = 0; i < 5; i++) {
        printf("MAIN THREAD\n");
        weft_sleep(0.5);
    }
    for (int i = 0; i < 2; i++) {
        CHECK(weft_thread_join(threads[i], WEFT_FOREVER, NULL));
        weft_thread_free(threads[i]);
    }
    printf("END: count = %d\n", count);
    return 0;
}
