/*
 * weft_parallel_for and weft_pool_map (weft/pool.h): recursive splitting
 * on the pool.
 *
 * A range task halves its range until it is no bigger than the grain:
 * each right half becomes a task of its own (into the worker's deque, where
 * idle workers steal it, the biggest pieces first), the left half stays
 * with the task, which runs fn on what remains and then waits for its
 * right halves, running other tasks meanwhile. The ranges of the halves
 * live on the stack of the task that waits for them, so splitting
 * allocates nothing but the futures.
 *
 * The root range is a task too, so that fn can always raise with
 * weft_task_fail; a range whose halves raised passes the first error up.
 * Progress goes out in order (report.h).
 * map is parallel_for over the item indices, one chunk per grain; map_items
 * is the same over flat arrays of items and results, with the process
 * pool's task shape (bytes in, bytes out, a length or an error back).
 */
#include "pool/future_int.h"
#include "pool/report.h"
#include <weft/pool.h>

#include <stdlib.h>
#include <string.h>

struct job {
    weft_pool_t *pool;
    size_t grain;
    void (*fn)(size_t lo, size_t hi, void *arg);
    void *arg;
    weft__report_t progress;
};

struct range {
    struct job *job;
    size_t lo, hi;
};

/* Depth of splitting: halving a size_t range more than 64 times leaves
 * nothing to split. */
enum { MAX_SPLITS = 64 };

static void *run_range(void *arg)
{
    struct range *r = arg;
    struct job *job = r->job;
    struct range halves[MAX_SPLITS];
    weft_future_t *futures[MAX_SPLITS];
    int n = 0, error = 0;
    size_t lo = r->lo, hi = r->hi;
    while (hi - lo > job->grain && n < MAX_SPLITS) {
        size_t mid = lo + (hi - lo) / 2;
        halves[n] = (struct range){job, mid, hi};
        /* Without memory for another task, this one runs the rest itself. */
        if (weft_pool_submit(job->pool, run_range, &halves[n], &futures[n]) < 0)
            break;
        n++;
        hi = mid;
    }
    job->fn(lo, hi, job->arg);
    error = weft__task_error(); /* this range comes first in item order */
    weft__report_add(&job->progress, hi - lo);
    while (n-- > 0) { /* the halves, left to right */
        int rc = weft_future_result(futures[n], WEFT_FOREVER, NULL);
        if (rc < 0 && !error)
            error = rc;
        weft_future_free(futures[n]);
    }
    if (error)
        weft_task_fail(error);
    return NULL;
}

int weft_parallel_for(weft_pool_t *pool, size_t begin, size_t end, size_t grain,
                      void (*fn)(size_t lo, size_t hi, void *arg), void *arg,
                      weft_progress_fn progress, void *progress_arg)
{
    if (!pool || !fn || begin > end)
        return -EINVAL;
    if (begin == end)
        return 0;
    size_t total = end - begin;
    if (grain == 0) {
        size_t pieces = 8 * (size_t)weft_pool_workers(pool);
        grain = total / pieces ? total / pieces : 1;
    }
    struct job job = {.pool = pool, .grain = grain, .fn = fn, .arg = arg};
    weft__report_init(&job.progress, progress, progress_arg, total);
    struct range root = {&job, begin, end};
    weft_future_t *f;
    int rc = weft_pool_submit(pool, run_range, &root, &f);
    if (rc < 0)
        return rc;
    rc = weft_future_result(f, WEFT_FOREVER, NULL);
    weft_future_free(f);
    return rc;
}

struct map {
    void *(*fn)(void *item, void *arg);
    void *arg;
    void *const *items;
    void **results;
};

/* A chunk stops at its first failing item, as a raise would stop it in
 * Python, so that a later item's failure cannot replace the first one's
 * error: map reports the first in item order. */
static void map_chunk(size_t lo, size_t hi, void *arg)
{
    struct map *m = arg;
    for (size_t i = lo; i < hi && !weft__task_error(); i++)
        m->results[i] = m->fn(m->items[i], m->arg);
}

int weft_pool_map(weft_pool_t *pool, void *(*fn)(void *item, void *arg), void *arg,
                  void *const *items, void **results, size_t n, size_t chunksize,
                  weft_progress_fn progress, void *progress_arg)
{
    if (!fn || (n && (!items || !results)))
        return -EINVAL;
    if (pool && chunksize == 0) {
        size_t pieces = 4 * (size_t)weft_pool_workers(pool);
        chunksize = n / pieces ? n / pieces : 1;
    }
    struct map m = {fn, arg, items, results};
    return weft_parallel_for(pool, 0, n, chunksize, map_chunk, &m, progress, progress_arg);
}

struct map_items {
    weft_bytes_fn fn;
    const unsigned char *items;
    unsigned char *results;
    size_t item_size, result_size;
};

/* Element i of an array of size-byte elements. Arrays of zero-size elements
 * may be NULL, and C allows no arithmetic on a null pointer, not even + 0. */
static unsigned char *element(const unsigned char *base, size_t i, size_t size)
{
    return size ? (unsigned char *)base + i * size : (unsigned char *)base;
}

/* As the process pool's worker does it: a result shorter than result_size
 * is zero-filled, a negative length is the item's error, a longer one
 * -EMSGSIZE; the chunk stops at its first failing item. */
static void map_items_chunk(size_t lo, size_t hi, void *arg)
{
    struct map_items *m = arg;
    for (size_t i = lo; i < hi && !weft__task_error(); i++) {
        unsigned char *out = element(m->results, i, m->result_size);
        ssize_t n = m->fn(element(m->items, i, m->item_size), m->item_size, out, m->result_size);
        if (n < 0 || (size_t)n > m->result_size)
            weft_task_fail(n < 0 ? (int)n : -EMSGSIZE);
        else if ((size_t)n < m->result_size) /* (with result_size 0, out may be NULL) */
            memset(out + n, 0, m->result_size - (size_t)n);
    }
}

int weft_pool_map_items(weft_pool_t *pool, weft_bytes_fn fn, const void *items, size_t n,
                        size_t item_size, void *results, size_t result_size, size_t chunksize,
                        weft_progress_fn progress, void *progress_arg)
{
    if (!fn || (n && ((!items && item_size) || (!results && result_size))) ||
        (item_size && n > SIZE_MAX / item_size) || (result_size && n > SIZE_MAX / result_size))
        return -EINVAL;
    if (pool && chunksize == 0) {
        size_t pieces = 4 * (size_t)weft_pool_workers(pool);
        chunksize = n / pieces ? n / pieces : 1;
    }
    struct map_items m = {fn, items, results, item_size, result_size};
    return weft_parallel_for(pool, 0, n, chunksize, map_items_chunk, &m, progress, progress_arg);
}
