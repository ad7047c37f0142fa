"""CPython's side of the lecture's GIL table (examples/gil.c runs it).

The same workloads as the C program, in the machine's CPython, each
printing its figures on one line:

    python3 lecture.py cpu STEPS WORKERS threads|processes
        a countdown of STEPS split over WORKERS; prints the seconds
    python3 lecture.py io TASKS NAP PORT sequential|threads|processes
        TASKS tasks, each a sleep of NAP seconds and one request to the
        loopback server on PORT (which answers after NAP); prints the seconds
    python3 lecture.py echo CPUS
        an echo server on a loopback port (printed first) beside CPUS
        threads that count down; serves one client, then exits
    python3 lecture.py spawn N threads|processes
        N threads (or forked processes) alive at once, each waiting to be
        let go; prints the seconds to start them all, to let them go and
        join them, and the memory they took: kB of MemAvailable and kB of
        Committed_AS per unit
"""
import asyncio
import os
import socket
import sys
import threading
import time


def countdown(n):
    while n > 0:
        n -= 1


def run_workers(target, args_list, kind):
    if kind == "threads":
        units = [threading.Thread(target=target, args=a) for a in args_list]
        for u in units:
            u.start()
        for u in units:
            u.join()
        return
    pids = []
    for a in args_list:
        pid = os.fork()
        if pid == 0:
            target(*a)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)


def cpu(steps, workers, kind):
    t0 = time.perf_counter()
    run_workers(countdown, [(steps // workers,)] * workers, kind)
    print(time.perf_counter() - t0)


def io_task(nap, port):
    time.sleep(nap)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"x")
        s.recv(1)


async def io_task_async(nap, port):
    await asyncio.sleep(nap)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x")
    await writer.drain()
    await reader.read(1)
    writer.close()
    await writer.wait_closed()


async def io_tasks(tasks, nap, port):
    await asyncio.gather(*(io_task_async(nap, port) for _ in range(tasks)))


def io(tasks, nap, port, kind):
    t0 = time.perf_counter()
    if kind == "sequential":
        for _ in range(tasks):
            io_task(nap, port)
    elif kind == "tasks":
        asyncio.run(io_tasks(tasks, nap, port))
    else:
        run_workers(io_task, [(nap, port)] * tasks, kind)
    print(time.perf_counter() - t0)


def echo(cpus):
    stop = False

    def compute():
        n = 0
        while not stop:
            n -= 1

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print(listener.getsockname()[1], flush=True)
    workers = [threading.Thread(target=compute) for _ in range(cpus)]
    for w in workers:
        w.start()
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(64)
        if not data:
            break
        conn.sendall(data)
    stop = True
    for w in workers:
        w.join()


def meminfo():
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":")
            fields[name] = int(value.split()[0])
    return fields["MemAvailable"], fields["Committed_AS"]


def spawn(n, kind):
    avail0, committed0 = meminfo()
    t0 = time.perf_counter()
    if kind == "threads":
        go = threading.Event()
        # Daemons: should a start fail, the interpreter must not wait at exit
        # for the ones that started, which wait for `go`.
        units = [threading.Thread(target=go.wait, daemon=True) for _ in range(n)]
        try:
            for u in units:
                u.start()
        except RuntimeError:
            go.set()
            raise
    else:
        r, w = os.pipe()
        units = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                os.close(w)
                os.read(r, 1)
                os._exit(0)
            units.append(pid)
    started = time.perf_counter() - t0
    avail1, committed1 = meminfo()
    t1 = time.perf_counter()
    if kind == "threads":
        go.set()
        for u in units:
            u.join()
    else:
        os.close(w)
        for pid in units:
            os.waitpid(pid, 0)
    ended = time.perf_counter() - t1
    print(started, ended, (avail0 - avail1) / n, (committed1 - committed0) / n)


def main():
    what, args = sys.argv[1], sys.argv[2:]
    if what == "cpu":
        cpu(int(args[0]), int(args[1]), args[2])
    elif what == "io":
        io(int(args[0]), float(args[1]), int(args[2]), args[3])
    elif what == "echo":
        echo(int(args[0]))
    elif what == "spawn":
        spawn(int(args[0]), args[1])


main()
