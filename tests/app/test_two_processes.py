"""Two real server processes on one database: a rule changed through one process reaches
the decision answers the other one caches (PostgreSQL LISTEN/NOTIFY) within a second; and
when the other one's listener connection is killed, it still stops serving the old answer
within seconds (its caches are cleared when the connection is lost and again when it is
back; compiled policies are keyed on versions read in each request's transaction).

Each server is ``tenantry serve --no-migrate --port P`` in its own process, with
DATABASE_URL / APP_DATABASE_URL pointing at this session's test database. Whether a
process answered from its cache is seen from outside with a probe: a member's choice
written as the superuser behind the servers' backs (no notification, no version bump)
shows in a freshly computed answer and not in a cached one.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.database import DatabaseUrls
from app.settings import Settings
from tests.conftest import OrgHandle, make_member
from tests.support.processes import free_port, start_tenantry, tenantry_env

ADS = "improvement.use_data"
PROBE = "cookies.analytics"  # default false; the probe choice sets it true
POLL = 0.05
LISTENERS = """
    SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND query LIKE 'LISTEN%tenantry_events%'
"""


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    #: PostgreSQL pid of the process's LISTEN connection.
    listener: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, limit: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-limit:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Pair:
    a: Server
    b: Server
    #: LISTEN backends that are neither A's nor B's (this session's in-process app).
    others: set[int]


def start_server(name: str, urls: DatabaseUrls, secret_key: str, folder: Path,
                 **env: str) -> Server:
    port = free_port()
    log = folder / f"server-{name}.log"
    process = start_tenantry(
        ["serve", "--no-migrate", "--port", str(port)],
        tenantry_env(urls, secret_key, folder / f"data-{name}", **env),
        log,
    )
    return Server(name, port, process, log)


async def listener_pids(conn: asyncpg.Connection) -> set[int]:
    return {row["pid"] for row in await conn.fetch(LISTENERS)}


async def wait_listening(server: Server, conn: asyncpg.Connection, known: set[int],
                         limit: float = 60.0) -> int:
    """Once ``server`` answers HTTP and its notification listener is connected: the pid of
    that listener's backend (the one LISTEN backend not in ``known``)."""
    deadline = time.monotonic() + limit
    healthy = False
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"server {server.name} exited:\n{server.tail()}")
            if not healthy:
                with contextlib.suppress(httpx.HTTPError):
                    healthy = (await client.get("/healthz")).status_code == 200
            if healthy:
                new = await listener_pids(conn) - known
                assert len(new) <= 1, f"more than one new listener: {new}"
                if new:
                    return new.pop()
            await asyncio.sleep(POLL)
    pytest.fail(f"server {server.name} not listening after {limit:.0f} s:\n{server.tail()}")


@pytest.fixture(scope="module")
async def pair(
    app: Any, database_urls: DatabaseUrls, settings: Settings, owner_conn: asyncpg.Connection,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Pair]:
    """Servers A and B. B starts first and A once B's listener is known: two listeners
    connecting at once could not be told apart (over a unix socket pg_stat_activity names
    no client)."""
    await asyncio.wait_for(app.state.listener.connected.wait(), 10)
    others = await listener_pids(owner_conn)
    folder = tmp_path_factory.mktemp("two-processes")
    started: list[Server] = []
    try:
        b = start_server("b", database_urls, settings.secret_key, folder)
        started.append(b)
        b.listener = await wait_listening(b, owner_conn, others)
        a = start_server("a", database_urls, settings.secret_key, folder)
        started.append(a)
        a.listener = await wait_listening(a, owner_conn, others | {b.listener})
        yield Pair(a, b, others)
    finally:
        for server in started:
            await asyncio.to_thread(server.stop)


async def settings_of(client: httpx.AsyncClient, org: OrgHandle, member: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member}/settings", headers=org.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["settings"])


async def cached_answer(client: httpx.AsyncClient, org: OrgHandle, member: str,
                        conn: asyncpg.Connection) -> dict[str, Any]:
    """GET twice, asserting the second answer comes from the process's cache: a choice
    written in between without telling anyone does not show in it."""
    first = await settings_of(client, org, member)
    await conn.execute(
        "INSERT INTO member_choices (id, tenant_id, created_at, updated_at, setting, value,"
        " member_id) VALUES (gen_random_uuid(), $1, now(), now(), $2, 'true'::jsonb, $3::uuid)",
        org.id, PROBE, member,
    )
    try:
        second = await settings_of(client, org, member)
    finally:
        await conn.execute(
            "DELETE FROM member_choices WHERE member_id = $1::uuid AND setting = $2", member, PROBE
        )
    assert second == first, "the second answer was not served from the process's cache"
    assert second[PROBE]["source"]["kind"] == "default"
    return second


