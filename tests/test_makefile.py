"""The Makefile hands what users type (REVS, OUT, PUSH) to commands as arguments, never as shell code."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDER = """#!/bin/sh
# stands in for the project's python: records its arguments, one JSON list per call
exec "{python}" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> "{log}"
"""


@pytest.fixture
def make(tmp_path):
    """`make TARGET VAR=…` on the project's Makefile, with a python that only records its arguments."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / "requirements.lock").touch()
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    log = tmp_path / "calls.jsonl"
    (venv_bin / "python").write_text(RECORDER.format(python=shutil.which("python3"), log=log))
    (venv_bin / "python").chmod(0o755)
    installed = tmp_path / ".venv" / ".installed"
    installed.touch()
    os.utime(installed, (os.path.getmtime(tmp_path / "pyproject.toml") + 10,) * 2)  # setup is done

    def run(*args: str) -> list[list[str]]:
        log.unlink(missing_ok=True)
        subprocess.run(["make", "-s", *args], cwd=tmp_path, check=True, capture_output=True, text=True)
        return [json.loads(line) for line in log.read_text().splitlines()]

    return run


HOSTILE = [
    "HEAD; touch {x}", "`touch {x}`", "$$(touch {x})", "$(touch {x})", "HEAD && touch {x} || touch {x}",
    "'; touch {x}; '", "$(shell touch {x})", "$(eval $(shell touch {x}))",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_shell_code_in_a_variable_reaches_the_program_as_words(make, tmp_path, value):
    injected = tmp_path / "injected"
    value = value.format(x=injected)
    calls = make("compare", f"REVS=main {value}", f"OUT={value}")
    assert not injected.exists()
    args = calls[0]
    assert args[:3] == ["-m", "pipeline.commands.compare", "main"]
    out = args.index("--out")
    # the revisions as the shell splits words, as typed; OUT as one argument
    assert " ".join(args[3:out]) == value and args[out + 1] == value
    calls = make("experiments", f"PUSH={value}")
    assert not injected.exists() and calls == [["-m", "pipeline.commands.experiments", "--push", value]]


def test_globs_are_not_expanded_and_unset_variables_add_no_arguments(make, tmp_path):
    (tmp_path / "a-file").touch()
    assert make("compare", "REVS=main *") == [["-m", "pipeline.commands.compare", "main", "*"]]
    assert make("experiments") == [["-m", "pipeline.commands.experiments"]]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_sweep_grid_reaches_the_program_as_words_each_a_grid_axis(make, tmp_path, value):
    injected = tmp_path / "injected"
    value = value.format(x=injected)
    calls = make("sweep", f"GRID=model.units=8,16 {value}", f"SCHEDULER={value}")
    assert not injected.exists()
    args = calls[0]
    assert args[:4] == ["-m", "pipeline.commands.sweep", "--scheduler", value]
    assert args[4] == "--" and " ".join(args[5:]) == f"model.units=8,16 {value}"
    assert make("sweep", "GRID=model.units=8,16") == [["-m", "pipeline.commands.sweep", "--", "model.units=8,16"]]
