# Two commands on a fresh machine: `make demo` (install + grade the bundled submissions, offline)
# and `make test`. Both install what they need, system packages included.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATASET ?=
JOBS ?=

.PHONY: demo test test-fast lint sandbox browser postgres venv kernel-env bench bench-service clean

# bubblewrap runs the student code; Chromium is only for the browser test of the reports.
sandbox:
	@command -v bwrap >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q bubblewrap; }

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# PostgreSQL is only for the service's tests on it: each session starts a throwaway server (tests/service/postgres.py).
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql; }

# The grader is installed with uv (the version pyproject.toml pins), so that the big wheels (TensorFlow) are
# downloaded once into uv's cache, from which the homework environment below is installed as hard links.
UV_PIN := $(shell grep -o 'uv==[0-9.]*' pyproject.toml)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(UV_PIN)'
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[dev]'
	touch $@

# The students' kernel environment (rubric.yaml's `environment`), built once into the grader's cache while
# online, so that grading needs no network. Instant when it is built already.
kernel-env: venv
	$(VENV)/bin/grade --build-env --rubric rubric.yaml

venv: $(VENV)/.installed

# Without DATASET the demo grades on a 20,000-image offline stand-in with a 40 s cell limit, so the class
# takes under three minutes on 2 cores and max_long_training (200 epochs) is still stopped by the limit.
# With DATASET=file.npz, and in real grading, the rubric's limits apply (300 s per cell).
DEMO_DATA := build/demo-mnist.npz
DEMO_CELL_TIMEOUT := 40

$(DEMO_DATA): grader/dataset.py | venv
	@mkdir -p $(dir $@)
	$(PY) -c 'import sys, pathlib, grader.dataset as d; d.build_standin(pathlib.Path(sys.argv[1]), 20000, 10000)' $@

demo: sandbox venv kernel-env $(if $(DATASET),,$(DEMO_DATA))
	$(VENV)/bin/grade submissions --out reports $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(DATASET),--dataset $(DATASET),--dataset $(DEMO_DATA) --cell-timeout $(DEMO_CELL_TIMEOUT))

test: sandbox browser postgres venv kernel-env
	$(PY) -m pytest -q -ra

test-fast: venv
	$(PY) -m pytest -q -m "not integration and not security and not browser"

lint: venv
	$(VENV)/bin/ruff check grader tests benchmarks
	$(VENV)/bin/ruff format --check grader tests benchmarks
	$(VENV)/bin/mypy grader

bench: sandbox venv kernel-env
	$(PY) benchmarks/bench.py

# `grade serve` against `grade` on one notebook, and 20 queued on --jobs 2 (benchmarks/RESULTS.md).
bench-service: sandbox venv kernel-env
	$(PY) benchmarks/bench_service.py

clean:
	rm -rf reports .pytest_cache .mypy_cache .ruff_cache $(DEMO_DATA)
