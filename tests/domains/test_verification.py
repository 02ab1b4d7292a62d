"""Domain proof against a real DNS server (tests/support/dns_server.py), through the API:
adding a domain names its record, verifying finds it (or not), one organisation per
domain, re-checks flag a domain whose record went, and only proven domains route sign-ins
or reach the identity backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tenants import db
from tenants.identity import service as identity
from tenants.jobs.worker import Worker
from tests.conftest import OrgHandle, make_member, make_org
from tests.support.dns_server import Zone
from tests.web.flows import asgi_client, audit_events, csrf_in

ONE_DAY = timedelta(days=1, minutes=5)


async def add(org: OrgHandle, name: str) -> dict[str, Any]:
    response = await org.post("/v1/domains", {"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def publish(dns: Zone, added: dict[str, Any], *, at: int = 1) -> None:
    """Publish the record the API asked for, at the domain (0) or under _tenantry (1)."""
    dns.publish(added["record"]["names"][at], added["record"]["value"])


async def verify(org: OrgHandle, name: str) -> httpx.Response:
    return await org.post(f"/v1/domains/{name}/verify")


async def prove(org: OrgHandle, dns: Zone, name: str) -> dict[str, Any]:
    added = await add(org, name)
    await publish(dns, added)
    response = await verify(org, name)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def routed_to(app: Any, email: str) -> str | None:
    """Where /login sends this address: the organisation's sign-in page, or None."""
    async with asgi_client(app) as browser:
        page = await browser.get("/login")
        answer = await browser.post("/login", {"csrf": csrf_in(page.text), "email": email})
    if answer.status_code == 303:
        return answer.headers["location"].split("?")[0]
    assert answer.status_code == 400, answer.text
    return None


async def test_adding_a_domain_names_the_txt_record_and_it_routes_nothing_yet(
    app: Any, org: OrgHandle, dns: Zone
) -> None:
    added = await add(org, "Pending.Example.")
    assert added["name"] == "pending.example"
    assert added["status"] == "pending" and added["proof"] is None
    assert added["record"]["type"] == "TXT"
    assert added["record"]["names"] == ["pending.example", "_tenantry.pending.example"]
    assert added["record"]["value"].startswith("tenantry-verification=")
    # Adding it again answers the same domain and token.
    assert (await add(org, "pending.example"))["record"] == added["record"]
    assert await routed_to(app, "kim@pending.example") is None
    listed = (await org.get("/v1/domains")).json()["items"]
    assert {d["name"]: d["status"] for d in listed} == {
        f"{org.slug}.example": "verified", "pending.example": "pending"
    }
    assert [d["proof"] for d in listed if d["status"] == "verified"] == ["seed"]
    assert (await org.get("/v1/organisation")).json()["domains"] == [f"{org.slug}.example"]


@pytest.mark.parametrize("at", [0, 1], ids=["at-the-domain", "under-_tenantry"])
async def test_a_published_record_verifies_the_domain_and_then_it_routes_sign_ins(
    app: Any, org: OrgHandle, dns: Zone, owner_conn: asyncpg.Connection, at: int
) -> None:
    added = await add(org, "proven.example")
    await publish(dns, added, at=at)
    response = await verify(org, "proven.example")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["proof"]) == ("verified", "dns")
    assert body["last_check_result"] == f"record found at {added['record']['names'][at]}"
    assert await routed_to(app, "kim@proven.example") == f"/login/{org.slug}"
    # Only the exact domain routes: neither a subdomain nor the parent come with it.
    assert await routed_to(app, "kim@eu.proven.example") is None
    verified = await audit_events(owner_conn, org.id, "domain.verified")
    assert [e.after.get("status") for e in verified][-1] == "verified"


async def test_the_wrong_token_or_no_record_does_not_verify_and_changes_nothing(
    app: Any, org: OrgHandle, dns: Zone
) -> None:
    await add(org, "wrong.example")
    dns.publish("_tenantry.wrong.example", "tenantry-verification=someone-elses-token")
    dns.publish("wrong.example", "v=spf1 -all")
    response = await verify(org, "wrong.example")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "no TXT record tenantry-verification=" in problem["detail"]
    assert problem["errors"][0]["field"] == "domain"
    listed = {d["name"]: d for d in (await org.get("/v1/domains")).json()["items"]}
    assert listed["wrong.example"]["status"] == "pending"
    assert listed["wrong.example"]["last_checked_at"] is None
    assert await routed_to(app, "kim@wrong.example") is None
    # Unknown and malformed names in the path are 404.
    assert (await verify(org, "never-added.example")).status_code == 404
    assert (await verify(org, "not a domain")).status_code == 404


