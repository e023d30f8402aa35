"""The benchmark's results as markdown tables, each measure checked against its target:
the limits below (MAX_*, PREDICT_CASES), which docs/benchmark.md lists."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.probe import SAMPLE_SECONDS, Measurement, phase_order
from pipeline import markdown

# evaluate scores with the TensorFlow-free forward pass (pipeline/inference.py)
MODEL_FREE_STAGES = ("download", "vocab", "vectorize", "evaluate", "plot")
MAX_WALL_RATIOS = (0.30, 0.25)  # the pipeline's wall time against the chapter's: the target, then the moonshot
MAX_STAGE_BYTES = 1_000_000_000
MAX_EPOCH_S = 0.2
MAX_ACCURACY_GAP = 0.005
MAX_NOOP_S = 1.0
MAX_EXPERIMENT_S = 10.0  # `dvc exp run -S model.units=32`, the experiment as a whole
NOOP_RUNS = 5
# The chapter's code and `dvc repro -f` (its fits not kept from the run before) are each run
# this many times, in turn: one run of either can be a third slower on a shared machine
WALL_PAIRS = 3
PREDICT_RUNS = 5  # each imdb-predict case and the numpy floor: the run of median wall time is reported
# imdb-predict and the evaluate stage: (what, seconds at most, peak bytes at most or None)
PREDICT_CASES = {
    "one": ("one review", 0.15, 80_000_000),
    "file": ("the 25,000 test reviews from a file, one per line", 1.5, None),
    "explain": ("`--explain` on one review", 0.6, None),
}
MAX_EVALUATE_S, MAX_EVALUATE_BYTES = 1.5, 400_000_000


@dataclass
class ChapterResult:
    process: Measurement
    phases: list[dict]  # name, wall_s, peak_rss_bytes (the process's peak by the end of the phase)
    validation_epochs: int
    refit_epochs: int
    seconds_per_epoch: float | None
    test_accuracy: float


@dataclass
class PipelineResult:
    repro: Measurement  # the whole `dvc repro -f`
    stages: dict[str, Measurement]  # in dvc.yaml order
    noop_s: float  # `dvc repro` with nothing to do, median of NOOP_RUNS
    noop_reran: list[str]  # stages that no-op run ran anyway (should be none)
    seconds_per_epoch: float | None
    test_accuracy: float
    noop_floor_s: float | None = None  # `dvc repro` with nothing to do in a one-stage project
    train_phases: list[tuple[str, float]] | None = None  # (phase, seconds) of the train stage


@dataclass
class ExperimentResult:
    settings: str  # what -S set
    run: Measurement  # the whole `dvc exp run`
    stages: dict[str, Measurement]  # the stages it ran
    reused: list[str]  # the fits train restored from data/memo/ instead of making
    train_phases: list[tuple[str, float]] | None = None  # (phase, seconds) of its train stage, if it ran


@dataclass
class Benchmark:
    data: str
    machine: str
    chapter: ChapterResult
    pipeline: PipelineResult
    predict: dict[str, Measurement] | None = None  # by PREDICT_CASES key
    floor: Measurement | None = None  # `python -c "import numpy"`: the interpreter's floor for imdb-predict
    experiments: list[ExperimentResult] | None = None  # the first is the one MAX_EXPERIMENT_S is for
    dvc_own_s: dict[str, float] | None = None  # DVC's own seconds in `dvc repro -f`, by cache.type
    # (the chapter's code, `dvc repro -f`) wall seconds of WALL_PAIRS runs each, in turn; the first
    # pair is chapter.process and pipeline.repro
    wall_pairs: list[tuple[float, float]] | None = None


def _seconds(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _megabytes(value: int) -> str:
    return f"{value / 1e6:.0f}"


def _ratio(b: float | None, a: float | None) -> str:
    return "n/a" if a is None or b is None or a == 0 else f"{b / a:.3f}"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def largest_stage(pipeline: PipelineResult) -> tuple[str, int]:
    name = max(pipeline.stages, key=lambda stage: pipeline.stages[stage].peak_rss_bytes)
    return name, pipeline.stages[name].peak_rss_bytes


def tensorflow_in_model_free_stages(pipeline: PipelineResult) -> list[str]:
    return [name for name in MODEL_FREE_STAGES if name in pipeline.stages and pipeline.stages[name].loaded_tensorflow]


def comparison_rows(
    chapter: ChapterResult, pipeline: PipelineResult, wall_pairs: list[tuple[float, float]] | None = None
) -> list[list[str]]:
    pairs = wall_pairs or [(chapter.process.wall_s, pipeline.repro.wall_s)]
    a_wall, b_wall = (statistics.median(seconds) for seconds in zip(*pairs, strict=True))
    runs = f", median of {len(pairs)} runs each, in turn" if len(pairs) > 1 else ""
    stage, b_peak = largest_stage(pipeline)
    a_epoch, b_epoch = chapter.seconds_per_epoch, pipeline.seconds_per_epoch
    a_acc, b_acc = chapter.test_accuracy, pipeline.test_accuracy
    wall_rows = [
        [
            f"wall time, end to end (s{runs})" if ratio == MAX_WALL_RATIOS[0]
            else f"wall time, against the moonshot (s{runs})",
            _seconds(a_wall),
            _seconds(b_wall),
            _ratio(b_wall, a_wall),
            f"(b)/(a) ≤ {ratio}",
            _met(b_wall <= ratio * a_wall),
        ]
        for ratio in MAX_WALL_RATIOS
    ]
    return wall_rows + [
        [
            f"peak memory (MB): (a) the script, (b) its largest stage, {stage}",
            _megabytes(chapter.process.peak_rss_bytes),
            _megabytes(b_peak),
            _ratio(b_peak, chapter.process.peak_rss_bytes),
            f"(b) ≤ {_megabytes(MAX_STAGE_BYTES)} MB",
            _met(b_peak <= MAX_STAGE_BYTES),
        ],
        [
            "seconds per validation-run epoch",
            _seconds(a_epoch, 3),
            _seconds(b_epoch, 3),
            _ratio(b_epoch, a_epoch),
            f"(b) ≤ {MAX_EPOCH_S} s",
            _met(b_epoch is not None and b_epoch <= MAX_EPOCH_S),
        ],
        [
            "test accuracy",
            f"{a_acc:.5f}",
            f"{b_acc:.5f}",
            _ratio(b_acc, a_acc),
            f"(b) within {MAX_ACCURACY_GAP} of (a)",
            _met(abs(b_acc - a_acc) <= MAX_ACCURACY_GAP),
        ],
    ]


def pipeline_target_rows(
    pipeline: PipelineResult, experiments: list[ExperimentResult] | None = None
) -> list[list[str]]:
    loaded = tensorflow_in_model_free_stages(pipeline)
    noop_note = f" (re-ran {', '.join(pipeline.noop_reran)})" if pipeline.noop_reran else ""
    experiment_rows = [
        [
            f"a model-parameter experiment, `dvc exp run -S {experiments[0].settings}` (s)",
            _seconds(experiments[0].run.wall_s),
            f"≤ {MAX_EXPERIMENT_S} s",
            _met(experiments[0].run.wall_s <= MAX_EXPERIMENT_S),
        ]
    ] if experiments else []
    return experiment_rows + [
        [
            f"`dvc repro` with nothing to do (s, median of {NOOP_RUNS}){noop_note}",
            _seconds(pipeline.noop_s),
            f"≤ {MAX_NOOP_S} s, nothing re-run",
            _met(pipeline.noop_s <= MAX_NOOP_S and not pipeline.noop_reran),
        ],
        *(
            [[f"`dvc repro` with nothing to do in a project of one stage (s, median of {NOOP_RUNS}): DVC's floor",
              _seconds(pipeline.noop_floor_s), "", ""]]
            if pipeline.noop_floor_s is not None
            else []
        ),
        [
            "stages that train nothing but loaded TensorFlow (" + ", ".join(MODEL_FREE_STAGES) + ")"
            + (f": {', '.join(loaded)}" if loaded else ""),
            str(len(loaded)),
            "0",
            _met(not loaded),
        ],
    ]


def _limits(seconds: float, peak: int | None) -> str:
    return f"≤ {seconds} s" + (f", ≤ {peak // 1_000_000} MB" if peak else "")


def predict_rows(predict: dict[str, Measurement], pipeline: PipelineResult) -> list[list[str]]:
    rows = []
    for key, (what, seconds, peak) in PREDICT_CASES.items():
        run = predict[key]
        met = run.wall_s <= seconds and (peak is None or run.peak_rss_bytes <= peak)
        rows.append(
            [
                f"`imdb-predict`, {what}",
                _seconds(run.wall_s),
                _megabytes(run.peak_rss_bytes),
                _limits(seconds, peak),
                _met(met),
            ]
        )
    evaluate = pipeline.stages["evaluate"]
    met = evaluate.wall_s <= MAX_EVALUATE_S and evaluate.peak_rss_bytes <= MAX_EVALUATE_BYTES
    rows.append([
        "the evaluate stage", _seconds(evaluate.wall_s), _megabytes(evaluate.peak_rss_bytes),
        _limits(MAX_EVALUATE_S, MAX_EVALUATE_BYTES), _met(met),
    ])
    return rows


def floor_row(floor: Measurement) -> list[str]:
    return ["Python with numpy alone (`python -c \"import numpy\"`): the floor", _seconds(floor.wall_s),
            _megabytes(floor.peak_rss_bytes), "", ""]


def experiment_rows(experiments: list[ExperimentResult]) -> list[list[str]]:
    return [
        [
            f"`-S {experiment.settings}`",
            _seconds(experiment.run.wall_s),
            ", ".join(f"{name} {run.wall_s:.2f} s" for name, run in experiment.stages.items()) or "none",
            _seconds(dvc_own_seconds(experiment.run, experiment.stages)),
            ", ".join(experiment.reused) or "none",
        ]
        for experiment in experiments
    ]


def train_phase_table(runs: dict[str, tuple[list[tuple[str, float]], float]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows from each run's (phases, the train process's wall seconds): one column
    of seconds per run, one row per phase in the order phases come (a phase a run did not
    have left blank), and last the process's own wall time."""
    phases = sorted({phase for measured, _ in runs.values() for phase, _ in measured}, key=phase_order)
    seconds = {name: dict(measured) for name, (measured, _) in runs.items()}
    rows = [[phase, *(_seconds(seconds[name][phase]) if phase in seconds[name] else "" for name in runs)]
            for phase in phases]
    totals = ["the train stage (process)", *(_seconds(wall) for _, wall in runs.values())]
    return ["phase", *(f"{name} (s)" for name in runs)], rows + [totals]


