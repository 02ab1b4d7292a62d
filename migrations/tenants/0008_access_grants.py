"""Data-access grants, the organisation's access policy and the append-only access log.

The model operations were generated (``tortoise makemigrations -n access_grants``); the SQL
below gives the tables tenant-first keys, FORCEd row-level security and their grants (see
migrations/rls.py), and creates ``check_data_access``: the access check of the product
API in one statement, so a product's check is one round trip to the database.
"""

from tortoise.migrations import operations as ops
from migrations import base
from migrations.rls import (
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
from orjson import loads
from tenants.access.models import GrantStatus
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

REFERENCED = ["members", "units"]

TENANT_TABLES: dict[str, list[FK]] = {
    "access_policies": [],
    "access_grants": [
        FK("admin_id", "members"),
        FK("member_id", "members"),
        FK("unit_id", "units"),
        FK("decided_by_id", "members"),
        FK("reviewed_by_id", "members"),
    ],
    "access_log": [FK("grant_id", "access_grants")],
}

# Ordered as the check ranks what it found: the first outcome is the answer.
CHECK_FUNCTION = f"""
-- May admin p_admin (or the member with email p_admin_email) read category p_category of
-- member p_member in product p_product now? Records the check in access_log and answers
-- (outcome, grant_id, log_id, admin_id); outcome 'allowed', a denial reason, or
-- unknown_admin / unknown_member / unknown_product (nothing recorded: bad input).
-- SECURITY INVOKER: it runs as the runtime role under row-level security, for the
-- organisation it sets itself (transaction-local), so a product's check is one statement.
CREATE FUNCTION check_data_access(p_tenant uuid, p_admin uuid, p_admin_email text,
                                  p_member uuid, p_product uuid, p_category text,
                                  p_checked_by text)
  RETURNS TABLE (outcome text, grant_id uuid, log_id bigint, admin_id uuid)
  LANGUAGE plpgsql VOLATILE SET search_path = public
  AS $$
DECLARE
  v_admin uuid;
  v_path text;
  v_grant uuid;
  v_outcome text;
  v_log bigint;
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  IF p_admin IS NOT NULL THEN
    SELECT m.id INTO v_admin FROM members m WHERE m.id = p_admin;
  ELSE
    SELECT m.id INTO v_admin FROM members m WHERE m.email = lower(p_admin_email);
  END IF;
  IF v_admin IS NULL THEN
    RETURN QUERY SELECT 'unknown_admin'::text, NULL::uuid, NULL::bigint, NULL::uuid;
    RETURN;
  END IF;
  SELECT u.path INTO v_path FROM members m
    JOIN units u ON u.tenant_id = m.tenant_id AND u.id = m.unit_id
   WHERE m.id = p_member;
  IF v_path IS NULL THEN
    RETURN QUERY SELECT 'unknown_member'::text, NULL::uuid, NULL::bigint, v_admin;
    RETURN;
  END IF;
  PERFORM 1 FROM products p WHERE p.id = p_product;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unknown_product'::text, NULL::uuid, NULL::bigint, v_admin;
    RETURN;
  END IF;
  SELECT c.id, c.outcome INTO v_grant, v_outcome FROM (
    SELECT g.id, g.ends_at,
      CASE
        WHEN g.status = 'requested' THEN 'pending_approval'
        WHEN g.status = 'denied' THEN 'denied'
        WHEN g.status = 'revoked' THEN 'revoked'
        WHEN g.ends_at IS NULL OR g.ends_at <= now() THEN 'expired'
        WHEN NOT g.categories ? p_category THEN 'category_not_granted'
        WHEN NOT (g.all_products OR g.product_ids ? p_product::text) THEN 'product_not_granted'
        ELSE 'allowed'
      END AS outcome
    FROM access_grants g
    LEFT JOIN units gu ON gu.tenant_id = g.tenant_id AND gu.id = g.unit_id
    WHERE g.admin_id = v_admin
      AND (g.member_id = p_member
           OR (g.unit_id IS NOT NULL
               AND (v_path = gu.path OR starts_with(v_path, gu.path || '/'))))
  ) c
  ORDER BY array_position(ARRAY['allowed', 'category_not_granted', 'product_not_granted',
                                'pending_approval', 'expired', 'revoked', 'denied'], c.outcome),
           c.ends_at DESC NULLS LAST
  LIMIT 1;
  v_outcome := coalesce(v_outcome, 'no_grant');
  INSERT INTO access_log (tenant_id, checked_at, admin_id, member_id, product_id, category,
                          allowed, reason, grant_id, checked_by)
  VALUES (p_tenant, now(), v_admin, p_member, p_product, p_category,
          v_outcome = 'allowed', NULLIF(v_outcome, 'allowed'), v_grant, p_checked_by)
  RETURNING id INTO v_log;
  RETURN QUERY SELECT v_outcome, v_grant, v_log, v_admin;
END
$$;
REVOKE ALL ON FUNCTION check_data_access(uuid, uuid, text, uuid, uuid, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_data_access(uuid, uuid, text, uuid, uuid, text, text)
  TO {RUNTIME_ROLE};
"""

SQL: list[str] = [drop_single_column_foreign_keys(t) for t in TENANT_TABLES]
SQL += [tenant_primary_key(t) for t in TENANT_TABLES]
SQL += [tenant_foreign_keys(t, keys) for t, keys in TENANT_TABLES.items() if keys]
SQL += [row_level_security(t) for t in TENANT_TABLES]
SQL += [grant_runtime(t) for t in TENANT_TABLES if t != "access_log"]
SQL += [
    # The access log is append-only for the service: no UPDATE, no DELETE, no TRUNCATE.
    grant_runtime("access_log", "SELECT, INSERT"),
    drop_referable_ids(REFERENCED),
    # Whose data: one member, or a unit (and below) for diagnostic data only.
    "ALTER TABLE access_grants ADD CONSTRAINT access_grants_one_subject "
    "CHECK ((member_id IS NULL) <> (unit_id IS NULL));",
    "ALTER TABLE access_grants ADD CONSTRAINT access_grants_unit_diagnostic_only "
    "CHECK (unit_id IS NULL OR categories = '[\"diagnostic\"]'::jsonb);",
    "ALTER TABLE access_grants ADD CONSTRAINT access_grants_positive_duration "
    "CHECK (duration_hours > 0);",
    CHECK_FUNCTION,
]


class Migration(base.Migration):
    dependencies = [('tenants', '0007_departures')]

    initial = False

    operations = [
        ops.RunSQL(referable_ids(REFERENCED)),
        ops.CreateModel(
            name='AccessGrant',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('admin', fields.ForeignKeyField('tenants.Member', source_field='admin_id', description='The admin who gets access (and whose reads products check).', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('tenants.Member', source_field='member_id', null=True, description='Exactly one of member and unit: whose data.', db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('unit', fields.ForeignKeyField('tenants.Unit', source_field='unit_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('categories', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('all_products', fields.BooleanField(default=False)),
                ('product_ids', fields.JSONField(default=list, description='Product ids (text) when not ``all_products``.', encoder=JSON_DUMPS, decoder=loads)),
                ('justification', fields.TextField(unique=False)),
                ('case_reference', fields.CharField(null=True, max_length=200)),
                ('duration_hours', fields.IntField()),
                ('emergency', fields.BooleanField(default=False)),
                ('status', fields.CharEnumField(default=GrantStatus.REQUESTED, description='REQUESTED: requested\nAPPROVED: approved\nDENIED: denied\nREVOKED: revoked', enum_type=GrantStatus, max_length=16)),
                ('requested_by', fields.CharField(description='Who asked (an actor reference: ``member:<id>`` or ``api_token:<id>``).', max_length=300)),
                ('requested_by_display', fields.CharField(max_length=300)),
                ('starts_at', fields.DatetimeField(null=True, description='Set when access starts (approval, or at once for emergency access).', auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.ForeignKeyField('tenants.Member', source_field='decided_by_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decision_reason', fields.TextField(null=True, unique=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by', fields.CharField(null=True, max_length=300)),
                ('revoke_reason', fields.TextField(null=True, unique=False)),
                ('review_required', fields.BooleanField(default=False, description="Emergency access waits for a privacy officer's review after the fact.")),
                ('reviewed_by', fields.ForeignKeyField('tenants.Member', source_field='reviewed_by_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('review_note', fields.TextField(null=True, unique=False)),
                ('disclosure_delayed_until', fields.DatetimeField(null=True, description='Until then the member does not see the grant or its accesses (an investigation).', auto_now=False, auto_now_add=False)),
                ('disclosure_delay_reason', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'access_grants', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'admin_id']), Index(fields=['tenant_id', 'member_id', 'created_at']), Index(fields=['tenant_id', 'unit_id']), Index(fields=['tenant_id', 'status', 'created_at']), Index(fields=['tenant_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['TenantModel'],
        ),
        ops.CreateModel(
            name='AccessLogEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('checked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('admin_id', fields.UUIDField(description='Plain ids, not keys: the log outlives products and keeps what was asked.')),
                ('member_id', fields.UUIDField()),
                ('product_id', fields.UUIDField()),
                ('category', fields.CharField(max_length=20)),
                ('allowed', fields.BooleanField()),
                ('reason', fields.CharField(null=True, description='Why a check was refused (``tenants.access.rules.DenyReason``); None when allowed.', max_length=32)),
                ('grant', fields.ForeignKeyField('tenants.AccessGrant', source_field='grant_id', null=True, db_constraint=False, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('checked_by', fields.CharField(description='The product client (or token) that asked.', max_length=300)),
            ],
            options={'table': 'access_log', 'app': 'tenants', 'indexes': [Index(fields=['tenant_id', 'member_id', 'id']), Index(fields=['tenant_id', 'admin_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One access check, as answered. Append-only: never updated or deleted.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AccessPolicy',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('tenants.Organisation', source_field='tenant_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('max_duration_hours', fields.IntField(default=168)),
                ('emergency_allowed', fields.BooleanField(default=False)),
                ('emergency_max_hours', fields.IntField(default=24, description='Emergency grants start without approval, so they are held shorter.')),
                ('notify_member_per_access', fields.BooleanField(default=True, description='Whether the member is emailed for each new access in their log.')),
                ('max_disclosure_delay_days', fields.IntField(default=0, description='How far ahead disclosure of a grant to its member may be delayed; 0: never.')),
            ],
            options={'table': 'access_policies', 'app': 'tenants', 'unique_together': (('tenant_id',),), 'pk_attr': 'id', 'table_description': "The organisation's rules for data access; absent means the defaults in"},
            bases=['TenantModel'],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
