"""Email: rendered in the organisation's name, queued with the change that causes it, and
delivered by the ``mail.send`` job to a real SMTP server (aiosmtpd), with retries while
it is down and without sending at all when no server is configured."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.utils import parseaddr

import asyncpg
import pytest

from tenants import db
from tenants.actors import system_actor
from tenants.errors import InvalidInputError
from tenants.mail import service as mail
from tenants.mail.models import MailMessage, MailStatus
from tests.conftest import OrgHandle, make_member
from tests.requests.support import mails, officer, run_jobs, submit
from tests.support.api_schema import assert_problem, error_fields
from tests.support.smtp_server import FROM, free_port, mail_to, smtp_server

ACTOR = system_actor("mail-tests")


async def queue(org: OrgHandle, to: list[str], key: str | None = None, **context: str) -> None:
    async with db.tenant_transaction(org.id):
        await mail.send_later(
            "request_answered", to=to,
            context={"member_name": "Mia", "kind_label": "Access", "status_label": "Answered",
                     "answer": "Here it is.", "rejected": False, **context},
            key=key or f"test:{uuid.uuid4()}",
        )


async def test_a_privacy_request_emails_the_member_and_the_officers_through_smtp(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    mia = await make_member(org, name="Mia Member")
    olivia, otto = await officer(org), await officer(org, "Otto Officer")
    await make_member(org, name="Not An Officer")
    async with smtp_server() as (server, port):
        await submit(org, mia, "portability")
        with mail_to(port):
            await run_jobs()

    # (A long subject is folded; the parser keeps the space the fold began with.)
    by_subject = {str(d.message["Subject"]).strip(): d for d in server.delivered}
    assert len(server.delivered) == 2, [d.message["Subject"] for d in server.delivered]
    ack = by_subject["We received your request: Portability: your data in a machine-readable form"]
    assert ack.rcpt_tos == [mia["email"]]
    assert ack.mail_from == FROM
    assert parseaddr(str(ack.message["From"])) == (f"{org.slug.title()} via Tenantry", FROM)
    assert "Hello Mia Member," in ack.part("plain")
    assert f"{org.slug.title()} received your privacy request" in ack.part("html")
    assert "/account/privacy-requests/" in ack.part("plain")
    queued = next(d for d in server.delivered if d is not ack)
    assert sorted(queued.rcpt_tos) == sorted([olivia["email"], otto["email"]])
    assert {m["status"] for m in await mails(owner_conn, org)} == {"sent"}


async def test_without_an_smtp_server_emails_are_recorded_but_not_sent(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await queue(org, ["mia@example.org"])

    await run_jobs()

    [recorded] = await mails(owner_conn, org)
    assert recorded["status"] == "not_sent" and recorded["recipients"] == ["mia@example.org"]
    assert "Here it is." in recorded["text"]


async def test_a_rolled_back_change_sends_no_email(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async def failing_change() -> None:
        async with db.tenant_transaction(org.id):
            await mail.send_later(
                "export_ready", to=["mia@example.org"],
                context={"member_name": "Mia", "expires_on": "2030-01-01"}, key="rolled-back",
            )
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()

    assert await mails(owner_conn, org) == []
    assert await owner_conn.fetchval("SELECT count(*) FROM jobs WHERE kind = 'mail.send'") == 0


async def test_the_same_key_sends_one_email(org: OrgHandle, owner_conn: asyncpg.Connection) -> None:
    await queue(org, ["mia@example.org"], key="once")
    await queue(org, ["mia@example.org", "MIA@example.org "], key="once")

    assert len(await mails(owner_conn, org)) == 1


async def test_a_mail_server_that_is_down_is_retried_with_backoff_until_it_is_back(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    port = free_port()
    await queue(org, ["mia@example.org"])
    with mail_to(port):
        await run_jobs()
        job = await owner_conn.fetchrow(
            "SELECT status, attempts, run_at > now() AS later FROM jobs WHERE kind = 'mail.send'"
        )
        assert (job["status"], job["attempts"], job["later"]) == ("queued", 1, True)
        [waiting] = await mails(owner_conn, org)
        assert waiting["status"] == "queued"
        async with smtp_server(port) as (server, _):
            await run_jobs(ahead=timedelta(hours=1))

    assert [d.rcpt_tos for d in server.delivered] == [["mia@example.org"]]
    assert [m["status"] for m in await mails(owner_conn, org)] == ["sent"]


async def test_a_recipient_the_server_refuses_for_good_is_recorded_and_not_retried(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    await queue(org, ["gone@example.org"])
    async with smtp_server() as (server, port):
        server.unknown.add("gone@example.org")
        with mail_to(port):
            await run_jobs(ahead=timedelta(hours=1))

    async with db.tenant_transaction(org.id):
        [message] = await MailMessage.all()
    assert message.status == MailStatus.FAILED
    assert message.last_error and "every recipient was refused" in message.last_error
    assert await owner_conn.fetchval("SELECT status FROM jobs WHERE kind = 'mail.send'") == "done"


async def test_an_organisation_words_its_own_subject_and_opening_and_a_broken_text_is_refused(
    org: OrgHandle, owner_conn: asyncpg.Connection
) -> None:
    async with db.tenant_transaction(org.id):
        await mail.set_override(
            "request_answered", subject="{{ organisation }} privacy team: {{ status_label }}",
            intro="Dear {{ member_name }}, thank you for your patience.", actor=ACTOR,
        )
        with pytest.raises(InvalidInputError) as refused:
            await mail.set_override("request_answered", subject="{{ nonsense }}", intro=None,
                                    actor=ACTOR)
    assert [f.field for f in refused.value.fields] == ["subject"]
    await queue(org, ["mia@example.org"])

    [message] = await mails(owner_conn, org)
    assert message["subject"] == f"{org.slug.title()} privacy team: Answered"
    assert "Dear Mia, thank you for your patience." in message["text"]
    events = await owner_conn.fetch(
        "SELECT action FROM audit_events WHERE tenant_id = $1 AND action = 'mail_template.changed'",
        org.id,
    )
    assert len(events) == 1


async def test_a_missing_context_value_is_a_programming_error_that_stops_the_change(
    org: OrgHandle,
) -> None:
    async def incomplete() -> None:
        async with db.tenant_transaction(org.id):
            await mail.send_later(
                "request_answered", to=["mia@example.org"],
                context={"member_name": "Mia", "kind_label": "Access", "status_label": "x"},
                key="incomplete",
            )

    with pytest.raises(ValueError, match="needs answer"):
        await incomplete()


async def test_the_api_lists_the_emails_and_takes_an_organisations_wording_naming_bad_fields(
    org: OrgHandle,
) -> None:
    listed = await org.get("/v1/mail-templates")
    names = [t["name"] for t in listed.json()["templates"]]
    assert {"request_received", "deadline_approaching", "departure_notice",
            "grant_approved", "grant_denied", "access_logged", "request_answered"} <= set(names)

    unknown = await org.put("/v1/mail-templates", json={"template": "spam", "subject": "x"})
    broken = await org.put("/v1/mail-templates",
                           json={"template": "export_ready", "intro": "{% if %}"})
    worded = await org.put("/v1/mail-templates",
                           json={"template": "export_ready", "subject": "{{ organisation }}: data"})

    assert "template" in error_fields(assert_problem(unknown, 422))
    assert "intro" in error_fields(assert_problem(broken, 422))
    assert worded.status_code == 200 and worded.json()["subject"] == "{{ organisation }}: data"
    after = {t["name"]: t for t in (await org.get("/v1/mail-templates")).json()["templates"]}
    assert after["export_ready"]["subject"] == "{{ organisation }}: data"
    assert after["request_received"]["subject"] is None
