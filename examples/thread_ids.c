/*
 * The lecture's opening, shown rather than told: a process has its own id and
 * its own memory; the threads inside it share that memory, yet each has its
 * own ids and its own stack. Three threads record who they are, the address
 * of a variable on their stack, a thread-local value, and bump a counter they
 * all share; a forked child process bumps the same counter in its own copy of
 * memory, and the parent never sees that change.
 */
#include "check.h"

#include <weft/thread.h>

#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int shared_counter; /* one variable, seen by every thread */
static weft_local_t my_number = WEFT_LOCAL_INIT(NULL);

struct worker {
    int number;
    unsigned long ident;
    long native_id;
    void *stack_address;
    int local_seen;
};

static void *worker_run(weft_thread_t *self)
{
    struct worker *w = weft_thread_data(self);
    int on_my_stack = w->number;
    weft_local_set(&my_number, &w->number);
    atomic_fetch_add(&shared_counter, 1);
    w->ident = weft_thread_get_ident();
    w->native_id = weft_thread_get_native_id();
    w->stack_address = &on_my_stack;
    w->local_seen = *(int *)weft_local_get(&my_number);
    return NULL;
}

static void *ring(void *arg)
{
    printf("  a Timer fired: %s\n", (const char *)arg);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("process %d, main thread \"%s\" (native id %ld)\n", getpid(),
           weft_thread_name(weft_thread_main()), weft_thread_get_native_id());

    enum { N = 3 };
    weft_thread_t *threads[N];
    for (int i = 0; i < N; i++) {
        CHECK(weft_thread_new_run(&threads[i], worker_run, sizeof(struct worker), NULL));
        ((struct worker *)weft_thread_data(threads[i]))->number = i + 1;
        CHECK(weft_thread_start(threads[i]));
    }
    for (int i = 0; i < N; i++) {
        CHECK(weft_thread_join(threads[i], WEFT_FOREVER, NULL));
        struct worker *w = weft_thread_data(threads[i]);
        printf("  %-9s native id %ld, stack variable at %p, its own local value %d\n",
               weft_thread_name(threads[i]), w->native_id, w->stack_address, w->local_seen);
        weft_thread_free(threads[i]);
    }
    printf("shared counter after %d threads: %d (same memory)\n", N, atomic_load(&shared_counter));

    pid_t child = fork();
    if (child == 0) {
        atomic_fetch_add(&shared_counter, 100);
        printf("  child process %d sees counter %d in its own copy\n", getpid(),
               atomic_load(&shared_counter));
        _exit(0);
    }
    waitpid(child, NULL, 0);
    printf("parent still sees counter %d (a process has its own memory)\n",
           atomic_load(&shared_counter));

    weft_thread_t *timer;
    CHECK(weft_timer_new(&timer, 0.2, ring, "threading.Timer in C", NULL));
    CHECK(weft_thread_start(timer));
    CHECK(weft_thread_join(timer, WEFT_FOREVER, NULL));
    weft_thread_free(timer);
    return 0;
}
