/*
 * What the process files share: the handle, the child's side of a start,
 * the registry of functions that spawn and forkserver children call by
 * name, and the request that carries a start to such a child.
 */
#ifndef WEFT_PROCESS_INT_H
#define WEFT_PROCESS_INT_H

#include "base/park.h"
#include "process/give.h"
#include <weft/process.h>
#include <weft/sync.h>

#include <stdbool.h>
#include <stdint.h>

enum { WEFT__P_NEW, WEFT__P_RUNNING, WEFT__P_ENDED };

struct weft_process {
    weft_lock_t lock; /* state, reaping */
    int state;
    weft_start_method_t method;
    pid_t pid;
    int pidfd;
    /* forkserver: the server writes the exit code here when it reaps the
     * child; -1 for fork and spawn children, which this process reaps. */
    int statusfd;
    int exitcode;
    bool daemon, borrowed;
    /* A forked child keeps every handle the parent had, as fork() does:
     * set for the process pool's workers, whose tasks have no gifts. */
    bool inherit_all;
    char *name;
    const char *fn_name; /* registered name, for spawn and forkserver */
    weft_process_fn fn;
    void *arg;
    size_t len;
    int *keep; /* keep_fds and the gifts' descriptors, each once */
    size_t nkeep;
    struct weft__gift *gifts; /* give.c */
    size_t ngifts;
    weft_process_t *next, *prev; /* children: started, not yet reaped */
};

/* Everything a child needs to run: from the handle (fork) or decoded from
 * a request (spawn, forkserver). */
struct weft__child {
    weft_process_fn fn;
    const void *arg;
    size_t len;
    const char *name;
    bool daemon;
    const int *keep;
    size_t nkeep;
    const struct weft__gift *gifts;
    size_t ngifts;
    bool inherit_all;  /* fork only: see struct weft_process */
    pid_t parent;      /* the process that started it (weft_process_parent) */
    pid_t real_parent; /* the one that forked it: differs for forkserver */
    int lifeline;      /* a daemon's parent's lifeline (process.c), or -1 */
};

/* give.c: read opts' gifts into p, and build p's keep set (from keep_fds
 * too): 0 or -errno, having released what it made. */
int weft__gifts_take(weft_process_t *p, const weft_process_opts_t *o);
/* give.c: -EBADF if a gift's descriptor is no longer that object's. */
int weft__gifts_check(const weft_process_t *p);
void weft__gifts_release(weft_process_t *p);
/* give.c: in a child, before its function: a new epoch (unless it is to
 * inherit every handle), then the table of what it was given (claimed, or
 * rebuilt from descriptors). */
void weft__gifts_receive(const struct weft__gift *gifts, size_t n, bool inherit_all);
bool weft__give_kind_valid(int kind);

/* process.c: become the child and never return. */
_Noreturn void weft__child_run(const struct weft__child *c);
/* process.c: the lifeline a child of p gets (-1 unless a daemon), or
 * -errno. */
int weft__lifeline_for(const weft_process_t *p);
/* process.c: the pidfd of pid, or -errno. */
int weft__pidfd_open(pid_t pid);
/* process.c: take child pid (of this process) on as p's: its pidfd, or on
 * failure a kill and a reap and -errno. */
int weft__adopt_child(weft_process_t *p, pid_t pid);

/* boot.c: the registry. */
/* The name fn (any function, cast) is registered under; NULL: none, or
 * ambiguous. */
const char *weft__registered_name(void (*fn)(void));
#define WEFT__FN(fn) ((void (*)(void))(fn))
weft_process_fn weft__registered_fn(const char *name);
unsigned weft__registered_count(void);

/*
 * spawn.c: a request is a sealed memfd holding a header, the descriptors
 * to keep, the function's registered name, the process's name and the
 * argument bytes. encode returns the memfd (close-on-exec) or -errno;
 * decode reads one into *c (pointing into *mem, free() it) or fails with
 * -EBADMSG when anything in it does not add up.
 */
int weft__request_encode(const weft_process_t *p, int lifeline);
/* fd, moved above 0, 1 and 2 if it is one of them (the original closed),
 * or -errno: a descriptor that a child finds by its number, or that this
 * process keeps, must not pose as standard input or output, which a
 * process that has closed them hands out next (and boot.c takes no
 * request or socket below 3). A negative fd is returned as it is. */
int weft__fd_above_stdio(int fd);
int weft__request_decode(int fd, struct weft__child *c, void **mem);
/* The environment of a spawned helper: environ without any WEFT_CHILD,
 * plus WEFT_CHILD=<mode>:<fd>:<pid>:<registered count>. NULL: no memory;
 * one free() releases the array and that string, which lives behind it. */
char **weft__child_environ(char mode, int fd);
/* posix_spawn this executable with fds[0..n) inherited; the pid or -errno. */
pid_t weft__spawn_self(char **envp, const int *fds, size_t n);

/* spawn.c and forkserver.c: start p (locked, state NEW); fill pid, pidfd
 * and, for forkserver, statusfd. */
int weft__start_spawn(weft_process_t *p);
int weft__start_forkserver(weft_process_t *p);
/* forkserver.c: serve on socket fd for the client pid; never returns. */
_Noreturn void weft__forkserver_serve(int fd, pid_t client);

#endif /* WEFT_PROCESS_INT_H */
