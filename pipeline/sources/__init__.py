"""Where labeled texts come from: one module per source, behind one small interface.

A source is a module of this package named after `download.source` in params.yaml,
with one function:

    def reviews(params: DownloadParams) -> Iterator[Review]

that hands on every review of the dataset, in any order, each with its split
("train", "test", or None where the source has no test split), its id (None: the
download stage numbers them), its label (a string or an integer: the class, as the
user names it) and its text. A problem with the data is a UserError naming the file,
the row or line, and what was expected. The download stage (pipeline/stages/download.py)
writes the reviews as data/raw/{train,test}.parquet, the same way for every source;
from there on the pipeline knows only id, label and text.

Adding a source is adding a module here: imdb (the chapter's archive), table (CSV,
TSV, JSON Lines or parquet) and folders (<split>/<class>/*.txt).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

SPLITS = ("train", "test")


@dataclass
class Review:
    split: str | None  # train, test, or None: held out for test or not by the download stage
    id: int | str | None
    label: int | str
    text: str
    extras: dict = field(default_factory=dict)  # further columns of a table, kept as they are


def module(name: str):
    """The source module named in params.yaml (download.source)."""
    return importlib.import_module(f"pipeline.sources.{name}")
