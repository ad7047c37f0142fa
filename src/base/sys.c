/*
 * The fault-injection table (see struct weft__sys in base.h) and the
 * allocation helpers built on it. In a normal run the table holds the real
 * functions and costs one indirect call, which is nothing beside a malloc, a
 * pthread_create or a system call.
 */
#include "base/base.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int sys_membarrier(int cmd, unsigned flags, int cpu_id)
{
    return (int)syscall(SYS_membarrier, cmd, flags, cpu_id);
}

int weft__real_open(const char *path, int flags)
{
    return open(path, flags);
}

ssize_t weft__read_text(int (*open_file)(const char *path, int flags), const char *path, char *buf,
                        size_t size)
{
    int fd = open_file(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? n : 0;
}

static int sys_pidfd_open(pid_t pid, unsigned flags)
{
    return (int)syscall(SYS_pidfd_open, pid, flags);
}

#ifdef WEFT_TSAN
_Thread_local _Atomic uint32_t weft__fence_word;
#endif

#define REAL_SYS                                                                                 \
    {                                                                                            \
        .malloc = malloc, .calloc = calloc, .realloc = realloc, .aligned_alloc = aligned_alloc,  \
        .pthread_create = pthread_create, .membarrier = sys_membarrier, .open = weft__real_open, \
        .pidfd_open = sys_pidfd_open, .sched_getaffinity = sched_getaffinity, .fork = fork,      \
        .posix_spawn = posix_spawn, .memfd_create = memfd_create, .mmap = mmap,                  \
        .socketpair = socketpair, .sendmsg = sendmsg,                                            \
    }

struct weft__sys weft__sys = REAL_SYS;

void weft__sys_reset(void)
{
    weft__sys = (struct weft__sys)REAL_SYS;
}

#ifdef WEFT_COVERAGE
void __gcov_dump(void); /* libgcov's, in every --coverage link */
#endif

void weft__coverage_dump(void)
{
#ifdef WEFT_COVERAGE
    __gcov_dump();
#endif
}

_Noreturn void weft__exit_now(int code)
{
    weft__coverage_dump();
    _exit(code); // GCOVR_EXCL_LINE: runs after the counters are written, so it is never counted
}

void *weft__malloc(size_t size)
{
    return weft__sys.malloc(size);
}

void *weft__calloc(size_t count, size_t size)
{
    return weft__sys.calloc(count, size);
}

void weft__zero(void *p, size_t size)
{
    memset(p, 0, size);
}

void *weft__zalloc(size_t size)
{
    void *p = weft__sys.malloc(size);
    if (p)
        weft__zero(p, size);
    return p;
}

void *weft__calloc_lines(size_t size)
{
    size_t n = (size + WEFT__CACHE_LINE - 1) / WEFT__CACHE_LINE * WEFT__CACHE_LINE;
    void *p = n >= size ? weft__sys.aligned_alloc(WEFT__CACHE_LINE, n) : NULL;
    if (p)
        memset(p, 0, n);
    return p;
}

char *weft__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = weft__malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}
