"""The CPython baseline of weft-bench's gil_handoff.

Two threads compute with the shortest switch interval CPython allows (one
microsecond), each noting when it finds that the other ran last. Prints the
seconds it took to see N such changes: the time per forced hand-off.

    python3 handoff.py N
"""
import sys
import threading
import time


def main():
    target = int(sys.argv[1])
    sys.setswitchinterval(1e-6)
    state = {"last": 0, "switches": 0}

    def alternate(me):
        while state["switches"] < target:
            if state["last"] != me:
                state["last"] = me
                state["switches"] += 1

    threads = [threading.Thread(target=alternate, args=(i,)) for i in (1, 2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(time.perf_counter() - t0)


main()
