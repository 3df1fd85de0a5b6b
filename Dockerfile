# One image for every process of the stack (see docker-compose.yml): the locked
# dependencies in /app/.venv, then the code. Which process runs is the compose `command`.
# Pinned: the Python the lock was made and tested with, and the uv that reads the lock.
FROM python:3.11.7-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_LINK_MODE=copy \
    PATH=/app/.venv/bin:$PATH \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_WORKDIR=/app

WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache --compile-bytecode

COPY . .
# Bytecode made here: PYTHONDONTWRITEBYTECODE keeps the processes from writing it, and
# without it every start compiles every module (twice the restart time).
RUN python -m compileall -q common consumers flows console deployments

RUN useradd --create-home --uid 10001 app && mkdir -p /data/prefect && chown app /data/prefect
USER app

CMD ["python", "-m", "common.health"]
