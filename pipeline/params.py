"""params.yaml parsed once into typed, validated sections.

Every check runs before a stage does any work; a bad value stops it with one
line naming the dotted key and what is allowed.
"""
from __future__ import annotations

import math
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline import limits, paths, weightings
from pipeline.cli import UserError

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "linear")
OPTIMIZERS = ("rmsprop", "adam", "sgd")
LOSSES = ("binary_crossentropy", "mse")
MAX_NGRAM = 3
INDEX_FROM = 3  # Keras's name: 0 padding, 1 start, 2 out-of-vocabulary; the word of rank r is index r + 3


class ParamsError(UserError):
    pass


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """A number that converts to a finite float: not inf, nan, or an integer of 400 digits."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _spec(allowed: str, check: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda v: v):
    return field(metadata={"allowed": allowed, "check": check, "convert": convert})


def _int_at_least(low: int):
    return _spec(f"an integer >= {low}", lambda v: _is_int(v) and v >= low)


def _int_between(low: int, high: int):
    return _spec(f"an integer from {low} to {high:,}", lambda v: _is_int(v) and low <= v <= high)


def _one_of(choices: tuple[str, ...]):
    return _spec("one of " + ", ".join(choices), lambda v: v in choices)


SOURCES = ("imdb", "table", "folders")  # one module each in pipeline/sources/
TABLE_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet")
IMDB_TARGETS = ("sentiment", "rating")
def _column():
    return _spec('a column name, or "" for none', lambda v: isinstance(v, str) and len(v) <= 1000)


@dataclass(frozen=True)
class DownloadParams:
    """Where the labeled texts come from (the first stage; pipeline/sources/)."""

    source: str = _one_of(SOURCES)
    # table: the file; folders: the folder holding <split>/<class>/*.txt; imdb: unused
    # (IMDB_ARCHIVE, or the download). A DVC dependency of the stage.
    path: str = _spec("a path inside the project", lambda v: isinstance(v, str) and 0 < len(v) <= 4096)
    format: str = _one_of(TABLE_FORMATS)  # table: auto = by the file's extension
    text_column: str = _column()
    label_column: str = _column()
    id_column: str = _column()  # "": the row's number in the file
    split_column: str = _column()  # "": a holdout of test_size is the test split
    # without a test split in the source, the stratified share held out as one
    test_size: float = _spec("a number between 0 and 1", lambda v: _is_finite(v) and 0 < v < 1, float)
    seed: int = _spec("an integer from 0 to 2**32 - 1", lambda v: _is_int(v) and 0 <= v < 2**32)
    target: str = _one_of(IMDB_TARGETS)  # imdb: sentiment (2 classes) or the star rating (8)
    # imdb: the official archive has 12,500 per folder; only a test archive changes this
    reviews_per_folder: int = _int_between(1, 2**31 - 1)

    def check(self) -> None:
        if self.source == "table" and not (self.text_column and self.label_column):
            raise ParamsError(
                "params.yaml: download.source = table needs download.text_column and download.label_column"
            )


@dataclass(frozen=True)
class VocabParams:
    num_words: int = _spec(
        f"an integer from {INDEX_FROM + 1} (indices 0-{INDEX_FROM - 1} are reserved) to {limits.MAX_NUM_WORDS:,}",
        lambda v: _is_int(v) and INDEX_FROM < v <= limits.MAX_NUM_WORDS,
    )
    skip_top: int = _int_between(0, limits.MAX_NUM_WORDS)
    ngram_range: tuple[int, int] = _spec(
        f"[min_n, max_n] with 1 <= min_n <= max_n <= {MAX_NGRAM}, e.g. [1, 2] for words and word pairs",
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(n) for n in v) and 1 <= v[0] <= v[1] <= MAX_NGRAM,
        tuple,
    )

    def check(self) -> None:
        kept_ranks = self.num_words - INDEX_FROM - 1
        if self.skip_top >= kept_ranks:
            raise ParamsError(
                f"params.yaml: vocab.skip_top = {self.skip_top} would leave no word in the "
                f"vocabulary; expected an integer from 0 to {kept_ranks - 1} for "
                f"vocab.num_words = {self.num_words}"
            )


@dataclass(frozen=True)
class VectorizeParams:
    weighting: str = _one_of(tuple(weightings.WEIGHTINGS))


@dataclass(frozen=True)
class ModelParams:
    hidden_layers: int = _int_between(0, limits.MAX_HIDDEN_LAYERS)
    units: int = _int_between(1, limits.MAX_UNITS)
    activation: str = _one_of(ACTIVATIONS)
    optimizer: str = _one_of(OPTIMIZERS)
    learning_rate: float = _spec("a finite number > 0", lambda v: _is_finite(v) and v > 0, float)
    loss: str = _one_of(LOSSES)
    batch_size: int = _int_between(1, limits.MAX_BATCH_SIZE)
    seed: int = _spec("an integer from 0 to 2**32 - 1", lambda v: _is_int(v) and 0 <= v < 2**32)
    dropout: float = _spec("a number from 0 to less than 1", lambda v: _is_finite(v) and 0 <= v < 1, float)
    l2: float = _spec("a finite number >= 0", lambda v: _is_finite(v) and v >= 0, float)
    nb_scaling: bool = _spec("true or false", lambda v: isinstance(v, bool))


@dataclass(frozen=True)
class ValidateParams:
    val_size: int = _int_between(1, 2**31 - 1)
    epochs: int = _int_between(1, limits.MAX_EPOCHS)


@dataclass(frozen=True)
class TrainParams:
    epochs: int | str = _spec(
        f"an integer from 1 to {limits.MAX_EPOCHS:,}, or best (the epoch with the lowest validation loss)",
        lambda v: (_is_int(v) and 1 <= v <= limits.MAX_EPOCHS) or v == "best",
    )


@dataclass(frozen=True)
class Params:
    download: DownloadParams
    vocab: VocabParams
    vectorize: VectorizeParams
    model: ModelParams
    validate: ValidateParams
    train: TrainParams


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxtuple, _SHOWN.maxset = 3, 4, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 60, 60, 40


def shown(value: Any, limit: int = 100) -> str:
    """A user's value for a message: its repr, cut short at every level, so a value of
    gigabytes (a YAML alias bomb) costs nothing to show, and at `limit` characters."""
    text = _SHOWN.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _suggestion(key: str, valid: list[str]) -> str:
    import difflib  # only once a key is wrong

    close = difflib.get_close_matches(key, valid, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _check_keys(where: str, raw: dict, valid: list[str]) -> None:
    for key in raw:
        if key not in valid:
            name = key if isinstance(key, str) and len(key) <= 60 else shown(key)
            raise ParamsError(
                f"params.yaml: unknown key {where}{name}{_suggestion(str(name), valid)}; "
                f"allowed: {', '.join(valid)}"
            )
    for key in valid:
        if key not in raw:
            raise ParamsError(f"params.yaml: missing key {where}{key}")


def parse_section(name: str, cls: type, raw: Any):
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: {name} must be a mapping of keys to values, got {shown(raw)}")
    specs = fields(cls)
    _check_keys(f"{name}.", raw, [spec.name for spec in specs])
    values = {}
    for spec in specs:
        value = raw[spec.name]
        if not spec.metadata["check"](value):
            raise ParamsError(
                f"params.yaml: {name}.{spec.name} = {shown(value)} is not allowed; "
                f"expected {spec.metadata['allowed']}"
            )
        values[spec.name] = spec.metadata["convert"](value)
    section = cls(**values)
    if hasattr(section, "check"):
        section.check()
    return section


SECTIONS = {
    "download": DownloadParams,
    "vocab": VocabParams,
    "vectorize": VectorizeParams,
    "model": ModelParams,
    "validate": ValidateParams,
    "train": TrainParams,
}


def parse_params(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml: expected a mapping of sections (" + ", ".join(SECTIONS) + ")")
    _check_keys("", raw, list(SECTIONS))
    params = Params(**{name: parse_section(name, cls, raw[name]) for name, cls in SECTIONS.items()})
    check_model_size(params.vocab.num_words, params.model)
    return params


def model_parameters(num_words: int, model: ModelParams) -> int:
    """The weights and biases of the model these params build."""
    if model.hidden_layers == 0:
        return num_words + 1
    hidden = (num_words + 1) * model.units + (model.hidden_layers - 1) * (model.units + 1) * model.units
    return hidden + model.units + 1


def check_model_size(num_words: int, model: ModelParams) -> None:
    """Refuses, before TensorFlow loads, a model larger than a stage's memory budget."""
    parameters = model_parameters(num_words, model)
    if parameters > limits.MAX_MODEL_PARAMETERS:
        raise ParamsError(
            f"params.yaml: vocab.num_words = {num_words:,} with model.hidden_layers = {model.hidden_layers} "
            f"of model.units = {model.units:,} makes a model of {parameters:,} weights; at most "
            f"{limits.MAX_MODEL_PARAMETERS:,} train within the {limits.size(limits.MEMORY_BUDGET)} a stage may "
            "use (pipeline/limits.py): lower model.units or vocab.num_words"
        )
    activations = model.batch_size * model.units * max(model.hidden_layers, 1)
    if activations > limits.MAX_BATCH_ACTIVATIONS:
        raise ParamsError(
            f"params.yaml: model.batch_size = {model.batch_size:,} with model.hidden_layers = "
            f"{model.hidden_layers} of model.units = {model.units:,} makes {activations:,} activations per "
            f"batch; at most {limits.MAX_BATCH_ACTIVATIONS:,} fit the {limits.size(limits.MEMORY_BUDGET)} a "
            "stage may use (pipeline/limits.py): lower model.batch_size or model.units"
        )


def load_params(path: Path = paths.PARAMS) -> Params:
    return parse_params(read_raw(path))


def read_raw(path: Path = paths.PARAMS) -> Any:
    """params.yaml as YAML gives it, unchecked; a file that is none is one line."""
    return parse_raw(read_bytes(path), path)


def read_bytes(path: Path = paths.PARAMS) -> bytes:
    """A params file's bytes: a regular file of at most limits.MAX_PARAMS_BYTES."""
    return limits.read_regular(path, "a params file", limits.MAX_PARAMS_BYTES)


def parse_raw(data: bytes, path: Path = paths.PARAMS) -> Any:
    """The bytes of a params file as YAML gives them, unchecked."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParamsError(f"{path} is not UTF-8 text (byte {error.start + 1})") from None
    import yaml  # here: imdb-predict parses params.yaml only when it is not what evaluate found

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ParamsError(f"{path} is nested too deeply to be params") from None
    except (ValueError, OverflowError, TypeError) as error:  # a scalar YAML cannot build: 2001-13-45, !!int 'x'
        raise ParamsError(f"{path} has a value that cannot be read ({shown(str(error))})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{where}") from None
