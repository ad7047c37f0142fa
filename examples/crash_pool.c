/*
 * A process pool that survives its workers' crashes: twenty tasks, each
 * checking a number for primality in a worker process, one of which
 * (number 13, unlucky) dereferences a null pointer and takes its worker
 * down with a segmentation fault, and one of which (number 17) runs
 * forever and is stopped by the pool's task timeout.
 *
 * In Python a crashed worker breaks a ProcessPoolExecutor for good: every
 * pending future fails with BrokenProcessPool and the executor refuses
 * further work. Here only the crashed task fails (WEFT_ECRASHED, with the
 * worker's exit status) and the one over its time fails with -ETIMEDOUT;
 * the pool starts new workers in their place and every other task
 * completes.
 *
 * The functions are registered (WEFT_PROCESS_REGISTER) so that the pool can
 * use the forkserver start method, the safe default, whose workers are
 * fresh copies of this program that find functions by name.
 */
#include "check.h"

#include <weft/ppool.h>

#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static ssize_t check_prime(const void *arg, size_t len, void *out, size_t cap)
{
    (void)len, (void)cap;
    long n;
    memcpy(&n, arg, sizeof n);
    if (n == 13) {
        volatile int *nowhere = NULL;
        return *nowhere; /* the bug: a segmentation fault in the worker */
    }
    while (n == 17)
        pause(); /* the other bug: it never returns */
    bool prime = n >= 2;
    for (long d = 2; d * d <= n && prime; d++)
        prime = n % d != 0;
    memcpy(out, &prime, sizeof prime);
    return sizeof prime;
}
WEFT_PROCESS_REGISTER(check_prime);

int main(void)
{
    enum { N = 20 };
    weft_ppool_t *pool;
    CHECK(weft_ppool_new(&pool, &(weft_ppool_opts_t){.processes = 2, .task_timeout = 1.0}));
    weft_future_t *f[N];
    for (long n = 0; n < N; n++)
        CHECK(weft_ppool_submit(pool, check_prime, &n, sizeof n, &f[n]));
    int completed = 0, crashed = 0, timed_out = 0;
    for (long n = 0; n < N; n++) {
        const void *data;
        int status;
        int rc = weft_ppool_result(f[n], WEFT_FOREVER, &data, NULL, &status);
        if (rc == 0) {
            completed++;
            if (*(const bool *)data)
                printf("%ld is prime\n", n);
        } else if (rc == WEFT_ECRASHED) {
            crashed++;
            printf("%ld: the worker crashed (%s %d); the pool goes on\n", n,
                   status < 0 ? "signal" : "exit status", status < 0 ? -status : status);
        } else if (rc == -ETIMEDOUT) {
            timed_out++;
            printf("%ld: over its time limit; its worker was killed and replaced\n", n);
        } else {
            CHECK(rc);
        }
        weft_future_free(f[n]);
    }
    printf("%d completed, %d crashed, %d timed out; %d workers alive\n", completed, crashed,
           timed_out, CHECK(weft_ppool_workers(pool)));
    CHECK(weft_ppool_free(pool));
    return completed == N - 2 && crashed == 1 && timed_out == 1 ? 0 : 1;
}
