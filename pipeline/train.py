"""Stage train: the chapter's final fit (listing 3-11).

A fresh model on all training reviews for `epochs` (or `best`: the epoch with
the lowest validation loss in the validation run's history), saved to data/model/model.keras.
"""
from __future__ import annotations

from pipeline import files, paths
from pipeline.cli import run
from pipeline.history import best_epoch, read_history
from pipeline.params import TrainParams, load_params


def final_epochs(params: TrainParams, history: dict[str, list[float]]) -> int:
    return best_epoch(history) if params.epochs == "best" else params.epochs


def main() -> None:
    all_params = load_params()
    model_params, params = all_params.model, all_params.train
    epochs = final_epochs(params, read_history(paths.RUN_HISTORY))
    print(f"final fit: {files.count_reviews('train')} reviews, {epochs} epochs")

    from pipeline import model

    # Read inside the call, never named here: train_model frees it once TensorFlow has its copy.
    network, _ = model.train_model(model_params, files.read_features("train"), epochs=epochs)
    model.save_model(network, paths.MODEL)


if __name__ == "__main__":
    run(main)
