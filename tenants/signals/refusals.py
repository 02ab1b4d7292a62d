"""Refusals of unauthenticated Security Event Token posts: counted and sampled into the
server log (and rate-limited per address by the route), never written to an
organisation's audit trail.

Anyone can post to ``/ssf/<slug>/events``. Writing each failed post into the
organisation's hash chain would let an anonymous sender grow a tenant's append-only audit
log (and its storage) at will and bury real events; so only posts that prove to come from
the organisation's transmitter (a signature by its key) are audited. The counts are per
process.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class RefusalCounter:
    """What unauthenticated posts were refused, by RFC 8935 error code; one refusal per
    address in ``sample_every`` is logged. (The limit per address is the shared
    ``app.web.ratelimit.RateLimiter``, applied by the route.)"""

    sample_every: int = 100
    counts: Counter[str] = field(default_factory=Counter)
    _seen: Counter[str] = field(default_factory=Counter)

    def refused(self, address: str, err: str, reason: str) -> None:
        """Count a refusal; log the first of every ``sample_every`` from one address."""
        self.counts[err] += 1
        seen = self._seen[address]
        self._seen[address] = seen + 1
        if seen % self.sample_every == 0:
            log.warning("unauthenticated security event refused from %s: %s (%s; %d so far "
                        "from this address)", address, reason, err, seen + 1)
        if len(self._seen) > 100_000:
            self._seen.clear()
