/*
 * Fork guards: internal mutexes that a fork must not catch half-way. The
 * prepare handler takes every registered mutex, so the child's copy of the
 * data each one protects is consistent, and the child handler resets what
 * belongs to the parent only (lists of its children, of its pools, whose
 * threads did not follow) before releasing them. Mutexes are taken in
 * ascending rank, the order in which weft's code nests them (a lower rank
 * may be held while a higher one is taken, never the reverse), so the
 * prepare handler cannot deadlock against a thread that holds two.
 * Registration happens in library constructors, before any thread exists.
 */
#include "base/base.h"

#include <stdlib.h>

#define MAX_GUARDS 8

struct guard {
    pthread_mutex_t *mutex;
    int rank;
    void (*in_child)(void);
};

static struct guard guards[MAX_GUARDS];
static int n_guards;

static void prepare(void)
{
    for (int i = 0; i < n_guards; i++)
        pthread_mutex_lock(guards[i].mutex);
}

static void parent(void)
{
    for (int i = n_guards - 1; i >= 0; i--)
        pthread_mutex_unlock(guards[i].mutex);
}

static void child(void)
{
    for (int i = n_guards - 1; i >= 0; i--) {
        if (guards[i].in_child)
            guards[i].in_child();
        pthread_mutex_unlock(guards[i].mutex);
    }
}

void weft__fork_guard(pthread_mutex_t *mutex, int rank, void (*in_child)(void))
{
    if (n_guards == 0)
        pthread_atfork(prepare, parent, child);
    /* A build-time limit: weft's constructors register fewer guards, and
     * one too many would stop every program at load, tests first. */
    if (n_guards == MAX_GUARDS) // GCOVR_EXCL_START
        abort();                // raise MAX_GUARDS
    // GCOVR_EXCL_STOP
    int i = n_guards++;
    for (; i > 0 && guards[i - 1].rank > rank; i--) /* keep them sorted */
        guards[i] = guards[i - 1];
    guards[i] = (struct guard){mutex, rank, in_child};
}
