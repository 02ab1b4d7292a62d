"""Every sweep the worker runs beside its jobs (expired sessions, time partitions, the
policy schedule) outlives a database restart: a round that fails while PostgreSQL is not
yet accepting connections (57P03) is tried again within seconds and the loop goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tenants.outages import Backoff, run_periodically
from tenants.policy import schedule
from tenants.sessions import service as sessions


async def test_a_failed_round_is_retried_soon_and_the_loop_goes_on() -> None:
    stop = asyncio.Event()
    calls: list[str] = []

    async def work() -> None:
        calls.append("round")
        if len(calls) == 1:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        if len(calls) == 2:
            raise ValueError("a bug, logged with its traceback")
        stop.set()

    quick = Backoff(base=0.01, cap=0.01)
    await asyncio.wait_for(run_periodically("testing", work, stop, every=3600, backoff=quick), 5)
    assert calls == ["round", "round", "round"]
    assert quick.failures == 0  # reset by the round that worked


@pytest.mark.parametrize(
    ("module", "name", "loop"),
    [
        (
            sessions,
            "delete_expired_sessions",
            lambda stop: sessions.sweep_expired_sessions(stop, every=3600),
        ),
        (
            schedule,
            "sweep_policy_schedule",
            lambda stop: schedule.keep_policy_schedule(stop, every=3600),
        ),
    ],
)
async def test_the_worker_sweeps_outlive_57p03(
    monkeypatch: pytest.MonkeyPatch,
    module: object,
    name: str,
    loop: Callable[[asyncio.Event], Awaitable[None]],
) -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def round_(**_: object) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        stop.set()
        return 0

    monkeypatch.setattr(module, name, round_)
    monkeypatch.setattr("tenants.outages.Backoff.next_delay", lambda self: 0.01)
    await asyncio.wait_for(loop(stop), 5)
    assert len(calls) == 2
