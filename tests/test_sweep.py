"""Watching and comparing experiments: DVCLive's files while a fit runs, a grid of
experiments run by two queue workers, and the comparison report across them."""
import csv
import io
import json
import subprocess
import sys
import time

import pytest

from pipeline.commands import experiments
from testbed.archives import review_members, write_archive
from tests.test_pipeline import PER_FOLDER, SMALL

LIVE_EVAL_LOSS = "data/validation/live/plots/metrics/eval/loss.tsv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def project(project_factory, tmp_path):
    archive = write_archive(tmp_path / "aclImdb_v1.tar.gz", review_members(PER_FOLDER, seed=5))
    return project_factory(archive, **SMALL)


def commit(project, message):
    project.run("git", "add", "-A")
    project.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


@pytest.mark.e2e
def test_dvclive_writes_each_epoch_while_the_validation_run_is_still_fitting(project):
    project.dvc("repro", "vectorize")  # the data first, so that what runs below is the fit
    project.set_params(validate={"epochs": 400})
    run = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "train"], cwd=project.path, env=project.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    live = project.path / LIVE_EVAL_LOSS
    epochs_seen = set()
    while run.poll() is None:
        if live.exists():
            epochs_seen.add(len(live.read_text().splitlines()) - 1)
        time.sleep(0.02)
    assert run.returncode == 0
    assert any(0 < epochs < 400 for epochs in epochs_seen)  # on disk before the fit ended
    assert len(live.read_text().splitlines()) == 1 + 400


def exp_show(project) -> dict[str, dict]:
    """{experiment name: {"params": …, "metrics": …}} from `dvc exp show --json`."""
    shown = json.loads(project.dvc("exp", "show", "--json").stdout)
    found = {}
    for baseline in shown:
        for run in baseline.get("experiments") or []:
            for exp in run["revs"]:
                data = exp["data"]
                found[exp["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": data["metrics"]["metrics/metrics.json"]["data"],
                }
    return found


@pytest.mark.e2e
def test_a_grid_queued_and_run_by_two_workers_then_compared(project, monkeypatch, tmp_path):
    project.repro()
    commit(project, "baseline")
    project.dvc("exp", "run", "--queue", "-S", "model.units=4,8", "-S", "model.hidden_layers=1,2")
    monkeypatch.chdir(project.path)
    queued = [row["Experiment"] for row in _rows(project) if row.get("State") == "Queued"]
    assert len(queued) == 4

    project.dvc("queue", "start", "-j", "2")
    experiments.wait_for_queue(queued)  # what `make experiments` waits with

    shown = exp_show(project)
    assert sorted(shown) == sorted(queued)
    grid = {(e["params"]["model"]["units"], e["params"]["model"]["hidden_layers"]) for e in shown.values()}
    assert grid == {(4, 1), (4, 2), (8, 1), (8, 2)}
    assert all(0 <= e["metrics"]["test"]["accuracy"] <= 1 for e in shown.values())

    table = project.dvc(
        "exp", "show", "--csv", "--hide-workspace", "--sort-by", "metrics/metrics.json:test.accuracy",
        "--sort-order", "desc", "--keep", "test.accuracy",
    ).stdout
    accuracies = [float(row["test.accuracy"]) for row in csv.DictReader(io.StringIO(table)) if row["Experiment"]]
    assert len(accuracies) == 4 and accuracies == sorted(accuracies, reverse=True)

    three = sorted(shown)[:3]
    report = tmp_path / "report"
    project.run(sys.executable, "-m", "pipeline.commands.compare", *three, "--out", str(report))
    index = (report / "index.md").read_text()
    assert all(f"`{name}`" in index for name in three)
    for plot in ("training-and-validation-loss", "roc-curve-test", "validation-run-loss-dvclive"):
        assert (report / f"{plot}.png").read_bytes()[:8] == PNG_SIGNATURE
        spec = json.loads((report / f"{plot}.vl.json").read_text())
        assert {row["rev"] for row in spec["data"]["values"]} == set(three)

    lean = tmp_path / "lean"  # without the specs, for a report kept in git
    project.run(sys.executable, "-m", "pipeline.commands.compare", *three, "--out", str(lean), "--no-specs")
    assert not list(lean.glob("*.vl.json")) and "Vega-Lite spec" not in (lean / "index.md").read_text()
    assert sorted(p.name for p in lean.glob("*.png")) == sorted(p.name for p in report.glob("*.png"))


def _rows(project):
    import dvc.api

    return dvc.api.exp_show(repo=str(project.path), num=1)
