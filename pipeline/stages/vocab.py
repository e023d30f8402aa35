"""Stage vocab: build the word index on the training split, encode both splits.

With ngram_range [1, 2] or more, word pairs (and triples) are ranked alongside
words and share the num_words indices.

It also takes the classes from the training split's labels (pipeline/labels.py): a
test label never seen in training, or a single class, stops it with one line.

Outputs: data/vocab/word_index.json ({word: rank}, as Keras's get_word_index),
data/vocab/classes.json (the classes, sorted), data/encoded/{train,test}.parquet
(label: the class's index; sequence with the Keras conventions) and
data/vocab/decoded_samples.txt, the first training reviews decoded back to words.
"""
from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import corpus, files, labels, paths, text
from pipeline.cli import UserError, run
from pipeline.corpus import Corpus
from pipeline.params import load_params

DECODED_SAMPLES = 5
ROWS_PER_CHUNK = 1 << 15  # reviews read, tokenized and counted at a time; a real split is one chunk
# Each split's first chunk is tokenized while the word index is counted; the rest are
# encoded in halves, so the two splits encoded side by side stay within 1 GB.
ROWS_PER_ENCODED_CHUNK = 1 << 14  # divides ROWS_PER_CHUNK


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
        header = f"# train review {row}: id {raw['id'][row].as_py()}, label {raw['label'][row].as_py()}"
        blocks.append(header + "\n" + text.decode(sequences[row].as_py(), reverse_word_index))
    return "\n\n".join(blocks) + "\n"


def split_classes() -> pa.Array:
    """The classes: the training split's distinct labels, sorted. Every test label must be one."""
    train = files.read_parquet(paths.raw("train"), columns=["label"])["label"]
    distinct = pc.unique(train)
    classes = pc.take(distinct, pc.array_sort_indices(distinct))
    problem = labels.check_classes(classes.to_pylist())
    if problem:
        raise UserError(f"{paths.raw('train')}: {problem}")
    test = files.read_parquet(paths.raw("test"), columns=["label"])["label"]
    if test.type != classes.type:
        raise UserError(f"{paths.raw('test')}: its labels are {test.type}, the training split's {classes.type}")
    unseen = pc.filter(test, pc.invert(pc.is_in(test, value_set=classes)))
    if len(unseen):
        counts = pc.value_counts(unseen).to_pylist()
        shown = ", ".join(f"{c['values']!r} ({c['counts']} reviews)" for c in counts[:5])
        raise UserError(
            f"{paths.raw('test')}: labels never seen in training: {shown}; a model can only predict the "
            f"training split's classes ({len(classes)})"
        )
    return classes


def class_indices(label_column: pa.Array, classes: pa.Array) -> pa.Array:
    """Each label as its class's index."""
    indices = pc.index_in(label_column, value_set=classes)
    return indices.cast(pa.from_numpy_dtype(labels.index_type(len(classes))))


