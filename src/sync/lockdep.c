/*
 * The lock-order checker: finds lock-order inversions the first time they
 * become possible, before they deadlock, and refuses self-deadlock.
 *
 * Off, it costs every lock operation one load and one predictable branch
 * (weft__lockdep_on, below). On (WEFT_LOCKDEP=1 in the environment when the
 * library loads, or weft_lockdep_enable), every acquire and release of a
 * Lock, RLock, critical section or RWLock goes through here, under one
 * global mutex: it is a debugging tool, and correctness beats speed.
 *
 * Model. Each thread keeps the stack of locks it holds, with the site (file
 * and line, from the _at macros of weft/sync.h) where each was taken. Taking
 * B while holding A records the edge A -> B in a graph of lock instances,
 * with both sites and a backtrace, the first time that pair is seen. Before
 * recording a new edge A -> B the checker looks for a path B ->* A: if one
 * exists, some thread took those locks in the opposite order, and two
 * threads can deadlock even if they never did; the report names both
 * sites of the new edge and those of the first edge of the old path. Each
 * pair is reported once. A try (timeout 0) cannot deadlock, so it records
 * what it holds but is not checked.
 *
 * Self-deadlock: waiting forever for a non-recursive lock the same thread
 * holds (a Lock, a write lock, a read lock under one's own write lock, or a
 * write lock under one's own read lock) is reported and returns -EDEADLK.
 * This assumes a lock is released by the thread that took it; a Lock used
 * as a signal between threads is better a Semaphore or an Event with the
 * checker on. A Lock released by another thread is still found and dropped
 * from its holder's stack.
 *
 * Out of memory it stops learning (a report it cannot allocate is dropped),
 * and the locks work on unchecked; its allocations go through the
 * fault-injection table (base.h) so that tests can see that.
 *
 * Lock identity is the address. init and destroy retire the address's node,
 * so a lock reborn at the same address starts with no history; memory reused
 * for a lock without destroy/init can cause false reports.
 */
#include "sync/sync_int.h"

#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH      48    /* locks one thread can hold that the checker tracks */
#define MAX_NODES  65536 /* beyond this the checker stops learning new locks */
#define BT_DEPTH   12
#define REPORT_MAX 8192

int weft__lockdep_on;

struct held {
    const void *lock;
    const weft_site_t *site;
    uint32_t count; /* re-entries of a recursive lock, plus one */
    uint8_t kind;
};

struct thread_held {
    struct held e[DEPTH];
    int n;
    bool listed;
    struct thread_held *next, **pprev;
};

struct edge {
    int to, next; /* target node, next edge out of the same node */
    const weft_site_t *held_site, *taken_site;
    void *bt[BT_DEPTH];
    int depth;
    long tid;
};

struct node {
    const void *lock; /* NULL once retired */
    int head;         /* first edge out, -1 if none */
    unsigned seen;    /* search generation */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static int n_nodes, cap_nodes;
static struct edge *edges;
static int n_edges, cap_edges;
static int *index_of; /* open addressing: node + 1, 0 empty, -1 retired */
static int cap_index;
static unsigned generation;
static struct thread_held *threads;
static void (*reporter)(const char *report, void *arg);
static void *reporter_arg;
static _Thread_local struct thread_held own; /* the thread's record */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* --- the lock graph ------------------------------------------------------- */

static size_t slot(const void *lock, int cap)
{
    uintptr_t h = (uintptr_t)lock * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 16) & (size_t)(cap - 1);
}

static bool grow(void **array, int *cap, size_t size, int need)
{
    if (need <= *cap)
        return true;
    int n = *cap ? *cap * 2 : 256;
    void *p = weft__sys.realloc(*array, (size_t)n * size);
    if (!p)
        return false;
    *array = p;
    *cap = n;
    return true;
}

/* The index holds live nodes only, at most half full. */
static bool rehash(void)
{
    int cap = cap_index ? cap_index * 2 : 1024;
    int *fresh = weft__calloc((size_t)cap, sizeof *fresh);
    if (!fresh)
        return false;
    for (int i = 0; i < n_nodes; i++) {
        if (!nodes[i].lock)
            continue;
        size_t s = slot(nodes[i].lock, cap);
        while (fresh[s])
            s = (s + 1) & (size_t)(cap - 1);
        fresh[s] = i + 1;
    }
    free(index_of);
    index_of = fresh;
    cap_index = cap;
    return true;
}

