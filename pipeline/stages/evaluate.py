"""Stage evaluate: the trained model on the test reviews, scored without TensorFlow.

The model is the train stage's inference bundle, scored by `inference.forward`, the
forward pass imdb-predict uses. data/evaluation/metrics.json holds the loss (as
Keras's `evaluate` computes it) and accuracy the chapter reports, ROC AUC,
precision, recall, F1 and the confusion matrix, plus a summary of the validation
run; roc.csv and confusion.csv beside it feed `dvc plots` once the plot stage
publishes all three in metrics/. data/predictions/test.parquet keeps every review's
probability. The bundle, stamped with its test metrics, becomes
data/bundle/imdb-sentiment.npz: the model imdb-predict and `dvc artifacts get` use;
beside it, params.sha256 holds params.yaml's digest when the bundle was built with what
params.yaml says, so imdb-predict need not parse params.yaml to know it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import features, files, inference, labels, paths
from pipeline.cli import UserError, run
from pipeline.history import DECIMALS, PUBLISHED_DECIMALS, best_epoch, read_history
from pipeline.labels import predicted
from pipeline.params import parse_raw, read_bytes

ROC_POINTS = 201  # the ROC curve kept in git, sampled at evenly spaced false-positive rates


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


# The metrics are scikit-learn's definitions (the tests check them against it), in
# numpy: importing scikit-learn took longer than the rest of the stage.


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    y_true = np.asarray(y_true).astype(bool)
    y_pred = predicted(probabilities).astype(bool)
    tp, fp = int(np.sum(y_pred & y_true)), int(np.sum(y_pred & ~y_true))
    fn, tn = int(np.sum(~y_pred & y_true)), int(np.sum(~y_pred & ~y_true))
    fpr, tpr = roc_curve(y_true, probabilities)
    return {
        # without both classes among the test reviews there is no ROC curve: null, not NaN
        "roc_auc": _round(np.trapezoid(tpr, fpr)) if fpr.size else None,
        "precision": _round(_ratio(tp, tp + fp)),
        "recall": _round(_ratio(tp, tp + fn)),
        "f1": _round(_ratio(2 * tp, 2 * tp + fp + fn)),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1);
    none when the reviews are all of one class."""
    if np.all(y_true) or not np.any(y_true):
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    ranked_true, ranked_scores = np.asarray(y_true)[order], np.asarray(scores)[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(ranked_scores)), ranked_true.size - 1]
    true_positives = np.cumsum(ranked_true)[last_of_each_score]
    false_positives = last_of_each_score + 1 - true_positives
    return np.r_[0, false_positives] / false_positives[-1], np.r_[0, true_positives] / true_positives[-1]


def validation_summary(history: dict[str, list[float]]) -> dict:
    best = best_epoch(history)
    return {
        "best_epoch": best,
        "best_val_loss": history["val_loss"][best - 1],
        "val_accuracy_at_best": history["val_accuracy"][best - 1],
        "max_val_accuracy": max(history["val_accuracy"]),
        "epochs": len(history["val_loss"]),
    }


def multiclass_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list) -> dict:
    """Macro-averaged F1, each class's precision, recall and F1 (scikit-learn's definitions),
    and the confusion matrix: a row per actual class, a column per predicted one."""
    y_true, y_pred = np.asarray(y_true).astype(int), predicted(probabilities)
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for index, name in enumerate(classes):
        tp = int(confusion[index, index])
        fp, fn = int(confusion[:, index].sum()) - tp, int(confusion[index].sum()) - tp
        per_class[str(name)] = {
            "precision": _round(_ratio(tp, tp + fp)),
            "recall": _round(_ratio(tp, tp + fn)),
            "f1": _round(_ratio(2 * tp, 2 * tp + fp + fn)),
            "support": tp + fn,
        }
    # over the classes among the test reviews or the predictions, as scikit-learn averages
    present = [i for i in range(len(classes)) if confusion[i].sum() + confusion[:, i].sum()]
    return {
        "macro_f1": _round(np.mean([_ratio(2 * int(confusion[i, i]), int(confusion[i].sum() + confusion[:, i].sum()))
                                    for i in present])),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def roc_rows(y_true: np.ndarray, probabilities: np.ndarray) -> list[list[float]]:
    fpr, tpr = roc_curve(y_true, probabilities)
    if not fpr.size:
        return []
    grid = np.linspace(0.0, 1.0, ROC_POINTS)
    return [[round(float(f), PUBLISHED_DECIMALS), round(float(t), PUBLISHED_DECIMALS)]
            for f, t in zip(grid, np.interp(grid, fpr, tpr), strict=True)]


def confusion_rows(y_true: np.ndarray, probabilities: np.ndarray, classes: list) -> list[list]:
    """(actual, predicted) per review: 0 and 1 with two classes, as the chapter's labels;
    the classes' names with more. Sorted, so the file changes only by its counts from one
    run to the next."""
    pairs = np.stack([y_true.astype(int), predicted(probabilities)], axis=1)
    rows = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].tolist()
    return rows if labels.is_binary(classes) else [[classes[a], classes[p]] for a, p in rows]


