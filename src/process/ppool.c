/*
 * The process pool (weft/ppool.h), parent side: the public calls. The
 * design of the whole is in ppool_parent.h; tasks reach the workers in
 * pdispatch.c, results come back in pcollect.c, and the manager thread
 * keeps the workers going in pmanager.c.
 *
 * Creation maps the memory shared with the workers (ppool_int.h) and
 * allocates all the manager will need. The workers and the manager start
 * with the first task, which decides the start method; if they cannot
 * all start, that task fails and the pool is left unstarted, as it was.
 *
 * Lifecycle: OPEN takes tasks; close makes it CLOSED, and once nothing is
 * pending every worker gets a STOP after its tasks; terminate (and
 * terminate_workers, kill_workers) makes it TERMINATED: workers are
 * signalled and every unfinished task ends -ECANCELED; a failing
 * initializer makes it BROKEN. The manager ends when no worker is left
 * and none will be started, and sets `ended`, which join waits for.
 */
#include "process/ppool_parent.h"
#include "sync/hold.h"
#include "process/process_int.h"
#include "thread/thread_int.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;

static struct weft_ppool *pools;

/* Can spawn and forkserver workers call fn (NULL: nothing to call)? */
static bool usable_by_name(void (*fn)(void))
{
    const char *name = fn ? weft__registered_name(fn) : "";
    return name && strlen(name) < WEFT__PNAME_MAX;
}

static void unlink_pool(struct weft_ppool *pool)
{
    pthread_mutex_lock(&pools_lock);
    if (pool->prev_pool)
        pool->prev_pool->next_pool = pool->next_pool;
    else if (pools == pool)
        pools = pool->next_pool;
    if (pool->next_pool)
        pool->next_pool->prev_pool = pool->prev_pool;
    pthread_mutex_unlock(&pools_lock);
}

static void free_pool(struct weft_ppool *pool)
{
    if (pool->map)
        munmap(pool->map, pool->map_size);
    if (pool->memfd >= 0)
        close(pool->memfd);
    if (pool->eventfd >= 0)
        close(pool->eventfd);
    free(pool->initarg);
    free(pool->w);
    free(pool->pfd);
    free(pool);
}

static int make_memory(struct weft_ppool *pool)
{
    uint64_t in_msg = 8 + weft__round8(WEFT__PTASK_HDR_ROOM + pool->o.max_arg);
    uint64_t out_msg = 8 + weft__round8(sizeof(struct weft__presult_hdr) + pool->o.max_result);
    pool->in_cap = 2 * in_msg;
    pool->out_cap = 2 * out_msg;
    size_t hdr = (sizeof(struct weft__pslot) + 63) & ~(size_t)63;
    pool->slot_size = (hdr + pool->in_cap + pool->out_cap + WEFT__PPOOL_PAGE - 1) /
                      WEFT__PPOOL_PAGE * WEFT__PPOOL_PAGE;
    pool->map_size = WEFT__PPOOL_PAGE + (size_t)pool->n * pool->slot_size;
    pool->memfd = weft__sys.memfd_create("weft-ppool", MFD_CLOEXEC);
    pool->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->memfd < 0 || pool->eventfd < 0)
        return -errno;
    if (ftruncate(pool->memfd, (off_t)pool->map_size) < 0)
        return -ENOMEM;
    void *m =
        weft__sys.mmap(NULL, pool->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, pool->memfd, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    pool->map = m;
    pool->page = m;
    return 0;
}

