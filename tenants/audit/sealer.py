"""Sealing: giving recorded audit events their place in their organisation's hash chain.

A write records its event and queues it in ``audit_pending`` without any lock shared by
the organisation's other writers (``tenants.audit.service.record``). After it commits, a
sealer takes the organisation's chain head with ``FOR UPDATE SKIP LOCKED`` (a sealer on
another node skips the organisation instead of queueing), chains the queued events in
event-id order, a batch per transaction, and moves the head. Events that were queued but
are not visible yet (their transaction has not committed) are sealed by a later pass, so
the chain order is the order in which events became visible to a sealer.

Between commit and seal an event is listed and counted as pending by verification but
not protected by the chain: that window is what lets writes of one organisation run side
by side. ``AuditSealer`` keeps it short in a running service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from tenants import db
from tenants.audit.chain import ChainedEvent, ChainHead, event_hash
from tenants.ids import OrgId
from tenants.outages import Backoff, is_database_outage
from tenants.text import counted

log = logging.getLogger(__name__)

#: Events chained per transaction: enough to amortise the transaction, small enough that
#: the head lock and the statement stay short.
BATCH = 500

#: The oldest queued events of the open organisation with their content: the queue is read
#: first (an index range of at most ``$2`` entries), then each event by its key (LATERAL
#: with LIMIT keeps it a keyed lookup whatever the statistics say), so a pass costs the
#: size of its batch, not of the organisation's log. A queue entry whose event is gone
#: comes back with NULL content and is left alone (verification reports it).
PENDING_SQL = """
SELECT p.event_id, e.id AS found, e.occurred_at, e.actor, e.actor_display, e.action,
       e.target_type, e.target_id, e.before, e.after, e.request_id, e.client_addr
  FROM (SELECT event_id FROM audit_pending WHERE tenant_id = $1
         ORDER BY event_id LIMIT $2) AS p
  LEFT JOIN LATERAL (
    SELECT * FROM audit_events WHERE tenant_id = $1 AND id = p.event_id LIMIT 1
  ) AS e ON true
 ORDER BY p.event_id
"""

#: Append the links, take their events off the queue and move the head: one statement.
APPEND_SQL = """
WITH linked AS (
  INSERT INTO audit_chain (tenant_id, seq, event_id, prev_hash, hash)
  SELECT $1::uuid, l.seq, l.event_id, l.prev_hash, l.hash
    FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[])
         AS l (seq, event_id, prev_hash, hash)
), sealed AS (
  DELETE FROM audit_pending WHERE tenant_id = $1::uuid AND event_id = ANY($3::bigint[])
)
UPDATE audit_heads SET seq = $6, hash = $7, updated_at = now() WHERE tenant_id = $1::uuid
"""


@dataclass(frozen=True, slots=True)
class Link:
    """One event's place in the chain, as stored in ``audit_chain``."""

    seq: int
    event_id: int
    prev_hash: str
    hash: str


def link_events(tenant_id: str, head: ChainHead, rows: Sequence[Mapping[str, Any]]) -> list[Link]:
    """Chain ``rows`` (events as stored, with ``event_id``) after ``head``, in the order
    given. Pure: the hashes cover each event's content exactly as read back."""
    links: list[Link] = []
    seq, prev_hash = head.seq, head.hash
    for row in rows:
        seq += 1
        digest = event_hash(prev_hash, ChainedEvent.from_row(tenant_id, seq, row))
        links.append(Link(seq, int(row["event_id"]), prev_hash, digest))
        prev_hash = digest
    return links


#: Events hashed between two yields to the event loop: hashing a whole batch at once would
#: hold up every request of the process for milliseconds.
SLICE = 25


async def _link_in_slices(
    tenant_id: str, head: ChainHead, rows: list[dict[str, Any]]
) -> list[Link]:
    """``link_events`` a slice at a time, letting the process's requests run in between."""
    links: list[Link] = []
    for start in range(0, len(rows), SLICE):
        if start:
            await asyncio.sleep(0)
        links += link_events(tenant_id, head, rows[start : start + SLICE])
        head = ChainHead(links[-1].seq, links[-1].hash)
    return links


