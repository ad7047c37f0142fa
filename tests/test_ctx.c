/*
 * Contexts and their stacks (src/async/ctx.c, stack.c): what a switch keeps,
 * what it passes, where a context may resume, and what a stack's guard does.
 */
#include "wt.h"

#include "async/ctx.h"
#include "async/stack.h"

#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

enum { STACK = 64 * 1024 };

static struct weft__ctx main_ctx, ping_ctx;

/* Counts back every value it is sent, plus one, until sent NULL. */
static struct weft__ctx *echo(void *arg, void *data)
{
    WT_CHECK(arg == &ping_ctx);
    while (data) {
        intptr_t v = (intptr_t)data;
        data = weft__ctx_switch(&ping_ctx, &main_ctx, (void *)(v + 1));
    }
    weft__ctx_exit(&ping_ctx, &main_ctx, (void *)-1);
}

static void map_stack(struct weft__stack *s)
{
    WT_EQ(weft__stack_map(s, STACK), 0);
    weft__ctx_unpoison(weft__stack_lo(s), weft__stack_size(s));
}

static void drop_stack(struct weft__ctx *c, struct weft__stack *s)
{
    weft__ctx_release(c);
    weft__ctx_unpoison(weft__stack_lo(s), weft__stack_size(s));
    weft__stack_unmap(s);
}

WT_CASE(a_switch_passes_data_both_ways_until_the_context_exits)
{
    struct weft__stack s;
    map_stack(&s);
    weft__ctx_self(&main_ctx);
    WT_EQ(weft__ctx_make(&ping_ctx, weft__stack_lo(&s), weft__stack_size(&s), echo, &ping_ctx), 0);
    for (intptr_t i = 1; i <= 1000; i++)
        WT_EQ((intptr_t)weft__ctx_switch(&main_ctx, &ping_ctx, (void *)i), i + 1);
    WT_EQ((intptr_t)weft__ctx_switch(&main_ctx, &ping_ctx, NULL), -1);
    drop_stack(&ping_ctx, &s);
}

/* Many values live across the switch: the compiler keeps them in the
 * callee-saved registers, which the other side overwrites with its own. */
static struct weft__ctx a_ctx, b_ctx;
static volatile uint64_t seed = 0x9e3779b97f4a7c15u;

static uint64_t mix(uint64_t *v, int n, uint64_t x)
{
    for (int i = 0; i < n; i++)
        x = (x ^ v[i]) * 0x100000001b3u;
    return x;
}

enum { ROUNDS = 100 };

static struct weft__ctx *clobberer(void *arg, void *data)
{
    (void)arg;
    (void)data;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t r0 = seed * 3, r1 = r0 * 5, r2 = r1 * 7, r3 = r2 * 11, r4 = r3 * 13, r5 = r4 * 17;
        fesetround(FE_DOWNWARD);
        weft__ctx_switch(&b_ctx, &a_ctx, NULL);
        WT_EQ(fegetround(), FE_DOWNWARD);
        uint64_t v[6] = {r0, r1, r2, r3, r4, r5};
        seed = mix(v, 6, seed);
    }
    return &a_ctx; /* resumed once more than the test switches: never */
}

WT_CASE(callee_saved_registers_and_rounding_mode_survive_a_switch)
{
    struct weft__stack s;
    map_stack(&s);
    weft__ctx_self(&a_ctx);
    WT_EQ(weft__ctx_make(&b_ctx, weft__stack_lo(&s), weft__stack_size(&s), clobberer, NULL), 0);
    fesetround(FE_UPWARD);
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t x0 = seed + 1, x1 = x0 * 3 + 1, x2 = x1 * 3 + 1, x3 = x2 * 3 + 1, x4 = x3 * 3 + 1,
                 x5 = x4 * 3 + 1;
        weft__ctx_switch(&a_ctx, &b_ctx, NULL);
        WT_EQ(fegetround(), FE_UPWARD);
        WT_CHECK(x1 == x0 * 3 + 1 && x2 == x1 * 3 + 1 && x3 == x2 * 3 + 1);
        WT_CHECK(x4 == x3 * 3 + 1 && x5 == x4 * 3 + 1);
    }
    fesetround(FE_TONEAREST);
    drop_stack(&b_ctx, &s);
}

