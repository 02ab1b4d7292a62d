"""Seal after commit: the audit chain moves out of ``audit_events`` into ``audit_chain``.

A write now records its event and a row in ``audit_pending`` without locking the
organisation's chain head; the sealer chains pending events later, in batches, under that
lock. The model operations were generated (``tortoise makemigrations -n audit_chain``; the
writer drops ``generated=False`` from the two non-serial primary keys, restored by hand)
and reordered so the existing chain is copied into ``audit_chain`` before the columns
holding it are dropped. The SQL below gives the new tables tenant-first keys, FORCEd
row-level security and their grants (see migrations/rls.py).
"""

from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

from migrations import base
from migrations.rls import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    TenantForeignKey as FK,
    grant_runtime,
    row_level_security,
    tenant_foreign_keys,
)

# The chain as it stands moves with its hashes unchanged: the hashed payload (seq and the
# event's content) is the same, so existing chains keep verifying. The owner runs this and
# is itself subject to the FORCEd policy (no organisation set: no rows), so the policy is
# lifted for the copy and for validating the link's foreign key (whose initial check runs
# as the owner under the policy), inside this migration's transaction, and put back.
# Tenant-first: a link can only point at an event of its own organisation, and a chained
# event cannot be deleted (foreign keys do not see row-level security; composite keys do
# the job, see migrations/rls.py).
COPY_CHAIN = f"""
ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
INSERT INTO audit_chain (tenant_id, seq, event_id, prev_hash, hash)
  SELECT tenant_id, seq, id, prev_hash, hash FROM audit_events;
{tenant_foreign_keys("audit_chain", [FK("event_id", "audit_events")])}
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
"""

SQL: list[str] = [
    # Tenant-first keys: a position, and an event, appear once per organisation's chain
    # (the link's foreign key to its event is added with the copy above).
    "ALTER TABLE audit_chain DROP CONSTRAINT audit_chain_pkey;",
    "ALTER TABLE audit_chain ADD CONSTRAINT audit_chain_pkey PRIMARY KEY (tenant_id, seq);",
    "ALTER TABLE audit_chain ADD CONSTRAINT audit_chain_seq_positive CHECK (seq >= 1);",
    "ALTER TABLE audit_pending DROP CONSTRAINT audit_pending_pkey;",
    "ALTER TABLE audit_pending ADD CONSTRAINT audit_pending_pkey PRIMARY KEY (tenant_id, event_id);",
    row_level_security("audit_chain"),
    row_level_security("audit_pending"),
    # Append-only for the service: events and links are inserted and read, never changed.
    grant_runtime("audit_chain", "SELECT, INSERT"),
    # The queue: a write adds its event, the sealer takes it off.
    grant_runtime("audit_pending", "SELECT, INSERT, DELETE"),
    # The head is moved by the sealer; creating an organisation inserts its head, so INSERT
    # stays. Nothing in the service deletes a head.
    f"REVOKE DELETE, TRUNCATE ON audit_heads FROM {RUNTIME_ROLE};",
    # Sealers on any node must find the organisations with pending events without reading
    # across tenants: a SECURITY DEFINER function answers with their ids alone, reading as
    # the owner through a policy of its own (like owner_directory on organisations).
    f"CREATE POLICY owner_sealer ON audit_pending FOR SELECT TO {OWNER_ROLE} USING (true);",
    f"""
-- A loose index scan over (tenant_id, event_id): one index probe per organisation, however
-- long one organisation's backlog has grown.
CREATE FUNCTION audit_orgs_with_pending() RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$
    WITH RECURSIVE orgs (tenant_id) AS (
      (SELECT tenant_id FROM audit_pending ORDER BY tenant_id LIMIT 1)
      UNION ALL
      SELECT (SELECT p.tenant_id FROM audit_pending p WHERE p.tenant_id > o.tenant_id
               ORDER BY p.tenant_id LIMIT 1)
        FROM orgs o WHERE o.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM orgs WHERE tenant_id IS NOT NULL
  $$;
REVOKE ALL ON FUNCTION audit_orgs_with_pending() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_orgs_with_pending() TO {RUNTIME_ROLE};
""",
]


class Migration(base.Migration):
    dependencies = [('tenants', '0004_policies_row_level_security')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditChainLink',
            fields=[
                ('seq', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('tenant_id', fields.UUIDField()),
                ('event_id', fields.BigIntField()),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_chain', 'app': 'tenants', 'unique_together': (('tenant_id', 'event_id'),), 'pk_attr': 'seq', 'table_description': "The event at position ``seq`` of its organisation's chain and the hashes linking it."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditPending',
            fields=[
                ('event_id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('tenant_id', fields.UUIDField()),
            ],
            options={'table': 'audit_pending', 'app': 'tenants', 'pk_attr': 'event_id', 'table_description': 'An event recorded but not chained yet; written with the event, deleted when sealed.'},
            bases=['Model'],
        ),
        ops.RunSQL(COPY_CHAIN),
        ops.RemoveIndex(
            model_name='AuditEvent',
            name=None,
            fields=['tenant_id', 'action', 'seq'],
        ),
        ops.RemoveIndex(
            model_name='AuditEvent',
            name=None,
            fields=['tenant_id', 'target_type', 'target_id', 'seq'],
        ),
        ops.RemoveConstraint(
            model_name='AuditEvent',
            name=None,
            fields=['tenant_id', 'seq'],
        ),
        ops.AlterModelOptions(
            name='AuditEvent',
            options={'table': 'audit_events', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'action', 'id']), Index(fields=['tenant_id', 'target_type', 'target_id', 'id']), Index(fields=['tenant_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'One write, as it happened. The runtime role may INSERT and SELECT, never UPDATE or'},
        ),
        ops.RemoveField(model_name='AuditEvent', name='hash'),
        ops.RemoveField(model_name='AuditEvent', name='prev_hash'),
        ops.RemoveField(model_name='AuditEvent', name='seq'),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['tenant_id', 'action', 'id']),
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['tenant_id', 'target_type', 'target_id', 'id']),
        ),
        ops.AlterModelOptions(
            name='AuditHead',
            options={'table': 'audit_heads', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': "The newest sealed event of one organisation's chain, one row per organisation; the"},
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
