import numpy as np
import pytest

from pipeline.cli import UserError
from pipeline.features import vectorize_sequences


def chapter_vectorize_sequences(sequences, dimension=10000):
    """Listing 3-2, verbatim: the dense reference."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.0
    return results


@pytest.mark.parametrize(
    "sequences",
    [
        [[1, 14, 22, 16, 43, 530, 22], [1, 2, 2, 9], [1]],
        [[1, 5, 5, 5, 3, 2], [], [1, 19, 0, 18]],
    ],
)
def test_sparse_multi_hot_equals_the_chapters_dense_version(sequences):
    sparse = vectorize_sequences(sequences, dimension=600)
    np.testing.assert_array_equal(sparse.toarray(), chapter_vectorize_sequences(sequences, 600))


def test_random_sequences_match_and_indices_are_sorted():
    rng = np.random.default_rng(0)
    sequences = [list(rng.integers(0, 50, size=rng.integers(0, 30))) for _ in range(40)]
    sparse = vectorize_sequences(sequences, dimension=50)
    np.testing.assert_array_equal(sparse.toarray(), chapter_vectorize_sequences(sequences, 50))
    assert sparse.has_sorted_indices and sparse.has_canonical_format
    assert sparse.dtype == np.float32


def test_index_beyond_the_dimension_is_an_error():
    with pytest.raises(UserError, match="out of range"):
        vectorize_sequences([[1, 10]], dimension=10)
