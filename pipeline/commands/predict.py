"""imdb-predict: score new reviews with the model the pipeline built.

    imdb-predict "This movie was a wonderful surprise"
    imdb-predict --file reviews.txt          # one review per line
    imdb-predict --file reviews.jsonl --json # JSON Lines with a "text" field, JSON Lines out
    cat reviews.txt | imdb-predict --explain
    imdb-predict --model imdb-sentiment.npz "…"   # any bundle, from any directory

The model is an inference bundle (pipeline/inference.py), scored without
TensorFlow through exactly the pipeline's tokenizer, encoding, weighting and
forward pass. By default it is the project's data/bundle/imdb-sentiment.npz, the
project being the nearest directory with a dvc.yaml, here or above (as git and dvc
find theirs); --model PATH names any bundle instead. This module is the command
line only: reading reviews, printing results, exit statuses.

Exit status: 0 when every review was scored; 1 when some input lines were skipped
(each named on stderr, the others scored); 2 on an error that stops everything
(missing or damaged model, unreadable file, no review at all, bad option).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from pipeline import inference, limits, paths, text
from pipeline.cli import UserError, for_terminal, run, say
from pipeline.inference import Bundle, Scorer, strongest
from pipeline.params import parse_raw, read_bytes
from pipeline.ragged import row_offsets

PROG = "imdb-predict"
# Big inputs are scored a chunk at a time, so memory stays flat however long the file is.
CHUNK_REVIEWS = 2048  # reviews per chunk
CHUNK_CHARS = 4_000_000  # and at most about this much text (IMDB reviews average 1,300 characters)
TOP = 5
PREVIEW = 60  # characters of the review shown in the readable output
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PROJECT_MARKER = "dvc.yaml"
TOO_LARGE_TO_EXPLAIN = (
    f"not explained: scoring it once without each of its words would take more than "
    f"{limits.MAX_EXPLAIN_OPERATIONS:,} multiplications with this model (pipeline/limits.py)"
)
NO_KNOWN_WORD = "none of its words is in the vocabulary, so the score says nothing about this review"


@dataclass
class InputReview:
    position: int  # line number in the file or stdin, or argument number
    text: str
    id: object = None  # a JSON Lines record's "id", echoed in --json output


@dataclass
class Skipped:
    position: int
    reason: str


@dataclass
class Scored:
    review: InputReview
    label: object  # the predicted class's name
    probability: np.float32  # two classes: the second's probability (the chapter's); more: the predicted one's
    words: int  # tokens in the review
    known_words: int  # tokens in the vocabulary
    explanation: dict[str, list[tuple[str, float]]] | None = None
    top: list[tuple[object, np.float32]] | None = None  # more than two classes: the most probable, in order
    not_explained: str | None = None  # why --explain gave no explanation


# ---------------------------------------------------------------- the model


def project_root(start: Path) -> Path | None:
    """The nearest directory with a dvc.yaml: start or one of its parents."""
    return next((folder for folder in (start, *start.parents) if (folder / PROJECT_MARKER).is_file()), None)


def load_scorer(model: str | None) -> Scorer:
    if model is not None:
        return Scorer.load(model)
    root = project_root(Path.cwd())
    if root is None:
        raise UserError(
            f"no model to score with: {Path.cwd()} is not inside the project (no {PROJECT_MARKER} here or "
            f"above); run {PROG} in the project, or give --model PATH (a bundle such as {paths.BUNDLE})"
        )
    if not (root / paths.BUNDLE).is_file():
        raise UserError(
            f"missing {paths.BUNDLE}: run `dvc repro` to build it, or `dvc pull` if the project has a remote"
        )
    scorer = Scorer.load(os.path.relpath(root / paths.BUNDLE))  # named in messages as the user would type it
    warning = params_warning(scorer.bundle, root)
    if warning:
        say(f"warning: {warning}")
    return scorer


def params_warning(bundle: Bundle, root: Path) -> str | None:
    """Whether params.yaml describes the project's model. The bundle carries the params
    it was built with, and scores by them whatever params.yaml says (even when it does
    not validate, as after a refused `dvc exp run -S`), so a difference is a warning:
    the user changed params.yaml and has not run `dvc repro` yet.

    evaluate records the digest of the params.yaml it found the bundle built with;
    while params.yaml has those bytes, it is not parsed again (YAML's import alone is
    a sixth of scoring one review)."""
    where = Path(os.path.relpath(root / paths.PARAMS))  # named as the user would type it
    try:
        data = read_bytes(where)
        if inference.params_digest(data) == _recorded_digest(root / paths.BUNDLE_PARAMS_DIGEST):
            return None
        raw = parse_raw(data, where)
    except UserError as error:
        return f"{error}; {paths.BUNDLE} scores with the params it was built with"
    differences = inference.params_differences(bundle, raw)
    if not differences:
        return None
    listed = "; ".join(differences[:MAX_SHOWN_DIFFERENCES])
    listed += "; …" if len(differences) > MAX_SHOWN_DIFFERENCES else ""
    return (
        f"{where} is not what {paths.BUNDLE} was built with: {listed}; it scores as built "
        "(`dvc repro` rebuilds it from params.yaml)"
    )


def _recorded_digest(path: Path) -> str | None:
    try:
        return limits.read_regular(path, "a digest", 1024).decode("ascii", "replace").strip() or None
    except (UserError, OSError):
        return None  # none recorded: params.yaml is parsed and compared


MAX_SHOWN_DIFFERENCES = 4


# ---------------------------------------------------------------- input


def from_arguments(texts: Iterable[str], max_bytes: int = limits.MAX_REVIEW_BYTES) -> list[InputReview]:
    """Every argument is checked before any is scored."""
    reviews = []
    for number, review in enumerate(texts, start=1):
        if limits.longer_than(review, max_bytes, "surrogateescape"):
            raise limits.LimitError(f"argument {number} {_too_long(max_bytes)}")
        if review.strip():
            reviews.append(InputReview(number, review))
    return reviews


def _too_long(max_bytes: int) -> str:
    return (
        f"is longer than {limits.size(max_bytes)}, the longest review allowed "
        f"({limits.REVIEW_BYTES_FLAG} N raises it)"
    )


def from_lines(
    stream: IO[bytes], name: str, input_format: str, max_bytes: int = limits.MAX_REVIEW_BYTES
) -> Iterator[InputReview | Skipped]:
    """One review per line, or JSON Lines with a "text" field. Lines end at \\n only (a review
    may hold any other Unicode line separator); blank lines are not reviews. No more than
    max_bytes of a line is read into memory: a longer line stops the input with a LimitError."""
    fmt = input_format
    if fmt == "auto" and name.lower().endswith(JSONL_SUFFIXES):
        fmt = "jsonl"
    number = 0
    try:
        for number, raw in enumerate(limits.bounded_lines(stream, max_bytes), start=1):
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
            yield InputReview(number, line) if fmt == "lines" else json_review(number, line)
    except limits.LineTooLong:
        raise limits.LimitError(f"{name} line {number + 1} {_too_long(max_bytes)}") from None
    except OSError as error:
        raise UserError(f"cannot read {name}: {error.strerror or error}") from None


def json_review(number: int, line: str) -> InputReview | Skipped:
    try:
        record = limits.parse_json(line)
    except limits.JsonError as error:
        return Skipped(number, f"invalid JSON: {error}")
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return Skipped(number, 'expected a JSON object with a "text" string')
    return InputReview(number, record["text"], record.get("id"))


def open_file(name: str) -> IO[bytes]:
    try:
        return limits.open_regular(name, "a file of reviews")
    except UserError as error:
        if " is a FIFO, " in str(error) or " device, " in str(error):  # their text can come on stdin
            raise UserError(f"{error} (or - to read stdin: {PROG} < {name})") from None
        raise


def chunks(
    items: Iterable[InputReview | Skipped], size: int, source: str, skipped: Counter, chars: int = CHUNK_CHARS
) -> Iterator[list[InputReview]]:
    """Reviews in lists of at most `size` reviews and about `chars` characters; a skipped
    line is reported on stderr as it is met. Input over a limit ends the reviews: those
    read before it are still handed on, then the error is raised."""
    chunk: list[InputReview] = []
    length = 0
    over_limit = None
    try:
        for item in items:
            if isinstance(item, Skipped):
                skipped["lines"] += 1  # counted, not kept: an input may have millions
                say(f"error: {source} line {item.position}: {item.reason}; line skipped")
                continue
            chunk.append(item)
            length += len(item.text)
            if len(chunk) >= size or length >= chars:
                yield chunk
                chunk, length = [], 0
    except limits.LimitError as error:
        over_limit = error
    if chunk:
        yield chunk
    if over_limit is not None:
        raise over_limit


# ---------------------------------------------------------------- output


def preview(review: str) -> str:
    flat = _collapsed_start(review, PREVIEW)
    if len(flat) > PREVIEW:
        flat = flat[: PREVIEW - 1].rstrip() + "…"
    return flat.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from argv


def _collapsed_start(review: str, characters: int) -> str:
    """The review with its whitespace runs made single spaces, at least its first
    `characters + 1` characters of that (all of it if shorter): reviews run to thousands of
    characters, and splitting each whole took a third of scoring a file."""
    length = 4 * characters
    while True:
        flat = " ".join(review[:length].split())
        if len(flat) > characters or length >= len(review):
            return flat
        length *= 4


def as_text(result: Scored, where: str) -> str:
    lines = [f"{where}{result.label}  {result.probability:.4f}  {preview(result.review.text)}"]
    if result.top is not None:
        lines.append("  top: " + ", ".join(f"{name} {p:.4f}" for name, p in result.top))
    if result.known_words == 0:
        lines.append(f"  note: {NO_KNOWN_WORD}")
    if result.explanation is not None:
        for direction in result.explanation:
            words = ", ".join(f"{w} {e:+.3f}" for w, e in result.explanation[direction]) or "(none)"
            lines.append(f"  towards {direction}: {words}")
    if result.not_explained is not None:
        lines.append(f"  note: {result.not_explained}")
    return "\n".join(lines)


def as_json(result: Scored, position_key: str) -> str:
    record: dict = {position_key: result.review.position}
    if result.review.id is not None:
        record["id"] = result.review.id
    record.update(
        probability=float(str(result.probability)),  # the float32 exactly, in its shortest form
        label=result.label,
        words=result.words,
        known_words=result.known_words,
    )
    if result.top is not None:
        record["probabilities"] = {str(name): float(str(p)) for name, p in result.top}
    if result.known_words == 0:
        record["note"] = NO_KNOWN_WORD
    if result.explanation is not None:
        record["explain"] = {
            direction: [{"word": w, "effect": round(e, 6)} for w, e in words]
            for direction, words in result.explanation.items()
        }
    if result.not_explained is not None:
        record["explain_note"] = result.not_explained
    line = json.dumps(record, ensure_ascii=False)
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error, instead of usage + message
        raise UserError(f"{message} (see {PROG} --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog=PROG,
        description="Score movie reviews with the model the pipeline built (run it inside the project, "
        "or give --model).",
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
    parser.add_argument(
        "-m", "--model", metavar="PATH",
        help=f"the inference bundle to score with (default: the project's {paths.BUNDLE})",
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
    parser.add_argument(
        "--top-k", type=_positive_int, metavar="K",
        help="with more than two classes: the K most probable classes and their probabilities "
        "(default: in --json all of them, in text none)",
    )
    parser.add_argument(
        limits.REVIEW_BYTES_FLAG, type=_review_bytes, default=limits.MAX_REVIEW_BYTES, metavar="N",
        dest="max_review_bytes",
        help=f"the longest review (argument or input line) read, in bytes (default {limits.MAX_REVIEW_BYTES:,}); "
        "a longer one stops the input",
    )
    args = parser.parse_intermixed_args(argv)
    if args.reviews and args.file is not None:
        parser.error("give reviews as arguments or with --file, not both")
    return args


def _review_bytes(value: str) -> int:
    number = _positive_int(value)
    if number > limits.MAX_REVIEW_BYTES_FLAG:
        raise argparse.ArgumentTypeError(
            f"at most {limits.MAX_REVIEW_BYTES_FLAG:,} ({limits.size(limits.MAX_REVIEW_BYTES_FLAG)}: a review is "
            f"tokenized whole), got {value[:40]}"
        )
    return number


def _positive_int(value: str) -> int:
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value[:40]!r}")
    return int(value)


@dataclass
class Source:
    items: Iterable[InputReview | Skipped]
    name: str  # for messages: "the arguments", "stdin" or the file's path
    position_key: str  # "arg" or "line", in --json output
    interactive: bool = False  # a terminal: each review is scored as soon as it is typed

    def where(self, review: InputReview) -> str:
        """The prefix of a readable result: the line number, for reviews read from a file or a pipe."""
        return "" if self.position_key == "arg" or self.interactive else f"line {review.position}  "


def open_source(args: argparse.Namespace, stack: contextlib.ExitStack) -> Source:
    if args.reviews:
        return Source(from_arguments(args.reviews, args.max_review_bytes), "the arguments", "arg")
    if args.file in (None, "-"):
        stream, name = sys.stdin.buffer, "stdin"
    else:
        stream, name = stack.enter_context(open_file(args.file)), args.file
    items = from_lines(stream, name, args.input_format, args.max_review_bytes)
    return Source(items, name, "line", interactive=stream.isatty())


def main(argv: list[str] | None = None) -> int:
    """Scores and prints every review, a chunk at a time; returns the exit status."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        source = open_source(args, stack)  # a file that is none is refused before the model is read
        scorer = load_scorer(args.model)
        if source.interactive:
            print(f"{PROG}: type a review and press Enter (Ctrl-D to end)", file=sys.stderr, flush=True)
        skipped: Counter = Counter()
        scored = 0
        reviews = chunks(source.items, 1 if source.interactive else CHUNK_REVIEWS, source.name, skipped)
        printable = for_terminal if sys.stdout.isatty() else str
        for chunk, lines in scored_chunks(scorer, reviews, args, source):
            print(printable("\n".join(lines)), flush=True)
            scored += len(chunk)

    if scored == 0:
        if skipped:
            raise UserError(f"no review could be scored: every line of {source.name} was skipped")
        raise UserError(
            f"no review to score in {source.name} (give review text as arguments, --file PATH, or on stdin)"
        )
    return 1 if skipped else 0


