"""Stage download: the Large Movie Review Dataset v1.0 → data/raw/{train,test}.parquet.

The archive is read as a stream; nothing is unpacked to disk. With IMDB_ARCHIVE
set, that local copy is used instead of downloading, and checked by its
structure rather than its hash (repacked copies hash differently but hold the
same reviews, so the outputs are byte-identical either way).
"""
from __future__ import annotations

import gzip
import os
import re
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
from tqdm import tqdm

from pipeline import files, labels, paths
from pipeline.cli import UserError, run
from pipeline.fetch import DownloadError, fetch
from pipeline.params import load_params

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_ENV = "IMDB_ARCHIVE"
CACHE_ENV = "IMDB_CACHE_DIR"

_LABELS = {folder: label for label, folder in enumerate(labels.FOLDERS)}
_REVIEW = re.compile(rf"^aclImdb/(train|test)/({'|'.join(_LABELS)})/(\d+)_(\d+)\.txt$")
_LABELED_FOLDER = re.compile(rf"^aclImdb/(train|test)/({'|'.join(_LABELS)})/")
_MAX_REVIEW_BYTES = 1 << 20  # the longest real review is about 14 kB; never read a bomb into memory
_READ_BYTES = 1 << 20
_RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}


@dataclass(frozen=True)
class Review:
    split: str
    folder: str  # pos or neg
    id: int
    rating: int
    text: str


def cache_dir() -> Path:
    """Where a verified download is kept, so a rerun or a second clone does not fetch it again."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imdb-sentiment-pipeline"


def _offline_hint() -> str:
    return f"to use a local copy instead, run: {ARCHIVE_ENV}=/path/to/aclImdb_v1.tar.gz dvc repro"


def official_archive(url: str = OFFICIAL_URL, sha256: str = OFFICIAL_SHA256) -> Path:
    """The official archive, verified, from the cache or downloaded (resuming a partial download)."""
    try:
        return fetch(url, cache_dir() / "aclImdb_v1.tar.gz", sha256)
    except DownloadError as error:
        raise DownloadError(f"{error}; {_offline_hint()}") from None


@dataclass
class ArchiveContents:
    reviews: list[Review] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # names of the members ignored as unexpected
    invalid_utf8: int = 0  # reviews decoded with U+FFFD in place of invalid bytes

    def summary(self, source: Path) -> str:
        example = f" (first: {self.unexpected[0]!r})" if self.unexpected else ""
        return (
            f"{source}: {len(self.reviews)} labeled reviews; "
            f"{len(self.unexpected)} unexpected members ignored{example}; "
            f"{self.invalid_utf8} reviews with invalid UTF-8 decoded with replacement characters"
        )


def member_kind(member: tarfile.TarInfo) -> str:
    """"review" (read), "other" (the dataset's other files and folders: skipped) or
    "unexpected" (links, devices, absolute or `..` paths, anything else: ignored and counted)."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
        return "unexpected"
    if member.isfile() and _REVIEW.match(name):
        return "review" if member.size <= _MAX_REVIEW_BYTES else "unexpected"
    if _LABELED_FOLDER.match(name) or parts[0] != "aclImdb":
        return "unexpected"  # a labeled folder holds only <id>_<rating>.txt files
    return "other"


def read_reviews(stream: IO[bytes]) -> ArchiveContents:
    """The labeled reviews of a gzip tar stream; members are read as streams, never extracted.

    The gzip layer is read to its end so its checksum and length are verified: a
    truncated or corrupted archive is an error, not a silently shorter dataset.
    """
    contents = ArchiveContents()
    with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
        with tarfile.open(fileobj=unzipped, mode="r|") as archive:
            for member in archive:
                kind = member_kind(member)
                if kind == "unexpected":
                    contents.unexpected.append(member.name)
                if kind != "review":
                    continue
                text, valid = _decoded(archive.extractfile(member).read())
                contents.invalid_utf8 += not valid
                split, folder, review_id, rating = _REVIEW.match(member.name).groups()
                contents.reviews.append(Review(split, folder, int(review_id), int(rating), text))
        while chunk := unzipped.read(_READ_BYTES):
            if chunk.strip(b"\0"):
                raise tarfile.ReadError("data after the end of the tar archive")
    return contents


def _decoded(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def read_archive(path: Path) -> ArchiveContents:
    try:
        size = path.stat().st_size
        with open(path, "rb") as raw, tqdm.wrapattr(
            raw, "read", total=size, desc=f"read {path.name}", mininterval=1
        ) as stream:
            return read_reviews(stream)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (from {ARCHIVE_ENV})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise UserError(f"{path}: not a readable gzip tar archive ({error})") from None


def check_structure(reviews: list[Review], per_folder: int, source: Path) -> None:
    """The archive must hold the full labeled dataset, with ratings that match the folders."""
    for review in reviews:
        if review.rating not in _RATINGS[review.folder]:
            raise UserError(
                f"{source}: {review.split}/{review.folder}/{review.id}_{review.rating}.txt has a "
                f"rating outside {_RATINGS[review.folder].start}-{_RATINGS[review.folder].stop - 1}"
            )
    for split in paths.SPLITS:
        for folder in _LABELS:
            count = sum(1 for r in reviews if r.split == split and r.folder == folder)
            if count != per_folder:
                raise UserError(
                    f"{source}: aclImdb/{split}/{folder} has {count} reviews, expected {per_folder} "
                    "(<id>_<rating>.txt files)"
                )


def reviews_table(reviews: Iterable[Review]) -> pa.Table:
    """One split as a table ordered by id, then label, so both labels interleave."""
    ordered = sorted(reviews, key=lambda r: (r.id, _LABELS[r.folder]))
    return pa.table(
        {
            "id": pa.array([r.id for r in ordered], pa.int32()),
            "rating": pa.array([r.rating for r in ordered], pa.int8()),
            "label": pa.array([_LABELS[r.folder] for r in ordered], pa.int8()),
            "text": pa.array([r.text for r in ordered], pa.string()),
        }
    )


def main() -> None:
    params = load_params().download
    local = os.environ.get(ARCHIVE_ENV)
    archive = Path(local) if local else official_archive()
    contents = read_archive(archive)
    check_structure(contents.reviews, params.reviews_per_folder, archive)
    print(contents.summary(archive))
    for split in paths.SPLITS:
        table = reviews_table(r for r in contents.reviews if r.split == split)
        files.write_parquet(paths.raw(split), table)
        print(f"{paths.raw(split)}: {table.num_rows} reviews")


if __name__ == "__main__":
    run(main)
