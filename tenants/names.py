"""Names that are unique regardless of capitals: a group's in its organisation, a unit's
among its siblings (migration 0035_names_unique_ignoring_case).

Each service checks the name before it writes, comparing ``lower(name)`` as the unique
index does, so an admin is told which existing name is in the way. Two transactions can
still both pass the check; the second's write then breaks the index. ``claimed`` turns
that into the same refusal the check gives, rather than an unexpected error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from tenants import db
from tenants.errors import ConflictError, FieldProblem

_SAVEPOINT = "unique_name"


@dataclass(frozen=True, slots=True)
class UniqueName:
    """One table's names, unique whatever their capitals within the organisation or, with
    ``scope``, among the rows sharing that column's value (a unit's siblings)."""

    table: str
    #: The unique index on ``lower(name)`` (migration 0035).
    index: str
    #: The column beside ``tenant_id`` that bounds a name's uniqueness; None: none.
    scope: str | None
    #: The refusal's message, ``{!r}`` standing for the existing name.
    clash_message: str
    #: The reason beside the name field when the names are the same as typed.
    taken: str
    #: The reason beside the scope's field when a row moves to where the name is taken
    #: (a unit moved under a parent that has one so named), ``{!r}`` the existing name.
    scope_taken: str = "already holds one named {!r}"

    async def holder(
        self, name: str, exclude: Any | None, scope_value: Any | None = None
    ) -> str | None:
        """The name of another row (not ``exclude``) named ``name`` in any capitals, or
        None; compared with ``lower`` as the unique index compares them, one look-up in it.
        A scoped name with no scope value (the root unit) has nothing beside it."""
        if self.scope is not None and scope_value is None:
            return None
        scoped = f" AND {self.scope} = $4" if self.scope is not None else ""
        row = await db.fetch_one(
            f"SELECT name FROM {self.table} WHERE tenant_id = $1 AND lower(name) = lower($2) "  # noqa: S608
            f"AND id IS DISTINCT FROM $3{scoped} LIMIT 1",
            db.current_org(),
            name,
            exclude,
            *([scope_value] if self.scope is not None else []),
        )
        return None if row is None else str(row["name"])

    def clash(self, existing: str, name: str, *, moving: bool = False) -> ConflictError:
        """The refusal of ``name``, naming ``existing`` (and the capitals, when only they
        differ); with ``moving``, beside the scope's field: the row keeps its name and
        goes where the name is taken, so the place chosen is what is refused."""
        problem = (
            FieldProblem(str(self.scope), self.scope_taken.format(existing))
            if moving and self.scope is not None
            else FieldProblem("name", taken_reason(existing, name, self.taken))
        )
        return ConflictError(self.clash_message.format(existing), fields=[problem])

    async def check(
        self,
        name: str,
        exclude: Any | None,
        scope_value: Any | None = None,
        *,
        moving: bool = False,
    ) -> None:
        """ConflictError naming ``name`` (the scope's field when ``moving``) and the
        existing name when another row has it."""
        existing = await self.holder(name, exclude, scope_value)
        if existing is not None:
            raise self.clash(existing, name, moving=moving)

    @asynccontextmanager
    async def claimed(
        self,
        name: str,
        exclude: Any | None,
        scope_value: Any | None = None,
        *,
        moving: bool = False,
    ) -> AsyncIterator[None]:
        """Run the block's writes of ``name`` in a savepoint of the tenant transaction.
        When one breaks the unique index (another transaction committed the name after
        ``check`` looked), roll back to the savepoint, which leaves the transaction usable,
        and refuse as ``check`` does, naming the name now visible. Any other error goes
        through unchanged. Two round trips more than the writes themselves."""
        conn = db.connection()
        await conn.execute_query(f"SAVEPOINT {_SAVEPOINT}")
        try:
            yield
        except IntegrityError as error:
            if constraint_of(error) != self.index:
                raise
            await conn.execute_query(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            existing = await self.holder(name, exclude, scope_value)
            raise self.clash(existing or name, name, moving=moving) from error
        await conn.execute_query(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def constraint_of(error: IntegrityError) -> str | None:
    """The name of the constraint or index ``error`` broke, when PostgreSQL says."""
    cause = error.args[0] if error.args else None
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else None


def taken_reason(existing: str, wanted: str, taken: str) -> str:
    """The reason given beside the name field: ``taken`` as it has always read when the
    names are the same, and naming the existing name when only capitals differ."""
    if existing == wanted:
        return taken
    return f"{taken} ({existing!r}: capitals do not make a name differ)"
