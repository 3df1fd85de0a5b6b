# The commands of the README. Everything installs into .venv at the repo root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
N ?= 10

.PHONY: install db up test generate bench lint servers

$(VENV)/.synced: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	python3 -m uv sync --frozen --python python3
	@touch $@

install: $(VENV)/.synced

servers: install
	@$(PY) -m common.health

db: servers
	$(PY) -m common.adapters.migrations

test: install
	$(PY) -m pytest

generate: db
	$(PY) -m common.services.generator $(N)

lint: install
	$(VENV)/bin/ruff check .
