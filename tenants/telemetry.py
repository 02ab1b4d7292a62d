"""Counts the domain keeps for the operators' metrics, without depending on a metrics
library: a ``Tally`` is a named counter with labels, incremented where things happen
(a webhook delivery's outcome, a sign-in's outcome) and read by ``app/metrics.py``, which
exposes every tally of this registry as a Prometheus counter.

Tallies are per process, like the processes' own metrics endpoints: Prometheus scrapes
each process and sums. Increments happen on the event loop's thread, so a plain dict is
enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Tally:
    name: str
    documentation: str
    labels: tuple[str, ...]
    counts: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        """Count ``amount`` under the label ``values`` (one per label, in order)."""
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {values}")
        self.counts[values] = self.counts.get(values, 0.0) + amount


_TALLIES: dict[str, Tally] = {}


def tally(name: str, documentation: str, labels: tuple[str, ...]) -> Tally:
    """The process's tally called ``name`` (created on first use; one per name)."""
    found = _TALLIES.get(name)
    if found is None:
        found = _TALLIES[name] = Tally(name, documentation, labels)
    elif found.labels != labels:
        raise ValueError(f"tally {name} already has labels {found.labels}")
    return found


def tallies() -> Iterator[Tally]:
    return iter(list(_TALLIES.values()))


WEBHOOK_DELIVERIES = tally(
    "webhook_deliveries",
    "Webhook delivery attempts by product and outcome.",
    ("product", "outcome"),
)
SIGN_INS = tally("sign_ins", "Sign-in attempts by method and outcome.", ("method", "outcome"))
