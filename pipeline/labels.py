"""What a probability means: the label names and the threshold.

Shared by evaluate (confusion matrix, precision, recall) and predict, so a review
gets the same label from both.
"""
from __future__ import annotations

import numpy as np

THRESHOLD = 0.5  # a review is called positive when its probability is at least this
NAMES = ("negative", "positive")  # label 0, label 1
FOLDERS = ("neg", "pos")  # where the archive keeps the reviews of label 0, label 1


def predicted(probabilities: np.ndarray) -> np.ndarray:
    """0 or 1 for each probability of positive."""
    return (np.asarray(probabilities) >= THRESHOLD).astype(int)
