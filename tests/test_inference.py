"""The scorer without TensorFlow: the same numbers as Keras, and bundles read safely."""
import dataclasses
import io
import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.sparse

from pipeline import inference, training, weightings
from pipeline.inference import Bundle, BundleError, Layer, Scorer, forward, read_bundle, write_bundle
from pipeline.params import ACTIVATIONS, ModelParams, TrainParams, VectorizeParams, VocabParams
from testbed.features import vectorize_sequences

CHAPTER = ModelParams(
    hidden_layers=2, units=16, activation="relu", optimizer="rmsprop", learning_rate=0.001,
    loss="binary_crossentropy", batch_size=8, seed=3, dropout=0.0, l2=0.0, nb_scaling=False,
)
NUM_WORDS = 30
VOCABULARY = [f"word{rank}" for rank in range(1, NUM_WORDS - 3)]  # ranks 1-26: indices 4-29


def toy_data(rows=200, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    sequences = [[1] + list(rng.integers(4, 20, rng.integers(0, 15))) + ([20, 21] if y else [22, 23]) for y in labels]
    return vectorize_sequences(sequences, dimension=NUM_WORDS), labels.astype("float32")


def layers_of(model) -> list[Layer]:
    return [Layer(*layer) for layer in training.dense_layers(model)]


SHAPES = (
    [dataclasses.replace(CHAPTER, hidden_layers=n) for n in range(4)]
    + [dataclasses.replace(CHAPTER, activation=a, units=8) for a in ACTIVATIONS]
    + [dataclasses.replace(CHAPTER, dropout=0.5, l2=0.01, nb_scaling=True, hidden_layers=3, activation="gelu")]
)


@pytest.mark.parametrize("params", SHAPES, ids=lambda p: f"{p.hidden_layers}x{p.activation}-nb{int(p.nb_scaling)}")
def test_the_scorer_gives_what_keras_predict_gives(params):
    x, y = toy_data()
    # Large learning rate and two epochs: weights far from their initial values.
    model, _ = training.train_model(dataclasses.replace(params, learning_rate=0.05), lambda: (x, y), epochs=2)
    expected = model.predict(x, batch_size=64, verbose=0).ravel()
    np.testing.assert_allclose(forward(layers_of(model), x), expected, rtol=0, atol=1e-6)


def toy_classes(rows=300, classes=4, seed=0):
    """A review of class c carries the words 20 + c and 24 + c."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    sequences = [[1] + list(rng.integers(4, 20, rng.integers(0, 12))) + [20 + c, 24 + c] for c in labels]
    return vectorize_sequences(sequences, dimension=NUM_WORDS), labels.astype("float32")


@pytest.mark.parametrize("hidden_layers", [0, 2])
def test_more_than_two_classes_score_as_keras_softmax_predicts(hidden_layers):
    x, y = toy_classes()
    params = dataclasses.replace(CHAPTER, hidden_layers=hidden_layers, learning_rate=0.05)
    model, history = training.train_model(params, lambda: (x, y), epochs=3, classes=4)
    assert model.layers[-1].get_config()["activation"] == "softmax" and model.output_shape == (None, 4)
    expected = model.predict(x, batch_size=64, verbose=0)
    scored = forward(layers_of(model), x)
    assert scored.shape == (300, 4)
    np.testing.assert_allclose(scored, expected, rtol=0, atol=1e-6)
    # the loss Keras reports is sparse categorical cross-entropy, and keras_loss computes it the same way
    assert history["loss"][-1] > 0
    keras_value = float(keras.losses.sparse_categorical_crossentropy(y, expected).numpy().mean())
    assert inference.keras_loss("binary_crossentropy", y, scored) == pytest.approx(keras_value, abs=1e-5)


def test_a_bundle_of_more_classes_names_them_and_checks_the_last_layer(tmp_path):
    rng = np.random.default_rng(4)
    layers = [
        Layer(rng.standard_normal((NUM_WORDS, 4)).astype("float32"), np.zeros(4, "float32"), "relu"),
        Layer(rng.standard_normal((4, 3)).astype("float32"), np.zeros(3, "float32"), "softmax"),
    ]
    three = bundle(layers=layers, classes=["billing", "bug", 7])
    path = tmp_path / "three.npz"
    path.write_bytes(written(three))
    back = read_bundle(path)
    assert back.classes == ["billing", "bug", 7]
    scorer = Scorer(back)
    probabilities = scorer.score(["word1 word2", "word3"])
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    assert scorer.labels(probabilities) == [three.classes[i] for i in probabilities.argmax(axis=1)]
    explained = scorer.explain("word1 word2 word3")
    predicted = str(scorer.labels(scorer.score(["word1 word2 word3"]))[0])
    assert list(explained) == [predicted, f"other than {predicted}"]
    for classes, message in (
        (["billing", "bug"], "kernel_1.npy has 3 units; the last layer of a classifier of these classes has 1"),
        (["a", "b", "c", "d"], "kernel_1.npy has 3 units; the last layer of a classifier of these classes has 4"),
        (["a", "a", "b"], "classes must be a list of 2 to 1,000 distinct names"),
        (["a"], "classes must be a list of 2 to"),
    ):
        if len(classes) == 2:  # a sigmoid's output for two classes
            sigmoid = Layer(layers[1].kernel, layers[1].bias, "sigmoid")
            wrong = dataclasses.replace(three, classes=classes, layers=[layers[0], sigmoid])
        else:
            wrong = dataclasses.replace(three, classes=classes)
        path.write_bytes(written(wrong))
        with pytest.raises(BundleError, match=message):
            read_bundle(path)
    path.write_bytes(written(dataclasses.replace(three, classes=["a", "b"])))
    with pytest.raises(BundleError, match=r"the last sigmoid|the last one of those for 2 classes"):
        read_bundle(path)  # softmax is the output of more than two classes only


def test_a_review_scores_the_same_alone_or_among_others():
    x, _ = toy_data(rows=3000, seed=5)
    layers = bundle().layers
    deep = [
        Layer(
            np.random.default_rng(6).standard_normal((NUM_WORDS, 64)).astype("float32"), np.zeros(64, "float32"), "tanh"
        ),
        Layer(np.random.default_rng(7).standard_normal((64, 64)).astype("float32"), np.zeros(64, "float32"), "gelu"),
        Layer(np.random.default_rng(8).standard_normal((64, 1)).astype("float32"), np.zeros(1, "float32"), "sigmoid"),
    ]
    for stack in (layers, deep):
        together = forward(stack, x)
        alone = np.concatenate([forward(stack, x[start : start + size]) for start, size in ((0, 1), (1, 7), (8, 2992))])
        np.testing.assert_array_equal(alone, together)


def test_a_dense_layer_adds_its_terms_in_the_same_order_however_many_reviews(monkeypatch):
    rng = np.random.default_rng(9)
    h = (rng.standard_normal((5, 16)) * rng.integers(0, 2, (5, 16))).astype("float32")  # with zeros, as relu's
    h[0] = -0.0
    kernel = rng.standard_normal((16, 16)).astype("float32")
    at_once = inference._dense_product(h, kernel)
    monkeypatch.setattr(inference, "DENSE_TERMS_AT_ONCE", 0)  # a kernel row at a time
    by_row = inference._dense_product(h, kernel)
    np.testing.assert_array_equal(np.signbit(at_once), np.signbit(by_row))
    np.testing.assert_array_equal(at_once, by_row)


@pytest.mark.parametrize("loss", ["binary_crossentropy", "mse"])
def test_the_loss_is_keras_own(loss):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 1000).astype("float32")
    probabilities = rng.random(1000).astype("float32")
    probabilities[:3] = [0.0, 1.0, 1e-9]  # clipped as Keras clips them
    keras_loss = keras.losses.get(loss)
    expected = float(np.mean(keras_loss(y[:, None], probabilities[:, None])))
    assert inference.keras_loss(loss, y, probabilities) == pytest.approx(expected, abs=1e-6)


def test_the_loss_of_more_classes_is_kerass_sparse_categorical_cross_entropy():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(4), 500).astype("float32")
    y = rng.integers(0, 4, 500)
    probabilities[:2], y[:2] = [[0, 1, 0, 0], [0, 1, 0, 0]], [0, 1]  # a certain miss and a certain hit, clipped
    expected = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, probabilities)))
    assert inference.keras_loss("binary_crossentropy", y, probabilities) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("activation", [*ACTIVATIONS, "softmax"])
def test_each_activation_is_kerass_own_far_from_zero_too(activation):
    # one layer whose kernel is the identity: its output is the activation of its input
    x = np.array([[-90, -3, -0.5, 0, 0.25], [0.5, 1, 2.5, 7, 90]], "float32")
    layer = Layer(np.eye(5, dtype="float32"), np.zeros(5, "float32"), activation)
    expected = keras.ops.convert_to_numpy(keras.activations.get(activation)(x))
    np.testing.assert_allclose(forward([layer], scipy.sparse.csr_matrix(x)), expected, rtol=1e-6, atol=1e-7)


def bundle(weighting="binary", **changes) -> Bundle:
    rng = np.random.default_rng(4)
    layers = [
        Layer(rng.standard_normal((NUM_WORDS, 4)).astype("float32"), rng.standard_normal(4).astype("float32"), "relu"),
        Layer(rng.standard_normal((4, 1)).astype("float32"), np.zeros(1, "float32"), "sigmoid"),
    ]
    return dataclasses.replace(
        Bundle(
            VocabParams(num_words=NUM_WORDS, skip_top=0, ngram_range=(1, 1)),
            VectorizeParams(weighting=weighting),
            CHAPTER,
            TrainParams(epochs=4),
            vocabulary=VOCABULARY,
            layers=layers,
            idf=np.linspace(1, 2, NUM_WORDS, dtype="float32") if weightings.named(weighting).uses_idf else None,
            metrics={"accuracy": 0.9},
        ),
        **changes,
    )


def written(value: Bundle) -> bytes:
    stream = io.BytesIO()
    write_bundle(stream, value)
    return stream.getvalue()


def test_a_bundle_reads_back_as_written_and_its_bytes_depend_only_on_its_content(tmp_path):
    for weighting in weightings.WEIGHTINGS:
        original = bundle(weighting)
        path = tmp_path / f"{weighting}.npz"
        path.write_bytes(written(original))
        loaded = read_bundle(path)
        assert (loaded.vocab, loaded.vectorize, loaded.model, loaded.train) == (
            original.vocab, original.vectorize, original.model, original.train,
        )
        assert loaded.vocabulary == VOCABULARY and loaded.metrics == {"accuracy": 0.9}
        for got, want in zip(loaded.layers, original.layers, strict=True):
            np.testing.assert_array_equal(got.kernel, want.kernel)
            np.testing.assert_array_equal(got.bias, want.bias)
            assert got.activation == want.activation
        assert (loaded.idf is None) == (not weightings.named(weighting).uses_idf)
        assert written(loaded) == written(original)


def test_bundles_of_every_depth_and_word_pairs_read_back(tmp_path):
    rng = np.random.default_rng(5)

    def layer(inputs, units, activation):
        return Layer(rng.standard_normal((inputs, units)).astype("float32"), np.zeros(units, "float32"), activation)

    pairs = [f"word{rank} word{rank + 1}" for rank in range(1, NUM_WORDS - 3)]
    originals = {
        "no hidden layer": bundle(layers=[layer(NUM_WORDS, 1, "sigmoid")]),
        "the most hidden layers": bundle(layers=[layer(NUM_WORDS, 2, "relu")] + [layer(2, 2, "tanh")] * 63
                                         + [layer(2, 1, "sigmoid")]),
        "three layers, three classes": bundle(
            layers=[layer(NUM_WORDS, 4, "relu"), layer(4, 4, "relu"), layer(4, 3, "softmax")],
            classes=["billing", "bug", "x" * 100],  # the longest class name a bundle may have
        ),
        "word pairs": bundle(vocabulary=pairs),
    }
    path = tmp_path / "bundle.npz"
    for name, original in originals.items():
        path.write_bytes(written(original))
        loaded = read_bundle(path)
        assert [layer.activation for layer in loaded.layers] == [layer.activation for layer in original.layers], name
        assert loaded.vocabulary == original.vocabulary and loaded.classes == original.classes, name


def test_a_chunk_of_reviews_encodes_and_scores_as_each_review_alone():
    vocabulary = VOCABULARY[:10] + ["word1 word2", "word2 word3"] + VOCABULARY[10:]
    for ngram_range in ((1, 1), (1, 2)):
        scorer = Scorer(
            dataclasses.replace(
                bundle(),
                vocabulary=vocabulary[: NUM_WORDS - 4],
                vocab=VocabParams(num_words=NUM_WORDS, skip_top=1, ngram_range=ngram_range),
            )
        )
        rng = np.random.default_rng(7)
        words = [f"Word{i}" for i in range(1, 40)] + ["don\u2019t", "<br />", "ΣΑΣ", "İ", ""]
        reviews = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(inference.BATCH_REVIEWS + 5)]
        many = scorer.encode_many(reviews)
        assert [sequence.tolist() for sequence in many] == [scorer.encode(review).tolist() for review in reviews]
        alone = np.concatenate([scorer.score([review]) for review in reviews])
        np.testing.assert_array_equal(scorer.score(reviews), alone)


def test_the_scorer_encodes_text_as_the_pipeline_does(tmp_path):
    path = tmp_path / "b.npz"
    path.write_bytes(written(bundle()))
    scorer = Scorer.load(path)
    # word1 has rank 1, so index 4; words beyond the vocabulary are out-of-vocabulary (2)
    assert scorer.encode("Word1 word3 unknown").tolist() == [1, 4, 6, 2]
    x = vectorize_sequences([[1, 4, 6, 2]], dimension=NUM_WORDS)
    np.testing.assert_array_equal(scorer.score(["Word1 word3 unknown"]), forward(bundle().layers, x))
    explained = scorer.explain("word1 word3", top=1)
    assert sum(len(words) for words in explained.values()) <= 2


# ---------------------------------------------------------------- damaged and hostile bundles


def members(value: Bundle) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(written(value))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(files: dict[str, bytes]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return stream.getvalue()


def npy(array) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array, allow_pickle=True)
    return stream.getvalue()


def with_metadata(**changes) -> bytes:
    files = members(bundle())
    metadata = json.loads(files["metadata.json"])
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            metadata[section][name] = value
        else:
            metadata[key] = value
    files["metadata.json"] = json.dumps(metadata).encode()
    return zipped(files)


def with_member(name: str, data: bytes) -> bytes:
    return zipped({**members(bundle()), name: data})


GOOD = written(bundle())
_flipped = bytearray(GOOD)
_flipped[len(GOOD) // 2] ^= 0xFF
HUGE = 10**12

HOSTILE = {
    "truncated": (GOOD[: len(GOOD) // 2], "is not a valid model bundle ("),
    "a corrupted byte": (bytes(_flipped), "is not a valid model bundle"),
    "not a zip": (b"\x89HDF\r\n\x1a\n" + bytes(100), "is not a valid model bundle (File is not a zip file)"),
    "another format version": (
        with_metadata(format_version=1),
        "is a bundle of format version 1, and this code reads version 2",
    ),
    "metadata that is not JSON": (with_member("metadata.json", b"{oops"), "metadata.json is not JSON"),
    "a bad param": (
        with_metadata(
            params={**json.loads(members(bundle())["metadata.json"])["params"], "vectorize": {"weighting": "magic"}}
        ),
        "vectorize.weighting = 'magic' is not allowed",
    ),
    "an unknown activation": (with_metadata(activations=["relu", "exec"]), "activations must be a list of"),
    "a pickled array": (
        with_member("bias_0.npy", npy(np.array([print], dtype=object))),
        "bias_0.npy holds object, expected float32",
    ),
    "a kernel of the wrong shape": (
        with_member("kernel_0.npy", npy(np.zeros((NUM_WORDS, 5), "float32"))),
        "bias_0.npy has shape (4,), expected (5,)",
    ),
    "non-finite weights": (
        with_member("bias_0.npy", npy(np.array([0, np.nan, 0, 0], "float32"))),
        "bias_0.npy has non-finite values",
    ),
    "a vocabulary too large for the weights": (
        with_member("vocabulary.txt", "\n".join(f"w{i}" for i in range(NUM_WORDS)).encode()),
        f"vocabulary.txt has {NUM_WORDS} terms; num_words = {NUM_WORDS} encodes at most 26",
    ),
    "weights for another vocabulary": (
        with_metadata(
            **{
                "params": {
                    **json.loads(members(bundle())["metadata.json"])["params"],
                    "vocab": {"num_words": 20, "skip_top": 0, "ngram_range": [1, 1]},
                }
            }
        ),
        "kernel_0.npy has shape (30, 4), expected (20, any)",
    ),
    "a repeated term": (with_member("vocabulary.txt", b"a\nb\na"), "vocabulary.txt has an empty or repeated term"),
    "a missing layer": (
        zipped({k: v for k, v in members(bundle()).items() if k != "kernel_1.npy"}),
        "missing kernel_1.npy",
    ),
    "an extra member": (with_member("setup.py", b"import os"), "unexpected member setup.py"),
    "metadata claiming gigabytes": (with_metadata(padding="x" * 2_000_000), "metadata.json claims 2,"),
}




def header_only(shape) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return header.getvalue()


def claiming(data: bytes, name: str, size: int) -> bytes:
    """The zip with the central directory's unpacked size of member `name` set to size."""
    entry = data.index(b"PK\x01\x02")  # the first central directory entry
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 1)
    return data[: entry + 24] + size.to_bytes(4, "little") + data[entry + 28 :]


