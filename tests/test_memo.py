"""data/memo/: a fit is restored only for exactly the inputs that made it."""
from __future__ import annotations

import os

import pytest

from pipeline import memo


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "train.npz"
    path.write_bytes(b"features")
    return [path]


def test_a_fit_key_changes_with_any_param_or_input_byte_and_only_then(inputs):
    key = memo.fit_key("validation", {"model": {"units": 16}}, inputs)
    assert memo.fit_key("validation", {"model": {"units": 16}}, inputs) == key
    assert memo.fit_key("validation", {"model": {"units": 32}}, inputs) != key
    assert memo.fit_key("final", {"model": {"units": 16}}, inputs) != key
    inputs[0].write_bytes(b"featureS")
    assert memo.fit_key("validation", {"model": {"units": 16}}, inputs) != key


def test_a_kept_folder_is_restored_file_for_file_and_an_unknown_key_restores_nothing(tmp_path):
    made = tmp_path / "made"
    (made / "live/plots").mkdir(parents=True)
    (made / "live/plots/loss.tsv").write_text("step\tloss\n0\t0.5\n")
    (made / "live/metrics.json").write_text("{}")
    root = tmp_path / "memo"
    memo.keep("k1", made, root)

    restored = tmp_path / "restored"
    assert memo.restore("k1", restored, root)
    assert sorted(p.relative_to(restored).as_posix() for p in restored.rglob("*") if p.is_file()) == [
        "live/metrics.json", "live/plots/loss.tsv",
    ]
    assert (restored / "live/plots/loss.tsv").read_text() == "step\tloss\n0\t0.5\n"
    assert not memo.restore("k2", tmp_path / "other", root)
    assert not (tmp_path / "other").exists()


def test_the_least_recently_used_entries_go_beyond_the_limit(tmp_path, monkeypatch):
    made = tmp_path / "made"
    made.mkdir()
    (made / "f").write_text("x")
    root = tmp_path / "memo"
    for age, key in enumerate(["old", "used", "new"]):
        memo.keep(key, made, root)
        os.utime(root / key, (1000 + age, 1000 + age))
    monkeypatch.setattr(memo, "MEMO_ENTRIES", 2)
    memo.restore("old", tmp_path / "out", root)  # used again: now the most recent
    memo.keep("newest", made, root)
    assert sorted(entry.name for entry in root.iterdir()) == ["newest", "old"]


def test_a_copy_a_killed_run_left_half_made_is_never_restored_and_is_cleared(tmp_path):
    root = tmp_path / "memo"
    (root / ".k1.abc.tmp").mkdir(parents=True)
    assert not memo.restore("k1", tmp_path / "out", root)
    made = tmp_path / "made"
    made.mkdir()
    memo.keep("k2", made, root)
    assert [entry.name for entry in root.iterdir()] == ["k2"]
