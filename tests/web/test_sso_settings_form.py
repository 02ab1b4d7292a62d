"""The identity provider form on the console's Settings page accepts what
``PUT /v1/sso-connection`` accepts and refuses what it refuses (the form is validated by
the API's own model, the issuer by the service's rule), each refusal beside its field."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.conftest import OrgHandle
from tests.web.flows import WebClient, asgi_client, set_local_sign_in
from tests.web.test_console_limits import owner_signed_in
from tests.web.test_form_errors import error_beside, refused

FORM = {"issuer": "https://idp.example.org", "client_id": "tenantry-web", "enabled": "on"}
API = {"issuer": "https://idp.example.org", "client_id": "tenantry-web"}


@pytest.fixture(autouse=True)
async def local_sign_in(org: OrgHandle) -> None:
    await set_local_sign_in(org.id, True)


async def stored_scopes(conn: asyncpg.Connection, org: OrgHandle) -> Any:
    return await conn.fetchval(
        "SELECT scopes::text FROM sso_connections WHERE tenant_id = $1", org.id
    )


async def saved(browser: WebClient, csrf: str, **fields: str) -> None:
    response = await browser.post("/console/settings/sso", {"csrf": csrf, **FORM, **fields})
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == "/console/settings"


async def test_scopes_are_split_on_spaces_commas_and_lines_without_repeats(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        await saved(browser, csrf, scopes="openid email")
        assert await stored_scopes(owner_conn, org) == '["openid", "email"]'
        await saved(browser, csrf, scopes=" openid, email\r\nprofile  email,,\n")
        assert await stored_scopes(owner_conn, org) == '["openid", "email", "profile"]'


@pytest.mark.parametrize(
    ("field", "form_value", "api_value"),
    [
        ("scopes", 'openid "email"', ["openid", '"email"']),
        ("issuer", "http://idp.example.org", "http://idp.example.org"),
        ("client_id", "c" * 3000, "c" * 3000),
        ("client_id", "c" * 256, "c" * 256),
        ("email_claim", "e" * 101, "e" * 101),
    ],
)
async def test_the_form_and_the_api_refuse_the_same_values(
    app: Any,
    org: OrgHandle,
    owner_conn: asyncpg.Connection,
    field: str,
    form_value: str,
    api_value: Any,
) -> None:
    api = await org.put("/v1/sso-connection", json={**API, field: api_value})
    assert api.status_code == 422, api.text
    assert any(f["field"].startswith(field) for f in api.json()["errors"]), api.text
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        page = await refused(
            browser,
            "/console/settings/sso",
            {"csrf": csrf, **FORM, field: form_value},
            "/console/settings",
        )
    assert error_beside(page, field)
    if len(form_value) <= 500:
        assert f'value="{form_value.replace(chr(34), "&#34;")}"' in page
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == 0
    )


async def test_the_issuer_rule_names_https_and_allows_this_machine_over_http(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        page = await refused(
            browser,
            "/console/settings/sso",
            {"csrf": csrf, **FORM, "issuer": "http://idp.example.org"},
            "/console/settings",
        )
        assert "https://" in error_beside(page, "issuer")
        await saved(browser, csrf, issuer="http://127.0.0.1:9", client_id="c" * 255)
    assert (
        await owner_conn.fetchval(
            "SELECT client_id FROM sso_connections WHERE tenant_id = $1", org.id
        )
        == "c" * 255
    )
    api = await org.put("/v1/sso-connection", json={**API, "issuer": "http://localhost:9"})
    assert api.status_code == 200, api.text


async def test_a_first_connection_is_offered_with_sign_in_off_until_it_is_switched_on(
    app: Any, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """Saving a provider nobody has tested must not send members to it: the switch starts
    off for a new connection, says why, and stays as saved afterwards."""
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        page = (await browser.get("/console/settings")).text
        assert '<input type="checkbox" name="enabled" aria-describedby="enabled-hint">' in page
        assert 'id="enabled-hint"' in page
        await saved(browser, csrf, enabled="")
        enabled = "SELECT enabled FROM sso_connections WHERE tenant_id = $1"
        assert await owner_conn.fetchval(enabled, org.id) is False
        await saved(browser, csrf)
        assert await owner_conn.fetchval(enabled, org.id) is True
        page = (await browser.get("/console/settings")).text
        assert '<input type="checkbox" name="enabled" checked>' in page
        assert 'id="enabled-hint"' not in page


async def test_an_empty_or_unreadable_form_is_refused_in_words_and_asks_for_the_secret_again(
    app: Any, org: OrgHandle
) -> None:
    """The refusals read "Issuer: input should be a valid URL, relative URL without a
    base", and the typed secret was gone with nothing saying to type it again."""
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        page = await refused(
            browser,
            "/console/settings/sso",
            {"csrf": csrf, "issuer": "idp.example.org", "client_id": "", "client_secret": "s"},
            "/console/settings",
        )
    assert "is not a web address: write it in full, as https://" in error_beside(page, "issuer")
    assert "is empty" in error_beside(page, "client_id")
    assert "valid URL" not in page and "at least 1 character" not in page
    assert "type it again: a secret is never written back into a page" in page
    assert 'value="s"' not in page


async def test_a_default_unit_typed_but_not_chosen_is_refused_not_reset_to_the_root(
    app: Any, org: OrgHandle
) -> None:
    """Typing "Year" in the unit picker (five matches, none chosen) and saving reset the
    connection's unit for new members to the root unit, unasked."""
    async with asgi_client(app) as browser:
        csrf = await owner_signed_in(browser, org)
        page = await refused(
            browser,
            "/console/settings/sso",
            {"csrf": csrf, **FORM, "default_unit_id_q": "Year"},
            "/console/settings",
        )
    assert "“Year” is typed but not chosen" in error_beside(page, "default_unit_id")
