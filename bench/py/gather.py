"""The Python baseline of weft-bench's gather_100k: n asyncio tasks, each
yielding to the loop once (await asyncio.sleep(0)), gathered, timed inside
the interpreter from the first create_task to gather's return (start-up
not counted). The default event loop, as asyncio.run gives it. Two such
waves run, and the second is timed.

    python3 gather.py N
"""
import asyncio
import sys
import time


async def yield_once(i):
    await asyncio.sleep(0)
    return i


async def wave(n):
    start = time.perf_counter()
    results = await asyncio.gather(*(asyncio.create_task(yield_once(i)) for i in range(n)))
    return time.perf_counter() - start, sum(results)


async def main(n):
    await wave(n)  # the first wave is not timed, as on weft's side
    elapsed, total = await wave(n)
    print(elapsed, total)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
