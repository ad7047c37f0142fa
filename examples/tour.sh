#!/bin/sh
# The tour behind `make demo`: each example with a one-line heading.
# Later parts of weft add their examples to the list below.
set -eu
dir=${1:-build/release/examples}
bold='' plain=''
if [ -t 1 ]; then bold=$(printf '\033[1m') plain=$(printf '\033[0m'); fi
run() {
    printf '\n%s== %s%s  (examples/%s.c)\n' "$bold" "$2" "$plain" "$1"
    "$dir/$1"
}
run thread_ids "Processes and threads: ids, shared memory, own stacks, locals, a Timer"
run threads    "threading.Thread(target=..., args=...): two threads and the main thread"
run my_thread  "A Thread subclass with its own run(): the same program, object style"
run lock_counter "Lock: two threads count a shared variable, the lecture's program done right"
run lock_with    "The shorter form the lecture leaves blank, Python's with lock: WEFT_GUARD and WEFT_WITH"
run critical_section "Critical section: a recursive lock, four tellers, the bank's total never changes"
run producer_consumer "Condition: a bounded buffer between producers and consumers"
run downloads    "Semaphore: ten downloads, at most three at a time"
run shared_lock  "multiprocessing.Lock in shared memory, and a holder killed with SIGKILL"
run pipeline     "queue.Queue: a pipeline of stages joined by bounded queues, ended by shutdown()"
run pool_map     "ThreadPoolExecutor.map: a CPU-bound job in chunks, with a progress bar"
run fib          "Nested tasks: recursive Fibonacci, waiting tasks run others, even on one worker"
run cpu_bound    "CPU-bound work in one thread, in threads, in processes (results in shared memory)"
run crash_pool   "ProcessPoolExecutor that survives a segfaulting task and one that never ends"
run gil          "The GIL, measured: CPU work, I/O, the convoy effect, and how light threads are"
run io_bound     "asyncio: the I/O-bound case one by one, in threads, in processes, in tasks"
run deadline     "asyncio.TaskGroup under asyncio.timeout: the slow requests are cancelled"
run task_queue   "One queue between an async task and a thread"
printf '\nTour finished.\n'
