"""Stage download: the labeled texts of the source params.yaml names → data/raw/{train,test}.parquet.

The source (pipeline/sources/: imdb, the chapter's reviews, by default; a table; or
folders per class) hands on its reviews; this stage writes them the same way for
every source, so everything after it knows only id, label and text:

  - columns id, label, text, then a table's further columns (text, numbers or
    booleans); ids and labels are integers where every one is, text otherwise;
  - each split ordered by id, then label (a stable sort: nothing depends on the order
    the source read them in);
  - without a test split in the source, download.test_size of each class is held out
    as the test split, drawn with download.seed.

Memory holds about 25 bytes per review, not its text: each text goes to one temporary
file as it arrives, and each split is written from there in order, a row group at a
time (at most limits.MAX_REVIEWS reviews).
"""
from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import files, limits, paths, sources
from pipeline.cli import UserError, run
from pipeline.params import DownloadParams, load_params

# Text per row group of the output. The real splits (about 33 MB each) fit in one,
# so their files are what writing each split as one table gives; larger datasets
# are written a group at a time instead of being held whole.
TEXT_BYTES_PER_GROUP = 64 << 20
SPOOL_WRITE_BYTES = 1 << 20  # texts gathered before one write to the spool
TRAIN, TEST, UNSPLIT = 0, 1, 2
_INT32 = np.iinfo(np.int32)


