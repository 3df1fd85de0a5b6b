"""Start checks for APP_ENV=production: refuse to run with the demo's secrets.

Every entry point calls `refuse_unsafe_start(settings)` right after loading its settings:
`python -m consumers`, the API (common/api/app.py), deployments/serve.py and the console
(`startup_refusal`, without the account check: it never touches the database; its
launcher can run `python -m common.production --no-accounts` first). In production a process
stops with one line saying why (exit status 2) while:
- CONSOLE_SECRET is the development default or shorter than 16 characters;
- RabbitMQ's user is `guest` (RABBITMQ_USER, or the user inside RABBITMQ_URL);
- an enabled account still accepts the demo password (argon2-verified, ~35 ms each).
In development it does nothing. `python -m common.production` runs the same checks.
"""

from __future__ import annotations

import sys
from urllib.parse import unquote, urlparse

import psycopg

from common.services.passwords import DEMO_PASSWORD, matches
from common.settings import DEV_CONSOLE_SECRET, Settings, load_settings

MIN_SECRET_LENGTH = 16


def unsafe_reasons(settings: Settings, accounts: bool = True) -> list[str]:
    """Why these settings must not run in production (empty: nothing found)."""
    reasons = []
    if settings.CONSOLE_SECRET == DEV_CONSOLE_SECRET:
        reasons.append("CONSOLE_SECRET is the development default")
    elif len(settings.CONSOLE_SECRET) < MIN_SECRET_LENGTH:
        reasons.append(f"CONSOLE_SECRET is shorter than {MIN_SECRET_LENGTH} characters")
    if "guest" in _rabbitmq_users(settings):
        reasons.append("RabbitMQ uses the user guest (set RABBITMQ_USER/RABBITMQ_URL)")
    if accounts:
        reasons.extend(f"account {name} still accepts the demo password "
                       f"(make password ACCOUNT={name})" for name in demo_accounts(settings))
    return reasons


def _rabbitmq_users(settings: Settings) -> set[str]:
    """The user of every broker address (RABBITMQ_URL may list several)."""
    if settings.RABBITMQ_URL:
        return {unquote(urlparse(url).username or "guest") for url in settings.rabbitmq_urls}
    return {settings.RABBITMQ_USER}


def demo_accounts(settings: Settings) -> list[str]:
    """Usernames of enabled accounts whose password is still the demo's."""
    with psycopg.connect(settings.assignment_dsn, connect_timeout=10) as conn:
        rows = conn.execute("SELECT username, password_hash FROM users "
                            "WHERE NOT disabled ORDER BY id").fetchall()
    return [name for name, stored in rows if matches(stored, DEMO_PASSWORD)]


def startup_refusal(settings: Settings, accounts: bool = True) -> str | None:
    """The one line a production process must stop with, or None (also in development)."""
    if settings.APP_ENV != "production":
        return None
    try:
        reasons = unsafe_reasons(settings, accounts)
    except psycopg.Error as error:
        reasons = [f"cannot check the accounts: {str(error).strip().splitlines()[0]}"]
    return f"refusing to start in production: {'; '.join(reasons)}" if reasons else None


def refuse_unsafe_start(settings: Settings, accounts: bool = True) -> None:
    """Exit (status 2, one line on stderr) if production runs with unsafe settings."""
    refusal = startup_refusal(settings, accounts)
    if refusal:
        print(refusal, file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    refuse_unsafe_start(load_settings(), accounts="--no-accounts" not in sys.argv[1:])
