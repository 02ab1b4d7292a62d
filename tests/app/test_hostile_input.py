"""Crafted input an authenticated caller can send, each once answered with HTTP 500.

Every case here reached the database unparsed: a cursor a client built itself, a string
PostgreSQL cannot store, a control character. Each must now be a 4xx problem naming the
field, and write nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from tenants import cursors
from tests.conftest import OrgHandle, make_member, row_counts
from tests.scim.conftest import USER_URN, Scim, scim_for
from tests.support.api_schema import JSON, assert_problem


def unsigned(payload: Any) -> str:
    """A cursor as clients could build one before cursors were signed: base64 of JSON."""
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def two_pages(org: OrgHandle, sort: str) -> None:
    for _ in range(2):
        await make_member(org)
    page = await org.get("/v1/members", params={"limit": 1, "sort": sort})
    assert page.status_code == 200, page.text
    assert page.json()["next_cursor"]


async def refused_cursor(org: OrgHandle, sort: str, cursor: str) -> JSON:
    response = await org.get("/v1/members", params={"limit": 1, "sort": sort, "cursor": cursor})
    problem = assert_problem(response, 400)
    assert [e["field"] for e in problem["errors"]] == ["cursor"], problem
    return problem


async def refused_position(org: OrgHandle, sort: str, position: list[Any]) -> None:
    """Refused as a client would build it, and even when signed with the service's key: the
    position is checked against the column before the query, not only the signature."""
    await refused_cursor(org, sort, unsigned([sort, *position]))
    await refused_cursor(org, sort, cursors.seal("members", sort, position))


async def test_a_cursor_whose_id_is_not_a_string_is_refused_naming_cursor(
    org: OrgHandle,
) -> None:
    await two_pages(org, "email")
    await refused_position(org, "email", ["a@example.org", 12345])


async def test_a_cursor_value_holding_a_lone_surrogate_is_refused_naming_cursor(
    org: OrgHandle,
) -> None:
    await two_pages(org, "email")
    crafted = '["email","\\ud800",' + json.dumps(str(uuid.uuid4())) + "]"
    cursor = base64.urlsafe_b64encode(crafted.encode()).decode().rstrip("=")
    await refused_cursor(org, "email", cursor)


async def test_a_cursor_value_longer_than_its_column_is_refused_naming_cursor(
    org: OrgHandle,
) -> None:
    await two_pages(org, "name")
    await refused_position(org, "name", ["n" * 500, str(uuid.uuid4())])


async def test_a_status_cursor_whose_value_is_not_a_status_is_refused_naming_cursor(
    org: OrgHandle,
) -> None:
    await two_pages(org, "status")
    await refused_position(org, "status", ["zombie", str(uuid.uuid4())])


async def test_a_cursor_issued_for_one_list_is_refused_by_another(org: OrgHandle) -> None:
    await two_pages(org, "created_at")
    for _ in range(2):
        assert (
            await org.post("/v1/groups", {"name": f"g-{uuid.uuid4().hex[:6]}"})
        ).status_code == 201
    cursor = (await org.get("/v1/groups", params={"limit": 1, "sort": "created_at"})).json()[
        "next_cursor"
    ]
    await refused_cursor(org, "created_at", cursor)


async def test_a_lone_surrogate_escape_in_any_scim_string_is_refused_as_invalid_value(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    scim = await scim_for(org)
    before = await row_counts(owner_conn)
    head = '{"schemas":["' + USER_URN + '"],'
    bodies = [
        head + '"userName":"a\\ud800b"}',
        head + '"userName":"ok@example.org","displayName":"\\udfff"}',
        head + '"userName":"ok@example.org","name":{"givenName":"\\ud800"}}',
        head + '"userName":"ok@example.org","externalId":"x\\ud83d"}',
        head + '"userName":"ok@example.org","\\ud800":"x"}',
    ]
    for body in bodies:
        response = await raw_scim(scim, "POST", "/Users", body)
        assert_scim_invalid_value(response)
    assert await row_counts(owner_conn) == before


async def test_a_nul_in_a_scim_external_id_is_refused_as_invalid_value(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    scim = await scim_for(org)
    before = await row_counts(owner_conn)
    body = {"schemas": [USER_URN], "userName": "nul@example.org", "externalId": "a\u0000b"}
    assert_scim_invalid_value(await scim.post("/Users", body))
    assert await row_counts(owner_conn) == before


async def raw_scim(scim: Scim, method: str, path: str, body: str) -> httpx.Response:
    return await scim.client.request(
        method,
        f"/scim/v2{path}",
        content=body.encode("utf-8", "surrogatepass"),
        headers=scim.headers,
    )


def assert_scim_invalid_value(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["scimType"] == "invalidValue", error


# --- one text policy for names and free text -------------------------------------------------

#: Characters a name must not hold: C0 and C1 controls, and a bidirectional override.
NOT_IN_NAMES = ["\u0001", "\u001f", "\u007f", "\u0085", "\u202e", "\u2066"]


async def test_names_with_control_or_bidi_characters_are_refused_on_every_write(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    for char in NOT_IN_NAMES:
        for path, body in (
            ("/v1/units", {"name": f"Sa{char}les", "parent_id": str(org.root_unit_id)}),
            ("/v1/groups", {"name": f"txt{char}exe"}),
            (
                "/v1/members",
                {
                    "email": f"c{uuid.uuid4().hex[:6]}@{org.slug}.example",
                    "name": f"E{char}ve",
                    "unit_id": str(org.root_unit_id),
                },
            ),
        ):
            problem = assert_problem(await org.post(path, body), 422)
            assert [e["field"] for e in problem["errors"]] == ["name"], (path, char, problem)
            assert f"U+{ord(char):04X}" in problem["errors"][0]["reason"], problem
    assert await row_counts(owner_conn) == before


async def test_names_are_stored_in_nfc_and_free_text_keeps_line_breaks(org: OrgHandle) -> None:
    unit = await org.post("/v1/units", {"name": "Re\u0301seau", "parent_id": str(org.root_unit_id)})
    assert unit.status_code == 201, unit.text
    assert unit.json()["name"] == "R\u00e9seau"
    member = await make_member(org)
    response = await org.post(
        f"/v1/members/{member['id']}/transitions",
        {"action": "suspend", "reason": "left\r\nthe team\tfor good"},
    )
    assert response.status_code == 200, response.text
    events = (await org.get("/v1/audit-events", params={"target_id": member["id"]})).json()
    reasons = [(e.get("after") or {}).get("reason") for e in events["items"]]
    assert "left\nthe team\tfor good" in reasons, events


async def test_free_text_refuses_control_characters_other_than_line_breaks(
    org: OrgHandle,
) -> None:
    member = await make_member(org)
    response = await org.post(
        f"/v1/members/{member['id']}/transitions", {"action": "suspend", "reason": "bell\u0007"}
    )
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["reason"], problem


async def test_scim_names_with_control_or_bidi_characters_are_invalid_values(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    scim = await scim_for(org)
    before = await row_counts(owner_conn)
    for char in NOT_IN_NAMES:
        for extra in (
            {"displayName": f"E{char}ve"},
            {"name": {"familyName": f"a{char}x"}},
            {"externalId": f"e{char}f"},
        ):
            body = {"schemas": [USER_URN], "userName": "eve@example.org", **extra}
            assert_scim_invalid_value(await scim.post("/Users", body))
    assert await row_counts(owner_conn) == before
    created = await scim.create_user("Jose\u0301@example.org", displayName="Jos\u0065\u0301")
    assert created["displayName"] == "Jos\u00e9"


async def test_a_scim_filter_with_a_lone_surrogate_or_nul_is_an_invalid_filter(
    org: OrgHandle,
) -> None:
    scim = await scim_for(org)
    for value in ('"\\ud800"', '"a\\u0000b"'):
        response = await scim.get("/Users", filter=f"userName eq {value}")
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidFilter", response.text


# --- 405 names what is allowed ---------------------------------------------------------------


async def test_a_405_on_v1_carries_allow_with_every_method_of_the_path(org: OrgHandle) -> None:
    member = await make_member(org)
    response = await org.put(f"/v1/members/{member['id']}", json={})
    problem = assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH"}, problem
    response = await org.delete("/v1/members")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    # A fixed path beside an id's (/v1/members/{id}): the id's methods answer it only with
    # "'import' is not an id", so they are not its methods (schemathesis ST204/ST205), and
    # the id's own methods answer 405 there too, not 404: the path exists.
    for method, path in (
        ("DELETE", "/v1/members/import"),
        ("GET", "/v1/members/import"),
        ("PATCH", "/v1/members/import"),
        ("PUT", "/v1/content/bulk"),
        ("GET", "/v1/content/bulk"),
    ):
        response = await org.client.request(
            method, path, headers={"authorization": f"Bearer {org.token}"}
        )
        assert_problem(response, 405)
        assert response.headers["allow"] == "POST", (method, path)
    # Where no route serves the path, a malformed id is still nothing at all.
    assert_problem(await org.get("/v1/members/not-an-id"), 404)


async def test_a_405_on_scim_carries_allow_and_a_scim_error(org: OrgHandle) -> None:
    scim = await scim_for(org)
    response = await scim.request("PUT", "/Users")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    response = await scim.request("POST", "/ServiceProviderConfig", {})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


async def test_a_405_on_a_console_page_carries_allow(org: OrgHandle) -> None:
    response = await org.client.delete("/console/units")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"].split(", ")


def test_the_cli_refuses_names_the_api_refuses_before_touching_anything() -> None:
    for char in NOT_IN_NAMES:
        result = CliRunner().invoke(cli, ["org", "create", "acme", "--name", f"Ac{char}me"])
        assert result.exit_code == 2, result.output
        assert f"U+{ord(char):04X}" in result.output, result.output


async def test_a_lone_surrogate_escape_in_a_json_body_is_refused_naming_its_field(
    org: OrgHandle,
) -> None:
    """JSON may escape a lone surrogate (``"\\udc00"``), which is not text: the model's
    parser refused the whole body naming ``body``; the field is named now, as SCIM does."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {org.token}"}
    for body, field in (
        ('{"name": "x\\udc00"}', "name"),
        ('{"name": "ok", "description": "a \\ud800 b"}', "description"),
    ):
        answer = await org.client.post("/v1/groups", content=body.encode(), headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        problems = answer.json()["errors"]
        assert [e["field"] for e in problems] == [field], problems
        assert "surrogate" in problems[0]["reason"]
    nested = (
        '{"email": "s@x.example", "name": "S", "unit_id": "%s", "roles": ["member", "\\udfff"]}'
    )
    answer = await org.client.post(
        "/v1/members", content=(nested % org.root_unit_id).encode(), headers=headers
    )
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["roles[1]"]


async def test_a_json_body_naming_a_member_twice_is_refused_naming_it(org: OrgHandle) -> None:
    """``{"name": "a", "name": "b"}`` was read as "b" (the last); parsers disagree on
    which one counts, so the body is refused and nothing is written."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {org.token}"}
    answer = await org.client.post(
        "/v1/groups", content=b'{"name": "Alpha", "name": "Beta"}', headers=headers
    )
    problem = assert_problem(answer, 422)
    assert [e["field"] for e in problem["errors"]] == ["name"], problem
    nested = b'{"name": "Gamma", "description": "x", "description": "y"}'
    assert (await org.client.post("/v1/groups", content=nested, headers=headers)).status_code == 422
    listed = (await org.get("/v1/groups?limit=100")).json()["items"]
    assert not {"Alpha", "Beta", "Gamma"} & {g["name"] for g in listed}


async def test_an_id_that_does_not_parse_or_a_stray_slash_is_a_404_whatever_the_method(
    org: OrgHandle,
) -> None:
    """No method serves such an address: not a 405 with an empty Allow (which reads as "no
    method ever works here"), and not a redirect built from the request's Host header."""
    for method, path in (
        ("POST", "/v1/members/not-an-id"),
        ("PUT", "/v1/units/x/move"),
        ("POST", "/v1/groups/x/members"),
        ("DELETE", "/v1/access/grants/x"),
        ("POST", "/v1/members/%ED%A0%80"),
        ("GET", "/v1/members/"),
    ):
        response = await org.client.request(
            method, path, headers={**org.headers, "host": "evil.example"}, json={}
        )
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
        assert "location" not in response.headers and "allow" not in response.headers
    # A method a real address does not take is still a 405 naming the ones it does.
    wrong = await org.client.request("PUT", "/v1/members", headers=org.headers, json={})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, POST"
    scim_root = await org.client.get("/scim/v2", headers=org.headers)
    assert scim_root.status_code == 404
    assert scim_root.headers["content-type"].startswith("application/scim+json")


async def test_identifiers_an_admin_types_pass_the_text_policy_too(org: OrgHandle) -> None:
    """Not only names: an audience, a client id, a claim's name and a setting's value are
    shown back in the console and logs, so control and bidirectional characters are refused
    there as well, naming the field, and nothing is stored."""
    hostile = "a\u0085b\u202ec\u0007"
    cases = [
        (
            "PUT",
            "/v1/signal-transmitter",
            {"issuer": "https://tx.example.org", "jwks_uri": "https://tx.example.org/jwks",
             "audience": hostile, "enabled": False},
            "audience",
        ),
        (
            "PUT",
            "/v1/identity-backend",
            {"kind": "keycloak", "server_url": "https://kc.example.org", "realm": "r",
             "client_id": hostile, "client_secret": "s" * 20},
            "client_id",
        ),
        (
            "POST",
            "/v1/sso-connection/preview",
            {"issuer": "https://idp.example.org", "client_id": "c", "email_claim": hostile},
            "email_claim",
        ),
    ]  # fmt: skip
    for method, path, body, field in cases:
        response = await org.client.request(method, path, headers=org.headers, json=body)
        problem = assert_problem(response, 422)
        assert [e["field"] for e in problem["errors"]] == [field], (path, problem)
        assert "control character" in problem["errors"][0]["reason"]
    assert (await org.get("/v1/signal-transmitter")).status_code == 404
    assert (await org.get("/v1/identity-backend")).json()["kind"] == "local"


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/v1/groups", "application/json"),
        ("/v1/members/import?dry_run=true", "text/csv"),
        ("/v1/content/bulk", "application/x-ndjson"),
        ("/v1/access/check", "application/json"),
        ("/scim/v2/Users", "application/scim+json"),
    ],
)
async def test_a_body_cut_short_by_a_leaving_client_is_no_server_error(
    org: OrgHandle, live_server: str, caplog: pytest.LogCaptureFixture, path: str, media: str
) -> None:
    """A client that promised 100 bytes, sent 18 and left made an unhandled error with a
    traceback in the log and a 500 in the metrics, as often as anyone liked."""
    host, port = live_server.removeprefix("http://").split(":")
    token = org.headers["Authorization"]
    with caplog.at_level(logging.INFO):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
            f"Content-Type: {media}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"name": "Cut sho'
        )
        await writer.drain()
        writer.write_eof()
        await reader.read()  # the server closes its side
        writer.close()
        await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ]
    assert any(
        "client left before sending its whole body" in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records][-5:]


