"""The chapter's model, built from params (imports TensorFlow)."""
import dataclasses
import itertools
import os
import subprocess
import sys
import weakref

import keras
import numpy as np
import pytest
import scipy.sparse

from pipeline import history, training
from pipeline.features import log_count_ratio
from pipeline.params import ModelParams
from pipeline.weightings import scale_columns
from testbed.features import vectorize_sequences

CHAPTER = ModelParams(
    hidden_layers=2, units=16, activation="relu", optimizer="rmsprop", learning_rate=0.001,
    loss="binary_crossentropy", batch_size=8, seed=3, dropout=0.0, l2=0.0, nb_scaling=False,
)


def toy_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    sequences = [[1] + list(rng.integers(4, 20, 10)) + ([20, 21] if y else [22, 23]) for y in labels]
    return vectorize_sequences(sequences, dimension=30), labels.astype("float32")


def dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_build_model_is_the_chapters_model():
    model = training.build_model(10000, CHAPTER)
    assert [(layer.units, layer.activation.__name__) for layer in dense_layers(model)] == [
        (16, "relu"), (16, "relu"), (1, "sigmoid"),
    ]
    assert model.input_shape == (None, 10000)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert all(layer.kernel_regularizer is None for layer in dense_layers(model))
    assert model.optimizer.__class__.__name__ == "RMSprop"
    assert np.isclose(float(model.optimizer.learning_rate), 0.001)


def test_layers_units_activation_dropout_and_l2_follow_params():
    params = dataclasses.replace(
        CHAPTER, hidden_layers=3, units=32, activation="tanh", optimizer="adam", dropout=0.5, l2=0.01
    )
    model = training.build_model(50, params)
    assert [(layer.units, layer.activation.__name__) for layer in dense_layers(model)] == [
        (32, "tanh"), (32, "tanh"), (32, "tanh"), (1, "sigmoid"),
    ]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropouts] == [0.5, 0.5, 0.5]
    assert all(np.isclose(layer.kernel_regularizer.l2, 0.01) for layer in dense_layers(model))
    assert model.optimizer.__class__.__name__ == "Adam"


def test_no_hidden_layer_is_logistic_regression():
    model = training.build_model(50, dataclasses.replace(CHAPTER, hidden_layers=0))
    assert [(layer.units, layer.activation.__name__) for layer in dense_layers(model)] == [(1, "sigmoid")]


def test_sparse_batches_cover_every_row_once_per_epoch_in_a_new_order():
    x, y = toy_data()
    x = x.tolil()
    x[:, 0] = np.arange(1, x.shape[0] + 1).reshape(-1, 1)  # column 0 names the row
    orders = training.epoch_orders(64, epochs=3, seed=1)
    dataset = training.sparse_batches(x.tocsr(), y, 10, orders)
    batches = [(_dense(batch), labels.numpy().ravel()) for batch, labels in dataset]
    assert [len(labels) for _, labels in batches] == [10] * 6 + [4] + [10] * 6 + [4] + [10] * 6 + [4]
    epochs = []
    for epoch in range(3):
        rows = np.concatenate([batch[:, 0] for batch, _ in batches[7 * epoch : 7 * epoch + 7]]).astype(int) - 1
        labels = np.concatenate([labels for _, labels in batches[7 * epoch : 7 * epoch + 7]])
        assert sorted(rows) == list(range(64))
        np.testing.assert_array_equal(labels, y[rows])
        epochs.append(rows)
    assert all(not np.array_equal(a, b) for a, b in itertools.combinations(epochs, 2))
    np.testing.assert_array_equal(orders, training.epoch_orders(64, epochs=3, seed=1))  # seeded


def _dense(sparse_tensor):
    import tensorflow as tf

    return tf.sparse.to_dense(sparse_tensor).numpy()


