"""Stage vectorize: encoded sequences → multi-hot sparse matrices.

Outputs per split: data/features/<split>.npz (scipy CSR, num_words columns,
sorted indices, float32 ones) and data/features/<split>.parquet (label and the
row's column indices), the same matrix for pandas, DuckDB or Spark.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import scipy.sparse

from pipeline import files, paths
from pipeline.cli import UserError, run
from pipeline.features import multi_hot


def vectorize_table(encoded: pa.Table) -> scipy.sparse.csr_matrix:
    metadata = encoded.schema.metadata or {}
    if b"num_words" not in metadata:
        raise UserError("encoded data has no num_words: rerun the vocab stage (`dvc repro vocab`)")
    sequences = encoded.column("sequence").combine_chunks()
    offsets = sequences.offsets.to_numpy()
    indices = sequences.values.to_numpy()
    return multi_hot(offsets, indices, int(metadata[b"num_words"]))


def features_table(labels: pa.Array, matrix: scipy.sparse.csr_matrix) -> pa.Table:
    columns = pa.ListArray.from_arrays(pa.array(matrix.indptr, pa.int32()), pa.array(matrix.indices, pa.int32()))
    return pa.table({"label": labels, "indices": columns}).replace_schema_metadata(
        {"num_words": str(matrix.shape[1])}
    )


def main() -> None:
    for split in paths.SPLITS:
        encoded = files.read_parquet(paths.encoded(split))
        x = vectorize_table(encoded)
        files.write_npz(paths.features_npz(split), x)
        files.write_parquet(paths.features_parquet(split), features_table(encoded.column("label"), x))
        print(f"{paths.features_npz(split)}: {x.shape[0]} x {x.shape[1]}, {x.nnz} non-zeros")


if __name__ == "__main__":
    run(main)
