/*
 * Tests for weft/ppool.h, after CPython's test_concurrent_futures process
 * pool tests and _test_multiprocessing's Pool tests, under each start
 * method where it matters: apply, submit and results, task errors, map in
 * order with any chunk size and progress, map_async, imap and
 * imap_unordered, the crash matrix (a segfault, _exit(3), SIGKILL from
 * outside, a task over its timeout) with every other task completing,
 * maxtasksperchild, initializers (a failing one breaks the pool), close,
 * join, terminate, shutdown with cancel_futures, terminate_workers and
 * kill_workers, wait and callbacks on pool futures, no zombie or
 * descriptor left behind, and bad input.
 */
#include "base/park.h"
#include "process/ppool_parent.h"
#include "wt.h"
#include <weft/mpqueue.h>
#include <weft/ppool.h>
#include <weft/shm.h>

#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static ssize_t square(const void *arg, size_t len, void *out, size_t cap)
{
    if (len != sizeof(long) || cap < sizeof(long))
        return -EINVAL;
    long x;
    memcpy(&x, arg, sizeof x);
    x *= x;
    memcpy(out, &x, sizeof x);
    return sizeof x;
}
WEFT_PROCESS_REGISTER(square);

/* Fails with -(x % 1000) when x % 1000 is 33 or 44. */
static ssize_t picky(const void *arg, size_t len, void *out, size_t cap)
{
    long x;
    memcpy(&x, arg, sizeof x);
    if (x % 1000 == 33 || x % 1000 == 44)
        return -(x % 1000);
    return square(arg, len, out, cap);
}
WEFT_PROCESS_REGISTER(picky);

static ssize_t too_long(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)out;
    return (ssize_t)cap + 1;
}
WEFT_PROCESS_REGISTER(too_long);

static ssize_t my_pid(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)cap;
    pid_t p = getpid();
    memcpy(out, &p, sizeof p);
    return sizeof p;
}
WEFT_PROCESS_REGISTER(my_pid);

static weft_ppool_t *pool_of(int n, weft_start_method_t m)
{
    weft_ppool_t *p;
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = n, .method = m}), 0);
    return p;
}

#define FOR_EACH_METHOD(m) \
    for (weft_start_method_t m = WEFT_START_FORK; m <= WEFT_START_FORKSERVER; m++)

/* A queue the parent made before the pool: fork workers inherit it. */
static weft_mpqueue_t *inherited_queue;

static ssize_t put_in_inherited(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)out, (void)cap;
    return weft_mpqueue_put(inherited_queue, "task", 4, 0);
}

WT_CASE(fork_workers_inherit_the_parents_handles_as_in_python)
{
    /* Process children use only what they are given; a pool's tasks have
     * no way to be given anything, so its forked workers keep what the
     * fork copied, as Python's do. */
    WT_EQ(weft_mpqueue_new(&inherited_queue, NULL), 0);
    weft_ppool_t *p = pool_of(1, WEFT_START_FORK);
    char out[8];
    WT_EQ(weft_ppool_apply(p, put_in_inherited, NULL, 0, out, sizeof out), 0);
    WT_EQ(weft_mpqueue_qsize(inherited_queue), 1);
    WT_EQ(weft_ppool_free(p), 0);
    WT_EQ(weft_mpqueue_close(inherited_queue), 0);
}

WT_CASE(apply_submit_and_results_under_each_method)
{
    FOR_EACH_METHOD (m) {
        weft_ppool_t *p = pool_of(2, m);
        long x = 12, y = 0;
        WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
        WT_EQ(y, 144);
        weft_future_t *f[50];
        for (long i = 0; i < 50; i++)
            WT_EQ(weft_ppool_submit(p, picky, &i, sizeof i, &f[i]), 0);
        for (long i = 0; i < 50; i++) {
            const void *data;
            size_t len;
            int rc = weft_ppool_result(f[i], 30 * wt_slack(), &data, &len, NULL);
            if (i == 33 || i == 44) {
                WT_EQ(rc, -i); /* the task's own error */
            } else {
                WT_EQ(rc, 0);
                WT_EQ(len, sizeof(long));
                WT_EQ(*(const long *)data, i * i);
            }
            WT_EQ(weft_future_free(f[i]), 0);
        }
        WT_EQ(weft_ppool_apply(p, too_long, &x, sizeof x, &y, sizeof y), -EMSGSIZE);
        char tiny[2];
        WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, tiny, sizeof tiny), -EMSGSIZE);
        WT_EQ(weft_ppool_free(p), 0);
    }
}

/* Progress reports come one at a time though the manager and a waiting
 * thread both collect, each showing more done than the one before, the last
 * showing the total. */
static _Atomic size_t last_done, last_total;
static _Atomic int reporting, out_of_order;

static void note_progress(size_t done, size_t total, void *arg)
{
    (void)arg;
    if (atomic_exchange(&reporting, 1)) /* another report is under way */
        atomic_store(&out_of_order, 1);
    if (done <= atomic_load(&last_done))
        atomic_store(&out_of_order, 1);
    atomic_store(&last_done, done);
    atomic_store(&last_total, total);
    atomic_store(&reporting, 0);
}

WT_CASE(map_keeps_order_for_any_chunk_size)
{
    enum { N = 10007 };
    static long items[N], results[N];
    for (long i = 0; i < N; i++)
        items[i] = i;
    FOR_EACH_METHOD (m) {
        weft_ppool_t *p = pool_of(2, m);
        size_t chunks[] = {0, 1, 7, N};
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            memset(results, 0xff, sizeof results);
            atomic_store(&last_done, 0);
            WT_EQ(weft_ppool_map(p, square, items, N, sizeof(long), results, sizeof(long),
                                 chunks[c], note_progress, NULL),
                  0);
            for (long i = 0; i < N; i++)
                WT_EQ(results[i], i * i);
            WT_EQ(atomic_load(&last_done), N);
            WT_EQ(atomic_load(&last_total), N);
            WT_EQ(atomic_load(&out_of_order), 0);
        }
        /* The first error in item order, whichever chunk finishes first. */
        WT_EQ(weft_ppool_map(p, picky, items, N, sizeof(long), results, sizeof(long), 100, NULL,
                             NULL),
              -33);
        WT_EQ(
            weft_ppool_map(p, square, items, 0, sizeof(long), results, sizeof(long), 0, NULL, NULL),
            0);
        WT_EQ(weft_ppool_free(p), 0);
    }
}

