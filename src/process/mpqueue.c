/*
 * Process queues (weft/mpqueue.h): a ring of messages in a memfd.
 *
 * The mapping starts with `struct shared` and its ring follows at RING_OFF.
 * A message is an 8-byte header (its length) and its bytes, padded to 8; a
 * header whose length is WRAP says "the rest of the ring is unused, go on
 * at its start". head and tail are byte counts that only grow (positions
 * are taken modulo the capacity), count is the number of messages, and
 * unfinished the JoinableQueue's tasks not yet done.
 *
 * Crash safety. Everything happens under `lock`, a robust process-shared
 * RLock (never taken recursively: an RLock because its owner is named by
 * its full birth id, so a dead holder is noticed even when the kernel has
 * given its thread id to a newcomer; a shared Lock keeps only 5 bits).
 * A put writes its message (and a WRAP header if needed) beyond the tail,
 * where nobody looks, and only then commits; a get copies its message out,
 * then commits. A commit is a redo log of one record: write the new
 * state to `redo`, set `redo_valid`, write the state, clear `redo_valid`
 * (compiler barriers keep that order; the stores of a killed process that
 * were issued are not lost). The next process to take the lock after a
 * holder died is told -EOWNERDEAD: it finishes a commit that was under way
 * (redo_valid) or there was none to finish, so the dead process's step
 * happened entirely or not at all, and it marks the lock consistent. It
 * also wakes every sleeper, in case the dead process was about to. A lock
 * left unrecoverable (taken over a dead holder and released unrepaired,
 * which only a process outside this protocol does) fails every call with
 * -ENOTRECOVERABLE, and each call that meets it wakes every sleeper, so
 * that none waits for a change that will never come.
 *
 * Waiting. put_seq, get_seq and done_seq are futex words bumped under the
 * lock by every put, every get and the task_done that finishes the last
 * task. A sleeper counts itself in getters/putters/joiners under the lock,
 * reads the word, releases the lock and sleeps while the word is
 * unchanged, so a change after its look wakes it at once; it counts itself
 * out as it wakes, before it has the lock again. A waker makes
 * the system call only when the count says someone may sleep: a count left
 * high by a process killed asleep costs a system call, never a wake-up.
 * Each put wakes one getter (each get, one putter); a getter that leaves
 * messages behind with getters still asleep wakes one more, so a woken
 * getter that then times out or dies does not strand the rest.
 *
 * Timeouts. A call's deadline covers all of it, the waits for the lock
 * included: another process may hold the lock for as long as it likes (it
 * is stopped, or being debugged), so the lock is taken against the same
 * deadline as the wait for room or a message. A timeout of 0 tries the
 * lock once, and a busy lock is -EAGAIN like a full or empty queue.
 *
 * Giving (give.h): a queue given to a child travels as its descriptor; a
 * handle a forked child was not given is stale there, and every call on it
 * is -EBADF, though the fork left the mapping in place: a child uses only
 * what it is given. Closing a stale handle unmaps and frees it and leaves
 * the descriptor number alone.
 */
#include "base/park.h"
#include "process/give.h"
#include <weft/mpqueue.h>
#include <weft/sync.h>

#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC    0x51504d57u /* "WMPQ" */
#define VERSION  1u
#define RING_OFF 256u
#define WRAP     UINT32_MAX
#define HDR      8u
#define MAX_SIZE (1u << 31)

struct state {
    uint64_t head, tail;
    uint32_t count, unfinished;
};

struct shared {
    uint32_t magic, version;
    uint32_t maxsize, joinable;
    uint64_t cap;
    weft_rlock_t lock;
    _Atomic uint32_t put_seq, get_seq, done_seq;
    _Atomic uint32_t getters, putters, joiners; /* sleepers, counted in under the lock */
    struct state st, redo;
    uint32_t redo_valid;
};

_Static_assert(sizeof(struct shared) <= RING_OFF, "the header fits before the ring");

