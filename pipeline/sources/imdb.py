"""Source imdb: the Large Movie Review Dataset v1.0, the chapter's reviews.

The archive is read as a stream; nothing is unpacked to disk. With IMDB_ARCHIVE
set, that local copy is used instead of downloading, and checked by its
structure rather than its hash (repacked copies hash differently but hold the
same reviews, so the outputs are byte-identical either way).

Each labeled review becomes a review of its split with its file's id, labelled
negative or positive by its folder (download.target: sentiment), or by its star
rating (download.target: rating: 8 classes, 1-4 and 7-10).
"""
from __future__ import annotations

import os
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO

from isal import igzip, isal_zlib
from tqdm import tqdm

try:
    import libarchive
except OSError as missing:  # libarchive-c loads the system's libarchive, which slim images leave out
    print(
        f"error: reading the archive needs the libarchive library ({missing}): "
        "install it (apt install libarchive13, brew install libarchive) or set LIBARCHIVE to its path",
        file=sys.stderr,
    )
    raise SystemExit(2) from None

from pipeline import limits, paths, sources
from pipeline.cli import UserError
from pipeline.fetch import DownloadError, fetch
from pipeline.params import DownloadParams

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_ENV = "IMDB_ARCHIVE"
CACHE_ENV = "IMDB_CACHE_DIR"

NAMES = ("negative", "positive")  # the classes of target: sentiment, by folder
FOLDERS = ("neg", "pos")
_LABELS = {folder: label for label, folder in enumerate(FOLDERS)}
_REVIEW = re.compile(rf"^aclImdb/(train|test)/({'|'.join(_LABELS)})/(\d+)_(\d+)\.txt$")
_LABELED_FOLDER = re.compile(rf"^aclImdb/(train|test)/({'|'.join(_LABELS)})/")
_MAX_REVIEW_BYTES = 1 << 20  # the longest real review is about 14 kB; never read a bomb into memory
_READ_BYTES = 1 << 20
_FEED_BYTES = 64 << 10  # decompressed bytes handed to libarchive at a time: whole 512-byte tar blocks
_RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}
_MAX_ID = 2**31 - 1  # ids are stored as int32


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
class Tally:
    """What reading an archive found, besides the reviews themselves."""

    per_folder: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split, folder) → reviews
    unexpected: list[str] = field(default_factory=list)  # names of the members ignored as unexpected
    invalid_utf8: int = 0  # reviews decoded with U+FFFD in place of invalid bytes

    def summary(self, source: Path) -> str:
        example = f" (first: {self.unexpected[0]!r})" if self.unexpected else ""
        return (
            f"{source}: {self.per_folder.total()} labeled reviews; "
            f"{len(self.unexpected)} unexpected members ignored{example}; "
            f"{self.invalid_utf8} reviews with invalid UTF-8 decoded with replacement characters"
        )


@dataclass(frozen=True)
class Member:
    """An archive member as member_kind sees it: its name as tarfile gives it (a folder's
    without its trailing slash) and its type."""

    name: str
    is_file: bool  # a regular file; not a hard link, which libarchive may report as one
    is_dir: bool
    size: int

    @classmethod
    def of(cls, entry: libarchive.ArchiveEntry) -> Member:
        name = entry.pathname
        if isinstance(name, bytes):  # not text in the locale's encoding: decoded as tarfile does
            name = name.decode("utf-8", "surrogateescape")
        linked = entry.islnk  # a hard link's type is whatever its mode field says
        is_dir = entry.isdir and not linked
        return cls(name.rstrip("/") if is_dir else name, entry.isreg and not linked, is_dir, entry.size)


