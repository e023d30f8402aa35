"""Reviews as sparse rows: the chapter's vectorize_sequences and its variations.

Shared by the vectorize stage, the model stages and prediction, so a review is
turned into model input in exactly one way.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse

from pipeline import files, paths
from pipeline.cli import UserError
from pipeline.ragged import row_offsets


def term_counts(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
    """Row i counts how often each column appears in indices[offsets[i]:offsets[i + 1]]."""
    offsets = np.asarray(offsets, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= dimension):
        raise UserError(f"word index out of range: expected 0 to {dimension - 1}")
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    ones = np.ones(indices.size, dtype=np.float32)
    matrix = scipy.sparse.csr_matrix((ones, (rows, indices)), shape=(len(offsets) - 1, dimension))
    matrix.sum_duplicates()  # also sorts the indices, which TensorFlow requires
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.indptr = matrix.indptr.astype(np.int32)
    return matrix


def binary(counts: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    """1.0 wherever a count is non-zero."""
    ones = counts.copy()
    ones.data[:] = 1.0
    return ones


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
    document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1).astype(np.float32)


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


def read_features(split: str, rows: np.ndarray | None = None) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The multi-hot matrix of a split and its labels as float32 (the chapter's y_train);
    only the given rows, in that order, when rows is given."""
    x = files.read_npz(paths.features_npz(split))
    y = files.read_npy(paths.labels(split)).astype("float32")
    return (x, y) if rows is None else (x[rows], y[rows])


def count_reviews(split: str) -> int:
    """How many reviews a split has, without reading them."""
    return files.count_rows(paths.labels(split))
