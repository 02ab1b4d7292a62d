"""Bounded growth: the access log, the sign-in log and webhook deliveries are partitioned by
month, made ahead by the worker; retention removes each organisation's expired rows, and a
month that no organisation keeps any more is dropped, audited in every organisation that
lost rows with it. Upgrading a database with rows keeps them."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app import database
from app.database import DatabaseUrls
from tenants import db
from tenants.actors import system_actor
from tenants.audit.sealer import seal_all
from tenants.privacy import partitions, retention
from tests.conftest import OrgHandle

ACCESS_ROW = """
INSERT INTO access_log (tenant_id, checked_at, admin_id, member_id, product_id, category,
                        allowed, checked_by)
SELECT $1, $2, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'files', true, 'test'
  FROM generate_series(1, $3)
"""
SIGN_IN_ROW = """
INSERT INTO sign_ins (id, tenant_id, created_at, updated_at, at, method, outcome)
SELECT gen_random_uuid(), $1, now(), now(), $2, 'password', 'succeeded'
  FROM generate_series(1, $3)
"""
JOB_ROW = """
INSERT INTO jobs (id, tenant_id, kind, payload, key, status, run_at, attempts, max_attempts,
                  claims, checkpoint, created_at, updated_at, finished_at)
VALUES (gen_random_uuid(), $1, 'test.noop', '{}', $2, $3::text, $4, 0, 8, 1, '{}', $4, $4,
        CASE WHEN $3::text = 'done' THEN $4::timestamptz END)
