"""Bad input on every route: an RFC 9457 problem that names the field and why, and no write.

Routes, bodies and query parameters come from the served OpenAPI document, so the checks
reach a new route or field without edits here. Each check starts from a body that is
valid (built from the request schema) and breaks exactly one thing, so the problem must be
about that thing.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from app.settings import Settings
from tests.conftest import OrgHandle, make_group, make_member, make_unit, row_counts
from tests.support.api_schema import (
    JSON,
    Operation,
    World,
    allows_null,
    assert_problem,
    build_world,
    error_fields,
    is_any,
    non_null,
    operations,
    resolve,
    send,
    served_document,
)

MALFORMED_JSON = [
    b'{"name": ',
    b"{name: 1}",
    b"{'name': 'x'}",
    b'{"a": 1,}',
    b"\xff\xfe{}",
    b"",
    b"[" * 100_000,
    b'{"a": ' + b"1" * 5000 + b"}",
]
NOT_AN_OBJECT: list[Any] = [[], [{"name": "x"}], "text", 42, None, True]
BAD_EMAILS = [
    "not-an-email",
    "a@",
    "@example.org",
    "two@@example.org",
    "spaces in@example.org",
    "a@-bad-.example",
]
MALFORMED_IDS = [
    "not-a-uuid",
    "1",
    "0" * 31,
    "00000000-0000-0000-0000-00000000000g",
    "%00",
    "null",
    "%7Bid%7D",
]
BAD_SORTS = ["bogus", "--name", "-", "id", "tenant_id", "name,email", " name", "secret_hash"]
BAD_LIMITS = ["0", "-1", "501", "ten", "1.5", "1e3", ""]


@pytest.fixture
async def document(org: OrgHandle) -> JSON:
    return await served_document(org.client)


@pytest.fixture
async def world(org: OrgHandle) -> World:
    return await build_world(org)


@pytest.fixture
async def nothing_written(owner_conn: asyncpg.Connection, world: World) -> AsyncIterator[None]:
    """Fails the test if any row (audit events included) appeared or vanished during it."""
    before = await row_counts(owner_conn)
    yield
    assert await row_counts(owner_conn) == before


#: Bodies written by someone else's software, whose additions must not fail a request:
#: Entra's token-issuance callout (Microsoft adds fields; a refusal fails a sign-in).
TOLERANT = {"POST /v1/claims/token-issuance"}


def body_operations(document: JSON) -> list[Operation]:
    found = [op for op in operations(document) if op.body_schema is not None]
    assert len(found) >= 12, [str(op) for op in found]
    return found


def properties(op: Operation) -> dict[str, JSON]:
    schema = op.body_schema
    assert schema is not None
    return {name: resolve(op.document, prop) for name, prop in schema.get("properties", {}).items()}


def names(problem: JSON, field: str) -> str:
    """The reason given for ``field`` (query parameters may be named ``query.<name>``)."""
    fields = error_fields(problem)
    for candidate in (field, f"query.{field}"):
        if candidate in fields:
            return fields[candidate]
    raise AssertionError(f"the problem does not name {field!r}: {problem}")


async def refused(
    org: OrgHandle, op: Operation, world: World, body: Any, status: int = 422, **kw: Any
) -> JSON:
    kw.setdefault("params", world.params(op))
    response = await send(org, op, kw.pop("url", world.url(op)), body, **kw)
    return assert_problem(response, status)


#: A value of another JSON type, for each type a property may declare.
WRONG_BY_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "twelve",
    "boolean": "perhaps",
    "array": "not-a-list",
    "object": ["not", "an", "object"],
}
#: Values of each JSON type, to find one that no member of a union accepts.
OF_TYPE: dict[str, Any] = {"object": {"not": "expected"}, "array": ["x"], "string": "x"}


def wrong_type(document: JSON, schema: JSON) -> Any:
    schema = non_null(document, schema)
    if "enum" in schema:
        return 12345
    if schema.get("anyOf"):  # a union: a value of a kind none of its members accepts
        kinds = {non_null(document, option).get("type") for option in schema["anyOf"]}
        return next(value for kind, value in OF_TYPE.items() if kind not in kinds)
    return WRONG_BY_TYPE[schema["type"]]


def too_big(document: JSON, name: str, schema: JSON) -> Iterator[tuple[Any, str]]:
    """Values past a declared bound of ``schema`` and the field the problem must name."""
    schema = non_null(document, schema)
    if "maxLength" in schema:
        yield "x" * (schema["maxLength"] + 1), name
    if "maximum" in schema:
        yield schema["maximum"] + 1, name
    if "minimum" in schema:
        yield schema["minimum"] - 1, name
    if schema.get("type") == "array":
        items = non_null(document, schema["items"])
        if "maxItems" in schema:
            item = items["enum"][0] if "enum" in items else "example.org"
            yield [item] * (schema["maxItems"] + 1), name
        if "maxLength" in items:
            yield ["x" * (items["maxLength"] + 1)], f"{name}[0]"


# --- the body as a whole --------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_written")
async def test_malformed_json_on_every_write_route_is_a_400_problem(
    org: OrgHandle, document: JSON, world: World
) -> None:
    for op in body_operations(document):
        for raw in MALFORMED_JSON:
            response = await org.client.request(
                op.method,
                world.url(op),
                params=world.params(op),
                content=raw,
                headers={**org.headers, "content-type": "application/json"},
            )
            problem = assert_problem(response, 400)
            assert problem["type"] == "/problems/malformed_json", (op, raw[:20], problem)


@pytest.mark.usefixtures("nothing_written")
async def test_a_json_value_that_is_not_an_object_is_refused_naming_the_body(
    org: OrgHandle, document: JSON, world: World
) -> None:
    for op in body_operations(document):
        for value in NOT_AN_OBJECT:
            response = await org.client.request(
                op.method,
                world.url(op),
                params=world.params(op),
                content=json.dumps(value).encode(),
                headers={**org.headers, "content-type": "application/json"},
            )
            assert names(assert_problem(response, 422), "body") == "expected a JSON object", (
                op,
                value,
            )


@pytest.mark.usefixtures("nothing_written")
async def test_a_body_over_the_size_limit_is_a_413_problem(
    org: OrgHandle, document: JSON, world: World, settings: Settings
) -> None:
    limit = settings.max_body_bytes
    assert limit == 1_048_576

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    for op in body_operations(document):
        raw = json.dumps({**(world.body(op) or {}), "padding": "x" * limit}).encode()
        headers = {**org.headers, "content-type": "application/json"}
        for content in (raw, chunks(raw)):  # with Content-Length, and streamed without it
            response = await org.client.request(
                op.method, world.url(op), params=world.params(op), content=content, headers=headers
            )
            problem = assert_problem(response, 413)
            assert problem["type"] == "/problems/body_too_large", op
    # Just under the limit is read (and then judged on its content).
    op = next(op for op in body_operations(document) if op.key == "POST /v1/units")
    body = {**(world.body(op) or {}), "padding": ""}
    body["padding"] = "x" * (limit - len(json.dumps(body).encode()))
    response = await org.client.request(
        op.method,
        op.path,
        content=json.dumps(body).encode(),
        headers={**org.headers, "content-type": "application/json"},
    )
    assert names(assert_problem(response, 422), "padding") == "is not a known field"


@pytest.mark.usefixtures("nothing_written")
async def test_a_body_not_sent_as_json_is_a_415_problem(
    org: OrgHandle, document: JSON, world: World
) -> None:
    for op in body_operations(document):
        raw = json.dumps(world.body(op)).encode()
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/jsonx",
            None,
        ):
            headers = dict(org.headers)
            if content_type is not None:
                headers["content-type"] = content_type
            response = await org.client.request(
                op.method, world.url(op), params=world.params(op), content=raw, headers=headers
            )
            problem = assert_problem(response, 415)
            assert problem["type"] == "/problems/unsupported_media_type", (op, content_type)


# --- one field at a time --------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_written")
async def test_wrong_types_are_refused_naming_the_field(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            if is_any(document, schema):
                continue  # any value is of the right type
            problem = await refused(
                org, op, world, {**(world.body(op) or {}), name: wrong_type(document, schema)}
            )
            assert names(problem, name), (op, name)
            checked += 1
    assert checked >= 25


@pytest.mark.usefixtures("nothing_written")
async def test_unknown_fields_are_refused_naming_them(
    org: OrgHandle, document: JSON, world: World
) -> None:
    # tenant_id and id would be mass assignment if they were accepted.
    for op in body_operations(document):
        if op.key in TOLERANT:
            assert (op.body_schema or {}).get("additionalProperties") is not False, op
            continue
        for name in ("surprise", "tenant_id", "id", "created_at"):
            if name in properties(op):
                continue
            problem = await refused(org, op, world, {**(world.body(op) or {}), name: "x"})
            assert names(problem, name) == "is not a known field", (op, name)


@pytest.mark.usefixtures("nothing_written")
async def test_missing_required_fields_are_each_named(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        required = (op.body_schema or {}).get("required", [])
        if not required:
            continue
        problem = await refused(org, op, world, {})
        for name in required:
            assert names(problem, name) == "is required", (op, name)
            checked += 1
        full = world.body(op) or {}
        for name in required:
            problem = await refused(org, op, world, {k: v for k, v in full.items() if k != name})
            assert set(error_fields(problem)) == {name}, (op, name, problem)
    assert checked >= 10


@pytest.mark.usefixtures("nothing_written")
async def test_values_past_their_declared_bounds_are_refused_naming_the_field(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            for value, field in too_big(document, name, schema):
                problem = await refused(org, op, world, {**(world.body(op) or {}), name: value})
                assert names(problem, field), (op, name)
                checked += 1
    assert checked >= 20


@pytest.mark.usefixtures("nothing_written")
async def test_an_email_that_is_not_one_is_refused_naming_the_field(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            if non_null(document, schema).get("format") != "email":
                continue
            for value in BAD_EMAILS:
                problem = await refused(org, op, world, {**(world.body(op) or {}), name: value})
                assert "email" in names(problem, name).lower(), (op, value, problem)
                checked += 1
    assert checked >= 2 * len(BAD_EMAILS)


@pytest.mark.usefixtures("nothing_written")
async def test_values_outside_an_enumeration_are_refused_naming_the_field(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            schema = non_null(document, schema)
            if "enum" in schema:
                value: Any = "not-a-" + name
                field = name
            elif schema.get("type") == "array" and "enum" in non_null(document, schema["items"]):
                value, field = ["not-a-" + name], f"{name}[0]"
            else:
                continue
            problem = await refused(org, op, world, {**(world.body(op) or {}), name: value})
            reason = names(problem, field)
            assert "expected" in reason.lower() or "input should be" in reason.lower(), (op, reason)
            checked += 1
    assert checked >= 5


@pytest.mark.usefixtures("nothing_written")
async def test_explicit_null_for_a_field_that_cannot_be_cleared_is_refused(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            if allows_null(document, schema):
                continue
            problem = await refused(org, op, world, {**(world.body(op) or {}), name: None})
            assert names(problem, name), (op, name)
            checked += 1
    patches = [op for op in body_operations(document) if op.method == "PATCH"]
    assert patches and checked >= 20


async def test_null_clears_a_field_that_may_be_cleared(org: OrgHandle, world: World) -> None:
    manager = await make_member(org)
    member = await make_member(org, manager_id=manager["id"])
    response = await org.patch(f"/v1/members/{member['id']}", {"manager_id": None})
    assert response.status_code == 200, response.text
    assert response.json()["manager_id"] is None


@pytest.mark.usefixtures("nothing_written")
async def test_text_with_a_nul_character_is_refused_naming_the_field(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in body_operations(document):
        for name, schema in properties(op).items():
            schema = non_null(document, schema)
            if schema.get("type") != "string" or "enum" in schema:
                continue
            problem = await refused(
                org, op, world, {**(world.body(op) or {}), name: "before\x00after"}
            )
            reason = names(problem, name)
            if (
                "format" not in schema and "pattern" not in schema
            ):  # otherwise the format may object first
                assert "NUL" in reason, (op, name, reason)
            checked += 1
    assert checked >= 8


# --- paths and query strings ----------------------------------------------------------------


@pytest.mark.usefixtures("nothing_written")
async def test_malformed_and_unknown_ids_in_paths_are_404_problems(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in operations(document):
        for name in op.path_params:
            for bad in [*MALFORMED_IDS, str(uuid.uuid4())]:
                ids = {**world.path_ids(op), name: bad}
                problem = await refused(org, op, world, world.body(op), 404, url=world.url(op, ids))
                assert problem["type"] == "/problems/not_found", (op, bad, problem)
                checked += 1
    assert checked >= 100


@pytest.mark.usefixtures("nothing_written")
async def test_unknown_query_parameters_are_refused_naming_them(
    org: OrgHandle, document: JSON, world: World
) -> None:
    for op in operations(document):
        for name in ("surprise", "tenant_id", "Limit"):
            problem = await refused(org, op, world, world.body(op), params={name: "1"})
            assert names(problem, name) == "is not a known field", (op, name, problem)


@pytest.mark.usefixtures("nothing_written")
async def test_duplicated_query_parameters_are_refused_naming_them(
    org: OrgHandle, document: JSON, world: World
) -> None:
    for op in operations(document):
        declared = [p["name"] for p in op.query_params]
        name = declared[0] if declared else "surprise"
        value = "1" if name == "limit" else "x"
        problem = await refused(
            org, op, world, world.body(op), params=[(name, value), (name, value)]
        )
        assert names(problem, name) == "is given more than once", (op, problem)


@pytest.mark.usefixtures("nothing_written")
async def test_bad_query_values_are_refused_naming_the_parameter(
    org: OrgHandle, document: JSON, world: World
) -> None:
    checked = 0
    for op in operations(document):
        for param in op.query_params:
            schema = non_null(document, param["schema"])
            name = param["name"]
            bad: list[str] = []
            if name == "limit":
                bad = BAD_LIMITS
            elif "enum" in schema:
                bad = ["not-a-status", "ACTIVE "]
            elif schema.get("format") == "uuid":
                bad = ["not-a-uuid", "1"]
            elif schema.get("format") == "date-time":
                bad = [
                    "yesterday",
                    "2024-01-01T00:00:00",
                    "2024-13-01T00:00:00Z",
                    "1700000000",
                    "0.5",
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-05:00",
                ]
            elif schema.get("type") == "boolean":
                bad = ["perhaps", "2"]
            if schema.get("type") == "string" and "maxLength" in schema:
                bad = [*bad, "x" * (schema["maxLength"] + 1)]
            if schema.get("type") == "string" and "enum" not in schema:
                bad = [*bad, "a\x00b"]
            for value in bad:
                problem = await refused(org, op, world, world.body(op), params={name: value})
                assert names(problem, name), (op, name, value)
                checked += 1
    assert checked >= 50


@pytest.mark.usefixtures("nothing_written")
async def test_a_sort_the_route_does_not_offer_is_refused_naming_sort(
    org: OrgHandle, document: JSON, world: World
) -> None:
    sortable = [
        op for op in operations(document) if any(p["name"] == "sort" for p in op.query_params)
    ]
    assert len(sortable) >= 4
    for op in sortable:
        for value in BAD_SORTS:
            problem = await refused(org, op, world, None, params={"sort": value})
            assert "expected one of" in names(problem, "sort"), (op, value, problem)


def tampered(cursor: str) -> list[str]:
    """Cursors a client could craft from a real one; none was issued by the service.

    A cursor is sealed (AES-GCM, ``tenants.cursors``): its bytes are flipped in the nonce,
    the sealed payload and the tag, cut short or lengthened, or replaced by the unsigned
    base64 JSON and the signed ``payload.signature`` cursors of earlier versions. What a
    leaked key could seal is the column checks' (tests/tenants/test_cursors.py).
    """
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))

    def encode(value: Any) -> str:
        text = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    def flipped(at: int) -> str:
        changed = bytearray(raw)
        changed[at] ^= 0x01
        return encode(bytes(changed))

    return [
        "!!!",
        "not base64 at all",
        "é" * 20,
        cursor[: len(cursor) // 2],
        cursor + "AAAA",
        cursor + "=",
        flipped(0),
        flipped(len(raw) // 2),
        flipped(len(raw) - 1),
        encode(raw[:-16]),
        encode(b"\xff\xfe"),
        encode(b"[" * 700),
        encode(["members", "email", ["a@b.example", str(uuid.uuid4())]]),
        f"{encode(['members', 'email', ['a@b.example']])}.{encode(b'x' * 32)}",
    ]


@pytest.fixture
async def world_with_second_rows(world: World) -> World:
    """The World plus a second row wherever it has one, so every list has a next page."""
    org = world.org
    await make_group(org)
    await make_member(org)
    response = await org.post(
        "/v1/product-accounts",
        {"member_id": world.member["id"], "product_id": world.spare_product["id"]},
    )
    assert response.status_code == 201, response.text
    return world


async def test_cursors_that_were_not_issued_are_refused_naming_cursor(
    org: OrgHandle, document: JSON, world_with_second_rows: World, owner_conn: asyncpg.Connection
) -> None:
    world = world_with_second_rows
    paged = [
        op
        for op in operations(document)
        if op.is_list and any(p["name"] == "cursor" for p in op.query_params)
    ]
    assert len(paged) >= 5
    before = await row_counts(owner_conn)
    checked = 0
    for op in paged:
        sort = next((p for p in op.query_params if p["name"] == "sort"), None)
        sorts = (
            [None] if sort is None else ["-created_at", "created_at", sort["schema"].get("default")]
        )
        for sort_value in sorts:
            params: dict[str, Any] = {"limit": 1, **({"sort": sort_value} if sort_value else {})}
            page = await org.get(op.path, params=params)
            assert page.status_code == 200, (op, page.text)
            cursor = page.json()["next_cursor"]
            assert cursor, f"{op}: the world has one row only; add another so a cursor is issued"
            assert (await org.get(op.path, params={**params, "cursor": cursor})).status_code == 200
            for bad in tampered(cursor):
                problem = await refused(org, op, world, None, 400, params={**params, "cursor": bad})
                assert names(problem, "cursor"), (op, bad)
                checked += 1
            if sort_value:  # a cursor is only good for the sort it was issued for
                other = sort_value[1:] if sort_value.startswith("-") else f"-{sort_value}"
                problem = await refused(
                    org, op, world, None, 400, params={"limit": 1, "sort": other, "cursor": cursor}
                )
                assert "sort" in names(problem, "cursor"), (op, problem)
    assert checked >= 100
    assert await row_counts(owner_conn) == before


# --- rules of the domain --------------------------------------------------------------------


async def test_moving_a_unit_under_itself_or_its_descendant_is_refused_naming_parent_id(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    top = await make_unit(org)
    child = await make_unit(org, parent=top["id"])
    grandchild = await make_unit(org, parent=child["id"])
    before = await row_counts(owner_conn)
    for unit, parent in ((top, grandchild), (top, child), (top, top), (child, grandchild)):
        problem = assert_problem(
            await org.post(f"/v1/units/{unit['id']}/move", {"parent_id": parent["id"]}), 422
        )
        assert names(problem, "parent_id") in (
            "is the unit itself",
            "is one of its own sub-units",
        ), problem
    problem = assert_problem(
        await org.post(f"/v1/units/{org.root_unit_id}/move", {"parent_id": top["id"]}), 422
    )
    assert names(problem, "parent_id")
    assert await row_counts(owner_conn) == before
    assert (await org.get(f"/v1/units/{grandchild['id']}")).json()["path"] == grandchild["path"]


async def test_deleting_the_root_unit_or_a_unit_in_use_is_a_conflict(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    parent = await make_unit(org)
    await make_unit(org, parent=parent["id"])
    staffed = await make_unit(org)
    await make_member(org, unit=staffed["id"])
    before = await row_counts(owner_conn)
    for unit_id, words in (
        (org.root_unit_id, "root"),
        (parent["id"], "child"),
        (staffed["id"], "members"),
    ):
        problem = assert_problem(await org.delete(f"/v1/units/{unit_id}"), 409)
        assert words in problem["detail"], problem
    assert await row_counts(owner_conn) == before


async def test_a_duplicate_member_email_is_a_conflict_naming_email(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    taken = await make_member(org, email=f"taken@{org.slug}.example")
    other = await make_member(org)
    before = await row_counts(owner_conn)
    for email in (taken["email"], taken["email"].upper(), f"  Taken@{org.slug.upper()}.example"):
        body = {"email": email, "name": "Twin", "unit_id": str(org.root_unit_id)}
        problem = assert_problem(await org.post("/v1/members", body), 409)
        assert names(problem, "email") == "is already used by another member", problem
        problem = assert_problem(
            await org.patch(f"/v1/members/{other['id']}", {"email": email}), 409
        )
        assert names(problem, "email"), problem
    assert await row_counts(owner_conn) == before


async def test_a_reporting_loop_is_refused_naming_manager_id(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    top = await make_member(org)
    middle = await make_member(org, manager_id=top["id"])
    bottom = await make_member(org, manager_id=middle["id"])
    before = await row_counts(owner_conn)
    for member, manager in ((top, bottom), (top, middle), (middle, bottom), (top, top)):
        problem = assert_problem(
            await org.patch(f"/v1/members/{member['id']}", {"manager_id": manager["id"]}), 422
        )
        assert names(problem, "manager_id"), problem
    problem = assert_problem(
        await org.patch(f"/v1/members/{top['id']}", {"manager_id": str(uuid.uuid4())}), 422
    )
    assert names(problem, "manager_id"), problem
    assert await row_counts(owner_conn) == before
    assert (await org.get(f"/v1/members/{top['id']}")).json()["manager_id"] is None


async def test_a_member_cannot_be_created_or_moved_into_another_organisations_unit(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    alpha, bravo = two_orgs
    theirs = await make_unit(bravo)
    ours = await make_member(alpha)
    before = await row_counts(owner_conn)
    for unit_id in (theirs["id"], str(bravo.root_unit_id)):
        body = {"email": f"new@{alpha.slug}.example", "name": "New", "unit_id": unit_id}
        problem = assert_problem(await alpha.post("/v1/members", body), 422)
        assert names(problem, "unit_id"), problem
        problem = assert_problem(
            await alpha.post(f"/v1/members/{ours['id']}/move", {"unit_id": unit_id}), 422
        )
        assert names(problem, "unit_id"), problem
        problem = assert_problem(
            await alpha.post("/v1/units", {"name": "stray", "parent_id": unit_id}), 422
        )
        assert names(problem, "parent_id"), problem
    assert await row_counts(owner_conn) == before
    assert (await alpha.get("/v1/members", params={"q": "new@"})).json()["items"] == []