/* The index slot of `lock`'s live node, or -1. */
static long find_slot(const void *lock)
{
    if (!cap_index)
        return -1;
    for (size_t s = slot(lock, cap_index); index_of[s]; s = (s + 1) & (size_t)(cap_index - 1))
        if (index_of[s] > 0 && nodes[index_of[s] - 1].lock == lock)
            return (long)s;
    return -1;
}

static int find(const void *lock)
{
    long s = find_slot(lock);
    return s < 0 ? -1 : index_of[s] - 1;
}

/* The node of `lock`, created if new; -1 when out of memory or nodes. */
static int node_of(const void *lock)
{
    int i = find(lock);
    if (i >= 0)
        return i;
    if (n_nodes >= MAX_NODES || !grow((void **)&nodes, &cap_nodes, sizeof *nodes, n_nodes + 1))
        return -1;
    if ((n_nodes + 1) * 2 > cap_index && !rehash())
        return -1;
    nodes[n_nodes] = (struct node){lock, -1, 0};
    size_t s = slot(lock, cap_index);
    while (index_of[s] > 0)
        s = (s + 1) & (size_t)(cap_index - 1);
    index_of[s] = ++n_nodes;
    return n_nodes - 1;
}

static int edge_between(int from, int to)
{
    for (int e = nodes[from].head; e >= 0; e = edges[e].next)
        if (edges[e].to == to)
            return e;
    return -1;
}

/* Depth-first search for a path from `from` to `to` over live nodes;
 * returns the first edge of one, or -1. */
static int path(int from, int to, unsigned gen)
{
    if (nodes[from].seen == gen)
        return -1;
    nodes[from].seen = gen;
    for (int e = nodes[from].head; e >= 0; e = edges[e].next) {
        int next = edges[e].to;
        if (!nodes[next].lock)
            continue;
        if (next == to || path(next, to, gen) >= 0)
            return e;
    }
    return -1;
}

static int add_edge(int from, int to, const struct held *h, const weft_site_t *site)
{
    if (!grow((void **)&edges, &cap_edges, sizeof *edges, n_edges + 1))
        return -1;
    struct edge *e = &edges[n_edges];
    *e = (struct edge){to, nodes[from].head, h->site, site, {0}, 0, (long)weft__gettid()};
    e->depth = backtrace(e->bt, BT_DEPTH);
    nodes[from].head = n_edges;
    return n_edges++;
}

/* --- reports ----------------------------------------------------------------- */

static void put_site(char *buf, size_t *len, const char *what, const weft_site_t *site)
{
    if (*len >= REPORT_MAX)
        return;
    if (site)
        *len += (size_t)snprintf(buf + *len, REPORT_MAX - *len, "  %s %s:%d (%s)\n", what,
                                 site->file, site->line, site->func);
    else
        *len += (size_t)snprintf(buf + *len, REPORT_MAX - *len, "  %s an unknown site\n", what);
}

/* The backtrace without its first frame, which is the checker itself. */
static void put_backtrace(char *buf, size_t *len, void *const *bt, int depth)
{
    char **names = backtrace_symbols(bt, depth);
    for (int i = 1; i < depth && *len < REPORT_MAX; i++)
        *len += (size_t)snprintf(buf + *len, REPORT_MAX - *len, "      #%d %s\n", i - 1,
                                 names ? names[i] : "?");
    free(names);
}

/* Reports are written while the checker's mutex is held and handed to the
 * reporter after it is released, so that a reporter may take locks. */
static _Thread_local char *pending[DEPTH + 1];
static _Thread_local int n_pending;

static void emit_pending(void)
{
    for (int i = 0; i < n_pending; i++) {
        if (reporter)
            reporter(pending[i], reporter_arg);
        else
            fputs(pending[i], stderr);
        free(pending[i]);
    }
    n_pending = 0;
}

/* A buffer for one more report, or NULL: the report is dropped. */
static char *new_report(void)
{
    char *buf = n_pending <= DEPTH ? weft__malloc(REPORT_MAX) : NULL;
    if (buf)
        pending[n_pending++] = buf;
    return buf;
}

