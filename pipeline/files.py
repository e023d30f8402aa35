"""Reading and writing the files between stages; every write is atomic.

A stage killed mid-write leaves the previous complete file or none, never half
of one: data goes to a temporary file in the same directory, then os.replace.
The temporary file a killed stage leaves behind is removed by the next write of
the same output. A folder is written the same way, whole (atomic_folder).
"""
from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import limits
from pipeline.cli import UserError

if TYPE_CHECKING:  # imported where used: the stages without matrices start faster
    import scipy.sparse


UMASK = os.umask(0)  # the process's umask, read once (os.umask can only be read by setting it)
os.umask(UMASK)

# Deflate's fastest level: on the feature matrices' column indices it compresses
# seven times faster than numpy's and scipy's default (6), for files 12% larger.
NPZ_COMPRESSLEVEL = 1


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", ".tmp"
    for stale in path.parent.glob(glob.escape(prefix) + "*" + suffix):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A file to write `path` through, atomically; write errors become one line."""
    with write_errors_named(path), atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with open(tmp, mode, encoding=encoding, newline=newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())


@contextlib.contextmanager
def atomic_opens(paths: Sequence[Path]) -> Iterator[list[IO[bytes]]]:
    """Binary streams to write several files through: all of them are renamed into place
    when the block succeeds, none if it fails (the renames follow one another)."""
    with write_errors_named(paths[0].parent), contextlib.ExitStack() as renames:
        temporaries = [renames.enter_context(atomic_path(path)) for path in paths]
        with contextlib.ExitStack() as opened:
            streams = [opened.enter_context(open(tmp, "wb")) for tmp in temporaries]
            yield streams
            for stream in streams:
                stream.flush()
                os.fsync(stream.fileno())


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """A fresh folder beside `path`, renamed onto it (replacing a previous folder whole)
    only if the block succeeds, removed otherwise; write errors become one line."""
    with write_errors_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        with write_errors_named(path):
            yield tmp
            os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700; outputs get the usual permissions
            _replace_folder(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_folder(tmp: Path, path: Path) -> None:
    """tmp renamed to path; a previous folder there is set aside first (a folder cannot be
    renamed onto one that has files), and put back if the rename fails."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old.", suffix=".tmp"))
    os.replace(path, old / path.name)
    try:
        os.replace(tmp, path)
    except OSError:
        os.replace(old / path.name, path)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def write_errors_named(path: Path) -> Iterator[None]:
    """Turns a full disk or an unwritable directory into a one-line error naming the file."""
    try:
        yield
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def temporary_folder_errors_named() -> Iterator[None]:
    """Turns a full temporary folder into a one-line error naming it."""
    try:
        yield
    except OSError as error:
        folder = tempfile.gettempdir()
        raise UserError(f"cannot write a temporary file in {folder} (TMPDIR): {error.strerror or error}") from None


def temporary_file(prefix: str) -> IO[bytes]:
    """An unnamed file in the temporary folder (TMPDIR), gone once closed however the
    process ends; write to it within temporary_folder_errors_named()."""
    with temporary_folder_errors_named():
        return tempfile.TemporaryFile(prefix=prefix)


def write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as stream:
        stream.write(text)


def write_json(path: Path, value) -> None:
    write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path):
    try:
        return limits.parse_json(existing(path).read_bytes())
    except limits.JsonError as error:
        raise UserError(f"{path} is not JSON the pipeline can read ({error}): rebuild it with `dvc repro`") from None


def write_csv(path: Path, header: Sequence[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(existing(path), encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream, delimiter=delimiter))


def copy(source: Path, target: Path) -> None:
    with open(existing(source), "rb") as stream, atomic_open(target) as out:
        shutil.copyfileobj(stream, out)


def write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_open(path) as stream:
        pq.write_table(table, stream)


def write_parquet_groups(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    """A row group per table, so a file larger than memory is written as it is made; one
    table gives the bytes write_parquet gives."""
    with atomic_open(path) as stream, pq.ParquetWriter(stream, schema) as writer:
        for table in tables:
            writer.write_table(table)
            del table  # not held while the next one is made


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(existing(path), columns=columns)


def write_npz(path: Path, matrix: scipy.sparse.csr_matrix) -> None:
    """What scipy.sparse.save_npz writes, compressed at NPZ_COMPRESSLEVEL."""
    matrix = matrix.tocsr()
    write_npz_arrays(path, csr_members(matrix.indices, matrix.indptr, matrix.shape, matrix.data))


def csr_members(indices, indptr: np.ndarray, shape: tuple[int, int], data) -> dict[str, object]:
    """save_npz's members for a CSR matrix, in its order, with its types."""
    return {"indices": indices, "indptr": indptr, "format": b"csr", "shape": shape, "data": data}


def write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as stream:
        np.save(stream, array, allow_pickle=False)


class SpooledArray:
    """A 1-D array built a piece at a time in an unnamed temporary file (TMPDIR), for
    arrays too large to hold; write_npz_arrays copies it out. Close it when done."""

    _PIECE_BYTES = 16 << 20

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._file = temporary_file(prefix="spooled-array-")

    def append(self, piece: np.ndarray) -> None:
        piece = np.ascontiguousarray(piece, dtype=self.dtype)  # a copy only if the dtype differs
        with temporary_folder_errors_named():
            self._file.write(piece.data)
        self.size += piece.size

    def pieces(self) -> Iterator[bytes]:
        """The array's bytes from the start, in pieces of a bounded size."""
        with temporary_folder_errors_named():
            self._file.flush()
        self._file.seek(0)
        while piece := self._file.read(self._PIECE_BYTES):
            yield piece

    def close(self) -> None:
        self._file.close()


def write_npz_arrays(path: Path, arrays: Mapping[str, object]) -> None:
    """np.savez_compressed(path, **arrays) at NPZ_COMPRESSLEVEL, with each SpooledArray
    copied through a piece at a time rather than read whole. Deflate output does not
    depend on how its input is cut, and numpy writes the same .npy header for the same
    dtype and shape, so the bytes depend only on the arrays."""
    with atomic_open(path) as stream, zipfile.ZipFile(
        stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=NPZ_COMPRESSLEVEL, allowZip64=True
    ) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(array, SpooledArray):
                    header = {
                        "descr": np.lib.format.dtype_to_descr(array.dtype),
                        "fortran_order": False,
                        "shape": (array.size,),
                    }
                    np.lib.format.write_array_header_1_0(member, header)
                    for piece in array.pieces():
                        member.write(piece)
                else:
                    np.lib.format.write_array(member, np.asanyarray(array))


def read_npy(path: Path) -> np.ndarray:
    return np.load(existing(path), allow_pickle=False)


def read_npz(path: Path) -> scipy.sparse.csr_matrix:
    import scipy.sparse

    return scipy.sparse.load_npz(existing(path)).tocsr()


def count_rows(path: Path) -> int:
    """The length of a saved array, without reading it."""
    return np.load(existing(path), mmap_mode="r", allow_pickle=False).shape[0]


def existing(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"missing input {path}: run `dvc repro` to build it")
    return path
