/*
 * Task stacks (design in stack.h).
 */
#include "async/stack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; Debian 12's headers predate it */
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define PIDFD_SELF (-10001) /* PIDFD_SELF_THREAD_GROUP, Linux 6.15 */

enum { GUARDS_AT_ONCE = 64 };

static _Atomic int guard_kind; /* enum weft__stack_guard */

size_t weft__page;

WEFT__CONSTRUCTOR static void page_boot(void)
{
    weft__page = (size_t)sysconf(_SC_PAGESIZE);
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

/* The guards of several stacks in one system call: process_madvise on the
 * calling process (PIDFD_SELF, Linux 6.15, which unlike a pidfd of our own
 * still names us after a fork), which since 6.13 takes any advice for
 * oneself. Returns the bytes advised, or -1. */
static long advise_many(const struct iovec *iov, size_t n)
{
    return syscall(SYS_process_madvise, PIDFD_SELF, iov, n, MADV_GUARD_INSTALL, 0);
}

static bool batch_guard_faults(char *m, size_t page)
{
    struct iovec iov = {m, page};
    return advise_many(&iov, 1) == (long)page && advice_guard_faults(m, page);
}

static enum weft__stack_guard probe(void)
{
    size_t page = weft__page_size();
    char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return WEFT__GUARD_UNKNOWN; /* ask again at the next stack */
    enum weft__stack_guard kind = !advice_guard_faults(m, page)            ? WEFT__GUARD_MPROTECT
                                  : batch_guard_faults(m + 2 * page, page) ? WEFT__GUARD_ADVICE_MANY
                                                                           : WEFT__GUARD_ADVICE;
    munmap(m, 4 * page);
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

/* Guard the first page of each of n stacks of len bytes from m: true, or
 * false with errno. */
static bool guard(char *m, size_t n, size_t len, size_t page, enum weft__stack_guard kind)
{
    size_t done = 0;
    if (kind == WEFT__GUARD_ADVICE_MANY) {
        struct iovec iov[GUARDS_AT_ONCE];
        while (done < n) {
            size_t k = n - done < GUARDS_AT_ONCE ? n - done : GUARDS_AT_ONCE;
            for (size_t i = 0; i < k; i++)
                iov[i] = (struct iovec){m + (done + i) * len, page};
            if (advise_many(iov, k) != (long)(k * page))
                break; /* the rest one by one */
            done += k;
        }
    }
    for (; done < n; done++)
        if ((kind == WEFT__GUARD_MPROTECT ? mprotect(m + done * len, page, PROT_NONE)
                                          : madvise(m + done * len, page, MADV_GUARD_INSTALL)) != 0)
            return false;
    return true;
}

int weft__stack_map_many(struct weft__stack *s, size_t n, size_t size)
{
    size_t page = weft__page_size();
    if (size == 0 || size > SIZE_MAX / 2 || n == 0)
        return -EINVAL;
    size_t len = (size + page - 1) / page * page + page;
    if (n > SIZE_MAX / 2 / len)
        return -EINVAL;
    enum weft__stack_guard kind = weft__stack_guard_kind();
    char *m = weft__sys.mmap(NULL, n * len, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return map_error(errno);
    madvise(m, n * len, MADV_NOHUGEPAGE); /* a hint: nothing to do if refused */
    if (!guard(m, n, len, page, kind)) {
        int err = errno;
        munmap(m, n * len);
        return map_error(err);
    }
    for (size_t i = 0; i < n; i++) /* each unmapped on its own later */
        s[i] = (struct weft__stack){m + i * len, len};
    return 0;
}

int weft__stack_map(struct weft__stack *s, size_t size)
{
    return weft__stack_map_many(s, 1, size);
}

void weft__stack_unmap(struct weft__stack *s)
{
    if (s->map)
        munmap(s->map, s->map_len);
    s->map = NULL;
    s->map_len = 0;
}
