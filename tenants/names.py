"""Names that are unique regardless of capitals: a group's in its organisation, a unit's
among its siblings (migration 0035_names_unique_ignoring_case).

Each service checks the name before it writes, comparing ``lower(name)`` as the unique
index does, so an admin is told which existing name is in the way. Two transactions can
still both pass the check; the second's write then breaks the index. ``claimed`` turns
that into the same refusal the check gives, rather than an unexpected error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from tortoise.exceptions import IntegrityError

from tenants import db
from tenants.errors import TenantryError

_SAVEPOINT = "unique_name"


def constraint_of(error: IntegrityError) -> str | None:
    """The name of the constraint or index ``error`` broke, when PostgreSQL says."""
    cause = error.args[0] if error.args else None
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else None


@asynccontextmanager
async def claimed(index: str, clash: Callable[[], Awaitable[TenantryError]]) -> AsyncIterator[None]:
    """Run the block's writes in a savepoint of the tenant transaction. When one breaks the
    unique index ``index`` (another transaction committed the name after this one checked
    it), roll back to the savepoint, which leaves the transaction usable, and raise the
    error ``clash()`` returns: it may read the name that is now visible. Any other error
    goes through unchanged. Two round trips more than the writes themselves."""
    conn = db.connection()
    await conn.execute_query(f"SAVEPOINT {_SAVEPOINT}")
    try:
        yield
    except IntegrityError as error:
        if constraint_of(error) != index:
            raise
        await conn.execute_query(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise await clash() from error
    await conn.execute_query(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def taken_reason(existing: str, wanted: str, taken: str) -> str:
    """The reason given beside the name field: ``taken`` as it has always read when the
    names are the same, and naming the existing name when only capitals differ."""
    if existing == wanted:
        return taken
    return f"{taken} ({existing!r}: capitals do not make a name differ)"
