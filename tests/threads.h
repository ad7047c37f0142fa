/* Test helpers on top of weft's threads: start a thread on fn(arg), and join
 * and release it, failing the case on any error. */
#ifndef WEFT_TESTS_THREADS_H
#define WEFT_TESTS_THREADS_H

#include "wt.h"
#include <weft/thread.h>

static inline weft_thread_t *spawn(weft_thread_fn fn, void *arg)
{
    weft_thread_t *t;
    WT_EQ(weft_thread_new(&t, fn, arg, NULL), 0);
    WT_EQ(weft_thread_start(t), 0);
    return t;
}

/* Join and release; returns what the thread's function returned. */
static inline void *finish(weft_thread_t *t)
{
    void *result;
    WT_EQ(weft_thread_join(t, WEFT_FOREVER, &result), 0);
    WT_EQ(weft_thread_free(t), 0);
    return result;
}

#endif