def test_unshuffled_batches_keep_row_order_and_values():
    x, _ = toy_data()
    x = x.copy()
    x.data = np.arange(1, x.nnz + 1, dtype=np.float32)  # weights, not just ones
    rows = np.concatenate([_dense(batch) for batch in training.sparse_batches(x, batch_size=7)])
    np.testing.assert_array_equal(rows, x.toarray())


def test_batches_scale_columns_for_multi_hot_and_weighted_features():
    x, y = toy_data()
    weighted = x.copy()
    weighted.data = np.arange(1, x.nnz + 1, dtype=np.float32)
    scale = log_count_ratio(x, y)
    for matrix in (x, weighted):  # multi-hot batches are cut without a copy of the ones
        batches = training.sparse_batches(matrix, batch_size=7, column_scale=scale)
        rows = np.concatenate([_dense(batch) for batch in batches])
        np.testing.assert_allclose(rows, scale_columns(matrix, scale).toarray(), rtol=1e-6)
    ones = np.concatenate([_dense(batch) for batch in training.sparse_batches(x, batch_size=7)])
    np.testing.assert_array_equal(ones, x.toarray())


@pytest.mark.parametrize("units", [5, 2 * training.PRODUCT_COLUMNS + 8])  # one product; blocks of columns
def test_sparse_product_and_its_gradient_are_kerass_bit_for_bit_with_a_dense_gradient(units):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    dense = (rng.random((12, 30)) < 0.3) * rng.random((12, 30)).astype(np.float32)
    dense[4] = 0
    dense[10:] = 0  # empty rows, inside and at the end
    for x in (scipy.sparse.csr_matrix(dense), scipy.sparse.csr_matrix(dense > 0, dtype=np.float32)):
        batch = next(iter(training.sparse_batches(x, batch_size=12)))
        kernel = tf.Variable(rng.normal(size=(30, units)).astype(np.float32))
        upstream = tf.constant(rng.normal(size=(12, units)).astype(np.float32))
        results = []
        for product, gradient_type in (
            (keras.ops.matmul, tf.IndexedSlices),
            (lambda b, k: training.sparse_product(b, tf.convert_to_tensor(k)), tf.Tensor),  # applied as a Dense's
        ):
            with tf.GradientTape() as tape:
                out = product(batch, kernel)
                total = tf.reduce_sum(out * upstream)
            gradient = tape.gradient(total, kernel)
            assert isinstance(gradient, gradient_type)
            results.append((out.numpy(), tf.convert_to_tensor(gradient).numpy()))
        (keras_out, keras_gradient), (out, gradient) = results
        np.testing.assert_array_equal(out, keras_out)
        np.testing.assert_array_equal(gradient, keras_gradient)


