"""Reviews as sparse rows: the chapter's vectorize_sequences and its variations.

Shared by the vectorize stage, the model stages and prediction, so a review is
turned into model input in exactly one way. scipy and the file readers are imported
where they are used: a few reviews scored by imdb-predict take `row_features`, numpy
alone, where importing scipy would cost more than the work.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipeline.cli import UserError
from pipeline.ragged import row_offsets

if TYPE_CHECKING:
    import scipy.sparse


def term_counts(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
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


def binary(counts: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    """1.0 wherever a count is non-zero; shares the index arrays of counts, not a copy."""
    import scipy.sparse

    ones = np.ones_like(counts.data)
    return scipy.sparse.csr_matrix((ones, counts.indices, counts.indptr), shape=counts.shape, copy=False)


def multi_hot(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
    """Row i has a 1.0 in every column listed in indices[offsets[i]:offsets[i + 1]]."""
    return binary(term_counts(offsets, indices, dimension))


def vectorize_sequences(sequences: Sequence[Sequence[int]], dimension: int = 10000) -> scipy.sparse.csr_matrix:
    offsets = row_offsets([len(s) for s in sequences])
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
    return multi_hot(offsets, flat, dimension)


def weigh(counts: scipy.sparse.csr_matrix, weighting: str, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    """The features of vectorize's `weighting` (binary, count or tfidf) from term counts."""
    if weighting == "binary":
        return binary(counts)
    if weighting == "count":
        return counts
    return tfidf(counts, idf)


def inverse_document_frequency(counts: scipy.sparse.csr_matrix) -> np.ndarray:
    """Smoothed idf, as scikit-learn's TfidfTransformer: ln((1 + n) / (1 + df)) + 1."""
    return idf_of(document_frequency(counts), counts.shape[0])


def document_frequency(counts: scipy.sparse.csr_matrix) -> np.ndarray:
    """In how many rows each column appears; sums over chunks of rows to the whole's."""
    return np.bincount(counts.indices, minlength=counts.shape[1])


def idf_of(document_frequency: np.ndarray, documents: int) -> np.ndarray:
    return (np.log((1 + documents) / (1 + document_frequency)) + 1).astype(np.float32)


def tfidf(counts: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    """Counts times idf, each row scaled to unit length."""
    weighted = scale_columns(counts, idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    weighted.data = (weighted.data / np.repeat(norms, np.diff(weighted.indptr))).astype(np.float32)
    return weighted


def scale_columns(matrix: scipy.sparse.csr_matrix, factors: np.ndarray) -> scipy.sparse.csr_matrix:
    scaled = matrix.copy()
    scaled.data = (scaled.data * factors[scaled.indices]).astype(np.float32)
    return scaled


def log_count_ratio(x: scipy.sparse.csr_matrix, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive-Bayes log-count ratio per column (Wang & Manning 2012):
    r = log((p / |p|1) / (q / |q|1)), p and q the smoothed feature sums over positive
    and negative reviews. Scaling inputs by r is the NBSVM trick."""
    positive = alpha + np.asarray(x[y == 1].sum(axis=0)).ravel()
    negative = alpha + np.asarray(x[y == 0].sum(axis=0)).ravel()
    return np.log((positive / positive.sum()) / (negative / negative.sum())).astype(np.float32)


def row_features(sequence: np.ndarray, dimension: int, weighting: str, idf: np.ndarray | None):
    """One review's row of `weigh(term_counts(...))`, as its (columns, values), in numpy
    alone: the same numpy operations on the same numbers, so the same bits."""
    sequence = np.asarray(sequence)
    _check_range(sequence, dimension)
    columns, occurrences = np.unique(sequence, return_counts=True)
    counts = occurrences.astype(np.float32)
    if weighting == "binary":
        return columns, np.ones_like(counts)
    if weighting == "count":
        return columns, counts
    weighted = (counts * idf[columns]).astype(np.float32)  # scale_columns
    squares = weighted * weighted  # tfidf's weighted.multiply(weighted), then its row sum, as scipy reduces it
    norm = np.sqrt(np.add.reduceat(squares, [0]) if squares.size else np.zeros(1, np.float32))
    return columns, (weighted / norm).astype(np.float32)


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
