"""The tenant transaction: the one way the domain reaches the database.

Row-level security filters every tenant table on ``app.tenant_id``; it is set with
``set_config(..., true)`` so it lives exactly as long as the transaction and cannot leak to
the next user of a pooled connection (a session-level ``SET`` would).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import anyio
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connections
from tortoise.transactions import in_transaction

from tenants.ids import OrgId

_current_org: ContextVar[OrgId | None] = ContextVar("tenantry_current_org", default=None)
_current_conn: ContextVar[BaseDBAsyncClient | None] = ContextVar(
    "tenantry_current_conn", default=None
)


class NoTenantTransactionError(RuntimeError):
    """A service function was called outside ``tenant_transaction``: a programming error."""


#: The longest a rollback after an error or a cancellation may take: past it the pool's
#: own reset takes over (a database that does not answer).
ROLLBACK_SECONDS = 5.0


@asynccontextmanager
async def _pooled_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """``in_transaction("default")``, except that a BEGIN that fails gives its connection
    back. tortoise takes a connection from the pool and binds it to the task before it
    sends BEGIN, and undoes both only in ``__aexit__``, which Python does not call when
    ``__aenter__`` raises: after the database ended a pooled session (a restart,
    ``pg_terminate_backend``), each request that drew it kept it out of the pool for good
    and left the dead session bound to its task, until the pool ran dry."""
    context: Any = in_transaction("default")
    try:
        conn = await context.__aenter__()
    except BaseException:
        token = getattr(context, "token", None)  # set once a connection was taken
        if token is not None:
            get_connections().reset(token)
            pool = getattr(context.client._parent, "_pool", None)
            if pool is not None:
                with contextlib.suppress(Exception):  # a broken one is closed by the pool
                    await pool.release(context.client._connection)
        raise
    try:
        yield conn
    except BaseException as exc:
        # Shielded: a cancelled task (a client that hung up mid-download cancels the task
        # streaming it) would otherwise have its ROLLBACK cancelled too, and the pool reset
        # the connection with the transaction still open, logged at error level.
        with anyio.move_on_after(ROLLBACK_SECONDS, shield=True):
            await context.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        await context.__aexit__(None, None, None)


@asynccontextmanager
async def tenant_transaction(org_id: OrgId) -> AsyncIterator[BaseDBAsyncClient]:
    """Open a transaction bound to one organisation; commit on success, roll back on error.

    Nested use for the same organisation joins the outer transaction, so a service may
    call another service. Nesting with a different organisation is refused: one
    transaction never spans two tenants.
    """
    outer = _current_org.get()
    if outer is not None:
        if outer != org_id:
            raise NoTenantTransactionError("a tenant transaction cannot switch organisation")
        conn = _current_conn.get()
        assert conn is not None
        yield conn
        return
    async with _pooled_transaction() as conn:
        await conn.execute_query("SELECT set_config('app.tenant_id', $1, true)", [str(org_id)])
        org_token = _current_org.set(org_id)
        conn_token = _current_conn.set(conn)
        try:
            yield conn
        finally:
            _current_conn.reset(conn_token)
            _current_org.reset(org_token)


@asynccontextmanager
async def tenant_transaction_by_slug(slug: str) -> AsyncIterator[OrgId | None]:
    """``tenant_transaction`` for the organisation with this slug, found by the statement
    that binds the transaction to it (``organisation_id_by_slug``, SECURITY DEFINER): one
    round trip and one pooled connection fewer than looking the organisation up first.
    Yields the organisation's id, or None (and no tenant: every tenant table reads empty)
    when no organisation has the slug. Refused inside another tenant transaction."""
    if _current_org.get() is not None:
        raise NoTenantTransactionError("a tenant transaction cannot switch organisation")
    async with _pooled_transaction() as conn:
        _, rows = await conn.execute_query(
            "SELECT set_config('app.tenant_id',"
            " coalesce(organisation_id_by_slug($1)::text, ''), true) AS id",
            [slug],
        )
        found = rows[0]["id"] if rows else ""
        if not found:
            yield None
            return
        org_id = OrgId(uuid.UUID(found))
        org_token = _current_org.set(org_id)
        conn_token = _current_conn.set(conn)
        try:
            yield org_id
        finally:
            _current_conn.reset(conn_token)
            _current_org.reset(org_token)


def current_org() -> OrgId:
    """The organisation of the open tenant transaction; raises when there is none."""
    org = _current_org.get()
    if org is None:
        raise NoTenantTransactionError("no tenant transaction is open")
    return org


def current_org_or_none() -> OrgId | None:
    """The organisation of the open tenant transaction, or None outside one."""
    return _current_org.get()


def connection() -> BaseDBAsyncClient:
    """The connection of the open tenant transaction, for hand-written SQL."""
    conn = _current_conn.get()
    if conn is None:
        raise NoTenantTransactionError("no tenant transaction is open")
    return conn


async def fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run hand-written SQL in the tenant transaction; rows as dicts. (Through tortoise's
    ``execute_query_dict``: its ``execute_query`` returns no rows for a statement starting
    with INSERT, UPDATE or DELETE, whatever its RETURNING says.)"""
    return await connection().execute_query_dict(sql, list(args))


async def fetch_one(sql: str, *args: Any) -> dict[str, Any] | None:
    rows = await fetch(sql, *args)
    return rows[0] if rows else None
