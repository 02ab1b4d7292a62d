"""Helpers for privacy request tests: sending requests through the API, running jobs,
reading recorded emails, product client tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle, make_member


async def officer(org: OrgHandle, name: str = "Olivia Officer") -> dict[str, Any]:
    return await make_member(org, name=name, roles=["privacy_officer"])


async def submit(
    org: OrgHandle, member: dict[str, Any], kind: str = "access",
    message: str = "Please send me a copy of my data.", **extra: Any,
) -> dict[str, Any]:
    response = await org.post(
        "/v1/privacy-requests",
        {"member_id": member["id"], "kind": kind, "message": message, **extra},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def run_jobs(ahead: timedelta = timedelta(0)) -> int:
    return await Worker(name="privacy-test").run_until_idle(ahead=ahead)


async def mails(conn: asyncpg.Connection, org: OrgHandle,
                template: str | None = None) -> list[dict[str, Any]]:
    """The emails recorded for ``org`` (as the owner sees them), oldest first."""
    rows = await conn.fetch(
        "SELECT template, recipients, subject, text, html, status, key FROM mail_messages "
        "WHERE tenant_id = $1 AND ($2::text IS NULL OR template = $2) ORDER BY created_at, key",
        org.id, template,
    )
    import json

    return [{**dict(r), "recipients": json.loads(r["recipients"])} for r in rows]


async def product_client_headers(
    org: OrgHandle, product: dict[str, Any], scopes: tuple[str, ...] = ("privacy_requests:submit",)
) -> dict[str, str]:
    """A bearer token of the product's own client (client credentials)."""
    registered = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "privacy", "scopes": list(scopes)}
    )
    assert registered.status_code == 201, registered.text
    issued = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered.json()["client_id"], registered.json()["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def fresh() -> str:
    return uuid.uuid4().hex[:8]
