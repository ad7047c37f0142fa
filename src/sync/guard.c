/*
 * WEFT_GUARD's failure path (weft/sync.h). The statement form cannot skip
 * the code after it, and that code is written to run under the lock, so a
 * failed acquire (the lock-order checker's -EDEADLK for a lock the thread
 * holds, a shared lock whose owner died or that is unrecoverable) must not
 * be ignored: the program
 * stops with the site, as an assertion would. WEFT_GUARD_RC is the form for
 * callers that handle the error.
 */
#include "base/base.h"
#include <weft/sync.h>

#include <stdio.h>
#include <stdlib.h>

_Noreturn void weft_guard_failed(const weft_site_t *site, int error)
{
    fprintf(stderr, "weft: WEFT_GUARD at %s:%d (%s): %s\n", site ? site->file : "?",
            site ? site->line : 0, site ? site->func : "?", weft_strerror(error));
    weft__coverage_dump(); /* abort() would lose them */
    abort(); // GCOVR_EXCL_LINE: runs after the counters are written, so it is never counted
}
