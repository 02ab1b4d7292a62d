"""The residue test: a member with everything Tenantry can hold about a person is erased
(through an erasure request, and separately purged at the end of a departure); then every
text, jsonb, bytea and inet column of every table is scanned for the person's name, email,
IdP subject, external id, SCIM attributes, address and browser. The only hits allowed are
in tables the map keeps with a reason, and the erasure's evidence lists them; the audit
chain still verifies, and the same person can be provisioned again as a new member."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.actors import Actor, ActorKind
from tenants.audit import service as audit
from tenants.audit.sealer import seal_all
from tenants.members.models import Member
from tenants.policy import schedule
from tenants.sessions.models import AuthMethod
from tenants.sessions.service import create_session
from tests.conftest import OrgHandle, make_member
from tests.departures.support import make_items, start
from tests.requests.support import officer, product_client_headers, run_jobs, submit
from tests.scim.conftest import USER_URN, Scim, scim_for
from tests.support.access import check, decide_as, make_people, product_bearer, request_as
from tests.support.webhook_receiver import Receiver, running_receiver

#: Column types that can hold text.
SCANNED_TYPES = ("text", "character varying", "jsonb", "json", "bytea", "inet", "ARRAY")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@dataclass
class Person:
    member: dict[str, Any]
    needles: dict[str, str]


async def everything_about(
    org: OrgHandle, scim: Scim, receiver: Receiver, people: dict[str, dict[str, Any]]
) -> Person:
    """A member provisioned by SCIM with attributes, signed in, with content, a choice, an
    admin's approved access and its log, an access request answered with an export that a
    product contributed to, emails, webhook deliveries and audit events."""
    tag = uuid.uuid4().hex[:8]
    needles = {
        "name": f"Zinnia Qx{tag}",
        "email": f"zinnia.{tag}@{org.slug}.example",
        "idp_subject": f"idp-sub-{tag}",
        "external_id": f"ext-{tag}",
        "phone": f"+1-555-01{tag[:4]}",
        "street": f"{tag} Lantern Row",
        "user_agent": f"ZinniaBrowser/{tag}",
        "client_addr": "203.0.113.77",
    }
    response = await scim.post("/Users", {
        "schemas": [USER_URN], "userName": needles["email"], "externalId": needles["external_id"],
        "name": {"givenName": "Zinnia", "familyName": f"Qx{tag}"},
        "displayName": needles["name"], "emails": [{"value": needles["email"], "primary": True}],
        "phoneNumbers": [{"value": needles["phone"], "type": "mobile"}],
        "addresses": [{"streetAddress": needles["street"], "type": "home"}],
    })
    assert response.status_code == 201, response.text
    member_id = response.json()["id"]
    linked = await org.patch(f"/v1/members/{member_id}", {"idp_subject": needles["idp_subject"]})
    assert linked.status_code == 200, linked.text
    member = linked.json()

    product = await org.post("/v1/products", {"name": f"Drive {tag}", "key": f"drive-{tag}"})
    assert product.status_code == 201, product.text
    drive = product.json()
    hook = await org.put(f"/v1/products/{drive['id']}/webhook", json={"url": receiver.url})
    assert hook.status_code == 200, hook.text
    receiver.secret = hook.json()["secret"]
    account = await org.post("/v1/product-accounts",
                             {"member_id": member_id, "product_id": drive["id"]})
    assert account.status_code == 201, account.text
    await make_items(org, member_id, drive["id"], 5, kind="personal")
    await make_items(org, member_id, drive["id"], 3, kind="organisation")
    held = await make_items(org, member_id, drive["id"], 1, kind="personal", legal_hold=True)
    async with db.tenant_transaction(org.id):
        # A product registered the held item under a title naming the person.
        await db.connection().execute_query(
            "UPDATE content_items SET title = $2 WHERE tenant_id = $1 AND external_id LIKE $3",
            [org.id, f"Contract of {needles['name']}", f"{held}%"],
        )
    choice = await org.post(f"/v1/members/{member_id}/choices",
                            {"setting": "cookies.analytics", "value": False})
    assert choice.status_code == 200, choice.text
    # A scheduled change of their unit's policy, noticed to them (email and notice row).
    coming = await org.put("/v1/policy/rules", json={
        "target_kind": "unit", "target_id": member["unit_id"],
        "setting": "advertising.personalised_ads", "value": False, "enforced": True,
        "reason": "Audit", "effective_from": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert coming.status_code == 200, coming.text
    await schedule.sweep_policy_schedule()

    as_person = Actor(ActorKind.MEMBER, member_id, f"{needles['name']} <{needles['email']}>",
                      client_addr=needles["client_addr"])
    async with db.tenant_transaction(org.id):
        await create_session(await Member.get(id=member_id), AuthMethod.OIDC, actor=as_person,
                             idp_sid=f"sid-{tag}", idp_subject=needles["idp_subject"],
                             user_agent=needles["user_agent"])

    grant_id = await request_as(org, people["admin"], member)
    await decide_as(org, people["officer"], grant_id)
    seen = await check(org.client, await product_bearer(org, drive),
                       admin_id=people["admin"]["id"], member_id=member_id,
                       product_id=drive["id"], category="interaction")
    assert seen.json()["allowed"] is True, seen.text

    access = await submit(org, member, "access", f"Send my data to {needles['email']}")
    started = await org.post(f"/v1/privacy-requests/{access['id']}/export")
    assert started.status_code == 202, started.text
    await run_jobs()
    uploaded = await org.client.put(
        f"/v1/privacy-requests/{access['id']}/export/parts",
        json={"data": {"owner": needles["name"], "email": needles["email"],
                       "phone": needles["phone"]}},
        headers=await product_client_headers(org, drive),
    )
    assert uploaded.status_code == 200, uploaded.text
    await run_jobs()
    export = (await org.get(f"/v1/privacy-requests/{access['id']}/export")).json()
    assert export["status"] == "ready"
    return Person(member, needles)


async def residue(conn: asyncpg.Connection, needles: dict[str, str]) -> dict[str, set[str]]:
    """``{table.column: needles found}`` over every text-like column of every table."""
    columns = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = ANY($1::text[]) ORDER BY 1, 2",
        list(SCANNED_TYPES),
    )
    assert len(columns) > 100
    found: dict[str, set[str]] = {}
    for c in columns:
        value = f'"{c["column_name"]}"'
        text = f"encode({value}, 'escape')" if c["data_type"] == "bytea" else f"{value}::text"
        for label, needle in needles.items():
            hit = await conn.fetchval(
                f'SELECT EXISTS (SELECT 1 FROM "{c["table_name"]}" '
                f"WHERE strpos(lower({text}), lower($1)) > 0)",
                needle,
            )
            if hit:
                found.setdefault(f"{c['table_name']}.{c['column_name']}", set()).add(label)
    return found


async def assert_chain_verifies(org: OrgHandle) -> None:
    await seal_all(wait=True)
    async with db.tenant_transaction(org.id):
        verification = await audit.verify()
    assert verification.ok, verification.broken
    assert verification.pending == 0 and verification.checked > 20


async def assert_provisioned_again(org: OrgHandle, scim: Scim, person: Person) -> None:
    again = await scim.post("/Users", {"schemas": [USER_URN], "userName": person.needles["email"],
                                       "externalId": person.needles["external_id"]})
    assert again.status_code == 201, again.text
    assert again.json()["id"] != person.member["id"]


async def test_an_erasure_request_leaves_only_what_the_map_keeps_and_says_why(
    org: OrgHandle, owner_conn: asyncpg.Connection, receiver: Receiver
) -> None:
    scim = await scim_for(org)
    people = await make_people(org)
    person = await everything_about(org, scim, receiver, people)
    before = await residue(owner_conn, person.needles)
    # The setup really spread the person around.
    assert {"scim_users.attributes", "sessions.user_agent", "mail_messages.recipients",
            "privacy_export_parts.data", "members.email", "outbox_events.payload",
            "content_items.title", "privacy_requests.message"} <= before.keys()
    assert not [k for k in before if k.startswith("audit_events.")], (
        "the audit trail holds personal fields only sealed"
    )

    request = await submit(org, person.member, "erasure", "Please erase me.")
    await org.post(f"/v1/privacy-requests/{request['id']}/assign",
                   {"assignee_id": (await officer(org))["id"]})
    erased = await org.post(f"/v1/privacy-requests/{request['id']}/erasure", {})
    assert erased.status_code == 200, erased.text
    evidence = erased.json()["member_erasure"]
    await run_jobs()
    assert evidence["deleted"]["policy_change_notices"] == 1

    left = await residue(owner_conn, person.needles)
    kept_tables = {k["table"] for k in evidence["kept"]}
    assert {key.split(".")[0] for key in left} <= kept_tables, left
    # Exactly the product's title of the item under legal hold names the person, and the
    # evidence says why it is kept and when it is reviewed.
    assert left == {"content_items.title": {"name"}}
    [hold] = [k for k in evidence["kept"]
              if k["table"] == "content_items" and k["reason"] == "under legal hold"]
    assert hold["rows"] == 1 and hold["review_on"] > datetime.now(UTC).date().isoformat()
    assert evidence["deleted"]["sessions"] == 1 and evidence["deleted"]["scim_users"] == 1
    assert evidence["audit_key_deleted"] is True and evidence["products_told"] == 1
    timeline = (await org.get(f"/v1/privacy-requests/{request['id']}")).json()["timeline"]
    assert "Kept, and why:" in timeline[-1]["body"]
    member = (await org.get(f"/v1/members/{person.member['id']}")).json()
    assert member["status"] == "purged" and member["name"] == "erased member"
    # The API shows the erased actor's events without their fields.
    events = (await org.get("/v1/audit-events", params={"limit": 500})).json()["items"]
    mine = [e for e in events if e["actor"] == f"member:{person.member['id']}"]
    assert mine and {e["actor_display"] for e in mine} == {"erased member"}
    told = [r for r in receiver.received if r.topic == "member.erased"]
    assert told and told[0].data["member_id"] == person.member["id"]

    await assert_chain_verifies(org)
    # Through the API this time: the same address makes a new member.
    again = await make_member(org, email=person.needles["email"].upper(),
                              external_id=person.needles["external_id"])
    assert again["id"] != person.member["id"]


async def test_a_purge_at_the_end_of_a_departure_erases_alike(
    org: OrgHandle, owner_conn: asyncpg.Connection, receiver: Receiver
) -> None:
    scim = await scim_for(org)
    people = await make_people(org)
    person = await everything_about(org, scim, receiver, people)
    departure = await start(org, person.member["id"], reason=f"{person.needles['name']} left")
    await run_jobs(ahead=timedelta(days=400))
    got = (await org.get(f"/v1/departures/{departure['id']}")).json()
    assert got["status"] == "completed", got

    events = (await org.get("/v1/audit-events",
                            params={"action": "departure.purge.done", "limit": 5})).json()
    [done] = events["items"]
    kept_tables = {k["table"] for k in done["after"]["kept"]}
    left = await residue(owner_conn, person.needles)
    assert {key.split(".")[0] for key in left} <= kept_tables, left
    assert left == {"content_items.title": {"name"}}
    assert "departures" in kept_tables
    assert [r for r in receiver.received if r.topic == "member.erased"]

    await assert_chain_verifies(org)
    # Through the API this time: the same address makes a new member.
    again = await make_member(org, email=person.needles["email"].upper(),
                              external_id=person.needles["external_id"])
    assert again["id"] != person.member["id"]
