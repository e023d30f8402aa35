"""Rows of different lengths kept as one flat array and its offsets: row i is
flat[offsets[i]:offsets[i + 1]]. How reviews travel between the tokenizer, the
encoding and the feature matrices; numpy only, so any stage may import it."""
from __future__ import annotations

import numpy as np


def row_offsets(lengths) -> np.ndarray:
    """The offsets of rows of these lengths: 0, then their running total (int64)."""
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
