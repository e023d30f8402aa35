"""Stage download: the labeled texts of the source params.yaml names → data/raw/{train,test}.parquet.

The source (pipeline/sources/: imdb, the chapter's reviews, by default; a table; or
folders per class) hands on its reviews; this stage writes them the same way for
every source, so everything after it knows only id, label and text:

  - columns id, label, text, then any further column of a table, as it is; ids and
    labels are integers where every one is, text otherwise;
  - each split ordered by id, then label (a stable sort: nothing depends on the order
    the source read them in);
  - without a test split in the source, download.test_size of each class is held out
    as the test split, drawn with download.seed.

Memory does not grow with the dataset: each text goes to one temporary file as it
arrives, and each split is written from there in order, a row group at a time.
"""
from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from pipeline import files, limits, paths, sources
from pipeline.cli import UserError, run
from pipeline.params import DownloadParams, load_params

# Text per row group of the output. The real splits (about 33 MB each) fit in one,
# so their files are what writing each split as one table gives; larger datasets
# are written a group at a time instead of being held whole.
TEXT_BYTES_PER_GROUP = 64 << 20
TRAIN, TEST, UNSPLIT = 0, 1, 2
_INT32 = np.iinfo(np.int32)


class Spool:
    """Reviews parked as they arrive: the texts, UTF-8, in a temporary file; split, place
    and size in compact arrays; ids, labels and any further columns in lists."""

    def __init__(self, file):
        self.file = file
        self.size = 0
        self.splits = array("b")
        self.starts = array("q")
        self.sizes = array("i")  # a text is at most limits.MAX_REVIEW_BYTES
        self.ids: list = []
        self.labels: list = []
        self.extras: dict[str, list] = {}

    def add(self, review: sources.Review) -> None:
        data = review.text.encode("utf-8", "surrogatepass")
        if len(data) > limits.MAX_REVIEW_BYTES:
            raise UserError(
                f"review {review.id!r} ({review.split or 'no split'}, {review.label!r}) has {len(data):,} bytes "
                f"of text; a review may have at most {limits.size(limits.MAX_REVIEW_BYTES)}"
            )
        with files.spooling():
            self.file.write(data)
        row = len(self.ids)
        self.splits.append({"train": TRAIN, "test": TEST, None: UNSPLIT}[review.split])
        self.starts.append(self.size)
        self.sizes.append(len(data))
        self.ids.append(row if review.id is None else review.id)
        self.labels.append(review.label)
        for name, value in review.extras.items():
            if name not in self.extras:  # a column first seen here: None for the rows before
                self.extras[name] = [None] * row
            self.extras[name].append(value)
        if len(review.extras) < len(self.extras):
            for values in self.extras.values():
                if len(values) == row:
                    values.append(None)
        self.size += len(data)

    def split_rows(self) -> dict[str, np.ndarray]:
        """The rows of each split, in the order they are written: by id, then label."""
        splits = np.frombuffer(self.splits, np.int8)
        id_keys, label_keys = _sort_keys(self.ids), _sort_keys(self.labels)
        order = np.lexsort((label_keys, id_keys))
        return {name: order[splits[order] == code] for code, name in enumerate(sources.SPLITS)}

    def tables(self, rows: np.ndarray, schema: pa.Schema) -> Iterator[pa.Table]:
        """These rows, a row group at a time: consecutive rows holding at most
        TEXT_BYTES_PER_GROUP bytes of text (or one review, if larger)."""
        starts, sizes = np.frombuffer(self.starts, np.int64), np.frombuffer(self.sizes, np.int32)
        with files.spooling():
            self.file.flush()
        for group in row_groups(sizes[rows], TEXT_BYTES_PER_GROUP):
            picked = rows[group]
            columns = {
                "id": pa.array([self.ids[row] for row in picked], schema.field("id").type),
                "label": pa.array([self.labels[row] for row in picked], schema.field("label").type),
                "text": self._texts(starts[picked], sizes[picked]),
            }
            for name, values in self.extras.items():
                columns[name] = pa.array([values[row] for row in picked], schema.field(name).type)
            yield pa.table(columns, schema=schema)

    def _texts(self, starts: np.ndarray, sizes: np.ndarray) -> pa.StringArray:
        """The texts at those places, read straight into one Arrow buffer."""
        offsets = np.zeros(len(sizes) + 1, np.int32)  # a group is far below 2 GB
        np.cumsum(sizes, out=offsets[1:])
        data = bytearray(int(offsets[-1]))
        view = memoryview(data)
        for start, size, offset in zip(starts.tolist(), sizes.tolist(), offsets[:-1].tolist(), strict=True):
            self.file.seek(start)
            self.file.readinto(view[offset : offset + size])
        return pa.StringArray.from_buffers(len(sizes), pa.py_buffer(offsets), pa.py_buffer(data))

    def schema(self) -> pa.Schema:
        """id and label as integers where every one is one (int32 ids where they fit), text
        otherwise; further columns as Arrow infers them."""
        ids_are_ints = all(type(value) is int for value in self.ids)
        fits = ids_are_ints and (not self.ids or (_INT32.min <= min(self.ids) and max(self.ids) <= _INT32.max))
        id_type = pa.int32() if fits else pa.int64() if ids_are_ints else pa.string()
        if not ids_are_ints:
            self.ids = [str(value) for value in self.ids]
        label_type = pa.int64() if all(type(value) is int for value in self.labels) else pa.string()
        fields = [pa.field("id", id_type), pa.field("label", label_type), pa.field("text", pa.string())]
        fields += [pa.field(name, pa.array(values).type) for name, values in self.extras.items()]
        return pa.schema(fields)


