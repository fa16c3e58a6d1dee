# Two set-up commands (see README): `make demo` (main job) and `make test` (lint + full test suite).
# Each creates .venv if missing and installs the pinned versions from constraints.txt into it.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
DEMO   ?= runs/demo

.PHONY: install install-dev demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is installed first, pinned, so no resolver ever pulls a CUDA build.
install: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .

install-dev: $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

demo: install
	$(BIN)/mtvae demo --out $(DEMO)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -n 2

bench: install-dev
	$(BIN)/python benchmarks/run_all.py
