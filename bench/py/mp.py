"""The Python baselines of weft-bench's process suite, timed inside the
interpreter (start-up, imports and pool creation not counted):

    python3 mp.py pool_map N        N runs of Pool(2).map(f, range(1_000_000))
                                    with its default chunking
    python3 mp.py executor N        N submits to ProcessPoolExecutor(2), every
                                    result collected through its future
    python3 mp.py start METHOD N    N Process(target=f).start(); .join() with
                                    start method METHOD (the forkserver is
                                    started before the clock starts)

It prints the seconds first, then a checksum.
"""
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ITEMS = 1_000_000


def tiny(x):
    return x


def nothing():
    pass


def pool_map(n):
    with mp.Pool(2) as pool:
        pool.map(tiny, range(10))  # the workers are up
        start = time.perf_counter()
        total = 0
        for _ in range(n):
            total += sum(pool.map(tiny, range(ITEMS)))
        return time.perf_counter() - start, total


def executor(n):
    with ProcessPoolExecutor(max_workers=2) as ex:
        ex.submit(tiny, 0).result()  # the workers are up
        start = time.perf_counter()
        futures = [ex.submit(tiny, i) for i in range(n)]
        total = sum(f.result() for f in futures)
        return time.perf_counter() - start, total


def start(method, n):
    ctx = mp.get_context(method)
    warm = ctx.Process(target=nothing)  # a forkserver starts here
    warm.start()
    warm.join()
    begin = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
    return time.perf_counter() - begin, n


def main():
    what = sys.argv[1]
    if what == "pool_map":
        secs, check = pool_map(int(sys.argv[2]))
    elif what == "executor":
        secs, check = executor(int(sys.argv[2]))
    else:
        secs, check = start(sys.argv[2], int(sys.argv[3]))
    print(secs, check)


if __name__ == "__main__":
    main()
