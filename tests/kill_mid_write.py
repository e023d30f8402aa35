"""Runs a stage and SIGKILLs it halfway through its n-th write to a file.

Usage, from a project directory: python kill_mid_write.py pipeline.stages.vocab N
The kill lands inside the write itself (half of the bytes written), which a
kill from outside at a random moment rarely hits. With N = 0 the stage runs to
the end and the number of writes it made is printed last on stderr.
"""
import atexit
import os
import runpy
import signal
import sys

sys.path.insert(0, os.getcwd())  # the project's own copy of the pipeline

from pipeline import files  # noqa: E402

MODULE, NTH = sys.argv[1], int(sys.argv[2])
writes = 0


class DiesMidWrite:
    def __init__(self, stream):
        self._stream = stream

    def write(self, data):
        global writes
        writes += 1
        if writes == NTH:
            self._stream.write(data[: len(data) // 2])
            self._stream.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return self._stream.write(data)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._stream.__exit__(*exc)


def open_dying(*args, **kwargs):
    return DiesMidWrite(open(*args, **kwargs))


if NTH == 0:
    atexit.register(lambda: print(f"writes: {writes}", file=sys.stderr))
files.open = open_dying  # every output file the stage writes is opened through pipeline.files
sys.argv = [MODULE]
runpy.run_module(MODULE, run_name="__main__", alter_sys=True)
