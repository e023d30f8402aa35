"""`python -m bench`: the chapter's dense code and `dvc repro -f`, on one archive, one machine.

With IMDB_ARCHIVE set, that copy of the reviews is used; without it, the
pipeline's own download (kept in its cache). `--quick` generates a small archive
instead and shrinks the params to match, so a run takes about a minute.
Progress goes to stderr; the markdown report to stdout and to --out.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import yaml

from bench.probe import Measurement, restored_fits, seconds_per_epoch, train_phases
from bench.report import (
    NOOP_RUNS,
    PREDICT_RUNS,
    WALL_PAIRS,
    Benchmark,
    ChapterResult,
    ExperimentResult,
    PipelineResult,
    dvc_own_seconds,
    render,
)
from pipeline import files
from pipeline.cli import UserError
from pipeline.sources import imdb
from testbed.archives import review_members, write_archive
from testbed.project import ROOT, Project, make_project, stages_run

BENCH_DIR = Path(__file__).resolve().parent
PROBE = BENCH_DIR / "probe.py"
REAL_RESULTS = BENCH_DIR / "results.md"
QUICK_RESULTS = BENCH_DIR / "results-quick.md"
QUICK_PER_FOLDER = 1000
QUICK_PARAMS = {"download": {"reviews_per_folder": QUICK_PER_FOLDER}, "validate": {"val_size": 1000}}
QUICK_ARCHIVE_SEED = 3
# The train stage prints one line per validation-run epoch with the validation loss (Keras, verbose=2).
EPOCH_END_MARK = "val_loss"
LOG_TAIL_LINES = 30


def progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def quick_archive(folder: Path) -> Path:
    return write_archive(folder / "quick_aclImdb.tar.gz", review_members(QUICK_PER_FOLDER, seed=QUICK_ARCHIVE_SEED))


def real_archive() -> Path:
    local = os.environ.get(imdb.ARCHIVE_ENV)
    archive = Path(local).resolve() if local else imdb.official_archive()
    if not archive.is_file():
        raise UserError(f"{archive}: no such file (from {imdb.ARCHIVE_ENV})")
    return archive


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    memory_kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    versions = ", ".join(
        f"{name} {importlib.metadata.version(package)}"
        for name, package in (("TensorFlow", "tensorflow"), ("Keras", "keras"), ("DVC", "dvc"), ("NumPy", "numpy"))
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kib * 1024 / 1e9:.1f} GB memory; "
        f"load average {load} when the benchmark started; Python {platform.python_version()}, {versions}"
    )


def code_version() -> str:
    described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return f"commit {described.stdout.strip()}" if described.returncode == 0 else "an unknown commit"


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def checked(result: Measurement, what: str, log: Path) -> Measurement:
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        print(tail, file=sys.stderr)
        code = result.returncode
        status = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        raise UserError(f"{what} {status}; the end of its output is above")
    return result


def probe_command(log: Path) -> list[str]:
    return [sys.executable, str(PROBE), str(log), "--"]


def read_measurements(log: Path) -> list[Measurement]:
    return [Measurement(**json.loads(line)) for line in log.read_text().splitlines()]


def probed(argv: list[str], what: str, *, cwd: Path, env: dict[str, str], log: Path) -> Measurement:
    """argv run under probe.py, which is a small process: a child's ru_maxrss also counts
    what its parent held when it forked it. Its output, stderr too, is added to log."""
    record = log.with_suffix(".jsonl")
    record.unlink(missing_ok=True)
    with open(log, "ab") as output:
        subprocess.run([*probe_command(record), *argv], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    (measured,) = read_measurements(record)
    return checked(measured, what, log)


def run_chapter(project: Project, workdir: Path) -> ChapterResult:
    report = workdir / "chapter.json"
    progress("running the chapter's code")
    argv = [sys.executable, "-m", "bench.chapter", "--params", str(project.path / "params.yaml")]
    argv += ["--archive", project.env["IMDB_ARCHIVE"], "--out", str(report)]
    process = probed(argv, "the chapter's code", cwd=ROOT, env=project.env, log=workdir / "chapter.log")
    numbers = json.loads(report.read_text())
    return ChapterResult(
        process=process,
        phases=numbers["phases"],
        validation_epochs=numbers["validation_epochs"],
        refit_epochs=numbers["refit_epochs"],
        seconds_per_epoch=numbers["seconds_per_epoch"],
        test_accuracy=numbers["test_accuracy"],
    )


def write_python_probe(folder: Path, log: Path) -> Path:
    """A `python` that runs the real one under the probe; first on PATH, it measures every stage."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "python"
    shim.write_text(f'#!/bin/sh\nexec {shlex.join([*probe_command(log), sys.executable])} "$@"\n')
    shim.chmod(0o755)
    return folder


