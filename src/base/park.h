/*
 * Parking: the one place where every blocking wait in weft sleeps.
 *
 * A primitive keeps its state in words of its own and decides by itself
 * whether to wait (Lock's held bit and sleeper count, a semaphore's value,
 * a future's state). When it must wait it parks on one of those words,
 * and whoever changes the word in a way a waiter needs unparks it: the
 * contract of Linux's futex, and of WebKit's ParkingLot, which the design
 * follows.
 *
 *     weft__park(word, expected, deadline, flags)
 *         sleep while *word == expected (checked atomically against
 *         unparks), until an unpark, the deadline or a spurious wake-up:
 *         0, or -ETIMEDOUT once the deadline has passed. The caller
 *         re-checks its own condition either way.
 *     weft__unpark(word, n, flags)
 *         wake up to n threads (or tasks) parked on word.
 *     weft__park_fd(fd, events, deadline)
 *         the same for a descriptor: sleep until it is ready for any of
 *         events (WEFT_READABLE, WEFT_WRITABLE: a process's pidfd or
 *         status pipe, a Pipe end, weft_wait_fd).
 *
 * Why one place: it is where the async layer hooks in. A thread that runs
 * an event loop fills the per-thread slot `weft__parker`, and a park from
 * one of its tasks then suspends the task alone; tasks parked so are
 * counted in `weft__parked_tasks` (a loop that runs alone holds one count
 * there for all of its own), and while any are, an unpark asks that
 * layer (`weft__task_unpark`) to wake tasks first and the futex only for
 * the rest, so n counts tasks and threads together. Plain threads (the
 * slot empty, no task parked) sleep on the futex as before, and an unpark
 * costs one fence and one load more than the futex wake it makes. The
 * fence pairs with the one a parking task makes between counting itself
 * and checking its word, as the kernel's futex hash does: without it, a
 * waker whose word change still sits in its store buffer could miss a task
 * that is about to find the old value.
 *
 * The trace layer's hooks (base/hooks.h) see every park that sleeps, with
 * the kind of wait in the flags, so a trace shows waits that slept and the
 * objects they were for. The fast paths of the primitives (an uncontended
 * acquire or release) never come here.
 *
 * Spinning before parking is decided in one place too: see base/spin.h.
 */
#ifndef WEFT_SRC_BASE_PARK_H
#define WEFT_SRC_BASE_PARK_H

#include "base/base.h"

/* Flags: the word may be in memory shared by several processes; no unpark
 * will come through the word (a task's park that only its own loop ends: by
 * its timer, a cancellation, or a task of the loop that it waits for
 * ending; a thread's sleeps until its deadline); and what the wait is for,
 * in bits 8-15 (for tracing and tests). */
#define WEFT__PARK_SHARED      1u
#define WEFT__PARK_LOOP        2u
#define WEFT__PARK_KIND(flags) (((flags) >> 8) & 0xffu)
enum weft__wait_kind {
    WEFT__WAIT_LOCK = 1 << 8,   /* Lock */
    WEFT__WAIT_OWNED = 2 << 8,  /* RLock, critical section, shared Lock */
    WEFT__WAIT_COND = 3 << 8,   /* Condition */
    WEFT__WAIT_SEM = 4 << 8,    /* Semaphore */
    WEFT__WAIT_EVENT = 5 << 8,  /* Event */
    WEFT__WAIT_GROUP = 6 << 8,  /* WaitGroup */
    WEFT__WAIT_ONCE = 7 << 8,   /* once */
    WEFT__WAIT_RWLOCK = 8 << 8, /* RWLock */
    WEFT__WAIT_QUEUE = 9 << 8,  /* Queue: an item, room, all tasks done */
    WEFT__WAIT_POOL = 10 << 8,  /* pool: an idle worker, weft_wait, as_completed */
    WEFT__WAIT_FUTURE = 11 << 8,
    WEFT__WAIT_THREAD = 12 << 8,  /* a thread's join, its id */
    WEFT__WAIT_TIMER = 13 << 8,   /* Timer */
    WEFT__WAIT_PROCESS = 14 << 8, /* process join, Pipe, process pool, process Queue */
    WEFT__WAIT_SLEEP = 15 << 8,   /* weft_sleep */
    WEFT__WAIT_BARRIER = 16 << 8, /* Barrier */
    WEFT__WAIT_GIL = 17 << 8,     /* the GIL */
    WEFT__WAIT_FD = 18 << 8,      /* weft_wait_fd */
};

