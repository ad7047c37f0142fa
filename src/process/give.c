/*
 * Giving objects to a child (weft/process.h, opts.give): the parent's side
 * (new reads each handle into a record, start checks the descriptors are
 * still those objects) and the child's (the table that
 * weft_process_given_* reads).
 *
 * At new, each gift is described by its kind's file (give.h): its
 * descriptor and what else a rebuilt handle needs (a Pipe end's directions
 * and maximum, a segment's name), plus the descriptor's device and inode.
 * The descriptors join keep_fds in the keep set that every start method
 * already honours (the child has them at the same numbers). At start each
 * descriptor must still be the same open file: a handle closed since new
 * has a closed number, or one reused by something else, and either is
 * -EBADF, not a child that gets a stranger's descriptor.
 *
 * In the child, before its function runs (process.c), the epoch moves on
 * (give.h) and the table is filled: a forked child claims the parent's
 * handles, which it has copies of; a spawn or forkserver child decodes the
 * records from its request (spawn.c) and rebuilds a handle from each
 * descriptor, keeping the error if one fails for the call that asks.
 */
#include "process/give.h"
#include "process/process_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

unsigned weft__epoch;

static const struct kind {
    int (*describe)(void *obj, struct weft__gift *g);
    void (*claim)(void *obj); /* NULL: a Value's handle is its shared mapping */
    int (*rebuild)(const struct weft__gift *g, void **obj);
} kinds[] = {
    [WEFT_GIVE_KIND_CONN] = {weft__conn_describe, weft__conn_claim, weft__conn_rebuild},
    [WEFT_GIVE_KIND_MPQUEUE] = {weft__mpqueue_describe, weft__mpqueue_claim, weft__mpqueue_rebuild},
    [WEFT_GIVE_KIND_SHARED] = {weft__shared_describe, NULL, weft__shared_rebuild},
    [WEFT_GIVE_KIND_SHM] = {weft__shm_describe, weft__shm_claim, weft__shm_rebuild},
};

bool weft__give_kind_valid(int kind)
{
    return kind >= WEFT_GIVE_KIND_CONN && kind <= WEFT_GIVE_KIND_SHM;
}

/* fd's device and inode; -EBADF if it is not open. */
static int identify(int fd, dev_t *dev, ino_t *ino)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -EBADF;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

static int describe(const weft_give_t *give, struct weft__gift *g)
{
    if (!weft__give_kind_valid(give->kind) || !give->obj)
        return -EINVAL;
    *g = (struct weft__gift){.kind = give->kind, .obj = give->obj, .fd = -1};
    int rc = kinds[give->kind].describe(give->obj, g);
    return rc < 0 ? rc : identify(g->fd, &g->dev, &g->ino);
}

static bool has_fd(const int *fds, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

void weft__gifts_release(weft_process_t *p)
{
    for (size_t i = 0; i < p->ngifts; i++)
        free(p->gifts[i].name);
    free(p->gifts);
    free(p->keep);
    p->gifts = NULL;
    p->keep = NULL;
    p->ngifts = p->nkeep = 0;
}

/* Describe every gift and build the keep set (keep_fds and the gifts'
 * descriptors, each once). */
static int take(weft_process_t *p, const weft_process_opts_t *o)
{
    for (size_t i = 0; i < o->nkeep_fds; i++)
        if (!has_fd(p->keep, p->nkeep, o->keep_fds[i]))
            p->keep[p->nkeep++] = o->keep_fds[i];
    for (size_t i = 0; i < o->ngive; i++) {
        struct weft__gift *g = &p->gifts[i];
        int rc = describe(&o->give[i], g);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (p->gifts[k].fd == g->fd)
                return -EINVAL; /* given twice */
        if (!has_fd(p->keep, p->nkeep, g->fd)) {
            if (p->nkeep == WEFT_PROCESS_MAX_KEEP_FDS)
                return -EINVAL;
            p->keep[p->nkeep++] = g->fd;
        }
    }
    return 0;
}

int weft__gifts_take(weft_process_t *p, const weft_process_opts_t *o)
{
    if ((o->ngive && !o->give) || o->ngive > WEFT_PROCESS_MAX_KEEP_FDS)
        return -EINVAL;
    size_t room = o->nkeep_fds + o->ngive;
    p->keep = room ? weft__malloc(room * sizeof *p->keep) : NULL;
    p->gifts = o->ngive ? weft__calloc(o->ngive, sizeof *p->gifts) : NULL;
    p->ngifts = p->gifts ? o->ngive : 0; /* zeroed: release frees what take made */
    int rc = (room && !p->keep) || (o->ngive && !p->gifts) ? -ENOMEM : take(p, o);
    if (rc < 0)
        weft__gifts_release(p);
    return rc;
}

int weft__gifts_check(const weft_process_t *p)
{
    for (size_t i = 0; i < p->ngifts; i++) {
        dev_t dev;
        ino_t ino;
        if (identify(p->gifts[i].fd, &dev, &ino) < 0 || dev != p->gifts[i].dev ||
            ino != p->gifts[i].ino)
            return -EBADF;
    }
    return 0;
}

/* ---- the child ---- */

static struct given {
    int kind, error;
    void *obj;
} given[WEFT_PROCESS_MAX_KEEP_FDS];
static size_t ngiven;

void weft__gifts_receive(const struct weft__gift *gifts, size_t n, bool inherit_all)
{
    if (!inherit_all)
        weft__epoch++;
    for (size_t i = 0; i < n; i++) {
        const struct weft__gift *g = &gifts[i];
        const struct kind *k = &kinds[g->kind];
        given[i] = (struct given){g->kind, 0, g->obj};
        if (g->obj && k->claim)
            k->claim(g->obj);
        else if (!g->obj)
            given[i].error = k->rebuild(g, &given[i].obj);
    }
    ngiven = n;
}

/* The i-th object, if it is of this kind; out is not NULL. */
static int given_one(size_t i, int kind, void **out)
{
    if (i >= ngiven)
        return -EBADF;
    if (given[i].kind != kind)
        return -EINVAL;
    *out = given[i].obj;
    return given[i].error;
}

int weft_process_given_conn(size_t i, weft_conn_t **c)
{
    void *obj;
    int rc = c ? given_one(i, WEFT_GIVE_KIND_CONN, &obj) : -EINVAL;
    if (rc == 0)
        *c = obj;
    return rc;
}

int weft_process_given_mpqueue(size_t i, struct weft_mpqueue **q)
{
    void *obj;
    int rc = q ? given_one(i, WEFT_GIVE_KIND_MPQUEUE, &obj) : -EINVAL;
    if (rc == 0)
        *q = obj;
    return rc;
}

int weft_process_given_shared(size_t i, struct weft_shared **v)
{
    void *obj;
    int rc = v ? given_one(i, WEFT_GIVE_KIND_SHARED, &obj) : -EINVAL;
    if (rc == 0)
        *v = obj;
    return rc;
}

int weft_process_given_shm(size_t i, struct weft_shm **s)
{
    void *obj;
    int rc = s ? given_one(i, WEFT_GIVE_KIND_SHM, &obj) : -EINVAL;
    if (rc == 0)
        *s = obj;
    return rc;
}
