/*
 * The context switch in a binary whose pages are guarded by aarch64's
 * Branch Target Identification (built with -mbranch-protection=standard
 * and linked with -z force-bti; run by tests/aarch64.sh under qemu with
 * -cpu max, which enforces BTI). A new context is entered by a `br`, which
 * must land on a BTI landing pad: without the trampoline's `bti j` the
 * first switch into it faults (SIGILL).
 *
 * Freestanding, without the C library: Debian's start files are not built
 * with BTI, and one unmarked object would leave the whole binary unguarded.
 * So this program brings its own _start, thread pointer, memset and write.
 */
#include "async/ctx.h"

void *memset(void *d, int c, unsigned long n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

static long sys3(long nr, long a, long b, long c)
{
    register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
                     x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}

static void say(const char *s)
{
    unsigned long n = 0;
    while (s[n])
        n++;
    sys3(64 /* write */, 1, (long)s, (long)n);
}

static struct weft__ctx main_ctx, task_ctx;
static _Alignas(16) char stack[64 * 1024];
static int ran;

static struct weft__ctx *task(void *arg, void *data)
{
    (void)arg;
    (void)data;
    ran = 1;
    return &main_ctx;
}

int main(void)
{
    weft__ctx_self(&main_ctx);
    if (weft__ctx_make(&task_ctx, stack, sizeof stack, task, 0) != 0)
        return 2;
    weft__ctx_switch(&main_ctx, &task_ctx, 0);
    say(ran ? "bti_ctx: a new context ran under BTI\n" : "bti_ctx: the context did not run\n");
    return ran ? 0 : 1;
}

/* The thread pointer's block (ctx.c keeps a thread-local), and _start. */
_Alignas(64) char bti_tls[4096];
__asm__(".text\n"
        ".globl _start\n"
        ".type _start,%function\n"
        "_start:\n"
        "    hint #34\n" /* bti c */
        "    adrp x9, bti_tls\n"
        "    add x9, x9, :lo12:bti_tls\n"
        "    msr tpidr_el0, x9\n"
        "    mov x29, #0\n"
        "    bl main\n"
        "    mov x8, #93\n" /* exit */
        "    svc 0\n");