/* `before` is the first edge of the old path from `taking` back to `held`. */
static void report_inversion(const void *held, const void *taking, const struct edge *now,
                             const struct edge *before)
{
    char *buf = new_report();
    if (!buf)
        return;
    size_t len = (size_t)snprintf(buf, REPORT_MAX,
                                  "weft lockdep: possible deadlock (lock order inversion)\n"
                                  "thread %ld takes lock %p while holding lock %p:\n",
                                  now->tid, taking, held);
    put_site(buf, &len, "held since", now->held_site);
    put_site(buf, &len, "taken at", now->taken_site);
    put_backtrace(buf, &len, now->bt, now->depth);
    if (len < REPORT_MAX)
        len += (size_t)snprintf(buf + len, REPORT_MAX - len,
                                "but thread %ld took lock %p while holding lock %p, "
                                "an order that leads back to lock %p:\n",
                                before->tid, (const void *)nodes[before->to].lock, taking, held);
    put_site(buf, &len, "held since", before->held_site);
    put_site(buf, &len, "taken at", before->taken_site);
    put_backtrace(buf, &len, before->bt, before->depth);
}

static void report_self_deadlock(const void *lock, const struct held *h, const weft_site_t *site)
{
    char *buf = new_report();
    if (!buf)
        return;
    size_t len = (size_t)snprintf(buf, REPORT_MAX,
                                  "weft lockdep: self-deadlock: thread %ld waits forever for "
                                  "lock %p, which it holds (-EDEADLK)\n",
                                  (long)weft__gettid(), lock);
    put_site(buf, &len, "held since", h->site);
    put_site(buf, &len, "taken at", site);
}

/* --- held stacks ---------------------------------------------------------------- */

static void forget_thread(void *arg)
{
    struct thread_held *t = arg;
    pthread_mutex_lock(&mu);
    if (t->listed) {
        if (t->next)
            t->next->pprev = t->pprev;
        *t->pprev = t->next;
        t->listed = false;
    }
    pthread_mutex_unlock(&mu);
}

static void make_key(void)
{
    pthread_key_create(&exit_key, forget_thread);
}

/* Called with mu held. */
static void list_held(struct thread_held *t)
{
    t->next = threads;
    t->pprev = &threads;
    if (threads)
        threads->pprev = &t->next;
    threads = t;
    t->listed = true;
}

/* The record of the caller's held locks (mu held): the running async
 * task's own (made on first use; the thread's if there is no memory for
 * it), else the thread's. Not inlined: a caller that waits between two
 * lookups may be a task that came back on another thread (M:N mode), and
 * clang, inlining it, kept the first thread's pointer across the wait. */
WEFT__NOINLINE static struct thread_held *held_by_caller(void)
{
    struct weft__task_rec *task = weft__task_rec;
    void **slot = task ? &task->lockdep : NULL;
    if (slot && !*slot) {
        struct thread_held *t = calloc(1, sizeof *t);
        if (t) {
            list_held(t);
            *slot = t;
        }
    }
    if (slot && *slot)
        return *slot;
    if (!own.listed) {
        list_held(&own);
        pthread_setspecific(exit_key, &own);
    }
    return &own;
}

/* base's weft__lockdep_task_end: a task with a record has ended. */
static void task_ended(void **slot)
{
    struct thread_held *t = *slot;
    forget_thread(t);
    free(t);
    *slot = NULL;
}

static struct held *find_held(struct thread_held *t, const void *lock)
{
    for (int i = t->n - 1; i >= 0; i--)
        if (t->e[i].lock == lock)
            return &t->e[i];
    return NULL;
}

/* Is taking `kind` on a lock held as `h` a self-deadlock? Recursive kinds and
 * read-under-read never are. */
static bool self_deadlock(const struct held *h, int kind)
{
    switch (kind) {
    case WEFT__LD_RECURSIVE:
        return false;
    case WEFT__LD_READ:
        return h->kind == WEFT__LD_WRITE;
    default:
        return true;
    }
}

