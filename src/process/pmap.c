/*
 * map, map_async, imap and imap_unordered on the process pool
 * (weft/ppool.h).
 *
 * The items are cut into chunks, each one task whose argument is its slice
 * of the caller's items (read in place: the caller keeps them valid until
 * the work is done) and whose result is its slice of results. Chunks are
 * sized so that both fit the pool's max_arg and max_result; by default
 * there are about four per worker, as in Python's Pool.map.
 *
 * map_async: every chunk carries a completion hook, which the pool calls
 * once the chunk has finished, however it ended (a future's callback would
 * need an allocation that can fail): it copies the results into place,
 * records the error, reports progress and, for the last chunk, finishes
 * the map's own future with the first error in item order. That future
 * collects results while waited for, like any of the pool's.
 *
 * imap walks the chunk futures in order; imap_unordered waits for whichever
 * finishes first (weft_wait). Either hands out one item's result per call.
 */
#include "pool/future_int.h"
#include "pool/report.h"
#include "process/ppool_int.h"

#include <math.h>
#include <stdlib.h>

struct job;

struct chunk {
    struct job *job;
    size_t index;
};

struct job {
    weft_future_t *all;
    unsigned char *results;
    size_t n, item_size, result_size, chunk, nchunks;
    _Atomic size_t left;
    int *errors;
    weft_future_t **futures;
    struct chunk *chunks;
    weft__report_t progress;
};

static size_t count_of(size_t n, size_t chunk, size_t index)
{
    size_t first = index * chunk;
    return n - first < chunk ? n - first : chunk;
}

/* The chunk size for n items; 0 if an item or its result cannot fit. */
static size_t chunk_size(weft_ppool_t *pool, size_t n, size_t item_size, size_t result_size,
                         size_t asked)
{
    size_t max_result, max_arg = weft__ppool_limits(pool, &max_result);
    size_t fit = SIZE_MAX;
    if (item_size)
        fit = max_arg / item_size;
    if (result_size && max_result / result_size < fit)
        fit = max_result / result_size;
    if (fit > UINT32_MAX)
        fit = UINT32_MAX;
    int workers = weft_ppool_workers(pool);
    size_t parts = 4 * (size_t)(workers > 0 ? workers : weft_cpu_count());
    size_t c = asked ? asked : (n + parts - 1) / parts;
    c = c ? c : 1;
    return c < fit ? c : fit;
}

static void free_job(struct job *j)
{
    for (size_t i = 0; j->futures && i < j->nchunks; i++)
        if (j->futures[i])
            weft_future_free(j->futures[i]);
    free(j->futures);
    free(j->chunks);
    free(j->errors);
    free(j);
}

static void finish_job(struct job *j)
{
    int error = 0;
    for (size_t i = 0; i < j->nchunks && !error; i++)
        error = j->errors[i];
    weft_future_t *all = j->all;
    free_job(j);
    weft__future_finish(all, NULL, error);
    weft_future_free(all); /* the job's reference */
}

static void chunks_left(struct job *j, size_t finished)
{
    if (atomic_fetch_sub(&j->left, finished) == finished)
        finish_job(j);
}

static void chunk_done(weft_future_t *f, void *arg)
{
    struct chunk *c = arg;
    struct job *j = c->job;
    size_t count = count_of(j->n, j->chunk, c->index);
    const void *data;
    size_t len;
    int rc = weft_ppool_result(f, 0, &data, &len, NULL);
    if (rc == 0 && len == count * j->result_size && len)
        memcpy(j->results + c->index * j->chunk * j->result_size, data, len);
    else if (rc == 0 && len != count * j->result_size)
        rc = -EBADMSG;
    j->errors[c->index] = rc;
    weft__report_add(&j->progress, count);
    chunks_left(j, 1);
}

