"""Small archives in the aclImdb layout, generated for the tests and the benchmark,
and any archive read whole into memory.

Reviews are generated from a few sentiment words mixed into neutral filler, so
a model can learn them; nothing here comes from the real dataset.
"""
from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.sources import imdb

POSITIVE = ["wonderful", "brilliant", "moving", "superb", "delightful", "charming", "masterpiece"]
NEGATIVE = ["boring", "awful", "dull", "terrible", "wooden", "tedious", "mess"]
NEUTRAL = [
    "the", "film", "movie", "a", "and", "of", "plot", "actor", "scene", "story", "it's",
    "director", "music", "camera", "character", "was", "is", "this", "with", "ending",
]


def review_text(rng: random.Random, positive: bool) -> str:
    lean, other = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    words = [rng.choice(NEUTRAL) for _ in range(rng.randint(20, 40))]
    words += [rng.choice(lean) for _ in range(rng.randint(2, 4))] + [rng.choice(other)]
    rng.shuffle(words)
    half = len(words) // 2
    return " ".join(words[:half]).capitalize() + ".<br /><br />" + " ".join(words[half:]) + "!"


def review_members(per_folder: int, seed: int = 0) -> dict[str, bytes]:
    """{member name: bytes} for the four labeled folders."""
    rng = random.Random(seed)
    members = {}
    for split in ("train", "test"):
        for folder in ("neg", "pos"):
            for review_id in range(per_folder):
                rating = rng.choice([7, 8, 9, 10]) if folder == "pos" else rng.choice([1, 2, 3, 4])
                name = f"aclImdb/{split}/{folder}/{review_id}_{rating}.txt"
                members[name] = review_text(rng, folder == "pos").encode("utf-8")
    return members


def write_archive(path: Path, members: dict[str, bytes], shuffle_seed: int | None = None) -> Path:
    """A gzip tar of the members (in a shuffled order when shuffle_seed is given)."""
    names = list(members)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(names)
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            archive.addfile(info, io.BytesIO(members[name]))
    return path


def official_extras() -> dict[str, bytes]:
    """What the official archive has beyond the labeled reviews; the pipeline must ignore it."""
    return {
        "aclImdb/README": b"Large Movie Review Dataset v1.0\n",
        "aclImdb/imdb.vocab": b"the\nand\n",
        "aclImdb/train/labeledBow.feat": b"9 0:9 1:1\n",
        "aclImdb/train/unsup/0_0.txt": b"an unlabeled review",
        "aclImdb/train/urls_pos.txt": b"http://www.imdb.com/title/tt0000000/usercomments\n",
    }


@dataclass
class ArchiveContents:
    """Every review of an archive in memory, for small archives; the download stage streams
    them (imdb.reviews_in)."""

    reviews: list[imdb.Review]
    tally: imdb.Tally


def read_archive(path: Path) -> ArchiveContents:
    tally = imdb.Tally()
    return ArchiveContents(list(imdb.reviews_in(path, tally)), tally)


def reviews_table(reviews: Iterable[imdb.Review]) -> pa.Table:
    """One split as data/raw holds it (target: sentiment), from reviews in memory."""
    reviews = list(reviews)
    ids = np.array([r.id for r in reviews], np.int32)
    labels = np.array([imdb._LABELS[r.folder] for r in reviews], np.int8)
    ordered = [reviews[row] for row in np.lexsort((labels, ids))]
    return pa.table(
        {
            "id": pa.array([r.id for r in ordered], pa.int32()),
            "label": pa.array([imdb.NAMES[imdb._LABELS[r.folder]] for r in ordered], pa.string()),
            "text": pa.array([r.text for r in ordered], pa.string()),
        }
    )
