"""The access check products call before showing an admin a member's data, and the
access log every check leaves behind.

The check is answered by one SQL statement per batch of concurrent checks on the fast
path (``tenants.access.log.CheckBatcher``), or inside the request's transaction the
first time a credential is seen; both answer exactly as ``tenants.access.rules`` says.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import orjson
from pydantic import EmailStr, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from app.api import ApiRouter, Call
from app.auth import Principal
from app.v1.common import Input, Output, Page
from tenants.access import log, notices
from tenants.access.models import DataCategory
from tenants.access.rules import DenyReason
from tenants.errors import FieldProblem, PermissionDeniedError
from tenants.ids import OrgId
from tenants.permissions import Permission

router = ApiRouter("/v1/access", "data access")


# --- the access check -------------------------------------------------------------------------


class CheckIn(Input):
    admin_id: uuid.UUID | None = Field(
        None, description="The admin, by member id; or give admin_email (exactly one)."
    )
    admin_email: EmailStr | None = Field(None, description="The admin, by email.")
    member_id: uuid.UUID = Field(description="Whose data.")
    category: DataCategory
    product_id: uuid.UUID = Field(description="The product about to show the data.")


class CheckOut(Output):
    allowed: bool
    reason: DenyReason | None = Field(description="Why not; null when allowed.")
    grant_id: uuid.UUID | None = Field(
        description="The grant that allows it, or the one that came closest."
    )
    admin_id: uuid.UUID
    log_id: int = Field(description="The access log entry recording this check.")


def _question(body: CheckIn) -> log.CheckQuestion:
    return log.CheckQuestion(
        member_id=body.member_id,
        product_id=body.product_id,
        category=body.category,
        admin_id=body.admin_id,
        admin_email=str(body.admin_email) if body.admin_email else None,
    )


def _answered(answer: log.CheckAnswer) -> Response:
    """The answer as ``CheckOut`` documents it, serialised directly: the fast path answers
    thousands of checks a second, and building and dumping the model cost a check 12 µs
    of the loaded server's CPU, a quarter of what the check adds to a bare request. Both
    paths answer with this (``tests/app/test_access_checks.py`` holds it to ``CheckOut``)."""
    return Response(
        orjson.dumps(
            {
                "allowed": answer.allowed,
                "reason": answer.reason,
                "grant_id": answer.grant_id,
                "admin_id": answer.admin_id,
                "log_id": answer.log_id,
            },
            # asyncpg's UUIDs subclass uuid.UUID, which orjson only writes natively.
            default=str,
        ),
        media_type="application/json",
    )


#: Larger bodies take the normal path, which refuses them (413).
FAST_BODY_LIMIT = 2048


async def _check_fast(
    request: Request, principal: Principal, path: dict[str, uuid.UUID]
) -> Response | None:
    """The check without a transaction around it, for a credential verified in the last
    seconds: one statement, shared with the checks arriving at the same time
    (``log.CheckBatcher``). Anything unusual about the body takes the normal path (None),
    so refusals are worded in one place."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    length = request.headers.get("content-length", "")
    if not (length.isdigit() and int(length) <= FAST_BODY_LIMIT):
        return None  # unknown or large: never read here, the normal path bounds it
    raw = await request.body()  # kept on the request: the normal path reads it again
    if b"\\u0000" in raw:
        return None
    try:
        body = CheckIn.model_validate_json(raw, strict=True)
    except ValidationError:
        return None
    if (body.admin_id is None) == (body.admin_email is None):
        return None
    if principal.product_id not in (None, body.product_id):
        return None  # another product's name: the normal path refuses it
    question = _question(body)
    answer = await _batcher(request).check(
        principal.org_id, question, checked_by=principal.actor.ref
    )
    _tell_member(request, principal.org_id, question, answer)
    return _answered(answer)


