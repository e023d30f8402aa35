"""Stage train: the chapter's validation run (listings 3-7 and 3-8), then its final
fit (listing 3-11), in one process so that TensorFlow starts once.

The validation run: after a seeded shuffle the first val_size training reviews are
x_val, the rest partial_x_train; a fresh model is fitted on partial_x_train for
validate.epochs and scored on x_val after every epoch. DVCLive logs each epoch in
data/validation/live/: the run's history, which `train.epochs: best` reads and the
plot stage publishes as metrics/history.csv.

The final fit: a fresh model on all training reviews for train.epochs (or `best`:
the epoch with the lowest validation loss), saved as a Keras model
(data/model/model.keras) and as an inference bundle (data/model/bundle.npz): its
weights with the vocabulary, idf and params that turn raw text into its input, so
it scores reviews without TensorFlow or the rest of the project. DVCLive logs each
epoch in data/model/live/.

Each fit is kept in data/memo/ by what determines it (pipeline/memo.py) and
restored when that comes back: an experiment that changes only train.* does not
fit the validation run again.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import sys
from functools import partial

import numpy as np

from pipeline import features, files, inference, labels, memo, paths, weightings
from pipeline.cli import UserError, run
from pipeline.history import best_epoch, read_history
from pipeline.params import Params, TrainParams, load_params

# What both fits read: a fit is a function of these, its params and the code.
FIT_INPUTS = (paths.features_npz("train"), paths.labels("train"), paths.CLASSES)


def progress(message: str) -> None:
    """A line as the step it names begins, flushed even through a pipe: what follows
    (TensorFlow's start, a fit) takes seconds."""
    print(message, flush=True)


def split_validation(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of x_val and partial_x_train."""
    if val_size >= n:
        raise UserError(
            f"params.yaml: validate.val_size = {val_size} leaves nothing to train on; "
            f"expected an integer from 1 to {n - 1} (the training split has {n} reviews)"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[:val_size], order[val_size:]


def final_epochs(params: TrainParams, history: dict[str, list[float]]) -> int:
    return best_epoch(history) if params.epochs == "best" else params.epochs


def validation_run(all_params: Params, classes: list) -> None:
    """Fits the validation run, or restores the one made before with the same inputs."""
    model_params, params = all_params.model, all_params.validate
    val_rows, train_rows = split_validation(features.count_reviews("train"), params.val_size, model_params.seed)
    key = memo.fit_key("validation", _sections(all_params, "model", "validate"), FIT_INPUTS)
    if memo.restore(key, paths.VALIDATION_DIR):
        progress(f"validation run: restored, made before with the same inputs ({paths.MEMO_DIR / key[:12]}…)")
        return
    progress(f"validation run: {len(train_rows)} reviews, {len(val_rows)} held out, {params.epochs} epochs")
    from pipeline import training  # TensorFlow loads only once the inputs are known to be good

    training.train_model(
        model_params,
        partial(features.read_features, "train", train_rows),  # partial_x_train, partial_y_train
        epochs=params.epochs,
        load_validation=partial(features.read_features, "train", val_rows),  # x_val, y_val
        live_dir=paths.VALIDATION_LIVE,
        classes=len(classes),
    )
    training.release_memory()  # what the validation run held, before the final fit grows again
    memo.keep(key, paths.VALIDATION_DIR)


@dataclasses.dataclass
class Encoding:
    """What the bundle needs besides the weights: read before either fit, so that a missing
    file stops the stage before training, and the whole word index (for word pairs,
    millions of terms) is parsed while the process is still small."""

    vocabulary: list[str]
    idf: np.ndarray | None

    @classmethod
    def read(cls, all_params: Params) -> Encoding:
        vocabulary = inference.vocabulary_by_rank(files.read_json(paths.WORD_INDEX), all_params.vocab.num_words)
        uses_idf = weightings.named(all_params.vectorize.weighting).uses_idf
        return cls(vocabulary, files.read_npy(paths.IDF) if uses_idf else None)


def final_fit(all_params: Params, classes: list, epochs: int, encoding: Encoding) -> None:
    """Fits the final model and writes it with its bundle, or restores the one made
    before with the same inputs."""
    model_params, params = all_params.model, dataclasses.replace(all_params.train, epochs=epochs)
    uses_idf = weightings.named(all_params.vectorize.weighting).uses_idf
    inputs = (*FIT_INPUTS, paths.WORD_INDEX, *([paths.IDF] if uses_idf else []))
    sections = {**_sections(all_params, "vocab", "vectorize", "model"), "train": dataclasses.asdict(params)}
    key = memo.fit_key("final", sections, inputs)
    if memo.restore(key, paths.MODEL_DIR):
        progress(f"final fit: restored, made before with the same inputs ({paths.MEMO_DIR / key[:12]}…)")
        return
    progress(f"final fit: {features.count_reviews('train')} reviews, {epochs} epochs")
    from pipeline import training

    model, _ = training.train_model(
        model_params, partial(features.read_features, "train"), epochs=epochs, live_dir=paths.TRAINING_LIVE,
        classes=len(classes),
    )
    training.save_model(model, paths.MODEL)
    bundle = inference.Bundle(
        all_params.vocab, all_params.vectorize, model_params, params,
        vocabulary=encoding.vocabulary,
        layers=[inference.Layer(*layer) for layer in training.dense_layers(model)],
        idf=encoding.idf,
        classes=classes,
    )
    with files.atomic_open(paths.TRAINED_BUNDLE) as stream:
        inference.write_bundle(stream, bundle)
    memo.keep(key, paths.MODEL_DIR)


def _sections(all_params: Params, *names: str) -> dict[str, dict]:
    return {name: dataclasses.asdict(getattr(all_params, name)) for name in names}


M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_malloc_arena() -> None:
    """glibc gives threads that allocate at the same time arenas of their own (up to 8 per
    core) and keeps in them the pages a finished fit freed: the validation run's stayed
    resident through the final fit. With one arena, set before TensorFlow starts its
    threads, the best configuration of `make experiments` peaks at 929 MB instead of
    1,079 MB, no slower."""
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1)


def main() -> None:
    one_malloc_arena()
    all_params = load_params()
    classes = labels.read_classes(all_params.model, all_params.vocab.num_words)
    encoding = Encoding.read(all_params)
    validation_run(all_params, classes)
    final_fit(all_params, classes, final_epochs(all_params.train, read_history(paths.VALIDATION_LIVE)), encoding)


if __name__ == "__main__":
    run(main)
    # Python's teardown with TensorFlow loaded takes over a second and does nothing this
    # stage needs: every output is written, flushed and synced by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
