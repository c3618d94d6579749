# A warm Python for bd-supervisor (--warm): started with the container, before any job, it waits on
# fd 3 (a socket) for the run step's argv ("python3", FILE, ARGS..., each NUL-terminated, then EOF),
# acknowledges it with one byte (0x06) on the same socket, and then runs FILE exactly as
# `python3 FILE ARGS...` would have: same sys.argv, sys.path[0], __main__ module and globals, same
# traceback and exit status. Only the interpreter's start-up has been paid already. Without the
# acknowledgement the supervisor kills this interpreter and runs the job cold (docs/protocol.md).
# It imports nothing that the interpreter's start-up has not imported anyway.
import sys


def _argv():
    import os

    data = b""
    while True:
        chunk = os.read(3, 65536)
        if not chunk:
            break
        data += chunk
    os.write(3, b"\x06")  # the job is taken: from here on the supervisor counts it as a warm run
    os.close(3)
    return [os.fsdecode(arg) for arg in data.split(b"\0")[:-1]]


def _run(argv):
    import os

    script = os.path.abspath(argv[1])
    sys.argv = argv[1:]
    sys.orig_argv = argv
    sys.path[0] = os.path.dirname(script)
    main = type(sys)("__main__")
    main.__dict__.update(
        __file__=script,
        __cached__=None,
        __loader__=sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", script),
        __spec__=None,
        __package__=None,
        __annotations__={},
        __builtins__=sys.modules["builtins"],
    )
    sys.modules["__main__"] = main
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, main.__dict__)


_job = _argv()
if len(_job) >= 2:
    try:
        _run(_job)
    except SystemExit:
        raise
    except BaseException as error:
        # Report it as the interpreter would, without this file's frames (the default hook prints
        # the exception's own __traceback__, not the one it is given).
        trace = error.__traceback__
        while trace is not None and trace.tb_frame.f_code.co_filename == __file__:
            trace = trace.tb_next
        error.__traceback__ = trace
        sys.excepthook(type(error), error, trace)
        sys.exit(1)
