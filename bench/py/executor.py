"""The Python baseline of weft-bench's executor_submit: n tasks submitted to
a ThreadPoolExecutor of 2 workers, every result collected through its
future, timed inside the interpreter (start-up not counted).

    python3 executor.py N
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def task(x):
    return x


def main():
    n = int(sys.argv[1])
    with ThreadPoolExecutor(max_workers=2) as ex:
        start = time.perf_counter()
        futures = [ex.submit(task, i) for i in range(n)]
        total = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - start
    print(elapsed, total)


if __name__ == "__main__":
    main()
