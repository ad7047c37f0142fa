/*
 * "This lock can be written shorter", says the lecture, and leaves the code
 * blank. In Python the shorter form is `with lock:`; weft has it in two
 * shapes, both of which release the lock however their scope is left:
 *
 *   WEFT_GUARD(&lock);          holds the lock to the end of the enclosing
 *                               braces; break and continue reach the loop
 *                               around it, as in Python
 *   WEFT_WITH(&lock) { ... }    a block of its own (a one-pass loop, so a
 *                               break inside leaves only the block)
 *
 * The same program as lock_counter.c: the threads' loop uses the guard, and
 * the main thread reads the final count in a WEFT_WITH block.
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
        {
            WEFT_GUARD(&lock); /* held until the closing brace */
            if (count >= me->end)
                break; /* leaves the loop, releasing the lock */
            printf("%s: %d\n", weft_thread_name(self), count++);
        }
        weft_sleep(me->timeout); /* not holding the lock */
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
    WEFT_WITH (&lock)
        printf("END: count = %d\n", count);
    return 0;
}
