"""The per-epoch history of a fit, as Keras's history.history names it.

DVCLive's Keras callback records it while validate and train fit (a folder per
run: plots/metrics/<train|eval>/<metric>.tsv, one row per step); this module reads
it back for train (`best`), evaluate and plot, and writes the chapter's table,
metrics/history.csv. No TensorFlow here.
"""
from __future__ import annotations

from pathlib import Path

from pipeline import files

COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
DECIMALS = 6
# What git keeps (metrics/history.csv and the figures, metrics/roc.csv) comes from float32
# sums that another processor adds in another order: the last bits differ, and the sixth
# decimal with them (an Intel and an AMD machine did). Four decimals hold across them.
PUBLISHED_DECIMALS = 4
# history.history's key -> DVCLive's file for it (the callback's names for Keras's logs)
LIVE_FILES = {
    "loss": "train/loss.tsv",
    "accuracy": "train/accuracy.tsv",
    "val_loss": "eval/loss.tsv",
    "val_accuracy": "eval/accuracy.tsv",
}


def read_history(live_dir: Path) -> dict[str, list[float]]:
    """{key: one value per epoch, rounded to DECIMALS} from the DVCLive files of a
    fit with validation data."""
    return {key: _live_series(live_dir / "plots" / "metrics" / name) for key, name in LIVE_FILES.items()}


def _live_series(path: Path) -> list[float]:
    rows = files.read_csv(path, delimiter="\t")
    return [round(float(row[path.stem]), DECIMALS) for row in rows]


def published(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """The history as git keeps it: PUBLISHED_DECIMALS."""
    return {key: [round(value, PUBLISHED_DECIMALS) for value in values] for key, values in history.items()}


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    epochs = len(history["loss"])
    rows = [[epoch + 1] + [history[key][epoch] for key in COLUMNS[1:]] for epoch in range(epochs)]
    files.write_csv(path, COLUMNS, rows)


def best_epoch(history: dict[str, list[float]]) -> int:
    """The epoch (1-based) with the lowest validation loss; the earliest on a tie."""
    val_loss = history["val_loss"]
    return val_loss.index(min(val_loss)) + 1
