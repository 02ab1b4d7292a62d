"""``/v1/retention-policy``: how long the organisation keeps what piles up personal data."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from pydantic import Field

from app.api import ApiRouter, Call
from app.v1.common import Input, Output
from tenants.permissions import Permission
from tenants.privacy import retention

router = ApiRouter("/v1/retention-policy", "privacy requests")

LOW, HIGH = retention.DAYS_RANGE
D = retention.DEFAULTS


class RetentionOut(Output):
    organisation_id: uuid.UUID
    mail_days: int = Field(description="Emails, once sent (or recorded).")
    session_days: int = Field(description="Sessions, after they ended or expired.")
    sign_in_attempt_days: int = Field(description="Sign-in round trips with the IdP.")
    outbox_payload_days: int = Field(description="What notices to products said, once delivered.")
    webhook_delivery_days: int = Field(description="Finished webhook deliveries.")
    export_days: int = Field(description="Expired exports (their parts go at expiry).")
    access_log_days: int = Field(
        description="Access checks (the access log, and what members "
        "see of who accessed their data)."
    )
    sign_in_days: int = Field(description="The sign-in log.")
    finished_job_days: int = Field(description="Background jobs, once finished.")


class RetentionBody(Input):
    mail_days: int = Field(D.mail_days, ge=LOW, le=HIGH)
    session_days: int = Field(D.session_days, ge=LOW, le=HIGH)
    sign_in_attempt_days: int = Field(D.sign_in_attempt_days, ge=LOW, le=HIGH)
    outbox_payload_days: int = Field(D.outbox_payload_days, ge=LOW, le=HIGH)
    webhook_delivery_days: int = Field(D.webhook_delivery_days, ge=LOW, le=HIGH)
    export_days: int = Field(D.export_days, ge=LOW, le=HIGH)
    access_log_days: int = Field(D.access_log_days, ge=LOW, le=HIGH)
    sign_in_days: int = Field(D.sign_in_days, ge=LOW, le=HIGH)
    finished_job_days: int = Field(D.finished_job_days, ge=LOW, le=HIGH)


@router.get(
    "",
    summary="Get the retention policy",
    permission=Permission.ORGANISATION_READ,
    response=RetentionOut,
)
async def get_retention_policy(call: Call[Input, Input]) -> RetentionOut:
    return RetentionOut(
        organisation_id=call.principal.org_id, **asdict(await retention.get_retention())
    )


@router.put(
    "",
    summary="Replace the retention policy (days; omitted fields: defaults)",
    permission=Permission.ORGANISATION_WRITE,
    body=RetentionBody,
    response=RetentionOut,
    errors=(422,),
)
async def set_retention_policy(call: Call[RetentionBody, Input]) -> RetentionOut:
    changed = await retention.set_retention(call.body.model_dump(), actor=call.actor)
    return RetentionOut(organisation_id=call.principal.org_id, **asdict(changed))
