"""Source table: labeled texts in one file, CSV, TSV, JSON Lines or parquet.

download.text_column and download.label_column name the columns of the text and
the label; download.id_column, if set, an id (otherwise a review's id is its row's
number in the file, from 0); download.split_column, if set, a column of "train" and
"test" (otherwise the download stage holds out download.test_size of each class).
Every other column travels to data/raw as it is.

The file is read a block at a time (Arrow's streaming readers), so it may be larger
than memory. Its columns' types are Arrow's: a label column of integers gives
integer classes, anything else strings; the text column is read as text whatever
it looks like.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipeline import limits, sources
from pipeline.cli import UserError
from pipeline.params import DownloadParams

BLOCK_BYTES = 1 << 20
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def table_format(params: DownloadParams) -> str:
    if params.format != "auto":
        return params.format
    suffix = Path(params.path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UserError(
            f"download.path = {params.path}: cannot tell the format from {suffix or 'no extension'}; set "
            f"download.format to csv, tsv, jsonl or parquet, or name the file {', '.join(EXTENSIONS)}"
        )
    return EXTENSIONS[suffix]


def batches(path: Path, fmt: str, text_column: str) -> Iterator[pa.RecordBatch]:
    """The file's rows, a block at a time; the text column always as text."""
    stream = limits.open_regular(path, f"a {fmt} file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(stream).iter_batches(batch_size=1 << 14)
    if fmt == "jsonl":
        import pyarrow.json as pj

        return iter(pj.open_json(stream, read_options=pj.ReadOptions(block_size=BLOCK_BYTES)))
    import pyarrow.csv as pc

    return iter(pc.open_csv(
        stream,
        read_options=pc.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=pc.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
        convert_options=pc.ConvertOptions(column_types={text_column: pa.string()}, strings_can_be_null=False),
    ))


def reviews(params: DownloadParams) -> Iterator[sources.Review]:
    path = Path(params.path)
    fmt = table_format(params)
    wanted = {
        "download.text_column": params.text_column,
        "download.label_column": params.label_column,
        "download.id_column": params.id_column,
        "download.split_column": params.split_column,
    }
    row = 0
    try:
        for batch in batches(path, fmt, params.text_column):
            if row == 0:
                _check_columns(path, batch.schema, wanted)
            columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
            named = {key: columns.get(name) for key, name in wanted.items()}
            extras = {name: values for name, values in columns.items() if name not in wanted.values()}
            for i in range(batch.num_rows):
                yield _review(path, row + i, named, extras, i)
            row += batch.num_rows
    except pa.ArrowInvalid as error:
        raise UserError(f"{path} is not a readable {fmt} file after row {row}: {_one_line(error)}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    if row == 0:
        raise UserError(f"{path} has no rows: expected a header and one labeled text per row")


def _check_columns(path: Path, schema: pa.Schema, wanted: dict[str, str]) -> None:
    for key, name in wanted.items():
        if name and name not in schema.names:
            raise UserError(f"{path} has no column {name!r} ({key}); its columns: {', '.join(schema.names)}")
    for name in ("id", "label", "text"):
        key = f"download.{name}_column"
        if name in schema.names and wanted[key] != name:
            raise UserError(
                f"{path} has a column {name!r} that is not {key} ({wanted[key] or 'none'}): data/raw names its own "
                f"column {name} so; set {key}: {name}, or rename the column"
            )
    label = schema.field(wanted["download.label_column"]).type
    if not (pa.types.is_integer(label) or pa.types.is_string(label) or pa.types.is_large_string(label)):
        raise UserError(
            f"{path}: the labels ({wanted['download.label_column']}) are {label}; expected text or integers"
        )


def _review(path: Path, row: int, named: dict, extras: dict, i: int) -> sources.Review:
    text, label = named["download.text_column"][i], named["download.label_column"][i]
    where = f"{path} row {row + 1} (the header not counted)"
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where} has no text: every row needs a text to learn from")
    if label is None or label == "":
        raise UserError(f"{where} has no label: every row needs its class")
    split = None
    if named["download.split_column"] is not None:
        split = named["download.split_column"][i]
        if split not in sources.SPLITS:
            raise UserError(f"{where}: the split is {split!r}; expected train or test")
    review_id = row
    if named["download.id_column"] is not None:
        review_id = named["download.id_column"][i]
        if review_id is None or not isinstance(review_id, (int, str)):
            raise UserError(f"{where}: the id is {review_id!r}; expected an integer or a string")
    return sources.Review(split, review_id, label, text, {name: values[i] for name, values in extras.items()})


def _one_line(error: Exception) -> str:
    message = " ".join(str(error).split())
    return message if len(message) <= 300 else message[:299] + "…"
