"""Directory management from the console: add a member, change their details, move them,
set their roles, products and groups. Each form calls the same service function as the
API (so the same checks and audit events), and a refused form comes back with its errors
beside the fields and the input kept (see ``PageContext.form_errors``)."""

from __future__ import annotations

import uuid

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.web.console.policies import show_value
from app.web.pages import REFUSED, PageContext, Web, page
from policies.catalogue import Catalogue, Setting
from policies.moves import SettingChange
from tenants.domains import rules as domain_rules
from tenants.domains import service as domains
from tenants.errors import (
    ConflictError,
    FieldProblem,
    InvalidInputError,
    NotFoundError,
    Problems,
)
from tenants.groups import service as groups
from tenants.groups.models import Group
from tenants.members import invitations, service
from tenants.members.addresses import normal_email
from tenants.members.lifecycle import MemberStatus
from tenants.members.models import Member
from tenants.members.roles import (
    check_keeps_owner,
    check_may_act_for,
    check_may_assign,
    may_assign,
    role_name,
    role_names,
)
from tenants.models_base import get_referenced
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role, permissions_of
from tenants.policy import moves
from tenants.policy import service as policy
from tenants.products import service as products
from tenants.products.models import Product, ProductAccount, ProductAccountStatus
from tenants.text import counted
from tenants.units.models import Unit

#: What each role is for, shown beside its checkbox (the role matrix).
ROLE_LABELS: dict[Role, str] = {
    Role.OWNER: "Everything, including API tokens and the organisation's settings",
    Role.ADMIN: "Manages people, structure, policies and departures",
    Role.HELPDESK: "Edits members (not those with more rights), their lifecycle and sessions;"
    " reads units, groups, products, policies and departures",
    Role.PRIVACY_OFFICER: "Approves data access, answers privacy requests, reads the audit log",
    Role.AUDITOR: "Reads everything, changes nothing",
    Role.MEMBER: "No console access",
}


#: The value a field checked by ``Problems.check`` stands for until ``raise_any`` raises.
NIL = uuid.UUID(int=0)


def parse_uuid(value: str | None, field: str, what: str) -> uuid.UUID:
    """The form's ``field`` as an id; InvalidInputError naming the field otherwise."""
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise InvalidInputError(
            f"choose a {what}", fields=[FieldProblem(field, "choose one")]
        ) from None


def picked_id(form: dict[str, str], field: str, what: str) -> uuid.UUID | None:
    """The id chosen in the picker ``field``; None when nothing is chosen and nothing
    typed. A name typed in its search but not chosen is refused, naming the field: it was
    dropped, and a member was created with no manager while the form showed one."""
    if form.get(field):
        return parse_uuid(form.get(field), field, what)
    typed = (form.get(f"{field}_q") or "").strip()
    if typed:
        raise InvalidInputError(
            f"choose the {what} from the matches",
            fields=[
                FieldProblem(
                    field,
                    f"“{typed}” is typed but not chosen: choose one of the matches,"
                    " or clear the search",
                )
            ],
        )
    return None


def required_text(form: dict[str, str], field: str, what: str, limit: int = 200) -> str:
    value = (form.get(field) or "").strip()
    if not value:
        raise InvalidInputError(f"give the {what}", fields=[FieldProblem(field, "is empty")])
    if len(value) > limit:
        raise InvalidInputError(
            f"the {what} is too long",
            fields=[FieldProblem(field, f"has more than {limit} characters")],
        )
    return value


def change_lines(changes: list[SettingChange], cat: Catalogue) -> list[str]:
    """Each changed setting as a confirmation page names it: value and lock before and
    after, and the deciding rule's reason."""

    def shown(setting: Setting | None, value: object, locked: bool) -> str:
        return show_value(setting, value) + (" (locked)" if locked else "")

    lines = []
    for change in changes:
        setting = cat.settings.get(change.setting)
        title = setting.title if setting else change.setting
        why = f". The rule's reason: “{change.reason_after}”" if change.reason_after else ""
        lines.append(
            f"{title}: {shown(setting, change.value_before, change.locked_before)} becomes "
            f"{shown(setting, change.value_after, change.locked_after)}{why}"
        )
    return lines