/* Record edges from everything `me` holds to `lock`; report inversions. */
static void learn(struct thread_held *me, const void *lock, const weft_site_t *site)
{
    int to = node_of(lock);
    if (to < 0)
        return;
    for (int i = 0; i < me->n; i++) {
        const struct held *h = &me->e[i];
        if (h->lock == lock)
            continue;
        int from = node_of(h->lock);
        if (from < 0 || edge_between(from, to) >= 0)
            continue;
        int back = path(to, from, ++generation);
        int e = add_edge(from, to, h, site);
        if (e >= 0 && back >= 0)
            report_inversion(h->lock, lock, &edges[e], &edges[back]);
    }
}

static void push(struct thread_held *me, const void *lock, int kind, const weft_site_t *site)
{
    struct held *h = find_held(me, lock);
    if (h && kind == WEFT__LD_RECURSIVE) {
        h->count++;
        return;
    }
    if (me->n < DEPTH)
        me->e[me->n++] = (struct held){lock, site, 1, (uint8_t)kind};
}

/* --- entry points ------------------------------------------------------------------ */

int weft__lockdep_acquire(void *lock, int kind, const weft_site_t *site, double timeout,
                          int (*acquire)(void *lock, double timeout))
{
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&mu);
    struct thread_held *me = held_by_caller();
    struct held *h = find_held(me, lock);
    if (h && timeout < 0 && self_deadlock(h, kind)) {
        report_self_deadlock(lock, h, site);
        pthread_mutex_unlock(&mu);
        emit_pending();
        return -EDEADLK;
    }
    if (timeout != 0 && !(h && kind == WEFT__LD_RECURSIVE))
        learn(me, lock, site);
    pthread_mutex_unlock(&mu);
    emit_pending();
    int rc = acquire(lock, timeout);
    if (rc == 0 || rc == -EOWNERDEAD) {
        pthread_mutex_lock(&mu);
        push(held_by_caller(), lock, kind, site); /* the same record: a task stays a task */
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

static bool drop_from(struct thread_held *t, const void *lock)
{
    struct held *h = find_held(t, lock);
    if (!h)
        return false;
    if (--h->count == 0) {
        int i = (int)(h - t->e);
        memmove(&t->e[i], &t->e[i + 1], (size_t)(t->n - i - 1) * sizeof *h);
        t->n--;
    }
    return true;
}

void weft__lockdep_release(const void *lock)
{
    pthread_mutex_lock(&mu);
    if (!drop_from(held_by_caller(), lock))
        for (struct thread_held *t = threads; t; t = t->next)
            if (drop_from(t, lock))
                break;
    pthread_mutex_unlock(&mu);
}

void weft__lockdep_forget(const void *lock)
{
    pthread_mutex_lock(&mu);
    long s = find_slot(lock);
    if (s >= 0) {
        nodes[index_of[s] - 1].lock = NULL;
        index_of[s] = -1;
    }
    pthread_mutex_unlock(&mu);
}

bool weft_lockdep_enable(bool on)
{
    pthread_mutex_lock(&mu);
    bool was = __atomic_exchange_n(&weft__lockdep_on, on, __ATOMIC_RELAXED);
    if (was != on) {
        /* Start clean either way: what was learnt or held while the state
         * was different no longer describes the program. */
        free(nodes), free(edges), free(index_of);
        nodes = NULL, edges = NULL, index_of = NULL;
        n_nodes = cap_nodes = n_edges = cap_edges = cap_index = 0;
        for (struct thread_held *t = threads; t; t = t->next)
            t->n = 0;
        own.n = 0;
    }
    pthread_mutex_unlock(&mu);
    return was;
}

void weft_lockdep_set_reporter(void (*fn)(const char *report, void *arg), void *arg)
{
    pthread_mutex_lock(&mu);
    reporter = fn;
    reporter_arg = arg;
    pthread_mutex_unlock(&mu);
}

WEFT__CONSTRUCTOR static void lockdep_from_environment(void)
{
    atomic_store_explicit(&weft__lockdep_task_end, task_ended, memory_order_release);
    weft__fork_guard(&mu, WEFT__RANK_LOCKDEP, NULL);
    const char *v = getenv("WEFT_LOCKDEP");
    if (v && *v && strcmp(v, "0") != 0)
        weft_lockdep_enable(true);
}
