"""Prometheus metrics: what an operator scrapes from a serve process and from
``tenantry worker --metrics-port``, read back with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.database import DatabaseUrls
from app.metrics import Metrics, metrics_app
from app.settings import Settings
from tenants import db
from tenants.jobs import service as jobs
from tenants.jobs.worker import Worker
from tests.app.test_webhooks import (
    LATER,
    ScriptedReceiver,
    change_policy,
    hooked_product,
    receiver,  # noqa: F401 -- a fixture
)
from tests.conftest import OrgHandle, make_member
from tests.support.processes import free_port, start_tenantry, tenantry_env

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


METRICS: list[Metrics] = []


@pytest.fixture
async def local(app: Any, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on this machine's loopback address, as a local Prometheus would be."""
    METRICS[:] = [app.state.metrics]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield c


async def scrape(local: httpx.AsyncClient) -> Samples:
    # Read the database figures now, not up to 5 s later.
    METRICS[0]._figures_read_at = 0.0
    response = await local.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_requests_are_counted_and_timed_by_route_template_never_by_raw_path(
    org: OrgHandle, local: httpx.AsyncClient
) -> None:
    member = await make_member(org)
    before = await scrape(local)
    for _ in range(3):
        assert (await org.get(f"/v1/members/{member['id']}")).status_code == 200
    assert (await org.get(f"/v1/members/{uuid.uuid4()}")).status_code == 404
    assert (await org.get("/no/such/page/12345")).status_code == 404
    after = await scrape(local)

    template = "/v1/members/{id}"

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tenantry_http_requests_total", route=template, method="GET", status="200") == 3
    assert grew("tenantry_http_requests_total", route=template, method="GET", status="404") == 1
    assert grew("tenantry_http_requests_total", route="unmatched", method="GET", status="404") >= 1
    assert grew("tenantry_http_request_duration_seconds_count", route=template, method="GET") == 4
    assert not [k for k in after if member["id"] in str(k) or "12345" in str(k)]
    assert all(k[0].startswith("tenantry_") for k in after if not k[0].startswith("python_"))


async def test_jobs_per_kind_and_status_and_the_oldest_due_job_come_from_the_database(
    org: OrgHandle, local: httpx.AsyncClient, owner_conn: asyncpg.Connection
) -> None:
    async with db.tenant_transaction(org.id):
        for n in range(3):
            await jobs.enqueue("metrics.test", {}, key=f"queued-{n}")
        await jobs.enqueue("metrics.test", {}, key="dead")
    await owner_conn.execute(
        "UPDATE jobs SET status = 'dead' WHERE tenant_id = $1 AND key = 'dead'", org.id
    )
    await owner_conn.execute(
        "UPDATE jobs SET run_at = now() - interval '90 seconds' "
        "WHERE tenant_id = $1 AND key = 'queued-0'",
        org.id,
    )
    samples = await scrape(local)
    assert value(samples, "tenantry_jobs", kind="metrics.test", status="queued") == 3
    assert value(samples, "tenantry_jobs", kind="metrics.test", status="dead") == 1
    assert 90 <= value(samples, "tenantry_jobs_oldest_due_seconds") < 200
    assert value(samples, "tenantry_database_up") == 1
    assert value(samples, "tenantry_db_pool_max_connections") >= 1
    assert value(samples, "tenantry_db_pool_connections", state="in_use") >= 0


async def test_audit_events_waiting_for_the_sealer_show_as_pending_with_their_age(
    org: OrgHandle, local: httpx.AsyncClient, owner_conn: asyncpg.Connection
) -> None:
    # The app's sealer seals within a second; hold the organisation's head so it cannot.
    async with owner_conn.transaction():
        await owner_conn.execute(
            "SELECT 1 FROM audit_heads WHERE tenant_id = $1 FOR UPDATE", org.id
        )
        await make_member(org)
        await asyncio.sleep(1.2)
        samples = await scrape(local)
    assert value(samples, "tenantry_audit_pending_events") >= 1
    assert value(samples, "tenantry_audit_sealing_lag_seconds") >= 1


async def test_decision_answers_count_as_cache_misses_then_hits(
    org: OrgHandle, local: httpx.AsyncClient
) -> None:
    member = await make_member(org)
    before = await scrape(local)
    for _ in range(3):
        response = await org.get(f"/v1/members/{member['id']}/settings")
        assert response.status_code == 200, response.text
    after = await scrape(local)
    assert (
        value(after, "tenantry_decision_cache_total", result="miss")
        - value(before, "tenantry_decision_cache_total", result="miss")
        == 1
    )
    assert (
        value(after, "tenantry_decision_cache_total", result="hit")
        - value(before, "tenantry_decision_cache_total", result="hit")
        == 2
    )


async def test_webhook_deliveries_are_counted_per_product_and_outcome(
    org: OrgHandle,
    local: httpx.AsyncClient,
    receiver: ScriptedReceiver,  # noqa: F811
) -> None:
    product, _ = await hooked_product(org, receiver.url)
    receiver.answer(503, 200)
    before = await scrape(local)
    await change_policy(org)
    await Worker(concurrency=1).run_until_idle(ahead=LATER)
    after = await scrape(local)
    name = "tenantry_webhook_deliveries_total"
    for outcome in ("failed", "delivered"):
        grown = value(after, name, product=product["id"], outcome=outcome) - value(
            before, name, product=product["id"], outcome=outcome
        )
        assert grown == 1, outcome


async def test_metrics_are_refused_to_other_addresses_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")  # the test client's address is 203.0.113.7
    assert response.status_code == 403
    assert "TENANTRY_METRICS_TOKEN" in response.text


