"""Access checks and what they leave behind: the organisation's access log and each
member's transparency log ("who accessed your data").

A check is answered and recorded by one SQL statement (``check_data_access``, migration
0008: the same ranking as ``rules.answer_check``), so a product's check costs one round
trip; ``CheckBatcher`` sends the concurrent checks of a process in one statement, outside any
transaction, for the API's fast path; ``check_access`` runs one inside the caller's tenant
transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections

from tenants import cursors, db
from tenants.access.models import DataCategory
from tenants.access.rules import ALLOWED
from tenants.cursors import Column, Kind
from tenants.errors import FieldProblem, InvalidInputError
from tenants.ids import OrgId

CHECK_SQL = (
    "SELECT outcome, grant_id, log_id, admin_id FROM check_data_access($1, $2, $3, $4, $5, $6, $7)"
)

#: Answers of ``check_data_access`` that are bad input (nothing was recorded): the field
#: at fault and what to say.
UNKNOWN = {
    "unknown_admin": ("admin", "no member with this id or email"),
    "unknown_member": ("member_id", "no member with this id"),
    "unknown_product": ("product_id", "no product with this id"),
}


@dataclass(frozen=True, slots=True)
class CheckQuestion:
    """May the admin (by id, or else by email) read ``category`` of ``member_id`` in
    ``product_id`` now?"""

    member_id: uuid.UUID
    product_id: uuid.UUID
    category: DataCategory
    admin_id: uuid.UUID | None = None
    admin_email: str | None = None


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    allowed: bool
    #: None when allowed; else a ``rules.DenyReason`` value.
    reason: str | None
    #: The grant that allowed it, or the one that came closest; None without any.
    grant_id: uuid.UUID | None
    #: The access log entry recording this check.
    log_id: int
    admin_id: uuid.UUID


def _one_admin(question: CheckQuestion) -> None:
    """InvalidInputError unless the question names the admin exactly one way."""
    if (question.admin_id is None) == (question.admin_email is None):
        problem = "give exactly one of admin_id and admin_email"
        raise InvalidInputError(
            "say which admin is about to read the data",
            fields=[FieldProblem("admin_id", problem), FieldProblem("admin_email", problem)],
        )


def _args(org: OrgId, question: CheckQuestion, checked_by: str) -> list[Any]:
    _one_admin(question)
    return [
        org,
        question.admin_id,
        None if question.admin_id else (question.admin_email or "").strip().lower(),
        question.member_id,
        question.product_id,
        question.category.value,
        checked_by,
    ]


def _answer(row: Mapping[str, Any], question: CheckQuestion) -> CheckAnswer:
    outcome = str(row["outcome"])
    if outcome in UNKNOWN:
        field, reason = UNKNOWN[outcome]
        if field == "admin":
            field = "admin_id" if question.admin_id else "admin_email"
        raise InvalidInputError(
            f"the check names something that does not exist ({field})",
            fields=[FieldProblem(field, reason)],
        )
    allowed = outcome == ALLOWED
    return CheckAnswer(
        allowed=allowed,
        reason=None if allowed else outcome,
        grant_id=row["grant_id"],
        log_id=int(row["log_id"]),
        admin_id=row["admin_id"],
    )


async def check_access(question: CheckQuestion, *, checked_by: str) -> CheckAnswer:
    """Answer and record one check in the open tenant transaction. InvalidInputError
    (naming the field, nothing recorded) when the admin, member or product is unknown."""
    row = await db.fetch_one(CHECK_SQL, *_args(db.current_org(), question, checked_by))
    assert row is not None
    return _answer(row, question)


BATCH_SQL = (
    "SELECT item, outcome, grant_id, log_id, admin_id "
    "FROM check_data_access_batch($1, $2, $3, $4, $5, $6, $7)"
)

#: A waiting check: the question, who asks, and where its answer goes.
Waiting = tuple[CheckQuestion, str, "asyncio.Future[Mapping[str, Any]]"]


class CheckBatcher:
    """Answers a process's concurrent checks of one organisation in one statement.

    A check that finds nothing in flight for its organisation is sent at once, alone; the
    checks arriving while a statement is in flight wait for it and go together in the
    next one (``check_data_access_batch``, migration 0012). Idle, a check costs one round
    trip as before; under load, one round trip and one commit serve many checks, which is
    what lets a product check every read without the check costing more than the read.
    Each check is still answered and recorded on its own, and a check refused as bad
    input records nothing. The statements run outside any transaction of the caller's
    (autocommit), so this is for the API's fast path, never inside a tenant transaction.

    One statement of an organisation is in flight at a time by default: with 32 products'
    connections on one process, four in flight made batches of 6.5 checks and one made
    larger ones, and the process spent 12 % less CPU per check (``bench/access.py``); the
    server then runs a batch in well under a millisecond, so waiting for the one in
    flight costs a check less than sharing the statement saves.
    """

    def __init__(self, max_batch: int = 256, in_flight: int = 1) -> None:
        self.max_batch = max_batch
        #: Statements of one organisation in flight at once (each on its own connection).
        self.in_flight = in_flight
        self._waiting: dict[OrgId, list[Waiting]] = {}
        self._senders: dict[OrgId, set[asyncio.Task[None]]] = {}
        #: Statements sent and checks answered, for the benchmark's information lines.
        self.statements = 0
        self.checks = 0

    async def check(self, org: OrgId, question: CheckQuestion, *, checked_by: str) -> CheckAnswer:
        """Answer and record one check; InvalidInputError as ``check_access``."""
        _one_admin(question)
        answer: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(org, []).append((question, checked_by, answer))
        senders = self._senders.setdefault(org, set())
        if len(senders) < self.in_flight:
            senders.add(asyncio.create_task(self._send(org)))
        return _answer(await answer, question)

    async def _send(self, org: OrgId) -> None:
        """Send what waits, again and again until nothing does, on one connection held
        for the whole burst (a pool connection is reset each time it is given back)."""
        batch: list[Waiting] = []
        try:
            while self._waiting.get(org):
                try:
                    async with connections.get("default").acquire_connection() as conn:
                        while self._waiting.get(org):
                            batch = self._waiting[org][: self.max_batch]
                            del self._waiting[org][: self.max_batch]
                            for row in await self._statement(conn, org, batch):
                                answer = batch[row["item"] - 1][2]
                                if not answer.done():  # the asking request may have gone
                                    answer.set_result(row)
                            batch = []
                except Exception as exc:
                    # The batch sent gets the error; with no batch the connection itself
                    # failed, and every waiting check of the organisation gets it.
                    failed = batch or self._waiting.pop(org, [])
                    batch = []
                    for _, _, answer in failed:
                        if not answer.done():
                            answer.set_exception(exc)
        finally:
            # Leaves the set with no await since it last found nothing waiting, so a check
            # that arrives later always finds room to start a sender.
            self._senders[org].discard(asyncio.current_task())
            for _, _, answer in batch:  # only when cancelled midway (shutdown)
                if not answer.done():
                    answer.set_exception(RuntimeError("the check was not answered"))

    async def _statement(self, conn: Any, org: OrgId, batch: list[Waiting]) -> list[Any]:
        questions = [q for q, _, _ in batch]
        rows = await conn.fetch(
            BATCH_SQL,
            org,
            [q.admin_id for q in questions],
            [None if q.admin_id else (q.admin_email or "").strip().lower() for q in questions],
            [q.member_id for q in questions],
            [q.product_id for q in questions],
            [q.category.value for q in questions],
            [checked_by for _, checked_by, _ in batch],
        )
        self.statements += 1
        self.checks += len(batch)
        return list(rows)


# --- the organisation's access log ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFilter:
    member_id: uuid.UUID | None = None
    admin_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    allowed: bool | None = None


LOG_COLUMNS = (
    "l.id, l.checked_at, l.admin_id, l.member_id, l.product_id, l.category, l.allowed, "
    "l.reason, l.grant_id, l.checked_by, a.name AS admin_name, a.email AS admin_email, "
    "m.name AS member_name, m.email AS member_email, p.name AS product_name"
)


async def list_log(
    filters: LogFilter, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Checks newest first (by id), with names where the rows still exist."""
    clauses = ["l.tenant_id = $1"]
    args: list[Any] = [db.current_org()]
    for column in ("member_id", "admin_id", "grant_id", "product_id", "allowed"):
        value = getattr(filters, column)
        if value is not None:
            args.append(value)
            clauses.append(f"l.{column} = ${len(args)}")
    if before_id is not None:
        args.append(before_id)
        clauses.append(f"l.id < ${len(args)}")
    args.append(limit)
    return await db.fetch(
        f"SELECT {LOG_COLUMNS} FROM access_log l "  # noqa: S608 (columns are constants)
        "LEFT JOIN members a ON a.tenant_id = l.tenant_id AND a.id = l.admin_id "
        "LEFT JOIN members m ON m.tenant_id = l.tenant_id AND m.id = l.member_id "
        "LEFT JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id "
        f"WHERE {' AND '.join(clauses)} ORDER BY l.id DESC LIMIT ${len(args)}",
        *args,
    )


