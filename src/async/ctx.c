/*
 * Execution contexts (design in ctx.h): the switch in assembly for x86-64
 * and aarch64, and the C around it that tells the sanitizers.
 *
 *     void *weft__ctx_jump(void **save_sp, void *to_sp, void *data)
 *
 * pushes the callee-saved registers on the current stack, stores the stack
 * pointer in *save_sp, loads to_sp, pops that context's registers and
 * returns data into it. A new context's stack is laid out as if it had been
 * suspended by a jump: the saved registers (zero, but for the two that
 * carry ctx_start's address and its context, and the default floating-point
 * controls), and a return address that leads to a trampoline which calls
 * ctx_start(context, data). The trampoline's frame marks the return
 * address as undefined, so unwinders and debuggers stop there instead of
 * wandering into the stack's unused top; the frame pointer is zero for the
 * same reason (ASan's unwinder walks frame pointers).
 *
 * The return-address predictor. A CPU predicts each return from a stack
 * of the calls it has seen; a switch that returns into another context
 * returns where that context's call was made, and every return after it
 * walks the other context's calls, mispredicted (5-7 ns each here: a
 * spawn and join cost 25 ns more with four more frames between the join
 * and its switch). Two rules keep the predictor in step where tasks start
 * and end, which is most of a short task's life:
 * - a new context is entered by a jump, not a return (the switch sees the
 *   trampoline's address as the one to return to), so the call that
 *   switched to it stays on the predictor's stack;
 * - a context's function ends by returning the context to resume, and the
 *   trampoline resumes it from the frame that called the function: every
 *   call the new context made has returned, and the predictor's top is
 *   again the switch that entered it.
 * So a task that parks on a join, runs a new task to its end and is
 * resumed by that end returns from its switch, and then up its own calls,
 * as predicted.
 *
 * The switch is a plain call to a local symbol, and a new context is
 * entered by a direct jump on x86-64, so neither needs an endbr64 for IBT;
 * on aarch64 it is entered by a `br`, so the trampoline begins with a BTI
 * landing pad (`bti j`, a no-op on CPUs without BTI), without which a
 * binary built with -mbranch-protection would fault on every new task. A
 * CET shadow stack, which glibc enables only for programs that ask for
 * it, would not follow a return into another context.
 */
#include "async/ctx.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

void weft__ctx_trampoline(void);

#if defined(__x86_64__)
/* The frame, from the saved stack pointer up: MXCSR and the x87 control
 * word (8 bytes), r15, r14, r13, r12, rbx, rbp, the return address. */
enum { FRAME_WORDS = 8, FRAME_ARG = 3 /* r13 */, FRAME_FN = 4 /* r12 */, FRAME_RET = 7 };
#define FRAME_FPU ((uint64_t)0x037f << 32 | 0x1f80) /* the ABI's initial controls */
__asm__(".text\n"
        ".globl weft__ctx_jump\n"
        ".hidden weft__ctx_jump\n"
        ".type weft__ctx_jump,@function\n"
        ".p2align 4\n"
        "weft__ctx_jump:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        ".Lweft_resume:\n" /* rsi: the stack to resume, rdx: the data */
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    movq %rdx, %rax\n"
        "    leaq weft__ctx_trampoline(%rip), %rcx\n"
        "    cmpq %rcx, (%rsp)\n"
        "    je 1f\n"
        "    ret\n"
        "1:  addq $8, %rsp\n" /* a new context: entered by a jump (ctx.c) */
        "    jmp weft__ctx_trampoline\n"
        ".size weft__ctx_jump,.-weft__ctx_jump\n"
        ".globl weft__ctx_trampoline\n"
        ".hidden weft__ctx_trampoline\n"
        ".type weft__ctx_trampoline,@function\n"
        ".p2align 4\n"
        "weft__ctx_trampoline:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined rip\n"
        "    movq %r13, %rdi\n"
        "    movq %rax, %rsi\n"
        "    callq *%r12\n"
        "    movq %rax, %rsi\n"
        "    jmp .Lweft_resume\n"
        "    .cfi_endproc\n"
        ".size weft__ctx_trampoline,.-weft__ctx_trampoline\n");
#elif defined(__aarch64__)
/* The frame, from the saved stack pointer up: x19-x28, x29 (frame
 * pointer), x30 (link register: the return address), d8-d15, FPCR, and a
 * word that keeps the stack pointer 16-byte aligned. */
