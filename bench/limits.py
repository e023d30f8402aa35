"""The worst case of each kind of input a user controls, against pipeline/limits.py.

    python -m bench.limits      → prints the table and writes bench/limits.md

Each case runs in a child process under a memory limit (testbed/limited.py), as the
tests run them, and reports its exit status, its error line, its wall time and its
peak memory, which must stay within limits.MEMORY_BUDGET. The bundles and inputs are
generated here (random weights, made-up words): no review text is needed.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from bench.run import code_version, machine
from pipeline import files, inference, limits, markdown
from pipeline.params import ModelParams, TrainParams, VectorizeParams, VocabParams
from testbed.limited import Limited, run_limited
from testbed.limited import predict as predict_command

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "limits.md"
REVIEW = "w0000001 w0000002 w0000003 a film"


def bundle(num_words: int, units: int, terms: int | None = None) -> inference.Bundle:
    rng = np.random.default_rng(0)
    model = ModelParams(
        hidden_layers=1, units=units, activation="relu", optimizer="rmsprop", learning_rate=0.001,
        loss="binary_crossentropy", batch_size=512, seed=1, dropout=0.0, l2=0.0, nb_scaling=False,
    )
    kernel = rng.standard_normal((num_words, units), dtype=np.float32) * np.float32(0.01)
    layers = [
        inference.Layer(kernel, np.zeros(units, np.float32), "relu"),
        inference.Layer(rng.standard_normal((units, 1), dtype=np.float32), np.zeros(1, np.float32), "sigmoid"),
    ]
    vocabulary = [f"w{rank:07d}" for rank in range(1, (terms or num_words - 3))]
    return inference.Bundle(
        VocabParams(num_words, 0, (1, 1)), VectorizeParams("tfidf"), model, TrainParams(4), vocabulary, layers,
        idf=np.ones(num_words, np.float32), metrics={},
    )


def write(path: Path, value: inference.Bundle) -> Path:
    with open(path, "wb") as stream:
        inference.write_bundle(stream, value)
    return path


def zipped(path: Path, members: dict[str, bytes | Callable[[io.RawIOBase], None]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if callable(data):
                with archive.open(name, "w", force_zip64=True) as member:
                    data(member)
            else:
                archive.writestr(name, data)
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zeros(npy_shape: tuple[int, int]) -> Callable:
    """A float32 .npy of zeros, written a piece at a time."""

    def write_to(member) -> None:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": npy_shape})
        left = 4 * npy_shape[0] * npy_shape[1]
        piece = bytes(16 << 20)
        while left:
            member.write(piece[: min(left, len(piece))])
            left -= min(left, len(piece))

    return write_to


def cases(tmp: Path) -> list[tuple[str, str, Callable[[], Limited]]]:
    chapter = write(tmp / "chapter.npz", bundle(10_000, 16))
    largest_units = (limits.MAX_MODEL_PARAMETERS - 1) // (limits.MAX_NUM_WORDS + 2) - 1
    largest = tmp / "largest.npz"
    good = members(chapter)
    (tmp / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp / "fifo")
    long_line = tmp / "long-line.txt"
    with open(long_line, "wb") as stream:
        for _ in range(200):
            stream.write(b"w0000001 " * (1 << 17))  # 200 pieces of 1.1 MB: one line of 236 MB
    full_lines = tmp / "full-lines.txt"
    words = [f"w{rank:07d}" for rank in range(1, 9997)]
    line = " ".join(words * 12)[: limits.MAX_REVIEW_BYTES - 9].rsplit(" ", 1)[0]
    full_lines.write_text((line + "\n") * 64)  # 64 reviews of just under 1 MB
    explained = tmp / "explain.txt"
    explained.write_text(" ".join(words[:4000]) + "\n")  # about as many distinct words as --explain takes
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["units"] = 1_000_000_000
    (tmp / "units").mkdir()
    (tmp / "units" / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp / "device").mkdir()
    (tmp / "device" / "params.yaml").symlink_to("/dev/zero")

    def score(model: Path, *args: str, stdin=None) -> Callable[[], Limited]:
        return lambda: run_limited(predict_command("--model", str(model), *args), stdin=stdin)

    def with_file(path: Path, *args: str) -> Callable[[], Limited]:
        def run() -> Limited:
            with open(path, "rb") as stream:
                return run_limited(predict_command("--model", str(chapter), *args), stdin=stream)

        return run

    def stage(folder: Path) -> Callable[[], Limited]:
        return lambda: run_limited([sys.executable, "-m", "pipeline.stages.train"], cwd=folder)

    def built(path: Path, make: Callable[[], object]) -> Path:
        make()
        return path

    honest = tmp / "honest.npz"
    return [
        ("bundle", "/dev/zero as the bundle", score(Path("/dev/zero"), REVIEW)),
        ("bundle", "a symlink to /dev/zero", score(tmp / "zero", REVIEW)),
        ("bundle", "a FIFO no one writes to", score(tmp / "fifo", REVIEW)),
        ("bundle", "members each within their limit, together 640 MB of zeros (a 640 kB file)", lambda: score(
            built(honest, lambda: zipped(honest, {**good, "kernel_0.npy": zeros((10_000, 8_000)),
                                                 "idf.npy": zeros((10_000, 8_000))})), REVIEW)()),
        ("bundle", "a vocabulary of 64 MB of line breaks (64 kB packed)", lambda: score(zipped(
            tmp / "lines.npz", {**good, "vocabulary.txt": b"\n" * (limits.MAX_VOCABULARY_BYTES - 1)}), REVIEW)()),
        ("bundle", "metadata.json of 1 MB of nested arrays", lambda: score(zipped(
            tmp / "nested.npz", {**good, "metadata.json": b"[" * (1 << 19) + b"]" * (1 << 19)}), REVIEW)()),
        ("bundle", "4,000 members", lambda: score(zipped(
            tmp / "many.npz", {**good, **{f"m{n}": b"" for n in range(4000)}}), REVIEW)()),
        ("bundle", f"the largest accepted: {limits.MAX_NUM_WORDS:,} terms, {largest_units} units, one review",
         lambda: score(built(largest, lambda: write(largest, bundle(limits.MAX_NUM_WORDS, largest_units))),
                       REVIEW)()),
        ("bundle", "the largest accepted, --explain", lambda: score(largest, "--explain", REVIEW)()),
        ("input", "--file /dev/zero", lambda: run_limited(predict_command(
            "--model", str(chapter), "--file", "/dev/zero"))),
        ("input", "stdin from /dev/zero", with_file(Path("/dev/zero"))),
        ("input", "one line of 236 MB on stdin", with_file(long_line)),
        ("input", "64 reviews of 1 MB each (the chapter's model)", with_file(full_lines)),
        ("input", "--explain, 4,000 distinct words in one review", with_file(explained, "--explain")),
        ("input", "64 reviews of 1 MB, --explain", with_file(full_lines, "--explain")),
        ("params", "model.units = 1,000,000,000 (python -m pipeline.stages.train)", stage(tmp / "units")),
        ("params", "params.yaml a symlink to /dev/zero", stage(tmp / "device")),
    ]


def _outcome(result: Limited, folder: str) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error: ", "warning: "))]
    first = errors[0] if errors else ""
    first = first.replace(folder, "$TMP")
    if len(first) > 150:
        first = first[:149] + "…"
    return f"exit {result.status}" + (f": `{first}`" if first else f", {len(result.stdout.splitlines())} lines out")


def main() -> None:
    run_at = f"{code_version()}; {machine()}"  # as the run starts: the tree it measures
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind, name, run in cases(Path(folder)):
            result = run()
            clean = "yes" if result.ended_cleanly() else "**no**"
            rows.append([kind, name, _outcome(result, folder), f"{result.seconds:.2f} s",
                         f"{result.peak_bytes / 1e6:.0f} MB", clean])
            print(markdown.row(rows[-1]), flush=True)
    report = "\n".join([
        "# Worst cases of what a user controls",
        "",
        "Generated by `python -m bench.limits`: each case in a child process under a memory limit, with its",
        f"exit status, first error line, wall time and peak memory (the budget: {limits.size(limits.MEMORY_BUDGET)};",
        "limits in `pipeline/limits.py`). Clean: exit 0, 1 or 2, every error one line, no traceback, within the",
        "budget.",
        "",
        f"Run at {run_at}.",
        "",
        *markdown.table_lines(["kind", "case", "outcome", "time", "peak memory", "clean"], rows),
        "",
    ])
    files.write_text(REPORT, report)
    print(f"{REPORT.relative_to(ROOT)} written")


if __name__ == "__main__":
    from pipeline.cli import run

    run(main)
