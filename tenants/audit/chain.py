"""The audit hash chain: canonical encoding, hashing and verification. No I/O.

Each event's hash is SHA-256 over the previous event's hash and the canonical JSON of
the event (RFC 8785 style: sorted keys, no insignificant white space, UTF-8), so editing,
deleting, reordering or inserting an event breaks the chain at that event, and cutting
off the newest events is caught by comparing with a head recorded elsewhere.

The hashed payload is the event's position (``seq``) and its content exactly as stored:
the sealer hashes what it reads back from the database, not what the write meant to store.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """The hashed content of one audit event, as stored."""

    tenant_id: str
    seq: int
    occurred_at: datetime
    actor: str
    actor_display: str
    action: str
    target_type: str
    target_id: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    request_id: str | None
    client_addr: str | None

    @classmethod
    def from_row(cls, tenant_id: str, seq: int, row: Mapping[str, Any]) -> ChainedEvent:
        """The event at ``seq`` from a row of ``audit_events`` (columns named as the fields;
        ``before``/``after`` as decoded JSON or as the JSON text the driver returns)."""
        return cls(
            tenant_id=tenant_id,
            seq=seq,
            occurred_at=row["occurred_at"],
            actor=row["actor"],
            actor_display=row["actor_display"],
            action=row["action"],
            target_type=row["target_type"],
            target_id=row["target_id"],
            before=_decoded_json(row["before"]),
            after=_decoded_json(row["after"]),
            request_id=row["request_id"],
            client_addr=row["client_addr"],
        )

    def payload(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "occurred_at": format_time(self.occurred_at),
            "actor": self.actor,
            "actor_display": self.actor_display,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "before": self.before,
            "after": self.after,
            "request_id": self.request_id,
            "client_addr": self.client_addr,
        }


def _decoded_json(value: Any) -> Any:
    """JSON text as Python values, by orjson (the sealer and verification decode two
    snapshots per event), with the values ``json.loads`` gives, which every chain so far
    was sealed with. orjson reads an integer beyond 64 bits as a float, silently, so text
    whose values hold a float that large (or that orjson refuses, such as a lone
    surrogate) is read by ``json``."""
    if not isinstance(value, str | bytes):
        return value
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)
    return json.loads(value) if _holds_huge_float(decoded) else decoded


_CONTAINERS_AND_FLOAT = frozenset({dict, list, float})


def _holds_huge_float(value: Any) -> bool:
    """Whether ``value`` holds a float beyond the 64-bit integers (where orjson may have
    read an integer as a float)."""
    kind = type(value)
    if kind is float:
        return not -(2.0**63) < value < 2.0**64
    if kind is not dict and kind is not list:
        return False
    for item in value.values() if kind is dict else value:
        if type(item) in _CONTAINERS_AND_FLOAT and _holds_huge_float(item):
            return True
    return False


def format_time(moment: datetime) -> str:
    """UTC, microseconds, ``Z``: the one textual form of a time inside the chain.

    The text of ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")``, written by ``isoformat`` (a fifth of
    its cost) for the years it writes alike: ``strftime`` does not pad years before 1000."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds")[:26] + "Z"


def canonical_json(value: Any) -> bytes:
    """RFC 8785-style canonical JSON. Raises ValueError on NaN or infinity.

    The bytes are those of ``json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`` (the form every chain so far was hashed in), written by orjson,
    about 2.7 times faster: sealing and verification hash every event. The two agree on text,
    integers, booleans and null; numbers orjson would write differently (fractions, which
    it writes as ``1e-7`` where Python writes ``1e-07``, and integers beyond 64 bits, which
    it refuses) go in as fragments of Python's own text."""
    return orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS)


