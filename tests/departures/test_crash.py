"""A 100,000-item departure run by real ``tenantry worker`` processes that are killed with
SIGKILL at random moments, 20 times, while the products' webhook receiver is down for a
while. At the end every item moved exactly once, every event reached the product at least
once and always under the same idempotency key, no step was lost, and the departure is
complete."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.database import DatabaseUrls
from app.settings import Settings
from tests.conftest import OrgHandle, make_member, make_product
from tests.departures.support import make_items, start
from tests.support.webhook_receiver import Receiver, running_receiver

pytestmark = pytest.mark.slow

ITEMS = 100_000
KILLS = 20
LEASE = 2
#: Deliveries the receiver refuses while it is down.
REFUSALS = 5


def spawn_worker(urls: DatabaseUrls, settings: Settings, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": urls.admin,
        "APP_DATABASE_URL": urls.app,
        "TENANTRY_SECRET_KEY": settings.secret_key,
        "TENANTRY_DATA_DIR": str(log.parent),
        "LOG_FORMAT": "console",
        "DATABASE_POOL_SIZE": "4",
    }
    found = shutil.which("tenantry")
    command = [found] if found else [sys.executable, "-m", "app.cli"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "worker", "--name", name, "--lease", str(LEASE), "--concurrency", "4"],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


async def time_passes(conn: asyncpg.Connection) -> None:
    """Jobs scheduled for later (the end of the last day, backoff) become due now."""
    await conn.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued' AND run_at > now()")


async def progress(conn: asyncpg.Connection, departure_id: str) -> tuple[str, list[str]]:
    status = await conn.fetchval("SELECT status FROM departures WHERE id = $1",
                                 uuid.UUID(departure_id))
    steps = [r["status"] for r in await conn.fetch(
        "SELECT status FROM departure_steps WHERE departure_id = $1 ORDER BY position",
        uuid.UUID(departure_id))]
    return status, steps


#: Whether a job is due now (queued and its time come, or running on an expired lease), as
#: the workers themselves judge it when they decide how long to sleep.
DUE_SQL = "SELECT coalesce(next_job_due() <= now(), false)"


async def worker_busy(conn: asyncpg.Connection, name: str, *, within: float) -> bool:
    """Whether the worker ``name`` took a job: waits until it holds one, or until no job is
    due (nothing for it to interrupt), at most ``within`` seconds. A worker's start costs
    seconds of CPU, which a loaded machine stretches, so the wait is for the worker, not a
    fixed time: the kill that follows must land in the middle of its work."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await conn.fetchval("SELECT count(*) FROM jobs WHERE locked_by = $1", name):
            return True
        if not await conn.fetchval(DUE_SQL):
            return False
        await asyncio.sleep(0.05)
    return False


async def undelivered(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"))


async def test_a_departure_survives_twenty_sigkills_and_moves_every_item_exactly_once(
    org: OrgHandle, owner_conn: asyncpg.Connection, receiver: Receiver,
    database_urls: DatabaseUrls, settings: Settings, tmp_path: Path,
) -> None:
    boss = await make_member(org, name="Successor")
    leaver = await make_member(org, name="Leaver", manager_id=boss["id"])
    product = await make_product(org)
    hook = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": receiver.url})
    assert hook.status_code == 200, hook.text
    receiver.secret = hook.json()["secret"]
    await org.put("/v1/departure-policy", json={"retention_days": 0})
    await make_items(org, leaver["id"], product["id"], ITEMS)
    departure = await start(org, leaver["id"], reason="crash drill")

    rng = random.Random(20261125)
    kills = interrupted = 0
    log = tmp_path / "workers.log"
    while kills < KILLS:
        # The product's receiver goes down mid-run and stays down until it has refused a
        # few deliveries (however slowly this machine gets there), then comes back.
        if kills == 4:
            receiver.down = True
        if receiver.refused >= REFUSALS:
            receiver.down = False
        await time_passes(owner_conn)
        worker = spawn_worker(database_urls, settings, f"victim-{kills}", log)
        # Kill at a random moment once the worker has started working (at once if there
        # is nothing due), so the kills land in the middle of the work.
        busy = await worker_busy(owner_conn, f"victim-{kills}", within=60.0)
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        worker.send_signal(signal.SIGKILL)
        interrupted += busy and await owner_conn.fetchval(
            "SELECT count(*) FROM jobs WHERE locked_by = $1", f"victim-{kills}") > 0
        worker.wait(timeout=10)
        kills += 1
        # The killed worker's leases would expire after LEASE seconds; let that time pass.
        await owner_conn.execute(
            "UPDATE jobs SET lease_until = now() - interval '1 second' WHERE locked_by = $1",
            f"victim-{kills - 1}")

    # Kills landed while the worker held a job (the others found that job or all work done).
    assert interrupted >= KILLS // 4, interrupted
    survivor = spawn_worker(database_urls, settings, "survivor", log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if receiver.refused >= REFUSALS:
                receiver.down = False
            await time_passes(owner_conn)
            status, _steps = await progress(owner_conn, departure["id"])
            if status == "completed" and not await undelivered(owner_conn):
                break
            assert survivor.poll() is None, log.read_text()[-3000:]
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"not finished: {await progress(owner_conn, departure['id'])}, "
                        f"{await undelivered(owner_conn)} undelivered\n{log.read_text()[-3000:]}")
    finally:
        survivor.terminate()
        survivor.wait(timeout=20)

    # Every item moved exactly once, to the successor.
    moved = await owner_conn.fetchrow(
        "SELECT count(*) AS n, min(transfer_count) AS lo, max(transfer_count) AS hi "
        "FROM content_items WHERE member_id = $1", uuid.UUID(boss["id"]))
    assert (moved["n"], moved["lo"], moved["hi"]) == (ITEMS, 1, 1)
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM content_items WHERE member_id = $1", uuid.UUID(leaver["id"])) == 0

    # No step lost; the member is purged; nothing is dead.
    assert await progress(owner_conn, departure["id"]) == ("completed", ["done"] * 4)
    assert await owner_conn.fetchval("SELECT status FROM members WHERE id = $1",
                                     uuid.UUID(leaver["id"])) == "purged"
    assert await owner_conn.fetchval("SELECT count(*) FROM jobs WHERE status <> 'done'") == 0

    # Every event reached the product at least once, always under the same key and body.
    events = {r["idempotency_key"]: r["topic"] for r in await owner_conn.fetch(
        "SELECT idempotency_key, topic FROM outbox_events")}
    got = receiver.by_id()
    assert set(got) == set(events)
    assert all(len({r.body for r in copies}) == 1 for copies in got.values())
    assert receiver.refused >= REFUSALS and receiver.forged == 0
    topics = sorted({events[k] for k in got})
    assert topics == ["content.transferred", "member.departing", "member.erased", "member.purged",
                      "member.suspended"]
    # ... and the product heard of each item in exactly one content.transferred event.
    announced: list[str] = []
    for key, copies in got.items():
        if events[key] == "content.transferred":
            items = copies[0].data["items"]
            assert isinstance(items, dict)
            announced += items["transfer"]
    assert len(announced) == ITEMS and len(set(announced)) == ITEMS