"""


async def where(conn: asyncpg.Connection, table: str, org: uuid.UUID) -> list[str]:
    rows = await conn.fetch(
        f"SELECT tableoid::regclass::text AS p FROM {table} WHERE tenant_id = $1 ORDER BY 1",
        org,
    )
    return [r["p"] for r in rows]


async def test_the_worker_makes_partitions_ahead_and_an_insert_lands_in_its_month(
    org: OrgHandle, owner_conn: asyncpg.Connection, database_urls: DatabaseUrls
) -> None:
    now = datetime(2031, 3, 15, 12, tzinfo=UTC)
    created = await partitions.ensure_partitions(now)
    assert {"access_log_p203103", "access_log_p203104", "access_log_p203105",
            "sign_ins_p203105", "webhook_deliveries_p203105"} <= set(created)
    assert await partitions.ensure_partitions(now) == []  # idempotent

    # The application's role inserts into a future month: it finds its partition.
    async with db.tenant_transaction(org.id):
        await db.connection().execute_query(
            SIGN_IN_ROW, [org.id, datetime(2031, 5, 31, 23, 59, tzinfo=UTC), 1])
    assert await where(owner_conn, "sign_ins", org.id) == ["sign_ins_p203105"]

    # A month nobody made yet still takes the row (DEFAULT), and making it moves it in.
    async with db.tenant_transaction(org.id):
        await db.connection().execute_query(
            ACCESS_ROW, [org.id, datetime(2031, 9, 2, tzinfo=UTC), 2])
    assert await where(owner_conn, "access_log", org.id) == ["access_log_default"] * 2
    assert "access_log_p203109" in await partitions.ensure_partitions(
        datetime(2031, 9, 1, tzinfo=UTC), months_ahead=0)
    assert await where(owner_conn, "access_log", org.id) == ["access_log_p203109"] * 2

    # Partitions are reached through their parent only (row-level security lives there).
    app_conn = await asyncpg.connect(**database.connection_params(database_urls.app))
    try:
        assert await app_conn.fetchval(
            "SELECT has_table_privilege('access_log_p203109', 'SELECT')") is False
    finally:
        await app_conn.close()


async def test_retention_removes_only_the_organisations_own_expired_rows(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    a, b = two_orgs
    now = datetime.now(UTC)
    for org in (a, b):
        for days in (500, 120, 10):
            await owner_conn.execute(ACCESS_ROW, org.id, now - timedelta(days=days), 3)
            await owner_conn.execute(SIGN_IN_ROW, org.id, now - timedelta(days=days), 2)
        await owner_conn.execute(JOB_ROW, org.id, "old-done", "done", now - timedelta(days=20))
        await owner_conn.execute(JOB_ROW, org.id, "new-done", "done", now - timedelta(days=3))
        await owner_conn.execute(JOB_ROW, org.id, "old-dead", "dead", now - timedelta(days=60))
    changed = await a.put("/v1/retention-policy", json={"access_log_days": 100})
    assert changed.status_code == 200, changed.text
    assert changed.json()["sign_in_days"] == 400 and changed.json()["finished_job_days"] == 14

    async with db.tenant_transaction(a.id):
        # Small batches: the run goes on while a batch comes back full.
        removed = await retention.apply_retention(actor=system_actor("test"), now=now, batch=4)
    assert removed == {"access_log": 4, "sign_ins": 2, "jobs": 1}
    assert retention.is_partial(removed, batch=4)
    async with db.tenant_transaction(a.id):
        removed = await retention.apply_retention(actor=system_actor("test"), now=now, batch=4)
    assert removed == {"access_log": 2} and not retention.is_partial(removed, batch=4)

    ages = "SELECT count(*) FROM {} WHERE tenant_id = $1 AND {} < $2"
    a_old = now - timedelta(days=100)
    assert await owner_conn.fetchval(ages.format("access_log", "checked_at"), a.id, a_old) == 0
    assert await owner_conn.fetchval("SELECT count(*) FROM access_log WHERE tenant_id = $1",
                                     a.id) == 3
    # Sign-ins keep their 400 days: only the 500-day-old ones went.
    assert await owner_conn.fetchval("SELECT count(*) FROM sign_ins WHERE tenant_id = $1",
                                     a.id) == 4
    assert sorted(r["key"] for r in await owner_conn.fetch(
        "SELECT key FROM jobs WHERE tenant_id = $1 AND kind = 'test.noop'", a.id)) == [
        "new-done", "old-dead"]
    # The other organisation lost nothing.
    assert await owner_conn.fetchval("SELECT count(*) FROM access_log WHERE tenant_id = $1",
                                     b.id) == 9
    assert await owner_conn.fetchval("SELECT count(*) FROM sign_ins WHERE tenant_id = $1",
                                     b.id) == 6
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = 'test.noop'", b.id) == 3
    await seal_all(wait=True)
    events = (await a.get("/v1/audit-events",
                          params={"action": "retention.applied"})).json()["items"]
    assert sum(e["after"]["removed"].get("access_log", 0) for e in events) == 6
    assert sum(e["after"]["removed"].get("sign_ins", 0) for e in events) == 2
    assert sum(e["after"]["removed"].get("jobs", 0) for e in events) == 1
    assert (await b.get("/v1/audit-events",
                        params={"action": "retention.applied"})).json()["items"] == []


async def test_a_month_no_organisation_keeps_is_dropped_and_audited_where_it_held_rows(
    two_orgs: tuple[OrgHandle, OrgHandle], owner_conn: asyncpg.Connection
) -> None:
    a, b = two_orgs
    january = datetime(2021, 1, 10, tzinfo=UTC)
    await owner_conn.execute(ACCESS_ROW, a.id, january, 3)
    await partitions.ensure_partitions(january, months_ahead=0)
    assert await where(owner_conn, "access_log", a.id) == ["access_log_p202101"] * 3
    # Not yet: one organisation keeps its access log for ten years.
    assert (await b.put("/v1/retention-policy", json={"access_log_days": 3650})).status_code == 200
    first = {d.partition.name: d for d in await partitions.drop_expired_partitions()}
    assert "access_log_p202101" not in first
    assert await owner_conn.fetchval("SELECT to_regclass('access_log_p202101') IS NOT NULL")
    # The sign-in log of that month is kept by nobody (400 days at most): gone, empty, so
    # no organisation is told.
    assert first["sign_ins_p202101"].removed == {}

    assert (await b.put("/v1/retention-policy", json={})).status_code == 200  # defaults
    dropped = {d.partition.name: d for d in await partitions.drop_expired_partitions()}
    assert dropped["access_log_p202101"].removed == {a.id: 3}
    assert await owner_conn.fetchval("SELECT to_regclass('access_log_p202101')") is None
    await seal_all(wait=True)
    [event] = (await a.get("/v1/audit-events",
                           params={"action": "retention.partition_dropped"})).json()["items"]
    assert event["after"] == {"table": "access_log", "partition": "access_log_p202101",
                              "from": "2021-01-01T00:00:00+00:00",
                              "to": "2021-02-01T00:00:00+00:00", "removed": 3}
    assert (await b.get("/v1/audit-events",
                        params={"action": "retention.partition_dropped"})).json()["items"] == []
    # The current month is never dropped, whatever the clock says.
    current = datetime.now(UTC).strftime("access_log_p%Y%m")
    assert await owner_conn.fetchval("SELECT to_regclass($1) IS NOT NULL", current)


#: Migrates the database of argv[1] (an admin URL) up to argv[2] ('' for the latest).
MIGRATE = """
import asyncio, sys
from app import database
from app.database import DatabaseUrls

asyncio.run(database.migrate(DatabaseUrls(sys.argv[1], sys.argv[1]), target=sys.argv[2] or None))
"""

SEED = """
INSERT INTO organisations (id, slug, name, kind, status, local_sign_in, created_at, updated_at,
                           policy_version, structure_version)