MAX_LOG_ID = 2**63 - 1


#: A cursor of the access log: the id of the last entry shown (newest first).
LOG_ID = Column(Kind.INTEGER, low=1, high=MAX_LOG_ID)


def log_cursor(log_id: int) -> str:
    return cursors.seal("access_log", "-id", [log_id])


def id_from_log_cursor(cursor: str) -> int:
    """The id a cursor continues before; InvalidCursorError naming ``cursor`` if it was not
    issued here."""
    value: int = cursors.unseal(cursor, "access_log", "-id", [LOG_ID])[0]
    return value


# --- the member's transparency log ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransparencyEntry:
    """One line of "who accessed your data": a grant that opened the member's data, or
    one access a product recorded under a grant."""

    kind: str  # "grant" or "access"
    key: str
    at: datetime
    grant_id: uuid.UUID
    admin_name: str
    admin_email: str
    justification: str
    case_reference: str | None
    categories: list[str]
    #: Product names; empty with ``all_products``.
    products: list[str]
    all_products: bool
    ends_at: datetime | None
    status: str
    revoked_at: datetime | None
    emergency: bool
    on_unit: bool
    #: Who approved it (the second person) and what they noted; for an emergency access,
    #: who reviewed it afterwards. None while nobody has (or for a removed member).
    approver_name: str | None = None
    decision_reason: str | None = None
    reviewer_name: str | None = None


