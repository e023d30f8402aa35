"""The vocab stage a chunk at a time: the word index, the samples and the encoded
reviews must not depend on how many reviews are read at once."""
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import run
from pipeline.stages import vocab
from testbed.archives import review_members

ROOT = Path(__file__).resolve().parents[1]


def raw_split(split: str) -> pa.Table:
    members = sorted((name, text) for name, text in review_members(9, seed=4).items() if f"/{split}/" in name)
    ids = list(range(len(members)))
    return pa.table({
        "id": pa.array(ids, pa.int32()),
        "rating": pa.array([8 if "/pos/" in name else 2 for name, _ in members], pa.int8()),
        "label": pa.array([int("/pos/" in name) for name, _ in members], pa.int8()),
        "text": [text.decode() for _, text in members],
    })


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "data/raw").mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(raw_split(split), tmp_path / f"data/raw/{split}.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def vocab_with(project: Path, ngram_range: str) -> dict:
    params = (ROOT / "params.yaml").read_text().replace("ngram_range: [1, 1]", f"ngram_range: {ngram_range}")
    (project / "params.yaml").write_text(params.replace("num_words: 10000", "num_words: 60"))
    run(vocab.main)
    return {
        "word_index": json.loads((project / "data/vocab/word_index.json").read_text()),
        "samples": (project / "data/vocab/decoded_samples.txt").read_text(),
        **{split: pq.read_table(project / f"data/encoded/{split}.parquet") for split in ("train", "test")},
    }


@pytest.mark.parametrize("ngram_range", ["[1, 1]", "[1, 2]"])
@pytest.mark.parametrize("rows_per_chunk, rows_per_encoded_chunk", [(1, 1), (2, 1), (6, 3), (5, 5)])
def test_any_chunk_size_gives_the_same_word_index_and_encoding(
    project, monkeypatch, ngram_range, rows_per_chunk, rows_per_encoded_chunk
):
    whole = vocab_with(project, ngram_range)
    monkeypatch.setattr(vocab, "ROWS_PER_CHUNK", rows_per_chunk)
    monkeypatch.setattr(vocab, "ROWS_PER_ENCODED_CHUNK", rows_per_encoded_chunk)
    chunked = vocab_with(project, ngram_range)
    assert chunked["word_index"] == whole["word_index"]
    assert chunked["samples"] == whole["samples"]
    for split in ("train", "test"):
        assert chunked[split].equals(whole[split])
        encoded = pq.ParquetFile(project / f"data/encoded/{split}.parquet").metadata
        # the first chunk as counted, then the rest in encoding's smaller chunks
        rest = max(encoded.num_rows - rows_per_chunk, 0)
        assert encoded.num_row_groups == 1 + -(-rest // rows_per_encoded_chunk)
    if ngram_range == "[1, 2]":  # pairs split across chunks are counted together
        assert any(" " in term for term in whole["word_index"])