/* The flags of a wait of `kind` on a word that is process-shared or not. */
static inline unsigned weft__park_flags(unsigned kind, bool shared)
{
    return kind | (shared ? WEFT__PARK_SHARED : 0);
}

int weft__park(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline,
               unsigned flags);
void weft__unpark(_Atomic uint32_t *word, int n, unsigned flags);
/* weft__unpark right after a read-modify-write of word (the eventcount's
 * bump): its fence is then weft__fence_after_atomic's. */
void weft__unpark_after_atomic(_Atomic uint32_t *word, int n, unsigned flags);
/* weft__unpark for a word on which the caller knows no thread sleeps (it
 * counts its task waiters apart): no futex system call. */
void weft__unpark_tasks(_Atomic uint32_t *word, int n, unsigned flags);
/* The events of `events` (WEFT_READABLE, WEFT_WRITABLE) fd is ready for, a
 * nonzero mask (all of them at end of file, a hang-up or an error), 0 at
 * the deadline, -errno if it cannot be waited on. */
int weft__park_fd(int fd, unsigned events, weft__deadline_t deadline, unsigned flags);

/*
 * The async layer's side. A parker parks the calling task on a word (with
 * weft__park's contract: it must check *word == expected after counting
 * the task in weft__parked_tasks and a full fence, and under the same lock
 * as its unpark, so that no wake-up is lost) or on a descriptor.
 *
 * A word parked on with WEFT__PARK_SHARED may be unparked by another
 * process, whose weft__unpark counts only its own tasks and so wakes the
 * futex alone: a parker must also end such a park on a futex wake of the
 * word (or let the thread sleep on the futex), else that wake-up is lost.
 */
struct weft__parker {
    int (*park)(struct weft__parker *self, _Atomic uint32_t *word, uint32_t expected,
                weft__deadline_t deadline, unsigned flags);
    int (*park_fd)(struct weft__parker *self, int fd, unsigned events, weft__deadline_t deadline,
                   unsigned flags);
    /* Deliver a cancellation again at the next park (may be NULL). */
    void (*recancel)(struct weft__parker *self);
    /* Whether the task may poll for a lock's holder to leave before it
     * parks: true only while other threads run tasks of its run (M:N mode),
     * where the holder may be running; NULL where it never may. */
    bool (*may_poll)(struct weft__parker *self);
};

/*
 * A park in a task may also return -ECANCELED: the task was cancelled, and
 * the park ended without a wake-up, like a timeout (weft/async.h). A waiter
 * gives up then as it does at its deadline, and returns -ECANCELED, taking
 * nothing more (no last try for a unit or an item, as at a deadline). One
 * that finds it was granted what it waited for after all (a Condition's
 * token), or that waits on regardless (an internal lock, a barrier's
 * drain), keeps it and succeeds, and must call weft__park_recancel() once
 * it will park no more, so that the task learns of the cancellation at its
 * next wait. (Calling it and then parking again in the same operation
 * would return -ECANCELED at once, again and again.)
 */
void weft__park_recancel(void);

/* The result of a wait whose park ended without a wake-up (parked is
 * -ETIMEDOUT or -ECANCELED), given whether the waiter got what it waited
 * for after all: 0 then (and a cancellation is kept for later), else the
 * park's error. */
