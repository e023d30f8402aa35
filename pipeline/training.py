"""The chapter's model (listings 3-3 to 3-6) built from params, and the fit shared by
validate and train. The only shared module that imports TensorFlow."""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import scipy.sparse

from pipeline import features, files
from pipeline.cli import UserError
from pipeline.params import ModelParams

SHOW_TENSORFLOW_LOGS = "IMDB_TF_LOGS"  # set to 1 to see TensorFlow's start-up lines


@contextlib.contextmanager
def _quiet_start_up() -> Iterator[None]:
    """Holds back what TensorFlow's C++ side prints while it loads: oneDNN and CPU
    notices and a failed CUDA probe logged as an `E0000` line, which users read as
    errors. They are shown after all if loading fails, or when IMDB_TF_LOGS=1."""
    if os.environ.get(SHOW_TENSORFLOW_LOGS) == "1":
        yield
        return
    sys.stderr.flush()
    stderr = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(stderr, 2)
            held.seek(0)
            sys.stderr.buffer.write(held.read())
            raise
        finally:
            os.dup2(stderr, 2)
            os.close(stderr)


@contextlib.contextmanager
def _not_importable(*packages: str) -> Iterator[None]:
    """Makes `import package` fail inside the block, for those not imported yet."""
    hidden = [name for name in packages if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # Python's marker for "cannot be imported"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


@contextlib.contextmanager
def _kept_from_the_collector() -> Iterator[None]:
    """TensorFlow and Keras make about 290,000 objects as they load, all of which live as
    long as the process. The collector walked them five times while they loaded (0.33 s
    of a 2.9 s start); off until they are loaded, then frozen, it never walks them, in
    release_memory's collections or its own."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


# Keras imports scikit-learn (for its scikit-learn wrappers, pulling in scipy.stats
# and scipy.optimize) and matplotlib (for image galleries) whenever they are
# installed: over a second of every start-up, for nothing used here.
with _kept_from_the_collector(), _quiet_start_up(), _not_importable("sklearn", "matplotlib"):
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()  # the CUDA probe runs (and logs) here, not at the first op

Examples = tuple[scipy.sparse.csr_matrix, np.ndarray]  # (x, y)
VALIDATION_BATCH_SIZE = 512  # scoring only: any size gives the same numbers
PREFETCH_BATCHES = 2  # batches cut ahead of the step that takes them


def make_deterministic(seed: int) -> None:
    """Same params, same weights, same history: seeds every generator Keras uses,
    and restarts Keras's automatic names so a saved model does not depend on what
    was built before it in the same process."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(num_words: int, params: ModelParams, steps_per_execution: int = 1, classes: int = 2) -> keras.Model:
    """The chapter's model for two classes (one sigmoid output, params.loss); for more, section
    3.5's: a softmax output per class and sparse categorical cross-entropy."""
    # A sparse input keeps the first Dense layer a sparse-dense product: no dense
    # copy of the feature matrix is ever made.
    inputs = keras.Input(shape=(num_words,), sparse=True, name="features")
    regularizer = keras.regularizers.L2(params.l2) if params.l2 else None
    x = inputs
    dense = _SparseInputDense  # the first layer takes the sparse input
    for layer in range(1, params.hidden_layers + 1):
        x = dense(params.units, activation=params.activation, kernel_regularizer=regularizer, name=f"hidden_{layer}")(x)
        dense = keras.layers.Dense
        if params.dropout:
            x = keras.layers.Dropout(params.dropout, name=f"dropout_{layer}")(x)
    binary = classes == 2
    output_units = 1 if binary else classes
    outputs = dense(output_units, activation="sigmoid" if binary else "softmax", kernel_regularizer=regularizer,
                    name="output")(x)
    model = keras.Model(inputs, outputs, name="imdb_mlp")
    accuracy = keras.metrics.BinaryAccuracy if binary else keras.metrics.SparseCategoricalAccuracy
    model.compile(
        optimizer=_optimizer(params.optimizer, params.learning_rate),
        loss=params.loss if binary else "sparse_categorical_crossentropy",
        metrics=[accuracy(name="accuracy")],
        # One call into TensorFlow runs many batches (train_model: an epoch's): per-batch
        # Python overhead dominated the chapter's small model.
        steps_per_execution=steps_per_execution,
    )
    return model


class _SparseInputDense(keras.layers.Dense):
    """keras.layers.Dense, its sparse input multiplied by sparse_product. Only for
    fitting: train_model turns it back into a Dense."""

    def call(self, inputs, training=None):
        if not isinstance(inputs, tf.SparseTensor):
            return super().call(inputs, training)
        x = sparse_product(inputs, tf.convert_to_tensor(self.kernel))
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)  # as Dense adds it: a BiasAdd, whose gradient sums as Dense's does
        if self.activation is not None:
            x = self.activation(x)
        return x