async def test_a_domain_another_organisation_proved_cannot_be_claimed(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle], dns: Zone
) -> None:
    alpha, bravo = two_orgs
    await prove(alpha, dns, "shared.example")
    refused = await bravo.post("/v1/domains", {"name": "shared.example"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "name"
    # Nor alpha's seeded fixture domain.
    assert (await bravo.post("/v1/domains", {"name": "alpha.example"})).status_code == 409
    assert await routed_to(app, "kim@shared.example") == "/login/alpha"


async def test_a_race_to_prove_one_domain_has_one_winner(
    two_orgs: tuple[OrgHandle, OrgHandle], dns: Zone
) -> None:
    alpha, bravo = two_orgs
    # Both added it while nobody owned it; both publish their record.
    await publish(dns, await add(alpha, "contested.example"))
    await publish(dns, await add(bravo, "contested.example"))
    assert (await verify(alpha, "contested.example")).status_code == 200
    late = await verify(bravo, "contested.example")
    assert late.status_code == 409, late.text
    listed = {d["name"]: d["status"] for d in (await bravo.get("/v1/domains")).json()["items"]}
    assert listed["contested.example"] == "pending"


async def test_a_subdomain_of_another_organisations_domain_needs_its_own_proof(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle], dns: Zone
) -> None:
    alpha, bravo = two_orgs
    parent = await prove(alpha, dns, "parent.example")
    # bravo may add a subdomain, but alpha's proof of the parent proves nothing for it.
    await add(bravo, "eu.parent.example")
    dns.publish("eu.parent.example", parent["record"]["value"])
    dns.publish("_tenantry.parent.example", parent["record"]["value"])
    assert (await verify(bravo, "eu.parent.example")).status_code == 422
    assert await routed_to(app, "kim@eu.parent.example") is None
    assert await routed_to(app, "kim@parent.example") == "/login/alpha"


async def test_claiming_the_parent_of_another_organisations_domain_does_not_route_its_people(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle], dns: Zone
) -> None:
    alpha, bravo = two_orgs
    await prove(alpha, dns, "team.corp.example")
    await prove(bravo, dns, "corp.example")
    assert await routed_to(app, "kim@team.corp.example") == "/login/alpha"
    assert await routed_to(app, "kim@corp.example") == "/login/bravo"
    async with db.tenant_transaction(bravo.id):
        assert (await identity.desired_organisation()).domains == ("bravo.example", "corp.example")


async def test_only_proven_domains_reach_the_identity_backend(org: OrgHandle, dns: Zone) -> None:
    await add(org, "pending-kc.example")
    await prove(org, dns, "proven-kc.example")
    async with db.tenant_transaction(org.id):
        wanted = await identity.desired_organisation()
    assert wanted.domains == (f"{org.slug}.example", "proven-kc.example")


async def test_removing_a_domain_stops_routing(app: Any, org: OrgHandle, dns: Zone) -> None:
    await prove(org, dns, "gone.example")
    response = await org.delete("/v1/domains/gone.example")
    assert response.status_code == 204, response.text
    assert await routed_to(app, "kim@gone.example") is None
    assert (await org.delete("/v1/domains/gone.example")).status_code == 404


async def test_a_domain_whose_record_disappears_is_flagged_and_the_owners_are_told(
    app: Any, org: OrgHandle, dns: Zone, owner_conn: asyncpg.Connection
) -> None:
    owner = await make_member(org, roles=["owner"])
    await make_member(org, roles=["admin"])
    await prove(org, dns, "fragile.example")
    worker = Worker(name="domain-tests", concurrency=1)

    # The daily re-check with the record still there changes nothing.
    assert await worker.run_once(ahead=ONE_DAY) == 1
    assert (await org.get("/v1/domains")).json()["items"][0]["status"] in ("verified",)

    dns.clear()
    assert await worker.run_once(ahead=ONE_DAY) == 1
    flagged = {d["name"]: d for d in (await org.get("/v1/domains")).json()["items"]}
    assert flagged["fragile.example"]["status"] == "flagged"
    assert flagged["fragile.example"]["flagged_at"] is not None
    assert flagged["fragile.example"]["last_check_result"] == (
        "the verification record has disappeared"
    )
    # Flagged, not dropped: it still routes and still cannot be claimed elsewhere.
    assert await routed_to(app, "kim@fragile.example") == f"/login/{org.slug}"
    other = await make_org(org.client)
    assert (await other.post("/v1/domains", {"name": "fragile.example"})).status_code == 409
    events = await audit_events(owner_conn, org.id, "domain.flagged")
    assert [e.after for e in events] == [{"status": "flagged"}]
    mails = await owner_conn.fetch(
        "SELECT template, recipients FROM mail_messages WHERE tenant_id = $1", org.id
    )
    assert [(m["template"], m["recipients"]) for m in mails] == [
        ("domain_flagged", f'["{owner["email"]}"]')
    ]

    # Checked again within the hour; once the record is back the domain is verified again.
    assert await worker.run_once(ahead=timedelta(hours=1, minutes=5)) == 1
    assert len(await audit_events(owner_conn, org.id, "domain.flagged")) == 1
    added = {d["name"]: d for d in (await org.get("/v1/domains")).json()["items"]}
    dns.publish(added["fragile.example"]["record"]["names"][1],
                added["fragile.example"]["record"]["value"])
    assert await worker.run_once(ahead=timedelta(hours=1, minutes=5)) == 1
    restored = {d["name"]: d for d in (await org.get("/v1/domains")).json()["items"]}
    assert restored["fragile.example"]["status"] == "verified"
    assert len(await audit_events(owner_conn, org.id, "domain.restored")) == 1


