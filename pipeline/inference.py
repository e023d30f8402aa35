"""Scoring reviews with a trained model, without TensorFlow.

    from pipeline.inference import Scorer

    scorer = Scorer.load("data/bundle/imdb-sentiment.npz")
    scorer.score(["A wonderful film", "Two hours I will never get back"])  # P(positive) each

The chapter's model is a stack of Dense layers, so scoring is a sparse-dense product,
a bias and an activation per layer (`forward`): numpy and scipy do it in
milliseconds, where importing TensorFlow takes seconds. Keras trains the model; the
evaluate stage and imdb-predict score with `forward`, the only forward pass.

A bundle is one file holding everything needed to score raw text: the vocabulary and
encoding settings (vocab params), the weighting and the training split's idf
(vectorize params), every layer's weights (naive-Bayes scaling folded in) and
activation, and metadata: the params it was built with and its test metrics. It is
a zip of JSON and .npy members. Reading one runs no code: no pickle, no Keras
objects; every member's declared size, dtype and shape is checked against the
metadata before anything large is allocated, so a damaged or hostile file gets a
one-line error.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from pipeline import features, labels, limits, text, weightings
from pipeline.cli import UserError
from pipeline.params import (
    ACTIVATIONS,
    ModelParams,
    ParamsError,
    TrainParams,
    VectorizeParams,
    VocabParams,
    parse_section,
    shown,
)
from pipeline.ragged import row_offsets

if TYPE_CHECKING:
    import scipy.sparse

FORMAT = "imdb-sentiment-bundle"
FORMAT_VERSION = 2  # 2: the classes are named in the metadata, and may be more than two
METADATA = "metadata.json"
VOCABULARY = "vocabulary.txt"  # the terms by rank, one per line: rank 1 first
IDF = "idf.npy"
DTYPE = np.dtype("<f4")
BATCH_REVIEWS = 64  # from this many reviews on, encode_many uses the compiled tokenizer
DENSE_TERMS_AT_ONCE = 1 << 16  # a dense layer's terms added up in one call up to this many (256 KB)
EXPLAIN_NONZEROS = 300_000  # multi-hot entries per forward pass for the occluded copies of --explain

# Keras's definitions, in float32 (keras.activations; gelu without approximation)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: the sigmoid is 0, as it should be
        return 1 / (1 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    """Keras's softmax: each row's exponentials, shifted by its largest, over their sum."""
    exponentials = np.exp(x - np.max(x, axis=1, keepdims=True))
    return exponentials / np.sum(exponentials, axis=1, keepdims=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    import scipy.special  # only here: importing it costs a tenth of imdb-predict's start-up

    return 0.5 * x * (1 + scipy.special.erf(x / np.float32(math.sqrt(2))))


_ACTIVATION_FUNCTIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "gelu": _gelu,
    "swish": lambda x: x * _sigmoid(x),
    "linear": lambda x: x,
    "softmax": _softmax,  # the output of a model of more than two classes
}
assert set(_ACTIVATION_FUNCTIONS) == {*ACTIVATIONS, "softmax"}


@dataclass(frozen=True)
class Layer:
    kernel: np.ndarray  # (inputs, units), float32
    bias: np.ndarray  # (units,), float32
    activation: str


@dataclass(frozen=True)
class Rows:
    """A few reviews' features as a (columns, values) pair each, in index order: what
    `forward` scores with numpy alone, where importing scipy would cost a review more
    than scoring it."""

    columns: list[np.ndarray]
    values: list[np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.columns), -1

    def __getitem__(self, rows: slice) -> Rows:
        return Rows(self.columns[rows], self.values[rows])


def forward(layers: Sequence[Layer], x: scipy.sparse.csr_matrix | Rows) -> np.ndarray:
    """The model's output for each row of x, float32: with two classes the probability of
    the second (a 1-D array), with more a row of probabilities, one per class.

    A row's result does not depend on the other rows, to the last bit, so a review
    scores the same alone, in a chunk of imdb-predict or among the 25,000 of the
    evaluate stage: scipy's sparse product sums each row in index order, and the
    dense layers add one input at a time (BLAS would pick its summation order by
    the matrix's size)."""
    widest = max(layer.kernel.shape[1] for layer in layers)
    rows = max(1, limits.FORWARD_ACTIVATIONS // widest)  # so a wide model's temporaries stay bounded
    if x.shape[0] <= rows:
        return _forward(layers, x)
    return np.concatenate([_forward(layers, x[start : start + rows]) for start in range(0, x.shape[0], rows)])


def _forward(layers: Sequence[Layer], x: scipy.sparse.csr_matrix | Rows) -> np.ndarray:
    first, *rest = layers
    h = _activate(first, _first_product(first.kernel, x))
    for layer in rest:
        h = _activate(layer, _dense_product(h, layer.kernel))
    return h[:, 0] if h.shape[1] == 1 else h


def _dense_product(h: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """h @ kernel, each sum added one input at a time from zero, in the kernel's row order.
    A few reviews: every term at once, added up by np.add.accumulate (strictly in order, so
    a loop's bits, in a tenth of a loop's time for one review); more: a kernel row at a time,
    as the terms would take `inputs` times the memory."""
    if h.shape[0] * kernel.size <= DENSE_TERMS_AT_ONCE:
        terms = h[:, :, np.newaxis] * kernel[np.newaxis]
        start = np.zeros((h.shape[0], 1, kernel.shape[1]), dtype=DTYPE)
        return np.add.accumulate(np.concatenate([start, terms], axis=1), axis=1, dtype=DTYPE)[:, -1]
    product = np.zeros((h.shape[0], kernel.shape[1]), dtype=DTYPE)
    for row, weights in enumerate(kernel):
        product += h[:, row, np.newaxis] * weights
    return product


def _first_product(kernel: np.ndarray, x: scipy.sparse.csr_matrix | Rows) -> np.ndarray:
    """x @ kernel. scipy's sparse product adds each row's terms in index order, each term
    its value times the kernel's row; Rows are added up the same way in numpy, so the
    bits are the same."""
    if not isinstance(x, Rows):
        return np.asarray(x.astype(DTYPE, copy=False) @ kernel, dtype=DTYPE)
    product = np.zeros((len(x.columns), kernel.shape[1]), dtype=DTYPE)
    for row, (columns, values) in enumerate(zip(x.columns, x.values, strict=True)):
        product[row] = _row_product(kernel, columns, values)
    return product


def _row_product(kernel: np.ndarray, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The row's terms, value × kernel row, added one after the other from zero in index
    order: np.add.accumulate adds strictly in order (np.sum would pair them), so the bits
    are a loop's; a block of terms at a time keeps the temporaries bounded."""
    total = np.zeros((1, kernel.shape[1]), dtype=DTYPE)
    step = max(1, limits.FORWARD_ACTIVATIONS // kernel.shape[1] - 1)
    for start in range(0, len(columns), step):
        terms = kernel[columns[start : start + step]] * np.asarray(values[start : start + step], DTYPE)[:, np.newaxis]
        total = np.add.accumulate(np.concatenate([total, terms]), axis=0, dtype=DTYPE)[-1:]
    return total[0]


def _activate(layer: Layer, product: np.ndarray) -> np.ndarray:
    return _ACTIVATION_FUNCTIONS[layer.activation](product + layer.bias).astype(DTYPE, copy=False)


def keras_loss(loss: str, y: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean loss as Keras computes it: binary cross-entropy on probabilities clipped
    to [1e-7, 1 - 1e-7] (Keras's epsilon), or the mean squared error; with a probability
    per class, sparse categorical cross-entropy on the same clipped probabilities."""
    p = np.asarray(probabilities, dtype=DTYPE)
    if p.ndim == 2:
        rows = np.arange(p.shape[0])
        chosen = np.clip(p[rows, np.asarray(y).astype(np.int64)], np.float32(1e-7), np.float32(1 - 1e-7))
        return float(np.mean(-np.log(chosen), dtype=np.float64))
    y = np.asarray(y, dtype=DTYPE)
    if loss == "mse":
        per_review = np.square(y - p)
    else:
        p = np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7))
        per_review = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return float(np.mean(per_review, dtype=np.float64))


# ---------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class Bundle:
    vocab: VocabParams
    vectorize: VectorizeParams
    model: ModelParams
    train: TrainParams  # epochs as trained (an integer, never `best`)
    vocabulary: list[str]  # the terms by rank, rank 1 first
    layers: list[Layer]
    idf: np.ndarray | None = None  # only for a weighting that uses it
    metrics: dict | None = None  # the evaluate stage's test metrics
    # the classes, as the training split names them; the last layer has a unit per class,
    # or one (the probability of the second) for two
    classes: list = field(default_factory=lambda: ["negative", "positive"])  # the chapter's

    @property
    def num_words(self) -> int:
        return self.vocab.num_words

    def with_metrics(self, metrics: dict) -> Bundle:
        return replace(self, metrics=metrics)

    def metadata(self) -> dict:
        sections = {name: _section_dict(getattr(self, name)) for name in ("vocab", "vectorize", "model", "train")}
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": sections,
            "activations": [layer.activation for layer in self.layers],
            "classes": list(self.classes),
            "metrics": self.metrics,
        }


def _section_dict(section) -> dict:
    values = dict(vars(section))
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


def vocabulary_by_rank(word_index: dict[str, int], num_words: int) -> list[str]:
    """The terms a num_words vocabulary can encode (rank + 3 < num_words), rank 1 first."""
    by_rank = sorted((rank, word) for word, rank in word_index.items() if rank + text.INDEX_FROM < num_words)
    return [word for _, word in by_rank]


def write_bundle(stream: IO[bytes], bundle: Bundle) -> None:
    """The bundle as a zip whose bytes depend only on its content (fixed timestamps)."""
    members = {
        METADATA: json.dumps(bundle.metadata(), sort_keys=True, ensure_ascii=False).encode(),
        VOCABULARY: "\n".join(bundle.vocabulary).encode(),
    }
    if bundle.idf is not None:
        members[IDF] = _npy(bundle.idf)
    for number, layer in enumerate(bundle.layers):
        members[f"kernel_{number}.npy"] = _npy(layer.kernel)
        members[f"bias_{number}.npy"] = _npy(layer.bias)
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array, dtype=DTYPE), allow_pickle=False)
    return buffer.getvalue()


class BundleError(UserError):
    pass


def read_bundle(path: Path) -> Bundle:
    """A bundle, checked member by member; any problem is a BundleError naming the file.

    Every limit (pipeline/limits.py) is checked before what it bounds is read: the
    file is a regular one of at most MAX_BUNDLE_BYTES, its list of members small, the
    sizes its members claim add up to at most MAX_BUNDLE_BYTES, and each array's
    header matches the metadata before its data is read."""
    try:
        with limits.open_regular(path, "a model bundle", limits.MAX_BUNDLE_BYTES) as stream:
            _check_directory(path, stream)
            with zipfile.ZipFile(stream) as archive:
                return _Reader(path, archive).bundle()
    except limits.LimitError as error:
        raise BundleError(f"{error} (pipeline/limits.py)") from None
    except UserError as error:
        raise BundleError(str(error)) from None
    except OSError as error:
        raise BundleError(f"cannot read {path}: {error.strerror or error}") from None
    except (
        zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError,
    ) as error:
        # a truncated or corrupted zip (a bad CRC, a cut member) or a file that is none
        raise BundleError(f"{path} is not a valid model bundle ({_one_line(error)})") from None


_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"  # 20 bytes before the end record, in a zip64 file


def _check_directory(path: Path, stream: IO[bytes]) -> None:
    """Refuses a zip whose list of members is larger than a bundle's can be, before
    zipfile reads it into objects (hundreds of bytes per member)."""
    end = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, end - (22 + 0xFFFF)))  # the end record (22 bytes) and its comment, at most
    tail = stream.read()
    stream.seek(0)
    # the end record zipfile takes: the last 22 bytes when they are one, else the last found
    at = len(tail) - 22 if tail[-22:-18] == _END_OF_DIRECTORY and tail[-2:] == b"\0\0" else tail.rfind(
        _END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < 22:
        return  # not a zip: zipfile says so
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        # zipfile would take the list's size from the zip64 record: a bundle, far below 4 GB, has none
        raise BundleError(f"{path} is not a valid model bundle: it has zip64 records, which no bundle needs")
    directory_bytes = int.from_bytes(tail[at + 12 : at + 16], "little")
    if directory_bytes > limits.MAX_BUNDLE_DIRECTORY_BYTES:
        raise BundleError(
            f"{path} is not a valid model bundle: its list of members takes {directory_bytes:,} bytes, more "
            f"than the {limits.size(limits.MAX_BUNDLE_DIRECTORY_BYTES)} a bundle's may (pipeline/limits.py)"
        )


def _one_line(error: Exception, limit: int = 200) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


@dataclass
class _Reader:
    path: Path
    archive: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo] = field(init=False)

    def __post_init__(self) -> None:
        infos = self.archive.infolist()
        self.members = {info.filename: info for info in infos}
        if len(self.members) != len(infos):
            seen: set[str] = set()
            repeated = next(info.filename for info in infos if info.filename in seen or seen.add(info.filename))
            raise self.fail(f"the member {repeated} appears more than once")
        for info in infos:
            # deflate is inflated a bounded piece at a time; zipfile's bzip2 and lzma are not
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise self.fail(f"{info.filename} is compressed or encrypted in a way a bundle never is")
        claimed = sum(info.file_size for info in infos)
        if claimed > limits.MAX_BUNDLE_BYTES:
            raise self.fail(
                f"its members claim {claimed:,} bytes unpacked, more than the "
                f"{limits.size(limits.MAX_BUNDLE_BYTES)} a bundle may hold (pipeline/limits.py)"
            )

    def fail(self, problem: str) -> BundleError:
        return BundleError(f"{self.path} is not a valid model bundle: {problem}")

    def bundle(self) -> Bundle:
        metadata = self.metadata()
        params = metadata["params"]
        vocab = self.section(params, "vocab", VocabParams)
        vectorize = self.section(params, "vectorize", VectorizeParams)
        model = self.section(params, "model", ModelParams)
        train = self.section(params, "train", TrainParams)
        classes = self.classes(metadata.get("classes"))
        activations = self.activations(metadata.get("activations"), classes)
        expected = {METADATA, VOCABULARY} | {
            f"{kind}_{n}.npy" for n in range(len(activations)) for kind in ("kernel", "bias")
        }
        if weightings.named(vectorize.weighting).uses_idf:
            expected.add(IDF)
        if set(self.members) != expected:
            missing, extra = sorted(expected - set(self.members)), sorted(set(self.members) - expected)
            raise self.fail(f"missing {', '.join(missing)}" if missing else f"unexpected member {extra[0]}")
        self.check_weights(activations, labels.outputs(classes))
        layers = self.layers(activations, vocab.num_words)
        return Bundle(
            vocab, vectorize, model, train,
            vocabulary=self.vocabulary(vocab.num_words),
            layers=layers,
            idf=self.array(IDF, (vocab.num_words,)) if IDF in expected else None,
            metrics=metadata.get("metrics"),
            classes=classes,
        )

    def classes(self, classes) -> list:
        if not (
            isinstance(classes, list)
            and 2 <= len(classes) <= limits.MAX_CLASSES
            and all(type(c) is int or (type(c) is str and 0 < len(c) <= limits.MAX_CLASS_NAME) for c in classes)
            and len(set(map(repr, classes))) == len(classes)
        ):
            raise self.fail(
                f"classes must be a list of 2 to {limits.MAX_CLASSES:,} distinct names (text of 1 to "
                f"{limits.MAX_CLASS_NAME:,} characters, or integers)"
            )
        return classes

    def activations(self, activations, classes: list) -> list[str]:
        """Each layer's activation: the hidden ones of params, the last a sigmoid's kind for
        two classes, softmax for more."""
        last = ACTIVATIONS if labels.is_binary(classes) else ("softmax",)
        if not (
            isinstance(activations, list)
            and 0 < len(activations) <= limits.MAX_HIDDEN_LAYERS + 1
            and all(isinstance(a, str) and a in ACTIVATIONS for a in activations[:-1])
            and activations[-1] in last
        ):
            raise self.fail(
                f"activations must be a list of 1 to {limits.MAX_HIDDEN_LAYERS + 1} of {', '.join(ACTIVATIONS)}, "
                f"the last {' or '.join(last) if len(last) == 1 else 'one of those'} for {len(classes)} classes"
            )
        return activations

    def read(self, name: str, limit: int) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise self.fail(f"missing {name}")
        if info.file_size > limit:
            raise self.fail(
                f"{name} claims {info.file_size:,} bytes unpacked, more than the {limits.size(limit)} "
                "it may have (pipeline/limits.py)"
            )
        with self.archive.open(info) as stream:  # at most what it claims: zipfile stops there, checking the CRC
            return stream.read(info.file_size)

    def metadata(self) -> dict:
        try:
            metadata = limits.parse_json(self.read(METADATA, limits.MAX_METADATA_BYTES))
        except limits.JsonError as error:
            raise self.fail(f"{METADATA} is not JSON a bundle may hold ({error})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise self.fail(f"{METADATA} does not describe an {FORMAT}")
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"{self.path} is a bundle of format version {repr(version)[:40]}, and this "
                f"code reads version {FORMAT_VERSION}: rebuild it with this code (`dvc repro`), or score it with "
                "the code that wrote it"
            )
        if not isinstance(metadata.get("params"), dict):
            raise self.fail(f"{METADATA} has no params")
        return metadata

    def section(self, params: dict, name: str, cls: type):
        try:
            return parse_section(name, cls, params.get(name))
        except ParamsError as error:
            raise self.fail(_one_line(ParamsError(str(error).removeprefix("params.yaml: ")))) from None

    def vocabulary(self, num_words: int) -> list[str]:
        data = self.read(VOCABULARY, limits.MAX_VOCABULARY_BYTES)
        encodable = num_words - text.INDEX_FROM - 1
        count = data.count(b"\n") + 1 if data else 0  # counted before any term is made
        if count > encodable:
            raise self.fail(f"{VOCABULARY} has {count:,} terms; num_words = {num_words} encodes at most {encodable:,}")
        try:
            terms = data.decode("utf-8").split("\n") if data else []
        except UnicodeDecodeError:
            raise self.fail(f"{VOCABULARY} is not UTF-8") from None
        if len(set(terms)) != len(terms) or "" in terms:
            raise self.fail(f"{VOCABULARY} has an empty or repeated term")
        return terms

    def check_weights(self, activations: list[str], outputs: int) -> None:
        """The weights' shapes, from the arrays' headers alone, make a classifier of its
        classes no larger than the largest model params allow."""
        weights = 0
        for number in range(len(activations)):
            shape = self.header(f"kernel_{number}.npy")[0]
            if len(shape) != 2:
                raise self.fail(f"kernel_{number}.npy has shape {shape}, expected 2 dimensions")
            rows, units = shape
            last = number == len(activations) - 1
            if units < 1 or (last and units != outputs):
                raise self.fail(f"kernel_{number}.npy has {units} units; " + (
                    f"the last layer of a classifier of these classes has {outputs}" if last
                    else "a layer needs at least 1"
                ))
            weights += rows * units + units
        if weights > limits.MAX_MODEL_PARAMETERS:
            raise self.fail(
                f"its layers hold {weights:,} weights, more than the {limits.MAX_MODEL_PARAMETERS:,} of the largest "
                "model params allow (pipeline/limits.py)"
            )

    def layers(self, activations: list[str], num_words: int) -> list[Layer]:
        layers, inputs = [], num_words
        for number, activation in enumerate(activations):
            kernel = self.array(f"kernel_{number}.npy", (inputs, None))
            units = kernel.shape[1]
            layers.append(Layer(kernel, self.array(f"bias_{number}.npy", (units,)), activation))
            inputs = units
        return layers

    def header(self, name: str) -> tuple[tuple[int, ...], int]:
        """A float32 C-order array's shape, and where its data starts, from its .npy header."""
        with self.archive.open(self.members[name]) as stream:
            return self._header(name, stream)

    def _header(self, name: str, stream: IO[bytes]) -> tuple[tuple[int, ...], int]:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise self.fail(f"{name}: unsupported .npy version {version}")
        found, fortran_order, dtype = read_header[version](stream, max_header_size=10_000)
        if dtype != DTYPE:
            raise self.fail(f"{name} holds {dtype}, expected float32")
        if fortran_order:
            raise self.fail(f"{name} is in Fortran order, expected C order (as numpy writes by default)")
        if not found or len(found) > 2:
            raise self.fail(f"{name} has shape {tuple(found)}, expected 1 or 2 dimensions")
        return tuple(found), stream.tell()

    def array(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """A float32 array of the given shape (None: any size); checked before it is read."""
        info = self.members[name]
        with self.archive.open(info) as stream:
            found, header_bytes = self._header(name, stream)
            if len(found) != len(shape) or any(
                want is not None and want != got for want, got in zip(shape, found, strict=True)
            ):
                wanted = (
                    "("
                    + ", ".join("any" if n is None else str(n) for n in shape)
                    + ("," if len(shape) == 1 else "")
                    + ")"
                )
                raise self.fail(f"{name} has shape {tuple(found)}, expected {wanted}")
            nbytes = DTYPE.itemsize * math.prod(found)
            if header_bytes + nbytes != info.file_size:
                raise self.fail(f"{name} claims {nbytes:,} bytes of data in a member of {info.file_size:,}")
            array = np.frombuffer(stream.read(nbytes), dtype=DTYPE).reshape(found)
        if not np.isfinite(array).all():
            raise self.fail(f"{name} has non-finite values")
        return array


# ---------------------------------------------------------------- params it was built with


def params_digest(data: bytes) -> str:
    """The digest of a params.yaml's bytes, as evaluate records it beside the bundle."""
    return hashlib.sha256(data).hexdigest()


def params_differences(bundle: Bundle, raw: object) -> list[str]:
    """`section.key = value here (built with value)` for each param the bundle records
    that params.yaml (as YAML gives it, unchecked) sets otherwise."""
    differences = []
    for section, built_values in bundle.metadata()["params"].items():
        here = raw.get(section) if isinstance(raw, dict) else None
        for key, built in built_values.items():
            now = here.get(key, _ABSENT) if isinstance(here, dict) else _ABSENT
            if (section, key) == ("train", "epochs") and now == "best":
                continue  # best is an epoch number once trained
            if now != built:
                here_text = "absent" if now is _ABSENT else _short(now)
                differences.append(f"{section}.{key} = {here_text} (built with {_short(built)})")
    return differences


_ABSENT = object()


def _short(value: object) -> str:
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:39] + "…"
    return json.dumps(value) if isinstance(value, (int, float, bool, type(None))) else shown(value)


# ---------------------------------------------------------------- scoring


class Scorer:
    """Raw review text → P(positive), through exactly the pipeline's code: the vocab
    stage's tokenizer and encoding, the vectorize stage's term counts and weighting,
    and `forward`."""

    def __init__(self, bundle: Bundle, batch_from: int = BATCH_REVIEWS, sparse_from: int | None = None):
        self.bundle = bundle
        # From batch_from reviews on, the compiled tokenizer; from sparse_from (batch_from
        # unless given), scipy's product; the same bits either way. imdb-predict's default
        # spares one review their imports; a server that has loaded them switches where
        # each gets faster.
        self.batch_from = batch_from
        self.sparse_from = batch_from if sparse_from is None else sparse_from
        self.weighting = weightings.named(bundle.vectorize.weighting)
        word_index = dict(zip(bundle.vocabulary, range(1, len(bundle.vocabulary) + 1), strict=True))
        self.index_of = text.word_to_index(word_index, bundle.num_words, bundle.vocab.skip_top)
        self._encoder = None  # pipeline.corpus.Encoder, for encode_many

    @functools.cached_property
    def word_of(self) -> dict[int, str]:
        """The term each index encodes: only explanations need it."""
        return {index: word for word, index in self.index_of.items()}

    @classmethod
    def load(cls, path: str | Path, batch_from: int = BATCH_REVIEWS, sparse_from: int | None = None) -> Scorer:
        return cls(read_bundle(Path(path)), batch_from, sparse_from)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each review, float32."""
        return self.probabilities(self.features(self.encode_many(texts)))

    def encode(self, review: str) -> np.ndarray:
        """The review as the vocab stage encodes it (Keras conventions: 1 start, 2 out of vocabulary)."""
        # an array at once: a chunk of reviews as lists of Python ints would take 5x the memory
        return np.array(text.encode(review, self.index_of, self.bundle.vocab.ngram_range), dtype=np.int32)

    def encode_many(self, texts: Sequence[str]) -> list[np.ndarray]:
        """`encode` for each review; many at once in compiled code (the same indices)."""
        if len(texts) < self.batch_from:
            return [self.encode(review) for review in texts]
        if self._encoder is None:
            # only here: loading Arrow's compute kernels and building the lookup tables
            # would cost a one-review imdb-predict more than it encodes
            from pipeline import corpus

            self._encoder = corpus.Encoder(self.index_of, self.bundle.vocab.ngram_range)
        offsets, indices = self._encoder.encode_texts(texts)
        bounds = offsets.tolist()  # slicing by Python ints: np.split took ten times as long
        return [indices[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]

    def features(self, sequences: Sequence[np.ndarray]) -> scipy.sparse.csr_matrix | Rows:
        """The rows the vectorize stage would build for these encoded reviews: a few as Rows
        (numpy alone), more as a scipy matrix; forward scores both to the same bits."""
        if len(sequences) < self.sparse_from:
            rows = [features.row_features(s, self.bundle.num_words, self.weighting, self.bundle.idf) for s in sequences]
            return Rows([columns for columns, _ in rows], [values for _, values in rows])
        offsets = row_offsets([len(s) for s in sequences])
        flat = np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int32)
        counts = features.count_matrix(offsets, flat, self.bundle.num_words)
        return self.weighting.weigh(counts, self.bundle.idf)

    def probabilities(self, x: scipy.sparse.csr_matrix | Rows) -> np.ndarray:
        return forward(self.bundle.layers, x)

    def occlusion(
        self, sequences: Sequence[np.ndarray], probabilities: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """For each review, its word indices and, for each, the review's probability minus the
        probability without that word: what the word adds to the score (> 0: towards the
        second class, with two; towards the predicted class, with more).

        A review without a word is its row of term counts without that column: the rows
        the vectorize stage would build for the review with every occurrence of the word
        taken out. They are scored EXPLAIN_NONZEROS entries at a time, so memory stays
        bounded however long a review is. A review whose copies would take more than
        limits.MAX_EXPLAIN_OPERATIONS multiplications in all gets None: its time would not
        be bounded."""
        counts = features.count_matrix(
            row_offsets([len(s) for s in sequences]),
            np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int32),
            self.bundle.num_words,
        )
        words_of = [self._words(counts, review) for review in range(len(sequences))]
        first, *rest = self.bundle.layers
        later_weights = sum(layer.kernel.size for layer in rest)
        terms = np.diff(counts.indptr)
        explained = [  # the multiplications of a copy of the review, once per word
            len(words) * (int(terms[review]) * first.kernel.shape[1] + later_weights) <= limits.MAX_EXPLAIN_OPERATIONS
            for review, words in enumerate(words_of)
        ]
        words_of = [words if ok else words[:0] for words, ok in zip(words_of, explained, strict=True)]
        without = [np.empty(len(words), dtype=DTYPE) for words in words_of]
        # with a probability per class, the predicted class's is the score explained
        target = labels.predicted(probabilities) if np.ndim(probabilities) == 2 else None
        batch: list[tuple[int, slice]] = []  # (review, which of its words)
        entries = rows = 0
        # rows scored at once: their inputs, and their outputs (a probability per class each), bounded
        max_rows = max(limits.FORWARD_ACTIVATIONS // self.bundle.layers[-1].kernel.shape[1], 1)
        for review, words in enumerate(words_of):
            row_entries = max(counts.indptr[review + 1] - counts.indptr[review] - 1, 1)
            per_batch = min(max(EXPLAIN_NONZEROS // row_entries, 1), max_rows)
            for start in range(0, len(words), per_batch):
                part = slice(start, min(start + per_batch, len(words)))
                batch.append((review, part))
                entries += (part.stop - part.start) * row_entries
                rows += part.stop - part.start
                if entries >= EXPLAIN_NONZEROS or rows >= max_rows:
                    self._score_occluded(counts, words_of, batch, without, target)
                    batch, entries, rows = [], 0, 0
        self._score_occluded(counts, words_of, batch, without, target)
        scores = probabilities if target is None else probabilities[np.arange(len(target)), target]
        return [
            (words, scores[review] - without[review]) if ok else None
            for review, (words, ok) in enumerate(zip(words_of, explained, strict=True))
        ]

    @staticmethod
    def _words(counts: scipy.sparse.csr_matrix, review: int) -> np.ndarray:
        columns = counts.indices[counts.indptr[review] : counts.indptr[review + 1]]
        return columns[columns >= text.INDEX_FROM]  # not the start marker, not out-of-vocabulary

    def _score_occluded(self, counts, words_of, batch, without, target) -> None:
        import scipy.sparse

        if not batch:
            return
        rows = [self._occluded(counts, review, words_of[review][part]) for review, part in batch]
        occluded_counts = scipy.sparse.vstack(rows, format="csr")
        probabilities = self.probabilities(self.weighting.weigh(occluded_counts, self.bundle.idf))
        start = 0
        for (review, part), occluded in zip(batch, rows, strict=True):
            scored = probabilities[start : start + occluded.shape[0]]
            without[review][part] = scored if target is None else scored[:, target[review]]
            start += occluded.shape[0]

    def _occluded(self, counts: scipy.sparse.csr_matrix, review: int, words: np.ndarray) -> scipy.sparse.csr_matrix:
        """The review's row of counts once for each word, without that word's column."""
        import scipy.sparse

        first, last = counts.indptr[review], counts.indptr[review + 1]
        columns, values = counts.indices[first:last], counts.data[first:last]
        kept = columns[np.newaxis, :] != words[:, np.newaxis]  # each row drops its own word
        indptr = np.arange(len(words) + 1, dtype=np.int64) * (len(columns) - 1)
        return scipy.sparse.csr_matrix(
            (np.broadcast_to(values, kept.shape)[kept], np.broadcast_to(columns, kept.shape)[kept], indptr),
            shape=(len(words), counts.shape[1]),
        )

    def explain(self, review: str, top: int = 5) -> dict[str, list[tuple[str, float]]]:
        """The `top` words pushing the review's score most towards each label; a LimitError
        for a review too large to explain (limits.MAX_EXPLAIN_OPERATIONS)."""
        sequence = self.encode(review)
        probability = self.probabilities(self.features([sequence]))
        effects = self.occlusion([sequence], probability)[0]
        if effects is None:
            raise limits.LimitError(
                f"the review has too many distinct words to explain with this model "
                f"(limits.MAX_EXPLAIN_OPERATIONS = {limits.MAX_EXPLAIN_OPERATIONS:,})"
            )
        return strongest(*effects, self.word_of, top, self.directions(probability[0]))

    def labels(self, probabilities: np.ndarray) -> list:
        """The predicted class of each review, by its name."""
        return [self.bundle.classes[index] for index in labels.predicted(probabilities)]

    def directions(self, probability: np.ndarray) -> tuple[str, str]:
        """What a positive and a negative effect push a review towards: with two classes,
        the second and the first; with more, the predicted class and the others."""
        classes = self.bundle.classes
        if np.ndim(probability) == 0:
            return str(classes[1]), str(classes[0])
        name = classes[int(np.argmax(probability))]
        return str(name), f"other than {name}"


def strongest(
    words: np.ndarray, effects: np.ndarray, word_of: dict[int, str], top: int,
    directions: tuple[str, str] = ("positive", "negative"),
) -> dict[str, list[tuple[str, float]]]:
    """The `top` words pushing most each way, strongest first (ties: alphabetical): under
    directions[0] those that raise the score, under directions[1] those that lower it."""
    ranked = sorted(
        ((word_of[int(i)], float(e)) for i, e in zip(words, effects, strict=True)),
        key=lambda item: (-abs(item[1]), item[0]),
    )
    return {
        directions[0]: [(w, e) for w, e in ranked if e > 0][:top],
        directions[1]: [(w, e) for w, e in ranked if e < 0][:top],
    }
