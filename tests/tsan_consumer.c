/*
 * A user's program built with -fsanitize=thread against libweft as shipped
 * (the release library is not instrumented): every hand-off through a weft
 * primitive must be seen by ThreadSanitizer, so that plain data guarded by
 * one is never reported as a race. Each TSAN_CASE guards plain (non-atomic)
 * data with one primitive across threads created before the guarded
 * accesses, so that nothing but the primitive orders them; the race_* cases
 * misuse the primitives, and TSan must still report them (the annotations
 * must not order what the primitives do not).
 *
 * Run as `tsan_consumer CASE`; tests/CMakeLists.txt registers each case
 * twice, once linked with the shared library and once with the static one.
 */
#include <weft.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N      2000 /* iterations of a loop that hands data over */
#define ROUNDS 50   /* rounds of a case that makes fresh objects */

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

/* Run fn(i) in `n` new pthreads (i = 0 .. n-1) and join them. */
typedef void (*body_fn)(int i);
struct body {
    body_fn fn;
    int i;
};

static void *body_main(void *p)
{
    struct body *b = p;
    b->fn(b->i);
    return NULL;
}

static void run_threads(int n, body_fn fn)
{
    pthread_t t[8];
    struct body b[8];
    CHECK(n <= 8);
    for (int i = 0; i < n; i++) {
        b[i] = (struct body){fn, i};
        CHECK(pthread_create(&t[i], NULL, body_main, &b[i]) == 0);
    }
    for (int i = 0; i < n; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
}

/* The same from a pthread of their own, while the caller goes on. */
struct crew {
    int n;
    body_fn fn;
    pthread_t thread;
};

static void *crew_main(void *p)
{
    struct crew *c = p;
    run_threads(c->n, c->fn);
    return NULL;
}

static void crew_start(struct crew *c)
{
    CHECK(pthread_create(&c->thread, NULL, crew_main, c) == 0);
}

static void crew_join(struct crew *c)
{
    CHECK(pthread_join(c->thread, NULL) == 0);
}

static long counter; /* the guarded data of the mutual-exclusion cases */
static long data[N]; /* the guarded data of the hand-off cases */

/* --- mutual exclusion: two threads increment `counter` ------------------- */

static weft_lock_t lock = WEFT_LOCK_INIT;

static void lock_body(int i)
{
    for (int k = 0; k < N; k++) {
        if ((k + i) % 2) /* try-acquire half the time */
            while (weft_lock_acquire(&lock, 0) != 0)
                sched_yield();
        else
            CHECK(weft_lock_acquire(&lock, WEFT_FOREVER) == 0);
        counter++;
        CHECK(weft_lock_release(&lock) == 0);
    }
}

static void case_lock(void)
{
    run_threads(2, lock_body);
    CHECK(counter == 2 * N);
}

static weft_rlock_t rlock = WEFT_RLOCK_INIT;

static void rlock_body(int i)
{
    (void)i;
    for (int k = 0; k < N; k++) {
        CHECK(weft_rlock_acquire(&rlock, WEFT_FOREVER) == 0);
        CHECK(weft_rlock_acquire(&rlock, k % 2 ? 0 : 1.0) == 0);
        counter++;
        CHECK(weft_rlock_release(&rlock) == 0);
        counter++;
        CHECK(weft_rlock_release(&rlock) == 0);
    }
}

static void case_rlock(void)
{
    run_threads(2, rlock_body);
    CHECK(counter == 4 * N);
}

static weft_critsec_t critsec = WEFT_CRITSEC_INIT;

static void critsec_body(int i)
{
    for (int k = 0; k < N; k++) {
        if ((k + i) % 2)
            while (weft_critsec_try_enter(&critsec) != 0)
                sched_yield();
        else
            CHECK(weft_critsec_enter(&critsec) == 0);
        counter++;
        CHECK(weft_critsec_leave(&critsec) == 0);
    }
}

static void case_critsec(void)
{
    run_threads(2, critsec_body);
    CHECK(counter == 2 * N);
}

static weft_rwlock_t rwlock = WEFT_RWLOCK_INIT;

/* Three threads: a quarter of the rounds write, the rest read. */
static void rwlock_body(int i)
{
    for (int k = 0; k < N; k++) {
        if ((k + i) % 4 == 0) {
            CHECK(weft_rwlock_acquire_write(&rwlock, WEFT_FOREVER) == 0);
            counter++;
            CHECK(weft_rwlock_release_write(&rwlock) == 0);
        } else {
            while (weft_rwlock_acquire_read(&rwlock, k % 2 ? 0 : WEFT_FOREVER) != 0)
                sched_yield(); /* try-acquire half the time */
            CHECK(counter >= 0 && counter <= 3 * N / 4);
            CHECK(weft_rwlock_release_read(&rwlock) == 0);
        }
    }
}

static void case_rwlock(void)
{
    run_threads(3, rwlock_body);
    CHECK(counter == 3 * N / 4);
}

static weft_sem_t bsem;

static void bsem_body(int i)
{
    (void)i;
    for (int k = 0; k < N; k++) {
        CHECK(weft_sem_acquire(&bsem, WEFT_FOREVER) == 0);
        counter++;
        CHECK(weft_sem_release(&bsem, 1) == 0);
    }
}

/* A BoundedSemaphore(1) used as a mutex. */
static void case_bsem(void)
{
    CHECK(weft_sem_init_bounded(&bsem, 1, 0) == 0);
    run_threads(2, bsem_body);
    CHECK(counter == 2 * N);
}

/* --- hand-offs: one side writes data[k], the other reads it --------------- */

/* Condition: one slot, `full` and the slot guarded by the condition's lock. */
static weft_lock_t cond_lock = WEFT_LOCK_INIT;
static weft_cond_t cond;
static int full;

static bool is_full(void *arg)
{
    (void)arg;
    return full;
}

static bool is_empty(void *arg)
{
    (void)arg;
    return !full;
}

static void cond_body(int producer)
{
    for (int k = 0; k < N; k++) {
        CHECK(weft_cond_acquire(&cond, WEFT_FOREVER) == 0);
        CHECK(weft_cond_wait_for(&cond, producer ? is_empty : is_full, NULL, WEFT_FOREVER) == 0);
        if (producer)
            data[0] = k;
        else
            CHECK(data[0] == k);
        full = producer;
        weft_cond_notify(&cond, 1);
        CHECK(weft_cond_release(&cond) == 0);
    }
}

static void case_cond(void)
{
    CHECK(weft_cond_init(&cond, &cond_lock, 0) == 0);
    run_threads(2, cond_body);
}

/* The same with the condition's own RLock. */
static void case_cond_rlock(void)
{
    CHECK(weft_cond_init(&cond, NULL, 0) == 0);
    run_threads(2, cond_body);
}

/* Semaphore ping-pong: both sides write data[0] in turn, unguarded by any
 * lock. */
static weft_sem_t ping, pong;

static void sem_body(int i)
{
    for (int k = 0; k < N; k++) {
        if (i == 0) {
            data[0] = 2 * k;
            CHECK(weft_sem_release(&ping, 1) == 0);
            CHECK(weft_sem_acquire(&pong, WEFT_FOREVER) == 0);
            CHECK(data[0] == 2 * k + 1);
        } else {
            while (weft_sem_acquire(&ping, k % 2 ? 0 : WEFT_FOREVER) != 0)
                sched_yield();
            CHECK(data[0] == 2 * k);
            data[0] = 2 * k + 1;
            CHECK(weft_sem_release(&pong, 1) == 0);
        }
    }
}

static void case_sem(void)
{
    CHECK(weft_sem_init(&ping, 0, 0) == 0 && weft_sem_init(&pong, 0, 0) == 0);
    run_threads(2, sem_body);
}

static weft_event_t events[ROUNDS];

static void event_body(int reader)
{
    for (int r = 0; r < ROUNDS; r++) {
        if (reader) {
            CHECK(weft_event_wait(&events[r], WEFT_FOREVER) == 0);
            CHECK(data[r] == r + 1);
        } else {
            data[r] = r + 1;
            CHECK(weft_event_set(&events[r]) == 0);
        }
    }
}

static void case_event(void)
{
    for (int r = 0; r < ROUNDS; r++)
        CHECK(weft_event_init(&events[r], 0) == 0);
    run_threads(2, event_body);
}

/* Barrier: each party writes its own slot, then reads everyone's. */
static weft_barrier_t barrier;

static void barrier_body(int i)
{
    for (int r = 0; r < ROUNDS; r++) {
        data[i] = r;
        CHECK(weft_barrier_wait(&barrier, WEFT_FOREVER) >= 0);
        for (int j = 0; j < 3; j++)
            CHECK(data[j] == r);
        CHECK(weft_barrier_wait(&barrier, WEFT_FOREVER) >= 0);
    }
}

static void case_barrier(void)
{
    CHECK(weft_barrier_init(&barrier, 3, NULL, NULL, -1, 0) == 0);
    run_threads(3, barrier_body);
}

/* WaitGroup: every worker's writes are seen by the waiter, not only those
 * of the one that brought the count to zero. */
static weft_waitgroup_t wg;

static void waitgroup_worker(int i)
{
    data[i] += 1;
    CHECK(weft_waitgroup_done(&wg) == 0);
}

static void case_waitgroup(void)
{
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(weft_waitgroup_init(&wg, 0) == 0 && weft_waitgroup_add(&wg, 4) == 0);
        struct crew workers = {.n = 4, .fn = waitgroup_worker};
        crew_start(&workers);
        CHECK(weft_waitgroup_wait(&wg, WEFT_FOREVER) == 0);
        for (int i = 0; i < 4; i++)
            CHECK(data[i] == r + 1);
        crew_join(&workers);
    }
}