WT_CASE(map_async_imap_and_imap_unordered)
{
    enum { N = 3001 };
    static long items[N], results[N];
    for (long i = 0; i < N; i++)
        items[i] = i;
    weft_ppool_t *p = pool_of(2, WEFT_START_FORKSERVER);
    weft_future_t *all;
    WT_EQ(weft_ppool_map_async(p, square, items, N, sizeof(long), results, sizeof(long), 50, NULL,
                               NULL, &all),
          0);
    WT_EQ(weft_future_error(all, 30 * wt_slack()), 0);
    WT_EQ(weft_future_free(all), 0);
    WT_EQ(results[N - 1], (long)(N - 1) * (N - 1));
    for (int ordered = 1; ordered >= 0; ordered--) {
        weft_ppool_imap_t *it;
        WT_EQ(
            weft_ppool_imap_new(&it, p, square, items, N, sizeof(long), sizeof(long), 64, ordered),
            0);
        static bool seen[N];
        memset(seen, 0, sizeof seen);
        long y;
        ssize_t i, count = 0;
        while ((i = weft_ppool_imap_next(it, &y, 30 * wt_slack())) >= 0) {
            if (ordered)
                WT_EQ(i, count);
            WT_CHECK(i < N && !seen[i]);
            seen[i] = true;
            WT_EQ(y, (long)i * i);
            count++;
        }
        WT_EQ(i, -ENOENT);
        WT_EQ(count, N);
        WT_EQ(weft_ppool_imap_free(it), 0);
    }
    /* A chunk that fails hands out its error once, the others their items. */
    weft_ppool_imap_t *it;
    WT_EQ(weft_ppool_imap_new(&it, p, picky, items, 100, sizeof(long), sizeof(long), 10, true), 0);
    long y;
    ssize_t i;
    int items_seen = 0, errors = 0;
    while ((i = weft_ppool_imap_next(it, &y, 30 * wt_slack())) != -ENOENT) {
        if (i < 0) {
            WT_CHECK(i == -33 || i == -44);
            errors++;
        } else {
            items_seen++;
        }
    }
    WT_EQ(errors, 2);
    WT_EQ(items_seen, 80);
    WT_EQ(weft_ppool_imap_free(it), 0);
    WT_EQ(weft_ppool_free(p), 0);
}

/* --- the crash matrix ---------------------------------------------------- */

enum { SEGFAULT = 1, EXIT3, WAIT_TO_BE_KILLED, SLEEP_FOREVER };

struct job {
    int what;
    long x;
    char shm[32]; /* WAIT_TO_BE_KILLED: a segment to write the pid into */
};

static ssize_t misbehave(const void *arg, size_t len, void *out, size_t cap)
{
    (void)len;
    const struct job *j = arg;
    pid_t me = getpid();
    switch (j->what) {
    case SEGFAULT:
        raise(SIGSEGV);
        break;
    case EXIT3:
        _exit(3);
    case WAIT_TO_BE_KILLED: {
        weft_shm_t *s;
        if (weft_shm_attach(&s, j->shm) < 0)
            return -EIO;
        atomic_store((_Atomic pid_t *)weft_shm_buf(s), me);
    }
        /* fall through */
    case SLEEP_FOREVER:
        while (pause() == -1)
            ;
    }
    return square(&j->x, sizeof j->x, out, cap);
}
WEFT_PROCESS_REGISTER(misbehave);

static bool pid_written(void *mem)
{
    return atomic_load((_Atomic pid_t *)mem) != 0;
}

WT_FAULT(the_crash_matrix_fails_only_the_crashed_tasks)
{
    FOR_EACH_METHOD (m) {
        weft_shm_t *victim_pid;
        struct job j = {0, 0, ""};
        snprintf(j.shm, sizeof j.shm, "/weft-ppool-%d", (int)getpid());
        WT_EQ(weft_shm_create(&victim_pid, j.shm, sizeof(pid_t)), 0);
        weft_ppool_t *p;
        weft_ppool_opts_t o = {.processes = 2, .method = m, .task_timeout = 0.5 * wt_slack()};
        WT_EQ(weft_ppool_new(&p, &o), 0);
        enum { N = 60 };
        weft_future_t *f[N];
        for (int i = 0; i < N; i++) {
            j.x = i;
            j.what = i == 10   ? SEGFAULT
                     : i == 20 ? EXIT3
                     : i == 30 ? WAIT_TO_BE_KILLED
                     : i == 40 ? SLEEP_FOREVER
                               : 0;
            WT_EQ(weft_ppool_submit(p, misbehave, &j, sizeof j, &f[i]), 0);
        }
        wt_wait_until(pid_written, weft_shm_buf(victim_pid), 30 * wt_slack());
        pid_t victim = atomic_load((_Atomic pid_t *)weft_shm_buf(victim_pid));
        WT_EQ(kill(victim, SIGKILL), 0); /* from outside, as the OOM killer would */
        for (int i = 0; i < N; i++) {
            const void *data;
            size_t len;
            int code = 12345;
            int rc = weft_ppool_result(f[i], 60 * wt_slack(), &data, &len, &code);
            if (i == 10) {
                WT_EQ(rc, WEFT_ECRASHED);
                if (!wt_sanitizer()) /* sanitizers catch the signal and exit */
                    WT_EQ(code, -SIGSEGV);
            } else if (i == 20) {
                WT_EQ(rc, WEFT_ECRASHED);
                WT_EQ(code, 3);
            } else if (i == 30) {
                WT_EQ(rc, WEFT_ECRASHED);
                WT_EQ(code, -SIGKILL);
            } else if (i == 40) {
                WT_EQ(rc, -ETIMEDOUT);
            } else {
                WT_EQ(rc, 0);
                WT_EQ(*(const long *)data, (long)i * i);
            }
            weft_future_free(f[i]);
        }
        WT_EQ(weft_ppool_workers(p), 2); /* every dead worker was replaced */
        long x = 5, y;
        WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
        WT_EQ(weft_ppool_free(p), 0);
        WT_EQ(weft_shm_unlink(victim_pid), 0);
        WT_EQ(weft_shm_close(victim_pid), 0);
    }
}

