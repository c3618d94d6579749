"""Hostile program (Python): the supervisor attacks a Python program can make without C, plus io_uring
through ctypes. Same output as supervisor.c: one "NAME RESULT" line per attempt (0 or the errno name),
then "after 0". The attack is argv[1]: prlimit-nofile, prlimit-all, kill, proc, sched, io_uring.
Run by test/hostile/run.ts, also in the warm interpreter (where Python jobs normally run)."""
import ctypes
import errno
import os
import resource
import signal
import sys
import time


def report(name, call):
    try:
        call()
        result = "0"
    except OSError as error:
        result = errno.errorcode.get(error.errno, str(error.errno))
    print(name, result, flush=True)


attack = sys.argv[1] if len(sys.argv) > 1 else ""
if attack == "prlimit-nofile":
    report("prlimit-pid1-nofile", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0)))
elif attack == "prlimit-all":
    for name in ["RLIMIT_STACK", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE"]:
        report("prlimit-pid1-" + name[7:].lower(), lambda r=getattr(resource, name): resource.prlimit(1, r, (0, 0)))
elif attack == "kill":
    for sig in [signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGSEGV]:
        report("kill-pid1-" + sig.name[3:], lambda s=sig: os.kill(1, s))
elif attack == "proc":
    for path, mode in [("/proc/1/mem", "rb"), ("/proc/1/fd/1", "wb"), ("/proc/1/environ", "rb")]:
        report("open-" + path.replace("/", "-").strip("-"), lambda p=path, m=mode: open(p, m).close())
elif attack == "sched":
    report("setpriority-pid1", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
    report("sched_setscheduler-pid1-idle", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0)))
elif attack == "io_uring":
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    params = ctypes.create_string_buffer(120)  # struct io_uring_params

    def setup():
        fd = libc.syscall(425, 8, params)  # io_uring_setup(8, &params)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "io_uring_setup")
        os.close(fd)

    report("io_uring_setup", setup)
else:
    print("unknown attack", attack, file=sys.stderr)
    sys.exit(2)
time.sleep(0.3)
print("after 0", flush=True)
