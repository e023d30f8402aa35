"""Feature matrices the tests build their expectations from, with the pipeline's own code."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import scipy.sparse

from pipeline import features, weightings
from pipeline.ragged import row_offsets
from pipeline.stages import vectorize


def multi_hot(offsets: np.ndarray, indices: np.ndarray, dimension: int) -> scipy.sparse.csr_matrix:
    """Row i has a 1.0 in every column listed in indices[offsets[i]:offsets[i + 1]]."""
    return weightings.binary(features.count_matrix(offsets, indices, dimension))


def vectorize_sequences(sequences: Sequence[Sequence[int]], dimension: int = 10000) -> scipy.sparse.csr_matrix:
    """The chapter's vectorize_sequences (listing 3-2), as a sparse float32 matrix."""
    offsets = row_offsets([len(s) for s in sequences])
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64, count=int(offsets[-1]))
    return multi_hot(offsets, flat, dimension)


def inverse_document_frequency(counts: scipy.sparse.csr_matrix) -> np.ndarray:
    """The idf of a whole matrix of term counts, as vectorize learns it a chunk at a time."""
    return weightings.idf_of(weightings.document_frequency(counts), counts.shape[0])


def table_count_matrix(encoded: pa.Table) -> scipy.sparse.csr_matrix:
    """The term counts of a whole encoded table, as vectorize counts them a chunk at a time."""
    sequences = encoded.column("sequence").combine_chunks()
    return vectorize.sequence_counts(sequences, vectorize.num_words_of(encoded.schema))
