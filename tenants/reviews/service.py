"""Access reviews in the caller's tenant transaction: creating a campaign, the snapshot of
its items when it opens, decisions, the reminder, the close at the due date with the
campaign's rule, and recurrence. Every write records its audit event in that transaction;
a revocation goes through the owning service's own path (members' roles, data-access
grants, product clients), so its audit event, notifications and cache invalidation happen
exactly as when an admin revokes by hand.

Time: the functions that move a campaign take ``now`` (the worker passes the moment a job
was due, tests a controlled clock); what they check against real access state (is a grant
still active?) uses the real clock, as the owning services do.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.queryset import QuerySet

from tenants import db
from tenants.access import service as access
from tenants.access.models import AccessGrant, GrantStatus
from tenants.access.rules import GrantState
from tenants.actors import Actor, ActorKind, system_actor
from tenants.audit import service as audit
from tenants.clients import service as clients
from tenants.clients.models import ProductClient
from tenants.errors import (
    ConflictError,
    FieldProblem,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from tenants.jobs import service as jobs
from tenants.mail import service as mail
from tenants.members import service as members
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.members.roles import ANY_ASSIGNER, STAFF, role_name
from tenants.models_base import get_by_id
from tenants.organisations import days
from tenants.organisations import service as organisations
from tenants.pagination import Page, Sort, paginate
from tenants.permissions import Permission, permissions_of
from tenants.products.models import Product
from tenants.reviews import rules
from tenants.reviews.models import AccessReview, AccessReviewItem
from tenants.reviews.rules import CampaignStatus, ItemKind, ItemState, ScopeKind
from tenants.tokens.models import ApiToken
from tenants.units.models import Unit

JOB_KIND = "access_review.advance"
MAX_REASON = 2000
#: Members whose access counts as standing (departed and purged people hold nothing).
HOLDING = (
    MemberStatus.INVITED,
    MemberStatus.ACTIVE,
    MemberStatus.DEPARTING,
    MemberStatus.SUSPENDED,
)
#: How the note of a revocation refused at the due date starts (the access is kept).
KEPT = "kept: "
QUEUE_PATH = "/console/access-reviews/queue"
#: Where reviewers without an admin role decide (the account page).
ACCOUNT_QUEUE_PATH = "/account/access-reviews"


def console_path(review_id: uuid.UUID) -> str:
    return f"/console/access-reviews/{review_id}"


# --- who is acting --------------------------------------------------------------------------


async def person_of(actor: Actor) -> uuid.UUID | None:
    """The member behind ``actor``: a member is themselves; an API token is the member who
    created it, when one did; anything else is nobody."""
    if actor.kind is ActorKind.MEMBER:
        return uuid.UUID(actor.id)
    if actor.kind is ActorKind.API_TOKEN:
        created = await ApiToken.filter(id=actor.id).values_list("created_by", flat=True)
        if created and str(created[0]).startswith("member:"):
            return uuid.UUID(str(created[0]).removeprefix("member:"))
    return None


# --- creating -------------------------------------------------------------------------------


def snapshot(review: AccessReview) -> dict[str, Any]:
    return {
        "name": review.name,
        "scopes": review.scopes,
        "reviewer_rule": review.reviewer_rule.value,
        "named_reviewer_ids": review.named_reviewer_ids,
        "starts_on": review.starts_on.isoformat(),
        "due_on": review.due_on.isoformat(),
        "recurrence_every": review.recurrence_every,
        "recurrence_unit": review.recurrence_unit.value if review.recurrence_unit else None,
        "default_on_due": review.default_on_due.value,
        "status": review.status.value,
        "previous_id": str(review.previous_id) if review.previous_id else None,
    }


def recurrence_of(review: AccessReview) -> rules.Recurrence | None:
    if review.recurrence_every is None or review.recurrence_unit is None:
        return None
    return rules.Recurrence(review.recurrence_every, review.recurrence_unit)


async def _check_named(ids: Sequence[uuid.UUID]) -> None:
    if not ids:
        return
    found = await Member.filter(id__in=list(ids), status=MemberStatus.ACTIVE).values_list(
        "id", flat=True
    )
    missing = sorted(str(i) for i in set(ids) - set(found))
    if missing:
        raise InvalidInputError(
            "every named reviewer must be an active member",
            fields=[FieldProblem("named_reviewer_ids", f"no active member {', '.join(missing)}")],
        )


async def create_review(
    draft: rules.CampaignDraft, *, actor: Actor, now: datetime | None = None
) -> AccessReview:
    """Create a campaign; it opens at once (items snapshot, reviewers emailed) when it starts
    today, else on its start day. Raises InvalidInputError naming the fields at fault."""
    now = now or datetime.now(UTC)
    zone = await organisations.time_zone()
    problems = rules.campaign_problems(draft, days.today(zone, now))
    if problems:
        raise InvalidInputError("the campaign cannot be created as asked", fields=problems)
    await _check_named(draft.named_reviewers)
    review = await _insert(
        draft, owner_id=await person_of(actor), actor=actor, previous=None, zone=zone
    )
    await _schedule(review, now)
    return await advance_review(review.id, now=now)


async def _insert(
    draft: rules.CampaignDraft,
    *,
    owner_id: uuid.UUID | None,
    actor: Actor,
    previous: uuid.UUID | None,
    zone: ZoneInfo,
) -> AccessReview:
    """Store a campaign in ``zone``, the organisation's now: its days stay that zone's."""
    review = await AccessReview.create(
        tenant_id=db.current_org(),
        name=draft.name.strip(),
        scopes=[s.value for s in draft.scopes],
        reviewer_rule=draft.reviewer_rule,
        named_reviewer_ids=[str(i) for i in dict.fromkeys(draft.named_reviewers)],
        starts_on=draft.starts_on,
        due_on=draft.due_on,
        recurrence_every=draft.recurrence.every if draft.recurrence else None,
        recurrence_unit=draft.recurrence.unit if draft.recurrence else None,
        default_on_due=draft.default_on_due,
        status=CampaignStatus.SCHEDULED,
        owner_id=owner_id,
        created_by=actor.ref,
        created_by_display=actor.display,
        previous_id=previous,
        time_zone=zone.key,
    )
    await audit.record(
        "access_review.created", "access_review", review.id, actor=actor, after=snapshot(review)
    )
    return review


async def _schedule(review: AccessReview, now: datetime) -> None:
    """Queue the campaign's moments (open, reminder, close) as durable jobs: a worker that
    was down runs them when it is back, late but in order, so a missed moment catches up."""
    moments = {
        "open": rules.opens_at(review.starts_on, review.zone),
        "remind": rules.reminder_at(review.starts_on, review.due_on, review.zone),
        "close": rules.closes_at(review.due_on, review.zone),
    }
    for name, moment in moments.items():
        if moment is None or (name == "open" and moment <= now):
            continue
        await jobs.enqueue(
            JOB_KIND,
            {"review_id": str(review.id), "at": moment.isoformat()},
            key=f"access_review:{review.id}:{name}",
            run_at=moment,
        )


# --- moving a campaign along ----------------------------------------------------------------


async def advance_review(review_id: uuid.UUID, *, now: datetime) -> AccessReview:
    """Bring the campaign to where it should be at ``now``: open it (snapshot, emails),
    remind its reviewers, close it with its rule and start its successor. Idempotent:
    calling it again at the same moment changes nothing."""
    review = await get_by_id(AccessReview, review_id, "access review", for_update=True)
    target = rules.status_at(review.status, review.starts_on, review.due_on, now, review.zone)
    if review.status is CampaignStatus.SCHEDULED and target is not CampaignStatus.SCHEDULED:
        await _open(review, now)
    reminder = rules.reminder_at(review.starts_on, review.due_on, review.zone)
    if (
        review.status is CampaignStatus.OPEN
        and target is CampaignStatus.OPEN
        and reminder is not None
        and now >= reminder
        and review.reminded_at is None
    ):
        await _remind(review, now)
    if review.status is CampaignStatus.OPEN and target is CampaignStatus.COMPLETED:
        await _close(review, now)
    return review


@dataclass(frozen=True, slots=True)
class _Access:
    kind: ItemKind
    member_id: uuid.UUID | None
    label: str
    role: str | None = None
    grant_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None


async def _standing_access(scopes: set[ScopeKind]) -> list[_Access]:
    """Every access in ``scopes`` that stands now, in a stable order."""
    found: list[_Access] = []
    if ScopeKind.ADMIN_ROLES in scopes:
        admin_roles = [r.value for r in rules.ADMIN_ROLES]
        rows = await db.fetch(
            "SELECT id, name, email, roles FROM members WHERE tenant_id = $1 "  # noqa: S608 (STAFF is a constant)
            f"AND status = ANY($2::text[]) AND {STAFF} AND roles ?| $3::text[] ORDER BY name, id",
            db.current_org(),
            [s.value for s in HOLDING],
            admin_roles,
        )
        for row in rows:
            held = row["roles"] if isinstance(row["roles"], list) else json.loads(row["roles"])
            for role in [r for r in admin_roles if r in held]:
                found.append(
                    _Access(
                        ItemKind.ADMIN_ROLE,
                        row["id"],
                        f"{row['name']} <{row['email']}>: {role_name(role)} role",
                        role=role,
                    )
                )
    if ScopeKind.DATA_ACCESS in scopes:
        grants = await AccessGrant.filter(
            status=GrantStatus.APPROVED, ends_at__gt=datetime.now(UTC)
        ).order_by("created_at", "id")
        people = {
            m.id: m
            for m in await Member.filter(
                id__in={g.admin_id for g in grants} | {g.member_id for g in grants if g.member_id}
            )
        }
        units = {
            u.id: u.name for u in await Unit.filter(id__in={g.unit_id for g in grants if g.unit_id})
        }
        for g in grants:
            holder = people.get(g.admin_id)
            whose = (
                (f"{people[g.member_id].name}'s" if g.member_id in people else "a member's")
                if g.member_id
                else f"unit {units.get(g.unit_id or uuid.UUID(int=0), '?')}'s"
            )
            until = g.ends_at.date().isoformat() if g.ends_at else "?"
            found.append(
                _Access(
                    ItemKind.ACCESS_GRANT,
                    g.admin_id,
                    f"{holder.name if holder else 'an admin'}: access to {whose} "
                    f"{', '.join(g.categories)} data until {until}",
                    grant_id=g.id,
                )
            )
    if ScopeKind.PRODUCT_CLIENTS in scopes:
        products = {p.id: p.name for p in await Product.all()}
        for c in await ProductClient.filter(revoked_at=None).order_by("created_at", "id"):
            found.append(
                _Access(
                    ItemKind.PRODUCT_CLIENT,
                    None,
                    f"client {c.name} of {products.get(c.product_id, 'a product')} "
                    f"({', '.join(c.scopes) or 'no scopes'})",
                    client_id=c.id,
                )
            )
    return found


async def _reviewer_lookup(
    subject_ids: set[uuid.UUID],
) -> tuple[dict[uuid.UUID, rules.Subject], dict[uuid.UUID, list[uuid.UUID]], set[uuid.UUID]]:
    """The subjects as the reviewer rule sees them, the unit admins by unit, and the ids of
    active members (only they review). Three queries, whatever the number of items."""
    subjects = await Member.filter(id__in=subject_ids)
    unit_ids = {m.unit_id for m in subjects}
    paths = {
        u.id: tuple(uuid.UUID(p) for p in u.path.split("/") if p)
        for u in await Unit.filter(id__in=unit_ids)
    }
    admin_rows = await db.fetch(
        "SELECT id, unit_id FROM members WHERE tenant_id = $1 AND status = 'active' "  # noqa: S608 (STAFF is a constant)
        f"AND {STAFF} AND roles ?| $2::text[] ORDER BY id",
        db.current_org(),
        sorted(rules.UNIT_ADMIN_ROLES),
    )
    admins: dict[uuid.UUID, list[uuid.UUID]] = {}
    for row in admin_rows:
        admins.setdefault(row["unit_id"], []).append(row["id"])
    managers = {m.manager_id for m in subjects if m.manager_id}
    active: set[uuid.UUID] = {
        m.id for m in await Member.filter(id__in=managers, status=MemberStatus.ACTIVE).only("id")
    } | {r["id"] for r in admin_rows}
    by_id = {
        m.id: rules.Subject(
            m.id,
            m.manager_id if m.manager_id in active else None,
            paths.get(m.unit_id, (m.unit_id,)),
        )
        for m in subjects
    }
    return by_id, admins, active


async def _open(review: AccessReview, now: datetime) -> None:
    scopes = {ScopeKind(s) for s in review.scopes}
    found = await _standing_access(scopes)
    subjects, admins, _ = await _reviewer_lookup({a.member_id for a in found if a.member_id})
    named_ids = [uuid.UUID(i) for i in review.named_reviewer_ids]
    still_active = {
        m.id for m in await Member.filter(id__in=named_ids, status=MemberStatus.ACTIVE).only("id")
    }
    named = [i for i in named_ids if i in still_active]
    items = [
        AccessReviewItem(
            tenant_id=db.current_org(),
            review_id=review.id,
            kind=a.kind,
            member_id=a.member_id,
            role=a.role,
            grant_id=a.grant_id,
            client_id=a.client_id,
            subject_label=a.label[:500],
            reviewer_ids=[
                str(r)
                for r in rules.reviewers_for(
                    review.reviewer_rule,
                    subjects.get(a.member_id) if a.member_id else None,
                    admins_by_unit=admins,
                    named=named,
                    owner_id=review.owner_id,
                )
            ],
        )
        for a in found
    ]
    if items:
        await AccessReviewItem.bulk_create(items, batch_size=500)
    review.status = CampaignStatus.OPEN
    review.opened_at = now
    review.items_total = len(items)
    await review.save(update_fields=["status", "opened_at", "items_total", "updated_at"])
    await audit.record(
        "access_review.opened",
        "access_review",
        review.id,
        actor=system_actor("access-review"),
        before={"status": CampaignStatus.SCHEDULED.value},
        after={"status": review.status.value, "items": len(items)},
    )
    await _mail_reviewers(review, "access_review_opened", "opened")


async def _pending_by_reviewer(review: AccessReview) -> Counter[str]:
    counts: Counter[str] = Counter()
    for ids in await AccessReviewItem.filter(
        review_id=review.id, state=ItemState.PENDING
    ).values_list("reviewer_ids", flat=True):
        counts.update(ids)
    return counts


async def _mail_reviewers(review: AccessReview, template: str, moment: str) -> None:
    """One email per reviewer with undecided items, saying how many."""
    counts = await _pending_by_reviewer(review)
    if not counts:
        return
    people = await Member.filter(
        id__in=[uuid.UUID(i) for i in counts], status=MemberStatus.ACTIVE
    ).order_by("id")
    for person in people:
        await mail.send_later(
            template,
            to=[person.email],
            context={
                "reviewer_name": person.name,
                "campaign_name": review.name,
                "count": counts[str(person.id)],
                # The day ends at midnight in the campaign's zone: said, with its instant.
                "due_on": f"{review.due_on.isoformat()} (until "
                f"{days.shown(rules.closes_at(review.due_on, review.zone), review.zone)})",
                "link_path": QUEUE_PATH
                if Permission.REVIEWS_DECIDE in permissions_of(person.roles)
                else ACCOUNT_QUEUE_PATH,
            },
            key=f"access_review:{review.id}:{moment}:{person.id}",
        )


async def _remind(review: AccessReview, now: datetime) -> None:
    review.reminded_at = now
    await review.save(update_fields=["reminded_at", "updated_at"])
    await _mail_reviewers(review, "access_review_reminder", "reminder")


async def _close(review: AccessReview, now: datetime) -> None:
    """Apply the campaign's rule to every undecided item, complete it, start its successor."""
    actor = system_actor("access-review")
    outcome = rules.state_on_due(review.default_on_due)
    pending = (
        await AccessReviewItem.filter(review_id=review.id, state=ItemState.PENDING)
        .select_for_update()
        .order_by("created_at", "id")
    )
    reason = f"not reviewed by the due date {review.due_on.isoformat()}: the campaign's rule "
    reason += "revokes it" if rules.revokes(outcome) else "keeps it"
    for item in pending:
        note = (
            await _apply_revocation(item, reason, actor, on_due=True)
            if rules.revokes(outcome)
            else None
        )
        # A revocation the access's own rules refused (the last owner) keeps the access.
        item.state = ItemState.KEPT_ON_DUE if note and note.startswith(KEPT) else outcome
        item.reason = reason
        item.decided_at = now
        item.decided_by_display = "campaign rule"
        item.outcome_note = note
        await item.save(
            update_fields=[
                "state",
                "reason",
                "decided_at",
                "decided_by_display",
                "outcome_note",
                "updated_at",
            ]
        )
    review.status = CampaignStatus.COMPLETED
    review.closed_at = now
    review.items_decided = review.items_total
    await review.save(update_fields=["status", "closed_at", "items_decided", "updated_at"])
    await audit.record(
        "access_review.completed",
        "access_review",
        review.id,
        actor=actor,
        before={"status": CampaignStatus.OPEN.value},
        after={
            "status": review.status.value,
            "undecided": len(pending),
            "default_on_due": review.default_on_due.value,
        },
    )
    await _recur(review, now)


