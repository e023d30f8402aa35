"""imdb-predict: score new reviews with the vocabulary and model the pipeline built.

    imdb-predict "This movie was a wonderful surprise"
    imdb-predict --file reviews.txt          # one review per line
    imdb-predict --file reviews.jsonl --json # JSON Lines with a "text" field, JSON Lines out
    cat reviews.txt | imdb-predict --explain

A review goes through the same code as in the pipeline: `text.encode` with the
vocab stage's `text.word_to_index` (num_words, skip_top and ngram_range from
params.yaml), the vectorize stage's `features.term_counts` and `features.weigh`
(with its weighting and data/features/idf.npy), and the evaluate stage's
`model.predict` on data/model/model.keras. Paths are relative to the current directory, which
must be the project root (like the stages).

Exit status: 0 when every review was scored; 1 when some input lines were skipped
(each named on stderr, the others scored); 2 on an error that stops everything
(missing model or vocabulary, unreadable file, no review at all, bad option).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np
import yaml

from pipeline import features, labels, paths, text
from pipeline.cli import UserError, run
from pipeline import files
from pipeline.params import Params, VocabParams, load_params

PROG = "imdb-predict"
# Big inputs are scored a chunk at a time, so memory stays flat however long the file is
# (on the real reviews, 8,192 per chunk is no faster than 2,048 and takes 10 MB more).
CHUNK = 2048  # reviews per chunk (a multiple of the predict batch size)
CHUNK_CHARS = 4_000_000  # and at most about this much text (IMDB reviews average 1,300 characters)
EXPLAIN_NONZEROS = 300_000  # multi-hot entries per model call for --explain's occluded copies
TOP = 5
PREVIEW = 60  # characters of the review shown in the readable output
JSONL_SUFFIXES = (".jsonl", ".ndjson")
DVC_LOCK = Path("dvc.lock")
DVC_YAML = Path("dvc.yaml")
NO_KNOWN_WORD = "none of its words is in the vocabulary, so the score says nothing about this review"


@dataclass
class Review:
    position: int  # line number in the file or stdin, or argument number
    text: str
    id: object = None  # a JSON Lines record's "id", echoed in --json output


@dataclass
class Skipped:
    position: int
    reason: str


@dataclass
class Scored:
    review: Review
    probability: np.float32
    words: int  # tokens in the review
    known_words: int  # tokens in the vocabulary
    explanation: dict[str, list[tuple[str, float]]] | None = None


# ---------------------------------------------------------------- the project's outputs


def check_project() -> None:
    """The vocabulary and the model exist where the stages write them (relative to the cwd)."""
    missing = [path for path in (paths.WORD_INDEX, paths.MODEL) if not path.is_file()]
    if missing and not DVC_YAML.is_file():
        raise UserError(
            f"{missing[0]} not found: {PROG} reads the pipeline's outputs relative to the current "
            f"directory, and {Path.cwd()} has no dvc.yaml; run it from the project root"
        )
    if missing:
        raise UserError(
            f"missing {missing[0]}: run `dvc repro` to build it, or `dvc pull` if the project has a remote"
        )
    if not zipfile.is_zipfile(paths.MODEL):  # Keras would report a damaged file as "File not found"
        raise UserError(f"cannot load {paths.MODEL}: not a .keras file (a zip archive): run `dvc repro` to rebuild it")


BUILT_WITH = {"vocab": ("num_words", "skip_top", "ngram_range"), "vectorize": ("weighting",)}


def check_built_with(params: Params, lock: Path = DVC_LOCK) -> None:
    """params.yaml's vocab and vectorize sections are the ones data/ was built with (as
    dvc.lock records them): a review encoded otherwise would not match what the model learned."""
    try:
        stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return  # no record to compare with (stages run by hand, or no dvc.lock yet)
    for section, keys in BUILT_WITH.items():
        try:
            recorded = stages[section]["params"]["params.yaml"]
        except (KeyError, TypeError):
            continue
        for key in keys:
            built = recorded.get(f"{section}.{key}") if isinstance(recorded, dict) else None
            now = getattr(getattr(params, section), key)
            if built is not None and _as_param(built) != _as_param(now):
                raise UserError(
                    f"params.yaml has {section}.{key} = {_as_param(now)} but data/ was built with "
                    f"{_as_param(built)} (dvc.lock): run `dvc repro` to rebuild it, or set it back"
                )


def _as_param(value):
    return list(value) if isinstance(value, (list, tuple)) else value


@dataclass
class Encoder:
    """A review → its Keras-convention sequence, exactly as the vocab stage encodes one."""

    index_of: dict[str, int]
    num_words: int
    ngram_range: tuple[int, int] = (1, 1)
    word_of: dict[int, str] = field(init=False)

    def __post_init__(self) -> None:
        self.word_of = {index: word for word, index in self.index_of.items()}

    @classmethod
    def load(cls, params: VocabParams) -> "Encoder":
        try:
            word_index = json.loads(paths.WORD_INDEX.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UserError(
                f"cannot read {paths.WORD_INDEX} ({one_line(error)}): run `dvc repro` to rebuild it"
            ) from None
        index_of = text.word_to_index(word_index, params.num_words, params.skip_top)
        return cls(index_of, params.num_words, params.ngram_range)

    def encode(self, review: str) -> np.ndarray:
        # as an array at once: a chunk of reviews as lists of Python ints would take 5x the memory
        return np.array(text.encode(review, self.index_of, self.ngram_range), dtype=np.int32)


def one_line(error: Exception, limit: int = 200) -> str:
    message = " ".join(str(error).split()) or type(error).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) written straight to
    file descriptor 2 is held back; it is shown only if what it accompanied fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except UserError:
            raise  # explained in one line: the chatter is no help
        except Exception:
            sys.stderr.flush()
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class Scorer:
    """data/model/model.keras, called through the same `model.predict` as the evaluate stage."""

    def __init__(self, num_words: int, weighting: str):
        self.num_words = num_words
        self.weighting = weighting
        self.idf = files.read_npy(paths.IDF) if weighting == "tfidf" else None
        with native_stderr_captured():
            from pipeline import model  # TensorFlow: imported only once the input is known to be good

            self._model = model
            try:
                self._network = model.load_model(paths.MODEL)
            except Exception as error:  # a truncated or foreign file fails in many ways
                raise UserError(
                    f"cannot load {paths.MODEL} ({one_line(error)}): run `dvc repro` to rebuild it"
                ) from None
        width = self._network.input_shape[-1]
        if width != num_words:
            raise UserError(
                f"{paths.MODEL} takes {width} inputs but params.yaml has vocab.num_words = {num_words}: "
                f"run `dvc repro` to rebuild it"
            )

    def probabilities(self, x) -> np.ndarray:
        with native_stderr_captured():
            return self._model.predict(self._network, x)

    def features(self, sequences: list[np.ndarray]):
        """The rows the vectorize stage would build for these encoded reviews."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.concatenate(sequences) if sequences else np.zeros(0, np.int32)
        return features.weigh(features.term_counts(offsets, flat, self.num_words), self.weighting, self.idf)

    def score(self, sequences: list[np.ndarray]) -> np.ndarray:
        """The probability of positive for each encoded review."""
        return self.probabilities(self.features(sequences))

    def occlusion(
        self, sequences: list[np.ndarray], probabilities: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each review, its word indices and, for each, the review's probability minus the
        probability without that word: what the word adds to the score (> 0: towards positive)."""
        effects: list[tuple[np.ndarray, np.ndarray]] = [None] * len(sequences)  # type: ignore[list-item]
        pending: list[tuple[int, np.ndarray, list[np.ndarray]]] = []  # (review, its words, occluded reviews)

        def flush() -> None:
            rows = [row for _, _, occluded in pending for row in occluded]
            without = self.probabilities(self.features(rows)) if rows else np.zeros(0, dtype=np.float32)
            start = 0
            for review, words, _ in pending:
                effects[review] = (words, probabilities[review] - without[start : start + len(words)])
                start += len(words)
            pending.clear()

        entries = 0
        for review, sequence in enumerate(sequences):
            columns = np.unique(sequence)
            words = columns[columns >= text.INDEX_FROM]  # not the start marker, not out-of-vocabulary
            occluded = [sequence[sequence != word] for word in words]  # every occurrence of the word removed
            pending.append((review, words, occluded))
            entries += len(words) * len(sequence)
            if entries >= EXPLAIN_NONZEROS:
                flush()
                entries = 0
        flush()
        return effects


def strongest(
    words: np.ndarray, effects: np.ndarray, word_of: dict[int, str], top: int
) -> dict[str, list[tuple[str, float]]]:
    """The `top` words pushing most towards each label, strongest first (ties: alphabetical)."""
    ranked = sorted(
        ((word_of[int(i)], float(e)) for i, e in zip(words, effects)), key=lambda item: (-abs(item[1]), item[0])
    )
    return {
        "positive": [(w, e) for w, e in ranked if e > 0][:top],
        "negative": [(w, e) for w, e in ranked if e < 0][:top],
    }


# ---------------------------------------------------------------- input


def from_arguments(texts: Iterable[str]) -> Iterator[Review]:
    for number, review in enumerate(texts, start=1):
        if review.strip():
            yield Review(number, review)


def from_lines(stream: IO[bytes], name: str, input_format: str) -> Iterator[Review | Skipped]:
    """One review per line, or JSON Lines with a "text" field. Lines end at \\n only (a review
    may hold any other Unicode line separator); blank lines are not reviews."""
    fmt = input_format
    if fmt == "auto" and name.lower().endswith(JSONL_SUFFIXES):
        fmt = "jsonl"
    try:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield Skipped(number, f"not UTF-8 text (byte 0x{raw[error.start]:02x} at byte {error.start + 1})")
                continue
            if number == 1:
                line = line.removeprefix("\ufeff")
            line = line.removesuffix("\n").removesuffix("\r")
            if not line.strip():
                continue
            if fmt == "auto":  # the first review decides: JSON Lines if it is a JSON object
                fmt = "jsonl" if line.lstrip().startswith("{") else "lines"
            yield Review(number, line) if fmt == "lines" else json_review(number, line)
    except OSError as error:
        raise UserError(f"cannot read {name}: {error.strerror or error}") from None


def json_review(number: int, line: str) -> Review | Skipped:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return Skipped(number, f"invalid JSON: {error.msg} (column {error.colno})")
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return Skipped(number, 'expected a JSON object with a "text" string')
    return Review(number, record["text"], record.get("id"))


def open_file(name: str) -> IO[bytes]:
    try:
        return open(name, "rb")
    except OSError as error:
        raise UserError(f"cannot read {name}: {error.strerror or error}") from None


def chunks(
    items: Iterable[Review | Skipped], size: int, source: str, skipped: list[Skipped], chars: int = CHUNK_CHARS
) -> Iterator[list[Review]]:
    """Reviews in lists of at most `size` reviews and about `chars` characters; a skipped
    line is reported on stderr as it is met."""
    chunk: list[Review] = []
    length = 0
    for item in items:
        if isinstance(item, Skipped):
            skipped.append(item)
            print(f"error: {source} line {item.position}: {item.reason}; line skipped", file=sys.stderr, flush=True)
            continue
        chunk.append(item)
        length += len(item.text)
        if len(chunk) >= size or length >= chars:
            yield chunk
            chunk, length = [], 0
    if chunk:
        yield chunk


# ---------------------------------------------------------------- output


def preview(review: str) -> str:
    flat = " ".join(review.split())
    if len(flat) > PREVIEW:
        flat = flat[: PREVIEW - 1].rstrip() + "…"
    return flat.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from argv


def as_text(result: Scored, where: str) -> str:
    label = labels.NAMES[int(labels.predicted(result.probability))]
    lines = [f"{where}{label}  {result.probability:.4f}  {preview(result.review.text)}"]
    if result.known_words == 0:
        lines.append(f"  note: {NO_KNOWN_WORD}")
    if result.explanation is not None:
        for direction in ("positive", "negative"):
            words = ", ".join(f"{w} {e:+.3f}" for w, e in result.explanation[direction]) or "(none)"
            lines.append(f"  towards {direction}: {words}")
    return "\n".join(lines)


def as_json(result: Scored, position_key: str) -> str:
    record: dict = {position_key: result.review.position}
    if result.review.id is not None:
        record["id"] = result.review.id
    record.update(
        probability=float(str(result.probability)),  # the float32 exactly, in its shortest form
        label=labels.NAMES[int(labels.predicted(result.probability))],
        words=result.words,
        known_words=result.known_words,
    )
    if result.known_words == 0:
        record["note"] = NO_KNOWN_WORD
    if result.explanation is not None:
        record["explain"] = {
            direction: [{"word": w, "effect": round(e, 6)} for w, e in words]
            for direction, words in result.explanation.items()
        }
    line = json.dumps(record, ensure_ascii=False)
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error, instead of usage + message
        raise UserError(f"{message} (see {PROG} --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog=PROG,
        description="Score movie reviews with the model the pipeline built (run from the project root).",
        epilog="Reads reviews from the arguments, from --file, or else from stdin. Exit status: 0 all "
        "scored; 1 some input lines skipped (each named on stderr); 2 error.",
    )
    parser.add_argument("reviews", nargs="*", metavar="REVIEW", help="review text; each argument is one review")
    parser.add_argument(
        "-f", "--file", metavar="PATH",
        help="read reviews from PATH (- for stdin): one per line, or JSON Lines with a \"text\" field",
    )
    parser.add_argument(
        "--input-format", choices=("auto", "lines", "jsonl"), default="auto",
        help="auto (default): JSON Lines if the name ends in .jsonl/.ndjson or the first review "
        "starts with {, else one review per line",
    )
    parser.add_argument("--json", action="store_true", help="print JSON Lines instead of readable text")
    parser.add_argument(
        "--explain", action="store_true",
        help="list the words that push the score most in each direction (occlusion: the probability "
        "minus the probability without the word)",
    )
    parser.add_argument(
        "--top", type=_positive_int, default=TOP, metavar="N", help=f"words per direction for --explain (default {TOP})"
    )
    args = parser.parse_intermixed_args(argv)
    if args.reviews and args.file is not None:
        parser.error("give reviews as arguments or with --file, not both")
    return args


def _positive_int(value: str) -> int:
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return int(value)


@dataclass
class Source:
    items: Iterable[Review | Skipped]
    name: str  # for messages: "the arguments", "stdin" or the file's path
    position_key: str  # "arg" or "line", in --json output
    interactive: bool = False  # a terminal: each review is scored as soon as it is typed

    def where(self, review: Review) -> str:
        """The prefix of a readable result: the line number, for reviews read from a file or a pipe."""
        return "" if self.position_key == "arg" or self.interactive else f"line {review.position}  "


def open_source(args: argparse.Namespace, stack: contextlib.ExitStack) -> Source:
    if args.reviews:
        return Source(from_arguments(args.reviews), "the arguments", "arg")
    if args.file in (None, "-"):
        stream, name = sys.stdin.buffer, "stdin"
    else:
        stream, name = stack.enter_context(open_file(args.file)), args.file
    return Source(from_lines(stream, name, args.input_format), name, "line", interactive=stream.isatty())


def main(argv: list[str] | None = None) -> int:
    """Scores and prints every review, a chunk at a time; returns the exit status."""
    args = parse_args(argv)
    check_project()
    all_params = load_params()
    params = all_params.vocab
    check_built_with(all_params)
    with contextlib.ExitStack() as stack:
        source = open_source(args, stack)
        encoder = Encoder.load(params)
        scorer = None
        if source.interactive:  # load the model first, so that each review typed is scored at once
            print(f"{PROG}: type a review and press Enter (Ctrl-D to end)", file=sys.stderr, flush=True)
            scorer = Scorer(params.num_words, all_params.vectorize.weighting)

        skipped: list[Skipped] = []
        scored = 0
        for chunk in chunks(source.items, 1 if source.interactive else CHUNK, source.name, skipped):
            if scorer is None:  # the model is loaded (and TensorFlow imported) once there is a review
                scorer = Scorer(params.num_words, all_params.vectorize.weighting)
            sequences = [encoder.encode(review.text) for review in chunk]
            probabilities = scorer.score(sequences)
            effects = scorer.occlusion(sequences, probabilities) if args.explain else None
            out = []
            for row, (review, sequence) in enumerate(zip(chunk, sequences)):
                result = Scored(
                    review,
                    probabilities[row],
                    words=len(sequence) - 1,
                    known_words=int(np.count_nonzero(sequence[1:] != text.OOV_CHAR)),
                )
                if effects is not None:
                    result.explanation = strongest(*effects[row], encoder.word_of, args.top)
                out.append(as_json(result, source.position_key) if args.json else as_text(result, source.where(review)))
            print("\n".join(out), flush=True)
            scored += len(chunk)

    if scored == 0:
        if skipped:
            raise UserError(f"no review could be scored: every line of {source.name} was skipped")
        raise UserError(
            f"no review to score in {source.name} (give review text as arguments, --file PATH, or on stdin)"
        )
    return 1 if skipped else 0


def cli(argv: list[str] | None = None) -> None:
    status = 0

    def call() -> None:
        nonlocal status
        status = main(argv)

    try:
        run(call)
    except BrokenPipeError:  # `imdb-predict -f big.txt | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(status)


if __name__ == "__main__":
    cli()