VALUES ($1, 'upgraded', 'Upgraded', 'employer', 'active', true, now(), now(), 0, 0);
INSERT INTO products (id, created_at, updated_at, key, name, description, tenant_id)
VALUES ($2, now(), now(), 'p', 'P', '', $1);
INSERT INTO access_log (tenant_id, checked_at, admin_id, member_id, product_id, category,
                        allowed, checked_by)
SELECT $1, now() - make_interval(days => d), gen_random_uuid(), gen_random_uuid(), $2,
       'files', true, 'test'
  FROM generate_series(0, 450, 30) d;
INSERT INTO sign_ins (id, tenant_id, created_at, updated_at, at, method, outcome)
SELECT gen_random_uuid(), $1, now(), now(), now() - make_interval(days => d), 'password',
       'succeeded'
  FROM generate_series(0, 450, 45) d;
INSERT INTO webhook_deliveries (id, tenant_id, created_at, updated_at, event_id, topic,
                                idempotency_key, status, attempts, product_id)
SELECT gen_random_uuid(), $1, now() - make_interval(days => d), now(), d, 't', 'k' || d,
       'delivered', 1, $2
  FROM generate_series(0, 90, 10) d;
INSERT INTO retention_policies (id, created_at, updated_at, mail_days, session_days,
  sign_in_attempt_days, outbox_payload_days, webhook_delivery_days, export_days, tenant_id)
VALUES (gen_random_uuid(), now(), now(), 90, 30, 1, 30, 7, 30, $1);
"""


async def migrate_to(url: str, target: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MIGRATE, url, target,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()[-3000:]


async def test_upgrading_a_database_with_rows_keeps_them_in_their_months(
    admin_server_url: str,
) -> None:
    module = importlib.import_module("migrations.tenants.0022_time_partitions")
    app_label, before = module.Migration.dependencies[0]
    name = f"tenantry_upgrade_{uuid.uuid4().hex[:8]}"
    admin_url = database.with_database(admin_server_url, name)
    urls = await database.prepare_database(admin_url, app_role="tenantry_app",
                                           app_database_url=None)
    try:
        await migrate_to(urls.admin, f"{app_label}.{before}")
        conn = await asyncpg.connect(**database.connection_params(urls.admin))
        try:
            org, product = uuid.uuid4(), uuid.uuid4()
            for statement in SEED.split(";"):
                if statement.strip():
                    args = [org, product][: 2 if "$2" in statement else 1]
                    await conn.execute(statement, *args)
            counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                      for t in partitions.TABLES}
            assert counts == {"access_log": 16, "sign_ins": 11, "webhook_deliveries": 10}
            await conn.close()

            await migrate_to(urls.admin, "")

            conn = await asyncpg.connect(**database.connection_params(urls.admin))
            assert {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                    for t in partitions.TABLES} == counts
            misplaced = await conn.fetchval(
                "SELECT count(*) FROM access_log WHERE tableoid::regclass::text "
                "<> 'access_log_p' || to_char(checked_at AT TIME ZONE 'UTC', 'YYYYMM')")
            assert misplaced == 0
            assert await conn.fetchval(
                "SELECT relkind::text FROM pg_class WHERE relname = 'webhook_deliveries'") == "p"
            policy = await conn.fetchrow(
                "SELECT webhook_delivery_days, access_log_days, sign_in_days, finished_job_days "
                "FROM retention_policies WHERE tenant_id = $1", org)
            assert dict(policy) == {"webhook_delivery_days": 7, "access_log_days": 400,
                                    "sign_in_days": 400, "finished_job_days": 14}
            forced = await conn.fetch(
                "SELECT relname, relforcerowsecurity FROM pg_class WHERE relname = ANY($1)",
                list(partitions.TABLES))
            assert all(r["relforcerowsecurity"] for r in forced) and len(forced) == 3
            # New rows go on being numbered after the old ones.
            assert await conn.fetchval(
                "SELECT nextval(pg_get_serial_sequence('access_log', 'id'))") == 17
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(**database.connection_params(
            database.with_database(admin_server_url, "postgres")))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_the_upkeep_outlives_a_database_that_is_not_yet_accepting_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While PostgreSQL recovers (57P03) the round fails; it is tried again within seconds,
    not at the next daily round, and the loop goes on."""
    calls: list[str] = []

    async def ensure() -> list[str]:
        calls.append("ensure")
        if len(calls) == 1:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        return []

    async def drop() -> list[str]:
        calls.append("drop")
        stop.set()
        return []

    stop = asyncio.Event()
    setattr_ = monkeypatch.setattr
    setattr_(partitions, "ensure_partitions", ensure)
    setattr_(partitions, "drop_expired_partitions", drop)
    backoff = partitions.Backoff
    setattr_(partitions, "Backoff", lambda **_: backoff(base=0.01, cap=0.01))
    await asyncio.wait_for(partitions.maintain_partitions(stop, every=timedelta(days=1)), 5)
    assert calls == ["ensure", "ensure", "drop"]
