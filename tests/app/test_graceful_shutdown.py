"""Graceful shutdown: on SIGTERM a worker (``tenantry worker``, or the worker embedded in
``tenantry serve``) takes no more jobs, waits ``TENANTRY_SHUTDOWN_SECONDS`` for those in
flight, then puts the ones still running back in the queue without counting a failed
attempt; another worker then carries each out exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from app.database import DatabaseUrls
from app.settings import Settings
from tenants import db
from tenants.audit.sealer import seal_all
from tenants.jobs import service as jobs
from tests.conftest import OrgHandle
from tests.support.processes import free_port, tenantry_env
from tests.support.slow_jobs import KIND, RAN, RUN_CLI

pytestmark = pytest.mark.slow


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", RUN_CLI, *args], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def job_state(conn: asyncpg.Connection, key: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT status, attempts, claims, locked_by, checkpoint::text AS checkpoint "
        "FROM jobs WHERE key = $1", key)
    assert row is not None
    return row


async def wait_for(conn: asyncpg.Connection, key: str, condition: str, log: Path,
                   within: float = 90) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await conn.fetchval(f"SELECT count(*) FROM jobs WHERE key = $1 AND {condition}", key):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {key} never reached {condition}:\n{tail(log)}")


async def stop(process: subprocess.Popen[bytes], log: Path, within: float = 60) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(process.wait, within)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"no exit after SIGTERM:\n{tail(log)}") from None


@pytest.mark.parametrize("how", ["worker", "serve"])
async def test_sigterm_releases_a_job_in_flight_and_another_worker_runs_it_once(
    how: str, org: OrgHandle, owner_conn: asyncpg.Connection, database_urls: DatabaseUrls,
    settings: Settings, tmp_path: Path,
) -> None:
    key = f"slow-{how}"
    async with db.tenant_transaction(org.id):
        await jobs.enqueue(KIND, {}, key=key)
    env = tenantry_env(database_urls, settings.secret_key, tmp_path,
                       TENANTRY_SHUTDOWN_SECONDS="1", LOG_FORMAT="console")
    log = tmp_path / "first.log"
    if how == "worker":
        first = start(["worker", "--name", "first", "--lease", "60"], env, log)
        holder = "locked_by = 'first'"
    else:
        first = start(["serve", "--port", str(free_port())],
                      {**env, "TENANTRY_EMBEDDED_WORKER": "true"}, log)
        holder = "locked_by IS NOT NULL"
    try:
        await wait_for(owner_conn, key, f"status = 'running' AND {holder}", log)
    finally:
        code = await stop(first, log)
    # uvicorn ends by the signal it stopped for, once its shutdown is complete.
    assert code in (0, -signal.SIGTERM), tail(log)
    assert "released to the queue" in tail(log)
    # Back in the queue at once (the 60 s lease did not have to expire), not a failure.
    released = await job_state(owner_conn, key)
    assert (released["status"], released["attempts"], released["claims"],
            released["locked_by"]) == ("queued", 0, 1, None)

    log = tmp_path / "second.log"
    second = start(["worker", "--name", "second"], env, log)
    try:
        await wait_for(owner_conn, key, "status = 'done'", log)
    finally:
        assert await stop(second, log) == 0
    done = await job_state(owner_conn, key)
    assert (done["attempts"], done["claims"]) == (0, 2)
    assert '"ran_by": "second"' in done["checkpoint"]
    await seal_all(wait=True)
    ran = (await org.get("/v1/audit-events", params={"action": RAN})).json()["items"]
    assert len(ran) == 1
