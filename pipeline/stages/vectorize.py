"""Stage vectorize: encoded sequences → sparse feature matrices.

Each review's term counts, weighed by `vectorize.weighting` (pipeline/weightings.py):
`binary` is the chapter's vectorize_sequences (multi-hot), `count` keeps how often
each term occurs, `tfidf` weighs counts by the training split's inverse document
frequency, rows scaled to unit length.

Outputs per split: data/features/<split>.npz (scipy CSR, num_words columns,
sorted indices, float32) and data/features/<split>.parquet (label, the row's
column indices and, unless they are all 1.0, their values), the same matrix for pandas,
DuckDB or Spark; data/features/<split>-labels.npy has the labels alone, for the
model stages. data/features/idf.npy keeps the training split's inverse document
frequencies, for the weightings that use them, here and in prediction.

The reviews are read, weighed and written ROWS_PER_CHUNK at a time, so memory
holds one chunk however large the corpus: the matrix is built on disk and copied
into its npz at the end.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse

from pipeline import features, files, paths, weightings
from pipeline.cli import UserError, run
from pipeline.params import load_params
from pipeline.ragged import row_offsets

# Rows per chunk, and so per row group of the parquet twin: the two splits are
# weighed side by side, and at 8 times the real reviews twice 32,768 rows took 1 GB.
ROWS_PER_CHUNK = 1 << 14
INT32_MAX = np.iinfo(np.int32).max


def open_encoded(split: str) -> tuple[pq.ParquetFile, int]:
    """The encoded split, unread, and its num_words."""
    encoded = pq.ParquetFile(files.existing(paths.encoded(split)))
    return encoded, num_words_of(encoded.schema_arrow)


def num_words_of(schema: pa.Schema) -> int:
    metadata = schema.metadata or {}
    if b"num_words" not in metadata:
        raise UserError("encoded data has no num_words: rerun the vocab stage (`dvc repro vocab`)")
    return int(metadata[b"num_words"])


def chunks(encoded: pq.ParquetFile, num_words: int) -> Iterator[tuple[pa.Array, scipy.sparse.csr_matrix]]:
    """The labels and term counts of ROWS_PER_CHUNK rows at a time."""
    for batch in encoded.iter_batches(batch_size=ROWS_PER_CHUNK, columns=["label", "sequence"]):
        yield batch.column("label"), sequence_counts(batch.column("sequence"), num_words)


def sequence_counts(sequences: pa.ListArray, num_words: int) -> scipy.sparse.csr_matrix:
    # Arrow's offsets and values as numpy views, not copies; a sliced array's offsets
    # need not start at 0, nor its values at the first.
    offsets = sequences.offsets.to_numpy()
    indices = sequences.values.to_numpy()[offsets[0] : offsets[-1]]
    return features.count_matrix(offsets - offsets[0], indices, num_words)


class DocumentFrequency:
    """In how many rows each column appears, summed a chunk at a time; and so the idf."""

    def __init__(self, columns: int):
        self.rows = 0
        self.frequency = np.zeros(columns, dtype=np.int64)

    def add(self, counts: scipy.sparse.csr_matrix) -> None:
        self.rows += counts.shape[0]
        self.frequency += weightings.document_frequency(counts)

    def idf(self) -> np.ndarray:
        return weightings.idf_of(self.frequency, self.rows)


def training_idf(encoded: pq.ParquetFile, num_words: int) -> np.ndarray:
    """The idf of the training split, in a pass of its own."""
    frequency = DocumentFrequency(num_words)
    for _, counts in chunks(encoded, num_words):
        frequency.add(counts)
    return frequency.idf()


def features_table(labels: pa.Array, matrix: scipy.sparse.csr_matrix, weighting: weightings.Weighting) -> pa.Table:
    offsets = pa.array(matrix.indptr, pa.int32())
    columns = {"label": labels, "indices": pa.ListArray.from_arrays(offsets, pa.array(matrix.indices, pa.int32()))}
    if not weighting.ones:
        columns["values"] = pa.ListArray.from_arrays(offsets, pa.array(matrix.data, pa.float32()))
    return pa.table(columns).replace_schema_metadata({"num_words": str(matrix.shape[1]), "weighting": weighting.name})


class SpooledCsr:
    """A float32 CSR matrix appended a block of rows at a time, its indices and values
    kept on disk (the row offsets, 4 bytes a row, in memory); saved as
    files.write_npz saves a whole matrix."""

    def __init__(self, columns: int):
        self.columns = columns
        self.row_lengths: list[np.ndarray] = []
        self.indices = files.SpooledArray(np.int32)
        self.data = files.SpooledArray(np.float32)

    def append(self, rows: scipy.sparse.csr_matrix) -> None:
        self.row_lengths.append(np.diff(rows.indptr))
        self.indices.append(rows.indices)
        self.data.append(rows.data)

    @property
    def shape(self) -> tuple[int, int]:
        return sum(len(lengths) for lengths in self.row_lengths), self.columns

    def save_npz(self, path: Path) -> None:
        """Writes the npz and frees the disk space; the bytes are files.write_npz's."""
        try:
            indptr = row_offsets(np.concatenate([np.zeros(0, np.int32), *self.row_lengths]))
            if indptr[-1] > INT32_MAX:  # the row offsets are int32, as save_npz writes them for the model stages
                raise UserError(
                    f"{path}: {indptr[-1]:,} non-zero features do not fit; expected at most {INT32_MAX:,} "
                    "(fewer reviews per file or a smaller vocab.num_words)"
                )
            members = files.csr_members(self.indices, indptr.astype(np.int32), self.shape, self.data)
            files.write_npz_arrays(path, members)
        finally:
            self.indices.close()
            self.data.close()