def train_phase_runs(benchmark: Benchmark) -> dict[str, tuple[list[tuple[str, float]], float]]:
    pipeline = benchmark.pipeline
    runs = {"`dvc repro -f`": (pipeline.train_phases, pipeline.stages["train"].wall_s)} if pipeline.train_phases else {}
    runs |= {f"`-S {experiment.settings}`": (experiment.train_phases, experiment.stages["train"].wall_s)
             for experiment in benchmark.experiments or [] if experiment.train_phases}
    return runs


def link_rows(dvc_own_s: dict[str, float]) -> list[list[str]]:
    return [[link, _seconds(seconds)] for link, seconds in dvc_own_s.items()]


def stage_rows(pipeline: PipelineResult) -> list[list[str]]:
    rows = [
        [name, _seconds(run.wall_s), _megabytes(run.peak_rss_bytes), "yes" if run.loaded_tensorflow else "no"]
        for name, run in pipeline.stages.items()
    ]
    any_tensorflow = any(run.loaded_tensorflow for run in pipeline.stages.values())
    whole = pipeline.repro
    return rows + [
        [
            "`dvc repro -f`, all stages",
            _seconds(whole.wall_s),
            _megabytes(whole.peak_rss_bytes),
            "yes" if any_tensorflow else "no",
        ]
    ]


