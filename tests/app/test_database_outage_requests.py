"""Requests while the database ends their sessions (a restart, ``pg_terminate_backend``):
a read is answered on a fresh session, a write that could not be made is a 503 that says
so (problem, SCIM error or page, with Retry-After) and changes nothing, the next request
is served, and the log holds one line for the outage, not a traceback per request."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import asyncpg
import httpx
import pytest

from app import outage
from tenants.permissions import Permission
from tests.conftest import OrgHandle, make_member

#: The app's pool (``Settings.pool_size``, the tests' default).
POOL_SIZE = 10

KILL_APP_SESSIONS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND usename = 'tenantry_app' AND pid <> pg_backend_pid()
"""


async def end_app_sessions(owner_conn: asyncpg.Connection) -> None:
    assert await owner_conn.fetchval(KILL_APP_SESSIONS) > 0


async def test_reads_survive_ended_sessions_and_writes_get_a_503_never_a_500(
    org: OrgHandle, owner_conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    member = await make_member(org, name="Ada Before")
    assert (await org.get("/v1/members")).status_code == 200

    await end_app_sessions(owner_conn)
    with caplog.at_level(logging.WARNING):
        listed = await org.get("/v1/members")
    assert listed.status_code == 200, listed.text  # read again on a fresh session
    assert [m["id"] for m in listed.json()["items"]] == [member["id"]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    # More rounds than the pool holds connections: a connection kept out of the pool by a
    # failed BEGIN would leave the later requests waiting for one that never comes back.
    statuses: list[int] = []
    for round_ in range(POOL_SIZE + 2):
        await end_app_sessions(owner_conn)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            async with asyncio.timeout(30):
                changed = await org.patch(
                    f"/v1/members/{member['id']}", json={"name": f"Ada {round_}"}
                )
        statuses.append(changed.status_code)
        if changed.status_code == 503:
            problem: dict[str, Any] = changed.json()
            assert changed.headers["content-type"].startswith("application/problem+json")
            assert problem["type"] == "/problems/unavailable", problem
            assert "nothing was changed" in problem["detail"]
            assert changed.headers["retry-after"] == "5"
            assert [r.levelname for r in caplog.records if r.name == "tenantry.outage"] in (
                ["WARNING"],
                [],  # throttled: one line per five seconds
            )
            assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        else:
            assert changed.status_code == 200, changed.text
        # Whatever the write got, the next request is served and shows the truth.
        now = (await org.get(f"/v1/members/{member['id']}")).json()["name"]
        assert now == (f"Ada {round_}" if changed.status_code == 200 else now)
    assert 503 in statuses  # a write is not repeated on its own: its client decides
    assert set(statuses) <= {200, 503}
    async with asyncio.timeout(30):  # the whole pool is there to serve at once
        answers = await asyncio.gather(*(org.get("/v1/members") for _ in range(POOL_SIZE)))
    assert [a.status_code for a in answers] == [200] * POOL_SIZE


async def test_scim_says_unavailable_for_a_moment_in_its_own_error_form(
    org: OrgHandle, owner_conn: asyncpg.Connection, client: httpx.AsyncClient
) -> None:
    token = await org.token_with(Permission.SCIM_PROVISION)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/scim/v2/Users", headers=headers)).status_code == 200
    await end_app_sessions(owner_conn)
    answer = await client.get("/scim/v2/Users", headers=headers)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/scim+json")
    assert answer.json()["status"] == "503" and answer.headers["retry-after"] == "5"
    assert (await client.get("/scim/v2/Users", headers=headers)).status_code == 200


async def test_a_replaced_connection_already_gone_is_no_error_but_other_failures_still_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncpg closes the connections a pool replaces in tasks nobody awaits; one whose
    session the server ended fails with a broken pipe, which asyncio logged as an error
    with a traceback, once per pooled connection."""

    class Connection:  # named as asyncpg's, whose close() the pool runs in a task
        async def close(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    class Other:
        async def close(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.DEBUG), outage.quiet_closes_of_dead_connections():
        for closing in (Connection(), Other()):
            task = loop.create_task(closing.close())
            await asyncio.sleep(0.01)  # it runs and fails, and nobody asks how
            del task
            gc.collect()  # asyncio reports an unretrieved failure when the task goes
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Other.close" in str(caplog.records[-1].__dict__), errors
    assert any("already gone" in r.getMessage() for r in caplog.records)
