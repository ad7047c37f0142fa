/*
 * Error names. weft returns negative errno values plus a few codes of its own
 * (weft/base.h, below -4096). Both lists below are X-macros so that the enum,
 * the names and the descriptions cannot drift apart; the errno list holds the
 * codes weft documents as results, described in weft's own terms rather than
 * libc's (strerror's "Resource temporarily unavailable" says nothing about a
 * queue being empty). Every code a header documents or a source file returns
 * is on it (test_base checks this against the headers and sources); other
 * codes, which weft can only pass on from the system, get the C library's
 * description, taken from its thread-safe table (glibc's strerrordesc_np,
 * not strerror, which may format into a shared buffer).
 */
#include "base/base.h"

#include <string.h>

#define WEFT__ERRNO_CODES(X)                                                              \
    X(EINVAL, "invalid argument")                                                         \
    X(ETIMEDOUT, "timed out: the deadline passed")                                        \
    X(EAGAIN, "would block: not available right now (empty, full or held)")               \
    X(EPERM, "not permitted in this state (not started, already started, not the owner)") \
    X(EDEADLK, "deadlock: the caller would wait for itself")                              \
    X(ECANCELED, "cancelled")                                                             \
    X(ENOMEM, "out of memory")                                                            \
    X(EOVERFLOW, "overflow: a count would exceed its bound")                              \
    X(EOWNERDEAD, "owner died: the previous holder died holding the lock")                \
    X(ENOTRECOVERABLE, "not recoverable: the protected state was never made consistent")  \
    X(EBUSY, "busy: still in use")                                                        \
    X(EPIPE, "broken pipe: the peer has closed")                                          \
    X(EINTR, "interrupted by a signal")                                                   \
    X(ESRCH, "no such thread or process")                                                 \
    X(ENOSYS, "not supported on this system")                                             \
    X(ENOTSUP, "not supported for this kind of object")                                   \
    X(EBADF, "bad descriptor: not open, or not usable for this")                          \
    X(EBADMSG, "bad message: the data read does not add up")                              \
    X(EMSGSIZE, "message too long for the other end")                                     \
    X(ECONNRESET, "connection reset: the peer went away mid-message")                     \
    X(EMFILE, "too many open files in this process")                                      \
    X(ENFILE, "too many open files in the system")                                        \
    X(ENOENT, "no such file or name")                                                     \
    X(EEXIST, "already exists")                                                           \
    X(EACCES, "permission denied")                                                        \
    X(ECONNREFUSED, "connection refused: nothing listens there")                          \
    X(EADDRINUSE, "address in use: another socket is bound to it")                        \
    X(ENAMETOOLONG, "name too long for its place (a Unix socket's path)")                 \
    X(EIO, "input/output error (a name resolver that failed)")

/* code is negative (INT_MIN included, which has no positive twin). */
static const char *system_description(int code)
{
    const char *s = NULL;
    if (code > -4096) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
        s = strerrordesc_np(-code);
#else
        s = strerror(-code); /* musl's is a static table too */
#endif
    }
    return s ? s : "unknown error";
}

const char *weft_strerror(int code)
{
    if (code > 0)
        code = -code;
    switch (code) {
    case 0:
        return "success";
#define WEFT__ERRNO_CASE(name, text) \
    case -name:                      \
        return #name ": " text;
        WEFT__ERRNO_CODES(WEFT__ERRNO_CASE)
#undef WEFT__ERRNO_CASE
#define WEFT__OWN_CASE(name, value, text) \
    case value:                           \
        return #name ": " text;
        WEFT_ERRORS(WEFT__OWN_CASE)
#undef WEFT__OWN_CASE
    default:
        return system_description(code);
    }
}

int weft_version(void)
{
    return WEFT_VERSION_MAJOR * 10000 + WEFT_VERSION_MINOR * 100 + WEFT_VERSION_PATCH;
}