async def move_consequences(name: str, preview: moves.MovePreview, *, grants: bool) -> list[str]:
    """The move preview as lines of the confirmation page: the units, each setting that
    changes (value and lock, as resolved before and after), and the unit data-access
    grants that stop or start covering the member."""
    units = {
        u.id: u.name for u in await Unit.filter(id__in=[preview.unit_before, preview.unit_after])
    }
    lines = [f"{name} moves from {units[preview.unit_before]} to {units[preview.unit_after]}."]
    cat = await policy.catalogue()

    lines += [f"{line}." for line in change_lines(preview.settings, cat)]
    if not preview.settings:
        lines.append("None of their settings change.")
    if not grants:  # grants (some under delayed disclosure) are for those who read access
        return lines

    grants_crossed = preview.grants_lost + preview.grants_gained
    names = {m.id: m.name for m in await Member.filter(id__in=[g.admin_id for g in grants_crossed])}
    grant_units = {
        u.id: u.name for u in await Unit.filter(id__in=[g.unit_id for g in grants_crossed])
    }
    for g in preview.grants_lost:
        lines.append(
            f"{names.get(g.admin_id, 'An admin')}'s data access on {grant_units[g.unit_id]} "
            "no longer covers them."
        )
    for g in preview.grants_gained:
        lines.append(
            f"{names.get(g.admin_id, 'An admin')}'s data access on {grant_units[g.unit_id]} "
            "covers them from the move."
        )
    return lines


def chosen_op(ctx: PageContext, choices: tuple[str, ...], default: str) -> str:
    """The form's ``op`` (which button was pressed), one of ``choices``; ``default`` when
    none was sent. Anything else is refused naming ``op``, never read as the default."""
    op = ctx.form.get("op") or default
    if op not in choices:
        raise InvalidInputError(
            "this form cannot do that",
            fields=[FieldProblem("op", f"is not one of {', '.join(choices)}")],
        )
    return op


def edited_since_shown(
    form: dict[str, str], changes: dict[str, object], current: Member
) -> dict[str, object]:
    """The fields of ``changes`` typed differently from what the page showed (its hidden
    ``was_*`` fields), so that two admins editing one member in two tabs each save only
    what they changed: the second save once put the first one's name back. A field both
    changed is refused, naming it and its value now, rather than overwritten unseen. A
    form without ``was_*`` fields (a script's) saves everything it sends."""
    kept: dict[str, object] = {}
    problems: list[FieldProblem] = []
    for field, value in changes.items():
        shown = form.get(f"was_{field}")
        if shown is None:
            kept[field] = value
            continue
        now = getattr(current, field)
        now_text = "" if now is None else str(now)
        typed = "" if value is None else str(value)
        if typed == shown:
            continue  # not edited here: whatever it is now stays
        if now_text != shown and typed != now_text:
            problems.append(
                FieldProblem(
                    field,
                    f"was changed by someone else since this page was opened (now "
                    f"{now_text or 'none'!r}); reload to see it, then save again",
                )
            )
        kept[field] = value
    if problems:
        raise ConflictError(
            "someone else changed this member since the page was opened", fields=problems
        )
    return kept


async def group_change_confirmation(
    ctx: PageContext, member: Member, group_id: uuid.UUID, *, joining: bool, back: str
) -> Response | None:
    """The confirmation page of adding ``member`` to a group or removing them from it,
    when that changes their settings (what changes, and that they are told); None when
    it changes none, or when the admin has confirmed."""
    if ctx.confirmed:
        return None
    changes = (await moves.group_change_settings([member.id], group_id, joining=joining)).get(
        member.id
    )
    if not changes:
        return None
    group = await groups.get_group(group_id)
    cat = await policy.catalogue()
    verb = "joins" if joining else "leaves"
    lines = [f"{member.name} {verb} the group {group.name}."]
    lines += [f"{line}." for line in change_lines(changes, cat)]
    if member.status == MemberStatus.ACTIVE:
        lines.append(f"{member.name} is emailed what changed for them.")
    return ctx.confirm(
        title=f"{'Add' if joining else 'Remove'} {member.name}?",
        consequences=lines,
        button=f"{'Add' if joining else 'Remove'} {member.name}",
        back=back,
    )


def email_of(form: dict[str, str]) -> str:
    """The form's address in the normal form the API stores (``members.addresses``)."""
    email = required_text(form, "email", "email address", 320)
    normal = normal_email(email)
    if normal is None:
        raise InvalidInputError(
            "that is not an email address",
            fields=[FieldProblem("email", "is not an email address")],
        )
    return normal


#: The box that says "this address outside our domains is right". Its value is the domain
#: it confirms, so a tick given for one domain confirms no other address typed afterwards.
OUTSIDE_OK = "outside_domain_ok"
#: Kept with the form's input when the console asks: the domain it asks about (the page
#: shows the warning beside the email and the box, ``forms.html: outside_domain``).
OUTSIDE_ASKED = "outside_domain"


