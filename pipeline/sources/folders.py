"""Source folders: one text file per review, a folder per class.

    <download.path>/train/<class>/*.txt
    <download.path>/test/<class>/*.txt      (optional: else download.test_size is held out)

the layout of keras.utils.text_dataset_from_directory, split by split (aclImdb's
train/neg and train/pos have it). The class is the folder's name; the id, the file's
name without .txt (an integer when it is one). Files and folders whose names start
with a dot are ignored; anything else that does not fit the layout is an error, so
a stray file never becomes a review, or a review goes missing, unnoticed.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline import limits, sources
from pipeline.cli import UserError
from pipeline.params import DownloadParams

LAYOUT = "<split>/<class>/<id>.txt, with train and optionally test as splits"


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    except OSError as error:
        raise UserError(f"cannot read {folder}: {error.strerror or error}") from None


def reviews(params: DownloadParams) -> Iterator[sources.Review]:
    root = Path(params.path)
    if not root.is_dir():
        raise UserError(f"download.path = {root} is not a folder; expected one of {LAYOUT}")
    splits = _entries(root)
    for entry in splits:
        if entry.name not in sources.SPLITS or not entry.is_dir():
            raise UserError(f"{entry} does not belong in {root}: expected {LAYOUT}")
    if root / "train" not in splits:
        raise UserError(f"{root} has no train folder: expected {LAYOUT}")
    has_test = root / "test" in splits
    for split_folder in splits:
        for class_folder in _entries(split_folder):
            if not class_folder.is_dir():
                raise UserError(f"{class_folder} is a file where a class folder belongs: expected {LAYOUT}")
            texts = _entries(class_folder)
            if not texts:
                raise UserError(f"{class_folder} holds no texts: expected a <id>.txt file per text of that class")
            for file in texts:
                yield _review(file, split_folder.name if has_test else None, _name(class_folder))


def _name(path: Path) -> str:
    """A file's or folder's name, which must be text: it becomes an id or a class."""
    name = path.name
    if any("\udc80" <= char <= "\udcff" for char in name):  # bytes that are not UTF-8, as Python keeps them
        raise UserError(f"{path!r}: the name is not UTF-8: rename it")
    return name


def _review(file: Path, split: str | None, label: str) -> sources.Review:
    if file.suffix != ".txt" or file.is_dir():
        raise UserError(f"{file} does not belong in a class folder: expected {LAYOUT}")
    stem = _name(file).removesuffix(".txt")
    data = limits.read_regular(file, "a review", limits.MAX_REVIEW_BYTES)
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UserError(f"{file} is not UTF-8 text (byte {error.start + 1}): save it as UTF-8") from None
    if not text.strip():
        raise UserError(f"{file} has no text: every file needs a text to learn from")
    # an integer id only where the name is one as written: 01.txt and 1.txt are two reviews
    canonical = stem.isascii() and stem.isdigit() and str(int(stem)) == stem and len(stem) < 19
    return sources.Review(split, int(stem) if canonical else stem, label, text)
