"""The sign-in log beyond the identity provider (whose refusals are checked where the
OIDC tests provoke them): passwords, the break-glass admin, product clients; reading it
through /v1/sign-ins, the console (filters, CSV) and the member's own account page; and
the login pages showing only known reason codes."""

from __future__ import annotations

import csv
import io
from typing import Any

import asyncpg
import httpx

from tenants.permissions import Permission
from tests.conftest import OrgHandle, make_member, make_org, make_product
from tests.web.flows import (
    PASSWORD,
    asgi_client,
    set_local_sign_in,
    set_password,
    sign_in_log,
    text_of,
)

WRONG = "not-the-right-password"


async def password_person(
    org: OrgHandle, *, roles: list[str], break_glass: bool = False
) -> dict[str, Any]:
    person = await make_member(org, roles=roles)
    await set_password(org.id, person["id"], PASSWORD, break_glass=break_glass)
    return person


async def test_password_attempts_are_logged_with_their_method_and_reason(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member = await password_person(org, roles=["member"])
    admin = await password_person(org, roles=["admin"], break_glass=True)
    async with asgi_client(app) as browser:
        off = await browser.password_sign_in(org.slug, member["email"], PASSWORD)
        assert "reason=password_sign_in_off" in off.headers["location"]
        await set_local_sign_in(org.id, True)
        wrong = await browser.password_sign_in(org.slug, member["email"], WRONG)
        assert "reason=bad_credentials" in wrong.headers["location"]
        # The address typed comes back in the form, not in the URL (history, logs).
        assert "email" not in wrong.headers["location"]
        again = await browser.get(wrong.headers["location"])
        assert f'value="{member["email"]}"' in again.text
        nobody = await browser.password_sign_in(org.slug, "nobody@elsewhere.example", WRONG)
        assert "reason=bad_credentials" in nobody.headers["location"]
        ok = await browser.password_sign_in(org.slug, member["email"], PASSWORD)
        assert ok.headers["location"] == "/account"
    async with asgi_client(app) as browser:
        glass = await browser.password_sign_in(org.slug, admin["email"], PASSWORD, break_glass=True)
        assert glass.headers["location"] == "/console"
        address = browser.address
    entries = await sign_in_log(owner_conn, org.id)
    assert [(e["method"], e["outcome"], e["reason"], e["email"]) for e in entries] == [
        ("password", "refused", "password_sign_in_off", member["email"]),
        ("password", "refused", "bad_credentials", member["email"]),
        ("password", "refused", "bad_credentials", "nobody@elsewhere.example"),
        ("password", "succeeded", None, member["email"]),
        ("break_glass", "succeeded", None, admin["email"]),
    ]
    assert [str(e["member_id"]) if e["member_id"] else None for e in entries] == [
        member["id"],
        member["id"],
        None,
        member["id"],
        admin["id"],
    ]
    assert entries[-1]["client_addr"] == address
    assert entries[-1]["user_agent"]


async def test_product_client_sign_ins_are_logged(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    product = await make_product(org)
    registered = (
        await org.post(
            f"/v1/products/{product['id']}/clients", {"name": "sync", "scopes": ["members:read"]}
        )
    ).json()
    client_id = registered["client_id"]

    async def token(secret: str, **form: str) -> httpx.Response:
        return await org.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client_id, secret),
        )

    assert (await token(registered["client_secret"])).status_code == 200
    assert (await token("wrong-secret")).status_code == 401
    assert (await token(registered["client_secret"], scope="members:write")).status_code == 400
    entries = await sign_in_log(owner_conn, org.id)
    assert [(e["method"], e["reason"], e["idp"]) for e in entries] == [
        ("product_client", None, client_id),
        ("product_client", "invalid_client", client_id),
        ("product_client", "invalid_scope", client_id),
    ]
    # A client id naming an organisation that does not exist logs nothing, and is a 401.
    forged = "tnt_" + "0" * 32 + "_x"
    answer = await org.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(forged, "s")
    )
    assert answer.status_code == 401
    assert await owner_conn.fetchval("SELECT count(*) FROM sign_ins") == 3


async def fill_log(app: Any, org: OrgHandle) -> dict[str, Any]:
    """Two refused and one successful password sign-in for one member."""
    await set_local_sign_in(org.id, True)
    member = await password_person(org, roles=["member"])
    async with asgi_client(app) as browser:
        for password in (WRONG, WRONG, PASSWORD):
            await browser.password_sign_in(org.slug, member["email"], password)
    return member


