"""Email messages as rendered and sent, and organisations' overrides of template text."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tortoise import fields

from tenants.models_base import TenantModel


class MailStatus(StrEnum):
    #: Rendered; its ``mail.send`` job will send it.
    QUEUED = "queued"
    SENT = "sent"
    #: No SMTP server is configured: kept as a record, never sent.
    NOT_SENT = "not_sent"
    #: The SMTP server refused it for good (or attempts ran out).
    FAILED = "failed"


class MailMessage(TenantModel):
    """One email, rendered in the transaction that caused it (so it says what was true
    then) and sent afterwards by a job."""

    template = fields.CharField(max_length=64)
    #: Unique per organisation: asking twice for the same key is one email.
    key = fields.CharField(max_length=200)
    recipients: fields.Field[list[str]] = fields.JSONField(default=list)
    subject = fields.CharField(max_length=500)
    text = fields.TextField()
    html = fields.TextField()
    status = fields.CharEnumField(MailStatus, max_length=16, default=MailStatus.QUEUED)
    attempts = fields.IntField(default=0)
    sent_at: datetime | None = fields.DatetimeField(null=True)
    last_error: str | None = fields.TextField(null=True)

    class Meta:
        table = "mail_messages"
        unique_together = (("tenant_id", "key"),)
        indexes = (("tenant_id", "created_at"),)


class MailTemplateOverride(TenantModel):
    """An organisation's own subject or opening paragraph for one template."""

    template = fields.CharField(max_length=64)
    subject = fields.CharField(max_length=300, null=True)
    intro: str | None = fields.TextField(null=True)

    class Meta:
        table = "mail_template_overrides"
        unique_together = (("tenant_id", "template"),)
