"""Atomic writes: an output is the old complete file or the new complete file, never half of one."""
import resource
import tempfile
import zipfile

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse

from pipeline import files
from pipeline.cli import UserError


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_write_that_fails_midway_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.txt"
    files.write_text(path, "old, complete\n")
    with pytest.raises(RuntimeError):
        with files.atomic_open(path, "w") as stream:
            stream.write("new, half")
            raise RuntimeError("killed")
    assert path.read_text() == "old, complete\n"
    assert leftovers(tmp_path) == []


def test_a_full_disk_is_a_one_line_error_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "table.parquet"
    files.write_parquet(path, pa.table({"x": [1]}))
    before = path.read_bytes()
    big = pa.table({"text": [f"review {i} " * 50 for i in range(2000)]})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # writes past 4 kB fail, as on a full disk
    try:
        with pytest.raises(UserError) as error:
            files.write_parquet(path, big)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(error.value) == f"cannot write {path}: File too large"
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_an_unwritable_output_directory_is_a_one_line_error(tmp_path):
    (tmp_path / "data").write_text("a file where a folder should be")
    with pytest.raises(UserError, match=r"^cannot write .*data/raw/train\.parquet: Not a directory$"):
        files.write_parquet(tmp_path / "data" / "raw" / "train.parquet", pa.table({"x": [1]}))


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "report"
    with files.atomic_folder(folder) as building:
        (building / "old.md").write_text("old")
    with pytest.raises(RuntimeError), files.atomic_folder(folder) as building:
        (building / "new.md").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in folder.iterdir()) == ["old.md"]
    with files.atomic_folder(folder) as building:
        (building / "new.md").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["new.md"]
    assert leftovers(tmp_path) == []


def test_an_unwritable_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "data").write_text("a file where a folder should be")
    with pytest.raises(UserError, match=r"^cannot write .*data/report: [^\n]+$"):
        with files.atomic_folder(tmp_path / "data" / "report"):
            pass


def test_the_temporary_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".metrics.json.k1ll3d.tmp"  # what SIGKILL between mkstemp and rename leaves
    stale.write_text('{"half": ')
    unrelated = tmp_path / ".other.json.abc.tmp"
    unrelated.write_text("not ours")
    files.write_json(tmp_path / "metrics.json", {"accuracy": 0.9})
    assert files.read_json(tmp_path / "metrics.json") == {"accuracy": 0.9}
    assert leftovers(tmp_path) == [unrelated.name]


def test_npz_from_spooled_arrays_holds_what_savez_writes_whatever_the_pieces(tmp_path):
    rng = np.random.default_rng(0)
    indices, data = rng.integers(0, 50, 100_000).astype(np.int32), rng.random(100_000, dtype=np.float32)
    arrays = {"indices": indices, "indptr": np.arange(11, dtype=np.int32), "format": b"csr", "shape": (10, 50)}
    np.savez(tmp_path / "expected.npz", **arrays, data=data)
    files.write_npz_arrays(tmp_path / "whole.npz", {**arrays, "data": data})
    spooled = {name: files.SpooledArray(values.dtype) for name, values in (("indices", indices), ("data", data))}
    for start in range(0, 100_000, 30_001):  # pieces that do not line up with anything
        spooled["indices"].append(indices[start : start + 30_001])
        spooled["data"].append(data[start : start + 30_001])
    files.write_npz_arrays(tmp_path / "spooled.npz", {**arrays, "indices": spooled["indices"], "data": spooled["data"]})
    assert (tmp_path / "spooled.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "spooled.npz") as written, zipfile.ZipFile(tmp_path / "expected.npz") as expected:
        assert written.namelist() == expected.namelist()  # members in numpy's order
        for name in expected.namelist():
            assert written.getinfo(name).compress_type == zipfile.ZIP_DEFLATED
            assert written.read(name) == expected.read(name), name


def test_a_matrix_written_as_npz_loads_as_scipy_saved_it(tmp_path):
    x = scipy.sparse.random(40, 30, density=0.2, format="csr", dtype=np.float32, random_state=0)
    files.write_npz(tmp_path / "x.npz", x)
    scipy.sparse.save_npz(tmp_path / "scipy.npz", x)
    loaded, expected = scipy.sparse.load_npz(tmp_path / "x.npz"), scipy.sparse.load_npz(tmp_path / "scipy.npz")
    assert loaded.format == expected.format and loaded.dtype == expected.dtype
    assert (loaded != expected).nnz == 0 and loaded.indptr.dtype == expected.indptr.dtype


def test_a_full_temporary_folder_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-there"))  # as TMPDIR would set it
    with pytest.raises(UserError, match=r"^cannot write a temporary file in .*not-there \(TMPDIR\): "):
        files.SpooledArray(np.int32)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spooled = files.SpooledArray(np.int32)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # writes past 4 kB fail, as on a full disk
    try:
        with pytest.raises(UserError, match=r"^cannot write a temporary file in .*: File too large$"):
            spooled.append(np.zeros(10_000, np.int32))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        spooled.close()