/* A job of n items; with_future: map's, which finishes a future of its own. */
static struct job *new_job(weft_ppool_t *pool, size_t n, size_t item_size, size_t result_size,
                           size_t chunk, bool with_future)
{
    struct job *j = weft__calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->n = n;
    j->item_size = item_size;
    j->result_size = result_size;
    j->chunk = chunk;
    j->nchunks = n ? (n + chunk - 1) / chunk : 0;
    j->futures = weft__calloc(j->nchunks + 1, sizeof *j->futures);
    j->chunks = weft__calloc(j->nchunks + 1, sizeof *j->chunks);
    j->errors = weft__calloc(j->nchunks + 1, sizeof *j->errors);
    if (!j->futures || !j->chunks || !j->errors ||
        (with_future && weft__ppool_future(pool, &j->all) < 0)) {
        free_job(j);
        return NULL;
    }
    return j;
}

/* Submit every chunk; on a failure the rest record its error. Returns the
 * first failure (the futures that were submitted still finish). With
 * callbacks, each chunk's results are placed as it finishes (by the pool,
 * which needs no allocation for it: a callback that could not be added
 * would let the job end while the chunk still reads the caller's items). */
static int submit_chunks(weft_ppool_t *pool, weft_ptask_fn fn, const unsigned char *items,
                         struct job *j, bool callbacks)
{
    int rc = 0;
    size_t i = 0;
    for (; i < j->nchunks && rc == 0; i++) {
        j->chunks[i] = (struct chunk){j, i};
        rc = weft__ppool_submit_chunk(pool, fn, items + i * j->chunk * j->item_size,
                                      count_of(j->n, j->chunk, i), j->item_size, j->result_size,
                                      callbacks ? chunk_done : NULL, &j->chunks[i], &j->futures[i]);
    }
    if (rc < 0) {
        i--; /* the one that failed */
        for (size_t k = i; k < j->nchunks; k++)
            j->errors[k] = rc;
        if (callbacks)
            chunks_left(j, j->nchunks - i);
    }
    return rc;
}

static bool map_args_ok(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t n,
                        const void *results, size_t result_size)
{
    return pool && fn && (!n || items) && (!n || !result_size || results);
}

int weft_ppool_map_async(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t n,
                         size_t item_size, void *results, size_t result_size, size_t chunksize,
                         weft_progress_fn progress, void *progress_arg, weft_future_t **f)
{
    if (!f || !map_args_ok(pool, fn, items, n, results, result_size))
        return -EINVAL;
    size_t chunk = chunk_size(pool, n, item_size, result_size, chunksize);
    if (!chunk)
        return -EINVAL;
    struct job *j = new_job(pool, n, item_size, result_size, chunk, true);
    if (!j)
        return -ENOMEM;
    j->results = results;
    weft__report_init(&j->progress, progress, progress_arg, n);
    weft__future_ref(j->all);
    *f = j->all;
    atomic_store(&j->left, j->nchunks + 1); /* +1: ours, until every chunk is in */
    submit_chunks(pool, fn, items, j, true);
    chunks_left(j, 1);
    return 0;
}

int weft_ppool_map(weft_ppool_t *pool, weft_ptask_fn fn, const void *items, size_t n,
                   size_t item_size, void *results, size_t result_size, size_t chunksize,
                   weft_progress_fn progress, void *progress_arg)
{
    weft_future_t *all;
    int rc = weft_ppool_map_async(pool, fn, items, n, item_size, results, result_size, chunksize,
                                  progress, progress_arg, &all);
    if (rc < 0)
        return rc;
    rc = weft_future_error(all, WEFT_FOREVER);
    weft_future_free(all);
    return rc;
}

/* ---- imap ---- */

struct weft_ppool_imap {
    struct job *job;
    bool ordered;
    size_t next; /* ordered: the next chunk to open */
    size_t cur;  /* the chunk being handed out, or SIZE_MAX */
    size_t pos;  /* the next item in it */
    bool *taken; /* unordered: chunks opened */
    size_t left; /* chunks not yet opened */
};

