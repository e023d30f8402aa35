import numpy as np
import pytest
import scipy.sparse
from sklearn.feature_extraction.text import TfidfTransformer

from bench.chapter import vectorize_sequences as chapter_vectorize_sequences  # listing 3-2: the dense reference
from pipeline.cli import UserError
from pipeline.features import count_matrix, log_count_ratio, row_features
from pipeline.ragged import row_offsets
from pipeline.weightings import WEIGHTINGS, binary, named, scale_columns, tfidf
from testbed.features import inverse_document_frequency, vectorize_sequences


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


def test_counts_keep_repeats_and_binary_does_not():
    counts = count_matrix(np.array([0, 4, 5]), np.array([3, 1, 3, 3, 2]), dimension=5)
    assert counts.toarray().tolist() == [[0, 1, 0, 3, 0], [0, 0, 1, 0, 0]]
    assert binary(counts).toarray().tolist() == [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0]]


def test_tfidf_matches_scikit_learn():
    rng = np.random.default_rng(1)
    train = vectorize_sequences([list(rng.integers(0, 30, 20)) for _ in range(50)], dimension=30)
    train.data = rng.integers(1, 4, train.nnz).astype(np.float32)  # counts, not just ones
    test = train[:7].copy()
    idf = inverse_document_frequency(train)
    reference = TfidfTransformer().fit(train)
    np.testing.assert_allclose(tfidf(test, idf).toarray(), reference.transform(test).toarray(), rtol=1e-5)
    assert tfidf(test, idf).has_sorted_indices


def test_log_count_ratio_favours_columns_seen_in_positive_reviews():
    # column 0 only in positive reviews, column 1 only in negative ones, column 2 in both
    x = scipy.sparse.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]], dtype=np.float32))
    ratio = log_count_ratio(x, np.array([1, 1, 0, 0]))
    # p = 1 + [2, 0, 2] = [3, 1, 3], q = [1, 3, 3]; both sum to 7
    np.testing.assert_allclose(ratio, np.log([3 / 1, 1 / 3, 3 / 3]), rtol=1e-6)


def test_scale_columns_multiplies_each_column_by_its_factor():
    x = scipy.sparse.csr_matrix(np.array([[1, 0, 2], [0, 3, 1]], dtype=np.float32))
    scaled = scale_columns(x, np.array([10, 100, -1], dtype=np.float32))
    assert scaled.toarray().tolist() == [[10, 0, -2], [0, 300, -1]]
    assert x.toarray().tolist() == [[1, 0, 2], [0, 3, 1]]


def test_weigh_gives_each_weighting_from_the_same_counts():
    counts = count_matrix(np.array([0, 3, 4]), np.array([1, 1, 2, 0]), dimension=3)
    idf = inverse_document_frequency(counts)
    assert named("binary").weigh(counts, idf).toarray().tolist() == [[0, 1, 1], [1, 0, 0]]
    assert named("count").weigh(counts, idf).toarray().tolist() == [[0, 2, 1], [1, 0, 0]]
    np.testing.assert_allclose(named("tfidf").weigh(counts, idf).toarray(), tfidf(counts, idf).toarray())


@pytest.mark.parametrize("weighting", WEIGHTINGS.values(), ids=list(WEIGHTINGS))
def test_each_weighting_weighs_one_review_to_the_bits_of_its_matrix(weighting):
    rng = np.random.default_rng(3)
    sequences = [list(rng.integers(0, 30, rng.integers(0, 40))) for _ in range(20)]
    counts = count_matrix(row_offsets([len(s) for s in sequences]), np.concatenate(sequences).astype(int), 30)
    idf = inverse_document_frequency(counts) if weighting.uses_idf else None
    matrix = weighting.weigh(counts, idf)
    assert matrix.dtype == np.float32 and matrix.has_sorted_indices
    assert (matrix.data == 1).all() or not weighting.ones
    for row, sequence in enumerate(sequences):
        columns, values = row_features(np.array(sequence, dtype=np.int64), 30, weighting, idf)
        np.testing.assert_array_equal(columns, matrix[row].indices)
        assert values.dtype == np.float32 and values.tobytes() == matrix[row].data.tobytes()


def test_counts_are_the_same_when_row_times_dimension_needs_64_bit_keys():
    rng = np.random.default_rng(2)
    dimension = 2**30  # 5 rows x 2**30 columns do not fit 32-bit keys
    sequences = [list(rng.integers(0, dimension, 6)) + [dimension - 1] * 2 for _ in range(5)]
    offsets, flat = row_offsets([len(s) for s in sequences]), np.concatenate(sequences)
    counts = count_matrix(offsets, flat, dimension)
    for row, sequence in enumerate(sequences):
        columns, repeats = np.unique(sequence, return_counts=True)
        assert counts[row].indices.tolist() == columns.tolist()
        assert counts[row].data.tolist() == repeats.tolist()
    assert counts.indices.dtype == np.int32 and counts.indptr.dtype == np.int32 and counts.dtype == np.float32
