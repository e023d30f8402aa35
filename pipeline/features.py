"""Reviews as sparse rows: their term counts, the input the weightings weigh.

Shared by the vectorize stage, the model stages and prediction, so a review is
turned into model input in exactly one way. scipy and the file readers are imported
where they are used: a few reviews scored by imdb-predict take `row_features`, numpy
alone, where importing scipy would cost more than the work.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.cli import UserError

if TYPE_CHECKING:
    import scipy.sparse

    from pipeline.weightings import Weighting


def count_matrix(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
    """Row i counts how often each column appears in indices[offsets[i]:offsets[i + 1]];
    offsets[0] is 0. Float32 counts, int32 indices sorted within each row, as TensorFlow
    requires."""
    import scipy.sparse

    offsets, indices = np.asarray(offsets), np.asarray(indices)
    _check_range(indices, dimension)
    rows = len(offsets) - 1
    # Each occurrence as one number, row * dimension + column: one sort orders every
    # row's columns and puts repeats side by side. 32-bit keys where they fit sort faster.
    key = np.uint32 if rows * dimension <= np.iinfo(np.uint32).max else np.uint64
    keys = np.repeat(np.arange(rows, dtype=key) * key(dimension), np.diff(offsets))
    np.add(keys, indices, out=keys, casting="unsafe")  # indices are known to be in 0..dimension-1
    keys.sort()
    first = np.ones(keys.size, dtype=bool)  # where each run of equal keys starts
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    distinct, occurrences = keys[starts], keys.size
    del keys, first  # this runs on large chunks: hold as few arrays at once as needed
    counts = np.empty(starts.size, dtype=np.float32)  # the length of each run, cast as written
    np.subtract(starts[1:], starts[:-1], out=counts[:-1], casting="unsafe")
    counts[-1:] = occurrences - starts[-1:]
    del starts
    indptr = np.searchsorted(distinct, np.arange(rows + 1, dtype=key) * key(dimension)).astype(np.int32)
    columns = np.remainder(distinct, key(dimension), out=distinct).astype(np.int32)
    return scipy.sparse.csr_matrix((counts, columns, indptr), shape=(rows, dimension))


def _check_range(indices: np.ndarray, dimension: int) -> None:
    if indices.size and (indices.min() < 0 or indices.max() >= dimension):
        raise UserError(f"word index out of range: expected 0 to {dimension - 1}")


def log_count_ratio(x: scipy.sparse.csr_matrix, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive-Bayes log-count ratio per column (Wang & Manning 2012):
    r = log((p / |p|1) / (q / |q|1)), p and q the smoothed feature sums over positive
    and negative reviews. Scaling inputs by r is the NBSVM trick."""
    positive = alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
    negative = alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
    return np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)


def row_features(sequence: np.ndarray, dimension: int, weighting: Weighting, idf: np.ndarray | None):
    """One review's row of `weighting.weigh(count_matrix(...), idf)`, as its (columns, values),
    in numpy alone."""
    sequence = np.asarray(sequence)
    _check_range(sequence, dimension)
    columns, occurrences = np.unique(sequence, return_counts=True)
    return columns, weighting.weigh_row(columns, occurrences.astype(np.float32), idf)


def read_features(split: str, rows: np.ndarray | None = None) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The multi-hot matrix of a split and its labels as float32 (the chapter's y_train);
    only the given rows, in that order, when rows is given."""
    from pipeline import files, paths

    x = files.read_npz(paths.features_npz(split))
    y = files.read_npy(paths.labels(split)).astype("float32")
    return (x, y) if rows is None else (x[rows], y[rows])


def count_reviews(split: str) -> int:
    """How many reviews a split has, without reading them."""
    from pipeline import files, paths

    return files.count_rows(paths.labels(split))
