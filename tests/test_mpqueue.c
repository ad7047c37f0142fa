/*
 * Tests for weft/mpqueue.h, after CPython's _test_multiprocessing queue
 * tests: whole messages in order through a wrapping ring, maxsize and
 * capacity with timeouts, a short buffer, blocked gets woken from another
 * process, two producers and two consumers in separate processes under
 * each start method (exactly once, each producer's order kept),
 * JoinableQueue, processes killed at every step of a put and a get, a
 * consumer killed while asleep, timeouts that hold while a stopped process
 * holds the queue's lock, and bad input.
 */
#include "base/base.h"
#include "wt.h"
#include <weft/mpqueue.h>
#include <weft/process.h>
#include <weft/sync.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern void (*weft__mpqueue_crash_point)(int point);

static weft_mpqueue_t *queue(size_t maxsize, size_t capacity, bool joinable)
{
    weft_mpqueue_t *q;
    weft_mpqueue_opts_t opts = {.maxsize = maxsize, .capacity = capacity, .joinable = joinable};
    WT_EQ(weft_mpqueue_new(&q, &opts), 0);
    return q;
}

/* Message i: i % 101 bytes of (i + k) & 0xff. */
static size_t fill(unsigned char *buf, int i)
{
    size_t len = (size_t)(i % 101);
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)(i + (int)k);
    return len;
}

static void expect(weft_mpqueue_t *q, int i)
{
    unsigned char want[128], got[128];
    size_t len = fill(want, i);
    WT_EQ(weft_mpqueue_get(q, got, sizeof got, 0), (ssize_t)len);
    WT_CHECK(memcmp(got, want, len) == 0);
}

WT_CASE(messages_come_out_whole_and_in_order)
{
    weft_mpqueue_t *q = queue(0, 256, false); /* small: the ring wraps often */
    WT_EQ(weft_mpqueue_empty(q), 1);
    unsigned char buf[128];
    int put = 0, got = 0;
    for (int round = 0; round < 500; round++) {
        while (weft_mpqueue_put(q, buf, fill(buf, put), 0) == 0)
            put++;
        WT_EQ(weft_mpqueue_qsize(q), put - got);
        int take = 1 + round % 3;
        for (int k = 0; k < take && got < put; k++)
            expect(q, got++);
    }
    while (got < put)
        expect(q, got++);
    WT_EQ(weft_mpqueue_empty(q), 1);
    WT_EQ(weft_mpqueue_get(q, buf, sizeof buf, 0), -EAGAIN);
    WT_CHECK(put > 500); /* the ring went round a hundred times */
    /* An empty queue takes a message as large as the ring allows, wherever
     * its last message ended. */
    static unsigned char big[248];
    WT_EQ(weft_mpqueue_put(q, buf, 3, 0), 0);
    WT_EQ(weft_mpqueue_get(q, buf, sizeof buf, 0), 3);
    WT_EQ(weft_mpqueue_put(q, big, sizeof big, 0), 0);
    WT_EQ(weft_mpqueue_put(q, buf, 0, 0), -EAGAIN); /* no room for even a header */
    void *out;
    WT_EQ(weft_mpqueue_get_alloc(q, &out, 0), (ssize_t)sizeof big);
    free(out);
    WT_EQ(weft_mpqueue_put(q, big, sizeof big + 1, 0), -EMSGSIZE); /* can never fit */
    WT_EQ(weft_mpqueue_put(q, NULL, 0, 0), 0);                     /* empty messages are messages */
    WT_EQ(weft_mpqueue_get_alloc(q, &out, 0), 0);
    WT_CHECK(out != NULL);
    free(out);
    WT_EQ(weft_mpqueue_close(q), 0);
}

WT_CASE(maxsize_bounds_puts_with_timeouts)
{
    weft_mpqueue_t *q = queue(3, 0, false);
    int x = 1;
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_mpqueue_put(q, &x, sizeof x, 0), 0);
    WT_EQ(weft_mpqueue_full(q), 1);
    WT_EQ(weft_mpqueue_put(q, &x, sizeof x, 0), -EAGAIN);
    double t0 = wt_now();
    WT_EQ(weft_mpqueue_put(q, &x, sizeof x, 0.05), -ETIMEDOUT);
    double waited = wt_now() - t0;
    WT_CHECK(waited >= 0.05 && waited < 0.05 + 2 * wt_slack());
    WT_EQ(weft_mpqueue_get(q, &x, sizeof x, 0), sizeof x);
    WT_EQ(weft_mpqueue_full(q), 0);
    WT_EQ(weft_mpqueue_put(q, &x, sizeof x, 0), 0);
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_mpqueue_get(q, &x, sizeof x, 0), sizeof x);
    t0 = wt_now();
    WT_EQ(weft_mpqueue_get(q, &x, sizeof x, 0.05), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 >= 0.05);
    WT_EQ(weft_mpqueue_close(q), 0);
}

