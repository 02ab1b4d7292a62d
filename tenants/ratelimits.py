"""Rate limits per client address, shared by every process through PostgreSQL.

A sliding window: an attempt is refused while the key (a client address; an address typed
at sign-in and the client's) made ``attempts`` counted attempts within the last
``window_seconds``, on any node, and a refused attempt is not counted. The sign-in form's
limit keeps a single client from trying many accounts (or many client secrets) quickly;
``tenants.sessions.passwords`` counts each client's failed passwords for each address.

The bucket is a SHA-256 of the limit's name and the address, so the table
(``rate_limit_hits``, migration 0014) keeps no address in clear. One round trip per
attempt, outside any organisation's transaction.
"""

from __future__ import annotations

import hashlib

from tortoise import connections


class RateLimiter:
    def __init__(self, name: str, attempts: int, window_seconds: int) -> None:
        self.name = name
        self.attempts = attempts
        self.window = window_seconds

    async def retry_after(self, key: str) -> int | None:
        """Seconds to wait if ``key`` is over the limit (the attempt is not counted), else
        None (the attempt is counted)."""
        return await self._ask("rate_limit_hit", key)

    async def waiting(self, key: str) -> int | None:
        """Seconds to wait if ``key`` is over the limit, else None; counts nothing."""
        return await self._ask("rate_limit_wait", key)

    async def _ask(self, function: str, key: str) -> int | None:
        bucket = hashlib.sha256(f"{self.name}\x00{key}".encode()).hexdigest()
        _, rows = await connections.get("default").execute_query(
            # ``function`` is one of this class's two, never input.
            f"SELECT {function}($1, $2, $3) AS wait",
            [bucket, self.window, self.attempts],
        )
        wait = int(rows[0]["wait"])
        return wait or None