def vectorize_split(
    split: str, encoded: pq.ParquetFile, num_words: int, weighting: weightings.Weighting, idf: np.ndarray | None
) -> tuple[SpooledCsr, DocumentFrequency]:
    """Writes the split's parquet twin and labels; returns its matrix, for the npz, and
    its document frequency. idf is needed only by a weighting that uses it."""
    matrix, frequency, labels = SpooledCsr(num_words), DocumentFrequency(num_words), []
    no_rows = scipy.sparse.csr_matrix((0, num_words), dtype=np.float32)
    schema = features_table(pa.array([], encoded.schema_arrow.field("label").type), no_rows, weighting).schema

    def twin_tables() -> Iterator[pa.Table]:
        for chunk_labels, counts in chunks(encoded, num_words):
            frequency.add(counts)
            x = weighting.weigh(counts, idf)
            matrix.append(x)
            labels.append(chunk_labels.to_numpy())
            yield features_table(chunk_labels, x, weighting)

    files.write_parquet_groups(paths.features_parquet(split), schema, twin_tables())
    files.write_npy(paths.labels(split), np.concatenate(labels))
    return matrix, frequency


def main() -> None:
    weighting = weightings.named(load_params().vectorize.weighting)
    encoded = {split: open_encoded(split) for split in paths.SPLITS}  # both checked before anything is written
    # The idf is learned on the training split only, and kept so prediction weighs new
    # reviews the same way. A weighting that uses it needs a pass over the training split
    # first; for the others it is learned as the training split is written.
    idf = training_idf(*encoded["train"]) if weighting.uses_idf else None
    # The splits are written side by side, each in a thread of its own: zlib, sorting
    # and Arrow's reading and writing let go of the GIL.
    with ThreadPoolExecutor(max_workers=len(paths.SPLITS)) as threads:
        written = {split: threads.submit(write_split, split, *encoded[split], weighting, idf) for split in paths.SPLITS}
        for split, future in written.items():  # train first
            matrix, frequency = future.result()
            if split == "train":
                files.write_npy(paths.IDF, frequency.idf())  # where the weighting uses it, the same idf again
            rows, columns = matrix.shape
            print(f"{paths.features_npz(split)}: {rows} x {columns}, {matrix.indices.size} non-zeros, {weighting.name}")


def write_split(
    split: str, encoded: pq.ParquetFile, num_words: int, weighting: weightings.Weighting, idf: np.ndarray | None
) -> tuple[SpooledCsr, DocumentFrequency]:
    """All of a split's outputs: its parquet twin, labels and npz."""
    matrix, frequency = vectorize_split(split, encoded, num_words, weighting, idf)
    matrix.save_npz(paths.features_npz(split))
    return matrix, frequency


if __name__ == "__main__":
    run(main)
