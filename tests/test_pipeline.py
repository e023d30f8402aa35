"""End to end: `dvc repro` on a small archive the test builds, in a fresh repository."""
import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from testbed.archives import official_extras, review_members, write_archive

PER_FOLDER = 60
SMALL = dict(
    download={"reviews_per_folder": PER_FOLDER},
    vocab={"num_words": 30},
    model={"batch_size": 16},
    validate={"val_size": 40, "epochs": 3},
    train={"epochs": "best"},
)
ALL_STAGES = ["download", "vocab", "vectorize", "train", "evaluate", "plot"]
KILL_MID_WRITE = Path(__file__).with_name("kill_mid_write.py")


@pytest.fixture
def archive(tmp_path):
    members = {**review_members(PER_FOLDER, seed=5), **official_extras()}
    return write_archive(tmp_path / "aclImdb_v1.tar.gz", members)


def check_outputs(path, num_words):
    n = 2 * PER_FOLDER
    for split in ("train", "test"):
        raw = pq.read_table(path / f"data/raw/{split}.parquet")
        assert raw.column_names == ["id", "label", "text"] and raw.num_rows == n
        encoded = pq.read_table(path / f"data/encoded/{split}.parquet")
        sequences = encoded["sequence"].to_pylist()
        assert all(s[0] == 1 for s in sequences)
        assert max(max(s) for s in sequences) == num_words - 1
        x = scipy.sparse.load_npz(path / f"data/features/{split}.npz")
        assert x.shape == (n, num_words) and x.has_sorted_indices
        twin = pq.read_table(path / f"data/features/{split}.parquet")
        assert twin["indices"].to_pylist() == [sorted(set(s)) for s in sequences]
        classes = ["negative", "positive"]
        assert twin["label"].to_pylist() == encoded["label"].to_pylist()
        assert [classes[i] for i in encoded["label"].to_pylist()] == raw["label"].to_pylist()

    word_index = json.loads((path / "data/vocab/word_index.json").read_text())
    assert sorted(word_index.values()) == list(range(1, len(word_index) + 1))
    assert json.loads((path / "data/vocab/classes.json").read_text()) == ["negative", "positive"]
    assert (path / "data/vocab/decoded_samples.txt").read_text().startswith("# train review 0: id 0")
    assert (path / "data/model/model.keras").stat().st_size > 0

    history = (path / "metrics/history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and len(history) == 1 + 3
    metrics = json.loads((path / "metrics/metrics.json").read_text())
    confusion = metrics["test"]["confusion_matrix"]
    assert sum(confusion.values()) == n
    # model.evaluate's accuracy and the thresholded predictions describe the same model
    assert metrics["test"]["accuracy"] == pytest.approx((confusion["tn"] + confusion["tp"]) / n, abs=1e-6)
    assert metrics["validation"]["epochs"] == 3
    assert len((path / "metrics/roc.csv").read_text().splitlines()) == 1 + 201
    assert len((path / "metrics/confusion.csv").read_text().splitlines()) == 1 + n
    predictions = pq.read_table(path / "data/predictions/test.parquet")
    assert predictions.num_rows == n
    for figure in ("loss", "accuracy"):
        assert (path / f"metrics/{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_dvc_repro_builds_everything_then_reruns_only_what_a_change_touches(project_factory, archive):
    project = project_factory(archive, **SMALL)
    assert project.repro() == ALL_STAGES
    check_outputs(project.path, num_words=30)
    first_features = (project.path / "data/features/train.npz").read_bytes()

    assert project.repro() == []
    assert "up to date" in project.dvc("status").stdout

    project.set_params(model={"units": 8})
    assert project.repro() == ["train", "evaluate", "plot"]
    assert (project.path / "data/features/train.npz").read_bytes() == first_features

    project.set_params(vocab={"num_words": 20})
    assert project.repro() == ALL_STAGES[1:]
    check_outputs(project.path, num_words=20)


@pytest.mark.e2e
def test_bad_params_stop_a_stage_with_one_line_and_keep_its_outputs(project_factory, archive):
    project = project_factory(archive, **SMALL)
    project.repro()
    history = (project.path / "metrics/history.csv").read_bytes()

    project.set_params(model={"activation": "relu6"}, validate={"val_size": 500})
    result = project.run("python", "-m", "pipeline.stages.train", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: model.activation = 'relu6' is not allowed; "
        "expected one of relu, tanh, sigmoid, elu, selu, gelu, swish, linear"
    ]
    project.set_params(model={"activation": "relu"})
    result = project.run("python", "-m", "pipeline.stages.train", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(
        "validate.val_size = 500 leaves nothing to train on; expected an integer from 1 to 119 "
        "(the training split has 120 reviews)"
    )
    assert (project.path / "metrics/history.csv").read_bytes() == history


@pytest.mark.e2e
def test_missing_input_tells_the_user_to_run_the_pipeline(project_factory, archive):
    project = project_factory(archive, **SMALL)
    result = project.run("python", "-m", "pipeline.stages.vectorize", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: missing input data/encoded/train.parquet: run `dvc repro` to build it"
    )


def data_files(path) -> dict[str, bytes]:
    """Every output under data/ by relative path; temporary files of killed writes and the
    fits train keeps for reuse (data/memo/) aside."""
    memo = path / "data/memo"
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted((path / "data").rglob("*"))
        if file.is_file() and not file.name.endswith(".tmp") and memo not in file.parents
    }


def assert_each_output_whole_or_absent(path, expected: dict[str, bytes]) -> None:
    # The stages are deterministic, so a complete output has exactly the uninterrupted run's bytes.
    found = data_files(path)
    assert set(found) <= set(expected)
    for name, data in found.items():
        assert data == expected[name], f"{name} is half-written"


@pytest.mark.e2e
def test_stages_killed_at_random_moments_leave_whole_outputs_and_repro_recovers(project_factory, archive):
    project = project_factory(archive, **SMALL)
    project.dvc("repro", "vectorize")
    expected = data_files(project.path)
    started = time.monotonic()
    project.dvc("repro", "-f", "-s", "vocab")
    duration = time.monotonic() - started
    rng = random.Random(7)

    for _ in range(4):  # the stage dvc runs, killed at a random moment; dvc itself lives on
        # (DVC writes dvc.lock in place: killing DVC itself could leave that half-written,
        # which is DVC's to guard, not the stage's.)
        dvc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", "-f", "-s", rng.choice(["vocab", "vectorize"])],
            cwd=project.path, env=project.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        stage = stage_process(dvc.pid)
        time.sleep(rng.uniform(0, duration / 2))
        with contextlib.suppress(psutil.NoSuchProcess):
            stage.kill()
        dvc.wait(timeout=120)
        assert_each_output_whole_or_absent(project.path, expected)

    for _ in range(4):  # a stage killed in the middle of writing one of its outputs
        stage = rng.choice(["pipeline.stages.download", "pipeline.stages.vocab", "pipeline.stages.vectorize"])
        counted = project.run(sys.executable, str(KILL_MID_WRITE), stage, "0")
        writes = int(counted.stderr.strip().splitlines()[-1].removeprefix("writes: "))
        killed = project.run(sys.executable, str(KILL_MID_WRITE), stage, str(rng.randint(1, writes)), check=False)
        assert killed.returncode == -signal.SIGKILL
        assert_each_output_whole_or_absent(project.path, expected)

    project.dvc("repro", "vectorize")
    assert data_files(project.path) == expected
    assert "up to date" in project.dvc("status", "vectorize").stdout


@pytest.mark.e2e
def test_forced_rerun_gives_byte_identical_outputs(project_factory, archive):
    project = project_factory(archive, **SMALL)
    project.repro()
    first = {**data_files(project.path), **metrics_files(project.path)}
    lock = (project.path / "dvc.lock").read_bytes()
    shutil.rmtree(project.path / "data/memo")  # so that both fits are made again, not restored
    assert project.dvc("repro", "-f") and (project.path / "dvc.lock").read_bytes() == lock
    second = {**data_files(project.path), **metrics_files(project.path)}
    assert sorted(second) == sorted(first)
    assert [name for name in first if first[name] != second[name]] == []


@pytest.mark.e2e
def test_a_change_of_train_params_alone_fits_once_and_a_restored_fit_equals_a_new_one(project_factory, archive):
    project = project_factory(archive, **SMALL)
    project.repro()
    validation = live_files(project.path / "data/validation")

    project.set_params(train={"epochs": 2})
    result = project.dvc("repro")
    assert "validation run: restored" in result.stdout
    assert "final fit: 120 reviews, 2 epochs" in result.stdout
    assert live_files(project.path / "data/validation") == validation
    two_epochs = {**data_files(project.path), **metrics_files(project.path)}

    project.set_params(validate={"epochs": 4})  # train.epochs stays 2: the final fit is the one just made
    result = project.dvc("repro")
    assert "validation run: 80 reviews, 40 held out, 4 epochs" in result.stdout
    assert "final fit: restored" in result.stdout
    project.set_params(validate={"epochs": 3})  # back to params run before: DVC's run-cache restores the stage
    assert "Stage 'train' is cached - skipping run" in project.dvc("repro").stdout
    assert {**data_files(project.path), **metrics_files(project.path)} == two_epochs

    shutil.rmtree(project.path / "data/memo")
    result = project.dvc("repro", "-f", "-s", "train")
    assert "restored" not in result.stdout
    assert data_files(project.path) == {name: data for name, data in two_epochs.items() if name.startswith("data/")}
    assert (project.path / "data/memo").is_dir()


def live_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stage_process(dvc_pid: int, timeout: float = 60) -> psutil.Process:
    """The `python -m pipeline.<stage>` process that dvc started, once it is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(dvc_pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if any(arg.startswith("pipeline.") for arg in child.cmdline()):
                    return child
        time.sleep(0.01)
    raise AssertionError("dvc never started the stage")


def metrics_files(path) -> dict[str, bytes]:
    return {f"metrics/{file.name}": file.read_bytes() for file in sorted((path / "metrics").iterdir())}
