"""A grid of experiments, each combination a task on a Dask cluster.

    python -m pipeline.commands.sweep -S model.units=8,16 -S train.epochs=3,4 [--scheduler tcp://host:8786]
    (or: make sweep GRID="model.units=8,16 train.epochs=3,4" [SCHEDULER=tcp://host:8786])

The grid is written as for `dvc exp run`: each -S names a params.yaml key and its
values, and the grid is the product of them. Without --scheduler (or
DASK_SCHEDULER_ADDRESS), a cluster of --workers local processes is started, so the
same command works on one machine.

Each task clones the git remote at this commit, runs `dvc exp run --pull
--allow-missing` with its combination (the DVC remote's run-cache restores what was
run before, here or anywhere), pushes the data and run-cache to the default DVC
remote, then the experiment's git ref: the ref last, so a ref on the git remote
means its data is there too. A worker keeps one DVC cache for all its tasks, so
what one task pulled, the next finds. An experiment is named from its combination, so a
ref already on the remote is collected, not run again: a retried task, or the
same sweep after an interruption, computes only what is missing.

Writes metrics/sweep.md (a row per experiment, whether it ran or was restored, and
the combinations that failed with their reason) and the comparison report of
them (compare/sweep/, as `make compare` writes it).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import limits, paths
from pipeline.cli import UserError, run

TABLE = paths.METRICS_DIR / "sweep.md"
REPORT = Path("compare/sweep")
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"  # Dask's own: dask-jobqueue and `dask scheduler` users know it
LOCAL_WORKERS = 2  # each experiment keeps about one core busy
RETRIES = 2  # a task that raised (a clone or push cut off) runs again; a dead worker's task always does
CONNECT_SECONDS = 10
NAME_PREFIX = "sweep-"
# plot's outputs are git-tracked (cache: false), so it runs after every restore too: an
# experiment that ran no other stage was restored from the run-cache.
RESTORE_STAGES = {"plot"}
KEY = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+")
FUNCTION_VALUE = re.compile(r"\w+\(.*\)")
OUTPUT_TAIL_LINES = 200

RAN, RESTORED, EARLIER, FAILED = "ran", "restored", "pushed earlier", "failed"


# ---------------------------------------------------------------- the grid (pure)


def split_values(text: str) -> list[str]:
    """`8,16` -> ["8", "16"]; commas inside brackets or quotes stay (`[1,2],[1,1]`)."""
    values, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return values


def parse_set(text: str) -> tuple[str, list[str]]:
    """One -S: `model.units=8,16` -> ("model.units", ["8", "16"])."""
    key, equals, values_text = text.partition("=")
    key = key.strip()
    if not equals or not values_text.strip():
        raise UserError(f"-S {text!r}: expected KEY=VALUE[,VALUE…], e.g. -S model.units=8,16")
    if not KEY.fullmatch(key):
        raise UserError(f"-S {text!r}: {key!r} is not a params.yaml key such as model.units (section.name)")
    values = split_values(values_text)
    for value in values:
        if not value:
            raise UserError(f"-S {text!r}: an empty value; separate the values with single commas")
        if FUNCTION_VALUE.fullmatch(value):
            raise UserError(f"-S {text!r}: {value} is not supported here; list the values (e.g. {key}=1,2,3)")
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise UserError(f"-S {text!r}: {', '.join(repeated)} given more than once")
    return key, values


def parse_grid(sets: Sequence[str], max_combinations: int = limits.MAX_SWEEP_COMBINATIONS) -> dict[str, list[str]]:
    """The -S arguments as {key: values}, refused before any work if their product is
    over the limit or a key is given twice."""
    if not sets:
        raise UserError("no grid: give one or more -S KEY=VALUE[,VALUE…], e.g. -S model.units=8,16")
    grid: dict[str, list[str]] = {}
    for text in sets:
        key, values = parse_set(text)
        if key in grid:
            raise UserError(f"-S {key} given more than once: put its values in one -S {key}=A,B")
        grid[key] = values
    count = math.prod(len(values) for values in grid.values())
    if count > max_combinations:
        raise limits.LimitError(
            f"the grid has {count:,} combinations; a sweep may have at most {max_combinations} "
            "(pipeline/limits.py: MAX_SWEEP_COMBINATIONS)"
        )
    return grid


def combinations(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the grid, the first key varying slowest (as DVC queues them)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def experiment_name(combination: Mapping[str, str]) -> str:
    """The same name for the same values, whatever the order of the -S: a hash of them."""
    canonical = json.dumps(sorted(combination.items()), separators=(",", ":"))
    return NAME_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def set_args(combination: Mapping[str, str]) -> list[str]:
    return [arg for key, value in combination.items() for arg in ("-S", f"{key}={value}")]


def describe(combination: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in combination.items())


def missing_keys(params: Mapping, keys: Iterable[str]) -> list[str]:
    """The dotted keys that params.yaml (parsed) does not have."""
    missing = []
    for key in keys:
        node = params
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing


def experiment_ref(commit: str, name: str) -> str:
    """Where DVC keeps an experiment of this baseline commit in git."""
    return f"refs/exps/{commit[:2]}/{commit[2:]}/{name}"


def names_in_refs(ls_remote: str, commit: str) -> set[str]:
    """The experiment names of this baseline in `git ls-remote` output."""
    prefix = experiment_ref(commit, "")
    return {
        ref.removeprefix(prefix)
        for line in ls_remote.splitlines()
        if len(parts := line.split()) == 2 and (ref := parts[1]).startswith(prefix)
    }


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def failure_reason(output: str) -> str:
    """One line for a failed `dvc exp run`: the stage's own error (a UserError's
    `error: …`) if it printed one, else DVC's last error."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    stage = next((m.group(1) for line in lines if (m := re.match(r"ERROR: failed to reproduce '(\w+)'", line))), "")
    own = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if own:
        return f"{stage}: {own[-1]}" if stage else own[-1]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return (errors or lines[-1:] or ["`dvc exp run` failed without a message"])[-1]


