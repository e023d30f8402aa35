"""The chapter's code path (listings 3-1 to 3-11), written as the chapter writes it.

Dense float64 multi-hot matrices from `vectorize_sequences`, a Sequential model,
`fit` on numpy arrays. The chapter loads reviews already encoded
(`imdb.load_data`); here they are read from the same archive and encoded with
the same vocabulary code as the pipeline, in the pipeline's order, and the
validation rows are the pipeline's seeded split, so both paths train on the
same numbers and their accuracies can be compared.

    python -m bench.chapter --params params.yaml --archive aclImdb_v1.tar.gz --out chapter.json

writes the wall time and peak memory of each phase, the seconds per epoch of
the validation run and the test accuracy as JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bench.probe import seconds_per_epoch
from pipeline import files, paths, text
from pipeline.cli import UserError, run
from pipeline.history import best_epoch
from pipeline.params import Params, load_params
from pipeline.sources import imdb
from pipeline.stages.train import split_validation
from testbed.archives import read_archive, reviews_table
from testbed.text import build_word_index

# The chapter's features and model (listings 3-1 to 3-4): the comparison means nothing with others.
CHAPTER_PARAMS = {
    "vocab": {"skip_top": 0, "ngram_range": (1, 1)},
    "vectorize": {"weighting": "binary"},
    "model": {
        "hidden_layers": 2,
        "units": 16,
        "activation": "relu",
        "optimizer": "rmsprop",
        "learning_rate": 0.001,
        "loss": "binary_crossentropy",
        "batch_size": 512,
        "dropout": 0.0,
        "l2": 0.0,
        "nb_scaling": False,
    },
}


def vectorize_sequences(sequences, dimension=10000):
    """Listing 3-2, verbatim."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.0
    return results


def check_chapter_params(params: Params) -> None:
    for section, keys in CHAPTER_PARAMS.items():
        for key, chapter_value in keys.items():
            value = getattr(getattr(params, section), key)
            if value != chapter_value:
                raise UserError(
                    f"params.yaml: {section}.{key} = {value!r}, but the chapter's code uses {chapter_value!r}; "
                    "the benchmark compares the pipeline with the chapter, so it needs the chapter's params"
                )


class Phases:
    """Wall time of each phase and the process's peak memory by the end of it."""

    def __init__(self):
        self.report: list[dict] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.report.append({"name": name, "wall_s": time.perf_counter() - start, "peak_rss_bytes": peak_kib * 1024})


def read_split(reviews: list[imdb.Review], split: str) -> tuple[list[str], list[int]]:
    """Texts and labels (0 negative, 1 positive, the chapter's) of a split, in the pipeline's order."""
    table = reviews_table(r for r in reviews if r.split == split)
    return table.column("text").to_pylist(), [imdb.NAMES.index(name) for name in table.column("label").to_pylist()]


def chapter_model(models, layers, dimension: int):
    """Listings 3-3 and 3-4."""
    model = models.Sequential()
    model.add(layers.Dense(16, activation="relu", input_shape=(dimension,)))
    model.add(layers.Dense(16, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The chapter's dense code path, timed phase by phase.")
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="the params.yaml to take sizes and seed from")
    parser.add_argument(
        "--archive", type=Path, required=True, help="aclImdb_v1.tar.gz, or a copy of its labeled reviews"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    params = load_params(args.params)
    check_chapter_params(params)
    num_words, seed = params.vocab.num_words, params.model.seed
    phases = Phases()

    with phases.phase("import keras"):
        import keras
        from keras import layers, models

        from pipeline.training import make_deterministic

    with phases.phase("read reviews"):
        reviews = read_archive(args.archive).reviews
        train_texts, train_labels = read_split(reviews, "train")
        test_texts, test_labels = read_split(reviews, "test")

    with phases.phase("vocabulary and encoding"):
        word_index = build_word_index(train_texts)
        index_of = text.word_to_index(word_index, num_words)
        train_data = [text.encode(review, index_of) for review in train_texts]
        test_data = [text.encode(review, index_of) for review in test_texts]

    with phases.phase("vectorize_sequences (dense)"):
        x_train = vectorize_sequences(train_data, num_words)
        x_test = vectorize_sequences(test_data, num_words)
        y_train = np.asarray(train_labels).astype("float32")
        y_test = np.asarray(test_labels).astype("float32")

    with phases.phase("validation run"):
        val_rows, train_rows = split_validation(len(x_train), params.validate.val_size, seed)
        x_val, partial_x_train = x_train[val_rows], x_train[train_rows]
        y_val, partial_y_train = y_train[val_rows], y_train[train_rows]
        make_deterministic(seed)
        model = chapter_model(models, layers, num_words)
        epoch_ends: list[float] = []
        history = model.fit(
            partial_x_train,
            partial_y_train,
            epochs=params.validate.epochs,
            batch_size=512,
            validation_data=(x_val, y_val),
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: epoch_ends.append(time.perf_counter()))],
            verbose=2,  # one line per epoch, as the pipeline logs: the progress bar is not what is compared
        )

    refit_epochs = best_epoch(history.history) if params.train.epochs == "best" else params.train.epochs
    with phases.phase("refit"):
        make_deterministic(seed)
        model = chapter_model(models, layers, num_words)
        model.fit(x_train, y_train, epochs=refit_epochs, batch_size=512, verbose=2)

    with phases.phase("evaluate"):
        results = model.evaluate(x_test, y_test, verbose=2)

    files.write_json(
        args.out,
        {
            "phases": phases.report,
            "validation_epochs": params.validate.epochs,
            "refit_epochs": refit_epochs,
            "seconds_per_epoch": seconds_per_epoch(epoch_ends),
            "test_loss": float(results[0]),
            "test_accuracy": float(results[1]),
        },
    )


if __name__ == "__main__":
    run(main)