/* call_once: every caller sees what the one that ran the function wrote. */
static weft_once_t onces[ROUNDS];

static void once_init(void *arg)
{
    *(long *)arg = 42;
}

static void once_body(int i)
{
    (void)i;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(weft_once_call(&onces[r], once_init, &data[r]) == 0);
        CHECK(data[r] == 42);
    }
}

static void case_once(void)
{
    for (int r = 0; r < ROUNDS; r++)
        CHECK(weft_once_init(&onces[r], 0) == 0);
    run_threads(3, once_body);
}

/* --- queues: a message on the heap travels by pointer -------------------- */

struct msg {
    long value;
};

static weft_queue_t *queue;

static void queue_body(int i)
{
    for (int k = 0; k < N / 2; k++) {
        struct msg *m;
        if (i < 2) { /* two producers */
            m = malloc(sizeof *m);
            CHECK(m);
            m->value = k;
            CHECK(weft_queue_put(queue, &m, WEFT_FOREVER) == 0);
        } else { /* two consumers, who write to the message and free it */
            CHECK(weft_queue_get(queue, &m, WEFT_FOREVER) == 0);
            CHECK(m->value >= 0 && m->value < N / 2);
            m->value = -1;
            free(m);
        }
    }
}

static int by_value(const void *a, const void *b, void *arg)
{
    (void)arg;
    long x = (*(struct msg *const *)a)->value, y = (*(struct msg *const *)b)->value;
    return (x > y) - (x < y);
}

