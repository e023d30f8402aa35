"""The chapter's model (listings 3-3 to 3-6) built from params, and the fit shared by
validate and train. The only module that imports TensorFlow."""
from __future__ import annotations

import keras
import numpy as np
import scipy.sparse
import tensorflow as tf

from pipeline.params import ModelParams

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
PREDICT_BATCH_SIZE = 512  # inference only: any size gives the same numbers


def make_deterministic(seed: int) -> None:
    """Same params, same weights, same history: seeds every generator Keras uses."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(num_words: int, params: ModelParams) -> keras.Model:
    # A sparse input keeps the first Dense layer a sparse-dense product: no dense
    # copy of the multi-hot matrix is ever made.
    inputs = keras.Input(shape=(num_words,), sparse=True, name="multi_hot")
    x = inputs
    for _ in range(params.hidden_layers):
        x = keras.layers.Dense(params.units, activation=params.activation)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=_optimizer(params.optimizer, params.learning_rate),
        loss=params.loss,
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def _optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    return classes[name](learning_rate=learning_rate)


def fit(
    model: keras.Model,
    x: scipy.sparse.csr_matrix,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    validation_data: tuple[scipy.sparse.csr_matrix, np.ndarray] | None = None,
) -> dict[str, list[float]]:
    """model.fit as the chapter calls it; returns history.history."""
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data, verbose=2)
    return history.history


def load_model(path) -> keras.Model:
    return keras.models.load_model(path)


def predict(model: keras.Model, x: scipy.sparse.csr_matrix) -> np.ndarray:
    return model.predict(x, batch_size=PREDICT_BATCH_SIZE, verbose=0).ravel()
