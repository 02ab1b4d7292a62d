"""The content registry: products register what their members hold; admins read it per
member and put items under legal hold.

Bulk upload (what the benchmark drives): ``POST BULK_PATH`` (``/v1/content/bulk``) with
``Content-Type: application/x-ndjson`` and the ``content:write`` scope, one item per line,
at most ``tenants.content.rules.MAX_ITEMS`` (100,000) lines and ``BULK_MAX_BYTES``::

    {"external_id": "doc-1", "member_id": "<uuid>", "title": "Q3 plan.docx",
     "kind": "organisation", "size": 48213, "item_created_at": "2024-05-02T09:30:00Z",
     "export_url": "https://drive.example/export/doc-1", "product_id": "<uuid>"}

``product_id`` may be left out when the product's own client calls (client credentials);
an API token must give it. The answer counts ``created``, ``updated`` and ``unchanged``
items; a refusal (422, or 403 for another product's items) names each bad line
(``line 17``) and writes nothing. ``ndjson_body(items)`` builds such a body from dicts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from pydantic import Field, StringConstraints

from app.api import ApiRouter, Call, RawBody, StreamBody
from app.v1.common import FREE_TEXT, NAME, Day, Input, Instant, ListQuery, Output, Page
from tenants.content import rules, service
from tenants.content.models import ContentKind, ContentStatus
from tenants.permissions import Permission

router = ApiRouter("/v1/content", "content")
#: Where NDJSON bulk uploads go (see the module docstring for the shape of a line).
BULK_PATH = "/v1/content/bulk"
members = ApiRouter("/v1/members", "content")

NDJSON = "application/x-ndjson"
#: 100,000 items of ordinary size (about 400 bytes a line) with room to spare.
BULK_MAX_BYTES = 64 * 1024 * 1024

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=rules.MAX_EXTERNAL_ID), NAME]
Title = Annotated[str, StringConstraints(min_length=1, max_length=rules.MAX_TITLE), NAME]
Url = Annotated[str, StringConstraints(max_length=rules.MAX_URL)]


class ContentItemIn(Input):
    """One item as a product states it (also the shape of each NDJSON line)."""

    product_id: uuid.UUID | None = Field(
        None, description="Required unless the product's own client calls."
    )
    external_id: ExternalId = Field(description="The product's id for the item.")
    member_id: uuid.UUID = Field(description="The member who holds the item.")
    title: Title
    kind: ContentKind = Field(
        description="organisation (work content) or personal (acquired on the member's "
        "own behalf while signed in with the organisation account)."
    )
    size: int = Field(0, ge=0, le=rules.MAX_SIZE, description="Bytes.")
    item_created_at: Instant | None = Field(
        None, description="When the item was created in the product."
    )
    export_url: Url | None = Field(
        None, description="Where the member can download the item (https)."
    )
    legal_hold: bool = Field(
        False, description="true puts the item under legal hold; false never lifts one."
    )


class ContentItemOut(Output):
    id: uuid.UUID
    product_id: uuid.UUID
    external_id: str
    member_id: uuid.UUID
    title: str
    kind: ContentKind
    size: int
    item_created_at: datetime | None
    export_url: str | None
    legal_hold: bool
    hold_member_text: str | None = Field(description="What the member is told about the hold.")
    hold_review_on: date | None = Field(description="When the hold is next reviewed.")
    status: ContentStatus
    previous_member_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ContentPage(Page[ContentItemOut]):
    pass


class BulkResult(Output):
    received: int
    created: int = Field(description="Items new to the registry.")
    updated: int = Field(description="Items that existed and changed.")
    unchanged: int = Field(description="Items that existed exactly so.")


class LegalHoldIn(Input):
    legal_hold: bool = Field(description="true puts the item under legal hold; false lifts it.")
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), FREE_TEXT
    ] = Field(description="Confidential (the matter): kept in the audit trail only.")
    member_text: str | None = Field(
        None,
        max_length=2000,
        description="Required when placing a hold: what the member is told on their account "
        "page and in the answer to their privacy request. Never the matter's details.",
    )
    review_on: Day | None = Field(
        None, description="Required when placing a hold: when it is reviewed (in the future)."
    )


class ContentQuery(ListQuery):
    product_id: uuid.UUID | None = None
    kind: ContentKind | None = None
    status: ContentStatus | None = None


class TotalsQuery(Input):
    product_id: uuid.UUID | None = None
    kind: ContentKind | None = None
    status: ContentStatus | None = None


class TotalOut(Output):
    product_id: uuid.UUID
    kind: ContentKind
    count: int
    bytes: int


class TotalsOut(Output):
    member_id: uuid.UUID
    count: int
    bytes: int
    by_product_and_kind: list[TotalOut]


def ndjson_body(items: Iterable[Mapping[str, Any]]) -> bytes:
    """``items`` (dicts shaped like ``ContentItemIn``, ids as strings) as a request body for
    ``BULK_PATH``: one compact JSON object per line. For benchmarks and tests."""
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def _filters(q: ContentQuery | TotalsQuery) -> service.ContentFilter:
    return service.ContentFilter(product_id=q.product_id, kind=q.kind, status=q.status)


@router.post(
    "",
    summary="Register or update one content item (idempotent on product and external id)",
    permission=Permission.CONTENT_WRITE,
    body=ContentItemIn,
    response=ContentItemOut,
    errors=(403, 422),
)
async def register_content_item(call: Call[ContentItemIn, Input]) -> ContentItemOut:
    """Registers the item, or updates it when the product registered the same external id
    before. The member must be in the organisation; a product's client may only register
    its own product's items."""
    parsed = rules.parse_item(call.body.model_dump(mode="json"), 1)
    if not isinstance(parsed, rules.ItemSpec):
        raise service.refusal(parsed)
    item, _ = await service.register_item(parsed, actor=call.actor)
    return ContentItemOut.model_validate(item)