int weft_ppool_imap_new(weft_ppool_imap_t **out, weft_ppool_t *pool, weft_ptask_fn fn,
                        const void *items, size_t n, size_t item_size, size_t result_size,
                        size_t chunksize, bool ordered)
{
    if (!out || !map_args_ok(pool, fn, items, n, NULL, 0))
        return -EINVAL;
    size_t chunk = chunk_size(pool, n, item_size, result_size, chunksize);
    if (!chunk)
        return -EINVAL;
    weft_ppool_imap_t *it = weft__calloc(1, sizeof *it);
    struct job *j = it ? new_job(pool, n, item_size, result_size, chunk, false) : NULL;
    bool *taken = j ? weft__calloc(j->nchunks + 1, sizeof *taken) : NULL;
    if (!taken) {
        if (j)
            free_job(j);
        free(it);
        return -ENOMEM;
    }
    *it = (weft_ppool_imap_t){j, ordered, 0, SIZE_MAX, 0, taken, j->nchunks};
    submit_chunks(pool, fn, items, j, false);
    *out = it;
    return 0;
}

/* Open the next chunk to hand out: its index, or an error. */
static ssize_t open_chunk(weft_ppool_imap_t *it, double timeout)
{
    struct job *j = it->job;
    size_t k = it->next;
    if (!it->ordered) {
        weft_future_t **open = weft__calloc(it->left, sizeof *open);
        if (!open)
            return -ENOMEM;
        size_t m = 0;
        for (size_t i = 0; i < j->nchunks; i++)
            if (!it->taken[i] && j->futures[i])
                open[m++] = j->futures[i];
        int rc = m ? weft_wait(open, m, timeout, WEFT_FIRST_COMPLETED) : 0;
        free(open);
        if (rc < 0)
            return rc;
        for (k = 0; k < j->nchunks; k++)
            if (!it->taken[k] && (!j->futures[k] || weft_future_done(j->futures[k]) == 1))
                break;
        if (k == j->nchunks)
            return timeout == 0 ? -EAGAIN : -ETIMEDOUT;
    }
    int rc =
        j->futures[k] ? weft_ppool_result(j->futures[k], timeout, NULL, NULL, NULL) : j->errors[k];
    if (rc == -ETIMEDOUT || rc == -EAGAIN)
        return rc;
    it->taken[k] = true;
    it->left--;
    if (it->ordered)
        it->next++;
    return rc < 0 ? rc : (ssize_t)k;
}

ssize_t weft_ppool_imap_next(weft_ppool_imap_t *it, void *out, double timeout)
{
    if (!it || (it->job->result_size && !out) || isnan(timeout))
        return -EINVAL;
    struct job *j = it->job;
    if (it->cur == SIZE_MAX) {
        if (it->left == 0)
            return -ENOENT;
        ssize_t k = open_chunk(it, timeout);
        if (k < 0)
            return k;
        it->cur = (size_t)k;
        it->pos = 0;
    }
    const void *data;
    size_t len;
    weft_ppool_result(j->futures[it->cur], 0, &data, &len, NULL);
    if (len != count_of(j->n, j->chunk, it->cur) * j->result_size) {
        it->cur = SIZE_MAX;
        return -EBADMSG;
    }
    size_t index = it->cur * j->chunk + it->pos;
    if (j->result_size)
        memcpy(out, (const unsigned char *)data + it->pos * j->result_size, j->result_size);
    if (++it->pos == count_of(j->n, j->chunk, it->cur))
        it->cur = SIZE_MAX;
    return (ssize_t)index;
}

/* Chunks not yet sent to a worker are cancelled, and those already sent
 * are waited for: none reads the caller's items after this returns. */
int weft_ppool_imap_free(weft_ppool_imap_t *it)
{
    if (!it)
        return -EINVAL;
    for (size_t i = 0; i < it->job->nchunks; i++)
        if (it->job->futures[i])
            weft_future_cancel(it->job->futures[i]);
    for (size_t i = 0; i < it->job->nchunks; i++)
        if (it->job->futures[i])
            weft_future_error(it->job->futures[i], WEFT_FOREVER);
    free_job(it->job);
    free(it->taken);
    free(it);
    return 0;
}
