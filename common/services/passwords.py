"""Password hashing: argon2id, salted, slow on purpose. Used by login and the accounts CLI."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# The original's demo password: refused in production (common/production.py).
DEMO_PASSWORD = "pass123"

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 35 ms here.
# argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes) took about 280 ms on 2 cores, more than
# the whole login-to-work budget, and would let a burst of logins exhaust the CPU.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the username is unknown, so timing does not tell."""
    return _hasher.hash(secrets.token_urlsafe(16))


def matches(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` hashes; None (no such user) costs the same
    time and is never a match."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