async def ask_about_outside_domain(
    ctx: PageContext, email: str, *, back: str, doing: str, before: str | None = None
) -> Response | None:
    """Back to the form at ``back`` with a warning beside the email and the box to tick,
    what was typed kept, when ``email`` is at a domain the organisation has not proven: the
    sign-in page does not find the organisation from such an address, and single sign-on
    may not admit it. None (go ahead) when the domain is proven, when the admin ticked the
    box for this domain, when a member has the address already (the service refuses or
    keeps it), or when it is the domain of ``before`` (the address being changed: a
    contractor's new address at their own company is not asked about again).
    Only the console asks; the API adds such members as it is told (contractors)."""
    domain = await domains.outside_domain(email)
    if domain is None or ctx.form.get(OUTSIDE_OK) == domain:
        return None
    if await service.find_member(email=email) is not None:
        return None  # taken (or unchanged): the service's own answer comes first
    if before is not None and domain_rules.domain_of(before) == domain:
        return None
    response = ctx.redirect(
        back,
        f"{REFUSED} {email} is not at one of {ctx.organisation.name}'s verified domains: "
        f"check the address, or tick “{doing} anyway” beside it.",
    )
    kept = {k: v for k, v in ctx.form.items() if k != OUTSIDE_OK}
    ctx.web.cookies.form_state(response, {}, {**kept, OUTSIDE_ASKED: domain})
    return response


