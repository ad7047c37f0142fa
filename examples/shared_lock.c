/*
 * multiprocessing.Lock, and what Python cannot do with it. Processes have
 * memory of their own, so a counter they share lives in a MAP_SHARED mapping
 * made before fork(), with a Lock initialised WEFT_SHARED beside it. Three
 * processes add to it under the lock; the total is exact.
 *
 * Then one process takes the lock and is killed with SIGKILL while holding
 * it. In Python the others would wait forever. Here the next process to ask
 * for the lock gets it with -EOWNERDEAD: it repairs what the dead one may
 * have left half-done, declares the state consistent, and carries on.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, kill */
#include "check.h"

#include <weft/sync.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
    weft_lock_t lock; /* protects everything below */
    long counter;
    long in_progress; /* 1 while an update is under way */
    weft_sem_t holding;
};

static void add(struct shared *s, int times)
{
    for (int i = 0; i < times; i++) {
        CHECK(weft_lock_acquire(&s->lock, WEFT_FOREVER));
        s->counter++;
        CHECK(weft_lock_release(&s->lock));
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct shared *s =
        mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return 1;
    CHECK(weft_lock_init(&s->lock, WEFT_SHARED));
    CHECK(weft_sem_init(&s->holding, 0, WEFT_SHARED));

    pid_t kids[2];
    for (int k = 0; k < 2; k++)
        if ((kids[k] = fork()) == 0) {
            add(s, 100000);
            _exit(0);
        }
    add(s, 100000);
    for (int k = 0; k < 2; k++)
        waitpid(kids[k], NULL, 0);
    printf("three processes, 100000 increments each: counter = %ld\n", s->counter);

    pid_t victim = fork();
    if (victim == 0) {
        CHECK(weft_lock_acquire(&s->lock, WEFT_FOREVER));
        s->in_progress = 1; /* an update begins... */
        weft_sem_release(&s->holding, 1);
        pause(); /* ...and never ends */
    }
    CHECK(weft_sem_acquire(&s->holding, WEFT_FOREVER));
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    printf("process %d took the lock and was killed holding it\n", (int)victim);

    int rc = weft_lock_acquire(&s->lock, 10.0);
    printf("the next acquire returns %s\n", weft_strerror(rc));
    if (rc == -EOWNERDEAD) {
        if (s->in_progress) /* repair: here, undo the half-done update */
            s->in_progress = 0;
        CHECK(weft_lock_consistent(&s->lock));
        printf("state repaired and marked consistent\n");
    }
    CHECK(weft_lock_release(&s->lock));
    add(s, 1);
    printf("the lock works again: counter = %ld\n", s->counter);
    return s->counter == 300001 ? 0 : 1;
}
