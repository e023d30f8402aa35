"""Stage validate: the chapter's validation run (listings 3-7 and 3-8).

After a seeded shuffle the first val_size training reviews are x_val, the rest
partial_x_train; a fresh model is fitted on partial_x_train for `epochs` and
scored on x_val after every epoch. DVCLive logs each epoch's loss and accuracy as it
ends, in data/validation/live/: the run's history, which train reads for `best` and
the plot stage publishes as metrics/history.csv.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from pipeline import features, labels, paths
from pipeline.cli import UserError, run
from pipeline.params import load_params


def split_validation(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of x_val and partial_x_train."""
    if val_size >= n:
        raise UserError(
            f"params.yaml: validate.val_size = {val_size} leaves nothing to train on; "
            f"expected an integer from 1 to {n - 1} (the training split has {n} reviews)"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[:val_size], order[val_size:]


def main() -> None:
    all_params = load_params()
    model_params, params = all_params.model, all_params.validate
    val_rows, train_rows = split_validation(features.count_reviews("train"), params.val_size, model_params.seed)
    classes = labels.read_classes(model_params, all_params.vocab.num_words)

    from pipeline import training  # TensorFlow loads only once the inputs are known to be good

    training.train_model(
        model_params,
        partial(features.read_features, "train", train_rows),  # partial_x_train, partial_y_train
        epochs=params.epochs,
        load_validation=partial(features.read_features, "train", val_rows),  # x_val, y_val
        live_dir=paths.VALIDATION_LIVE,
        classes=len(classes),
    )


if __name__ == "__main__":
    run(main)
