"""`python -m bench.stages -S section.key=value …`: wall time and peak memory of every
stage for one configuration, on the real reviews (IMDB_ARCHIVE, or the download).

The configuration runs in a fresh copy of the project, each stage under the same
probe as `python -m bench`; a markdown table goes to stdout. For example, the
best configuration of `make experiments`:

    python -m bench.stages -S 'vocab.ngram_range=[1,2]' -S vocab.num_words=100000 …
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import yaml

from bench.report import MAX_STAGE_BYTES
from bench.run import measured_repro, progress, real_archive
from pipeline import files, markdown
from pipeline.cli import UserError, run
from testbed.project import make_project


def parse_changes(pairs: list[str]) -> dict[str, dict]:
    """['model.units=32'] -> {'model': {'units': 32}}; values are YAML, as for `dvc exp run -S`."""
    changes: dict[str, dict] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        section, dot, name = key.partition(".")
        if not (equals and dot and section and name):
            raise UserError(f"-S {pair!r}: expected section.key=value, for example -S model.units=32")
        changes.setdefault(section, {})[name] = yaml.safe_load(value)
    return changes


def table(stages: dict, metrics: dict) -> str:
    rows = [
        [name, f"{measured.wall_s:.2f}", f"{measured.peak_rss_bytes / 1e6:.0f}",
         "yes" if measured.peak_rss_bytes <= MAX_STAGE_BYTES else "**no**"]
        for name, measured in stages.items()
    ]
    lines = markdown.table_lines(["stage", "wall (s)", "peak memory (MB)", "within 1 GB"], rows)
    validation = metrics["validation"]
    lines.append("")
    lines.append(
        f"validation accuracy {validation['val_accuracy_at_best']} at epoch {validation['best_epoch']}; "
        f"test accuracy {metrics['test']['accuracy']}"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__.splitlines()[0])
    parser.add_argument("-S", dest="changes", action="append", default=[], metavar="section.key=value")
    changes = parse_changes(parser.parse_args(argv).changes)
    workdir = Path(tempfile.mkdtemp(prefix="imdb-stages-"))
    try:
        project = make_project(workdir / "project", real_archive(), **changes)
        progress(f"running dvc repro in {project.path}")
        _, measured = measured_repro(project, workdir)
        report = table(measured, files.read_json(project.path / "metrics" / "metrics.json"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report, end="")


if __name__ == "__main__":
    run(main)