LOCK_HEAD_SQL = "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE"
TAKE_FREE_HEAD_SQL = LOCK_HEAD_SQL + " SKIP LOCKED"


async def _take_head(org_id: OrgId, *, wait: bool) -> ChainHead | None:
    """Lock the organisation's head for this transaction; None when another sealer (or a
    verification) holds it and ``wait`` is false. RuntimeError when there is no head."""
    row = await db.fetch_one(LOCK_HEAD_SQL if wait else TAKE_FREE_HEAD_SQL, org_id)
    if row is not None:
        return ChainHead(int(row["seq"]), str(row["hash"]))
    if not wait and await db.fetch_one("SELECT 1 FROM audit_heads WHERE tenant_id = $1", org_id):
        return None
    if not wait and not await db.fetch_one(
        "SELECT 1 FROM audit_pending WHERE tenant_id = $1 LIMIT 1", org_id
    ):
        return None  # its rows went since it was listed (TRUNCATE): nothing to seal
    raise RuntimeError(f"organisation {org_id} has no audit chain head")


@dataclass(frozen=True, slots=True)
class Batch:
    """One sealing transaction: queue entries read, and events sealed from them."""

    read: int
    sealed: int


async def _seal_batch(org_id: OrgId, *, wait: bool, batch: int) -> Batch | None:
    """Seal up to ``batch`` queued events in one transaction; None when the head is taken."""
    async with db.tenant_transaction(org_id):
        head = await _take_head(org_id, wait=wait)
        if head is None:
            return None
        rows = await db.fetch(PENDING_SQL, org_id, batch)
        links = await _link_in_slices(
            str(org_id), head, [r for r in rows if r["found"] is not None]
        )
        if not links:
            return Batch(len(rows), 0)
        await db.fetch(
            APPEND_SQL,
            org_id,
            [link.seq for link in links],
            [link.event_id for link in links],
            [link.prev_hash for link in links],
            [link.hash for link in links],
            links[-1].seq,
            links[-1].hash,
        )
        return Batch(len(rows), len(links))


async def seal_pending(org_id: OrgId, *, wait: bool = False, batch: int = BATCH) -> int:
    """Chain the organisation's queued events; returns how many this call sealed.

    Runs its own transactions (call it outside a tenant transaction). Returns 0 at once
    when another sealer holds the organisation's head, which will seal what is queued;
    with ``wait`` it waits for that sealer instead, so every event committed before the
    call is sealed when it returns (what tests and ``tenantry audit verify`` need).
    Raises RuntimeError when the organisation has no chain head.
    """
    sealed = 0
    while True:
        done = await _seal_batch(org_id, wait=wait, batch=batch)
        if done is None:
            return sealed
        sealed += done.sealed
        if done.read < batch or not done.sealed:  # drained, or only vanished events left
            return sealed


async def orgs_with_pending() -> list[OrgId]:
    """The organisations with queued events, found without reading any organisation's rows
    (the runtime role cannot): a SECURITY DEFINER function returns their ids alone."""
    _, rows = await connections.get("default").execute_query(
        "SELECT org FROM audit_orgs_with_pending() AS org"
    )
    return [OrgId(row["org"]) for row in rows]


async def seal_all(*, wait: bool = False) -> int:
    """Seal every organisation's queued events, one organisation after another; returns how
    many were sealed. An organisation that fails does not stop the others: the failures
    are raised together afterwards as an ExceptionGroup."""
    sealed = 0
    failures: list[Exception] = []
    for org_id in await orgs_with_pending():
        try:
            sealed += await seal_pending(org_id, wait=wait)
        except Exception as exc:
            exc.add_note(f"while sealing the audit events of organisation {org_id}")
            failures.append(exc)
    if failures:
        raise ExceptionGroup(f"sealing failed for {counted(len(failures), 'organisation')}", failures)
    return sealed


# --- the sealer of a running service -------------------------------------------------------

_running: set[AuditSealer] = set()


