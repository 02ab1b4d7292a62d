"""Refusals of unauthenticated Security Event Token posts: counted, rate-limited per
address and sampled into the server log, never written to an organisation's audit trail.

Anyone can post to ``/ssf/<slug>/events``. Writing each failed post into the
organisation's hash chain would let an anonymous sender grow a tenant's append-only audit
log (and its storage) at will and bury real events; so only posts that prove to come from
the organisation's transmitter (a signature by its key) are audited. Per process by
design, like the sign-in limiter: no shared server beyond PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class RefusalCounter:
    """What unauthenticated posts were refused, by RFC 8935 error code.

    After ``limit`` refusals of one address within ``window`` seconds its posts get 429
    without any work until the window moves on. One refusal per address in
    ``sample_every`` is logged.
    """

    limit: int = 60
    window: float = 60.0
    sample_every: int = 100
    counts: Counter[str] = field(default_factory=Counter)
    limited: int = 0
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _seen: Counter[str] = field(default_factory=Counter)

    def retry_after(self, address: str) -> int | None:
        """Seconds to wait if ``address`` had ``limit`` refusals within the window (its post
        is then refused without any work), else None."""
        hits = self._hits.get(address)
        if not hits:
            return None
        now = time.monotonic()
        while hits and now - hits[0] > self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            self.limited += 1
            return int(self.window - (now - hits[0])) + 1
        return None

    def refused(self, address: str, err: str, reason: str) -> None:
        """Count a refusal; log the first of every ``sample_every`` from one address."""
        self.counts[err] += 1
        now = time.monotonic()
        self._hits.setdefault(address, deque()).append(now)
        if len(self._hits) > 100_000:
            self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self.window}
        seen = self._seen[address]
        self._seen[address] = seen + 1
        if seen % self.sample_every == 0:
            log.warning("unauthenticated security event refused from %s: %s (%s; %d so far "
                        "from this address)", address, reason, err, seen + 1)
        if len(self._seen) > 100_000:
            self._seen.clear()
