"""Stage train: the chapter's final fit (listing 3-11).

A fresh model on all training reviews for `epochs` (or `best`: the epoch with
the lowest validation loss in the validation run's history), saved as a Keras
model (data/model/model.keras) and as an inference bundle (data/model/bundle.npz):
its weights with the vocabulary, idf and params that turn raw text into its
input, so it scores reviews without TensorFlow or the rest of the project.
DVCLive logs each epoch of the fit in data/model/live/.
"""
from __future__ import annotations

import dataclasses
from functools import partial

from pipeline import features, files, inference, labels, paths
from pipeline.cli import run
from pipeline.history import best_epoch, read_history
from pipeline.params import TrainParams, load_params


def final_epochs(params: TrainParams, history: dict[str, list[float]]) -> int:
    return best_epoch(history) if params.epochs == "best" else params.epochs


def main() -> None:
    all_params = load_params()
    model_params, params = all_params.model, all_params.train
    epochs = final_epochs(params, read_history(paths.VALIDATION_LIVE))
    # What the bundle needs besides the weights, read first: a missing file stops the
    # stage before training, not after.
    vocabulary = inference.vocabulary_by_rank(files.read_json(paths.WORD_INDEX), all_params.vocab.num_words)
    idf = files.read_npy(paths.IDF) if all_params.vectorize.weighting == "tfidf" else None
    classes = labels.read_classes(model_params, all_params.vocab.num_words)
    print(f"final fit: {features.count_reviews('train')} reviews, {epochs} epochs")

    from pipeline import training

    model, _ = training.train_model(
        model_params, partial(features.read_features, "train"), epochs=epochs, live_dir=paths.TRAINING_LIVE,
        classes=len(classes),
    )
    training.save_model(model, paths.MODEL)
    bundle = inference.Bundle(
        all_params.vocab, all_params.vectorize, model_params, dataclasses.replace(params, epochs=epochs),
        vocabulary=vocabulary,
        layers=[inference.Layer(*layer) for layer in training.dense_layers(model)],
        idf=idf,
        classes=classes,
    )
    with files.atomic_open(paths.TRAINED_BUNDLE) as stream:
        inference.write_bundle(stream, bundle)


if __name__ == "__main__":
    run(main)
