"""Rate limits per client address, shared by every process through PostgreSQL.

A sliding window: an attempt is refused while the address made ``attempts`` counted
attempts within the last ``window_seconds``, on any node, and a refused attempt is not
counted. The durable guard against password guessing is the per-credential lockout; this
one keeps a single address from trying many accounts (or many client secrets) quickly.

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
        bucket = hashlib.sha256(f"{self.name}\x00{key}".encode()).hexdigest()
        _, rows = await connections.get("default").execute_query(
            "SELECT rate_limit_hit($1, $2, $3) AS wait", [bucket, self.window, self.attempts]
        )
        wait = int(rows[0]["wait"])
        return wait or None
