"""Atomic writes: an output is the old complete file or the new complete file, never half of one."""
import resource

import pyarrow as pa
import pytest

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


def test_the_temporary_file_of_a_killed_write_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".metrics.json.k1ll3d.tmp"  # what SIGKILL between mkstemp and rename leaves
    stale.write_text('{"half": ')
    unrelated = tmp_path / ".other.json.abc.tmp"
    unrelated.write_text("not ours")
    files.write_json(tmp_path / "metrics.json", {"accuracy": 0.9})
    assert files.read_json(tmp_path / "metrics.json") == {"accuracy": 0.9}
    assert leftovers(tmp_path) == [unrelated.name]
