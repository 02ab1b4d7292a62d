"""Recording, listing and verifying audit events, inside the caller's tenant transaction.

Recording writes the event and queues it; the sealer (``tenants.audit.sealer``) gives it
its place in the organisation's hash chain after the write commits. Listing shows events
at once, with their place in the chain once sealed; verification walks the chain and
says how many events are still waiting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tenants.actors import Actor
from tenants.audit.chain import (
    GENESIS,
    ChainBreak,
    ChainedEvent,
    ChainHead,
    ChainVerifier,
    StoredEvent,
    Verification,
)
from tenants.audit.sealer import request_sealing
from tenants.db import connection, current_org, fetch, fetch_one, tenant_transaction
from tenants.ids import OrgId
from tenants.privacy import shredding

#: Values that appear in an audit event as they are (checked first: most values are).
_PLAIN = frozenset({str, int, bool, float, type(None)})


def jsonable(value: Any) -> Any:
    """Values as they appear in an audit event: ids and times as strings, enums as values."""
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
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
    """The old and new values of the fields that differ; both empty when nothing changed.

    Equal values are equal as JSON too, so only the fields whose values differ are turned
    into JSON to compare (an enum and its value differ as Python, not as JSON): a write
    usually changes one or two fields of many."""
    keys = [
        k
        for k, new in after.items()
        if (old := before.get(k)) != new and jsonable(old) != jsonable(new)
    ]
    return ({k: jsonable(before.get(k)) for k in keys}, {k: jsonable(after.get(k)) for k in keys})


async def start_chain(org_id: OrgId) -> None:
    """Create the empty chain of a new organisation (its head row)."""
    await connection().execute_query(
        "INSERT INTO audit_heads (id, tenant_id, seq, hash, created_at, updated_at) "
        "VALUES (gen_random_uuid(), $1, 0, $2, now(), now())",
        [org_id, GENESIS],
    )


#: The event and its place in the sealing queue, in one statement (one round trip).
RECORD_SQL = """
WITH recorded AS (
  INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, target_type,
                            target_id, before, after, request_id, client_addr)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11)
  RETURNING tenant_id, id
)
INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded
RETURNING event_id
"""


async def record(
    action: str,
    target_type: str,
    target_id: object,
    *,
    actor: Actor,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Record one event in the open tenant transaction; returns the event's id.

    The event is queued (``audit_pending``) and gets its place in the organisation's hash
    chain after the transaction commits (``tenants.audit.sealer``): nothing shared by the
    organisation's other writers is locked here, so concurrent writes of one organisation
    do not queue behind each other. If the transaction rolls back, neither the event nor
    its queue entry remain. Raises NoTenantTransactionError outside a tenant transaction.

    Personal fields (the acting member's name and address, personal values of the
    snapshots) are stored sealed with the key of the member they are about
    (``tenants.privacy.shredding``), so erasing that member makes them unreadable while
    the event keeps verifying.
    """
    params = await _event_params(action, target_type, target_id, actor, before, after)
    _, rows = await connection().execute_query(RECORD_SQL, params)
    request_sealing()
    return int(rows[0]["event_id"])


#: How many parameters the event takes in RECORD_SQL and CHANGE_AND_RECORD_SQL: a change's
#: own parameters are numbered after them.
EVENT_PARAMS = 11

#: A change (``UPDATE … RETURNING …``, parameters from $12) and its event in one statement:
#: the event is written only if the change touched a row.
CHANGE_AND_RECORD_SQL = """
WITH changed AS ({change}),{also}
recorded AS (
  INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action, target_type,
                            target_id, before, after, request_id, client_addr)
  SELECT $1::uuid, $2::timestamptz, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb,
         $9::jsonb, $10::text, $11::text
   WHERE EXISTS (SELECT 1 FROM changed)
  RETURNING tenant_id, id
)
INSERT INTO audit_pending (tenant_id, event_id) SELECT tenant_id, id FROM recorded
RETURNING event_id
"""


