"""make sweep: a grid's combinations as tasks on a Dask cluster.

The grid's parsing and naming first (pure). Then real parts on 127.0.0.1: a `dask
scheduler` and two `dask worker` processes the tests can kill, a bare git origin
and a folder DVC remote, a small generated project whose baseline is pushed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.cli import UserError
from pipeline.commands import sweep
from pipeline.limits import LimitError
from testbed.archives import review_members, write_archive
from testbed.project import Project, make_project
from tests.test_pipeline import PER_FOLDER, SMALL
from tests.test_team import commit, git

# ---------------------------------------------------------------- the grid


def test_the_grid_is_the_product_of_the_sets_first_key_slowest():
    grid = sweep.parse_grid(["model.units=8,16", "train.epochs=3,4"])
    assert sweep.combinations(grid) == [
        {"model.units": "8", "train.epochs": "3"}, {"model.units": "8", "train.epochs": "4"},
        {"model.units": "16", "train.epochs": "3"}, {"model.units": "16", "train.epochs": "4"},
    ]


def test_brackets_and_quotes_keep_their_commas():
    assert sweep.parse_set("vocab.ngram_range=[1,2],[1,1]") == ("vocab.ngram_range", ["[1,2]", "[1,1]"])
    assert sweep.parse_set("model.activation='a,b',relu") == ("model.activation", ["'a,b'", "relu"])


def test_names_are_the_same_for_the_same_values_in_any_order_and_differ_otherwise():
    one = sweep.experiment_name({"model.units": "8", "train.epochs": "3"})
    assert one == sweep.experiment_name({"train.epochs": "3", "model.units": "8"})
    assert one != sweep.experiment_name({"model.units": "8", "train.epochs": "4"})
    assert one.startswith("sweep-") and len(one) == len("sweep-") + 12


@pytest.mark.parametrize("sets, message", [
    ([], "no grid"),
    (["model.units"], "expected KEY=VALUE"),
    (["model.units="], "expected KEY=VALUE"),
    (["units=8"], "not a params.yaml key"),
    (["model.units=8,,16"], "an empty value"),
    (["model.units=8,8"], "8 given more than once"),
    (["model.units=8", "model.units=16"], "-S model.units given more than once"),
    (["model.units=range(1,4)"], "list the values"),
])
def test_a_bad_grid_is_one_line_naming_what_is_allowed(sets, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        sweep.parse_grid(sets)


def test_a_grid_over_the_limit_is_refused_before_any_work():
    sets = [f"model.key{i}=1,2,3,4" for i in range(5)]  # 4**5 = 1,024
    with pytest.raises(LimitError, match="1,024 combinations; a sweep may have at most 256"):
        sweep.parse_grid(sets)


def test_missing_keys_and_refs_and_reasons():
    params = {"model": {"units": 16}, "train": {"epochs": 4}}
    assert sweep.missing_keys(params, ["model.units", "model.width", "nope.x"]) == ["model.width", "nope.x"]
    commit_sha = "ab" + "c" * 38
    listing = f"1111\t{sweep.experiment_ref(commit_sha, 'sweep-1')}\n2222\trefs/exps/zz/{'c' * 38}/sweep-2\n"
    assert sweep.names_in_refs(listing, commit_sha) == {"sweep-1"}
    output = (
        "Running stage 'train':\n> python -m pipeline.stages.train\n"
        "error: params.yaml: model.units = -1 is not allowed\n"
        "ERROR: failed to reproduce 'train': failed to run: python -m pipeline.stages.train, exited with 2\n"
    )
    assert sweep.failure_reason(output) == "train: params.yaml: model.units = -1 is not allowed"


# ---------------------------------------------------------------- on a cluster

RUN_ELSEWHERE = 10


@dataclass
class Cluster:
    root: Path
    scheduler_file: Path
    env: dict
    scheduler: subprocess.Popen | None = None
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return json.loads(self.scheduler_file.read_text())["address"]

    def start(self) -> Cluster:
        self.scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                     "--no-dashboard", "--scheduler-file", str(self.scheduler_file))
        wait_for(self.scheduler_file.exists, "the scheduler's address")
        for name in ("w1", "w2"):
            self.start_worker(name)
        return self

    def start_worker(self, name: str) -> None:
        scratch = self.root / name
        scratch.mkdir(exist_ok=True)
        self.workers[name] = self._spawn(
            name, "worker", "--scheduler-file", str(self.scheduler_file), "--nthreads", "1", "--nworkers", "1",
            "--host", "127.0.0.1", "--no-dashboard", "--name", name, tmpdir=scratch,
        )
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(len(self.alive()), timeout=60)

    def alive(self) -> list[str]:
        return [name for name, process in self.workers.items() if process.poll() is None]

    def kill_worker(self, name: str) -> None:
        """The worker, its nanny and the experiment it runs, at once."""
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait()

    def _spawn(self, log: str, *args: str, tmpdir: Path | None = None) -> subprocess.Popen:
        env = {**self.env, **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
        with open(self.root / f"{log}.log", "ab") as output:
            return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], env=env, cwd=self.root,
                                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(condition, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {seconds} s")
        time.sleep(0.2)


@dataclass
class Setup:
    root: Path
    origin: Path
    store: Path
    project: Project
    cluster: Cluster

    def sweep(self, *sets: str, check: bool = True, scheduler: str | None = None) -> subprocess.CompletedProcess:
        args = [a for s in sets for a in ("-S", s)]
        return self.project.run(sys.executable, "-m", "pipeline.commands.sweep", *args,
                                "--scheduler", scheduler or self.cluster.address, check=check)

    def remote_experiments(self) -> list[str]:
        listed = git("ls-remote", str(self.origin), "refs/exps/*")
        return [line.split("/")[-1] for line in listed.splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    origin = root / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    store = root / "store"
    store.mkdir()
    archive = write_archive(root / "aclImdb_v1.tar.gz", review_members(PER_FOLDER, seed=5))
    project = make_project(root / "A", archive, **SMALL)
    project.run("git", "checkout", "-q", "-b", "main")
    project.run("git", "remote", "add", "origin", str(origin))
    project.dvc("remote", "add", "-d", "team", str(store))
    project.repro()
    commit(project, "baseline")
    project.dvc("push", "--run-cache")
    project.run("git", "push", "-q", "origin", "main")
    # run elsewhere and shared: a sweep restores it from the remote's run-cache
    project.dvc("exp", "run", "-S", f"model.units={RUN_ELSEWHERE}")
    project.dvc("push", "--run-cache")
    project.run("git", "checkout", "-q", "--", ".")
    project.dvc("checkout", "-q")
    # The workers have no archive: what they need of the baseline comes from the DVC remote.
    env = {**project.env, "IMDB_ARCHIVE": "/nonexistent/aclImdb_v1.tar.gz"}
    cluster = Cluster(root, root / "scheduler.json", env).start()
    try:
        yield Setup(root, origin, store, project, cluster)
    finally:
        cluster.stop()


def table(setup: Setup) -> str:
    return (setup.project.path / sweep.TABLE).read_text()


def task_folders(scratch: Path, name: str) -> list[Path]:
    """The folders of this experiment's tasks on a worker: in the worker's own folder, which
    Dask makes in the worker's temporary folder (TMPDIR)."""
    return list(scratch.glob(f"dask-scratch-space/worker-*/sweep/{name}-*"))


