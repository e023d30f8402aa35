"""Working as a team: clones on separate "machines" (folders) sharing one git origin and
one DVC remote, a shared folder or a real SSH server on 127.0.0.1.

Clone A runs the pipeline, an experiment, and pushes everything. Every other clone
starts from `git clone` with nothing else, and has no dataset archive: if one of
them ran the download stage, it would fail.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from testbed.archives import review_members, write_archive
from testbed.project import Project, make_project, stages_run
from tests.ssh_server import SSHServer
from tests.test_pipeline import PER_FOLDER, SMALL

pytestmark = pytest.mark.team

MODEL_STAGES = ["train", "evaluate", "plot"]
ARTIFACT = "imdb-sentiment-model"
MODEL = "data/model/model.keras"
BUNDLE = "data/bundle/imdb-sentiment.npz"
NO_ARCHIVE = "/nonexistent/aclImdb_v1.tar.gz"


class FolderRemote:
    """A shared folder (or NFS mount) as the DVC remote."""

    kind = "folder"

    def __init__(self, root: Path):
        self.store = root / "store"
        self.store.mkdir()

    def url(self, store: Path | None = None) -> str:
        return str(store or self.store)

    def credentials(self, project: Project) -> None:
        """A folder needs none."""

    def remote_config(self) -> list[str]:
        return []

    def stop(self) -> None:
        pass


class SSHRemote:
    """An SSH server on 127.0.0.1 as the DVC remote, with key authentication."""

    kind = "ssh"

    def __init__(self, root: Path):
        self.served = root / "served"
        self.served.mkdir()
        self.store = self.served / "store"
        self.store.mkdir()
        self.server = SSHServer(self.served, root / "keys").start()

    def url(self, store: Path | None = None) -> str:
        path = (store or self.store).relative_to(self.served)
        return f"ssh://127.0.0.1:{self.server.port}/{path}"

    def credentials(self, project: Project, key: Path | None = None) -> None:
        """Each machine keeps its own key in .dvc/config.local, never in git."""
        project.dvc("remote", "modify", "--local", "team", "keyfile", str(key or self.server.client_key))

    def remote_config(self) -> list[str]:
        return ["--remote-config", f"keyfile={self.server.client_key}"]

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Team:
    root: Path
    remote: FolderRemote | SSHRemote
    origin: Path
    a: Project
    commits: list[str]
    narrow_metrics: bytes  # metrics/metrics.json of the experiment A ran and pushed
    narrow_model: str  # md5 of its model

    def locked_md5(self, commit_index: int, stage: str, path: str) -> str:
        """The md5 that dvc.lock recorded for an output at one of A's commits."""
        lock = yaml.safe_load(git("show", f"{self.commits[commit_index]}:dvc.lock", cwd=self.a.path))
        return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)

    def clone(self, name: str) -> Project:
        path = self.root / name
        git("clone", "-q", str(self.origin), str(path))
        project = Project(path, Path(NO_ARCHIVE))
        self.remote.credentials(project)
        return project


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def commit(project: Project, message: str) -> str:
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", message)
    return project.run("git", "rev-parse", "HEAD").stdout.strip()


def ran(result: subprocess.CompletedProcess) -> list[str]:
    return stages_run(result.stdout + result.stderr)


def live_files(live_dir: str, *subsets: str) -> list[str]:
    """What DVCLive's Keras callback writes for a fit: a summary and a file per metric."""
    metrics = [f"{live_dir}/plots/metrics/{subset}/{name}.tsv" for subset in subsets for name in ("loss", "accuracy")]
    return [f"{live_dir}/metrics.json", *metrics]


def data_files(project: Project) -> set[str]:
    """What DVC fetched or the stages wrote under data/; the fits train keeps for reuse
    (data/memo/) aside."""
    memo = project.path / "data/memo"
    return {str(p.relative_to(project.path)) for p in (project.path / "data").rglob("*")
            if p.is_file() and memo not in p.parents}