struct weft_mpqueue {
    struct shared *sh;
    unsigned char *ring;
    size_t map_size;
    int fd;
    unsigned epoch; /* give.h */
};

/* Test hook: called at the named points of a put and a commit, so a test
 * can kill the process there. */
void (*weft__mpqueue_crash_point)(int point);

/* Test hook: the queue's lock, for a test to play a process that breaks
 * the protocol (takes the lock over a dead holder and releases it
 * unrepaired). */
weft_rlock_t *weft__mpqueue_lock(weft_mpqueue_t *q); /* declared by the tests that use it */
weft_rlock_t *weft__mpqueue_lock(weft_mpqueue_t *q)
{
    return &q->sh->lock;
}

static void crash_point(int point)
{
    if (weft__mpqueue_crash_point)
        weft__mpqueue_crash_point(point);
}

static uint64_t round8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static void commit(struct shared *sh, struct state next)
{
    sh->redo = next;
    atomic_signal_fence(memory_order_seq_cst);
    sh->redo_valid = 1;
    atomic_signal_fence(memory_order_seq_cst);
    crash_point(2);
    sh->st = next;
    atomic_signal_fence(memory_order_seq_cst);
    crash_point(3);
    sh->redo_valid = 0;
}

static void wake(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers, int n)
{
    if (atomic_load_explicit(sleepers, memory_order_relaxed))
        weft__unpark(seq, n, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
}

/* Wake every sleeper, whatever it waits for. */
static void wake_all(struct shared *sh)
{
    atomic_fetch_add(&sh->put_seq, 1);
    atomic_fetch_add(&sh->get_seq, 1);
    atomic_fetch_add(&sh->done_seq, 1);
    weft__unpark(&sh->put_seq, INT32_MAX, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    weft__unpark(&sh->get_seq, INT32_MAX, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    weft__unpark(&sh->done_seq, INT32_MAX, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
}

/* A holder died: finish its commit, if it began one, and wake everyone, in
 * case it was about to. */
static void repair(struct shared *sh)
{
    if (sh->redo_valid)
        sh->st = sh->redo;
    sh->redo_valid = 0;
    wake_all(sh);
}

/* The shortest wait for the lock: a try that still looks once at whether
 * the holder lives (a shared Lock's plain try does not), so that a queue
 * whose holder died recovers for callers that only ever try. */
#define LOCK_LOOK 1e-9

/* Take the lock by the call's deadline (from `timeout`, which tells a try
 * from a wait that has run out): 0, or -EAGAIN / -ETIMEDOUT as the call
 * reports a timeout, or the lock's error. */
static int lock_queue(struct shared *sh, weft__deadline_t deadline, double timeout)
{
    double left = timeout;
    if (timeout >= 0) {
        int64_t ns = deadline - weft__now_ns();
        left = ns > 0 ? (double)ns * 1e-9 : LOCK_LOOK;
    }
    int rc = weft_rlock_acquire(&sh->lock, left);
    if (rc == -EAGAIN || rc == -ETIMEDOUT)
        return weft__timeout_error(timeout);
    if (rc == -EOWNERDEAD) {
        repair(sh);
        rc = weft_rlock_consistent(&sh->lock);
    }
    if (rc == -ENOTRECOVERABLE)
        wake_all(sh); /* a sleeper would wait for a change that never comes */
    return rc;
}

/* For the calls that take no timeout. */
static int lock_forever(struct shared *sh)
{
    return lock_queue(sh, WEFT__NEVER, WEFT_FOREVER);
}

/* With the lock held: sleep until *seq moves or the deadline passes, then
 * hold the lock again. With the lock held: 0, or 1 when the deadline has
 * passed; without it, -ETIMEDOUT (the lock stayed busy past the deadline)
 * or the lock's error. */
static int sleep_on(struct shared *sh, _Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
                    weft__deadline_t deadline, double timeout)
{
    uint32_t s = atomic_load(seq);
    atomic_fetch_add_explicit(sleepers, 1, memory_order_relaxed);
    weft_rlock_release(&sh->lock);
    int rc = weft__park(seq, s, deadline, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    atomic_fetch_sub_explicit(sleepers, 1, memory_order_relaxed);
    int locked = lock_queue(sh, deadline, timeout);
    return locked < 0 ? locked : rc == -ETIMEDOUT;
}

/*
 * Take the lock and wait until ready(sh, arg) says go, all by the deadline
 * of `timeout`; returns 0 with the lock held, or an error without it.
 */
static int lock_when(struct shared *sh, bool (*ready)(struct shared *, const void *),
                     const void *arg, _Atomic uint32_t *seq, _Atomic uint32_t *sleepers,
                     double timeout)
{
    weft__deadline_t deadline;
    weft__deadline(timeout, &deadline);
    int rc = lock_queue(sh, deadline, timeout);
    if (rc < 0)
        return rc;
    bool expired = timeout == 0;
    while (!ready(sh, arg)) {
        if (expired) {
            weft_rlock_release(&sh->lock);
            return weft__timeout_error(timeout);
        }
        rc = sleep_on(sh, seq, sleepers, deadline, timeout);
        if (rc < 0)
            return rc;
        expired = rc == 1;
    }
    return 0;
}

static int map_queue(weft_mpqueue_t **out, int fd, size_t size)
{
    weft_mpqueue_t *q = weft__calloc(1, sizeof *q);
    void *m =
        q ? weft__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (m == MAP_FAILED) {
        free(q);
        return -ENOMEM;
    }
    q->sh = m;
    q->ring = (unsigned char *)m + RING_OFF;
    q->map_size = size;
    q->fd = fd;
    q->epoch = weft__epoch;
    *out = q;
    return 0;
}

int weft_mpqueue_new(weft_mpqueue_t **out, const weft_mpqueue_opts_t *opts)
{
    weft_mpqueue_opts_t o = opts ? *opts : (weft_mpqueue_opts_t){0};
    if (!out || o.maxsize > MAX_SIZE || o.capacity > MAX_SIZE || (o.capacity && o.capacity < 64))
        return -EINVAL;
    uint64_t cap = round8(o.capacity ? o.capacity : 1u << 20);
    int fd = weft__sys.memfd_create("weft-mpqueue", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc =
        ftruncate(fd, (off_t)(RING_OFF + cap)) < 0 ? -ENOMEM : map_queue(out, fd, RING_OFF + cap);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    struct shared *sh = (*out)->sh;
    sh->maxsize = (uint32_t)o.maxsize;
    sh->joinable = o.joinable;
    sh->cap = cap;
    weft_rlock_init(&sh->lock, WEFT_SHARED);
    sh->version = VERSION;
    sh->magic = MAGIC;
    return 0;
}

int weft_mpqueue_from_fd(weft_mpqueue_t **out, int fd)
{
    struct stat st;
    if (!out || fd < 0)
        return -EINVAL;
    if (fstat(fd, &st) < 0)
        return -EBADF;
    if (st.st_size < (off_t)RING_OFF + 64)
        return -EINVAL;
    int rc = map_queue(out, fd, (size_t)st.st_size);
    if (rc < 0)
        return rc;
    struct shared *sh = (*out)->sh;
    if (sh->magic != MAGIC || sh->version != VERSION ||
        RING_OFF + sh->cap != (uint64_t)st.st_size) {
        munmap(sh, (size_t)st.st_size);
        free(*out);
        return -EINVAL;
    }
    return 0;
}

/* 0 if q can be used here; -EINVAL, or -EBADF for a queue not given. */
static int usable(const weft_mpqueue_t *q)
{
    return !q ? -EINVAL : WEFT__MINE(q) ? 0 : -EBADF;
}

int weft_mpqueue_fd(weft_mpqueue_t *q)
{
    int rc = usable(q);
    return rc < 0 ? rc : q->fd;
}

int weft_mpqueue_close(weft_mpqueue_t *q)
{
    if (!q)
        return -EINVAL;
    munmap(q->sh, q->map_size);
    if (WEFT__MINE(q))
        close(q->fd);
    free(q);
    return 0;
}

int weft__mpqueue_describe(void *q, struct weft__gift *g)
{
    g->fd = weft_mpqueue_fd(q);
    return g->fd < 0 ? g->fd : 0;
}

void weft__mpqueue_claim(void *q)
{
    ((weft_mpqueue_t *)q)->epoch = weft__epoch;
}

int weft__mpqueue_rebuild(const struct weft__gift *g, void **q)
{
    weft_mpqueue_t *made = NULL;
    int rc = weft_mpqueue_from_fd(&made, g->fd);
    *q = rc == 0 ? made : NULL;
    return rc;
}

/* ---- put ---- */

/* Where a message of `need` bytes goes in state s (an empty queue starts
 * over at the ring's start, so that any message that fits the ring fits
 * then): the bytes to skip with a WRAP header, or -1 if it does not fit. */
static int64_t place(const struct shared *sh, struct state *s, uint64_t need)
{
    if (s->head == s->tail)
        s->head = s->tail = (s->tail + sh->cap - 1) / sh->cap * sh->cap;
    uint64_t pos = s->tail % sh->cap;
    uint64_t skip = pos + need > sh->cap ? sh->cap - pos : 0;
    if ((sh->maxsize && s->count >= sh->maxsize) || s->tail - s->head + skip + need > sh->cap)
        return -1;
    return (int64_t)skip;
}

static bool room_for(struct shared *sh, const void *need)
{
    struct state s = sh->st;
    return place(sh, &s, *(const uint64_t *)need) >= 0;
}

static void write_header(unsigned char *at, uint32_t len)
{
    uint32_t h[2] = {len, 0};
    memcpy(at, h, sizeof h);
}

int weft_mpqueue_put(weft_mpqueue_t *q, const void *buf, size_t len, double timeout)
{
    if (!q || (len && !buf) || isnan(timeout))
        return -EINVAL;
    if (!WEFT__MINE(q))
        return -EBADF;
    struct shared *sh = q->sh;
    uint64_t need = HDR + round8(len);
    if (len >= WRAP || need > sh->cap)
        return -EMSGSIZE;
    int rc = lock_when(sh, room_for, &need, &sh->get_seq, &sh->putters, timeout);
    if (rc < 0)
        return rc;
    struct state s = sh->st;
    uint64_t skip = (uint64_t)place(sh, &s, need);
    if (skip)
        write_header(q->ring + s.tail % sh->cap, WRAP);
    unsigned char *at = q->ring + (s.tail + skip) % sh->cap;
    write_header(at, (uint32_t)len);
    if (len)
        memcpy(at + HDR, buf, len);
    crash_point(1);
    s.tail += skip + need;
    s.count++;
    s.unfinished += sh->joinable;
    commit(sh, s);
    atomic_fetch_add(&sh->put_seq, 1);
    wake(&sh->put_seq, &sh->getters, 1);
    weft_rlock_release(&sh->lock);
    return 0;
}

/* ---- get ---- */

static bool not_empty(struct shared *sh, const void *unused)
{
    (void)unused;
    return sh->st.count > 0;
}

/* The oldest message, with the lock held: its header's position (past a
 * WRAP) and length. */
static uint64_t oldest(weft_mpqueue_t *q, uint32_t *len)
{
    struct shared *sh = q->sh;
    uint64_t head = sh->st.head;
    uint32_t h[2];
    memcpy(h, q->ring + head % sh->cap, sizeof h);
    if (h[0] == WRAP) {
        head += sh->cap - head % sh->cap;
        memcpy(h, q->ring + head % sh->cap, sizeof h);
    }
    *len = h[0];
    return head;
}

static ssize_t take(weft_mpqueue_t *q, void *buf, size_t cap, void **alloc, double timeout)
{
    if (!q || (cap && !buf && !alloc) || isnan(timeout))
        return -EINVAL;
    if (!WEFT__MINE(q))
        return -EBADF;
    struct shared *sh = q->sh;
    int rc = lock_when(sh, not_empty, NULL, &sh->put_seq, &sh->getters, timeout);
    if (rc < 0)
        return rc;
    uint32_t len;
    uint64_t head = oldest(q, &len);
    if (alloc && !(buf = *alloc = weft__malloc(len ? len : 1)))
        rc = -ENOMEM;
    else if (!alloc && len > cap)
        rc = -EMSGSIZE;
    if (rc < 0) {
        weft_rlock_release(&sh->lock);
        return rc;
    }
    if (len)
        memcpy(buf, q->ring + head % sh->cap + HDR, len);
    struct state s = sh->st;
    s.head = head + HDR + round8(len);
    s.count--;
    commit(sh, s);
    atomic_fetch_add(&sh->get_seq, 1);
    wake(&sh->get_seq, &sh->putters, 1);
    if (s.count)
        wake(&sh->put_seq, &sh->getters, 1);
    weft_rlock_release(&sh->lock);
    return (ssize_t)len;
}

ssize_t weft_mpqueue_get(weft_mpqueue_t *q, void *buf, size_t cap, double timeout)
{
    return take(q, buf, cap, NULL, timeout);
}

ssize_t weft_mpqueue_get_alloc(weft_mpqueue_t *q, void **buf, double timeout)
{
    return buf ? take(q, NULL, 0, buf, timeout) : -EINVAL;
}

/* ---- sizes, tasks ---- */

/* Read the state under the lock: count, and whether full. */
static int peek(weft_mpqueue_t *q, struct state *s)
{
    int rc = usable(q);
    if (rc < 0)
        return rc;
    rc = lock_forever(q->sh);
    if (rc < 0)
        return rc;
    *s = q->sh->st;
    weft_rlock_release(&q->sh->lock);
    return 0;
}

int weft_mpqueue_qsize(weft_mpqueue_t *q)
{
    struct state s;
    int rc = peek(q, &s);
    return rc < 0 ? rc : (int)s.count;
}

int weft_mpqueue_empty(weft_mpqueue_t *q)
{
    int n = weft_mpqueue_qsize(q);
    return n < 0 ? n : n == 0;
}

int weft_mpqueue_full(weft_mpqueue_t *q)
{
    struct state s;
    int rc = peek(q, &s);
    return rc < 0 ? rc : q->sh->maxsize && s.count >= q->sh->maxsize;
}

int weft_mpqueue_task_done(weft_mpqueue_t *q)
{
    int rc = usable(q);
    if (rc < 0 || !q->sh->joinable)
        return rc < 0 ? rc : -EINVAL;
    struct shared *sh = q->sh;
    rc = lock_forever(sh);
    if (rc < 0)
        return rc;
    struct state s = sh->st;
    if (s.unfinished == 0) {
        weft_rlock_release(&sh->lock);
        return -EINVAL; /* Python's ValueError: called too many times */
    }
    s.unfinished--;
    commit(sh, s);
    if (s.unfinished == 0) {
        atomic_fetch_add(&sh->done_seq, 1);
        wake(&sh->done_seq, &sh->joiners, INT32_MAX);
    }
    weft_rlock_release(&sh->lock);
    return 0;
}

static bool all_done(struct shared *sh, const void *unused)
{
    (void)unused;
    return sh->st.unfinished == 0;
}

int weft_mpqueue_join(weft_mpqueue_t *q, double timeout)
{
    int rc = usable(q);
    if (rc < 0 || !q->sh->joinable || isnan(timeout))
        return rc < 0 ? rc : -EINVAL;
    struct shared *sh = q->sh;
    rc = lock_when(sh, all_done, NULL, &sh->done_seq, &sh->joiners, timeout);
    if (rc == 0)
        weft_rlock_release(&sh->lock);
    return rc;
}
