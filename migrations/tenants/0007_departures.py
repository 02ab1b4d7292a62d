from migrations import base
from migrations.rls import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    TenantForeignKey as FK,
    drop_referable_ids,
    drop_single_column_foreign_keys,
    grant_runtime,
    referable_ids,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)
from tortoise.migrations import operations as ops
from orjson import loads
from tenants.content.models import ContentKind, ContentStatus
from tenants.departures.models import ContentAction, DepartureStatus, PersonalOutcome, StepStatus
from tenants.jobs.models import JobStatus
from tenants.webhooks.models import DeliveryStatus
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

REFERENCED = ["members", "products"]

TENANT_TABLES: dict[str, list[FK]] = {
    "content_items": [
        FK("member_id", "members"),
        FK("product_id", "products"),
        FK("previous_member_id", "members", "SET NULL"),
    ],
    "departure_policies": [FK("fallback_successor_id", "members", "SET NULL")],
    "departures": [FK("member_id", "members"), FK("successor_id", "members", "SET NULL")],
    "departure_steps": [FK("departure_id", "departures", "CASCADE")],
    "jobs": [],
    "webhook_deliveries": [FK("product_id", "products", "CASCADE")],
}

SQL: list[str] = [drop_single_column_foreign_keys(t) for t in TENANT_TABLES]
SQL += [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES]
SQL += [
    drop_referable_ids(REFERENCED),
    # Workers on any node must find due jobs of every organisation without reading across
    # tenants: claim_jobs (SECURITY DEFINER, reading and updating as the owner through a
    # policy of its own) leases a batch and answers with their keys alone; the worker then
    # reads each job inside that organisation's tenant transaction.
    f"CREATE POLICY owner_worker ON jobs TO {OWNER_ROLE} USING (true) WITH CHECK (true);",
    "CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';",
    "CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 'running';",
    f"""
-- A job is due when queued and its time has come, or running with an expired lease (its
-- worker died). A job with a queue waits for every older unfinished job of that queue.
-- p_ahead_seconds claims jobs due that far ahead (tests and `worker --once` drills).
-- SKIP LOCKED lets many workers claim side by side without waiting on each other.
CREATE FUNCTION claim_jobs(p_worker text, p_lease_seconds int, p_limit int, p_ahead_seconds int)
  RETURNS TABLE (tenant_id uuid, id uuid)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
  AS $$
    WITH due AS (
      SELECT j.tenant_id, j.id FROM jobs j
       WHERE ((j.status = 'queued' AND j.run_at <= now() + make_interval(secs => p_ahead_seconds))
              OR (j.status = 'running' AND j.lease_until < now()))
         AND (j.queue IS NULL OR NOT EXISTS (
               SELECT 1 FROM jobs o
                WHERE o.tenant_id = j.tenant_id AND o.queue = j.queue
                  AND o.status <> 'done'
                  AND (o.created_at, o.id) < (j.created_at, j.id)))
       ORDER BY j.run_at
       LIMIT p_limit
       FOR UPDATE SKIP LOCKED
    )
    UPDATE jobs j
       SET status = 'running', locked_by = p_worker, claims = j.claims + 1,
           lease_until = now() + make_interval(secs => p_lease_seconds), heartbeat_at = now()
      FROM due
     WHERE j.tenant_id = due.tenant_id AND j.id = due.id
    RETURNING j.tenant_id, j.id
  $$;
REVOKE ALL ON FUNCTION claim_jobs(text, int, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_jobs(text, int, int, int) TO {RUNTIME_ROLE};
-- When the next job falls due, for a worker deciding how long to sleep.
CREATE FUNCTION next_job_due() RETURNS timestamptz
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$
    SELECT min(t) FROM (
      (SELECT run_at FROM jobs WHERE status = 'queued' ORDER BY run_at LIMIT 1)
      UNION ALL
      (SELECT lease_until FROM jobs WHERE status = 'running' ORDER BY lease_until LIMIT 1)
    ) AS d(t)
  $$;
REVOKE ALL ON FUNCTION next_job_due() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION next_job_due() TO {RUNTIME_ROLE};
""",
]