def scored_chunks(
    scorer: Scorer, reviews: Iterator[list[InputReview]], args: argparse.Namespace, source: Source
) -> Iterator[tuple[list[InputReview], list[str]]]:
    """Each chunk with its output lines, in order. An input of more than one chunk is
    scored on every core (encoding and the forward pass are most of the work), with at most two
    chunks per core in flight, so memory stays flat however long the input is."""
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    one_process = source.interactive or workers < 2 or not hasattr(os, "fork")
    # a second chunk is waited for only when it may be worth a pool (never at a terminal)
    started: list[list[InputReview]] = []
    over_limit = None  # input over a limit: what was read before it is scored, then it is raised
    try:
        while not one_process and len(started) < 2 and (chunk := next(reviews, None)):
            started.append(chunk)
    except limits.LimitError as error:
        over_limit = error
    if one_process or len(started) < 2:
        for chunk in itertools.chain(started, () if over_limit else reviews):
            yield chunk, score_chunk(scorer, chunk, args, source)
    else:
        yield from _scored_in_pool(scorer, itertools.chain(started, reviews), args, source, workers)
    if over_limit is not None:
        raise over_limit


def _scored_in_pool(
    scorer: Scorer, reviews: Iterator[list[InputReview]], args: argparse.Namespace, source: Source, workers: int
) -> Iterator[tuple[list[InputReview], list[str]]]:
    import multiprocessing  # here: one review never needs it

    global _FORKED  # what each worker inherits by fork: nothing of it is pickled
    _FORKED = (scorer, args, source)
    pending: collections.deque = collections.deque()
    over_limit = None
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        try:
            for chunk in reviews:
                pending.append((chunk, pool.apply_async(_score_forked, (chunk,))))
                if len(pending) >= 2 * workers:
                    done, result = pending.popleft()
                    yield done, result.get()
        except limits.LimitError as error:
            over_limit = error
        while pending:
            done, result = pending.popleft()
            yield done, result.get()
    if over_limit is not None:
        raise over_limit