async def _series_first(review: AccessReview, recurrence: rules.Recurrence) -> tuple[date, date]:
    """The start and due dates of the first campaign of ``review``'s series with its
    recurrence (walking ``previous_id`` back in one query): the successor's dates are
    counted from it, not chained from the previous campaign's, which a short month clamped.
    A change of recurrence starts a new series at the campaign that made it."""
    rows = await db.fetch(
        """
        WITH RECURSIVE series AS (
            SELECT id, previous_id, starts_on, due_on, recurrence_every, recurrence_unit,
                   0 AS depth
            FROM access_reviews WHERE id = $1
            UNION ALL
            SELECT r.id, r.previous_id, r.starts_on, r.due_on, r.recurrence_every,
                   r.recurrence_unit, s.depth + 1
            FROM access_reviews r JOIN series s ON r.id = s.previous_id
            WHERE s.depth < 10000
        )
        SELECT starts_on, due_on, recurrence_every, recurrence_unit FROM series ORDER BY depth
        """,
        review.id,
    )
    first = (review.starts_on, review.due_on)
    for row in rows:
        if (row["recurrence_every"], row["recurrence_unit"]) != (
            recurrence.every, recurrence.unit.value
        ):
            break
        first = (row["starts_on"], row["due_on"])
    return first


async def _recur(review: AccessReview, now: datetime) -> None:
    recurrence = recurrence_of(review)
    if recurrence is None or await AccessReview.filter(previous_id=review.id).exists():
        return
    starts_on, due_on = rules.successor_dates(
        review.starts_on, review.due_on, recurrence, days.today(review.zone, now),
        await _series_first(review, recurrence),
    )
    draft = rules.CampaignDraft(
        name=review.name,
        scopes=tuple(ScopeKind(s) for s in review.scopes),
        reviewer_rule=review.reviewer_rule,
        named_reviewers=tuple(uuid.UUID(i) for i in review.named_reviewer_ids),
        starts_on=starts_on,
        due_on=due_on,
        recurrence=recurrence,
        default_on_due=review.default_on_due,
    )
    successor = await _insert(
        draft, owner_id=review.owner_id, actor=system_actor("access-review"), previous=review.id,
        zone=await organisations.time_zone(),
    )
    await _schedule(successor, now)
    await advance_review(successor.id, now=now)


