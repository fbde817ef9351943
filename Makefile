# Every target sets itself up on a fresh machine: it creates .venv when missing and installs
# what it needs. `make run` and `make test` are the README's quick start.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
RUN_STAMP := $(VENV)/.detstream-run
DEV_STAMP := $(VENV)/.detstream-dev

.PHONY: run test lint bench-synth clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

## run: the main job on the embedded default (no network, no GPU)
run: $(RUN_STAMP)
	$(VENV)/bin/detstream doctor
	$(VENV)/bin/detstream synth video runs/synth/demo --frames 300 --size 1280x720 --fps 30 \
		--seed 0 --camera-motion

## test: the whole test suite
test: $(DEV_STAMP)
	$(PY) -m pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check engines stream demo tests

## bench-synth: frames/s of the synthetic world at 1280x720 (BENCHMARKS.md)
bench-synth: $(RUN_STAMP)
	$(VENV)/bin/detstream synth video runs/synth/bench --frames 600 --size 1280x720 --bench
	$(VENV)/bin/detstream synth video runs/synth/bench --frames 600 --size 1280x720 \
		--camera-motion --objects 16 --bench

clean:
	rm -rf runs .pytest_cache
