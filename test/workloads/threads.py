# threading, a process pool (fork + pipes), subprocess, asyncio.
import asyncio
import concurrent.futures
import multiprocessing
import subprocess
import threading

total = []
lock = threading.Lock()


def work(n):
    with lock:
        total.append(n)


threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
# multiprocessing.Process and Pipe (fork + pipes). Its Pool, Queue and ProcessPoolExecutor need POSIX
# semaphores in /dev/shm, which a sandbox does not have (IpcMode none): they fail with or without seccomp.
parent, child_end = multiprocessing.Pipe()
worker = multiprocessing.Process(target=lambda c: c.send([n * n for n in range(5)]), args=(child_end,))
worker.start()
squares = parent.recv()
worker.join()
with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    lengths = list(pool.map(len, ["a", "bb", "ccc"]))


async def main():
    await asyncio.sleep(0.01)
    proc = await asyncio.create_subprocess_exec("echo", "child", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return out.decode().strip()


child = asyncio.run(main())
print("threads", sum(total), "squares", squares, "lengths", lengths, subprocess.run(["echo", "run"], capture_output=True, text=True).stdout.strip(), child)
print("ok python")