WT_CASE(maxtasksperchild_recycles_workers)
{
    weft_ppool_t *p;
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 2, .maxtasksperchild = 3}), 0);
    enum { N = 30 };
    pid_t pids[N];
    weft_future_t *f[N];
    for (int i = 0; i < N; i++)
        WT_EQ(weft_ppool_submit(p, my_pid, NULL, 0, &f[i]), 0);
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        const void *data;
        WT_EQ(weft_ppool_result(f[i], 30 * wt_slack(), &data, NULL, NULL), 0);
        memcpy(&pids[i], data, sizeof(pid_t));
        bool seen = false;
        for (int k = 0; k < i; k++)
            seen |= pids[k] == pids[i];
        distinct += !seen;
        weft_future_free(f[i]);
    }
    WT_CHECK(distinct >= N / 3); /* no worker ran more than three */
    WT_EQ(weft_ppool_free(p), 0);
}

static long init_value;

static int set_value(const void *arg, size_t len)
{
    if (len != sizeof(long))
        return 1;
    memcpy(&init_value, arg, sizeof init_value);
    return init_value < 0;
}
WEFT_PROCESS_REGISTER(set_value);

static ssize_t get_value(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)cap;
    memcpy(out, &init_value, sizeof init_value);
    return sizeof init_value;
}
WEFT_PROCESS_REGISTER(get_value);

WT_CASE(initializers_run_in_every_worker_and_a_failing_one_breaks_the_pool)
{
    FOR_EACH_METHOD (m) {
        long v = 77, y = 0;
        weft_ppool_opts_t o = {.processes = 2,
                               .method = m,
                               .initializer = set_value,
                               .initarg = &v,
                               .initarg_len = sizeof v};
        weft_ppool_t *p;
        WT_EQ(weft_ppool_new(&p, &o), 0);
        for (int i = 0; i < 6; i++) {
            WT_EQ(weft_ppool_apply(p, get_value, NULL, 0, &y, sizeof y), sizeof y);
            WT_EQ(y, 77);
        }
        WT_EQ(weft_ppool_free(p), 0);
        v = -1;
        WT_EQ(weft_ppool_new(&p, &o), 0);
        weft_future_t *f;
        WT_EQ(weft_ppool_submit(p, get_value, NULL, 0, &f), 0);
        WT_EQ(weft_future_error(f, 30 * wt_slack()), WEFT_EBROKEN);
        weft_future_free(f);
        WT_EQ(weft_ppool_submit(p, get_value, NULL, 0, &f), WEFT_EBROKEN);
        WT_EQ(weft_ppool_free(p), 0);
    }
}

WT_CASE(close_join_terminate_and_shutdown)
{
    weft_ppool_t *p = pool_of(1, WEFT_START_FORK);
    long x = 3, y;
    WT_EQ(weft_ppool_join(p, 0), -EPERM); /* neither closed nor terminated */
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
    WT_EQ(weft_ppool_close(p), 0);
    weft_future_t *f;
    WT_EQ(weft_ppool_submit(p, square, &x, sizeof x, &f), WEFT_ESHUTDOWN);
    WT_EQ(weft_ppool_join(p, 30 * wt_slack()), 0);
    WT_EQ(weft_ppool_workers(p), 0);
    WT_EQ(weft_ppool_free(p), 0);

    /* terminate: the running task and the queued ones end -ECANCELED. */
    p = pool_of(1, WEFT_START_FORK);
    struct job forever = {SLEEP_FOREVER, 0, ""};
    weft_future_t *g[5];
    for (int i = 0; i < 5; i++)
        WT_EQ(weft_ppool_submit(p, misbehave, &forever, sizeof forever, &g[i]), 0);
    WT_EQ(weft_ppool_terminate(p), 0);
    WT_EQ(weft_ppool_join(p, 30 * wt_slack()), 0);
    for (int i = 0; i < 5; i++) {
        WT_EQ(weft_future_error(g[i], 30 * wt_slack()), -ECANCELED);
        weft_future_free(g[i]);
    }
    WT_EQ(weft_ppool_free(p), 0);

    /* shutdown(cancel_futures): what has not started is cancelled; kill_workers ends the rest. */
    for (int how = 0; how < 2; how++) {
        p = pool_of(1, WEFT_START_FORK);
        for (int i = 0; i < 5; i++)
            WT_EQ(weft_ppool_submit(p, misbehave, &forever, sizeof forever, &g[i]), 0);
        WT_EQ(weft_ppool_shutdown(p, false, true), 0);
        int cancelled = 0;
        for (int i = 0; i < 5; i++)
            cancelled += weft_future_cancelled(g[i]) == 1;
        WT_CHECK(cancelled >= 1); /* those not yet sent to the worker */
        WT_EQ(how ? weft_ppool_kill_workers(p) : weft_ppool_terminate_workers(p), 0);
        WT_EQ(weft_ppool_join(p, 30 * wt_slack()), 0);
        for (int i = 0; i < 5; i++) {
            WT_EQ(weft_future_error(g[i], 30 * wt_slack()), -ECANCELED);
            weft_future_free(g[i]);
        }
        WT_EQ(weft_ppool_free(p), 0);
    }
}

static _Atomic int callbacks;

static void count_callback(weft_future_t *f, void *arg)
{
    (void)f, (void)arg;
    atomic_fetch_add(&callbacks, 1);
}

