"""Queueing email in the caller's tenant transaction, and organisations' template texts.

``send_later`` renders the message now (in the organisation's name, with its overrides),
records it and queues its ``mail.send`` job, all in the transaction of the change that
causes it: a rolled-back change sends nothing, a committed one sends at least once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tenants import db
from tenants.actors import Actor
from tenants.audit import service as audit
from tenants.jobs import service as jobs
from tenants.mail import rendering, sender
from tenants.mail.models import MailMessage, MailTemplateOverride
from tenants.organisations.models import Organisation

JOB_KIND = "mail.send"
#: With the job queue's backoff (2 s doubling, at most an hour) a mail server may be down
#: for about four hours before a message gives up (and shows as a dead job to retry).
SEND_ATTEMPTS = 15
MAX_KEY = 190

INSERT_SQL = """
WITH inserted AS (
  INSERT INTO mail_messages (id, tenant_id, template, key, recipients, subject, text, html,
                             status, attempts, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, 'queued', 0, now(), now())
  ON CONFLICT (tenant_id, key) DO NOTHING
  RETURNING id
)
SELECT id FROM inserted
"""


def _recipients(to: Sequence[str]) -> list[str]:
    """Addresses lower-cased, each once, in the order given; blanks dropped."""
    seen: dict[str, None] = {}
    for address in to:
        cleaned = address.strip().lower()
        if cleaned and "@" in cleaned and "\n" not in cleaned and "\r" not in cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


async def override_of(template: str) -> rendering.Override | None:
    row = await MailTemplateOverride.filter(template=template).first()
    return rendering.Override(row.subject, row.intro) if row is not None else None


async def send_later(
    template: str, *, to: Sequence[str], context: Mapping[str, Any], key: str
) -> None:
    """Queue the email ``template`` to ``to`` in the open tenant transaction.

    ``key`` is unique per organisation: asking again with the same key sends nothing more
    (a retried step, a double click). ``context["link_path"]``, when given, becomes the
    full ``link`` in the email. No recipients: nothing is queued. Raises ValueError for an
    unknown template, a missing context key or an overlong key (programming errors), and
    NoTenantTransactionError outside a tenant transaction.
    """
    if len(key) > MAX_KEY:
        raise ValueError(f"mail key {key[:40]!r}... is longer than {MAX_KEY} characters")
    recipients = _recipients(to)
    rendering.template(template)
    if not recipients:
        return
    organisation = await Organisation.get(id=db.current_org())
    path = context.get("link_path")
    rendered = rendering.render(
        template,
        context,
        organisation=organisation.name,
        link=sender.link(str(path)) if path else None,
        override=await override_of(template),
    )
    message_id = uuid.uuid4()
    # A statement starting with WITH comes back with its rows (a bare INSERT through the
    # ORM's connection answers only a status line).
    inserted = await db.fetch(
        INSERT_SQL, message_id, db.current_org(), template, key, json.dumps(recipients),
        rendered.subject, rendered.text, rendered.html,
    )
    if inserted:
        await jobs.enqueue(
            JOB_KIND,
            {"message_id": str(message_id)},
            key=f"mail:{message_id}",
            max_attempts=SEND_ATTEMPTS,
        )


async def set_override(
    template: str, *, subject: str | None, intro: str | None, actor: Actor
) -> MailTemplateOverride | None:
    """Set (or with both None, remove) the organisation's own subject and opening text of
    ``template``. InvalidInputError naming the field when a text cannot render."""
    rendering.template(template)
    override = rendering.Override(subject or None, intro or None)
    rendering.check_override(template, override)
    row = await MailTemplateOverride.filter(template=template).select_for_update().first()
    before = {"subject": row.subject, "intro": row.intro} if row is not None else {}
    after = {"subject": override.subject, "intro": override.intro}
    old, new = audit.changed_fields(before, after)
    if not new:
        return row
    if override.subject is None and override.intro is None:
        if row is not None:
            await row.delete()
        row = None
    elif row is None:
        row = await MailTemplateOverride.create(
            tenant_id=db.current_org(), template=template, subject=override.subject,
            intro=override.intro,
        )
    else:
        row.subject, row.intro = override.subject, override.intro
        await row.save(update_fields=["subject", "intro", "updated_at"])
    await audit.record(
        "mail_template.changed", "mail_template", template, actor=actor, before=old, after=new
    )
    return row


async def messages_for(address: str, *, limit: int = 50) -> list[MailMessage]:
    """The latest messages to ``address`` in this organisation, newest first."""
    rows = await db.fetch(
        "SELECT id FROM mail_messages WHERE tenant_id = $1 AND recipients ? $2 "
        "ORDER BY created_at DESC LIMIT $3",
        db.current_org(), address.lower(), limit,
    )
    return await MailMessage.filter(id__in=[r["id"] for r in rows]).order_by("-created_at")
