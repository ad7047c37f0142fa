/* Test helpers for birth ids (src/base/tid.c): make this process name
 * threads by their start times, as on a kernel without pidfds, whatever the
 * kernel it runs on. */
#ifndef WEFT_TESTS_BIRTH_H
#define WEFT_TESTS_BIRTH_H

#include "base/base.h"
#include "wt.h"

#include <errno.h>

/* Set in a birth id that is a start time (clock ticks), not a pidfs inode. */
#define WT_TICKS_KIND (1ull << 63)

static inline int wt_no_pidfd_open(pid_t pid, unsigned flags)
{
    (void)pid, (void)flags;
    errno = ENOSYS;
    return -1;
}

/* A pidfd_open that fails at the first look decides the process's kind of
 * birth ids for good; children forked later inherit the decision. Call
 * before anything in the process has asked for a birth id. */
static inline void wt_birth_by_start_time(void)
{
    weft__sys.pidfd_open = wt_no_pidfd_open;
    uint64_t me = weft__birth();
    weft__sys_reset();
    if (!(me & WT_TICKS_KIND))
        wt_fail(__FILE__, __LINE__, "birth ids were decided before the case began", NULL);
}

#endif