def sparse_product(x: tf.SparseTensor, kernel: tf.Tensor) -> tf.Tensor:
    """x @ kernel, with a dense gradient; a training step of the chapter's model takes
    a third of the time Keras's own sparse product takes.

    Keras multiplies with tf.nn.embedding_lookup_sparse (a fill_empty_rows, a
    tf.unique of the columns, a gather and a segment sum) and hands the kernel's
    gradient to the optimizer as tf.IndexedSlices, which RMSprop applies with scatter
    ops. Here one sparse-dense product does each pass, and the gradient is a plain
    tensor, applied as any Dense layer's. The numbers are the same sums, rounded in
    another order: a fit agrees with Keras's to float32 precision, not bit for bit.
    """

    @tf.custom_gradient
    def product(kernel):
        def gradient(upstream):  # only the kernel's: x's values are data
            return _column_blocks(x, upstream, adjoint=True)

        return _column_blocks(x, kernel), gradient

    return product(kernel)


# TensorFlow's sparse-dense product takes another, slower path from 32 columns of the
# dense side on: 8.2 ms for a batch against 32 columns, 1.0 ms against 24. Cut into
# blocks of 16 columns, each element is the same sum in the same order, so the same bits.
PRODUCT_COLUMNS = 16


def _column_blocks(x: tf.SparseTensor, dense: tf.Tensor, adjoint: bool = False) -> tf.Tensor:
    width = dense.shape[1]
    if width < 2 * PRODUCT_COLUMNS:
        return tf.sparse.sparse_dense_matmul(x, dense, adjoint_a=adjoint)
    blocks = [
        tf.sparse.sparse_dense_matmul(x, dense[:, start : start + PRODUCT_COLUMNS], adjoint_a=adjoint)
        for start in range(0, width, PRODUCT_COLUMNS)
    ]
    return tf.concat(blocks, axis=1)


def _optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    classes = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}
    return classes[name](learning_rate=learning_rate)


