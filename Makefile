# Two commands from a fresh clone: `make repro` (set up and run the pipeline) and `make test`;
# `make bench` compares the pipeline's speed and memory with the chapter's code.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Stage commands call `python` and `dvc`: make them the project's own.
export PATH := $(BIN):$(PATH)
# What users pass (REVS, OUT, PUSH, GRID, SCHEDULER) reaches the commands as arguments, never as code:
# the value as typed ($(value): make expands nothing in it, not even $(shell …)), in
# single quotes for the shell, split into words with globbing off.
unexport REVS OUT PUSH GRID SCHEDULER
quoted = '$(subst ','\'',$(value $(1)))'

.PHONY: setup lock lock-check repro test lint push experiments sweep compare serve bench bench-quick clean

setup: $(VENV)/.installed

# The exact versions of requirements.lock (hashes checked), then the project itself.
# editable_mode=compat: the project folder on sys.path, not an import hook that every
# Python start in the environment (each stage, each imdb-predict) pays about 20 ms to load
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat -e .
	touch $@

# requirements.lock from pyproject.toml: every platform, Python 3.11 and later; the versions
# already pinned are kept unless pyproject.toml rules them out (`make lock UPGRADE=1`: the newest)
LOCK = $(BIN)/uv pip compile pyproject.toml --extra ssh --extra serve --extra cluster --extra test --universal \
	--generate-hashes --quiet --custom-compile-command "make lock"
lock: setup
	$(LOCK) $(if $(UPGRADE),--upgrade) -o requirements.lock

# Fails when requirements.lock no longer satisfies pyproject.toml (CI runs it)
lock-check: setup
	tmp=$$(mktemp -d) && cp requirements.lock "$$tmp/" && $(LOCK) -o "$$tmp/requirements.lock" && \
	diff -u requirements.lock "$$tmp/requirements.lock" >&2 || \
	{ echo "requirements.lock is stale against pyproject.toml: run make lock and commit it" >&2; exit 1; }

repro: setup
	dvc repro

test: setup
	pytest

# The project's model over HTTP on 127.0.0.1:8000 (docs/serving.md); imdb-serve -h for more
serve: setup
	imdb-serve

# the rules are pyproject.toml's [tool.ruff]
lint: setup
	ruff check .

# After a run: its outputs and the run-cache to the default DVC remote (docs/team.md)
push: setup
	dvc push --run-cache

# PUSH=origin: then share them (git refs to that remote, data and run-cache to the DVC remote)
experiments: setup
	push=$(call quoted,PUSH); python -m pipeline.commands.experiments $${push:+--push "$$push"}

# GRID="model.units=8,16 train.epochs=3,4": every combination a task on a Dask cluster, a local one
# unless SCHEDULER=tcp://host:8786 (README: Sweeps on a cluster); each word of GRID is one -S
sweep: setup
	grid=$(call quoted,GRID); scheduler=$(call quoted,SCHEDULER); set -f; \
	python -m pipeline.commands.sweep $${scheduler:+--scheduler "$$scheduler"} -- $$grid

# REVS="main my-branch exp-name": params, metrics and plots side by side in compare/ (OUT=dir elsewhere)
compare: setup
	revs=$(call quoted,REVS); out=$(call quoted,OUT); set -f; python -m pipeline.commands.compare $$revs $${out:+--out "$$out"}

bench: setup
	python -m bench

bench-quick: setup
	python -m bench --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
