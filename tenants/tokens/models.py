"""API tokens for scripts: only a SHA-256 of the secret is stored."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise import fields

from tenants.models_base import TenantModel


class ApiToken(TenantModel):
    name = fields.CharField(max_length=200)
    secret_hash = fields.CharField(max_length=64)
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    expires_at: datetime | None = fields.DatetimeField(null=True)
    revoked_at: datetime | None = fields.DatetimeField(null=True)
    last_used_at: datetime | None = fields.DatetimeField(null=True)
    created_by = fields.CharField(max_length=255)
    #: The console form that made it (migration 0036): a form makes one token at most.
    made_by_form: uuid.UUID | None = fields.UUIDField(null=True)

    class Meta:
        table = "api_tokens"
