"""Failed-login throttling per (username, client address), in Redis.

Called by `sessions.login` only. Every attempt is counted BEFORE its password is checked, in
one Lua script (INCR and EXPIRE together), so parallel guesses cannot all pass a check that
has not counted them yet: at most LOGIN_MAX_FAILURES attempts per pair are verified within
LOGIN_LOCKOUT_SECONDS of the pair's last attempt. A success clears the pair's count.

The key names the client address as well as the username, so a stranger's wrong guesses
lock only the stranger's own address out of that account, and only for a while; the owner
logging in from anywhere else is not affected (docs/decisions.md, "Security model").
"""

from __future__ import annotations

import hashlib
import logging

import redis

from common.services.errors import TooManyAttempts
from common.settings import Settings

log = logging.getLogger(__name__)

# KEYS[1]: the pair's counter. ARGV[1]: window in seconds. Returns {attempts, ttl}.
_COUNT = """
local attempts = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {attempts, redis.call('TTL', KEYS[1])}
"""


def _key(settings: Settings, username: str, address: str) -> str:
    # Hashed: usernames and addresses come from strangers; the key stays short and plain.
    pair = hashlib.sha256(f"{username}\x00{address}".encode("utf-8", "surrogatepass"))
    return settings.name(f"login_failures:{pair.hexdigest()[:32]}")


def count_attempt(client: redis.Redis, settings: Settings, username: str,
                  address: str) -> None:
    """Count one attempt for (username, address); raise TooManyAttempts, without a
    password check, once the pair has used up LOGIN_MAX_FAILURES."""
    attempts, ttl = client.eval(_COUNT, 1, _key(settings, username, address),
                                settings.LOGIN_LOCKOUT_SECONDS)
    if int(attempts) > settings.LOGIN_MAX_FAILURES:
        retry_after = max(int(ttl), 1)
        log.warning("login for %r from %s refused: %s attempts, locked %ss", username,
                    address, attempts, retry_after)
        raise TooManyAttempts(
            f"too many failed logins for this username; try again in {retry_after} s",
            retry_after)


def clear(client: redis.Redis, settings: Settings, username: str, address: str) -> None:
    """A successful login forgets the pair's earlier failures."""
    client.delete(_key(settings, username, address))
