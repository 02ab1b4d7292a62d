"""The service behind a real PgBouncer in transaction mode (Debian's 1.18, which keeps no
prepared statements of its own): ``tenantry serve`` and ``tenantry worker`` processes with
``DATABASE_POOLER=transaction`` and ``APP_DATABASE_URL`` through the pooler run API writes,
decisions and a whole departure, keep organisations apart on shared server connections,
and hear cache invalidations over their direct LISTEN connection.

Without the pooler setting asyncpg's statement cache fails behind this PgBouncer with
``prepared statement "__asyncpg_stmt_…" does not exist``; the first test shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from app.database import DatabaseUrls, connection_params
from app.settings import Settings
from tests.conftest import OrgHandle, empty_tenant_tables, make_member, make_product
from tests.departures.support import make_items
from tests.support.pgbouncer import Bouncer, running_pgbouncer
from tests.support.processes import (
    free_port,
    start_tenantry,
    tenantry_env,
    wait_for_workers_idle,
)

pytestmark = pytest.mark.slow


@dataclass
class Pooled:
    bouncer: Bouncer
    url: str
    urls: DatabaseUrls


@pytest.fixture(scope="module")
def bouncer(database_urls: DatabaseUrls) -> Any:
    params = connection_params(database_urls.app)
    with running_pgbouncer(database_urls.admin, [params["user"], "postgres"], pool_size=4) as b:
        yield b


@pytest.fixture(scope="module")
async def pooled(
    bouncer: Bouncer,
    database_urls: DatabaseUrls,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    app: Any,
    owner_conn: asyncpg.Connection,
) -> AsyncIterator[Pooled]:
    """A serve process and a worker process, both through the pooler."""
    # Jobs an earlier module's test left due would start the moment the worker does, and
    # the first test's cleaning would empty the tables under them.
    await empty_tenant_tables(owner_conn)
    params = connection_params(database_urls.app)
    through = bouncer.url(params["user"], params["database"])
    urls = DatabaseUrls(
        admin=database_urls.admin, app=through, direct=database_urls.app, pooled=True
    )
    folder = tmp_path_factory.mktemp("pooled")
    env = tenantry_env(
        urls,
        settings.secret_key,
        folder / "data",
        DATABASE_POOLER="transaction",
        DIRECT_APP_DATABASE_URL=database_urls.app,
    )
    port = free_port()
    server = start_tenantry(
        ["serve", "--no-migrate", "--port", str(port)], env, folder / "serve.log"
    )
    worker = start_tenantry(["worker", "--concurrency", "2"], env, folder / "worker.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if server.poll() is not None or worker.poll() is not None:
                    pytest.fail(
                        (folder / "serve.log").read_text() + (folder / "worker.log").read_text()
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, (folder / "serve.log").read_text()[-3000:]
                await asyncio.sleep(0.1)
        yield Pooled(bouncer, url, urls)
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            try:
                await asyncio.to_thread(process.wait, 15)
            except Exception:
                process.kill()
        logs = (folder / "serve.log").read_text(errors="replace") + (
            folder / "worker.log"
        ).read_text(errors="replace")
        assert "does not exist" not in logs, logs[-3000:]
        assert "Traceback" not in logs, logs[-3000:]


@pytest.fixture(autouse=True)
async def worker_idle_afterwards(
    request: pytest.FixtureRequest, owner_conn: asyncpg.Connection
) -> AsyncIterator[None]:
    yield
    if "pooled" in request.fixturenames:
        await wait_for_workers_idle(owner_conn)


def through(pooled: Pooled, org: OrgHandle) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=pooled.url, headers=org.headers, timeout=30)


async def prepared_twice_while_another_client_holds_the_first_server(
    params: dict[str, Any], url: str
) -> list[int]:
    """The same query twice on one client, while another client holds, in a transaction,
    the server connection the first query ran on: the second runs on another server."""
    client = await asyncpg.connect(**params)
    other = await asyncpg.connect(**connection_params(url))
    try:
        first = await client.fetchval("SELECT $1::int", 1)
        async with other.transaction():
            await other.execute("SELECT 1")
            second = await client.fetchval("SELECT $1::int", 2)
        return [first, second]
    finally:
        await client.close()
        await other.close()


async def test_asyncpgs_statement_cache_fails_behind_this_pooler_and_is_off_when_pooled(
    bouncer: Bouncer, database_urls: DatabaseUrls
) -> None:
    params = connection_params(database_urls.app)
    url = bouncer.url(params["user"], params["database"])
    with pytest.raises(asyncpg.PostgresError, match="does not exist"):
        await prepared_twice_while_another_client_holds_the_first_server(
            connection_params(url), url
        )
    urls = DatabaseUrls(admin=database_urls.admin, app=url, direct=database_urls.app, pooled=True)
    assert await prepared_twice_while_another_client_holds_the_first_server(
        urls.runtime_params(), url
    ) == [1, 2]


async def test_writes_and_decisions_through_the_pooler_keep_each_organisation_to_itself(
    pooled: Pooled, two_orgs: tuple[OrgHandle, OrgHandle]
) -> None:
    alpha, bravo = two_orgs
    async with through(pooled, alpha) as a, through(pooled, bravo) as b:
        made: dict[str, list[str]] = {"alpha": [], "bravo": []}

        async def add(client: httpx.AsyncClient, org: OrgHandle, name: str, n: int) -> None:
            response = await client.post(
                "/v1/members",
                json={
                    "email": f"p{n}-{uuid.uuid4().hex[:6]}@{org.slug}.example",
                    "name": f"Pooled {n}",
                    "unit_id": str(org.root_unit_id),
                },
            )
            assert response.status_code == 201, response.text
            made[name].append(response.json()["id"])

        # More concurrent transactions than the pooler has server connections (4): they
        # queue and share them, each with its own organisation set per transaction.
        await asyncio.gather(
            *(add(a, alpha, "alpha", n) for n in range(12)),
            *(add(b, bravo, "bravo", n) for n in range(12)),
        )
        seen_a = {
            m["id"] for m in (await a.get("/v1/members", params={"limit": 100})).json()["items"]
        }
        seen_b = {
            m["id"] for m in (await b.get("/v1/members", params={"limit": 100})).json()["items"]
        }
        assert set(made["alpha"]) <= seen_a and not seen_a & set(made["bravo"])
        assert set(made["bravo"]) <= seen_b and not seen_b & set(made["alpha"])
        assert (await a.get(f"/v1/members/{made['bravo'][0]}")).status_code == 404

        member = made["alpha"][0]
        first = await a.get(f"/v1/members/{member}/settings")
        assert first.status_code == 200, first.text
        again = await a.get(
            f"/v1/members/{member}/settings", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304


async def test_a_rule_changed_elsewhere_reaches_the_pooled_process_over_its_direct_listen(
    pooled: Pooled, org: OrgHandle
) -> None:
    member = await make_member(org)
    ads = "improvement.use_data"
    async with through(pooled, org) as p:
        before = (await p.get(f"/v1/members/{member['id']}/settings")).json()["settings"][ads]
        # Changed through the in-process app (another process as far as the pooled one knows).
        response = await org.put(
            "/v1/policy/rules",
            json={
                "target_kind": "unit",
                "target_id": str(org.root_unit_id),
                "setting": ads,
                "value": not before["value"],
                "enforced": True,
                "reason": "pooler",
            },
        )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 5
        while True:
            now = (await p.get(f"/v1/members/{member['id']}/settings")).json()["settings"][ads]
            if now["value"] != before["value"]:
                break
            assert time.monotonic() < deadline, "the pooled process kept serving the old answer"
            await asyncio.sleep(0.05)
        assert now["locked"] is True


async def test_a_departure_runs_to_its_end_on_a_worker_behind_the_pooler(
    pooled: Pooled, org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    boss = await make_member(org)
    leaver = await make_member(org, manager_id=boss["id"])
    drive = await make_product(org)
    await make_items(org, leaver["id"], drive["id"], 120)
    async with through(pooled, org) as p:
        policy = await p.put("/v1/departure-policy", json={"retention_days": 0})
        assert policy.status_code == 200, policy.text
        started = await p.post(
            "/v1/departures",
            json={"member_id": leaver["id"], "last_day": time.strftime("%Y-%m-%d", time.gmtime())},
        )
        assert started.status_code == 201, started.text
        departure = started.json()
        deadline = time.monotonic() + 90
        while True:
            # Time passes faster here: whatever the departure scheduled is due now.
            await owner_conn.execute(
                "UPDATE jobs SET run_at = now() WHERE tenant_id = $1 AND status = 'queued' "
                "AND run_at > now()",
                org.id,
            )
            got = (await p.get(f"/v1/departures/{departure['id']}")).json()
            if got["status"] == "completed":
                break
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.3)
    moved = await owner_conn.fetchval(
        "SELECT count(*) FROM content_items WHERE tenant_id = $1 AND member_id = $2",
        org.id,
        uuid.UUID(boss["id"]),
    )
    assert moved == 120
    assert [s["status"] for s in got["steps"]] == ["done"] * len(got["steps"])


def test_the_pooler_setting_needs_both_urls() -> None:
    from app.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"DATABASE_POOLER": "transaction", "TENANTRY_SECRET_KEY": "k" * 40})
    assert "APP_DATABASE_URL" in str(raised.value)
    assert "DIRECT_APP_DATABASE_URL" in str(raised.value)
    ok = Settings.from_env(
        {
            "DATABASE_POOLER": "transaction",
            "TENANTRY_SECRET_KEY": "k" * 40,
            "APP_DATABASE_URL": "postgresql://app@pgbouncer:6432/tenantry",
            "DIRECT_APP_DATABASE_URL": "postgresql://app@db:5432/tenantry",
        }
    )
    assert ok.database_pooler == "transaction"
