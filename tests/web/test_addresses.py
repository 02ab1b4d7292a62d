"""Text PostgreSQL cannot hold (a NUL, a lone surrogate) in a page's address or in a
sign-in form is refused with a 400 naming the parameter, on every console, account and
sign-in page, and never reaches the database as a 500."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
import pytest

from tenants.permissions import Role
from tests.conftest import OrgHandle
from tests.web.flows import PASSWORD, asgi_client, text_of
from tests.web.test_roles import ROUTES, make_targets, matrix_org, person_with_role, sign_in

__all__ = ["matrix_org"]  # the role matrix's fixture, used here too

#: The parameters the console's lists, searches and exports read, each given a NUL.
NUL_QUERY = {name: "\x00" for name in ("q", "email", "actor", "action", "target_id", "cursor")}


def with_nul(url: str) -> str:
    """``url`` with a NUL in each of its own parameters and in every NUL_QUERY one."""
    parts = urlsplit(url)
    own = {key: "\x00" for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    return f"{parts.path}?{urlencode({**NUL_QUERY, **own})}"


async def test_no_console_page_fails_on_a_nul_in_its_query(app: Any, matrix_org: OrgHandle) -> None:
    owner = await person_with_role(matrix_org, Role.OWNER)
    targets = await make_targets(matrix_org)
    answers: dict[str, str] = {}
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, owner)
        for route in [r for r in ROUTES if r.method == "GET"]:
            try:
                response = await browser.get(with_nul(route.url(targets)))
            except Exception as exc:  # a download that failed after its first bytes
                answers[route.key] = f"raised {exc!r}"[:200]
            else:
                answers[route.key] = str(response.status_code)
    assert {key: answer for key, answer in answers.items() if answer != "400"} == {}


async def test_the_refusal_names_the_parameter_and_why(app: Any, matrix_org: OrgHandle) -> None:
    owner = await person_with_role(matrix_org, Role.OWNER)
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, owner)
        refused = await browser.get("/console/audit?actor=%00&action=member.")
        # Encoded surrogates are decoded to U+FFFD before any page sees them: no refusal.
        surrogate = await browser.get("/console/members?q=%ED%A0%80")
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "query.actor contains a NUL character (U+0000), which cannot be stored" in text_of(
        refused.text
    )
    assert "query.action" not in refused.text
    assert surrogate.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/login?next=%00",
        "/login/%00",
        "/login/{slug}?email=%00",
        "/oidc/{slug}/callback?code=%00&state=%00",
        "/invitation/%00",
        "/account?setting=%00",
        "/static/%00",
    ],
)
async def test_sign_in_and_account_addresses_with_a_nul_are_refused(
    app: Any, matrix_org: OrgHandle, path: str
) -> None:
    async with asgi_client(app) as browser:
        response = await browser.get(path.format(slug=matrix_org.slug))
    assert response.status_code == 400, response.text
    assert "NUL character" in text_of(response.text)


async def test_the_api_keeps_its_own_answer_and_programs_get_a_problem(app: Any) -> None:
    async with asgi_client(app) as browser:
        token = await browser.get("/.well-known/jwks.json?x=%00")
    assert token.status_code == 422
    assert token.json()["errors"] == [
        {"field": "query.x", "reason": "contains a NUL character (U+0000), which cannot be stored"}
    ]


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/login", {"email": "ada\x00@{domain}"}),
        ("/login/{slug}/password", {"email": "ada\x00@{domain}", "password": PASSWORD}),
        ("/login/{slug}/sso", {"next": "/console\x00"}),
    ],
)
async def test_a_sign_in_form_with_a_nul_is_refused_naming_the_field(
    app: Any,
    matrix_org: OrgHandle,
    owner_conn: asyncpg.Connection,
    path: str,
    form: dict[str, str],
) -> None:
    owner = await person_with_role(matrix_org, Role.OWNER)
    domain = owner["email"].split("@")[1]
    logged = await owner_conn.fetchval("SELECT count(*) FROM sign_ins")
    async with asgi_client(app) as browser:
        csrf = await browser.login_csrf(matrix_org.slug)
        sent = {key: value.format(domain=domain) for key, value in form.items()}
        response = await browser.post(path.format(slug=matrix_org.slug), {**sent, "csrf": csrf})
    assert response.status_code == 400, response.text
    field = next(iter(form))
    assert f"{field} contains a NUL character (U+0000)" in text_of(response.text)
    assert await owner_conn.fetchval("SELECT count(*) FROM sign_ins") == logged


async def test_a_console_form_field_with_a_nul_is_refused_naming_the_field(
    app: Any, matrix_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    owner = await person_with_role(matrix_org, Role.OWNER)
    targets = await make_targets(matrix_org)
    editable = targets.extra["editable"]
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, owner)
        csrf = await browser.csrf_of("/console")
        sent = await browser.post(
            f"/console/members/{editable}/details",
            {"csrf": csrf, "name": "Ada\x00Hopper", "email": targets.extra["editable_email"]},
        )
        assert sent.status_code == 303
        landing = text_of((await browser.get(sent.headers["location"])).text)
    assert "Not done: the form holds characters that cannot be kept" in landing
    assert "Name: contains a NUL character (U+0000)" in landing
    name = await owner_conn.fetchval("SELECT name FROM members WHERE id = $1", uuid.UUID(editable))
    assert name == "Editable Member"


async def test_a_field_sent_twice_with_a_nul_in_one_value_is_refused_naming_it(
    app: Any, matrix_org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    owner = await person_with_role(matrix_org, Role.OWNER)
    reviews = await owner_conn.fetchval("SELECT count(*) FROM access_reviews")
    async with asgi_client(app) as browser:
        await sign_in(browser, matrix_org, owner)
        csrf = await browser.csrf_of("/console")
        form = {
            "csrf": csrf,
            "name": "Reviewed twice",
            "reviewer_rule": "named",
            "named_reviewer_ids": [owner["id"] + "\x00", owner["id"]],  # the first: not in ctx.form
        }
        sent = await browser.http.post("/console/access-reviews", data=form)
        assert sent.status_code == 303, sent.text
        landing = text_of((await browser.get(sent.headers["location"])).text)
    assert "Not done: the form holds characters that cannot be kept" in landing
    assert "Named reviewers: contains a NUL character (U+0000)" in landing
    assert await owner_conn.fetchval("SELECT count(*) FROM access_reviews") == reviews
