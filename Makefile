# quantdesk: `make run` serves the API with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: help run test lint typecheck audit audit-deps bench services clean

help:
	@echo "make run    - the API with demo data on http://127.0.0.1:8000 (SQLite); open /docs"
	@echo "make test   - ruff, mypy --strict, tests on SQLite and on PostgreSQL + Redis, coverage gate"
	@echo "make lint   - ruff and mypy only"
	@echo "make bench  - benchmarks, written to docs/benchmarks.md"
	@echo "make audit  - bandit and pip-audit (fails when a dependency could not be audited)"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip setuptools wheel

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	mkdir -p var
	$(BIN)/quantdesk demo load
	$(BIN)/quantdesk serve --no-migrate

services:
	@scripts/ensure-services.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: $(DEV_STAMP) services lint
	rm -f .coverage .coverage.*
	QD_HYPOTHESIS_DERANDOMIZE=1 $(BIN)/pytest --db=sqlite --cov=quantdesk --cov-report= --timeout=180
	QD_HYPOTHESIS_DERANDOMIZE=1 $(BIN)/pytest --db=postgres -m db --cov=quantdesk --cov-append --cov-report= --timeout=180
	$(BIN)/coverage report --fail-under=85

bench: $(DEV_STAMP)
	@scripts/ensure-services.sh bench
	$(BIN)/python -m benchmarks

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
	rm -rf $(VENV) var .coverage .coverage.* .mypy_cache .ruff_cache .hypothesis
