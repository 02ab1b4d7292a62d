"""Audit events, the hash chain that seals them, and the queue of events not sealed yet.

A write records its event in its own transaction (``audit_events`` + ``audit_pending``)
without touching anything shared by the organisation's other writers; the sealer
(``tenants/audit/sealer.py``) later gives each event its place in the organisation's
chain (``audit_chain``) under the chain head lock (``audit_heads``). Splitting it so keeps
one organisation's concurrent writes from queueing on the head until each commits.

Every table here is append-only for the service except the queue and the head; the SQL
that enforces it (grants, row-level security, tenant-first keys) is in the migrations.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from tenants.models_base import TenantModel


class AuditEvent(Model):
    """One write, as it happened. The runtime role may INSERT and SELECT, never UPDATE or
    DELETE; its place in the chain is in ``audit_chain``, so nothing here changes later."""

    id = fields.BigIntField(primary_key=True)
    # No foreign key in the database (migration 0034): checking it locked the
    # organisation's row for every event, which all of its writers shared.
    tenant: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "tenants.Organisation", related_name=False, on_delete=fields.RESTRICT, db_index=False,
        db_constraint=False,
    )
    occurred_at = fields.DatetimeField()
    actor = fields.CharField(max_length=300)
    actor_display = fields.TextField()
    action = fields.CharField(max_length=100)
    target_type = fields.CharField(max_length=50)
    target_id = fields.CharField(max_length=100)
    before: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    after: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    request_id = fields.CharField(max_length=100, null=True)
    client_addr = fields.TextField(null=True)

    class Meta:
        table = "audit_events"
        # Listing is newest first by id, filtered by action or target. The action filter,
        # exact or by prefix, reads (tenant_id, action text_pattern_ops, id) (migration
        # 0015): a text_pattern_ops index answers equality too.
        indexes = (
            ("tenant_id", "target_type", "target_id", "id"),
            ("tenant_id", "occurred_at"),
            # An erasure finds the events a member wrote (and the list filters by actor).
            ("tenant_id", "actor", "id"),
        )


class AuditPending(Model):
    """An event recorded but not chained yet; written with the event, deleted when sealed.

    A short-lived queue on every write's path, so it carries no foreign key (its row is
    inserted in the same statement as its event, whose own key vouches for the
    organisation). The primary key becomes ``(tenant_id, event_id)`` in the migration.
    """

    event_id = fields.BigIntField(primary_key=True, generated=False)
    tenant_id = fields.UUIDField()

    class Meta:
        table = "audit_pending"


class AuditChainLink(Model):
    """The event at position ``seq`` of its organisation's chain and the hashes linking it.

    Append-only like the events. The primary key becomes ``(tenant_id, seq)`` and
    ``(tenant_id, event_id)`` a foreign key to the event in the migration.
    """

    seq = fields.BigIntField(primary_key=True, generated=False)
    tenant_id = fields.UUIDField()
    event_id = fields.BigIntField()
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_chain"
        unique_together = (("tenant_id", "event_id"),)


class AuditHead(TenantModel):
    """The newest sealed event of one organisation's chain, one row per organisation; the
    sealer locks it while it appends, so two sealers never extend one chain at once."""

    seq = fields.BigIntField(default=0)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_heads"
        unique_together = (("tenant_id",),)
