"""One change applied to many selected members, in the caller's one transaction, through
the same service functions as single changes (so each member's change is checked and
audited on its own): all of it happens or, on the first refusal, none of it."""

from __future__ import annotations

import uuid
from enum import StrEnum

from tenants.actors import Actor
from tenants.departures.service import apply_member_action
from tenants.errors import FieldProblem, InvalidInputError
from tenants.groups import service as groups
from tenants.groups.models import GroupMembership
from tenants.members import service
from tenants.members.lifecycle import LifecycleAction, MemberStatus
from tenants.members.models import Member
from tenants.permissions import Permission
from tenants.products import service as products
from tenants.products.models import ProductAccount, ProductAccountStatus

#: The most members one bulk change may select (a page of the list at its largest).
MAX_SELECTED = 200


class BulkAction(StrEnum):
    MOVE = "move"
    ADD_TO_GROUP = "add_to_group"
    ASSIGN_PRODUCT = "assign_product"
    SUSPEND_PRODUCT = "suspend_product"
    SUSPEND = "suspend"


async def apply_bulk(
    action: BulkAction,
    member_ids: list[uuid.UUID],
    *,
    target: uuid.UUID | None,
    actor: Actor,
    by: frozenset[Permission],
) -> int:
    """Apply ``action`` to each member (``target`` is the unit, group or product it
    needs); returns how many members changed. InvalidInputError when nothing is selected,
    too much is, or the action's target is missing. ``by``: the permissions of whoever
    asks, held to what a single change by them is (a helpdesk suspended admins through
    the bulk action that the member's own page refused it)."""
    if not member_ids:
        raise InvalidInputError(
            "select at least one member", fields=[FieldProblem("members", "none selected")]
        )
    if len(member_ids) > MAX_SELECTED:
        raise InvalidInputError(
            f"select at most {MAX_SELECTED} members at once",
            fields=[FieldProblem("members", f"more than {MAX_SELECTED} selected")],
        )
    field = {
        BulkAction.MOVE: "unit_id",
        BulkAction.ADD_TO_GROUP: "group_id",
        BulkAction.ASSIGN_PRODUCT: "product_id",
        BulkAction.SUSPEND_PRODUCT: "product_id",
    }.get(action)
    if field is not None and target is None:
        raise InvalidInputError(
            f"choose the {field.removesuffix('_id')} for this action",
            fields=[FieldProblem(field, "choose one")],
        )
    # Those it leaves as they are, found before anything changes; every member still goes
    # through the service, so a refusal of any of them refuses the whole change.
    unchanged = await unchanged_by(action, member_ids, target=target)
    for member_id in member_ids:
        if action is BulkAction.MOVE and target is not None:
            await service.move_member(member_id, target, actor=actor, by=by)
        elif action is BulkAction.ADD_TO_GROUP and target is not None:
            await groups.add_member(target, member_id, actor=actor, by=by)
        elif action is BulkAction.ASSIGN_PRODUCT and target is not None:
            await products.assign_product(member_id, target, actor=actor)
        elif action is BulkAction.SUSPEND_PRODUCT and target is not None:
            account_row = await ProductAccount.filter(
                member_id=member_id, product_id=target
            ).first()
            if account_row is not None and account_row.status == ProductAccountStatus.ASSIGNED:
                await products.set_account_status(
                    account_row.id, ProductAccountStatus.SUSPENDED, actor=actor
                )
        elif action is BulkAction.SUSPEND and member_id not in unchanged:
            await apply_member_action(
                member_id, LifecycleAction.SUSPEND, reason="bulk suspension", actor=actor, by=by
            )
    return len(set(member_ids) - unchanged)


#: Why a selected member is left as they are, by action: the words follow their name.
UNCHANGED_BECAUSE = {
    BulkAction.MOVE: "is already in it",
    BulkAction.ADD_TO_GROUP: "is already in it",
    BulkAction.ASSIGN_PRODUCT: "already has an account in it",
    BulkAction.SUSPEND_PRODUCT: "has no active account in it",
    BulkAction.SUSPEND: "is already suspended",
}


async def unchanged_by(
    action: BulkAction, member_ids: list[uuid.UUID], *, target: uuid.UUID | None
) -> set[uuid.UUID]:
    """The selected members ``action`` leaves as they are (``UNCHANGED_BECAUSE`` says why),
    found in one query, so the confirmation can name them before anything is done."""
    if action is BulkAction.SUSPEND:
        rows = await Member.filter(id__in=member_ids, status=MemberStatus.SUSPENDED).values("id")
        return {r["id"] for r in rows}
    if target is None:
        return set()
    if action is BulkAction.MOVE:
        rows = await Member.filter(id__in=member_ids, unit_id=target).values("id")
        return {r["id"] for r in rows}
    if action is BulkAction.ADD_TO_GROUP:
        rows = await GroupMembership.filter(member_id__in=member_ids, group_id=target).values(
            "member_id"
        )
        return {r["member_id"] for r in rows}
    rows = await ProductAccount.filter(
        member_id__in=member_ids, product_id=target, status=ProductAccountStatus.ASSIGNED
    ).values("member_id")
    active = {r["member_id"] for r in rows}
    return active if action is BulkAction.ASSIGN_PRODUCT else set(member_ids) - active
