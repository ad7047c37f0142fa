/*
 * weft/shm.h: memory shared between processes, after Python's
 * multiprocessing.shared_memory.SharedMemory and multiprocessing's Value
 * and Array.
 *
 *     Python                                   weft
 *     SharedMemory(create=True, size=n)        weft_shm_create(&s, NULL, n)  (anonymous)
 *     SharedMemory(name, create=True, size=n)  weft_shm_create(&s, "/name", n)
 *     SharedMemory(name)                       weft_shm_attach(&s, "/name")
 *     shm.buf, shm.size, shm.name              weft_shm_buf(s), weft_shm_size(s), weft_shm_name(s)
 *     shm.close(), shm.unlink()                weft_shm_close(s), weft_shm_unlink(s)
 *     Value('d', 0.0), Array('i', 10)          weft_shared_new(&v, sizeof(double)),
 *                                              weft_shared_new(&a, 10 * sizeof(int))
 *     v.value, v.get_lock()                    weft_shared_ptr(v), weft_shared_lock(v)
 *
 * Giving: a segment, a Value or an Array goes to a child with
 * weft_give_shm(s) or weft_give_shared(v) in opts.give, and the child
 * takes it with weft_process_given_shm / _shared (weft/process.h), under
 * every start method. A forked child also inherits the mappings of what
 * it was not given, as in Python, and can use those bytes; only their
 * descriptors are not its own (weft_shm_fd, weft_shm_unlink: -EBADF).
 *
 * Segments. An anonymous segment (name NULL) is a memfd: it has no name
 * anyone could guess or squat, and it disappears when the last process
 * holding it (mapped, or by descriptor) lets go, even if they all crash.
 * Give it to a child (above), or by hand pass weft_shm_fd in keep_fds and
 * attach with weft_shm_from_fd. A named
 * segment lives in /dev/shm: it is created with O_EXCL (an existing name,
 * perhaps planted by someone else, is -EEXIST, never opened) and mode 0600
 * (only this user may attach), and it outlives its creator until someone
 * calls weft_shm_unlink: unlink it as soon as every process has attached,
 * or a crash before that leaves it behind (as in Python, whose resource
 * tracker only covers its own processes). Prefer anonymous segments.
 *
 * Value and Array: a shared mapping holding a robust process-shared RLock
 * and the data. Give one to a child (above); only the process that made it
 * can, as only it holds the descriptor. By hand, a forked child uses the
 * handle as it is, and a spawn or forkserver child gets weft_shared_fd(v)
 * in keep_fds and attaches with weft_shared_from_fd. The RLock protects the data
 * the way Python's synchronized wrapper does; a process that dies holding
 * it is reported to the next acquirer (-EOWNERDEAD, weft/sync.h).
 */
#ifndef WEFT_SHM_H
#define WEFT_SHM_H

#include <weft/base.h>
#include <weft/sync.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_shm weft_shm_t;

/* size >= 1. name NULL: anonymous (memfd); else "/name" without further
 * slashes. Errors: -EINVAL, -EEXIST, -ENOMEM, -EACCES, -EMFILE. */
WEFT_API int weft_shm_create(weft_shm_t **s, const char *name, size_t size);
/* Attach a named segment. Errors: -EINVAL, -ENOENT, -EACCES, -ENOMEM. */
WEFT_API int weft_shm_attach(weft_shm_t **s, const char *name);
/* Attach an anonymous segment by its descriptor (kept by a child). The
 * handle takes the descriptor over. Errors: -EINVAL, -EBADF (not an open
 * descriptor), -ENOMEM. */
WEFT_API int weft_shm_from_fd(weft_shm_t **s, int fd);
WEFT_API void *weft_shm_buf(weft_shm_t *s);
WEFT_API size_t weft_shm_size(weft_shm_t *s);
/* The name, or NULL for an anonymous segment. */
WEFT_API const char *weft_shm_name(weft_shm_t *s);
/* The descriptor (for keep_fds); -EINVAL; -EBADF (a segment not given). */
WEFT_API int weft_shm_fd(weft_shm_t *s);
/* Unmap and release this process's handle. -EINVAL. */
WEFT_API int weft_shm_close(weft_shm_t *s);
/* Remove the name (the memory stays while mapped). -EINVAL (anonymous or
 * NULL), -ENOENT (already unlinked), -EBADF (a segment not given). */
WEFT_API int weft_shm_unlink(weft_shm_t *s);

/* Value / Array: size bytes of zeroed shared data with a robust shared
 * RLock (as Python's Value and Array carry an RLock by default; its owner
 * is named exactly, so a dead holder is noticed even after the kernel has
 * reused its thread id). Errors: -EINVAL (size 0), -ENOMEM. */
typedef struct weft_shared weft_shared_t;
WEFT_API int weft_shared_new(weft_shared_t **v, size_t size);
WEFT_API void *weft_shared_ptr(weft_shared_t *v);
WEFT_API weft_rlock_t *weft_shared_lock(weft_shared_t *v);
WEFT_API size_t weft_shared_size(weft_shared_t *v);
/* Unmap (in this process). -EINVAL. */
WEFT_API int weft_shared_free(weft_shared_t *v);
/* The descriptor to pass to a spawn or forkserver child, in the process
 * that made v (-EPERM elsewhere: a forked child uses the handle itself). */
WEFT_API int weft_shared_fd(weft_shared_t *v);
/* Attach by that descriptor, which is closed (the mapping keeps the
 * memory). Errors: -EINVAL (not a Value or Array), -EBADF (not an open
 * descriptor), -ENOMEM. */
WEFT_API int weft_shared_from_fd(weft_shared_t **v, int fd);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SHM_H */
