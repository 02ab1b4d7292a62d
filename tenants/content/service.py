"""The content registry: products register, update and remove what their members hold;
admins read it per member and put items under legal hold. In the caller's transaction.

Registration is an upsert on (product, external id), set-based whatever the number of
items: one query checks the members, one the products, one statement writes every item
(``unnest`` of arrays, ``ON CONFLICT DO UPDATE`` only where something changed), and one
audit event summarises the request. All or nothing: a refused item refuses the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from tortoise.queryset import QuerySet

from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.clients.models import ProductClient
from tenants.content.holds import hold_problems
from tenants.content.models import ContentItem, ContentKind, ContentStatus
from tenants.content.rules import (
    ItemSpec,
    LineProblem,
    assign_products,
    check_references,
    field_problems,
)
from tenants.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from tenants.members.lifecycle import MemberStatus
from tenants.members.service import get_member
from tenants.models_base import get_by_id
from tenants.pagination import Page, Sort, paginate
from tenants.text import clean_free_text


@dataclass(frozen=True, slots=True)
class Registered:
    """What a registration did: items new to the registry, changed, and already so."""

    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class Total:
    product_id: uuid.UUID
    kind: ContentKind
    count: int
    bytes: int


def snapshot(item: ContentItem) -> dict[str, Any]:
    return {
        "product_id": item.product_id,
        "external_id": item.external_id,
        "member_id": item.member_id,
        "title": item.title,
        "kind": item.kind,
        "size": item.size,
        "legal_hold": item.legal_hold,
        "status": item.status,
    }


async def acting_product(actor: Actor) -> uuid.UUID | None:
    """The product whose own client is acting (client credentials), or None for any other
    caller (an API token; a trusted issuer's token, which names no product client)."""
    if actor.kind != ActorKind.PRODUCT:
        return None
    client = await ProductClient.filter(client_id=actor.id).only("product_id").first()
    return client.product_id if client is not None else None


#: Every item in one statement. On conflict the product's description of the item wins,
#: except that (a) a legal hold is only ever added here, never lifted (admins lift it,
#: with a reason), and (b) the owner changes only on items still in someone's hands, and
#: never back to the member a departure took the item from (a product re-sending its
#: stale view must not undo a transfer). ``xmax = 0`` tells inserted rows from updated.
UPSERT_SQL = """
WITH given AS (
  SELECT * FROM unnest($3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::bigint[],
                       $9::timestamptz[], $10::text[], $11::bool[])
    AS t(product_id, external_id, member_id, title, kind, size, item_created_at, export_url,
         legal_hold)
), written AS (
  INSERT INTO content_items AS c (id, tenant_id, product_id, external_id, member_id, title, kind,
                                  size, item_created_at, legal_hold, export_url, status,
                                  transfer_count, created_at, updated_at)
  SELECT gen_random_uuid(), $1, product_id, external_id, member_id, title, kind, size,
         item_created_at, legal_hold, export_url, 'active', 0, $2, $2
    FROM given
  ON CONFLICT (tenant_id, product_id, external_id) DO UPDATE SET
    title = EXCLUDED.title, kind = EXCLUDED.kind, size = EXCLUDED.size,
    item_created_at = EXCLUDED.item_created_at, export_url = EXCLUDED.export_url,
    legal_hold = c.legal_hold OR EXCLUDED.legal_hold,
    member_id = CASE WHEN c.status = 'active'
                      AND EXCLUDED.member_id IS DISTINCT FROM c.previous_member_id
                     THEN EXCLUDED.member_id ELSE c.member_id END,
    updated_at = $2
  WHERE (c.title, c.kind, c.size, c.item_created_at, c.export_url, c.legal_hold, c.member_id)
        IS DISTINCT FROM
        (EXCLUDED.title, EXCLUDED.kind, EXCLUDED.size, EXCLUDED.item_created_at,
         EXCLUDED.export_url, c.legal_hold OR EXCLUDED.legal_hold,
         CASE WHEN c.status = 'active' AND EXCLUDED.member_id IS DISTINCT FROM c.previous_member_id
              THEN EXCLUDED.member_id ELSE c.member_id END)
  RETURNING xmax = 0 AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS created,
       count(*) FILTER (WHERE NOT inserted) AS updated
  FROM written
"""


def refusal(problems: Sequence[LineProblem], *, by_line: bool = False) -> InvalidInputError:
    """The error refusing a request for ``problems``: named by line for a batch (at most
    ``rules.MAX_REPORTED`` of them, with the total count), by field for a single item."""
    if by_line:
        lines = len({p.line for p in problems})
        message = (
            f"{lines} {'line was' if lines == 1 else 'lines were'} refused; nothing was "
            "written. Fix them and send the whole request again."
        )
        extra: dict[str, object] | None = {"refused_lines": lines, "problems": len(problems)}
    else:
        message = "the content item was refused: " + "; ".join(
            f"{p.field}: {p.reason}" for p in problems
        )
        extra = None
    return InvalidInputError(message, fields=field_problems(problems, by_line=by_line), extra=extra)


async def _checked(items: Sequence[ItemSpec], actor: Actor, *, by_line: bool) -> list[ItemSpec]:
    """The items with their products, or the refusal naming every problem (one query for
    the products, one for the members, whatever the number of items)."""
    assigned, foreign = assign_products(items, await acting_product(actor))
    forbidden = [p for p in foreign if p.forbidden]
    if forbidden:
        refused = refusal(forbidden, by_line=by_line)
        raise PermissionDeniedError(refused.message, fields=refused.fields, extra=refused.extra)
    product_ids = list({i.product_id for i in assigned if i.product_id is not None})
    member_ids = list({i.member_id for i in assigned})
    org = db.current_org()
    products = {
        r["id"]
        for r in await db.fetch(
            "SELECT id FROM products WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            org,
            product_ids,
        )
    }
    members = {
        r["id"]: MemberStatus(r["status"])
        for r in await db.fetch(
            "SELECT id, status FROM members WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
            org,
            member_ids,
        )
    }
    problems = foreign + check_references(assigned, products, members)
    if problems:
        raise refusal(problems, by_line=by_line)
    return assigned


async def _upsert(items: Sequence[ItemSpec]) -> tuple[int, int]:
    rows = await db.fetch(
        UPSERT_SQL,
        db.current_org(),
        datetime.now(UTC),
        [i.product_id for i in items],
        [i.external_id for i in items],
        [i.member_id for i in items],
        [i.title for i in items],
        [i.kind.value for i in items],
        [i.size for i in items],
        [i.item_created_at for i in items],
        [i.export_url for i in items],
        [i.legal_hold for i in items],
    )
    return int(rows[0]["created"]), int(rows[0]["updated"])


async def register_items(items: Sequence[ItemSpec], *, actor: Actor) -> Registered:
    """Register or update a batch (an NDJSON upload); idempotent on (product, external id).

    Refused as a whole, nothing written, with problems named by line: InvalidInputError,
    or PermissionDeniedError when a product's client names another product. One audit
    event summarises the counts; none when nothing changed.
    """
    checked = await _checked(items, actor, by_line=True)
    created, updated = await _upsert(checked)
    result = Registered(created, updated, len(checked) - created - updated)
    if created or updated:
        await audit.record(
            "content.registered",
            "content_batch",
            uuid.uuid4(),
            actor=actor,
            after={
                "products": sorted({str(i.product_id) for i in checked}),
                "received": len(checked),
                "created": created,
                "updated": updated,
                "unchanged": result.unchanged,
            },
        )
    return result


async def register_item(item: ItemSpec, *, actor: Actor) -> tuple[ContentItem, Registered]:
    """Register or update one item; problems are named by field (``member_id``)."""
    [checked] = await _checked([item], actor, by_line=False)
    existing = await ContentItem.filter(
        product_id=checked.product_id, external_id=checked.external_id
    ).first()
    created, updated = await _upsert([checked])
    stored = await ContentItem.get(product_id=checked.product_id, external_id=checked.external_id)
    if created or updated:
        await audit.record(
            "content.registered" if created else "content.updated",
            "content_item",
            stored.id,
            actor=actor,
            before=snapshot(existing) if existing is not None else None,
            after=snapshot(stored),
        )
    return stored, Registered(created, updated, 1 - created - updated)


async def get_item(item_id: uuid.UUID, *, for_update: bool = False) -> ContentItem:
    return await get_by_id(ContentItem, item_id, "content item", for_update=for_update)


async def _own_item(item_id: uuid.UUID, actor: Actor) -> ContentItem:
    """The item, if the caller may change it: a product's client reaches only its own
    product's items (others' answer 404, as if they did not exist)."""
    item = await get_item(item_id, for_update=True)
    acting = await acting_product(actor)
    if acting is not None and item.product_id != acting:
        raise NotFoundError(
            f"there is no content item with id {item_id}", extra={"resource": "content item"}
        )
    return item


async def remove_item(item_id: uuid.UUID, *, actor: Actor) -> None:
    """Forget an item the product no longer has. ConflictError while it is under legal
    hold: the organisation must keep the record until an admin lifts the hold."""
    item = await _own_item(item_id, actor)
    if item.legal_hold:
        raise ConflictError(
            "the item is under legal hold; an admin must lift the hold before it is removed",
            extra={"legal_hold": True},
        )
    before = snapshot(item)
    await item.delete()
    await audit.record("content.removed", "content_item", item.id, actor=actor, before=before)


async def set_legal_hold(
    item_id: uuid.UUID,
    hold: bool,
    reason: str,
    *,
    actor: Actor,
    member_text: str | None = None,
    review_on: date | None = None,
) -> ContentItem:
    """Put an item under legal hold (no departure deletes it) or lift the hold; the reason
    is kept in the audit trail only (it may name a confidential matter). Placing a hold
    needs what the member is told and a future review date (``holds.hold_problems``);
    placing it again on a held item updates those two. Lifting clears them. Setting what
    is already so changes and records nothing."""
    if hold:
        problems = hold_problems(member_text, review_on, datetime.now(UTC).date())
        if problems:
            raise InvalidInputError(
                "a legal hold needs a member-facing text and a review date", fields=problems
            )
        member_text = clean_free_text(member_text or "").strip()
    else:
        member_text, review_on = None, None
    item = await get_item(item_id, for_update=True)
    if (item.legal_hold, item.hold_member_text, item.hold_review_on) == (
        hold,
        member_text,
        review_on,
    ):
        return item
    before = {
        "legal_hold": item.legal_hold,
        "hold_member_text": item.hold_member_text,
        "hold_review_on": item.hold_review_on,
    }
    item.legal_hold = hold
    item.hold_member_text = member_text
    item.hold_review_on = review_on
    await item.save(
        update_fields=["legal_hold", "hold_member_text", "hold_review_on", "updated_at"]
    )
    await audit.record(
        "content.legal_hold_set" if hold else "content.legal_hold_lifted",
        "content_item",
        item.id,
        actor=actor,
        before=audit.jsonable(before),
        after=audit.jsonable(
            {
                "legal_hold": hold,
                "reason": reason,
                "hold_member_text": member_text,
                "hold_review_on": review_on,
                "member_id": item.member_id,
                "product_id": item.product_id,
            }
        ),
    )
    return item


#: How the organisation's legal holds may be listed: the latest change first, or by title
#: (each read from a partial index of the held items, migration 0038).
HOLD_SORTS = ("updated_at", "title")
HOLDS_NEWEST_FIRST = Sort("updated_at", descending=True)


class HoldsDue(StrEnum):
    """Which holds a list shows by their review date: past it, or without one."""

    OVERDUE = "overdue"
    UNDATED = "undated"


def _held(due: HoldsDue | None) -> QuerySet[ContentItem]:
    query = ContentItem.filter(legal_hold=True)
    if due is HoldsDue.OVERDUE:
        return query.filter(hold_review_on__lt=datetime.now(UTC).date())
    if due is HoldsDue.UNDATED:
        return query.filter(hold_review_on__isnull=True)
    return query


async def list_holds(
    sort: Sort, *, cursor: str | None, limit: int, due: HoldsDue | None = None
) -> Page[ContentItem]:
    """One page of the organisation's items under legal hold (``due``: those past their
    review date, or without one)."""
    return await paginate(_held(due), sort, cursor=cursor, limit=limit)


async def count_holds(due: HoldsDue | None = None) -> int:
    """How many items are under legal hold (the partial indexes hold only those)."""
    return await _held(due).count()


@dataclass(frozen=True, slots=True)
class ContentFilter:
    product_id: uuid.UUID | None = None
    kind: ContentKind | None = None
    status: ContentStatus | None = None


async def list_member_content(
    member_id: uuid.UUID, filters: ContentFilter, *, cursor: str | None, limit: int
) -> Page[ContentItem]:
    """One page of a member's items, newest registration first; NotFoundError for an
    unknown member."""
    member = await get_member(member_id)
    query = ContentItem.filter(member_id=member.id)
    for name in ("product_id", "kind", "status"):
        value = getattr(filters, name)
        if value is not None:
            query = query.filter(**{name: value})
    return await paginate(
        query, Sort("created_at", descending=True), cursor=cursor, limit=limit, within=member.id
    )


async def member_totals(member_id: uuid.UUID, filters: ContentFilter) -> list[Total]:
    """Count and bytes of a member's items per product and kind (by product key order is
    the caller's business); NotFoundError for an unknown member."""
    member = await get_member(member_id)
    rows = await db.fetch(
        "SELECT product_id, kind, count(*) AS n, coalesce(sum(size), 0) AS bytes "
        "FROM content_items WHERE tenant_id = $1 AND member_id = $2 "
        "AND ($3::uuid IS NULL OR product_id = $3) AND ($4::text IS NULL OR kind = $4) "
        "AND ($5::text IS NULL OR status = $5) GROUP BY product_id, kind "
        "ORDER BY product_id, kind",
        db.current_org(),
        member.id,
        filters.product_id,
        filters.kind.value if filters.kind else None,
        filters.status.value if filters.status else None,
    )
    return [
        Total(r["product_id"], ContentKind(r["kind"]), int(r["n"]), int(r["bytes"])) for r in rows
    ]
