"""Erasing a member: the one function a privacy request's erasure and a departure's purge
both call, in the caller's tenant transaction.

It applies the personal-data map (``tenants.privacy.datamap``) to every table, in order:
rows deleted, columns pseudonymised, rows kept with a reason; ends the member's sessions
(they are deleted with everything else), deletes earlier export bundles and products'
parts, deletes the member's audit key (their fields in the audit trail become
unreadable while the chain keeps verifying), and tells products with ``member.erased``
what they must erase on their side. The evidence it returns lists what was erased per
table and every kept set of rows with its reason, legal basis and review date; it holds
ids and counts only, never the person's data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.identity import changes as identity
from tenants.members.models import Member
from tenants.privacy import datamap, shredding
from tenants.privacy.datamap import Action
from tenants.text import counted
from tenants.webhooks import service as webhooks

TOPIC = "member.erased"


@dataclass(frozen=True, slots=True)
class Kept:
    table: str
    rows: int
    reason: str
    basis: str
    review_on: date

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "rows": self.rows, "reason": self.reason,
                "legal_basis": self.basis, "review_on": self.review_on.isoformat()}


@dataclass(frozen=True, slots=True)
class Evidence:
    member_id: uuid.UUID
    erased_at: datetime
    why: str
    deleted: dict[str, int]
    pseudonymised: dict[str, int]
    kept: list[Kept]
    audit_key_deleted: bool
    products_told: int

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": str(self.member_id),
            "erased_at": self.erased_at.isoformat(),
            "why": self.why,
            "deleted": self.deleted,
            "pseudonymised": self.pseudonymised,
            "kept": [k.to_json() for k in self.kept],
            "audit_key_deleted": self.audit_key_deleted,
            "products_told": self.products_told,
        }


#: Names every parameter with its type, so a condition may use any of them (PostgreSQL
#: refuses a statement with a parameter it cannot type); constant, folded by the planner.
TYPED = "$1::uuid IS NOT NULL AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL " \
    "AND $4::text IS NOT NULL"


def _condition(table: datamap.Table, step: datamap.Step) -> str:
    assert table.owner is not None
    where = f"tenant_id = $1 AND ({table.owner}) AND {TYPED}"
    return f"{where} AND ({step.where})" if step.where else where


def map_statement() -> tuple[str, list[tuple[str, datamap.Step]]]:
    """Every step of the map as one statement (one round trip, one snapshot): each step a
    data-modifying or counting CTE, the final row its counts in step order. Foreign keys
    are checked at the end of the statement, so a child table and its parent may both be
    emptied in it."""
    steps: list[tuple[str, datamap.Step]] = []
    parts: list[str] = []
    for table in datamap.personal_tables():
        for step in table.erase:
            name = f"s{len(steps)}"
            condition = _condition(table, step)
            if step.action is Action.DELETE:
                body = f"DELETE FROM {table.name} WHERE {condition} RETURNING 1"  # noqa: S608
            elif step.action is Action.PSEUDONYMISE:
                body = f"UPDATE {table.name} SET {step.set} WHERE {condition} RETURNING 1"  # noqa: S608
            else:
                # A kept step with a review column reads its latest date (a hold's review).
                kept = f"{step.review_column} AS review" if step.review_column else "1"
                body = f"SELECT {kept} FROM {table.name} WHERE {condition}"  # noqa: S608
            parts.append(f"{name} AS ({body})")
            steps.append((table.name, step))
    counts = ", ".join(
        f"(SELECT count(*) FROM s{i}) AS s{i}"  # noqa: S608
        + (f", (SELECT max(review) FROM s{i}) AS r{i}" if step.review_column else "")  # noqa: S608
        for i, (_, step) in enumerate(steps)
    )
    return f"WITH {', '.join(parts)} SELECT {counts}", steps


MAP_SQL, MAP_STEPS = map_statement()


async def apply_map(member: Member, params: list[Any]) -> tuple[dict[str, int], dict[str, int], list[Kept]]:
    """Every step of the map for the member; (deleted, pseudonymised, kept) per table."""
    deleted: dict[str, int] = {}
    pseudonymised: dict[str, int] = {}
    kept: list[Kept] = []
    today = datetime.now(UTC).date()
    row = await db.fetch_one(MAP_SQL, *params)
    assert row is not None
    for i, (table, step) in enumerate(MAP_STEPS):
        n = int(row[f"s{i}"])
        if not n:
            continue
        if step.action is Action.DELETE:
            deleted[table] = deleted.get(table, 0) + n
        elif step.action is Action.PSEUDONYMISE:
            pseudonymised[table] = pseudonymised.get(table, 0) + n
        else:
            assert step.reason is not None
            assert step.basis is not None
            latest = row.get(f"r{i}")
            kept.append(Kept(table, n, step.reason, step.basis, step.review_on(today, latest)))
    return deleted, pseudonymised, kept


#: Access to an erased member's data that is asked for or still open ends with them: a
#: request is denied, open access revoked. (A request waited for approval with "whose
#: data: erased member" on the overview after the erasure.) A CTE, as tortoise's
#: ``execute_query`` drops the rows of a statement that starts with UPDATE.
CLOSE_GRANTS_SQL = """
WITH closed AS (
UPDATE access_grants
   SET status = CASE WHEN status = 'requested' THEN 'denied' ELSE 'revoked' END,
       decided_at = CASE WHEN status = 'requested' THEN $3 ELSE decided_at END,
       decision_reason = CASE WHEN status = 'requested' THEN $4 ELSE decision_reason END,
       revoked_at = CASE WHEN status = 'approved' THEN $3 ELSE revoked_at END,
       revoked_by = CASE WHEN status = 'approved' THEN $5 ELSE revoked_by END,
       revoke_reason = CASE WHEN status = 'approved' THEN $4 ELSE revoke_reason END,
       updated_at = $3
 WHERE tenant_id = $1 AND member_id = $2
   AND (status = 'requested' OR (status = 'approved' AND (ends_at IS NULL OR ends_at > $3)))
RETURNING id, status
)
SELECT id, status FROM closed
"""


async def _close_grants(member_id: uuid.UUID, actor: Actor) -> None:
    """End the access to the member's data that was asked for or is open; each ending is
    audited as the access service audits a decision."""
    rows = await db.fetch(
        CLOSE_GRANTS_SQL, db.current_org(), member_id, datetime.now(UTC),
        "the member was erased", actor.display,
    )
    for row in rows:
        denied = row["status"] == "denied"
        await audit.record(
            "access_grant.denied" if denied else "access_grant.revoked",
            "access_grant",
            row["id"],
            actor=actor,
            before={"status": "requested" if denied else "approved"},
            after={"status": row["status"], "reason": "the member was erased"},
        )


async def erase_member(member_id: uuid.UUID, *, why: str, actor: Actor) -> Evidence:
    """Erase the member as the map says, in the open transaction; returns the evidence
    (also recorded as the ``member.erased`` audit event, which itself holds no personal
    data). Content items are not touched here except as the map keeps them: the caller
    deletes the items it erases first (a request's chosen kinds, a departure's retention).
    Erasing an erased member again finds nothing more to erase and says so."""
    member = await Member.filter(id=member_id).select_for_update().first()
    if member is None:
        from tenants.errors import NotFoundError

        raise NotFoundError("the member does not exist")
    params: list[Any] = [db.current_org(), member.id, member.email.lower(), member.name]
    deleted, pseudonymised, kept = await apply_map(member, params)
    await _close_grants(member.id, actor)
    # The map deletes the member's audit key (``member_keys``): that is the shredding.
    shredding.forget(member.id)
    shredded = deleted.get("member_keys", 0) > 0
    products = [
        r["product_id"]
        for r in await db.fetch(
            "SELECT DISTINCT product_id FROM product_accounts WHERE tenant_id = $1 AND member_id = $2",
            db.current_org(), member.id,
        )
    ]
    told = await webhooks.publish(
        TOPIC,
        {
            "member_id": str(member.id),
            "erase": ["the member's account and profile", "their sessions and sign-in records",
                      "content the member owned that you still hold, unless you were told "
                      "it was transferred or is kept under legal hold",
                      "copies of exports you sent for this member"],
            "kept_by_tenantry": [k.table for k in kept],
        },
        key=f"member.erased:{member.id}:{datetime.now(UTC).isoformat()}",
        product_ids=products or None,
    )
    evidence = Evidence(member.id, datetime.now(UTC), why, deleted, pseudonymised, kept,
                        shredded, told)
    await audit.record("member.erased", "member", member.id, actor=actor,
                       after={"why": why, "deleted": deleted, "pseudonymised": pseudonymised,
                              "kept": [k.to_json() for k in kept]})
    await identity.member_changed(member.id, "purge")
    return evidence


def kept_summary(evidence: Evidence) -> str:
    """What stays and why, in words the member reads in the answer to their request."""
    if not evidence.kept:
        return "Nothing about you was kept."
    lines = ["Kept, and why:"]
    for k in evidence.kept:
        lines.append(f"- {counted(k.rows, 'record')} in {k.table.replace('_', ' ')}: {k.reason} "
                     f"({k.basis}); reviewed by {k.review_on.isoformat()}")
    return "\n".join(lines)
