/*
 * The calling thread's kernel id (what top -H and /proc/<pid>/task show).
 * gettid() is a system call, so the id is cached per thread; a forked child
 * must forget the cache, because the thread that forked has a new id there
 * (glibc dropped its own pid cache for exactly this trap).
 */
#include "base/base.h"

#include <sys/syscall.h>
#include <unistd.h>

static _Thread_local pid_t cached_tid WEFT__TLS_FAST;

pid_t weft__gettid(void)
{
    if (WEFT__UNLIKELY(cached_tid == 0))
        cached_tid = (pid_t)syscall(SYS_gettid);
    return cached_tid;
}

void weft__gettid_forget(void)
{
    cached_tid = 0;
}
