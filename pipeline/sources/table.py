"""Source table: labeled texts in one file, CSV, TSV, JSON Lines or parquet.

download.text_column and download.label_column name the columns of the text and
the label; download.id_column, if set, an id (otherwise a review's id is its row's
number in the file, from 0); download.split_column, if set, a column of "train" and
"test" (otherwise the download stage holds out download.test_size of each class).
Every other column travels to data/raw: text, numbers and booleans.

The file is read a block at a time, so it may be larger than memory. A CSV's or TSV's
text, label and split are text (a label "01" is not the label "1"); its other columns,
the id among them, are typed by Arrow from the first block (integers, numbers,
booleans, text). JSON Lines and parquet keep their types. A TSV has no quoting: a tab
or a line break ends a cell.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from pipeline import limits, sources
from pipeline.cli import UserError
from pipeline.params import DownloadParams

BLOCK_BYTES = 4 * limits.MB  # a row of a CSV or TSV is at most this long: a review and its other cells
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_INT64 = range(-(2**63), 2**63)


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


def reviews(params: DownloadParams) -> Iterator[sources.Review]:
    path = Path(params.path)
    fmt = table_format(params)
    wanted = {
        "download.text_column": params.text_column,
        "download.label_column": params.label_column,
        "download.id_column": params.id_column,
        "download.split_column": params.split_column,
    }
    rows = _json_lines(path) if fmt == "jsonl" else _arrow_rows(path, fmt, params)
    count = 0
    for count, row in enumerate(rows, start=1):
        if count == 1:
            _check_columns(path, list(row), wanted)
        where = f"{path} line {count}" if fmt == "jsonl" else f"{path} row {count}"
        yield _review(where + (" (after the header)" if fmt in ("csv", "tsv") else ""), row, count - 1, wanted)
    if count == 0:
        raise UserError(f"{path} has no rows: expected a header and one labeled text per row")


def _arrow_rows(path: Path, fmt: str, params: DownloadParams) -> Iterator[dict]:
    """Each row of a CSV, TSV or parquet file as {column: value}, read a block at a time."""
    done = 0
    try:
        for batch in _batches(path, fmt, params):
            if done == 0:
                _check_types(path, batch.schema, params)
            yield from batch.to_pylist()
            done += batch.num_rows
    except pa.ArrowInvalid as error:
        message = " ".join(str(error).split())
        if "straddling" in message:
            message = f"a row is longer than {limits.size(BLOCK_BYTES)}, more than a review and its cells may be"
        raise UserError(f"{path} is not a readable {fmt} file after row {done}: {message[:300]}") from None
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None


def _batches(path: Path, fmt: str, params: DownloadParams) -> Iterator[pa.RecordBatch]:
    stream = limits.open_regular(path, f"a {fmt} file")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(stream).iter_batches(batch_size=1 << 14)
    import pyarrow.csv as pc

    tsv = fmt == "tsv"
    # read as text, whatever it looks like: ids keep Arrow's integers
    text_columns = [name for name in (params.text_column, params.label_column, params.split_column) if name]
    return iter(pc.open_csv(
        stream,
        read_options=pc.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=pc.ParseOptions(
            delimiter="\t" if tsv else ",", quote_char=False if tsv else '"', newlines_in_values=not tsv
        ),
        convert_options=pc.ConvertOptions(
            column_types=dict.fromkeys(text_columns, pa.string()), strings_can_be_null=False
        ),
    ))


def _json_lines(path: Path) -> Iterator[dict]:
    """Each line of a JSON Lines file as a JSON object, through the one JSON reader (depth-limited)."""
    with limits.open_regular(path, "a JSON Lines file") as stream:
        try:
            for number, line in enumerate(limits.bounded_lines(stream, BLOCK_BYTES), start=1):
                try:
                    row = limits.parse_json(line)
                except limits.JsonError as error:
                    raise UserError(f"{path} line {number} is not JSON a review may be ({error})") from None
                if not isinstance(row, dict):
                    raise UserError(f"{path} line {number} is not a JSON object: expected one object per line")
                yield row
        except limits.LineTooLong as error:
            raise UserError(f"{path}: {error}, more than a review and its fields may be") from None
        except OSError as error:
            raise UserError(f"cannot read {path}: {error.strerror or error}") from None


def _check_columns(path: Path, names: list, wanted: dict[str, str]) -> None:
    for key, name in wanted.items():
        if name and name not in names:
            shown = ", ".join(map(str, names))[:300]
            raise UserError(f"{path} has no column {name!r} ({key}); its columns: {shown}")
    for name in ("id", "label", "text"):
        key = f"download.{name}_column"
        if name in names and wanted[key] != name:
            raise UserError(
                f"{path} has a column {name!r} that is not {key} ({wanted[key] or 'none'}): data/raw names its own "
                f"column {name} so; set {key}: {name}, or rename the column"
            )


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _check_types(path: Path, schema: pa.Schema, params: DownloadParams) -> None:
    """Each column named once; the text is text, the label text or integers, and every other
    column flat: text, a number or a boolean."""
    names = schema.names
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise UserError(f"{path} has two columns named {repeated!r}: expected each name once")
    for name, kind in zip(schema.names, schema.types, strict=True):
        if name == params.text_column and not _is_text(kind):
            raise UserError(f"{path}: the text column {name!r} holds {kind}; expected text")
        elif name == params.label_column and not (_is_text(kind) or pa.types.is_integer(kind)):
            raise UserError(f"{path}: the labels ({name}) are {kind}; expected text or integers")
        elif not (_is_text(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
                  or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
            raise UserError(
                f"{path}: the column {name!r} holds {kind}; columns that travel to data/raw hold text, numbers "
                "or booleans: drop or convert it"
            )


def _review(where: str, row: dict, number: int, wanted: dict[str, str]) -> sources.Review:
    def value(key: str):
        return row.get(wanted[key]) if wanted[key] else None

    text, label = value("download.text_column"), value("download.label_column")
    if text is not None and not isinstance(text, str):
        raise UserError(f"{where}: the text is {type(text).__name__} {str(text)[:40]!r}; expected text")
    if text is None or not text.strip():
        raise UserError(f"{where} has no text: every row needs a text to learn from")
    longest = limits.MAX_REVIEW_BYTES
    if len(text) > longest // 4 and len(text.encode("utf-8", "surrogatepass")) > longest:
        raise UserError(f"{where}: the text is longer than {limits.size(longest)}, the longest review")
    if label is None or label == "":
        raise UserError(f"{where} has no label: every row needs its class")
    _check_name(where, "label", label)
    split = None
    if wanted["download.split_column"]:
        split = value("download.split_column")
        if split not in sources.SPLITS:
            raise UserError(f"{where}: the split is {str(split)[:40]!r}; expected train or test")
    review_id = number
    if wanted["download.id_column"]:
        review_id = value("download.id_column")
        _check_name(where, "id", review_id)
    extras = {name: cell for name, cell in row.items() if name not in wanted.values() or not name}
    for name, cell in extras.items():
        if name in ("id", "label", "text"):  # a JSON line may bring a field the first did not have
            raise UserError(f"{where} has a field {name!r} that is not download.{name}_column: data/raw names its "
                            f"own column {name} so")
        if isinstance(cell, (dict, list)):
            raise UserError(f"{where}: the field {str(name)[:40]!r} is nested; fields that travel to data/raw are "
                            "text, numbers or booleans")
        if isinstance(cell, str):
            _check_unicode(where, f"the field {str(name)[:40]!r}", cell)
    _check_unicode(where, "the text", text)
    return sources.Review(split, review_id, label, text, extras)


def _check_unicode(where: str, what: str, value: str) -> None:
    """Text that UTF-8 can hold: JSON's \\ud800 escapes make lone surrogates, which it cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UserError(f"{where}: {what} holds {value[error.start]!r}, a lone surrogate, which is not text") from None


def _check_name(where: str, what: str, value) -> None:
    """An id or a label: text, or an integer that int64 holds."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, int) and value not in _INT64):
        raise UserError(f"{where}: the {what} is {str(value)[:40]!r}; expected text or an integer (64 bits)")
    if isinstance(value, str):
        _check_unicode(where, f"the {what}", value)
