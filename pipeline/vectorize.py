"""Stage vectorize: encoded sequences → sparse feature matrices.

`weighting: binary` is the chapter's vectorize_sequences (multi-hot); `count`
keeps how often each term occurs; `tfidf` weighs counts by inverse document
frequency learned on the training split, rows scaled to unit length.

Outputs per split: data/features/<split>.npz (scipy CSR, num_words columns,
sorted indices, float32) and data/features/<split>.parquet (label, the row's
column indices and, unless binary, their values), the same matrix for pandas,
DuckDB or Spark; data/features/<split>-labels.npy has the labels alone, for the
model stages. data/features/idf.npy keeps the training split's inverse document
frequencies, used by `tfidf` here and by prediction.
"""
from __future__ import annotations

import pyarrow as pa
import scipy.sparse

from pipeline import features, files, paths
from pipeline.cli import UserError, run
from pipeline.params import load_params


def term_counts(encoded: pa.Table) -> scipy.sparse.csr_matrix:
    metadata = encoded.schema.metadata or {}
    if b"num_words" not in metadata:
        raise UserError("encoded data has no num_words: rerun the vocab stage (`dvc repro vocab`)")
    sequences = encoded.column("sequence").combine_chunks()
    offsets = sequences.offsets.to_numpy()
    indices = sequences.values.to_numpy()
    return features.term_counts(offsets, indices, int(metadata[b"num_words"]))


def features_table(labels: pa.Array, matrix: scipy.sparse.csr_matrix, weighting: str) -> pa.Table:
    offsets = pa.array(matrix.indptr, pa.int32())
    columns = {"label": labels, "indices": pa.ListArray.from_arrays(offsets, pa.array(matrix.indices, pa.int32()))}
    if weighting != "binary":
        columns["values"] = pa.ListArray.from_arrays(offsets, pa.array(matrix.data, pa.float32()))
    return pa.table(columns).replace_schema_metadata({"num_words": str(matrix.shape[1]), "weighting": weighting})


def main() -> None:
    params = load_params().vectorize
    encoded = {split: files.read_parquet(paths.encoded(split)) for split in paths.SPLITS}
    counts = {split: term_counts(table) for split, table in encoded.items()}
    # Learned on the training split only; kept so prediction weighs new reviews the same way.
    idf = features.inverse_document_frequency(counts["train"])
    files.write_npy(paths.IDF, idf)
    for split, split_counts in counts.items():
        x = features.weigh(split_counts, params.weighting, idf)
        files.write_npz(paths.features_npz(split), x)
        labels = encoded[split]["label"]
        files.write_parquet(paths.features_parquet(split), features_table(labels, x, params.weighting))
        files.write_npy(paths.labels(split), labels.to_numpy())
        print(f"{paths.features_npz(split)}: {x.shape[0]} x {x.shape[1]}, {x.nnz} non-zeros, {params.weighting}")


if __name__ == "__main__":
    run(main)
