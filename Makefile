# Two commands on a fresh machine: `make demo` (install + grade the bundled submissions, offline)
# and `make test`. Both install what they need, system packages included.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATASET ?=
JOBS ?=

.PHONY: demo test test-fast lint system venv bench clean

system:
	@if ! command -v bwrap >/dev/null || ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q bubblewrap chromium; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: system venv
	$(VENV)/bin/grade submissions --out reports $(if $(DATASET),--dataset $(DATASET)) $(if $(JOBS),--jobs $(JOBS))

test: system venv
	$(PY) -m pytest -q -ra

test-fast: venv
	$(PY) -m pytest -q -m "not integration and not security and not browser"

lint: venv
	$(VENV)/bin/ruff check grader tests benchmarks
	$(VENV)/bin/ruff format --check grader tests benchmarks
	$(VENV)/bin/mypy grader

bench: system venv
	$(PY) benchmarks/bench.py

clean:
	rm -rf reports .pytest_cache .mypy_cache .ruff_cache
