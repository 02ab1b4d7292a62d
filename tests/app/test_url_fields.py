"""Every URL a request body takes fits the column it is stored in and names a host a
resolver can look up, or is refused naming the field (found by the document, so a new
URL field is covered the day it is added).

An outside fuzzer found three of them without a length: a 600-character issuer or
server URL passed validation and was refused by its column (a 500), and an issuer whose
host had a 64-character label was saved, then failed every sign-in test in the
resolver's codec (another 500)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import OrgHandle
from tests.support.api_schema import JSON, non_null, operations, served_document, valid_object


def url_fields(document: JSON) -> list[tuple[str, str, str, int | None]]:
    """(method, path, property, maxLength) of every top-level uri property of a JSON body."""
    found = []
    for operation in operations(document):
        schema = operation.body_schema
        if schema is None:
            continue
        for name, prop in schema.get("properties", {}).items():
            prop = non_null(document, prop)
            if prop.get("type") == "string" and prop.get("format") == "uri":
                found.append((operation.method, operation.path, name, prop.get("maxLength")))
    return found


async def test_every_url_a_request_takes_declares_the_length_its_column_holds(
    client: httpx.AsyncClient,
) -> None:
    fields = url_fields(await served_document(client))
    assert len(fields) >= 5, fields  # SSO (save, preview), signals (2), identity backend
    assert [f for f in fields if f[3] is None] == []


async def configured(org: OrgHandle) -> dict[str, object]:
    """What the organisation has configured behind the URL fields, as the API reads it."""
    found: dict[str, object] = {}
    for path in ("/v1/sso-connection", "/v1/identity-backend", "/v1/signal-transmitter"):
        response = await org.get(path)
        body = response.json()
        body.pop("request_id", None)
        found[path] = (response.status_code, body)
    return found


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.org/" + "a" * 2100,  # longer than any column
        "https://" + "a" * 64 + ".example.org",  # a label the resolver cannot encode
        "https://idp..example.org",  # an empty label
    ],
    ids=["too-long", "label-over-63", "empty-label"],
)
async def test_a_url_too_long_for_its_column_or_with_a_bad_host_is_refused_naming_it(
    org: OrgHandle, client: httpx.AsyncClient, url: str
) -> None:
    document = await served_document(client)
    before = await configured(org)
    for method, path, name, _ in url_fields(document):
        operation = next(o for o in operations(document) if o.key == f"{method} {path}")
        schema = operation.body_schema
        assert schema is not None
        body = {**valid_object(document, schema, {}, org.slug), name: url}
        if "kind" in schema.get("properties", {}):
            body["kind"] = "keycloak"
        response = await org.client.request(method, path, headers=org.headers, json=body)
        assert response.status_code == 422, (method, path, name, response.text)
        assert name in [e["field"] for e in response.json()["errors"]], response.text
    assert await configured(org) == before