def member_kind(member: Member) -> str:
    """"review" (read), "other" (the dataset's other files and folders: skipped) or
    "unexpected" (links, devices, absolute or `..` paths, anything else: ignored and counted)."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or not (member.is_file or member.is_dir):
        return "unexpected"
    if member.is_file and _REVIEW.match(name):
        return "review" if member.size <= _MAX_REVIEW_BYTES else "unexpected"
    if _LABELED_FOLDER.match(name) or parts[0] != "aclImdb":
        return "unexpected"  # a labeled folder holds only <id>_<rating>.txt files
    return "other"


class _TarFeed:
    """The decompressed tar stream, as libarchive reads it.

    ISA-L's gzip (python-isal, a drop-in for Python's, three times as fast) decompresses
    it because libarchive does not verify the gzip checksum and length. An exception
    cannot pass through libarchive, so one raised here is kept and libarchive told to
    stop; read_reviews raises it again.
    """

    def __init__(self, unzipped: igzip.IGzipFile):
        self.unzipped = unzipped
        self.error: BaseException | None = None
        self.fed = 0  # bytes handed to libarchive so far
        self.last = memoryview(b"")  # the last of them, in libarchive's buffer

    def seekable(self) -> bool:
        return False  # so libarchive skips a member by reading through it

    def readinto(self, buffer) -> int:
        try:
            count = self.unzipped.readinto(buffer)
        except BaseException as error:  # Ctrl-C too: it is raised again once libarchive has stopped
            self.error = error
            return -1  # libarchive's "read error": it stops with ARCHIVE_FATAL
        self.fed += count
        self.last = memoryview(buffer)[:count]
        return count

    def unread(self, read: int) -> bytes:
        """What libarchive was handed beyond the first `read` bytes: when it has read to the
        end-of-archive marker, the data after it in the same buffer."""
        return self.last[max(0, len(self.last) - (self.fed - read)) :].tobytes()


def read_reviews(stream: IO[bytes], tally: Tally) -> Iterator[Review]:
    """The labeled reviews of a gzip tar stream as they come, counted in tally; members
    are read as streams, never extracted.

    The gzip layer is read to its end so its checksum and length are verified: a
    truncated or corrupted archive is an error, not a silently shorter dataset; after
    the tar layer's end-of-archive marker there may be only zeros. libarchive parses
    the tar layer: tarfile's header parsing in Python took most of the stage's time.
    """
    with igzip.IGzipFile(fileobj=stream, mode="rb") as unzipped:
        feed = _TarFeed(unzipped)
        try:
            with libarchive.stream_reader(feed, "tar", "none", block_size=_FEED_BYTES) as archive:
                yield from _archive_reviews(archive, tally)
                after_end = feed.unread(archive.bytes_read)
        except libarchive.ArchiveError:
            if feed.error:
                raise feed.error from None
            raise
        for chunk in chain([after_end], iter(partial(unzipped.read, _READ_BYTES), b"")):
            if chunk.strip(b"\0"):
                raise libarchive.ArchiveError("data after the end of the tar archive")


def _archive_reviews(archive: libarchive.read.ArchiveRead, tally: Tally) -> Iterator[Review]:
    for entry in archive:
        member = Member.of(entry)
        kind = member_kind(member)
        if kind == "unexpected":
            tally.unexpected.append(member.name)
        if kind != "review":
            continue
        text, valid = _decoded(b"".join(entry.get_blocks()))
        tally.invalid_utf8 += not valid
        split, folder, review_id, rating = _REVIEW.match(member.name).groups()
        tally.per_folder[split, folder] += 1
        yield Review(split, folder, int(review_id), int(rating), text)


def _decoded(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def reviews_in(path: Path, tally: Tally) -> Iterator[Review]:
    """The labeled reviews of the archive at path, in archive order; an unreadable archive
    is a one-line error."""
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: no such file (from {ARCHIVE_ENV})")
    try:
        with limits.open_regular(path, "a gzip tar archive") as raw, tqdm.wrapattr(
            raw, "read", total=os.fstat(raw.fileno()).st_size, desc=f"read {path.name}", mininterval=1
        ) as stream:
            yield from read_reviews(stream, tally)
    except libarchive.ArchiveError as error:  # its str() adds libarchive's internals
        raise UserError(f"{path}: not a readable gzip tar archive ({error.msg})") from None
    except (EOFError, zlib.error, isal_zlib.error, OSError) as error:
        raise UserError(f"{path}: not a readable gzip tar archive ({error})") from None


def check_review(review: Review, source: Path) -> None:
    """A review's rating must match its folder, and its id fit the table."""
    name = f"{review.split}/{review.folder}/{review.id}_{review.rating}.txt"
    ratings = _RATINGS[review.folder]
    if review.rating not in ratings:
        raise UserError(f"{source}: {name} has a rating outside {ratings.start}-{ratings.stop - 1}")
    if review.id > _MAX_ID:
        raise UserError(f"{source}: {name} has an id above {_MAX_ID}")


def check_counts(tally: Tally, per_folder: int, source: Path) -> None:
    """The archive must hold the full labeled dataset."""
    for split in paths.SPLITS:
        for folder in _LABELS:
            count = tally.per_folder[split, folder]
            if count != per_folder:
                raise UserError(
                    f"{source}: aclImdb/{split}/{folder} has {count} reviews, expected {per_folder} "
                    "(<id>_<rating>.txt files)"
                )


def reviews(params: DownloadParams) -> Iterator[sources.Review]:
    """The source's reviews, as they come; the archive is checked whole (every folder
    full, every rating in its folder's range) before the last is handed on."""
    local = os.environ.get(ARCHIVE_ENV)
    archive = Path(local) if local else official_archive()
    tally = Tally()
    for review in reviews_in(archive, tally):
        check_review(review, archive)
        label = review.rating if params.target == "rating" else NAMES[_LABELS[review.folder]]
        yield sources.Review(review.split, review.id, label, review.text)
    check_counts(tally, params.reviews_per_folder, archive)
    print(tally.summary(archive))
