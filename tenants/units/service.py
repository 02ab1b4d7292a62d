"""Writes and reads of the unit tree, in the caller's tenant transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.filters import escape_like
from tortoise.queryset import QuerySet

from policies.resolve import TargetKind
from tenants import cursors, db, names, text
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.errors import ConflictError, FieldProblem, InvalidInputError, NotFoundError
from tenants.models_base import get_by_id, get_referenced
from tenants.policy import service as policy
from tenants.units import rules
from tenants.units.models import Unit

AUDITED = ("name", "parent_id", "path")


def snapshot(unit: Unit) -> dict[str, Any]:
    return {"name": unit.name, "parent_id": unit.parent_id, "path": unit.path}


async def get_unit(unit_id: uuid.UUID, *, for_update: bool = False) -> Unit:
    return await get_by_id(Unit, unit_id, "unit", for_update=for_update)


async def root_unit() -> Unit:
    """The organisation's root unit (every organisation has exactly one)."""
    unit = await Unit.filter(parent_id=None).first()
    if unit is None:
        raise NotFoundError("the organisation has no root unit")
    return unit


#: Unit names: unique among siblings (same parent) whatever their capitals (migration 0035).
NAMES = names.UniqueName(
    table="units",
    index="units_tenant_parent_lower_name_key",
    scope="parent_id",
    clash_message="a unit named {!r} already exists there",
    taken="is already used by a sibling unit",
    scope_taken="already has a unit named {!r}",
)
NAME_INDEX = NAMES.index


async def _check_sibling_name(
    parent_id: uuid.UUID | None, name: str, exclude: uuid.UUID | None
) -> None:
    """ConflictError naming ``name`` and the sibling's name when a sibling has the name,
    whatever its capitals (units under other parents may share it)."""
    await NAMES.check(name, exclude, parent_id)


async def create_root_unit(name: str, *, actor: Actor) -> Unit:
    unit_id = uuid.uuid4()
    unit = await Unit.create(
        id=unit_id,
        tenant_id=db.current_org(),
        parent_id=None,
        name=name,
        path=rules.child_path(None, unit_id),
        depth=0,
    )
    await audit.record("unit.created", "unit", unit.id, actor=actor, after=snapshot(unit))
    return unit


async def create_unit(name: str, parent_id: uuid.UUID | None, *, actor: Actor) -> Unit:
    """A new unit under ``parent_id`` (None: under the organisation's root unit); names
    are unique among siblings whatever their capitals (ConflictError naming ``name``) and
    at most ``rules.NAME_MAX_LENGTH`` characters
    (InvalidInputError naming ``name``)."""
    text.check_length(name, rules.NAME_MAX_LENGTH, field="name", what="unit's name")
    parent = (
        await root_unit()
        if parent_id is None
        else await get_referenced(Unit, parent_id, "unit", field="parent_id")
    )
    rules.check_new_child_depth(parent.path)
    await _check_sibling_name(parent.id, name, None)
    unit_id = uuid.uuid4()
    path = rules.child_path(parent.path, unit_id)
    async with NAMES.claimed(name, None, parent.id):
        unit = await Unit.create(
            id=unit_id,
            tenant_id=db.current_org(),
            parent_id=parent.id,
            name=name,
            path=path,
            depth=rules.depth_of(path),
        )
    await audit.record("unit.created", "unit", unit.id, actor=actor, after=snapshot(unit))
    await policy.structure_changed()
    return unit


async def rename_unit(unit_id: uuid.UUID, name: str, *, actor: Actor) -> Unit:
    """The unit renamed; InvalidInputError naming ``name`` past ``rules.NAME_MAX_LENGTH``,
    ConflictError when a sibling has the name in any capitals (a new name that differs
    from the old only in capitals is the unit's own)."""
    text.check_length(name, rules.NAME_MAX_LENGTH, field="name", what="unit's name")
    unit = await get_unit(unit_id, for_update=True)
    if unit.name == name:
        return unit
    await _check_sibling_name(unit.parent_id, name, unit.id)
    before = snapshot(unit)
    unit.name = name
    async with NAMES.claimed(name, unit.id, unit.parent_id):
        await unit.save(update_fields=["name", "updated_at"])
    await audit.record(
        "unit.renamed", "unit", unit.id, actor=actor, before=before, after=snapshot(unit)
    )
    return unit