static void run_queue(int made)
{
    CHECK(made == 0);
    run_threads(4, queue_body);
    CHECK(weft_queue_free(queue) == 0);
}

static void case_queue_ring(void)
{
    run_queue(weft_queue_new(&queue, sizeof(struct msg *), 4));
}

static void case_queue_chain(void)
{
    run_queue(weft_queue_new(&queue, sizeof(struct msg *), 0));
}

static void case_queue_big(void) /* bounded, past the ring's size limit */
{
    run_queue(weft_queue_new(&queue, sizeof(struct msg *), (size_t)1 << 20));
}

static void case_queue_lifo(void)
{
    run_queue(weft_lifo_queue_new(&queue, sizeof(struct msg *), 4));
}

static void case_queue_priority(void)
{
    run_queue(weft_priority_queue_new(&queue, sizeof(struct msg *), 0, by_value, NULL));
}

static void case_queue_simple(void)
{
    run_queue(weft_simple_queue_new(&queue, sizeof(struct msg *)));
}

/* task_done -> join: the workers' results are seen after join. */
static void join_worker(int i)
{
    (void)i;
    for (;;) {
        long k;
        int rc = weft_queue_get(queue, &k, WEFT_FOREVER);
        if (rc == WEFT_ESHUTDOWN)
            return;
        CHECK(rc == 0);
        data[k] = k + 1;
        CHECK(weft_queue_task_done(queue) == 0);
    }
}

