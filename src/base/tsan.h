/*
 * ThreadSanitizer annotations, compiled into every build and active only
 * in a process that runs the TSan runtime.
 *
 * Why. weft orders threads with its own atomics and futexes. A program
 * built with -fsanitize=thread links the library as shipped, which is not
 * instrumented: TSan sees none of those atomics, so every piece of data a
 * weft primitive guards would look like a race. What TSan does see of the
 * library is what goes through its interceptors (pthread_create and _join,
 * malloc and free, memcpy and memset), and those accesses need ordering
 * too. So each hand-off tells TSan itself: the side that publishes calls
 * weft__tsan_release(addr) before the store that publishes, and the side
 * that observes calls weft__tsan_acquire(addr) after the load that saw it,
 * on the same address. In weft's own TSan build (WEFT_SANITIZE=thread) the
 * annotations are the same calls, beside the atomics TSan sees there.
 *
 * How. The runtime's entry points (declared as in LLVM's and GCC's
 * <sanitizer/tsan_interface.h>) are weak undefined references. Without the
 * runtime they resolve to NULL: the dynamic linker leaves them so for
 * libweft.so, the link editor for a program linked with libweft.a. A
 * program built with TSan has them in its executable (clang's static
 * runtime) or in libtsan.so (GCC), both searched before libweft, and
 * resolves them there. Every annotation is then one load of the entry's
 * address and a branch that, outside TSan, is never taken; the calls sit
 * behind it. The references are undefined, so nothing is exported beyond
 * the weft_ API (build.exports checks). __tsan_acquire stands for the set:
 * runtimes that have it (GCC 9 and LLVM 9 on) have the mutex annotations,
 * which are older.
 *
 * Fast paths. The lock and unlock fast paths stay leaf code without a call:
 * they test WEFT__TSAN_ON() once and, under TSan, leave for the annotated
 * (slow) path with a tail call.
 *
 * What is annotated. Lock (releasable by any thread, as in Python) and the
 * hand-off primitives (Semaphore, Event, WaitGroup, once, futures, pool
 * tasks, threads' start and end) with release/acquire on the object; the
 * owner-checked locks (RLock, the critical section, RWLock) as mutexes
 * (pre/post lock and unlock), so that TSan's reports name the locks held
 * and its deadlock detector sees them. A Condition needs nothing of its
 * own: it hands off through its lock; a Barrier's waiters leave without
 * the lock, so the end of a cycle is released on its sequence word. The queue stores
 * annotate each cell (ring.c, chain.c) or hand off under a Lock (locked.c).
 */
#ifndef WEFT_SRC_BASE_TSAN_H
#define WEFT_SRC_BASE_TSAN_H

#include <stddef.h>

#define WEFT__TSAN_API __attribute__((weak, visibility("default")))
WEFT__TSAN_API void __tsan_acquire(void *addr);
WEFT__TSAN_API void __tsan_release(void *addr);
WEFT__TSAN_API void __tsan_mutex_pre_lock(void *addr, unsigned flags);
WEFT__TSAN_API void __tsan_mutex_post_lock(void *addr, unsigned flags, int recursion);
WEFT__TSAN_API int __tsan_mutex_pre_unlock(void *addr, unsigned flags);
WEFT__TSAN_API void __tsan_mutex_post_unlock(void *addr, unsigned flags);

/* The flags of the mutex annotations (their values are the runtime's ABI). */
#define WEFT__TSAN_READ       (1u << 3) /* a read (shared) lock */
#define WEFT__TSAN_TRY        (1u << 4) /* a try-lock: a timeout was given */
#define WEFT__TSAN_TRY_FAILED (1u << 5) /* ... and it failed (post_lock only) */

/* Whether the process runs the TSan runtime (constant for its lifetime). */
#define WEFT__TSAN_ON() __builtin_expect(__tsan_acquire != NULL, 0)

/* What this thread did so far happens before whatever follows a later
 * weft__tsan_acquire(addr) in any thread. */
static inline void weft__tsan_release(const void *addr)
{
    if (WEFT__TSAN_ON())
        __tsan_release((void *)addr);
}

static inline void weft__tsan_acquire(const void *addr)
{
    if (WEFT__TSAN_ON())
        __tsan_acquire((void *)addr);
}

/* A mutex: pre_lock before trying, post_lock after (with TRY_FAILED if it
 * was not taken); pre_unlock and post_unlock around the release. */
static inline void weft__tsan_pre_lock(const void *addr, unsigned flags)
{
    if (WEFT__TSAN_ON())
        __tsan_mutex_pre_lock((void *)addr, flags);
}

static inline void weft__tsan_post_lock(const void *addr, unsigned flags)
{
    if (WEFT__TSAN_ON())
        __tsan_mutex_post_lock((void *)addr, flags, 0);
}

static inline void weft__tsan_pre_unlock(const void *addr, unsigned flags)
{
    if (WEFT__TSAN_ON())
        __tsan_mutex_pre_unlock((void *)addr, flags);
}

static inline void weft__tsan_post_unlock(const void *addr, unsigned flags)
{
    if (WEFT__TSAN_ON())
        __tsan_mutex_post_unlock((void *)addr, flags);
}

#endif /* WEFT_SRC_BASE_TSAN_H */