# --- decisions ------------------------------------------------------------------------------


async def _apply_revocation(
    item: AccessReviewItem, reason: str, actor: Actor, *, on_due: bool = False
) -> str | None:
    """End the access under review through its own service; returns a note when there was
    nothing left to end. A reviewer's revocation that the access's own rules refuse (the
    organisation's last owner) raises; at the due date it is kept and noted instead."""
    if item.kind is ItemKind.ADMIN_ROLE and item.member_id is not None:
        member = await Member.filter(id=item.member_id).first()
        if member is None or item.role not in member.roles:
            return "already ended: the member no longer holds the role"
        if member.status is MemberStatus.PURGED:
            return "already ended: the member was erased"
        try:
            await members.update_member(
                member.id,
                {"roles": [r for r in member.roles if r != item.role]},
                actor=actor,
                # Decided by the campaign's reviewer, whom its owner or admin named for it.
                assigner=ANY_ASSIGNER,
            )
        except ConflictError as exc:
            if not on_due:
                raise
            return f"{KEPT}{exc.message}"[:300]
        return None
    if item.kind is ItemKind.ACCESS_GRANT and item.grant_id is not None:
        grant = await AccessGrant.filter(id=item.grant_id).first()
        if grant is None or access.state_of(grant) is not GrantState.ACTIVE:
            return "already ended: the grant is no longer active"
        # The campaign is the authority to end it: its reviewer need not hold access:revoke.
        await access.revoke_access(
            grant.id,
            f"access review: {reason}"[:2000],
            permissions=frozenset({Permission.ACCESS_REVOKE}),
            actor=actor,
        )
        return None
    if item.kind is ItemKind.PRODUCT_CLIENT and item.client_id is not None:
        client = await ProductClient.filter(id=item.client_id).first()
        if client is None or client.revoked_at is not None:
            return "already ended: the client is revoked"
        await clients.revoke_client(client.id, actor=actor)
        return None
    return "nothing to end"


