/*
 * A program that uses nothing of weft but a shared Lock, linked statically:
 * only the objects such a program pulls in from libweft.a are there (no
 * thread registry, whose fork handler used to be what made a forked child
 * forget its parent's cached thread id). A child that takes the lock and
 * dies holding it must still be noticed as a dead owner.
 */
#include "wt.h"
#include <weft/sync.h>

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

/* Present only if something linked the thread registry in; a weak reference
 * never pulls an object out of the archive itself. */
extern void weft__registry_lock(void) __attribute__((weak));

static weft_lock_t *lock;

static int take_and_die(void *arg)
{
    (void)arg;
    if (weft_lock_acquire(lock, WEFT_FOREVER) != 0)
        return 1;
    _exit(0); /* dies holding it */
}

WT_FAULT(child_dying_with_a_shared_lock_is_noticed)
{
    WT_CHECK(weft__registry_lock == NULL); /* else this tests nothing */
    lock = wt_shared_map(sizeof *lock);
    WT_EQ(weft_lock_init(lock, WEFT_SHARED), 0);
    /* The parent's thread id is cached before the fork. */
    WT_EQ(weft_lock_acquire(lock, 0), 0);
    WT_EQ(weft_lock_release(lock), 0);
    int status = wt_fork(take_and_die, NULL, 10 * wt_slack());
    WT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    WT_EQ(weft_lock_acquire(lock, 10 * wt_slack()), -EOWNERDEAD);
    WT_EQ(weft_lock_consistent(lock), 0);
    WT_EQ(weft_lock_release(lock), 0);
}
