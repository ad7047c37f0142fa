/*
 * What giving an object to a child (opts.give, weft/process.h) needs from
 * the files of the objects: the record a gift travels as, the epoch that
 * says which handles a process may use, and per kind a way to describe a
 * handle, to claim an inherited one and to rebuild one from a record.
 *
 * The epoch. Pipe ends, queues and SharedMemory handles record the epoch
 * of the process they were made or rebuilt in. A started child moves to a
 * new epoch before its function runs and claims the handles it was given
 * (a forked child's copies of the parent's handles), so that every other
 * handle a fork copied into it is stale: using one is -EBADF, and closing
 * one releases its memory but never closes the descriptor number, which
 * the child closed and may have reused since. A process forked by other
 * means (fork() itself) keeps its epoch and so, as in Python, inherits
 * every handle. The epoch changes only in a child before its function
 * runs, single-threaded, so reading it needs no synchronization.
 */
#ifndef WEFT_PROCESS_GIVE_H
#define WEFT_PROCESS_GIVE_H

#include <weft/process.h>

#include <stdint.h>
#include <sys/types.h>

extern unsigned weft__epoch;

/* A handle of this process's, not one a fork left it without giving. */
#define WEFT__MINE(h) ((h)->epoch == weft__epoch)

/* One object given: what the parent knew at weft_process_new, or what a
 * spawned child decoded from its request. */
struct weft__gift {
    int kind;     /* weft_give_kind_t */
    void *obj;    /* the giver's handle, which a forked child uses as its own;
                   NULL in a spawned child, which rebuilds one from fd */
    int fd;       /* kept in the child at this number */
    uint32_t can; /* a Pipe end's directions */
    uint64_t max; /* a Pipe end's largest message */
    char *name;   /* a named SharedMemory's name, or NULL */
    dev_t dev;    /* what fd was at new, for start to check it still is */
    ino_t ino;
};

/* Per kind (pipe.c, mpqueue.c, shm.c): describe fills fd (and what else
 * the kind needs, not dev and ino) or fails with -errno (-EBADF: a stale
 * handle); claim makes a forked child's copy of a given handle its own;
 * rebuild makes a handle from a record whose descriptor this process
 * holds, taking the descriptor over. */
int weft__conn_describe(void *c, struct weft__gift *g);
void weft__conn_claim(void *c);
int weft__conn_rebuild(const struct weft__gift *g, void **c);
int weft__mpqueue_describe(void *q, struct weft__gift *g);
void weft__mpqueue_claim(void *q);
int weft__mpqueue_rebuild(const struct weft__gift *g, void **q);
int weft__shm_describe(void *s, struct weft__gift *g);
void weft__shm_claim(void *s);
int weft__shm_rebuild(const struct weft__gift *g, void **s);
int weft__shared_describe(void *v, struct weft__gift *g);
int weft__shared_rebuild(const struct weft__gift *g, void **v);

#endif /* WEFT_PROCESS_GIVE_H */