def clean_reason(reason: str | None) -> str:
    """The reason of a decision, stripped; InvalidInputError naming ``reason`` when it is
    blank or too long."""
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(
            "a decision needs a reason", fields=[FieldProblem("reason", "is required")]
        )
    if len(text) > MAX_REASON:
        raise InvalidInputError(
            "the reason is too long",
            fields=[FieldProblem("reason", f"at most {MAX_REASON} characters")],
        )
    return text


async def get_item(
    review_id: uuid.UUID, item_id: uuid.UUID, *, for_update: bool = False
) -> AccessReviewItem:
    query = AccessReviewItem.filter(id=item_id, review_id=review_id)
    if for_update:
        query = query.select_for_update()
    item = await query.first()
    if item is None:
        raise NotFoundError(
            f"there is no item {item_id} in access review {review_id}",
            extra={"resource": "access review item"},
        )
    return item


async def find_item(item_id: uuid.UUID) -> AccessReviewItem:
    """The item with this id in the organisation, or NotFoundError."""
    return await get_by_id(AccessReviewItem, item_id, "access review item")


async def decide_item(
    review_id: uuid.UUID,
    item_id: uuid.UUID,
    *,
    approve: bool,
    reason: str | None,
    permissions: frozenset[Permission],
    actor: Actor,
    now: datetime | None = None,
) -> AccessReviewItem:
    """Approve (keep) or revoke one item, with a reason. A revocation ends the access in
    the same transaction, through its own service and audit event. 409 when the campaign
    is not open or the item decided; 403 for anyone but its reviewers and holders of
    ``reviews:write``, and always for its own subject."""
    text = clean_reason(reason)
    review = await get_by_id(AccessReview, review_id, "access review", for_update=True)
    item = await get_item(review_id, item_id, for_update=True)
    person = await person_of(actor)
    verdict = rules.can_decide(
        state=item.state,
        campaign=review.status,
        subject_id=item.member_id,
        reviewers=[uuid.UUID(i) for i in item.reviewer_ids],
        person=person,
        may_decide_any=Permission.REVIEWS_WRITE in permissions,
    )
    if not verdict.allowed:
        if review.status is not CampaignStatus.OPEN or item.state is not ItemState.PENDING:
            raise ConflictError(verdict.reason)
        raise PermissionDeniedError(verdict.reason)
    note = await _apply_revocation(item, text, actor) if not approve else None
    item.state = ItemState.APPROVED if approve else ItemState.REVOKED
    item.reason = text
    item.decided_by = person
    item.decided_by_display = actor.display[:300]
    item.decided_at = now or datetime.now(UTC)
    item.outcome_note = note
    await item.save(
        update_fields=[
            "state",
            "reason",
            "decided_by",
            "decided_by_display",
            "decided_at",
            "outcome_note",
            "updated_at",
        ]
    )
    review.items_decided += 1
    await review.save(update_fields=["items_decided", "updated_at"])
    await audit.record(
        "access_review.item_decided",
        "access_review_item",
        item.id,
        actor=actor,
        before={"state": ItemState.PENDING.value},
        after={
            "state": item.state.value,
            "reason": text,
            "review_id": str(review.id),
            "kind": item.kind.value,
            "outcome_note": note,
        },
    )
    return item