WT_CASE(wait_and_callbacks_work_on_pool_futures)
{
    weft_ppool_t *p = pool_of(2, WEFT_START_FORK);
    weft_future_t *f[20];
    for (long i = 0; i < 20; i++) {
        WT_EQ(weft_ppool_submit(p, square, &i, sizeof i, &f[i]), 0);
        WT_EQ(weft_future_add_done_callback(f[i], count_callback, NULL), 0);
    }
    /* Nobody waits on the futures themselves: the manager collects. */
    WT_EQ(weft_wait(f, 20, 30 * wt_slack(), WEFT_ALL_COMPLETED), 20);
    for (int i = 0; i < 20; i++) {
        WT_EQ(weft_future_done(f[i]), 1);
        weft_future_free(f[i]);
    }
    WT_EQ(weft_ppool_free(p), 0); /* joins the manager, which ran the callbacks */
    WT_EQ(atomic_load(&callbacks), 20);
}

static ssize_t unregistered(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)out, (void)cap;
    return 0;
}

WT_CASE(unregistered_tasks_need_the_fork_method)
{
    weft_ppool_t *p = pool_of(1, WEFT_START_SPAWN);
    weft_future_t *f;
    WT_EQ(weft_ppool_submit(p, unregistered, NULL, 0, &f), -EINVAL);
    WT_EQ(weft_ppool_free(p), 0);
    p = pool_of(1, WEFT_START_DEFAULT); /* the first task decides: fork */
    char out[1];
    WT_EQ(weft_ppool_apply(p, unregistered, NULL, 0, out, 0), 0);
    WT_EQ(weft_ppool_free(p), 0);
}

WT_STRESS(pools_leave_no_zombies_or_descriptors)
{
    weft_ppool_t *warm = pool_of(1, WEFT_START_FORK); /* the daemons' lifeline stays */
    WT_EQ(weft_ppool_apply(warm, my_pid, NULL, 0, &(pid_t){0}, sizeof(pid_t)), sizeof(pid_t));
    WT_EQ(weft_ppool_free(warm), 0);
    int fds = wt_count_fds();
    for (int round = 0; round < 20; round++) {
        weft_ppool_t *p = pool_of(2, round % 2 ? WEFT_START_FORK : WEFT_START_SPAWN);
        long x = round, y;
        WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
        WT_EQ(weft_ppool_free(p), 0);
    }
    WT_EQ(wt_count_fds(), fds);
    WT_CHECK(waitpid(-1, NULL, WNOHANG) <= 0); /* no zombie */
}

static int unregistered_init(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 0;
}

/* Sleeps for *arg seconds. */
static ssize_t sleep_for(const void *arg, size_t len, void *out, size_t cap)
{
    (void)len, (void)out, (void)cap;
    double s;
    memcpy(&s, arg, sizeof s);
    weft_sleep(s);
    return 0;
}
WEFT_PROCESS_REGISTER(sleep_for);

/* The task queued behind a long one goes to a worker that has become idle,
 * rather than waiting for the long one to end. Dispatch is deterministic:
 * the long task goes to the first worker, the short one to the second, and
 * the third to the first again (the fewest tasks, the lower index). */
WT_CASE(a_task_queued_behind_a_long_one_goes_to_an_idle_worker)
{
    weft_ppool_t *p = pool_of(2, WEFT_START_FORK);
    double long_s = 30 * wt_slack(), short_s = 0.05, none = 0;
    weft_future_t *f[3];
    WT_EQ(weft_ppool_submit(p, sleep_for, &long_s, sizeof long_s, &f[0]), 0);
    WT_EQ(weft_ppool_submit(p, sleep_for, &short_s, sizeof short_s, &f[1]), 0);
    WT_EQ(weft_ppool_submit(p, sleep_for, &none, sizeof none, &f[2]), 0);
    WT_EQ(weft_future_error(f[2], 10 * wt_slack()), 0); /* long before the long one ends */
    WT_EQ(weft_future_done(f[0]), 0);
    WT_EQ(weft_ppool_terminate(p), 0);
    for (int i = 0; i < 3; i++)
        weft_future_free(f[i]);
    WT_EQ(weft_ppool_free(p), 0);
}

/* --- the take-back race ----------------------------------------------------- */

/* A task queued behind a long one is taken back for an idle worker by one
 * compare-and-swap on its claim word, which its worker races for when it
 * gets to the task: whichever side wins, the task runs exactly once. */

/* Shared with the workers (a fork keeps the mapping): gates[i] opens to
 * end holder i; runs of the contested task. */
static _Atomic uint32_t *gates;
static _Atomic int *ran;
static pid_t worker_of[2]; /* the pids of the holders' workers */

static void share_contest_words(void)
{
    gates = wt_shared_map(2 * sizeof *gates);
    ran = wt_shared_map(sizeof *ran);
}

/* Holds its worker until gates[*arg] opens; its worker's pid. */
static ssize_t hold_until_open(const void *arg, size_t len, void *out, size_t cap)
{
    (void)len;
    _Atomic uint32_t *gate = &gates[*(const int *)arg];
    while (!atomic_load(gate))
        weft__park(gate, 0, WEFT__NEVER, WEFT__PARK_SHARED);
    return my_pid(NULL, 0, out, cap);
}

static ssize_t contested(const void *arg, size_t len, void *out, size_t cap)
{
    atomic_fetch_add(ran, 1);
    return my_pid(arg, len, out, cap);
}

static void release(int i)
{
    atomic_store(&gates[i], 1);
    weft__unpark(&gates[i], INT32_MAX, WEFT__PARK_SHARED);
}

static pid_t pid_result(weft_future_t *f)
{
    const void *data;
    size_t len;
    WT_EQ(weft_ppool_result(f, 30 * wt_slack(), &data, &len, NULL), 0);
    WT_EQ(len, sizeof(pid_t));
    pid_t pid;
    memcpy(&pid, data, sizeof pid);
    weft_future_free(f);
    return pid;
}

/* Two workers each hold a task; the contested one is queued behind
 * holder 0 (dispatch sends it to the first of the least busy). Holder 1
 * is released, which leaves its worker idle. Returns the contested
 * task's future. */
static weft_future_t *contest(weft_ppool_t *p, weft_future_t *holder[2])
{
    for (int i = 0; i < 2; i++)
        WT_EQ(weft_ppool_submit(p, hold_until_open, &i, sizeof i, &holder[i]), 0);
    weft_future_t *f;
    WT_EQ(weft_ppool_submit(p, contested, NULL, 0, &f), 0);
    release(1);
    worker_of[1] = pid_result(holder[1]);
    return f;
}

