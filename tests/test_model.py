"""The chapter's model, built from params (imports TensorFlow)."""
import dataclasses

import numpy as np

from pipeline.features import vectorize_sequences
from pipeline import model
from pipeline.params import ModelParams

CHAPTER = ModelParams(
    hidden_layers=2, units=16, activation="relu", optimizer="rmsprop",
    learning_rate=0.001, loss="binary_crossentropy", batch_size=8, seed=3,
)


def toy_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    sequences = [[1] + list(rng.integers(4, 20, 10)) + ([20, 21] if y else [22, 23]) for y in labels]
    return vectorize_sequences(sequences, dimension=30), labels.astype("float32")


def test_build_model_is_the_chapters_network():
    network = model.build_model(10000, CHAPTER)
    dense = [layer for layer in network.layers if layer.__class__.__name__ == "Dense"]
    assert [(layer.units, layer.activation.__name__) for layer in dense] == [
        (16, "relu"), (16, "relu"), (1, "sigmoid"),
    ]
    assert network.input_shape == (None, 10000)
    assert network.optimizer.__class__.__name__ == "RMSprop"
    assert np.isclose(float(network.optimizer.learning_rate), 0.001)


def test_hidden_layers_units_and_activation_follow_params():
    params = dataclasses.replace(CHAPTER, hidden_layers=3, units=32, activation="tanh", optimizer="adam")
    network = model.build_model(50, params)
    dense = [layer for layer in network.layers if layer.__class__.__name__ == "Dense"]
    assert [(layer.units, layer.activation.__name__) for layer in dense] == [
        (32, "tanh"), (32, "tanh"), (32, "tanh"), (1, "sigmoid"),
    ]
    assert network.optimizer.__class__.__name__ == "Adam"


def test_same_seed_gives_the_same_history():
    x, y = toy_data()

    def run():
        model.make_deterministic(CHAPTER.seed)
        network = model.build_model(x.shape[1], CHAPTER)
        return model.fit(network, x, y, epochs=3, batch_size=8, validation_data=(x[:16], y[:16]))

    first, second = run(), run()
    assert set(first) == set(model.HISTORY_KEYS)
    assert first == second


def test_sparse_input_predicts_what_dense_input_does():
    x, y = toy_data()
    model.make_deterministic(CHAPTER.seed)
    network = model.build_model(x.shape[1], CHAPTER)
    model.fit(network, x, y, epochs=2, batch_size=8)
    sparse = model.predict(network, x)
    dense = network.predict(x.toarray(), verbose=0).ravel()
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)
    assert sparse.shape == (64,) and ((sparse >= 0) & (sparse <= 1)).all()


def test_predict_gives_exactly_what_keras_predict_gives():
    rng = np.random.default_rng(1)
    sequences = [[1] + list(rng.integers(2, 30, rng.integers(0, 40))) for _ in range(1100)]  # 3 batches
    x = vectorize_sequences(sequences, dimension=30)
    model.make_deterministic(CHAPTER.seed)
    network = model.build_model(x.shape[1], CHAPTER)
    expected = network.predict(x, batch_size=model.PREDICT_BATCH_SIZE, verbose=0).ravel()
    np.testing.assert_array_equal(model.predict(network, x), expected)
    assert model.predict(network, x[:0]).shape == (0,)


def test_saved_model_is_byte_identical_and_loads_with_the_same_predictions(tmp_path):
    x, y = toy_data()
    saved = []
    for attempt in range(2):
        model.make_deterministic(CHAPTER.seed)
        network = model.build_model(x.shape[1], CHAPTER)
        model.fit(network, x, y, epochs=1, batch_size=8)
        path = tmp_path / f"model{attempt}.keras"
        model.save_model(network, path)
        saved.append(path.read_bytes())
    assert saved[0] == saved[1]
    loaded = model.load_model(tmp_path / "model0.keras")
    np.testing.assert_array_equal(model.predict(loaded, x), model.predict(network, x))
