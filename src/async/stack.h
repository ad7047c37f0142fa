/*
 * Task stacks: anonymous mappings, committed page by page as they are
 * touched, with a guard page below that faults.
 *
 * The guard is installed with MADV_GUARD_INSTALL where the kernel has it
 * (Linux 6.13 on): the page stays part of the one mapping, so a million
 * stacks cost a million mappings' worth of nothing, not two million
 * entries against vm.max_map_count. Elsewhere the guard is an mprotect'ed
 * page, a mapping of its own: about 32k stacks fill the default count of
 * 65530, and then weft says so (WEFT_EMAPCOUNT) rather than a bare
 * -ENOMEM. The kind of guard is decided once, by a probe that checks that
 * an installed guard really faults (qemu-user accepts the advice and
 * ignores it): a write(2) from the guard page must fail with EFAULT. Where
 * process_madvise takes the advice for the calling process (PIDFD_SELF),
 * the guards of a batch of stacks mapped together go in one call: a new
 * stack then costs a quarter of a microsecond here instead of three
 * (mmap, two madvise).
 *
 * MAP_NORESERVE: a stack's untouched pages reserve nothing, so a million
 * 64 KiB stacks fit under the kernel's overcommit heuristic. MAP_STACK (and
 * MADV_NOHUGEPAGE, for kernels before 6.7, where MAP_STACK does not imply
 * it) keep transparent huge pages out: a stack that touches one page must
 * not be backed by two megabytes.
 */
#ifndef WEFT_SRC_ASYNC_STACK_H
#define WEFT_SRC_ASYNC_STACK_H

#include "base/base.h"

#include <stddef.h>

struct weft__stack {
    char *map;      /* the mapping: the guard page, then the stack */
    size_t map_len; /* both, in bytes */
};

/* The page size, and the guard's (one page), read at load time: a spawn
 * asks for it several times. */
extern size_t weft__page;
static inline size_t weft__page_size(void)
{
    return weft__page;
}

/* Map a stack of at least `size` usable bytes (rounded up to pages).
 * 0, -ENOMEM, or WEFT_EMAPCOUNT when the process has run out of mappings. */
int weft__stack_map(struct weft__stack *s, size_t size);
/* n of them at once, s[0..n-1], from one mapping (each unmapped on its own
 * later): one mmap, and the guards as few system calls as the kernel
 * allows. All or none. */
int weft__stack_map_many(struct weft__stack *s, size_t n, size_t size);
void weft__stack_unmap(struct weft__stack *s);

/* The usable part. */
static inline char *weft__stack_lo(const struct weft__stack *s)
{
    return s->map + weft__page_size();
}
static inline size_t weft__stack_size(const struct weft__stack *s)
{
    return s->map_len - weft__page_size();
}

/* Whether addr is in the stack's guard page. */
static inline bool weft__stack_guard_hit(const struct weft__stack *s, const void *addr)
{
    return (const char *)addr >= s->map && (const char *)addr < weft__stack_lo(s);
}

/* How guards are made: decided by the probe on first use, or forced by a
 * test (before the first stack is mapped). */
enum weft__stack_guard {
    WEFT__GUARD_UNKNOWN,
    WEFT__GUARD_ADVICE,      /* MADV_GUARD_INSTALL, a call per stack */
    WEFT__GUARD_ADVICE_MANY, /* the same, many stacks a call (process_madvise) */
    WEFT__GUARD_MPROTECT,
};
enum weft__stack_guard weft__stack_guard_kind(void);
void weft__stack_force_guard(enum weft__stack_guard kind);

#endif /* WEFT_SRC_ASYNC_STACK_H */
