"""PostgreSQL restarts under running workers: a real ``tenantry serve`` (with its embedded
worker) and a real ``tenantry worker``, on an embedded server of this test's own, whose
postmaster is SIGKILLed and started again, while idle and in the middle of a transfer, and
then held in the "not yet accepting connections" state (57P03: started as a standby with
hot_standby off) until promoted. No worker is restarted; every departure completes; every
item moves exactly once."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app import database
from app.database import DatabaseUrls, process_identity
from app.runtime import orm
from tests.conftest import OrgHandle, make_member, make_org, make_product
from tests.departures.support import INSERT_ITEMS_SQL
from tests.support.webhook_receiver import Receiver, running_receiver

pytestmark = pytest.mark.slow

SECRET = "restart-test-" + "s" * 40


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class OwnServer:
    """The test's own embedded PostgreSQL, which it may kill and start again."""

    pgdata: Path
    url: str
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def system_user(self) -> str | None:
        return database.EMBEDDED_SYSTEM_USER if os.geteuid() == 0 else None

    def postmaster(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])

    def kill(self) -> None:
        """SIGKILL the postmaster; return once its processes are gone."""
        pid = self.postmaster()
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for process in self.started:  # a server this test started is its child: reap it
            if process.pid == pid:
                process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(process_identity(p) for p in [pid, *children]):
            assert time.monotonic() < deadline, "the killed server's processes stay"
            time.sleep(0.05)
        # Its lock file names it; a dead postmaster not yet reaped (a zombie, if nothing
        # reaps orphans here) still answers kill(pid, 0), so the new one would refuse.
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            (self.pgdata / "postmaster.pid").unlink()

    def start(self, *, standby: bool = False) -> None:
        """Start the server again with the exact arguments it was first started with
        (postmaster.opts); as a standby that refuses connections (57P03) when asked."""
        argv = shlex.split((self.pgdata / "postmaster.opts").read_text().strip())
        if standby:
            (self.pgdata / "standby.signal").touch()
            argv += ["-c", "hot_standby=off"]
        with (self.pgdata.parent / "restarts.log").open("ab") as log:
            self.started.append(subprocess.Popen(
                argv, user=self.system_user, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True))

    def promote(self) -> None:
        pg_ctl = Path(shlex.split((self.pgdata / "postmaster.opts").read_text())[0]).with_name(
            "pg_ctl")
        subprocess.run([str(pg_ctl), "-D", str(self.pgdata), "promote"],
                       check=True, capture_output=True, user=self.system_user, timeout=60)


async def connect_state(params: dict[str, Any]) -> str:
    """'ok', 'cannot_connect_now' (57P03) or 'down', for one fresh connection."""
    try:
        conn = await asyncpg.connect(**params, timeout=2)
    except asyncpg.CannotConnectNowError:
        return "cannot_connect_now"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return "down"
    await conn.close()
    return "ok"


