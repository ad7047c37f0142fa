/*
 * The trace hook table: how the lower layers report events to the tracing
 * layer without depending on it (the layers' order in docs/ARCHITECTURE.md
 * forbids calls upward).
 *
 * One process-wide pointer, NULL while tracing is off: an emitter loads it
 * once (relaxed) and calls through it only when it is set, so a hook costs
 * one load and a predictable branch when nobody traces. The tracing layer
 * publishes a filled table with a release store and never frees one it
 * has published (an emitter may still be calling through it), so turning
 * tracing off is storing NULL. Entries may be NULL.
 *
 * Events so far: a park that is about to sleep, and its end (base/park.h;
 * `flags` carry the kind of wait). The tracing layer adds its own events
 * here as it grows.
 */
#ifndef WEFT_SRC_BASE_HOOKS_H
#define WEFT_SRC_BASE_HOOKS_H

#include "base/base.h"

struct weft__hooks {
    void (*park_begin)(const void *word, unsigned flags);
    /* rc: weft__park's or weft__park_fd's result */
    void (*park_end)(const void *word, unsigned flags, int rc);
};

extern const struct weft__hooks *_Atomic weft__hooks;

static inline const struct weft__hooks *weft__hooks_get(void)
{
    return atomic_load_explicit(&weft__hooks, memory_order_acquire);
}

#endif /* WEFT_SRC_BASE_HOOKS_H */