def indexed_chunks(
    split: str, ngram_range: tuple[int, int], rows: int | None = None, after: int = 0
) -> Iterator[tuple[pa.RecordBatch, Corpus]]:
    """The split's raw reviews after the first `after` (a multiple of `rows`), `rows`
    (ROWS_PER_CHUNK unless given) at a time, without their text, each with its reviews
    as word ids."""
    rows = rows or ROWS_PER_CHUNK
    # Read a buffer at a time, not a row group (up to 64 MB of text) ahead: at 8 times
    # the real reviews that held 180 MB more.
    raw = pq.ParquetFile(files.existing(paths.raw(split)), pre_buffer=False, buffer_size=1 << 20)
    if raw.metadata.num_rows <= after:  # a real split: its one chunk is tokenized already, not read again
        return iter(())
    # map holds no chunk once it is handed on: a chunk's text and words are freed
    # before the next chunk is read.
    batches = itertools.islice(raw.iter_batches(batch_size=rows), after // rows, None)
    return map(functools.partial(_indexed, ngram_range=ngram_range), batches)


def _indexed(batch: pa.RecordBatch, ngram_range: tuple[int, int]) -> tuple[pa.RecordBatch, Corpus]:
    return batch.drop_columns(["text"]), corpus.index_corpus(batch.column("text"), ngram_range)


def word_index_of(chunks: Iterator[tuple[pa.RecordBatch, Corpus]]) -> tuple[tuple[pa.RecordBatch, Corpus], dict]:
    """The word index of all the chunks, and the first chunk (kept: it is encoded next)."""
    first = next(chunks, None)
    if first is None:
        raise UserError(f"{paths.raw('train')} has no reviews: rerun the download stage (`dvc repro download`)")
    second = next(chunks, None)
    if second is None:  # the real splits: counted as one, as fast as the whole corpus allows
        return first, corpus.rank_terms(first[1])
    counts = map(lambda chunk: corpus.term_frequencies(chunk[1], every_ngram=True), itertools.chain([second], chunks))
    del second  # each chunk is freed once counted
    total = corpus.term_frequencies(first[1], every_ngram=True)
    for part in counts:
        total = corpus.merged_counts([total, part])
    return first, corpus.rank(total)


def encoded_tables(
    chunks, encoder: corpus.Encoder, num_words: int, classes: pa.Array, samples: list | None = None
) -> Iterator[pa.Table]:
    """Each chunk encoded. With `samples`, copies of the first DECODED_SAMPLES reviews are
    put there, as (raw batch, encoded table) pairs, and nothing more is kept."""

    def encoded(chunk: tuple[pa.RecordBatch, Corpus]) -> pa.Table:
        batch, indexed = chunk
        table = encoded_table(
            class_indices(batch.column("label"), classes), list_array(*encoder.encode_corpus(indexed)), num_words
        )
        wanted = 0 if samples is None else DECODED_SAMPLES - sum(len(kept) for kept, _ in samples)
        if wanted > 0:
            samples.append((_copied(batch.slice(0, wanted)), _copied(table.slice(0, wanted))))
        return table

    return map(encoded, chunks)  # holding no chunk once it is encoded


def _copied(rows: pa.Table | pa.RecordBatch) -> pa.Table:
    """A few rows in buffers of their own: a slice would keep its whole chunk's."""
    return pa.Table.from_pylist(rows.to_pylist(), rows.schema)


def main() -> None:
    params = load_params().vocab
    ngram_range = params.ngram_range
    classes = split_classes()
    label_type = pa.from_numpy_dtype(labels.index_type(len(classes)))
    schema = encoded_table(pa.array([], label_type), list_array(np.zeros(1, np.int64), []), params.num_words).schema
    # A chunk at a time, so memory stays flat however large the corpus. The first chunk
    # of each split is tokenized once and kept; the test split's beside the counting of
    # the training split (Arrow's kernels and numpy let go of the GIL). Then the splits
    # are encoded side by side. A real split is one chunk, so its encoded file is the
    # single row group it always was.
    with ThreadPoolExecutor(max_workers=len(paths.SPLITS)) as pool:
        first_test = pool.submit(next, indexed_chunks("test", ngram_range), None)
        first_train, word_index = word_index_of(indexed_chunks("train", ngram_range))  # the training split only
        index_of = text.word_to_index(word_index, params.num_words, params.skip_top)
        encoder = corpus.Encoder(index_of, ngram_range)
        chunks = {
            split: itertools.chain(
                [first] if first else [],
                indexed_chunks(split, ngram_range, ROWS_PER_ENCODED_CHUNK, after=ROWS_PER_CHUNK),
            )
            for split, first in (("train", first_train), ("test", first_test.result()))
        }
        del first_train, first_test  # the chains hold them until they are encoded, and no longer
        first_reviews: list[tuple[pa.Table, pa.Table]] = []  # the training split's, for the decoded samples
        writes = [
            pool.submit(
                files.write_parquet_groups,
                paths.encoded(split),
                schema,
                encoded_tables(
                    chunks[split], encoder, params.num_words, classes, first_reviews if split == "train" else None
                ),
            )
            for split in paths.SPLITS
        ]
        for write in writes:
            write.result()
    raw = pa.concat_tables([batch for batch, _ in first_reviews])
    sequences = pa.concat_tables([table for _, table in first_reviews])["sequence"].combine_chunks()
    samples = decoded_samples(raw, sequences, word_index)
    files.write_text(paths.WORD_INDEX, json.dumps(word_index, ensure_ascii=False) + "\n")
    files.write_text(paths.DECODED_SAMPLES, samples)
    files.write_json(paths.CLASSES, classes.to_pylist())
    print(f"{paths.WORD_INDEX}: {len(word_index)} words, {len(index_of)} kept (num_words={params.num_words})")
    print(f"{paths.CLASSES}: {len(classes)} classes")


if __name__ == "__main__":
    run(main)
