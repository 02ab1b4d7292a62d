"""The access check products call: each reason for a refusal, every check logged once,
bad input recorded nowhere, concurrent checks sharing statements, and the emails that
follow decisions and accesses."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from app.v1.access_checks import CheckOut
from tenants import db
from tenants.access import service
from tenants.access.models import DataCategory
from tenants.permissions import Permission
from tests.conftest import OrgHandle, make_product
from tests.support.access import (
    as_member,
    check,
    decide_as,
    log_rows,
    make_people,
    product_bearer,
    request_as,
    roles_of,
)


@pytest.fixture
async def people(org: OrgHandle) -> dict[str, dict[str, Any]]:
    return await make_people(org)


# --- the access check and its log ------------------------------------------------------------


async def test_checks_answer_with_the_reason_and_each_is_logged_once(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    admin, member = people["admin"], people["member"]
    product, other_product = await make_product(org), await make_product(org)
    bearer = await product_bearer(org, product)
    ask = {"admin_id": admin["id"], "member_id": member["id"], "product_id": product["id"]}

    none = await check(org.client, bearer, **ask, category="interaction")
    assert none.status_code == 200, none.text
    assert none.json()["allowed"] is False and none.json()["reason"] == "no_grant"

    grant_id = await request_as(
        org,
        admin,
        member,
        categories=[DataCategory.INTERACTION],
        product_ids=[uuid.UUID(product["id"])],
    )
    pending = await check(org.client, bearer, **ask, category="interaction")
    assert pending.json()["reason"] == "pending_approval"
    assert pending.json()["grant_id"] == str(grant_id)

    await decide_as(org, people["officer"], grant_id)
    allowed = (await check(org.client, bearer, **ask, category="interaction")).json()
    assert allowed["allowed"] is True and allowed["reason"] is None
    assert allowed["grant_id"] == str(grant_id)
    by_email = await check(
        org.client,
        bearer,
        admin_email=admin["email"].upper(),
        member_id=member["id"],
        product_id=product["id"],
        category="interaction",
    )
    assert by_email.json()["allowed"] is True and by_email.json()["admin_id"] == admin["id"]
    files = await check(org.client, bearer, **ask, category="files")
    assert files.json()["reason"] == "category_not_granted"
    # A product's own client asks for itself only: its checks are logged as its reads,
    # which members see (403 on both paths, nothing logged).
    for _ in range(2):  # the first verifies the client, the second takes the fast path
        foreign = await check(
            org.client, bearer, **{**ask, "product_id": other_product["id"]}, category="interaction"
        )
        assert foreign.status_code == 403, foreign.text
        assert foreign.json()["errors"] == [
            {"field": "product_id", "reason": "is not this client's product"}
        ]
    # A gateway's API token may ask for any product of the organisation.
    gateway = {"Authorization": f"Bearer {await org.token_with(Permission.ACCESS_CHECK)}"}
    elsewhere = await check(
        org.client, gateway, **{**ask, "product_id": other_product["id"]}, category="interaction"
    )
    assert elsewhere.json()["reason"] == "product_not_granted"

    rows = await log_rows(owner_conn, org)
    assert [(r["allowed"], r["reason"]) for r in rows] == [
        (False, "no_grant"),
        (False, "pending_approval"),
        (True, None),
        (True, None),
        (False, "category_not_granted"),
        (False, "product_not_granted"),
    ]
    assert {r["member_id"] for r in rows} == {uuid.UUID(member["id"])}
    listed = (await org.get("/v1/access/log", params={"member_id": member["id"]})).json()
    assert [i["id"] for i in listed["items"]] == sorted(
        (i["id"] for i in listed["items"]), reverse=True
    )
    assert listed["items"][0]["product_name"] == "Product"
    allowed_only = (await org.get("/v1/access/log", params={"allowed": "true"})).json()
    assert len(allowed_only["items"]) == 2


async def test_expired_and_revoked_grants_deny(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    admin, member = people["admin"], people["member"]
    product = await make_product(org)
    bearer = await product_bearer(org, product)
    ask = {
        "admin_id": admin["id"],
        "member_id": member["id"],
        "product_id": product["id"],
        "category": "interaction",
    }
    grant_id = await request_as(org, admin, member)
    await decide_as(org, people["officer"], grant_id)
    assert (await check(org.client, bearer, **ask)).json()["allowed"] is True

    # Time passes: the grant's end is now behind us. No job runs; it simply denies.
    await owner_conn.execute(
        "UPDATE access_grants SET starts_at = now() - interval '2 days', "
        "ends_at = now() - interval '1 second' WHERE id = $1",
        grant_id,
    )
    expired = (await check(org.client, bearer, **ask)).json()
    assert (expired["allowed"], expired["reason"]) == (False, "expired")
    shown = (await org.get(f"/v1/access/grants/{grant_id}")).json()
    assert shown["state"] == "expired" and shown["allowed_actions"] == []
    revoke_expired = await org.post(f"/v1/access/grants/{grant_id}/revoke", {})
    assert revoke_expired.status_code == 409

    second = await request_as(org, admin, member)
    await decide_as(org, people["other_officer"], second)
    assert (await check(org.client, bearer, **ask)).json()["allowed"] is True
    async with db.tenant_transaction(org.id):
        await service.revoke_access(
            second, "case closed", permissions=roles_of(admin), actor=as_member(admin)
        )
    # With an expired and a revoked grant, the answer names the one that ranks first.
    revoked = (await check(org.client, bearer, **ask)).json()
    assert (revoked["allowed"], revoked["reason"]) == (False, "expired")
    states = (await org.get("/v1/access/grants", params={"state": "revoked"})).json()["items"]
    assert [g["id"] for g in states] == [str(second)]
    assert [r["allowed"] for r in await log_rows(owner_conn, org)] == [True, False, True, False]


async def test_a_revoked_grant_alone_denies_with_revoked(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    product = await make_product(org)
    bearer = await product_bearer(org, product)
    grant_id = await request_as(org, people["admin"], people["member"])
    await decide_as(org, people["officer"], grant_id)
    revoked = await org.post(f"/v1/access/grants/{grant_id}/revoke", {"reason": "done"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    answer = await check(
        org.client,
        bearer,
        admin_id=people["admin"]["id"],
        member_id=people["member"]["id"],
        product_id=product["id"],
        category="interaction",
    )
    assert (answer.json()["allowed"], answer.json()["reason"]) == (False, "revoked")


async def test_checks_naming_unknown_people_or_products_are_refused_and_record_nothing(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    product = await make_product(org)
    bearer = await product_bearer(org, product)
    good = {
        "admin_id": people["admin"]["id"],
        "member_id": people["member"]["id"],
        "product_id": product["id"],
        "category": "files",
    }
    gateway = {"Authorization": f"Bearer {await org.token_with(Permission.ACCESS_CHECK)}"}
    for body, field, asking in [
        ({**good, "admin_id": str(uuid.uuid4())}, "admin_id", bearer),
        ({**good, "member_id": str(uuid.uuid4())}, "member_id", bearer),
        # (A product's own client naming another product is refused before: 403.)
        ({**good, "product_id": str(uuid.uuid4())}, "product_id", gateway),
        ({**good, "category": "thoughts"}, "category", bearer),
    ]:
        for _ in range(2):  # the first may take the normal path, the second the fast one
            response = await check(org.client, asking, **body)
            assert response.status_code == 422, response.text
            assert field in {e["field"] for e in response.json()["errors"]}, response.text
    both = await check(org.client, bearer, **good, admin_email=people["admin"]["email"])
    assert both.status_code == 422
    assert {e["field"] for e in both.json()["errors"]} == {"admin_id", "admin_email"}
    assert await log_rows(owner_conn, org) == []


async def test_a_token_without_access_check_cannot_check(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    product = await make_product(org)
    headers = {"Authorization": f"Bearer {await org.token_with(Permission.ACCESS_READ)}"}
    response = await check(
        org.client,
        headers,
        admin_id=people["admin"]["id"],
        member_id=people["member"]["id"],
        product_id=product["id"],
        category="files",
    )
    assert response.status_code == 403
    assert response.json()["required_permission"] == "access:check"
    assert await log_rows(owner_conn, org) == []


async def granted(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> tuple[dict[str, str], dict[str, str], uuid.UUID]:
    """A product's bearer token, the question of the admin reading the member's data in it
    (without the category), and the approved grant that allows it."""
    product = await make_product(org)
    bearer = await product_bearer(org, product)
    grant_id = await request_as(org, people["admin"], people["member"])
    await decide_as(org, people["officer"], grant_id)
    ask = {
        "admin_id": people["admin"]["id"],
        "member_id": people["member"]["id"],
        "product_id": product["id"],
    }
    return bearer, ask, grant_id


async def test_concurrent_checks_share_statements_and_each_is_answered_and_logged_on_its_own(
    app: Any,
    org: OrgHandle,
    people: dict[str, dict[str, Any]],
    owner_conn: asyncpg.Connection,
) -> None:
    bearer, ask, _ = await granted(org, people)
    # The first check verifies the token (normal path); the rest take the fast path.
    assert (await check(org.client, bearer, **ask, category="interaction")).json()["allowed"]
    batcher = app.state.access_checks if hasattr(app.state, "access_checks") else None
    before = (batcher.statements, batcher.checks) if batcher else (0, 0)

    bodies = [{**ask, "category": c} for c in ("interaction", "files") * 15]
    bodies += [{**ask, "member_id": str(uuid.uuid4()), "category": "files"}] * 5
    answers = await asyncio.gather(*(check(org.client, bearer, **b) for b in bodies))

    assert [a.status_code for a in answers] == [200] * 30 + [422] * 5
    assert [a.json()["allowed"] for a in answers[:30]] == [True, False] * 15
    assert {a.json()["reason"] for a in answers[1:30:2]} == {"category_not_granted"}
    assert len({a.json()["log_id"] for a in answers[:30]}) == 30
    rows = await log_rows(owner_conn, org)
    assert len(rows) == 31 and sum(r["allowed"] for r in rows) == 16
    batcher = app.state.access_checks
    statements, checks = batcher.statements - before[0], batcher.checks - before[1]
    assert checks == 35 and statements < checks, (statements, checks)


async def test_both_paths_answer_exactly_as_check_out_documents(
    app: Any, org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    """The first check of a token takes the normal path, the next ones the fast path; both
    write their answer without the model (``_answered``): each must be what ``CheckOut``
    says, field for field and type for type, allowed or not."""
    bearer, ask, grant_id = await granted(org, people)
    normal = await check(org.client, bearer, **ask, category="interaction")
    fast = [await check(org.client, bearer, **ask, category=c) for c in ("interaction", "files")]
    denied = await check(
        org.client, bearer, **{**ask, "admin_id": people["officer"]["id"]}, category="files"
    )

    for response in (normal, *fast, denied):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body == json.loads(CheckOut.model_validate(body).model_dump_json())
        assert list(body) == ["allowed", "reason", "grant_id", "admin_id", "log_id"]
    assert normal.json() == {**fast[0].json(), "log_id": normal.json()["log_id"]}
    assert normal.json()["grant_id"] == str(grant_id) and normal.json()["reason"] is None
    assert fast[1].json()["reason"] == "category_not_granted"
    assert denied.json() == {
        "allowed": False,
        "reason": "no_grant",
        "grant_id": None,
        "admin_id": people["officer"]["id"],
        "log_id": denied.json()["log_id"],
    }
    assert app.state.access_checks.checks >= 3  # the fast path answered the later ones


async def test_the_batch_statement_keeps_one_plan_whatever_its_arrays_hold(
    owner_conn: asyncpg.Connection,
) -> None:
    """Each call of ``check_data_access_batch`` planned its query anew (a custom plan sees
    how many checks its arrays hold, so the generic plan never looked cheaper): most of
    the server's CPU per check. The function asks for the generic plan itself."""
    config = await owner_conn.fetchval(
        "SELECT proconfig FROM pg_proc WHERE proname = 'check_data_access_batch'"
    )
    assert "plan_cache_mode=force_generic_plan" in config


