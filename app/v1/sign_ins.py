"""The sign-in log: every attempt to sign in to the organisation, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call
from app.v1.common import Input, Instant, Output, Page
from tenants.pagination import MAX_LIMIT
from tenants.permissions import Permission
from tenants.signins import service
from tenants.signins.models import SignIn
from tenants.signins.rules import Reason, SignInMethod, SignInOutcome

router = ApiRouter("/v1/sign-ins", "sign-in")


class SignInOut(Output):
    id: uuid.UUID
    at: datetime
    method: SignInMethod
    outcome: SignInOutcome
    reason: Reason | None = Field(
        description="Why it was refused (a stable code); null on success."
    )
    email: str | None
    idp_subject: str | None
    member_id: uuid.UUID | None
    idp: str | None = Field(
        description="The identity provider's issuer, or the product client's id."
    )
    client_addr: str | None
    user_agent: str | None
    detail: str | None = Field(
        None,
        description="What went wrong in the sign-in protocol, in words (the provider's values"
        " quoted); null otherwise.",
    )


class SignInPage(Page[SignInOut]):
    pass


class SignInQuery(Input):
    outcome: SignInOutcome | None = None
    method: SignInMethod | None = None
    reason: Reason | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    member_id: uuid.UUID | None = None
    since: Instant | None = None
    until: Instant | None = None
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


def filters_of(q: SignInQuery) -> service.SignInFilter:
    return service.SignInFilter(
        outcome=q.outcome,
        method=q.method,
        reason=q.reason,
        email=q.email,
        member_id=q.member_id,
        since=q.since,
        until=q.until,
    )


def out(row: SignIn) -> SignInOut:
    return SignInOut.model_validate(
        {**row.__dict__, "reason": Reason(row.reason) if row.reason else None}
    )


@router.get(
    "",
    summary="List sign-in attempts, newest first",
    permission=Permission.AUDIT_READ,
    query=SignInQuery,
    response=SignInPage,
    errors=(422,),
)
async def list_sign_ins(call: Call[Input, SignInQuery]) -> SignInPage:
    page = await service.list_sign_ins(
        filters_of(call.query), cursor=call.query.cursor, limit=call.query.limit
    )
    return SignInPage(items=[out(r) for r in page.items], next_cursor=page.next_cursor)
