"""Creates the two databases if missing and applies the pending files of `sql/<database>/`.

Called by `make db` (`python -m common.adapters.migrations`), by `make up`, and by the test
fixtures. Idempotent, and safe to run twice at once: an advisory lock serialises appliers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg import sql

from common.settings import Settings, load_settings

log = logging.getLogger(__name__)

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
# Which folder of sql/ holds each database's files.
SCHEMAS = {"relay": "relay_service", "assignment": "assignment_service"}
_LOCK_KEY = 716_324_001


def create_database(settings: Settings, dbname: str) -> bool:
    """Create `dbname` if it does not exist. Returns True if it was created."""
    with psycopg.connect(settings.postgres_dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        except psycopg.errors.DuplicateDatabase:
            return False
        log.info("created database %s", dbname)
        return True


def pending_files(folder: Path, applied: set[str]) -> list[Path]:
    return [path for path in sorted(folder.glob("*.sql")) if path.name not in applied]


def apply_migrations(dsn: str, folder: Path) -> list[str]:
    """Apply, in name order, each file of `folder` not yet recorded. Returns what it applied."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            done = []
            for path in pending_files(folder, applied):
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (path.name,)
                    )
                log.info("applied %s/%s", folder.name, path.name)
                done.append(path.name)
            return done
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def migrate(settings: Settings) -> dict[str, list[str]]:
    """Create both databases if missing and bring their schemas up to date."""
    result = {}
    for dbname, folder in (
        (settings.POSTGRES_DB_RELAY, SCHEMAS["relay"]),
        (settings.POSTGRES_DB_ASSIGNMENT, SCHEMAS["assignment"]),
    ):
        create_database(settings, dbname)
        result[dbname] = apply_migrations(settings.postgres_dsn(dbname), SQL_ROOT / folder)
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        result = migrate(settings)
    except psycopg.OperationalError as error:
        first = str(error).strip().splitlines()[0]
        raise SystemExit(f"PostgreSQL at {settings.POSTGRES_HOST}:{settings.POSTGRES_PORT} "
                         f"is not answering: {first}") from None
    for dbname, files in result.items():
        print(f"{dbname}: {len(files)} migration(s) applied" + (f" ({', '.join(files)})" if files else ""))


if __name__ == "__main__":
    main()
