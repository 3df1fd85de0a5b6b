# The commands of the README. Everything installs into .venv at the repo root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
N ?= 10

.PHONY: install servers db up test generate bench lint

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

# The whole system in the foreground until Ctrl-C, under supervisord
# (deployments/supervisord.conf, started by deployments/up.py): a process that exits is
# restarted, every line names its process, a second `make up` says one is running. The
# Prefect server keeps its SQLite database in ./var/prefect and sends no telemetry.
up: db
	@$(PY) -m deployments.up

test: install
	$(PY) -m pytest

generate: db
	$(PY) -m common.services.generator $(N)

# Every benchmark of bench/ (the modules named bench_*.py), in name order; each prints its
# own numbers against its own namespace and databases.
bench: db
	@shopt -s nullglob; for script in bench/bench_*.py; do \
	  module=bench.$$(basename $$script .py); echo "== $$module"; \
	  $(PY) -m $$module || exit 1; \
	done

lint: install
	$(VENV)/bin/ruff check .
