"""Products' OAuth 2.0 clients (client credentials grant) and the service's signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise import fields
from tortoise.models import Model

from tenants.models_base import TenantModel
from tenants.products.models import Product


class ProductClient(TenantModel):
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "tenants.Product",
        related_name="clients",
        on_delete=fields.CASCADE,
        db_index=False,
        db_constraint=False,
    )
    product_id: uuid.UUID
    name = fields.CharField(max_length=200)
    #: ``pc_<organisation id>_<random>``: carries the organisation like API tokens do.
    client_id = fields.CharField(max_length=100)
    secret_hash = fields.CharField(max_length=64)
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    revoked_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "product_clients"
        unique_together = (("tenant_id", "client_id"),)


class SigningKey(Model):
    """A key the service signs access tokens with. Not tenant data: one set per service.

    The private half is stored encrypted; the public half is published at
    ``/.well-known/jwks.json`` while the key signs and for a grace period after.
    """

    kid = fields.CharField(max_length=64, primary_key=True)
    private_jwk_enc = fields.TextField()
    public_jwk: fields.Field[dict[str, object]] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)
    retired_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "signing_keys"
