"""Stage vocab: build the word index on the training split, encode both splits.

With ngram_range [1, 2] or more, word pairs (and triples) are ranked alongside
words and share the num_words indices.

Outputs: data/vocab/word_index.json ({word: rank}, as Keras's get_word_index),
data/encoded/{train,test}.parquet (label, sequence with the Keras conventions) and
data/vocab/decoded_samples.txt, the first training reviews decoded back to words.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import corpus, files, labels, paths, text
from pipeline.cli import UserError, run
from pipeline.corpus import Corpus
from pipeline.params import load_params

DECODED_SAMPLES = 5
ROWS_PER_CHUNK = 1 << 15  # reviews read, tokenized and encoded at a time; a real split is one chunk


def list_array(offsets: np.ndarray, indices: np.ndarray) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(indices, pa.int32()))


def encoded_table(label_column: pa.Array, sequences: pa.ListArray, num_words: int) -> pa.Table:
    # num_words travels with the data so vectorize knows the matrix width.
    return pa.table({"label": label_column, "sequence": sequences}).replace_schema_metadata(
        {"num_words": str(num_words)}
    )


def decoded_samples(raw: pa.Table, sequences: pa.ListArray, word_index: dict[str, int]) -> str:
    reverse_word_index = text.reverse_index(word_index)
    blocks = []
    for row in range(min(DECODED_SAMPLES, raw.num_rows)):
        label = raw["label"][row].as_py()
        header = (
            f"# train review {row}: id {raw['id'][row].as_py()}, rating {raw['rating'][row].as_py()}, "
            f"label {label} ({labels.NAMES[label]})"
        )
        blocks.append(header + "\n" + text.decode(sequences[row].as_py(), reverse_word_index))
    return "\n\n".join(blocks) + "\n"


def indexed_chunks(split: str, ngram_range: tuple[int, int], skip: int = 0) -> Iterator[tuple[pa.RecordBatch, Corpus]]:
    """The split's raw reviews, ROWS_PER_CHUNK at a time, without their text, each with
    its reviews as word ids; the first `skip` chunks are passed over unread."""
    raw = pq.ParquetFile(files.existing(paths.raw(split)))
    for number, batch in enumerate(raw.iter_batches(batch_size=ROWS_PER_CHUNK)):
        if number >= skip:
            yield batch.drop_columns(["text"]), text.index_corpus(batch.column("text"), ngram_range)


def word_index_of(chunks: Iterator[tuple[pa.RecordBatch, Corpus]]) -> tuple[tuple[pa.RecordBatch, Corpus], dict]:
    """The word index of all the chunks, and the first chunk (kept: it is encoded next)."""
    first = next(chunks, None)
    if first is None:
        raise UserError(f"{paths.raw('train')} has no reviews: rerun the download stage (`dvc repro download`)")
    second = next(chunks, None)
    if second is None:  # the real splits: counted as one, as fast as the whole corpus allows
        return first, corpus.rank_terms(first[1])
    total = corpus.term_counts(first[1], every_ngram=True)
    for _, indexed in itertools.chain([second], chunks):
        total = corpus.merged_counts([total, corpus.term_counts(indexed, every_ngram=True)])
    return first, corpus.rank(total)


def encoded_tables(chunks, encoder: corpus.Encoder, num_words: int, first: list) -> Iterator[pa.Table]:
    """Each chunk encoded; the chunks holding the first DECODED_SAMPLES reviews are also
    put in `first`, as (raw batch, encoded table), for the samples."""
    for batch, indexed in chunks:
        table = encoded_table(batch.column("label"), list_array(*encoder.encode_corpus(indexed)), num_words)
        if sum(len(kept) for kept, _ in first) < DECODED_SAMPLES:
            first.append((batch, table))
        yield table


def main() -> None:
    params = load_params().vocab
    ngram_range = params.ngram_range
    schema = encoded_table(pa.array([], pa.int8()), list_array(np.zeros(1, np.int64), []), params.num_words).schema
    # A chunk at a time, so memory stays flat however large the corpus. The first chunk
    # of each split is tokenized once and kept; the test split's beside the counting of
    # the training split (Arrow's kernels and numpy let go of the GIL). A real split is
    # one chunk, so its encoded file is the single row group it always was.
    with ThreadPoolExecutor(max_workers=len(paths.SPLITS)) as pool:
        test_chunks = indexed_chunks("test", ngram_range)
        first_test = pool.submit(next, test_chunks, None)
        first_train, word_index = word_index_of(indexed_chunks("train", ngram_range))  # the training split only
        index_of = text.word_to_index(word_index, params.num_words, params.skip_top)
        encoder = corpus.Encoder(index_of, ngram_range)
        chunks = {
            "train": itertools.chain([first_train], indexed_chunks("train", ngram_range, skip=1)),
            "test": itertools.chain([first_test.result()] if first_test.result() else [], test_chunks),
        }
        first_tables = {split: [] for split in paths.SPLITS}
        writes = [
            pool.submit(
                files.write_parquet_groups,
                paths.encoded(split),
                schema,
                encoded_tables(chunks[split], encoder, params.num_words, first_tables[split]),
            )
            for split in paths.SPLITS
        ]
        for write in writes:
            write.result()
    raw = pa.Table.from_batches([batch for batch, _ in first_tables["train"]])
    sequences = pa.concat_tables([table for _, table in first_tables["train"]])["sequence"].combine_chunks()
    samples = decoded_samples(raw, sequences, word_index)
    files.write_text(paths.WORD_INDEX, json.dumps(word_index, ensure_ascii=False) + "\n")
    files.write_text(paths.DECODED_SAMPLES, samples)
    print(f"{paths.WORD_INDEX}: {len(word_index)} words, {len(index_of)} kept (num_words={params.num_words})")


if __name__ == "__main__":
    run(main)
