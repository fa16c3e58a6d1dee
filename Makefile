# Two set-up commands (see README): `make demo` (main job: the quick study and its report) and
# `make test` (lint + full test suite).
# Each creates .venv if missing and installs the pinned versions from constraints.txt into it.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
STUDY  ?= runs/quick
PRESET ?= quick

.PHONY: install install-dev data-packages browser tex demo test lint bench docs docs-check docs-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Debian's dataset-fashion-mnist puts the Fashion-MNIST IDX files in FASHION_DIR, where the
# fashion-mnist source looks by default. Best effort: without apt-get or root rights this does
# nothing and never fails the build (the source then says how to get the files).
FASHION_DIR := /usr/share/datasets/fashion-mnist
data-packages:
	@if command -v apt-get >/dev/null 2>&1 && [ ! -d $(FASHION_DIR) ] && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
			|| echo "note: could not install dataset-fashion-mnist; fashion-mnist needs --data-root"; \
	fi; true

# torch is installed first, pinned, so no resolver ever pulls a CUDA build.
install: $(BIN)/python data-packages
	$(PIP) torch==2.13.0
	$(PIP) -e .

# The report test opens index.html in Debian's headless chromium. Best effort, like
# data-packages: without apt-get or root rights nothing happens and that test is skipped.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
		&& [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
			|| echo "note: could not install chromium; the browser test of the report is skipped"; \
	fi; true

# The LaTeX test compiles the report's LaTeX export with Debian's pdflatex and reads the PDF with
# poppler's pdftotext/pdftoppm (`mtvae study` also builds report/latex/main.pdf where pdflatex
# is installed; main.tex loads lmodern, a recommends that --no-install-recommends leaves out).
# Best effort, like browser: without apt-get or root rights that test is skipped.
tex:
	@if ! { command -v pdflatex && command -v pdftotext && kpsewhich lmodern.sty; } >/dev/null 2>&1 \
		&& command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			texlive-latex-base texlive-latex-recommended lmodern poppler-utils) >/dev/null 2>&1 \
			|| echo "note: could not install pdflatex; the LaTeX compile tests are skipped"; \
	fi; true

install-dev: $(BIN)/python data-packages browser tex
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"

# The main job: the quick study (80 runs on real MNIST digits, minutes on 2 cores; its measured
# wall time and machine are in docs/generated/quick-run.md) and its report.
# Rerunning resumes; `make demo PRESET=standard STUDY=runs/standard` runs a bigger one.
demo: install
	$(BIN)/mtvae study --preset $(PRESET) --out $(STUDY)

# ruff, then the import contracts of pyproject.toml ([tool.importlinter]: the floors of the
# package, bottom-up to the CLI, and no import cycle)
lint: install-dev
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/lint-imports

test: lint docs-check
	$(BIN)/python -m pytest -q -n 2

# The documentation site (docs/, mkdocs.yml; the dev extra installs the docs extra). docs-check
# builds it strictly, into a temporary directory, so a broken link or a missing page fails
# make test; `make docs` serves it at http://127.0.0.1:8000 and rebuilds on every edit.
docs-check: install-dev
	@site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$site"; \
		status=$$?; rm -rf "$$site"; exit $$status

docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Every number the README and docs quote from a study run comes from here, never typed by hand:
# docs/hooks/docs_data.py reads the finished studies (QUICK_STUDY, run first if it has no
# report; STANDARD_STUDY when it exists) and writes docs/generated/*.md (the Answer excerpts,
# wall time, runs, date, machine, commit), docs/assets/quick-forest-task.png and the README's
# <!-- docs-data:NAME --> regions. Run it after every study run the docs quote.
QUICK_STUDY    ?= runs/quick
STANDARD_STUDY ?= runs/standard
docs-data: install
	@[ -f $(QUICK_STUDY)/report/report.md ] || $(BIN)/mtvae study --preset quick --out $(QUICK_STUDY)
	$(BIN)/python docs/hooks/docs_data.py --quick $(QUICK_STUDY) --standard $(STANDARD_STUDY)

# Benchmarks (see BENCHMARKS.md); the bench extra adds Pythae, the trainer comparison's contender.
bench: install-dev
	$(PIP) -e ".[dev,bench]"
	$(BIN)/python benchmarks/run_all.py