async def test_the_api_pages_and_filters_the_log_for_audit_readers_only(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    alpha, bravo = two_orgs
    member = await fill_log(app, alpha)
    await fill_log(app, bravo)

    first = await alpha.get("/v1/sign-ins", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [e["outcome"] for e in page["items"]] == ["succeeded", "refused"]
    assert page["next_cursor"]
    rest = (
        await alpha.get("/v1/sign-ins", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert [e["reason"] for e in rest["items"]] == ["bad_credentials"] and rest[
        "next_cursor"
    ] is None
    everything = page["items"] + rest["items"]
    assert {e["email"] for e in everything} == {member["email"]}  # nothing of bravo's
    assert len({e["id"] for e in everything}) == 3

    refused = (await alpha.get("/v1/sign-ins", params={"outcome": "refused"})).json()["items"]
    assert [e["reason"] for e in refused] == ["bad_credentials", "bad_credentials"]
    by_member = (await alpha.get("/v1/sign-ins", params={"member_id": member["id"]})).json()
    assert len(by_member["items"]) == 3
    by_email = (await alpha.get("/v1/sign-ins", params={"email": member["email"].upper()})).json()
    assert len(by_email["items"]) == 3
    assert (await alpha.get("/v1/sign-ins", params={"method": "sso"})).json()["items"] == []
    assert (await alpha.get("/v1/sign-ins", params={"reason": "nonce_mismatch"})).json()[
        "items"
    ] == []

    bad = await alpha.get("/v1/sign-ins", params={"reason": "made_up"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    garbage = await alpha.get("/v1/sign-ins", params={"cursor": "garbage"})
    assert garbage.status_code == 400, garbage.text  # a cursor not signed by the service
    assert garbage.json()["errors"][0]["field"] == "cursor"

    no_scope = await alpha.token_with(Permission.MEMBERS_READ)
    refused_call = await alpha.client.get(
        "/v1/sign-ins", headers={"Authorization": f"Bearer {no_scope}"}
    )
    assert refused_call.status_code == 403
    auditor = await alpha.token_with(Permission.AUDIT_READ)
    allowed = await alpha.client.get("/v1/sign-ins", headers={"Authorization": f"Bearer {auditor}"})
    assert allowed.status_code == 200


async def test_auditors_read_the_log_in_the_console_with_filters_and_export_it(
    app: Any, org: OrgHandle
) -> None:
    member = await fill_log(app, org)
    # An address a spreadsheet would run as a formula is exported defused.
    async with asgi_client(app) as browser:
        await browser.password_sign_in(org.slug, "=cmd|'/c calc'!A1@evil.example", WRONG)
    auditor = await password_person(org, roles=["auditor"])
    async with asgi_client(app) as browser:
        assert (
            await browser.password_sign_in(org.slug, auditor["email"], PASSWORD)
        ).status_code == 303
        page = await browser.get("/console/sign-ins")
        assert page.status_code == 200
        text = text_of(page.text)
        assert member["email"] in text and "bad_credentials" in text
        assert "The email or password is not right." in text
        # The reason filter offers the reasons in words, with their codes as values.
        assert '<option value="id_token_wrong_audience">ID token wrong audience</option>' in page.text
        assert '<option value="idp_unreachable">identity provider unreachable</option>' in page.text
        assert 'href="/console/sign-ins"' in page.text  # in the navigation
        # Ways of signing in read as words too, in the filter and in each row.
        assert '<option value="break_glass">Emergency access (break-glass)</option>' in page.text
        assert "<td>Password" in page.text and "<td>password" not in page.text

        filtered = await browser.get(
            "/console/sign-ins", params={"outcome": "refused", "email": member["email"]}
        )
        rows_shown = text_of(filtered.text.split("<tbody>", 1)[1])
        assert rows_shown.count("bad_credentials") == 2 and "succeeded" not in rows_shown

        export = await browser.get("/console/sign-ins.csv", params={"email": member["email"]})
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0][:4] == ["at", "method", "outcome", "reason"]
        assert [r[2] for r in rows[1:]] == ["succeeded", "refused", "refused"]
        everything = list(
            csv.reader(io.StringIO((await browser.get("/console/sign-ins.csv")).text))
        )
        emails = [r[4] for r in everything[1:]]
        assert "'=cmd|'/c calc'!a1@evil.example" in emails
        assert not any(e.startswith("=") for e in emails)


async def test_members_see_their_own_recent_sign_ins_and_no_one_elses(
    app: Any, org: OrgHandle
) -> None:
    member = await fill_log(app, org)
    other = await fill_log(app, org)
    async with asgi_client(app) as browser:
        assert (
            await browser.password_sign_in(org.slug, member["email"], PASSWORD)
        ).status_code == 303
        account = await browser.get("/account")
        assert account.status_code == 200
        text = text_of(account.text)
        section = text.split("Your recent sign-ins", 1)[1].split("Your privacy settings", 1)[0]
        assert section.count("signed in") == 2 and section.count("refused") == 2
        assert browser.address in section
        assert other["email"] not in text
        # Members cannot open the organisation's log.
        assert (await browser.get("/console/sign-ins")).status_code in (303, 403)


async def test_the_login_pages_show_only_known_reason_codes_as_fixed_messages(
    app: Any, org: OrgHandle
) -> None:
    async with asgi_client(app) as browser:
        for path in ("/login", f"/login/{org.slug}"):
            known = await browser.get(path, params={"reason": "credential_locked"})
            assert "Too many failed attempts; try again in a few minutes." in text_of(known.text)
            for hostile in (
                "Your account was hacked, call 555-0100",
                "<script>x</script>",
                "nonce_mismatch ",
            ):
                page = await browser.get(path, params={"reason": hostile})
                assert page.status_code == 200
                assert 'role="alert"' not in page.text, hostile
                assert "555-0100" not in page.text and "<script>x" not in page.text


async def test_a_sign_in_to_an_organisation_never_lands_in_another_organisations_log(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    other = await make_org(org.client)
    await fill_log(app, org)
    assert await sign_in_log(owner_conn, other.id) == []
    assert len(await sign_in_log(owner_conn, org.id)) == 3
