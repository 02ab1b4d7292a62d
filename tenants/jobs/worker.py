"""The job runner behind ``tenantry worker``: claims due jobs, runs their handlers with a
heartbeat, and settles each as done, retried later, or dead.

Safety rests on PostgreSQL, not on the worker staying alive: a claim is a lease
(``claim_jobs``: ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other); a
worker that dies stops renewing its lease and the job is claimed again when it expires;
a handler's progress and its proof of holding the lease are written in the same
transaction as its work (``RunningJob.checkpoint``), so a stale worker cannot apply work
twice. A worker killed mid-job therefore repeats at most the uncommitted unit it was in.

The worker outlives the database: an outage (``tenants.outages``) in its own loop, in a
lease renewal or in a handler is logged and waited out with a capped, jittered backoff,
forever; a job it interrupted goes back to the queue without counting as a failed attempt
(or, if even that cannot be written, is taken again when its lease expires). The loop
writes a heartbeat row (``workers``) every ``heartbeat_seconds``, and ``stalled_for``
tells a readiness probe how long the loop has made no progress.

Stopping (SIGTERM) is graceful: the loop takes no more jobs, gives the running ones
``shutdown_seconds`` to finish, then cancels those still running and puts their jobs back
in the queue, due now, without counting a failed attempt (``_release``); their handlers'
uncommitted unit of work rolls back and the next worker resumes from the last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
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
from tenants.outages import Backoff, is_database_outage
from tenants.text import counted

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
        heartbeat_seconds: float = 5.0,
        shutdown_seconds: float = 30.0,
    ) -> None:
        self.name = name or default_worker_name()
        #: How long a stop waits for running jobs before releasing them to the queue.
        self.shutdown_seconds = shutdown_seconds
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._stop = asyncio.Event()
        #: ``time.monotonic()`` of the loop's last round that reached the database (or had
        #: no need to); None while the loop is not running.
        self._progress_at: float | None = None
        self._beat_at = float("-inf")
        self._running: set[asyncio.Task[None]] = set()
        #: The job each running task works on (to release it at shutdown).
        self._claimed: dict[asyncio.Task[None], Claimed] = {}
        self._finished = asyncio.Event()

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

    def stalled_for(self) -> float:
        """Seconds since the loop last made progress (a round that reached the database,
        or had nothing to ask it); ``inf`` when the loop is not running (never started,
        stopped, or ended). A readiness probe compares it with its limit."""
        if self._progress_at is None:
            return float("inf")
        return time.monotonic() - self._progress_at

    async def run_forever(self) -> None:
        """Claim due jobs whenever a slot is free, until ``stop``; then let running jobs
        finish within ``shutdown_seconds`` and release the others (``_drain``). Database
        outages are logged and waited out (``Backoff``), never fatal."""
        log.info("worker %s started", self.name)
        backoff = Backoff()
        self._progress_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    claimed = await self._round()
                except Exception as exc:  # the loop must not end while the process lives
                    delay = backoff.next_delay()
                    if is_database_outage(exc):
                        log.warning(
                            "worker %s cannot reach the database (%s: %s); retrying in %.1f s",
                            self.name, type(exc).__name__, exc, delay,
                        )
                    else:
                        log.exception("worker %s: round failed; retrying in %.1f s",
                                      self.name, delay)
                    await self._pause(delay)
                    continue
                if backoff.failures:
                    log.info("worker %s reaches the database again", self.name)
                    backoff.reset()
                self._progress_at = time.monotonic()
                if claimed == 0 or len(self._running) >= self.concurrency:
                    await self._pause(self.poll_seconds, wake_on_job_end=True)
            if self._running:
                await self._drain()
            await self._forget_heartbeat()
        finally:
            self._progress_at = None
        log.info("worker %s stopped", self.name)

    async def _round(self) -> int:
        """Write the heartbeat when due and claim jobs for the free slots; returns how
        many were claimed (each now runs as a task of its own)."""
        if time.monotonic() - self._beat_at >= self.heartbeat_seconds:
            await self._write_heartbeat()
        free = self.concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self.claim(free)
        running = {job.id for job in self._claimed.values()}
        for job in claimed:
            if job.id in running:
                # Its lease ran out while it ran here (a batch slower than the lease, a
                # heartbeat held up): the claim renewed the lease, and the task running
                # it carries on. A second task would pass every fence, which tells
                # workers apart by name, and do the work twice.
                log.warning("job %s: lease ran out while running here; renewed", job.id)
                continue
            task = asyncio.create_task(self._run_guarded(job), name=f"job-{job.id}")
            self._running.add(task)
            self._claimed[task] = job
            task.add_done_callback(self._job_ended)
        return len(claimed)

    def _job_ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._claimed.pop(task, None)
        self._finished.set()

    async def _drain(self) -> None:
        """Wait up to ``shutdown_seconds`` for the running jobs; cancel those still running
        and release their jobs to the queue."""
        running = set(self._running)
        _, late = await asyncio.wait(running, timeout=self.shutdown_seconds)
        if not late:
            return
        jobs = [self._claimed[task] for task in late if task in self._claimed]
        log.warning("worker %s: %s still running after %.0f s; releasing them",
                    self.name, counted(len(late), "job"), self.shutdown_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for job in jobs:
            try:
                await self._release(job)
            except Exception as exc:  # its lease brings it back when it expires
                log.warning("job %s could not be released (%s: %s); its lease will bring "
                            "it back", job.id, type(exc).__name__, exc)

    async def _release(self, claimed: Claimed) -> None:
        """Put a job this worker holds back in the queue, due now: not a failed attempt."""
        async with db.tenant_transaction(claimed.org_id):
            await db.connection().execute_query(
                "UPDATE jobs SET status = 'queued', run_at = now(), locked_by = NULL, "
                "lease_until = NULL, updated_at = now(), last_error = $4 "
                "WHERE tenant_id = $1 AND id = $2 AND locked_by = $3 AND status = 'running'",
                [claimed.org_id, claimed.id, self.name,
                 f"released by worker {self.name} at shutdown"],
            )
        log.info("job %s released to the queue", claimed.id)

    async def _pause(self, seconds: float, *, wake_on_job_end: bool = False) -> None:
        """Wait ``seconds``, or less when stopped (or, if asked, when a job ends)."""
        self._finished.clear()
        waits = [asyncio.ensure_future(self._stop.wait())]
        if wake_on_job_end and self._running:
            waits.append(asyncio.ensure_future(self._finished.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _write_heartbeat(self) -> None:
        conn = connections.get("default")
        await conn.execute_query(HEARTBEAT_SQL, [
            self.name, socket.gethostname(), os.getpid(), self.concurrency, len(self._running),
        ])
        self._beat_at = time.monotonic()

    async def _forget_heartbeat(self) -> None:
        """A stopped worker is not shown as live; best effort (the row ages out anyway)."""
        try:
            await connections.get("default").execute_query(
                "DELETE FROM workers WHERE name = $1", [self.name]
            )
        except Exception as exc:
            log.info("worker %s could not remove its heartbeat row: %s", self.name, exc)

    async def _run_guarded(self, claimed: Claimed) -> None:
        """``_run``, with the worker's own database work (loading, settling) allowed to fail
        in an outage: the job keeps its lease and is taken again when the lease expires."""
        try:
            await self._run(claimed)
        except Exception as exc:
            if is_database_outage(exc):
                log.warning("job %s: the database went away (%s: %s); its lease will bring "
                            "it back", claimed.id, type(exc).__name__, exc)
            else:
                log.exception("job %s: the worker failed around it", claimed.id)

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
            await self._unknown(job)
            return
        if job.claims > 1:
            # Taken before and not finished (its worker was killed, lost the database or
            # was stopped): say so, so an operator can follow a job across restarts.
            log.info(
                "job %s (%s) taken again (claim %d, %s): %s",
                job.id, job.kind, job.claims,
                f"{job.attempts} failed attempt{'s' if job.attempts != 1 else ''}",
                "going on from its checkpoint" if job.state else "starting over",
            )
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
        except Exception as exc:
            if is_database_outage(exc):
                log.warning("job %s (%s) interrupted by a database outage: %s",
                            job.id, job.kind, exc)
                await self._requeue_after_outage(job, exc)
                return
            # any other handler failure is a failed attempt
            log.exception("job %s (%s) failed", job.id, job.kind)
            await self._fail(job, "".join(traceback.format_exception_only(exc)).strip())
            return
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        await self._settle(job, "status = 'done', finished_at = now(), last_error = NULL")
        if job.claims > 1:
            log.info("job %s (%s) done after %d claims", job.id, job.kind, job.claims)

    async def _requeue_after_outage(self, job: RunningJob, exc: Exception) -> None:
        """Not the job's fault: put it back in the queue, due now, without using an attempt,
        as soon as the database answers again. After a lease's length of trying, the lease
        has expired and brings the job back anyway; the error is raised then."""
        backoff = Backoff()
        give_up = time.monotonic() + self.lease_seconds
        while True:
            try:
                await self._settle(
                    job, "status = 'queued', last_error = $4, run_at = now()",
                    f"interrupted by a database outage: {type(exc).__name__}",
                )
                return
            except Exception as again:
                if not is_database_outage(again) or time.monotonic() > give_up:
                    raise
                await asyncio.sleep(backoff.next_delay())

    async def _heartbeat(self, job: RunningJob) -> None:
        """Renew the lease every third of its length while the handler runs; through an
        outage it keeps trying (sooner), so the lease is renewed as soon as it can be."""
        backoff = Backoff(cap=self.lease_seconds / 3)
        wait = self.lease_seconds / 3
        while True:
            await asyncio.sleep(wait)
            try:
                async with db.tenant_transaction(job.org_id):
                    result = await db.connection().execute_query(
                        "UPDATE jobs SET lease_until = now() + make_interval(secs => $4), "
                        "heartbeat_at = now() WHERE tenant_id = $1 AND id = $2 "
                        "AND locked_by = $3 AND status = 'running'",
                        [job.org_id, job.id, self.name, self.lease_seconds],
                    )
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                wait = backoff.next_delay()
                log.warning("job %s: lease renewal failed (%s); retrying in %.1f s",
                            job.id, type(exc).__name__, wait)
                continue
            if not result[0]:
                return
            backoff.reset()
            wait = self.lease_seconds / 3

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

    async def _unknown(self, job: RunningJob) -> None:
        """A job of a kind this worker does not know: in a rolling upgrade, one a newer
        version queued while this older worker still runs (an old worker failed every
        "Verify the chain now" for good). It goes back to the queue for a worker that
        knows it, its attempts untouched; only after UNKNOWN_KIND_CLAIMS tries (an hour)
        is it given up, as a kind no version knows."""
        error = f"no handler for job kind {job.kind!r} in this version of the worker"
        if job.claims >= UNKNOWN_KIND_CLAIMS:
            await self._fail(job, error, permanent=True)
            return
        log.warning("job %s: %s; left for a worker that knows it", job.id, error)
        await self._settle(
            job, "status = 'queued', last_error = $4, run_at = $5",
            error, datetime.now(UTC) + timedelta(seconds=UNKNOWN_KIND_DELAY),
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


#: A job of a kind this worker does not know waits this long between its tries, and is
#: given up after this many (``Worker._unknown``).
UNKNOWN_KIND_DELAY = 60
UNKNOWN_KIND_CLAIMS = 60


#: The worker's row in ``workers`` (not organisation data: which workers live, and how
#: busy they are); a row older than a day belongs to a worker long gone and is dropped.
HEARTBEAT_SQL = """
WITH gone AS (
  DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'
)
INSERT INTO workers (name, host, pid, concurrency, running, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5, now(), now())
ON CONFLICT (name) DO UPDATE
   SET heartbeat_at = now(), running = EXCLUDED.running, concurrency = EXCLUDED.concurrency
"""


def _json(value: object) -> dict[str, object]:
    import json

    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return dict(value) if isinstance(value, dict) else {}
