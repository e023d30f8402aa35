"""`python -m bench.scale`: the data stages on corpora 1, 2, 4 and 8 times the real reviews.

Each corpus is built from the real reviews (IMDB_ARCHIVE, or the download): a new
review takes the sentence count and rating of a real review of its split and label,
and sentences drawn at random from all reviews of that split and label. It is written
as an archive in the aclImdb layout and fed through the pipeline's own path,
download → vocab → vectorize (`dvc repro vectorize`, `download.reviews_per_folder`
= 12,500 × the scale), every stage under the benchmark's probe. The report gives each
stage's wall time and peak memory per scale, a least-squares line of time against
size, and the checks: at 8×, time ≤ 9 × the 1× time and peak memory ≤ 1 GB.

    python -m bench.scale [--scales 1 2 4 8] [--source imdb|table] [--out bench/scale.md]

With --source table the same corpora are written as one CSV file each and read by
the table source (report: bench/scale-table.md).
"""
from __future__ import annotations

import argparse
import csv
import io
import random
import re
import shutil
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.probe import Measurement
from bench.report import MAX_STAGE_BYTES
from bench.run import code_version, machine, measured_repro, progress, real_archive
from pipeline import files, markdown
from pipeline.cli import run
from pipeline.sources import imdb
from testbed.archives import read_archive
from testbed.project import make_project

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "scale.md"
SCALES = (1, 2, 4, 8)
DATA_STAGES = ("download", "vocab", "vectorize")
MAX_TIME_RATIO = 9  # at 8x the corpus: at most 9x the 1x time (linear, with room for noise)
REAL_PER_FOLDER = 12500
SEED = 20
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Source:
    """The real reviews of one split and label: their sentence counts and ratings, and
    every sentence they hold."""

    shapes: list[tuple[int, int]]  # (sentences, rating) of each review
    sentences: list[str]


def sources(archive: Path) -> dict[tuple[str, str], Source]:
    found: dict[tuple[str, str], Source] = defaultdict(lambda: Source([], []))
    for review in read_archive(archive).reviews:
        sentences = _SENTENCE_END.split(review.text)
        source = found[review.split, review.folder]
        source.shapes.append((len(sentences), review.rating))
        source.sentences.extend(sentences)
    return dict(found)


def corpus(real: dict[tuple[str, str], Source], scale: int):
    """(split, folder, id, rating, text) of each review of scale × the real reviews per folder."""
    rng = random.Random(f"{SEED}-{scale}")
    for (split, folder), source in sorted(real.items()):
        for review_id in range(REAL_PER_FOLDER * scale):
            count, rating = rng.choice(source.shapes)
            yield split, folder, review_id, rating, " ".join(rng.choice(source.sentences) for _ in range(count))


def write_archive(path: Path, real: dict[tuple[str, str], Source], scale: int) -> None:
    """The corpus as an archive in the aclImdb layout."""
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for split, folder, review_id, rating, text in corpus(real, scale):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"aclImdb/{split}/{folder}/{review_id}_{rating}.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def write_table(path: Path, real: dict[tuple[str, str], Source], scale: int) -> None:
    """The corpus as one CSV file (id, label, split, rating, text), for the table source."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "label", "split", "rating", "text"])
        for split, folder, review_id, rating, text in corpus(real, scale):
            label = imdb.NAMES[imdb.FOLDERS.index(folder)]
            writer.writerow([review_id, label, split, rating, text])


def measure_scale(workdir: Path, real: dict, scale: int, source: str) -> dict[str, Measurement]:
    folder = workdir / f"x{scale}"
    folder.mkdir()
    try:
        progress(f"{scale}x: writing the corpus ({source})")
        per_folder = REAL_PER_FOLDER * scale
        archive = folder / "aclImdb_v1.tar.gz"
        if source == "imdb":
            write_archive(archive, real, scale)
            project = make_project(folder / "project", archive, download={"reviews_per_folder": per_folder})
        else:
            table = {"source": "table", "path": "datasets/corpus.csv", "id_column": "id", "split_column": "split"}
            project = make_project(folder / "project", archive, download=table)
            write_table(project.path / "datasets" / "corpus.csv", real, scale)
        progress(f"{scale}x: dvc repro vectorize ({per_folder * len(real)} reviews)")
        _, stages = measured_repro(project, folder, "vectorize", stages=DATA_STAGES)
        return stages
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fit_line(sizes: list[float], times: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of times against sizes."""
    n = len(sizes)
    mean_x, mean_y = sum(sizes) / n, sum(times) / n
    spread = sum((x - mean_x) ** 2 for x in sizes)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(sizes, times, strict=True)) / spread if spread else 0.0
    return mean_y - slope * mean_x, slope


def _size_row(stage: str, results: dict[int, dict[str, Measurement]], scales: list[int]) -> list[str]:
    cells = [stage]
    for scale in scales:
        measured = results[scale][stage]
        cells += [f"{measured.wall_s:.2f}", f"{measured.peak_rss_bytes / 1e6:.0f}"]
    return cells


def report(results: dict[int, dict[str, Measurement]], machine_line: str, version: str, source: str = "imdb") -> str:
    scales = sorted(results)
    fed = (
        "written as an archive in the aclImdb layout, read by the imdb source" if source == "imdb"
        else "written as one CSV file, read by the table source (`--source table`)"
    )
    lines = [
        f"# Data stages against corpus size ({source} source)",
        "",
        f"Generated by `python -m bench.scale{' --source table' if source == 'table' else ''}` on {machine_line}; "
        f"{version}.",
        "Corpora built from the real reviews (sentences redrawn within each split and label), "
        f"{fed}; {REAL_PER_FOLDER * len(imdb.FOLDERS) * 2:,} reviews at 1x.",
        "",
        *markdown.table_lines(
            ["stage", *(f"{s}x {measure}" for s in scales for measure in ("wall (s)", "peak (MB)"))],
            [_size_row(stage, results, scales) for stage in DATA_STAGES],
        ),
        "",
    ]
    fits = []
    largest = scales[-1]
    for stage in DATA_STAGES:
        times = [results[s][stage].wall_s for s in scales]
        intercept, slope = fit_line([float(s) for s in scales], times)
        ratio = times[-1] / times[0]
        peak = results[largest][stage].peak_rss_bytes
        met = ratio <= MAX_TIME_RATIO * largest / 8 and peak <= MAX_STAGE_BYTES
        fits.append([
            stage, f"{intercept:.2f} + {slope:.2f} × scale", f"{ratio:.2f} (≤ {MAX_TIME_RATIO * largest / 8:g})",
            f"{peak / 1e6:.0f} MB (≤ {MAX_STAGE_BYTES / 1e6:.0f})", "yes" if met else "**no**",
        ])
    header = ["stage", "fit: seconds = a + b × scale", "time at largest / at 1x", "peak at largest", "met"]
    return "\n".join([*lines, *markdown.table_lines(header, fits)]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES))
    parser.add_argument("--source", choices=("imdb", "table"), default="imdb")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    out = args.out or (RESULTS if args.source == "imdb" else BENCH_DIR / "scale-table.md")
    machine_line, version = machine(), code_version()
    progress("reading the real reviews")
    real = sources(real_archive())
    workdir = Path(tempfile.mkdtemp(prefix="imdb-scale-"))
    try:
        results = {scale: measure_scale(workdir, real, scale, args.source) for scale in sorted(args.scales)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, machine_line, version, args.source)
    files.write_text(out, text)
    print(text, end="")


if __name__ == "__main__":
    run(main)