WT_CASE(a_short_buffer_leaves_the_message_in_the_queue)
{
    weft_mpqueue_t *q = queue(0, 0, false);
    WT_EQ(weft_mpqueue_put(q, "hello", 5, 0), 0);
    char small[4], whole[8];
    WT_EQ(weft_mpqueue_get(q, small, sizeof small, 0), -EMSGSIZE);
    WT_EQ(weft_mpqueue_qsize(q), 1);
    WT_EQ(weft_mpqueue_get(q, whole, sizeof whole, 0), 5);
    WT_CHECK(memcmp(whole, "hello", 5) == 0);
    /* get_alloc that cannot allocate leaves it there too. */
    WT_EQ(weft_mpqueue_put(q, "again", 5, 0), 0);
    void *out;
    weft__sys.malloc = wt_no_malloc;
    ssize_t rc = weft_mpqueue_get_alloc(q, &out, 0);
    weft__sys_reset();
    WT_EQ(rc, -ENOMEM);
    WT_EQ(weft_mpqueue_get_alloc(q, &out, 0), 5);
    free(out);
    WT_EQ(weft_mpqueue_close(q), 0);
}

static weft_mpqueue_t *shared_q;

/* Gets one message, waiting; exits with its first byte. */
static int get_one(void *arg)
{
    (void)arg;
    unsigned char b[16];
    return weft_mpqueue_get(shared_q, b, sizeof b, WEFT_FOREVER) == 1 ? b[0] : 200;
}

WT_CASE(a_blocked_get_wakes_for_a_put_from_another_process)
{
    shared_q = queue(0, 0, false);
    pid_t a = wt_spawn(get_one, NULL), b = wt_spawn(get_one, NULL);
    wt_await_child_futex_sleep(a, NULL, 10 * wt_slack());
    wt_await_child_futex_sleep(b, NULL, 10 * wt_slack());
    WT_EQ(weft_mpqueue_put(shared_q, "\x07", 1, 0), 0);
    WT_EQ(weft_mpqueue_put(shared_q, "\x07", 1, 0), 0);
    int sa = wt_reap(a, 10 * wt_slack()), sb = wt_reap(b, 10 * wt_slack());
    WT_CHECK(WIFEXITED(sa) && WEXITSTATUS(sa) == 7);
    WT_CHECK(WIFEXITED(sb) && WEXITSTATUS(sb) == 7);
    WT_EQ(weft_mpqueue_close(shared_q), 0);
}

/* --- two producers, two consumers, in separate processes ---------------- */

struct item {
    int producer, seq;
    unsigned char pad[40];
};

struct result {
    long count, sum;
    int disorder;
};

struct role {
    int q, results; /* descriptors, kept by the child */
    int producer, n;
};

static int produce(const void *arg, size_t len)
{
    (void)len;
    const struct role *r = arg;
    weft_mpqueue_t *q;
    if (weft_mpqueue_from_fd(&q, r->q) < 0)
        return 1;
    for (int i = 0; i < r->n; i++) {
        struct item it = {r->producer, i, {0}};
        memset(it.pad, i & 0xff, sizeof it.pad);
        if (weft_mpqueue_put(q, &it, sizeof it, WEFT_FOREVER) < 0)
            return 2;
    }
    return 0;
}
WEFT_PROCESS_REGISTER(produce);

/* Until an empty message: count, sum of seq and checks of each item. */
static int consume(const void *arg, size_t len)
{
    (void)len;
    const struct role *r = arg;
    weft_mpqueue_t *q, *results;
    if (weft_mpqueue_from_fd(&q, r->q) < 0 || weft_mpqueue_from_fd(&results, r->results) < 0)
        return 1;
    struct result res = {0, 0, 0};
    int last[2] = {-1, -1};
    struct item it;
    ssize_t n;
    while ((n = weft_mpqueue_get(q, &it, sizeof it, WEFT_FOREVER)) == sizeof it) {
        res.count++;
        res.sum += it.seq;
        if (it.producer < 0 || it.producer > 1 || it.seq <= last[it.producer] ||
            it.pad[39] != (it.seq & 0xff))
            res.disorder++;
        else
            last[it.producer] = it.seq;
    }
    if (n != 0 || weft_mpqueue_put(results, &res, sizeof res, WEFT_FOREVER) < 0)
        return 2;
    return 0;
}
WEFT_PROCESS_REGISTER(consume);