def phase_label(chapter: ChapterResult, name: str) -> str:
    epochs = {"validation run": chapter.validation_epochs, "refit": chapter.refit_epochs}
    return f"{name} ({epochs[name]} epochs)" if name in epochs else name


def phase_rows(chapter: ChapterResult) -> list[list[str]]:
    rows = [
        [phase_label(chapter, phase["name"]), _seconds(phase["wall_s"]), _megabytes(phase["peak_rss_bytes"])]
        for phase in chapter.phases
    ]
    whole = chapter.process
    return rows + [["whole script (process)", _seconds(whole.wall_s), _megabytes(whole.peak_rss_bytes)]]


HOW_MEASURED = f"""\
How it is measured: (a) is `bench/chapter.py`, the chapter's listings 3-1 to 3-11 with dense
float64 `vectorize_sequences`, run as one process; (b) is `dvc repro -f` in a fresh temporary
copy of the project, with the same archive, params and seed. Their wall times are the medians of
{WALL_PAIRS} runs of each, run in turn (before each later `dvc repro -f`, DVC's cache and the
kept fits are emptied, so that it fits and caches everything again, as the first did); every
other figure is from the first run. Each process (every stage, the
whole `dvc repro -f`, the chapter's script) is started and measured by `bench/probe.py`. Wall
time is the whole process, interpreter start-up included. Peak memory is the largest resident
set of the process and its children (ru_maxrss, and the sum over the process tree sampled every
{SAMPLE_SECONDS} s). A stage "loaded TensorFlow" if its process mapped TensorFlow's libraries. Seconds per
epoch is the median gap between consecutive epoch ends of the validation run (the first epoch,
which also compiles, is left out): (a) from a Keras callback, (b) from the times at which the
train stage printed the validation run's per-epoch `val_loss` lines."""


