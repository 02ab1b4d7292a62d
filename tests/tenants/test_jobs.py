"""The durable job queue on the real database: claims, retries, dead letters, ordering,
leases."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tenants import db
from tenants.errors import IllegalTransitionError
from tenants.jobs import service as jobs
from tenants.jobs.registry import (
    LeaseLostError,
    PermanentJobError,
    RetryLaterError,
    RunningJob,
    handler,
)
from tenants.jobs.worker import BACKOFF_CAP, UNKNOWN_KIND_CLAIMS, Worker, backoff_seconds
from tests.conftest import ACTOR, OrgHandle

SEEN: list[tuple[str, Any]] = []
FAILS_LEFT: dict[str, int] = {}


@handler("test.record")
async def record_payload(job: RunningJob) -> None:
    SEEN.append((job.kind, job.payload["n"]))


@handler("test.flaky")
async def flaky(job: RunningJob) -> None:
    left = FAILS_LEFT.get(job.key, 0)
    if left:
        FAILS_LEFT[job.key] = left - 1
        raise RetryLaterError("receiver down", delay=60)
    SEEN.append((job.kind, job.payload["n"]))


@handler("test.broken")
async def broken(job: RunningJob) -> None:
    raise ValueError("boom")


@handler("test.permanent")
async def permanent(job: RunningJob) -> None:
    raise PermanentJobError("the subject is gone")


@handler("test.counter")
async def counter(job: RunningJob) -> None:
    """Counts to payload["to"] one checkpointed step at a time."""
    while (step := int(job.state.get("i", 0))) < job.payload["to"]:
        async with db.tenant_transaction(job.org_id):
            SEEN.append(("step", step))
            await job.checkpoint({"i": step + 1})


@pytest.fixture(autouse=True)
def reset() -> None:
    SEEN.clear()
    FAILS_LEFT.clear()


async def enqueue(org: OrgHandle, kind: str, *, n: int = 0, key: str | None = None,
                  **kw: Any) -> str:
    key = key or f"{kind}:{uuid.uuid4()}"
    async with db.tenant_transaction(org.id):
        await jobs.enqueue(kind, {"n": n, **kw.pop("payload", {})}, key=key, **kw)
    return key


async def job_row(conn: asyncpg.Connection, key: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM jobs WHERE key = $1", key)
    assert row is not None
    return row


async def test_a_queued_job_runs_once_and_is_done(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    key = await enqueue(org, "test.record", n=7)
    assert await Worker(name="w").run_until_idle() == 1
    assert SEEN == [("test.record", 7)]
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"], row["claims"], row["locked_by"]) == ("done", 0, 1, None)
    assert await Worker(name="w").run_until_idle() == 0


async def test_enqueueing_the_same_key_twice_makes_one_job(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    async with db.tenant_transaction(org.id):
        assert await jobs.enqueue("test.record", {"n": 1}, key="same") is True
        assert await jobs.enqueue("test.record", {"n": 2}, key="same") is False
    assert await owner_conn.fetchval("SELECT count(*) FROM jobs WHERE key = 'same'") == 1


async def enqueue_then_fail(org: OrgHandle) -> None:
    async with db.tenant_transaction(org.id):
        await jobs.enqueue("test.record", {"n": 1}, key="rolled-back")
        raise RuntimeError("the change failed")


async def test_a_job_rolled_back_with_its_transaction_never_runs(org: OrgHandle) -> None:
    with pytest.raises(RuntimeError):
        await enqueue_then_fail(org)
    assert await Worker(name="w").run_until_idle() == 0


async def test_a_future_job_waits_for_its_time(org: OrgHandle) -> None:
    from datetime import UTC, datetime

    await enqueue(org, "test.record", n=1, run_at=datetime.now(UTC) + timedelta(hours=1))
    assert await Worker(name="w").run_until_idle() == 0
    assert await Worker(name="w").run_until_idle(ahead=timedelta(hours=2)) == 1


async def test_a_failing_job_is_retried_with_backoff_and_then_succeeds(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    key = await enqueue(org, "test.flaky", n=3)
    FAILS_LEFT[key] = 2
    worker = Worker(name="w")
    assert await worker.run_until_idle() == 1
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"], row["last_error"]) == ("queued", 1, "receiver down")
    assert row["run_at"] > row["updated_at"] + timedelta(seconds=55)
    await worker.run_until_idle(ahead=timedelta(minutes=2))
    await worker.run_until_idle(ahead=timedelta(minutes=2))
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"]) == ("done", 2)
    assert SEEN == [("test.flaky", 3)]


async def test_a_job_out_of_attempts_is_dead_until_someone_retries_it(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    key = await enqueue(org, "test.broken", max_attempts=3)
    worker = Worker(name="w")
    for _ in range(3):
        await worker.run_until_idle(ahead=timedelta(hours=1))
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert "ValueError: boom" in row["last_error"]
    assert await worker.run_until_idle(ahead=timedelta(days=1)) == 0
    async with db.tenant_transaction(org.id):
        retried = await jobs.retry_job(row["id"], actor=ACTOR)
    assert (retried.status, retried.attempts) == ("queued", 0)
    async with db.tenant_transaction(org.id):
        with pytest.raises(IllegalTransitionError):
            await jobs.retry_job(row["id"], actor=ACTOR)


async def test_a_permanent_error_goes_straight_to_the_dead_letters(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    key = await enqueue(org, "test.permanent")
    await Worker(name="w").run_until_idle()
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 1, "the subject is gone")


async def test_a_job_of_a_kind_the_worker_does_not_know_waits_for_one_that_does(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    """In a rolling upgrade an older worker took a newer version's job (the console's
    "Verify the chain now") and failed it for good: it now leaves it for a worker that
    knows its kind, and gives up only on a kind no worker has known for an hour."""
    key = await enqueue(org, "test.record", n=4)
    await owner_conn.execute("UPDATE jobs SET kind = 'test.newer' WHERE key = $1", key)
    assert await Worker(name="old").run_until_idle() == 1
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("queued", 0, None)
    assert "no handler for job kind 'test.newer'" in row["last_error"]
    assert await Worker(name="old").run_until_idle() == 0  # not again at once
    await owner_conn.execute("UPDATE jobs SET kind = 'test.record' WHERE key = $1", key)
    assert await Worker(name="new").run_until_idle(ahead=timedelta(minutes=2)) == 1
    assert SEEN == [("test.record", 4)]
    assert (await job_row(owner_conn, key))["status"] == "done"
    never = await enqueue(org, "test.record", n=5)
    await owner_conn.execute(
        "UPDATE jobs SET kind = 'test.nobody', claims = $2 WHERE key = $1",
        never, UNKNOWN_KIND_CLAIMS - 1,
    )
    assert await Worker(name="old").run_until_idle() == 1
    assert (await job_row(owner_conn, never))["status"] == "dead"


async def test_jobs_sharing_a_queue_run_in_order_and_a_failing_one_holds_the_rest(
    org: OrgHandle,
) -> None:
    first = await enqueue(org, "test.flaky", n=1, queue="member-1")
    await enqueue(org, "test.record", n=2, queue="member-1")
    await enqueue(org, "test.record", n=9, queue="member-2")
    FAILS_LEFT[first] = 1
    worker = Worker(name="w", concurrency=8)
    await worker.run_until_idle()
    assert SEEN == [("test.record", 9)]
    await worker.run_until_idle(ahead=timedelta(minutes=5))
    assert SEEN == [("test.record", 9), ("test.flaky", 1), ("test.record", 2)]


async def test_a_job_of_a_killed_worker_is_taken_over_when_its_lease_expires(
    org: OrgHandle, owner_conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    key = await enqueue(org, "test.counter", payload={"to": 3})
    dead = Worker(name="killed", lease_seconds=5)
    claimed = await dead.claim(1)
    assert len(claimed) == 1
    assert await Worker(name="other").run_until_idle() == 0  # leased: nobody else takes it
    await owner_conn.execute("UPDATE jobs SET lease_until = now() - interval '1 second'")
    with caplog.at_level(logging.INFO, logger="tenants.jobs.worker"):
        assert await Worker(name="other").run_until_idle() == 1
    row = await job_row(owner_conn, key)
    assert (row["status"], row["claims"], row["attempts"]) == ("done", 2, 0)
    assert SEEN == [("step", 0), ("step", 1), ("step", 2)]
    # The operator can follow the job across the restart in the log.
    said = [r.getMessage() for r in caplog.records if str(row["id"]) in r.getMessage()]
    assert said == [
        f"job {row['id']} (test.counter) taken again (claim 2, 0 failed attempts): starting over",
        f"job {row['id']} (test.counter) done after 2 claims",
    ]


async def test_a_worker_that_lost_its_lease_cannot_commit_work(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    key = await enqueue(org, "test.counter", payload={"to": 1})
    stale = Worker(name="stale")
    [claimed] = await stale.claim(1)
    await owner_conn.execute("UPDATE jobs SET locked_by = 'new-owner'")
    job = RunningJob(org.id, claimed.id, "test.counter", key, {"to": 1}, {}, 0, 1, "stale", 30)
    with pytest.raises(LeaseLostError):
        async with db.tenant_transaction(org.id):
            await job.checkpoint({"i": 1})
    assert (await job_row(owner_conn, key))["checkpoint"] == "{}"


async def test_checkpointed_work_resumes_where_it_stopped(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    key = await enqueue(org, "test.counter", payload={"to": 4})
    await owner_conn.execute("UPDATE jobs SET checkpoint = '{\"i\": 2}'::jsonb WHERE key = $1", key)
    await Worker(name="w").run_until_idle()
    assert SEEN == [("step", 2), ("step", 3)]


async def test_two_workers_never_run_the_same_job(org: OrgHandle) -> None:
    for n in range(20):
        await enqueue(org, "test.record", n=n)
    await asyncio.gather(Worker(name="a").run_until_idle(), Worker(name="b").run_until_idle())
    assert sorted(n for _, n in SEEN) == list(range(20))


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_seconds(n, jitter=0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_seconds(40, jitter=0) == BACKOFF_CAP


# --- outliving the database --------------------------------------------------------------


@handler("test.outage")
async def interrupted_by_an_outage(job: RunningJob) -> None:
    """A handler whose database went away mid-run (the error asyncpg raises while the
    server recovers; tortoise passes it through, here as the cause of its own error)."""
    try:
        raise asyncpg.CannotConnectNowError("the database system is not yet accepting connections")
    except asyncpg.CannotConnectNowError as exc:
        raise RuntimeError("query failed") from exc


def test_database_outages_are_told_from_bugs_through_causes_contexts_and_groups() -> None:
    from tortoise.exceptions import OperationalError

    from tenants.outages import is_database_outage

    for outage in (ConnectionRefusedError(111, "refused"), TimeoutError(),
                   asyncpg.CannotConnectNowError("recovering"),
                   asyncpg.AdminShutdownError("terminating connection"),
                   asyncpg.ConnectionDoesNotExistError("connection was closed"),
                   asyncpg.InterfaceError("connection is closed"),
                   asyncpg.TooManyConnectionsError("sorry, too many clients already"),
                   asyncpg.InvalidPasswordError("password authentication failed")):
        assert is_database_outage(outage), outage
        wrapped = OperationalError("query failed")
        wrapped.__cause__ = outage
        assert is_database_outage(wrapped)
        assert is_database_outage(ExceptionGroup("sealing failed", [ValueError(), wrapped]))
    for bug in (ValueError("boom"), asyncpg.UniqueViolationError("duplicate"),
                OperationalError("syntax error"), KeyError("x")):
        assert not is_database_outage(bug), bug


def test_outage_backoff_grows_is_capped_and_jittered_and_resets() -> None:
    from tenants.outages import Backoff

    backoff = Backoff(base=0.25, cap=5.0)
    delays = [backoff.next_delay() for _ in range(12)]
    ceilings = [min(5.0, 0.25 * 2 ** n) for n in range(12)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 5.0 and len({round(d, 6) for d in delays[-5:]}) > 1  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.25


async def test_a_job_interrupted_by_a_database_outage_is_queued_again_without_using_an_attempt(
    org: OrgHandle, owner_conn: asyncpg.Connection,
) -> None:
    key = await enqueue(org, "test.outage")
    assert await Worker(name="w").run_once() == 1
    row = await job_row(owner_conn, key)
    assert (row["status"], row["attempts"], row["locked_by"]) == ("queued", 0, None)
    assert "outage" in row["last_error"] and row["run_at"] <= await owner_conn.fetchval("SELECT now()")


async def test_a_running_worker_writes_heartbeats_claims_as_slots_free_and_forgets_itself_on_stop(
    org: OrgHandle, owner_conn: asyncpg.Connection,
) -> None:
    from app.routes.health import worker_check

    worker = Worker(name=f"beating-{uuid.uuid4().hex[:6]}", poll_seconds=0.05,
                    heartbeat_seconds=0.1, concurrency=2)
    assert worker_check(worker) == "not running"
    task = asyncio.create_task(worker.run_forever())
    try:
        for n in range(6):
            await enqueue(org, "test.record", n=n)
        deadline = asyncio.get_running_loop().time() + 20
        while len(SEEN) < 6 or not await owner_conn.fetchval(
                "SELECT count(*) FROM workers WHERE name = $1", worker.name):
            assert asyncio.get_running_loop().time() < deadline, SEEN
            await asyncio.sleep(0.05)
        first = await owner_conn.fetchval("SELECT heartbeat_at FROM workers WHERE name = $1",
                                          worker.name)
        await asyncio.sleep(0.5)
        later = await owner_conn.fetchrow("SELECT * FROM workers WHERE name = $1", worker.name)
        assert later["heartbeat_at"] > first and later["concurrency"] == 2
        assert worker.stalled_for() < 1 and worker_check(worker) is None
        assert worker_check(worker, within=-1) is not None  # older than the limit: stuck
    finally:
        worker.stop()
        await task
    assert sorted(n for _, n in SEEN) == list(range(6))
    assert not await owner_conn.fetchval("SELECT count(*) FROM workers WHERE name = $1",
                                         worker.name)
    assert worker_check(worker) == "not running"


RUNS: list[str] = []


@handler("test.outlasts_lease")
async def outlasts_lease(job: RunningJob) -> None:
    """Outlasts its lease without a heartbeat getting through (as on a machine too busy)."""
    RUNS.append(job.worker)
    await asyncio.sleep(job.payload["seconds"])


async def test_a_job_whose_lease_runs_out_while_it_runs_is_not_started_again_by_its_worker(
    org: OrgHandle, owner_conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fences tell workers apart by name, so a second run in the same worker would pass
    them all: the crash drill's departure once announced 45,000 of 100,000 moved items
    twice under the same event keys (and so not at all) when its worker claimed its own
    transfer again on a loaded machine."""

    async def held_up(self: Worker, job: RunningJob) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(Worker, "_heartbeat", held_up)
    RUNS.clear()
    key = await enqueue(org, "test.outlasts_lease", payload={"seconds": 2.5})
    worker = Worker(name=f"busy-{uuid.uuid4().hex[:6]}", lease_seconds=1, poll_seconds=0.05,
                    concurrency=4)
    task = asyncio.create_task(worker.run_forever())
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while (await job_row(owner_conn, key))["status"] != "done":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await task
    row = await job_row(owner_conn, key)
    assert [worker.name] == RUNS
    assert row["claims"] >= 2  # the lease ran out and the worker claimed the job again