def test_metrics(loss: str, y_true: np.ndarray, probabilities: np.ndarray, classes: list) -> dict:
    per_class = (
        classification_metrics(y_true, probabilities) if labels.is_binary(classes)
        else multiclass_metrics(y_true, probabilities, classes)
    )
    return {
        "loss": _round(inference.keras_loss(loss, y_true, probabilities)),
        "accuracy": _round(np.mean(predicted(probabilities) == y_true)),
        **per_class,
    }


def predictions_table(y_test: np.ndarray, probabilities: np.ndarray, classes: list) -> pa.Table:
    """Each test review's label and probability (two classes: the second's), or its
    probability of each class (more)."""
    index = labels.index_type(len(classes))
    if labels.is_binary(classes):
        return pa.table({"label": pa.array(y_test.astype(index)), "probability": pa.array(probabilities)})
    return pa.table({"label": pa.array(y_test.astype(index)),
                     "probabilities": pa.FixedSizeListArray.from_arrays(probabilities.ravel(), len(classes))})


def bundle_metrics(test: dict, classes: list) -> dict:
    """What the bundle records of its test: all of it with two classes; with more, the
    summary, not a matrix and a row per class that grow with the classes squared."""
    if labels.is_binary(classes):
        return test
    return {key: test[key] for key in ("loss", "accuracy", "macro_f1")}


def matching_params_digest(bundle: inference.Bundle, params_path: Path = paths.PARAMS) -> str:
    """params.yaml's digest if the bundle was built with what it says, else nothing: what
    imdb-predict compares with, to skip parsing params.yaml again."""
    try:
        data = read_bytes(params_path)
        if inference.params_differences(bundle, parse_raw(data, params_path)):
            return ""
    except UserError:
        return ""
    return inference.params_digest(data)


def main() -> None:
    bundle = inference.read_bundle(paths.TRAINED_BUNDLE)
    x_test, y_test = features.read_features("test")
    history = read_history(paths.VALIDATION_LIVE)
    probabilities = inference.forward(bundle.layers, x_test)
    classes = bundle.classes
    report = {
        "test": test_metrics(bundle.model.loss, y_test, probabilities, classes),
        "validation": validation_summary(history),
    }
    files.write_json(paths.RUN_METRICS, report)
    # a ROC curve exists for two classes only; with more the file (a DVC output) has its header alone
    roc = roc_rows(y_test, probabilities) if labels.is_binary(classes) else []
    files.write_csv(paths.RUN_ROC, ("fpr", "tpr"), roc)
    files.write_csv(paths.RUN_CONFUSION, ("actual", "predicted"), confusion_rows(y_test, probabilities, classes))
    files.write_parquet(paths.TEST_PREDICTIONS, predictions_table(y_test, probabilities, classes))
    with files.atomic_open(paths.BUNDLE) as stream:
        inference.write_bundle(stream, bundle.with_metrics(bundle_metrics(report["test"], classes)))
    files.write_text(paths.BUNDLE_PARAMS_DIGEST, matching_params_digest(bundle) + "\n")
    print(f"test loss {report['test']['loss']}, test accuracy {report['test']['accuracy']}")


if __name__ == "__main__":
    run(main)
