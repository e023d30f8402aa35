"""The benchmark: its measurements, its checks against the targets, and a quick run end to end."""
import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from bench import chapter, probe, report, run
from bench.probe import Measurement
from pipeline.cli import UserError
from pipeline.params import load_params
from testbed.project import ROOT

MB = 1_000_000


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def probed(tmp_path, command: list[str]) -> tuple[subprocess.CompletedProcess, Measurement]:
    """Runs command under probe.py, as the benchmark runs each stage: from a small process, because a
    child's ru_maxrss also counts what its parent held when it forked it (this test process holds a lot)."""
    log = tmp_path / "runs.jsonl"
    log.unlink(missing_ok=True)
    result = subprocess.run([*run.probe_command(log), *command], capture_output=True, text=True)
    (record,) = run.read_measurements(log)
    return result, record


def test_peak_memory_is_what_the_stage_held(tmp_path):
    _, record = probed(tmp_path, python("data = b'x' * 300_000_000"))
    assert 300 * MB <= record.peak_rss_bytes < 400 * MB


def test_peak_memory_adds_up_processes_running_side_by_side(tmp_path):
    # Each process holds 200 MB while the other does: a per-process peak would see 200 MB.
    code = """
        import subprocess, sys
        data = b'x' * 200_000_000
        subprocess.run([sys.executable, '-c', "import time; data = b'y' * 200_000_000; time.sleep(1)"])
    """
    _, record = probed(tmp_path, python(code))
    assert record.peak_rss_bytes >= 400 * MB


def test_probe_passes_output_and_exit_status_through_and_logs_them_timestamped(tmp_path):
    command = python("print('one'); print('two', flush=True); print('three'); exit(3)")
    result, record = probed(tmp_path, command)
    assert result.returncode == 3 and result.stdout == "one\ntwo\nthree\n"
    assert record.argv == command and record.returncode == 3
    assert [line for _, line in record.lines] == ["one", "two", "three"]
    times = [seconds for seconds, _ in record.lines]
    assert times == sorted(times) and times[-1] <= record.wall_s


def test_a_process_that_maps_tensorflow_libraries_is_seen_loading_tensorflow(tmp_path):
    library = tmp_path / "site-packages" / "tensorflow" / "libtensorflow_framework.so.2"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"\0" * 4096)
    code = f"""
        import mmap, time
        with open({str(library)!r}, 'rb') as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            time.sleep(1)
    """
    assert probed(tmp_path, python(code))[1].loaded_tensorflow
    assert not probed(tmp_path, python("import time; time.sleep(0.3)"))[1].loaded_tensorflow


def test_seconds_per_epoch_is_the_median_gap_between_epoch_ends():
    # The first epoch end comes late (it also traced the model): it only starts the first gap.
    # One slow epoch (another job taking the CPU) does not move the median.
    assert probe.seconds_per_epoch([3.0, 3.5, 4.0, 6.0]) == pytest.approx(0.5)
    assert probe.seconds_per_epoch([3.0]) is None


