"""Retention: each organisation's periods (documented defaults, changed through the API and
audited) decide what the daily worker run removes of what piles up personal data; what
is younger than its period, or still in use, stays."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tenants import db
from tenants.actors import system_actor
from tenants.jobs.worker import Worker
from tenants.members.models import Member
from tenants.privacy import retention
from tenants.sessions.models import AuthMethod
from tenants.sessions.service import create_session, end_member_sessions
from tenants.webhooks import service as webhooks
from tests.conftest import OrgHandle, make_member, make_product
from tests.requests.support import officer, submit
from tests.support.api_schema import assert_problem, error_fields


async def test_the_policy_has_documented_defaults_and_changes_are_validated_and_audited(
    org: OrgHandle,
) -> None:
    got = (await org.get("/v1/retention-policy")).json()
    assert got.pop("organisation_id") == str(org.id)
    assert got == {"mail_days": 90, "session_days": 30, "sign_in_attempt_days": 1,
                   "outbox_payload_days": 30, "webhook_delivery_days": 30, "export_days": 30,
                   "access_log_days": 400, "sign_in_days": 400, "finished_job_days": 14}
    changed = await org.put("/v1/retention-policy", json={**got, "mail_days": 7})
    assert changed.status_code == 200, changed.text
    assert (await org.get("/v1/retention-policy")).json()["mail_days"] == 7
    refused = await org.put("/v1/retention-policy", json={"session_days": 0})
    assert "session_days" in error_fields(assert_problem(refused, 422))
    events = (await org.get("/v1/audit-events",
                            params={"action": "retention.changed"})).json()["items"]
    assert [(e["before"], e["after"]) for e in events] == [({"mail_days": 90}, {"mail_days": 7})]


async def age(conn: asyncpg.Connection, table: str, column: str, days: int) -> None:
    await conn.execute(
        f"UPDATE {table} SET {column} = {column} - make_interval(days => $1)", days
    )


async def test_the_worker_removes_what_its_period_no_longer_keeps_and_audits_it(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    await officer(org)
    await submit(org, mia, "access")  # emails to the member and the officer
    product = await make_product(org)
    hooked = await org.put(f"/v1/products/{product['id']}/webhook",
                           json={"url": "https://hooks.example/in"})
    assert hooked.status_code == 200, hooked.text
    await org.post("/v1/product-accounts", {"member_id": mia["id"], "product_id": product["id"]})
    async with db.tenant_transaction(org.id):
        member = await Member.get(id=mia["id"])
        await create_session(member, AuthMethod.PASSWORD, actor=system_actor("test"))
        await end_member_sessions(member.id, reason="test", actor=system_actor("test"))
        await create_session(member, AuthMethod.PASSWORD, actor=system_actor("test"))
        await webhooks.publish("member.updated", {"member_id": mia["id"], "email": mia["email"]},
                               key="retention-test")
    mails = await owner_conn.fetchval("SELECT count(*) FROM mail_messages")
    assert mails >= 2
    # Everything so far is 100 days old; the mail queue is sent, deliveries are over.
    await owner_conn.execute("UPDATE mail_messages SET status = 'not_sent'")
    await owner_conn.execute("UPDATE webhook_deliveries SET status = 'delivered'")
    for table, column in (("mail_messages", "created_at"), ("sessions", "revoked_at"),
                          ("webhook_deliveries", "updated_at"), ("outbox_events", "created_at")):
        await age(owner_conn, table, column, 100)
    await submit(org, mia, "inquiry", "Who sees my data?")  # recent: stays

    async with db.tenant_transaction(org.id):
        await retention.schedule(retention.datetime.now(retention.UTC))
    assert await Worker(name="retention-test").run_until_idle() >= 1

    assert await owner_conn.fetchval("SELECT count(*) FROM mail_messages WHERE "
                                     "created_at < now() - interval '1 day'") == 0
    assert await owner_conn.fetchval("SELECT count(*) FROM mail_messages") >= 1
    assert await owner_conn.fetchval("SELECT count(*) FROM sessions") == 1  # the live one
    assert await owner_conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 0
    assert await owner_conn.fetchval(
        "SELECT count(*) FROM outbox_events WHERE payload::text LIKE '%' || $1 || '%'",
        mia["email"]) == 0
    expired = await owner_conn.fetch(
        "SELECT payload FROM outbox_events WHERE created_at < now() - interval '1 day'")
    assert expired and all(r["payload"] == '{"expired": true}' for r in expired)
    events = (await org.get("/v1/audit-events",
                            params={"action": "retention.applied"})).json()["items"]
    [applied] = events
    assert applied["after"]["removed"]["mail_messages"] == mails
    assert applied["after"]["removed"]["sessions"] == 1
    # The next run is queued a day later.
    queued = await owner_conn.fetchval(
        "SELECT run_at FROM jobs WHERE kind = 'privacy.retention' AND status = 'queued'")
    assert queued is not None and queued - retention.datetime.now(retention.UTC) > timedelta(
        hours=23)


def test_the_mail_sweep_takes_forgotten_messages_that_never_went_out_too() -> None:
    """The erased member's last message keeps their address until it is sent; if sending
    gives up, the sweep is what removes it, queued or not."""
    from tenants.mail.catalogue import TEMPLATES
    from tenants.privacy.retention import SWEEPS

    forgotten = {t.name for t in TEMPLATES.values() if t.forgotten_once_sent}
    assert forgotten == {"request_erased"}
    assert all(f"template = '{name}'" in SWEEPS["mail_messages"].sql for name in forgotten)
