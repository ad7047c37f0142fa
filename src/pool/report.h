/*
 * Progress reports for work that several threads finish at once (the
 * thread pool's map and parallel_for, the process pool's map): each piece
 * adds what it finished, and the reports go out one at a time, each showing
 * more done than the one before, the last showing the total. Pieces finish
 * in any order, and the thread that counted more done may report first:
 * without the order a report could show less than the one before (the
 * progress bar takes that for a new bar), and the last need not be the
 * total. The report runs under a Lock held only while a callback runs.
 */
#ifndef WEFT_SRC_POOL_REPORT_H
#define WEFT_SRC_POOL_REPORT_H

#include "base/base.h"
#include <weft/pool.h>
#include <weft/sync.h>

typedef struct weft__report {
    weft_progress_fn fn; /* NULL: nothing is reported */
    void *arg;
    size_t total;
    _Atomic size_t done;
    weft_lock_t lock;
    size_t shown; /* the most done reported, under lock */
} weft__report_t;

void weft__report_init(weft__report_t *r, weft_progress_fn fn, void *arg, size_t total);
/* n more items done. */
void weft__report_add(weft__report_t *r, size_t n);

#endif /* WEFT_SRC_POOL_REPORT_H */