def stage_measurements(dvc_yaml: Path, log: Path, names: Sequence[str] | None = None) -> dict[str, Measurement]:
    """Each stage's Measurement (of the named ones, or all), matched to dvc.yaml by the
    arguments of its `python` command."""
    runs = read_measurements(log)
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    measured = {}
    for name, stage in stages.items():
        if names is not None and name not in names:
            continue
        program, *args = shlex.split(stage["cmd"])
        match = [run for run in runs if run.argv[1:] == args]
        if program != "python" or len(match) != 1:
            raise UserError(
                f"stage {name}: its command {stage['cmd']!r} did not run once as `python …`, so it was not measured"
            )
        measured[name] = match[0]
    return measured


def measured_repro(
    project: Project, workdir: Path, *args: str, stages: Sequence[str] | None = None, command: str = "repro"
) -> tuple[Measurement, dict[str, Measurement]]:
    """`dvc repro ARGS` (or another dvc command that runs stages) in project under the probe,
    each stage it runs under the probe too (a `python` first on their PATH): the whole
    run's Measurement and each stage's (of `stages`, or all), by name. dvc's output goes to
    workdir/dvc.log."""
    stage_log = workdir / "stages.jsonl"
    stage_log.unlink(missing_ok=True)
    probe_bin = write_python_probe(workdir / "probe-bin", stage_log)
    stages_probed = {**project.env, "PATH": f"{probe_bin}{os.pathsep}{project.env['PATH']}"}
    dvc_args = [*command.split(), *args]
    argv = [sys.executable, "-m", "dvc", *dvc_args]
    whole = probed(argv, " ".join(["dvc", *dvc_args]), cwd=project.path, env=stages_probed, log=workdir / "dvc.log")
    return whole, stage_measurements(project.path / "dvc.yaml", stage_log, stages)


def epoch_ends(run: Measurement) -> list[float]:
    return [seconds for seconds, line in run.lines if EPOCH_END_MARK in line]


def run_pipeline(project: Project, workdir: Path) -> PipelineResult:
    progress("running dvc repro -f")
    repro, stages = measured_repro(project, workdir, "-f")
    progress(f"running dvc repro with nothing to do, {NOOP_RUNS} times")
    dvc, log = [sys.executable, "-m", "dvc", "repro"], workdir / "dvc.log"
    noops = [probed(dvc, "dvc repro", cwd=project.path, env=project.env, log=log) for _ in range(NOOP_RUNS)]
    floor = dvc_floor(project, workdir)
    metrics = files.read_json(project.path / "metrics" / "metrics.json")
    return PipelineResult(
        repro=repro,
        stages=stages,
        noop_s=statistics.median(run.wall_s for run in noops),
        noop_reran=sorted({stage for run in noops for stage in stages_run("\n".join(text for _, text in run.lines))}),
        seconds_per_epoch=seconds_per_epoch(epoch_ends(stages["train"])) if "train" in stages else None,
        test_accuracy=metrics["test"]["accuracy"],
        noop_floor_s=floor,
        train_phases=train_phases(stages["train"]) if "train" in stages else None,
    )


