# The two commands a new user runs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run shell test lint typecheck assets conformance bench clean help ha ha-test loadtest

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

assets: $(STAMP)  ## fetch the pinned, integrity-checked GraphiQL and Swagger UI files from the npm registry
	bash web/graphiql/build.sh
	bash web/api-docs/build.sh

CONFORMANCE := web/conformance/node_modules/.package-lock.json

$(CONFORMANCE): web/conformance/package-lock.json web/conformance/package.json
	cd web/conformance && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn
	touch $(CONFORMANCE)

conformance: $(CONFORMANCE)  ## fetch the pinned external checkers (graphql-http's audit) the suite runs

.PHONY: clients
CLIENTS := web/clients/node_modules/.package-lock.json

# relay-compiler's npm tarball carries its native binaries: no install script, no download.
$(CLIENTS): web/clients/package-lock.json web/clients/package.json
	cd web/clients && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(CLIENTS)

clients: $(CLIENTS)  ## fetch the pinned front-end tools (relay-compiler, graphql-codegen) the suite runs

run: $(STAMP) assets  ## migrate, seed on first run, serve on http://127.0.0.1:8000/graphql
	$(BIN)/dataintel serve

shell: $(STAMP)  ## a new shell with .venv/bin first on PATH (dataintel, pytest...); exit to leave
	@echo "dataintel is on PATH in this shell; 'exit' leaves it"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/sh} -i

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict
	$(BIN)/mypy

# One pytest worker per core (pytest-xdist); PYTEST_WORKERS=0 runs the suite in one process.
# Each worker has its own redis-server, seeded template and throwaway databases; worksteal
# evens out the few long tests. pytest's exit status (5: no test collected) fails the target.
PYTEST_WORKERS ?= auto

test: $(STAMP) assets conformance lint typecheck clients  ## ruff, mypy --strict, the whole pytest suite (one worker per core), make ha-test
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal
	$(MAKE) ha-test

LOAD_HOST ?= http://127.0.0.1:8000
LOAD_USERS ?= 5
LOAD_TIME ?= 30s
LOAD_ARGS ?=

loadtest: $(STAMP)  ## locust on the business flows against LOAD_HOST (make run's server); var/loadtest/
	$(BIN)/python -m tests.load.run --host $(LOAD_HOST) --users $(LOAD_USERS) --run-time $(LOAD_TIME) $(LOAD_ARGS)

ha: $(STAMP) assets  ## 3 replicas + worker + nginx on this machine's PostgreSQL, private Redis; Ctrl+C stops
	$(BIN)/python -m tests.ha.cluster

ha-test: $(STAMP) assets  ## make ha under load while a replica is killed, all roll, Redis restarts
	$(BIN)/python -m tests.ha.failover

bench: $(STAMP) assets  ## benchmarks; prints a table
	$(BIN)/python -m bench

clean:  ## remove the venv, built assets and the local store
	rm -rf $(VENV) var dataintel/http/static/graphiql dataintel/http/static/api-docs web/api-docs/node_modules web/graphiql/node_modules web/conformance/node_modules
