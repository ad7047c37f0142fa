/*
 * The spawn start method, and the request that carries a start to a
 * freshly executed child (spawn and forkserver alike).
 *
 * A spawn is posix_spawn of /proc/self/exe (the running executable, even
 * if its file has been replaced or removed since) with WEFT_CHILD in the
 * environment; glibc's posix_spawn clones with CLONE_VFORK, so the cost is
 * the exec, not a copy of the parent. The child boots in a constructor
 * (boot.c), reads its request and runs the function it names.
 *
 * The request travels in a memfd, not a pipe: the parent writes all of it
 * before the child exists, so no size makes the parent wait for the child
 * and a child that dies early breaks nothing. Layout (native byte order,
 * the same executable reads it):
 *
 *     struct head                 magic, daemon, nkeep, ngifts, parent,
 *                                 lifeline, lengths
 *     struct weft__gift[ngifts]   the objects given (give.h), as the parent
 *                                 has them, with obj and name NULL
 *     int32_t keep[nkeep]         descriptors to keep, at these numbers
 *     padding to 16 bytes
 *     arg bytes                   aligned, as a malloc()ed copy would be
 *     function name, NUL          its registered name
 *     process name, NUL
 *     gift names, NUL each        one per gift, "" for none
 *
 * decode checks that the lengths add up to the file's size exactly, that
 * every name ends where it says, that each gift is of a known kind and its
 * descriptor one to keep, and that the function is registered here.
 */
#include "process/process_int.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define REQUEST_MAGIC 0x52544657u /* "WFTR" */

struct head {
    uint32_t magic, daemon, nkeep, ngifts;
    int32_t parent, lifeline;
    uint64_t arg_len, fn_len, name_len, names_len;
};

_Static_assert(sizeof(struct head) % _Alignof(struct weft__gift) == 0, "gifts follow aligned");

static size_t keep_offset(size_t ngifts)
{
    return sizeof(struct head) + ngifts * sizeof(struct weft__gift);
}

static size_t arg_offset(size_t nkeep, size_t ngifts)
{
    return (keep_offset(ngifts) + nkeep * sizeof(int32_t) + 15) & ~(size_t)15;
}

/* The names of the gifts, one string each ("" for none). */
static size_t names_length(const weft_process_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->ngifts; i++)
        n += (p->gifts[i].name ? strlen(p->gifts[i].name) : 0) + 1;
    return n;
}