# ---------------------------------------------------------------- a task, on a worker


@dataclass(frozen=True)
class Task:
    name: str
    combination: tuple[tuple[str, str], ...]
    git_url: str
    commit: str


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # RAN, RESTORED, EARLIER or FAILED
    reason: str = ""
    stages: tuple[str, ...] = ()
    worker: str = ""
    clone_seconds: float = 0.0
    pull_seconds: float = 0.0  # from `dvc exp run` until its first stage ran: DVC's start and the pulls
    run_seconds: float = 0.0  # the whole `dvc exp run`, pulls included
    push_seconds: float = 0.0
    clone_bytes: int = 0
    pulled_bytes: int = 0  # what the worker's DVC cache grew by until the first stage ran: 0 when it had it all
    written_bytes: int = 0  # what the stages added to it, pushed unless the remote had it
    seconds: float = 0.0  # the whole task


def tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def command(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, env=dict(env), capture_output=True, text=True)


def checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    """An infrastructure step that failed raises: the engine runs the task again."""
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{what} failed: {last}")
    return result


def worker_env() -> dict[str, str]:
    # Stage commands call `python` and `dvc`: this worker's, with the project's packages.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def on_remote(git_url: str, ref: str, cwd: Path, env: Mapping[str, str]) -> bool:
    listed = checked(command(["git", "ls-remote", git_url, ref], cwd, env), f"git ls-remote {git_url}")
    return bool(listed.stdout.strip())


