"""The weightings of `vectorize.weighting`: how term counts become a review's features.

A weighting is its name, how it weighs a matrix of term counts, how it weighs one
review's counts with numpy alone (the same numpy operations on the same numbers, so
the same bits), and whether it weighs by the inverse document frequency of the
training split: vectorize then learns the idf before weighing, and the model's bundle
keeps it to weigh new reviews the same way. A new weighting is an entry in WEIGHTINGS,
which params takes its allowed names from, and a test of its values in
tests/test_features.py (which already holds every weighting's rows to its matrix's bits).

scipy is imported where it is used: imdb-predict weighs a few reviews with numpy alone.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse


@dataclass(frozen=True)
class Weighting:
    name: str
    # (term counts, idf or None) -> the features, float32 CSR with the counts' sorted indices
    weigh: Callable[[scipy.sparse.csr_matrix, np.ndarray | None], scipy.sparse.csr_matrix]
    # (one review's columns, their float32 counts, idf or None) -> the values of its row of `weigh`
    weigh_row: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
    uses_idf: bool = False
    ones: bool = False  # every feature is 1.0: the parquet twin keeps the column indices alone


def binary(counts: scipy.sparse.csr_matrix, idf: np.ndarray | None = None) -> scipy.sparse.csr_matrix:
    """1.0 wherever a count is non-zero; shares the index arrays of counts, not a copy."""
    import scipy.sparse

    ones = np.ones_like(counts.data)
    return scipy.sparse.csr_matrix((ones, counts.indices, counts.indptr), shape=counts.shape, copy=False)


def binary_row(columns: np.ndarray, counts: np.ndarray, idf: np.ndarray | None) -> np.ndarray:
    return np.ones_like(counts)


def count(counts: scipy.sparse.csr_matrix, idf: np.ndarray | None) -> scipy.sparse.csr_matrix:
    return counts


def count_row(columns: np.ndarray, counts: np.ndarray, idf: np.ndarray | None) -> np.ndarray:
    return counts


def document_frequency(counts: scipy.sparse.csr_matrix) -> np.ndarray:
    """In how many rows each column appears; sums over chunks of rows to the whole's."""
    return np.bincount(counts.indices, minlength=counts.shape[1])


def idf_of(document_frequency: np.ndarray, documents: int) -> np.ndarray:
    """Smoothed idf, as scikit-learn's TfidfTransformer: ln((1 + n) / (1 + df)) + 1."""
    return (np.log((1 + documents) / (1 + document_frequency)) + 1).astype(np.float32)


def tfidf(counts: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    """Counts times idf, each row scaled to unit length."""
    weighted = scale_columns(counts, idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    weighted.data = (weighted.data / np.repeat(norms, np.diff(weighted.indptr))).astype(np.float32)
    return weighted


def tfidf_row(columns: np.ndarray, counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    weighted = (counts * idf[columns]).astype(np.float32)  # scale_columns
    squares = weighted * weighted  # tfidf's weighted.multiply(weighted), then its row sum, as scipy reduces it
    norm = np.sqrt(np.add.reduceat(squares, [0]) if squares.size else np.zeros(1, np.float32))
    return (weighted / norm).astype(np.float32)


def scale_columns(matrix: scipy.sparse.csr_matrix, factors: np.ndarray) -> scipy.sparse.csr_matrix:
    scaled = matrix.copy()
    scaled.data = (scaled.data * factors[scaled.indices]).astype(np.float32)
    return scaled


WEIGHTINGS = {
    weighting.name: weighting
    for weighting in (
        Weighting("binary", binary, binary_row, ones=True),  # the chapter's multi-hot
        Weighting("count", count, count_row),
        Weighting("tfidf", tfidf, tfidf_row, uses_idf=True),
    )
}


def named(name: str) -> Weighting:
    """The weighting of that name; params has checked that there is one."""
    return WEIGHTINGS[name]