int weft_ppool_new(weft_ppool_t **out, const weft_ppool_opts_t *opts)
{
    weft_ppool_opts_t o = opts ? *opts : (weft_ppool_opts_t){0};
    if (!out || o.processes < 0 || o.maxtasksperchild < 0 || isnan(o.task_timeout) ||
        !weft_start_method_name(o.method) || (o.initarg_len && !o.initarg) ||
        o.max_arg > (1u << 30) || o.max_result > (1u << 30) || o.initarg_len > (1u << 20))
        return -EINVAL;
    if (o.method != WEFT_START_FORK && o.method != WEFT_START_DEFAULT &&
        !usable_by_name(WEFT__FN(o.initializer)))
        return -EINVAL;
    o.processes = o.processes ? o.processes : weft_cpu_count();
    o.max_arg = o.max_arg ? o.max_arg : 65536;
    o.max_result = o.max_result ? o.max_result : 65536;
    struct weft_ppool *pool = weft__calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    pool->memfd = pool->eventfd = -1;
    pool->o = o;
    pool->n = o.processes;
    pool->w = weft__calloc((size_t)pool->n, sizeof *pool->w);
    /* The manager's, allocated here: a manager that could not have it
     * would leave the pool running without anyone to reap, replace or
     * time its workers. */
    pool->pfd = weft__calloc((size_t)pool->n + 1, sizeof *pool->pfd);
    pool->initarg = o.initarg_len ? weft__malloc(o.initarg_len) : NULL;
    int rc =
        !pool->w || !pool->pfd || (o.initarg_len && !pool->initarg) ? -ENOMEM : make_memory(pool);
    if (rc < 0) {
        free_pool(pool);
        return rc;
    }
    if (o.initarg_len)
        memcpy(pool->initarg, o.initarg, o.initarg_len);
    weft_lock_init(&pool->lock, 0);
    weft_event_init(&pool->ended, 0);
    atomic_init(&pool->refs, 1);
    pthread_mutex_lock(&pools_lock);
    pool->next_pool = pools;
    if (pools)
        pools->prev_pool = pool;
    pools = pool;
    pthread_mutex_unlock(&pools_lock);
    *out = pool;
    return 0;
}

/* Start the workers and the manager at the first task (lock held). */
static int launch_all(struct weft_ppool *pool, weft_ptask_fn first)
{
    weft_start_method_t m = pool->o.method ? pool->o.method : weft_process_get_start_method();
    if (m == WEFT_START_DEFAULT)
        m = weft__registered_name(WEFT__FN(first)) ? WEFT_START_FORKSERVER : WEFT_START_FORK;
    pool->method = m;
    if (m != WEFT_START_FORK && !usable_by_name(WEFT__FN(pool->o.initializer)))
        return -EINVAL; /* a fresh program could only call it by name */
    int rc = 0;
    for (int i = 0; i < pool->n && rc == 0; i++)
        rc = weft__ppool_launch(pool, i);
    if (rc == 0 && weft__sys.pthread_create(&pool->manager, NULL, weft__ppool_manager, pool) != 0)
        rc = -EAGAIN;
    if (rc < 0) {
        for (int i = 0; i < pool->n; i++)
            if (pool->w[i].proc) {
                weft_process_kill(pool->w[i].proc);
                weft_process_join(pool->w[i].proc, WEFT_FOREVER);
                weft_process_close(pool->w[i].proc);
                pool->w[i].proc = NULL;
            }
        return rc == -ENOMEM ? rc : -EAGAIN;
    }
    pool->launched = pool->manager_started = true;
    return 0;
}

/* Queue t (lock not held); on success *f gets a reference if f != NULL. */
static int submit_task(struct weft_ppool *pool, struct weft__ptask *t, weft_future_t **f)
{
    weft_future_t *fut = weft__ppool_new_future(pool);
    if (!fut) {
        weft__ptask_free(t);
        return -ENOMEM;
    }
    t->f = fut;
    struct weft__ptask *done = NULL;
    weft__lock_hold(&pool->lock);
    int rc = pool->state == WEFT__PP_BROKEN ? WEFT_EBROKEN
             : pool->state != WEFT__PP_OPEN ? WEFT_ESHUTDOWN
                                            : 0;
    if (rc == 0 && !pool->launched)
        rc = launch_all(pool, t->fn);
    if (rc == 0 && pool->method != WEFT_START_FORK && !usable_by_name(WEFT__FN(t->fn)))
        rc = -EINVAL;
    if (rc == 0) {
        t->id = ++pool->next_id;
        if (f) {
            weft__future_ref(fut);
            *f = fut;
        }
        weft__ptask_push_back(&pool->pend_head, &pool->pend_tail, t);
        weft__ppool_dispatch(pool, &done);
    }
    weft_lock_release(&pool->lock);
    weft__ppool_finish_done(done);
    if (rc < 0) {
        weft__future_unref(fut);
        weft__ptask_free(t);
    }
    return rc;
}