def _batcher(request: Request) -> log.CheckBatcher:
    """The process's batcher (one per app, made on first use)."""
    batcher: log.CheckBatcher | None = getattr(request.app.state, "access_checks", None)
    if batcher is None:
        batcher = request.app.state.access_checks = log.CheckBatcher()
    return batcher


def _tell_member(
    request: Request, org: OrgId, question: log.CheckQuestion, answer: log.CheckAnswer
) -> None:
    """An allowed check may owe the member an email (policy permitting): queued apart."""
    if not answer.allowed or answer.grant_id is None:
        return
    access_notices: notices.AccessNotices | None = getattr(
        request.app.state, "access_notices", None
    )
    if access_notices is None:
        access_notices = request.app.state.access_notices = notices.AccessNotices()
    access_notices.allowed(
        org,
        grant_id=answer.grant_id,
        member_id=question.member_id,
        admin_id=answer.admin_id,
        product_id=question.product_id,
        category=question.category.value,
    )


@router.post(
    "/check",
    summary="May this admin read this category of this member's data in this product now?",
    permission=Permission.ACCESS_CHECK,
    body=CheckIn,
    response=CheckOut,
    errors=(422,),
    fast=_check_fast,
)
async def check_data_access(call: Call[CheckIn, Input]) -> Response:
    """Products ask before showing an admin a member's data. The admin is named by member
    id (``admin_id``) or by email (``admin_email``), exactly one. The answer is
    ``allowed: true`` with the grant, or ``allowed: false`` with the ``reason``:
    ``no_grant``, ``pending_approval``, ``denied``, ``expired``, ``revoked``,
    ``category_not_granted`` or ``product_not_granted``. Every check is recorded in the
    access log (``log_id``); allowed ones appear in the member's "who accessed your data".
    Unknown admins, members or products are 422 and record nothing."""
    if call.principal.product_id not in (None, call.body.product_id):
        # Its checks are logged as the product's reads, which members see in "who
        # accessed your data": one product's client wrote entries in another's name.
        raise PermissionDeniedError(
            "a product's client checks access for its own product only",
            fields=[FieldProblem("product_id", "is not this client's product")],
        )
    question = _question(call.body)
    answer = await log.check_access(question, checked_by=call.actor.ref)
    _tell_member(call.request, call.principal.org_id, question, answer)
    return _answered(answer)


# --- the access log -----------------------------------------------------------------------------


class LogEntryOut(Output):
    id: int
    checked_at: datetime
    admin_id: uuid.UUID
    admin_name: str | None
    member_id: uuid.UUID
    member_name: str | None
    product_id: uuid.UUID
    product_name: str | None
    category: DataCategory
    allowed: bool
    reason: DenyReason | None
    grant_id: uuid.UUID | None
    checked_by: str = Field(description="The product client or token that asked.")


class LogPage(Page[LogEntryOut]):
    pass


class LogQuery(Input):
    member_id: uuid.UUID | None = None
    admin_id: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    allowed: bool | None = None
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        None, description="Continue after the page that returned this cursor."
    )
    limit: int = Field(50, ge=1, le=500)


@router.get(
    "/log",
    summary="The access log: every check, newest first",
    permission=Permission.ACCESS_READ,
    query=LogQuery,
    response=LogPage,
    errors=(422,),
)
async def list_access_log(call: Call[Input, LogQuery]) -> LogPage:
    q = call.query
    rows = await log.list_log(
        log.LogFilter(
            member_id=q.member_id,
            admin_id=q.admin_id,
            grant_id=q.grant_id,
            product_id=q.product_id,
            allowed=q.allowed,
        ),
        before_id=log.id_from_log_cursor(q.cursor) if q.cursor else None,
        limit=q.limit + 1,
    )
    next_cursor = log.log_cursor(rows[q.limit - 1]["id"]) if len(rows) > q.limit else None
    return LogPage(
        items=[LogEntryOut.model_validate(r) for r in rows[: q.limit]], next_cursor=next_cursor
    )
