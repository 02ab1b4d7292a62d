"""Erasure and retention: per-member keys that seal the personal fields of audit events
(crypto-shredding, ``tenants.privacy.shredding``). Deleting a member's key is how their
erasure reaches the append-only audit trail without touching a hashed byte. Each organisation's retention periods for what piles up
personal data (``tenants.privacy.retention``).

The model operation was generated (``tortoise makemigrations -n member_keys``); the SQL
gives the table its tenant-first key, FORCEd row-level security and its grants, and lets
the runtime role strip personal fields from outbox payloads (erasure, retention). Audit
events get an index by actor: an erasure counts the events a member wrote.
"""

from migrations import base
from migrations.rls import RUNTIME_ROLE, grant_runtime, row_level_security, tenant_primary_key
from tortoise.migrations import operations as ops
from tortoise.indexes import Index
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

SQL = [
    tenant_primary_key("member_keys"),
    row_level_security("member_keys"),
    grant_runtime("member_keys", "SELECT, INSERT, DELETE"),
    tenant_primary_key("retention_policies"),
    row_level_security("retention_policies"),
    grant_runtime("retention_policies"),
    # The worker queues each organisation's daily retention run at start: the ids alone,
    # read as the owner (through its owner_directory policy), never a row of an organisation.
    """CREATE FUNCTION organisation_ids() RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT id FROM organisations $$;""",
    f"GRANT EXECUTE ON FUNCTION organisation_ids() TO {RUNTIME_ROLE};",
    # An erasure removes the person's fields from notices to products (the event stays).
    grant_runtime("outbox_events", "UPDATE (payload)"),
]


class Migration(base.Migration):
    dependencies = [('tenants', '0018_sized_by_page')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MemberKey',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('member_id', fields.UUIDField()),
                ('key', fields.BinaryField()),
            ],
            options={'table': 'member_keys', 'app': 'tenants', 'unique_together': (('tenant_id', 'member_id'),), 'pk_attr': 'id', 'table_description': "The AES-256-GCM key that seals one member's personal fields in audit events."},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='RetentionPolicy',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('mail_days', fields.IntField(default=90)),
                ('session_days', fields.IntField(default=30)),
                ('sign_in_attempt_days', fields.IntField(default=1)),
                ('outbox_payload_days', fields.IntField(default=30)),
                ('webhook_delivery_days', fields.IntField(default=30)),
                ('export_days', fields.IntField(default=30)),
            ],
            options={'table': 'retention_policies', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': 'How long an organisation keeps what piles up personal data (days); one row per'},
            bases=['TenantModel'],
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['tenant_id', 'actor', 'id']),
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