static void case_queue_join(void)
{
    CHECK(weft_queue_new(&queue, sizeof(long), 0) == 0);
    struct crew workers = {.n = 2, .fn = join_worker};
    crew_start(&workers);
    for (long k = 0; k < N; k++)
        CHECK(weft_queue_put(queue, &k, WEFT_FOREVER) == 0);
    CHECK(weft_queue_join(queue, WEFT_FOREVER) == 0);
    for (long k = 0; k < N; k++)
        CHECK(data[k] == k + 1);
    CHECK(weft_queue_shutdown(queue, false) == 0);
    crew_join(&workers);
    CHECK(weft_queue_free(queue) == 0);
}

/* --- futures and the pool ------------------------------------------------ */

static weft_future_t *futures[ROUNDS];

static void future_body(int reader)
{
    for (int r = 0; r < ROUNDS; r++) {
        if (reader) {
            void *v;
            CHECK(weft_future_result(futures[r], WEFT_FOREVER, &v) == 0);
            CHECK(*(long *)v == r + 1);
        } else {
            data[r] = r + 1;
            CHECK(weft_future_set_result(futures[r], &data[r]) == 0);
        }
    }
}

static void case_future(void)
{
    for (int r = 0; r < ROUNDS; r++)
        CHECK(weft_future_new(&futures[r]) == 0);
    run_threads(2, future_body);
    for (int r = 0; r < ROUNDS; r++)
        weft_future_free(futures[r]);
}

/* A task reads what its submitter wrote and writes what the submitter reads
 * from its future. */
static void *square(void *arg)
{
    long *p = arg;
    *p = *p * *p;
    return p;
}

static void case_pool(void)
{
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    for (int k = 0; k < N; k++) {
        data[k] = k;
        CHECK(weft_pool_submit(pool, square, &data[k], &futures[k % ROUNDS]) == 0);
        if (k % ROUNDS == ROUNDS - 1)
            for (int j = 0; j < ROUNDS; j++) {
                void *v;
                CHECK(weft_future_result(futures[j], WEFT_FOREVER, &v) == 0);
                long i = k - ROUNDS + 1 + j;
                CHECK(v == &data[i] && data[i] == i * i);
                weft_future_free(futures[j]);
            }
    }
    CHECK(weft_pool_free(pool) == 0);
}

/* Without a future: the tasks' writes are seen once the pool is shut down
 * and its workers joined. */
static void case_pool_nofuture(void)
{
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    for (int k = 0; k < N; k++) {
        data[k] = k;
        CHECK(weft_pool_submit(pool, square, &data[k], NULL) == 0);
    }
    CHECK(weft_pool_free(pool) == 0);
    for (long k = 0; k < N; k++)
        CHECK(data[k] == k * k);
}

/* Tasks that submit sub-tasks from inside the pool (its deques, stolen by
 * the other workers) and wait for them. */
static weft_pool_t *nested_pool;

static void *parent(void *arg)
{
    long *p = arg;
    weft_future_t *f[4];
    for (int j = 0; j < 4; j++) {
        p[j] = j + 2;
        CHECK(weft_pool_submit(nested_pool, square, &p[j], &f[j]) == 0);
    }
    long sum = 0;
    for (int j = 0; j < 4; j++) {
        CHECK(weft_future_result(f[j], WEFT_FOREVER, NULL) == 0);
        weft_future_free(f[j]);
        sum += p[j];
    }
    return (void *)sum;
}

static void case_pool_nested(void)
{
    CHECK(weft_pool_new(&nested_pool, &(weft_pool_opts_t){.max_workers = 3}) == 0);
    for (int k = 0; k < ROUNDS; k++)
        CHECK(weft_pool_submit(nested_pool, parent, &data[4 * k], &futures[k]) == 0);
    for (int k = 0; k < ROUNDS; k++) {
        void *v;
        CHECK(weft_future_result(futures[k], WEFT_FOREVER, &v) == 0);
        CHECK((long)v == 4 + 9 + 16 + 25);
        weft_future_free(futures[k]);
    }
    CHECK(weft_pool_free(nested_pool) == 0);
}

/* A task whose sub-tasks the other worker steals from its deque while it
 * polls their futures (no lock of the future's is taken on the way). */