async def until(condition: Any, what: str, within: float = 90.0, every: float = 0.1) -> float:
    """Wait for ``condition()`` to be true; returns the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        if await condition():
            return time.monotonic() - began
        await asyncio.sleep(every)
    pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
    raise AssertionError  # unreachable: pytest.fail raises


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    folder = Path(tempfile.mkdtemp(prefix="tenantry-restart-test-"))
    try:
        with database.embedded_server(folder, delete_on_exit=True) as url:
            server = OwnServer(folder / "postgres", url)
            yield server
        for process in server.started:
            process.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tenantry(*args: str) -> list[str]:
    found = shutil.which("tenantry")
    return [*([found] if found else [sys.executable, "-m", "app.cli"]), *args]


class Processes:
    def __init__(self, urls: DatabaseUrls, folder: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, "DATABASE_URL": urls.admin, "APP_DATABASE_URL": urls.app,
                    "TENANTRY_SECRET_KEY": SECRET, "TENANTRY_DATA_DIR": str(folder),
                    "TENANTRY_PORT": str(self.port), "LOG_FORMAT": "console",
                    "TENANTRY_EMBEDDED_WORKER": "true", "DATABASE_POOL_SIZE": "4"}
        self.log = folder / "processes.log"
        with self.log.open("ab") as out:
            self.serve = subprocess.Popen(tenantry("serve"), env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.worker = subprocess.Popen(
                tenantry("worker", "--name", "restart-worker", "--lease", "5",
                         "--heartbeat", "0.5"),
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"

    def alive(self) -> None:
        for process in (self.serve, self.worker):
            assert process.poll() is None, self.log.read_text()[-4000:]

    async def ready(self) -> int:
        async with httpx.AsyncClient() as client:
            try:
                return (await client.get(f"{self.base}/readyz", timeout=3)).status_code
            except httpx.HTTPError:
                return 0

    def health(self, *extra: str) -> int:
        return subprocess.run(tenantry("worker", "--health", *extra), env=self.env,
                              capture_output=True, timeout=120).returncode

    def stop(self) -> None:
        for process in (self.serve, self.worker):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in (self.serve, self.worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


async def heartbeats(conn: asyncpg.Connection) -> dict[str, datetime]:
    rows = await conn.fetch("SELECT name, heartbeat_at FROM workers")
    return {r["name"]: r["heartbeat_at"] for r in rows}


async def test_workers_outlive_postmaster_kills_and_a_held_recovery_window(
    own_server: OwnServer, receiver: Receiver, tmp_path: Path,
) -> None:
    admin_url = database.with_database(own_server.url, "tenantry")
    urls = database.urls_for(admin_url, app_role="tenantry_app", app_database_url=None)
    migrated = await asyncio.to_thread(
        subprocess.run, tenantry("migrate"), env={**os.environ, "DATABASE_URL": admin_url},
        capture_output=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr.decode()[-3000:]
    owner_params = database.connection_params(admin_url)
    procs = Processes(urls, tmp_path)
    client = httpx.AsyncClient(base_url=procs.base, timeout=30)
    owner: asyncpg.Connection | None = None
    figures: dict[str, float] = {}
    try:
        await until(lambda: _is(procs.ready(), 200), "serve to be ready", within=120)
        async with orm(urls, pool_size=2):
            org = await make_org(client)  # the organisation and its token, in this database
        org = OrgHandle(org.id, org.slug, org.token, org.root_unit_id, client)
        boss = await make_member(org, name="Successor")
        product = await make_product(org)
        hook = await org.put(f"/v1/products/{product['id']}/webhook", json={"url": receiver.url})
        receiver.secret = hook.json()["secret"]
        await org.put("/v1/departure-policy", json={"retention_days": 0})
        owner = await asyncpg.connect(**owner_params)

        async def reconnect() -> asyncpg.Connection:
            nonlocal owner
            if owner is None or owner.is_closed():
                owner = await asyncpg.connect(**owner_params)
            return owner

        async def departure(items: int) -> tuple[str, str]:
            leaver = await make_member(org, name="Leaver", manager_id=boss["id"])
            conn = await reconnect()
            await conn.execute(INSERT_ITEMS_SQL, org.id, uuid.UUID(leaver["id"]),
                               uuid.UUID(product["id"]), f"i-{leaver['id'][:8]}", "organisation",
                               False, items)
            response = await org.post("/v1/departures", {
                "member_id": leaver["id"], "last_day": datetime.now(UTC).date().isoformat()})
            assert response.status_code == 201, response.text
            return str(response.json()["id"]), str(leaver["id"])

        async def completed(departure_id: str) -> bool:
            conn = await reconnect()
            # The end of the last day and retention come at once (time passes).
            await conn.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued' "
                               "AND run_at > now()")
            status = await conn.fetchval("SELECT status FROM departures WHERE id = $1",
                                         uuid.UUID(departure_id))
            return bool(status == "completed")

        async def both_beat_since(moment: datetime) -> bool:
            try:
                beats = await heartbeats(await reconnect())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False
            fresh = [name for name, at in beats.items() if at > moment]
            return len(fresh) >= 2

        async def restarted(standby: bool = False) -> datetime:
            nonlocal owner
            own_server.kill()
            owner = None
            await asyncio.sleep(1.0)  # the workers find the database gone
            procs.alive()
            own_server.start(standby=standby)
            want = "cannot_connect_now" if standby else "ok"
            try:
                await until(lambda: _is(connect_state(owner_params), want), f"the server ({want})")
            except pytest.fail.Exception:
                log = own_server.pgdata.parent / "restarts.log"
                print(f"server exit code {own_server.started[-1].poll()}; its log:\n"
                      + log.read_text()[-3000:])
                raise
            return datetime.now(UTC)

        await until(lambda: both_beat_since(datetime.fromtimestamp(0, UTC)), "two heartbeats")

        # 1. Idle workers: the postmaster dies and comes back; the next departure completes.
        back = await restarted()
        figures["idle_heartbeats"] = await until(lambda: both_beat_since(back), "heartbeats")
        first, _ = await departure(2_000)
        figures["idle_departure"] = await until(lambda: completed(first), "departure 1")

        # 2. Busy workers: the postmaster dies in the middle of a transfer.
        busy, _ = await departure(40_000)

        async def transferring() -> bool:
            conn = await reconnect()
            await conn.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued' "
                               "AND run_at > now()")
            done = await conn.fetchval(
                "SELECT done FROM departure_steps WHERE departure_id = $1 AND name = 'transfer'",
                uuid.UUID(busy))
            return bool(done)

        await until(transferring, "the transfer to start")
        back = await restarted()
        figures["busy_departure"] = await until(lambda: completed(busy), "departure 2", 180)
        moved = await (await reconnect()).fetchrow(
            "SELECT count(*) AS n, min(transfer_count) AS lo, max(transfer_count) AS hi "
            "FROM content_items WHERE departure_id = $1", uuid.UUID(busy))
        assert (moved["n"], moved["lo"], moved["hi"]) == (40_000, 1, 1)

        # 3. The recovery window held open (57P03) until promotion.
        await restarted(standby=True)
        procs.alive()
        assert await procs.ready() == 503  # the database refuses: serve is not ready
        assert await asyncio.to_thread(procs.health, "--within", "30") == 1  # nor is the worker, from outside
        await asyncio.sleep(3)
        procs.alive()
        own_server.promote()
        promoted = datetime.now(UTC)
        await until(lambda: _is(connect_state(owner_params), "ok"), "promotion")
        figures["promoted_heartbeats"] = await until(lambda: both_beat_since(promoted),
                                                     "heartbeats after promotion")
        figures["promoted_ready"] = await until(lambda: _is(procs.ready(), 200), "readiness")
        third, _ = await departure(2_000)
        await until(lambda: completed(third), "departure 3")
        procs.alive()

        # The worker answers healthy; frozen, it does not (its heartbeat stops).
        assert await asyncio.to_thread(procs.health, "--name", "restart-worker", "--within", "5") == 0
        procs.worker.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(4)
            assert await asyncio.to_thread(procs.health, "--name", "restart-worker", "--within", "2") == 1
        finally:
            procs.worker.send_signal(signal.SIGCONT)
        await asyncio.sleep(1)
        assert await asyncio.to_thread(procs.health, "--name", "restart-worker", "--within", "5") == 0

        # The products heard of everything; no job is dead; no worker was restarted.
        await until(lambda: _undelivered_zero(reconnect), "every delivery", 120)
        assert not await (await reconnect()).fetchval(
            "SELECT count(*) FROM jobs WHERE status = 'dead'")
        procs.alive()
        print("recovery figures (s):",
              ", ".join(f"{k} = {v:.1f}" for k, v in figures.items()))
    finally:
        await client.aclose()
        procs.stop()
        if owner is not None and not owner.is_closed():
            await owner.close()
    log = procs.log.read_text()
    assert "cannot reach the database" in log or "database outage" in log


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _undelivered_zero(reconnect: Any) -> bool:
    conn = await reconnect()
    await conn.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued' AND run_at > now()")
    return not await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'")
