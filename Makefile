# The commands of the README. Everything installs into .venv at the repo root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
N ?= 10

.PHONY: install servers db up test generate bench lint password audit

$(VENV)/.synced: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	python3 -m uv sync --frozen --python python3
	@touch $@

install: $(VENV)/.synced

# Says which of PostgreSQL, Redis and RabbitMQ does not answer, and fails.
servers: install
	@$(PY) -m common.health

db: servers
	$(PY) -m common.adapters.migrations

# The whole system in the foreground until Ctrl-C: the Procfile under honcho. The Prefect
# server keeps its SQLite database in ./var/prefect and sends no telemetry. honcho does not
# read .env itself (its parser mangles values with spaces, such as crons): each process
# reads .env through common/settings.py.
up: db
	@mkdir -p var/prefect
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	PREFECT_HOME="$(CURDIR)/var/prefect" \
	PREFECT_API_URL=http://127.0.0.1:4200/api \
	PREFECT_SERVER_ANALYTICS_ENABLED=false \
	DO_NOT_TRACK=1 \
	PREFECT_RUNNER_POLL_FREQUENCY=2 \
	PYTHONUNBUFFERED=1 \
	$(VENV)/bin/honcho start --env /dev/null

test: install
	$(PY) -m pytest

# A new password for one account, read from standard input (asked twice on a terminal);
# other account commands: python -m common.accounts --help.
password: install
	@test -n "$(ACCOUNT)" || { echo "usage: make password ACCOUNT=name" >&2; exit 2; }
	@$(PY) -m common.accounts password "$(ACCOUNT)"

generate: db
	$(PY) -m common.services.generator $(N)

# Every benchmark of bench/ (the modules named bench_*.py), in name order; each prints its
# own numbers against its own namespace and databases.
bench: db
	@shopt -s nullglob; for script in bench/bench_*.py; do \
	  module=bench.$$(basename $$script .py); echo "== $$module"; \
	  $(PY) -m $$module || exit 1; \
	done

# Known vulnerabilities of the locked dependencies (pip-audit, then PyPI's project JSON).
audit: install
	$(PY) .ci/audit.py

lint: install
	$(VENV)/bin/ruff check .