static void end_contest(weft_ppool_t *p)
{
    WT_EQ(weft_ppool_close(p), 0);                 /* the workers stop by themselves, */
    WT_EQ(weft_ppool_join(p, 30 * wt_slack()), 0); /* having skipped what they lost */
    WT_EQ(weft_ppool_free(p), 0);
    WT_EQ(atomic_load(ran), 1);
}

/* The parent wins: the task runs on the idle worker while holder 0 still
 * runs, and holder 0's worker, when it gets to the task, finds it taken
 * and skips it. */
WT_CASE(a_task_taken_back_runs_once_on_the_idle_worker)
{
    share_contest_words();
    weft_ppool_t *p = pool_of(2, WEFT_START_FORK);
    weft_future_t *holder[2];
    weft_future_t *f = contest(p, holder);
    WT_EQ(pid_result(f), worker_of[1]); /* while holder 0 still holds */
    release(0);
    worker_of[0] = pid_result(holder[0]);
    WT_CHECK(worker_of[0] != worker_of[1]);
    end_contest(p);
}

static _Atomic int hook_calls;

static bool claimed(void *claim)
{
    return atomic_load((_Atomic uint32_t *)claim) != 0; /* no longer POSTED */
}

/* Just before the parent's compare-and-swap: let holder 0 end, and wait
 * until its worker has claimed the task. */
static void worker_claims_first(_Atomic uint32_t *claim)
{
    if (atomic_fetch_add(&hook_calls, 1) == 0) {
        release(0);
        wt_wait_until(claimed, claim, 30 * wt_slack());
    }
}

/* The worker wins: the parent's take-back fails, and the task runs where
 * it was posted, behind holder 0. */
WT_CASE(a_task_its_worker_claims_first_is_not_taken_back)
{
    share_contest_words();
    weft__ppool_take_back_hook = worker_claims_first; /* before the pool's threads */
    weft_ppool_t *p = pool_of(2, WEFT_START_FORK);
    weft_future_t *holder[2];
    weft_future_t *f = contest(p, holder);
    pid_t ran_on = pid_result(f);
    worker_of[0] = pid_result(holder[0]);
    WT_EQ(ran_on, worker_of[0]);
    WT_CHECK(atomic_load(&hook_calls) >= 1);
    end_contest(p);
    weft__ppool_take_back_hook = NULL;
}

/* --- regressions ------------------------------------------------------------ */

static ssize_t result_of_its_size(const void *arg, size_t len, void *out, size_t cap)
{
    (void)len;
    long x;
    memcpy(&x, arg, sizeof x);
    size_t n = x % 3 == 0 ? 0 : cap; /* sizes that make the result ring wrap */
    memset(out, 1, n);
    return (ssize_t)n;
}
WEFT_PROCESS_REGISTER(result_of_its_size);

/* A worker that found its result ring full waits for room; the parent
 * must see that it waits after freeing room (it once missed it, and the
 * worker slept for good). */
WT_STRESS(a_worker_waiting_for_result_room_is_woken)
{
    weft_ppool_t *p;
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 1, .max_result = 64, .max_arg = 8}),
          0);
    int n = wt_sanitizer() ? 5000 : 50000;
    weft_future_t **fs = calloc((size_t)n, sizeof *fs);
    for (long i = 0; i < n; i++)
        WT_EQ(weft_ppool_submit(p, result_of_its_size, &i, sizeof i, &fs[i]), 0);
    for (int i = 0; i < n; i++) {
        WT_EQ(weft_ppool_result(fs[i], 30 * wt_slack(), NULL, NULL, NULL), 0);
        weft_future_free(fs[i]);
    }
    free(fs);
    WT_EQ(weft_ppool_free(p), 0);
}

struct cancel_wait {
    weft_future_t *f;
    _Atomic long tid;
    int rc;
};

static void *wait_for_future(void *arg)
{
    struct cancel_wait *c = arg;
    atomic_store(&c->tid, (long)weft__gettid());
    c->rc = weft_future_error(c->f, WEFT_FOREVER);
    return NULL;
}

static bool tid_known(void *arg)
{
    return atomic_load(&((struct cancel_wait *)arg)->tid) != 0;
}

/* A thread asleep waiting for a queued task's future returns when the
 * future is cancelled, not when the worker gets to it. */
WT_CASE(cancelling_a_queued_task_releases_its_waiter)
{
    weft_ppool_t *p = pool_of(1, WEFT_START_FORK);
    struct job forever = {SLEEP_FOREVER, 0, ""};
    weft_future_t *busy[2];
    for (int i = 0; i < 2; i++) /* the worker's two places */
        WT_EQ(weft_ppool_submit(p, misbehave, &forever, sizeof forever, &busy[i]), 0);
    struct cancel_wait c = {NULL, 0, 1};
    WT_EQ(weft_ppool_submit(p, misbehave, &forever, sizeof forever, &c.f), 0);
    pthread_t t;
    WT_EQ(pthread_create(&t, NULL, wait_for_future, &c), 0);
    wt_wait_until(tid_known, &c, 10 * wt_slack());
    wt_await_futex_sleep(atomic_load(&c.tid), NULL, 10 * wt_slack());
    WT_EQ(weft_future_cancel(c.f), 1);
    WT_EQ(pthread_join(t, NULL), 0);
    WT_EQ(c.rc, -ECANCELED);
    WT_EQ(weft_ppool_terminate(p), 0);
    for (int i = 0; i < 2; i++)
        weft_future_free(busy[i]);
    weft_future_free(c.f);
    WT_EQ(weft_ppool_free(p), 0);
}

/* The timeout holds for a task sent to an idle pool, whose manager had no
 * running task to watch when the task arrived. */
