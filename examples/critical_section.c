/*
 * A critical section (the lecture's third primitive, after Windows'
 * CRITICAL_SECTION): a lock its owner may enter again, with a spin count.
 * Four tellers move money between five accounts at random. transfer() enters
 * the section and calls withdraw() and deposit(), which enter it too: that
 * nesting is why this needs a recursive lock, and a plain Lock would
 * deadlock on itself. The bank's total never changes.
 */
#include "check.h"

#include <weft/sync.h>
#include <weft/thread.h>

#include <stdint.h>

enum { ACCOUNTS = 5, TELLERS = 4, TRANSFERS = 100000 };

static long balance[ACCOUNTS];
static weft_critsec_t bank = WEFT_CRITSEC_INIT; /* guards every balance */

static void deposit(int account, long amount)
{
    WEFT_WITH (&bank) {
        balance[account] += amount;
    }
}

static bool withdraw(int account, long amount)
{
    bool ok = false;
    WEFT_WITH (&bank) {
        if ((ok = balance[account] >= amount))
            balance[account] -= amount;
    }
    return ok;
}

static void transfer(int from, int to, long amount)
{
    WEFT_WITH (&bank) /* the whole transfer is one step: held across both calls */
    {
        if (withdraw(from, amount))
            deposit(to, amount);
    }
}

static long total(void)
{
    long sum = 0;
    WEFT_WITH (&bank) {
        for (int i = 0; i < ACCOUNTS; i++)
            sum += balance[i];
    }
    return sum;
}

/* Each teller's own random numbers (a thread must not share rand()'s state). */
static unsigned next_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 16;
}

static void *teller(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < TRANSFERS; i++) {
        int from = (int)(next_random(&seed) % ACCOUNTS), to = (int)(next_random(&seed) % ACCOUNTS);
        transfer(from, to, (long)(next_random(&seed) % 50));
    }
    return NULL;
}

int main(void)
{
    for (int i = 0; i < ACCOUNTS; i++)
        balance[i] = 1000;
    printf("total before: %ld\n", total());
    weft_thread_t *tellers[TELLERS];
    for (uintptr_t i = 0; i < TELLERS; i++) {
        CHECK(weft_thread_new(&tellers[i], teller, (void *)(i + 1), NULL));
        CHECK(weft_thread_start(tellers[i]));
    }
    for (int i = 0; i < TELLERS; i++) {
        CHECK(weft_thread_join(tellers[i], WEFT_FOREVER, NULL));
        weft_thread_free(tellers[i]);
    }
    printf("after %d transfers by %d tellers: total %ld, accounts", TELLERS * TRANSFERS, TELLERS,
           total());
    for (int i = 0; i < ACCOUNTS; i++)
        printf(" %ld", balance[i]);
    printf("\n");
    return 0;
}