class Spool:
    """Reviews parked as they arrive, in about 25 bytes each besides their text: the texts,
    UTF-8, in a temporary file; split, place, size, label (as a code) and id (while every
    id is an integer) in compact arrays; any further columns as Arrow arrays."""

    def __init__(self, file):
        self.file = file
        self.limit = limits.MAX_REVIEWS
        self.size = 0
        self.pending: list[bytes] = []  # texts not yet written: one write per SPOOL_WRITE_BYTES
        self.pending_bytes = 0
        self.splits = array("b")
        self.starts = array("q")
        self.sizes = array("i")  # a text is at most limits.MAX_REVIEW_BYTES
        self.ids: array | list = array("q")  # a list of str once an id is text
        self.label_codes = array("i")
        self.label_of: dict = {}  # label → its code, in the order first met
        self.extras: dict[str, _Column] = {}

    def __len__(self) -> int:
        return len(self.splits)

    def add(self, review: sources.Review) -> None:
        row = len(self)
        if row >= self.limit:
            raise UserError(
                f"more than {self.limit:,} reviews: a dataset may have at most that many (limits.MAX_REVIEWS)"
            )
        data = review.text.encode("utf-8", "surrogatepass")
        if len(data) > limits.MAX_REVIEW_BYTES:
            raise UserError(
                f"review {str(review.id)[:40]!r} ({review.split or 'no split'}) has {len(data):,} bytes of text; "
                f"a review may have at most {limits.size(limits.MAX_REVIEW_BYTES)}"
            )
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes >= SPOOL_WRITE_BYTES:
            self.flush()
        self.splits.append({"train": TRAIN, "test": TEST, None: UNSPLIT}[review.split])
        self.starts.append(self.size)
        self.sizes.append(len(data))
        self.size += len(data)
        self._add_id(row if review.id is None else review.id)
        key = (type(review.label), review.label)  # 1 and "1" are two labels (check_labels refuses the mix)
        self.label_codes.append(self.label_of.setdefault(key, len(self.label_of)))
        for name, value in review.extras.items():
            if name not in self.extras:  # a column first seen here: None for the rows before
                self.extras[name] = _Column(name, row)
            self.extras[name].append(value)
        if len(review.extras) < len(self.extras):
            for column in self.extras.values():
                column.pad(row + 1)

    def flush(self) -> None:
        with files.temporary_folder_errors_named():
            self.file.writelines(self.pending)
            self.file.flush()
        self.pending.clear()
        self.pending_bytes = 0

    def _add_id(self, review_id) -> None:
        if isinstance(self.ids, array) and not isinstance(review_id, int):
            self.ids = [str(value) for value in self.ids]  # ids that mix integers and text are text
        self.ids.append(review_id if isinstance(self.ids, array) else str(review_id))

    def labels(self) -> list:
        """The distinct labels, in the order of their codes."""
        return [label for _, label in self.label_of]

    def split_rows(self, splits: np.ndarray) -> dict[str, np.ndarray]:
        """The rows of each split, in the order they are written: by id, then label."""
        order = np.lexsort((_ranks(self.labels())[np.frombuffer(self.label_codes, np.int32)], self.id_keys()))
        return {name: order[splits[order] == code] for code, name in enumerate(sources.SPLITS)}

    def id_keys(self) -> np.ndarray:
        if isinstance(self.ids, array):
            return np.frombuffer(self.ids, np.int64)
        distinct = sorted(set(self.ids))
        rank = {value: number for number, value in enumerate(distinct)}
        return np.fromiter((rank[value] for value in self.ids), np.int64, count=len(self.ids))

    def check_unique(self, splits: np.ndarray, source: str) -> None:
        """No two reviews of one split share an id and a label: a repeated review, or ids
        that collide (01.txt and 1.txt, 1 and "1")."""
        keys = np.stack([splits.astype(np.int64), self.id_keys(), np.frombuffer(self.label_codes, np.int32)])
        order = np.lexsort(keys[::-1])
        same = np.all(keys[:, order[1:]] == keys[:, order[:-1]], axis=0)
        if same.any():
            row = int(order[1:][np.argmax(same)])
            label = self.labels()[self.label_codes[row]]
            raise UserError(
                f"{source}: two reviews have the id {str(self.ids[row])[:40]!r} and the label {str(label)[:40]!r}: "
                "expected each review once, with an id of its own"
            )

    def tables(self, rows: np.ndarray, schema: pa.Schema, extras: dict[str, pa.Array]) -> Iterator[pa.Table]:
        """These rows, a row group at a time: consecutive rows holding at most
        TEXT_BYTES_PER_GROUP bytes of text (or one review, if larger)."""
        starts, sizes = np.frombuffer(self.starts, np.int64), np.frombuffer(self.sizes, np.int32)
        labels = pa.array(self.labels(), schema.field("label").type)
        codes = np.frombuffer(self.label_codes, np.int32)
        ids = np.frombuffer(self.ids, np.int64) if isinstance(self.ids, array) else None
        self.flush()
        for group in row_groups(sizes[rows], TEXT_BYTES_PER_GROUP):
            picked = rows[group]
            columns = {
                "id": pa.array(ids[picked] if ids is not None else [self.ids[row] for row in picked],
                               schema.field("id").type),
                "label": labels.take(pa.array(codes[picked])),
                "text": self._texts(starts[picked], sizes[picked]),
            }
            for name, values in extras.items():
                columns[name] = values.take(pa.array(picked))
            yield pa.table(columns, schema=schema)

    def _texts(self, starts: np.ndarray, sizes: np.ndarray) -> pa.StringArray:
        """The texts at those places, read straight into one Arrow buffer."""
        offsets = np.zeros(len(sizes) + 1, np.int32)  # a group is far below 2 GB
        np.cumsum(sizes, out=offsets[1:])
        data = bytearray(int(offsets[-1]))
        view = memoryview(data)
        descriptor = self.file.fileno()
        with files.temporary_folder_errors_named():
            for start, size, offset in zip(starts.tolist(), sizes.tolist(), offsets[:-1].tolist(), strict=True):
                os.preadv(descriptor, [view[offset : offset + size]], start)  # one call, straight into place
        return pa.StringArray.from_buffers(len(sizes), pa.py_buffer(offsets), pa.py_buffer(data))

    def schema(self) -> tuple[pa.Schema, dict[str, pa.Array]]:
        """id and label as integers where every one is one (int32 ids where they fit), text
        otherwise; further columns as Arrow builds them from their values. With them, those
        columns whole."""
        if isinstance(self.ids, array):
            ids = np.frombuffer(self.ids, np.int64)
            fits = not len(ids) or (_INT32.min <= ids.min() and ids.max() <= _INT32.max)
            id_type = pa.int32() if fits else pa.int64()
        else:
            id_type = pa.string()
        label_type = pa.int64() if all(type(label) is int for label in self.labels()) else pa.string()
        extras = {name: column.array() for name, column in self.extras.items()}
        fields = [pa.field("id", id_type), pa.field("label", label_type), pa.field("text", pa.string())]
        fields += [pa.field(name, values.type) for name, values in extras.items()]
        return pa.schema(fields), extras


