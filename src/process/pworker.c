/*
 * The process pool's worker (weft/ppool.h): a process that takes tasks
 * from its in-ring, runs them and puts their results in its out-ring.
 *
 * It maps the pool's memfd, runs the initializer, and loops: wait for a
 * task (a short spin, then a futex sleep announced in `asleep`), mark it
 * begun (started_ns, then started: the parent reads started to tell which
 * task a dead worker was running), run it with its argument read in place,
 * publish the result (waiting for room if the parent is behind), drop the
 * task from the in-ring and ring the doorbell. A STOP task, or
 * maxtasksperchild tasks, end the loop and the process.
 *
 * A function arrives as a pointer under fork (the worker is a copy of the
 * parent, so the pointer is valid) and by registered name under spawn and
 * forkserver; the last name looked up is remembered.
 */
#include "process/ppool_int.h"
#include "process/process_int.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* How long a worker looks for its next task before it sleeps: a pool fed
 * one task at a time hands the next over without a system call. */
#define SPIN_NS 30000

static void *next_task(struct weft__pslot *slot, uint32_t *len)
{
    void *m = weft__ring_peek(&slot->in, len);
    for (int64_t end = weft__now_ns() + SPIN_NS; !m && weft__now_ns() < end;) {
        for (int i = 0; i < 64 && !m; i++) {
            weft__cpu_relax();
            m = weft__ring_peek(&slot->in, len);
        }
    }
    while (!m) {
        uint32_t seq = atomic_load(&slot->task_seq);
        atomic_store(&slot->asleep, 1);
        weft__fence(); /* the parent bumps task_seq, then reads asleep */
        if ((m = weft__ring_peek(&slot->in, len)) == NULL)
            weft__park(&slot->task_seq, seq, WEFT__NEVER, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
        atomic_store(&slot->asleep, 0);
        if (!m)
            m = weft__ring_peek(&slot->in, len);
    }
    return m;
}

static void ring_doorbell(struct weft__ppage *page, int eventfd)
{
    atomic_fetch_add(&page->results_seq, 1); /* a full barrier before the reads */
    if (atomic_load(&page->collectors))
        weft__unpark(&page->results_seq, INT32_MAX, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
    if (atomic_load(&page->manager_listening)) {
        uint64_t one = 1;
        ssize_t n = write(eventfd, &one, sizeof one);
        (void)n; /* a full counter still wakes the reader */
    }
}

static void post_result(struct weft__pslot *slot, struct weft__ppage *page, int eventfd,
                        const struct weft__presult_hdr *h, const void *data)
{
    while (!weft__ring_put(&slot->out, h, sizeof *h, data, h->len)) {
        uint32_t seq = atomic_load(&slot->room_seq);
        atomic_store(&slot->wants_room, 1);
        ring_doorbell(page, eventfd); /* the parent collects, then bumps room_seq */
        if (!weft__ring_put(&slot->out, h, sizeof *h, data, h->len))
            weft__park(&slot->room_seq, seq, WEFT__NEVER, WEFT__WAIT_PROCESS | WEFT__PARK_SHARED);
        else
            break;
    }
    atomic_store(&slot->wants_room, 0);
}

struct resolver {
    bool by_name;
    char last[WEFT__PNAME_MAX];
    weft_ptask_fn fn;
};

static weft_ptask_fn resolve(struct resolver *r, const struct weft__ptask_hdr *h, const char *name)
{
    if (!r->by_name)
        return (weft_ptask_fn)(uintptr_t)h->fnptr;
    if (h->name_len == 0 || h->name_len > sizeof r->last || name[h->name_len - 1] != '\0')
        return NULL;
    if (strcmp(r->last, name) != 0) {
        r->fn = (weft_ptask_fn)(void (*)(void))weft__registered_fn(name);
        memcpy(r->last, name, h->name_len);
    }
    return r->fn;
}

/* Run one task into out; the result header's error and length. */
static void run(weft_ptask_fn fn, const struct weft__ptask_hdr *h, const unsigned char *arg,
                unsigned char *out, uint64_t cap, struct weft__presult_hdr *res)
{
    res->id = h->id;
    res->error = 0;
    res->len = 0;
    if (!fn) {
        res->error = -ENOENT;
        return;
    }
    if (h->kind == WEFT__PT_CALL) {
        ssize_t n = fn(arg, h->arg_len, out, cap);
        res->error = n < 0 ? (int32_t)n : n > (ssize_t)cap ? -EMSGSIZE : 0;
        res->len = res->error ? 0 : (uint32_t)n;
        return;
    }
    for (uint32_t i = 0; i < h->count && !res->error; i++) {
        unsigned char *o = out + (size_t)i * h->result_size;
        ssize_t n = fn(arg + (size_t)i * h->item_size, h->item_size, o, h->result_size);
        if (n < 0 || n > (ssize_t)h->result_size)
            res->error = n < 0 ? (int32_t)n : -EMSGSIZE;
        else
            memset(o + n, 0, h->result_size - (size_t)n);
    }
    res->len = res->error ? 0 : h->count * h->result_size;
}

static int initialize(const struct weft__pworker_arg *a)
{
    if (!a->has_init)
        return 0;
    weft_process_fn init =
        a->by_name ? weft__registered_fn(a->init_name) : (weft_process_fn)(uintptr_t)a->init_fnptr;
    return init ? init(a->initarg_len ? (const char *)(a + 1) : NULL, a->initarg_len) : -ENOENT;
}

int weft__pworker_main(const void *argp, size_t len)
{
    const struct weft__pworker_arg *a = argp;
    if (len < sizeof *a || len != sizeof *a + a->initarg_len)
        return 2;
    unsigned char *map =
        weft__sys.mmap(NULL, a->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->memfd, 0);
    unsigned char *out = malloc(a->max_result ? a->max_result : 1);
    if (map == MAP_FAILED || !out)
        return 2;
    struct weft__ppage *page = (struct weft__ppage *)map;
    struct weft__pslot *slot = (struct weft__pslot *)(map + a->slot_off);
    if (initialize(a) != 0) {
        atomic_store(&slot->init_failed, 1);
        return 1;
    }
    struct resolver r = {.by_name = a->by_name != 0};
    for (uint32_t done = 0; !a->maxtasks || done < a->maxtasks;) {
        uint32_t mlen;
        unsigned char *m = next_task(slot, &mlen);
        struct weft__ptask_hdr h;
        memcpy(&h, m, sizeof h);
        if (h.kind == WEFT__PT_STOP)
            break;
        uint32_t posted = WEFT__PT_POSTED;
        if (!atomic_compare_exchange_strong(weft__ptask_claim(m), &posted, WEFT__PT_TAKEN)) {
            weft__ring_pop(&slot->in, mlen); /* the parent gave it to another worker */
            continue;
        }
        const char *name = (const char *)m + sizeof h;
        atomic_store(&slot->started_ns, weft__now_ns());
        atomic_store(&slot->running_id, h.id);
        atomic_fetch_add(&slot->started, 1); /* after the two: the parent reads it first */
        struct weft__presult_hdr res;
        run(resolve(&r, &h, name), &h, m + sizeof h + h.name_len, out, a->max_result, &res);
        post_result(slot, page, a->eventfd, &res, out);
        weft__ring_pop(&slot->in, mlen);
        ring_doorbell(page, a->eventfd);
        done++;
    }
    return 0;
}
WEFT_PROCESS_REGISTER(weft__pworker_main);
