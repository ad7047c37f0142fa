/*
 * Who a thread is: its kernel id and its birth id.
 *
 * The kernel id (what top -H and /proc/<pid>/task show) comes from gettid(),
 * a system call, so it is cached per thread; a forked child must forget the
 * cache, because the thread that forked has a new id there (glibc dropped
 * its own pid cache for exactly this trap).
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
 *
 * Birth ids. Kernel ids are handed out again once their thread is gone
 * (cyclically below pid_max, which is 32768 on many machines, and at once
 * by anyone who writes ns_last_pid or uses clone3's set_tid), so a lock
 * that names its owner by id alone takes a newcomer with the dead owner's
 * id for the owner. A birth id tells them apart:
 *
 *   - Linux 6.9 and later give every thread's struct pid an inode number in
 *     pidfs from a 64-bit counter that is never reset: a pidfd opened on the
 *     thread (PIDFD_THREAD) shows it, and it is unique for the life of the
 *     system. This is the birth id wherever the kernel has pidfs (checked
 *     once, by the file system of a pidfd: before pidfs, every pidfd shared
 *     one anonymous inode). The same pidfd also says whether the thread has
 *     ended (it polls readable), zombies included.
 *   - Elsewhere, the thread's start time from /proc/<tid>/stat, in clock
 *     ticks since boot (10 ms), with bit 63 set so that the two kinds never
 *     compare equal. With the id it names a thread as psutil's (pid,
 *     create_time) does: the kernel hands an id out again only after going
 *     round all of pid_max, which takes far longer than a tick, so only a
 *     deliberate reuse within the same 10 ms (ns_last_pid, set_tid) goes
 *     unseen. That is the graceful fallback, not the design.
 *
 * Tests reach the fallback on any kernel through the fault-injection table
 * (base.h): a pidfd_open that fails from its first call on is a kernel
 * without pidfds, and the decision holds for the rest of the process; an
 * open that fails is a system without /proc, where only kill(tid, 0) is
 * left to tell whether the thread lives (a zombie then counts as alive).
 *
 * glibc's robust mutexes need neither, because the kernel marks a robust
 * futex at the owner's exit, before its id can be reused; that list belongs
 * to the C library (owned.h).
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PIDFD_THREAD_FLAG O_EXCL /* PIDFD_THREAD, Linux 6.9 */
#define PIDFS_MAGIC_FS    0x50494446
#define TICKS_KIND        (1ull << 63)

_Thread_local pid_t weft__cached_tid WEFT__TLS_FAST;
_Thread_local uint64_t weft__cached_birth WEFT__TLS_FAST;

_Thread_local uint32_t weft__owner_self WEFT__TLS_FAST;
uint32_t (*_Atomic weft__task_owner)(void);

pid_t weft__gettid_slow(void)
{
    weft__cached_tid = (pid_t)syscall(SYS_gettid);
    return weft__cached_tid;
}

uint32_t weft__owner_id_slow(void)
{
    uint32_t (*task_owner)(void) = atomic_load_explicit(&weft__task_owner, memory_order_acquire);
    uint32_t id = task_owner ? task_owner() : 0;
    weft__owner_self = id ? id : (uint32_t)weft__gettid();
    return weft__owner_self;
}

/* In the child: only the forking thread exists, so its cache is all. */
static void forget_in_child(void)
{
    weft__cached_tid = 0;
    weft__cached_birth = 0;
    weft__owner_self = 0;
}

__attribute__((constructor(101))) static void tid_init(void)
{
    /* Only possible when out of memory while the library loads, before
     * main: no test can get there. */
    if (pthread_atfork(NULL, NULL, forget_in_child) != 0) { // GCOVR_EXCL_START
        fputs("weft: cannot register the fork handler\n", stderr);
        abort();
    } // GCOVR_EXCL_STOP
}

static int open_pidfd(pid_t tid)
{
    return weft__sys.pidfd_open(tid, PIDFD_THREAD_FLAG);
}

/* Whether pidfds carry birth ids here: 1 or 0, decided once per process
 * (every process of a system decides alike), or -1 while a pidfd cannot be
 * opened for want of descriptors or memory. Such a failure says nothing
 * about the kernel: deciding on it would give this process start times
 * while every other process uses pidfs inodes, and as the two never match,
 * each side would take the other's live threads for dead. */
static int have_pidfs(void)
{
    static _Atomic int known = -1;
    int ok = atomic_load_explicit(&known, memory_order_relaxed);
    if (ok < 0) {
        int fd = open_pidfd(weft__gettid());
        if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOMEM))
            return -1;
        struct statfs fs;
        ok = fd >= 0 && fstatfs(fd, &fs) == 0 && fs.f_type == PIDFS_MAGIC_FS;
        if (fd >= 0)
            close(fd);
        atomic_store_explicit(&known, ok, memory_order_relaxed);
    }
    return ok;
}

/* From a pidfd: 1 and the inode if the thread lives, 0 if it has ended. */
static int from_pidfd(int fd, uint64_t *id)
{
    struct stat st;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, 0) == 0 && fstat(fd, &st) == 0;
    *id = rc ? (uint64_t)st.st_ino : 0;
    close(fd);
    return rc;
}

/* From /proc/<tid>/stat: 1 and the start time if the thread lives, 0 if it
 * has ended (a zombie is dead), -1 if /proc cannot tell. A thread missing
 * from /proc is no proof that it ended: /proc may be unmounted (a chroot)
 * or hide other users' threads (hidepid), and both show as ENOENT; taking
 * that for a death would hand a live owner's lock to a waiter. */
static int from_proc(pid_t tid, uint64_t *id)
{
    char path[32], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)tid);
    ssize_t n = weft__read_text(weft__sys.open, path, buf, sizeof buf);
    if (n < 0)
        return n == -ESRCH ? 0 : -1;
    if (n == 0)
        return 0; /* the thread ended while we opened it */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    /* After the state (field 3), 18 fields up to the start time (22). */
    p += 2;
    for (int field = 3; field < 22 && p; field++)
        if ((p = strchr(p, ' ')))
            p++;
    *id = p ? strtoull(p, NULL, 10) | TICKS_KIND : 0;
    return 1;
}

int weft__birth_of(pid_t tid, uint64_t *id)
{
    *id = 0;
    int pidfs = have_pidfs();
    if (pidfs > 0) {
        int fd = open_pidfd(tid);
        if (fd >= 0)
            return from_pidfd(fd, id);
        if (errno == ESRCH)
            return 0;
    }
    /* Out of descriptors, say, or no pidfs: judge by /proc, with an id
     * only where start times are the kind of birth id. */
    uint64_t ticks = 0; /* from_proc leaves it alone for an ended thread */
    int rc = from_proc(tid, &ticks);
    if (rc < 0) /* /proc cannot tell */
        return !(kill(tid, 0) < 0 && errno == ESRCH);
    if (pidfs == 0)
        *id = ticks;
    return rc;
}

uint64_t weft__birth_slow(void)
{
    uint64_t id;
    weft__birth_of(weft__gettid(), &id);
    weft__cached_birth = id ? id : WEFT__BIRTH_UNKNOWN;
    return weft__cached_birth;
}
