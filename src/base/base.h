/*
 * Internal base layer: what the public weft/base.h does not show. Deadlines
 * as absolute CLOCK_MONOTONIC nanoseconds, the table of
 * system calls that tests can redirect to inject faults, and small helpers.
 *
 * Nothing here is exported: names are weft__ and the library is built with
 * hidden visibility. Test programs link the static library to reach them.
 */
#ifndef WEFT_SRC_BASE_H
#define WEFT_SRC_BASE_H

#include <weft/base.h>

#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* An absolute time on CLOCK_MONOTONIC in nanoseconds; INT64_MAX is never. */
typedef int64_t weft__deadline_t;
#define WEFT__NEVER INT64_MAX

int64_t weft__now_ns(void);

/*
 * Turn a relative timeout in seconds into a deadline: negative means never,
 * 0 means now (try once), NaN is -EINVAL. Huge values saturate to never.
 */
int weft__deadline(double timeout, weft__deadline_t *out);
/* The same, counted from start (CLOCK_MONOTONIC ns) instead of now: for
 * a limit on something that began earlier. */
int weft__deadline_from(int64_t start, double timeout, weft__deadline_t *out);

/* The error a wait that gave up at its deadline reports: -EAGAIN when the
 * timeout was 0 (try once, as the conventions say), -ETIMEDOUT otherwise. */
int weft__timeout_error(double timeout);

/* An address hashed to `bits` bits (Fibonacci hashing: the top bits of
 * its product with 2^64 / phi), for the tables keyed by address. */
static inline size_t weft__hash_ptr(const void *p, unsigned bits)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15u) >> (64 - bits));
}

/* Bounded spinning: the CPU hint for a busy-wait iteration, and whether
 * spinning can pay at all (never with a single CPU to run on: the holder
 * cannot make progress while we spin). */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("" ::: "memory");
#endif
}
bool weft__spin_pays(void);
/* The quota's part of weft__spin_pays: at least 2 CPUs of cgroup quota
 * (quota.c's files opened with open_file). */
bool weft__quota_lets_spin(int (*open_file)(const char *path, int flags));
/* The cgroup CPU quota as CPUs (quota/period, 1.5 for 150000 over 100000):
 * the tightest from the process's cgroup up to the top of its mount;
 * INFINITY where there is none or it cannot be read (quota.c). */
double weft__cpu_quota(int (*open_file)(const char *path, int flags));

/*
 * Waiting out another thread that is between two steps of a lock-free
 * operation (it claimed a slot and has yet to fill it): a few pauses first,
 * doubling, for the common case of a thread running on another CPU, then
 * sched_yield(), so that a preempted thread, or one sharing our only CPU,
 * gets to finish; sched_yield() at once only with one CPU (spin.c, where it
 * lives beside the rest of the spin policy, says why not on a busy machine).
 */
typedef struct weft__stall {
    uint32_t pauses;
} weft__stall_t;
#define WEFT__STALL_INIT \
    {                    \
        1                \
    }
void weft__stall(weft__stall_t *s);

/*
 * A sequentially consistent fence, for the store-then-load-elsewhere
 * patterns (an eventcount's notify, a shutdown flag against a put) where
 * each side must see the other's store or have its own store seen. GCC's
 * ThreadSanitizer refuses atomic_thread_fence; there a locked
 * read-modify-write of a thread-local word stands in, which on x86 (where
 * the sanitizer builds run) is exactly as strong.
 */