async def move_unit(unit_id: uuid.UUID, new_parent_id: uuid.UUID, *, actor: Actor) -> Unit:
    """Move a unit and its whole subtree under another parent, in one UPDATE.

    Raises InvalidInputError for the root, a move into its own subtree, or a tree that
    would grow too deep.
    """
    unit = await get_unit(unit_id, for_update=True)
    if unit.parent_id == new_parent_id:
        return unit
    parent = await get_referenced(Unit, new_parent_id, "unit", field="parent_id")
    height_row = await db.fetch_one(
        "SELECT coalesce(max(depth), 0) - $2 AS height FROM units "
        "WHERE tenant_id = $1 AND path >= $3 AND path < $4",
        db.current_org(),
        unit.depth,
        *rules.subtree_bounds(unit.path),
    )
    rules.check_move(unit.path, parent.path, int(height_row["height"]) if height_row else 0)
    await NAMES.check(unit.name, unit.id, parent.id, moving=True)
    before = snapshot(unit)
    old_path = unit.path
    new_path = rules.child_path(parent.path, unit.id)
    async with NAMES.claimed(unit.name, unit.id, parent.id, moving=True):
        await db.connection().execute_query(
            """
            UPDATE units
               SET path = $3 || substr(path, length($2) + 1),
                   depth = depth + $4,
                   parent_id = CASE WHEN id = $5 THEN $6 ELSE parent_id END,
                   updated_at = now()
             WHERE tenant_id = $1 AND path >= $2 AND path < $7
            """,
            [
                db.current_org(),
                old_path,
                new_path,
                rules.depth_of(new_path) - unit.depth,
                unit.id,
                parent.id,
                rules.subtree_bounds(old_path)[1],
            ],
        )
    moved = await get_unit(unit.id)
    await audit.record(
        "unit.moved", "unit", unit.id, actor=actor, before=before, after=snapshot(moved)
    )
    return moved


async def no_parent_chosen(unit_id: uuid.UUID, typed: str) -> InvalidInputError:
    """Why moving ``unit_id`` without a chosen parent is refused, as the error to raise.

    The unit picker offers only the units it may move under, so a name typed without a
    match chosen is often the unit's own or one of its sub-units': then the error is the
    move rule that name breaks (``rules.check_move``), else a request to choose one."""
    unit = await get_unit(unit_id)
    named = typed.strip()
    if named:
        inside = await subtree(unit.path).filter(name__iexact=named).first()
        if inside is not None:
            try:
                rules.check_move(unit.path, inside.path, 0)
            except InvalidInputError as error:
                return error
    return InvalidInputError(
        "choose the unit to move it under",
        fields=[FieldProblem("parent_id", "choose one of the matches")],
    )


def subtree(path: str) -> QuerySet[Unit]:
    """The unit at ``path`` and every unit below it (an index range, see
    ``rules.subtree_bounds``)."""
    low, high = rules.subtree_bounds(path)
    return Unit.filter(path__gte=low, path__lt=high)


async def delete_unit(unit_id: uuid.UUID, *, actor: Actor) -> None:
    """Delete an empty leaf unit; refuses the root, units with children or members."""
    from tenants.members.models import Member

    unit = await get_unit(unit_id, for_update=True)
    if unit.parent_id is None:
        raise ConflictError("the root unit cannot be deleted")
    if await Unit.filter(parent_id=unit.id).exists():
        raise ConflictError("the unit has child units; move or delete them first")
    if await Member.filter(unit_id=unit.id).exists():
        raise ConflictError("the unit has members; move them to another unit first")
    before = snapshot(unit)
    await policy.rules_removed_with(TargetKind.UNIT, unit.id, actor=actor)
    await unit.delete()
    await audit.record("unit.deleted", "unit", unit.id, actor=actor, before=before)
    await policy.structure_changed()


async def unit_ids_in_subtree(unit: Unit) -> list[uuid.UUID]:
    rows = await db.fetch(
        "SELECT id FROM units WHERE tenant_id = $1 AND path >= $2 AND path < $3",
        db.current_org(),
        *rules.subtree_bounds(unit.path),
    )
    return [r["id"] for r in rows]


