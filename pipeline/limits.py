"""What a user can hand us, and how much of it: every limit in one place, and the
readers that apply them before any expensive work.

A user controls params.yaml, the bundles imdb-predict and the evaluate stage read,
and the reviews given to imdb-predict. Each has a stated limit, checked before
anything large is read, allocated or loaded (TensorFlow included); a value over it
is one line of error naming the limit and, where raising it makes sense, how.

Standard library only, so every stage and imdb-predict can import it for nothing.
"""
from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator
from typing import IO

from pipeline.cli import UserError

KB, MB = 1 << 10, 1 << 20

# The memory one stage or one imdb-predict process may take (bench checks the stages
# against it): the bounds below are derived from it.
MEMORY_BUDGET = 1 << 30

# params.yaml
MAX_PARAMS_BYTES = 1 * MB
# The largest model the budget trains: float32 weights, with a gradient and up to two
# optimizer slots (Adam's) per weight, and Keras's copy of the first layer's
# product for a batch; about a fifth of the budget each.
MAX_MODEL_PARAMETERS = MEMORY_BUDGET // (5 * 4)  # 53,687,091
# Activations a batch makes in the hidden layers (batch_size × units × layers): they,
# their gradients and the first layer's sparse product share another fifth.
MAX_BATCH_ACTIVATIONS = MEMORY_BUDGET // (5 * 4 * 3)  # 17,895,697
# vocab.num_words: the feature columns, and the terms a bundle's scorer holds in
# Python dicts (about 400 MB at this size)
MAX_NUM_WORDS = 1_000_000
MAX_HIDDEN_LAYERS = 64
MAX_UNITS = 65_536
MAX_BATCH_SIZE = 1 << 20
MAX_EPOCHS = 1_000  # validate.epochs, train.epochs: the fit draws every epoch's order up front

# The reviews a dataset of your own may have: the download stage holds about 25 bytes
# of each besides its text (more with text ids or further columns)
MAX_REVIEWS = 4_000_000

# The classes a dataset may have, and the length of a class's name: evaluate holds a
# probability per class and test review (25,000 × 1,000 float32: 100 MB), and the
# bundle's metadata every name
MAX_CLASSES = 1_000
MAX_CLASS_NAME = 100

# imdb-serve (pipeline/commands/serve.py): a request's body, the reviews in it (each at most
# MAX_REVIEW_BYTES, as for imdb-predict), the time its head and then its body may take
# to arrive, and the bytes of all the bodies being read at once (a request whose next
# piece would go over waits, within its time): with the server's own 150 MB or so and
# the parsed copies, memory stays under 300 MB however many clients connect.
MAX_REQUEST_BYTES = 2 * MB
MAX_SERVE_REVIEWS = 1_024
MAX_BODY_BYTES_IN_FLIGHT = 32 * MB
MAX_SERVE_THREADS = 64  # --threads: each scores a batch of at most MAX_SERVE_REVIEWS at a time
REQUEST_SECONDS = 10  # for a request's head, then for its body (--request-seconds)
MAX_REQUEST_SECONDS = 300
KEEP_ALIVE_SECONDS = 5  # a kept-alive connection idle between requests is closed after this

# make sweep (pipeline/commands/sweep.py): the combinations of one grid, checked before any
# work (each is a clone and a `dvc exp run` on a worker, and a git ref on the remote); the
# local cluster's worker processes; the runs of a task that raised, after its first
MAX_SWEEP_COMBINATIONS = 256
MAX_SWEEP_LOCAL_WORKERS = 64
MAX_SWEEP_RETRIES = 10

# A bundle (pipeline/inference.py)
# The file, and all its members unpacked together: the largest model's weights
# (MAX_MODEL_PARAMETERS float32, 215 MB), its vocabulary, idf and metadata.
MAX_BUNDLE_BYTES = 320 * MB
MAX_BUNDLE_DIRECTORY_BYTES = 64 * KB  # the zip's list of members: a real bundle's is under 1 kB
MAX_METADATA_BYTES = 1 * MB
MAX_VOCABULARY_BYTES = 64 * MB  # vocabulary.txt unpacked: MAX_NUM_WORDS terms of 63 bytes

# JSON from a user: a bundle's metadata.json, a JSON Lines review
MAX_JSON_DEPTH = 32

