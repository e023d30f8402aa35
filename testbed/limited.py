"""A command run in a child process under a memory limit, with its peak memory and time:
how the tests and the benchmark hold what a user can hand us to pipeline/limits.py."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
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
    """`args` in a child process whose address space is limited to ADDRESS_SPACE, with its
    peak memory (and that of the processes it waited for).

    The command is started by a small launcher (this module run as a program), which
    reports what wait4 says of it: a process forked straight from a large one (pytest,
    late in a run) would count the parent's resident pages at the fork as its own peak."""
    data = stdin if isinstance(stdin, bytes) else None
    record = Path(tempfile.mkstemp(prefix="limited-")[1])
    started = time.monotonic()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "testbed.limited", str(record), *args],
        cwd=cwd,
        stdin=subprocess.PIPE if data is not None else (stdin or subprocess.DEVNULL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,  # so that a timeout ends the command too
    )
    try:
        out, err = launcher.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        raise AssertionError(f"{args[:4]}… gave no answer in {timeout} s") from None
    finally:
        recorded = record.read_text().split()
        record.unlink()
    status, peak_kib = int(recorded[0]), int(recorded[1])
    return Limited(
        status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), peak_kib * 1024,
        time.monotonic() - started,
    )


def _launch(record: str, args: list[str]) -> None:
    """Runs args under the address-space limit, as its own child, and writes its exit
    status and peak resident memory (KiB) to record."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    child = subprocess.Popen(args)  # the launcher's standard streams, and its small memory
    _, wait_status, usage = os.wait4(child.pid, 0)
    Path(record).write_text(f"{os.waitstatus_to_exitcode(wait_status)} {usage.ru_maxrss}")


def predict(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.commands.predict", *args]


if __name__ == "__main__":
    _launch(sys.argv[1], sys.argv[2:])