def test_fit_agrees_with_kerass_own_dense_layer_and_keeps_it_plain(monkeypatch):
    x, y = toy_data()
    fits = []
    for _ in range(2):
        model, fitted = training.train_model(
            CHAPTER, lambda: (x, y), epochs=3, load_validation=lambda: (x[:16], y[:16])
        )
        assert all(type(layer) is keras.layers.Dense for layer in dense_layers(model))
        fits.append((fitted, model.get_weights()))
        monkeypatch.setattr(training, "_SparseInputDense", keras.layers.Dense)  # the second fit: Keras's own product
    (ours, our_weights), (keras_history, keras_weights) = fits
    # The optimizer applies a dense gradient where Keras's is sparse: the same update,
    # rounded differently, so the fits agree to float32 precision.
    assert ours.keys() == keras_history.keys()
    for name, values in ours.items():
        np.testing.assert_allclose(values, keras_history[name], rtol=1e-5, err_msg=name)
    for mine, theirs in zip(our_weights, keras_weights, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_train_model_lets_go_of_the_matrices_it_read_before_fitting(monkeypatch):
    x, y = toy_data()
    alive = []
    fit = keras.Model.fit

    def watched_fit(self, *args, **kwargs):
        alive.extend(ref() is not None for ref in refs)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", watched_fit)
    refs = []

    def loader(matrix, labels):  # as validate reads them: from a file, inside train_model
        def load():
            copy = matrix.copy()
            refs.append(weakref.ref(copy))
            return copy, labels
        return load

    training.train_model(CHAPTER, loader(x, y), epochs=1, load_validation=loader(x[:16], y[:16]))
    assert alive == [False, False]


def test_same_seed_gives_the_same_history():
    x, y = toy_data()

    def run():
        _, fitted = training.train_model(CHAPTER, lambda: (x, y), epochs=3, load_validation=lambda: (x[:16], y[:16]))
        return fitted

    first, second = run(), run()
    assert set(first) == set(history.COLUMNS[1:])
    assert first == second


def test_dvclive_records_each_epoch_as_keras_reports_it(tmp_path):
    x, y = toy_data()
    _, fitted = training.train_model(
        CHAPTER, lambda: (x, y), epochs=3, load_validation=lambda: (x[:16], y[:16]), live_dir=tmp_path / "live"
    )
    recorded = history.read_history(tmp_path / "live")
    assert recorded == {key: [round(v, history.DECIMALS) for v in values] for key, values in fitted.items()}
    assert len(recorded["val_loss"]) == 3


def scores(model, x):
    return model.predict(x, batch_size=64, verbose=0).ravel()


def test_sparse_input_predicts_what_dense_input_does():
    x, y = toy_data()
    model, _ = training.train_model(CHAPTER, lambda: (x, y), epochs=2)
    sparse = scores(model, x)
    dense = model.predict(x.toarray(), verbose=0).ravel()
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
    assert sparse.shape == (64,) and ((sparse >= 0) & (sparse <= 1)).all()


def test_nb_scaling_is_folded_into_the_model_so_it_takes_unscaled_features():
    x, y = toy_data()
    model, _ = training.train_model(dataclasses.replace(CHAPTER, nb_scaling=True), lambda: (x, y), epochs=2)
    ratio = log_count_ratio(x, y)
    folded = scores(model, x)
    first = dense_layers(model)[0]
    first.kernel.assign(first.kernel / ratio[:, np.newaxis])  # the weights as trained, on scaled inputs
    np.testing.assert_allclose(folded, scores(model, scale_columns(x, ratio)), rtol=1e-4, atol=1e-6)


def test_dense_layers_are_every_layers_weights_and_activation_by_its_param_name():
    model = training.build_model(30, dataclasses.replace(CHAPTER, activation="swish", dropout=0.5))
    exported = training.dense_layers(model)
    assert [(kernel.shape, bias.shape, activation) for kernel, bias, activation in exported] == [
        ((30, 16), (16,), "swish"), ((16, 16), (16,), "swish"), ((16, 1), (1,), "sigmoid"),
    ]
    np.testing.assert_array_equal(exported[0][0], dense_layers(model)[0].kernel.numpy())


def test_saved_model_is_byte_identical_and_loads_with_the_same_predictions(tmp_path):
    x, y = toy_data()
    saved = []
    for attempt in range(2):
        model, _ = training.train_model(CHAPTER, lambda: (x, y), epochs=1)
        path = tmp_path / f"model{attempt}.keras"
        training.save_model(model, path)
        saved.append(path.read_bytes())
    assert saved[0] == saved[1]
    loaded = keras.models.load_model(tmp_path / "model0.keras")
    np.testing.assert_array_equal(scores(loaded, x), scores(model, x))


def test_keras_loads_without_scikit_learn_and_matplotlib_which_stay_importable():
    check = (
        "import sys, pipeline.training; "
        "assert not {'sklearn', 'matplotlib'} & set(sys.modules), 'loaded'; "
        "import sklearn, matplotlib"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tensorflow_loads_without_printing_its_start_up_lines():
    first_op = "import pipeline.training as t; t.tf.constant(1.0) + 1; t.keras.utils.set_random_seed(1)"
    env = {k: v for k, v in os.environ.items() if k != training.SHOW_TENSORFLOW_LOGS}
    result = subprocess.run([sys.executable, "-c", first_op], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
