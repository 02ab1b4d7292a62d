"""A write that PostgreSQL ends for clashing with a concurrent transaction (a deadlock, a
serialization failure: SQLSTATE class 40) is a 409 asking to retry, with nothing
written, and every write operation declares that 409.

An outside fuzzer saw a 500 from a deadlock between two privacy-request operations run
at once. The clash is raised here by a trigger with the deadlock's own SQLSTATE, so the
service meets exactly the error a real deadlock raises, at a point of the test's
choosing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tenants.outages import is_concurrency_conflict, is_database_outage
from tests.conftest import OrgHandle, make_member
from tests.support.api_schema import operations, served_document


@pytest.fixture
async def clashing_member_updates(owner_conn: asyncpg.Connection) -> AsyncIterator[None]:
    await owner_conn.execute(
        """
        CREATE FUNCTION test_clash() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'deadlock detected (raised by the test)'
            USING ERRCODE = TG_ARGV[0];
        END $$;
        """
    )
    try:
        yield
    finally:
        await owner_conn.execute("DROP FUNCTION test_clash() CASCADE")


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"], ids=["deadlock", "serialization"])
async def test_a_write_ended_by_a_concurrent_transaction_is_a_409_and_writes_nothing(
    org: OrgHandle,
    owner_conn: asyncpg.Connection,
    clashing_member_updates: None,
    sqlstate: str,
) -> None:
    member = await make_member(org, name="Before Clash")
    events = await owner_conn.fetchval("SELECT count(*) FROM audit_events")
    await owner_conn.execute(
        f"CREATE TRIGGER test_clash BEFORE UPDATE ON members "
        f"FOR EACH ROW EXECUTE FUNCTION test_clash('{sqlstate}')"
    )
    response = await org.patch(f"/v1/members/{member['id']}", {"name": "After Clash"})
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry" in response.json()["detail"]
    await owner_conn.execute("DROP TRIGGER test_clash ON members")
    assert (await org.get(f"/v1/members/{member['id']}")).json()["name"] == "Before Clash"
    assert await owner_conn.fetchval("SELECT count(*) FROM audit_events") == events


async def test_every_write_operation_declares_the_409(client: httpx.AsyncClient) -> None:
    document = await served_document(client)
    writes = [o for o in operations(document) if o.is_write]
    assert len(writes) > 50
    assert [o.key for o in writes if "409" not in o.spec["responses"]] == []


def test_a_clash_is_told_from_an_outage_through_causes_and_groups() -> None:
    deadlock = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    wrapped = RuntimeError("query failed")
    wrapped.__cause__ = deadlock
    assert is_concurrency_conflict(wrapped)
    assert is_concurrency_conflict(ExceptionGroup("two", [ValueError(), wrapped]))
    assert is_concurrency_conflict(asyncpg.exceptions.SerializationError("could not serialize"))
    assert not is_concurrency_conflict(asyncpg.exceptions.UniqueViolationError("duplicate"))
    assert not is_database_outage(wrapped)
    assert not is_concurrency_conflict(ConnectionRefusedError())


async def test_the_same_group_addition_sent_many_times_at_once_is_one_addition(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """PUT is idempotent: sixteen identical additions racing each other all succeed, and
    the membership and its audit event exist once (a plain insert made most of them a
    unique violation, answered 409)."""
    import asyncio

    from tests.conftest import make_group

    member, group = await make_member(org), await make_group(org)
    path = f"/v1/groups/{group['id']}/members/{member['id']}"
    answers = await asyncio.gather(*(org.put(path) for _ in range(16)))
    assert [a.status_code for a in answers] == [204] * 16, [a.text for a in answers if a.is_error]
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM group_memberships WHERE member_id = $1", member["id"]
        )
        == 1
    )
    actions = await owner_conn.fetch(
        "SELECT action, count(*) FROM audit_events WHERE tenant_id = $1 GROUP BY 1", org.id
    )
    assert dict(actions)["group.member_added"] == 1, actions
