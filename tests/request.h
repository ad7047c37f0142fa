/* Test helpers for spawn requests (src/process/spawn.c): a process's request
 * as bytes, to decode and to spoil, and a memfd holding given bytes. */
#ifndef WEFT_TESTS_REQUEST_H
#define WEFT_TESTS_REQUEST_H

#include "process/process_int.h"
#include "wt.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A memfd holding data[0..len), as a spawned child would find its request. */
static inline int wt_request_fd(const void *data, size_t len)
{
    int fd = memfd_create("weft-request", MFD_CLOEXEC);
    WT_CHECK(fd >= 0);
    WT_EQ(write(fd, data, len), (ssize_t)len);
    return fd;
}

/* Encode p's request: its memfd in *fd, and a malloc'd copy of its bytes
 * (*size of them). */
static inline char *wt_request_bytes(weft_process_t *p, int *fd, size_t *size)
{
    *fd = weft__request_encode(p, -1);
    WT_CHECK(*fd >= 0);
    struct stat st;
    WT_EQ(fstat(*fd, &st), 0);
    *size = (size_t)st.st_size;
    char *bytes = malloc(*size);
    WT_CHECK(bytes != NULL);
    WT_EQ(pread(*fd, bytes, *size, 0), (ssize_t)*size);
    return bytes;
}

#endif /* WEFT_TESTS_REQUEST_H */