WT_CASE(a_task_sent_to_an_idle_pool_still_times_out)
{
    weft_ppool_t *p;
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 1, .task_timeout = 0.2}), 0);
    long x = 2, y;
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y); /* idle now */
    struct job forever = {SLEEP_FOREVER, 0, ""};
    weft_future_t *f;
    double t0 = wt_now();
    WT_EQ(weft_ppool_submit(p, misbehave, &forever, sizeof forever, &f), 0);
    WT_EQ(weft_future_error(f, 30 * wt_slack()), -ETIMEDOUT);
    WT_CHECK(wt_now() - t0 < 0.2 + 5 * wt_slack());
    weft_future_free(f);
    WT_EQ(weft_ppool_free(p), 0);
}

static int count_start(const void *arg, size_t len)
{
    weft_shm_t *s;
    if (len == 0 || weft_shm_attach(&s, arg) < 0)
        return 1;
    atomic_fetch_add((_Atomic int *)weft_shm_buf(s), 1);
    return weft_shm_close(s);
}
WEFT_PROCESS_REGISTER(count_start);

static ssize_t nap(const void *arg, size_t len, void *out, size_t cap)
{
    (void)arg, (void)len, (void)out, (void)cap;
    usleep(200000);
    return 0;
}
WEFT_PROCESS_REGISTER(nap);

/* After close, idle workers stop and are not started again while a last
 * task runs elsewhere (they once were, in a loop, until it ended). */
WT_CASE(closing_starts_no_new_workers)
{
    char name[32];
    snprintf(name, sizeof name, "/weft-starts-%d", (int)getpid());
    weft_shm_t *starts;
    WT_EQ(weft_shm_create(&starts, name, sizeof(int)), 0);
    weft_ppool_t *p;
    weft_ppool_opts_t o = {.processes = 4,
                           .initializer = count_start,
                           .initarg = name,
                           .initarg_len = strlen(name) + 1};
    WT_EQ(weft_ppool_new(&p, &o), 0);
    weft_future_t *f;
    WT_EQ(weft_ppool_submit(p, nap, NULL, 0, &f), 0);
    WT_EQ(weft_ppool_close(p), 0);
    WT_EQ(weft_ppool_join(p, 30 * wt_slack()), 0);
    WT_EQ(weft_future_error(f, 0), 0);
    WT_EQ(atomic_load((_Atomic int *)weft_shm_buf(starts)), 4);
    weft_future_free(f);
    WT_EQ(weft_ppool_free(p), 0);
    WT_EQ(weft_shm_unlink(starts), 0);
    WT_EQ(weft_shm_close(starts), 0);
}

/* Names spawn and forkserver workers could not be told. */
static ssize_t
a_task_whose_name_is_far_too_long_to_travel_to_a_worker_by_name_in_the_fixed_room_of_a_task_header_which_holds_two_hundred_and_fifty_five_characters_and_a_terminating_nul_byte_so_this_one_with_more_than_that_is_refused_when_submitted_rather_than_overflowing_anything_at_all(
    const void *arg, size_t len, void *out, size_t cap)
{
    return square(arg, len, out, cap);
}
WEFT_PROCESS_REGISTER(
    a_task_whose_name_is_far_too_long_to_travel_to_a_worker_by_name_in_the_fixed_room_of_a_task_header_which_holds_two_hundred_and_fifty_five_characters_and_a_terminating_nul_byte_so_this_one_with_more_than_that_is_refused_when_submitted_rather_than_overflowing_anything_at_all);

WT_CASE(functions_a_fresh_worker_cannot_find_are_refused)
{
    weft_ppool_t *p = pool_of(1, WEFT_START_FORKSERVER);
    weft_future_t *f;
    long x = 3;
    WT_EQ(
        weft_ppool_submit(
            p,
            a_task_whose_name_is_far_too_long_to_travel_to_a_worker_by_name_in_the_fixed_room_of_a_task_header_which_holds_two_hundred_and_fifty_five_characters_and_a_terminating_nul_byte_so_this_one_with_more_than_that_is_refused_when_submitted_rather_than_overflowing_anything_at_all,
            &x, sizeof x, &f),
        -EINVAL);
    WT_EQ(weft_ppool_free(p), 0);
    /* An unregistered initializer, and a first task that picks forkserver. */
    WT_EQ(
        weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 1, .initializer = unregistered_init}),
        0);
    WT_EQ(weft_ppool_submit(p, square, &x, sizeof x, &f), -EINVAL);
    WT_EQ(weft_ppool_free(p), 0);
}

/* A timeout too long to count in nanoseconds never fires: it once
 * overflowed, and the pool killed every task at once for its time (or
 * UBSan stopped the manager). */
WT_CASE(huge_task_timeouts_never_fire)
{
    double huge[] = {INFINITY, 1e300, 1e12, 1e9};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        weft_ppool_t *p;
        WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 1, .task_timeout = huge[i]}), 0);
        for (long x = 0; x < 3; x++) {
            long y = -1;
            WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
            WT_EQ(y, x * x);
        }
        WT_EQ(weft_ppool_free(p), 0);
    }
}

/* --- running out of memory ------------------------------------------------- */

/* Fault injection that fails the n-th fallible call (malloc, calloc,
 * pthread_create) this process makes once armed, whichever thread makes
 * it; forked workers inherit the table, not the fault. The table is set
 * before a pool's threads exist and reset after they end, so that they
 * never see it change. */
static _Atomic long calls_left; /* 0: disarmed */
static _Atomic bool fault_fired;
static pid_t fault_pid;

static bool fail_this_call(void)
{
    if (getpid() != fault_pid || atomic_load(&calls_left) <= 0 ||
        atomic_fetch_sub(&calls_left, 1) != 1)
        return false;
    atomic_store(&fault_fired, true);
    return true;
}

static void *nth_malloc(size_t size)
{
    return fail_this_call() ? NULL : malloc(size);
}

static void *nth_calloc(size_t count, size_t size)
{
    return fail_this_call() ? NULL : calloc(count, size);
}

static int nth_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                              void *arg)
{
    return fail_this_call() ? EAGAIN : pthread_create(t, attr, fn, arg);
}

/* The system calls fail as they can when the machine is short of memory
 * or processes. */
static pid_t nth_fork(void)
{
    return fail_this_call() ? (errno = EAGAIN, -1) : fork();
}

