"""API tokens in the console, in process: the list (scopes in words, creator, expiry, last
use, state, by page), a token made with the form shown once and working against /v1,
refusals beside the fields with nothing written (empty or over-long name, a scope beyond
one's own permissions), revoking after a confirmation, roles and other organisations."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.web.console.api_tokens import SCOPE_WORDS
from tenants import db
from tenants.actors import system_actor
from tenants.permissions import ROLE_PERMISSIONS, Permission, Role
from tenants.tokens import service as tokens
from tenants.tokens.rules import NAME_MAX_LENGTH
from tests.conftest import OrgHandle, make_member, row_counts
from tests.web.flows import (
    PASSWORD,
    WebClient,
    asgi_client,
    audit_events,
    described_by,
    set_local_sign_in,
    set_password,
    text_of,
)
from tests.web.test_form_errors import error_beside, refused

PAGE = "/console/api-tokens"
NEW = f"{PAGE}/new"
SHOWN = re.compile(r'<input id="new-token" type="text" readonly value="(tnt_[^"]+)"')


@pytest.fixture
async def local_org(org: OrgHandle) -> OrgHandle:
    await set_local_sign_in(org.id, True)
    return org


async def signed_in(browser: WebClient, org: OrgHandle, role: str = "owner") -> str:
    who = await make_member(org, name=f"{role.title()} Person", roles=[role])
    await set_password(org.id, who["id"], PASSWORD)
    return await browser.signed_in(org.slug, who["email"])


async def make_token(
    org: OrgHandle, name: str, scopes: list[str], **kw: Any
) -> tuple[uuid.UUID, str]:
    async with db.tenant_transaction(org.id):
        row, text = await tokens.create_token(
            name, scopes, expires_in=kw.get("expires_in"), actor=system_actor("cli")
        )
    return row.id, text


async def api_status(client: httpx.AsyncClient, token: str, path: str = "/v1/members") -> int:
    return (await client.get(path, headers={"Authorization": f"Bearer {token}"})).status_code


def test_every_scope_has_words() -> None:
    assert set(SCOPE_WORDS) == set(Permission)


async def test_the_list_shows_each_token_with_scopes_in_words_creator_expiry_use_and_state(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, client: httpx.AsyncClient
) -> None:
    org = local_org
    active, used = await make_token(
        org, "Reporting", ["members:read"], expires_in=timedelta(days=30)
    )
    revoked, _ = await make_token(org, "Old sync", ["members:read", "members:write"])
    expired, _ = await make_token(org, "Trial", ["audit:read"], expires_in=timedelta(days=1))
    await owner_conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 hour' WHERE id = $1", expired
    )
    async with db.tenant_transaction(org.id):
        await tokens.revoke_token(revoked, actor=system_actor("cli"))
    assert await api_status(client, used) == 200
    async with asgi_client(app) as browser:
        await signed_in(browser, org)
        console = await browser.get("/console")
        assert f'href="{PAGE}"' in console.text, "the page is in the navigation"
        page = await browser.get(PAGE)
        assert page.status_code == 200
        shown = text_of(page.text)
        for name in ("Reporting", "Old sync", "Trial"):
            assert name in shown
        assert "See members members:read" in shown
        assert "Add members and change their details and roles members:write" in shown
        assert "by an operator (command line)" in shown
        row = page.text[page.text.index(f'id="token-{active}"') :].split("</tr>")[0]
        assert 'class="badge active"' in row and "<time" in row
        assert "never" not in text_of(row), "it has an expiry and was used"
        assert f"/console/api-tokens/{active}/revoke" in row
        for token_id, state in ((revoked, "revoked"), (expired, "expired")):
            row = page.text[page.text.index(f'id="token-{token_id}"') :].split("</tr>")[0]
            assert f'class="badge {state}"' in row and "/revoke" not in row
        only = await browser.get(PAGE, params={"status": "revoked"})
        assert "Old sync" in only.text and "Reporting" not in only.text
        by_name = await browser.get(PAGE, params={"sort": "name"})
        names = re.findall(r"<td><strong>([^<]+)</strong></td>", by_name.text)
        assert names == sorted(names) and len(names) == 4  # with the fixture's own token


async def test_the_list_is_sized_by_its_page(app: Any, local_org: OrgHandle) -> None:
    org = local_org
    async with db.tenant_transaction(org.id):
        for n in range(30):
            await tokens.create_token(
                f"Batch {n:02}", ["units:read"], expires_in=None, actor=system_actor("cli")
            )
    async with asgi_client(app) as browser:
        await signed_in(browser, org)
        first = await browser.get(PAGE, params={"size": "25"})
        rows = re.findall(r'<tr id="token-', first.text)
        assert len(rows) == 25
        assert "31 tokens match; showing 25" in text_of(first.text)
        [following] = re.findall(
            r'<a class="button secondary" href="([^"]+)">Next page</a>', first.text
        )
        second = await browser.get(html.unescape(following))
        assert len(re.findall(r'<tr id="token-', second.text)) == 6
        assert "Previous page" in second.text and "Next page" not in second.text


async def test_a_token_made_in_the_console_is_shown_once_and_works_against_the_api(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, client: httpx.AsyncClient
) -> None:
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        form = await browser.get(NEW)
        assert form.status_code == 200
        assert '<option value="90" selected>' in form.text, "90 days unless chosen"
        # An owner may give every scope but deciding on access to data, which they do not
        # hold themselves (a privacy officer's).
        disabled = re.findall(r'value="([^"]+)" disabled', form.text)
        assert disabled == ["access:approve"]
        made = await browser.post(
            NEW, {"csrf": csrf, "name": "HR sync", "scopes": ["members:read"], "expires": "30"}
        )
        assert made.status_code == 200, made.text[:2000]
        assert "location" not in made.headers
        assert made.headers["cache-control"] == "no-store"
        [token] = SHOWN.findall(made.text)
        shown = text_of(made.text)
        assert "Store it now: it will not be shown again" in shown
        assert 'data-copy="new-token"' in made.text
        assert token not in str(made.url) and token not in made.headers.get("set-cookie", "")

        assert await api_status(client, token) == 200
        assert await api_status(client, token, "/v1/audit-events") == 403, "only its scopes"
        listing = await browser.get(PAGE)
        assert token not in listing.text and token.split("_")[3] not in listing.text
        assert "HR sync" in listing.text

    row = await owner_conn.fetchrow(
        "SELECT name, scopes, expires_at, created_by, last_used_at FROM api_tokens "
        "WHERE tenant_id = $1 AND name = 'HR sync'",
        org.id,
    )
    assert row is not None and json.loads(row["scopes"]) == ["members:read"]
    assert row["created_by"].startswith("member:") and row["last_used_at"] is not None
    lifetime = row["expires_at"] - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    made_events = await audit_events(owner_conn, org.id, "api_token.created")
    [event] = [e for e in made_events if e.after["name"] == "HR sync"]
    assert event.after["scopes"] == ["members:read"] and event.actor.startswith("member:")
    secret = token.split("_")[3]
    leaks = await owner_conn.fetchval(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND after::text LIKE $2",
        org.id,
        f"%{secret}%",
    )
    assert leaks == 0


async def test_an_empty_or_over_long_name_is_refused_beside_the_field_and_nothing_is_made(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        before = await row_counts(owner_conn)
        form = {"csrf": csrf, "scopes": ["members:read", "units:read"], "expires": "7"}
        blank = (await browser.get(NEW)).text
        # The hint describes the field and is not part of its label too (read twice).
        assert '<label for="name">Name</label>' in blank
        assert described_by(blank, "name-hint", invalid=False) == ["name"]
        empty = await refused(browser, NEW, {**form, "name": "  "}, NEW)
        assert error_beside(empty, "name") == "Name: is empty"
        assert described_by(empty, "name-hint") == ["name"], "the hint stays with the error"
        assert 'value="members:read" checked' in empty and 'value="units:read" checked' in empty
        assert '<option value="7" selected>' in empty, "what was chosen is kept"
        too_long = "x" * (NAME_MAX_LENGTH + 1)
        long_page = await refused(browser, NEW, {**form, "name": too_long}, NEW)
        assert (
            error_beside(long_page, "name") == f"Name: has more than {NAME_MAX_LENGTH} characters"
        )
        assert f'value="{too_long}"' in long_page, "kept whole, never shortened"
        both = await refused(browser, NEW, {"csrf": csrf, "name": "", "expires": "7"}, NEW)
        assert "Name: is empty" in both and "Scopes: is empty" in both, "named together"
        odd = await refused(browser, NEW, {**form, "name": "Odd", "expires": "forever"}, NEW)
        assert 'id="expires-error">Expires: choose one of 7 days' in odd
        assert await row_counts(owner_conn) == before

        exact = "y" * NAME_MAX_LENGTH
        made = await browser.post(NEW, {**form, "name": exact})
        assert made.status_code == 200 and SHOWN.findall(made.text)
    saved = await owner_conn.fetchval(
        "SELECT name FROM api_tokens WHERE tenant_id = $1 AND name LIKE 'yyy%'", org.id
    )
    assert saved == exact


async def test_a_scope_beyond_the_creator_s_permissions_is_refused_beside_the_field(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a role other than owner to manage tokens, it could give only what it holds;
    the service refuses the rest whatever is posted (a box the form shows disabled)."""
    org = local_org
    monkeypatch.setitem(
        ROLE_PERMISSIONS, Role.ADMIN, ROLE_PERMISSIONS[Role.ADMIN] | {Permission.TOKENS_WRITE}
    )
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, "admin")
        form = await browser.get(NEW)
        assert form.status_code == 200
        assert re.search(r'value="organisation:write"[^>]*disabled', form.text)
        assert not re.search(r'value="members:read"[^>]*disabled', form.text)
        assert "beyond your own permissions" in text_of(form.text)
        before = await row_counts(owner_conn)
        page = await refused(
            browser,
            NEW,
            {"csrf": csrf, "name": "Escalation", "scopes": ["members:read", "organisation:write"]},
            NEW,
        )
        beside = re.search(r'<p class="field-error" id="scopes-error">([^<]+)</p>', page)
        assert beside and html.unescape(beside.group(1)) == (
            "Scopes: organisation:write: beyond your own permissions"
        )
        assert 'aria-describedby="scopes-error"' in page
        assert 'value="Escalation"' in page
        assert await row_counts(owner_conn) == before
        unknown = await refused(
            browser, NEW, {"csrf": csrf, "name": "Typo", "scopes": ["members:raed"]}, NEW
        )
        assert 'id="scopes-error"' in unknown and "unknown scope" in unknown
        none = await refused(browser, NEW, {"csrf": csrf, "name": "Nothing"}, NEW)
        assert 'id="scopes-error">Scopes: is empty<' in none
        forged = await browser.post(NEW, {"name": "Forged", "scopes": ["members:read"]})
        assert forged.status_code == 403
        assert await row_counts(owner_conn) == before


