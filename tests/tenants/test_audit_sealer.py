"""The sealer without a database: chaining is the same hash chain the verifier checks, and
the background loop seals when asked, periodically, after failures and once more at stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenants.audit.chain import GENESIS, ChainedEvent, ChainHead, StoredEvent, verify_chain
from tenants.audit.sealer import AuditSealer, link_events, request_sealing


def rows(n: int, first_id: int = 1) -> list[dict[str, Any]]:
    """Events as the sealer reads them back (JSON columns as text, like the driver)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "event_id": event_id,
            "occurred_at": start + timedelta(seconds=event_id),
            "actor": "system:t",
            "actor_display": "t",
            "action": "member.updated",
            "target_type": "member",
            "target_id": f"m{event_id}",
            "before": '{"name": "a"}',
            "after": '{"name": "b", "score": 1.0}',
            "request_id": None,
            "client_addr": "127.0.0.1",
        }
        for event_id in range(first_id, first_id + n)
    ]


def stored(tenant: str, head: ChainHead, batch: list[dict[str, Any]]) -> list[StoredEvent]:
    links = link_events(tenant, head, batch)
    return [
        StoredEvent(ChainedEvent.from_row(tenant, link.seq, row), link.prev_hash, link.hash)
        for link, row in zip(links, batch, strict=True)
    ]


def test_linked_batches_form_one_chain_the_verifier_accepts() -> None:
    first = stored("org", ChainHead(0, GENESIS), rows(3))
    second = stored("org", ChainHead(3, first[-1].hash), rows(4, first_id=10))
    result = verify_chain(first + second)
    assert result.ok and result.head == ChainHead(7, second[-1].hash)
    assert [s.event.seq for s in first + second] == list(range(1, 8))


def test_a_link_covers_the_event_as_stored_and_its_place() -> None:
    (linked,) = stored("org", ChainHead(0, GENESIS), rows(1))
    assert linked.event.after == {"name": "b", "score": 1.0}
    moved = stored("org", ChainHead(1, linked.hash), rows(1))[0]
    assert moved.hash != linked.hash  # same content, another seq: another hash


class FakeSeal:
    """Counts passes; fails the first ``failures`` of them, or hangs when ``hang``; the
    passes after the failures seal as many events as ``found`` says in turn, then none."""

    def __init__(self, failures: int = 0, hang: bool = False, found: Sequence[int] = ()) -> None:
        self.calls = 0
        self.failures = failures
        self.hang = hang
        self.found = list(found)
        self._called = asyncio.Condition()

    async def __call__(self) -> int:
        async with self._called:
            self.calls += 1
            self._called.notify_all()
        if self.hang:
            await asyncio.sleep(60)
        if self.calls <= self.failures:
            raise RuntimeError("database unavailable")
        return self.found.pop(0) if self.found else 0

    async def called(self, times: int) -> None:
        """Return once the sealer has made ``times`` passes; fails the test after 2 s."""
        async with asyncio.timeout(2), self._called:
            await self._called.wait_for(lambda: self.calls >= times)


async def test_the_sealer_seals_soon_after_a_write_asks() -> None:
    seal = FakeSeal()
    sealer = AuditSealer.start(interval=60, settle=0, seal=seal)
    await asyncio.sleep(0.01)
    assert seal.calls == 0
    request_sealing()
    await seal.called(1)
    await sealer.stop()


async def test_the_sealer_also_seals_periodically_unasked() -> None:
    seal = FakeSeal()
    sealer = AuditSealer.start(interval=0.01, settle=0, seal=seal)
    await seal.called(3)
    await sealer.stop()


async def test_a_pass_that_found_events_is_followed_soon_and_an_idle_sealer_waits() -> None:
    """Events written by other processes never wake this sealer: while passes find some,
    it looks again ``busy_interval`` later; once one finds none, it waits to be asked."""
    seal = FakeSeal(found=[3, 2, 1])
    sealer = AuditSealer.start(interval=60, settle=0, busy_interval=0.01, seal=seal)
    request_sealing()
    await seal.called(4)
    await asyncio.sleep(0.2)
    assert seal.calls == 4
    await sealer.stop()


async def test_a_failing_pass_is_logged_and_the_sealer_keeps_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seal = FakeSeal(failures=2)
    with caplog.at_level(logging.ERROR, logger="tenants.audit.sealer"):
        sealer = AuditSealer.start(interval=0.01, settle=0, seal=seal)
        await seal.called(4)
        await sealer.stop()
    failures = [r for r in caplog.records if "sealing audit events failed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None


async def test_stopping_runs_one_last_pass() -> None:
    seal = FakeSeal()
    sealer = AuditSealer.start(interval=60, settle=0, seal=seal)
    await asyncio.sleep(0.01)
    await sealer.stop()
    assert seal.calls == 1


async def test_a_pass_that_does_not_finish_is_cancelled_at_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seal = FakeSeal(hang=True)
    sealer = AuditSealer.start(interval=60, settle=0, seal=seal)
    request_sealing()
    await seal.called(1)
    with caplog.at_level(logging.WARNING, logger="tenants.audit.sealer"):
        await asyncio.wait_for(sealer.stop(grace=0.05), 2)
    assert "did not finish" in caplog.text
