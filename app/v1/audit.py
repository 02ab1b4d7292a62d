"""The audit log, newest first (by event id; an event's place in the chain follows once
it is sealed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from starlette.responses import Response

from app.api import ApiRouter, Call
from app.downloads import StreamedDownload, attachment
from app.v1.common import Input, Instant, Output, Page
from tenants import cursors
from tenants.audit import service
from tenants.csvcells import csv_line
from tenants.cursors import Column, Kind
from tenants.db import current_org
from tenants.ids import OrgId
from tenants.pagination import MAX_LIMIT
from tenants.permissions import Permission

router = ApiRouter("/v1/audit-events", "audit")

Short = Annotated[str, StringConstraints(max_length=300)]

#: The largest event id a cursor may carry (audit_events.id is a bigint).
MAX_ID = 2**63 - 1


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
    action: Short | None = Field(
        None,
        description=(
            "Exact action, or its start: ending in . or *, or without a dot (member. and "
            "member find member.*; access finds access_grant.* and access_review.*)"
        ),
    )
    actor: Short | None = Field(None, description="e.g. api_token:<id> or member:<id>")
    target_type: Short | None = None
    target_id: Short | None = None
    since: Instant | None = None
    until: Instant | None = None
    outcome: Literal["done", "refused"] | None = Field(
        None, description="refused: sign-in refusals and rejected events; done: the others"
    )
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    format: Literal["json", "csv", "ndjson"] = Field(
        "json",
        description="csv or ndjson: every matching event (no paging), streamed, newest first",
    )

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        """An empty list with no word was all a client got for until <= since."""
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise ValueError("must be after since: nothing can match")
        return until


#: The columns of a CSV export, in order.
EXPORT_COLUMNS = [
    "id",
    "seq",
    "occurred_at",
    "actor",
    "actor_display",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "request_id",
    "client_addr",
    "hash",
]


def export_response(org_id: OrgId, filters: service.AuditFilter, fmt: str) -> StreamedDownload:
    """The filtered events as a CSV or NDJSON download, streamed (console and API)."""

    async def lines() -> AsyncIterator[str]:
        if fmt == "csv":
            yield csv_line(list(EXPORT_COLUMNS))
        async for row in service.stream_events(org_id, filters):
            event = AuditEventOut.model_validate(row).model_dump(mode="json")
            if fmt == "csv":
                yield csv_line(
                    [
                        json.dumps(event[c], sort_keys=True)
                        if c in ("before", "after") and event[c] is not None
                        else event[c]
                        for c in EXPORT_COLUMNS
                    ]
                )
            else:
                yield json.dumps(event, sort_keys=True) + "\n"

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamedDownload(
        lines(),
        media_type=media,
        headers={
            "Content-Disposition": attachment(f"audit-events.{fmt}"),
            "Cache-Control": "no-store",
        },
    )


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
    alternatives=("text/csv", "application/x-ndjson"),
)
async def list_audit_events(call: Call[Input, AuditQuery]) -> AuditEventPage | Response:
    """With ``format=csv`` or ``format=ndjson`` the answer is every matching event as a
    download, streamed in batches (CSV cells that could start a spreadsheet formula get a
    leading quote)."""
    q = call.query
    before_id = _id_from_cursor(q.cursor) if q.cursor else None
    filters = service.AuditFilter(
        action=q.action,
        actor=q.actor,
        target_type=q.target_type,
        target_id=q.target_id,
        since=q.since,
        until=q.until,
        outcome=q.outcome,
    )
    if q.format != "json":
        return export_response(current_org(), filters, q.format)
    rows = await service.list_events(filters, before_id=before_id, limit=q.limit + 1)
    next_cursor = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        next_cursor = _cursor_for(rows[-1]["id"])
    return AuditEventPage(
        items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )
