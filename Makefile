# The two commands a newcomer needs: `make run` and `make test`. Each creates .venv and installs the
# pinned stack (requirements/constraints.txt) when it is missing or out of date.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# `make test` runs on this many pytest workers, each test file whole on one (tests/conftest.py: SHARED)
TEST_WORKERS ?= 2

.PHONY: run test browser lint format bench simulate serve catalog airflow lock clean

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements/constraints.txt pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## the whole pipeline on the embedded default (ARGS="--date 2026-11-29 --scale 0.1")
	$(VENV)/bin/edw run $(ARGS)

test: $(STAMP) browser  ## lint, then every test (needs Postgres at EDW_TEST_POSTGRES_URL)
	$(VENV)/bin/ruff check plugins dags tests
	$(VENV)/bin/ruff format --check plugins dags tests
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/sqlfluff lint dbt_project
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(ARGS)

browser:  ## Debian's chromium and a CJK font for the browser checks (installed when missing, as root)
	@{ command -v chromium >/dev/null 2>&1 && [ -n "$$(fc-list :lang=zh family 2>/dev/null)" ]; } || { \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "installing Debian's chromium and fonts-noto-cjk (Chinese names) for the browser checks"; \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 || \
	        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null; }; \
	    else \
	        echo "the browser checks need Debian's chromium and a CJK font: sudo apt-get install -y chromium fonts-noto-cjk" >&2; exit 1; \
	    fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check plugins dags tests
	$(VENV)/bin/sqlfluff lint dbt_project

format: $(STAMP)
	$(VENV)/bin/ruff format plugins dags tests
	$(VENV)/bin/ruff check --fix plugins dags tests

bench: $(STAMP)  ## the benchmark at full scale (ARGS="--scale 0.1" for a quick one); writes data/bench/latest.json
	$(VENV)/bin/edw bench $(ARGS)

simulate: $(STAMP)  ## simulate one day of every source (ARGS="--date D --days N --scale S")
	$(VENV)/bin/edw simulate $(ARGS)

serve: $(STAMP)  ## serve the simulated sources over HTTP
	$(VENV)/bin/edw simulate serve $(ARGS)

airflow: $(STAMP)  ## Airflow standalone with the project's DAGs; UI on http://localhost:8080 (no login; see tools/airflow-local)
	EDW_AIRFLOW=$(CURDIR)/$(VENV)/bin/airflow tools/airflow-local standalone

catalog: $(STAMP)
	$(VENV)/bin/edw catalog

lock:  ## re-resolve requirements/requirements.in into requirements/constraints.txt
	rm -rf /tmp/edw-lock && $(PYTHON) -m venv /tmp/edw-lock
	/tmp/edw-lock/bin/pip install -q --upgrade pip
	/tmp/edw-lock/bin/pip install -q -r requirements/requirements.in
	( /tmp/edw-lock/bin/pip freeze --all | grep -v -e '^-e' -e '^setuptools=' -e '^wheel=' ) > requirements/constraints.txt

clean:
	rm -rf $(VENV) data