/* A new context starts with the default rounding, an aligned stack, and
 * can call what needs alignment (printf's floating point). */
static int fresh_rounding;
static uintptr_t fresh_frame;
static char fresh_text[32];

static struct weft__ctx *fresh(void *arg, void *data)
{
    (void)arg;
    (void)data;
    fresh_rounding = fegetround();
    fresh_frame = (uintptr_t)__builtin_frame_address(0);
    snprintf(fresh_text, sizeof fresh_text, "%.3f %Lf", 2.5, (long double)1.25);
    return &a_ctx;
}

WT_CASE(a_new_context_starts_aligned_with_the_default_floating_point_controls)
{
    struct weft__stack s;
    map_stack(&s);
    weft__ctx_self(&a_ctx);
    WT_EQ(weft__ctx_make(&b_ctx, weft__stack_lo(&s), weft__stack_size(&s), fresh, NULL), 0);
    fesetround(FE_UPWARD);
    weft__ctx_switch(&a_ctx, &b_ctx, NULL);
    fesetround(FE_TONEAREST);
    WT_EQ(fresh_rounding, FE_TONEAREST);
    WT_EQ(fresh_frame % 16, 0);
    WT_CHECK(fresh_frame > (uintptr_t)weft__stack_lo(&s));
    WT_CHECK(fresh_frame < (uintptr_t)weft__stack_lo(&s) + weft__stack_size(&s));
    WT_CHECK(strcmp(fresh_text, "2.500 1.250000") == 0);
    drop_stack(&b_ctx, &s);
}

/* A context's function that returns ends it: the context it names resumes
 * with NULL, its registers as it left them, whether it was suspended by a
 * switch or is new (c3 ends into c2, which c1 entered new and which ends
 * into the thread). */
static struct weft__ctx c1, c2, c3;
static void *c2_got = (void *)1;

static struct weft__ctx *ends_into_c2(void *arg, void *data)
{
    (void)arg;
    WT_CHECK(data == (void *)3);
    return &c2;
}

static struct weft__ctx *starts_c3(void *arg, void *data)
{
    (void)arg;
    WT_CHECK(data == (void *)2);
    uint64_t x0 = seed + 1, x1 = x0 * 3 + 1, x2 = x1 * 3 + 1, x3 = x2 * 3 + 1;
    c2_got = weft__ctx_switch(&c2, &c3, (void *)3);
    WT_CHECK(x1 == x0 * 3 + 1 && x2 == x1 * 3 + 1 && x3 == x2 * 3 + 1);
    return &c1;
}

WT_CASE(a_context_whose_function_returns_resumes_the_one_it_names)
{
    struct weft__stack s2, s3;
    map_stack(&s2);
    map_stack(&s3);
    weft__ctx_self(&c1);
    WT_EQ(weft__ctx_make(&c2, weft__stack_lo(&s2), weft__stack_size(&s2), starts_c3, NULL), 0);
    WT_EQ(weft__ctx_make(&c3, weft__stack_lo(&s3), weft__stack_size(&s3), ends_into_c2, NULL), 0);
    uint64_t y0 = seed + 7, y1 = y0 * 5 + 1, y2 = y1 * 5 + 1, y3 = y2 * 5 + 1, y4 = y3 * 5 + 1;
    WT_CHECK(weft__ctx_switch(&c1, &c2, (void *)2) == NULL);
    WT_CHECK(c2_got == NULL);
    WT_CHECK(y1 == y0 * 5 + 1 && y2 == y1 * 5 + 1 && y3 == y2 * 5 + 1 && y4 == y3 * 5 + 1);
    drop_stack(&c3, &s3);
    drop_stack(&c2, &s2);
}

/* A ring of contexts, each passing a counter to the next: the switch does
 * not care which context it came from. */
enum { RING = 64, LAPS = 100 };
static struct weft__ctx ring[RING + 1]; /* ring[RING]: the thread */

static struct weft__ctx *ring_member(void *arg, void *data)
{
    intptr_t me = (intptr_t)arg;
    for (int lap = 0; lap < LAPS; lap++) {
        intptr_t count = (intptr_t)data;
        WT_EQ(count % RING, me);
        data =
            weft__ctx_switch(&ring[me], &ring[me + 1 < RING ? me + 1 : RING], (void *)(count + 1));
    }
    weft__ctx_exit(&ring[me], &ring[RING], data);
}

