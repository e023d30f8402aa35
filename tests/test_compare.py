"""pipeline.commands.compare: the tables and reports as pure functions, and the whole report
on a small git + DVC repository with synthetic results (no training)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import markdown
from pipeline.cli import UserError
from pipeline.commands import compare

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Each markdown table as a list of rows {header cell: cell}, backticks stripped."""
    tables, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("| ---"):
            header = cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append(dict(zip(header, cells(lines[i]), strict=True)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def spec_revs(spec: dict) -> list[str]:
    """The revisions a Vega-Lite spec's data holds, in order of appearance."""
    values = (spec.get("data") or {}).get("values") or []
    return list(dict.fromkeys(row["rev"] for row in values if isinstance(row, dict) and "rev" in row))


def cells(line: str) -> list[str]:
    return [cell.strip().replace("`", "") for cell in line.strip().strip("|").split(" | ")]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------- pure functions


def test_flatten_nests_keys_with_dots_and_keeps_lists():
    tree = {"test": {"accuracy": 0.9, "confusion_matrix": {"tn": 3}}, "vocab": {"ngram_range": [1, 2]}, "empty": {}}
    assert compare.flatten(tree) == {
        "test.accuracy": 0.9,
        "test.confusion_matrix.tn": 3,
        "vocab.ngram_range": [1, 2],
        "empty": {},
    }


def test_params_section_lists_only_what_differs_one_column_per_revision():
    params = {
        "a": {"params.yaml": {"model": {"units": 16, "loss": "mse"}, "vocab": {"ngram_range": [1, 1]}}},
        "b": {"params.yaml": {"model": {"units": 32, "loss": "mse"}, "vocab": {"ngram_range": [1, 2]}}},
    }
    [rows] = parse_tables(compare.params_section(["a", "b"], params))
    assert rows == [
        {"param": "model.units", "a": "16", "b": "32"},
        {"param": "vocab.ngram_range", "a": "[1, 1]", "b": "[1, 2]"},
    ]


def test_params_section_says_when_nothing_differs():
    same = {"params.yaml": {"model": {"units": 16}}}
    text = compare.params_section(["a", "b"], {"a": same, "b": same})
    assert "No param differs" in text and not parse_tables(text)


def test_a_param_absent_at_one_revision_differs():
    params = {"a": {"params.yaml": {"model": {"units": 16, "l2": 0.0}}}, "b": {"params.yaml": {"model": {"units": 16}}}}
    [rows] = parse_tables(compare.params_section(["a", "b"], params))
    assert rows == [{"param": "model.l2", "a": "0.0", "b": compare.ABSENT}]


def test_metrics_section_has_every_metric_and_the_change_from_the_first_revision():
    metrics = {
        "a": {"metrics/metrics.json": {"test": {"accuracy": 0.8, "tn": 10, "note": "x"}}},
        "b": {"metrics/metrics.json": {"test": {"accuracy": 0.85, "tn": 12, "note": "y"}}},
        "c": {},  # lacks the file
    }
    [rows] = parse_tables(compare.metrics_section(["a", "b", "c"], metrics))
    by_metric = {row["metric"]: row for row in rows}
    assert set(by_metric) == {"test.accuracy", "test.tn", "test.note"}
    accuracy = by_metric["test.accuracy"]
    assert (accuracy["a"], accuracy["b"], accuracy["c"]) == ("0.8", "0.85", compare.ABSENT)
    assert float(accuracy["Δ b − a"]) == pytest.approx(0.05)
    assert accuracy["Δ c − a"] == ""  # nothing to subtract
    assert by_metric["test.tn"]["Δ b − a"] == "+2"
    assert by_metric["test.note"]["Δ b − a"] == ""  # not a number


def test_format_change():
    assert compare.format_change(1, 1) == "0"
    assert compare.format_change(0.1, 0.3) == "+0.2"
    assert compare.format_change(5, 3) == "-2"
    assert compare.format_change(True, False) == ""
    assert compare.format_change(None, 1) == ""


def test_table_escapes_pipes():
    assert markdown.table(["a"], [["x|y"]]).splitlines()[-1] == "| x\\|y |"


def test_slugs_are_file_names_and_distinct():
    slugs = compare.unique_slugs(["ROC curve (test)", "metrics/loss.png", "HEAD~1", "head-1", "???"])
    assert slugs == {
        "ROC curve (test)": "roc-curve-test",
        "metrics/loss.png": "metrics-loss-png",
        "HEAD~1": "head-1",
        "head-1": "head-1-2",
        "???": "plot",
    }


def test_vega_specs_and_image_files_are_picked_from_dvc_json():
    spec = {"data": {"values": [{"x": 1, "rev": "a"}, {"x": 2, "rev": "b"}, {"x": 3, "rev": "a"}]}}
    data = {
        "Loss": [{"type": "vega", "revisions": ["a", "b"], "content": spec}],
        "metrics/loss.png": [
            {"type": "image", "revisions": ["a"], "url": "/tmp/a_metrics_loss.png"},
            {"type": "image", "revisions": ["b"], "url": "/tmp/b_metrics_loss.png"},
        ],
        "Gone": [],
    }
    assert compare.vega_specs(data) == {"Loss": spec}
    assert compare.image_files(data) == {
        "metrics/loss.png": {"a": "/tmp/a_metrics_loss.png", "b": "/tmp/b_metrics_loss.png"}
    }
    assert spec_revs(spec) == ["a", "b"]


def test_for_png_switches_on_checkbox_params_and_leaves_the_spec_alone():
    spec = {"params": [{"name": "showValues", "bind": {"input": "checkbox"}}, {"name": "grid", "bind": "scales"}]}
    static = compare.for_png(spec)
    assert static["params"][0]["value"] is True
    assert static["params"][1] == {"name": "grid", "bind": "scales"}
    assert "value" not in spec["params"][0]


def test_plot_errors_name_the_revision_and_file():
    errors = [
        {
            "name": "ROC curve (test)",
            "rev": "b2",
            "source": "metrics/roc.csv",
            "type": "FileNotFoundError",
            "msg": "...",
        },
    ]
    assert compare.plot_errors(errors) == [
        compare.Missing("b2", "metrics/roc.csv", "plot ROC curve (test)", "not in this revision")
    ]


def test_a_revision_wide_plot_error_belongs_to_the_targeted_plot():
    errors = [{"rev": "HEAD", "type": "DataIndexDirError", "msg": "failed to load directory ('data', 'live')"}]
    [missing] = compare.plot_errors(errors, {"data/live/plots": None})
    assert (missing.rev, missing.path) == ("HEAD", "data/live/plots")
    assert "not in the DVC cache" in missing.reason


def test_missing_section_and_line_follow_the_revisions_order():
    missing = [
        compare.Missing("c", "metrics/roc.csv", "plot ROC", "not in this revision"),
        compare.Missing("a", "metrics/metrics.json", "metrics", "not in this revision"),
        compare.Missing("a", "metrics/metrics.json", "metrics", "not in this revision"),
    ]
    ordered = compare.in_rev_order(["a", "b", "c"], missing)
    assert [(m.rev, m.path) for m in ordered] == [("a", "metrics/metrics.json"), ("c", "metrics/roc.csv")]
    [rows] = parse_tables(compare.missing_section(["a", "b", "c"], ordered))
    assert [(row["revision"], row["file"]) for row in rows] == [("a", "metrics/metrics.json"), ("c", "metrics/roc.csv")]
    line = compare.missing_line(ordered)
    assert "\n" not in line and "metrics/metrics.json at a" in line and "metrics/roc.csv at c" in line
    assert "Every revision has every declared file" in compare.missing_section(["a"], [])


def test_the_stderr_line_names_the_first_few_files_and_counts_the_rest():
    missing = [compare.Missing("a", f"data/file{i}.tsv", "plot", "not in this revision") for i in range(7)]
    line = compare.missing_line(missing)
    shown = compare.MISSING_SHOWN
    assert all(f"data/file{i}.tsv at a" in line for i in range(shown)) and f"data/file{shown}.tsv" not in line
    assert f"and {7 - shown} more" in line


def test_pick_target_entries_prefers_the_declared_plot():
    data = {"dvc.yaml::metrics/h.csv": ["declared"], "metrics/h.csv": ["bare file"]}
    assert compare.pick_target_entries(data, "metrics/h.csv") == ["declared"]
    assert compare.pick_target_entries({"Loss": ["x"]}, "Loss") == ["x"]
    assert compare.pick_target_entries({}, "Loss") == []


@pytest.mark.parametrize(
    "revs, message", [([], "no revision"), (["a", "a"], "more than once: a"), (["-x"], "not a revision")]
)
def test_bad_revision_lists_are_user_errors(revs, message):
    with pytest.raises(UserError, match=message):
        compare.check_revs(revs)


def test_out_must_be_a_report_folder_to_be_replaced(tmp_path):
    compare.check_replaceable(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    compare.check_replaceable(tmp_path / "empty")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.md").write_text(compare.MARKER + "\n# old\n")
    compare.check_replaceable(tmp_path / "report")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="did not write"):
        compare.check_replaceable(tmp_path / "mine")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        compare.check_replaceable(tmp_path / "file")


# ---------------------------------------------------------------- the whole report


RUNS = {  # revision name -> what its commit holds
    "v1": {"params": {"model": {"units": 16}}, "shift": 0.0, "roc": True},
    "b2": {"params": {"model": {"units": 32}}, "shift": 0.05, "roc": False},
    "HEAD": {"params": {"model": {"units": 32}, "train": {"epochs": 3}}, "shift": 0.1, "roc": True},
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def dvc(repo: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, check=True, capture_output=True, text=True)


def write_results(repo: Path, run: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shift = run["shift"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in run["params"].items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    metrics = repo / "metrics"
    metrics.mkdir(exist_ok=True)
    (metrics / "metrics.json").write_text(
        json.dumps(
            {
                "test": {
                    "loss": round(0.3 - shift, 6),
                    "accuracy": round(0.85 + shift, 6),
                    "confusion_matrix": {"tn": 40, "fp": 10},
                },
                "validation": {"best_epoch": 3 + int(shift * 20)},
            }
        )
    )
    epochs = range(1, 6)
    with open(metrics / "history.csv", "w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(["epoch", "loss", "accuracy", "val_loss", "val_accuracy"])
        out.writerows([e, 0.6 / e + shift, 0.7 + e / 20, 0.5 / e + shift + 0.05, 0.68 + e / 25] for e in epochs)
    roc = metrics / "roc.csv"
    if run["roc"]:
        roc.write_text(f"fpr,tpr\n0.0,0.0\n0.1,{0.5 + shift}\n1.0,1.0\n")
    else:
        roc.unlink(missing_ok=True)
    with open(metrics / "confusion.csv", "w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(["actual", "predicted"])
        out.writerows([i % 2, (i % 2) if i % 7 else 1 - i % 2] for i in range(40 + int(shift * 100)))
    for name in ("loss", "accuracy"):
        figure, axes = plt.subplots(figsize=(2, 1.5))
        axes.plot(list(epochs), [1 / e + shift for e in epochs])
        axes.set_title(f"{name} {shift}")
        figure.savefig(metrics / f"{name}.png", dpi=50)
        plt.close(figure)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """v1 (a tag), b2 (a branch, without metrics/roc.csv) and HEAD (main), one commit each."""
    repo = tmp_path_factory.mktemp("compare") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    for name, run in RUNS.items():
        write_results(repo, run)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", name)
        if name == "v1":
            git(repo, "tag", "v1")
        elif name == "b2":
            git(repo, "branch", "b2")
    return repo


def run_compare(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.commands.compare", *args], cwd=repo, env=env, capture_output=True, text=True
    )


def declared_plots() -> tuple[list[str], list[str], list[str]]:
    """dvc.yaml's data plots of git-tracked files (metrics/), its image plots, and its data
    plots of DVC outputs (data/: DVCLive's files), which a repository without a DVC cache
    lacks."""
    config = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    tracked, images, outputs = [], [], []
    for entry in config["plots"]:
        if isinstance(entry, str) and entry.endswith(".png"):
            images.append(entry)
            continue
        plot_id, props = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        sources = list(props.get("y", {})) if isinstance(props.get("y"), dict) else [plot_id]
        (outputs if all(path.startswith("data/") for path in sources) else tracked).append(plot_id)
    return tracked, images, outputs


@pytest.fixture(scope="module")
def report(repo) -> tuple[Path, subprocess.CompletedProcess]:
    result = run_compare(repo, *RUNS)
    assert result.returncode == 0, result.stderr
    return repo / "compare", result


@pytest.mark.e2e
def test_report_tables_have_a_column_per_revision_and_the_committed_values(report):
    folder, _ = report
    index = (folder / "index.md").read_text()
    tables = parse_tables(index)
    params_rows = next(t for t in tables if t and "param" in t[0])
    metrics_rows = next(t for t in tables if t and "metric" in t[0])
    revs = list(RUNS)

    params = {row["param"]: row for row in params_rows}
    assert set(params) == {"model.units", "train.epochs"}  # only what differs
    for rev, run in RUNS.items():
        assert params["model.units"][rev] == str(run["params"]["model"]["units"])
        assert params["train.epochs"][rev] == str(run["params"].get("train", {}).get("epochs", 4))

    metrics = {row["metric"]: row for row in metrics_rows}
    assert {"test.loss", "test.accuracy", "test.confusion_matrix.tn", "validation.best_epoch"} <= set(metrics)
    for rev, run in RUNS.items():
        assert float(metrics["test.accuracy"][rev]) == pytest.approx(0.85 + run["shift"])
    assert all(rev in metrics["test.accuracy"] for rev in revs)
    assert float(metrics["test.accuracy"]["Δ HEAD − v1"]) == pytest.approx(0.1)


@pytest.mark.e2e
def test_every_declared_plot_is_rendered_with_one_series_per_revision(report):
    folder, _ = report
    data_plots, image_plots, _ = declared_plots()
    index = (folder / "index.md").read_text()
    for plot_id in data_plots:
        name = compare.slug(plot_id)
        width, height = png_size(folder / f"{name}.png")
        assert width > 200 and height > 200
        assert f"]({name}.png)" in index
        spec = json.loads((folder / f"{name}.vl.json").read_text())
        expected = [rev for rev, run in RUNS.items() if run["roc"] or "ROC" not in plot_id]
        assert spec_revs(spec) == expected, plot_id
    for plot_id in image_plots:
        for rev in RUNS:
            copied = folder / f"{compare.slug(plot_id)}.{compare.slug(rev)}.png"
            assert png_size(copied)[0] > 0
            assert f"]({copied.name})" in index
    # each revision's own image, not one copied three times
    assert len({(folder / f"metrics-loss-png.{compare.slug(rev)}.png").read_bytes() for rev in RUNS}) == len(RUNS)


@pytest.mark.e2e
def test_the_file_a_revision_lacks_is_named(report):
    folder, result = report
    index = (folder / "index.md").read_text()
    section = index.split("## Missing files", 1)[1]
    [rows] = parse_tables(section)
    tracked = [(row["revision"], row["file"]) for row in rows if not row["file"].startswith("data/")]
    assert tracked == [("b2", "metrics/roc.csv")]
    # DVCLive's files are DVC outputs, and this repository has no DVC cache: every
    # revision lacks them, and their plots say so instead of an image
    _, _, output_plots = declared_plots()
    for plot_id in output_plots:
        needed = {row["revision"] for row in rows if row["needed for"] == f"plot {plot_id}"}
        assert needed == set(RUNS), plot_id
        assert not (folder / f"{compare.slug(plot_id)}.png").exists()
    [line] = result.stderr.strip().splitlines()
    assert line == compare.missing_line([compare.Missing(row["revision"], row["file"], "", "") for row in rows])


@pytest.mark.e2e
def test_an_unknown_revision_is_one_line_and_writes_nothing(repo, tmp_path):
    out = tmp_path / "report"
    result = run_compare(repo, "v1", "no-such-branch", "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no-such-branch" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.iterdir())  # nor a temporary folder beside it


@pytest.mark.e2e
def test_no_revision_and_an_unwritable_out_are_one_line_errors(repo, tmp_path):
    result = run_compare(repo)
    assert result.returncode == 2 and result.stderr.startswith("error: no revision")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_compare(repo, "v1", "--out", str(blocker / "report"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert str(blocker / "report") in result.stderr


@pytest.mark.e2e
def test_a_report_is_replaced_whole_and_a_single_revision_works(repo, tmp_path):
    out = tmp_path / "report"
    assert run_compare(repo, "v1", "HEAD", "--out", str(out)).returncode == 0
    assert (out / "metrics-loss-png.v1.png").exists()
    result = run_compare(repo, "workspace", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert not (out / "metrics-loss-png.v1.png").exists()  # nothing left from the previous report
    spec = json.loads((out / "training-and-validation-loss.vl.json").read_text())
    assert spec_revs(spec) == ["workspace"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