@pytest.fixture(scope="module", params=["folder", "ssh"])
def team(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    remote = FolderRemote(root) if request.param == "folder" else SSHRemote(root)
    try:
        yield _clone_a_pushes_everything(root, remote)
    finally:
        remote.stop()


def _clone_a_pushes_everything(root: Path, remote) -> Team:
    origin = root / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin))
    archive = write_archive(root / "aclImdb_v1.tar.gz", review_members(PER_FOLDER, seed=5))
    a = make_project(root / "A", archive, **SMALL)
    a.run("git", "checkout", "-q", "-b", "main")
    a.run("git", "remote", "add", "origin", str(origin))
    a.dvc("remote", "add", "-d", "team", remote.url())
    remote.credentials(a)

    a.repro()
    commits = [commit(a, "first run")]
    a.set_params(model={"units": 8})
    a.repro()
    commits.append(commit(a, "8 units"))
    a.run("git", "tag", "-a", f"{ARTIFACT}@v1.0.0", "-m", "the 8-unit model")
    # As the README says: after a run, push its data and run-cache, then the commits.
    a.dvc("push", "--run-cache")
    a.run("git", "push", "-q", "origin", "main", f"{ARTIFACT}@v1.0.0")
    a.dvc("exp", "run", "-n", "narrow", "-S", "model.units=4")  # results stay in A's workspace
    # what `make experiments PUSH=origin` does with the experiments it ran
    a.run(
        sys.executable,
        "-c",
        "from pipeline.commands.experiments import push_experiments; push_experiments('origin', ['narrow'])",
    )
    return Team(
        root, remote, origin, a, commits,
        narrow_metrics=(a.path / "metrics/metrics.json").read_bytes(),
        narrow_model=md5(a.path / MODEL),
    )


def test_a_fresh_clone_pulls_a_workspace_that_needs_no_stage_and_predicts_at_once(team):
    b = team.clone("B")
    b.dvc("pull")
    assert "up to date" in b.dvc("status").stdout
    assert b.repro() == []
    # the model of the pushed commit, scored without the archive or any training
    assert md5(b.path / MODEL) == team.locked_md5(1, "train", MODEL)
    predicted = b.run(sys.executable, "-m", "pipeline.commands.predict", "--json", "wonderful brilliant film")
    assert json.loads(predicted.stdout)["label"] in ("positive", "negative")

    # results of two commits compared in the clone
    diff = json.loads(b.dvc("metrics", "diff", *team.commits, "--json").stdout)
    accuracy = diff["metrics/metrics.json"]["test.accuracy"]
    assert set(accuracy) >= {"old", "new"}
    plots = json.loads(b.dvc("plots", "diff", *team.commits, "--json").stdout)
    loss = plots["data"]["Training and validation loss"][0]
    assert sorted(loss["revisions"]) == sorted(team.commits)


def test_an_experiment_run_elsewhere_is_restored_from_the_remote_run_cache_not_retrained(team):
    c = team.clone("C")
    result = c.dvc("exp", "run", "-S", "model.units=4", "--pull", "--allow-missing")
    output = result.stdout + result.stderr
    # plot is the only stage that runs, and it never loads TensorFlow
    assert ran(result) == ["plot"]
    for stage in ("train", "evaluate"):
        assert f"Stage '{stage}' is cached - skipping run" in output
    assert (c.path / "metrics/metrics.json").read_bytes() == team.narrow_metrics
    assert md5(c.path / MODEL) == team.narrow_model


def test_a_new_experiment_in_an_empty_clone_fetches_only_what_the_model_stages_read(team):
    c = team.clone("C-new")
    assert ran(c.dvc("exp", "run", "-S", "model.units=32", "--pull", "--allow-missing")) == MODEL_STAGES
    fetched_or_written = data_files(c)
    assert fetched_or_written == {
        # fetched: the features, the classes, and what the bundle carries besides the weights
        "data/features/train.npz", "data/features/train-labels.npy",
        "data/features/test.npz", "data/features/test-labels.npy", "data/vocab/classes.json",
        "data/vocab/word_index.json", "data/features/idf.npy",
        # written by the stages that ran
        "data/model/model.keras", "data/model/bundle.npz",
        *live_files("data/validation/live", "train", "eval"), *live_files("data/model/live", "train"),
        "data/evaluation/metrics.json", "data/evaluation/roc.csv", "data/evaluation/confusion.csv",
        "data/predictions/test.parquet", "data/bundle/imdb-sentiment.npz", "data/bundle/params.sha256",
    }
    assert "up to date" not in c.dvc("status").stdout  # the skipped stages' outputs are missing, and said so
    assert len(list((c.path / "data/memo").iterdir())) == 2  # the validation run and the final fit, kept


def test_going_back_to_params_already_run_restores_the_model_stages_from_the_local_run_cache(team):
    # A ran 16 units first, then 8, then the 4-unit experiment now in its workspace.
    team.a.set_params(model={"units": 16})
    assert team.a.repro() == ["plot"]
    assert md5(team.a.path / MODEL) == team.locked_md5(0, "train", MODEL)


def test_experiments_travel_through_git_with_their_metrics_and_model(team):
    b = team.clone("B-exp")
    b.dvc("exp", "pull", "origin", "narrow")
    shown = json.loads(b.dvc("exp", "show", "--json").stdout)
    experiments = {
        exp["name"]: exp["data"]
        for baseline in shown
        for run in baseline.get("experiments") or []
        for exp in run["revs"]
    }
    assert json.loads(team.narrow_metrics)["test"]["accuracy"] == (
        experiments["narrow"]["metrics"]["metrics/metrics.json"]["data"]["test"]["accuracy"]
    )
    b.dvc("exp", "apply", "narrow")
    b.dvc("pull")
    assert md5(b.path / MODEL) == team.narrow_model
    assert "up to date" in b.dvc("status").stdout


