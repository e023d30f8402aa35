"""Stage download: the Large Movie Review Dataset v1.0 → data/raw/{train,test}.parquet.

The archive is read as a stream; nothing is unpacked to disk. With IMDB_ARCHIVE
set, that local copy is used instead of downloading, and checked by its
structure rather than its hash (repacked copies hash differently but hold the
same reviews, so the outputs are byte-identical either way).
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

import pyarrow as pa
from tqdm import tqdm

from pipeline import files, paths
from pipeline.cli import UserError, run
from pipeline.params import load_params

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
OFFICIAL_SIZE = 84_125_825
ARCHIVE_ENV = "IMDB_ARCHIVE"
CACHE_ENV = "IMDB_CACHE_DIR"

_REVIEW = re.compile(r"^aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_CHUNK = 1 << 20
_LABELS = {"neg": 0, "pos": 1}
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


def fetch(url: str, dest: Path, sha256: str, timeout: float = 60) -> Path:
    """Download url to dest with a progress bar; dest appears only once its sha256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, files.atomic_open(dest) as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="download", mininterval=1) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != sha256:
                raise UserError(
                    f"download of {url} is corrupt: sha256 {digest.hexdigest()}, expected {sha256}; "
                    f"the file was discarded. {_offline_hint()}"
                )
    except urllib.error.HTTPError as error:
        raise UserError(f"download of {url} failed: HTTP {error.code} {error.reason}; {_offline_hint()}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise UserError(f"download of {url} failed: {reason}; {_offline_hint()}") from None
    return dest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def official_archive() -> Path:
    cached = cache_dir() / "aclImdb_v1.tar.gz"
    if cached.exists() and file_sha256(cached) == OFFICIAL_SHA256:
        print(f"using the verified download in {cached}")
        return cached
    return fetch(OFFICIAL_URL, cached, OFFICIAL_SHA256)


def iter_reviews(stream: IO[bytes]) -> Iterable[Review]:
    """Labeled reviews from a gzip tar stream; members are read, never extracted."""
    with tarfile.open(fileobj=stream, mode="r|gz") as archive:
        for member in archive:
            match = _REVIEW.match(member.name)
            if not match or not member.isfile():
                continue
            split, folder, review_id, rating = match.groups()
            text = archive.extractfile(member).read().decode("utf-8", errors="replace")
            yield Review(split, folder, int(review_id), int(rating), text)


def read_archive(path: Path) -> list[Review]:
    try:
        size = path.stat().st_size
        with open(path, "rb") as raw, tqdm.wrapattr(
            raw, "read", total=size, desc=f"read {path.name}", mininterval=1
        ) as stream:
            return list(iter_reviews(stream))
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
    reviews = read_archive(archive)
    check_structure(reviews, params.reviews_per_folder, archive)
    for split in paths.SPLITS:
        table = reviews_table(r for r in reviews if r.split == split)
        files.write_parquet(paths.raw(split), table)
        print(f"{paths.raw(split)}: {table.num_rows} reviews")


if __name__ == "__main__":
    run(main)
