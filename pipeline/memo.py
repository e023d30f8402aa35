"""Fits made before, found again by what determines them.

The validation run and the final fit share the train stage, so that TensorFlow
starts once per pipeline run; but DVC's run-cache restores a stage only when all of
its params match, and `dvc exp run -S train.epochs=5` would then fit the validation
run again. A fit is a pure function of its params, the files it reads, the
project's code and the libraries and processor that run it; train keeps the folder
each fit wrote under data/memo/<key>/ and restores it when the same key comes back.
So an experiment that changes only train.* fits once, and one that changes only
validate.* fits once too while train.epochs is a number (or `best` picks the same
epoch).

Entries are what a fit writes (DVCLive's logs; the model and its bundle); the least
recently used go once there are more than MEMO_ENTRIES. Deleting data/memo/ at any
time costs only fits.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from pipeline import files, paths

MEMO_ENTRIES = 16
# The libraries a fit's numbers depend on: another version may round differently.
LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "dvclive")
_CHUNK = 1 << 20


def fit_key(kind: str, params: Mapping[str, object], inputs: Iterable[Path]) -> str:
    """The key of a fit: a digest of its kind, params, input files, the package's code,
    the libraries' versions and the processor (TensorFlow's CPU kernels round
    differently on different processor families)."""
    digest = hashlib.sha256()
    described = {
        "kind": kind,
        "params": params,
        "libraries": {name: _version(name) for name in LIBRARIES},
        "processor": _processor(),
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    package = Path(__file__).parent
    named = [(str(path), path) for path in inputs]
    named += [(path.relative_to(package).as_posix(), path) for path in sorted(package.rglob("*.py"))]
    for name, path in named:
        digest.update(name.encode() + b"\0")
        _add_file(digest, path)
    return digest.hexdigest()


def _add_file(digest, path: Path) -> None:
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    digest.update(b"\0")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _processor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def restore(key: str, folder: Path, root: Path = paths.MEMO_DIR) -> bool:
    """Writes the files kept under key into folder; False if none are kept."""
    entry = root / key
    if not entry.is_dir():
        return False
    for source in sorted(entry.rglob("*")):
        if source.is_file():
            target = folder / source.relative_to(entry)
            target.parent.mkdir(parents=True, exist_ok=True)
            files.copy(source, target)
    os.utime(entry)  # recently used: evicted last
    return True


def keep(key: str, folder: Path, root: Path = paths.MEMO_DIR) -> None:
    """Keeps a copy of folder's files under key, made whole before it takes the key's
    name; then evicts the least recently used entries beyond MEMO_ENTRIES. A memo that
    cannot be written is only a warning: the fit itself is done."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not (root / key).exists():
            staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.", suffix=".tmp"))
            try:
                shutil.copytree(folder, staging, dirs_exist_ok=True)
                os.replace(staging, root / key)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        _evict(root)
    except OSError as error:
        print(f"warning: could not keep this fit in {root} ({error.strerror or error}); the next run fits again")


def _evict(root: Path) -> None:
    entries = sorted((entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")),
                     key=lambda entry: entry.stat().st_mtime, reverse=True)
    for stale in entries[MEMO_ENTRIES:]:
        shutil.rmtree(stale, ignore_errors=True)
    for leftover in root.glob(".*.tmp"):  # a copy a killed run left half made
        shutil.rmtree(leftover, ignore_errors=True)
