/*
 * weft: Python's concurrency toolbox for C. This umbrella header includes
 * every area; include the individual headers to keep compile times down.
 *
 *     weft/base.h    error codes, timeouts, sleep, CPU count
 *     weft/thread.h  threads, thread-local values, timers (threading)
 *     weft/sync.h    locks, critical sections, WEFT_WITH (threading's primitives)
 *     weft/queue.h   FIFO, LIFO, priority and simple queues (queue)
 *     weft/future.h  futures, wait, as_completed (concurrent.futures)
 *     weft/pool.h    the thread pool: ThreadPoolExecutor, map, parallel_for
 *     weft/process.h processes and pipes (multiprocessing.Process, Pipe)
 *     weft/shm.h     shared memory, Value and Array (multiprocessing.shared_memory)
 *     weft/gil.h     a global interpreter lock for embedding code that is not thread-safe
 */
#ifndef WEFT_H
#define WEFT_H

#include <weft/async.h>
#include <weft/base.h>
#include <weft/future.h>
#include <weft/gil.h>
#include <weft/mpqueue.h>
#include <weft/pool.h>
#include <weft/ppool.h>
#include <weft/process.h>
#include <weft/queue.h>
#include <weft/shm.h>
#include <weft/sync.h>
#include <weft/thread.h>

#endif /* WEFT_H */
