"""The ``mail.send`` job: hand one recorded message to the configured ``MailSender``.

The message is read in one transaction and marked in another, with the SMTP
conversation in between, so no database transaction waits on a mail server. A worker
killed between the two sends the message again (at least once, never lost). A server
that is down or answers 4xx is retried with the job queue's backoff; a 5xx refusal is
final and recorded on the message.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from tortoise.expressions import F

from tenants.db import tenant_transaction
from tenants.jobs.registry import RetryLaterError, RunningJob, handler
from tenants.mail import catalogue, sender
from tenants.mail.models import MailMessage, MailStatus
from tenants.mail.sender import MailDeliveryError, OutgoingMail
from tenants.organisations.models import Organisation

log = logging.getLogger(__name__)


async def _mark(
    job: RunningJob, message_id: uuid.UUID, status: MailStatus, error: str | None = None
) -> None:
    async with tenant_transaction(job.org_id):
        message = await MailMessage.filter(id=message_id).select_for_update().first()
        if message is None:
            return
        message.attempts += 1
        message.status = status
        message.last_error = error
        if status is MailStatus.SENT:
            message.sent_at = datetime.now(UTC)
        forgotten = []
        template = catalogue.TEMPLATES.get(message.template)
        if template is not None and template.forgotten_once_sent:
            # The erased member's address and name lived on only to carry this message.
            message.recipients, message.subject = [], "(sent to an erased member)"
            message.text = message.html = ""
            forgotten = ["recipients", "subject", "text", "html"]
        await message.save(
            update_fields=["attempts", "status", "last_error", "sent_at", "updated_at", *forgotten]
        )


@handler("mail.send")
async def send_message(job: RunningJob) -> None:
    message_id = uuid.UUID(job.payload["message_id"])
    async with tenant_transaction(job.org_id):
        message = await MailMessage.filter(id=message_id).first()
        if message is None:
            # Erased (with its recipient) or expired by retention before it went out:
            # there is nothing left to send, which is not a failure.
            return
        if message.status is not MailStatus.QUEUED:
            return
        organisation = await Organisation.get(id=job.org_id)
    adapter = sender.current()
    if adapter is None:
        await _mark(job, message_id, MailStatus.NOT_SENT, "no SMTP server is configured")
        return
    mail = OutgoingMail(
        to=list(message.recipients),
        subject=message.subject,
        text=message.text,
        html=message.html,
        organisation_name=organisation.name,
        message_id=f"{message.id}",
    )
    try:
        refused = await adapter.send(mail)
    except MailDeliveryError as exc:
        if exc.permanent:
            await _mark(job, message_id, MailStatus.FAILED, str(exc))
            return
        async with tenant_transaction(job.org_id):
            await MailMessage.filter(id=message_id).update(
                attempts=F("attempts") + 1, last_error=str(exc), updated_at=datetime.now(UTC)
            )
        raise RetryLaterError(str(exc)) from exc
    await _mark(
        job, message_id, MailStatus.SENT,
        f"refused: {', '.join(refused)}" if refused else None,
    )
