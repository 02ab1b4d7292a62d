"""Members: the organisation-managed accounts, their moves and lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from app.api import ApiRouter, Call, RawBody, StreamBody
from app.v1.common import (
    FREE_TEXT,
    NAME,
    Input,
    ListQuery,
    Name,
    Output,
    Page,
    SettingValue,
    absent,
    changes_of,
    sort_param,
)
from tenants.departures import service as departures
from tenants.errors import FieldProblem, InvalidInputError
from tenants.members import imports, invitations, service
from tenants.members.lifecycle import (
    DirectAction,
    LifecycleAction,
    MemberStatus,
    offered_actions,
)
from tenants.members.models import Member
from tenants.models_base import get_referenced
from tenants.pagination import Sort
from tenants.permissions import Permission, Role
from tenants.policy import moves
from tenants.units.models import Unit
from tenants.units.service import root_unit

router = ApiRouter("/v1/members", "members")

ExternalRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NAME
]


class MemberOut(Output):
    id: uuid.UUID
    email: str
    name: str
    unit_id: uuid.UUID
    manager_id: uuid.UUID | None
    roles: list[Role]
    status: MemberStatus
    allowed_actions: list[LifecycleAction] = Field(description="Lifecycle actions legal now.")
    idp_subject: str | None
    external_id: str | None
    status_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(
            id=member.id,
            email=member.email,
            name=member.name,
            unit_id=member.unit_id,
            manager_id=member.manager_id,
            roles=[Role(r) for r in member.roles],
            status=member.status,
            allowed_actions=offered_actions(member.status),
            idp_subject=member.idp_subject,
            external_id=member.external_id,
            status_changed_at=member.status_changed_at,
            created_at=member.created_at,
            updated_at=member.updated_at,
        )


class MemberPage(Page[MemberOut]):
    pass


class MemberCreate(Input):
    email: EmailStr
    name: Name
    unit_id: uuid.UUID
    manager_id: uuid.UUID | None = None
    roles: list[Role] = Field(default_factory=lambda: [Role.MEMBER], max_length=len(Role))
    status: MemberStatus = Field(
        MemberStatus.INVITED,
        description="invited or active",
        json_schema_extra={"enum": [MemberStatus.INVITED.value, MemberStatus.ACTIVE.value]},
    )
    idp_subject: ExternalRef | None = None
    external_id: ExternalRef | None = None
    invite: bool = Field(
        False,
        description="Also email an invitation: a sign-in link that works once for 7 days, "
        "or, where the organisation signs in through its identity provider, how to sign in "
        "there. Sent with the creation or not at all.",
    )


class InvitationOut(Output):
    member_id: uuid.UUID
    way: invitations.InvitationWay = Field(
        description="sign_in_link (the email carries a one-time link) or identity_provider "
        "(the email says to sign in through the organisation's identity provider)."
    )
    expires_at: datetime | None = Field(description="When the link stops working (sign_in_link).")


class MemberPatch(Input):
    email: EmailStr = Field(default_factory=absent)
    name: Name = Field(default_factory=absent)
    manager_id: uuid.UUID | None = Field(
        default_factory=absent, description="null removes the manager"
    )
    roles: list[Role] = Field(default_factory=absent, max_length=len(Role))
    idp_subject: ExternalRef | None = Field(default_factory=absent)
    external_id: ExternalRef | None = Field(default_factory=absent)


class MemberMove(Input):
    unit_id: uuid.UUID


class MemberTransition(Input):
    action: DirectAction = Field(
        description="A member leaves through a departure (POST /v1/departures) and is "
        "erased through an erasure request; depart and purge are not offered here."
    )
    reason: Annotated[str, StringConstraints(max_length=1000), FREE_TEXT] | None = None


class MemberQuery(ListQuery):
    status: MemberStatus | None = None
    unit_id: uuid.UUID | None = Field(
        None, description="Members of this unit (and below, see subtree)."
    )
    subtree: bool = Field(True, description="With unit_id: include members of descendant units.")
    group_id: uuid.UUID | None = None
    manager_id: uuid.UUID | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="Text found in the email or name."
    )
    sort: str = sort_param("email", service.SORTABLE)


@router.get(
    "",
    summary="List members",
    permission=Permission.MEMBERS_READ,
    query=MemberQuery,
    response=MemberPage,
    errors=(404, 422),
)
async def list_members(call: Call[Input, MemberQuery]) -> MemberPage:
    q = call.query
    filters = service.MemberFilter(
        status=q.status,
        unit_id=q.unit_id,
        include_subunits=q.subtree,
        group_id=q.group_id,
        q=q.q,
        manager_id=q.manager_id,
    )
    page = await service.list_members(
        filters, Sort.parse(q.sort, service.SORTABLE), cursor=q.cursor, limit=q.limit
    )
    return MemberPage(items=[MemberOut.of(m) for m in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    summary="Create a member",
    permission=Permission.MEMBERS_WRITE,
    body=MemberCreate,
    response=MemberOut,
    status=201,
    errors=(409, 422),
)
async def create_member(call: Call[MemberCreate, Input]) -> MemberOut:
    b = call.body
    member = await service.create_member(
        service.NewMember(
            email=b.email,
            name=b.name,
            unit_id=b.unit_id,
            manager_id=b.manager_id,
            roles=tuple(b.roles),
            status=b.status,
            idp_subject=b.idp_subject,
            external_id=b.external_id,
        ),
        actor=call.actor,
        assigner=call.principal.permissions,
    )
    if b.invite:
        await invitations.invite_member(
            member.id,
            secret_key=call.request.app.state.settings.secret_key,
            actor=call.actor,
            sender=call.principal.permissions,
        )
    return MemberOut.of(member)


@router.post(
    "/{id}/invitation",
    summary="Email a member an invitation (again)",
    permission=Permission.MEMBERS_WRITE,
    response=InvitationOut,
    status=202,
    errors=(404, 409),
)
async def invite_member(call: Call[Input, Input]) -> InvitationOut:
    """Queues the invitation email (a new sign-in link each time; earlier links keep working
    until used or expired). 409 for a member who cannot sign in (suspended, departed)."""
    sent = await invitations.invite_member(
        call.id(),
        secret_key=call.request.app.state.settings.secret_key,
        actor=call.actor,
        sender=call.principal.permissions,
    )
    return InvitationOut(member_id=sent.member.id, way=sent.way, expires_at=sent.expires_at)


@router.get(
    "/{id}",
    summary="Get a member",
    permission=Permission.MEMBERS_READ,
    response=MemberOut,
    errors=(404,),
)
async def get_member(call: Call[Input, Input]) -> MemberOut:
    return MemberOut.of(await service.get_member(call.id()))


@router.patch(
    "/{id}",
    summary="Change a member's details",
    permission=Permission.MEMBERS_WRITE,
    body=MemberPatch,
    response=MemberOut,
    errors=(404, 409, 422),
)
async def update_member(call: Call[MemberPatch, Input]) -> MemberOut:
    changes = changes_of(call.body)
    if "roles" in changes:
        changes["roles"] = [r.value for r in changes["roles"]]
    return MemberOut.of(
        await service.update_member(
            call.id(), changes, actor=call.actor, assigner=call.principal.permissions
        )
    )


@router.post(
    "/{id}/move",
    summary="Move a member to another unit",
    permission=Permission.MEMBERS_WRITE,
    body=MemberMove,
    response=MemberOut,
    errors=(404, 409, 422),
)
async def move_member(call: Call[MemberMove, Input]) -> MemberOut:
    moved = await service.move_member(
        call.id(), call.body.unit_id, actor=call.actor, by=call.principal.permissions
    )
    return MemberOut.of(moved)


class MovePreviewBody(Input):
    unit_id: uuid.UUID | None = Field(None, description="The unit to move to; default: unchanged.")
    group_ids: list[uuid.UUID] | None = Field(
        None,
        max_length=1000,
        description="Exactly the groups the member would be in; default: unchanged.",
    )


class SettingChangeOut(Output):
    setting: str
    value_before: SettingValue
    value_after: SettingValue
    locked_before: bool
    locked_after: bool
    source_after: str = Field(description="rule, member or default")
    reason_after: str


class GrantCrossedOut(Output):
    grant_id: uuid.UUID
    unit_id: uuid.UUID
    admin_id: uuid.UUID
    ends_at: datetime | None


class MovePreviewOut(Output):
    member_id: uuid.UUID
    unit_before: uuid.UUID
    unit_after: uuid.UUID
    groups_before: list[uuid.UUID]
    groups_after: list[uuid.UUID]
    settings: list[SettingChangeOut] = Field(
        description="Settings whose value or lock would change, resolved before and after."
    )
    grants_lost: list[GrantCrossedOut] | None = Field(
        description="Active data-access grants on a unit that would stop covering the member; "
        "null when the caller may not read data-access grants (access:read)."
    )
    grants_gained: list[GrantCrossedOut] | None = Field(
        description="Active data-access grants on a unit that would start covering the member; "
        "null when the caller may not read data-access grants (access:read)."
    )

    @classmethod
    def of(cls, p: moves.MovePreview, *, grants: bool) -> MovePreviewOut:
        return cls(
            member_id=p.member_id,
            unit_before=p.unit_before,
            unit_after=p.unit_after,
            groups_before=p.groups_before,
            groups_after=p.groups_after,
            settings=[
                SettingChangeOut(
                    setting=c.setting,
                    value_before=_plain(c.value_before),
                    value_after=_plain(c.value_after),
                    locked_before=c.locked_before,
                    locked_after=c.locked_after,
                    source_after=c.source_after.value,
                    reason_after=c.reason_after,
                )
                for c in p.settings
            ],
            grants_lost=[GrantCrossedOut(**asdict(g)) for g in p.grants_lost] if grants else None,
            grants_gained=(
                [GrantCrossedOut(**asdict(g)) for g in p.grants_gained] if grants else None
            ),
        )


def _plain(value: object) -> SettingValue:
    return list(value) if isinstance(value, tuple) else value  # type: ignore[return-value]


@router.post(
    "/{id}/move/preview",
    summary="Preview what moving a member (unit, groups) changes for them",
    permission=Permission.MEMBERS_READ,
    body=MovePreviewBody,
    response=MovePreviewOut,
    errors=(404, 422),
)
async def preview_move(call: Call[MovePreviewBody, Input]) -> MovePreviewOut:
    """Resolves the member's settings as they are and as they would be, and lists what
    differs (value or lock), and the unit data-access grants the move would take them out
    of or into. Changes nothing. Admin roles and product accounts do not depend on units or
    groups, so a move leaves them as they are."""
    preview = await moves.preview_move(
        call.id(), unit_id=call.body.unit_id, group_ids=call.body.group_ids
    )
    # Grants (some under delayed disclosure) are for those who may read data access.
    return MovePreviewOut.of(preview, grants=Permission.ACCESS_READ in call.principal.permissions)


@router.post(
    "/{id}/transitions",
    summary="Apply a lifecycle action (activate, suspend, reinstate…)",
    permission=Permission.MEMBERS_LIFECYCLE,
    body=MemberTransition,
    response=MemberOut,
    errors=(404, 409, 422),
)
async def transition_member(call: Call[MemberTransition, Input]) -> MemberOut:
    """Illegal actions answer 409 with ``allowed_actions`` listing the legal ones.
    ``begin_departure`` is refused here: a departure starts with ``POST /v1/departures``;
    ``reinstate`` of a member whose departure runs cancels that departure."""
    member = await departures.apply_member_action(
        call.id(),
        LifecycleAction(call.body.action.value),
        reason=call.body.reason,
        actor=call.actor,
        by=call.principal.permissions,
    )
    return MemberOut.of(member)


#: A members CSV of 5,000 lines fits well under this.
IMPORT_MAX_BYTES = 2 * 1024 * 1024


class ImportRecord(Input):
    """One CSV line (for the OpenAPI document; the body is ``text/csv``)."""

    email: str
    name: str
    unit: str | None = None
    manager_email: str | None = None
    roles: str | None = None
    status: str | None = None


class ImportQuery(Input):
    dry_run: bool = Field(
        True, description="true (default): only say what would happen; false: apply it."
    )
    default_unit_id: uuid.UUID | None = Field(
        None, description="Unit of new members whose line names none (default: the root unit)."
    )


class ImportLineOut(Output):
    line: int = Field(description="The line's number in the file; the header is line 1.")
    email: str
    outcome: str = Field(description="created, changed, unchanged or refused")
    detail: str


class ImportOut(Output):
    applied: bool
    created: int
    changed: int
    unchanged: int
    refused: int
    lines: list[ImportLineOut]


@router.post(
    "/import",
    summary="Import members from CSV (dry run first, then apply in one transaction)",
    permission=Permission.MEMBERS_WRITE,
    stream=StreamBody("text/csv", ImportRecord, IMPORT_MAX_BYTES),
    query=ImportQuery,
    response=ImportOut,
    errors=(404, 409, 413, 415, 422),
)
async def import_members(call: Call[RawBody, ImportQuery]) -> ImportOut:
    """Columns: email, name (required), unit (id or unique name), manager_email, roles
    (space-separated), status (invited or active, for new members). Every line is checked
    first; applying a file with a refused line answers 422 naming each line (``line 3``)
    and writes nothing."""
    try:
        text = call.body.content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(
            "the file is not UTF-8 text", fields=[FieldProblem("body", "is not UTF-8")]
        ) from None
    if call.query.default_unit_id is not None:
        # Checked before the dry run too: a dry run that passes must apply.
        await get_referenced(
            Unit, call.query.default_unit_id, "unit", field="query.default_unit_id"
        )
    default_unit = call.query.default_unit_id or (await root_unit()).id
    report = await imports.import_members(
        text,
        default_unit=default_unit,
        apply=not call.query.dry_run,
        actor=call.actor,
        assigner=call.principal.permissions,
    )
    return import_out(report)


def import_out(report: imports.ImportReport) -> ImportOut:
    return ImportOut(
        applied=report.applied,
        created=report.count("created"),
        changed=report.count("changed"),
        unchanged=report.count("unchanged"),
        refused=report.count("refused"),
        lines=[
            ImportLineOut(line=o.number, email=o.email, outcome=o.outcome, detail=o.detail)
            for o in report.lines
        ],
    )
