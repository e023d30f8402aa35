"""`python -m bench.sweep`: an 8-combination grid on the real reviews (IMDB_ARCHIVE, or
the download), three ways, in a fresh clone of this commit:

- sweep: `python -m pipeline.commands.sweep` on a local Dask cluster of 2 workers,
  each combination in its own clone, pulled from and pushed to a folder DVC remote;
- queue: `dvc exp run --queue` then `dvc queue start -j 2` (DVC's own queue);
- serial: `dvc exp run`, one at a time.

Each way gets its own model.seed values, so none restores another's runs from the
run-cache: the same work three times. The markdown report goes to stdout and --out.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.run import code_version, machine, progress, real_archive
from pipeline import files, markdown
from pipeline.cli import UserError, run
from pipeline.commands import experiments
from pipeline.commands import sweep as sweeping

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("sweep.md")
AXES = ("model.units=8,16", "model.hidden_layers=1,2")
SEEDS = {"sweep": ("1", "2"), "queue": ("3", "4"), "serial": ("5", "6")}
WORKERS = 2
PROJECTED_COMBINATIONS = 64
PROJECTED_WORKERS = (1, 4, 16, 64)
MB = 1e6


def grid(mode: str) -> list[str]:
    return [*AXES, "model.seed=" + ",".join(SEEDS[mode])]


@dataclass
class Modes:
    baseline_seconds: float
    sweep_seconds: float
    queue_seconds: float
    serial_seconds: float
    serial_each: list[float]
    serial_starts: list[float]  # each serial `dvc exp run`'s seconds until its first stage: DVC's own start
    outcomes: list[sweeping.Outcome]
    remote_bytes: int  # what the sweep added to the DVC remote
    origin_bytes: int  # and to the git remote


def checked(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"`{' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return result.stdout


def tree_bytes(folder: Path) -> int:
    return sweeping.tree_bytes(folder)


def prepare(folder: Path, env: dict) -> tuple[Path, Path, Path, float]:
    """A bare origin of this commit, a folder DVC remote, and clone A with the baseline run and pushed."""
    origin, store, a = folder / "origin.git", folder / "store", folder / "A"
    store.mkdir()
    checked(["git", "clone", "-q", "--bare", str(ROOT), str(origin)], folder, env)
    checked(["git", "clone", "-q", str(origin), str(a)], folder, env)
    dvc = [sys.executable, "-m", "dvc"]
    checked([*dvc, "remote", "add", "-d", "bench", str(store)], a, env)
    progress("baseline: dvc repro on the real reviews")
    started = time.monotonic()
    checked([*dvc, "repro"], a, env)
    baseline = time.monotonic() - started
    checked(["git", "add", "-A"], a, env)
    checked(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "baseline"], a, env)
    checked([*dvc, "push", "--run-cache"], a, env)
    checked(["git", "push", "-q", "origin", "HEAD"], a, env)
    return origin, store, a, baseline


def run_sweep(a: Path, env: dict) -> tuple[float, list[sweeping.Outcome]]:
    progress(f"sweep: {' '.join(grid('sweep'))} on a local cluster of {WORKERS} workers")
    previous = Path.cwd()
    os.chdir(a)
    saved = dict(os.environ)
    os.environ.clear()  # the workers start with exactly the environment the other ways' commands get
    os.environ.update(env)
    try:
        args = sweeping.parse_args([*(x for s in grid("sweep") for x in ("-S", s)), "--workers", str(WORKERS),
                                    "--no-report"])
        args.scheduler = None
        started = time.monotonic()
        outcomes = sweeping.sweep(args, "python -m pipeline.commands.sweep " + " ".join(grid("sweep")), progress)
        seconds = time.monotonic() - started
    finally:
        os.chdir(previous)
        os.environ.clear()
        os.environ.update(saved)
    failed = [o for o in outcomes.values() if o.status != sweeping.RAN]
    if failed:
        raise UserError(f"sweep: {failed[0].name} {failed[0].status} {failed[0].reason}")
    return seconds, list(outcomes.values())


def run_queue(a: Path, env: dict) -> float:
    progress(f"queue: {' '.join(grid('queue'))}, dvc queue start -j {WORKERS}")
    dvc = [sys.executable, "-m", "dvc"]
    started = time.monotonic()
    args = [x for s in grid("queue") for x in ("-S", s)]
    checked([*dvc, "exp", "run", "--queue", *args], a, env)
    names = [row["Experiment"] for row in experiment_rows(a) if row.get("State") == "Queued"]
    checked([*dvc, "queue", "start", "-j", str(WORKERS)], a, env)
    previous = Path.cwd()
    os.chdir(a)
    experiments.POLL_SECONDS = 1  # the queue's wall time, not the polling's
    try:
        experiments.wait_for_queue(names)
    finally:
        os.chdir(previous)
    return time.monotonic() - started


def experiment_rows(a: Path) -> list[dict]:
    import dvc.api

    return dvc.api.exp_show(repo=str(a), num=1)


def run_serial(a: Path, env: dict) -> tuple[list[float], list[float]]:
    """Each `dvc exp run`'s seconds, and its seconds until its first stage."""
    progress(f"serial: {' '.join(grid('serial'))}, one dvc exp run at a time")
    each, starts = [], []
    for combination in sweeping.combinations(sweeping.parse_grid(grid("serial"))):
        started = time.monotonic()
        args = [sys.executable, "-m", "dvc", "exp", "run", *sweeping.set_args(combination)]
        code, output, first_stage, _ = sweeping.watch_stages(args, a, env)
        if code != 0 or not first_stage:
            raise UserError(f"`{' '.join(args)}` failed (exit {code}): {output.strip()[-400:]}")
        each.append(time.monotonic() - started)
        starts.append(first_stage)
    return each, starts


