/*
 * SharedMemory, Value and Array (weft/shm.h).
 *
 * A handle is a small heap struct (this process's view: descriptor,
 * mapping, name); the memory itself is a MAP_SHARED mapping of a memfd
 * (anonymous) or of a POSIX shared memory object (named, O_EXCL and 0600
 * at creation). Value and Array are a mapping of a memfd whose first
 * cache line holds the shared RLock, so that forked children see the same
 * lock and data; the handle itself lives in the mapping too, so a forked
 * child can use the parent's pointer as it is. The creator keeps the
 * memfd open for spawned children (weft_shared_fd); the mapping records
 * which process that is and the memfd's inode, so that only the creator,
 * never a forked child or a process that happens to get its pid later,
 * closes that descriptor.
 *
 * Giving (give.h): a segment travels as its descriptor and name, a Value
 * as its descriptor, which only the creator has. A SharedMemory handle a
 * forked child was not given is stale there: the inherited mapping still
 * works (memory is used by pointer, there is no call to refuse), but its
 * descriptor is not the child's, so weft_shm_fd and weft_shm_unlink are
 * -EBADF and close does not close the number.
 */
#include "base/base.h"
#include "process/give.h"
#include <weft/shm.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct weft_shm {
    int fd;
    unsigned epoch; /* give.h */
    void *buf;
    size_t size;
    char *name; /* NULL: anonymous */
};

/* "/name": one leading slash, no other, not empty, short enough. */
static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '/' && n > 1 && n < 250 && !strchr(name + 1, '/');
}

