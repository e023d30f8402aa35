"""The per-epoch history table (metrics/history.csv), written by validate and read
by train, evaluate and plot. No TensorFlow here."""
from __future__ import annotations

from pathlib import Path

from pipeline import files

COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
DECIMALS = 6


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    epochs = len(history["loss"])
    rows = [
        [epoch + 1] + [round(float(history[key][epoch]), DECIMALS) for key in COLUMNS[1:]]
        for epoch in range(epochs)
    ]
    files.write_csv(path, COLUMNS, rows)


def read_history(path: Path) -> dict[str, list[float]]:
    rows = files.read_csv(path)
    return {key: [float(row[key]) for row in rows] for key in COLUMNS}


def best_epoch(history: dict[str, list[float]]) -> int:
    """The epoch (1-based) with the lowest validation loss; the earliest on a tie."""
    val_loss = history["val_loss"]
    return val_loss.index(min(val_loss)) + 1
