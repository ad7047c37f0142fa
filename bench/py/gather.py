"""The Python baseline of weft-bench's gather_100k: n asyncio tasks, each
yielding to the loop once (await asyncio.sleep(0)), gathered, timed inside
the interpreter from the first create_task to gather's return (start-up
not counted). The default event loop, as asyncio.run gives it.

    python3 gather.py N
"""
import asyncio
import sys
import time


async def yield_once(i):
    await asyncio.sleep(0)
    return i


async def main(n):
    start = time.perf_counter()
    results = await asyncio.gather(*(asyncio.create_task(yield_once(i)) for i in range(n)))
    elapsed = time.perf_counter() - start
    print(elapsed, sum(results))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