static int nth_pidfd_open(pid_t pid, unsigned flags)
{
    return fail_this_call() ? (errno = ENOMEM, -1) : (int)syscall(SYS_pidfd_open, pid, flags);
}

static int nth_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    return fail_this_call() ? EAGAIN : posix_spawn(pid, path, fa, attr, argv, envp);
}

static int nth_memfd_create(const char *name, unsigned flags)
{
    return fail_this_call() ? (errno = ENOMEM, -1) : memfd_create(name, flags);
}

static void *nth_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return fail_this_call() ? (errno = ENOMEM, MAP_FAILED) : mmap(addr, len, prot, flags, fd, off);
}

static int nth_socketpair(int domain, int type, int protocol, int sv[2])
{
    return fail_this_call() ? (errno = ENOMEM, -1) : socketpair(domain, type, protocol, sv);
}

static ssize_t nth_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return fail_this_call() ? (errno = ENOMEM, -1) : sendmsg(fd, msg, flags);
}

static void install_faults(void)
{
    fault_pid = getpid();
    weft__sys.malloc = nth_malloc;
    weft__sys.calloc = nth_calloc;
    weft__sys.pthread_create = nth_pthread_create;
    weft__sys.fork = nth_fork;
    weft__sys.pidfd_open = nth_pidfd_open;
    weft__sys.posix_spawn = nth_posix_spawn;
    weft__sys.memfd_create = nth_memfd_create;
    weft__sys.mmap = nth_mmap;
    weft__sys.socketpair = nth_socketpair;
    weft__sys.sendmsg = nth_sendmsg;
}

static void fail_call(long n)
{
    atomic_store(&fault_fired, false);
    atomic_store(&calls_left, n);
}

/* Disarm; whether the n-th call was reached. */
static bool fault_reached(void)
{
    atomic_store(&calls_left, 0);
    return atomic_load(&fault_fired);
}

/* The pool is whole: a task whose future nobody waits on (the manager
 * alone collects it) finishes. */
static void check_whole(weft_ppool_t *p)
{
    long x = 9;
    weft_future_t *f;
    WT_EQ(weft_ppool_submit(p, square, &x, sizeof x, &f), 0);
    WT_EQ(weft_wait(&f, 1, 30 * wt_slack(), WEFT_ALL_COMPLETED), 1);
    WT_EQ(weft_future_error(f, 0), 0);
    weft_future_free(f);
}

/* Every allocation, thread start and system call of a pool's making
 * (its shared memory, the workers' starts, the forkserver's) fails in
 * turn: the pool, or its first task, fails with -ENOMEM or -EAGAIN, and
 * the pool is then whole at the next try, never running without its
 * manager (which once allocated its own poll set and, when that failed,
 * quietly ended) or with some of its workers. */
WT_FAULT(a_pool_that_cannot_be_built_fails_cleanly)
{
    install_faults();
    FOR_EACH_METHOD (m) {
        for (long n = 1;; n++) {
            weft_ppool_t *p = NULL;
            long x = 12, y = 0;
            fail_call(n);
            int rc = weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = 2, .method = m});
            if (rc == 0)
                rc = (int)weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y);
            bool reached = fault_reached();
            if (rc < 0)
                WT_CHECK(reached && (rc == -ENOMEM || rc == -EAGAIN));
            if (p && rc < 0) /* a failed start leaves nothing half-built */
                rc = (int)weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y);
            if (p) {
                WT_EQ(rc, sizeof y);
                WT_EQ(y, 144);
                check_whole(p);
                WT_EQ(weft_ppool_workers(p), 2);
                WT_EQ(weft_ppool_free(p), 0);
            }
            if (!reached)
                break;
        }
    }
    weft__sys_reset();
}

/* fork in this process fails while forks_to_fail is above 0; forks_tried
 * counts the attempts. */
static _Atomic int forks_to_fail, forks_tried;

static pid_t fork_failing_for_a_while(void)
{
    if (getpid() == fault_pid) {
        atomic_fetch_add(&forks_tried, 1);
        if (atomic_fetch_sub(&forks_to_fail, 1) > 0)
            return errno = EAGAIN, -1;
    }
    return fork();
}

/* A dead worker's replacement that cannot be started (fork fails) is
 * tried again soon, by the manager alone, and the pool's tasks wait for it
 * rather than fail. */
WT_FAULT(a_replacement_that_cannot_start_is_tried_again)
{
    fault_pid = getpid();
    weft__sys.fork = fork_failing_for_a_while; /* before the pool's threads */
    weft_ppool_t *p = pool_of(1, WEFT_START_FORK);
    long x = 7, y = 0;
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
    atomic_store(&forks_tried, 0);
    atomic_store(&forks_to_fail, 2);
    struct job j = {.what = EXIT3};
    weft_future_t *f;
    int code = 0;
    WT_EQ(weft_ppool_submit(p, misbehave, &j, sizeof j, &f), 0);
    WT_EQ(weft_ppool_result(f, 30 * wt_slack(), NULL, NULL, &code), WEFT_ECRASHED);
    WT_EQ(code, 3);
    weft_future_free(f);
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
    WT_EQ(y, 49);
    WT_EQ(atomic_load(&forks_tried), 3); /* two that failed, and the one that ran it */
    WT_EQ(weft_ppool_workers(p), 1);
    WT_EQ(weft_ppool_free(p), 0);
    weft__sys_reset();
}

/* Shared: how many more of the workers' mmaps fail. */
static _Atomic int *worker_maps_to_fail;

static void *mmap_failing_in_workers(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (getpid() != fault_pid && atomic_fetch_sub(worker_maps_to_fail, 1) > 0)
        return errno = ENOMEM, MAP_FAILED;
    return mmap(addr, len, prot, flags, fd, off);
}

/* A worker that cannot map the pool's memory ends before it takes its
 * first task: the task is not its to fail, and runs on the replacement. */
