"""An organisation's Shared Signals transmitter and the events already acted on."""

from __future__ import annotations

from datetime import datetime

from tortoise import fields

from tenants.models_base import TenantModel


class SignalTransmitter(TenantModel):
    """The transmitter whose Security Event Tokens this organisation accepts (one per
    organisation): SETs must be signed by a key at ``jwks_uri``, issued by ``issuer``
    and addressed to ``audience`` (RFC 8417 §2.2, SSF 1.0 §10.1)."""

    issuer = fields.CharField(max_length=500)
    jwks_uri = fields.CharField(max_length=2000)
    audience = fields.CharField(max_length=500)
    enabled = fields.BooleanField(default=True)
    last_event_at: datetime | None = fields.DatetimeField(null=True)

    class Meta:
        table = "signal_transmitters"
        unique_together = (("tenant_id",),)


class SeenSecurityEvent(TenantModel):
    """A SET already accepted, kept while its ``iat`` keeps it acceptable, so a captured
    token cannot be replayed (RFC 8417 §2.2: ``jti`` is unique per issuer; RFC 8935 §2:
    receivers de-duplicate on it)."""

    jti = fields.CharField(max_length=255)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "seen_security_events"
        unique_together = (("tenant_id", "jti"),)
