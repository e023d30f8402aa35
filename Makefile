# Two commands from a fresh clone: `make repro` (set up and run the pipeline) and `make test`;
# `make bench` compares the pipeline's speed and memory with the chapter's code.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Stage commands call `python` and `dvc`: make them the project's own.
export PATH := $(BIN):$(PATH)
# What users pass (REVS, OUT, PUSH) reaches the commands as arguments, never as code:
# the value as typed ($(value): make expands nothing in it, not even $(shell …)), in
# single quotes for the shell, split into words with globbing off.
unexport REVS OUT PUSH
quoted = '$(subst ','\'',$(value $(1)))'

.PHONY: setup repro test lint push experiments compare serve bench bench-quick clean

setup: $(VENV)/.installed

# editable_mode=compat: the project folder on sys.path, not an import hook that every
# Python start in the environment (each stage, each imdb-predict) pays about 20 ms to load
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[ssh,serve,test]'
	touch $@

repro: setup
	dvc repro

test: setup
	pytest

# The project's model over HTTP on 127.0.0.1:8000 (README: Serving); imdb-serve -h for more
serve: setup
	imdb-serve

# the rules are pyproject.toml's [tool.ruff]
lint: setup
	ruff check .

# After a run: its outputs and the run-cache to the default DVC remote (README: Working as a team)
push: setup
	dvc push --run-cache

# PUSH=origin: then share them (git refs to that remote, data and run-cache to the DVC remote)
experiments: setup
	push=$(call quoted,PUSH); python -m pipeline.commands.experiments $${push:+--push "$$push"}

# REVS="main my-branch exp-name": params, metrics and plots side by side in compare/ (OUT=dir elsewhere)
compare: setup
	revs=$(call quoted,REVS); out=$(call quoted,OUT); set -f; python -m pipeline.commands.compare $$revs $${out:+--out "$$out"}

bench: setup
	python -m bench

bench-quick: setup
	python -m bench --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