def measure(folder: Path) -> Modes:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "IMDB_ARCHIVE": str(real_archive()), "IMDB_CACHE_DIR": str(folder / "download-cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user's Python: each clone's modules compiled once
    origin, store, a, baseline = prepare(folder, env)
    remote_before, origin_before = tree_bytes(store), tree_bytes(origin)
    sweep_seconds, outcomes = run_sweep(a, env)
    remote_bytes, origin_bytes = tree_bytes(store) - remote_before, tree_bytes(origin) - origin_before
    queue_seconds = run_queue(a, env)
    serial_each, serial_starts = run_serial(a, env)
    return Modes(baseline, sweep_seconds, queue_seconds, sum(serial_each), serial_each, serial_starts, outcomes,
                 remote_bytes, origin_bytes)


def projection(per_experiment: float, shared: float, fixed: float) -> list[tuple[int, float, float]]:
    """(workers, expected wall, the share of the time the shared remote and git are busy) for
    PROJECTED_COMBINATIONS: rounds of experiments, but never faster than the shared
    parts taken one at a time."""
    rows = []
    for workers in PROJECTED_WORKERS:
        rounds = math.ceil(PROJECTED_COMBINATIONS / workers) * per_experiment
        serialized = PROJECTED_COMBINATIONS * shared
        wall = fixed + max(rounds, serialized)
        rows.append((workers, wall, serialized / max(rounds, serialized)))
    return rows


def render(modes: Modes) -> str:
    outcomes = sorted(modes.outcomes, key=lambda o: o.name)
    own = [o.run_seconds - o.pull_seconds for o in outcomes]
    overhead = [o.clone_seconds + o.pull_seconds + o.push_seconds for o in outcomes]
    raw_shares = [extra / work for extra, work in zip(overhead, own, strict=True)]
    # what every `dvc exp run` spends before its first stage, anywhere: the serial runs' median
    dvc_start = statistics.median(modes.serial_starts)
    added = [o.clone_seconds + max(o.pull_seconds - dvc_start, 0.0) + o.push_seconds for o in outcomes]
    shares = [extra / work for extra, work in zip(added, own, strict=True)]
    queue_ratio = modes.sweep_seconds / modes.queue_seconds
    seed_list = ", ".join(f"{mode} {'/'.join(seeds)}" for mode, seeds in SEEDS.items())
    lines = [
        "# Sweeps on a cluster: an 8-combination grid three ways",
        "",
        f"Generated by `python -m bench.sweep` on {code_version()}, on the real reviews.",
        f"Machine: {machine()}.",
        "",
        f"Grid: `{' '.join('-S ' + a for a in AXES)} -S model.seed=…` (2 × 2 × 2), each way with seeds of its own "
        f"({seed_list}) so that none restores another's "
        f"runs. The baseline (`dvc repro`, then pushed) took {modes.baseline_seconds:.0f} s first.",
        "",
        *markdown.table_lines(["way", "wall (s)", "per experiment (s)"], [
            [f"sweep: local Dask cluster, {WORKERS} workers, clone + pull + push each", f"{modes.sweep_seconds:.1f}",
             f"{modes.sweep_seconds / 8:.1f}"],
            [f"`dvc queue start -j {WORKERS}`", f"{modes.queue_seconds:.1f}", f"{modes.queue_seconds / 8:.1f}"],
            ["serial `dvc exp run`", f"{modes.serial_seconds:.1f}", f"{modes.serial_seconds / 8:.1f}"],
        ]),
        "",
        "## Targets",
        "",
        *markdown.table_lines(["target", "measured", "met"], [
            ["sweep within 10% of `dvc queue start -j 2`", f"{queue_ratio:.3f} ×", yes(queue_ratio <= 1.10)],
            ["overhead per experiment ≤ 15% of its own run (median)", f"{statistics.median(shares):.1%}",
             yes(statistics.median(shares) <= 0.15)],
            ["overhead per experiment ≤ 15% of its own run (worst)", f"{max(shares):.1%}", yes(max(shares) <= 0.15)],
        ]),
        "",
        "## The sweep, per experiment",
        "",
        "clone: `git clone` + checkout of the commit; pull: from the start of `dvc exp run --pull --allow-missing` "
        "to its first stage (DVC's start and the features fetched, when the worker's cache lacks them); own run: "
        "the rest of the `dvc exp run`; push: `dvc push --run-cache`, then `git push` of the experiment's ref. "
        f"DVC's start: the serial runs' median time from `dvc exp run` to its first stage, {dvc_start:.1f} s, "
        "which every `dvc exp run` spends, here or in the queue. Overhead: what the sweep adds to an experiment, "
        "clone + (pull − DVC's start) + push; with DVC's start counted too, in the last column. "
        "Bytes: the clone's .git; what the worker's DVC cache grew by until the first stage ran (pulled: 0 when "
        "an earlier task on the worker had fetched it all); what the stages added to it (pushed).",
        "",
    ]
    combos = {sweeping.experiment_name(c): c for c in sweeping.combinations(sweeping.parse_grid(grid("sweep")))}
    lines += markdown.table_lines(
        ["experiment", "combination", "clone (s)", "pull (s)", "own run (s)", "push (s)", "overhead", "git MB",
         "pulled MB", "pushed MB", "overhead with DVC's start"],
        [[outcome.name, f"`{sweeping.describe(combos[outcome.name])}`", f"{outcome.clone_seconds:.1f}",
          f"{outcome.pull_seconds:.1f}", f"{work:.1f}", f"{outcome.push_seconds:.1f}", f"{share:.1%}",
          f"{outcome.clone_bytes / MB:.1f}", f"{outcome.pulled_bytes / MB:.1f}", f"{outcome.written_bytes / MB:.1f}",
          f"{raw:.1%}"]
         for outcome, work, share, raw in zip(outcomes, own, shares, raw_shares, strict=True)],
    )
    per_experiment = statistics.mean(o.seconds for o in outcomes)
    # what one experiment holds the shared parts for: its clone (git) and its push (DVC remote, git)
    shared = statistics.mean(o.clone_seconds + o.push_seconds for o in outcomes)
    clone = statistics.mean(o.clone_seconds for o in outcomes)
    push = statistics.mean(o.push_seconds for o in outcomes)
    fixed = modes.sweep_seconds - 8 / WORKERS * per_experiment
    lines += [
        "",
        f"The sweep added {modes.remote_bytes / MB:.1f} MB to the DVC remote and {modes.origin_bytes / MB:.2f} MB "
        "to the git remote (8 experiment refs and their commits).",
        "",
        f"## On paper: {PROJECTED_COMBINATIONS} combinations",
        "",
        f"From the figures above: a task takes {per_experiment:.1f} s on a worker (2 on 2 cores here, so about "
        f"one core each), of which {shared:.1f} s hold the shared git and DVC remotes (clone, push); the driver's "
        f"own part (cluster start, baseline push, collecting the refs, the table) is about {max(fixed, 0):.0f} s. "
        f"Expected wall = fixed + max(⌈{PROJECTED_COMBINATIONS}/workers⌉ × task, {PROJECTED_COMBINATIONS} × "
        "shared part), each worker on a core of its own:",
        "",
        *markdown.table_lines(["workers", "expected wall (s)", "shared remotes busy"],
                              [[str(w), f"{wall:.0f}", f"{busy:.0%}"]
                               for w, wall, busy in projection(per_experiment, shared, max(fixed, 0))]),
        "",
        "Past about "
        f"{per_experiment / shared:.0f} workers (task time ÷ shared part), the remotes are busy all the time: more "
        f"workers no longer shorten the sweep. Of the shared part, the clone takes {clone:.1f} s (it grows with "
        f"the git history; a shallow clone would cut it) and the push {push:.1f} s (the run's new objects and "
        "run-cache entries, and one ref). The driver's one `git ls-remote` and `dvc exp pull` of the refs stay "
        "small beside them.",
        "",
    ]
    return "\n".join(lines)


def yes(met: bool) -> str:
    return "yes" if met else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        report = render(measure(Path(folder)))
    files.write_text(args.out, report)
    print(report)


if __name__ == "__main__":
    run(main)
