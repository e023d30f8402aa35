"""A command run in a child process under a memory limit, with its peak memory and time:
how the tests and the benchmark hold what a user can hand us to pipeline/limits.py."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline import limits

ROOT = Path(__file__).resolve().parents[1]
# The child's address space: twice the budget, a guard so that a run that would grow
# without bound fails fast instead of taking the machine; its peak RSS is what is checked.
ADDRESS_SPACE = 2 * limits.MEMORY_BUDGET


@dataclass
class Limited:
    status: int
    stdout: str
    stderr: str
    peak_bytes: int  # the largest resident set of the child and any process it waited for
    seconds: float

    def ended_cleanly(self) -> bool:
        """Exit 0, 1 (some input lines skipped) or 2 (an error), each error a line of its own,
        no traceback, within the memory budget."""
        errors = [line for line in self.stderr.splitlines() if not line.startswith("warning: ")]
        return (
            self.status in (0, 1, 2)
            and "Traceback" not in self.stderr
            and all(line.startswith("error: ") for line in errors)
            and (self.status == 0 or errors)
            and "out of memory" not in self.stderr
            and self.peak_bytes <= limits.MEMORY_BUDGET
        )


def run_limited(
    args: list[str], stdin: bytes | IO[bytes] | None = None, cwd: Path = ROOT, timeout: float = 120
) -> Limited:
    """`args` in a child process whose address space is limited to ADDRESS_SPACE; its own
    peak memory (and that of the processes it waited for), as wait4 reports it."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    data = stdin if isinstance(stdin, bytes) else None
    started = time.monotonic()
    child = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.PIPE if data is not None else (stdin or subprocess.DEVNULL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    outputs: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda name=name, stream=stream: outputs.__setitem__(name, stream.read()))
        for name, stream in (("out", child.stdout), ("err", child.stderr))
    ]
    for reader in readers:
        reader.start()
    killer = threading.Timer(timeout, child.kill)
    killer.start()
    if data is not None:
        try:
            child.stdin.write(data)
            child.stdin.close()
        except BrokenPipeError:
            pass  # it stopped reading: what it did is in its status and output
    _, wait_status, usage = os.wait4(child.pid, 0)  # not communicate(): its wait would take the usage
    killer.cancel()
    child.returncode = os.waitstatus_to_exitcode(wait_status)
    for reader in readers:
        reader.join()
    if child.returncode == -signal.SIGKILL:
        raise AssertionError(f"{args[:4]}… gave no answer in {timeout} s")
    return Limited(
        child.returncode,
        outputs["out"].decode("utf-8", "replace"),
        outputs["err"].decode("utf-8", "replace"),
        usage.ru_maxrss * 1024,
        time.monotonic() - started,
    )


def predict(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.predict", *args]
