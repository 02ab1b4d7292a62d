"""The identity-change safety net (issue 18, part 4) on the real database: the preview
counts who would lose sign-in (by email domain, by a subject link to the old issuer),
admins first; a change that locks out every owner is refused unless an owner has a
break-glass password; others need the count confirmed; the previous configuration is
restorable for 24 hours; everything is audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.domains import service as domains
from tenants.errors import ConflictError, InvalidInputError
from tenants.members.models import Member
from tenants.sessions.passwords import set_password
from tenants.sso import safety
from tenants.sso import service as sso
from tests.conftest import ACTOR, OrgHandle, make_member

ISSUER = "https://idp.example.org"


def connection(**fields: Any) -> dict[str, Any]:
    return {"issuer": ISSUER, "client_id": "tenantry", "client_secret": "s3cret", **fields}


async def second_domain(org: OrgHandle) -> str:
    name = f"{org.slug}-b.example"
    async with db.tenant_transaction(org.id):
        await domains.seed_domain(name, actor=ACTOR)
    return name


async def member(org: OrgHandle, local: str, domain: str, **fields: Any) -> dict[str, Any]:
    return await make_member(org, email=f"{local}@{domain}", name=local.title(), **fields)


async def link(owner_conn: asyncpg.Connection, org: OrgHandle, *emails: str) -> None:
    for email in emails:
        await owner_conn.execute(
            "UPDATE members SET idp_subject = $3 WHERE tenant_id = $1 AND email = $2",
            org.id,
            email,
            f"sub-{uuid.uuid4().hex[:8]}",
        )


async def break_glass(org: OrgHandle, email: str) -> None:
    async with db.tenant_transaction(org.id):
        owner = await Member.get(email=email)
        await set_password(
            owner, "a long break-glass passphrase 42!", break_glass=True, actor=ACTOR
        )


async def passed_a_test() -> None:
    """The organisation's connection passed its test just now (in its tenant transaction):
    what makes it count as a way in (``safety.provider_proven``)."""
    connection = await sso.get_connection()
    assert connection is not None
    connection.last_tested_at = datetime.now(UTC)
    connection.last_test_result = {"ok": True, "steps": []}
    await connection.save(update_fields=["last_tested_at", "last_test_result"])


async def test_the_preview_counts_members_whose_domain_would_no_longer_be_admitted(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    a, b = f"{org.slug}.example", await second_domain(org)
    await member(org, "olga", a, roles=["owner"])
    await member(org, "zed", b, roles=["admin"])
    await member(org, "bea", b)
    await member(org, "carl", b, status="invited")
    await member(org, "sue", b)
    await owner_conn.execute(  # cannot sign in now: loses nothing
        "UPDATE members SET status = 'suspended' WHERE tenant_id = $1 AND email = $2",
        org.id,
        f"sue@{b}",
    )
    saved = await org.put("/v1/sso-connection", json=connection(allowed_domains=[a, b]))
    assert saved.status_code == 200, saved.text

    preview = await org.post("/v1/sso-connection/preview", json=connection(allowed_domains=[a]))
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["losing"], body["losing_by_domain"], body["losing_by_subject"]) == (3, 3, 0)
    assert body["admins_losing"] == 1 and body["owners_losing"] == 0
    assert body["every_owner_locked_out"] is False and body["refused"] is False
    assert body["confirm_losing"] == 3
    assert [p["email"] for p in body["people"]] == [f"zed@{b}", f"bea@{b}", f"carl@{b}"]
    assert body["people"][0]["roles"] == ["admin"] and body["people"][0]["reason"] == "domain"
    # Nothing changed.
    assert (await org.get("/v1/sso-connection")).json()["allowed_domains"] == [a, b]
    # The same list, nothing lost.
    same = await org.post("/v1/sso-connection/preview", json=connection(allowed_domains=[b, a]))
    assert same.json()["losing"] == 0 and same.json()["confirm_losing"] is None


async def test_an_issuer_change_unlinks_every_member_linked_to_the_old_issuer(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    a = f"{org.slug}.example"
    await member(org, "olga", a, roles=["owner"])
    await member(org, "ann", a, roles=["auditor"])
    await member(org, "bob", a)
    await member(org, "new", a)  # never signed in: no link to lose
    await link(owner_conn, org, f"olga@{a}", f"ann@{a}", f"bob@{a}")
    await org.put("/v1/sso-connection", json=connection())

    moved = connection(issuer="https://login.example.net")
    body = (await org.post("/v1/sso-connection/preview", json=moved)).json()
    assert (body["losing"], body["losing_by_subject"], body["admins_losing"]) == (3, 3, 2)
    assert [p["email"] for p in body["people"]] == [f"ann@{a}", f"olga@{a}", f"bob@{a}"]
    assert body["every_owner_locked_out"] is True and body["refused"] is True
    # A new client at the same issuer answers other subjects too.
    other_client = (
        await org.post("/v1/sso-connection/preview", json=connection(client_id="other"))
    ).json()
    assert other_client["losing_by_subject"] == 3


async def test_a_change_locking_out_every_owner_is_refused_until_one_has_break_glass(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    a = f"{org.slug}.example"
    await member(org, "olga", a, roles=["owner"])
    await member(org, "bob", a)
    await link(owner_conn, org, f"olga@{a}", f"bob@{a}")
    await org.put("/v1/sso-connection", json=connection())
    moved = connection(issuer="https://login.example.net")

    refused = await org.put("/v1/sso-connection", json={**moved, "confirm_losing": 2})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["field"] == "issuer"
    assert (await org.get("/v1/sso-connection")).json()["issuer"] == ISSUER

    await break_glass(org, f"olga@{a}")
    unconfirmed = await org.put("/v1/sso-connection", json=moved)
    assert unconfirmed.status_code == 422, unconfirmed.text
    problem = unconfirmed.json()
    assert problem["errors"][0]["field"] == "confirm_losing" and "2" in problem["detail"]
    wrong = await org.put("/v1/sso-connection", json={**moved, "confirm_losing": 1})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "confirm_losing"
    assert (await org.get("/v1/sso-connection")).json()["issuer"] == ISSUER

    done = await org.put("/v1/sso-connection", json={**moved, "confirm_losing": 2})
    assert done.status_code == 200, done.text
    assert done.json()["issuer"] == "https://login.example.net"
    # The links to the old provider's subjects went with it, in the same change, audited
    # once: the new provider's "sub-…" would otherwise name whoever the old one called so.
    linked = await owner_conn.fetchval(
        "SELECT count(*) FROM members WHERE tenant_id = $1 AND idp_subject IS NOT NULL", org.id
    )
    assert linked == 0
    events = (await org.get("/v1/audit-events", params={"action": "sso.subjects_unlinked"})).json()
    assert [e["after"]["members"] for e in events["items"]] == [2]
    # A change that keeps the issuer and client keeps the links it makes after.
    await link(owner_conn, org, f"bob@{a}")
    kept = await org.put("/v1/sso-connection", json={**moved, "scopes": ["openid", "email"]})
    assert kept.status_code == 200, kept.text
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM members WHERE tenant_id = $1 AND idp_subject IS NOT NULL", org.id
        )
        == 1
    )


async def test_switching_sign_in_through_the_provider_off_needs_the_count(org: OrgHandle) -> None:
    a = f"{org.slug}.example"
    await member(org, "bob", a)
    await org.put("/v1/sso-connection", json=connection())
    off = await org.put("/v1/sso-connection", json=connection(enabled=False))
    assert off.status_code == 422 and off.json()["errors"][0]["field"] == "confirm_losing"
    preview = (await org.post("/v1/sso-connection/preview", json=connection(enabled=False))).json()
    assert preview["people"][0]["reason"] == "disabled"
    ok = await org.put("/v1/sso-connection", json=connection(enabled=False, confirm_losing=1))
    assert ok.status_code == 200 and ok.json()["enabled"] is False


async def test_members_who_keep_a_password_do_not_lose_sign_in_when_the_provider_goes_off(
    org: OrgHandle,
) -> None:
    """With members' password sign-in on, switching a (broken) provider off once said every
    owner would be locked out, though their passwords worked, and the API refused it: the
    undo of a bad provider was blocked."""
    from tests.web.flows import set_local_sign_in
    from tests.web.flows import set_password as give_password

    a = f"{org.slug}.example"
    owner = await member(org, "olga", a, roles=["owner"])
    await member(org, "bob", a)  # no password: loses sign-in
    await org.put("/v1/sso-connection", json=connection())
    await give_password(org.id, owner["id"], "a long owner passphrase 42!!")
    off = connection(enabled=False)
    # Passwords off: Olga's would not count, and she is the only owner.
    refused = await org.put("/v1/sso-connection", json={**off, "confirm_losing": 2})
    assert refused.status_code == 409, refused.text
    await set_local_sign_in(org.id, True)
    preview = (await org.post("/v1/sso-connection/preview", json=off)).json()
    assert [p["email"] for p in preview["people"]] == [f"bob@{a}"]
    assert preview["losing"] == 1 and not preview["every_owner_locked_out"], preview
    done = await org.put("/v1/sso-connection", json={**off, "confirm_losing": 1})
    assert done.status_code == 200, done.text


async def test_the_previous_configuration_is_restored_in_one_step_within_24_hours(
    org: OrgHandle,
) -> None:
    a, b = f"{org.slug}.example", await second_domain(org)
    await member(org, "bea", b)
    await org.put("/v1/sso-connection", json=connection(allowed_domains=[a, b]))
    changed = await org.put(
        "/v1/sso-connection",
        json=connection(allowed_domains=[a], client_id="changed", confirm_losing=1),
    )
    assert changed.status_code == 200, changed.text

    restored = await org.post("/v1/sso-connection/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["allowed_domains"] == [a, b]
    assert restored.json()["client_id"] == "tenantry" and restored.json()["has_client_secret"]
    again = await org.post("/v1/sso-connection/restore")
    assert again.status_code == 409 and again.headers["content-type"].startswith(
        "application/problem+json"
    )
    actions = [
        e["action"]
        for e in (await org.get("/v1/audit-events")).json()["items"]
        if e["action"].startswith("sso.")
    ]
    assert actions.count("sso.connection_saved") == 2 and "sso.connection_restored" in actions


async def test_the_previous_configuration_cannot_be_restored_after_24_hours(
    org: OrgHandle,
) -> None:
    await org.put("/v1/sso-connection", json=connection())
    await org.put("/v1/sso-connection", json=connection(client_id="changed"))
    later = datetime.now(UTC) + safety.RESTORE_WINDOW + timedelta(minutes=1)
    async with db.tenant_transaction(org.id):
        with pytest.raises(ConflictError, match="24 hours"):
            await sso.restore_previous(actor=ACTOR, now=later)
    async with db.tenant_transaction(org.id):
        restored = await sso.restore_previous(
            actor=ACTOR, now=datetime.now(UTC) + timedelta(hours=23)
        )
    assert restored.client_id == "tenantry"


async def test_removing_a_domain_previews_and_needs_the_count(org: OrgHandle) -> None:
    a, b = f"{org.slug}.example", await second_domain(org)
    await member(org, "olga", a, roles=["owner"])
    await member(org, "bea", b)
    await org.put("/v1/sso-connection", json=connection())  # lists none: all owned domains

    preview = await org.post(f"/v1/domains/{b}/removal-preview")
    assert preview.status_code == 200 and preview.json()["losing"] == 1
    unconfirmed = await org.delete(f"/v1/domains/{b}")
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["errors"][0]["field"] == "confirm_losing"
    owners_domain = (await org.post(f"/v1/domains/{a}/removal-preview")).json()
    assert owners_domain["every_owner_locked_out"] is True
    assert (await org.delete(f"/v1/domains/{a}", params={"confirm_losing": 1})).status_code == 409
    removed = await org.delete(f"/v1/domains/{b}", params={"confirm_losing": 1})
    assert removed.status_code == 204, removed.text
    assert (await org.post(f"/v1/domains/{b}/removal-preview")).status_code == 404


async def test_bad_input_is_a_problem_naming_the_field(org: OrgHandle) -> None:
    await org.put("/v1/sso-connection", json=connection())
    negative = await org.put("/v1/sso-connection", json=connection(confirm_losing=-1))
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "confirm_losing"
    bad = await org.post("/v1/sso-connection/preview", json={"issuer": "nope", "client_id": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "issuer"
    text = await org.delete(f"/v1/domains/{org.slug}.example", params={"confirm_losing": "x"})
    assert text.status_code == 422


def test_the_rules_lose_nobody_without_a_connection_that_signs_people_in() -> None:
    after = safety.SignInShape("https://a", "c", ("x.example",))
    assert not safety.loss_rule(None, after).anyone
    off = safety.SignInShape("https://a", "c", ("x.example",), enabled=False)
    assert not safety.loss_rule(off, after).anyone
    assert safety.loss_rule(after, off).everyone
    assert safety.judge(safety.MemberCounts(owners_able=0)).every_owner_locked_out is False


async def test_switching_password_sign_in_off_counts_who_has_only_a_password(
    org: OrgHandle,
) -> None:
    from tests.web.flows import set_local_sign_in
    from tests.web.flows import set_password as give_password

    a, b = f"{org.slug}.example", await second_domain(org)
    owner = await member(org, "olga", a, roles=["owner"])
    by_password = await member(org, "pat", b)
    await member(org, "sso", a)  # no password: unaffected
    await org.put("/v1/sso-connection", json=connection(allowed_domains=[a]))
    await set_local_sign_in(org.id, True)
    await give_password(org.id, by_password["id"], "a long member passphrase 42!")
    await give_password(org.id, owner["id"], "a long owner passphrase 42!!")
    async with db.tenant_transaction(org.id):
        # Never tested nor used since it was saved: it is no way in yet, so everyone with a
        # password loses sign-in, and the only owner would be locked out.
        untried = await sso.preview_password_sign_in_off()
        await passed_a_test()
        preview = await sso.preview_password_sign_in_off()
    assert (untried.losing, untried.owners_losing, untried.refused) == (2, 1, True)
    # Olga keeps signing in through the provider (her domain is admitted); Pat does not.
    assert (preview.losing, preview.owners_losing) == (1, 0)
    assert [p.email for p in preview.people] == [f"pat@{b}"]
    assert preview.people[0].reason == "password"
    async with db.tenant_transaction(org.id):
        with pytest.raises(InvalidInputError, match="confirm_losing: 1"):
            await sso.set_local_sign_in(False, actor=ACTOR)
    async with db.tenant_transaction(org.id):
        org_row = await sso.set_local_sign_in(False, actor=ACTOR, confirm_losing=1)
    assert org_row.local_sign_in is False


async def test_switching_password_sign_in_off_never_locks_out_the_only_owner(
    org: OrgHandle,
) -> None:
    from tests.web.flows import set_local_sign_in
    from tests.web.flows import set_password as give_password

    b = await second_domain(org)
    owner = await member(org, "olga", b, roles=["owner"])
    await org.put("/v1/sso-connection", json=connection(allowed_domains=[f"{org.slug}.example"]))
    await set_local_sign_in(org.id, True)
    await give_password(org.id, owner["id"], "a long owner passphrase 42!!")
    async with db.tenant_transaction(org.id):
        preview = await sso.preview_password_sign_in_off()
        assert preview.every_owner_locked_out and preview.refused
        with pytest.raises(ConflictError) as refused:
            await sso.set_local_sign_in(False, actor=ACTOR, confirm_losing=1)
    assert refused.value.fields[0].field == "local_sign_in"


def test_a_provider_is_a_way_in_once_tested_or_used_since_its_last_change() -> None:
    changed = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    before, after = changed - timedelta(seconds=1), changed + timedelta(seconds=1)

    def proven(**kw: Any) -> bool:
        given = {"last_test_ok": False, "last_tested_at": None, "last_sign_in_at": None, **kw}
        return safety.provider_proven(changed_at=changed, **given)

    assert not proven()
    assert proven(last_test_ok=True, last_tested_at=after)
    assert proven(last_test_ok=True, last_tested_at=changed)
    assert not proven(last_test_ok=True, last_tested_at=before)  # tested the old settings
    assert not proven(last_test_ok=False, last_tested_at=after)  # the test failed
    assert proven(last_sign_in_at=after)
    assert not proven(last_sign_in_at=before)


async def test_a_restore_that_takes_sign_in_away_needs_the_count_like_a_change(
    org: OrgHandle,
) -> None:
    """Restoring a switched-off connection took sign-in from every member unasked (159 in
    the demo): the restore answers to the same safety net as the change it undoes."""
    a = f"{org.slug}.example"
    await member(org, "bob", a)
    await member(org, "cy", a)
    assert (await org.put("/v1/sso-connection", json=connection(enabled=False))).status_code == 200
    assert (await org.put("/v1/sso-connection", json=connection(enabled=True))).status_code == 200

    preview = (await org.post("/v1/sso-connection/restore-preview")).json()
    assert preview["losing"] == 2 and preview["confirm_losing"] == 2
    unconfirmed = await org.post("/v1/sso-connection/restore")
    assert unconfirmed.status_code == 422, unconfirmed.text
    assert unconfirmed.json()["errors"][0]["field"] == "confirm_losing"
    assert (await org.get("/v1/sso-connection")).json()["enabled"] is True
    done = await org.client.post(
        "/v1/sso-connection/restore", params={"confirm_losing": 2}, headers=org.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["enabled"] is False
