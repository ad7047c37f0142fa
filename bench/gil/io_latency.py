"""The CPython baseline of weft-bench's gil_io_latency_p99_cpython.

One thread computes (a countdown, as in the lecture) while the main thread
naps N times; each nap releases the GIL (time.sleep does) and must take it
back from the computing thread. Prints the p99 of how much later than the
nap the main thread ran again, in seconds: the wait for the GIL, plus the
system's own lateness in waking a sleeper (which weft's figure includes too).

    python3 io_latency.py N NAP_SECONDS
"""
import sys
import threading
import time


def main():
    samples, nap = int(sys.argv[1]), float(sys.argv[2])
    stop = False

    def compute():
        n = 0
        while not stop:
            n -= 1

    worker = threading.Thread(target=compute)
    worker.start()
    late = []
    for _ in range(samples):
        t0 = time.perf_counter()
        time.sleep(nap)
        late.append(time.perf_counter() - t0 - nap)
    stop = True
    worker.join()
    late.sort()
    print(late[(samples * 99 + 99) // 100 - 1])


main()
