"""The audit log on the real database: appends in the write's transaction, and tampering
done behind the service's back (as the owner) is found at the right event."""

from __future__ import annotations

import asyncpg

from tenants import db
from tenants.audit import service as audit
from tenants.audit.chain import ChainHead
from tests.conftest import OrgHandle, make_member


async def verify(org: OrgHandle, expected: ChainHead | None = None) -> object:
    async with db.tenant_transaction(org.id):
        return await audit.verify(expected)


async def seed(org: OrgHandle, n: int = 4) -> None:
    for _ in range(n):
        member = await make_member(org)
        response = await org.patch(f"/v1/members/{member['id']}", {"name": "Renamed"})
        assert response.status_code == 200


async def test_writes_through_the_api_form_an_intact_chain(org: OrgHandle) -> None:
    await seed(org)
    result = await verify(org)
    assert result.ok and result.checked >= 8  # type: ignore[attr-defined]


async def test_a_failed_write_leaves_no_audit_event(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    before = await owner_conn.fetchval("SELECT count(*) FROM audit_events")
    response = await org.post("/v1/members", {"email": "x@example.org", "name": "X", "unit_id": "00000000-0000-0000-0000-000000000000"})
    assert response.status_code == 422
    assert await owner_conn.fetchval("SELECT count(*) FROM audit_events") == before


async def test_an_edited_event_is_named(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute("UPDATE audit_events SET actor_display = 'someone else' WHERE tenant_id = $1 AND seq = 5", org.id)
    result = await verify(org)
    assert result.broken.seq == 5 and "edited" in result.broken.reason  # type: ignore[attr-defined]


async def test_a_deleted_event_is_named(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute("DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 4", org.id)
    assert (await verify(org)).broken.seq == 4  # type: ignore[attr-defined]


async def test_swapped_contents_are_named_at_the_first(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute(
        """
        UPDATE audit_events a SET action = b.action, target_id = b.target_id, after = b.after
          FROM audit_events b
         WHERE a.tenant_id = $1 AND b.tenant_id = $1
           AND ((a.seq = 3 AND b.seq = 6) OR (a.seq = 6 AND b.seq = 3))
        """,
        org.id,
    )
    assert (await verify(org)).broken.seq == 3  # type: ignore[attr-defined]


async def test_an_inserted_event_is_named(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute("UPDATE audit_events SET seq = seq + 1000 WHERE tenant_id = $1 AND seq >= 4", org.id)
    await owner_conn.execute("UPDATE audit_events SET seq = seq - 999 WHERE tenant_id = $1 AND seq >= 1004", org.id)
    await owner_conn.execute(
        """
        INSERT INTO audit_events (tenant_id, seq, occurred_at, actor, actor_display, action, target_type,
                                  target_id, prev_hash, hash)
        SELECT tenant_id, 4, occurred_at, actor, actor_display, 'member.deleted', target_type, target_id,
               hash, repeat('0', 64)
          FROM audit_events WHERE tenant_id = $1 AND seq = 3
        """,
        org.id,
    )
    assert (await verify(org)).broken.seq == 4  # type: ignore[attr-defined]


async def test_a_truncated_tail_is_named_against_the_stored_and_a_recorded_head(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    recorded = (await verify(org)).head  # type: ignore[attr-defined]
    await owner_conn.execute("DELETE FROM audit_events WHERE tenant_id = $1 AND seq > $2", org.id, recorded.seq - 2)
    assert (await verify(org)).broken.seq == recorded.seq - 1  # type: ignore[attr-defined]
    # Even with the stored head rewound too, the head recorded outside the database catches it.
    await owner_conn.execute(
        "UPDATE audit_heads SET seq = $2, hash = (SELECT hash FROM audit_events WHERE tenant_id = $1 AND seq = $2) WHERE tenant_id = $1",
        org.id, recorded.seq - 2,
    )
    assert (await verify(org)).ok  # type: ignore[attr-defined]
    assert (await verify(org, recorded)).broken.seq == recorded.seq - 1  # type: ignore[attr-defined]


async def test_audit_events_list_newest_first_with_a_cursor(org: OrgHandle) -> None:
    await seed(org, 3)
    first = (await org.get("/v1/audit-events", params={"limit": 2})).json()
    second = (await org.get("/v1/audit-events", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
    only = (await org.get("/v1/audit-events", params={"action": "member.updated"})).json()["items"]
    assert {e["action"] for e in only} == {"member.updated"} and len(only) == 3
    assert only[0]["before"] == {"name": "Test Member"} and only[0]["after"] == {"name": "Renamed"}
    assert only[0]["client_addr"] == "203.0.113.7" and only[0]["actor"].startswith("api_token:")
