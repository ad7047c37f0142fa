/*
 * Stack overflow in a task: reported, not silent.
 *
 * A task that runs off the bottom of its stack touches the guard page and
 * takes a SIGSEGV, on a stack that has no room left to run a handler; so
 * each loop's thread gets an alternate signal stack, and the handler
 * (SA_ONSTACK) looks at the faulting address. In or just below the
 * running task's guard page, it names the task on stderr, with
 * async-signal-safe calls only, and aborts: there is no safe way to go on,
 * the task's frames being cut off mid-call. Any other fault goes to the
 * handler that was there before (the default one dumps core as always).
 *
 * A frame larger than the guard page can jump past it into memory that is
 * mapped (another task's stack): nothing faults then. Tasks with big
 * arrays on the stack need a bigger stack_size (weft/async.h).
 */
#include "async/async_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* How far below the guard page a fault still counts as an overflow: a
 * frame that stepped over the guard into unmapped memory. */
#define BELOW_GUARD (64 * 1024)

static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void say_number(uint64_t v)
{
    char buf[24];
    char *p = buf + sizeof buf - 1;
    *p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    say(p);
}

static bool overflowed(const struct weft_co *t, const char *addr)
{
    const char *lo = weft__stack_lo(&t->stack);
    return addr < lo && addr + BELOW_GUARD >= t->stack.map;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    struct weft__loop *l = weft__loop_self;
    struct weft_co *t = l ? l->current : NULL;
    if (t && overflowed(t, si->si_addr)) {
        say("weft: task '");
        if (t->name) {
            say(t->name);
        } else {
            say("co-");
            say_number(t->id);
        }
        say("' overflowed its stack of ");
        say_number(weft__stack_size(&t->stack));
        say(" bytes (give it a larger stack_size)\n");
        abort();
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
        previous.sa_handler(sig);
    } else {
        /* The fault happens again on return, and is fatal this time. */
        signal(sig, SIG_DFL);
    }
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}

int weft__overflow_watch(struct weft__loop *l)
{
    pthread_once(&installed, install);
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return 0; /* the thread has one already */
    size_t size = 64 * 1024;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = mem, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, size);
        return -errno;
    }
    l->altstack = mem;
    l->altstack_size = size;
    return 0;
}

void weft__overflow_unwatch(struct weft__loop *l)
{
    if (!l->altstack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(l->altstack, l->altstack_size);
    l->altstack = NULL;
}