class _Column:
    """A further column's values, built into Arrow arrays 65,536 at a time."""

    _BLOCK = 1 << 16

    def __init__(self, name: str, rows_before: int):
        self.name = name
        self.chunks: list[pa.Array] = []
        self.values: list = []
        self.length = 0
        self.pad(rows_before)

    def append(self, value) -> None:
        self.values.append(value)
        self.length += 1
        if len(self.values) >= self._BLOCK:
            self._flush()

    def pad(self, rows: int) -> None:
        while self.length < rows:
            self.append(None)

    def _flush(self) -> None:
        try:
            self.chunks.append(pa.array(self.values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            raise UserError(f"the column {self.name!r} cannot be stored: {str(error)[:200]}") from None
        self.values = []

    def array(self) -> pa.Array:
        self._flush()
        kinds = {chunk.type for chunk in self.chunks if chunk.type != pa.null()}
        if len(kinds) > 1:
            raise UserError(
                f"the column {self.name!r} mixes {', '.join(sorted(map(str, kinds)))}: expected one kind of value"
            )
        kind = kinds.pop() if kinds else pa.null()
        return pa.concat_arrays([chunk.cast(kind) for chunk in self.chunks]) if self.chunks else pa.array([])


def _ranks(values: list) -> np.ndarray:
    """Each value's rank among the values: numbers by value, text by code point."""
    order = sorted(range(len(values)), key=lambda i: (isinstance(values[i], str), values[i]))
    ranks = np.empty(len(values), np.int64)
    ranks[order] = np.arange(len(values))
    return ranks


def check_labels(labels: list, describe: str) -> None:
    """Every label an integer or every one a string: a class is not both 1 and "1"."""
    kinds = {type(label) for label in labels}
    if kinds <= {int} or kinds <= {str}:
        return
    first_int = next(label for label in labels if type(label) is int)
    first_str = next(label for label in labels if type(label) is str)
    raise UserError(
        f"{describe}: the labels mix integers ({first_int!r}) and text ({first_str[:40]!r}); expected one kind"
    )


def holdout(codes: np.ndarray, ranks: np.ndarray, unsplit: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """The unsplit rows held out as the test split: test_size of each class (rounded, at
    least one, and leaving each class at least one training review), drawn with numpy's
    generator, the classes in their sorted order."""
    generator = np.random.default_rng(seed)
    keys = ranks[codes[unsplit]]
    grouped = unsplit[np.argsort(keys, kind="stable")]  # each class's rows together, in row order
    bounds = np.flatnonzero(np.diff(np.sort(keys))) + 1
    test = []
    for rows in np.split(grouped, bounds) if grouped.size else []:
        # at least one test review of a class of two or more, so every class is scored
        count = min(max(int(round(test_size * rows.size)), 1), rows.size - 1)
        test.append(rows[generator.permutation(rows.size)[:count]])
    return np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)


def row_groups(sizes: np.ndarray, budget: int) -> Iterator[slice]:
    """Consecutive slices of rows, each holding as many rows as fit in budget bytes, and
    at least one."""
    ends = np.cumsum(sizes, dtype=np.int64)  # bytes up to and including each row
    start = 0
    while start < len(sizes):
        before = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, before + budget, side="right")), start + 1)
        yield slice(start, stop)
        start = stop


def spool_reviews(reviews: Iterable[sources.Review], spool: Spool, params: DownloadParams) -> np.ndarray:
    """Every review into the spool; returns each one's split (TRAIN or TEST), the unsplit
    ones split by the holdout."""
    for review in reviews:
        spool.add(review)
    describe = f"download.source = {params.source} ({params.path})"
    if not len(spool):
        raise UserError(f"{describe}: no reviews found")
    check_labels(spool.labels(), describe)
    splits = np.frombuffer(spool.splits, np.int8).copy()
    spool.check_unique(splits, describe)
    unsplit = np.flatnonzero(splits == UNSPLIT)
    codes = np.frombuffer(spool.label_codes, np.int32)
    held_out = holdout(codes, _ranks(spool.labels()), unsplit, params.test_size, params.seed)
    splits[unsplit] = TRAIN
    splits[held_out] = TEST
    for code, split in enumerate(sources.SPLITS):
        if not np.any(splits == code):
            raise UserError(f"{describe}: the {split} split has no reviews")
    if len(held_out):
        print(f"no test split in the source: {len(held_out)} reviews held out for it "
              f"(download.test_size = {params.test_size}, seed {params.seed})")
    return splits


def main() -> None:
    params = load_params().download
    source = sources.module(params.source)
    # In the temporary folder, not data/: a refused dataset leaves no output folder behind.
    with files.temporary_file(prefix="raw-reviews-") as file:
        spool = Spool(file)
        splits = spool_reviews(source.reviews(params), spool, params)
        schema, extras = spool.schema()
        split_rows = spool.split_rows(splits)
        # both splits, or neither: each is written beside its place, and both renamed at the end
        with files.atomic_opens([paths.raw(split) for split in split_rows]) as streams:
            for stream, rows in zip(streams, split_rows.values(), strict=True):
                with pq.ParquetWriter(stream, schema) as writer:
                    for table in spool.tables(rows, schema, extras):
                        writer.write_table(table)
        for split, rows in split_rows.items():
            print(f"{paths.raw(split)}: {len(rows)} reviews")
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)
