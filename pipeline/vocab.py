"""Stage vocab: build the word index on the training split, encode both splits.

With ngram_range [1, 2] or more, word pairs (and triples) are ranked alongside
words and share the num_words indices.

Outputs: data/vocab/word_index.json ({word: rank}, as Keras's get_word_index),
data/encoded/{train,test}.parquet (label, sequence with the Keras conventions) and
data/vocab/decoded_samples.txt, the first training reviews decoded back to words.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline import files, labels, paths, text
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
    raw = {split: files.read_parquet(paths.raw(split)) for split in paths.SPLITS}
    texts = {split: table["text"].to_pylist() for split, table in raw.items()}
    # The training split is tokenized once, for both counting and encoding; the test
    # split is encoded word by word, so its own vocabulary never sits in memory.
    corpus = text.index_corpus(tqdm(texts["train"], desc="tokenize train", mininterval=1), params.ngram_range)
    word_index = text.rank_terms(corpus)  # the training split only
    index_of = text.word_to_index(word_index, params.num_words, params.skip_top)
    files.write_text(paths.WORD_INDEX, json.dumps(word_index, ensure_ascii=False) + "\n")
    sequences = {
        "train": list_array(*text.encode_corpus(corpus, index_of)),
        "test": list_array(
            *text.encode_texts(tqdm(texts["test"], desc="encode test", mininterval=1), index_of, params.ngram_range)
        ),
    }
    for split in paths.SPLITS:
        files.write_parquet(
            paths.encoded(split), encoded_table(raw[split]["label"], sequences[split], params.num_words)
        )
    files.write_text(paths.DECODED_SAMPLES, decoded_samples(raw["train"], sequences["train"], word_index))
    print(f"{paths.WORD_INDEX}: {len(word_index)} words, {len(index_of)} kept (num_words={params.num_words})")


if __name__ == "__main__":
    run(main)