def _sort_keys(values: list) -> np.ndarray:
    """Each value's rank among the distinct values: numbers by value, text by code point."""
    distinct = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    rank = {value: number for number, value in enumerate(distinct)}
    return np.fromiter((rank[value] for value in values), np.int64, count=len(values))


def check_labels(labels: list, describe: str) -> None:
    """Every label an integer or every one a string: a class is not both 1 and "1"."""
    kinds = {type(label) for label in labels}
    if kinds <= {int} or kinds <= {str}:
        return
    strange = next((label for label in labels if type(label) not in (int, str)), None)
    if strange is not None:
        raise UserError(f"{describe}: a label is {strange!r}; expected text or an integer")
    first_int = next(label for label in labels if type(label) is int)
    first_str = next(label for label in labels if type(label) is str)
    raise UserError(
        f"{describe}: the labels mix integers ({first_int!r}) and text ({first_str!r}); expected one kind"
    )


def holdout(labels: list, unsplit: np.ndarray, test_size: float, seed: int) -> np.ndarray:
    """The unsplit rows held out as the test split: test_size of each class (rounded, and
    leaving each class at least one training review), drawn with numpy's generator."""
    generator = np.random.default_rng(seed)
    keys = _sort_keys([labels[row] for row in unsplit])
    test = []
    for key in range(int(keys.max()) + 1 if keys.size else 0):  # classes in their sorted order
        rows = unsplit[keys == key]
        count = min(int(round(test_size * rows.size)), rows.size - 1)
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


def spool_reviews(reviews: Iterable[sources.Review], spool: Spool, params: DownloadParams) -> int:
    """Every review into the spool, the unsplit ones split by the holdout; returns how many
    were held out."""
    for review in reviews:
        spool.add(review)
    describe = f"download.source = {params.source}"
    if not spool.ids:
        raise UserError(f"{describe} ({params.path}): no reviews found")
    check_labels(spool.labels, describe)
    splits = np.frombuffer(spool.splits, np.int8).copy()
    unsplit = np.flatnonzero(splits == UNSPLIT)
    held_out = holdout(spool.labels, unsplit, params.test_size, params.seed)
    splits[unsplit] = TRAIN
    splits[held_out] = TEST
    spool.splits = array("b", splits.tobytes())
    for code, split in enumerate(sources.SPLITS):
        if not np.any(splits == code):
            raise UserError(f"{describe} ({params.path}): the {split} split has no reviews")
    return len(held_out)


def main() -> None:
    params = load_params().download
    source = sources.module(params.source)
    # In the temporary folder, not data/: a refused dataset leaves no output folder behind.
    with files.temporary_file(prefix="raw-reviews-") as file:
        spool = Spool(file)
        held_out = spool_reviews(source.reviews(params), spool, params)
        schema = spool.schema()
        if held_out:
            print(f"no test split in the source: {held_out} reviews held out for it "
                  f"(download.test_size = {params.test_size}, seed {params.seed})")
        for split, rows in spool.split_rows().items():
            files.write_parquet_groups(paths.raw(split), schema, spool.tables(rows, schema))
            print(f"{paths.raw(split)}: {len(rows)} reviews")
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)