class Migration(base.Migration):
    dependencies = [('tenants', '0006_logout_token_replay')]

    initial = False

    operations = [
        ops.RunSQL(referable_ids(REFERENCED)),
        ops.CreateModel(
            name='ContentItem',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('member', fields.ForeignKeyField('tenants.Member', source_field='member_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('product', fields.ForeignKeyField('tenants.Product', source_field='product_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('external_id', fields.CharField(description="The product's own id for the item; unique per product.", max_length=255)),
                ('title', fields.CharField(max_length=500)),
                ('kind', fields.CharEnumField(description='ORGANISATION: organisation\nPERSONAL: personal', enum_type=ContentKind, max_length=16)),
                ('size', fields.BigIntField(default=0, description='Bytes.')),
                ('item_created_at', fields.DatetimeField(null=True, description='When the product says the item was created (not when it was registered).', auto_now=False, auto_now_add=False)),
                ('legal_hold', fields.BooleanField(default=False)),
                ('export_url', fields.CharField(null=True, description='Where the owner can download the item themselves (set by the product).', max_length=2000)),
                ('status', fields.CharEnumField(default=ContentStatus.ACTIVE, description='ACTIVE: active\nARCHIVED: archived\nPENDING_DELETION: pending_deletion\nACCESS_ENDED: access_ended', enum_type=ContentStatus, max_length=16)),
                ('previous_member', fields.ForeignKeyField('tenants.Member', source_field='previous_member_id', null=True, description='The member who held the item before a departure transferred it.', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('departure_id', fields.UUIDField(null=True, description="The departure that last acted on the item (a plain id: departures own their items'")),
                ('transfer_count', fields.IntField(default=0, description='How many times a departure handed the item to a successor; the crash test reads it.')),
            ],
            options={'table': 'content_items', 'app': 'tenants', 'unique_together': (('tenant_id', 'product_id', 'external_id'),), 'indexes': [Index(fields=['tenant_id', 'member_id', 'status', 'id']), Index(fields=['tenant_id', 'departure_id'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='Departure',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('member', fields.ForeignKeyField('tenants.Member', source_field='member_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('successor', fields.ForeignKeyField('tenants.Member', source_field='successor_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('last_day', fields.DateField()),
                ('suspend_at', fields.DatetimeField(description='End of the last day (UTC): sign-in ends, sessions end, products suspend.', auto_now=False, auto_now_add=False)),
                ('export_until', fields.DatetimeField(description='Until when the member can export their personal items.', auto_now=False, auto_now_add=False)),
                ('purge_at', fields.DatetimeField(description='When items pending deletion are deleted and the member record anonymised.', auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=DepartureStatus.RUNNING, description='RUNNING: running\nCOMPLETED: completed\nCANCELLED: cancelled', enum_type=DepartureStatus, max_length=16)),
                ('reason', fields.TextField(default='', unique=False)),
                ('policy', fields.JSONField(description='The departure policy as it was at the start: a later policy change does not alter a', encoder=JSON_DUMPS, decoder=loads)),
                ('plan_totals', fields.JSONField(default=dict, description='Totals of the plan at the start (the preview the admin confirmed).', encoder=JSON_DUMPS, decoder=loads)),
                ('started_by', fields.CharField(max_length=300)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'departures', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'member_id']), Index(fields=['tenant_id', 'status', 'created_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='DeparturePolicy',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('fallback_successor', fields.ForeignKeyField('tenants.Member', source_field='fallback_successor_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('default_action', fields.CharEnumField(default=ContentAction.TRANSFER, description='TRANSFER: transfer\nARCHIVE: archive\nDELETE: delete', enum_type=ContentAction, max_length=16)),
                ('product_actions', fields.JSONField(default=dict, description='``{product_id: action}`` for products that differ from ``default_action``.', encoder=JSON_DUMPS, decoder=loads)),
                ('retention_days', fields.IntField(default=30)),
                ('export_window_days', fields.IntField(default=14)),
                ('personal_outcome', fields.CharEnumField(default=PersonalOutcome.DELETE, description='DELETE: delete\nARCHIVE: archive', enum_type=PersonalOutcome, max_length=16)),
                ('reinstatement_returns_items', fields.BooleanField(default=True)),
            ],
            options={'table': 'departure_policies', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': "The organisation's rules for departures; absent means the defaults in"},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='DepartureStep',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('departure', fields.ForeignKeyField('tenants.Departure', source_field='departure_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=32)),
                ('position', fields.SmallIntField()),
                ('status', fields.CharEnumField(default=StepStatus.PENDING, description='PENDING: pending\nRUNNING: running\nDONE: done\nFAILED: failed\nSKIPPED: skipped', enum_type=StepStatus, max_length=16)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('total', fields.BigIntField(default=0, description='Units of work (items, products) in the step, and how many are done.')),
                ('done', fields.BigIntField(default=0)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'departure_steps', 'app': 'tenants', 'unique_together': (('tenant_id', 'departure_id', 'name'),), 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('kind', fields.CharField(max_length=64)),
                ('payload', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('key', fields.CharField(description='Unique per organisation: enqueueing the same key twice is one job.', max_length=200)),
                ('queue', fields.CharField(null=True, description='Jobs sharing a queue run one at a time, oldest first (changes to one member at an', max_length=200)),
                ('status', fields.CharEnumField(default=JobStatus.QUEUED, description='QUEUED: queued\nRUNNING: running\nDONE: done\nDEAD: dead', enum_type=JobStatus, max_length=16)),
                ('run_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0, description='Failed attempts so far; a worker killed mid-run is not a failure.')),
                ('max_attempts', fields.IntField(default=8)),
                ('claims', fields.IntField(default=0, description="How many times a worker took the job (a killed worker's lease expires and the job is")),
                ('locked_by', fields.CharField(null=True, max_length=200)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('heartbeat_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('checkpoint', fields.JSONField(default=dict, description='Where a resumable job stopped; written in the same transaction as the work it covers.', encoder=JSON_DUMPS, decoder=loads)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'jobs', 'app': 'tenants', 'unique_together': (('tenant_id', 'key'),), 'indexes': [Index(fields=['tenant_id', 'status', 'run_at']), Index(fields=['tenant_id', 'queue', 'created_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('product', fields.ForeignKeyField('tenants.Product', source_field='product_id', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('event_id', fields.BigIntField(description='The outbox event delivered (``outbox_events.id``).')),
                ('topic', fields.CharField(max_length=100)),
                ('idempotency_key', fields.CharField(description="The event's idempotency key, sent as ``webhook-id``: the same on every attempt.", max_length=100)),
                ('status', fields.CharEnumField(default=DeliveryStatus.PENDING, description='PENDING: pending\nDELIVERED: delivered\nDEAD: dead', enum_type=DeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.TextField(null=True, unique=False)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_deliveries', 'app': 'tenants', 'unique_together': (('tenant_id', 'event_id', 'product_id'),), 'indexes': [Index(fields=['tenant_id', 'product_id', 'created_at']), Index(fields=['tenant_id', 'status'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.AddField(
            model_name='Product',
            name='webhook_previous_secret',
            field=fields.CharField(null=True, description='The secret before the last rotation, still signed with until ``webhook_previous_until``', max_length=500),
        ),
        ops.AddField(
            model_name='Product',
            name='webhook_previous_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Product',
            name='webhook_secret',
            field=fields.CharField(null=True, description='The signing secret, encrypted (``tenants.secrets``).', max_length=500),
        ),
        ops.AddField(
            model_name='Product',
            name='webhook_url',
            field=fields.CharField(null=True, description='Where Tenantry posts events for this product (``tenants.webhooks``); None: no webhooks.', max_length=2000),
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
