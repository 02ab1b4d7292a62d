"""Streamed downloads (the audit, sign-in and members exports): HEAD gets the headers and
reads nothing, and a download cut short (the client hung up) rolls its transaction back
before the connection goes back to the pool."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import pytest

from tenants import db
from tenants.audit import service as audit
from tests.conftest import OrgHandle, make_member

OPEN_TRANSACTIONS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND usename = 'tenantry_app'
   AND state LIKE 'idle in transaction%'
"""


async def test_head_of_an_export_sends_its_headers_and_reads_nothing(
    org: OrgHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_member(org)
    batches: list[int] = []
    reading = audit.stream_events

    async def counted(*args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        batches.append(1)
        async for row in reading(*args, **kwargs):
            yield row

    monkeypatch.setattr(audit, "stream_events", counted)
    got = await org.get("/v1/audit-events", params={"format": "csv"})
    assert got.status_code == 200 and got.text.count("\n") > 1 and batches == [1]
    head = await org.client.head("/v1/audit-events", params={"format": "csv"}, headers=org.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-disposition"] == got.headers["content-disposition"]
    assert batches == [1]  # the HEAD read nothing


async def test_a_transaction_whose_task_is_cancelled_is_rolled_back_not_left_open(
    org: OrgHandle, owner_conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """As when a client hangs up mid-download: the task streaming it is cancelled while a
    batch is read (anyio cancels level-triggered, so an unshielded ROLLBACK is cancelled
    too and the pool resets a connection still in its transaction, logged as an error)."""
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with anyio.move_on_after(0.2) as scope:
                async with db.tenant_transaction(org.id):
                    await db.fetch("SELECT 1 FROM members LIMIT 1")
                    await anyio.sleep(5)
            assert scope.cancelled_caught
        assert await owner_conn.fetchval(OPEN_TRANSACTIONS) == 0
        listed: Any = await org.get("/v1/members")
        assert listed.status_code == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
