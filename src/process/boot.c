/*
 * The registry of functions that spawn and forkserver children call by
 * name, and the boot that turns a freshly executed copy of the program
 * into such a child (or into the forkserver) before main.
 *
 * Registration: WEFT_PROCESS_REGISTER's first constructor, at priority 101
 * (the earliest a program may use), pushes a static entry onto a list with
 * a compare-and-swap: no allocation, and entries are never removed, so a
 * reader walks the list without a lock. A name registered twice for two
 * different functions is marked ambiguous, never guessed at.
 *
 * Boot: WEFT_PROCESS_REGISTER's second constructor, at priority 65535,
 * calls weft_process_boot, and so does one of weft's own (weft's other
 * constructors run at 200, before it). A started child finds
 * WEFT_CHILD=<mode>:<fd>:<parent pid>:<count> in its environment: mode 's'
 * (spawn: fd is the request) or 'f' (forkserver: fd is the socket to the
 * client), and count the number of functions the parent had registered. A
 * boot call returns while fewer are registered here: a library's
 * constructors run before the executable's, so a call made inside the
 * library leaves the boot to a later one that sees every registration.
 *
 * A WEFT_CHILD whose descriptor is not what it claims (a variable copied
 * into some other program's environment) is removed and ignored: main runs
 * as usual. A genuine request that cannot be read ends the child with exit
 * code 127 rather than running main in a process meant to run a function.
 */
#include "process/process_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Atomic(weft_process_entry_t *) entries;
static _Atomic unsigned entry_count;
static bool booted;

void weft_process_register(weft_process_entry_t *e)
{
    if (!e || !e->name || !e->fn)
        return;
    weft_process_entry_t *head = atomic_load_explicit(&entries, memory_order_acquire);
    for (weft_process_entry_t *x = head; x; x = x->next)
        if (x == e)
            return; /* the same entry twice */
        else if (strcmp(x->name, e->name) == 0 && x->fn != e->fn)
            x->ambiguous = e->ambiguous = 1;
    do
        e->next = head;
    while (!atomic_compare_exchange_weak_explicit(&entries, &head, e, memory_order_release,
                                                  memory_order_acquire));
    atomic_fetch_add(&entry_count, 1);
}

const char *weft__registered_name(void (*fn)(void))
{
    for (weft_process_entry_t *x = atomic_load_explicit(&entries, memory_order_acquire); x;
         x = x->next)
        if (WEFT__FN(x->fn) == fn)
            return x->ambiguous ? NULL : x->name;
    return NULL;
}

weft_process_fn weft__registered_fn(const char *name)
{
    for (weft_process_entry_t *x = atomic_load_explicit(&entries, memory_order_acquire); x;
         x = x->next)
        if (strcmp(x->name, name) == 0)
            return x->ambiguous ? NULL : x->fn;
    return NULL;
}

unsigned weft__registered_count(void)
{
    return atomic_load(&entry_count);
}

/* Is fd what a WEFT_CHILD of this mode says it is: our request memfd, or a
 * socket? */
static bool genuine(char mode, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    if (mode == 'f')
        return S_ISSOCK(st.st_mode);
    char path[64], target[64] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    return n > 0 && strncmp(target, "/memfd:weft-request", 19) == 0;
}

static _Noreturn void boot_spawned(int fd)
{
    struct weft__child c;
    void *mem;
    int rc = weft__request_decode(fd, &c, &mem);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "weft: a spawned child could not read its request: %s\n",
                weft_strerror(rc));
        weft__exit_now(127);
    }
    weft__child_run(&c);
}

void weft_process_boot(void)
{
    if (booted)
        return;
    const char *v = getenv("WEFT_CHILD");
    if (!v) {
        booted = true;
        return;
    }
    char mode;
    int fd, used = 0;
    long pid;
    unsigned count;
    if (sscanf(v, "%c:%d:%ld:%u%n", &mode, &fd, &pid, &count, &used) != 4 || v[used] != '\0' ||
        (mode != 's' && mode != 'f') || fd < 3 || pid <= 0) {
        booted = true;
        unsetenv("WEFT_CHILD");
        return;
    }
    if (weft__registered_count() < count)
        return; /* a later boot constructor will see them all */
    booted = true;
    unsetenv("WEFT_CHILD");
    if (!genuine(mode, fd))
        return;
    if (mode == 's')
        boot_spawned(fd);
    weft__forkserver_serve(fd, (pid_t)pid);
}

__attribute__((constructor(65535))) static void boot_late(void)
{
    weft_process_boot();
}
