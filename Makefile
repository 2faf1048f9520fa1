# Two commands for a fresh machine with Python 3.11:
#   make demo   builds .venv/, then runs recipes/tiny.yaml into runs/tiny/
#   make test   builds .venv/ with the dev extra, then runs the test suite
# Each step leaves a stamp in .venv/ so re-running skips what is installed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench clean-runs

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	touch $@

# torch first, pinned exactly: 2.13.0 is the CPU build on local disk; any looser
# range would pull a multi-GB CUDA build.
$(VENV)/.torch: $(VENV)/.created
	$(PIP) install torch==2.13.0
	touch $@

$(VENV)/.core: $(VENV)/.torch pyproject.toml
	$(PIP) install -e .
	touch $@

$(VENV)/.dev: $(VENV)/.core pyproject.toml
	$(PIP) install -e '.[dev]'
	touch $@

demo: $(VENV)/.core
	$(VENV)/bin/superlab run recipes/tiny.yaml

test: $(VENV)/.dev
	$(PY) -m pytest

$(VENV)/.bench: $(VENV)/.dev pyproject.toml
	$(PIP) install -e '.[dev,bench]'
	touch $@

# Every benchmark in its --quick form (the same comparison on a smaller input).
bench: $(VENV)/.bench
	@for b in bench/*.py; do echo "== $$b --quick"; $(PY) $$b --quick || exit 1; done

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests bench

clean-runs:
	rm -rf runs
