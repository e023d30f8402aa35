"""`python -m bench.team [--remote URL] [--keyfile PATH]`: what working as a team costs,
on the real reviews (IMDB_ARCHIVE, or the download), in fresh clones of this commit.

- A: `dvc repro` (everything, from the archive), then `dvc push --run-cache`.
- B: `dvc pull`, then the first `imdb-predict`: no stage runs.
- C: `dvc exp run -S model.units=32 --pull --allow-missing`: only the model stages
  run, on the features it fetches; then it pushes its results and run-cache.
- D: the same experiment: restored from the remote's run-cache, nothing trained.

The remote is a new folder unless --remote names another (an SSH URL with
--keyfile). Bytes moved are the sizes of the DVC objects each clone sent or
received. The markdown report goes to stdout and to --out.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.run import code_version, machine, progress, real_archive
from pipeline import files, markdown
from pipeline.cli import UserError, run

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ("model.units=32",)
REVIEW = "This movie was a wonderful surprise"


@dataclass
class Step:
    clone: str
    command: str
    seconds: float
    stages_run: list[str]
    bytes_moved: int | None


class Clone:
    def __init__(self, name: str, folder: Path, env: dict):
        self.name, self.path, self.env = name, folder / name, env
        subprocess.run(["git", "clone", "-q", str(ROOT), str(self.path)], check=True)

    def timed(self, *args: str) -> tuple[float, str]:
        started = time.monotonic()
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            raise UserError(
                f"{self.name}: `{' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-500:]}"
            )
        return seconds, result.stdout + result.stderr

    def cache_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path / ".dvc/cache").rglob("*") if p.is_file())

    def step(self, *args: str, moved: str | None = None) -> Step:
        """Runs a command; moved="in" counts the objects it brought into the cache,
        "out" everything in the cache (what a push from a new clone sends)."""
        before = self.cache_bytes()
        seconds, output = self.timed(*args)
        after = self.cache_bytes()
        progress(f"{self.name}: {' '.join(args)}: {seconds:.1f} s")
        bytes_moved = {"in": after - before, "out": after, None: None}[moved]
        return Step(self.name, " ".join(args), seconds, ran(output), bytes_moved)


def ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def configure_remote(clone: Clone, url: str, keyfile: str | None) -> None:
    # --local: a measurement's remote never ends up in the project's committed config
    subprocess.run(["dvc", "remote", "add", "--local", "-d", "bench", url], cwd=clone.path, env=clone.env, check=True)
    if keyfile:
        subprocess.run(
            ["dvc", "remote", "modify", "--local", "bench", "keyfile", keyfile],
            cwd=clone.path,
            env=clone.env,
            check=True,
        )


def model_stage_outputs() -> set[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {
        next(iter(out)) if isinstance(out, dict) else out
        for name in ("train", "evaluate")
        for out in stages[name]["outs"]
    }


def fetched_bytes(clone: Clone) -> int:
    """The data files a clone has but did not write itself: what --pull fetched."""
    written = model_stage_outputs()
    return sum(
        p.stat().st_size
        for p in (clone.path / "data").rglob("*")
        if p.is_file() and str(p.relative_to(clone.path)) not in written
    )


def measure(folder: Path, url: str, keyfile: str | None) -> list[Step]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "IMDB_ARCHIVE": str(real_archive()),
        "IMDB_CACHE_DIR": str(folder / "download-cache"),
    }
    no_archive = {**env, "IMDB_ARCHIVE": str(folder / "no-archive.tar.gz")}  # a stage that downloads would fail
    steps = []
    a = Clone("A", folder, env)
    configure_remote(a, url, keyfile)
    steps.append(a.step("dvc", "repro"))
    steps.append(a.step("dvc", "push", "--run-cache", moved="out"))

    b = Clone("B", folder, no_archive)
    configure_remote(b, url, keyfile)
    steps.append(b.step("dvc", "pull", moved="in"))
    steps.append(b.step("imdb-predict", REVIEW))
    steps.append(b.step("dvc", "repro"))

    experiment = [arg for change in EXPERIMENT for arg in ("-S", change)]
    c = Clone("C", folder, no_archive)
    configure_remote(c, url, keyfile)
    c_run = c.step("dvc", "exp", "run", *experiment, "--pull", "--allow-missing")
    c_run.bytes_moved = fetched_bytes(c)
    steps.append(c_run)
    steps.append(c.step("dvc", "push", "--run-cache"))

    d = Clone("D", folder, no_archive)
    configure_remote(d, url, keyfile)
    steps.append(d.step("dvc", "exp", "run", *experiment, "--pull", "--allow-missing", moved="in"))
    return steps


def render(steps: list[Step], remote: str) -> str:
    rows = [
        [s.clone, f"`{s.command}`", f"{s.seconds:.1f}", ", ".join(s.stages_run) or "none",
         "–" if s.bytes_moved is None else f"{s.bytes_moved / 1e6:.1f}"]
        for s in steps
    ]
    table = markdown.table(["clone", "command", "wall (s)", "stages run", "MB moved"], rows)

    def seconds(clone: str, command: str) -> float:
        return next(s.seconds for s in steps if s.clone == clone and s.command.startswith(command))

    repro = seconds("A", "dvc repro")
    pull = seconds("B", "dvc pull") + seconds("B", "imdb-predict")
    return (
        "# Working as a team: transfers and times\n\n"
        f"Generated by `python -m bench.team` on {code_version()}, remote: {remote}.\n"
        f"Machine: {machine()}.\n\n"
        f"{table}\n"
        f"B's `dvc pull` and first prediction: {pull:.1f} s, against {repro:.1f} s for A's full `dvc repro`.\n"
        "MB moved (10⁶ bytes): A's push, everything in its cache; B's pull and D's restore, the objects they "
        "received; C's run, the files it fetched rather than wrote.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.team", description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", help="DVC remote URL (default: a new folder)")
    parser.add_argument("--keyfile", help="SSH private key for an ssh:// remote")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("team.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        folder = Path(tmp)
        url = args.remote or str(folder / "remote")
        steps = measure(folder, url, args.keyfile)
    host = urllib.parse.urlsplit(url).hostname
    remote = f"an SSH server on {host}" if url.startswith("ssh://") else "a local folder"
    report = render(steps, remote)
    files.write_text(args.out, report)
    print(report)


if __name__ == "__main__":
    run(main)