def name_prefix_pattern(text: str) -> str:
    """A LIKE pattern for lower-cased names starting with ``text`` (its wildcards escaped);
    the look-ups of units, groups and members by the start of a name share it."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


#: ``find_units``: the start of a name by the (tenant_id, lower(name)) index, and
#: (``folded``, from three characters) the same start without accents.
_FIND_UNITS_SQL = """
SELECT id FROM (
  (SELECT id, name FROM units WHERE tenant_id = $1 AND lower(name) LIKE $2
     AND ($3::text IS NULL OR NOT (path >= $3 AND path < $4))
   ORDER BY lower(name), id LIMIT $5){folded}
) found ORDER BY lower(name), id LIMIT $5
"""
_FOLDED_START = """
  UNION
  (SELECT id, name FROM units WHERE tenant_id = $1
     AND id IN (SELECT u FROM units_matching($6, $7) AS u)
     AND ($3::text IS NULL OR NOT (path >= $3 AND path < $4)))"""


async def find_units(
    text: str, *, limit: int = 10, outside_of: uuid.UUID | None = None
) -> list[Unit]:
    """Units whose name starts with ``text`` (case-insensitive; from three characters
    whatever the accents: "ecole" finds École), by name, at most ``limit``; with
    ``outside_of``, not that unit nor anything below it (targets a unit may move under).
    One range of the (tenant_id, lower(name)) index, and from three characters the folded
    trigram index (``units_matching``): costs what it returns."""
    text = text.strip()
    low = high = None
    if outside_of is not None:
        low, high = rules.subtree_bounds((await get_unit(outside_of)).path)
    args: list[Any] = [db.current_org(), name_prefix_pattern(text), low, high, limit]
    folded = ""
    if len(text) >= 3:
        args += [f"{escape_like(text)}%", limit * 5]
        folded = _FOLDED_START
    sql = _FIND_UNITS_SQL.format(folded=folded)
    rows = await db.fetch(sql, *args)
    ids = [r["id"] for r in rows]
    found = {u.id: u for u in await Unit.filter(id__in=ids)}
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True, slots=True)
class UnitRow:
    """A unit as a page of units shows it: its direct members counted by the counters of
    0023_units_sized_by_page, and whether it has sub-units (not how many: a page reads one
    index entry per unit it shows)."""

    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    path: str
    depth: int
    members: int
    has_children: bool


@dataclass(frozen=True, slots=True)
class UnitRows:
    items: list[UnitRow]
    next_cursor: str | None
    #: A search matched more units than it shows (it is narrowed by typing more).
    more_matches: bool = False


#: A page of units, each with one index probe for a child; the caller adds the condition
#: that picks the units. Their counts come after (``_with_counts``).
_ROWS = """
SELECT u.id, u.name, u.parent_id, u.path, u.depth,
       EXISTS (SELECT 1 FROM units s WHERE s.tenant_id = u.tenant_id AND s.parent_id = u.id)
         AS has_children
  FROM units u
 WHERE u.tenant_id = $1 AND """


async def member_counts(unit_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Direct members of each unit of ``unit_ids``, from the counters kept by triggers on
    members (absent: none). The names are given, not computed in SQL: under row-level
    security a condition built with ``||`` (not leakproof) could not use the index and
    would read every counter of the organisation."""
    rows = await db.fetch(
        "SELECT name, n FROM tenant_counters WHERE tenant_id = $1 AND name = ANY($2::text[])",
        db.current_org(),
        [f"unit_members.{i}" for i in unit_ids],
    )
    return {uuid.UUID(r["name"].removeprefix("unit_members.")): int(r["n"]) for r in rows}


async def _with_counts(records: list[Any]) -> list[UnitRow]:
    counts = await member_counts([r["id"] for r in records])
    return [_row(r, counts.get(r["id"], 0)) for r in records]


#: The cursor of a page of sibling units: after the last row's name and id.
_SIBLINGS = "units.children"
_SIBLING_COLUMNS = (
    cursors.Column(cursors.Kind.TEXT, max_length=200),
    cursors.Column(cursors.Kind.UUID),
)
#: Units matched by a search, at most; past it the admin is asked for more of the name.
SEARCH_MATCHES_CAP = 500


def _row(record: Any, members: int) -> UnitRow:
    return UnitRow(
        id=record["id"],
        name=record["name"],
        parent_id=record["parent_id"],
        path=record["path"],
        depth=int(record["depth"]),
        members=members,
        has_children=bool(record["has_children"]),
    )


async def unit_rows(ids: list[uuid.UUID], *, limit: int | None = None) -> list[UnitRow]:
    """The units of ``ids`` (those that exist), by name, the first ``limit`` of them."""
    rows = await db.fetch(
        _ROWS + "u.id = ANY($2::uuid[]) ORDER BY lower(u.name), u.id LIMIT $3",
        db.current_org(),
        ids,
        limit,
    )
    return await _with_counts(rows)