static void *poller(void *arg)
{
    long *p = arg;
    weft_future_t *f[4];
    for (int j = 0; j < 4; j++) {
        p[j] = j + 2;
        CHECK(weft_pool_submit(nested_pool, square, &p[j], &f[j]) == 0);
    }
    for (int j = 0; j < 4; j++) {
        while (!weft_future_done(f[j]))
            sched_yield();
        CHECK(p[j] == (j + 2) * (j + 2));
        weft_future_free(f[j]);
    }
    return NULL;
}

static void case_pool_stolen(void)
{
    CHECK(weft_pool_new(&nested_pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    for (int k = 0; k < ROUNDS; k++) {
        weft_future_t *f;
        CHECK(weft_pool_submit(nested_pool, poller, &data[4 * k], &f) == 0);
        CHECK(weft_future_result(f, WEFT_FOREVER, NULL) == 0);
        weft_future_free(f);
    }
    CHECK(weft_pool_free(nested_pool) == 0);
}

/* --- task groups ---------------------------------------------------------- */

/* From outside: each task reads what was written before its run (through
 * the injection queue's slot) and writes what the waiter reads after the
 * wait (each finisher releases the group, the wait acquires it). */
static void case_group(void)
{
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    for (int k = 0; k < N; k += ROUNDS) {
        weft_group_t g;
        CHECK(weft_group_init(&g, pool) == 0);
        for (int j = k; j < k + ROUNDS && j < N; j++) {
            data[j] = j;
            CHECK(weft_group_run(&g, square, &data[j]) == 0);
        }
        CHECK(weft_group_wait(&g, WEFT_FOREVER) == 0);
        for (long j = k; j < k + ROUNDS && j < N; j++)
            CHECK(data[j] == j * j);
    }
    CHECK(weft_pool_free(pool) == 0);
}

/* From inside: a task's sub-tasks go to its deque, where the other worker
 * steals some while the task waits (the deque slot's hand-off). */
static void *group_parent(void *arg)
{
    long *p = arg, sum = 0;
    weft_group_t g;
    CHECK(weft_group_init(&g, NULL) == 0);
    for (int j = 0; j < 4; j++) {
        p[j] = j + 2;
        CHECK(weft_group_run(&g, square, &p[j]) == 0);
    }
    CHECK(weft_group_wait(&g, WEFT_FOREVER) == 0);
    for (int j = 0; j < 4; j++)
        sum += p[j];
    CHECK(sum == 4 + 9 + 16 + 25);
    return NULL;
}

static void case_group_nested(void)
{
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    weft_group_t g;
    CHECK(weft_group_init(&g, pool) == 0);
    for (int k = 0; k < ROUNDS; k++)
        CHECK(weft_group_run(&g, group_parent, &data[4 * k]) == 0);
    CHECK(weft_group_wait(&g, WEFT_FOREVER) == 0);
    CHECK(weft_pool_free(pool) == 0);
}

/* Two tasks of one group, running at once on the two workers (each waits,
 * through relaxed atomics that order nothing, until the other has
 * started), write the same variable: the group orders its tasks before
 * its wait, never one before another, so TSan must report it. The second
 * write waits (relaxed again) until the first is done: TSan's shadow
 * memory is updated without locks, and two writes at the very same
 * instant can miss each other, which made this case fail once in a few
 * hundred runs. */
static _Atomic int sibling_started[2], sibling_wrote;
static long sibling_data;

static void *sibling(void *arg)
{
    int me = (int)(intptr_t)arg;
    atomic_store_explicit(&sibling_started[me], 1, memory_order_relaxed);
    while (!atomic_load_explicit(&sibling_started[!me], memory_order_relaxed))
        sched_yield();
    while (me == 1 && !atomic_load_explicit(&sibling_wrote, memory_order_relaxed))
        sched_yield();
    sibling_data = me;
    atomic_store_explicit(&sibling_wrote, 1, memory_order_relaxed);
    return NULL;
}

static void case_race_group_siblings(void)
{
    weft_pool_t *pool;
    CHECK(weft_pool_new(&pool, &(weft_pool_opts_t){.max_workers = 2}) == 0);
    weft_group_t g;
    CHECK(weft_group_init(&g, pool) == 0);
    CHECK(weft_group_run(&g, sibling, (void *)0) == 0);
    CHECK(weft_group_run(&g, sibling, (void *)1) == 0);
    CHECK(weft_group_wait(&g, WEFT_FOREVER) == 0);
    CHECK(sibling_data == 0 || sibling_data == 1); /* read, so the writes stay */
    CHECK(weft_pool_free(pool) == 0);
}

/* --- threads ------------------------------------------------------------- */

static void *read_and_write(void *arg)
{
    long *p = arg;
    CHECK(*p == 1);
    *p = 2;
    return p;
}

static void case_thread(void)
{
    for (int r = 0; r < ROUNDS; r++) {
        weft_thread_t *t;
        CHECK(weft_thread_new(&t, read_and_write, &data[r], NULL) == 0);
        data[r] = 1;
        CHECK(weft_thread_start(t) == 0);
        void *v;
        CHECK(weft_thread_join(t, r % 2 ? 10.0 : WEFT_FOREVER, &v) == 0);
        CHECK(v == &data[r] && data[r] == 2);
        CHECK(weft_thread_free(t) == 0);
    }
}

/* Two joiners: only one of them reaps the thread with pthread_join; the
 * other learns that it ended from weft alone. */
static weft_thread_t *joinee;

static void joiner(int i)
{
    CHECK(weft_thread_join(joinee, i ? 10.0 : WEFT_FOREVER, NULL) == 0);
    CHECK(data[0] == 2);
}

static void case_thread_joiners(void)
{
    for (int r = 0; r < ROUNDS; r++) {
        data[0] = 1;
        CHECK(weft_thread_new(&joinee, read_and_write, &data[0], NULL) == 0);
        CHECK(weft_thread_start(joinee) == 0);
        run_threads(2, joiner);
        CHECK(weft_thread_free(joinee) == 0);
    }
}

/* --- misuse, which TSan must still report -------------------------------- */

static weft_lock_t locks[2] = {WEFT_LOCK_INIT, WEFT_LOCK_INIT};

static void two_locks_body(int i)
{
    for (int k = 0; k < N; k++) {
        CHECK(weft_lock_acquire(&locks[i], WEFT_FOREVER) == 0);
        counter++;
        CHECK(weft_lock_release(&locks[i]) == 0);
    }
}

/* Each thread takes a different lock: no lock orders the two. */
static void case_race_two_locks(void)
{
    run_threads(2, two_locks_body);
}

static void after_put_body(int consumer)
{
    struct msg *m;
    if (consumer) {
        CHECK(weft_queue_get(queue, &m, WEFT_FOREVER) == 0);
        CHECK(m->value == 0 || m->value == 1);
    } else {
        static struct msg one;
        m = &one;
        CHECK(weft_queue_put(queue, &m, WEFT_FOREVER) == 0);
        m->value = 1; /* after the put: nothing orders it before the get */
    }
}

static void case_race_after_put(void)
{
    CHECK(weft_queue_new(&queue, sizeof(struct msg *), 4) == 0);
    run_threads(2, after_put_body);
}

/* The cases, one a line: tests/CMakeLists.txt registers each as a test;
 * those named race_* pass when TSan reports a race. */
#define TSAN_CASE(name) {#name, case_##name},
static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    // clang-format off
TSAN_CASE(lock)
TSAN_CASE(rlock)
TSAN_CASE(critsec)
TSAN_CASE(rwlock)
TSAN_CASE(bsem)
TSAN_CASE(cond)
TSAN_CASE(cond_rlock)
TSAN_CASE(sem)
TSAN_CASE(event)
TSAN_CASE(barrier)
TSAN_CASE(waitgroup)
TSAN_CASE(once)
TSAN_CASE(queue_ring)
TSAN_CASE(queue_chain)
TSAN_CASE(queue_big)
TSAN_CASE(queue_lifo)
TSAN_CASE(queue_priority)
TSAN_CASE(queue_simple)
TSAN_CASE(queue_join)
TSAN_CASE(future)
TSAN_CASE(pool)
TSAN_CASE(pool_nofuture)
TSAN_CASE(pool_nested)
TSAN_CASE(pool_stolen)
TSAN_CASE(group)
TSAN_CASE(group_nested)
TSAN_CASE(thread)
TSAN_CASE(thread_joiners)
TSAN_CASE(race_two_locks)
TSAN_CASE(race_after_put)
TSAN_CASE(race_group_siblings)
    // clang-format on
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            printf("ok: %s\n", argv[1]);
            return 0;
        }
    fprintf(stderr, "usage: %s CASE (one of the TSAN_CASE lines)\n", argv[0]);
    return 2;
}
