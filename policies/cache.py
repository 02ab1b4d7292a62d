"""Per-process caches for decisions: compiled policies per organisation and rendered
answers per member. Plain data structures; what invalidates them (PostgreSQL
LISTEN/NOTIFY) lives in the web layer.

Compiled policies are also keyed on the versions they were compiled at, so a missed
notification can never serve a stale policy to a request that looked the version up.
Answers have a time-to-live as a last line of defence against lost notifications.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from policies.resolve import CompiledPolicy
from policies.schedule import Schedule

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Answer:
    etag: str
    body: bytes
    #: ``time.monotonic()`` after which the answer must be recomputed.
    expires_at: float


class DecisionCache(Generic[K]):
    """``K`` identifies an organisation; members are identified by any hashable id."""

    def __init__(self, *, max_answers: int = 200_000, ttl: float = 300.0) -> None:
        self.max_answers = max_answers
        self.ttl = ttl
        self._compiled: dict[K, tuple[Hashable, CompiledPolicy, Schedule, float]] = {}
        self._answers: OrderedDict[tuple[K, Hashable], Answer] = OrderedDict()
        self._org_members: dict[K, set[Hashable]] = {}
        self._generations: dict[K, int] = {}
        self._clears = 0
        #: Answers served from the cache, and answers computed afresh (offered to
        #: ``store_answer``), for the operators' metrics.
        self.hits = 0
        self.misses = 0

    def generation(self, org: K) -> tuple[int, int]:
        """Take before computing an answer; ``store_answer`` refuses it if anything about
        ``org`` was invalidated in between (the computation may have read stale data)."""
        return (self._clears, self._generations.get(org, 0))

    def compiled(
        self, org: K, version: Hashable
    ) -> tuple[CompiledPolicy, Schedule, float] | None:
        """The compiled policy for ``org`` at ``version``, its schedule of coming changes
        and the seconds it stays valid, unless a scheduled rule has come into force since
        it was compiled (then None: the caller compiles again)."""
        entry = self._compiled.get(org)
        if entry is None or entry[0] != version:
            return None
        remaining = entry[3] - time.monotonic()
        return (entry[1], entry[2], remaining) if remaining > 0 else None

    def store_compiled(
        self,
        org: K,
        version: Hashable,
        compiled: CompiledPolicy,
        schedule: Schedule,
        *,
        valid_for: float,
    ) -> None:
        """Keep ``compiled`` (and ``schedule``) for ``valid_for`` seconds: until the next
        scheduled rule comes into force."""
        self._compiled[org] = (version, compiled, schedule, time.monotonic() + valid_for)

    def answer_expiry(self, valid_for: float) -> float:
        """When an answer computed now expires: after the time-to-live, or sooner when a
        scheduled rule comes into force (``valid_for`` seconds from now)."""
        return time.monotonic() + max(0.0, min(self.ttl, valid_for))

    def answer(self, org: K, member: Hashable) -> Answer | None:
        found = self._answers.get((org, member))
        if found is None:
            return None
        if time.monotonic() >= found.expires_at:
            self._forget(org, member)
            return None
        self.hits += 1
        return found

    def store_answer(
        self, org: K, member: Hashable, answer: Answer, *, generation: tuple[int, int]
    ) -> bool:
        """Keep ``answer`` unless an invalidation happened since ``generation`` was taken."""
        self.misses += 1
        if generation != self.generation(org):
            return False
        key = (org, member)
        self._answers[key] = answer
        self._answers.move_to_end(key)
        self._org_members.setdefault(org, set()).add(member)
        while len(self._answers) > self.max_answers:
            (old_org, old_member), _ = self._answers.popitem(last=False)
            self._org_members.get(old_org, set()).discard(old_member)
        return True

    def _forget(self, org: K, member: Hashable) -> None:
        self._answers.pop((org, member), None)
        self._org_members.get(org, set()).discard(member)

    def invalidate_member(self, org: K, member: Hashable) -> None:
        self._generations[org] = self._generations.get(org, 0) + 1
        self._forget(org, member)

    def invalidate_org(self, org: K) -> None:
        self._generations[org] = self._generations.get(org, 0) + 1
        self._compiled.pop(org, None)
        for member in self._org_members.pop(org, set()):
            self._answers.pop((org, member), None)

    def clear(self) -> None:
        self._clears += 1
        self._compiled.clear()
        self._answers.clear()
        self._org_members.clear()
