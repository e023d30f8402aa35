"""A copy of the pipeline in its own git + DVC repository, for the tests and the benchmark."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class Project:
    """A copy of the pipeline in its own git + DVC repository."""

    def __init__(self, path: Path, archive: Path):
        self.path = path
        self.env = {
            **os.environ,
            # Stage commands call `python`: make it this interpreter, with its packages.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "IMDB_ARCHIVE": str(archive),
            "IMDB_CACHE_DIR": str(path / ".download-cache"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, check=check)

    def repro(self) -> list[str]:
        """Runs `dvc repro` and returns the stages it ran."""
        result = self.dvc("repro")
        return stages_run(result.stdout + result.stderr)

    def set_params(self, **changes) -> None:
        """set_params(model={"units": 32}) updates keys of params.yaml."""
        params_file = self.path / "params.yaml"
        params = yaml.safe_load(params_file.read_text())
        for section, values in changes.items():
            params[section].update(values)
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(dvc_output: str) -> list[str]:
    """The stages a `dvc repro` ran, in order, from what it printed."""
    return re.findall(r"Running stage '(\w+)'", dvc_output)


def make_project(path: Path, archive: Path, **param_changes) -> Project:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "pipeline", path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    (path / "datasets").mkdir()  # download.path's default: a dependency of the download stage
    shutil.copy(ROOT / "datasets" / "README.md", path / "datasets" / "README.md")
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(ROOT / name, path / name)
    project = Project(path, archive)
    project.set_params(**param_changes)
    project.run("git", "init", "-q")
    project.dvc("init", "-q")
    project.dvc("config", "core.analytics", "false")
    return project