#: Grants that opened the member's data (started) and accesses under them, disclosed now.
#: ``$1`` member, ``$2``/``$3`` keyset (time, key) to continue after, ``$4`` limit.
TRANSPARENCY_SQL = """
WITH me AS (
  SELECT m.id, u.path FROM members m
    JOIN units u ON u.tenant_id = m.tenant_id AND u.id = m.unit_id
   WHERE m.id = $1
), covering AS (
  SELECT g.* FROM access_grants g, me
   WHERE g.starts_at IS NOT NULL
     AND (g.disclosure_delayed_until IS NULL OR g.disclosure_delayed_until <= now())
     -- A unit's grant covers the members of the unit and of every unit below it: the
     -- member's path lists their unit and its ancestors.
     AND (g.member_id = me.id OR g.unit_id = ANY(string_to_array(me.path, '/')::uuid[]))
), entries AS (
  SELECT 'grant' AS kind, g.id::text AS key, g.starts_at AS at, g.id AS grant_id,
         NULL::uuid AS product_id, NULL::text AS category
    FROM covering g
  UNION ALL
  SELECT 'access', 'l' || lpad(l.id::text, 19, '0'), l.checked_at, l.grant_id,
         l.product_id, l.category
    FROM access_log l JOIN covering g ON g.id = l.grant_id
   WHERE l.member_id = $1 AND l.allowed
)
SELECT e.kind, e.key, e.at, e.grant_id, e.product_id, e.category,
       a.name AS admin_name, a.email AS admin_email, g.justification, g.case_reference,
       g.categories, g.all_products, g.product_ids, g.ends_at, g.status, g.revoked_at,
       g.emergency, g.unit_id IS NOT NULL AS on_unit,
       d.name AS approver_name, g.decision_reason, r.name AS reviewer_name
  FROM entries e
  JOIN covering g ON g.id = e.grant_id
  JOIN members a ON a.tenant_id = g.tenant_id AND a.id = g.admin_id
  LEFT JOIN members d ON d.tenant_id = g.tenant_id AND d.id = g.decided_by_id
  LEFT JOIN members r ON r.tenant_id = g.tenant_id AND r.id = g.reviewed_by_id
 WHERE $2::timestamptz IS NULL OR (e.at, e.key) < ($2::timestamptz, $3::text)
 ORDER BY e.at DESC, e.key DESC
 LIMIT $4
"""


