"""Cross-process notifications (PostgreSQL NOTIFY, delivered at commit) that tell every
node's caches what went stale. One channel; the payload says what:

- ``org:<organisation id>``: the organisation's policy or structure changed;
- ``member:<organisation id>:<member id>``: one member's unit, groups or choices changed;
- ``credentials``: a token or client was revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from tenants import db
from tenants.ids import OrgId

CHANNEL = "tenantry_events"

_sent: ContextVar[list[str] | None] = ContextVar("tenantry_sent_notifications", default=None)


@contextmanager
def collect() -> Iterator[list[str]]:
    """Collect the payloads notified inside the block, so the process that made a change
    can apply them to its own caches right after commit instead of waiting for its own
    notification to come back (read-your-writes)."""
    sent: list[str] = []
    token = _sent.set(sent)
    try:
        yield sent
    finally:
        _sent.reset(token)


async def _notify(payload: str) -> None:
    await db.connection().execute_query("SELECT pg_notify($1, $2)", [CHANNEL, payload])
    sent = _sent.get()
    if sent is not None:
        sent.append(payload)


async def organisation_changed(org_id: OrgId) -> None:
    await _notify(f"org:{org_id}")


async def member_changed(org_id: OrgId, member_id: uuid.UUID) -> None:
    await _notify(f"member:{org_id}:{member_id}")


async def credentials_revoked() -> None:
    await _notify("credentials")


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    org_id: OrgId | None = None
    member_id: uuid.UUID | None = None


def parse(payload: str) -> Notice | None:
    """A notification's meaning; None for payloads this version does not know."""
    kind, _, rest = payload.partition(":")
    try:
        if kind == "org":
            return Notice(kind, OrgId(uuid.UUID(rest)))
        if kind == "member":
            org, _, member = rest.partition(":")
            return Notice(kind, OrgId(uuid.UUID(org)), uuid.UUID(member))
    except ValueError:
        return None
    return Notice(kind) if kind == "credentials" else None
