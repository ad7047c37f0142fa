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
 *     struct head                 magic, daemon, nkeep, parent, lifeline,
 *                                 lengths
 *     int32_t keep[nkeep]         descriptors to keep, at these numbers
 *     padding to 16 bytes
 *     arg bytes                   aligned, as a malloc()ed copy would be
 *     function name, NUL          its registered name
 *     process name, NUL
 *
 * decode checks that the lengths add up to the file's size exactly, that
 * both names end where they say, and that the function is registered here.
 */
#include "process/process_int.h"

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
    uint32_t magic, daemon, nkeep;
    int32_t parent, lifeline;
    uint64_t arg_len, fn_len, name_len;
};

static size_t arg_offset(size_t nkeep)
{
    return (sizeof(struct head) + nkeep * sizeof(int32_t) + 15) & ~(size_t)15;
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

int weft__request_encode(const weft_process_t *p, int lifeline)
{
    size_t fn_len = strlen(p->fn_name) + 1, name_len = strlen(p->name) + 1;
    size_t off = arg_offset(p->nkeep), size = off + p->len + fn_len + name_len;
    char *buf = weft__calloc(1, size);
    if (!buf)
        return -ENOMEM;
    struct head h = {
        REQUEST_MAGIC, p->daemon, (uint32_t)p->nkeep, (int32_t)getpid(), lifeline, (uint64_t)p->len,
        fn_len,        name_len};
    memcpy(buf, &h, sizeof h);
    for (size_t i = 0; i < p->nkeep; i++) {
        int32_t fd = p->keep[i];
        memcpy(buf + sizeof h + i * sizeof fd, &fd, sizeof fd);
    }
    if (p->len)
        memcpy(buf + off, p->arg, p->len);
    memcpy(buf + off + p->len, p->fn_name, fn_len);
    memcpy(buf + off + p->len + fn_len, p->name, name_len);
    int fd = memfd_create("weft-request", MFD_CLOEXEC);
    int rc = fd < 0 ? -errno : write_all(fd, buf, size);
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

int weft__request_decode(int fd, struct weft__child *c, void **mem)
{
    size_t size = 0;
    int rc = read_request(fd, mem, &size);
    if (rc < 0)
        return rc;
    char *buf = *mem;
    struct head h;
    memcpy(&h, buf, sizeof h);
    size_t off = arg_offset(h.nkeep <= WEFT_PROCESS_MAX_KEEP_FDS ? h.nkeep : 0);
    bool sane = h.magic == REQUEST_MAGIC && h.nkeep <= WEFT_PROCESS_MAX_KEEP_FDS &&
                h.arg_len <= size && h.fn_len <= size && h.name_len <= size &&
                off + h.arg_len + h.fn_len + h.name_len == size;
    const char *fn_name = buf + off + h.arg_len, *name = fn_name + h.fn_len;
    if (!sane || !whole_string(fn_name, h.fn_len) || !whole_string(name, h.name_len)) {
        free(buf);
        *mem = NULL;
        return -EBADMSG;
    }
    int32_t *keep = (int32_t *)(void *)(buf + sizeof h); /* int32_t is int on Linux */
    *c = (struct weft__child){
        .fn = weft__registered_fn(fn_name),
        .arg = h.arg_len ? buf + off : NULL,
        .len = h.arg_len,
        .name = name,
        .daemon = h.daemon != 0,
        .keep = keep,
        .nkeep = h.nkeep,
        .parent = h.parent,
        .real_parent = h.parent, /* the forkserver sets itself */
        .lifeline = h.lifeline,
    };
    if (!c->fn) {
        free(buf);
        *mem = NULL;
        return -ENOENT;
    }
    return 0;
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
        rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
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