static weft_process_t *start_role(weft_process_fn fn, struct role *r, weft_start_method_t m)
{
    int keep[2] = {r->q, r->results};
    weft_process_opts_t opts = {.keep_fds = keep, .nkeep_fds = 2, .method = m};
    weft_process_t *p;
    WT_EQ(weft_process_new(&p, fn, r, sizeof *r, &opts), 0);
    WT_EQ(weft_process_start(p), 0);
    return p;
}

static void finish(weft_process_t *p)
{
    int code = -1;
    WT_EQ(weft_process_join(p, 120 * wt_slack()), 0);
    WT_EQ(weft_process_exitcode(p, &code), 1);
    WT_EQ(code, 0);
    WT_EQ(weft_process_close(p), 0);
}

WT_STRESS(two_producers_two_consumers_in_separate_processes)
{
    int n = wt_sanitizer() ? 5000 : 50000;
    for (weft_start_method_t m = WEFT_START_FORK; m <= WEFT_START_FORKSERVER; m++) {
        weft_mpqueue_t *q = queue(0, 4096, false), *results = queue(0, 0, false);
        struct role r = {weft_mpqueue_fd(q), weft_mpqueue_fd(results), 0, n};
        weft_process_t *c[2], *p[2];
        for (int i = 0; i < 2; i++)
            c[i] = start_role(consume, &r, m);
        for (int i = 0; i < 2; i++) {
            r.producer = i;
            p[i] = start_role(produce, &r, m);
        }
        for (int i = 0; i < 2; i++)
            finish(p[i]);
        for (int i = 0; i < 2; i++)
            WT_EQ(weft_mpqueue_put(q, NULL, 0, WEFT_FOREVER), 0); /* stop */
        for (int i = 0; i < 2; i++)
            finish(c[i]);
        struct result total = {0, 0, 0}, one;
        for (int i = 0; i < 2; i++) {
            WT_EQ(weft_mpqueue_get(results, &one, sizeof one, 0), sizeof one);
            total.count += one.count;
            total.sum += one.sum;
            total.disorder += one.disorder;
        }
        WT_EQ(total.count, 2L * n); /* every message exactly once */
        WT_EQ(total.sum, 2L * n * (n - 1) / 2);
        WT_EQ(total.disorder, 0); /* each producer's order kept, bytes intact */
        WT_EQ(weft_mpqueue_empty(q), 1);
        WT_EQ(weft_mpqueue_close(q), 0);
        WT_EQ(weft_mpqueue_close(results), 0);
    }
}

/* --- JoinableQueue ------------------------------------------------------- */

static int work_three(void *arg)
{
    (void)arg;
    int x;
    for (int i = 0; i < 3; i++)
        if (weft_mpqueue_get(shared_q, &x, sizeof x, WEFT_FOREVER) != sizeof x ||
            weft_mpqueue_task_done(shared_q) != 0)
            return 1;
    return 0;
}

WT_CASE(joinable_queue_task_done_and_join)
{
    shared_q = queue(0, 0, true);
    WT_EQ(weft_mpqueue_join(shared_q, 0), 0); /* nothing put yet */
    int x = 5;
    for (int i = 0; i < 3; i++)
        WT_EQ(weft_mpqueue_put(shared_q, &x, sizeof x, 0), 0);
    WT_EQ(weft_mpqueue_join(shared_q, 0), -EAGAIN);
    WT_EQ(weft_mpqueue_join(shared_q, 0.02), -ETIMEDOUT);
    pid_t w = wt_spawn(work_three, NULL);
    WT_EQ(weft_mpqueue_join(shared_q, 30 * wt_slack()), 0);
    WT_EQ(wt_reap(w, 10 * wt_slack()), 0);
    WT_EQ(weft_mpqueue_task_done(shared_q), -EINVAL); /* one too many */
    WT_EQ(weft_mpqueue_close(shared_q), 0);
    weft_mpqueue_t *plain = queue(0, 0, false);
    WT_EQ(weft_mpqueue_task_done(plain), -EINVAL);
    WT_EQ(weft_mpqueue_join(plain, 0), -EINVAL);
    WT_EQ(weft_mpqueue_close(plain), 0);
}