def test_stages_are_matched_to_dvc_yaml_by_their_python_arguments(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(
        "stages:\n  vocab:\n    cmd: python -m pipeline.stages.vocab\n"
        "  plot:\n    cmd: python -m pipeline.stages.plot\n"
    )
    log = tmp_path / "runs.jsonl"
    runs = [measurement(["/venv/bin/python", "-m", "pipeline.stages.plot"], wall_s=0)]
    runs.append(measurement(["/venv/bin/python", "-m", "pipeline.stages.vocab"], wall_s=1))
    log.write_text("".join(json.dumps(vars(r)) + "\n" for r in runs))
    stages = run.stage_measurements(dvc_yaml, log)
    assert list(stages) == ["vocab", "plot"]
    assert stages["vocab"].wall_s == 1 and stages["plot"].wall_s == 0

    log.write_text(json.dumps(vars(runs[0])) + "\n")
    with pytest.raises(UserError, match="stage vocab: .* was not measured"):
        run.stage_measurements(dvc_yaml, log)


def test_epoch_ends_are_the_times_of_the_validation_loss_lines():
    lines = [(7.0, "Epoch 1/2"), (8.0, "30/30 - 1s - loss: 0.5 - val_loss: 0.4"), (8.1, "Epoch 2/2"),
             (8.3, "30/30 - 0s - loss: 0.3 - val_loss: 0.3"), (8.4, "metrics/history.csv written")]
    assert run.epoch_ends(measurement(["python"], lines=lines)) == [8.0, 8.3]


TRAIN_LINES = [
    (0.4, "validation run: 15000 reviews, 10000 held out, 2 epochs"), (4.0, "Epoch 1/2"),
    (5.2, "30/30 - 1s - 40ms/step - accuracy: 0.7 - loss: 0.5 - val_accuracy: 0.8 - val_loss: 0.4"),
    (5.2, "Epoch 2/2"), (5.3, "30/30 - 0s - 4ms/step - accuracy: 0.9 - loss: 0.3 - val_accuracy: 0.9 - val_loss: 0.3"),
    (5.5, "final fit: 25000 reviews, 3 epochs"), (5.8, "Epoch 1/3"),
    (6.6, "49/49 - 1s - 20ms/step - accuracy: 0.8 - loss: 0.4"), (6.6, "Epoch 2/3"),
    (6.8, "49/49 - 0s - 4ms/step - accuracy: 0.9 - loss: 0.3"), (6.8, "Epoch 3/3"),
    (7.0, "49/49 - 0s - 4ms/step - accuracy: 0.9 - loss: 0.2"),
]


def test_the_train_stage_is_cut_into_phases_that_add_up_to_its_wall_time():
    phases = probe.train_phases(measurement(wall_s=7.5, lines=TRAIN_LINES))
    assert [(name, round(seconds, 6)) for name, seconds in phases] == [
        (probe.START_PHASE, 0.4),
        ("validation run: TensorFlow's import, features, model", 3.6),
        ("validation run: first epoch (traces the step functions)", 1.2),
        ("validation run: the other epochs", 0.1),
        ("validation run: DVCLive's end, memory, memo", 0.2),
        ("final fit: features read, model built", 0.3),
        ("final fit: first epoch (traces the step functions)", 0.8),
        ("final fit: the other epochs", 0.4),
        ("final fit: the model and its bundle saved, exit", 0.5),
    ]


def test_a_restored_validation_run_leaves_tensorflows_start_to_the_final_fit():
    lines = [(0.5, "validation run: restored, made before with the same inputs (data/memo/0123…)"),
             (0.6, "final fit: 25000 reviews, 3 epochs"), *TRAIN_LINES[6:]]
    phases = dict(probe.train_phases(measurement(wall_s=7.5, lines=lines)))
    assert phases["validation run: restored from data/memo/"] == pytest.approx(0.1)
    assert phases["final fit: TensorFlow's import, features, model"] == pytest.approx(5.2)
    assert sum(phases.values()) == pytest.approx(7.5)


def test_a_fit_of_one_epoch_is_a_fit_and_not_one_restored():
    # Keras prints no "Epoch 1/1" for a fit of one epoch; train's own line says what was restored
    lines = [(0.4, "validation run: 15000 reviews, 10000 held out, 1 epochs"),
             (5.2, "30/30 - 1s - 40ms/step - accuracy: 0.7 - loss: 0.5 - val_accuracy: 0.8 - val_loss: 0.4"),
             (5.5, "final fit: restored, made before with the same inputs (data/memo/4567…)")]
    phases = dict(probe.train_phases(measurement(wall_s=6.0, lines=lines)))
    assert phases == pytest.approx({
        probe.START_PHASE: 0.4,
        "validation run: set-up and its only epoch (Keras marks no epoch's start in a fit of one)": 4.8,
        "validation run: the other epochs": 0.0,
        "validation run: DVCLive's end, memory, memo": 0.3,
        "final fit: restored from data/memo/": 0.5,
    })


def test_phases_of_runs_that_restored_a_fit_fall_in_place_in_one_table():
    restored = [(0.5, "validation run: restored, made before with the same inputs (data/memo/0123…)"),
                (0.6, "final fit: 25000 reviews, 3 epochs"), *TRAIN_LINES[6:]]
    header, rows = report.train_phase_table({
        "both fits": (probe.train_phases(measurement(wall_s=7.5, lines=TRAIN_LINES)), 7.5),
        "final fit only": (probe.train_phases(measurement(wall_s=7.5, lines=restored)), 7.5),
    })
    assert header == ["phase", "both fits (s)", "final fit only (s)"]
    assert [row[0] for row in rows] == [
        probe.START_PHASE,
        "validation run: restored from data/memo/",
        "validation run: TensorFlow's import, features, model",
        "validation run: first epoch (traces the step functions)",
        "validation run: the other epochs",
        "validation run: DVCLive's end, memory, memo",
        "final fit: TensorFlow's import, features, model",
        "final fit: features read, model built",
        "final fit: first epoch (traces the step functions)",
        "final fit: the other epochs",
        "final fit: the model and its bundle saved, exit",
        "the train stage (process)",
    ]
    assert rows[1][1:] == ["", "0.10"] and rows[6][1:] == ["", "5.20"] and rows[-1][1:] == ["7.50", "7.50"]


def test_a_short_process_is_reported_by_its_median_run_and_its_largest_peak():
    runs = [measurement(wall_s=wall, peak=peak * MB) for wall, peak in [(0.3, 40), (0.1, 90), (0.2, 50)]]
    middle = run.median_run(runs)
    assert (middle.wall_s, middle.peak_rss_bytes) == (0.2, 90 * MB)


def measurement(argv=("python",), wall_s=1.0, peak=100 * MB, tensorflow=False, lines=()):
    return Measurement(list(argv), 0, wall_s, peak, tensorflow, list(lines))


def results(chapter_wall=100.0, pipeline_wall=24.0, stage_peak=900 * MB, epoch=0.1, accuracy=0.886,
            noop_s=0.9, noop_reran=(), tensorflow_in=("train",), experiment_s=8.0):
    names = ["download", "vocab", "vectorize", "train", "evaluate", "plot"]
    stages = {name: measurement(peak=stage_peak if name == "train" else 100 * MB, tensorflow=name in tensorflow_in)
              for name in names}
    chapter_result = report.ChapterResult(
        process=measurement(wall_s=chapter_wall, peak=9800 * MB),
        phases=[{"name": "validation run", "wall_s": 40.0, "peak_rss_bytes": 8000 * MB}],
        validation_epochs=20, refit_epochs=4, seconds_per_epoch=2.0, test_accuracy=0.886,
    )
    pipeline_result = report.PipelineResult(
        repro=measurement(wall_s=pipeline_wall), stages=stages, noop_s=noop_s, noop_reran=list(noop_reran),
        seconds_per_epoch=epoch, test_accuracy=accuracy,
    )
    experiment = report.ExperimentResult(
        "model.units=32", measurement(wall_s=experiment_s), {"train": measurement(wall_s=experiment_s - 2)}, [],
    )
    return report.Benchmark(data="test data", machine="test machine", chapter=chapter_result, pipeline=pipeline_result,
                            experiments=[experiment])


def markdown_tables(markdown: str) -> dict[str, list[list[str]]]:
    """{section heading: rows of cells}, without the header and separator rows."""
    tables = {}
    for section in markdown.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        lines = [line for line in body.splitlines() if line.startswith("|")]
        rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
        tables[heading] = [row for row in rows[1:] if set(row) != {"---"}]
    return tables


def verdicts(benchmark) -> dict[str, str]:
    tables = markdown_tables(report.render(benchmark))
    rows = tables["Against the chapter, and the targets"] + tables["Targets of the pipeline alone"]
    return {row[0].split(" (")[0].split(":")[0]: row[-1] for row in rows}


def test_targets_met_when_the_pipeline_is_within_every_limit():
    assert set(verdicts(results()).values()) == {"yes"}


@pytest.mark.parametrize(
    "changes, failed",
    [
        (dict(pipeline_wall=26.0), {"wall time, against the moonshot"}),
        (dict(pipeline_wall=31.0), {"wall time, end to end", "wall time, against the moonshot"}),
        (dict(stage_peak=1001 * MB), {"peak memory"}),
        (dict(epoch=0.21), {"seconds per validation-run epoch"}),
        (dict(epoch=None), {"seconds per validation-run epoch"}),
        (dict(accuracy=0.8805), {"test accuracy"}),
        (dict(noop_s=1.1), {"`dvc repro` with nothing to do"}),
        (dict(experiment_s=10.5), {"a model-parameter experiment, `dvc exp run -S model.units=32`"}),
        (dict(noop_reran=["vocab"]), {"`dvc repro` with nothing to do"}),
        (dict(tensorflow_in=("vocab", "train")), {"stages that train nothing but loaded TensorFlow"}),
    ],
)
def test_each_target_fails_on_its_own(changes, failed):
    outcome = verdicts(results(**changes))
    assert {name for name, met in outcome.items() if met != "yes"} == failed


def test_the_wall_time_ratio_is_that_of_the_medians_of_the_runs_in_turn():
    # one slow run of the chapter's code (100 s) would have made 0.40 look like 0.20
    benchmark = replace(results(), wall_pairs=[(100.0, 20.0), (50.0, 21.0), (55.0, 22.0)])
    rows = markdown_tables(report.render(benchmark))["Against the chapter, and the targets"]
    assert rows[0] == ["wall time, end to end (s, median of 3 runs each, in turn)", "55.00", "21.00", "0.382",
                       "(b)/(a) ≤ 0.3", "**no**"]
    benchmark = replace(results(), wall_pairs=[(60.0, 16.0), (50.0, 21.0), (70.0, 17.0)])
    rows = markdown_tables(report.render(benchmark))["Against the chapter, and the targets"]
    assert [row[1:4] + row[5:] for row in rows[:2]] == [["60.00", "17.00", "0.283", "yes"],
                                                         ["60.00", "17.00", "0.283", "**no**"]]


def test_report_names_the_largest_stage_and_the_stages_that_loaded_tensorflow():
    markdown = report.render(results(stage_peak=1200 * MB, tensorflow_in=("plot", "train")))
    assert "(b) its largest stage, train | 9800 | 1200 | 0.122 |" in markdown
    assert "(download, vocab, vectorize, evaluate, plot): plot | 1 | 0 | **no** |" in markdown


def test_scoring_targets_are_checked_one_by_one():
    fast = {key: measurement(wall_s=0.1, peak=60 * MB) for key in report.PREDICT_CASES}

    def verdicts_of(predict, **changes):
        benchmark = replace(results(**changes), predict=predict)
        table = markdown_tables(report.render(benchmark))["Scoring without TensorFlow: imdb-predict and evaluate"]
        return [row[-1] for row in table]

    assert verdicts_of(fast) == ["yes"] * 4
    assert verdicts_of({**fast, "one": measurement(wall_s=0.6, peak=60 * MB)}) == ["**no**", "yes", "yes", "yes"]
    assert verdicts_of({**fast, "one": measurement(wall_s=0.1, peak=300 * MB)}) == ["**no**", "yes", "yes", "yes"]
    assert verdicts_of({**fast, "file": measurement(wall_s=3.5, peak=900 * MB)}) == ["yes", "**no**", "yes", "yes"]
    assert "Scoring without TensorFlow" not in report.render(results())  # not measured, not reported


def test_the_benchmark_accepts_the_committed_params_and_refuses_others_than_the_chapters():
    params = load_params(ROOT / "params.yaml")
    chapter.check_chapter_params(params)
    with pytest.raises(UserError, match=r"model.units = 32, but the chapter's code uses 16"):
        chapter.check_chapter_params(replace(params, model=replace(params.model, units=32)))
    with pytest.raises(UserError, match=r"vectorize.weighting = 'tfidf', but the chapter's code uses 'binary'"):
        chapter.check_chapter_params(replace(params, vectorize=replace(params.vectorize, weighting="tfidf")))


def ratio_bounds(a: str, b: str) -> tuple[float, float]:
    """The range of b / a, printed to 3 places, for the true values behind a and b as
    printed (rounded to their last place): a 0.020 s epoch may be 0.0204 s."""
    def half_place(text: str) -> float:
        return 0.5 * 10 ** -len(text.partition(".")[2])

    (a_value, a_error), (b_value, b_error) = ((float(x), half_place(x)) for x in (a, b))
    return (b_value - b_error) / (a_value + a_error) - 0.0005, (b_value + b_error) / (a_value - a_error) + 0.0005


def test_ratio_bounds_allow_the_rounding_of_what_is_printed_and_nothing_more():
    assert ratio_bounds("0.153", "0.020") == pytest.approx((0.1265, 0.1349), abs=1e-4)
    low, high = ratio_bounds("62.13", "31.20")
    assert low < 0.502 < high and high - low < 0.002


@pytest.mark.e2e
def test_quick_benchmark_reports_every_row_with_numbers(tmp_path):
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == out.read_text()
    tables = markdown_tables(out.read_text())

    comparison = tables["Against the chapter, and the targets"]
    assert [row[0].split(":")[0] for row in comparison] == [
        f"wall time, end to end (s, median of {report.WALL_PAIRS} runs each, in turn)",
        f"wall time, against the moonshot (s, median of {report.WALL_PAIRS} runs each, in turn)", "peak memory (MB)",
        "seconds per validation-run epoch", "test accuracy",
    ]
    for _, a, b, ratio, _, met in comparison:
        low, high = ratio_bounds(a, b)
        assert low <= float(ratio) <= high, (a, b, ratio)
        assert met in ("yes", "**no**")

    targets = tables["Targets of the pipeline alone"]
    assert [row[0].split(" (")[0] for row in targets] == [
        "a model-parameter experiment, `dvc exp run -S model.units=32`", "`dvc repro` with nothing to do",
        "`dvc repro` with nothing to do in a project of one stage", "stages that train nothing but loaded TensorFlow",
    ]
    assert all(float(row[1]) > 0 for row in targets[:3]) and targets[3][1:] == ["0", "0", "yes"]

    # A model param costs both fits; train.epochs alone, the final fit: the validation run is
    # restored; validate.epochs alone (train.epochs a number), the validation run
    experiments = tables["Experiments after the run: what each costs"]
    assert [row[0] for row in experiments] == ["`-S model.units=32`", "`-S train.epochs=5`", "`-S validate.epochs=10`"]
    assert [row[2].split(" ")[0] for row in experiments] == ["train", "train", "train"]
    assert [row[4] for row in experiments] == ["none", "validation run", "final fit"]
    for row in experiments:  # DVC's own: the whole run minus the stages it ran
        stage_seconds = sum(float(part.split()[1]) for part in row[2].split(", "))
        assert float(row[3]) == pytest.approx(float(row[1]) - stage_seconds, abs=0.02)

    # Every run of train cut into phases that add up to its wall time. The second experiment's
    # validation run comes from data/memo/, so its final fit starts TensorFlow; the third's
    # final fit comes from data/memo/
    phases = tables["The train stage, phase by phase"]
    *steps, total = phases
    assert total[0] == "the train stage (process)"
    for column in (1, 2, 3, 4):
        measured = [float(row[column]) for row in steps if row[column]]
        assert all(seconds >= 0 for seconds in measured)
        assert sum(measured) == pytest.approx(float(total[column]), abs=0.01 * len(measured))
    # the columns: dvc repro -f, then the three experiments
    filled = {row[0]: [cell != "" for cell in row[1:]] for row in steps}
    assert filled["validation run: TensorFlow's import, features, model"] == [True, True, False, True]
    assert filled["validation run: restored from data/memo/"] == [False, False, True, False]
    assert filled["final fit: TensorFlow's import, features, model"] == [False, False, True, False]
    assert filled["final fit: restored from data/memo/"] == [False, False, False, True]
    train_seconds = {row[0]: float(row[2].split(", ")[0].split()[1]) for row in experiments}
    assert float(total[2]) == pytest.approx(train_seconds["`-S model.units=32`"], abs=0.011)

    links = tables["DVC's own work by the cache's link type"]
    assert [row[0] for row in links] == ["copy, DVC's default on this file system", "hardlink"]

    stages = tables["The pipeline, stage by stage"]
    assert [row[0] for row in stages] == [
        "download", "vocab", "vectorize", "train", "evaluate", "plot", "`dvc repro -f`, all stages",
    ]
    assert all(float(row[1]) > 0 and float(row[2]) > 0 for row in stages)
    loaded_tensorflow = {row[0] for row in stages if row[3] == "yes"}
    assert loaded_tensorflow == {"train", "`dvc repro -f`, all stages"}
    # The whole run takes longer than any of its stages.
    assert float(stages[-1][1]) > max(float(row[1]) for row in stages[:-1])

    scoring = tables["Scoring without TensorFlow: imdb-predict and evaluate"]
    assert len(scoring) == 5 and all(float(row[1]) > 0 and float(row[2]) > 0 for row in scoring)

    phases = tables["The chapter's code, phase by phase"]
    assert [row[0] for row in phases] == [
        "import keras", "read reviews", "vocabulary and encoding", "vectorize_sequences (dense)",
        "validation run (20 epochs)", "refit (4 epochs)", "evaluate", "whole script (process)",
    ]
    assert all(float(row[1]) >= 0 and float(row[2]) > 0 for row in phases)


def test_stage_memory_takes_dvc_style_settings_with_yaml_values():
    from bench import stages

    changes = stages.parse_changes(
        ["vocab.ngram_range=[1,2]", "model.units=32", "model.nb_scaling=true", "train.epochs=best"]
    )
    assert changes == {
        "vocab": {"ngram_range": [1, 2]}, "model": {"units": 32, "nb_scaling": True}, "train": {"epochs": "best"}
    }
    for wrong in ("units=32", "model.units", ".units=3", "model.=3"):
        with pytest.raises(UserError, match="expected section.key=value"):
            stages.parse_changes([wrong])


def test_stage_memory_table_flags_a_stage_over_1_gb():
    from bench import stages

    measured = {"validate": measurement(peak=950 * MB), "train": measurement(peak=1001 * MB)}
    metrics = {"validation": {"val_accuracy_at_best": 0.9, "best_epoch": 4}, "test": {"accuracy": 0.91}}
    rows = [line.strip("|").split(" | ") for line in stages.table(measured, metrics).splitlines()[2:4]]
    assert {row[0].strip(): row[-1].strip() for row in rows} == {"validate": "yes", "train": "**no**"}


def test_a_sweep_shortens_with_workers_until_the_shared_remotes_are_busy_all_the_time():
    from bench.sweep import projection

    rows = {workers: (wall, busy) for workers, wall, busy in projection(per_experiment=60, shared=5, fixed=10)}
    assert rows[1] == (10 + 64 * 60, 64 * 5 / (64 * 60))
    assert rows[4] == (10 + 16 * 60, 64 * 5 / (16 * 60))
    # 12 workers would keep the remotes busy: 16 and 64 wait on them alike
    assert rows[16] == rows[64] == (10 + 64 * 5, 1.0)


def test_the_sweep_report_has_a_cell_under_every_heading():
    from bench import sweep as bench_sweep
    from pipeline.commands import sweep

    names = [sweep.experiment_name(c) for c in sweep.combinations(sweep.parse_grid(bench_sweep.grid("sweep")))]
    outcomes = [sweep.Outcome(name, sweep.RAN, clone_seconds=0.2, pull_seconds=8.0, run_seconds=30.0,
                              push_seconds=3.0, clone_bytes=4_000_000, pulled_bytes=7_000_000,
                              written_bytes=8_000_000, seconds=42.0) for name in names]
    modes = bench_sweep.Modes(60.0, 200.0, 180.0, 160.0, [20.0] * 8, [2.0] * 8, outcomes, 17_000_000, 400_000)
    report = bench_sweep.render(modes)
    # own run 30 - 8 = 22 s; added: 0.2 + (8 - 2, DVC's own start left out) + 3 = 9.2 s; with it, 11.2 s
    assert f"| {9.2 / 22:.1%} |" in report and f"| {11.2 / 22:.1%} |" in report
    tables = [[line for line in block.splitlines() if line.startswith("|")] for block in report.split("\n\n")]
    tables = [table for table in tables if table]
    assert len(tables) == 4
    for table in tables:
        assert table[1].startswith("| --- |")
        assert {line.count(" | ") for line in table} == {table[0].count(" | ")}, table
    assert all(name in report for name in names)
