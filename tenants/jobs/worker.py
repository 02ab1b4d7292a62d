"""The job runner behind ``tenantry worker``: claims due jobs, runs their handlers with a
heartbeat, and settles each as done, retried later, or dead.

Safety rests on PostgreSQL, not on the worker staying alive: a claim is a lease
(``claim_jobs``: ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other); a
worker that dies stops renewing its lease and the job is claimed again when it expires;
a handler's progress and its proof of holding the lease are written in the same
transaction as its work (``RunningJob.checkpoint``), so a stale worker cannot apply work
twice. A worker killed mid-job therefore repeats at most the uncommitted unit it was in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections

from tenants import db
from tenants.ids import OrgId
from tenants.jobs.registry import (
    HANDLERS,
    LeaseLostError,
    PermanentJobError,
    RetryLaterError,
    RunningJob,
)

log = logging.getLogger(__name__)

#: Backoff after the n-th failed attempt: BASE * 2**(n-1) seconds, at most CAP, with ±20%
#: jitter so retries of many jobs failing together spread out.
BACKOFF_BASE = 2.0
BACKOFF_CAP = 3600.0


def backoff_seconds(attempts: int, *, jitter: float | None = None) -> float:
    """Delay before the next try after ``attempts`` failures (pure, for tests)."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    factor = 1 + (random.uniform(-0.2, 0.2) if jitter is None else jitter)
    return float(delay * factor)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class Claimed:
    org_id: OrgId
    id: uuid.UUID


class Worker:
    """Runs jobs of every organisation; safe to run many at once, on any number of nodes."""

    def __init__(
        self,
        *,
        name: str | None = None,
        lease_seconds: int = 30,
        concurrency: int = 4,
        poll_seconds: float = 0.5,
    ) -> None:
        self.name = name or default_worker_name()
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def stopped(self) -> None:
        """Wait until ``stop`` is called."""
        await self._stop.wait()

    async def claim(self, limit: int, *, ahead: timedelta = timedelta(0)) -> list[Claimed]:
        conn = connections.get("default")
        _, rows = await conn.execute_query(
            "SELECT tenant_id, id FROM claim_jobs($1, $2, $3, $4)",
            [self.name, self.lease_seconds, limit, int(ahead.total_seconds())],
        )
        return [Claimed(OrgId(r["tenant_id"]), r["id"]) for r in rows]

    async def run_once(self, *, ahead: timedelta = timedelta(0)) -> int:
        """Claim up to ``concurrency`` due jobs and run them; returns how many ran.

        ``ahead`` also claims jobs due within that time (tests and drills fast-forward a
        departure this way).
        """
        claimed = await self.claim(self.concurrency, ahead=ahead)
        await asyncio.gather(*(self._run(job) for job in claimed))
        return len(claimed)

    async def run_until_idle(self, *, ahead: timedelta = timedelta(0), limit: int = 10_000) -> int:
        """Run jobs until none is due (within ``ahead``); returns how many ran."""
        total = 0
        while total < limit:
            ran = await self.run_once(ahead=ahead)
            if not ran:
                return total
            total += ran
        return total

    async def run_forever(self) -> None:
        """Poll for due jobs until ``stop``; claims as soon as a slot is free."""
        log.info("worker %s started", self.name)
        while not self._stop.is_set():
            try:
                ran = await self.run_once()
            except (OSError, ConnectionError) as exc:
                log.warning("worker %s cannot reach the database: %s", self.name, exc)
                ran = 0
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
        log.info("worker %s stopped", self.name)

    async def _run(self, claimed: Claimed) -> None:
        async with db.tenant_transaction(claimed.org_id):
            row = await db.fetch_one(
                "SELECT kind, key, payload, checkpoint, attempts, claims, locked_by "
                "FROM jobs WHERE tenant_id = $1 AND id = $2",
                claimed.org_id,
                claimed.id,
            )
        if row is None or row["locked_by"] != self.name:
            return
        job = RunningJob(
            org_id=claimed.org_id,
            id=claimed.id,
            kind=row["kind"],
            key=row["key"],
            payload=_json(row["payload"]),
            state=_json(row["checkpoint"]),
            attempts=row["attempts"],
            claims=row["claims"],
            worker=self.name,
            lease_seconds=self.lease_seconds,
        )
        handler = HANDLERS.get(job.kind)
        if handler is None:
            await self._fail(job, f"no handler for job kind {job.kind!r}", permanent=True)
            return
        beat = asyncio.create_task(self._heartbeat(job), name=f"heartbeat-{job.id}")
        try:
            await handler(job)
        except LeaseLostError:
            log.warning("job %s (%s): lease lost, leaving it to its new worker", job.id, job.kind)
            return
        except PermanentJobError as exc:
            await self._fail(job, str(exc), permanent=True)
            return
        except RetryLaterError as exc:
            await self._fail(job, str(exc), delay=exc.delay)
            return
        except Exception as exc:  # any handler failure is a failed attempt
            log.exception("job %s (%s) failed", job.id, job.kind)
            await self._fail(job, "".join(traceback.format_exception_only(exc)).strip())
            return
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self._settle(job, "status = 'done', finished_at = now(), last_error = NULL")

    async def _heartbeat(self, job: RunningJob) -> None:
        """Renew the lease every third of its length while the handler runs."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            async with db.tenant_transaction(job.org_id):
                result = await db.connection().execute_query(
                    "UPDATE jobs SET lease_until = now() + make_interval(secs => $4), "
                    "heartbeat_at = now() WHERE tenant_id = $1 AND id = $2 AND locked_by = $3 "
                    "AND status = 'running'",
                    [job.org_id, job.id, self.name, self.lease_seconds],
                )
            if not result[0]:
                return

    async def _fail(
        self, job: RunningJob, error: str, *, permanent: bool = False, delay: float | None = None
    ) -> None:
        attempts = job.attempts + 1
        async with db.tenant_transaction(job.org_id):
            row = await db.fetch_one(
                "SELECT max_attempts FROM jobs WHERE tenant_id = $1 AND id = $2",
                job.org_id,
                job.id,
            )
        dead = permanent or row is None or attempts >= row["max_attempts"]
        if dead:
            log.error("job %s (%s) is dead after %d attempts: %s", job.id, job.kind, attempts, error)
            await self._settle(
                job, "status = 'dead', attempts = $4, last_error = $5, finished_at = now()",
                attempts, error[:4000],
            )
            return
        wait = backoff_seconds(attempts) if delay is None else delay
        await self._settle(
            job, "status = 'queued', attempts = $4, last_error = $5, run_at = $6",
            attempts, error[:4000], datetime.now(UTC) + timedelta(seconds=wait),
        )

    async def _settle(self, job: RunningJob, assignments: str, *args: object) -> None:
        """Apply ``assignments`` and release the lease, if this worker still holds it."""
        async with db.tenant_transaction(job.org_id):
            await db.connection().execute_query(
                # ``assignments`` are constants of this module, never input.
                f"UPDATE jobs SET {assignments}, locked_by = NULL, lease_until = NULL, "  # noqa: S608
                "updated_at = now() WHERE tenant_id = $1 AND id = $2 AND locked_by = $3",
                [job.org_id, job.id, self.name, *args],
            )


def _json(value: object) -> dict[str, object]:
    import json

    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return dict(value) if isinstance(value, dict) else {}
