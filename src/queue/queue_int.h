/*
 * Test hooks of the queue layer (SQLite-style): settings tests lower to
 * reach paths that normal sizes reach only with much memory.
 */
#ifndef WEFT_SRC_QUEUE_INT_H
#define WEFT_SRC_QUEUE_INT_H

#include <stddef.h>
#include <stdint.h>

/* A bounded FIFO queue whose ring would take more bytes than this is a
 * chain of blocks with a count instead (queue.c). */
extern size_t weft__queue_ring_max_bytes;

/* The unfinished tasks a new queue starts with (0): tests raise it to reach
 * the limit of the task count without a trillion puts. */
extern uint64_t weft__queue_tasks_at_new;

#endif /* WEFT_SRC_QUEUE_INT_H */