#ifdef WEFT_TSAN
extern _Thread_local _Atomic uint32_t weft__fence_word;
#endif
static inline void weft__fence(void)
{
#ifdef WEFT_TSAN
    atomic_fetch_add(&weft__fence_word, 0);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

/*
 * The same fence right after a sequentially consistent read-modify-write
 * (a count of waiters raised before a look at the word they wait on): on
 * x86 every locked instruction is a full barrier already, so there only
 * the compiler is held back, as Linux's smp_mb__after_atomic. On aarch64
 * an acquire-release read-modify-write lets a later plain load of another
 * word pass its store, so the fence stays.
 */
static inline void weft__fence_after_atomic(void)
{
#if defined(__x86_64__) && !defined(WEFT_TSAN)
    atomic_signal_fence(memory_order_seq_cst);
#else
    weft__fence();
#endif
}

/*
 * Take `mutex` around every fork (fork.c), in ascending rank among the
 * guarded ones: a lower rank may be held while a higher one is taken.
 * in_child, if not NULL, runs in the child before the mutex is released.
 * Call from a library constructor.
 */
enum {
    WEFT__RANK_CHILDREN = 10,   /* process.c: the list of child processes */
    WEFT__RANK_FORKSERVER = 15, /* forkserver.c: the connection to the server */
    WEFT__RANK_POOLS = 20,      /* pool.c: the list of pools */
    WEFT__RANK_PPOOLS = 25,     /* ppool.c: the list of process pools */
    WEFT__RANK_PROGRESS = 30,   /* progress.c: the progress bar */
    WEFT__RANK_LOCKDEP = 90,    /* lockdep.c: innermost, taken under any of the above */
};
void weft__fork_guard(pthread_mutex_t *mutex, int rank, void (*in_child)(void));

/* weft's own constructors: before the boot of a spawned child, which runs
 * at priority 65535 (process/boot.c), and before a program's constructors
 * without a priority, in a static link too. */
#define WEFT__CONSTRUCTOR __attribute__((constructor(200)))

/* Data written by different threads is kept this far apart. */
#define WEFT__CACHE_LINE 64

/* Thread-local variables read on fast paths use the initial-exec model: one
 * %fs-relative load instead of a call to __tls_get_addr. This is safe for a
 * library linked at startup and, for the few bytes weft uses, for dlopen too
 * (glibc keeps static TLS space in reserve for that). */
#define WEFT__TLS_FAST __attribute__((tls_model("initial-exec")))

/* For slow paths kept out of line so that their callers' fast paths stay
 * free of the register saves the slow path would need. */
#define WEFT__NOINLINE __attribute__((noinline))
/* For a few lines on a path measured in nanoseconds, which the compiler's
 * size heuristics would otherwise call out of line. */
#define WEFT__INLINE inline __attribute__((always_inline))

/* Show the calling thread's CPUs to weft__spin_pays, once per thread: it
 * pays once the threads shown have more than one CPU between them (cpu.c).
 * Inline: every unpark asks. */
extern _Thread_local bool weft__cpus_shown WEFT__TLS_FAST;
void weft__show_cpus(void);
static inline void weft__note_cpus(void)
{
    if (__builtin_expect(!weft__cpus_shown, 0))
        weft__show_cpus();
}

/* The kernel thread id of the calling thread, cached per thread (inline:
 * the owner-checked locks read it on every acquire and release). tid.c's
 * own fork handler drops the cache (and the birth id's, below) in a forked
 * child, where the thread that forked is another thread. */
extern _Thread_local pid_t weft__cached_tid WEFT__TLS_FAST;
pid_t weft__gettid_slow(void);
static inline pid_t weft__gettid(void)
{
    pid_t tid = weft__cached_tid;
    return __builtin_expect(tid != 0, 1) ? tid : weft__gettid_slow();
}

/*
 * Who owns what an owner-checked primitive holds (an RLock, a critical
 * section, a write lock, a call_once in progress): the calling thread's id,
 * or in an async task the task's own owner id, so that two tasks on one
 * thread do not pass for each other. A task's id has WEFT__OWNER_TASK set
 * and 22 bits of number beside it, so it never equals a thread id (the
 * kernel's are below 2^22). Cached per thread in weft__owner_self, which
 * the async layer sets at every switch (0: work it out again); the fork
 * handler of tid.c forgets it with the thread id.
 */
#define WEFT__OWNER_TASK 0x00400000u
extern _Thread_local uint32_t weft__owner_self WEFT__TLS_FAST;
/* The running task's owner id (made on first use), or 0 outside a task;
 * set by the async layer. */
extern uint32_t (*_Atomic weft__task_owner)(void);
uint32_t weft__owner_id_slow(void);
static inline uint32_t weft__owner_id(void)
{
    uint32_t id = weft__owner_self;
    return __builtin_expect(id != 0, 1) ? id : weft__owner_id_slow();
}

/*
 * Birth ids (tid.c): a number that names one thread and that no other
 * thread of the system ever gets, unlike its id, which the kernel hands out
 * again once the thread has gone. weft__birth() is the calling thread's,
 * cached like its id; WEFT__BIRTH_UNKNOWN where it could not be learnt
 * (the kernel shows none, or the thread was out of descriptors when it
 * first asked), cached too, so that a thread names itself the same way for
 * as long as it lives. weft__birth_of(tid, &id) tells whether thread `tid`
 * lives (1) or has ended (0: no such thread, or a zombie) and, if it
 * lives, its birth id (0 if it cannot be learnt now).
 */
#define WEFT__BIRTH_UNKNOWN UINT64_MAX
extern _Thread_local uint64_t weft__cached_birth WEFT__TLS_FAST;
uint64_t weft__birth_slow(void);
static inline uint64_t weft__birth(void)
{
    uint64_t id = weft__cached_birth;
    return __builtin_expect(id != 0, 1) ? id : weft__birth_slow();
}
int weft__birth_of(pid_t tid, uint64_t *id);

/*
 * System calls and allocations that can fail go through this table so that a
 * test build can make them fail on purpose (SQLite's approach to fault
 * injection). weft__sys_reset() restores the real functions.
 */
struct msghdr; /* <sys/socket.h>'s, for those that use sendmsg */
struct weft__sys {
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t count, size_t size);
    void *(*realloc)(void *p, size_t size);
    void *(*aligned_alloc)(size_t alignment, size_t size);
    int (*pthread_create)(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *),
                          void *arg);
    int (*membarrier)(int cmd, unsigned flags, int cpu_id); /* 0, or -1 and errno */
    int (*open)(const char *path, int flags);               /* no O_CREAT: no mode */
    int (*pidfd_open)(pid_t pid, unsigned flags);           /* fd, or -1 and errno */
    int (*sched_getaffinity)(pid_t pid, size_t size, cpu_set_t *set);
    /* The process layer's: starting children, and the memory and sockets
     * shared with them. As the C library's: -1 and errno (mmap: MAP_FAILED;
     * posix_spawn: the error number). */
    pid_t (*fork)(void);
    int (*posix_spawn)(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
    int (*memfd_create)(const char *name, unsigned flags);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
    int (*socketpair)(int domain, int type, int protocol, int sv[2]);
    ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
};
extern struct weft__sys weft__sys;
void weft__sys_reset(void);
/* The C library's open, which the table holds unless a test changes it:
 * for callers that must not read the table (cpu.c's spin decision). */