/* --- crashes -------------------------------------------------------------- */

static int die_at;

static void die_here(int point)
{
    if (point == die_at)
        raise(SIGKILL);
}

static int put_and_die(void *arg)
{
    die_at = *(int *)arg;
    weft__mpqueue_crash_point = die_here;
    weft_mpqueue_put(shared_q, "dying", 5, WEFT_FOREVER);
    return 0; /* the point was never reached */
}

static int get_and_die(void *arg)
{
    die_at = *(int *)arg;
    weft__mpqueue_crash_point = die_here;
    char b[16];
    weft_mpqueue_get(shared_q, b, sizeof b, WEFT_FOREVER);
    return 0;
}

/* Contents of the queue, as a string of first letters, emptying it. */
static void drain(char *out)
{
    char b[16];
    while (weft_mpqueue_get(shared_q, b, sizeof b, 0) > 0)
        *out++ = b[0];
    *out = '\0';
}

WT_FAULT(a_process_killed_mid_put_or_get_leaves_the_queue_whole)
{
    /* Point 1: the message is written, not committed; 2: the commit is
     * logged; 3: the state is written, the log not yet cleared. */
    const char *after_put[] = {NULL, "abc", "abdc", "abdc"}; /* d: "dying" */
    const char *after_get[] = {NULL, NULL, "b", "b"};
    for (int point = 1; point <= 3; point++) {
        shared_q = queue(0, 128, false);
        WT_EQ(weft_mpqueue_put(shared_q, "a", 1, 0), 0);
        WT_EQ(weft_mpqueue_put(shared_q, "b", 1, 0), 0);
        int status = wt_reap(wt_spawn(put_and_die, &point), 10 * wt_slack());
        WT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        WT_EQ(weft_mpqueue_put(shared_q, "c", 1, 0), 0); /* repairs first */
        char got[16];
        drain(got);
        WT_CHECK(strcmp(got, after_put[point]) == 0);
        WT_EQ(weft_mpqueue_qsize(shared_q), 0);

        if (after_get[point]) { /* a get dies in its commit: the message is gone */
            WT_EQ(weft_mpqueue_put(shared_q, "a", 1, 0), 0);
            WT_EQ(weft_mpqueue_put(shared_q, "b", 1, 0), 0);
            status = wt_reap(wt_spawn(get_and_die, &point), 10 * wt_slack());
            WT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
            drain(got);
            WT_CHECK(strcmp(got, after_get[point]) == 0);
        }
        /* And the queue goes on working, wrapping included. */
        unsigned char buf[128];
        for (int i = 0; i < 200; i++) {
            WT_EQ(weft_mpqueue_put(shared_q, buf, fill(buf, i), 0), 0);
            expect(shared_q, i);
        }
        WT_EQ(weft_mpqueue_close(shared_q), 0);
    }
}

WT_FAULT(a_consumer_killed_while_waiting_strands_no_one)
{
    shared_q = queue(0, 0, false);
    pid_t dead = wt_spawn(get_one, NULL);
    wt_await_child_futex_sleep(dead, NULL, 10 * wt_slack());
    WT_EQ(kill(dead, SIGKILL), 0);
    wt_reap(dead, 10 * wt_slack());
    pid_t alive = wt_spawn(get_one, NULL);
    wt_await_child_futex_sleep(alive, NULL, 10 * wt_slack());
    WT_EQ(weft_mpqueue_put(shared_q, "\x09", 1, 0), 0);
    int status = wt_reap(alive, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9);
    WT_EQ(weft_mpqueue_close(shared_q), 0);
}

/* --- a lock left unrecoverable ---------------------------------------------- */

weft_rlock_t *weft__mpqueue_lock(weft_mpqueue_t *q);

static int take_lock_and_die(void *arg)
{
    (void)arg;
    return weft_rlock_acquire(weft__mpqueue_lock(shared_q), WEFT_FOREVER); /* never released */
}

static int get_meets_unrecoverable(void *arg)
{
    (void)arg;
    char b[16];
    return weft_mpqueue_get(shared_q, b, sizeof b, WEFT_FOREVER) == -ENOTRECOVERABLE ? 0 : 1;
}