#: Types that are their own canonical form (checked first: events are mostly text).
_SCALARS = frozenset({str, bool, type(None)})
_INT_RANGE = range(-(2**63), 2**64)


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, int):  # bool, an int too, is one of _SCALARS
        return int(value) if value in _INT_RANGE else orjson.Fragment(str(int(value)))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite numbers have no canonical JSON form")
        if value.is_integer():
            return _canonical(int(value))
        return orjson.Fragment(float.__repr__(value))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def event_hash(prev_hash: str, event: ChainedEvent) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(b"\n")
    digest.update(canonical_json(event.payload()))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event: ChainedEvent
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """Parse ``SEQ:HASH`` as printed by ``tenantry audit verify``; ValueError if malformed."""
        # Not mutated: rpartition is equivalent, as valid text holds one colon only.
        seq, _, digest = text.partition(":")  # pragma: no mutate
        if (
            not seq.isdigit()
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise ValueError("expected SEQ:HASH, e.g. 42:3f0c…(64 hex digits)")
        return cls(int(seq), digest)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where and why verification failed; ``seq`` is the first event that does not hold."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of walking a chain. ``pending`` counts events recorded but not chained
    yet: they are not covered by the chain, which is not an error (the sealer is behind)."""

    checked: int
    head: ChainHead
    broken: ChainBreak | None
    pending: int = field(default=0)

    @property
    def ok(self) -> bool:
        return self.broken is None


class ChainVerifier:
    """Checks events fed one at a time in ``seq`` order, so a long chain streams through.

    ``expected_head`` is a head recorded outside the database (a previous run's output);
    ``stored_head`` the head the database keeps. Either catches a truncated tail, which
    the chain alone cannot show.
    """

    def __init__(
        self, *, expected_head: ChainHead | None = None, stored_head: ChainHead | None = None
    ) -> None:
        self.expected_head = expected_head
        self.stored_head = stored_head
        self.prev_hash = GENESIS
        self.next_seq = 1
        self.checked = 0
        self.broken: ChainBreak | None = None

    @classmethod
    def resumed(cls, head: ChainHead, checked: int) -> ChainVerifier:
        """A verifier that goes on after ``head`` as the one that checked the chain up to
        it would (a verification done in parts, one transaction each)."""
        verifier = cls()
        verifier.prev_hash = head.hash
        verifier.next_seq = head.seq + 1
        verifier.checked = checked
        return verifier

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.next_seq - 1, self.prev_hash)

    def feed(self, stored: StoredEvent) -> bool:
        """Check one event; returns False (and sets ``broken``) at the first bad one."""
        if self.broken is not None:
            return False
        self.broken = self._misplaced(stored.event.seq) or self._mislinked(stored)
        if self.broken is not None:
            return False
        self.prev_hash = stored.hash
        self.next_seq += 1
        self.checked += 1
        return True

    def feed_missing(self, seq: int) -> bool:
        """A chain entry at ``seq`` whose event is gone (its content deleted behind the
        service's back); always returns False and sets ``broken``."""
        if self.broken is None:
            self.broken = self._misplaced(seq) or ChainBreak(
                seq, "its chain entry remains but the event itself was deleted"
            )
        return False

    def _misplaced(self, seq: int) -> ChainBreak | None:
        if seq > self.next_seq:
            return ChainBreak(self.next_seq, f"event {self.next_seq} is missing")
        if seq < self.next_seq:
            return ChainBreak(seq, f"event {seq} is out of order or duplicated")
        return None

    def _mislinked(self, stored: StoredEvent) -> ChainBreak | None:
        seq = stored.event.seq
        if stored.prev_hash != self.prev_hash:
            return ChainBreak(
                seq,
                "its link to the previous event does not match (inserted, removed or reordered)",
            )
        if event_hash(self.prev_hash, stored.event) != stored.hash:
            return ChainBreak(seq, "its content does not match its hash (edited)")
        if (
            self.expected_head is not None
            and seq == self.expected_head.seq
            and stored.hash != self.expected_head.hash
        ):
            return ChainBreak(seq, "it does not match the recorded head (the chain was rewritten)")
        return None

    def finish(self) -> Verification:
        if self.broken is None:
            self.broken = self._check_heads()
        return Verification(self.checked, self.head, self.broken)

    def _check_heads(self) -> ChainBreak | None:
        head = self.head
        for label, reference in (("recorded", self.expected_head), ("stored", self.stored_head)):
            if reference is None:
                continue
            if reference.seq > head.seq:
                return ChainBreak(
                    head.seq + 1,
                    f"the chain ends at {head.seq} but the {label} head is at {reference.seq} "
                    "(events were removed from the end)",
                )
            if reference.seq == head.seq and reference.hash != head.hash:
                return ChainBreak(head.seq, f"the last event does not match the {label} head")
            if label == "stored" and reference.seq < head.seq:
                return ChainBreak(
                    reference.seq + 1,
                    f"events after the stored head {reference.seq} were added outside the service",
                )
        return None


def verify_chain(
    events: Iterable[StoredEvent],
    *,
    expected_head: ChainHead | None = None,
    stored_head: ChainHead | None = None,
) -> Verification:
    """Verify a whole chain in memory; see ChainVerifier for the streaming form."""
    verifier = ChainVerifier(expected_head=expected_head, stored_head=stored_head)
    for stored in events:
        if not verifier.feed(stored):
            break
    return verifier.finish()
