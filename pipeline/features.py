"""The chapter's vectorize_sequences, sparse: one CSR row per review.

Shared by the vectorize stage and prediction, so a review is turned into model
input in exactly one way.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse

from pipeline.cli import UserError


def multi_hot(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
    """Row i has a 1.0 in every column listed in indices[offsets[i]:offsets[i + 1]]."""
    offsets = np.asarray(offsets, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= dimension):
        raise UserError(f"word index out of range: expected 0 to {dimension - 1}")
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    ones = np.ones(indices.size, dtype=np.float32)
    matrix = scipy.sparse.csr_matrix((ones, (rows, indices)), shape=(len(offsets) - 1, dimension))
    matrix.sum_duplicates()  # also sorts the indices, which TensorFlow requires
    matrix.data[:] = 1.0
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.indptr = matrix.indptr.astype(np.int32)
    return matrix


def vectorize_sequences(sequences: Sequence[Sequence[int]], dimension: int = 10000) -> scipy.sparse.csr_matrix:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
    return multi_hot(offsets, flat, dimension)
