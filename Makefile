# tripcomms: `make demo` to try it, `make test` to test it. Needs only Python 3.11+ on the PATH.
PYTHON ?= $(shell command -v python3.11 || command -v python3 || command -v python)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-postgres bench soak soak-sqlite audit lint format install chromium clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("tripcomms needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## Make a fresh demo database with seeded data and serve it on http://127.0.0.1:5000
demo: $(STAMP)
	$(BIN)/flask --app tripcomms demo

## Lint and run every test, the browser tests included (SQLite unless
## TRIPCOMMS_TEST_DATABASE_URL names a PostgreSQL database)
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

test-postgres:
	TRIPCOMMS_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test $(MAKE) test

## Run every benchmark in bench/ and print its figures and PASS/FAIL (several minutes; see
## BENCHMARKS.md). BENCH_POSTGRES_URL=postgresql+psycopg://... adds PostgreSQL to the roster
## import, and empties that database.
BENCHMARKS := roster_import webhook_throughput broadcast relay_latency
bench: $(STAMP)
	@status=0; for name in $(BENCHMARKS); do \
		echo "== bench/$$name.py"; \
		extra=""; \
		if [ "$$name" = roster_import ] && [ -n "$(BENCH_POSTGRES_URL)" ]; then \
			extra="--postgres $(BENCH_POSTGRES_URL)"; \
		fi; \
		$(BIN)/python bench/$$name.py $$extra || status=1; \
	done; exit $$status

## The soak (bench/soak.py, about 3-5 minutes): a minute of parents texting in bursts, three
## broadcasts to 500, Twilio answering 429 and 500, and a sender killed with SIGKILL, on
## gunicorn (4 workers) with 2 sender processes on PostgreSQL; then checks that nothing was lost
## or sent twice. SOAK_POSTGRES_URL's database is created if missing and emptied (never `test`).
SOAK_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/tripcomms_soak
soak: $(STAMP)
	$(BIN)/python bench/soak.py --database $(SOAK_POSTGRES_URL)

## The same, smaller, for the default deployment: one process with its sender, on SQLite.
soak-sqlite: $(STAMP)
	$(BIN)/python bench/soak.py --database sqlite

## Check the dependencies a deployment installs (pyproject.toml's, with the postgres, redis and
## deploy extras) for known vulnerabilities with pip-audit. It asks pypi.org's JSON API, or
## api.osv.dev with AUDIT_SERVICE=osv; --strict fails on a package it could not check instead
## of reporting "No known vulnerabilities found" without having looked.
AUDIT_SERVICE ?= pypi
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet 'pip-audit>=2.7'
	$(BIN)/python scripts/requirements.py > $(VENV)/requirements-audit.txt
	$(BIN)/pip-audit --strict --progress-spinner off --vulnerability-service $(AUDIT_SERVICE) \
		--requirement $(VENV)/requirements-audit.txt

chromium:
	@sh scripts/ensure-chromium.sh

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