async def mails(conn: asyncpg.Connection, org: OrgHandle) -> list[tuple[str, list[str], str]]:
    rows = await conn.fetch(
        "SELECT template, recipients, subject FROM mail_messages WHERE tenant_id = $1 "
        "ORDER BY created_at",
        org.id,
    )
    return [(r["template"], json.loads(r["recipients"]), r["subject"]) for r in rows]


async def test_decisions_are_mailed_to_the_admin_and_accesses_to_the_member_once_a_day(
    app: Any,
    org: OrgHandle,
    people: dict[str, dict[str, Any]],
    owner_conn: asyncpg.Connection,
) -> None:
    admin, member = people["admin"], people["member"]
    product = await make_product(org, name="Mailbox")
    bearer = await product_bearer(org, product)
    denied = await request_as(org, admin, member)
    await decide_as(org, people["officer"], denied, approve=False)
    grant_id = await request_as(org, admin, member, categories=[DataCategory.FILES])
    await decide_as(org, people["other_officer"], grant_id)
    ask = {"admin_id": admin["id"], "member_id": member["id"], "product_id": product["id"]}
    for _ in range(3):
        assert (await check(org.client, bearer, **ask, category="files")).json()["allowed"]
    await check(org.client, bearer, **ask, category="interaction")  # refused: no email
    await app.state.access_notices.settled()

    sent = await mails(owner_conn, org)
    assert sent == [
        ("grant_denied", [admin["email"]], "Your access to Mia Member's data was denied"),
        ("grant_approved", [admin["email"]], "Your access to Mia Member's data was approved"),
        ("access_logged", [member["email"]], f"{org.slug.title()} accessed your data"),
    ]

    assert (
        await org.patch("/v1/access/policy", {"notify_member_per_access": False})
    ).status_code == 200
    other = await make_product(org)
    bearer = await product_bearer(org, other)
    grant_all = await request_as(org, admin, member, categories=[DataCategory.FILES])
    await decide_as(org, people["officer"], grant_all)
    await check(org.client, bearer, **{**ask, "product_id": other["id"]}, category="files")
    await app.state.access_notices.settled()
    assert [m[0] for m in await mails(owner_conn, org)][3:] == ["grant_approved"]
