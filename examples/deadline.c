/*
 * A task group under a deadline (asyncio.TaskGroup inside asyncio.timeout):
 * five "requests" of different lengths start together; the ones still
 * running when the deadline passes are cancelled, see -ECANCELED from the
 * call they were waiting in, and clean up. Leaving the group's scope waits
 * for all of them, so no task outlives it, and the timeout scope reports
 * -ETIMEDOUT.
 */
#include "check.h"

#include <weft/async.h>

#include <stdint.h>

static const double lengths[] = {0.02, 0.05, 0.3, 0.08, 0.5};
enum { REQUESTS = sizeof lengths / sizeof lengths[0] };
#define DEADLINE 0.1

static void *request(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = weft_co_sleep(lengths[i]); /* the request's waiting */
    if (rc == -ECANCELED)
        printf("  request %d (%.2f s): cancelled at the deadline, cleaning up\n", i, lengths[i]);
    else
        printf("  request %d (%.2f s): done\n", i, lengths[i]);
    return NULL;
}

static void *client(void *arg)
{
    (void)arg;
    int timeout_rc, group_rc;
    double start = weft_monotonic();
    WEFT_TIMEOUT(DEADLINE, &timeout_rc)
    {
        WEFT_CO_GROUP(g, &group_rc)
        {
            for (intptr_t i = 0; i < REQUESTS; i++)
                CHECK(weft_co_group_spawn(g, NULL, request, (void *)i, NULL));
        }
    }
    printf("after %.2f s: the group says \"%s\", the timeout says \"%s\"\n",
           weft_monotonic() - start, weft_strerror(group_rc), weft_strerror(timeout_rc));
    return timeout_rc == -ETIMEDOUT ? NULL : weft_co_fail(-EPROTO);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%d requests, a deadline of %.2f s:\n", REQUESTS, DEADLINE);
    return weft_run(client, NULL, NULL, NULL) == 0 ? 0 : 1;
}
