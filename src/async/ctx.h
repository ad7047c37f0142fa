/*
 * Execution contexts: a stack and the registers a function call preserves,
 * switched without the kernel.
 *
 * A context is suspended inside weft__ctx_switch, so all it must keep is
 * what the calling convention makes a callee preserve: on x86-64 rbx, rbp,
 * r12-r15, the stack pointer, and the control bits of MXCSR and the x87
 * control word; on aarch64 x19-x29, the link register, d8-d15 and FPCR.
 * Everything else the compiler has already saved around the call. That is
 * why a switch costs about a function call, while swapcontext also saves
 * the signal mask (a system call) and every floating-point register.
 *
 *     weft__ctx_make(c, stack, size, fn, arg)
 *         a context that, when first switched to, runs fn(arg, data) on
 *         the stack [stack, stack + size); fn ends the context either by
 *         returning the context to resume (which is passed NULL data; not
 *         c itself, which traps), or with weft__ctx_exit. Returning keeps
 *         the CPU's return predictor in step (ctx.c).
 *     data = weft__ctx_switch(from, to, data)
 *         save the caller in *from, resume *to; *to's own weft__ctx_switch
 *         returns `data` (or its fn starts with it). Returns the data of
 *         whichever switch later resumes *from, on whichever thread made it.
 *     weft__ctx_exit(from, to, data)
 *         the last switch away from a context whose stack is being dropped;
 *         the one resumed then calls weft__ctx_release(from).
 *
 * A thread's own stack is a context too: weft__ctx_self() makes one to
 * switch away from and back to.
 *
 * Sanitizers. Both need to be told of every switch, else ASan treats the
 * new stack as a wild pointer into somebody's frames and TSan mixes the
 * two contexts' shadow stacks. The hooks are weak references, as in
 * base/tsan.h: NULL, and one predicted branch each, without the runtimes.
 * ASan: __sanitizer_start_switch_fiber before the switch names the stack
 * being entered, __sanitizer_finish_switch_fiber after it tells the one
 * left (which is how a thread's own stack gets known: from the first
 * switch away from it); a context that exits passes no fake-stack slot, so
 * ASan frees the fake frames of a stack that will never run again. TSan:
 * one fiber per context, switched to just before the jump.
 */
#ifndef WEFT_SRC_ASYNC_CTX_H
#define WEFT_SRC_ASYNC_CTX_H

#include "base/base.h"

#include <stddef.h>

typedef struct weft__ctx *(*weft__ctx_fn)(void *arg, void *data);

struct weft__ctx {
    void *sp;          /* the saved stack pointer, while suspended */
    const void *stack; /* the stack's lowest address (NULL: a thread's, */
    size_t size;       /*   not known until first left) and size */
    void *asan_fake;   /* ASan's fake frames of the suspended context */
    void *tsan_fiber;  /* TSan's fiber for the context */
    weft__ctx_fn fn;   /* what a new context runs, */
    void *arg;         /*   and its argument */
};

/* The calling thread's own stack, as a context to switch away from. */
void weft__ctx_self(struct weft__ctx *c);

/* A context that runs fn(arg, data) on [stack, stack + size), the data
 * being what the first switch to it passes. 0, or -EINVAL if the stack is
 * too small to start on, or -ENOMEM if TSan cannot make its fiber. */
int weft__ctx_make(struct weft__ctx *c, void *stack, size_t size, weft__ctx_fn fn, void *arg);

/* The switch itself (ctx.c, assembly), and the C around it, inline so that
 * a task switch is the jump and two predicted branches. */
void *weft__ctx_jump(void **save_sp, void *to_sp, void *data);

/* The sanitizers' fiber interfaces (common_interface_defs.h, tsan_interface.h), weak:
 * NULL without the runtime (see base/tsan.h). */
#define WEFT__SAN_API __attribute__((weak, visibility("default")))
WEFT__SAN_API void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                                  size_t size);
WEFT__SAN_API void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                                   size_t *size_old);
WEFT__SAN_API void __asan_unpoison_memory_region(const volatile void *addr, size_t size);
WEFT__SAN_API void *__tsan_get_current_fiber(void);
WEFT__SAN_API void *__tsan_create_fiber(unsigned flags);
WEFT__SAN_API void __tsan_destroy_fiber(void *fiber);
WEFT__SAN_API void __tsan_switch_to_fiber(void *fiber, unsigned flags);

#define WEFT__ASAN_FIBERS() __builtin_expect(__sanitizer_start_switch_fiber != NULL, 0)
#define WEFT__TSAN_FIBERS() __builtin_expect(__tsan_switch_to_fiber != NULL, 0)

/* What a switch hands the context it resumes: the data, and where it came
 * from, so that ASan can learn the bounds of a stack as it is left. It
 * lives on the switching context's stack, which stays put until that
 * context is resumed, long after the other side has read it. */
struct weft__transfer {
    struct weft__ctx *from;
    void *data;
};

/* What a switch that has nothing to tell passes: no data, and a context
 * resumed by it needs to learn nothing either (no sanitizer runs). */
extern const struct weft__transfer weft__ctx_nothing;

static inline void weft__ctx_enter(struct weft__ctx *self, struct weft__transfer *t)
{
    if (WEFT__ASAN_FIBERS())
        __sanitizer_finish_switch_fiber(self ? self->asan_fake : NULL, &t->from->stack,
                                        &t->from->size);
}

static inline void weft__ctx_leave(struct weft__ctx *from, struct weft__ctx *to)
{
    if (WEFT__ASAN_FIBERS())
        __sanitizer_start_switch_fiber(from ? &from->asan_fake : NULL, to->stack, to->size);
    if (WEFT__TSAN_FIBERS())
        __tsan_switch_to_fiber(to->tsan_fiber, 0);
}

static inline void *weft__ctx_switch(struct weft__ctx *from, struct weft__ctx *to, void *data)
{
    struct weft__transfer t = {from, data};
    weft__ctx_leave(from, to);
    struct weft__transfer *back = weft__ctx_jump(&from->sp, to->sp, &t);
    weft__ctx_enter(from, back);
    return back->data;
}

_Noreturn void weft__ctx_exit(struct weft__ctx *from, struct weft__ctx *to, void *data);

/* Release what the sanitizers keep for an exited context (nothing
 * otherwise); called from another context. */
void weft__ctx_release(struct weft__ctx *c);

/* Let ASan forget what it had marked on a stack about to be reused or
 * unmapped: frames abandoned mid-function keep their red zones poisoned. */
void weft__ctx_unpoison(void *stack, size_t size);

#endif /* WEFT_SRC_ASYNC_CTX_H */