async def test_the_console_shows_the_record_with_a_copy_button_and_checks_it(
    app: Any, org: OrgHandle, dns: Zone
) -> None:
    from tests.web.flows import PASSWORD, set_password

    owner = await make_member(org, roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD, break_glass=True)
    async with asgi_client(app) as browser:
        signed_in = await browser.password_sign_in(org.slug, owner["email"], PASSWORD, break_glass=True)
        assert signed_in.status_code == 303, signed_in.text
        csrf = await browser.csrf_of("/console/domains")
        bad = await browser.post("/console/domains", {"csrf": csrf, "name": "not a domain"})
        assert bad.status_code == 400
        assert 'value="not a domain"' in bad.text and 'id="name-error"' in bad.text
        added = await browser.post("/console/domains", {"csrf": csrf, "name": "console.example"})
        assert added.status_code == 303
        page = (await browser.get("/console/domains")).text
        assert "console.example" in page and "Pending" in page and "Verified by seed" in page
        assert 'data-copy="record-' in page and "readonly" in page
        assert '<script src="/static/copy.js"' in page and "<script>" not in page
        value = next(d for d in (await org.get("/v1/domains")).json()["items"]
                     if d["name"] == "console.example")["record"]["value"]
        assert value in page
        not_yet = await browser.post("/console/domains/verify", {"csrf": csrf, "name": "console.example"})
        assert not_yet.status_code == 400 and "no TXT record" in not_yet.text
        dns.publish("console.example", value)
        checked = await browser.post("/console/domains/verify", {"csrf": csrf, "name": "console.example"})
        assert checked.status_code == 303
        assert "console.example is verified" in (await browser.get("/console/domains")).text


async def test_removing_a_verified_domain_in_the_console_asks_first_naming_what_breaks(
    app: Any, org: OrgHandle
) -> None:
    """One click removed the school's only verified domain, and from then on the sign-in
    page found nobody's organisation by their address."""
    from tests.web.flows import PASSWORD, set_password

    owner = await make_member(org, roles=["owner"])
    await set_password(org.id, owner["id"], PASSWORD, break_glass=True)
    domain = f"{org.slug}.example"  # verified by the seed; the owner's address is there
    async with asgi_client(app) as browser:
        signed_in = await browser.password_sign_in(org.slug, owner["email"], PASSWORD, break_glass=True)
        assert signed_in.status_code == 303, signed_in.text
        csrf = await browser.csrf_of("/console/domains")
        again = await browser.post("/console/domains", {"csrf": csrf, "name": domain})
        assert f"{domain} is already verified." in (await browser.get(again.headers["location"])).text
        asked = await browser.post("/console/domains/remove", {"csrf": csrf, "name": domain})
        assert asked.status_code == 200, asked.text[:500]
        page = " ".join(asked.text.split())
        assert f"Remove {domain}?" in page
        assert f"from an address at {domain}: 1 member has one" in page
        assert "new TXT record" in page
        assert domain in {d["name"] for d in (await org.get("/v1/domains")).json()["items"]}
        done = await browser.post(
            "/console/domains/remove", {"csrf": csrf, "name": domain, "confirmed": "1"}
        )
        assert done.status_code == 303, done.text[:500]
    assert domain not in {d["name"] for d in (await org.get("/v1/domains")).json()["items"]}