async def record_change(
    change: str,
    change_args: Sequence[Any],
    action: str,
    target_type: str,
    target_id: object,
    *,
    actor: Actor,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    also: tuple[str, Sequence[Any]] | None = None,
) -> int | None:
    """Make ``change`` (an ``UPDATE … RETURNING …`` whose parameters are numbered from
    ``$EVENT_PARAMS + 1``) and record its event in the same statement: the write and its
    audit cost one round trip. Returns the event's id, or None when the change touched no
    row (and then nothing is recorded). Queued for sealing as ``record`` does, and its
    personal fields sealed as ``record`` seals them.

    ``also``: one more write made by the same statement whatever the change touched (an
    ``INSERT``, its parameters numbered after the change's), e.g. a log row that commits
    with the change."""
    params = await _event_params(action, target_type, target_id, actor, before, after)
    extra = f"\nalso AS ({also[0]})," if also is not None else ""
    _, rows = await connection().execute_query(
        CHANGE_AND_RECORD_SQL.format(change=change, also=extra),
        [*params, *change_args, *(also[1] if also is not None else ())],
    )
    if not rows:
        return None
    request_sealing()
    return int(rows[0]["event_id"])


async def _event_params(
    action: str,
    target_type: str,
    target_id: object,
    actor: Actor,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> list[Any]:
    """The EVENT_PARAMS parameters of one event, its personal fields sealed
    (``tenants.privacy.shredding``): the same for RECORD_SQL and CHANGE_AND_RECORD_SQL."""
    [sealed] = await shredding.seal_events(
        actor,
        action,
        target_type,
        [
            (
                target_id,
                jsonable(before) if before is not None else None,
                jsonable(after) if after is not None else None,
            )
        ],
    )
    return [
        current_org(),
        datetime.now(UTC),
        actor.ref,
        sealed.actor_display,
        action,
        target_type,
        str(target_id),
        _json_or_none(sealed.before),
        _json_or_none(sealed.after),
        actor.request_id,
        sealed.client_addr,
    ]


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else shredding.json_bytes(value).decode()


#: Events that record something refused or rejected (the ``outcome=refused`` filter).
REFUSAL_ACTIONS = ("session.sign_in_refused", "signals.event_rejected")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``action`` is exact, or a prefix when it ends with ``.`` or ``*`` (``member.``
    finds every member event) or holds no ``.`` at all (every action has one: ``access``
    finds ``access_grant.*`` and ``access_review.*``, ``departure`` every departure
    event). ``outcome`` is ``refused`` (REFUSAL_ACTIONS) or ``done`` (every other event)."""

    action: str | None = None
    actor: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


#: The organisation's distinct actions, in order: one probe of the (tenant_id, action
#: text_pattern_ops, id) index per action (a loose index scan), so the cost is the number
#: of kinds of event (a hundred or so), not of events. ``~>~``/``~<~`` are the operators
#: that index orders by.
KNOWN_ACTIONS_SQL = """
WITH RECURSIVE known(action) AS (
  (SELECT action::text FROM audit_events WHERE tenant_id = $1 ORDER BY action USING ~<~ LIMIT 1)
  UNION ALL
  SELECT (SELECT e.action::text FROM audit_events e
           WHERE e.tenant_id = $1 AND e.action::text ~>~ k.action
           ORDER BY e.action USING ~<~ LIMIT 1)
    FROM known k WHERE k.action IS NOT NULL
)
SELECT action FROM known WHERE action IS NOT NULL LIMIT $2
"""


async def known_actions(limit: int = 500) -> list[str]:
    """The actions the open organisation's log holds, for a filter's suggestions."""
    rows = await fetch(KNOWN_ACTIONS_SQL, current_org(), limit)
    return [str(r["action"]) for r in rows]


#: An event's columns, with its place in the chain (NULL while it waits to be sealed).
LISTED_COLUMNS = (
    "e.id, c.seq, e.occurred_at, e.actor, e.actor_display, e.action, e.target_type, "
    "e.target_id, e.before, e.after, e.request_id, e.client_addr, c.prev_hash, c.hash"
)


async def list_events(
    filters: AuditFilter, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first by event id, sealed or not (``seq``/``prev_hash``/``hash`` are None
    until the sealer has chained the event); ``before_id`` continues a previous page.
    Personal fields are opened; an erased member's read ``[erased]`` / ``erased member``."""
    clauses = ["e.tenant_id = $1"]
    args: list[Any] = [current_org()]
    # Actions are written in small letters: "Departure" as the suggestions read is found.
    action = filters.action.lower() if filters.action is not None else None
    if action is not None and (action.endswith((".", "*")) or "." not in action):
        # A prefix: a range of the (tenant_id, action text_pattern_ops, id) index.
        args.append(_like_prefix(action.rstrip("*")))
        clauses.append(f"e.action LIKE ${len(args)}")
        action = None
    if filters.outcome == "refused":
        args.append(list(REFUSAL_ACTIONS))
        clauses.append(f"e.action = ANY(${len(args)}::text[])")
    elif filters.outcome == "done":
        args.append(list(REFUSAL_ACTIONS))
        clauses.append(f"NOT (e.action = ANY(${len(args)}::text[]))")
    for column, value in (
        ("action", action),
        ("actor", filters.actor),
        ("target_type", filters.target_type),
        ("target_id", filters.target_id),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"e.{column} = ${len(args)}")
    if filters.since is not None:
        args.append(filters.since)
        clauses.append(f"e.occurred_at >= ${len(args)}")
    if filters.until is not None:
        args.append(filters.until)
        clauses.append(f"e.occurred_at < ${len(args)}")
    if before_id is not None:
        args.append(before_id)
        clauses.append(f"e.id < ${len(args)}")
    args.append(limit)
    sql = (
        f"SELECT {LISTED_COLUMNS} FROM audit_events e "  # noqa: S608
        "LEFT JOIN audit_chain c ON c.tenant_id = e.tenant_id AND c.event_id = e.id "
        f"WHERE {' AND '.join(clauses)} ORDER BY e.id DESC LIMIT ${len(args)}"
    )
    return await shredding.reveal_rows([_decoded(row) for row in await fetch(sql, *args)])


async def stream_events(
    org_id: OrgId, filters: AuditFilter, *, batch: int = 1000
) -> AsyncIterator[dict[str, Any]]:
    """Every event matching ``filters``, newest first, read in keyset batches each in its
    own short tenant transaction of ``org_id`` (for an export streamed after the request's
    own transaction ended); memory stays at one batch whatever the log's size."""
    before_id: int | None = None
    while True:
        async with tenant_transaction(org_id):
            rows = await list_events(filters, before_id=before_id, limit=batch)
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        before_id = rows[-1]["id"]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("before", "after"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


HEAD_SQL = "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1"


async def stored_head() -> ChainHead:
    """The head the database keeps for the open organisation; the empty chain's head when
    the organisation has none."""
    return await _read_head(HEAD_SQL)


async def _hold_head() -> ChainHead:
    """The stored head, share-locked until the transaction ends: sealers skip (or wait
    for) the organisation meanwhile, so the chain cannot grow under the walk."""
    return await _read_head(HEAD_SQL + " FOR SHARE")


async def _read_head(sql: str) -> ChainHead:
    row = await fetch_one(sql, current_org())
    if row is None:
        return ChainHead(0, GENESIS)
    return ChainHead(int(row["seq"]), str(row["hash"]))


#: The chain in seq order with each entry's event (event columns NULL when it is gone).
#: Each entry's event is looked up by its key (a LATERAL subquery that OFFSET 0 keeps from
#: being flattened into a join): as a join, the generic plan asyncpg settles on, with the
#: row estimates of a table not yet analysed (after a bulk load or a restore), was a nested
#: loop over every event of the organisation for each entry: 21.7 s for a batch of 5,000
#: entries of a 30,000-event chain, 14 ms this way.
CHAIN_SQL = """
SELECT c.seq, c.prev_hash, c.hash, e.id AS event_id, e.occurred_at, e.actor, e.actor_display,
       e.action, e.target_type, e.target_id, e.before, e.after, e.request_id, e.client_addr
  FROM audit_chain c
  LEFT JOIN LATERAL (
    SELECT * FROM audit_events e WHERE e.tenant_id = c.tenant_id AND e.id = c.event_id OFFSET 0
  ) e ON true
 WHERE c.tenant_id = $1 AND c.seq > $2
 ORDER BY c.seq
 LIMIT $3
"""


async def chain_entries(after: int, limit: int) -> list[tuple[int, StoredEvent | None]]:
    """The open organisation's chain entries after ``seq`` ``after``, at most ``limit``, in
    seq order: ``(seq, stored event)``, or ``(seq, None)`` when its event is gone."""
    org = current_org()
    entries: list[tuple[int, StoredEvent | None]] = []
    for row in await fetch(CHAIN_SQL, org, after, limit):
        seq = int(row["seq"])
        if row["event_id"] is None:
            entries.append((seq, None))
            continue
        event = ChainedEvent.from_row(str(org), seq, row)
        entries.append((seq, StoredEvent(event, prev_hash=row["prev_hash"], hash=row["hash"])))
    return entries


async def _stream(batch: int = 5000) -> AsyncIterator[tuple[int, StoredEvent | None]]:
    """Each chain entry (``chain_entries``), batched by seq so a long chain streams
    through."""
    after = 0
    while True:
        entries = await chain_entries(after, batch)
        for entry in entries:
            yield entry
        if len(entries) < batch:
            return
        after = entries[-1][0]


#: Events not covered by the chain, in one statement so a sealer committing in between
#: cannot make an event look both unchained and not pending.
QUEUE_SQL = """
SELECT
  (SELECT count(*) FROM audit_pending p WHERE p.tenant_id = $1) AS pending,
  (SELECT min(p.event_id) FROM audit_pending p
    WHERE p.tenant_id = $1
      AND NOT EXISTS (SELECT 1 FROM audit_events e
                       WHERE e.tenant_id = p.tenant_id AND e.id = p.event_id)) AS vanished,
  (SELECT min(e.id) FROM audit_events e
    WHERE e.tenant_id = $1
      AND NOT EXISTS (SELECT 1 FROM audit_chain c
                       WHERE c.tenant_id = e.tenant_id AND c.event_id = e.id)
      AND NOT EXISTS (SELECT 1 FROM audit_pending p
                       WHERE p.tenant_id = e.tenant_id AND p.event_id = e.id)) AS unchained
"""


def _unsealable(head: ChainHead, row: Mapping[str, Any]) -> ChainBreak | None:
    """An event the chain can never cover: one that was neither chained nor queued (written
    behind the service's back, or its chain and queue entries removed), or a queued event
    deleted before it was sealed. Reported just past the head, where it would have gone."""
    if row["unchained"] is not None:
        return ChainBreak(
            head.seq + 1,
            f"event id {row['unchained']} is neither in the chain nor waiting to be sealed "
            "(written or unlinked behind the service's back)",
        )
    if row["vanished"] is not None:
        return ChainBreak(
            head.seq + 1, f"event id {row['vanished']} was deleted before it was sealed"
        )
    return None


async def chained_events() -> AsyncIterator[StoredEvent]:
    """Every chained event of the open organisation in seq order, for an archive; call
    after ``verify`` in the same transaction (its share lock keeps the chain still), which
    has shown that no entry lost its event."""
    async for seq, stored in _stream():
        if stored is None:
            raise RuntimeError(f"audit chain entry {seq} has lost its event")
        yield stored


async def verify(expected_head: ChainHead | None = None) -> Verification:
    """Walk the open organisation's chain in seq order and report the first entry that
    does not hold, then the events it does not cover: ``pending`` counts those waiting to
    be sealed (not an error); one that can never be sealed is a break.

    Share-locks the chain head until the caller's transaction ends (see ``_hold_head``).
    """
    verifier = ChainVerifier(expected_head=expected_head, stored_head=await _hold_head())
    async for seq, stored in _stream():
        held = verifier.feed(stored) if stored is not None else verifier.feed_missing(seq)
        if not held:
            break
    result = verifier.finish()
    queue = await fetch_one(QUEUE_SQL, current_org())
    assert queue is not None
    broken = result.broken or _unsealable(result.head, queue)
    return replace(result, broken=broken, pending=int(queue["pending"]))


#: Break-glass sign-ins, newest first: a partial index holds exactly these events
#: (migration 0018), so the list costs its few rows whatever the size of the log.
BREAK_GLASS_SQL = """
SELECT occurred_at, actor_display, client_addr FROM audit_events
 WHERE tenant_id = $1 AND action = 'session.signed_in' AND (after ->> 'break_glass') = 'true'
 ORDER BY id DESC LIMIT $2
"""


async def break_glass_sign_ins(limit: int) -> list[dict[str, Any]]:
    """The open organisation's latest break-glass sign-ins (newest first)."""
    return await fetch(BREAK_GLASS_SQL, current_org(), limit)