static inline int weft__park_outcome(int parked, bool got)
{
    if (!got)
        return parked;
    if (parked == -ECANCELED)
        weft__park_recancel();
    return 0;
}
/* The calling thread's parker: NULL for a plain thread. */
extern _Thread_local struct weft__parker *weft__parker WEFT__TLS_FAST;
/* What a plain thread does: for a parker that must block its thread after
 * all (a word shared with other processes, no memory for a timer). */
int weft__park_futex(_Atomic uint32_t *word, uint32_t expected, weft__deadline_t deadline,
                     unsigned flags);
int weft__park_fd_poll(int fd, unsigned events, weft__deadline_t deadline);
/* The events of `events` that poll's or epoll's revents say are ready
 * (both mean the same in their POLL and EPOLL forms). */
unsigned weft__fd_ready(unsigned events, uint32_t revents);
/* The poll (and epoll) bits to ask for `events`. */
uint32_t weft__fd_interest(unsigned events);
/*
 * What the layers below keep for the running task, apart from its thread:
 * one record in each task, and weft__task_rec pointing at the running
 * task's (NULL outside tasks), one store at each switch.
 *
 * gils: the GIL's task side (gil.c fills it, the async layer keeps it),
 * the GILs the task holds, which it lets go of while it is suspended and
 * takes back when it resumes, so that other threads (and the loop's other
 * tasks) may hold them meanwhile. The GIL layer adds and removes entries
 * as the task acquires and releases, and installs the two hooks the loop
 * calls around a suspension (and at a task's end, suspend alone).
 *
 * lockdep: the lock-order checker's record of the locks the task holds
 * (sync/lockdep.c), since tasks of one thread take and hold locks apart;
 * the checker makes it when the task first takes a lock and sets
 * weft__lockdep_task_end, which the loop calls when a task with a record
 * ends. Outside tasks the thread's own record serves.
 *
 * reads_held: an RWLock's count of read locks held, which lets a holder
 * read again past waiting writers (sync/rwlock.c): the task's own, as it
 * may hold reads apart from its thread's other tasks, and in M:N mode move
 * to another thread while it holds them.
 *
 * A task may wait between two lookups in one function and come back on
 * another thread (M:N mode), and a compiler may keep a thread's address
 * (on aarch64, the thread pointer register) across the wait: a lookup
 * after a wait goes through a function that is not inlined.
 */
#define WEFT__TASK_GILS 4 /* GILs a task can hold at once and still have let go */
struct weft__task_gils {
    uint32_t n;
    struct {
        void *gil;
        int depth;
    } held[WEFT__TASK_GILS];
};
struct weft__task_rec {
    struct weft__task_gils gils;
    void *lockdep;
    uint32_t reads_held;
};
extern _Thread_local struct weft__task_rec *weft__task_rec WEFT__TLS_FAST;
extern void (*_Atomic weft__gils_suspend)(struct weft__task_gils *held);
extern void (*_Atomic weft__gils_resume)(struct weft__task_gils *held);
extern void (*_Atomic weft__lockdep_task_end)(void **slot);

/*
 * A child forked to run a function (weft__child_run) may have been forked
 * from a task: it is then on that task's stack, with the task's parker in
 * its slot and the loop still the thread's. The loop and its other tasks
 * stay with the parent: the child must wait as a thread does (else its
 * first wait would run the parent's tasks in the child) and may run a loop
 * of its own. weft__park_leave_loop empties the slot and calls
 * weft__loop_forget, which the async layer sets once a loop has run.
 */
void weft__park_leave_loop(void);
extern void (*_Atomic weft__loop_forget)(void);
/* Tasks parked now, in the whole process. */
extern _Atomic uint32_t weft__parked_tasks;
/* Wakes up to n tasks parked on word, returns how many it woke. Set before
 * the first task parks. */
extern int (*_Atomic weft__task_unpark)(_Atomic uint32_t *word, int n, unsigned flags);

#endif /* WEFT_SRC_BASE_PARK_H */
