"""Groups and their members."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.api import ApiRouter, Call
from app.v1.common import Input, ListQuery, Name, Output, Page, Text, absent, changes_of, sort_param
from app.v1.members import MemberOut, MemberPage
from tenants.groups import service
from tenants.groups.models import Group
from tenants.members.models import Member
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission

router = ApiRouter("/v1/groups", "groups")


class GroupOut(Output):
    id: uuid.UUID
    name: str
    description: str
    priority: int
    created_at: datetime
    updated_at: datetime


class GroupPage(Page[GroupOut]):
    pass


class GroupCreate(Input):
    name: Name
    description: Text = ""
    priority: int = Field(0, ge=-1000, le=1000, description="Higher wins between groups' rules.")


class GroupPatch(Input):
    name: Name = Field(default_factory=absent)
    description: Text = Field(default_factory=absent)
    priority: int = Field(default_factory=absent, ge=-1000, le=1000)


class GroupQuery(ListQuery):
    sort: str = sort_param("name", service.SORTABLE)


@router.get(
    "",
    summary="List groups",
    permission=Permission.GROUPS_READ,
    query=GroupQuery,
    response=GroupPage,
    errors=(422,),
)
async def list_groups(call: Call[Input, GroupQuery]) -> GroupPage:
    q = call.query
    page = await paginate(
        Group.all(), Sort.parse(q.sort, service.SORTABLE), cursor=q.cursor, limit=q.limit
    )
    return GroupPage(
        items=[GroupOut.model_validate(g) for g in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    summary="Create a group",
    permission=Permission.GROUPS_WRITE,
    body=GroupCreate,
    response=GroupOut,
    status=201,
    errors=(409, 422),
)
async def create_group(call: Call[GroupCreate, Input]) -> GroupOut:
    b = call.body
    return GroupOut.model_validate(
        await service.create_group(b.name, b.description, b.priority, actor=call.actor)
    )


@router.get(
    "/{id}",
    summary="Get a group",
    permission=Permission.GROUPS_READ,
    response=GroupOut,
    errors=(404,),
)
async def get_group(call: Call[Input, Input]) -> GroupOut:
    return GroupOut.model_validate(await service.get_group(call.id()))


@router.patch(
    "/{id}",
    summary="Change a group",
    permission=Permission.GROUPS_WRITE,
    body=GroupPatch,
    response=GroupOut,
    errors=(404, 409, 422),
)
async def update_group(call: Call[GroupPatch, Input]) -> GroupOut:
    return GroupOut.model_validate(
        await service.update_group(call.id(), changes_of(call.body), actor=call.actor)
    )


@router.delete(
    "/{id}",
    summary="Delete a group (members stay)",
    permission=Permission.GROUPS_WRITE,
    status=204,
    errors=(404,),
)
async def delete_group(call: Call[Input, Input]) -> None:
    await service.delete_group(call.id(), actor=call.actor)


class GroupMemberQuery(ListQuery):
    pass


@router.get(
    "/{id}/members",
    summary="List a group's members",
    permission=Permission.GROUPS_READ,
    query=GroupMemberQuery,
    response=MemberPage,
    errors=(404, 422),
)
async def list_group_members(call: Call[Input, GroupMemberQuery]) -> MemberPage:
    group = await service.get_group(call.id())
    query = Member.filter(group_memberships__group_id=group.id)
    page = await paginate(
        query, Sort("email"), cursor=call.query.cursor, limit=call.query.limit, within=group.id
    )
    return MemberPage(items=[MemberOut.of(m) for m in page.items], next_cursor=page.next_cursor)


@router.put(
    "/{id}/members/{member_id}",
    summary="Add a member to a group (idempotent)",
    permission=Permission.GROUPS_WRITE,
    status=204,
    errors=(404, 409),
)
async def add_group_member(call: Call[Input, Input]) -> None:
    await service.add_member(
        call.id(), call.id("member_id"), actor=call.actor, by=call.principal.permissions
    )


@router.delete(
    "/{id}/members/{member_id}",
    summary="Remove a member from a group (idempotent)",
    permission=Permission.GROUPS_WRITE,
    status=204,
    errors=(404,),
)
async def remove_group_member(call: Call[Input, Input]) -> None:
    await service.remove_member(
        call.id(), call.id("member_id"), actor=call.actor, by=call.principal.permissions
    )
