/*
 * The trace hook table (design in hooks.h): NULL until the tracing layer
 * publishes one.
 */
#include "base/hooks.h"

const struct weft__hooks *_Atomic weft__hooks;
