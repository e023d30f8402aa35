"""The chapter's further experiments (section 3.4.6) as DVC experiments.

Queues each variation of the chapter's baseline with `dvc exp run --queue -S …`,
runs them two at a time (`dvc queue start -j 2`), then runs the best
configuration found beyond the chapter on its own (timed), and writes the
comparison to metrics/experiments.md. With `--push GIT_REMOTE`, it then shares
them: each experiment's git ref goes to GIT_REMOTE (`dvc exp push`), its data and
the run-cache to the default DVC remote, so a teammate's `dvc exp pull` gets them.

    python -m pipeline.commands.experiments [--push origin]   (or: make experiments [PUSH=origin])
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline import files, limits, markdown, paths
from pipeline.cli import UserError, run

# Each varies one thing from the chapter's baseline (params.yaml as committed).
CHAPTER_VARIATIONS = {
    "ch-1-hidden-layer": {"model.hidden_layers": 1},
    "ch-3-hidden-layers": {"model.hidden_layers": 3},
    "ch-32-units": {"model.units": 32},
    "ch-64-units": {"model.units": 64},
    "ch-mse": {"model.loss": "mse"},
    "ch-tanh": {"model.activation": "tanh"},
}
# Chosen on the validation split (lowest validation loss), never on the test set.
BEST = (
    "nb-bigrams",
    {
        "vocab.ngram_range": "[1,2]",
        "vocab.num_words": 100000,
        "model.nb_scaling": "true",
        "model.hidden_layers": 1,
        "model.dropout": 0.5,
        "model.optimizer": "adam",
        "train.epochs": "best",
    },
)
TABLE = paths.METRICS_DIR / "experiments.md"
POLL_SECONDS = 5
UNLISTED_SECONDS = 120
QUEUE_JOBS = 2  # experiments run at once: each fit keeps about one core busy


def set_args(changes: dict) -> list[str]:
    return [arg for key, value in changes.items() for arg in ("-S", f"{key}={value}")]


def dvc(*args: str, capture: bool = False) -> str:
    result = subprocess.run(["dvc", *args], text=True, capture_output=capture)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise UserError(f"`dvc {' '.join(args)}` failed" + (f": {detail[0]}" if detail else ""))
    return result.stdout or ""


def wait_for_queue(names: list[str]) -> None:
    """Returns once none of the named experiments is queued or running; a failed one
    is a UserError. Reads DVC's own record of their state (`dvc.api.exp_show`), not
    the text `dvc queue status` prints. One not listed yet counts as pending, for a
    while: DVC lists an experiment a little after its worker takes it."""
    unlisted_since = read_since = time.monotonic()
    while True:
        try:
            states = experiment_states(names)
        except UnreadableStates as error:
            if time.monotonic() - read_since > UNLISTED_SECONDS:
                raise UserError(f"cannot read the experiments' states: {error}") from None
            time.sleep(POLL_SECONDS)
            continue
        read_since = time.monotonic()
        unlisted = [name for name in names if name not in states]
        if not unlisted:
            unlisted_since = time.monotonic()
        elif time.monotonic() - unlisted_since > UNLISTED_SECONDS:
            raise UserError(f"experiments not found: {', '.join(unlisted)}; see `dvc queue status`")
        if not unlisted and not any(state in ("Queued", "Running") for state in states.values()):
            failed = [name for name, state in states.items() if state == "Failed"]
            if failed:
                raise UserError(f"experiments failed: {', '.join(failed)}; see `dvc queue logs <name>`")
            return
        time.sleep(POLL_SECONDS)


class UnreadableStates(Exception):
    """DVC could not list the experiments this time."""


# exp_show opens every running experiment's copy of the project and its git objects,
# which a worker may be creating or removing at that moment: DVC then fails
# (NotDvcRepoError), or waits forever on a pygit2 reader whose thread failed. So it is
# asked in a process of its own, stopped if it takes too long.
_EXP_SHOW = "import json, dvc.api; print(json.dumps(dvc.api.exp_show(num=1), default=str))"
READ_SECONDS = 120


def experiment_states(names: list[str]) -> dict[str, str | None]:
    """{name: DVC's state of it ("Queued", "Running", "Failed", …)} for each named experiment."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _EXP_SHOW], capture_output=True, text=True, timeout=READ_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise UnreadableStates(f"`dvc.api.exp_show` gave no answer in {READ_SECONDS} s") from None
    if result.returncode != 0:
        raise UnreadableStates((result.stderr.strip().splitlines() or ["`dvc.api.exp_show` failed"])[-1])
    try:
        rows = limits.parse_json(result.stdout, non_finite=True)
    except limits.JsonError as error:
        raise UnreadableStates(f"`dvc.api.exp_show` printed no JSON we read ({error})") from None
    return {row["Experiment"]: row.get("State") for row in rows if row.get("Experiment") in names}


def run_queue(names: list[str], jobs: int = QUEUE_JOBS) -> None:
    """Runs what is queued, `jobs` at a time, and waits for the named experiments."""
    dvc("queue", "start", "-j", str(jobs))
    wait_for_queue(names)


def run_experiments() -> float:
    dvc("repro")  # fills the cache, so queued runs reuse the unchanged stages
    for name, changes in CHAPTER_VARIATIONS.items():
        dvc("exp", "run", "--queue", "-f", "-n", name, *set_args(changes))
    run_queue(list(CHAPTER_VARIATIONS))
    started = time.monotonic()
    name, changes = BEST
    dvc("exp", "run", "--temp", "-f", "-n", name, *set_args(changes))
    return time.monotonic() - started


def experiment_rows(names: list[str]) -> dict[str, dict]:
    import dvc.api

    rows = dvc.api.exp_show(num=1)
    found = {row.get("Experiment") or row.get("rev"): row for row in rows}
    missing = [name for name in names if name not in found]
    if missing:
        raise UserError(f"experiments not found: {', '.join(missing)}")
    baseline = next(row for row in rows if row.get("rev") == "workspace")
    return {"baseline (the chapter)": baseline} | {name: found[name] for name in names}


def markdown_table(rows: dict[str, dict], changes: dict[str, dict], best_seconds: float) -> str:
    return results_table(rows, changes, {BEST[0]: best_seconds})


def results_table(
    rows: Mapping[str, dict],
    changes: Mapping[str, Mapping],
    wall_seconds: Mapping[str, float],
    runs: Mapping[str, str] | None = None,
) -> str:
    """A row per experiment: its changed params, test and validation metrics, its wall
    time where measured and, given runs, how its results came (make sweep: ran, restored …)."""
    header = ["experiment", "changed params", "test accuracy", "test loss", "best validation epoch",
              "validation accuracy there", "wall time"] + (["run"] if runs is not None else [])
    cells = []
    for name, row in rows.items():
        changed = ", ".join(f"`{k}={v}`" for k, v in changes.get(name, {}).items()) or "—"
        seconds = f"{wall_seconds[name]:.0f} s" if name in wall_seconds else "—"
        cells.append([
            name, changed, f"{row['test.accuracy']:.4f}", f"{row['test.loss']:.4f}",
            str(int(row["validation.best_epoch"])), f"{row['validation.val_accuracy_at_best']:.4f}", seconds,
        ] + ([runs.get(name, "—")] if runs is not None else []))
    return markdown.table(header, cells)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.commands.experiments",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--push", metavar="GIT_REMOTE",
        help="then push the experiments to this git remote, their data and run-cache to the DVC remote",
    )
    return parser.parse_args(argv)


def push_experiments(git_remote: str, names: list[str]) -> None:
    dvc("exp", "push", "--run-cache", git_remote, *names)
    print(f"pushed {len(names)} experiments to {git_remote} (data and run-cache to the default DVC remote)")


def main() -> None:
    args = parse_args()
    archive = os.environ.get("IMDB_ARCHIVE")
    if archive:  # queued runs happen in a temporary copy: a relative path would not resolve there
        os.environ["IMDB_ARCHIVE"] = str(Path(archive).resolve())
    best_seconds = run_experiments()
    changes = dict(CHAPTER_VARIATIONS) | {BEST[0]: BEST[1]}
    table = markdown_table(experiment_rows(list(changes)), changes, best_seconds)
    preamble = (
        "# Experiments\n\nGenerated by `make experiments` (`python -m pipeline.commands.experiments`) from real runs.\n"
        f"Wall time: the whole `dvc exp run` of that configuration on {os.cpu_count()} cores, "
        "every stage it re-runs included (the chapter's variations ran two at a time, so theirs is not comparable).\n\n"
    )
    files.write_text(TABLE, preamble + table)
    print(table)
    if args.push:
        push_experiments(args.push, list(changes))


if __name__ == "__main__":
    run(main)
