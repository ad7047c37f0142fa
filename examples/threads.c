/*
 * The lecture's first threading program: two threads made from functions and
 * their arguments, Python's Thread(target=func1, args=(3, 10)), run while the
 * main thread prints "MAIN THREAD" five times; then the main thread joins
 * both and prints "END". The three lines of output interleave because the
 * three threads really do run at once.
 */
#include "check.h"

#include <weft/thread.h>

struct range {
    int start, end;
};

static void *func1(void *arg)
{
    struct range *r = arg;
    for (int i = r->start; i < r->end; i++) {
        printf("Func1: %d\n", i);
        weft_sleep(1);
    }
    return NULL;
}

static void *func2(void *arg)
{
    struct range *r = arg;
    for (int i = r->start; i < r->end; i++) {
        printf("Func2: %d\n", i);
        weft_sleep(0.5);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, even into a pipe */

    struct range args1 = {3, 10}, args2 = {5, 20};
    weft_thread_t *thread1, *thread2;
    CHECK(weft_thread_new(&thread1, func1, &args1, NULL));
    CHECK(weft_thread_new(&thread2, func2, &args2, NULL));
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