WT_CASE(a_ring_of_contexts_passes_a_counter_round)
{
    static struct weft__stack stacks[RING];
    weft__ctx_self(&ring[RING]);
    for (int i = 0; i < RING; i++) {
        map_stack(&stacks[i]);
        WT_EQ(weft__ctx_make(&ring[i], weft__stack_lo(&stacks[i]), weft__stack_size(&stacks[i]),
                             ring_member, (void *)(intptr_t)i),
              0);
    }
    intptr_t count = 0;
    for (int lap = 0; lap < LAPS; lap++) {
        count = (intptr_t)weft__ctx_switch(&ring[RING], &ring[0], (void *)count);
        WT_EQ(count, (intptr_t)(lap + 1) * RING);
    }
    /* Each member now exits in turn, back to the thread. */
    for (int i = 0; i < RING; i++)
        WT_EQ((intptr_t)weft__ctx_switch(&ring[RING], &ring[i], (void *)(intptr_t)i), i);
    for (int i = 0; i < RING; i++)
        drop_stack(&ring[i], &stacks[i]);
}

/* A context suspended by one thread resumes in another (what M:N mode
 * does to a task): it returns from its switch on the new thread's stack of
 * contexts, and goes back to that thread's. */
static struct weft__ctx mover, *mover_home;
static pthread_t mover_seen[2];

/* pthread_self() is declared const: the compiler may reuse its value from
 * before the switch, on the old thread. Any thread-local read across a
 * switch that can change threads has to be kept from that (see async.h). */
__attribute__((noinline)) static pthread_t current_thread(void)
{
    __asm__ volatile("" ::: "memory");
    return pthread_self();
}

static struct weft__ctx *moving(void *arg, void *data)
{
    (void)arg;
    mover_seen[0] = current_thread();
    data = weft__ctx_switch(&mover, mover_home, data);
    mover_seen[1] = current_thread();
    weft__ctx_exit(&mover, mover_home, data);
}

static void *resume_mover(void *arg)
{
    struct weft__ctx self;
    weft__ctx_self(&self);
    mover_home = &self;
    WT_EQ((intptr_t)weft__ctx_switch(&self, &mover, arg), 7);
    weft__ctx_release(&mover);
    return NULL;
}

WT_CASE(a_context_suspended_on_one_thread_resumes_on_another)
{
    struct weft__stack s;
    map_stack(&s);
    struct weft__ctx self;
    weft__ctx_self(&self);
    mover_home = &self;
    WT_EQ(weft__ctx_make(&mover, weft__stack_lo(&s), weft__stack_size(&s), moving, NULL), 0);
    WT_EQ((intptr_t)weft__ctx_switch(&self, &mover, (void *)5), 5);
    pthread_t t;
    WT_EQ(pthread_create(&t, NULL, resume_mover, (void *)7), 0);
    WT_EQ(pthread_join(t, NULL), 0);
    WT_CHECK(pthread_equal(mover_seen[0], pthread_self()));
    WT_CHECK(pthread_equal(mover_seen[1], t));
    weft__ctx_unpoison(weft__stack_lo(&s), weft__stack_size(&s));
    weft__stack_unmap(&s);
}

WT_CASE(bad_input)
{
    char small[512];
    struct weft__ctx c;
    WT_EQ(weft__ctx_make(&c, NULL, STACK, fresh, NULL), -EINVAL);
    WT_EQ(weft__ctx_make(&c, small, sizeof small, fresh, NULL), -EINVAL);
    struct weft__stack s;
    WT_EQ(weft__stack_map(&s, 0), -EINVAL);
    WT_EQ(weft__stack_map(&s, SIZE_MAX), -EINVAL);
    WT_EQ(weft__stack_map_many(&s, 0, STACK), -EINVAL);
    WT_EQ(weft__stack_map_many(&s, SIZE_MAX / 4, STACK), -EINVAL);
}

/* Stacks. */

