# Two commands do everything on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV_MIN := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed
PRESET ?= pong-fast
TRAIN_ARGS ?=
TEST_WORKERS ?= 2
# pyproject.toml's requires-python; checked before a venv is made, so a retry starts clean.
PYTHON_MIN := 3.11
CHECK_PYTHON = @$(PYTHON) -c 'import sys; need = tuple(map(int, "$(PYTHON_MIN)".split("."))); \
	sys.version_info[:2] >= need or sys.exit( \
	f"$(PYTHON) is Python {sys.version.split()[0]}; the course needs $(PYTHON_MIN) or newer. " \
	"Run make again with PYTHON=python$(PYTHON_MIN) (or the path of another Python $(PYTHON_MIN)+).")'

.PHONY: install train test test-busy test-fast test-min lab bench lint format clean gpu-wheels gpu-ray

# The exact pins of requirements.lock; pyproject.toml only states the ranges they must satisfy.
$(STAMP): pyproject.toml requirements.lock
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -e '.[test,distributed]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Train on Pong with the pong-fast preset (PRESET=pong: the reference code's exact settings;
## PRESET=cartpole: a one-minute CPU run).
train: $(STAMP)
	$(PY) -m lib.train --preset $(PRESET) --device auto $(TRAIN_ARGS)

## The whole suite: unit tests, real spawned workers, the CartPole learning test, every notebook.
## TEST_WORKERS tests run at a time (pytest-xdist); those that start Ray run after, one at a time.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -v -rA --durations=15 -n $(TEST_WORKERS) -m "not ray"; rest=$$?; \
	$(PY) -m pytest -v -rA --durations=5 -m ray; ray=$$?; \
	[ $$rest -eq 0 ] && [ $$ray -eq 0 ]

## The suite three times in a row beside two CPU-bound loops (about 30 minutes on 2 cores).
test-busy: $(STAMP)
	bash tests/busy.sh 3

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --ignore=tests/test_notebooks.py

# The lowest versions pyproject.toml claims (requirements-min.txt), in a venv of their own.
$(STAMP_MIN): pyproject.toml requirements-min.txt
	$(CHECK_PYTHON)
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MIN)/bin/python -m pip install --quiet -r requirements-min.txt -e '.[test]'
	touch $(STAMP_MIN)

## The fast tests against those lowest versions (a few minutes; CI runs it after `make test`).
test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/python -m pytest -q -m "not slow" --ignore=tests/test_notebooks.py \
		--ignore=tests/test_ray.py

## Wheels for a GPU machine without internet that has Python 3.12 and torch
## (docs/gpu-offline.md): the three packages it lacks, at the lock's versions, into .whl/,
## and what executing the notebooks there needs (benchmarks/gpu_notebook_wheels.txt) into
## .whl/notebooks/. About 19 MB in all.
CP312 := --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
gpu-wheels:
	rm -rf .whl
	$(PYTHON) -m pip download $(CP312) -d .whl \
		gymnasium==1.2.2 ale-py==0.12.1 farama-notifications==0.0.6
	$(PYTHON) -m pip download $(CP312) -d .whl/notebooks -r benchmarks/gpu_notebook_wheels.txt
	du -sh .whl

## Ray for notebook 08 on such a machine, trimmed and packed to about 29 MB (the wheel is 79 MB):
## .whl/ray/ray-trim.tar.xz (benchmarks/gpu_ray.sh says what it leaves out). Run after gpu-wheels.
gpu-ray:
	rm -rf .whl/ray-wheel
	$(PYTHON) -m pip download $(CP312) -d .whl/ray-wheel \
		ray==$(shell sed -n 's/^ray==//p' requirements.lock)
	PYTHON=$(PYTHON) bash benchmarks/gpu_ray.sh .whl/ray-wheel/ray-*.whl
	rm -rf .whl/ray-wheel

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

## The environments and caches `make` made. Training runs (runs/) are yours: delete them by hand.
clean:
	rm -rf $(VENV) $(VENV_MIN) .pytest_cache .ruff_cache *.egg-info