def test_the_model_is_an_artifact_anyone_can_get_and_score_with_outside_the_project(team, tmp_path):
    outside = Project(tmp_path, Path(NO_ARCHIVE))
    outside.dvc("artifacts", "get", str(team.origin), ARTIFACT, "-o", "model.npz", *team.remote.remote_config())
    assert md5(tmp_path / "model.npz") == team.locked_md5(1, "evaluate", BUNDLE)
    scored = outside.run(sys.executable, "-m", "pipeline.commands.predict", "--model", "model.npz", "--json",
                         "wonderful film")
    assert json.loads(scored.stdout)["label"] in ("positive", "negative")


def test_a_pull_from_a_remote_missing_objects_names_them_and_status_tells_the_truth(team):
    damaged = team.remote.store.with_name("store-damaged")
    shutil.copytree(team.remote.store, damaged)
    model_md5 = team.locked_md5(1, "train", MODEL)
    (damaged / "files" / "md5" / model_md5[:2] / model_md5[2:]).unlink()
    b = team.clone("B-damaged")
    b.dvc("remote", "modify", "--local", "team", "url", team.remote.url(damaged))

    pulled = b.dvc("pull", check=False)
    assert pulled.returncode != 0
    assert "data/model/model.keras" in pulled.stderr and model_md5 in pulled.stderr
    # everything else arrived whole: only the Keras model is missing (no stage reads it)
    status = json.loads(b.dvc("status", "--json").stdout)
    assert status == {"train": [{"changed outs": {MODEL: "not in cache"}}]}


@pytest.mark.parametrize("team", ["ssh"], indirect=True)
def test_a_push_cut_off_by_the_server_dying_completes_when_run_again(team):
    server = SSHServer(team.root / "flaky", team.root / "flaky-keys")
    (team.root / "flaky" / "store").mkdir(parents=True)
    cache_bytes = sum(p.stat().st_size for p in (team.a.path / ".dvc/cache/files").rglob("*") if p.is_file())
    server.start(die_after_bytes=cache_bytes // 3)
    try:
        a = team.a
        a.dvc("remote", "add", "flaky", f"ssh://127.0.0.1:{server.port}/store")
        a.dvc("remote", "modify", "--local", "flaky", "keyfile", str(server.client_key))
        cut = a.dvc("push", "-r", "flaky", check=False)
        assert cut.returncode != 0 and "failed to push data to the cloud" in cut.stderr
        assert server.process.wait(timeout=30) == -9  # it died mid-transfer, as asked
        assert any((team.root / "flaky" / "store").rglob("*.tmp")), "the cut came in the middle of a file"

        server.start()
        assert "new:" in a.dvc("status", "-c", "-r", "flaky").stdout  # what the cut left out
        assert a.dvc("push", "-r", "flaky").returncode == 0
        assert "are in sync" in a.dvc("status", "-c", "-r", "flaky").stdout
    finally:
        server.stop()


@pytest.mark.parametrize("team", ["ssh"], indirect=True)
def test_a_key_the_server_refuses_fails_with_one_clear_message_and_fetches_nothing(team):
    b = team.clone("B-stranger")
    team.remote.credentials(b, key=team.remote.server.stranger_key)
    pulled = b.dvc("pull", check=False)
    assert pulled.returncode != 0
    assert "Permission denied for user" in pulled.stderr and "127.0.0.1" in pulled.stderr
    assert "Traceback" not in pulled.stderr
    assert data_files(b) == set()


def test_an_unreachable_remote_fails_with_one_clear_message_and_changes_nothing(team, tmp_path):
    b = team.clone("B-unreachable")
    if team.remote.kind == "ssh":
        with contextlib.closing(socket.socket()) as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]  # nothing listens there once the probe closes
        b.dvc("remote", "modify", "--local", "team", "url", f"ssh://127.0.0.1:{closed_port}/store")
        cause = f"Connect call failed ('127.0.0.1', {closed_port})"
    else:
        # DVC takes a folder that is not there (an NFS share not mounted) for an empty
        # remote: it names every file it could not get.
        b.dvc("remote", "modify", "--local", "team", "url", str(tmp_path / "unmounted"))
        cause = "Checkout failed for following targets"
    pulled = b.dvc("pull", check=False)
    assert pulled.returncode != 0 and cause in pulled.stderr
    assert "Traceback" not in pulled.stderr
    assert data_files(b) == set()
    assert b.run("git", "status", "--porcelain").stdout == ""
