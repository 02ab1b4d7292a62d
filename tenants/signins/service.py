"""Recording sign-in attempts and reading them back.

Recording is not audited: the log is itself the record (like the access log), and a
refusal must be recorded even though the transaction that refused rolled back; callers
record refusals in a transaction of their own (``record_for``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet

from tenants import db, telemetry
from tenants.ids import OrgId
from tenants.organisations.models import Organisation
from tenants.pagination import Page, Sort, count_up_to, paginate
from tenants.signins.models import SignIn
from tenants.signins.rules import Reason, SignInMethod, SignInOutcome

NEWEST_FIRST = Sort("at", descending=True)


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    """What is known about one attempt when it ends."""

    method: SignInMethod
    reason: Reason | None = None
    email: str | None = None
    idp_subject: str | None = None
    member_id: uuid.UUID | None = None
    idp: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None
    #: What went wrong in the protocol, in words (``SignInError.message``).
    detail: str | None = None

    @property
    def outcome(self) -> SignInOutcome:
        return SignInOutcome.SUCCEEDED if self.reason is None else SignInOutcome.REFUSED


def _printable(value: str | None, length: int) -> str | None:
    """``value`` cut to ``length`` with anything unprintable as "?": what the log keeps of
    a request (a typed address, a user agent) or a provider (a detail quoting its values)
    is theirs to choose, and the log is read on screens and in spreadsheets."""
    return "".join(c if c.isprintable() else "?" for c in value[:length]) if value else None


_RECORD_SQL = """
INSERT INTO sign_ins (id, tenant_id, created_at, updated_at, at, method, outcome, reason, email,
                      idp_subject, member_id, idp, client_addr, user_agent, detail)
VALUES (${0}, ${1}, ${2}, ${2}, ${2}, ${3}, ${4}, ${5}, ${6}, ${7}, ${8}, ${9}, ${10}, ${11},
        ${12})
"""


def record_statement(attempt: SignInAttempt, *, first: int = 1) -> tuple[str, list[Any]]:
    """The INSERT that appends ``attempt`` to the open organisation's log, its parameters
    numbered from ``$first`` (to ride in another statement, ``audit.record_change``'s
    ``also``). Whoever runs it calls ``counted`` once it has."""
    numbered = zip(range(first, first + len(_TYPES)), _TYPES, strict=True)
    sql = _RECORD_SQL.format(*(f"{n}::{t}" for n, t in numbered))
    return sql, [
        uuid.uuid4(),
        db.current_org(),
        datetime.now(UTC),
        attempt.method.value,
        attempt.outcome.value,
        attempt.reason.value if attempt.reason else None,
        _printable(attempt.email.strip().lower() if attempt.email else None, 320),
        _printable(attempt.idp_subject, 255),
        attempt.member_id,
        _printable(attempt.idp, 500),
        _printable(attempt.client_addr, 100),
        _printable(attempt.user_agent, 300),
        _printable(attempt.detail, 300),
    ]


#: Parameter types of the log's INSERT (explicit: inside a larger statement a parameter
#: used twice or only in a CTE still gets its type).
_TYPES = (
    "uuid",
    "uuid",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "uuid",
    "text",
    "text",
    "text",
    "text",
)


async def record(attempt: SignInAttempt) -> None:
    """Append ``attempt`` to the log in the open tenant transaction."""
    sql, args = record_statement(attempt)
    await db.connection().execute_query(sql, args)
    counted(attempt)


def counted(attempt: SignInAttempt) -> None:
    """Count a recorded attempt in the metrics (by method and outcome)."""
    telemetry.SIGN_INS.inc(attempt.method.value, attempt.outcome.value)


async def record_for(org_id: OrgId, attempt: SignInAttempt) -> None:
    """Append ``attempt`` in a transaction of its own (after a refusal rolled back); nothing
    when the organisation does not exist (an id made up by whoever tried)."""
    async with db.tenant_transaction(org_id):
        if await Organisation.exists(id=org_id):
            await record(attempt)


@dataclass(frozen=True, slots=True)
class SignInFilter:
    outcome: SignInOutcome | None = None
    method: SignInMethod | None = None
    reason: Reason | None = None
    email: str | None = None
    member_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(filters: SignInFilter) -> QuerySet[SignIn]:
    query = SignIn.all()
    if filters.outcome is not None:
        query = query.filter(outcome=filters.outcome)
    if filters.method is not None:
        query = query.filter(method=filters.method)
    if filters.reason is not None:
        query = query.filter(reason=filters.reason.value)
    if filters.email:
        query = query.filter(email=filters.email.strip().lower())
    if filters.member_id is not None:
        query = query.filter(member_id=filters.member_id)
    if filters.since is not None:
        query = query.filter(at__gte=filters.since)
    if filters.until is not None:
        query = query.filter(at__lt=filters.until)
    return query


async def list_sign_ins(
    filters: SignInFilter, *, cursor: str | None, limit: int, sort: Sort = NEWEST_FIRST
) -> Page[SignIn]:
    """One page of the organisation's sign-ins, newest first (or oldest, with ``sort``
    ``at``); InvalidInputError for a cursor that was not issued here."""
    return await paginate(_query(filters), sort, cursor=cursor, limit=limit)


async def count_sign_ins(filters: SignInFilter) -> int:
    """How many sign-ins match ``filters``, at most COUNT_CAP + 1 (the log is append-only
    and may be long; ``tenants.pagination.count_up_to``)."""
    return await count_up_to(_query(filters))


async def recent_for_member(member_id: uuid.UUID, *, limit: int = 10) -> list[SignIn]:
    """The member's own latest sign-ins (for their account page)."""
    return list(await SignIn.filter(member_id=member_id).order_by("-at", "-id").limit(limit))
