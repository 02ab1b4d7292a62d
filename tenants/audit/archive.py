"""Audit chain archives: an organisation's chain written to NDJSON with its hashes, and
verified from the file alone.

The chain is never pruned from the database; an archive is a copy kept elsewhere (cold
storage, an auditor's laptop) that proves itself: each line holds one event exactly as it
was hashed (the same payload ``event_hash`` covers), its link to the previous event and
its hash, so ``verify_archive`` recomputes the whole chain without the database, and a
head recorded earlier (or the one in the file's first line) catches a cut-off tail.

Format ``tenantry-audit-archive/1``: a first line ``{"format", "organisation",
"organisation_id", "head", "events", "created_at"}``, then one line per event in ``seq``
order: ``{"seq", "prev_hash", "hash", "event"}``. Personal fields are archived as stored,
so what an erasure made unreadable in the database stays unreadable in the archive.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants.audit.chain import (
    ChainBreak,
    ChainedEvent,
    ChainHead,
    ChainVerifier,
    StoredEvent,
    Verification,
)

FORMAT = "tenantry-audit-archive/1"


class ArchiveFormatError(ValueError):
    """The file is not an archive this version can read; the message says where."""


@dataclass(frozen=True, slots=True)
class ArchiveHeader:
    organisation: str
    organisation_id: str
    head: ChainHead
    events: int
    created_at: str

    def line(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "organisation": self.organisation,
                "organisation_id": self.organisation_id,
                "head": str(self.head),
                "events": self.events,
                "created_at": self.created_at,
            },
            sort_keys=True,
        )


def event_line(stored: StoredEvent) -> str:
    """One event's line: its hashed payload, link and hash."""
    return json.dumps(
        {
            "seq": stored.event.seq,
            "prev_hash": stored.prev_hash,
            "hash": stored.hash,
            "event": stored.event.payload(),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def header_for(slug: str, org_id: str, head: ChainHead) -> ArchiveHeader:
    return ArchiveHeader(slug, org_id, head, head.seq, datetime.now(UTC).isoformat())


async def archive_lines(
    header: ArchiveHeader, events: AsyncIterator[StoredEvent]
) -> AsyncIterator[str]:
    """The archive's lines (without newlines): the header, then each event."""
    yield header.line()
    async for stored in events:
        yield event_line(stored)


def _event_from_payload(payload: dict[str, Any]) -> ChainedEvent:
    occurred = datetime.strptime(payload["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return ChainedEvent(
        tenant_id=payload["tenant_id"],
        seq=payload["seq"],
        occurred_at=occurred.replace(tzinfo=UTC),
        actor=payload["actor"],
        actor_display=payload["actor_display"],
        action=payload["action"],
        target_type=payload["target_type"],
        target_id=payload["target_id"],
        before=payload["before"],
        after=payload["after"],
        request_id=payload["request_id"],
        client_addr=payload["client_addr"],
    )


def read_header(first: str) -> ArchiveHeader:
    """The header from the archive's first line; ArchiveFormatError if it is not one."""
    try:
        data = json.loads(first)
        if data.get("format") != FORMAT:
            raise ArchiveFormatError(f"line 1: not a {FORMAT} file")
        return ArchiveHeader(
            str(data["organisation"]),
            str(data["organisation_id"]),
            ChainHead.parse(str(data["head"])),
            int(data["events"]),
            str(data["created_at"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, ArchiveFormatError):
            raise
        raise ArchiveFormatError(f"line 1: not an archive header ({exc})") from None


def _stored_events(lines: Iterator[str]) -> Iterator[StoredEvent | ChainBreak]:
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            event = _event_from_payload(data["event"])
            if event.seq != data["seq"]:
                yield ChainBreak(
                    int(data["seq"]), "its line and its event disagree on its position"
                )
                return
            yield StoredEvent(event, prev_hash=str(data["prev_hash"]), hash=str(data["hash"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveFormatError(f"line {number}: not an archived event ({exc})") from None


def verify_archive(
    lines: Iterable[str], *, expected_head: ChainHead | None = None
) -> tuple[ArchiveHeader, Verification]:
    """Verify an archive from its lines alone: every link and hash recomputed in order, and
    the last event held against the header's head (and ``expected_head``, a head recorded
    elsewhere, which catches an archive cut short together with its header).

    Raises ArchiveFormatError for a file that is not an archive; a chain that does not hold
    is a Verification with ``broken`` set, naming the first event that fails.
    """
    iterator = iter(lines)
    try:
        header = read_header(next(iterator))
    except StopIteration:
        raise ArchiveFormatError("the file is empty") from None
    verifier = ChainVerifier(expected_head=expected_head, stored_head=header.head)
    for item in _stored_events(iterator):
        if isinstance(item, ChainBreak):
            verifier.broken = item
            break
        if not verifier.feed(item):
            break
    return header, verifier.finish()