def dvc_own_seconds(repro: Measurement, stages: dict[str, Measurement]) -> float:
    """A `dvc repro`'s wall time minus its stages'."""
    return repro.wall_s - sum(run.wall_s for run in stages.values())


def render(benchmark: Benchmark) -> str:
    chapter, pipeline = benchmark.chapter, benchmark.pipeline
    dvc_itself = dvc_own_seconds(pipeline.repro, pipeline.stages)
    lines = [
        "# Benchmark: the chapter's dense code (a) against the pipeline (b)",
        "",
        f"Data: {benchmark.data}.",
        "",
        f"Machine: {benchmark.machine}.",
        "",
        "## Against the chapter, and the targets",
        "",
        *markdown.table_lines(
            ["measure", "chapter's code (a)", "pipeline (b)", "(b)/(a)", "target", "met"],
            comparison_rows(chapter, pipeline, benchmark.wall_pairs),
        ),
        "",
        "## Targets of the pipeline alone",
        "",
        *markdown.table_lines(
            ["measure", "pipeline", "target", "met"], pipeline_target_rows(pipeline, benchmark.experiments)
        ),
        "",
        *(
            [
                "## Experiments after the run: what each costs",
                "",
                *markdown.table_lines(
                    ["`dvc exp run`", "wall (s)", "stages it ran", "DVC's own (s)", "fits restored from data/memo/"],
                    experiment_rows(benchmark.experiments),
                ),
                "",
            ]
            if benchmark.experiments
            else []
        ),
        *(
            [
                "## The train stage, phase by phase",
                "",
                "From the times at which train printed each line: its own as each fit begins, Keras's as "
                "each epoch begins and ends. TensorFlow starts once per run, in the first fit that is not "
                "restored; each fit traces its step functions in its first epoch. The validation run has "
                "validate.epochs, the final fit train.epochs.",
                "",
                *markdown.table_lines(*train_phase_table(train_phase_runs(benchmark))),
                "",
            ]
            if train_phase_runs(benchmark)
            else []
        ),
        "## The pipeline, stage by stage",
        "",
        *markdown.table_lines(["stage", "wall (s)", "peak memory (MB)", "TensorFlow loaded"], stage_rows(pipeline)),
        "",
        f"DVC itself takes {dvc_itself:.2f} s of `dvc repro -f` (the whole run minus its stages).",
        "",
        *(
            [
                "## DVC's own work by the cache's link type",
                "",
                "`dvc repro -f` run again with `cache.type hardlink`: DVC's own work is the whole run minus its "
                "stages (hashing the outputs, putting them in the cache, the lock file).",
                "",
                *markdown.table_lines(["cache.type", "DVC's own work (s)"], link_rows(benchmark.dvc_own_s)),
                "",
            ]
            if benchmark.dvc_own_s
            else []
        ),
        *(
            [
                "## Scoring without TensorFlow: imdb-predict and evaluate",
                "",
                *markdown.table_lines(
                    ["measure", "wall (s)", "peak memory (MB)", "target", "met"],
                    predict_rows(benchmark.predict, pipeline)
                    + ([floor_row(benchmark.floor)] if benchmark.floor else []),
                ),
                "",
                "imdb-predict runs in the project the benchmark built, as a user runs it: the whole process, "
                f"start-up and the model's loading included. Each row is the median wall time of {PREDICT_RUNS} "
                "runs, with the largest peak memory among them.",
                "",
            ]
            if benchmark.predict
            else []
        ),
        "## The chapter's code, phase by phase",
        "",
        *markdown.table_lines(["phase", "wall (s)", "peak memory so far (MB)"], phase_rows(chapter)),
        "",
        HOW_MEASURED,
    ]
    return "\n".join(lines) + "\n"