def clones_running_train(scratch: Path, names: set[str]) -> list[Path]:
    """The clones of these experiments on a worker whose train stage has started."""
    return [folder for name in names for folder in task_folders(scratch, name)
            if (folder / "clone/data/validation/live").exists()]


@pytest.mark.cluster
def test_a_grid_completes_each_combination_once_though_a_worker_is_killed_mid_experiment(setup):
    grid = ("model.units=4,8", "model.hidden_layers=1,2")
    names = {sweep.experiment_name(c) for c in sweep.combinations(sweep.parse_grid(list(grid)))}
    driver = subprocess.Popen(
        [sys.executable, "-m", "pipeline.commands.sweep", *[a for s in grid for a in ("-S", s)],
         "--scheduler", setup.cluster.address],
        cwd=setup.project.path, env=setup.project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for(lambda: clones_running_train(setup.root / "w1", names), "experiment training on w1", seconds=180)
    setup.cluster.kill_worker("w1")
    setup.cluster.start_worker("w3")  # a fresh one, as a cluster manager would start
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, out + err

    assert sorted(setup.remote_experiments()) == sorted(names)  # each once
    assert not list(setup.store.rglob("*.tmp"))  # nothing half-pushed
    text = table(setup)
    assert all(f"| {name} |" in text for name in names)
    assert text.count("| ran |") == 4
    assert (setup.project.path / sweep.REPORT / "index.md").is_file()

    # what a teammate's clone gets: every experiment's metrics, and its data whole from the remote
    b = setup.root / "B"
    git("clone", "-q", str(setup.origin), str(b))
    clone = Project(b, Path("/nonexistent/aclImdb_v1.tar.gz"))
    clone.dvc("exp", "pull", "origin", *sorted(names))
    clone.dvc("exp", "apply", sorted(names)[0])
    clone.dvc("pull")
    assert "up to date" in clone.dvc("status").stdout

    # the same sweep again computes nothing: every combination is collected from the remote
    again = setup.sweep(*grid)
    assert "4 pushed earlier" in again.stdout
    assert table(setup).count(f"| {sweep.EARLIER} |") == 4
    assert sorted(setup.remote_experiments()) == sorted(names)


@pytest.mark.cluster
def test_a_failing_combination_is_listed_with_its_reason_and_one_already_run_is_restored(setup):
    result = setup.sweep(f"model.units=-1,{RUN_ELSEWHERE}", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "1 of the combinations failed" in result.stderr
    text = table(setup)
    failed = sweep.experiment_name({"model.units": "-1"})
    restored = sweep.experiment_name({"model.units": str(RUN_ELSEWHERE)})
    restored_line = next(line for line in text.splitlines() if line.startswith(f"| {restored} |"))
    assert f"`model.units={RUN_ELSEWHERE}`" in restored_line and restored_line.endswith(f"| {sweep.RESTORED} |")
    assert "## Failed" in text
    failed_line = next(line for line in text.splitlines() if line.startswith(f"- {failed}"))
    assert "train: params.yaml: model.units = -1 is not allowed" in failed_line
    assert restored in setup.remote_experiments() and failed not in setup.remote_experiments()


@pytest.mark.cluster
def test_an_interrupted_sweep_run_again_collects_what_finished_and_computes_the_rest(setup):
    grid = ("model.units=6,12,24", "model.hidden_layers=1")  # three tasks for two workers: one waits
    names = {sweep.experiment_name({"model.units": u, "model.hidden_layers": "1"}) for u in ("6", "12", "24")}
    before = set(setup.remote_experiments())
    driver = subprocess.Popen(
        [sys.executable, "-m", "pipeline.commands.sweep", *[a for s in grid for a in ("-S", s)],
         "--scheduler", setup.cluster.address],
        cwd=setup.project.path, env=setup.project.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    scratches = [setup.root / name for name in setup.cluster.alive()]
    wait_for(lambda: any(clones_running_train(scratch, names) for scratch in scratches), "experiment training",
             seconds=180)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # A task already running finishes and pushes (Dask does not stop a running task); the
    # one still waiting is dropped with the driver's connection.
    wait_for(lambda: not [p for scratch in scratches for n in names for p in task_folders(scratch, n)],
             "running task finished", seconds=300)
    finished = set(setup.remote_experiments()) - before
    assert 1 <= len(finished) < 3

    again = setup.sweep(*grid)
    assert "3 combinations at" in again.stdout and f"{len(finished)} pushed earlier" in again.stdout
    assert set(setup.remote_experiments()) - before == names
    assert len(setup.remote_experiments()) == len(set(setup.remote_experiments()))
    text = table(setup)
    assert text.count(f"| {sweep.EARLIER} |") == len(finished)
    assert text.count(f"| {sweep.RAN} |") == 3 - len(finished)


@pytest.mark.cluster
def test_without_a_scheduler_the_sweep_starts_a_local_cluster_of_its_own(setup):
    grid = "model.units=3,7"
    names = {sweep.experiment_name({"model.units": units}) for units in ("3", "7")}
    env = {key: value for key, value in setup.project.env.items() if key != sweep.SCHEDULER_ENV}
    result = subprocess.run([sys.executable, "-m", "pipeline.commands.sweep", "-S", grid, "--workers", "1",
                             "--no-report"], cwd=setup.project.path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert names <= set(setup.remote_experiments())
    assert table(setup).count(f"| {sweep.RAN} |") == 2


@pytest.mark.cluster
def test_an_unreachable_scheduler_or_remote_is_one_line_and_writes_nothing(setup, tmp_path):
    before = setup.project.run("git", "status", "--porcelain").stdout
    stamp = (setup.project.path / sweep.TABLE).stat().st_mtime if (setup.project.path / sweep.TABLE).exists() else None
    down = setup.sweep("model.units=5", scheduler="tcp://127.0.0.1:9", check=False)
    assert down.returncode == 2 and down.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert down.stderr.count("\n") == 1

    setup.project.run("git", "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    try:
        gone = setup.sweep("model.units=5", check=False)
    finally:
        setup.project.run("git", "remote", "set-url", "origin", str(setup.origin))
    assert gone.returncode == 2 and gone.stderr.startswith("error: cannot reach the git remote origin")
    assert gone.stderr.count("\n") == 1

    new_stamp = (setup.project.path / sweep.TABLE).stat().st_mtime if stamp is not None else None
    assert new_stamp == stamp
    assert setup.project.run("git", "status", "--porcelain").stdout == before
    assert sweep.experiment_name({"model.units": "5"}) not in setup.remote_experiments()
