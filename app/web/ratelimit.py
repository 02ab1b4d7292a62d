"""A per-process sliding-window limiter for sign-in attempts per client address.

The durable guard is the per-credential lockout in the database; this one keeps a single
address from trying many accounts quickly. Per process by design: no shared server
beyond PostgreSQL, and a limit that is N times looser across N nodes is still a limit.
"""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.attempts = attempts
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait if ``key`` is over the limit (and the hit is not counted), else None."""
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] > self.window:
            hits.popleft()
        if len(hits) >= self.attempts:
            return int(self.window - (now - hits[0])) + 1
        hits.append(now)
        if len(self._hits) > 100_000:
            self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self.window}
        return None