def test_a_size_that_claims_gigabytes_is_refused_before_it_is_read(tmp_path):
    files = members(bundle())
    # a kernel whose header declares 10^12 rows: refused from the header alone, by the weights it would hold
    files["kernel_0.npy"] = header_only((HUGE, 4))
    path = tmp_path / "huge.npz"
    path.write_bytes(zipped(files))
    with pytest.raises(BundleError, match=r"its layers hold 4,000,000,000,009 weights, more than the 53,687,091 "):
        read_bundle(path)
    # a kernel whose header matches the metadata but whose data is missing: a liar
    files["kernel_0.npy"] = header_only((NUM_WORDS, 4))
    path.write_bytes(zipped(files))
    with pytest.raises(BundleError, match=r"kernel_0\.npy claims 480 bytes of data in a member of 128"):
        read_bundle(path)


def test_members_that_claim_more_than_a_bundle_may_hold_together_are_refused_before_any_is_read(tmp_path):
    good = written(bundle())
    path = tmp_path / "bundle.npz"
    # each claim under the total, together over it
    path.write_bytes(claiming(claiming(good, "kernel_0.npy", 200 << 20), "bias_0.npy", 200 << 20))
    with pytest.raises(BundleError, match=r"its members claim 419,4\d\d,\d{3} bytes unpacked, more than the 320 MB a "
                       r"bundle may hold \(pipeline/limits\.py\)$"):
        read_bundle(path)
    path.write_bytes(claiming(good, "vocabulary.txt", 100 << 20))
    with pytest.raises(BundleError, match=r"vocabulary\.txt claims 104,857,600 bytes unpacked, more than the 64 MB "
                       r"it may have \(pipeline/limits\.py\)$"):
        read_bundle(path)