int weft__real_open(const char *path, int flags);
/* Read a small file (of /proc) whole into buf, NUL-terminated, opening it
 * with open_file: the bytes read (0 for none, or a read error), or -errno
 * if it cannot be opened. */
ssize_t weft__read_text(int (*open_file)(const char *path, int flags), const char *path, char *buf,
                        size_t size);

/* End the calling process at once with `code`, as _exit does (a forked
 * child must not run the parent's atexit handlers or flush its stdio). In a
 * coverage build (WEFT_COVERAGE) the coverage counters are written first,
 * which _exit would skip. */
_Noreturn void weft__exit_now(int code);
/* Write the coverage counters now, in a coverage build; nothing otherwise.
 * For every way out of the process that skips exit(): weft__exit_now, and
 * the abort of a failed WEFT_GUARD (sync/guard.c). */
void weft__coverage_dump(void);

/* Allocation that reports failure (callers turn NULL into -ENOMEM). */
void *weft__malloc(size_t size);
void *weft__calloc(size_t count, size_t size);
char *weft__strdup(const char *s);
/* Zeroed memory, for a struct allocated again and again (an async task):
 * malloc, which takes from the thread's cache of freed blocks (glibc's
 * calloc before 2.41 never does), and the C library's memset. A struct
 * zeroed where its size is known compiles to `rep stos`, whose start-up
 * cost half of a spawn's own work for a few hundred bytes; the library's
 * vector stores take a few cycles. */
void *weft__zalloc(size_t size);
/* The same memset for memory the caller has (not inlined, for the same
 * reason). */
void weft__zero(void *p, size_t size);
/* Zeroed memory that starts on a cache line (for structs whose fields
 * written by different threads are laid out a line apart); free() it. */
void *weft__calloc_lines(size_t size);

/* An opts.daemon (enum weft_daemon) as a flag: 1 or 0, `inherited` for
 * WEFT_DAEMON_INHERIT; -EINVAL for a value that is not in the enum. */
static inline int weft__daemon_flag(int daemon, bool inherited)
{
    switch (daemon) {
    case WEFT_DAEMON_INHERIT:
        return inherited;
    case WEFT_DAEMON_YES:
        return 1;
    case WEFT_DAEMON_NO:
        return 0;
    }
    return -EINVAL;
}

#define WEFT__UNUSED(x)   ((void)(x))
#define WEFT__LIKELY(x)   __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Rarely taken paths: out of line and laid out away from the hot code. */
#define WEFT__COLD __attribute__((cold, noinline))

/* ThreadSanitizer annotations of the hand-offs (active under TSan only). */
#include "base/tsan.h"

#endif /* WEFT_SRC_BASE_H */