/* A process takes the queue's lock over a dead holder and releases it
 * without repair (weft never does; a foreign or broken one may): every
 * waiter, asleep for a message or for the lock, and every later call
 * gets -ENOTRECOVERABLE at once instead of waiting for ever. */
WT_FAULT(waits_end_when_the_lock_is_left_unrecoverable)
{
    shared_q = queue(0, 0, true);
    pid_t for_message = wt_spawn(get_meets_unrecoverable, NULL);
    wt_await_child_futex_sleep(for_message, NULL, 10 * wt_slack());
    WT_EQ(wt_fork(take_lock_and_die, NULL, 10 * wt_slack()), 0);
    weft_rlock_t *lock = weft__mpqueue_lock(shared_q);
    WT_EQ(weft_rlock_acquire(lock, WEFT_FOREVER), -EOWNERDEAD);
    pid_t for_lock = wt_spawn(get_meets_unrecoverable, NULL);
    wt_await_child_futex_sleep(for_lock, NULL, 10 * wt_slack());
    WT_EQ(weft_rlock_release(lock), 0); /* unrepaired: unrecoverable */
    WT_EQ(wt_reap(for_lock, 10 * wt_slack()), 0);
    WT_EQ(wt_reap(for_message, 10 * wt_slack()), 0);
    char b[16];
    WT_EQ(weft_mpqueue_put(shared_q, "x", 1, WEFT_FOREVER), -ENOTRECOVERABLE);
    WT_EQ(weft_mpqueue_get(shared_q, b, sizeof b, 0), -ENOTRECOVERABLE);
    WT_EQ(weft_mpqueue_qsize(shared_q), -ENOTRECOVERABLE);
    WT_EQ(weft_mpqueue_task_done(shared_q), -ENOTRECOVERABLE);
    WT_EQ(weft_mpqueue_join(shared_q, WEFT_FOREVER), -ENOTRECOVERABLE);
    WT_EQ(weft_mpqueue_close(shared_q), 0);
}

/* --- a holder that stops ------------------------------------------------ */

static void stop_here(int point)
{
    if (point == 1)
        raise(SIGSTOP);
}

/* Stops in the middle of a put, holding the queue's lock; dies with the
 * test's process should the test fail before it lets it go on. */
static int put_and_stop(void *arg)
{
    (void)arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    weft__mpqueue_crash_point = stop_here;
    return weft_mpqueue_put(shared_q, "s", 1, WEFT_FOREVER) == 0 ? 0 : 1;
}

/* A call that must give up by `timeout` (0: at once) with `error`. */
#define GIVES_UP(call, timeout, error)                                  \
    do {                                                                \
        double t0_ = wt_now();                                          \
        WT_EQ(call, error);                                             \
        double took_ = wt_now() - t0_;                                  \
        WT_CHECK(took_ >= (timeout) && took_ < (timeout) + wt_slack()); \
    } while (0)

WT_FAULT(timeouts_hold_while_another_process_holds_the_lock)
{
    shared_q = queue(0, 0, true);
    WT_EQ(weft_mpqueue_put(shared_q, "a", 1, 0), 0);
    pid_t holder = wt_spawn(put_and_stop, NULL);
    int status;
    WT_EQ(waitpid(holder, &status, WUNTRACED), holder);
    WT_CHECK(WIFSTOPPED(status)); /* stopped with the lock held */
    char b[16];
    void *out;
    GIVES_UP(weft_mpqueue_get(shared_q, b, sizeof b, 0), 0, -EAGAIN);
    GIVES_UP(weft_mpqueue_get(shared_q, b, sizeof b, 0.3), 0.3, -ETIMEDOUT);
    GIVES_UP(weft_mpqueue_get_alloc(shared_q, &out, 0.3), 0.3, -ETIMEDOUT);
    GIVES_UP(weft_mpqueue_put(shared_q, "b", 1, 0), 0, -EAGAIN);
    GIVES_UP(weft_mpqueue_put(shared_q, "b", 1, 0.3), 0.3, -ETIMEDOUT);
    GIVES_UP(weft_mpqueue_join(shared_q, 0), 0, -EAGAIN);
    GIVES_UP(weft_mpqueue_join(shared_q, 0.3), 0.3, -ETIMEDOUT);
    /* Let it go on: its put lands, and ours work again. */
    WT_EQ(kill(holder, SIGCONT), 0);
    WT_EQ(wt_reap(holder, 10 * wt_slack()), 0);
    WT_EQ(weft_mpqueue_get(shared_q, b, sizeof b, 10 * wt_slack()), 1);
    WT_EQ(b[0], 'a');
    WT_EQ(weft_mpqueue_get(shared_q, b, sizeof b, 0), 1);
    WT_EQ(b[0], 's');
    WT_EQ(weft_mpqueue_close(shared_q), 0);
}

