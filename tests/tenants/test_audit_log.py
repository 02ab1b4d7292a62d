"""The audit log on the real database: events recorded in the write's transaction, sealed
into the chain after commit, and tampering done behind the service's back (as the owner)
found at the right place once sealed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants import db
from tenants.audit import service as audit
from tenants.audit.chain import ChainHead, Verification
from tenants.audit.sealer import seal_all, seal_pending
from tests.conftest import ACTOR, OrgHandle, make_member
from tests.web.flows import asgi_client, set_local_sign_in, set_password


async def verify(org: OrgHandle, expected: ChainHead | None = None) -> Verification:
    async with db.tenant_transaction(org.id):
        return await audit.verify(expected)


async def broken_at(org: OrgHandle, expected: ChainHead | None = None) -> int:
    result = await verify(org, expected)
    assert result.broken is not None, result
    return result.broken.seq


async def seed(org: OrgHandle, n: int = 4) -> None:
    """``n`` members created then renamed through the API, all sealed afterwards."""
    for _ in range(n):
        member = await make_member(org)
        response = await org.patch(f"/v1/members/{member['id']}", {"name": "Renamed"})
        assert response.status_code == 200
    await seal_all(wait=True)


async def event_at(conn: asyncpg.Connection, org: OrgHandle, seq: int) -> int:
    """The id of the event at ``seq`` of the organisation's chain."""
    event_id: int = await conn.fetchval(
        "SELECT event_id FROM audit_chain WHERE tenant_id = $1 AND seq = $2", org.id, seq
    )
    return event_id


async def without_foreign_keys(conn: asyncpg.Connection, *statements: tuple[object, ...]) -> None:
    """Run statements with foreign-key triggers off (superuser), as an intruder would to
    delete a chained event."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        for sql, *args in statements:
            await conn.execute(sql, *args)


async def execute_as(conn: asyncpg.Connection, org: OrgHandle, statement: str) -> None:
    """Run ``statement`` in a transaction of ``org`` on a raw connection."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(org.id))
        await conn.execute(statement)


@pytest.fixture
async def runtime_conn(
    database_urls: DatabaseUrls, client: object
) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection as the role the service runs as."""
    conn = await asyncpg.connect(**database.connection_params(database_urls.app))
    yield conn
    await conn.close()


@pytest.fixture
async def head_holder(database_urls: DatabaseUrls) -> AsyncIterator[asyncpg.Connection]:
    """A second administrative connection, to hold an organisation's chain head."""
    conn = await asyncpg.connect(**database.connection_params(database_urls.admin))
    yield conn
    await conn.close()


# --- recording and sealing --------------------------------------------------------------------


async def test_writes_through_the_api_form_an_intact_chain_once_sealed(org: OrgHandle) -> None:
    await seed(org)
    result = await verify(org)
    assert result.ok and result.checked >= 8 and result.pending == 0


async def test_a_write_neither_waits_for_the_chain_head_nor_is_chained_before_sealing(
    org: OrgHandle, head_holder: asyncpg.Connection
) -> None:
    await seal_all(wait=True)
    async with head_holder.transaction():
        await head_holder.execute(
            "SELECT 1 FROM audit_heads WHERE tenant_id = $1 FOR UPDATE", org.id
        )
        member = await asyncio.wait_for(make_member(org), timeout=5)
        newest = (await org.get("/v1/audit-events", params={"limit": 1})).json()["items"][0]
        assert (newest["action"], newest["target_id"]) == ("member.created", member["id"])
        assert newest["seq"] is None and newest["prev_hash"] is None and newest["hash"] is None
        assert await seal_pending(org.id) == 0  # the head is taken: another sealer's job
    await seal_all(wait=True)
    newest = (await org.get("/v1/audit-events", params={"limit": 1})).json()["items"][0]
    assert newest["seq"] == (await verify(org)).head.seq and len(newest["hash"]) == 64


async def test_verification_counts_events_not_sealed_yet_without_calling_it_an_error(
    org: OrgHandle,
) -> None:
    await seed(org, 1)
    async with db.tenant_transaction(org.id):
        # Uncommitted, so no sealer can see it; this transaction can.
        await audit.record("test.pending", "member", "m1", actor=ACTOR)
        result = await audit.verify()
    assert result.ok and result.pending == 1