def test_only_a_regular_file_is_read_as_a_bundle(tmp_path):
    (tmp_path / "zero").symlink_to("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # with no writer: opening it must not wait for one
    for path, kind in ((Path("/dev/zero"), "a character device"), (tmp_path / "zero", "a character device"),
                       (fifo, "a FIFO")):
        with pytest.raises(BundleError, match=rf"^{path} is {kind}, not a model bundle: expected a regular file$"):
            read_bundle(path)
    with pytest.raises(BundleError, match=r"is a directory, not a model bundle"):
        read_bundle(tmp_path)


def test_a_file_larger_than_any_bundle_is_refused_unread(tmp_path):
    path = tmp_path / "big.npz"
    with open(path, "wb") as stream:
        stream.truncate((320 << 20) + 1)  # sparse: no disk used
    with pytest.raises(BundleError, match=r"has 335,544,321 bytes; a model bundle may have at most 320 MB"):
        read_bundle(path)


def _repeated_member() -> bytes:
    files = members(bundle())
    stream = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(stream, "w") as archive:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("bias_0.npy", files["bias_0.npy"])
    return stream.getvalue()


HOSTILE |= {
    "a repeated member": (_repeated_member(), "the member bias_0.npy appears more than once"),
    "a Fortran-order array": (
        with_member("kernel_0.npy", npy(np.asfortranarray(np.zeros((NUM_WORDS, 4), "float32")))),
        "kernel_0.npy is in Fortran order, expected C order",
    ),
    "a layer of no units": (
        with_member("kernel_0.npy", npy(np.zeros((NUM_WORDS, 0), "float32"))),
        "kernel_0.npy has 0 units; a layer needs at least 1",
    ),
    "deeply nested metadata": (
        with_member("metadata.json", b"[" * 100_000 + b"]" * 100_000),
        "metadata.json is not JSON a bundle may hold (nested deeper than 32 levels)",
    ),
    "metadata nested just past the limit": (
        with_metadata(padding=json.loads("[" * 40 + "]" * 40)),
        "nested deeper than 32 levels",
    ),
    "an integer of a million digits": (
        with_member("metadata.json", b"[" + b"9" * 100_000 + b"]"),
        "metadata.json is not JSON a bundle may hold (Exceeds the limit (4300 digits)",
    ),
    "too many members": (
        zipped({**members(bundle()), **{f"x{n:05}": b"" for n in range(2000)}}),
        "its list of members takes",
    ),
    "an unknown activation between known ones": (
        with_metadata(activations=["relu", "exec", "relu", "sigmoid"]),
        "activations must be a list of 1 to 65 of relu, tanh, sigmoid, elu, selu, gelu, swish, linear, "
        "the last one of those for 2 classes",
    ),
    "more layers than a model may have": (
        with_metadata(activations=["relu"] * 65 + ["sigmoid"]),
        "activations must be a list of 1 to 65 of",
    ),
    "a second kernel that does not take the first one's units": (
        with_member("kernel_1.npy", npy(np.zeros((5, 1), "float32"))),
        "kernel_1.npy has shape (5, 1), expected (4, any)",
    ),
    "an empty term": (with_member("vocabulary.txt", b"word1\n\nword2"), "vocabulary.txt has an empty or repeated term"),
    "metadata that is not an object": (with_member("metadata.json", b"[]"), "metadata.json does not describe an "),
    "an empty class name": (with_metadata(classes=["", "positive"]), "classes must be a list of 2 to 1,000"),
    "a class name too long": (with_metadata(classes=["x" * 101, "positive"]), "classes must be a list of 2 to 1,000"),
    # numpy reads an array from its header and ignores what follows: a member longer than that is not what was written
    "an array with bytes after its data": (
        with_member("kernel_0.npy", npy(np.zeros((NUM_WORDS, 4), "float32")) + bytes(4)),
        "kernel_0.npy claims 480 bytes of data in a member of 612",
    ),
    "a vocabulary of more lines than num_words": (
        with_member("vocabulary.txt", b"\n" * 5_000_000),
        "vocabulary.txt has 5,000,001 terms; num_words = 30 encodes at most 26",
    ),
}




@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_damaged_or_hostile_bundle_is_one_error_naming_the_file(tmp_path, case):
    data, message = HOSTILE[case]
    path = tmp_path / "bundle.npz"
    path.write_bytes(data)
    with pytest.raises(BundleError) as error:
        read_bundle(path)
    text = str(error.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_explanations_rank_words_by_the_size_of_their_effect_ties_alphabetically_and_leave_out_no_effect():
    word_of = {4: "awful", 5: "bland", 6: "cast", 7: "dull", 8: "epic", 9: "fine"}
    words = np.array([7, 4, 6, 9, 8, 5])
    effects = np.array([-0.125, -0.5, 0.0, 0.25, 0.75, -0.125], "float32")
    assert inference.strongest(words, effects, word_of, top=2) == {
        "positive": [("epic", 0.75), ("fine", 0.25)],
        "negative": [("awful", -0.5), ("bland", -0.125)],
    }
    # a word whose removal changes nothing pushes neither way
    assert "cast" not in {word for ranked in inference.strongest(words, effects, word_of, top=10).values()
                          for word, _ in ranked}
    # with two classes, a positive effect pushes towards the second
    assert list(Scorer(bundle()).explain("word1 word2")) == ["positive", "negative"]


@pytest.mark.parametrize("weighting", list(weightings.WEIGHTINGS))
def test_occlusion_scores_each_review_without_each_of_its_words(weighting, monkeypatch):
    # the definition: the review's probability minus that of the review with every occurrence of
    # the word taken out; here in batches so small that a review's words are split between them
    scorer = Scorer(bundle(weighting))
    rng = np.random.default_rng(7)
    sequences = [np.r_[1, rng.integers(2, NUM_WORDS, n)].astype(np.int32) for n in (0, 1, 5, 40, 300)]
    probabilities = scorer.probabilities(scorer.features(sequences))
    for nonzeros in (1, 7, inference.EXPLAIN_NONZEROS):
        monkeypatch.setattr(inference, "EXPLAIN_NONZEROS", nonzeros)
        effects = scorer.occlusion(sequences, probabilities)
        for sequence, probability, (words, effect) in zip(sequences, probabilities, effects, strict=True):
            expected_words = np.unique(sequence[sequence >= 3])
            without = scorer.probabilities(scorer.features([sequence[sequence != word] for word in expected_words]))
            np.testing.assert_array_equal(words, expected_words)
            np.testing.assert_array_equal(effect, probability - without)  # bit for bit


def test_a_review_too_large_to_explain_is_scored_and_left_unexplained(monkeypatch):
    scorer = Scorer(bundle())
    sequences = [np.array([1, 4, 5, 6], np.int32), np.array([1, 4, 5, 6, 7, 8], np.int32)]
    probabilities = scorer.probabilities(scorer.features(sequences))
    # 3 words x (4 terms x 4 units + 4 later weights) = 60 multiplications; the second review takes 140
    monkeypatch.setattr(inference.limits, "MAX_EXPLAIN_OPERATIONS", 60)
    first, second = scorer.occlusion(sequences, probabilities)
    assert list(first[0]) == [4, 5, 6] and second is None
    with pytest.raises(inference.limits.LimitError, match=r"too many distinct words to explain"):
        scorer.explain("word1 word2 word3 word4")


@pytest.mark.parametrize("weighting", list(weightings.WEIGHTINGS))
@pytest.mark.parametrize("ngrams", [(1, 1), (1, 2)])
@pytest.mark.parametrize("switches", [{}, {"batch_from": 5, "sparse_from": 1}], ids=["imdb-predict", "server"])
def test_a_few_reviews_score_with_numpy_alone_to_the_bits_of_many(weighting, ngrams, switches):
    # imdb-predict: below BATCH_REVIEWS the features are Rows (no scipy), from it on a scipy
    # matrix; the server: scipy from one review, the compiled tokenizer from a few. The same bits.
    rng = np.random.default_rng(11)
    value = bundle(weighting)
    vocab = dataclasses.replace(value.vocab, ngram_range=ngrams)
    scorer = Scorer(dataclasses.replace(value, vocab=vocab), **switches)
    words = VOCABULARY + ["unknown", "words", "here"]
    texts = [" ".join(rng.choice(words, rng.integers(0, 60))) for _ in range(inference.BATCH_REVIEWS + 1)]
    many = Scorer(dataclasses.replace(value, vocab=vocab)).score(texts)
    few = scorer.features(scorer.encode_many(texts[:3]))
    assert isinstance(few, inference.Rows) == ("sparse_from" not in switches)
    for size in (1, 2, inference.BATCH_REVIEWS - 1):
        np.testing.assert_array_equal(scorer.score(texts[:size]), many[:size])
    np.testing.assert_array_equal(np.concatenate([scorer.score([t]) for t in texts]), many)


def test_scoring_a_review_imports_neither_scipy_nor_arrow(tmp_path):
    (tmp_path / "bundle.npz").write_bytes(written(bundle("tfidf")))
    check = (
        f"import sys; from pipeline.inference import Scorer; Scorer.load({str(tmp_path / 'bundle.npz')!r})"
        ".score(['word1 word2']); loaded = [m for m in ('scipy', 'pyarrow') if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