async def child_units(parent_id: uuid.UUID, *, cursor: str | None, limit: int) -> UnitRows:
    """The direct children of ``parent_id`` by name whatever its capitals ("engineering"
    between "Design" and "Sales"), ``limit`` at most, after ``cursor`` (from the previous
    page's ``next_cursor``; InvalidCursorError when it is not one): one range of the
    unique (tenant_id, parent_id, lower(name)) index, whatever the tree's size."""
    args: list[Any] = [db.current_org(), parent_id, limit + 1]
    after = ""
    if cursor:
        args += cursors.unseal(cursor, _SIBLINGS, "name", _SIBLING_COLUMNS)
        after = " AND (lower(u.name), u.id) > (lower($4), $5)"
    rows = await _with_counts(
        await db.fetch(
            _ROWS + f"u.parent_id = $2{after} ORDER BY lower(u.name), u.id LIMIT $3", *args
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return UnitRows(
        rows, cursors.seal(_SIBLINGS, "name", [rows[-1].name, rows[-1].id]) if more else None
    )


async def search_units(text: str, *, limit: int) -> UnitRows:
    """Units whose name contains ``text`` (case-insensitive), by name, ``limit`` at most
    (``next_cursor`` is never set: a search is narrowed, not paged). Three characters or
    more go through the trigram index (``units_matching``, at most SEARCH_MATCHES_CAP
    matches read); shorter text matches the start of a name."""
    text = text.strip()
    if len(text) < 3:
        found = await find_units(text, limit=limit + 1)
        ids = [u.id for u in found]
    else:
        ids = [
            r["id"]
            for r in await db.fetch(
                "SELECT id FROM units_matching($1, $2) AS id",
                f"%{escape_like(text)}%",
                SEARCH_MATCHES_CAP,
            )
        ]
    rows = await unit_rows(ids, limit=limit)
    return UnitRows(rows, None, more_matches=len(ids) > len(rows))


async def unit_names(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of the units of ``ids`` (e.g. a unit's ancestors, read from its path)."""
    rows = await db.fetch(
        "SELECT id, name FROM units WHERE tenant_id = $1 AND id = ANY($2::uuid[])",
        db.current_org(),
        ids,
    )
    return {r["id"]: r["name"] for r in rows}


#: Between a unit's ancestors' names and its own (a single right-pointing angle quote).
TRAIL_SEPARATOR = " \u203a "


async def trails(
    found: Sequence[Unit | UnitRow], *, with_own: bool = True
) -> dict[uuid.UUID, str]:
    """Each unit of ``found`` as "Parent \u203a Unit", its ancestors below the root first: two
    units named alike ("Robotics Club" under Staff and under Students) read apart in a
    picker or a search. ``with_own=False``: the ancestors alone ("" at the top level).
    One look-up for all of them."""
    above = {
        unit.id: [uuid.UUID(i) for i in rules.ancestor_ids(unit.path)[1:-1]] for unit in found
    }
    names = await unit_names(sorted({i for ids in above.values() for i in ids}))
    return {
        unit.id: TRAIL_SEPARATOR.join(
            [*(names[i] for i in above[unit.id] if i in names), *([unit.name] if with_own else [])]
        )
        for unit in found
    }


@dataclass(frozen=True, slots=True)
class UnitPage:
    """One unit as the units page shows it: its ancestors (root first, id and name), the
    unit, and a page of its children."""

    ancestors: list[tuple[uuid.UUID, str]]
    unit: UnitRow
    children: UnitRows


async def ancestors(unit: Unit) -> list[tuple[uuid.UUID, str]]:
    """The unit's ancestors, root first, as (id, name): read from its path, one look-up."""
    above = [uuid.UUID(i) for i in rules.ancestor_ids(unit.path)[:-1]]
    names = await unit_names(above)
    return [(i, names[i]) for i in above if i in names]


async def unit_page(unit_id: uuid.UUID | None, *, cursor: str | None, limit: int) -> UnitPage:
    """The page of ``unit_id`` (the root when None): NotFoundError for no such unit,
    InvalidCursorError for a cursor that is not one (see ``child_units``). A handful of
    index look-ups, as many rows as the unit's depth plus ``limit``."""
    unit = await get_unit(unit_id) if unit_id is not None else await root_unit()
    (row,) = await unit_rows([unit.id])
    return UnitPage(
        await ancestors(unit),
        row,
        await child_units(unit.id, cursor=cursor, limit=limit),
    )