_FORKED: tuple | None = None


def _score_forked(chunk: list[InputReview]) -> list[str]:
    scorer, args, source = _FORKED
    return score_chunk(scorer, chunk, args, source)


def score_chunk(scorer: Scorer, chunk: list[InputReview], args: argparse.Namespace, source: Source) -> list[str]:
    sequences = scorer.encode_many([review.text for review in chunk])
    probabilities = scorer.probabilities(scorer.features(sequences))
    effects = scorer.occlusion(sequences, probabilities) if args.explain else None
    names = scorer.labels(probabilities)
    words, known_words = _word_counts(sequences)
    out = []
    for row, review in enumerate(chunk):
        probability, top = _probability_and_top(scorer, probabilities[row], args.top_k, args.json or bool(args.top_k))
        result = Scored(review, names[row], probability, words=words[row], known_words=known_words[row], top=top)
        if effects is not None and effects[row] is None:
            result.not_explained = TOO_LARGE_TO_EXPLAIN
        elif effects is not None:
            directions = scorer.directions(probabilities[row])
            result.explanation = strongest(*effects[row], scorer.word_of, args.top, directions)
        out.append(as_json(result, source.position_key) if args.json else as_text(result, source.where(review)))
    return out


def _word_counts(sequences: list[np.ndarray]) -> tuple[list[int], list[int]]:
    """The tokens of each encoded review, and those in the vocabulary (the start marker,
    first in every sequence, is neither), counted for the whole chunk at once."""
    if not sequences:
        return [], []
    lengths = np.fromiter(map(len, sequences), np.int64, len(sequences))
    in_vocabulary = (np.concatenate(sequences) != text.OOV_CHAR).astype(np.int64)
    known = np.add.reduceat(in_vocabulary, row_offsets(lengths)[:-1])
    return (lengths - 1).tolist(), (known - 1).tolist()


def _probability_and_top(scorer: Scorer, probability: np.ndarray, top_k: int | None, listed: bool) -> tuple:
    """Two classes: the second's probability, as the chapter reports it. More: the predicted
    class's, and when listed the top_k most probable classes (all of them when None)."""
    if np.ndim(probability) == 0:
        return probability, None
    order = np.argsort(-probability, kind="stable")[: top_k or len(probability)]
    top = [(scorer.bundle.classes[i], probability[i]) for i in order] if listed else None
    return probability[order[0]], top


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