def dvc_floor(project: Project, workdir: Path) -> float:
    """`dvc repro` with nothing to do in a project of one stage that echoes a word into a
    file: what DVC itself takes on this machine, median of NOOP_RUNS."""
    floor = workdir / "one-stage"
    floor.mkdir()
    (floor / "dvc.yaml").write_text("stages:\n  one:\n    cmd: echo one > out.txt\n    outs:\n      - out.txt\n")
    run = partial(subprocess.run, cwd=floor, env=project.env, capture_output=True, check=True)
    run(["git", "init", "-q"])
    run([sys.executable, "-m", "dvc", "init", "-q"])
    run([sys.executable, "-m", "dvc", "repro"])
    dvc = [sys.executable, "-m", "dvc", "repro"]
    return statistics.median(
        probed(dvc, "dvc repro", cwd=floor, env=project.env, log=workdir / "dvc.log").wall_s for _ in range(NOOP_RUNS)
    )


PREDICT_REVIEW = "This movie was a wonderful surprise"


def run_predict(project: Project, workdir: Path) -> dict[str, Measurement]:
    """imdb-predict as a user runs it in the project: one review, the test reviews from a file, --explain."""
    reviews = workdir / "test-reviews.txt"
    texts = files.read_parquet(project.path / "data/raw/test.parquet", ["text"]).column("text").to_pylist()
    files.write_text(reviews, "".join(" ".join(review.split()) + "\n" for review in texts))
    predict = [sys.executable, "-m", "pipeline.commands.predict"]
    cases = {"one": [PREDICT_REVIEW], "file": ["--file", str(reviews)], "explain": ["--explain", PREDICT_REVIEW]}
    measured = {}
    for key, args in cases.items():
        progress(f"running imdb-predict {' '.join(args)}, {PREDICT_RUNS} times")
        measured[key] = median_run(
            [probed([*predict, *args], "imdb-predict", cwd=project.path, env=project.env,
                    log=workdir / "predict.log") for _ in range(PREDICT_RUNS)]
        )
    return measured


