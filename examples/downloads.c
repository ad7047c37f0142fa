/*
 * A Semaphore limiting concurrency: ten "downloads" start at once, but the
 * semaphore lets only three run at a time, like a client that keeps at most
 * three connections open. Each download reports how many are running.
 */
#include "check.h"

#include <weft/sync.h>
#include <weft/thread.h>

#include <stdatomic.h>

enum { DOWNLOADS = 10, AT_ONCE = 3 };

static weft_sem_t slots = WEFT_BOUNDED_SEM_INIT(AT_ONCE);
static atomic_int running, most;

static void *download(void *arg)
{
    int id = (int)(intptr_t)arg;
    WEFT_WITH (&slots) /* take a slot; give it back at the end of the block */
    {
        int now = atomic_fetch_add(&running, 1) + 1;
        int seen = atomic_load(&most);
        while (now > seen && !atomic_compare_exchange_weak(&most, &seen, now))
            ;
        printf("download %2d started  (%d running)\n", id, now);
        weft_sleep(0.1 + 0.05 * (id % 3)); /* the transfer itself */
        atomic_fetch_sub(&running, 1);
        printf("download %2d finished\n", id);
    }
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    weft_thread_t *t[DOWNLOADS];
    for (intptr_t i = 0; i < DOWNLOADS; i++) {
        CHECK(weft_thread_new(&t[i], download, (void *)(i + 1), NULL));
        CHECK(weft_thread_start(t[i]));
    }
    for (int i = 0; i < DOWNLOADS; i++) {
        CHECK(weft_thread_join(t[i], WEFT_FOREVER, NULL));
        weft_thread_free(t[i]);
    }
    printf("never more than %d at once (limit %d)\n", atomic_load(&most), AT_ONCE);
    return atomic_load(&most) <= AT_ONCE ? 0 : 1;
}
