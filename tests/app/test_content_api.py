"""The content registry over HTTP: NDJSON bulk uploads (all or nothing, idempotent, bad
lines named by number), single items, product clients kept to their own product, listing
and totals per member, and legal hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from tests.conftest import OrgHandle, make_member, make_product, row_counts
from tests.support.api_schema import assert_problem, error_fields
from tests.support.lifecycle import apply_as_workflow

NDJSON = {"content-type": "application/x-ndjson"}


def item(member: dict[str, Any], product: dict[str, Any] | None, n: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": f"doc-{n}",
        "member_id": member["id"],
        "title": f"Document {n}.docx",
        "kind": "organisation" if n % 4 else "personal",
        "size": 1000 + n,
        "item_created_at": "2024-05-02T09:30:00Z",
        "export_url": f"https://drive.example/export/doc-{n}",
        **fields,
    }
    if product is not None:
        body["product_id"] = product["id"]
    return body


def ndjson(items: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(i) + b"\n" for i in items)


async def upload(
    org: OrgHandle, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await org.client.post(
        "/v1/content/bulk", content=body, headers={**(headers or org.headers), **NDJSON}
    )


async def product_client_headers(org: OrgHandle, product: dict[str, Any]) -> dict[str, str]:
    """A bearer token of the product's own client (client credentials), content:write only."""
    registered = await org.post(
        f"/v1/products/{product['id']}/clients", {"name": "sync", "scopes": ["content:write"]}
    )
    assert registered.status_code == 201, registered.text
    issued = await org.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(registered.json()["client_id"], registered.json()["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


async def audit_actions(conn: asyncpg.Connection, org: OrgHandle) -> list[str]:
    rows = await conn.fetch(
        "SELECT action FROM audit_events WHERE tenant_id = $1 AND action LIKE 'content.%' ORDER BY id",
        org.id,
    )
    return [r["action"] for r in rows]


async def test_a_bulk_upload_registers_every_item_once_and_summarises_it_in_one_audit_event(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    items = [item(member, product, n) for n in range(2000)]

    response = await upload(org, ndjson(items))

    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2000, "created": 2000, "updated": 0, "unchanged": 0}
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM content_items WHERE tenant_id = $1 AND member_id = $2",
        org.id, uuid.UUID(member["id"]),
    ) == 2000
    assert await audit_actions(owner_conn, org) == ["content.registered"]
    after = await owner_conn.fetchval(
        "SELECT after FROM audit_events WHERE tenant_id = $1 AND action = 'content.registered'",
        org.id,
    )
    assert orjson.loads(after)["created"] == 2000


async def test_sending_the_same_stream_again_changes_nothing_and_a_changed_line_updates_one_item(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    items = [item(member, product, n) for n in range(300)]
    assert (await upload(org, ndjson(items))).status_code == 200
    before = await row_counts(owner_conn)

    again = await upload(org, ndjson(items))

    assert again.json() == {"received": 300, "created": 0, "updated": 0, "unchanged": 300}
    assert await row_counts(owner_conn) == before  # no audit event either
    items[7]["title"] = "Renamed.docx"
    changed = await upload(org, ndjson(items))
    assert changed.json() == {"received": 300, "created": 0, "updated": 1, "unchanged": 299}
    listed = await org.get(f"/v1/members/{member['id']}/content", params={"limit": 500})
    titles = {i["external_id"]: i["title"] for i in listed.json()["items"]}
    assert len(titles) == 300 and titles["doc-7"] == "Renamed.docx"


async def test_malformed_lines_are_named_by_line_number_and_nothing_is_written(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    lines = [orjson.dumps(item(member, product, n)) for n in range(1, 21)]
    lines[2] = b'{"external_id": "doc-3", '  # line 3: cut short
    lines[4] = orjson.dumps({**item(member, product, 5), "kind": "stolen"})
    lines[6] = orjson.dumps({k: v for k, v in item(member, product, 7).items() if k != "member_id"})
    lines[8] = orjson.dumps({**item(member, product, 9), "size": -1, "surprise": True})
    lines[16] = b"[1, 2, 3]"
    before = await row_counts(owner_conn)

    response = await upload(org, b"\n".join(lines) + b"\n")

    problem = assert_problem(response, 422)
    fields = error_fields(problem)
    assert set(fields) == {"line 3", "line 5", "line 7", "line 9", "line 17"}, fields
    assert fields["line 3"].startswith("is not valid JSON")
    assert fields["line 5"].startswith("kind: expected one of")
    assert fields["line 7"] == "member_id: is required"
    assert fields["line 17"] == "expected a JSON object"
    assert sum(1 for e in problem["errors"] if e["field"] == "line 9") == 2  # size and surprise
    assert problem["refused_lines"] == 5 and "nothing was written" in problem["detail"]
    assert await row_counts(owner_conn) == before


async def test_a_stream_with_thousands_of_bad_lines_reports_the_first_fifty_and_the_total(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    before = await row_counts(owner_conn)
    response = await upload(org, b"nonsense\n" * 3000)
    problem = assert_problem(response, 422)
    assert len(problem["errors"]) == 50 and problem["refused_lines"] == 3000
    assert problem["errors"][0]["field"] == "line 1"
    assert await row_counts(owner_conn) == before


async def test_unknown_members_and_products_and_duplicate_ids_are_refused_by_line(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    ghost = {"id": str(uuid.uuid4())}
    items = [
        item(member, product, 1),
        item(ghost, product, 2),
        item(member, {"id": str(uuid.uuid4())}, 3),
        item(member, product, 1, title="Same id again"),
        item(member, None, 5),
    ]
    before = await row_counts(owner_conn)

    fields = error_fields(assert_problem(await upload(org, ndjson(items)), 422))

    assert fields == {
        "line 2": f"member_id: no member with id {ghost['id']}",
        "line 3": f"product_id: no product with id {items[2]['product_id']}",
        "line 4": "external_id: is already given on line 1",
        "line 5": "product_id: is required unless a product's client calls",
    }
    assert await row_counts(owner_conn) == before


async def test_a_departed_member_cannot_be_given_new_items(org: OrgHandle) -> None:
    member, product = await make_member(org), await make_product(org)
    await apply_as_workflow(org.id, member["id"], "suspend", "depart")
    response = await org.post("/v1/content", item(member, product, 1))
    assert error_fields(assert_problem(response, 422)) == {
        "member_id": "the member has left the organisation"
    }


async def test_the_bulk_endpoint_takes_ndjson_only_and_an_empty_stream_is_refused(
    org: OrgHandle,
) -> None:
    member, product = await make_member(org), await make_product(org)
    as_json = await org.client.post(
        "/v1/content/bulk", json=item(member, product, 1), headers=org.headers
    )
    assert assert_problem(as_json, 415)["type"] == "/problems/unsupported_media_type"
    assert "application/x-ndjson" in as_json.json()["detail"]
    empty = await upload(org, b"\n\n")
    assert error_fields(assert_problem(empty, 422)) == {"line 1": "the body holds no items"}


async def test_one_item_is_registered_then_updated_in_place_and_refusals_name_the_field(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    created = await org.post("/v1/content", item(member, product, 1))
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "active" and body["legal_hold"] is False
    updated = await org.post("/v1/content", item(member, product, 1, size=99))
    assert updated.json()["id"] == body["id"] and updated.json()["size"] == 99
    assert await audit_actions(owner_conn, org) == ["content.registered", "content.updated"]

    unknown = await org.post("/v1/content", item({"id": str(uuid.uuid4())}, product, 2))
    assert set(error_fields(assert_problem(unknown, 422))) == {"member_id"}
    for url in ("ftp://x/y", "http://x.example/a"):  # the member downloads over https only
        bad_url = await org.post("/v1/content", item(member, product, 3, export_url=url))
        assert set(error_fields(assert_problem(bad_url, 422))) == {"export_url"}


async def test_a_product_client_registers_and_removes_only_its_own_products_items(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, mine, theirs = await make_member(org), await make_product(org), await make_product(org)
    headers = await product_client_headers(org, mine)
    foreign = await org.post("/v1/content", item(member, theirs, 1))
    assert foreign.status_code == 200

    implied = await upload(org, ndjson([item(member, None, 2), item(member, mine, 3)]), headers)
    assert implied.json()["created"] == 2, implied.text
    listed = (await org.get(f"/v1/members/{member['id']}/content")).json()["items"]
    assert {i["external_id"]: i["product_id"] for i in listed} == {
        "doc-1": theirs["id"], "doc-2": mine["id"], "doc-3": mine["id"],
    }

    before = await row_counts(owner_conn)
    refused = await upload(org, ndjson([item(member, None, 4), item(member, theirs, 5)]), headers)
    assert error_fields(assert_problem(refused, 403)) == {
        "line 2": "product_id: a product's client registers only its own product's items"
    }
    single = await org.client.post("/v1/content", json=item(member, theirs, 6), headers=headers)
    assert set(error_fields(assert_problem(single, 403))) == {"product_id"}
    gone = await org.client.delete(f"/v1/content/{foreign.json()['id']}", headers=headers)
    assert_problem(gone, 404)
    assert await row_counts(owner_conn) == before

    own = next(i for i in listed if i["external_id"] == "doc-2")
    removed = await org.client.delete(f"/v1/content/{own['id']}", headers=headers)
    assert removed.status_code == 204
    assert (await org.get(f"/v1/content/{own['id']}")).status_code == 404


async def test_totals_count_items_and_bytes_per_product_and_kind(org: OrgHandle) -> None:
    member, other = await make_member(org), await make_member(org)
    drive, mail = await make_product(org), await make_product(org)
    items = [
        item(member, drive, 1, kind="organisation", size=100),
        item(member, drive, 2, kind="organisation", size=200),
        item(member, drive, 3, kind="personal", size=5),
        item(member, mail, 4, kind="organisation", size=1000),
        item(other, mail, 5, kind="organisation", size=7),
    ]
    assert (await upload(org, ndjson(items))).status_code == 200

    totals = (await org.get(f"/v1/members/{member['id']}/content-totals")).json()

    assert (totals["count"], totals["bytes"]) == (4, 1305)
    rows = {(t["product_id"], t["kind"]): (t["count"], t["bytes"]) for t in totals["by_product_and_kind"]}
    assert rows == {
        (drive["id"], "organisation"): (2, 300),
        (drive["id"], "personal"): (1, 5),
        (mail["id"], "organisation"): (1, 1000),
    }
    personal = await org.get(f"/v1/members/{member['id']}/content-totals", params={"kind": "personal"})
    assert personal.json()["count"] == 1
    page = await org.get(
        f"/v1/members/{member['id']}/content", params={"product_id": drive["id"], "limit": 2}
    )
    assert len(page.json()["items"]) == 2 and page.json()["next_cursor"]
    rest = await org.get(
        f"/v1/members/{member['id']}/content",
        params={"product_id": drive["id"], "limit": 2, "cursor": page.json()["next_cursor"]},
    )
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    missing = await org.get(f"/v1/members/{uuid.uuid4()}/content-totals")
    assert_problem(missing, 404)


async def test_legal_hold_is_set_and_lifted_by_an_admin_with_a_reason_and_blocks_removal(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member, product = await make_member(org), await make_product(org)
    registered = (await org.post("/v1/content", item(member, product, 1))).json()
    url = f"/v1/content/{registered['id']}/legal-hold"
    review_on = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()

    held = await org.put(url, json={"legal_hold": True, "reason": "Litigation 2024-17",
                                    "member_text": "Kept for a legal claim.",
                                    "review_on": review_on})

    assert held.status_code == 200 and held.json()["legal_hold"] is True
    again = await org.post("/v1/content", item(member, product, 1, legal_hold=False, size=5))
    assert again.json()["legal_hold"] is True, "a product cannot lift a hold"
    refused = await org.delete(f"/v1/content/{registered['id']}")
    assert_problem(refused, 409)
    lifted = await org.put(url, json={"legal_hold": False, "reason": "Case closed"})
    assert lifted.json()["legal_hold"] is False
    no_reason = await org.put(url, json={"legal_hold": True, "reason": " ",
                                         "member_text": "Kept.", "review_on": review_on})
    assert set(error_fields(assert_problem(no_reason, 422))) == {"reason"}
    # Read through the API: the reason is free text about the member's item, stored sealed
    # with the member's key (tenants.privacy.shredding) and opened for readers.
    listed = (await org.get("/v1/audit-events", params={"limit": 100})).json()["items"]
    rows = sorted((e for e in listed if e["action"].startswith("content.legal")),
                  key=lambda e: e["id"])
    assert [(r["action"], r["after"]["reason"]) for r in rows] == [
        ("content.legal_hold_set", "Litigation 2024-17"),
        ("content.legal_hold_lifted", "Case closed"),
    ]
    assert (await org.delete(f"/v1/content/{registered['id']}")).status_code == 204