def sparse_batches(
    x: scipy.sparse.csr_matrix,
    y: np.ndarray | None = None,
    batch_size: int = VALIDATION_BATCH_SIZE,
    orders: np.ndarray | None = None,
    column_scale: np.ndarray | None = None,
    cache: bool = False,
) -> tf.data.Dataset:
    """Batches of tf.SparseTensor rows (with labels when y is given), cut inside
    TensorFlow from one copy of the matrix: in row order, or with `orders` (one row of
    row numbers per epoch, as epoch_orders draws them) the batches of every epoch, one
    epoch after the other; each column multiplied by column_scale when given (batch by
    batch, no copy); kept after the first pass when cache is set."""
    x = x.tocsr()
    x.sort_indices()
    row_splits = tf.constant(x.indptr, tf.int64)
    # int32 columns halve the copy TensorFlow keeps; SparseTensor wants int64 per batch.
    columns = tf.RaggedTensor.from_row_splits(tf.constant(x.indices, tf.int32), row_splits)
    # Multi-hot values are all 1: no copy of them is kept.
    binary = np.all(x.data == 1)
    values = None if binary else tf.RaggedTensor.from_row_splits(tf.constant(x.data, tf.float32), row_splits)
    labels = None if y is None else tf.constant(np.asarray(y, np.float32).reshape(-1, 1))
    scale = None if column_scale is None else tf.constant(column_scale, tf.float32)
    width = x.shape[1]

    @tf.autograph.experimental.do_not_convert  # plain TensorFlow: converting it took longer than cutting an epoch
    def gather(rows):
        row_columns = tf.gather(columns, rows)
        if values is None:
            batch_values = tf.ones_like(row_columns.flat_values, tf.float32)
        else:
            batch_values = tf.gather(values, rows).flat_values
        if scale is not None:
            batch_values = batch_values * tf.gather(scale, row_columns.flat_values)
        indices = tf.stack([row_columns.value_rowids(), tf.cast(row_columns.flat_values, tf.int64)], axis=1)
        batch = tf.SparseTensor(indices, batch_values, [tf.size(rows, out_type=tf.int64), width])
        return batch if labels is None else (batch, tf.gather(labels, rows))

    if orders is None:
        rows = tf.data.Dataset.range(x.shape[0]).batch(batch_size)
    else:
        full, rest = divmod(x.shape[0], batch_size)
        sizes = [batch_size] * full + [rest] * bool(rest)
        by_batch = tf.RaggedTensor.from_row_lengths(orders.ravel().astype(np.int64), sizes * len(orders))
        rows = tf.data.Dataset.from_tensor_slices(by_batch)
    batches = rows.map(gather)
    if cache:  # the batches are kept after the first pass, and prefetching goes on from the copy
        batches = batches.cache()
    # A fixed depth, with tf.data's autotuning off: its tuning thread held the end of about a
    # third of the fits here for up to a second (the iterator waiting for it to wake), and
    # epochs took as long with it as without.
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(PREFETCH_BATCHES).with_options(options)


def epoch_orders(rows: int, epochs: int, seed: int) -> np.ndarray:
    """A new random order of the rows for each epoch (epochs × rows), from numpy's
    generator seeded as the validation split's.

    Every epoch is reshuffled, as the chapter's fit reshuffles. The orders are drawn
    before fitting so that one dataset, read by one iterator, holds the whole fit:
    Keras makes a new iterator for each epoch of a dataset that ends, which took a
    third of an epoch of the chapter's model."""
    generator = np.random.default_rng(seed)
    return np.stack([generator.permutation(rows) for _ in range(epochs)])


