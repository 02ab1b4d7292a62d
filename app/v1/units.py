"""The unit tree."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.api import ApiRouter, Call
from app.v1.common import Input, ListQuery, Name, Output, Page, sort_param
from tenants.pagination import Sort, paginate
from tenants.permissions import Permission
from tenants.units import service
from tenants.units.models import Unit
from tenants.units.rules import subtree_bounds

router = ApiRouter("/v1/units", "units")


class UnitOut(Output):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    depth: int
    path: list[uuid.UUID] = Field(description="Ids from the root down to this unit.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, unit: Unit) -> UnitOut:
        return cls(
            id=unit.id,
            parent_id=unit.parent_id,
            name=unit.name,
            depth=unit.depth,
            path=[uuid.UUID(p) for p in unit.path.split("/")],
            created_at=unit.created_at,
            updated_at=unit.updated_at,
        )


class UnitPage(Page[UnitOut]):
    pass


class UnitCreate(Input):
    name: Name
    parent_id: uuid.UUID


class UnitPatch(Input):
    name: Name


class UnitMove(Input):
    parent_id: uuid.UUID = Field(description="The new parent; not the unit itself or below it.")


#: What units can be listed by (``path``: each unit after its parent).
UNIT_SORTS = ("path", "name", "created_at")


class UnitQuery(ListQuery):
    within: uuid.UUID | None = Field(None, description="Only this unit and its descendants.")
    parent_id: uuid.UUID | None = Field(None, description="Only direct children of this unit.")
    sort: str = sort_param("path", UNIT_SORTS)


@router.get(
    "",
    summary="List units (depth-first order by default)",
    permission=Permission.UNITS_READ,
    query=UnitQuery,
    response=UnitPage,
    errors=(404, 422),
)
async def list_units(call: Call[Input, UnitQuery]) -> UnitPage:
    q = call.query
    query = Unit.all()
    if q.within is not None:
        root = await service.get_unit(q.within)
        low, high = subtree_bounds(root.path)
        query = query.filter(path__gte=low, path__lt=high)
    if q.parent_id is not None:
        query = query.filter(parent_id=q.parent_id)
    sort = Sort.parse(q.sort, UNIT_SORTS)
    page = await paginate(query, sort, cursor=q.cursor, limit=q.limit)
    return UnitPage(items=[UnitOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    summary="Create a unit",
    permission=Permission.UNITS_WRITE,
    body=UnitCreate,
    response=UnitOut,
    status=201,
    errors=(409, 422),
)
async def create_unit(call: Call[UnitCreate, Input]) -> UnitOut:
    return UnitOut.of(
        await service.create_unit(call.body.name, call.body.parent_id, actor=call.actor)
    )


@router.get(
    "/{id}", summary="Get a unit", permission=Permission.UNITS_READ, response=UnitOut, errors=(404,)
)
async def get_unit(call: Call[Input, Input]) -> UnitOut:
    return UnitOut.of(await service.get_unit(call.id()))


@router.patch(
    "/{id}",
    summary="Rename a unit",
    permission=Permission.UNITS_WRITE,
    body=UnitPatch,
    response=UnitOut,
    errors=(404, 409, 422),
)
async def rename_unit(call: Call[UnitPatch, Input]) -> UnitOut:
    return UnitOut.of(await service.rename_unit(call.id(), call.body.name, actor=call.actor))


@router.post(
    "/{id}/move",
    summary="Move a unit and its subtree under another parent",
    permission=Permission.UNITS_WRITE,
    body=UnitMove,
    response=UnitOut,
    errors=(404, 409, 422),
)
async def move_unit(call: Call[UnitMove, Input]) -> UnitOut:
    return UnitOut.of(await service.move_unit(call.id(), call.body.parent_id, actor=call.actor))


@router.delete(
    "/{id}",
    summary="Delete an empty unit",
    permission=Permission.UNITS_WRITE,
    status=204,
    errors=(404, 409),
)
async def delete_unit(call: Call[Input, Input]) -> None:
    await service.delete_unit(call.id(), actor=call.actor)