async def test_seal_all_seals_the_pending_events_of_every_organisation(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    for org in two_orgs:
        async with db.tenant_transaction(org.id):
            for i in range(3):
                await audit.record("test.sealed", "member", i, actor=ACTOR)
    await seal_all(wait=True)
    assert await owner_conn.fetchval("SELECT count(*) FROM audit_pending") == 0
    for org in two_orgs:
        result = await verify(org)
        events = await owner_conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE tenant_id = $1", org.id
        )
        assert result.ok and result.pending == 0 and result.checked == events


async def test_sealers_racing_on_one_organisation_leave_one_gapless_chain(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seal_all(wait=True)
    async with db.tenant_transaction(org.id):
        for i in range(120):
            await audit.record("test.raced", "member", i, actor=ACTOR)
    sealed = await asyncio.gather(
        *(seal_pending(org.id, batch=7) for _ in range(3)),
        seal_pending(org.id, batch=11, wait=True),
    )
    await seal_all(wait=True)  # the app's own sealer may have taken part
    links = await owner_conn.fetch(
        "SELECT seq, event_id FROM audit_chain WHERE tenant_id = $1 ORDER BY seq", org.id
    )
    events = await owner_conn.fetchval(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1", org.id
    )
    assert [link["seq"] for link in links] == list(range(1, events + 1))
    assert len({link["event_id"] for link in links}) == events
    assert sum(sealed) <= 120
    assert (await verify(org)).ok


async def test_sealing_while_writes_commit_chains_every_event_once(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async def writer(n: int) -> None:
        for i in range(15):
            async with db.tenant_transaction(org.id):
                await audit.record("test.concurrent", "member", f"{n}-{i}", actor=ACTOR)

    async def sealer() -> None:
        for _ in range(15):
            await seal_pending(org.id, batch=5)
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(n) for n in range(4)), sealer(), sealer())
    await seal_all(wait=True)
    result = await verify(org)
    events = await owner_conn.fetchval(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1", org.id
    )
    assert result.ok and result.checked == events and result.pending == 0


