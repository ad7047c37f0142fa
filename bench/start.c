/*
 * weft-bench-start: the process-start cases of weft-bench's process suite,
 * in a program of their own that links nothing but weft.
 *
 *     weft-bench-start fork|spawn|forkserver N    N weft processes started and joined
 *     weft-bench-start raw N                      N fork() + waitpid() by hand
 *
 * It prints the seconds the N took. A fork copies the page tables of the
 * process that forks, so its cost grows with what that process has
 * mapped: weft-bench itself links GLib, libuv and libgomp for its other
 * suites, which made every fork there about 90 us slower than in a
 * program like this one, for weft and for fork() alike. Python's side runs
 * in an interpreter of its own too.
 */
#include <weft/process.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int nothing(const void *arg, size_t len)
{
    (void)arg, (void)len;
    return 0;
}
WEFT_PROCESS_REGISTER(nothing);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    fprintf(stderr, "weft-bench-start: %s failed\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fail("usage: weft-bench-start fork|spawn|forkserver|raw N; the call");
    long n = atol(argv[2]);
    weft_start_method_t m = strcmp(argv[1], "spawn") == 0        ? WEFT_START_SPAWN
                            : strcmp(argv[1], "forkserver") == 0 ? WEFT_START_FORKSERVER
                                                                 : WEFT_START_FORK;
    if (m == WEFT_START_FORKSERVER && weft_process_forkserver_start() != 0)
        return fail("weft_process_forkserver_start");
    bool raw = strcmp(argv[1], "raw") == 0;
    weft_process_opts_t opts = {.method = m};
    double t0 = now();
    for (long i = 0; i < n; i++) {
        if (raw) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            if (pid < 0 || waitpid(pid, NULL, 0) != pid)
                return fail("fork");
            continue;
        }
        weft_process_t *p;
        if (weft_process_new(&p, nothing, NULL, 0, &opts) || weft_process_start(p) ||
            weft_process_join(p, WEFT_FOREVER) || weft_process_close(p))
            return fail("a weft process start");
    }
    printf("%.9f\n", now() - t0);
    return 0;
}