static struct weft__ptask *new_task(weft_ptask_fn fn, const void *arg, size_t len, bool copy)
{
    struct weft__ptask *t = weft__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fn = fn;
    t->kind = WEFT__PT_CALL;
    t->len = len;
    t->arg = arg;
    if (copy && len) {
        if (!(t->owned = weft__malloc(len))) {
            free(t);
            return NULL;
        }
        memcpy(t->owned, arg, len);
        t->arg = t->owned;
    }
    return t;
}

int weft_ppool_submit(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                      weft_future_t **f)
{
    if (!pool || !fn || (len && !arg) || len > pool->o.max_arg)
        return -EINVAL;
    struct weft__ptask *t = new_task(fn, arg, len, true);
    return t ? submit_task(pool, t, f) : -ENOMEM;
}

int weft__ppool_submit_chunk(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t count,
                             size_t item_size, size_t result_size, weft_future_cb on_done,
                             void *on_done_arg, weft_future_t **f)
{
    struct weft__ptask *t = new_task(fn, items, count * item_size, false);
    if (!t)
        return -ENOMEM;
    t->kind = WEFT__PT_CHUNK;
    t->count = (uint32_t)count;
    t->item_size = (uint32_t)item_size;
    t->result_size = (uint32_t)result_size;
    t->on_done = on_done;
    t->on_done_arg = on_done_arg;
    return submit_task(pool, t, f);
}

int weft__ppool_future(weft_ppool_t *pool, weft_future_t **f)
{
    return (*f = weft__ppool_new_future(pool)) ? 0 : -ENOMEM;
}

size_t weft__ppool_limits(weft_ppool_t *pool, size_t *max_result)
{
    *max_result = pool->o.max_result;
    return pool->o.max_arg;
}

int weft_ppool_result(weft_future_t *f, double timeout, const void **data, size_t *len,
                      int *exitcode)
{
    if (!f || f->assist != weft__ppool_assist)
        return -EINVAL;
    void *value = NULL;
    int rc = weft_future_result(f, timeout, &value);
    struct weft__presult *r = f->value;
    if (rc == WEFT_ECRASHED && exitcode && r)
        *exitcode = r->exitcode;
    if (rc == 0) {
        if (data)
            *data = r ? r->data : NULL;
        if (len)
            *len = r ? r->len : 0;
    }
    return rc;
}

ssize_t weft_ppool_apply(weft_ppool_t *pool, weft_ptask_fn fn, const void *arg, size_t len,
                         void *out, size_t cap)
{
    if (cap && !out)
        return -EINVAL;
    weft_future_t *f;
    int rc = weft_ppool_submit(pool, fn, arg, len, &f);
    if (rc < 0)
        return rc;
    const void *data;
    size_t n;
    rc = weft_ppool_result(f, WEFT_FOREVER, &data, &n, NULL);
    if (rc == 0 && n > cap)
        rc = -EMSGSIZE;
    if (rc == 0 && n)
        memcpy(out, data, n);
    weft_future_free(f);
    return rc < 0 ? rc : (ssize_t)n;
}

