"""The chapter's model (listings 3-3 to 3-6) built from params, and the fit shared by
validate and train. The only module that imports TensorFlow."""
from __future__ import annotations

import json
import re
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import scipy.sparse
import tensorflow as tf

from pipeline import files
from pipeline.params import ModelParams

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
PREDICT_BATCH_SIZE = 512  # inference only: any size gives the same numbers


def make_deterministic(seed: int) -> None:
    """Same params, same weights, same history: seeds every generator Keras uses,
    and restarts Keras's automatic names so a saved model does not depend on what
    was built before it in the same process."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(num_words: int, params: ModelParams) -> keras.Model:
    # A sparse input keeps the first Dense layer a sparse-dense product: no dense
    # copy of the multi-hot matrix is ever made.
    inputs = keras.Input(shape=(num_words,), sparse=True, name="multi_hot")
    x = inputs
    for layer in range(1, params.hidden_layers + 1):
        x = keras.layers.Dense(params.units, activation=params.activation, name=f"hidden_{layer}")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output")(x)
    model = keras.Model(inputs, outputs, name="imdb_mlp")
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


def save_model(network: keras.Model, path: Path) -> None:
    """Saves a .keras file whose bytes depend only on the model.

    Keras stamps the save time and memory addresses (shared_object_id) into the
    file; left in, every run would change the model's hash in dvc.lock.
    """
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "model.keras"
        network.save(saved)
        with zipfile.ZipFile(saved) as source, files.writing(path), files.atomic_open(path) as out:
            with zipfile.ZipFile(out, "w") as target:
                for info in source.infolist():
                    data = _normalized(info.filename, source.read(info))
                    target.writestr(zipfile.ZipInfo(info.filename), data, compress_type=info.compress_type)


def _normalized(name: str, data: bytes) -> bytes:
    if name == "metadata.json":
        metadata = json.loads(data)
        metadata.pop("date_saved", None)
        return json.dumps(metadata).encode()
    if name == "config.json":
        numbers: dict[str, int] = {}
        return re.sub(
            rb'"shared_object_id": (\d+)',
            lambda m: b'"shared_object_id": %d' % numbers.setdefault(m.group(1), len(numbers) + 1),
            data,
        )
    return data


def load_model(path) -> keras.Model:
    return keras.models.load_model(path)


def predict(model: keras.Model, x: scipy.sparse.csr_matrix) -> np.ndarray:
    """model.predict(x, batch_size=PREDICT_BATCH_SIZE) without Keras's dataset machinery:
    the same batches, converted the way Keras converts them, so the same numbers, but
    each call costs milliseconds instead of a few tenths of a second (imdb-predict
    --explain makes thousands of calls).

    A last, shorter batch is padded with empty rows: TensorFlow keeps compiled kernels
    for every input shape it meets, so varying batch sizes would grow memory call after
    call. A row's output does not depend on the other rows of its batch."""
    probabilities = []
    for start in range(0, x.shape[0], PREDICT_BATCH_SIZE):
        batch = x[start : start + PREDICT_BATCH_SIZE]
        rows = batch.shape[0]
        if rows < PREDICT_BATCH_SIZE:
            padding = scipy.sparse.csr_matrix((PREDICT_BATCH_SIZE - rows, batch.shape[1]), dtype=batch.dtype)
            batch = scipy.sparse.vstack([batch, padding], format="csr")
        probabilities.append(np.asarray(model.predict_on_batch(_sparse_tensor(batch))).ravel()[:rows])
    return np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)


def _sparse_tensor(x: scipy.sparse.csr_matrix) -> tf.SparseTensor:
    coo = x.tocoo()  # row-major order; the columns of each row sorted, as the CSR matrices are
    return tf.SparseTensor(np.stack([coo.row, coo.col], axis=1).astype(np.int64), coo.data, coo.shape)