async def set_rule(client: httpx.AsyncClient, org: OrgHandle, value: bool, *,
                   enforced: bool) -> dict[str, Any]:
    response = await client.put("/v1/policy/rules", headers=org.headers, json={
        "target_kind": "unit", "target_id": str(org.root_unit_id), "setting": ADS,
        "value": value, "enforced": enforced, "reason": "two processes"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def shows_within(client: httpx.AsyncClient, org: OrgHandle, member: str,
                       wanted: Callable[[dict[str, Any]], bool], limit: float) -> float | None:
    """Poll every 50 ms; the ``time.monotonic()`` of the first answer that is ``wanted``,
    None if none came within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if wanted(await settings_of(client, org, member)):
            return time.monotonic()
        await asyncio.sleep(POLL)
    return None


def rule_applies(rule: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    def check(settings: dict[str, Any]) -> bool:
        ads = settings[ADS]
        return bool(ads["source"]["rule_id"] == rule["id"] and ads["value"] == rule["value"]
                    and ads["locked"] == rule["enforced"])

    return check


async def test_a_rule_changed_through_one_process_shows_in_the_others_cached_answer_within_a_second(
    pair: Pair, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member = (await make_member(org))["id"]
    async with httpx.AsyncClient(base_url=pair.b.url, timeout=10) as on_b, \
            httpx.AsyncClient(base_url=pair.a.url, timeout=10) as on_a:
        before = await cached_answer(on_b, org, member, owner_conn)
        assert before[ADS]["value"] is False and before[ADS]["source"]["kind"] == "default"
        started = time.monotonic()
        rule = await set_rule(on_a, org, True, enforced=False)
        seen = await shows_within(on_b, org, member, rule_applies(rule), limit=5.0)
        assert seen is not None, f"B never showed the rule changed through A\n{pair.b.tail()}"
        assert seen - started < 1.0, f"B showed the change after {seen - started:.3f} s"
        assert (await settings_of(on_b, org, member))[PROBE]["source"]["kind"] == "default"


async def test_after_its_listener_is_killed_a_process_still_stops_serving_the_old_answer(
    pair: Pair, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    member = (await make_member(org))["id"]
    b = pair.b
    not_b = pair.others | {pair.a.listener}
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as on_b, \
            httpx.AsyncClient(base_url=pair.a.url, timeout=10) as on_a:
        first = await set_rule(on_a, org, True, enforced=False)
        assert await shows_within(on_b, org, member, rule_applies(first), limit=5.0)
        await cached_answer(on_b, org, member, owner_conn)

        assert await owner_conn.fetchval("SELECT pg_terminate_backend($1)", b.listener)
        deadline = time.monotonic() + 5
        while b.listener in await listener_pids(owner_conn):
            assert time.monotonic() < deadline, "the killed listener's backend did not go away"
            await asyncio.sleep(0.01)
        started = time.monotonic()
        locked = await set_rule(on_a, org, False, enforced=True)
        back_at_commit = bool(await listener_pids(owner_conn) - not_b)
        seen = await shows_within(on_b, org, member, rule_applies(locked), limit=3.0)
        assert seen is not None, (
            f"B still served the old answer 3 s after the change (its listener was "
            f"{'back' if back_at_commit else 'still away'} at commit)\n{b.tail()}"
        )
        assert seen - started < 3.0

        # The listener comes back (after a 0.5 s backoff); the new answer stays throughout.
        deadline = time.monotonic() + 10
        while not (back := await listener_pids(owner_conn) - not_b):
            assert time.monotonic() < deadline, f"B's listener did not reconnect\n{b.tail()}"
            assert rule_applies(locked)(await settings_of(on_b, org, member)), "stale again"
            await asyncio.sleep(POLL)
        b.listener = back.pop()
        for _ in range(3):
            assert rule_applies(locked)(await settings_of(on_b, org, member)), "stale again"

        # Reconnected, B hears about changes again.
        await cached_answer(on_b, org, member, owner_conn)
        started = time.monotonic()
        last = await set_rule(on_a, org, True, enforced=True)
        seen = await shows_within(on_b, org, member, rule_applies(last), limit=5.0)
        assert seen is not None and seen - started < 1.0, "B did not hear about the next change"