@router.post(
    BULK_PATH.removeprefix(router.prefix),
    summary="Register or update up to 100,000 content items from an NDJSON stream",
    permission=Permission.CONTENT_WRITE,
    stream=StreamBody(NDJSON, ContentItemIn, BULK_MAX_BYTES),
    response=BulkResult,
    errors=(403, 422),
)
async def register_content_bulk(call: Call[RawBody, Input]) -> BulkResult:
    """All or nothing: every line is checked first; bad lines are named (``line 17``) and
    then nothing is written. Idempotent: sending the same stream again changes nothing."""
    items, problems = rules.parse_ndjson(call.body.content)
    if problems:
        raise service.refusal(problems, by_line=True)
    result = await service.register_items(items, actor=call.actor)
    return BulkResult(
        received=len(items),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )


@router.get(
    "/{id}",
    summary="Get a content item",
    permission=Permission.CONTENT_READ,
    response=ContentItemOut,
    errors=(404,),
)
async def get_content_item(call: Call[Input, Input]) -> ContentItemOut:
    return ContentItemOut.model_validate(await service.get_item(call.id()))


@router.delete(
    "/{id}",
    summary="Remove a content item the product no longer has",
    permission=Permission.CONTENT_WRITE,
    status=204,
    errors=(404, 409),
)
async def remove_content_item(call: Call[Input, Input]) -> None:
    """Refused (409) while the item is under legal hold."""
    await service.remove_item(call.id(), actor=call.actor)


@router.put(
    "/{id}/legal-hold",
    summary="Put a content item under legal hold, or lift the hold",
    permission=Permission.CONTENT_HOLD,
    body=LegalHoldIn,
    response=ContentItemOut,
    errors=(404, 422),
)
async def set_content_legal_hold(call: Call[LegalHoldIn, Input]) -> ContentItemOut:
    """An item under legal hold is never deleted by a departure. The reason goes to the
    audit trail."""
    item = await service.set_legal_hold(
        call.id(),
        call.body.legal_hold,
        call.body.reason,
        actor=call.actor,
        member_text=call.body.member_text,
        review_on=call.body.review_on,
    )
    return ContentItemOut.model_validate(item)


@members.get(
    "/{id}/content",
    summary="List a member's content items",
    permission=Permission.CONTENT_READ,
    query=ContentQuery,
    response=ContentPage,
    errors=(404, 422),
)
async def list_member_content(call: Call[Input, ContentQuery]) -> ContentPage:
    q = call.query
    page = await service.list_member_content(call.id(), _filters(q), cursor=q.cursor, limit=q.limit)
    return ContentPage(
        items=[ContentItemOut.model_validate(i) for i in page.items],
        next_cursor=page.next_cursor,
    )


@members.get(
    "/{id}/content-totals",
    summary="Count and size of a member's content per product and kind",
    permission=Permission.CONTENT_READ,
    query=TotalsQuery,
    response=TotalsOut,
    errors=(404, 422),
)
async def member_content_totals(call: Call[Input, TotalsQuery]) -> TotalsOut:
    totals = await service.member_totals(call.id(), _filters(call.query))
    return TotalsOut(
        member_id=call.id(),
        count=sum(t.count for t in totals),
        bytes=sum(t.bytes for t in totals),
        by_product_and_kind=[TotalOut.model_validate(t) for t in totals],
    )