def request_sealing() -> None:
    """Ask this process's sealers for a pass soon; called for every recorded event.

    Cheap: it sets an asyncio.Event of each sealer running in the caller's event loop
    (a sealer in another loop or process finds the event on its next periodic pass).
    """
    for sealer in _running:
        sealer.wake()


class AuditSealer:
    """Seals queued audit events in the background of a worker (``tenantry worker``, or
    the one ``tenantry serve`` embeds): a web node without a worker spends its CPU on
    requests alone.

    It wakes when a write of its own process asks (``request_sealing``), waits ``settle``
    seconds so the asking transaction has usually committed and more events join the
    batch, and otherwise every ``interval`` seconds, which picks up events written by
    other processes. A pass that found events is followed by another ``busy_interval``
    later: writes that keep coming (most of them, where the web nodes are other
    processes, unheard) are sealed a fraction of a second after they commit, and an idle
    sealer asks once per ``interval``. Errors are logged and the pass is retried after
    ``interval``: sealing never stops the service, and events simply wait in the queue
    meanwhile; failures in a row wait longer each time (``tenants.outages.Backoff``), so
    a database restart costs a few log lines and a few seconds, forever survivable.
    """

    def __init__(
        self,
        *,
        interval: float = 1.0,
        settle: float = 0.5,
        busy_interval: float = 0.1,
        seal: Callable[[], Awaitable[int]] = seal_all,
    ) -> None:
        self.interval = interval
        self.settle = settle
        self.busy_interval = busy_interval
        self._seal = seal
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls,
        *,
        interval: float = 1.0,
        settle: float = 0.5,
        busy_interval: float = 0.1,
        seal: Callable[[], Awaitable[int]] = seal_all,
    ) -> AuditSealer:
        """Create a sealer and run it as a task of the running event loop."""
        sealer = cls(interval=interval, settle=settle, busy_interval=busy_interval, seal=seal)
        sealer._loop = asyncio.get_running_loop()
        sealer._task = asyncio.create_task(sealer._run(), name="audit-sealer")
        _running.add(sealer)
        return sealer

    def wake(self) -> None:
        """Ask for a pass; ignored from another event loop (asyncio.Event is not
        thread-safe), where the periodic pass covers it."""
        if not self._wakeup.is_set() and _current_loop() is self._loop:
            self._wakeup.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the pass under way plus one last pass (events of the last requests), for
        at most ``grace`` seconds; then the task is cancelled."""
        _running.discard(self)
        if self._task is None:
            return
        self._stop.set()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            log.warning("the audit sealer did not finish within %.1f s; cancelled", grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # Consecutive failed passes wait longer and longer (capped, jittered): a database
        # that is away is not hammered, nor the log flooded, by every write meanwhile.
        backoff = Backoff(base=self.interval, cap=10 * self.interval)
        sealed = 0
        while True:
            await self._wait(busy=sealed > 0)
            if self._stop.is_set():
                break
            done = await self._pass()
            if done is not None:
                sealed = done
                backoff.reset()
            else:
                sealed = 0
                await self._sleep(self._stop, backoff.next_delay())
        await self._pass()

    async def _wait(self, *, busy: bool) -> None:
        if busy:
            await self._sleep(self._stop, self.busy_interval)
        else:
            woken = await self._sleep(self._wakeup, self.interval)
            if woken and not self._stop.is_set():
                await asyncio.sleep(self.settle)
        self._wakeup.clear()

    @staticmethod
    async def _sleep(until: asyncio.Event, seconds: float) -> bool:
        """Wait for ``until`` at most ``seconds``; whether it was set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), seconds)
        return until.is_set()

    async def _pass(self) -> int | None:
        """One sealing pass: how many events it sealed; None (logged) when it failed."""
        try:
            sealed = await self._seal()
        except Exception as exc:
            if is_database_outage(exc):
                log.warning("sealing audit events: the database is away (%s); will retry",
                            type(exc).__name__)
            else:
                log.exception("sealing audit events failed; will retry")
            return None
        if sealed:
            log.debug("sealed %d audit events", sealed)
        return sealed


def _current_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
