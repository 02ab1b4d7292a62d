"""The audit log, newest first (by event id; an event's place in the chain follows once
it is sealed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, Output, Page
from tenants import cursors
from tenants.audit import service
from tenants.cursors import Column, Kind
from tenants.pagination import MAX_LIMIT
from tenants.permissions import Permission

router = ApiRouter("/v1/audit-events", "audit")

Short = Annotated[str, StringConstraints(max_length=300)]

#: The largest event id a cursor may carry (audit_events.id is a bigint).
MAX_ID = 2**63 - 1


def _storable(value: datetime) -> datetime:
    """A time PostgreSQL can compare with: in UTC it must still fall in years 1 to 9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def _rfc3339_text(value: object) -> object:
    """Query strings are text; refuse the Unix timestamps pydantic would otherwise accept,
    since the documented format is an RFC 3339 date-time."""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                "expected an RFC 3339 date-time such as 2024-01-31T09:00:00Z"
            ) from None
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_storable)]


class AuditEventOut(Output):
    id: int = Field(description="The event's id; a newer event has a higher id.")
    seq: int | None = Field(
        description="Its place in the organisation's hash chain; null until it is sealed, "
        "which happens shortly after the write commits."
    )
    occurred_at: datetime
    actor: str
    actor_display: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    client_addr: str | None
    prev_hash: str | None = Field(description="The previous chain entry's hash; null until sealed.")
    hash: str | None = Field(description="SHA-256 chaining this event; null until sealed.")


class AuditEventPage(Page[AuditEventOut]):
    pass


class AuditQuery(Input):
    action: Short | None = None
    actor: Short | None = Field(None, description="e.g. api_token:<id> or member:<id>")
    target_type: Short | None = None
    target_id: Short | None = None
    since: Instant | None = None
    until: Instant | None = None
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


#: A cursor of the audit log: the id of the last event shown (newest first).
EVENT_ID = Column(Kind.INTEGER, low=1, high=MAX_ID)


def _id_from_cursor(cursor: str) -> int:
    value: int = cursors.unseal(cursor, "audit_events", "-id", [EVENT_ID])[0]
    return value


def _cursor_for(event_id: int) -> str:
    return cursors.seal("audit_events", "-id", [event_id])


@router.get(
    "",
    summary="List audit events, newest first",
    permission=Permission.AUDIT_READ,
    query=AuditQuery,
    response=AuditEventPage,
    errors=(422,),
)
async def list_audit_events(call: Call[Input, AuditQuery]) -> AuditEventPage:
    q = call.query
    before_id = _id_from_cursor(q.cursor) if q.cursor else None
    filters = service.AuditFilter(
        action=q.action,
        actor=q.actor,
        target_type=q.target_type,
        target_id=q.target_id,
        since=q.since,
        until=q.until,
    )
    rows = await service.list_events(filters, before_id=before_id, limit=q.limit + 1)
    next_cursor = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        next_cursor = _cursor_for(rows[-1]["id"])
    return AuditEventPage(
        items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
