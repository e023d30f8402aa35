"""Wall time, peak memory, TensorFlow use and timestamped output of a process.

    python bench/probe.py LOG -- COMMAND...

runs COMMAND, passes its output through, exits with its status and appends one
JSON line about it to LOG. The benchmark runs everything it measures this way;
for the stages, it puts a `python` first on their PATH that runs the real one
under this script.

Peak memory is the larger of two readings: the child's ru_maxrss from wait4
(its own peak and that of every child it waited for, however short), and the
largest sum of resident memory over its whole process tree, sampled every
SAMPLE_SECONDS (which catches workers running side by side). ru_maxrss also
counts what the parent held when it forked the child, which is why this runs as
a small process of its own, standard library only. The tree sampling reads
/proc, so it is Linux-only; elsewhere ru_maxrss alone is the peak.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise

SAMPLE_SECONDS = 0.1
# Linux reports ru_maxrss in KiB, macOS in bytes.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024
# Any mapped file under a tensorflow/ folder means TensorFlow's native code is loaded.
_TENSORFLOW_MARK = "/tensorflow/"


@dataclass
class Measurement:
    argv: list[str]
    returncode: int
    wall_s: float
    peak_rss_bytes: int
    loaded_tensorflow: bool
    # (seconds since the start, line) for every line the process wrote to stdout
    lines: list[tuple[float, str]] = field(default_factory=list)


def measure(argv: Sequence[str]) -> Measurement:
    """Runs argv to completion; its stdout lines are timestamped and passed on to ours."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE)
    sampler = _TreeSampler(child.pid)
    sampler.start()
    lines = []
    for raw in child.stdout:
        lines.append((time.perf_counter() - start, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    child.stdout.close()
    sampler.finish()
    return Measurement(
        argv=list(argv),
        returncode=child.returncode,
        wall_s=wall,
        peak_rss_bytes=max(usage.ru_maxrss * _MAXRSS_UNIT, sampler.peak_bytes),
        loaded_tensorflow=sampler.loaded_tensorflow,
        lines=lines,
    )


# What the train stage prints as each fit begins (pipeline/stages/train.py), and what Keras
# prints (verbose=2) as an epoch begins and ends: "Epoch 1/20", "30/30 - 1s - … loss: …".
FIT_MARKS = {"validation run": "validation run:", "final fit": "final fit:"}
RESTORED_MARK = " restored"  # after a fit's mark: train took that fit from data/memo/
EPOCH_BEGIN = re.compile(r"Epoch \d+/\d+$")
EPOCH_END = re.compile(r"\d+/\d+ - .*loss: ")
START_PHASE = "start: Python, params, vocabulary, the memo's lookup (before TensorFlow)"
# A fit's phases, in the order they come
FIT_PHASES = (
    "restored from data/memo/",
    "TensorFlow's import, features, model",
    "features read, model built",
    "first epoch (traces the step functions)",
    "set-up and its only epoch (Keras marks no epoch's start in a fit of one)",
    "the other epochs",
    "DVCLive's end, memory, memo",
    "the model and its bundle saved, exit",
)


def train_phases(run: Measurement) -> list[tuple[str, float]]:
    """Where a train stage's wall time went, from the times of the lines it printed: up to
    the first fit, then for each fit its set-up, its first epoch (which traces the step
    functions), its other epochs and what came after them. The phases add up to the
    process's wall time."""
    starts = [(index, fit, mark) for index, (_, line) in enumerate(run.lines)
              for fit, mark in FIT_MARKS.items() if line.startswith(mark)]
    if not starts:
        return [(START_PHASE, run.wall_s)]
    phases = [(START_PHASE, run.lines[starts[0][0]][0])]
    tensorflow_started = False
    for number, (index, fit, mark) in enumerate(starts):
        last = number == len(starts) - 1
        stop = len(run.lines) if last else starts[number + 1][0]
        begin, end = run.lines[index][0], run.wall_s if last else run.lines[stop][0]
        if run.lines[index][1].startswith(mark + RESTORED_MARK):
            phases.append((f"{fit}: {FIT_PHASES[0]}", end - begin))
            continue
        window = run.lines[index + 1 : stop]
        ends = [seconds for seconds, line in window if EPOCH_END.match(line)]
        first = next((seconds for seconds, line in window if EPOCH_BEGIN.match(line)), None)
        set_up = FIT_PHASES[2] if tensorflow_started else FIT_PHASES[1]
        tensorflow_started = True
        if not ends:  # the stage stopped before an epoch ended
            phases.append((f"{fit}: {set_up}", end - begin))
            continue
        if first is None:
            phases.append((f"{fit}: {FIT_PHASES[4]}", ends[0] - begin))
        else:
            phases += [(f"{fit}: {set_up}", first - begin), (f"{fit}: {FIT_PHASES[3]}", ends[0] - first)]
        phases += [
            (f"{fit}: {FIT_PHASES[5]}", ends[-1] - ends[0]),
            (f"{fit}: {FIT_PHASES[7] if last else FIT_PHASES[6]}", end - ends[-1]),
        ]
    return phases


def restored_fits(run: Measurement) -> list[str]:
    """The fits a train stage took from data/memo/ instead of making them."""
    printed = [line for _, line in run.lines]
    return [fit for fit, mark in FIT_MARKS.items() if any(line.startswith(mark + RESTORED_MARK) for line in printed)]


def phase_order(phase: str) -> tuple[int, int]:
    """Where a phase of train_phases comes in any run: the start, then the validation run's, then the final fit's."""
    if phase == START_PHASE:
        return 0, 0
    fit, _, step = phase.partition(": ")
    return 1 + list(FIT_MARKS).index(fit), FIT_PHASES.index(step)


def seconds_per_epoch(epoch_ends: Sequence[float]) -> float | None:
    """Steady-state epoch time: the median gap between consecutive epoch ends
    (the first epoch, which also traces and compiles, is left out)."""
    gaps = [later - earlier for earlier, later in pairwise(epoch_ends)]
    return statistics.median(gaps) if gaps else None


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_bytes = 0
        self.loaded_tensorflow = False
        self._done = threading.Event()

    def run(self) -> None:
        while True:
            self._sample()
            if self._done.wait(SAMPLE_SECONDS):
                return

    def finish(self) -> None:
        self._done.set()
        self.join()

    def _sample(self) -> None:
        pids = _process_tree(self.pid)
        self.peak_bytes = max(self.peak_bytes, sum(_rss_bytes(pid) for pid in pids))
        if not self.loaded_tensorflow:
            self.loaded_tensorflow = any(_maps_tensorflow(pid) for pid in pids)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:  # the process has just exited, or this is not Linux
        return ""


def _process_tree(root: int) -> list[int]:
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            todo.extend(int(child) for child in _read(f"/proc/{pid}/task/{task}/children").split())
    return tree


def _rss_bytes(pid: int) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _maps_tensorflow(pid: int) -> bool:
    return _TENSORFLOW_MARK in _read(f"/proc/{pid}/maps")


def main(args: Sequence[str]) -> int:
    """probe.py LOG -- COMMAND...: runs COMMAND, appends its Measurement to LOG as a JSON line."""
    log, separator, *command = args
    if separator != "--" or not command:
        print("usage: probe.py LOG -- COMMAND...", file=sys.stderr)
        return 2
    result = measure(command)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(result)) + "\n")
    return result.returncode if result.returncode >= 0 else 128 - result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
