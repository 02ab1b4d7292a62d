"""Helpers of the data-access tests: requests and decisions made as members (as the
console makes them), product credentials with access:check, and the checks themselves."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tenants import db
from tenants.access import service
from tenants.access.models import DataCategory
from tenants.actors import Actor, ActorKind
from tenants.permissions import Permission, permissions_of
from tests.conftest import OrgHandle, make_member

JUSTIFICATION = "Investigating a reported data leak, case ticket attached."


def as_member(member: dict[str, Any]) -> Actor:
    return Actor(ActorKind.MEMBER, member["id"], f"{member['name']} <{member['email']}>")


def roles_of(member: dict[str, Any]) -> frozenset[Permission]:
    return permissions_of(member["roles"])


async def request_as(
    org: OrgHandle, admin: dict[str, Any], member: dict[str, Any] | None = None, **fields: Any
) -> uuid.UUID:
    """A request made by ``admin`` themselves (as in the console); returns the grant id."""
    new = {
        "member_id": uuid.UUID(member["id"]) if member else None,
        "unit_id": None,
        "categories": [DataCategory.INTERACTION],
        "product_ids": None,
        "justification": JUSTIFICATION,
        "duration_hours": 24,
        **fields,
    }
    async with db.tenant_transaction(org.id):
        grant = await service.request_access(
            service.NewGrant(**new), permissions=roles_of(admin), actor=as_member(admin)
        )
    return grant.id


async def decide_as(
    org: OrgHandle, officer: dict[str, Any], grant_id: uuid.UUID, approve: bool = True
) -> None:
    async with db.tenant_transaction(org.id):
        if approve:
            await service.approve_access(
                grant_id, "ok", permissions=roles_of(officer), actor=as_member(officer)
            )
        else:
            await service.deny_access(
                grant_id, "not justified", permissions=roles_of(officer), actor=as_member(officer)
            )


async def product_bearer(org: OrgHandle, product: dict[str, Any]) -> dict[str, str]:
    """An access token of a client of ``product`` holding access:check."""
    registered = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "viewer", "scopes": ["access:check"]}
    )
    assert registered.status_code == 201, registered.text
    issued = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered.json()["client_id"], registered.json()["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def check(client: httpx.AsyncClient, bearer: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/v1/access/check", json=body, headers=bearer)


async def make_people(org: OrgHandle) -> dict[str, dict[str, Any]]:
    """An admin, two privacy officers and a member (the ``people`` fixture of the tests)."""
    return {
        "admin": await make_member(org, name="Ada Admin", roles=["admin"]),
        "officer": await make_member(org, name="Olga Officer", roles=["privacy_officer"]),
        "other_officer": await make_member(org, name="Otto Officer", roles=["privacy_officer"]),
        "member": await make_member(org, name="Mia Member"),
    }


async def log_rows(conn: asyncpg.Connection, org: OrgHandle) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT allowed, reason, grant_id, member_id, category FROM access_log "
        "WHERE tenant_id = $1 ORDER BY id",
        org.id,
    )