@dataclass(frozen=True, slots=True)
class TransparencyPage:
    entries: list[TransparencyEntry]
    #: Pass back as ``after`` for older entries; None on the last page.
    next_after: str | None


def _json_list(value: Any) -> list[str]:
    import json

    items = json.loads(value) if isinstance(value, str) else value
    return [str(i) for i in items or []]


async def member_transparency(
    member_id: uuid.UUID, *, after: str | None = None, limit: int = 20
) -> TransparencyPage:
    """The member's "who accessed your data", newest first: each grant that opened their
    data and each access under one, leaving out grants whose disclosure is delayed (and
    their accesses) until the delay ends. Reads only rows about ``member_id``; row-level
    security keeps it to the organisation."""
    position = _position(after)
    rows = await db.fetch(
        TRANSPARENCY_SQL,
        member_id,
        position[0] if position else None,
        position[1] if position else "",
        limit + 1,
    )
    product_ids = {str(r["product_id"]) for r in rows if r["product_id"]}
    for r in rows:
        product_ids |= set(_json_list(r["product_ids"]))
    names = {
        str(r["id"]): r["name"]
        for r in await db.fetch(
            "SELECT id, name FROM products WHERE id = ANY($1::uuid[])", list(product_ids)
        )
    }
    entries = [
        TransparencyEntry(
            kind=r["kind"],
            key=r["key"],
            at=r["at"],
            grant_id=r["grant_id"],
            admin_name=r["admin_name"],
            admin_email=r["admin_email"],
            justification=r["justification"],
            case_reference=r["case_reference"],
            categories=[r["category"]] if r["kind"] == "access" else _json_list(r["categories"]),
            products=[
                names.get(p, "a product no longer provided")
                for p in (
                    [str(r["product_id"])]
                    if r["kind"] == "access"
                    else _json_list(r["product_ids"])
                )
            ],
            all_products=bool(r["all_products"]) and r["kind"] == "grant",
            ends_at=r["ends_at"],
            status=r["status"],
            revoked_at=r["revoked_at"],
            emergency=r["emergency"],
            on_unit=r["on_unit"],
            approver_name=r["approver_name"],
            decision_reason=r["decision_reason"],
            reviewer_name=r["reviewer_name"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = entries[-1] if entries else None
    return TransparencyPage(entries, _encode_position(last.at, last.key) if more and last else None)


#: A position of the member's transparency page: the time and key of the last entry shown.
TRANSPARENCY = [Column(Kind.DATETIME), Column(Kind.TEXT, max_length=40)]


def _encode_position(at: datetime, key: str) -> str:
    return cursors.seal("transparency", "-at", [at, key])


def _position(after: str | None) -> tuple[datetime, str] | None:
    """A position from the account page's link; None (the first page) when it is not one."""
    if not after:
        return None
    try:
        at, key = cursors.unseal(after, "transparency", "-at", TRANSPARENCY)
    except cursors.InvalidCursorError:
        return None
    return at, key
