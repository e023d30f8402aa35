"""Stage vocab: build the word index on the training split, encode both splits.

With ngram_range [1, 2] or more, word pairs (and triples) are ranked alongside
words and share the num_words indices.

Outputs: data/vocab/word_index.json ({word: rank}, as Keras's get_word_index),
data/encoded/{train,test}.parquet (label, sequence with the Keras conventions) and
data/vocab/decoded_samples.txt, the first training reviews decoded back to words.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from pipeline import corpus, files, labels, paths, text
from pipeline.cli import run
from pipeline.params import load_params

DECODED_SAMPLES = 5


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


def main() -> None:
    params = load_params().vocab
    # The two splits are read, tokenized, encoded and written side by side: Arrow's
    # kernels and numpy let go of the GIL. Each split is tokenized once, straight from
    # its Arrow column, into word ids; the word index counts the training split only.
    with ThreadPoolExecutor(max_workers=len(paths.SPLITS)) as pool:

        def read_and_index(split: str) -> tuple[pa.Table, corpus.Corpus]:
            table = files.read_parquet(paths.raw(split))
            indexed = text.index_corpus(table["text"], params.ngram_range)
            return table.drop_columns(["text"]), indexed  # the texts are done with: free them

        raw, corpora = {}, {}
        for split, (table, indexed) in zip(paths.SPLITS, pool.map(read_and_index, paths.SPLITS), strict=True):
            raw[split], corpora[split] = table, indexed
        word_index = text.rank_terms(corpora["train"])
        index_of = text.word_to_index(word_index, params.num_words, params.skip_top)
        encoder = corpus.Encoder(index_of, params.ngram_range)

        def encode_and_write(split: str) -> pa.ListArray:
            sequences = list_array(*encoder.encode_corpus(corpora[split]))
            files.write_parquet(paths.encoded(split), encoded_table(raw[split]["label"], sequences, params.num_words))
            return sequences

        encoding = pool.map(encode_and_write, paths.SPLITS)
        files.write_text(paths.WORD_INDEX, json.dumps(word_index, ensure_ascii=False) + "\n")
        sequences = dict(zip(paths.SPLITS, encoding, strict=True))
    files.write_text(paths.DECODED_SAMPLES, decoded_samples(raw["train"], sequences["train"], word_index))
    print(f"{paths.WORD_INDEX}: {len(word_index)} words, {len(index_of)} kept (num_words={params.num_words})")


if __name__ == "__main__":
    run(main)