async def test_revoking_asks_first_naming_what_stops_and_then_the_token_gets_401(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, client: httpx.AsyncClient
) -> None:
    org = local_org
    token_id, token = await make_token(org, "Nightly export", ["members:read"])
    unused_id, _ = await make_token(org, "Unused", ["members:read"])
    assert await api_status(client, token) == 200
    action = f"{PAGE}/{token_id}/revoke"
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        asked = await browser.post(action, {"csrf": csrf})
        assert asked.status_code == 200
        shown = text_of(asked.text)
        assert "Revoke the API token Nightly export?" in shown
        assert "gets 401 Unauthorized from its next request" in shown
        assert "It was last used" in shown and "<time" in asked.text
        assert 'name="confirmed" value="1"' in asked.text
        assert await api_status(client, token) == 200, "nothing happens before confirming"
        never = await browser.post(f"{PAGE}/{unused_id}/revoke", {"csrf": csrf})
        assert "It has never been used." in text_of(never.text)

        done = await browser.post(action, {"csrf": csrf, "confirmed": "1"})
        assert done.status_code == 303 and done.headers["location"] == PAGE
        assert await api_status(client, token) == 401
        listing = await browser.get(PAGE)
        row = listing.text[listing.text.index(f'id="token-{token_id}"') :].split("</tr>")[0]
        assert 'class="badge revoked"' in row
        again = await browser.post(action, {"csrf": csrf, "confirmed": "1"})
        assert again.status_code == 303
    [event] = await audit_events(owner_conn, org.id, "api_token.revoked")
    assert event.target_id == str(token_id) and event.actor.startswith("member:")