WT_CASE(a_stack_is_usable_from_bottom_to_top_and_rounded_to_pages)
{
    struct weft__stack s;
    WT_EQ(weft__stack_map(&s, 10000), 0);
    size_t page = weft__page_size();
    WT_EQ(weft__stack_size(&s) % page, 0);
    WT_CHECK(weft__stack_size(&s) >= 10000 && weft__stack_size(&s) < 10000 + page);
    memset(weft__stack_lo(&s), 0xa5, weft__stack_size(&s));
    WT_CHECK(weft__stack_guard_hit(&s, weft__stack_lo(&s) - 1));
    WT_CHECK(!weft__stack_guard_hit(&s, weft__stack_lo(&s)));
    weft__stack_unmap(&s);
    WT_CHECK(s.map == NULL);
    weft__stack_unmap(&s); /* twice is harmless */
}

/* Stacks mapped together, in more than one call's worth of guards: the
 * last one's guard must fault too, and each stack is its own. */
enum { BATCH = 70 };

static int touch_guard(void *arg)
{
    enum weft__stack_guard kind = (enum weft__stack_guard)(intptr_t)arg;
    if (kind != WEFT__GUARD_UNKNOWN)
        weft__stack_force_guard(kind);
    static struct weft__stack s[BATCH];
    if (weft__stack_map_many(s, BATCH, STACK) != 0)
        return 2;
    for (int i = 0; i < BATCH; i++)
        memset(weft__stack_lo(&s[i]), i, weft__stack_size(&s[i]));
    for (int i = 1; i < BATCH - 1; i++)
        weft__stack_unmap(&s[i]);
    if (*(volatile char *)(weft__stack_lo(&s[0]) + 100) != 0 ||
        *(volatile char *)(weft__stack_lo(&s[BATCH - 1]) + 100) != BATCH - 1)
        return 3;
    signal(SIGSEGV, SIG_DFL);
    *(volatile char *)(weft__stack_lo(&s[BATCH - 1]) - 1) = 1;
    return 0; /* not reached if the guard works */
}

static void check_guard_faults(enum weft__stack_guard kind)
{
    int status = wt_fork(touch_guard, (void *)(intptr_t)kind, 30);
    WT_CHECK(WIFSIGNALED(status));
    WT_EQ(WTERMSIG(status), SIGSEGV);
}

WT_CASE(the_guard_page_faults_whichever_way_it_was_made)
{
    check_guard_faults(WEFT__GUARD_UNKNOWN); /* the probe's choice */
    check_guard_faults(WEFT__GUARD_MPROTECT);
    switch (weft__stack_guard_kind()) {
    case WEFT__GUARD_ADVICE_MANY:
        check_guard_faults(WEFT__GUARD_ADVICE_MANY);
        /* fall through */
    case WEFT__GUARD_ADVICE:
        check_guard_faults(WEFT__GUARD_ADVICE);
        break;
    default:
        printf("no MADV_GUARD_INSTALL here: guards are mprotect'ed pages\n");
    }
}

/* With mprotect'ed guards, every stack is two mappings: the process runs
 * into vm.max_map_count, and says so. (The stacks are unmapped again, for
 * the sanitizers' own mappings at exit.) */
enum { MAPS_MAX = 70000 };

static int exhaust_mappings(void *arg)
{
    (void)arg;
    static struct weft__stack s[MAPS_MAX];
    weft__stack_force_guard(WEFT__GUARD_MPROTECT);
    int n = 0, rc = 0;
    while (n < MAPS_MAX && (rc = weft__stack_map(&s[n], 4096)) == 0)
        n++;
    while (n > 0)
        weft__stack_unmap(&s[--n]);
    return rc == WEFT_EMAPCOUNT ? 0 : rc == 0 ? 2 : 1;
}

WT_CASE(running_out_of_mappings_is_named_as_such)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long max = 0;
    WT_CHECK(f && fscanf(f, "%ld", &max) == 1);
    fclose(f);
    if (max > MAPS_MAX)
        wt_skip("vm.max_map_count is too high to reach in a test");
    WT_EQ(wt_fork(exhaust_mappings, NULL, 60 * wt_slack()), 0);
    WT_CHECK(strstr(weft_strerror(WEFT_EMAPCOUNT), "vm.max_map_count") != NULL);
}
