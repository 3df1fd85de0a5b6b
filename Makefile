# The commands of the README. Everything installs into .venv at the repo root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)
N ?= 10

.PHONY: install servers db up worker test generate bench soak bench-cluster bench-queries lint password audit

# Compiled bytecode, for the dependencies once per lock and for the project's own code on
# every install (only what changed): where PYTHONDONTWRITEBYTECODE is set, as on this kind of
# machine, Python would otherwise compile every module at every start, and a restarted
# process would need twice as long (docs/decisions.md, "Restart times").
$(VENV)/.synced-compiled: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	python3 -m uv sync --frozen --python python3 --compile-bytecode
	@touch $@

CODE := common consumers flows console deployments bench
install: $(VENV)/.synced-compiled
	@$(PY) -m compileall -q -j 0 $(CODE)

# Says which of PostgreSQL, Redis and RabbitMQ does not answer, and fails.
servers: install
	@$(PY) -m common.health

db: servers
	$(PY) -m common.adapters.migrations
	$(PY) -m consumers.dlq_policy

# The whole system in the foreground until Ctrl-C, under supervisord
# (deployments/supervisord.conf, started by deployments/up.py): a process that exits is
# restarted, every line names its process, a second `make up` says one is running. The
# Prefect server keeps its SQLite database in ./var/prefect and sends no telemetry.
up: db
	@$(PY) -m deployments.up

# The work-pool way (README): a Prefect worker on the process pool of deployments/prefect.yaml,
# for the Prefect server at PREFECT_API_URL. Its flow runs start in this checkout
# (PREFECT_WORKDIR, the yaml's pull step) and read their settings from this environment.
WORKER_LIMIT ?= 4
worker: install
	@test -n "$$PREFECT_API_URL" || { echo "make worker: set PREFECT_API_URL to the Prefect server's API, e.g. http://HOST:4200/api" >&2; exit 2; }
	PREFECT_WORKDIR="$${PREFECT_WORKDIR:-$(CURDIR)}" $(PY) -m prefect worker start --pool event-assignment --type process --limit $(WORKER_LIMIT)

test: install
	$(PY) -m pytest

# A new password for one account, read from standard input (asked twice on a terminal);
# other account commands: python -m common.accounts --help.
password: install
	@test -n "$(ACCOUNT)" || { echo "usage: make password ACCOUNT=name" >&2; exit 2; }
	@$(PY) -m common.accounts password "$(ACCOUNT)"

generate: db
	$(PY) -m common.services.generator $(N)

# The benchmark (bench/__main__.py): a Markdown table, .bench/results.json and PNG charts in
# .bench/, with the machine's ceilings measured in the same run. QUICK=1: small sizes, one run
# each (under 2 minutes). Soak and cluster are separate and write their own sections.
QUICK ?=
bench: db
	$(PY) -m bench $(if $(QUICK),--quick)

# 10 minutes at 500 events/s with operators deciding; memory of every process, sampled.
soak: db
	$(PY) -m bench.soak $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

# Three extra RabbitMQ nodes (rb1-rb3@localhost, AMQP 5681-5683; never the machine's own
# node), the failover tests (pytest -m cluster), the pipeline through the cluster with one
# node stopped mid-run, and the check that every event was stored and assigned once; writes
# the `cluster` section of .bench/results.json and stops the nodes. Needs root (as the nodes
# run as the rabbitmq user). QUICK=1: small sizes.
bench-cluster: db
	$(PY) -m bench.cluster $(if $(QUICK),--quick)

# Every per-event and per-poll query under EXPLAIN ANALYZE at a million rows (bench/queries.py):
# its databases are built once (about 10 minutes on two cores) and kept; REBUILD=1 starts over.
bench-queries: db
	$(PY) -m bench.queries $(if $(REBUILD),--rebuild)

# Known vulnerabilities of the locked dependencies (pip-audit, then PyPI's project JSON).
audit: install
	$(PY) .ci/audit.py

lint: install
	$(VENV)/bin/ruff check .