# --- reads ----------------------------------------------------------------------------------


async def get_review(review_id: uuid.UUID) -> AccessReview:
    return await get_by_id(AccessReview, review_id, "access review")


async def list_reviews(
    *, status: CampaignStatus | None, cursor: str | None, limit: int
) -> Page[AccessReview]:
    query: QuerySet[AccessReview] = AccessReview.all()
    if status is not None:
        query = query.filter(status=status)
    return await paginate(query, Sort("created_at", descending=True), cursor=cursor, limit=limit)


async def list_items(
    review_id: uuid.UUID, *, state: ItemState | None, cursor: str | None, limit: int
) -> Page[AccessReviewItem]:
    await get_review(review_id)
    query = AccessReviewItem.filter(review_id=review_id)
    if state is not None:
        query = query.filter(state=state)
    return await paginate(query, Sort("created_at"), cursor=cursor, limit=limit, within=review_id)


async def all_items(review_id: uuid.UUID) -> list[AccessReviewItem]:
    await get_review(review_id)
    return await AccessReviewItem.filter(review_id=review_id).order_by("created_at", "id")


QUEUE_SQL = """
SELECT i.*, r.name AS review_name, r.due_on AS review_due_on
  FROM access_review_items i
  JOIN access_reviews r ON r.tenant_id = i.tenant_id AND r.id = i.review_id
 WHERE i.tenant_id = $1 AND i.state = 'pending' AND r.status = 'open'
   AND i.reviewer_ids @> $2::jsonb
 ORDER BY r.due_on, i.created_at, i.id
 LIMIT $3
"""


