"""The classes: what a label is, and what a model's output means.

The vocab stage takes the classes from the training split's labels, sorted (numbers
by value, text by code point), and writes them to data/vocab/classes.json; from then
on a label is its class's index. The bundle carries the classes' names, so
evaluate and imdb-predict name a prediction the same way.

Two classes keep the chapter's model: one sigmoid output, the probability of the
second class, which is predicted from THRESHOLD on. More classes get a softmax
output, a probability per class, and the most probable is predicted.
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.5  # with two classes, the second is predicted when its probability is at least this


def is_binary(classes: list) -> bool:
    return len(classes) == 2


def outputs(classes: list) -> int:
    """The units of the model's last layer."""
    return 1 if is_binary(classes) else len(classes)


def index_type(count: int) -> np.dtype:
    """The smallest integer type that holds every class index."""
    return np.dtype(np.int8 if count <= 127 else np.int16 if count <= 32767 else np.int32)


def predicted(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class index of each row: from the probability of the second class
    (one column: two classes), or the most probable class (one column per class)."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 1:
        return (probabilities >= THRESHOLD).astype(int)
    return np.argmax(probabilities, axis=1)


def check_classes(classes: list) -> str | None:
    """Why these classes cannot train a classifier (or travel in a bundle), or None."""
    from pipeline import limits

    if not classes:
        return "the training split has no class: a classifier needs two or more"
    if len(classes) < 2:
        return f"the training split has a single class ({str(classes[0])[:60]!r}): a classifier needs two or more"
    if len(classes) > limits.MAX_CLASSES:
        return (
            f"the training split has {len(classes):,} classes, more than the {limits.MAX_CLASSES:,} a classifier "
            "may have (pipeline/limits.py): is download.label_column the label?"
        )
    long = next((c for c in classes if isinstance(c, str) and len(c) > limits.MAX_CLASS_NAME), None)
    if long is not None:
        return (
            f"a class's name has {len(long):,} characters, more than the {limits.MAX_CLASS_NAME:,} allowed: "
            f"{long[:40]!r}…"
        )
    return None


def model_problem(model, classes: list, num_words: int) -> str | None:
    """Why params.yaml's model section cannot fit these classes, or None; checked before
    TensorFlow loads."""
    from pipeline import limits
    from pipeline.params import model_parameters

    last_inputs = model.units if model.hidden_layers else num_words
    # params count the chapter's one output unit; the last layer has outputs(classes)
    weights = model_parameters(num_words, model) + (outputs(classes) - 1) * (last_inputs + 1)
    if weights > limits.MAX_MODEL_PARAMETERS:
        return (
            f"a model of {len(classes):,} classes with these params has {weights:,} weights; at most "
            f"{limits.MAX_MODEL_PARAMETERS:,} train within a stage's memory (pipeline/limits.py): lower model.units "
            "or vocab.num_words"
        )
    if is_binary(classes):
        return None
    if model.nb_scaling:
        return (
            f"model.nb_scaling = true needs two classes (naive-Bayes log-count ratios compare one class with "
            f"the other); the training split has {len(classes)}: set it to false"
        )
    if model.loss == "mse":
        return (
            f"model.loss = mse needs two classes; the training split has {len(classes)}: use "
            "binary_crossentropy (with more classes, the model uses sparse categorical cross-entropy)"
        )
    return None


def read_classes(model=None, num_words: int = 0) -> list:
    """The classes the vocab stage found, checked against the model params when given."""
    from pipeline import files, paths
    from pipeline.cli import UserError

    classes = files.read_json(paths.CLASSES)
    if not isinstance(classes, list) or check_classes(classes) or len(set(map(repr, classes))) != len(classes):
        raise UserError(f"{paths.CLASSES} is not a list of two or more classes: rerun `dvc repro vocab`")
    problem = None if model is None else model_problem(model, classes, num_words)
    if problem:
        raise UserError(f"params.yaml: {problem}")
    return classes
