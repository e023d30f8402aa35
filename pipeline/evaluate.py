"""Stage evaluate: the saved model on the test reviews.

data/evaluation/metrics.json holds model.evaluate's loss and accuracy (as the
chapter reports them), ROC AUC, precision, recall, F1 and the confusion matrix,
plus a summary of the validation run; roc.csv and confusion.csv beside it feed
`dvc plots` once the plot stage publishes all three in metrics/.
data/predictions/test.parquet keeps every review's probability.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from sklearn import metrics as skm

from pipeline import files, paths
from pipeline.cli import run
from pipeline.history import DECIMALS, best_epoch, read_history
from pipeline.labels import predicted

ROC_POINTS = 201  # the ROC curve kept in git, sampled at evenly spaced false-positive rates


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    y_pred = predicted(probabilities)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {
        "roc_auc": _round(skm.roc_auc_score(y_true, probabilities)),
        "precision": _round(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": _round(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": _round(skm.f1_score(y_true, y_pred, zero_division=0)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def validation_summary(history: dict[str, list[float]]) -> dict:
    best = best_epoch(history)
    return {
        "best_epoch": best,
        "best_val_loss": history["val_loss"][best - 1],
        "val_accuracy_at_best": history["val_accuracy"][best - 1],
        "max_val_accuracy": max(history["val_accuracy"]),
        "epochs": len(history["val_loss"]),
    }


def roc_rows(y_true: np.ndarray, probabilities: np.ndarray) -> list[list[float]]:
    fpr, tpr, _ = skm.roc_curve(y_true, probabilities)
    grid = np.linspace(0.0, 1.0, ROC_POINTS)
    return [[_round(f), _round(t)] for f, t in zip(grid, np.interp(grid, fpr, tpr))]


def confusion_rows(y_true: np.ndarray, probabilities: np.ndarray) -> list[list[int]]:
    # Sorted, so the file changes only by its counts from one run to the next.
    pairs = np.stack([y_true.astype(int), predicted(probabilities)], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].tolist()


def main() -> None:
    x_test, y_test = files.read_features("test")
    history = read_history(paths.RUN_HISTORY)

    from pipeline import model

    network = model.load_model(paths.MODEL)
    loss, accuracy = model.evaluate(network, x_test, y_test)
    probabilities = model.predict(network, x_test)
    report = {
        "test": {"loss": _round(loss), "accuracy": _round(accuracy), **classification_metrics(y_test, probabilities)},
        "validation": validation_summary(history),
    }
    files.write_json(paths.RUN_METRICS, report)
    files.write_csv(paths.RUN_ROC, ("fpr", "tpr"), roc_rows(y_test, probabilities))
    files.write_csv(paths.RUN_CONFUSION, ("actual", "predicted"), confusion_rows(y_test, probabilities))
    files.write_parquet(
        paths.TEST_PREDICTIONS,
        pa.table({"label": pa.array(y_test.astype(np.int8)), "probability": pa.array(probabilities)}),
    )
    print(f"test loss {report['test']['loss']}, test accuracy {report['test']['accuracy']}")


if __name__ == "__main__":
    run(main)
