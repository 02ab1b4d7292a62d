"""Data access over the API: requests, four-eyes decisions, emergency access, unit
grants, the duration cap, lists, and isolation between organisations."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.access import service
from tenants.access.models import DataCategory
from tenants.errors import IllegalTransitionError, InvalidInputError, PermissionDeniedError
from tests.conftest import OrgHandle, make_member, make_product, make_unit
from tests.support.access import (
    JUSTIFICATION,
    as_member,
    check,
    decide_as,
    make_people,
    product_bearer,
    request_as,
    roles_of,
)


@pytest.fixture
async def people(org: OrgHandle) -> dict[str, dict[str, Any]]:
    return await make_people(org)


# --- requests and four eyes ------------------------------------------------------------------


async def test_the_requester_cannot_approve_their_own_request_and_another_officer_can(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    both = await make_member(org, name="Both Roles", roles=["admin", "privacy_officer"])
    grant_id = await request_as(org, both, people["member"])

    with pytest.raises(PermissionDeniedError, match="another privacy officer"):
        await decide_as(org, both, grant_id)
    with pytest.raises(PermissionDeniedError, match="only a privacy officer"):
        await decide_as(org, people["admin"], grant_id)
    shown = (await org.get(f"/v1/access/grants/{grant_id}")).json()
    assert shown["state"] == "requested" and shown["decided_at"] is None

    await decide_as(org, people["officer"], grant_id)
    shown = (await org.get(f"/v1/access/grants/{grant_id}")).json()
    assert shown["state"] == "active"
    assert shown["decided_by_id"] == people["officer"]["id"]
    ends = datetime.fromisoformat(shown["ends_at"]) - datetime.fromisoformat(shown["starts_at"])
    assert ends == timedelta(hours=24)


async def token_of(org: OrgHandle, creator: dict[str, Any], *scopes: str) -> str:
    """A token ``creator`` made (given whatever scopes: the rules of giving are not what
    these tests are about)."""
    async with db.tenant_transaction(org.id):
        from tenants.members.roles import ANY_ASSIGNER
        from tenants.tokens import service as tokens

        _, text = await tokens.create_token(
            "mine", list(scopes), expires_in=None, actor=as_member(creator), issuer=ANY_ASSIGNER
        )
    return text


async def test_a_token_created_by_the_requester_cannot_approve_for_them(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    both = await make_member(org, name="Both Roles", roles=["admin", "privacy_officer"])
    member = await make_member(org, name="Mia Member")
    grant_id = await request_as(org, both, member)
    # A token the requester made acts for the requester (tokens carry their creator).
    text = await token_of(org, both, "access:approve")
    refused = await org.client.post(
        f"/v1/access/grants/{grant_id}/approve",
        json={},
        headers={"Authorization": f"Bearer {text}"},
    )
    assert refused.status_code == 403, refused.text
    assert "another privacy officer" in refused.json()["detail"]
    status = await owner_conn.fetchval("SELECT status FROM access_grants WHERE id = $1", grant_id)
    assert status == "requested"


async def test_a_token_decides_in_its_creators_name_and_only_while_they_are_an_officer(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    """Deciding on access to data is a person's act: a privacy officer's token approves
    as that officer (named as who decided); an owner's token, or an officer's after they
    lost the role, cannot, whatever scopes it carries."""
    owner = await make_member(org, name="Oscar Owner", roles=["owner"])

    async def approve_with(token: str, grant_id: uuid.UUID) -> Any:
        return await org.client.post(
            f"/v1/access/grants/{grant_id}/approve",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )

    first = await request_as(org, people["admin"], people["member"])
    refused = await approve_with(await token_of(org, owner, "access:approve"), first)
    assert refused.status_code == 403, refused.text
    assert "only a privacy officer" in refused.json()["detail"]

    officers = await token_of(org, people["officer"], "access:approve", "access:read")
    approved = await approve_with(officers, first)
    assert approved.status_code == 200, approved.text
    assert approved.json()["decided_by_id"] == people["officer"]["id"]

    second = await request_as(org, people["admin"], people["member"])
    await owner_conn.execute(
        "UPDATE members SET roles = '[\"admin\"]' WHERE id = $1", uuid.UUID(people["officer"]["id"])
    )
    gone = await approve_with(officers, second)
    assert gone.status_code == 403, gone.text
    assert "only a privacy officer" in gone.json()["detail"]
    status = await owner_conn.fetchval("SELECT status FROM access_grants WHERE id = $1", second)
    assert status == "requested"


async def test_a_token_requests_for_a_named_admin_cannot_approve_it_and_a_denial_is_final(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    product = await make_product(org)
    response = await org.post(
        "/v1/access/grants",
        {
            "admin_id": people["admin"]["id"],
            "member_id": people["member"]["id"],
            "categories": ["communications", "files"],
            "product_ids": [product["id"]],
            "justification": JUSTIFICATION,
            "case_reference": "HR-2024-17",
            "duration_hours": 48,
        },
    )
    assert response.status_code == 201, response.text
    grant = response.json()
    assert grant["state"] == "requested" and grant["allowed_actions"] == [
        "approve",
        "deny",
        "revoke",
    ]
    assert grant["categories"] == ["communications", "files"]
    assert grant["all_products"] is False and grant["product_ids"] == [product["id"]]

    # The requesting token was made by no person (the tests' system actor): deciding on
    # access to data is a person's act, so it cannot approve anything, its own request
    # included.
    own = await org.post(f"/v1/access/grants/{grant['id']}/approve", {})
    assert own.status_code == 403, own.text
    assert own.json()["detail"].startswith("only a privacy officer")

    await decide_as(org, people["officer"], uuid.UUID(grant["id"]), approve=False)
    with pytest.raises(IllegalTransitionError, match="the grant is denied"):
        await decide_as(org, people["other_officer"], uuid.UUID(grant["id"]))
    assert (await org.get(f"/v1/access/grants/{grant['id']}")).json()["state"] == "denied"


async def test_a_request_for_someone_without_an_admin_role_is_refused_naming_admin_id(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    response = await org.post(
        "/v1/access/grants",
        {
            "admin_id": people["member"]["id"],
            "member_id": people["admin"]["id"],
            "categories": ["files"],
            "justification": JUSTIFICATION,
            "duration_hours": 1,
        },
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["admin_id"]
    assert await owner_conn.fetchval("SELECT count(*) FROM access_grants") == 0


async def test_the_duration_is_capped_by_the_organisations_policy(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    body = {
        "admin_id": people["admin"]["id"],
        "member_id": people["member"]["id"],
        "categories": ["interaction"],
        "justification": JUSTIFICATION,
        "duration_hours": 169,
    }
    refused = await org.post("/v1/access/grants", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "duration_hours",
            "reason": "the organisation's policy allows access for at most 168 hours",
        }
    ]
    assert await owner_conn.fetchval("SELECT count(*) FROM access_grants") == 0

    changed = await org.patch("/v1/access/policy", {"max_duration_hours": 240})
    assert changed.status_code == 200 and changed.json()["max_duration_hours"] == 240
    assert (await org.post("/v1/access/grants", body)).status_code == 201


async def test_a_policy_with_emergency_access_longer_than_any_access_is_refused(
    org: OrgHandle,
) -> None:
    response = await org.patch("/v1/access/policy", {"max_duration_hours": 12})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "emergency_max_hours"
    assert (await org.get("/v1/access/policy")).json()["max_duration_hours"] == 168


async def test_unit_grants_are_for_diagnostic_data_only_and_cover_the_units_below(
    org: OrgHandle, people: dict[str, dict[str, Any]], owner_conn: asyncpg.Connection
) -> None:
    unit = await make_unit(org, "Lab")
    below = await make_unit(org, "Bench", parent=uuid.UUID(unit["id"]))
    inside = await make_member(org, unit=below["id"])
    outside = await make_member(org)
    product = await make_product(org)
    body = {
        "admin_id": people["admin"]["id"],
        "unit_id": unit["id"],
        "categories": ["diagnostic", "files"],
        "justification": JUSTIFICATION,
        "duration_hours": 4,
    }
    refused = await org.post("/v1/access/grants", body)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "categories", "reason": "a unit's data may be opened for diagnostic data only"}
    ]
    both = await org.post(
        "/v1/access/grants", {**body, "member_id": inside["id"], "categories": ["diagnostic"]}
    )
    assert both.status_code == 422
    assert {e["field"] for e in both.json()["errors"]} == {"member_id", "unit_id"}
    assert await owner_conn.fetchval("SELECT count(*) FROM access_grants") == 0

    created = await org.post("/v1/access/grants", {**body, "categories": ["diagnostic"]})
    assert created.status_code == 201, created.text
    await decide_as(org, people["officer"], uuid.UUID(created.json()["id"]))

    bearer = await product_bearer(org, product)
    ask = {"admin_id": people["admin"]["id"], "product_id": product["id"]}
    yes = await check(org.client, bearer, **ask, member_id=inside["id"], category="diagnostic")
    assert yes.json()["allowed"] is True, yes.text
    files = await check(org.client, bearer, **ask, member_id=inside["id"], category="files")
    assert files.json()["reason"] == "category_not_granted"
    elsewhere = await check(
        org.client, bearer, **ask, member_id=outside["id"], category="diagnostic"
    )
    assert elsewhere.json() == {**elsewhere.json(), "allowed": False, "reason": "no_grant"}


# --- emergency access -------------------------------------------------------------------------


async def test_emergency_access_starts_at_once_and_is_flagged_until_reviewed(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    admin = people["admin"]
    body = {
        "member_id": people["member"]["id"],
        "categories": ["communications"],
        "justification": JUSTIFICATION,
        "duration_hours": 4,
        "emergency": True,
    }
    with pytest.raises(InvalidInputError, match="cannot be made"):
        await request_as(org, admin, people["member"], emergency=True, duration_hours=4)
    assert (await org.patch("/v1/access/policy", {"emergency_allowed": True})).status_code == 200
    too_long = await org.post(
        "/v1/access/grants", {**body, "admin_id": admin["id"], "duration_hours": 25}
    )
    assert too_long.json()["errors"][0]["reason"].endswith("emergency access for at most 24 hours")

    grant_id = await request_as(
        org,
        admin,
        people["member"],
        emergency=True,
        duration_hours=4,
        categories=[DataCategory.COMMUNICATIONS],
    )
    shown = (await org.get(f"/v1/access/grants/{grant_id}")).json()
    assert shown["state"] == "active" and shown["emergency"] and shown["review_required"]
    flagged = (await org.get("/v1/access/grants", params={"review_required": "true"})).json()
    assert [g["id"] for g in flagged["items"]] == [str(grant_id)]

    with pytest.raises(PermissionDeniedError):
        async with db.tenant_transaction(org.id):
            await service.review_access(
                grant_id, "fine", permissions=roles_of(admin), actor=as_member(admin)
            )
    async with db.tenant_transaction(org.id):
        reviewed = await service.review_access(
            grant_id,
            "The outage justified it.",
            permissions=roles_of(people["officer"]),
            actor=as_member(people["officer"]),
        )
    assert reviewed.review_required is False and reviewed.reviewed_by_id == uuid.UUID(
        people["officer"]["id"]
    )
    twice = await org.client.post(
        f"/v1/access/grants/{grant_id}/review",
        json={"note": "again"},
        headers={
            "Authorization": "Bearer "
            + await token_of(org, people["other_officer"], "access:approve", "access:read")
        },
    )
    assert twice.status_code == 409, twice.text


# --- lists and isolation --------------------------------------------------------------------


async def test_grant_lists_filter_by_state_member_and_requester_and_paginate(
    org: OrgHandle, people: dict[str, dict[str, Any]]
) -> None:
    second_admin = await make_member(org, roles=["admin"])
    ids = [await request_as(org, people["admin"], people["member"]) for _ in range(3)]
    ids.append(await request_as(org, second_admin, people["officer"]))
    await decide_as(org, people["officer"], ids[0])

    by_admin = (await org.get("/v1/access/grants", params={"admin_id": second_admin["id"]})).json()
    assert [g["id"] for g in by_admin["items"]] == [str(ids[3])]
    active = (await org.get("/v1/access/grants", params={"state": "active"})).json()
    assert [g["id"] for g in active["items"]] == [str(ids[0])]
    about = (
        await org.get("/v1/access/grants", params={"member_id": people["member"]["id"]})
    ).json()
    assert len(about["items"]) == 3

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = (await org.get("/v1/access/grants", params=params)).json()
        seen += [g["id"] for g in page["items"]]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [str(i) for i in reversed(ids)]


async def test_another_organisation_can_neither_see_nor_check_the_grants(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    admin = await make_member(bravo, roles=["admin"])
    officer = await make_member(bravo, roles=["privacy_officer"])
    member = await make_member(bravo)
    product = await make_product(bravo)
    grant_id = await request_as(bravo, admin, member)
    await decide_as(bravo, officer, grant_id)

    assert (await alpha.get(f"/v1/access/grants/{grant_id}")).status_code == 404
    assert (await alpha.get("/v1/access/grants")).json()["items"] == []
    assert (await alpha.get("/v1/access/grants", params={"member_id": member["id"]})).json()[
        "items"
    ] == []
    assert (await alpha.post(f"/v1/access/grants/{grant_id}/revoke", {})).status_code == 404

    alpha_product = await make_product(alpha)
    bearer = await product_bearer(alpha, alpha_product)
    for product_id in (alpha_product["id"], product["id"]):
        response = await check(
            alpha.client,
            bearer,
            admin_id=admin["id"],
            member_id=member["id"],
            product_id=product_id,
            category="interaction",
        )
        # Bravo's people with alpha's own product: unknown here (422); bravo's product:
        # not this client's, as any other id would be (403).
        assert response.status_code == (422 if product_id == alpha_product["id"] else 403)
    assert await owner_conn.fetchval("SELECT count(*) FROM access_log") == 0
    bravo_bearer = await product_bearer(bravo, product)
    ok = await check(
        bravo.client,
        bravo_bearer,
        admin_id=admin["id"],
        member_id=member["id"],
        product_id=product["id"],
        category="interaction",
    )
    assert ok.json()["allowed"] is True
    assert (await alpha.get("/v1/access/log")).json()["items"] == []
