"""Several nodes on one database: two ``tenantry serve`` processes and two ``tenantry
worker`` processes, reached on their own ports with nothing in front. A session made on
one node works on the other and ends on both; the sign-in limit per address counts
attempts on every node; a rule changed on one node reaches the other's cached answers;
a departure is carried out by the two workers together, every item moved exactly once;
and the audit events every process wrote (sealed by both workers at once) form one chain
that ``tenantry audit verify`` accepts."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.database import DatabaseUrls
from app.settings import Settings
from tenants.audit.sealer import seal_all
from tests.conftest import OrgHandle, empty_tenant_tables, make_member, make_product
from tests.departures.support import make_items
from tests.support.processes import (
    free_port,
    start_tenantry,
    tenantry_command,
    tenantry_env,
    wait_for_workers_idle,
)
from tests.web.flows import WebClient, fresh_address, set_local_sign_in, set_password

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple 42"
LIMIT = 6


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Cluster:
    a: Node
    b: Node
    workers: list[Node]
    env: dict[str, str]
    folder: Path


@pytest.fixture(scope="module")
async def cluster(
    database_urls: DatabaseUrls,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    app: Any,
    owner_conn: asyncpg.Connection,
) -> AsyncIterator[Cluster]:
    # Jobs an earlier module's test left due would start the moment the workers do, and
    # the first test's cleaning would empty the tables under them.
    await empty_tenant_tables(owner_conn)
    folder = tmp_path_factory.mktemp("nodes")
    env = tenantry_env(
        database_urls, settings.secret_key, folder / "data", TENANTRY_LOGIN_RATE_LIMIT=str(LIMIT)
    )
    nodes: list[Node] = []
    try:
        servers = []
        for name in ("a", "b"):
            port = free_port()
            log = folder / f"serve-{name}.log"
            process = start_tenantry(["serve", "--no-migrate", "--port", str(port)], env, log)
            servers.append(Node(name, process, log, f"http://127.0.0.1:{port}"))
        workers = [
            Node(
                name,
                start_tenantry(
                    ["worker", "--concurrency", "2", "--name", name], env, folder / f"{name}.log"
                ),
                folder / f"{name}.log",
            )
            for name in ("w1", "w2")
        ]
        nodes = [*servers, *workers]
        async with httpx.AsyncClient(timeout=2) as http:
            for node in servers:
                deadline = time.monotonic() + 60
                while True:
                    assert node.process.poll() is None, node.tail()
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{node.url}/readyz")).status_code == 200:
                            break
                    assert time.monotonic() < deadline, node.tail()
                    await asyncio.sleep(0.1)
        yield Cluster(servers[0], servers[1], workers, env, folder)
    finally:
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            try:
                code = await asyncio.to_thread(node.process.wait, 20)
            except subprocess.TimeoutExpired:
                node.process.kill()
                code = -9
            # uvicorn re-raises SIGTERM after its graceful shutdown, so a server ends by it.
            assert code in (0, -signal.SIGTERM), f"{node.name} ended with {code}:\n{node.tail()}"
            if node.url:
                assert "Application shutdown complete" in node.tail(), node.tail()
            assert "Traceback" not in node.log.read_text(errors="replace"), node.tail()


@pytest.fixture(autouse=True)
async def workers_idle_afterwards(
    cluster: Cluster, owner_conn: asyncpg.Connection
) -> AsyncIterator[None]:
    yield
    await wait_for_workers_idle(owner_conn)


@contextlib.asynccontextmanager
async def browser(url: str, address: str) -> AsyncIterator[WebClient]:
    async with httpx.AsyncClient(
        base_url=url, headers={"X-Forwarded-For": address}, follow_redirects=False, timeout=30
    ) as http:
        yield WebClient(http, address)


async def test_a_session_made_on_one_node_works_on_the_other_and_ends_on_both(
    cluster: Cluster, org: OrgHandle
) -> None:
    await set_local_sign_in(org.id, True)
    admin = await make_member(org, roles=["admin"])
    await set_password(org.id, admin["id"], PASSWORD)
    address = fresh_address()
    async with browser(cluster.a.url, address) as on_a, browser(cluster.b.url, address) as on_b:
        signed = await on_a.password_sign_in(org.slug, admin["email"], PASSWORD)
        assert signed.headers.get("location") == "/console", signed.text
        on_b.http.cookies = on_a.http.cookies  # the same browser, balanced to node B
        assert (await on_b.get("/console")).status_code == 200
        assert (await on_b.sign_out()).status_code == 303
        on_a.http.cookies = on_b.http.cookies
        after = await on_a.get("/console")
        assert after.status_code == 303 and after.headers["location"].startswith("/login")


async def test_the_sign_in_limit_per_address_counts_attempts_on_every_node(
    cluster: Cluster, org: OrgHandle
) -> None:
    await set_local_sign_in(org.id, True)
    address = fresh_address()
    answers = []
    async with browser(cluster.a.url, address) as on_a, browser(cluster.b.url, address) as on_b:
        for n in range(LIMIT + 1):
            node = on_a if n % 2 == 0 else on_b
            response = await node.password_sign_in(
                org.slug, f"guess-{n}@{org.slug}.example", "wrong password"
            )
            answers.append(response.status_code)
    assert answers[:LIMIT] == [303] * LIMIT
    assert answers[LIMIT] == 429


async def test_a_rule_changed_on_one_node_reaches_the_others_cached_answers(
    cluster: Cluster, org: OrgHandle
) -> None:
    member = await make_member(org)
    ads = "improvement.use_data"
    async with httpx.AsyncClient(headers=org.headers, timeout=10) as http:
        path = f"/v1/members/{member['id']}/settings"
        before = (await http.get(cluster.b.url + path)).json()["settings"][ads]
        assert (await http.get(cluster.b.url + path)).json()["settings"][ads] == before
        changed = await http.put(
            cluster.a.url + "/v1/policy/rules",
            json={
                "target_kind": "unit",
                "target_id": str(org.root_unit_id),
                "setting": ads,
                "value": not before["value"],
                "enforced": True,
                "reason": "many nodes",
            },
        )
        assert changed.status_code == 200, changed.text
        deadline = time.monotonic() + 5
        while (await http.get(cluster.b.url + path)).json()["settings"][ads] == before:
            assert time.monotonic() < deadline, "node B kept its cached answer"
            await asyncio.sleep(0.05)


async def test_two_workers_carry_out_a_departure_together_moving_each_item_once(
    cluster: Cluster, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    boss = await make_member(org)
    leaver = await make_member(org, manager_id=boss["id"])
    products = [await make_product(org) for _ in range(3)]
    for product in products:
        await make_items(org, leaver["id"], product["id"], 4000)
    async with httpx.AsyncClient(headers=org.headers, timeout=30) as http:
        assert (
            await http.put(cluster.a.url + "/v1/departure-policy", json={"retention_days": 0})
        ).status_code == 200
        started = await http.post(
            cluster.b.url + "/v1/departures",
            json={"member_id": leaver["id"], "last_day": time.strftime("%Y-%m-%d", time.gmtime())},
        )
        assert started.status_code == 201, started.text
        departure = started.json()
        deadline = time.monotonic() + 120
        while True:
            await owner_conn.execute(
                "UPDATE jobs SET run_at = now() WHERE tenant_id = $1 AND status = 'queued' "
                "AND run_at > now()",
                org.id,
            )
            got = (await http.get(cluster.a.url + f"/v1/departures/{departure['id']}")).json()
            if got["status"] == "completed":
                break
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.3)
    counts = await owner_conn.fetchrow(
        "SELECT count(*) AS items, count(*) FILTER (WHERE transfer_count = 1) AS once, "
        "count(*) FILTER (WHERE member_id = $2) AS at_boss FROM content_items WHERE tenant_id = $1",
        org.id,
        uuid.UUID(boss["id"]),
    )
    assert dict(counts) == {"items": 12000, "once": 12000, "at_boss": 12000}


async def test_events_written_and_sealed_by_every_process_form_one_verified_chain(
    cluster: Cluster, org: OrgHandle, settings: Settings
) -> None:
    async with httpx.AsyncClient(headers=org.headers, timeout=30) as http:

        async def add(url: str, n: int) -> None:
            response = await http.post(
                url + "/v1/units",
                json={
                    "name": f"unit-{n}-{uuid.uuid4().hex[:4]}",
                    "parent_id": str(org.root_unit_id),
                },
            )
            assert response.status_code == 201, response.text

        await asyncio.gather(
            *(add(cluster.a.url if n % 2 else cluster.b.url, n) for n in range(40))
        )
    await asyncio.sleep(2)  # the workers' sealers chain them (either of two processes)
    await seal_all(wait=True)
    verify = await asyncio.to_thread(
        subprocess.run,
        [*tenantry_command(), "audit", "verify", "--org", org.slug],
        env=cluster.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = verify.stdout.decode() + verify.stderr.decode()
    assert verify.returncode == 0, output
