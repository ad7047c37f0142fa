/* Error handling shared by the examples: a weft call that fails prints what
 * failed, with weft_strerror's description, and ends the program. */
#ifndef WEFT_EXAMPLE_CHECK_H
#define WEFT_EXAMPLE_CHECK_H

#include <weft/base.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHECK(call) check((call), #call)

static inline int check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", what, weft_strerror(rc));
        /* _exit, not exit: exit joins the threads and children still
         * running, as Python's does, and those an example started may be
         * waiting for the part of it that failed. */
        fflush(NULL);
        _exit(1);
    }
    return rc;
}

#endif