async def test_a_failed_write_leaves_no_event_and_nothing_to_seal(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seal_all(wait=True)
    count = "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM audit_pending)"
    before = await owner_conn.fetchrow(count)
    response = await org.post(
        "/v1/members",
        {"email": "x@example.org", "name": "X", "unit_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert response.status_code == 422
    assert await owner_conn.fetchrow(count) == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_chain SET hash = repeat('0', 64)",
        "DELETE FROM audit_chain",
        "TRUNCATE audit_chain",
        "DELETE FROM audit_heads",
        "TRUNCATE audit_pending",
    ],
)
async def test_the_runtime_role_cannot_rewrite_events_or_their_chain(
    statement: str, org: OrgHandle, owner_conn: asyncpg.Connection, runtime_conn: asyncpg.Connection
) -> None:
    await seed(org, 1)
    snapshot = (
        "SELECT e.id, e.action, c.seq, c.hash FROM audit_events e "
        "JOIN audit_chain c ON c.tenant_id = e.tenant_id AND c.event_id = e.id "
        "WHERE e.tenant_id = $1 ORDER BY e.id"
    )
    before = await owner_conn.fetch(snapshot, org.id)
    assert before
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await execute_as(runtime_conn, org, statement)
    assert await owner_conn.fetch(snapshot, org.id) == before


# --- tampering, found once sealed -------------------------------------------------------------


async def test_an_edited_event_is_named(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute(
        "UPDATE audit_events SET actor_display = 'someone else' WHERE tenant_id = $1 AND id = $2",
        org.id,
        await event_at(owner_conn, org, 5),
    )
    result = await verify(org)
    assert result.broken is not None
    assert result.broken.seq == 5 and "edited" in result.broken.reason


async def test_a_deleted_event_is_named_even_when_its_chain_entry_stays(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    event_id = await event_at(owner_conn, org, 4)
    # RESTRICT: restrict_violation on PostgreSQL 16 and later, foreign_key_violation before.
    with pytest.raises((asyncpg.RestrictViolationError, asyncpg.ForeignKeyViolationError)):
        await owner_conn.execute(
            "DELETE FROM audit_events WHERE tenant_id = $1 AND id = $2", org.id, event_id
        )
    await without_foreign_keys(
        owner_conn, ("DELETE FROM audit_events WHERE tenant_id = $1 AND id = $2", org.id, event_id)
    )
    result = await verify(org)
    assert result.broken is not None
    assert result.broken.seq == 4 and "deleted" in result.broken.reason


async def test_a_deleted_chain_entry_is_named(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    await owner_conn.execute("DELETE FROM audit_chain WHERE tenant_id = $1 AND seq = 4", org.id)
    assert await broken_at(org) == 4


async def test_a_deleted_event_with_its_chain_entry_is_named(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    event_id = await event_at(owner_conn, org, 4)
    await owner_conn.execute("DELETE FROM audit_chain WHERE tenant_id = $1 AND seq = 4", org.id)
    await owner_conn.execute(
        "DELETE FROM audit_events WHERE tenant_id = $1 AND id = $2", org.id, event_id
    )
    assert await broken_at(org) == 4


async def test_renumbered_chain_entries_are_named_at_the_first(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    await owner_conn.execute("DELETE FROM audit_chain WHERE tenant_id = $1 AND seq = 4", org.id)
    await owner_conn.execute(
        "UPDATE audit_chain SET seq = seq + 1000 WHERE tenant_id = $1 AND seq > 4", org.id
    )
    await owner_conn.execute(
        "UPDATE audit_chain SET seq = seq - 1001 WHERE tenant_id = $1 AND seq > 1000", org.id
    )
    result = await verify(org)
    assert result.broken is not None
    assert result.broken.seq == 4 and "link" in result.broken.reason


async def test_swapped_contents_are_named_at_the_first(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    third, sixth = await event_at(owner_conn, org, 3), await event_at(owner_conn, org, 6)
    await owner_conn.execute(
        """
        UPDATE audit_events a SET action = b.action, target_id = b.target_id, after = b.after
          FROM audit_events b
         WHERE a.tenant_id = $1 AND b.tenant_id = $1
           AND ((a.id = $2 AND b.id = $3) OR (a.id = $3 AND b.id = $2))
        """,
        org.id,
        third,
        sixth,
    )
    assert await broken_at(org) == 3


async def test_swapped_chain_entries_are_named_at_the_first(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    third, sixth = await event_at(owner_conn, org, 3), await event_at(owner_conn, org, 6)
    swap = "UPDATE audit_chain SET event_id = $2 WHERE tenant_id = $1 AND seq = $3"
    await without_foreign_keys(
        owner_conn, (swap, org.id, -1, 3), (swap, org.id, third, 6), (swap, org.id, sixth, 3)
    )
    assert await broken_at(org) == 3


async def test_an_inserted_event_is_named(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await seed(org)
    await owner_conn.execute(
        "UPDATE audit_chain SET seq = seq + 1000 WHERE tenant_id = $1 AND seq >= 4", org.id
    )
    await owner_conn.execute(
        "UPDATE audit_chain SET seq = seq - 999 WHERE tenant_id = $1 AND seq >= 1004", org.id
    )
    forged = await owner_conn.fetchval(
        """
        INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action,
                                  target_type, target_id)
        SELECT tenant_id, occurred_at, actor, actor_display, 'member.deleted', target_type,
               target_id
          FROM audit_events WHERE tenant_id = $1 AND id = $2
        RETURNING id
        """,
        org.id,
        await event_at(owner_conn, org, 3),
    )
    await owner_conn.execute(
        """
        INSERT INTO audit_chain (tenant_id, seq, event_id, prev_hash, hash)
        SELECT tenant_id, 4, $2, hash, repeat('0', 64)
          FROM audit_chain WHERE tenant_id = $1 AND seq = 3
        """,
        org.id,
        forged,
    )
    assert await broken_at(org) == 4


async def test_an_event_written_outside_the_service_is_named(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    head = (await verify(org)).head
    await owner_conn.execute(
        """
        INSERT INTO audit_events (tenant_id, occurred_at, actor, actor_display, action,
                                  target_type, target_id)
        VALUES ($1, now(), 'system:x', 'x', 'member.deleted', 'member', 'm1')
        """,
        org.id,
    )
    result = await verify(org)
    assert result.broken is not None
    assert result.broken.seq == head.seq + 1 and "neither in the chain" in result.broken.reason


async def test_an_event_deleted_before_it_was_sealed_is_named(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org, 1)
    await owner_conn.execute(
        "INSERT INTO audit_pending (tenant_id, event_id) SELECT $1, g FROM generate_series(1e9, 1e9 + 2) g",
        org.id,
    )
    # Nothing to chain, however small the batches: the sealer stops rather than spins.
    assert await asyncio.wait_for(seal_pending(org.id, wait=True, batch=2), 5) == 0
    result = await verify(org)
    assert result.broken is not None and "before it was sealed" in result.broken.reason


async def test_a_truncated_tail_is_named_against_the_stored_and_a_recorded_head(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    recorded = (await verify(org)).head
    cut = await owner_conn.fetch(
        "DELETE FROM audit_chain WHERE tenant_id = $1 AND seq > $2 RETURNING event_id",
        org.id,
        recorded.seq - 2,
    )
    await owner_conn.execute(
        "DELETE FROM audit_events WHERE tenant_id = $1 AND id = ANY($2::bigint[])",
        org.id,
        [row["event_id"] for row in cut],
    )
    assert await broken_at(org) == recorded.seq - 1
    # Even with the stored head rewound too, the head recorded outside the database catches it.
    await owner_conn.execute(
        "UPDATE audit_heads SET seq = $2, "
        "hash = (SELECT hash FROM audit_chain WHERE tenant_id = $1 AND seq = $2) "
        "WHERE tenant_id = $1",
        org.id,
        recorded.seq - 2,
    )
    assert (await verify(org)).ok
    assert await broken_at(org, recorded) == recorded.seq - 1


async def test_chain_entries_cut_from_the_end_with_the_head_rewound_leave_their_events_named(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await seed(org)
    head = (await verify(org)).head
    await owner_conn.execute(
        "DELETE FROM audit_chain WHERE tenant_id = $1 AND seq > $2", org.id, head.seq - 2
    )
    await owner_conn.execute(
        "UPDATE audit_heads SET seq = $2, "
        "hash = (SELECT hash FROM audit_chain WHERE tenant_id = $1 AND seq = $2) "
        "WHERE tenant_id = $1",
        org.id,
        head.seq - 2,
    )
    result = await verify(org)
    assert result.broken is not None
    assert result.broken.seq == head.seq - 1 and "neither in the chain" in result.broken.reason


# --- listing ----------------------------------------------------------------------------------


async def test_audit_events_list_newest_first_with_a_cursor(org: OrgHandle) -> None:
    await seed(org, 3)
    first = (await org.get("/v1/audit-events", params={"limit": 2})).json()
    second = (
        await org.get("/v1/audit-events", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True)  # sealed in the order they were written here
    only = (await org.get("/v1/audit-events", params={"action": "member.updated"})).json()["items"]
    assert {e["action"] for e in only} == {"member.updated"} and len(only) == 3
    assert only[0]["before"] == {"name": "Test Member"} and only[0]["after"] == {"name": "Renamed"}
    assert only[0]["client_addr"] == "203.0.113.7" and only[0]["actor"].startswith("api_token:")
    assert len(only[0]["hash"]) == 64 and only[0]["seq"] > only[1]["seq"]


async def test_a_cursor_of_another_kind_is_refused(org: OrgHandle) -> None:
    response = await org.get("/v1/audit-events", params={"cursor": "c2VxOjU"})  # "seq:5"
    assert response.status_code == 400


async def test_the_console_lists_pending_events_then_their_place_in_the_chain(
    app: Any, org: OrgHandle, head_holder: asyncpg.Connection
) -> None:
    auditor = await make_member(org, name="Audrey Auditor", roles=["auditor"])
    await set_password(org.id, auditor["id"], "correct-horse-battery-staple")
    await set_local_sign_in(org.id, True)
    await seal_all(wait=True)

    def first_row(page: str) -> str:
        return page.split("<tbody>", 1)[1].split("</tr>", 1)[0]

    async with asgi_client(app) as browser:
        signed_in = await browser.password_sign_in(
            org.slug, auditor["email"], "correct-horse-battery-staple"
        )
        assert signed_in.status_code == 303
        async with head_holder.transaction():
            await head_holder.execute(
                "SELECT 1 FROM audit_heads WHERE tenant_id = $1 FOR UPDATE", org.id
            )
            await make_member(org, name="Newest Member")
            page = (await browser.get("/console/audit")).text
            assert "member.created" in first_row(page) and "pending" in first_row(page)
        await seal_all(wait=True)
        page = (await browser.get("/console/audit")).text
        head = (await verify(org)).head
        assert re.search(rf"<td>{head.seq}</td>", first_row(page))
        assert f"{head.seq}:{head.hash}" in page