def median_run(runs: Sequence[Measurement]) -> Measurement:
    """The run of median wall time (of an odd number), with the largest peak memory of all:
    one process of a tenth of a second is timed as much by the machine's other work as by
    its own."""
    middle = sorted(runs, key=lambda run: run.wall_s)[len(runs) // 2]
    return dataclasses.replace(middle, peak_rss_bytes=max(run.peak_rss_bytes for run in runs))


def run_floor(project: Project, workdir: Path) -> Measurement:
    """Python with numpy alone: what a one-review imdb-predict cannot go below."""
    progress(f"running python -c 'import numpy', {PREDICT_RUNS} times")
    return median_run([
        probed([sys.executable, "-c", "import numpy"], "python with numpy", cwd=project.path, env=project.env,
               log=workdir / "predict.log") for _ in range(PREDICT_RUNS)
    ])


def run_links(project: Project, workdir: Path, copied: PipelineResult) -> dict[str, float]:
    """DVC's own seconds in `dvc repro -f` as the cache copies outputs (its default where the
    file system has no reflinks, as ext4) and as it hard-links them."""
    progress("running dvc repro -f with cache.type hardlink")
    project.dvc("config", "cache.type", "hardlink")
    try:
        repro, stages = measured_repro(project, workdir, "-f")
    finally:
        project.dvc("config", "--unset", "cache.type")
    return {"copy, DVC's default on this file system": dvc_own_seconds(copied.repro, copied.stages),
            "hardlink": dvc_own_seconds(repro, stages)}


# The model-parameter experiment the target is for, then one that changes train.* alone, then
# validate.* alone; each on top of the one before, as `dvc exp run` leaves the workspace.
EXPERIMENTS = ("model.units=32", "train.epochs=5", "validate.epochs=10")


def run_experiments(project: Project, workdir: Path) -> list[ExperimentResult]:
    """Each of EXPERIMENTS run as a user runs one after a committed `dvc repro`."""
    project.run("git", "add", "-A")
    project.run("git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "baseline")
    results = []
    for settings in EXPERIMENTS:
        progress(f"running dvc exp run -S {settings}")
        run, _ = measured_repro(project, workdir, "-S", settings, stages=[], command="exp run")
        printed = [line for _, line in run.lines]
        stages = stage_measurements(project.path / "dvc.yaml", workdir / "stages.jsonl", stages_run("\n".join(printed)))
        train = stages.get("train")
        reused, phases = (restored_fits(train), train_phases(train)) if train else ([], None)
        results.append(ExperimentResult(settings, run, stages, reused, phases))
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small generated archive instead of the real reviews")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where to write the report (default: {REAL_RESULTS.relative_to(ROOT)}, "
        f"or {QUICK_RESULTS.relative_to(ROOT)} with --quick)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and the logs of both runs")
    return parser.parse_args(argv)


def benchmark(workdir: Path, quick: bool) -> Benchmark:
    machine_now = machine()
    if quick:
        archive = quick_archive(workdir)
        changes = ", ".join(
            f"{section}.{key} = {value}" for section, keys in QUICK_PARAMS.items() for key, value in keys.items()
        )
        data = f"quick mode, a generated archive ({changes}); the targets are for the real reviews"
    else:
        archive = real_archive()
        data = f"the real reviews, {archive.name}"
    data += f"; the pipeline's code at {code_version()}"
    progress(f"making a copy of the project in {workdir / 'project'}")
    project = make_project(workdir / "project", archive, **(QUICK_PARAMS if quick else {}))
    # Python's own habit, left off on some machines: the project's modules compiled once and
    # kept, as for any user after the first run.
    project.env.pop("PYTHONDONTWRITEBYTECODE", None)
    pipeline = run_pipeline(project, workdir)
    predict = run_predict(project, workdir)
    floor = run_floor(project, workdir)
    dvc_own_s = run_links(project, workdir, pipeline)
    chapter = run_chapter(project, workdir)  # before the experiments change params.yaml
    experiments = run_experiments(project, workdir)  # right after, as every report before measured them
    project.run("git", "checkout", "--", "params.yaml")  # the chapter's params again, as committed
    wall_pairs = [(chapter.process.wall_s, pipeline.repro.wall_s), *run_wall_pairs(project, workdir)]
    return Benchmark(data=data, machine=machine_now, chapter=chapter, pipeline=pipeline, predict=predict,
                     floor=floor, experiments=experiments, dvc_own_s=dvc_own_s, wall_pairs=wall_pairs)


def run_wall_pairs(project: Project, workdir: Path) -> list[tuple[float, float]]:
    """The chapter's code and `dvc repro -f` run in turn WALL_PAIRS - 1 more times: their wall
    seconds. Each `dvc repro -f` is measured as the first was: every stage under the probe,
    DVC's cache and the fits kept in data/memo/ emptied first, so that it fits again and
    copies every output into the cache."""
    pairs = []
    for number in range(2, WALL_PAIRS + 1):
        progress(f"running dvc repro -f and the chapter's code again ({number} of {WALL_PAIRS})")
        for emptied in (project.path / "data" / "memo", project.path / ".dvc" / "cache"):
            shutil.rmtree(emptied, ignore_errors=True)
        repro, _ = measured_repro(project, workdir, "-f")
        pairs.append((run_chapter(project, workdir).process.wall_s, repro.wall_s))
    return pairs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or (QUICK_RESULTS if args.quick else REAL_RESULTS)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="imdb-bench-"))
    try:
        report = render(benchmark(workdir, args.quick))
    finally:
        if args.keep:
            progress(f"the project and the logs are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    files.write_text(out, report)
    print(report, end="")
    progress(f"done in {time.perf_counter() - started:.0f} s; report written to {out}")