static void write_gifts(const weft_process_t *p, char *buf, char *names)
{
    for (size_t i = 0; i < p->ngifts; i++) {
        struct weft__gift g = p->gifts[i];
        size_t len = g.name ? strlen(g.name) + 1 : 1;
        memcpy(names, g.name ? g.name : "", len);
        names += len;
        g.obj = NULL; /* the child rebuilds it */
        g.name = NULL;
        memcpy(buf + keep_offset(i), &g, sizeof g);
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    for (const char *b = buf; len;) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int weft__fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int rc = moved < 0 ? -errno : moved;
    close(fd);
    return rc;
}

int weft__request_encode(const weft_process_t *p, int lifeline)
{
    size_t fn_len = strlen(p->fn_name) + 1, name_len = strlen(p->name) + 1;
    size_t names_len = names_length(p), off = arg_offset(p->nkeep, p->ngifts);
    size_t size = off + p->len + fn_len + name_len + names_len;
    char *buf = weft__calloc(1, size);
    if (!buf)
        return -ENOMEM;
    struct head h = {REQUEST_MAGIC,     p->daemon, (uint32_t)p->nkeep, (uint32_t)p->ngifts,
                     (int32_t)getpid(), lifeline,  (uint64_t)p->len,   fn_len,
                     name_len,          names_len};
    memcpy(buf, &h, sizeof h);
    for (size_t i = 0; i < p->nkeep; i++) {
        int32_t fd = p->keep[i];
        memcpy(buf + keep_offset(p->ngifts) + i * sizeof fd, &fd, sizeof fd);
    }
    if (p->len)
        memcpy(buf + off, p->arg, p->len);
    memcpy(buf + off + p->len, p->fn_name, fn_len);
    memcpy(buf + off + p->len + fn_len, p->name, name_len);
    write_gifts(p, buf, buf + off + p->len + fn_len + name_len);
    int fd = weft__sys.memfd_create("weft-request", MFD_CLOEXEC);
    fd = fd < 0 ? -errno : weft__fd_above_stdio(fd);
    int rc = fd < 0 ? fd : write_all(fd, buf, size);
    free(buf);
    if (rc < 0 && fd >= 0)
        close(fd);
    return rc < 0 ? rc : fd;
}

/* A string of len bytes (len >= 1) whose only NUL is its last byte. */
static bool whole_string(const char *s, uint64_t len)
{
    return len >= 1 && memchr(s, '\0', len) == s + len - 1;
}

/* Check the gifts of a request and point each at its name (NULL for "");
 * false if anything is off. */
static bool read_gifts(struct weft__gift *g, size_t n, const int32_t *keep, size_t nkeep,
                       char *names, uint64_t names_len)
{
    char *end = names + names_len;
    for (size_t i = 0; i < n; i++) {
        bool kept = false;
        for (size_t k = 0; k < nkeep; k++)
            kept |= keep[k] == g[i].fd;
        char *nul = names < end ? memchr(names, '\0', (size_t)(end - names)) : NULL;
        if (!kept || !weft__give_kind_valid(g[i].kind) || !nul)
            return false;
        g[i].obj = NULL;
        g[i].name = nul > names ? names : NULL;
        names = nul + 1;
    }
    return names == end;
}

static int read_request(int fd, void **mem, size_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (st.st_size < (off_t)sizeof(struct head))
        return -EBADMSG;
    *size = (size_t)st.st_size;
    char *buf = weft__malloc(*size);
    if (!buf)
        return -ENOMEM;
    for (size_t got = 0; got < *size;) {
        ssize_t n = pread(fd, buf + got, *size - got, (off_t)got);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            free(buf);
            return n < 0 ? -errno : -EBADMSG;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    *mem = buf;
    return 0;
}

/* Free a request that cannot be run; rc. */
static int refuse(void **mem, int rc)
{
    free(*mem);
    *mem = NULL;
    return rc;
}

int weft__request_decode(int fd, struct weft__child *c, void **mem)
{
    size_t size = 0;
    int rc = read_request(fd, mem, &size);
    if (rc < 0)
        return rc;
    char *buf = *mem;
    struct head h;
    memcpy(&h, buf, sizeof h);
    if (h.magic != REQUEST_MAGIC || h.nkeep > WEFT_PROCESS_MAX_KEEP_FDS ||
        h.ngifts > WEFT_PROCESS_MAX_KEEP_FDS)
        return refuse(mem, -EBADMSG);
    size_t off = arg_offset(h.nkeep, h.ngifts);
    if (off > size || h.arg_len > size || h.fn_len > size || h.name_len > size ||
        h.names_len > size || off + h.arg_len + h.fn_len + h.name_len + h.names_len != size)
        return refuse(mem, -EBADMSG);
    char *fn_name = buf + off + h.arg_len, *name = fn_name + h.fn_len;
    int32_t *keep = (int32_t *)(void *)(buf + keep_offset(h.ngifts)); /* int32_t is int here */
    struct weft__gift *gifts = (struct weft__gift *)(void *)(buf + sizeof h);
    if (!whole_string(fn_name, h.fn_len) || !whole_string(name, h.name_len) ||
        !read_gifts(gifts, h.ngifts, keep, h.nkeep, name + h.name_len, h.names_len))
        return refuse(mem, -EBADMSG);
    *c = (struct weft__child){
        .fn = weft__registered_fn(fn_name),
        .arg = h.arg_len ? buf + off : NULL,
        .len = h.arg_len,
        .name = name,
        .daemon = h.daemon != 0,
        .keep = keep,
        .nkeep = h.nkeep,
        .gifts = gifts,
        .ngifts = h.ngifts,
        .parent = h.parent,
        .real_parent = h.parent, /* the forkserver sets itself */
        .lifeline = h.lifeline,
    };
    return c->fn ? 0 : refuse(mem, -ENOENT);
}

char **weft__child_environ(char mode, int fd)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char var[96];
    int len = snprintf(var, sizeof var, "WEFT_CHILD=%c:%d:%ld:%u", mode, fd, (long)getpid(),
                       weft__registered_count());
    char **env = weft__malloc((n + 2) * sizeof *env + (size_t)len + 1);
    if (!env)
        return NULL;
    char *copy = (char *)(env + n + 2);
    memcpy(copy, var, (size_t)len + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "WEFT_CHILD=", 11) != 0)
            env[k++] = environ[i];
    env[k++] = copy;
    env[k] = NULL;
    return env;
}

pid_t weft__spawn_self(char **envp, const int *fds, size_t n)
{
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    /* dup2 of a descriptor onto itself clears its close-on-exec flag. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = posix_spawn_file_actions_adddup2(&fa, fds[i], fds[i]);
    char *argv[] = {program_invocation_name, NULL};
    pid_t pid = -1;
    if (rc == 0)
        rc = weft__sys.posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -rc : pid;
}

int weft__start_spawn(weft_process_t *p)
{
    int lifeline = weft__lifeline_for(p);
    int fd = lifeline < -1 ? lifeline : weft__request_encode(p, lifeline);
    if (fd < 0)
        return fd;
    char **env = weft__child_environ('s', fd);
    int fds[WEFT_PROCESS_MAX_KEEP_FDS + 2] = {fd, lifeline};
    size_t n = lifeline >= 0 ? 2 : 1;
    if (p->nkeep)
        memcpy(fds + n, p->keep, p->nkeep * sizeof *fds);
    pid_t pid = env ? weft__spawn_self(env, fds, n + p->nkeep) : -ENOMEM;
    free(env);
    close(fd);
    return pid < 0 ? (int)pid : weft__adopt_child(p, pid);
}