def train_model(
    params: ModelParams,
    load_train: Callable[[], Examples],
    epochs: int,
    load_validation: Callable[[], Examples] | None = None,
    live_dir: Path | None = None,
    classes: int = 2,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """A fresh, seeded model fitted as the chapter fits it on the (x, y) that
    load_train returns; returns it and history.history. With live_dir, DVCLive logs
    every epoch's metrics there as they come.

    The matrices are read inside this call and live only until TensorFlow has its
    copy, so their memory goes back before training.

    With nb_scaling, inputs are scaled by the log-count ratios of the reviews being
    fitted (never the validation ones), and the ratios are folded into the first
    layer afterwards, so the saved model takes unscaled features.
    """
    make_deterministic(params.seed)
    train_batches, steps, ratio, num_words = _training_batches(load_train, params, epochs)
    # Cut once and kept, about 2.6 MB per 1,000 reviews: cutting them again every
    # epoch took longer than scoring them.
    val_batches = None
    if load_validation is not None:
        val_batches = sparse_batches(*load_validation(), column_scale=ratio, cache=True)
    try:
        model = build_model(num_words, params, steps_per_execution=steps, classes=classes)
        history = model.fit(
            train_batches,
            steps_per_epoch=steps,
            validation_data=val_batches,
            epochs=epochs,
            shuffle=False,  # sparse_batches reshuffles every epoch itself
            callbacks=[] if live_dir is None else [_live_callback(live_dir)],
            verbose=2,
        )
    except (tf.errors.ResourceExhaustedError, MemoryError):
        # params.py refuses the models known not to fit; this is what this machine had left
        raise UserError(
            f"out of memory fitting a model of {num_words:,} inputs, {params.hidden_layers} hidden layers of "
            f"{params.units:,} units, batches of {params.batch_size:,}: lower model.units, model.batch_size "
            "or vocab.num_words"
        ) from None
    if ratio is not None:
        first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
        first.kernel.assign(first.kernel * ratio[:, np.newaxis])
    _plain_dense(model)
    return model, history.history


def release_memory() -> None:
    """Hands what a finished fit freed back to the system. TensorFlow frees its tensors,
    but glibc keeps the freed pages in its arenas: after the validation run of a large
    model, about 100 MB more stayed resident through the final fit."""
    keras.backend.clear_session()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only; elsewhere the pages stay
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _plain_dense(model: keras.Model) -> None:
    """Turns the fitted first layer back into the keras.layers.Dense it is (it holds
    nothing more): the saved model is then the plain Keras model, byte for byte, and
    loads without this package."""
    for layer in model.layers:
        if type(layer) is _SparseInputDense:
            layer.__class__ = keras.layers.Dense


def _training_batches(load: Callable[[], Examples], params: ModelParams, epochs: int):
    """The batches of every epoch, the number of batches in one, the NB ratios (or None)
    and the number of columns."""
    x, y = load()
    ratio = features.log_count_ratio(x, y) if params.nb_scaling else None
    orders = epoch_orders(x.shape[0], epochs, params.seed)
    batches = sparse_batches(x, y, params.batch_size, orders=orders, column_scale=ratio)
    return batches, -(-x.shape[0] // params.batch_size), ratio, x.shape[1]


def _live_callback(live_dir: Path) -> keras.callbacks.Callback:
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    class EpochLog(Live):
        """DVCLive writing its per-epoch files and nothing else: dvc.yaml declares
        them and DVC records the experiment. DVCLive's own DVC set-up would open the
        repository a second time, create one where there is none, and fails in a git
        repository without commits (treeverse/dvclive#522)."""

        def _init_dvc(self) -> None:
            self._inside_dvc_pipeline = True
            self._init_dvc_pipeline()

    # No report, no dvc.yaml, no experiment of its own; DVCLive writes no timestamps
    # unless asked, so a rerun writes the same bytes.
    return DVCLiveCallback(live=EpochLog(str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None))


def save_model(model: keras.Model, path: Path) -> None:
    """Saves a .keras file whose bytes depend only on the model.

    Keras stamps the save time and memory addresses (shared_object_id) into the
    file; left in, every run would change the model's hash in dvc.lock. Keras's own
    zipping also holds the weights file in memory twice, so the model is saved
    unzipped and zipped here, the weights streamed from disk.
    """
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "model"
        model.save(saved, zipped=False)
        with files.atomic_open(path) as out, zipfile.ZipFile(out, "w") as target:
            for source in sorted(p for p in saved.rglob("*") if p.is_file()):
                name = source.relative_to(saved).as_posix()
                with target.open(zipfile.ZipInfo(name), "w") as entry:  # fixed 1980 timestamp
                    if source.suffix == ".json":
                        entry.write(_normalized(name, source.read_bytes()))
                    else:
                        with open(source, "rb") as weights:
                            shutil.copyfileobj(weights, entry)


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


def dense_layers(model: keras.Model) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Each Dense layer's kernel, bias and activation name, input to output: all that
    scoring needs (dropout does nothing at inference; NB scaling is already folded in)."""
    return [
        (np.asarray(layer.kernel, np.float32), np.asarray(layer.bias, np.float32), _param_name(layer))
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def _param_name(layer: keras.layers.Dense) -> str:
    name = layer.get_config()["activation"]
    return {"silu": "swish"}.get(name, name)  # Keras saves swish under its other name