enum { FRAME_WORDS = 22, FRAME_ARG = 1 /* x20 */, FRAME_FN = 0 /* x19 */, FRAME_RET = 11 };
#define FRAME_FPU 0 /* FPCR: round to nearest, no traps */
enum { FRAME_FPCR = 20 };
__asm__(".text\n"
        ".globl weft__ctx_jump\n"
        ".hidden weft__ctx_jump\n"
        ".type weft__ctx_jump,%function\n"
        ".p2align 4\n"
        "weft__ctx_jump:\n"
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x9, fpcr\n"
        "    str x9, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        ".Lweft_resume:\n" /* x1: the stack to resume, x2: the data */
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldr x9, [sp, #160]\n"
        "    msr fpcr, x9\n"
        "    add sp, sp, #176\n"
        "    mov x0, x2\n"
        "    adr x9, weft__ctx_trampoline\n"
        "    cmp x30, x9\n"
        "    b.eq 1f\n"
        "    ret\n"
        "1:  br x30\n" /* a new context: entered by a jump (ctx.c) */
        ".size weft__ctx_jump,.-weft__ctx_jump\n"
        ".globl weft__ctx_trampoline\n"
        ".hidden weft__ctx_trampoline\n"
        ".type weft__ctx_trampoline,%function\n"
        ".p2align 4\n"
        "weft__ctx_trampoline:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined x30\n"
        "    hint #36\n" /* bti j: entered by br (a no-op without BTI) */
        "    mov x1, x0\n"
        "    mov x0, x20\n"
        "    blr x19\n"
        "    mov x2, x1\n"
        "    mov x1, x0\n"
        "    b .Lweft_resume\n"
        "    .cfi_endproc\n"
        ".size weft__ctx_trampoline,.-weft__ctx_trampoline\n");
#else
#error "weft's async layer has a context switch for x86-64 and aarch64 only"
#endif

const struct weft__transfer weft__ctx_nothing;

/* An exiting context's transfer outlives its frame: under ASan's
 * detect_stack_use_after_return the frame is a fake one, which the switch
 * frees before the context resumed reads the transfer. That one runs next
 * on this thread and reads it at once. */
static _Thread_local struct weft__transfer exit_transfer WEFT__TLS_FAST;

/* What the trampoline resumes once a context's function has returned. */
struct resume {
    void *sp;
    struct weft__transfer *data;
};

/* Where a new context begins (through the trampoline), and, when its
 * function returns, what it ends with: the trampoline then resumes `to`
 * from the very frame that entered the function, so every call the
 * context made has returned. Under a sanitizer the switch happens here,
 * since a fiber switch must come in the function that jumps. */
static struct resume ctx_start(struct weft__ctx *c, struct weft__transfer *t)
{
    weft__ctx_enter(NULL, t);
    struct weft__ctx *to = c->fn(c->arg, t->data);
    if (to == c) /* its own frames are gone: nothing to resume */
        __builtin_trap();
    if (WEFT__ASAN_FIBERS() || WEFT__TSAN_FIBERS())
        weft__ctx_exit(c, to, NULL);
    exit_transfer = (struct weft__transfer){c, NULL};
    return (struct resume){to->sp, &exit_transfer};
}

void weft__ctx_self(struct weft__ctx *c)
{
    memset(c, 0, sizeof *c);
    if (WEFT__TSAN_FIBERS())
        c->tsan_fiber = __tsan_get_current_fiber();
}

int weft__ctx_make(struct weft__ctx *c, void *stack, size_t size, weft__ctx_fn fn, void *arg)
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    if (!stack || size < 1024)
        return -EINVAL;
    memset(c, 0, sizeof *c);
    c->stack = stack;
    c->size = size;
    c->fn = fn;
    c->arg = arg;
    if (WEFT__TSAN_FIBERS() && !(c->tsan_fiber = __tsan_create_fiber(0)))
        return -ENOMEM;
    uint64_t *frame = (uint64_t *)top - FRAME_WORDS;
    memset(frame, 0, FRAME_WORDS * sizeof *frame);
#if defined(__x86_64__)
    frame[0] = FRAME_FPU;
#else
    frame[FRAME_FPCR] = FRAME_FPU;
#endif
    frame[FRAME_FN] = (uint64_t)(uintptr_t)ctx_start;
    frame[FRAME_ARG] = (uint64_t)(uintptr_t)c;
    frame[FRAME_RET] = (uint64_t)(uintptr_t)weft__ctx_trampoline;
    c->sp = frame;
    return 0;
}

void weft__ctx_exit(struct weft__ctx *from, struct weft__ctx *to, void *data)
{
    exit_transfer = (struct weft__transfer){from, data};
    weft__ctx_leave(NULL, to);
    weft__ctx_jump(&from->sp, to->sp, &exit_transfer);
    __builtin_trap(); /* nobody resumes an exited context */
}

void weft__ctx_release(struct weft__ctx *c)
{
    if (WEFT__TSAN_FIBERS() && c->tsan_fiber)
        __tsan_destroy_fiber(c->tsan_fiber);
    c->tsan_fiber = NULL;
}

void weft__ctx_unpoison(void *stack, size_t size)
{
    if (__asan_unpoison_memory_region)
        __asan_unpoison_memory_region(stack, size);
}