# imdb-predict's input
MAX_REVIEW_BYTES = 1 * MB  # one review (an argument, a line, a JSON Lines record); --max-review-bytes
MAX_REVIEW_BYTES_FLAG = 16 * MB  # the most --max-review-bytes may ask: one review is tokenized whole
REVIEW_BYTES_FLAG = "--max-review-bytes"
# --explain scores a review once without each of its words: its words times the
# multiplications of one copy (its distinct terms times the first layer's units, and
# every later weight): about a fifth of a second. Past this, a review is scored but
# not explained (a long real review takes 34 million with the chapter's model, 144
# million with word pairs in a vocabulary of 100,000).
MAX_EXPLAIN_OPERATIONS = 1 << 28
# Scoring holds a few float32 arrays of rows × the widest layer's units: rows are
# scored this many activations at a time (the chapter's model: 262,144 rows).
FORWARD_ACTIVATIONS = 1 << 22


class LimitError(UserError):
    """A user's input over one of the limits above."""


def longer_than(text: str, max_bytes: int, errors: str = "surrogatepass") -> bool:
    """Whether text takes more than max_bytes in UTF-8; encoded only when it might (a
    character is at most 4 bytes). errors: how lone surrogates count (surrogateescape for
    argv, whose undecodable bytes it holds as one each)."""
    return len(text) > max_bytes // 4 and len(text.encode("utf-8", errors)) > max_bytes


def size(count: int) -> str:
    """A byte count as people read it: 1 MB, 512 MB, 64 kB."""
    for unit, name in ((1 << 30, "GB"), (MB, "MB"), (KB, "kB")):
        if count >= unit and count % unit == 0:
            return f"{count // unit} {name}"
    return f"{count:,} bytes"


# ---------------------------------------------------------------- files


def open_regular(path: str | os.PathLike, what: str, max_bytes: int | None = None) -> IO[bytes]:
    """A regular file opened for reading, no larger than max_bytes.

    Opened without blocking and checked with fstat, so a FIFO, a device such as
    /dev/zero or a folder, directly or through a symlink, is refused without a read
    (and a FIFO with no writer does not hang the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not {what}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path} is {_kind(info.st_mode)}, not {what}: expected a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise LimitError(f"{path} has {info.st_size:,} bytes; {what} may have at most {size(max_bytes)}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: str | os.PathLike, what: str, max_bytes: int) -> bytes:
    """The whole of a regular file of at most max_bytes (it may not grow past it while read)."""
    with open_regular(path, what, max_bytes) as stream:
        try:
            data = stream.read(max_bytes + 1)
        except OSError as error:
            raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise LimitError(f"{path} grew past {size(max_bytes)} while it was read; {what} may have at most that")
    return data


class LineTooLong(LimitError):
    pass


def bounded_lines(stream: IO[bytes], max_bytes: int) -> Iterator[bytes]:
    """The stream's lines (each with its \\n, the last maybe without), never more than
    max_bytes of one held: a longer line raises LineTooLong with its number, after
    reading at most max_bytes + 1 of it."""
    for number in range(1, 2**63):
        line = stream.readline(max_bytes + 2)  # the review, its \n, and one byte to tell
        if not line:
            return
        content = len(line) - line.endswith(b"\n") - line.endswith(b"\r\n")
        if content > max_bytes:
            raise LineTooLong(f"line {number} is longer than {size(max_bytes)}")
        yield line


# ---------------------------------------------------------------- JSON


class JsonError(ValueError):
    """Not JSON, or JSON nested or sized beyond what a reader should take."""


def parse_json(data: str | bytes, max_depth: int = MAX_JSON_DEPTH, non_finite: bool = False):
    """json.loads, refusing arrays and objects nested deeper than max_depth with a
    JsonError instead of a RecursionError, numbers Python will not convert, and (unless
    non_finite: DVC's own output may hold a diverged run's NaN) NaN, Infinity and
    numbers beyond float's range, which JSON does not have."""
    hooks = {} if non_finite else {"parse_constant": _no_constant, "parse_float": _finite_float}
    try:
        value = json.loads(data, **hooks)
    except RecursionError:
        raise JsonError(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as error:
        raise JsonError(f"not UTF-8 (byte {error.start + 1})") from None
    except json.JSONDecodeError as error:
        where = f"column {error.colno}" if error.lineno == 1 else f"line {error.lineno}, column {error.colno}"
        raise JsonError(f"{error.msg} ({where})") from None
    except JsonError:
        raise
    except ValueError as error:  # an integer of more digits than Python converts
        raise JsonError(str(error).split(";")[0]) from None
    if _depth_exceeds(value, max_depth):
        raise JsonError(f"nested deeper than {max_depth} levels")
    return value


def _no_constant(name: str):
    raise JsonError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"the number {text[:40]} is out of range")
    return value


def _depth_exceeds(value, max_depth: int) -> bool:
    level = [value]
    for _ in range(max_depth):
        level = [
            child
            for item in level
            if isinstance(item, (list, dict))
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (list, dict))
        ]
        if not level:
            return False
    return True
