"""Staged policy rollout with advance notice (issue 18, part 1).

- ``organisations.policy_notice_days``: how many days before a scheduled rule takes effect
  the members it affects are emailed what changes for them (default 7, 0 to 90).
- ``policy_rules.replaces``: what a rule in force is until a scheduled change of it takes
  effect (value, enforced, reason), so scheduling a change never removes the rule in
  force before its date.
- ``policy_rules.announced_at``: when products were told (``policy.changed``) that the rule
  is in force. Rules in force when written are announced at once; a scheduled one by the
  worker's sweep once its time has come, so a worker that was down announces it later.
  Rules already in force are marked announced here (their change was announced when
  written).
- ``policy_rules.noticed_for``: the ``effective_from`` whose advance notices were sent; a
  rule moved to another date differs from it and is noticed again.
- ``policy_change_notices``: which member was told about which scheduled rule (so each
  is told once, and cancelling or moving the change tells exactly those told). A tenant
  table like every other: tenant-first key, composite foreign key to the member (gone
  with them), row-level security FORCEd, grants for the runtime role.
- ``policy_schedule_due(at)``: the organisations with scheduled work at ``at`` (a rule
  come into force and not announced, or a rule within its organisation's notice window
  and not noticed for its date). Ids only, read as the owner through a policy of its own
  that shows it scheduled rules alone; the worker's sweep visits only those.

The partial indexes hold exactly the rules the sweep looks for, so it costs what is due.
"""

from uuid import uuid4

from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from migrations import base
from migrations.rls import (
    OWNER_ROLE,
    RUNTIME_ROLE,
    TenantForeignKey as FK,
    drop_single_column_foreign_keys,
    grant_runtime,
    row_level_security,
    tenant_foreign_keys,
    tenant_primary_key,
)

SQL = [
    "ALTER TABLE organisations ADD CONSTRAINT organisations_policy_notice_days "
    "CHECK (policy_notice_days BETWEEN 0 AND 90);",
    # Under FORCEd row-level security the owner updates nothing without a policy of its
    # own: one for this statement only.
    f"CREATE POLICY owner_backfill ON policy_rules FOR ALL TO {OWNER_ROLE} USING (true);",
    "UPDATE policy_rules SET announced_at = now() "
    "WHERE effective_from IS NULL OR effective_from <= now();",
    "DROP POLICY owner_backfill ON policy_rules;",
    "CREATE INDEX policy_rules_unannounced ON policy_rules (tenant_id, effective_from) "
    "WHERE announced_at IS NULL;",
    "CREATE INDEX policy_rules_scheduled ON policy_rules (tenant_id, effective_from) "
    "WHERE effective_from IS NOT NULL;",
    drop_single_column_foreign_keys("policy_change_notices"),
    tenant_primary_key("policy_change_notices"),
    tenant_foreign_keys("policy_change_notices", [FK("member_id", "members", "CASCADE")]),
    row_level_security("policy_change_notices"),
    # DELETE: an erasure or purge removes the member's rows (tenants.privacy.datamap).
    grant_runtime(
        "policy_change_notices", "SELECT, INSERT, UPDATE (cancelled_at, updated_at), DELETE"
    ),
    "CREATE INDEX policy_change_notices_rule ON policy_change_notices "
    "(tenant_id, rule_id, effective_at) WHERE cancelled_at IS NULL;",
    "CREATE INDEX policy_change_notices_member ON policy_change_notices (tenant_id, member_id);",
    f"""
CREATE POLICY owner_schedule ON policy_rules FOR SELECT TO {OWNER_ROLE}
  USING (effective_from IS NOT NULL);
CREATE FUNCTION policy_schedule_due(p_at timestamptz) RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT DISTINCT r.tenant_id FROM policy_rules r
    JOIN organisations o ON o.id = r.tenant_id
   WHERE r.effective_from IS NOT NULL
     AND ((r.announced_at IS NULL AND r.effective_from <= p_at)
          OR (r.effective_from > p_at
              AND r.noticed_for IS DISTINCT FROM r.effective_from
              AND r.effective_from <= p_at + make_interval(days => o.policy_notice_days)))
$$;
REVOKE ALL ON FUNCTION policy_schedule_due(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION policy_schedule_due(timestamptz) TO {RUNTIME_ROLE};""",
]


class Migration(base.Migration):
    dependencies = [("tenants", "0026_sso_previous")]

    initial = False

    operations = [
        base.AddColumnWithDefault(
            model_name="Organisation",
            name="policy_notice_days",
            field=fields.IntField(default=7),
            table="organisations",
            column_sql="integer NOT NULL DEFAULT 7",
        ),
        ops.AddField(
            model_name="PolicyRule",
            name="replaces",
            field=fields.JSONField(null=True),
        ),
        ops.AddField(
            model_name="PolicyRule",
            name="announced_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="PolicyRule",
            name="noticed_for",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.CreateModel(
            name="PolicyChangeNotice",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("tenant", fields.ForeignKeyField("tenants.Organisation", source_field="tenant_id", db_constraint=True, to_field="id", related_name=False, on_delete=OnDelete.RESTRICT)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("rule_id", fields.UUIDField()),
                ("member_id", fields.UUIDField()),
                ("setting", fields.CharField(max_length=100)),
                ("effective_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("cancelled_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "policy_change_notices", "app": "tenants", "unique_together": (("tenant_id", "rule_id", "member_id", "effective_at"),), "pk_attr": "id"},
            bases=["TenantModel"],
        ),
        ops.RunSQL("\n".join(SQL)),
    ]