async def picked_in(values: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The unit, manager or member chosen in a form that comes back (``unit_id``,
    ``manager_id``, ``member_id`` in ``values``) as (id, name), so its pickers show them
    chosen again, by name, rather than asking anew; a field naming nothing that exists is
    left out."""

    def as_id(field: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(values.get(field, ""))
        except ValueError:
            return None

    found: dict[str, tuple[str, str]] = {}
    if (unit_id := as_id("unit_id")) is not None:
        unit = await Unit.get_or_none(id=unit_id)
        if unit is not None:
            found["unit_id"] = (str(unit.id), unit.name)
    if (manager_id := as_id("manager_id")) is not None:
        manager = await Member.get_or_none(id=manager_id)
        if manager is not None:
            found["manager_id"] = (str(manager.id), manager.name)
    if (member_id := as_id("member_id")) is not None:
        member = await Member.get_or_none(id=member_id)
        if member is not None:
            found["member_id"] = (str(member.id), f"{member.name} ({member.email})")
    return found


def roles_of(form: dict[str, str]) -> list[str]:
    """Checked ``role_<name>`` boxes; a member with no other role is a plain member."""
    chosen = [r.value for r in Role if form.get(f"role_{r.value}") == "1"]
    return chosen or [Role.MEMBER.value]


def role_matrix(assigner: frozenset[Permission]) -> list[tuple[Role, str, list[str], bool]]:
    """Each role with its description, the console areas it may change, and whether the
    viewer (``assigner``) may give or take it away (``roles.may_assign``; the page shows
    the others fixed, the service refuses them anyway)."""
    return [
        (
            role,
            ROLE_LABELS[role],
            sorted(p.value for p in ROLE_PERMISSIONS[role] if p.value.endswith(":write")),
            may_assign(assigner, role),
        )
        for role in Role
    ]


def invited_text(sent: invitations.Invitation) -> str:
    """What the admin is told after an invitation is queued."""
    if sent.way is invitations.InvitationWay.IDENTITY_PROVIDER:
        return (
            f"Invitation emailed to {sent.member.email}: it tells them to sign in through "
            "the organisation's identity provider."
        )
    return (
        f"Invitation emailed to {sent.member.email} with a sign-in link that works once, "
        "for 7 days."
    )


def _member_id(ctx: PageContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.request.path_params["id"])
    except ValueError:
        raise NotFoundError("there is no such member") from None


def routes(web: Web) -> list[BaseRoute]:
    @page(web, permission=Permission.MEMBERS_WRITE)
    async def new_member_form(ctx: PageContext) -> Response:
        return ctx.render(
            "console/member_new.html",
            roles=role_matrix(ctx.permissions),
            picked=await picked_in(ctx.form_values),
        )

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def create_member(ctx: PageContext) -> Response:
        form = ctx.form
        problems = Problems()  # every empty or malformed field named at once
        email = problems.check(lambda: email_of(form), "")
        name = problems.check(lambda: required_text(form, "name", "name"), "")
        unit_id = problems.check(lambda: parse_uuid(form.get("unit_id"), "unit_id", "unit"), NIL)
        manager_id = problems.check(lambda: picked_id(form, "manager_id", "manager"), None)
        problems.raise_any()
        new = service.NewMember(
            email=email,
            name=name,
            unit_id=unit_id,
            manager_id=manager_id,
            roles=tuple(Role(r) for r in roles_of(form)),
            status=MemberStatus.ACTIVE if form.get("status") == "active" else MemberStatus.INVITED,
        )
        asked = await ask_about_outside_domain(
            ctx, new.email, back="/console/members/new", doing="Add"
        )
        if asked is not None:
            return asked
        member = await service.create_member(new, actor=ctx.actor, assigner=ctx.permissions)
        if form.get("invite") == "1":
            sent = await invitations.invite_member(
                member.id,
                secret_key=ctx.web.settings.secret_key,
                actor=ctx.actor,
                sender=ctx.permissions,
            )
            return ctx.redirect(
                f"/console/members/{member.id}", f"Added {member.name}. {invited_text(sent)}"
            )
        return ctx.redirect(f"/console/members/{member.id}", f"Added {member.name}.")

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def invite(ctx: PageContext) -> Response:
        sent = await invitations.invite_member(
            _member_id(ctx),
            secret_key=ctx.web.settings.secret_key,
            actor=ctx.actor,
            sender=ctx.permissions,
        )
        return ctx.redirect(f"/console/members/{sent.member.id}", invited_text(sent))

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def update_details(ctx: PageContext) -> Response:
        form = ctx.form
        problems = Problems()
        email = problems.check(lambda: email_of(form), "")
        changes: dict[str, object] = {
            "name": problems.check(lambda: required_text(form, "name", "name"), ""),
            "email": email,
        }
        problems.raise_any()
        if form.get("no_manager") == "1":
            changes["manager_id"] = None
        elif (manager_id := picked_id(form, "manager_id", "manager")) is not None:
            changes["manager_id"] = manager_id
        current = await service.get_member(_member_id(ctx))
        changes = edited_since_shown(form, changes, current)
        # Refused before asking about the address's domain, not after it.
        service.check_may_edit(ctx.permissions, current, changes)
        asked = await ask_about_outside_domain(
            ctx, email, back=f"/console/members/{current.id}", doing="Save", before=current.email
        )
        if asked is not None:
            return asked
        member = await service.update_member(
            current.id, changes, actor=ctx.actor, assigner=ctx.permissions
        )
        return ctx.redirect(f"/console/members/{member.id}", f"Saved {member.name}.")

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def move(ctx: PageContext) -> Response:
        unit_id = parse_uuid(ctx.form.get("unit_id"), "unit_id", "unit")
        if not ctx.confirmed:
            # Refused before the confirmation, not after it.
            moving = await service.get_member(_member_id(ctx))
            check_may_act_for(ctx.permissions, moving.roles, doing="move", field="unit_id")
            preview = await moves.preview_move(_member_id(ctx), unit_id=unit_id)
            if preview.unit_before != preview.unit_after:
                member = await service.get_member(preview.member_id)
                return ctx.confirm(
                    title=f"Move {member.name}?",
                    consequences=await move_consequences(
                        member.name,
                        preview,
                        grants=Permission.ACCESS_READ in ctx.permissions,
                    ),
                    button=f"Move {member.name}",
                    back=f"/console/members/{member.id}",
                )
        member = await service.move_member(
            _member_id(ctx), unit_id, actor=ctx.actor, by=ctx.permissions
        )
        return ctx.redirect(f"/console/members/{member.id}", f"Moved {member.name}.")

    @page(web, permission=Permission.MEMBERS_WRITE)
    async def set_roles(ctx: PageContext) -> Response:
        target = _member_id(ctx)
        losing = sorted(set(ctx.active.member.roles) - set(roles_of(ctx.form)))
        if target == ctx.active.member.id and losing and not ctx.confirmed:
            # The last owner is told so here, not asked to confirm what will be refused.
            check_keeps_owner(
                ctx.active.member.roles, roles_of(ctx.form), await service.other_owners(target)
            )
            kept = permissions_of(roles_of(ctx.form))
            lost = sorted(p.value for p in ctx.permissions - kept)
            return ctx.confirm(
                title="Take roles away from yourself?",
                consequences=[
                    f"You give up: {role_names(losing)}.",
                    f"You lose {counted(len(lost), 'permission')} at once, in this session too"
                    + (": you may no longer reach this page." if lost else "."),
                    "Only someone who still holds these roles' permissions can give them back.",
                ],
                button="Take them away from me",
                back=f"/console/members/{target}",
            )
        current = await service.get_member(target)
        given = sorted(set(roles_of(ctx.form)) - set(current.roles) - {Role.MEMBER.value})
        if given and not ctx.confirmed:
            # A role is a power over others: the one who gives it says so twice (a helpdesk
            # gave a student the helpdesk role, and every member's details, with one click).
            check_may_assign(ctx.permissions, current.roles, roles_of(ctx.form))
            return ctx.confirm(
                title=f"Give {current.name} the role {role_names(given)}?",
                consequences=[
                    *(f"{role_name(r)}: {ROLE_LABELS[Role(r)]}." for r in given),
                    f"{current.name} has these powers from their next page, until someone"
                    " takes the role away; the change is in the audit log in your name.",
                ],
                button=f"Give {role_names(given)}",
                back=f"/console/members/{target}",
            )
        member = await service.update_member(
            target,
            {"roles": roles_of(ctx.form)},
            actor=ctx.actor,
            assigner=ctx.permissions,
        )
        return ctx.redirect(
            f"/console/members/{member.id}", f"{member.name}'s roles: {role_names(member.roles)}."
        )

    @page(web, permission=Permission.PRODUCTS_WRITE)
    async def product_account(ctx: PageContext) -> Response:
        member = await service.get_member(_member_id(ctx))
        product = await get_referenced(
            Product,
            parse_uuid(ctx.form.get("product_id"), "product_id", "product"),
            "product",
            field="product_id",
        )
        op = chosen_op(ctx, ("assign", "suspend", "remove"), "assign")
        if op == "assign":
            await products.assign_product(member.id, product.id, actor=ctx.actor)
            done = f"{member.name} has {product.name}."
        else:
            status = {
                "suspend": ProductAccountStatus.SUSPENDED,
                "remove": ProductAccountStatus.REMOVED,
            }.get(op)
            account = await ProductAccount.filter(
                member_id=member.id, product_id=product.id
            ).first()
            if status is None or account is None:
                raise InvalidInputError(
                    f"{member.name} has no {product.name} account to change",
                    fields=[FieldProblem("product_id", "has no account of this member")],
                )
            if op == "remove" and not ctx.confirmed:
                return ctx.confirm(
                    title=f"Remove {member.name}'s {product.name} account?",
                    consequences=[
                        f"{member.name} loses access to {product.name}.",
                        "The product is told; their content there follows the product's own rules.",
                    ],
                    button=f"Remove {product.name} account",
                    back=f"/console/members/{member.id}",
                )
            await products.set_account_status(account.id, status, actor=ctx.actor)
            done = f"{member.name}'s {product.name} account is {status.value}."
        return ctx.redirect(f"/console/members/{member.id}", done)

    @page(web, permission=Permission.GROUPS_WRITE)
    async def group_membership(ctx: PageContext) -> Response:
        member = await service.get_member(_member_id(ctx))
        group_id = parse_uuid(ctx.form.get("group_id"), "group_id", "group")
        await get_referenced(Group, group_id, "group", field="group_id")
        joining = chosen_op(ctx, ("add", "remove"), "add") == "add"
        back = f"/console/members/{member.id}"
        asked = await group_change_confirmation(ctx, member, group_id, joining=joining, back=back)
        if asked is not None:
            return asked
        if not joining:
            await groups.remove_member(group_id, member.id, actor=ctx.actor, by=ctx.permissions)
            done = f"Removed {member.name} from the group."
        else:
            added = await groups.add_member(group_id, member.id, actor=ctx.actor, by=ctx.permissions)
            done = (
                f"Added {member.name} to the group."
                if added
                else f"{member.name} was already in it."
            )
        return ctx.redirect(f"/console/members/{member.id}", done)

    return [
        Route("/console/members/new", new_member_form, methods=["GET"]),
        Route("/console/members", create_member, methods=["POST"]),
        Route("/console/members/{id}/invite", invite, methods=["POST"]),
        Route("/console/members/{id}/details", update_details, methods=["POST"]),
        Route("/console/members/{id}/move", move, methods=["POST"]),
        Route("/console/members/{id}/roles", set_roles, methods=["POST"]),
        Route("/console/members/{id}/products", product_account, methods=["POST"]),
        Route("/console/members/{id}/groups", group_membership, methods=["POST"]),
    ]