async def test_a_nested_list_s_cursor_serves_that_list_only(org: OrgHandle) -> None:
    """A group's member-list cursor went on in the organisation's member list and in any
    other group's (they were bound to the table, not the list)."""
    first = await org.post("/v1/groups", {"name": "first"})
    second = await org.post("/v1/groups", {"name": "second"})
    for _ in range(3):
        member = await make_member(org)
        for group in (first.json(), second.json()):
            added = await org.client.put(
                f"/v1/groups/{group['id']}/members/{member['id']}", headers=org.headers
            )
            assert added.status_code in (200, 204), added.text
    path = f"/v1/groups/{first.json()['id']}/members"
    cursor = (await org.get(path, params={"limit": 1})).json()["next_cursor"]
    assert (await org.get(path, params={"limit": 1, "cursor": cursor})).status_code == 200
    for elsewhere in (f"/v1/groups/{second.json()['id']}/members", "/v1/members"):
        params = {"limit": 1, "cursor": cursor} | (
            {"sort": "email"} if "groups" not in elsewhere else {}
        )
        problem = assert_problem(await org.get(elsewhere, params=params), 400)
        assert [e["field"] for e in problem["errors"]] == ["cursor"], (elsewhere, problem)


async def test_an_id_in_a_path_is_read_in_its_canonical_form_only(org: OrgHandle) -> None:
    member = await make_member(org)
    plain = member["id"]
    assert (await org.get(f"/v1/members/{plain}")).status_code == 200
    assert (await org.get(f"/v1/members/{plain.upper()}")).status_code == 200
    for other in (f"{{{plain}}}", f"urn:uuid:{plain}", plain.replace("-", "")):
        problem = assert_problem(await org.get(f"/v1/members/{other}"), 404)
        assert "is not an id" in problem["detail"], other


async def test_identifiers_longer_than_their_columns_are_refused_not_a_500(
    app: Any, org: OrgHandle
) -> None:
    """A client id over its column's length at /oauth/token, and an address over 320
    characters at password sign-in, made the ORM refuse the comparison: a 500 anyone
    could cause without signing in."""
    long_id = f"pc_{org.id.hex}_{'x' * 120}"
    token = await org.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(long_id, "secret")
    )
    assert token.status_code == 401, token.text
    from tests.web.flows import asgi_client

    async with asgi_client(app) as browser:
        csrf = await browser.login_csrf(org.slug)
        signed = await browser.post(
            f"/login/{org.slug}/password",
            {"csrf": csrf, "email": "a" * 400 + "@example.org", "password": "whatever"},
        )
        assert signed.status_code < 500, signed.text[:300]