@pytest.mark.parametrize("role", ["admin", "auditor", "helpdesk", "member"])
async def test_only_an_owner_manages_tokens_and_who_may_see_them_sees_no_button(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection, role: str
) -> None:
    org = local_org
    token_id, _ = await make_token(org, "Kept", ["members:read"])
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org, role)
        before = await row_counts(owner_conn)
        listing = await browser.get(PAGE)
        sees = Permission.TOKENS_READ in ROLE_PERMISSIONS[Role(role)]
        assert listing.status_code == (200 if sees else 403)
        if sees:
            assert "Kept" in listing.text and "/revoke" not in listing.text
            assert f'href="{NEW}"' not in listing.text
        assert (await browser.get(NEW)).status_code == 403
        posted = await browser.post(NEW, {"csrf": csrf, "name": "Mine", "scopes": ["members:read"]})
        assert posted.status_code == 403
        revoke = await browser.post(f"{PAGE}/{token_id}/revoke", {"csrf": csrf, "confirmed": "1"})
        assert revoke.status_code == 403
        assert await row_counts(owner_conn) == before


async def test_a_token_of_another_organisation_cannot_be_revoked(
    app: Any, two_orgs: tuple[OrgHandle, OrgHandle], client: httpx.AsyncClient
) -> None:
    alpha, bravo = two_orgs
    await set_local_sign_in(alpha.id, True)
    theirs, token = await make_token(bravo, "Bravo's", ["members:read"])
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, alpha)
        for form in ({"csrf": csrf}, {"csrf": csrf, "confirmed": "1"}):
            answer = await browser.post(f"{PAGE}/{theirs}/revoke", form)
            assert answer.status_code == 404
            assert "no such API token" in text_of(answer.text)
        assert (await browser.post(f"{PAGE}/not-an-id/revoke", {"csrf": csrf})).status_code == 404
        listing = await browser.get(PAGE)
        assert "Bravo&#39;s" not in listing.text and "Bravo's" not in listing.text
    assert await api_status(client, token) == 200


