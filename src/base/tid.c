/*
 * The calling thread's kernel id (what top -H and /proc/<pid>/task show).
 * gettid() is a system call, so the id is cached per thread; a forked child
 * must forget the cache, because the thread that forked has a new id there
 * (glibc dropped its own pid cache for exactly this trap).
 *
 * The forgetting is this file's own fork handler, registered by its own
 * constructor: a static link pulls this object in whenever anything reads
 * the cache (the owner words of shared locks do), and with it the handler.
 * Leaving the reset to a higher layer's handler (the thread registry's)
 * left a program that uses only sync, shm or process queues with children
 * that took shared locks under their parent's id: a child that died holding
 * one looked alive for as long as the parent lived. The constructor runs at
 * the earliest priority so that this handler is registered before weft's
 * others, and child handlers run in the order of registration: every later
 * one sees the child's own id.
 */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

_Thread_local pid_t weft__cached_tid WEFT__TLS_FAST;

pid_t weft__gettid_slow(void)
{
    weft__cached_tid = (pid_t)syscall(SYS_gettid);
    return weft__cached_tid;
}

/* In the child: only the forking thread exists, so its cache is all. */
static void forget_in_child(void)
{
    weft__cached_tid = 0;
}

__attribute__((constructor(101))) static void tid_init(void)
{
    if (pthread_atfork(NULL, NULL, forget_in_child) != 0) {
        fputs("weft: cannot register the fork handler\n", stderr);
        abort(); /* only possible when out of memory at load */
    }
}
