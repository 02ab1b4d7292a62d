"""What every tenant-owned table has: ``tenant_id`` first, and creation/update times."""

from __future__ import annotations

import uuid
from typing import TypeVar

from tortoise import fields
from tortoise.models import Model


class TenantModel(Model):
    """Base of every tenant table.

    Row-level security keys on ``tenant_id`` (see migrations), so it is a plain column
    that every secondary index leads with; the foreign key to the organisation keeps
    orphans out.
    """

    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    tenant: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT, db_index=False
    )
    tenant_id: uuid.UUID
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        abstract = True


M = TypeVar("M", bound=Model)


async def get_by_id(model: type[M], id_: object, what: str, *, for_update: bool = False) -> M:
    """The row with this id in the current organisation, or NotFoundError.

    Row-level security already hides other organisations' rows, so an id from another
    organisation is indistinguishable from one that never existed.
    """
    from tenants.errors import NotFoundError

    query = model.filter(id=id_)
    if for_update:
        query = query.select_for_update()
    found = await query.first()
    if found is None:
        raise NotFoundError(f"there is no {what} with id {id_}", extra={"resource": what})
    return found


async def get_referenced(model: type[M], id_: object, what: str, *, field: str) -> M:
    """The row an input field refers to, or InvalidInputError naming that field.

    A missing row behind an id in the request body is a problem with the input (422),
    unlike a missing resource in the path (404, ``get_by_id``).
    """
    from tenants.errors import FieldProblem, InvalidInputError

    found = await model.filter(id=id_).first()
    if found is None:
        raise InvalidInputError(
            f"the {what} does not exist", fields=[FieldProblem(field, f"no {what} with id {id_}")]
        )
    return found


def max_length_of(model: type[Model], field: str) -> int:
    """The length of ``model``'s character column ``field``: the most its input may hold."""
    length = model._meta.fields_map[field].max_length  # type: ignore[attr-defined]
    assert isinstance(length, int), f"{model.__name__}.{field} has no length"
    return length
