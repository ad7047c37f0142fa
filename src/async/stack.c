/*
 * Task stacks (design in stack.h).
 */
#include "async/stack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; Debian 12's headers predate it */
#endif

static _Atomic int guard_kind; /* enum weft__stack_guard */

size_t weft__page_size(void)
{
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (WEFT__UNLIKELY(!p)) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

/* Whether a guard installed by advice faults: the kernel reports a fault
 * in a system call's buffer as EFAULT, where a real access would be
 * SIGSEGV. */
static bool advice_guard_faults(char *m, size_t page)
{
    if (madvise(m, page, MADV_GUARD_INSTALL) != 0)
        return false;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    bool faults = write(p[1], m, 1) == -1 && errno == EFAULT;
    close(p[0]);
    close(p[1]);
    return faults;
}

static enum weft__stack_guard probe(void)
{
    size_t page = weft__page_size();
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return WEFT__GUARD_UNKNOWN; /* ask again at the next stack */
    enum weft__stack_guard kind =
        advice_guard_faults(m, page) ? WEFT__GUARD_ADVICE : WEFT__GUARD_MPROTECT;
    munmap(m, 2 * page);
    return kind;
}

enum weft__stack_guard weft__stack_guard_kind(void)
{
    int kind = atomic_load_explicit(&guard_kind, memory_order_relaxed);
    if (WEFT__UNLIKELY(kind == WEFT__GUARD_UNKNOWN)) {
        kind = (int)probe();
        atomic_store_explicit(&guard_kind, kind, memory_order_relaxed);
    }
    return (enum weft__stack_guard)kind;
}

void weft__stack_force_guard(enum weft__stack_guard kind)
{
    atomic_store_explicit(&guard_kind, (int)kind, memory_order_relaxed);
}

/* A number read from a file of /proc, or -1. */
static long read_number(const char *path)
{
    char buf[32];
    return weft__read_text(weft__real_open, path, buf, sizeof buf) > 0 ? strtol(buf, NULL, 10) : -1;
}

/* The process's mappings: the lines of /proc/self/maps, or -1. */
static long count_mappings(void)
{
    int fd = weft__real_open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return n < 0 ? -1 : lines;
}

/* ENOMEM from mmap or mprotect is also what the kernel says when the
 * process has as many mappings as vm.max_map_count allows: tell which. */
WEFT__COLD static int map_error(int err)
{
    if (err != ENOMEM)
        return -err;
    long max = read_number("/proc/sys/vm/max_map_count"), now = count_mappings();
    return max > 0 && now >= 0 && now + 4 >= max ? WEFT_EMAPCOUNT : -ENOMEM;
}

int weft__stack_map(struct weft__stack *s, size_t size)
{
    size_t page = weft__page_size();
    if (size == 0 || size > SIZE_MAX / 2)
        return -EINVAL;
    size_t len = (size + page - 1) / page * page + page;
    enum weft__stack_guard kind = weft__stack_guard_kind();
    char *m = weft__sys.mmap(NULL, len, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return map_error(errno);
    madvise(m, len, MADV_NOHUGEPAGE); /* a hint: nothing to do if refused */
    bool guarded = kind == WEFT__GUARD_ADVICE ? madvise(m, page, MADV_GUARD_INSTALL) == 0
                                              : mprotect(m, page, PROT_NONE) == 0;
    if (!guarded) {
        int err = errno;
        munmap(m, len);
        return map_error(err);
    }
    s->map = m;
    s->map_len = len;
    return 0;
}

void weft__stack_unmap(struct weft__stack *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    s->map = NULL;
    s->map_len = 0;
}
