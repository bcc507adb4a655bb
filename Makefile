# Two commands do everything on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PRESET ?= pong
TRAIN_ARGS ?=

.PHONY: install train test test-fast lab bench lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Train A3C on Pong with the seed's settings (PRESET=cartpole for a one-minute CPU run).
train: $(STAMP)
	$(PY) -m lib.train --preset $(PRESET) --device auto $(TRAIN_ARGS)

## The whole suite: unit tests, real spawned workers, the CartPole learning test, every notebook.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -v -rA --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --ignore=tests/test_notebooks.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) runs checkpoints .pytest_cache .ruff_cache *.egg-info