/* Map fd (size bytes) into a new handle; on failure closes fd. */
static int adopt(weft_shm_t **out, int fd, size_t size, const char *name)
{
    weft_shm_t *s = weft__calloc(1, sizeof *s);
    char *copy = name ? weft__strdup(name) : NULL;
    int rc = !s || (name && !copy) ? -ENOMEM : 0;
    void *buf = MAP_FAILED;
    if (rc == 0 &&
        (buf = weft__sys.mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
        rc = -errno;
    if (rc < 0) {
        free(s);
        free(copy);
        close(fd);
        return rc;
    }
    *s = (weft_shm_t){fd, weft__epoch, buf, size, copy};
    *out = s;
    return 0;
}

int weft_shm_create(weft_shm_t **s, const char *name, size_t size)
{
    if (!s || size == 0 || (name && !valid_name(name)) || size > (size_t)INT64_MAX)
        return -EINVAL;
    int fd = name ? shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                  : weft__sys.memfd_create("weft-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int rc = -errno;
        close(fd);
        if (name)
            shm_unlink(name);
        return rc;
    }
    int rc = adopt(s, fd, size, name);
    if (rc < 0 && name)
        shm_unlink(name);
    return rc;
}

static int attach_fd(weft_shm_t **s, int fd, const char *name)
{
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : st.st_size <= 0 ? -EINVAL : 0;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return adopt(s, fd, (size_t)st.st_size, name);
}

int weft_shm_attach(weft_shm_t **s, const char *name)
{
    if (!s || !name || !valid_name(name))
        return -EINVAL;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    return fd < 0 ? -errno : attach_fd(s, fd, name);
}

int weft_shm_from_fd(weft_shm_t **s, int fd)
{
    if (!s || fd < 0)
        return -EINVAL;
    return attach_fd(s, fd, NULL);
}

void *weft_shm_buf(weft_shm_t *s)
{
    return s ? s->buf : NULL;
}

size_t weft_shm_size(weft_shm_t *s)
{
    return s ? s->size : 0;
}

const char *weft_shm_name(weft_shm_t *s)
{
    return s ? s->name : NULL;
}

int weft_shm_fd(weft_shm_t *s)
{
    return !s ? -EINVAL : WEFT__MINE(s) ? s->fd : -EBADF;
}

int weft_shm_close(weft_shm_t *s)
{
    if (!s)
        return -EINVAL;
    munmap(s->buf, s->size);
    if (WEFT__MINE(s))
        close(s->fd);
    free(s->name);
    free(s);
    return 0;
}

int weft_shm_unlink(weft_shm_t *s)
{
    if (!s || !s->name)
        return -EINVAL;
    if (!WEFT__MINE(s))
        return -EBADF;
    return shm_unlink(s->name) < 0 ? -errno : 0;
}

int weft__shm_describe(void *obj, struct weft__gift *g)
{
    weft_shm_t *s = obj;
    g->fd = weft_shm_fd(s);
    if (g->fd < 0)
        return g->fd;
    if (s->name && !(g->name = weft__strdup(s->name)))
        return -ENOMEM;
    return 0;
}

void weft__shm_claim(void *s)
{
    ((weft_shm_t *)s)->epoch = weft__epoch;
}

int weft__shm_rebuild(const struct weft__gift *g, void **out)
{
    weft_shm_t *s = NULL;
    int rc = attach_fd(&s, g->fd, g->name);
    *out = s;
    return rc;
}

/* --- Value and Array --------------------------------------------------------- */

#define SHARED_MAGIC 0x56484657u /* "WFHV" */

struct weft_shared {
    weft_rlock_t lock;
    uint32_t magic;
    size_t size, mapped;
    pid_t creator; /* holds fd */
    int fd;
    ino_t ino;
    _Alignas(WEFT__CACHE_LINE) unsigned char data[];
};

static bool is_creator(const weft_shared_t *v)
{
    struct stat st;
    return v->creator == getpid() && fstat(v->fd, &st) == 0 && st.st_ino == v->ino;
}

int weft_shared_new(weft_shared_t **out, size_t size)
{
    if (!out || size == 0 || size > SIZE_MAX / 2 - sizeof(weft_shared_t))
        return -EINVAL;
    size_t mapped = sizeof(weft_shared_t) + size;
    int fd = weft__sys.memfd_create("weft-shared", MFD_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return -errno;
    weft_shared_t *v = ftruncate(fd, (off_t)mapped) == 0 && fstat(fd, &st) == 0
                           ? weft__sys.mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                           : MAP_FAILED;
    if (v == MAP_FAILED) {
        close(fd);
        return -ENOMEM;
    }
    weft_rlock_init(&v->lock, WEFT_SHARED);
    v->size = size;
    v->mapped = mapped;
    v->creator = getpid();
    v->fd = fd;
    v->ino = st.st_ino;
    v->magic = SHARED_MAGIC;
    *out = v;
    return 0;
}

int weft_shared_fd(weft_shared_t *v)
{
    if (!v)
        return -EINVAL;
    return is_creator(v) ? v->fd : -EPERM;
}

int weft_shared_from_fd(weft_shared_t **out, int fd)
{
    struct stat st;
    if (!out || fd < 0)
        return -EINVAL;
    if (fstat(fd, &st) < 0)
        return -EBADF;
    if (st.st_size < (off_t)sizeof(weft_shared_t))
        return -EINVAL;
    weft_shared_t *v =
        weft__sys.mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (v == MAP_FAILED)
        return -ENOMEM;
    if (v->magic != SHARED_MAGIC || v->mapped != (size_t)st.st_size) {
        munmap(v, (size_t)st.st_size);
        return -EINVAL;
    }
    close(fd); /* the mapping keeps the memory */
    *out = v;
    return 0;
}

void *weft_shared_ptr(weft_shared_t *v)
{
    return v ? v->data : NULL;
}

weft_rlock_t *weft_shared_lock(weft_shared_t *v)
{
    return v ? &v->lock : NULL;
}

size_t weft_shared_size(weft_shared_t *v)
{
    return v ? v->size : 0;
}

int weft_shared_free(weft_shared_t *v)
{
    if (!v)
        return -EINVAL;
    if (is_creator(v))
        close(v->fd);
    munmap(v, v->mapped);
    return 0;
}

int weft__shared_describe(void *v, struct weft__gift *g)
{
    g->fd = weft_shared_fd(v);
    return g->fd < 0 ? g->fd : 0;
}

int weft__shared_rebuild(const struct weft__gift *g, void **out)
{
    weft_shared_t *v = NULL;
    int rc = weft_shared_from_fd(&v, g->fd);
    *out = v;
    return rc;
}
