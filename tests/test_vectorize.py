"""The vectorize stage a chunk at a time: the outputs must not depend on the chunk size,
and must be the bytes that vectorizing each split whole gives."""
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import files, weightings
from pipeline.cli import UserError, run
from pipeline.stages import vectorize, vocab
from testbed.features import inverse_document_frequency, table_count_matrix

ROOT = Path(__file__).resolve().parents[1]
NUM_WORDS = 40
OUTPUTS = ["idf.npy", "train.npz", "test.npz", "train-labels.npy", "test-labels.npy"]
WEIGHTINGS = list(weightings.WEIGHTINGS)


def encoded_split(seed: int, reviews: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    sequences = [[1, *rng.integers(2, NUM_WORDS, rng.integers(0, 30))] for _ in range(reviews)]
    sequences[3] = []  # a review with no words at all
    labels = pa.array(rng.integers(0, 2, reviews), pa.int8())
    return vocab.encoded_table(labels, pa.array(sequences, pa.list_(pa.int32())), num_words=NUM_WORDS)


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "data/encoded").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_encoded(project: Path, row_group_size: int | None) -> None:
    pq.write_table(encoded_split(1, 23), project / "data/encoded/train.parquet", row_group_size=row_group_size)
    pq.write_table(encoded_split(2, 11), project / "data/encoded/test.parquet", row_group_size=row_group_size)


def vectorize_with(project: Path, weighting: str) -> dict:
    """Runs the stage; returns its outputs' bytes and, as "<split> twin", the twin read back."""
    params = project / "params.yaml"
    default = params.read_text()
    params.write_text(default.replace("weighting: binary", f"weighting: {weighting}"))
    try:
        run(vectorize.main)
    finally:
        params.write_text(default)
    found = {name: (project / "data/features" / name).read_bytes() for name in OUTPUTS}
    for split in ("train", "test"):
        found[f"{split} twin"] = pq.read_table(project / f"data/features/{split}.parquet")
    return found


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("rows_per_chunk", [1, 2, 5])
def test_any_chunk_size_writes_the_same_outputs(project, monkeypatch, weighting, rows_per_chunk):
    write_encoded(project, row_group_size=4)  # so that chunks cross row groups
    whole = vectorize_with(project, weighting)
    monkeypatch.setattr(vectorize, "ROWS_PER_CHUNK", rows_per_chunk)
    chunked = vectorize_with(project, weighting)
    for name in OUTPUTS:
        assert chunked[name] == whole[name], name
    for split in ("train", "test"):
        assert chunked[f"{split} twin"].equals(whole[f"{split} twin"])
        twin = pq.ParquetFile(project / f"data/features/{split}.parquet")
        assert twin.metadata.num_row_groups == -(-twin.metadata.num_rows // rows_per_chunk)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_outputs_are_the_bytes_of_vectorizing_each_split_whole(project, tmp_path, weighting):
    """What the stage wrote when it held every split whole: save_npz, write_parquet, np.save."""
    write_encoded(project, row_group_size=None)  # one row group, as vocab writes the real splits
    written = vectorize_with(project, weighting)
    encoded = {split: pq.read_table(project / f"data/encoded/{split}.parquet") for split in ("train", "test")}
    counts = {split: table_count_matrix(table) for split, table in encoded.items()}
    idf = inverse_document_frequency(counts["train"])
    expected = tmp_path / "expected"
    files.write_npy(expected / "idf.npy", idf)
    for split, table in encoded.items():
        x = weightings.named(weighting).weigh(counts[split], idf)
        files.write_npz(expected / f"{split}.npz", x)
        files.write_npy(expected / f"{split}-labels.npy", table["label"].to_numpy())
        expected_twin = vectorize.features_table(table["label"], x, weightings.named(weighting))
        files.write_parquet(expected / f"{split}.parquet", expected_twin)
        twin = (project / f"data/features/{split}.parquet").read_bytes()
        assert twin == (expected / f"{split}.parquet").read_bytes()
    for name in OUTPUTS:
        assert written[name] == (expected / name).read_bytes(), name


def test_tfidf_is_counts_times_the_training_splits_smoothed_idf_in_rows_of_unit_length(project):
    def encoded(sequences):
        labels = pa.array([0] * len(sequences), pa.int8())
        return vocab.encoded_table(labels, pa.array(sequences, pa.list_(pa.int32())), num_words=6)

    # Of 3 training reviews, term 1 is in all, 4 in two, 2 and 3 in one; 0 and the last column, 5, in none.
    pq.write_table(encoded([[1, 3, 3, 4], [1, 4], [1, 2]]), project / "data/encoded/train.parquet")
    pq.write_table(encoded([[1, 2, 5, 5]]), project / "data/encoded/test.parquet")
    vectorize_with(project, "tfidf")

    # idf = ln((1 + reviews) / (1 + reviews with the term)) + 1, reviews = 3
    idf = [1 + math.log(4), 1.0, 1 + math.log(2), 1 + math.log(2), 1 + math.log(4 / 3), 1 + math.log(4)]
    np.testing.assert_allclose(files.read_npy(project / "data/features/idf.npy"), idf, rtol=1e-6)

    def unit_row(weights: dict[int, float]) -> list[float]:
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return [weights.get(column, 0) / norm for column in range(6)]

    expected = {
        "train": [
            unit_row({1: 1 * idf[1], 3: 2 * idf[3], 4: 1 * idf[4]}),
            unit_row({1: 1 * idf[1], 4: 1 * idf[4]}),
            unit_row({1: 1 * idf[1], 2: 1 * idf[2]}),
        ],
        # the training split's idf, not the test split's own; a term unseen in training has the largest
        "test": [unit_row({1: 1 * idf[1], 2: 1 * idf[2], 5: 2 * idf[5]})],
    }
    for split, rows in expected.items():
        x = files.read_npz(project / f"data/features/{split}.npz")
        np.testing.assert_allclose(x.toarray(), rows, rtol=1e-6)


def test_a_sliced_arrow_list_is_counted_from_its_own_rows():
    sequences = pa.array([[9, 9], [1, 4, 4], [2], [3, 3, 3]], pa.list_(pa.int32())).slice(1, 2)
    counts = vectorize.sequence_counts(sequences, 10)
    assert counts.toarray().tolist() == [[0, 1, 0, 0, 2, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]]


def test_missing_num_words_is_named_before_anything_is_written(project, capsys):
    table = encoded_split(1, 5).replace_schema_metadata({})
    pq.write_table(table, project / "data/encoded/train.parquet")
    pq.write_table(table, project / "data/encoded/test.parquet")
    with pytest.raises(SystemExit):
        run(vectorize.main)
    error = capsys.readouterr().err
    assert error == "error: encoded data has no num_words: rerun the vocab stage (`dvc repro vocab`)\n"
    assert not (project / "data/features").exists()


def test_a_missing_test_split_is_named_before_anything_is_written(project):
    pq.write_table(encoded_split(1, 5), project / "data/encoded/train.parquet")
    with pytest.raises(UserError, match=r"^missing input data/encoded/test\.parquet: run `dvc repro` to build it$"):
        vectorize.main()
    assert not (project / "data/features").exists()


def test_more_non_zeros_than_int32_offsets_hold_is_one_line_and_writes_no_matrix(project, monkeypatch, capsys):
    write_encoded(project, row_group_size=None)
    monkeypatch.setattr(vectorize, "INT32_MAX", 50)  # the real limit, 2**31 - 1, scaled down
    with pytest.raises(SystemExit):
        run(vectorize.main)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: data/features/train.npz: ") and "expected at most 50" in line
    assert not (project / "data/features/train.npz").exists()
