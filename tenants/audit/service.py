"""Recording, listing and verifying audit events, inside the caller's tenant transaction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenants.actors import Actor
from tenants.audit.chain import (
    GENESIS,
    ChainedEvent,
    ChainHead,
    ChainVerifier,
    StoredEvent,
    Verification,
    event_hash,
)
from tenants.db import connection, current_org, fetch, fetch_one
from tenants.ids import OrgId


def jsonable(value: Any) -> Any:
    """Values as they appear in an audit event: ids and times as strings, enums as values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value.value if hasattr(value, "value") else value)


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The old and new values of the fields that differ; both empty when nothing changed."""
    keys = [k for k in after if jsonable(before.get(k)) != jsonable(after.get(k))]
    return ({k: jsonable(before.get(k)) for k in keys}, {k: jsonable(after.get(k)) for k in keys})


async def start_chain(org_id: OrgId) -> None:
    """Create the empty chain of a new organisation (its head row)."""
    await connection().execute_query(
        "INSERT INTO audit_heads (id, tenant_id, seq, hash, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, 0, $2, now(), now())",
        [org_id, GENESIS],
    )


async def record(
    action: str,
    target_type: str,
    target_id: object,
    *,
    actor: Actor,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Append one event to the organisation's chain; returns its ``seq``.

    Locks the chain head until the transaction ends, so appends of one organisation are
    serialised while other organisations write undisturbed. Call it last in a write so
    the lock is held briefly.
    """
    org = current_org()
    conn = connection()
    _, rows = await conn.execute_query(
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE", [org]
    )
    if not rows:
        raise RuntimeError(f"organisation {org} has no audit chain")
    seq = int(rows[0]["seq"]) + 1
    prev_hash = str(rows[0]["hash"])
    event = ChainedEvent(
        tenant_id=str(org),
        seq=seq,
        occurred_at=datetime.now(UTC),
        actor=actor.ref,
        actor_display=actor.display,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        request_id=actor.request_id,
        client_addr=actor.client_addr,
    )
    digest = event_hash(prev_hash, event)
    await conn.execute_query(
        """
        WITH appended AS (
          INSERT INTO audit_events (tenant_id, seq, occurred_at, actor, actor_display, action,
                                    target_type, target_id, before, after, request_id,
                                    client_addr, prev_hash, hash)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13, $14)
        )
        UPDATE audit_heads SET seq = $2, hash = $14, updated_at = $3 WHERE tenant_id = $1
        """,
        [
            org,
            seq,
            event.occurred_at,
            event.actor,
            event.actor_display,
            action,
            target_type,
            event.target_id,
            _json_or_none(event.before),
            _json_or_none(event.after),
            event.request_id,
            event.client_addr,
            prev_hash,
            digest,
        ],
    )
    return seq


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


EVENT_COLUMNS = (
    "seq, occurred_at, actor, actor_display, action, target_type, target_id, before, after, "
    "request_id, client_addr, prev_hash, hash"
)


async def list_events(
    filters: AuditFilter, *, before_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; ``before_seq`` continues a previous page."""
    clauses = ["tenant_id = $1"]
    args: list[Any] = [current_org()]
    for column, value in (
        ("action", filters.action),
        ("actor", filters.actor),
        ("target_type", filters.target_type),
        ("target_id", filters.target_id),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if filters.since is not None:
        args.append(filters.since)
        clauses.append(f"occurred_at >= ${len(args)}")
    if filters.until is not None:
        args.append(filters.until)
        clauses.append(f"occurred_at < ${len(args)}")
    if before_seq is not None:
        args.append(before_seq)
        clauses.append(f"seq < ${len(args)}")
    args.append(limit)
    sql = (
        f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE {' AND '.join(clauses)} "  # noqa: S608
        f"ORDER BY seq DESC LIMIT ${len(args)}"
    )
    return [_decoded(row) for row in await fetch(sql, *args)]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("before", "after"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


async def stored_head() -> ChainHead:
    row = await fetch_one("SELECT seq, hash FROM audit_heads WHERE tenant_id = $1", current_org())
    if row is None:
        return ChainHead(0, GENESIS)
    return ChainHead(int(row["seq"]), str(row["hash"]))


async def _stream(batch: int = 5000) -> AsyncIterator[StoredEvent]:
    org = current_org()
    after = 0
    while True:
        rows = await fetch(
            f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE tenant_id = $1 AND seq > $2 "  # noqa: S608
            "ORDER BY seq LIMIT $3",
            org,
            after,
            batch,
        )
        for row in rows:
            row = _decoded(row)
            yield StoredEvent(
                ChainedEvent(
                    tenant_id=str(org),
                    seq=int(row["seq"]),
                    occurred_at=row["occurred_at"],
                    actor=row["actor"],
                    actor_display=row["actor_display"],
                    action=row["action"],
                    target_type=row["target_type"],
                    target_id=row["target_id"],
                    before=row["before"],
                    after=row["after"],
                    request_id=row["request_id"],
                    client_addr=row["client_addr"],
                ),
                prev_hash=row["prev_hash"],
                hash=row["hash"],
            )
        if len(rows) < batch:
            return
        after = int(rows[-1]["seq"])


async def verify(expected_head: ChainHead | None = None) -> Verification:
    """Walk the organisation's whole chain and report the first event that does not hold."""
    verifier = ChainVerifier(expected_head=expected_head, stored_head=await stored_head())
    async for stored in _stream():
        if not verifier.feed(stored):
            break
    return verifier.finish()