async def test_sending_the_form_again_makes_no_second_token(
    app: Any, local_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """A reload of the page that showed the token sends the form again: it says what the
    form made, shows no token, and makes none (a newcomer had two "Nightly export")."""
    org = local_org
    async with asgi_client(app) as browser:
        csrf = await signed_in(browser, org)
        form = await browser.get(NEW)
        form_id = re.search(r'name="form_id" value="([0-9a-f-]{36})"', form.text)
        assert form_id is not None, "each form shown carries its id"
        assert form_id.group(1) not in (await browser.get(NEW)).text, "a new id each time"
        sent = {"csrf": csrf, "form_id": form_id.group(1), "name": "Nightly export",
                "scopes": ["members:read"], "expires": "30"}
        made = await browser.post(NEW, sent)
        assert len(SHOWN.findall(made.text)) == 1
        again = await browser.post(NEW, sent)
        assert again.status_code == 303, again.text[:500]
        listing = await browser.get(again.headers["location"])
        assert SHOWN.findall(listing.text) == []
        assert "This form was already sent: it made the API token Nightly export" in text_of(
            listing.text
        )
        other = await browser.post(NEW, {**sent, "form_id": str(uuid.uuid4())})
        assert len(SHOWN.findall(other.text)) == 1, "another form makes another token"
    made_names = await owner_conn.fetch(
        "SELECT made_by_form FROM api_tokens WHERE tenant_id = $1 AND name = 'Nightly export'",
        org.id,
    )
    assert len(made_names) == 2
    made_events = await audit_events(owner_conn, org.id, "api_token.created")
    assert [e.after["name"] for e in made_events].count("Nightly export") == 2