static int end_pool(weft_ppool_t *pool, int state, int sig, bool cancel_pending)
{
    if (!pool)
        return -EINVAL;
    struct weft__ptask *done = NULL;
    weft__lock_hold(&pool->lock);
    if (cancel_pending) {
        struct weft__ptask *t, *keep_head = NULL, *keep_tail = NULL;
        while ((t = weft__ptask_pop_front(&pool->pend_head, &pool->pend_tail)) != NULL)
            if (weft_future_running(t->f) == 1) /* sent back by a dead worker */
                weft__ptask_push_back(&keep_head, &keep_tail, t);
            else if (weft_future_cancel(t->f) >= 0)
                weft__ptask_conclude(&done, t, NULL, -ECANCELED);
        pool->pend_head = keep_head;
        pool->pend_tail = keep_tail;
    }
    if (pool->state == WEFT__PP_OPEN ||
        (state == WEFT__PP_TERMINATED && pool->state == WEFT__PP_CLOSED))
        pool->state = state;
    if (state == WEFT__PP_TERMINATED) {
        weft__ppool_fail_all(pool, &done, -ECANCELED);
        for (int i = 0; i < pool->n; i++)
            if (pool->w[i].proc) /* through the pidfd: never a reused pid */
                (sig == SIGTERM ? weft_process_terminate : weft_process_kill)(pool->w[i].proc);
    }
    weft__ppool_dispatch(pool, &done);
    if (!pool->launched)
        weft_event_set(&pool->ended);
    weft_lock_release(&pool->lock);
    weft__ppool_finish_done(done);
    if (pool->launched)
        weft__ppool_wake_manager(pool);
    return 0;
}

int weft_ppool_close(weft_ppool_t *pool)
{
    return end_pool(pool, WEFT__PP_CLOSED, 0, false);
}

int weft_ppool_terminate(weft_ppool_t *pool)
{
    return end_pool(pool, WEFT__PP_TERMINATED, SIGKILL, true);
}

int weft_ppool_terminate_workers(weft_ppool_t *pool)
{
    return end_pool(pool, WEFT__PP_TERMINATED, SIGTERM, true);
}

int weft_ppool_kill_workers(weft_ppool_t *pool)
{
    return end_pool(pool, WEFT__PP_TERMINATED, SIGKILL, true);
}

int weft_ppool_join(weft_ppool_t *pool, double timeout)
{
    if (!pool || isnan(timeout))
        return -EINVAL;
    weft__lock_hold(&pool->lock);
    bool open = pool->state == WEFT__PP_OPEN;
    weft_lock_release(&pool->lock);
    return open ? -EPERM : weft_event_wait(&pool->ended, timeout);
}

int weft_ppool_shutdown(weft_ppool_t *pool, bool wait, bool cancel_futures)
{
    int rc = end_pool(pool, WEFT__PP_CLOSED, 0, cancel_futures);
    return rc == 0 && wait ? weft_ppool_join(pool, WEFT_FOREVER) : rc;
}

void weft__ppool_unref(struct weft_ppool *pool)
{
    if (atomic_fetch_sub(&pool->refs, 1) == 1)
        free_pool(pool);
}

int weft_ppool_free(weft_ppool_t *pool)
{
    int rc = weft_ppool_shutdown(pool, true, false);
    if (rc < 0)
        return rc;
    if (pool->manager_started)
        pthread_join(pool->manager, NULL);
    unlink_pool(pool);
    weft__ppool_unref(pool);
    return 0;
}

int weft_ppool_workers(weft_ppool_t *pool)
{
    if (!pool)
        return -EINVAL;
    int n = 0;
    weft__lock_hold(&pool->lock);
    for (int i = 0; i < pool->n; i++)
        n += pool->w[i].proc != NULL;
    weft_lock_release(&pool->lock);
    return n;
}

/* At exit, as the thread pools do: every pool finishes its queued work
 * (each once; the list lock is not held meanwhile, since shutting down may
 * start processes, and fork takes that lock). */
static void exit_hook(void)
{
    for (;;) {
        pthread_mutex_lock(&pools_lock);
        struct weft_ppool *p = pools;
        while (p && p->exit_seen)
            p = p->next_pool;
        if (p)
            p->exit_seen = true;
        pthread_mutex_unlock(&pools_lock);
        if (!p)
            return;
        weft_ppool_shutdown(p, true, false);
    }
}

static void forget_pools(void)
{
    pools = NULL; /* a forked child has none of its parent's workers */
}

WEFT__CONSTRUCTOR static void ppool_init(void)
{
    weft__fork_guard(&pools_lock, WEFT__RANK_PPOOLS, forget_pools);
    weft__at_exit(exit_hook);
}
