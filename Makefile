# Entry points. Each target creates what it needs (virtual environment, npm tools,
# the Gremlin Server download) by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo serve test lint format bench validate gremlin-start gremlin-stop clean

help:
	@echo "make demo      run the local pipeline on a generated scenario (embedded stores)"
	@echo "make serve     the case queue in a browser, on the demo's stores (http://127.0.0.1:8400/)"
	@echo "make test      every test suite, template and ASL checks (starts a Gremlin Server)"
	@echo "make lint      ruff"
	@echo "make bench     benchmarks (JSON figures)"
	@echo "make validate  sam validate, cfn-lint, checkov, sam build, ASL checks"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[local,dev]"
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: venv
	$(BIN)/fraudlocal demo

serve: venv node_modules/.installed
	$(BIN)/fraudlocal serve

test: venv node_modules/.installed
	scripts/run-tests

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	scripts/run-benchmarks

validate: venv node_modules/.installed
	scripts/validate-template

gremlin-start:
	scripts/gremlin-server start

gremlin-stop:
	scripts/gremlin-server stop

clean:
	rm -rf .fraudlocal .aws-sam .pytest_cache out