def worker_folder() -> Path:
    """A folder this worker keeps for its tasks: in Dask's own for the worker, which Dask
    deletes when the worker stops (and, when a killed worker leaves it, when the next
    worker starts beside it)."""
    from distributed import get_worker

    folder = Path(get_worker().local_directory) / "sweep"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def use_cache(clone: Path, cache: Path) -> None:
    """The clone's DVC cache is the worker's, kept from task to task: what one task pulled
    or wrote, the next finds there. DVC's cache is content-addressed and written
    atomically, so tasks side by side on one worker may share it."""
    (clone / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")


def watch_stages(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], at_first_stage: Callable[[], int] = lambda: 0
) -> tuple[int, str, float, int]:
    """Runs a `dvc exp run`: its exit code, the end of its output, the seconds until its
    first stage ran (0 if none did), and what at_first_stage gave then."""
    started = time.monotonic()
    first_stage_seconds, at_first, tail = None, 0, []
    with subprocess.Popen(list(args), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        for line in process.stdout:
            if first_stage_seconds is None and line.startswith("Running stage"):
                first_stage_seconds = time.monotonic() - started
                at_first = at_first_stage()
            tail = [*tail[-OUTPUT_TAIL_LINES:], line]
    return process.returncode, "".join(tail), first_stage_seconds or 0.0, at_first


def run_exp(
    clone: Path, task: Task, env: Mapping[str, str], cache: Path, cache_bytes: int
) -> tuple[int, str, float, int]:
    """`dvc exp run --pull --allow-missing`: its exit code, output, the seconds until
    its first stage ran, and what the cache (of cache_bytes before) had grown by then."""
    args = [sys.executable, "-m", "dvc", "exp", "run", "--pull", "--allow-missing", "-n", task.name,
            *set_args(dict(task.combination))]
    return watch_stages(args, clone, env, lambda: tree_bytes(cache) - cache_bytes)


def run_combination(task: Task) -> Outcome:
    """Runs one combination in its own clone and pushes it; on a Dask worker."""
    started = time.monotonic()
    env = worker_env()
    worker = socket.gethostname()
    folder = worker_folder()
    cache = folder / "dvc-cache"
    scratch = Path(tempfile.mkdtemp(prefix=f"{task.name}-", dir=folder))
    try:
        ref = experiment_ref(task.commit, task.name)
        if on_remote(task.git_url, ref, scratch, env):  # an earlier attempt pushed it
            return Outcome(task.name, EARLIER, worker=worker)
        clone = scratch / "clone"
        checked(command(["git", "clone", "-q", "--no-checkout", task.git_url, str(clone)], scratch, env), "git clone")
        checked(command(["git", "checkout", "-q", task.commit], clone, env), f"git checkout {task.commit[:7]}")
        use_cache(clone, cache)
        cloned, cache_bytes = time.monotonic(), tree_bytes(cache)
        code, output, pull_seconds, pulled_bytes = run_exp(clone, task, env, cache, cache_bytes)
        ran = time.monotonic()
        timing = dict(worker=worker, clone_seconds=cloned - started, pull_seconds=pull_seconds,
                      run_seconds=ran - cloned, clone_bytes=tree_bytes(clone / ".git"), pulled_bytes=pulled_bytes)
        if code != 0:
            return Outcome(task.name, FAILED, failure_reason(output), tuple(stages_run(output)), **timing)
        written_bytes = tree_bytes(cache) - cache_bytes - pulled_bytes
        push(clone, task, ref, env)
        stages = tuple(stages_run(output))
        status = RESTORED if set(stages) <= RESTORE_STAGES else RAN
        return Outcome(task.name, status, "", stages, push_seconds=time.monotonic() - ran,
                       written_bytes=written_bytes, seconds=time.monotonic() - started, **timing)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def push(clone: Path, task: Task, ref: str, env: Mapping[str, str]) -> None:
    """The data and run-cache first, the git ref last: a ref on the remote means a
    complete experiment (`dvc exp push` pushes the ref first, and starts DVC once more).
    A ref another attempt pushed meanwhile is the same combination's: kept, not replaced."""
    checked(command([sys.executable, "-m", "dvc", "push", "--run-cache"], clone, env), "dvc push --run-cache")
    pushed = command(["git", "push", "-q", task.git_url, f"{ref}:{ref}"], clone, env)
    if pushed.returncode != 0 and not on_remote(task.git_url, ref, clone, env):
        checked(pushed, "git push of the experiment")


# ---------------------------------------------------------------- the driver


@dataclass
class Project:
    root: Path
    commit: str
    git_remote: str
    git_url: str


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def last_line(result: subprocess.CompletedProcess) -> str:
    return (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"])[-1]


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"`dvc {' '.join(args)}` failed: {last_line(result).removeprefix('ERROR: ')}")
    return result


def find_project(git_remote: str) -> Project:
    top = git("rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UserError("not inside a git repository: run the sweep from the project")
    root = Path(top.stdout.strip())
    commit = git("rev-parse", "HEAD", cwd=root).stdout.strip()
    url = git("remote", "get-url", git_remote, cwd=root)
    if url.returncode != 0:
        raise UserError(f"no git remote named {git_remote!r} (`git remote -v` lists them); give one with --git-remote")
    return Project(root, commit, git_remote, url.stdout.strip())


def check_keys(root: Path, grid: Mapping[str, Sequence[str]]) -> None:
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    missing = missing_keys(params, grid)
    if missing:
        sections = ", ".join(params)
        raise UserError(f"params.yaml has no {', '.join(missing)}; its sections are {sections}")


def remote_experiments(project: Project) -> set[str]:
    """The experiments of this commit already on the git remote; an unreachable
    remote, or a commit not pushed there, is a UserError."""
    listed = git("ls-remote", project.git_url, cwd=project.root)
    if listed.returncode != 0:
        raise UserError(f"cannot reach the git remote {project.git_remote} ({project.git_url}): {last_line(listed)}")
    fetched = git("fetch", "-q", project.git_remote, cwd=project.root)
    contains = git("branch", "-r", "--contains", project.commit, cwd=project.root)
    if fetched.returncode != 0 or not contains.stdout.strip():
        raise UserError(
            f"commit {project.commit[:7]} is not on the git remote {project.git_remote}: "
            "push it first (the workers clone it from there)"
        )
    return names_in_refs(listed.stdout, project.commit)


def check_dvc_remote(root: Path) -> str:
    """The default DVC remote's name; a folder remote that is not there is a UserError
    (DVC would take it for an empty remote)."""
    name = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=root,
                          capture_output=True, text=True).stdout.strip()
    if not name:
        raise UserError("no default DVC remote: the workers push there (`dvc remote add -d NAME URL`, committed)")
    url = dvc("config", f"remote.{name}.url", cwd=root).stdout.strip()
    if "://" not in url:
        folder = (root / ".dvc" / url).resolve()
        if not folder.is_dir():
            raise UserError(f"the DVC remote {name} ({url}) is not reachable: no such folder")
    return name


def connect(scheduler: str | None, workers: int):
    """A Dask client: of the scheduler at this address, or of a local cluster."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        import logging

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster)
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {detail}") from None


def run_tasks(client, tasks: Sequence[Task], retries: int, say=print) -> dict[str, Outcome]:
    from distributed import as_completed

    futures = {
        client.submit(run_combination, task, key=f"{task.name}-{task.commit[:12]}", retries=retries, pure=False): task
        for task in tasks
    }
    outcomes = {}
    for future in as_completed(futures):
        task = futures[future]
        try:
            outcome = future.result()
        except Exception as error:  # every attempt failed: a worker died each time, or a step kept failing
            outcome = Outcome(task.name, FAILED, f"{type(error).__name__}: {first_line(error)}")
        outcomes[task.name] = outcome
        say(progress_line(outcome, dict(task.combination)))
    return outcomes


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [""])[0]


def progress_line(outcome: Outcome, combination: Mapping[str, str]) -> str:
    if outcome.status == FAILED:
        return f"sweep: {describe(combination)} failed: {outcome.reason}"
    timing = f" in {outcome.seconds:.0f} s on {outcome.worker}" if outcome.seconds else ""
    return f"sweep: {describe(combination)} {outcome.status} ({outcome.name}){timing}"


def sweep_markdown(
    rows: Mapping[str, dict],
    by_name: Mapping[str, Mapping[str, str]],
    outcomes: Mapping[str, Outcome],
    command_line: str,
) -> str:
    from pipeline.commands.experiments import results_table

    done = dict(rows)
    runs = {name: outcomes[name].status if name in outcomes else EARLIER for name in done}
    seconds = {name: outcomes[name].run_seconds for name in done if name in outcomes and outcomes[name].run_seconds}
    failed = [(name, outcome) for name, outcome in outcomes.items() if outcome.status == FAILED]
    text = (
        "# Sweep\n\nWritten by `" + command_line + "`: each combination a `dvc exp run` on a Dask worker. "
        f"run: {RAN} (its stages ran), {RESTORED} (from the run-cache), {EARLIER} (by an earlier sweep "
        "or attempt: collected). Wall time: the `dvc exp run`, pulls included.\n\n"
    )
    text += results_table(done, by_name, seconds, runs) if done else "No combination completed.\n"
    if failed:
        text += "\n## Failed\n\n" + "".join(
            f"- {name} (`{describe(by_name[name])}`): {outcome.reason}\n" for name, outcome in failed
        )
    return text


def experiment_rows(root: Path, names: Sequence[str]) -> dict[str, dict]:
    import dvc.api

    rows = dvc.api.exp_show(repo=str(root), num=1)
    found = {row.get("Experiment"): row for row in rows if row.get("Experiment") in names}
    return {name: found[name] for name in names if name in found}


def collect(project: Project, names: Sequence[str]) -> dict[str, dict]:
    """The experiments' refs from the git remote (their metrics and plots are in git),
    then their rows."""
    if names:
        dvc("exp", "pull", "--no-cache", "-f", project.git_remote, *names, cwd=project.root)
    return experiment_rows(project.root, names)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.commands.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("params", nargs="*", metavar="KEY=VALUES", help="more grid axes, as -S takes them")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE[,VALUE…]",
                        help="a params.yaml key and its values; several -S: every combination")
    parser.add_argument("--scheduler", default=os.environ.get(SCHEDULER_ENV) or None,
                        help=f"a Dask scheduler's address, tcp://host:port (default: ${SCHEDULER_ENV}, "
                             "else a local cluster)")
    parser.add_argument("--workers", type=int, default=LOCAL_WORKERS,
                        help=f"the local cluster's workers (default {LOCAL_WORKERS})")
    parser.add_argument("--retries", type=int, default=RETRIES,
                        help=f"runs of a task that raised, after the first (default {RETRIES})")
    parser.add_argument("--git-remote", default="origin", help="the workers clone and push here (default origin)")
    parser.add_argument("--table", type=Path, default=TABLE, help=f"the results table (default {TABLE})")
    parser.add_argument("--out", type=Path, default=REPORT, help=f"the comparison report (default {REPORT}/)")
    parser.add_argument("--no-report", action="store_true", help="no comparison report")
    return parser.parse_args(argv)


def check_counts(args: argparse.Namespace) -> None:
    if not 1 <= args.workers <= limits.MAX_SWEEP_LOCAL_WORKERS:
        raise UserError(f"--workers {args.workers}: give 1 to {limits.MAX_SWEEP_LOCAL_WORKERS}")
    if not 0 <= args.retries <= limits.MAX_SWEEP_RETRIES:
        raise UserError(f"--retries {args.retries}: give 0 to {limits.MAX_SWEEP_RETRIES}")


def sweep(args: argparse.Namespace, command_line: str, say=print) -> dict[str, Outcome]:
    from pipeline import files
    from pipeline.commands import compare

    grid = parse_grid([*args.set_param, *args.params])
    check_counts(args)
    project = find_project(args.git_remote)
    check_keys(project.root, grid)
    by_name = {experiment_name(c): c for c in combinations(grid)}
    check_dvc_remote(project.root)
    earlier = remote_experiments(project)
    todo = [Task(name, tuple(c.items()), project.git_url, project.commit)
            for name, c in by_name.items() if name not in earlier]
    say(f"sweep: {len(by_name)} combinations at {project.commit[:7]}, {len(by_name) - len(todo)} pushed earlier")
    outcomes: dict[str, Outcome] = {}
    if todo:
        client = connect(args.scheduler, args.workers)
        try:
            # the baseline's data and run-cache, so that no worker computes them again
            dvc("push", "--run-cache", cwd=project.root)
            outcomes = run_tasks(client, todo, args.retries, say)
        finally:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    done = [name for name in by_name if name in earlier or outcomes.get(name, Outcome(name, FAILED)).status != FAILED]
    rows = collect(project, done)
    table = project.root / args.table if not args.table.is_absolute() else args.table
    files.write_text(table, sweep_markdown(rows, by_name, outcomes, command_line))
    say(f"sweep: wrote {table}")
    if done and not args.no_report:
        out = args.out if args.out.is_absolute() else project.root / args.out
        previous = Path.cwd()
        os.chdir(project.root)
        try:
            compare.write_report(out, done, specs_too=False)
        finally:
            os.chdir(previous)
        say(f"sweep: wrote {out / compare.INDEX}")
    return outcomes


def main(argv: list[str] | None = None) -> None:
    outcomes = sweep(parse_args(argv), "python -m pipeline.commands.sweep " + " ".join(sys.argv[1:]))
    failed = [o for o in outcomes.values() if o.status == FAILED]
    if failed:
        raise UserError(f"{len(failed)} of the combinations failed (listed in the table): {failed[0].reason}")


def outcome_json(outcome: Outcome) -> dict:
    return asdict(outcome)


if __name__ == "__main__":
    run(main)
