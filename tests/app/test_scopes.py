"""Who may call what: token scopes (403) and credentials that are missing or no good (401).

Every operation's required permission is read from the served OpenAPI document
(``x-permission``), so the checks follow the routes as they are declared.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tenants import db
from tenants.permissions import Permission
from tenants.tokens import service as tokens
from tests.conftest import ACTOR, OrgHandle, row_counts
from tests.support.api_schema import (
    JSON,
    World,
    assert_problem,
    build_world,
    operations,
    send,
    served_document,
)

pytestmark = pytest.mark.usefixtures("client")


@pytest.fixture
async def document(org: OrgHandle) -> JSON:
    return await served_document(org.client)


@pytest.fixture
async def world(org: OrgHandle) -> World:
    return await build_world(org)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthenticated(response: object) -> JSON:
    problem = assert_problem(response, 401)  # type: ignore[arg-type]
    assert problem["type"] == "/problems/unauthenticated", problem
    challenge = response.headers["www-authenticate"]  # type: ignore[attr-defined]
    # RFC 6750 §3.1: a token that was sent and refused is named invalid_token; no token
    # at all gets the bare challenge.
    scheme, _, value = response.request.headers.get("authorization", "").partition(" ")  # type: ignore[attr-defined]
    if scheme.lower() == "bearer" and value.strip():
        assert challenge.startswith('Bearer realm="tenantry", error="invalid_token", error_description="'), challenge
    else:
        assert challenge == 'Bearer realm="tenantry"', challenge
    return problem


async def test_every_operation_requires_a_permission(document: JSON) -> None:
    ops = operations(document)
    assert len(ops) >= 30
    known = {p.value for p in Permission}
    for op in ops:
        assert op.permission in known, f"{op} declares no permission: every /v1 route must"
        assert op.spec["security"] == [{"bearer": [op.permission]}], op


async def test_a_members_read_token_lists_members_but_is_refused_every_write_naming_the_permission(
    org: OrgHandle, document: JSON, world: World, owner_conn: asyncpg.Connection
) -> None:
    headers = bearer(await org.token_with(Permission.MEMBERS_READ))
    listed = await org.client.get("/v1/members", headers=headers)
    assert listed.status_code == 200, listed.text
    listed_ids = {m["id"] for m in listed.json()["items"]}
    assert world.member["id"] in listed_ids and listed_ids <= world.ids
    assert (
        await org.client.get(f"/v1/members/{world.member['id']}", headers=headers)
    ).status_code == 200

    before = await row_counts(owner_conn)
    writes = [op for op in operations(document) if op.is_write]
    assert {op.path for op in writes} >= {
        "/v1/members",
        "/v1/members/{id}",
        "/v1/members/{id}/transitions",
    }
    for op in writes:
        response = await send(
            org, op, world.url(op), world.body(op), headers=headers, params=world.params(op)
        )
        if op.permission == Permission.MEMBERS_READ:
            # A POST that only reads (a move's preview): answered, and nothing is written.
            assert response.status_code == 200, (op, response.text)
            continue
        problem = assert_problem(response, 403)
        assert problem["type"] == "/problems/permission_denied"
        assert problem["required_permission"] == op.permission, (op, problem)
        assert str(op.permission) in problem["detail"], (op, problem)
        if op.body_schema is not None:
            # An empty body too is refused for the permission, not described: a caller
            # without it learns nothing of what the body should hold.
            empty = await send(org, op, world.url(op), {}, headers=headers, params=world.params(op))
            assert assert_problem(empty, 403)["required_permission"] == op.permission, op
    assert await row_counts(owner_conn) == before


async def test_each_permission_opens_its_own_operations_and_no_other(
    org: OrgHandle, document: JSON, world: World, owner_conn: asyncpg.Connection
) -> None:
    ops = operations(document)
    for permission in Permission:
        headers = bearer(await org.token_with(permission))
        before = await row_counts(owner_conn)  # issuing the token is a write of its own
        for op in ops:
            if op.permission == permission.value:
                if op.method == "GET":  # writes that are allowed are exercised in the other modules
                    response = await send(
                        org, op, world.url(op), None, headers=headers, params=world.params(op)
                    )
                    assert response.status_code == 200, (permission, op, response.text)
                continue
            response = await send(
                org, op, world.url(op), world.body(op), headers=headers, params=world.params(op)
            )
            problem = assert_problem(response, 403)
            assert problem["required_permission"] == op.permission, (permission, op)
        assert await row_counts(owner_conn) == before, permission


# --- 401: credentials that are missing, malformed, expired, revoked or for another organisation --


def malformed_authorizations(token: str) -> list[str | None]:
    _, org_hex, token_hex, secret = token.split("_")
    return [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNzd29yZA==",
        f"Token {token}",
        token,
        f"Bearer {token.upper()}",
        "Bearer tnt_",
        "Bearer tnt_x_y_z",
        f"Bearer tnt_{org_hex}_{token_hex}",
        f"Bearer tnt_{org_hex}_{token_hex}_short",
        f"Bearer tnt_{org_hex}_{token_hex}_{secret}_extra",
        f"Bearer xyz_{org_hex}_{token_hex}_{secret}",
        f"Bearer tnt_{org_hex[:-1]}g_{token_hex}_{secret}",
        f"Bearer tnt_{org_hex}_{token_hex}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",
        f"Bearer tnt_{org_hex}_{uuid.uuid4().hex}_{secret}",
        f"Bearer tnt_{uuid.uuid4().hex}_{token_hex}_{secret}",
        f"Bearer {token} {token}",
    ]


async def test_missing_or_malformed_credentials_get_401_with_www_authenticate_on_every_route(
    org: OrgHandle, document: JSON, world: World, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    for op in operations(document):
        for value in malformed_authorizations(org.token):
            headers = {} if value is None else {"Authorization": value}
            response = await send(
                org, op, world.url(op), world.body(op), headers=headers, params=world.params(op)
            )
            assert_unauthenticated(response)
    assert await row_counts(owner_conn) == before


async def test_the_bearer_scheme_name_is_case_insensitive(org: OrgHandle) -> None:
    for scheme in ("bearer", "BEARER", "BeArEr"):
        response = await org.client.get(
            "/v1/organisation", headers={"Authorization": f"{scheme} {org.token}"}
        )
        assert response.status_code == 200, (scheme, response.text)


async def test_an_expired_token_gets_401(
    org: OrgHandle, world: World, owner_conn: asyncpg.Connection
) -> None:
    async with db.tenant_transaction(org.id):
        row, token = await tokens.create_token(
            "short-lived",
            [p.value for p in Permission],
            expires_in=timedelta(seconds=2),
            actor=ACTOR,
        )
    assert row.expires_at is not None
    # Used while valid (so any cache of verified credentials has seen it), then past its expiry.
    assert (await org.client.get("/v1/members", headers=bearer(token))).status_code == 200
    await asyncio.sleep(max(0.0, (row.expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    before = await row_counts(owner_conn)
    assert_unauthenticated(await org.client.get("/v1/members", headers=bearer(token)))
    body = {"email": f"late@{org.slug}.example", "name": "Late", "unit_id": str(org.root_unit_id)}
    assert_unauthenticated(await org.client.post("/v1/members", json=body, headers=bearer(token)))
    assert_unauthenticated(
        await org.client.delete(f"/v1/groups/{world.group['id']}", headers=bearer(token))
    )
    assert await row_counts(owner_conn) == before


async def test_a_revoked_token_gets_401(
    org: OrgHandle, world: World, owner_conn: asyncpg.Connection
) -> None:
    token = await org.token_with(*Permission)
    assert (await org.client.get("/v1/members", headers=bearer(token))).status_code == 200
    async with db.tenant_transaction(org.id):
        await tokens.revoke_token(uuid.UUID(hex=token.split("_")[2]), actor=ACTOR)
    before = await row_counts(owner_conn)
    assert_unauthenticated(await org.client.get("/v1/members", headers=bearer(token)))
    assert_unauthenticated(
        await org.client.patch(
            f"/v1/members/{world.member['id']}", json={"name": "Nope"}, headers=bearer(token)
        )
    )
    assert await row_counts(owner_conn) == before
    assert (await org.get(f"/v1/members/{world.member['id']}")).json()["name"] == world.member[
        "name"
    ]


async def test_a_token_whose_organisation_part_names_another_organisation_gets_401(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    theirs = await build_world(bravo)
    prefix, _, token_hex, secret = alpha.token.split("_")
    _, _, bravo_token_hex, bravo_secret = bravo.token.split("_")
    forged = [
        f"{prefix}_{bravo.id.hex}_{token_hex}_{secret}",  # alpha's token, claiming bravo
        f"{prefix}_{alpha.id.hex}_{bravo_token_hex}_{bravo_secret}",  # bravo's token, claiming alpha
    ]
    before = await row_counts(owner_conn)
    for token in forged:
        assert_unauthenticated(await alpha.client.get("/v1/members", headers=bearer(token)))
        assert_unauthenticated(
            await alpha.client.get(f"/v1/members/{theirs.member['id']}", headers=bearer(token))
        )
        assert_unauthenticated(
            await alpha.client.patch(
                f"/v1/members/{theirs.member['id']}", json={"name": "Forged"}, headers=bearer(token)
            )
        )
    assert await row_counts(owner_conn) == before
    assert (await bravo.get(f"/v1/members/{theirs.member['id']}")).json()["name"] == theirs.member[
        "name"
    ]


async def test_refused_tokens_all_get_the_same_answer(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    """Unknown, wrong-secret, expired, revoked and forged tokens are told apart by nobody."""
    alpha, bravo = two_orgs
    prefix, org_hex, token_hex, secret = alpha.token.split("_")
    expired = await alpha.token_with(Permission.MEMBERS_READ)
    await owner_conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(hex=expired.split("_")[2]),
    )
    revoked = await alpha.token_with(Permission.MEMBERS_READ)
    async with db.tenant_transaction(alpha.id):
        await tokens.revoke_token(uuid.UUID(hex=revoked.split("_")[2]), actor=ACTOR)
    candidates = [
        f"{prefix}_{org_hex}_{uuid.uuid4().hex}_{secret}",
        f"{prefix}_{org_hex}_{token_hex}_{'x' * len(secret)}",
        expired,
        revoked,
        f"{prefix}_{bravo.id.hex}_{token_hex}_{secret}",
    ]
    answers = set()
    for token in candidates:
        problem = assert_unauthenticated(
            await alpha.client.get("/v1/members", headers=bearer(token))
        )
        answers.add((problem["title"], problem["detail"]))
    assert len(answers) == 1, answers
