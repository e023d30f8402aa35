"""Stage plot: figures 3-7 and 3-8 (listings 3-9 and 3-10), and the run's results
published in git.

The figures are drawn as the chapter draws them: training as blue dots ('bo'),
validation as a blue line ('b'). PNG, because its bytes do not change between
identical runs.

validate and evaluate write DVC-cached files, so that DVC's run-cache can restore
them instead of training again; this stage, cheap and without TensorFlow, publishes
them in metrics/, git-tracked, where `dvc metrics diff` and `dvc plots diff` read
them in any clone: the evaluation's files as they are, and the validation run's
DVCLive record as the chapter's history table.
"""
from __future__ import annotations

from pathlib import Path

# Figure and the Agg canvas directly, files only: pyplot would also load its GUI
# machinery and keep every figure in its registry.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline import files, paths
from pipeline.cli import run
from pipeline.history import published, read_history, write_history

FIGURES = (
    # (path, history key, label, title, y label)
    (paths.LOSS_FIGURE, "loss", "loss", "Training and validation loss", "Loss"),
    (paths.ACCURACY_FIGURE, "accuracy", "acc", "Training and validation accuracy", "Accuracy"),
)


def training_curve(history: dict[str, list[float]], key: str, label: str, title: str, ylabel: str):
    epochs = range(1, len(history[key]) + 1)
    figure = Figure()
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.plot(epochs, history[key], "bo", label=f"Training {label}")
    axes.plot(epochs, history[f"val_{key}"], "b", label=f"Validation {label}")
    axes.set_title(title)
    axes.set_xlabel("Epochs")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(ylabel)
    axes.legend()
    return figure


def save_png(figure, path: Path) -> None:
    with files.atomic_open(path) as stream:
        figure.savefig(stream, format="png")


def main() -> None:
    for source, target in paths.PUBLISHED.items():
        files.copy(source, target)
        print(f"{target}: from {source}")
    history = published(read_history(paths.VALIDATION_LIVE))
    write_history(paths.HISTORY, history)
    print(f"{paths.HISTORY}: the validation run's history, from {paths.VALIDATION_LIVE}")
    for path, key, label, title, ylabel in FIGURES:
        save_png(training_curve(history, key, label, title, ylabel), path)
        print(f"{path}: {title}")


if __name__ == "__main__":
    run(main)
