/*
 * The calling thread's kernel id (what top -H and /proc/<pid>/task show).
 * gettid() is a system call, so the id is cached per thread; a forked child
 * must forget the cache, because the thread that forked has a new id there
 * (glibc dropped its own pid cache for exactly this trap).
 */
#include "base/base.h"

#include <sys/syscall.h>
#include <unistd.h>

_Thread_local pid_t weft__cached_tid WEFT__TLS_FAST;

pid_t weft__gettid_slow(void)
{
    weft__cached_tid = (pid_t)syscall(SYS_gettid);
    return weft__cached_tid;
}

void weft__gettid_forget(void)
{
    weft__cached_tid = 0;
}