async def queue_of(member_id: uuid.UUID, *, limit: int = 200) -> list[dict[str, Any]]:
    """The undecided items of open campaigns that ``member_id`` reviews, soonest due first."""
    return await db.fetch(QUEUE_SQL, db.current_org(), json.dumps([str(member_id)]), limit)


async def waiting_count(member_id: uuid.UUID) -> int:
    """How many items of open campaigns wait for ``member_id``'s decision."""
    row = await db.fetch_one(
        "SELECT count(*) AS n FROM access_review_items i JOIN access_reviews r "
        "ON r.tenant_id = i.tenant_id AND r.id = i.review_id "
        "WHERE i.tenant_id = $1 AND i.state = 'pending' AND r.status = 'open' "
        "AND i.reviewer_ids @> $2::jsonb",
        db.current_org(),
        json.dumps([str(member_id)]),
    )
    return int(row["n"]) if row else 0


async def names_of(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {m.id: m.name for m in await Member.filter(id__in=ids)}


EXPORT_COLUMNS = (
    "item_id",
    "kind",
    "subject",
    "member_id",
    "role",
    "grant_id",
    "client_id",
    "reviewers",
    "state",
    "reason",
    "decided_by",
    "decided_at",
    "outcome_note",
)


async def export_rows(review_id: uuid.UUID) -> list[list[object]]:
    """The campaign's items as export rows (``EXPORT_COLUMNS``), reviewers by name."""
    items = await all_items(review_id)
    names = await names_of({uuid.UUID(r) for i in items for r in i.reviewer_ids})
    return [
        [
            i.id,
            i.kind.value,
            i.subject_label,
            i.member_id,
            i.role,
            i.grant_id,
            i.client_id,
            "; ".join(names.get(uuid.UUID(r), r) for r in i.reviewer_ids),
            i.state.value,
            i.reason,
            i.decided_by_display,
            i.decided_at.isoformat() if i.decided_at else None,
            i.outcome_note,
        ]
        for i in items
    ]


async def today() -> date:
    """Today in the organisation's zone: the first day a campaign may start."""
    return days.today(await organisations.time_zone())