WT_FAULT(a_worker_that_cannot_map_the_pool_leaves_its_task_to_the_next)
{
    fault_pid = getpid();
    worker_maps_to_fail = wt_shared_map(sizeof *worker_maps_to_fail);
    atomic_store(worker_maps_to_fail, 1);
    weft__sys.mmap = mmap_failing_in_workers; /* forked workers inherit it */
    weft_ppool_t *p = pool_of(1, WEFT_START_FORK);
    long x = 8, y = 0;
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y);
    WT_EQ(y, 64);
    WT_EQ(atomic_load(worker_maps_to_fail), -1); /* two workers mapped it, the first failed */
    WT_EQ(weft_ppool_free(p), 0);
    weft__sys_reset();
}

enum { MAP_N = 100, MAP_CHUNK = 10 };

/* One map, map_async or imap (ordered or not) over items, checked; 0 or
 * the first error. */
static int map_once(weft_ppool_t *p, int how, const long *items)
{
    long results[MAP_N];
    int rc;
    if (how < 2) {
        weft_future_t *f = NULL;
        rc = how == 0 ? weft_ppool_map(p, square, items, MAP_N, sizeof(long), results, sizeof(long),
                                       MAP_CHUNK, NULL, NULL)
                      : weft_ppool_map_async(p, square, items, MAP_N, sizeof(long), results,
                                             sizeof(long), MAP_CHUNK, NULL, NULL, &f);
        if (f) {
            rc = weft_future_error(f, 30 * wt_slack());
            weft_future_free(f);
        }
        for (long i = 0; rc == 0 && i < MAP_N; i++)
            WT_EQ(results[i], i * i);
        return rc;
    }
    weft_ppool_imap_t *it;
    rc = weft_ppool_imap_new(&it, p, square, items, MAP_N, sizeof(long), sizeof(long), MAP_CHUNK,
                             how == 2);
    if (rc < 0)
        return rc;
    long y;
    ssize_t i;
    while ((i = weft_ppool_imap_next(it, &y, 30 * wt_slack())) != -ENOENT) {
        if (i < 0)
            rc = rc ? rc : (int)i;
        else
            WT_EQ(y, i * i);
    }
    WT_EQ(weft_ppool_imap_free(it), 0);
    return rc;
}

/* Every allocation of a map, map_async, imap and imap_unordered fails in
 * turn: each ends with -ENOMEM, never a crash (free_job read an array
 * whose allocation had failed), a leak (imap_new's discarded future), or
 * a chunk that reads the caller's items after the map has returned (the
 * items are freed right after it, for ASan to see). */
WT_FAULT(map_and_imap_fail_cleanly_when_memory_runs_out)
{
    install_faults();
    weft_ppool_t *p = pool_of(2, WEFT_START_FORK);
    long x = 2, y;
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, &y, sizeof y), sizeof y); /* started */
    for (int how = 0; how < 4; how++) {
        for (long n = 1;; n++) {
            long *items = malloc(MAP_N * sizeof *items);
            for (long i = 0; i < MAP_N; i++)
                items[i] = i;
            fail_call(n);
            int rc = map_once(p, how, items);
            bool reached = fault_reached();
            free(items);
            WT_CHECK(rc == 0 || (reached && rc == -ENOMEM));
            if (!reached)
                break;
        }
    }
    check_whole(p);
    WT_EQ(weft_ppool_free(p), 0);
    weft__sys_reset();
}

WT_CASE(ppool_bad_input)
{
    weft_ppool_t *p;
    WT_EQ(weft_ppool_new(NULL, NULL), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.processes = -1}), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.maxtasksperchild = -1}), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.task_timeout = NAN}), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.method = (weft_start_method_t)9}), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.initarg_len = 4}), -EINVAL);
    WT_EQ(weft_ppool_new(&p, &(weft_ppool_opts_t){.method = WEFT_START_SPAWN,
                                                  .initializer = unregistered_init}),
          -EINVAL);
    p = pool_of(1, WEFT_START_FORK);
    weft_future_t *f;
    long x = 1;
    static char big[65537];
    WT_EQ(weft_ppool_submit(NULL, square, &x, sizeof x, &f), -EINVAL);
    WT_EQ(weft_ppool_submit(p, NULL, &x, sizeof x, &f), -EINVAL);
    WT_EQ(weft_ppool_submit(p, square, NULL, 4, &f), -EINVAL);
    WT_EQ(weft_ppool_submit(p, square, big, sizeof big, &f), -EINVAL); /* over max_arg */
    WT_EQ(weft_ppool_apply(p, square, &x, sizeof x, NULL, 8), -EINVAL);
    long items[4], results[4];
    WT_EQ(weft_ppool_map(p, square, NULL, 4, 8, results, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_ppool_map(p, square, items, 4, 8, NULL, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_ppool_map(p, square, items, 4, 70000, results, 8, 0, NULL, NULL), -EINVAL);
    WT_EQ(weft_ppool_map_async(p, square, items, 4, 8, results, 8, 0, NULL, NULL, NULL), -EINVAL);
    weft_ppool_imap_t *it;
    WT_EQ(weft_ppool_imap_new(NULL, p, square, items, 4, 8, 8, 0, true), -EINVAL);
    WT_EQ(weft_ppool_imap_new(&it, p, square, items, 4, 8, 70000, 0, true), -EINVAL);
    WT_EQ(weft_ppool_imap_next(NULL, results, 0), -EINVAL);
    WT_EQ(weft_ppool_imap_free(NULL), -EINVAL);
    weft_future_t *plain;
    WT_EQ(weft_future_new(&plain), 0);
    WT_EQ(weft_ppool_result(plain, 0, NULL, NULL, NULL), -EINVAL); /* not a pool's */
    WT_EQ(weft_future_free(plain), 0);
    WT_EQ(weft_ppool_result(NULL, 0, NULL, NULL, NULL), -EINVAL);
    WT_EQ(weft_ppool_close(NULL), -EINVAL);
    WT_EQ(weft_ppool_join(NULL, 0), -EINVAL);
    WT_EQ(weft_ppool_terminate(NULL), -EINVAL);
    WT_EQ(weft_ppool_shutdown(NULL, true, false), -EINVAL);
    WT_EQ(weft_ppool_free(NULL), -EINVAL);
    WT_EQ(weft_ppool_workers(NULL), -EINVAL);
    WT_EQ(weft_ppool_free(p), 0);
}