static int no_memfd(const char *name, unsigned flags)
{
    (void)name, (void)flags;
    errno = EMFILE;
    return -1;
}

static void *no_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)off;
    errno = ENOMEM;
    return MAP_FAILED;
}

/* A queue that cannot have its memfd, mapping or handle is not made, and
 * leaves nothing open; one that cannot be mapped from a descriptor leaves
 * the descriptor to the caller. */
WT_FAULT(a_queue_without_resources_fails_cleanly)
{
    int fds = wt_count_fds();
    weft_mpqueue_t *q;
    weft__sys.memfd_create = no_memfd;
    WT_EQ(weft_mpqueue_new(&q, NULL), -EMFILE);
    weft__sys_reset();
    weft__sys.mmap = no_mmap;
    WT_EQ(weft_mpqueue_new(&q, NULL), -ENOMEM);
    weft__sys_reset();
    weft__sys.calloc = wt_no_calloc;
    WT_EQ(weft_mpqueue_new(&q, NULL), -ENOMEM);
    weft__sys_reset();
    WT_EQ(wt_count_fds(), fds);
    q = queue(0, 0, false);
    int fd = weft_mpqueue_fd(q);
    weft_mpqueue_t *other;
    weft__sys.mmap = no_mmap;
    WT_EQ(weft_mpqueue_from_fd(&other, fd), -ENOMEM);
    weft__sys_reset();
    WT_EQ(weft_mpqueue_put(q, "x", 1, 0), 0); /* untouched */
    WT_EQ(weft_mpqueue_close(q), 0);
    WT_EQ(wt_count_fds(), fds);
}

WT_CASE(mpqueue_bad_input)
{
    weft_mpqueue_t *q;
    WT_EQ(weft_mpqueue_new(NULL, NULL), -EINVAL);
    WT_EQ(weft_mpqueue_new(&q, &(weft_mpqueue_opts_t){.capacity = 63}), -EINVAL);
    WT_EQ(weft_mpqueue_new(&q, &(weft_mpqueue_opts_t){.capacity = (size_t)1 << 40}), -EINVAL);
    WT_EQ(weft_mpqueue_new(&q, &(weft_mpqueue_opts_t){.maxsize = (size_t)1 << 40}), -EINVAL);
    WT_EQ(weft_mpqueue_from_fd(&q, -1), -EINVAL);
    int junk = memfd_create("junk", MFD_CLOEXEC);
    WT_EQ(ftruncate(junk, 4096), 0);
    WT_EQ(weft_mpqueue_from_fd(&q, junk), -EINVAL); /* not a queue */
    WT_EQ(ftruncate(junk, 64), 0);
    WT_EQ(weft_mpqueue_from_fd(&q, junk), -EINVAL); /* too small to be one */
    close(junk);
    WT_EQ(weft_mpqueue_from_fd(&q, junk), -EBADF);
    WT_EQ(weft_mpqueue_fd(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_close(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_qsize(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_empty(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_full(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_task_done(NULL), -EINVAL);
    WT_EQ(weft_mpqueue_join(NULL, 0), -EINVAL);
    q = queue(0, 0, false);
    char b[4];
    void *out;
    WT_EQ(weft_mpqueue_put(NULL, b, 1, 0), -EINVAL);
    WT_EQ(weft_mpqueue_put(q, NULL, 1, 0), -EINVAL);
    WT_EQ(weft_mpqueue_put(q, b, 1, NAN), -EINVAL);
    WT_EQ(weft_mpqueue_get(NULL, b, 1, 0), -EINVAL);
    WT_EQ(weft_mpqueue_get(q, NULL, 1, 0), -EINVAL);
    WT_EQ(weft_mpqueue_get(q, b, 1, NAN), -EINVAL);
    WT_EQ(weft_mpqueue_get_alloc(q, NULL, 0), -EINVAL);
    WT_EQ(weft_mpqueue_get_alloc(NULL, &out, 0), -EINVAL);
    WT_EQ(weft_mpqueue_close(q), 0);
}