async def test_with_a_token_metrics_need_it_from_any_address() -> None:
    token = "m" * 32
    app = metrics_app(Metrics(), token=token)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://w") as c:
        assert (await c.get("/metrics")).status_code == 401
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401
        right = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200
        assert "tenantry_database_up" in right.text


def test_a_short_metrics_token_is_refused_at_start() -> None:
    from app.settings import SettingsError

    with pytest.raises(SettingsError, match="TENANTRY_METRICS_TOKEN"):
        Settings.from_env({"TENANTRY_METRICS_TOKEN": "short", "TENANTRY_SECRET_KEY": "k" * 40})


async def test_a_worker_process_serves_its_metrics_on_its_own_port_and_stops_on_sigterm(
    database_urls: DatabaseUrls, settings: Settings, tmp_path: Path, app: Any
) -> None:
    port = free_port()
    env = tenantry_env(database_urls, settings.secret_key, tmp_path / "data")
    log = tmp_path / "worker.log"
    process = start_tenantry(
        ["worker", "--metrics-port", str(port), "--concurrency", "1"], env, log
    )
    try:
        deadline = time.monotonic() + 60
        text = ""
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"http://127.0.0.1:{port}/metrics")
                    if response.status_code == 200 and "tenantry_jobs" in response.text:
                        text = response.text
                        break
                await asyncio.sleep(0.2)
        assert text, log.read_text(errors="replace")[-3000:]
        samples = parse(text)
        assert value(samples, "tenantry_database_up") == 1
        assert value(samples, "tenantry_db_pool_max_connections") >= 2
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
        assert code == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait, 10)


async def test_sign_ins_are_counted_by_method_and_outcome(
    org: OrgHandle, local: httpx.AsyncClient, app: Any
) -> None:
    from tests.web.flows import asgi_client, set_local_sign_in

    await set_local_sign_in(org.id, True)
    before = await scrape(local)
    async with asgi_client(app) as browser:
        response = await browser.password_sign_in(
            org.slug, f"nobody@{org.slug}.example", "not the password"
        )
        assert response.status_code == 303
    after = await scrape(local)
    name = "tenantry_sign_ins_total"
    grown = value(after, name, method="password", outcome="refused") - value(
        before, name, method="password", outcome="refused"
    )
    assert grown == 1


async def test_a_request_answered_503_in_an_outage_is_counted_as_503_not_as_a_bug(
    org: OrgHandle, local: httpx.AsyncClient, owner_conn: asyncpg.Connection
) -> None:
    """The metrics saw the outage's exception before it became the 503 the client got,
    and counted it as a 500: the error-rate alert paged for an application bug."""
    from tests.app.test_database_outage_requests import KILL_APP_SESSIONS

    member = await make_member(org)
    before = await scrape(local)
    statuses = []
    for round_ in range(12):
        assert (await org.get(f"/v1/members/{member['id']}")).status_code == 200
        await owner_conn.fetchval(KILL_APP_SESSIONS)
        changed = await org.patch(f"/v1/members/{member['id']}", json={"name": f"Ada {round_}"})
        statuses.append(changed.status_code)
    after = await scrape(local)
    assert 503 in statuses
    route = "/v1/members/{id}"

    def grew(status: str) -> float:
        labels = {"route": route, "method": "PATCH", "status": status}
        return value(after, "tenantry_http_requests_total", **labels) - value(
            before, "tenantry_http_requests_total", **labels
        )

    assert grew("503") == statuses.count(503)
    assert grew("500") == 0


async def test_figures_never_read_are_absent_and_a_slow_read_does_not_hold_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process started in an outage showed 0 jobs waiting and 0 events to seal, which
    cleared the backlog alerts; and a scrape waited for a pool connection as long as the
    requests did (17 s with a lock held), so Prometheus gave up on it."""
    from app import metrics as metrics_module

    class SlowConnection:
        async def execute_query(self, sql: str) -> tuple[int, list[Any]]:
            await asyncio.sleep(30)
            raise AssertionError("not reached")

    monkeypatch.setattr(metrics_module, "FIGURES_TIMEOUT", 0.2)
    monkeypatch.setattr(metrics_module.connections, "get", lambda name: SlowConnection())
    metrics = Metrics()
    started = time.monotonic()
    await metrics.refresh_database_figures()
    assert time.monotonic() - started < 2
    samples = parse(metrics.render().decode())
    assert value(samples, "tenantry_database_up") == 0
    names = {name for name, _ in samples}
    assert not names & {
        "tenantry_jobs_oldest_due_seconds",
        "tenantry_audit_pending_events",
        "tenantry_audit_sealing_lag_seconds",
    }


async def test_no_created_series_double_the_count(local: httpx.AsyncClient, org: OrgHandle) -> None:
    assert (await org.get("/v1/members")).status_code == 200
    samples = await scrape(local)
    assert not [name for name, _ in samples if name.endswith("_created")]


async def test_scim_requests_are_counted_by_their_own_templates(
    local: httpx.AsyncClient, org: OrgHandle
) -> None:
    """All of SCIM was one label, the mount (``/scim/v2``): users, groups and discovery
    could not be told apart."""
    before = await scrape(local)
    await org.client.get("/scim/v2/ServiceProviderConfig")
    await org.client.get(f"/scim/v2/Users/{uuid.uuid4()}")
    after = await scrape(local)
    routes = {
        dict(labels).get("route")
        for (name, labels), count in after.items()
        if name == "tenantry_http_requests_total" and count > before.get((name, labels), 0)
    }
    assert {"/scim/v2/ServiceProviderConfig", "/scim/v2/Users/{id}"} <= routes, routes
