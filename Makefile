# quantdesk: `make run` serves the API with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# uv installs the ~290 packages of the dev set in ~30 s where pip took ~100 s (it resolves,
# unpacks and compiles in parallel); pip stays in the venv for pip-audit's freeze and users.
# Compiled at install, with our own sources: where PYTHONDONTWRITEBYTECODE is set (CI
# machines), every process would otherwise compile all it imports, every time (a test
# suite starts hundreds: servers, CLIs, workers).
INSTALL := $(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode
COMPILE_OWN := $(BIN)/python -m compileall -q src
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CHARTS_JS := src/quantdesk/web/static/vendor/lightweight-charts.mjs

.PHONY: help run test test-sqlite-pass lint typecheck audit audit-deps bench services clean load chaos

help:
	@echo "make run    - the dashboard and API with demo data on http://127.0.0.1:8000 (SQLite)"
	@echo "make test   - ruff, mypy --strict, tests on SQLite and on PostgreSQL + Redis, coverage gate"
	@echo "make lint   - ruff, mypy and the import contracts only"
	@echo "make bench  - benchmarks, written to docs/benchmarks.md"
	@echo "make audit  - bandit and pip-audit (fails when a dependency could not be audited)"
	@echo "make load   - Locust mix against serve (2 workers, PostgreSQL + Redis), <= 5 min"
	@echo "make chaos  - the load while PostgreSQL is killed for 10 s and Redis restarted"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip

$(BIN)/uv: | $(VENV)/bin/python
	$(PIP) install -q uv

$(RUN_STAMP): pyproject.toml $(CHARTS_JS) | $(BIN)/uv
	$(INSTALL) -e .
	$(COMPILE_OWN)
	touch $@

$(DEV_STAMP): pyproject.toml $(CHARTS_JS) | $(BIN)/uv
	$(INSTALL) -e '.[dev]'
	$(COMPILE_OWN)
	touch $@ $(RUN_STAMP)

# The dashboard's charting library from the npm registry, at the version package-lock.json
# pins (npm ci checks its integrity hash), served by quantdesk itself: no CDN at run time.
$(CHARTS_JS): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(@D)
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs $@

# `make run PORT=8001 HOST=0.0.0.0`: passed to serve only when given, so QUANTDESK_HOST and
# QUANTDESK_PORT (or .env) still apply otherwise.  PORT may come from the environment too;
# HOST only from the command line, since shells such as zsh set HOST to the machine's name.
# warm-up compiles the analytics kernels once after an install (then a fraction of a
# second); demo load returns at once when today's data are loaded.
run: $(RUN_STAMP)
	mkdir -p var
	$(BIN)/quantdesk warm-up
	$(BIN)/quantdesk demo load
	$(BIN)/quantdesk serve --no-migrate \
		$(if $(filter command line,$(origin HOST)),--host $(HOST)) \
		$(if $(filter command line environment,$(origin PORT)),--port $(PORT))

services:
	@scripts/ensure-services.sh

# .pre-commit-config.yaml runs the same four checks (plus secret detection) before a commit.
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# Each pass runs on TEST_WORKERS pytest-xdist workers (auto: one per core).  Each worker is
# its own pytest session: its own migrated template database (SQLite files under its own
# tmp dir) and, in the PostgreSQL pass, its own PostgreSQL cluster and Redis server, because
# the outage tests stop and restart the server they use (tests/conftest.py).  worksteal
# lets an idle worker take queued tests from a busy one, so a few slow modules do not
# leave a core idle at the end.  Tests marked `serial` bound a latency under load they
# make themselves, so they run alone afterwards (exit 5, "none selected", is fine), from the
# files that mark any (collecting the whole suite for them took 41 s under coverage).
# pytest-cov combines the workers' coverage of the SQLite passes, which run every test.  The
# PostgreSQL pass runs the database's tests again without the tracer: under it that pass took
# 60% longer (356 s against 217 s) to add 1% of lines, the Redis and PostgreSQL branches,
# whose tests run in that pass all the same.
TEST_WORKERS ?= auto
PYTEST := QD_HYPOTHESIS_DERANDOMIZE=1 $(BIN)/pytest --timeout=180
COVERED := --cov=quantdesk --cov-report=
PARALLEL := -n $(TEST_WORKERS) --dist worksteal --durations=25
SERIAL_FILES := $(shell grep -rlE --include='*.py' 'mark\.serial\b' tests)

# The lint runs beside the first pass: on a fresh clone (no cache) mypy keeps one core busy for
# about 45 s while the other would idle; a lint failure still fails `make test`, once that pass
# ends (`make lint` alone answers sooner).  That pass starts with `warm-up`, on the other core
# meanwhile: numba compiles the analytics kernels into its cache once (about 20 s on a fresh
# clone) instead of each test worker and server compiling them on first use (tests/analytics
# alone took 45 s with an empty cache, 25 s with it).
test: $(DEV_STAMP) services
	rm -f .coverage .coverage.*
	$(MAKE) --no-print-directory -j2 lint test-sqlite-pass
	$(PYTEST) $(COVERED) --db=sqlite -m serial $(SERIAL_FILES) --cov-append || [ $$? -eq 5 ]
	$(BIN)/coverage report --fail-under=85
	$(PYTEST) --db=postgres -m "db and not serial" $(PARALLEL)
	$(PYTEST) --db=postgres -m "db and serial" $(SERIAL_FILES) || [ $$? -eq 5 ]

test-sqlite-pass: $(DEV_STAMP)
	$(BIN)/quantdesk warm-up
	$(PYTEST) $(COVERED) --db=sqlite -m "not serial" $(PARALLEL)

bench: $(DEV_STAMP)
	@scripts/ensure-services.sh bench
	$(BIN)/python -m benchmarks

# Not part of `make test` (minutes each): figures into docs/benchmarks.md (benchmarks/load/).
load: $(DEV_STAMP) services
	$(BIN)/python -m benchmarks.load.run load

chaos: $(DEV_STAMP) services
	$(BIN)/python -m benchmarks.load.run chaos

audit: $(DEV_STAMP)
	$(BIN)/bandit -q -c pyproject.toml -r src
	@$(MAKE) --no-print-directory audit-deps

# Known vulnerabilities of every installed dependency (quantdesk itself left out), from the
# advisory service pip-audit asks: PyPI's by default; PIP_AUDIT_FLAGS="-s osv --osv-url URL"
# points it at an OSV mirror.  --strict: a dependency the service cannot answer for fails
# the audit.  Without it an unreachable service audited nothing and still printed "No known
# vulnerabilities found" and exited 0 (issue 20; docs/security.md, "Dependency audit").
audit-deps: $(DEV_STAMP)
	$(PIP) freeze --exclude-editable > $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off \
		-r $(VENV)/audit-requirements.txt $(PIP_AUDIT_FLAGS) \
		|| { echo "make audit: vulnerabilities found, or a dependency could not be audited" \
			"(no advisory service reachable?): see above and docs/security.md" >&2; exit 1; }

clean:
	rm -rf $(VENV) var .coverage .coverage.* .mypy_cache .ruff_cache .hypothesis .import_linter_cache
